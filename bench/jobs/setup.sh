#!/usr/bin/env bash
# Installs redis-server (Debian's) for the BullMQ side of the jobs benchmark, when missing.
# The benchmark starts its own redis-server on an ephemeral port; a system one is not used.
set -euo pipefail

command -v redis-server >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/../../scripts/apt-install.sh" bench/jobs/setup.sh redis-server
