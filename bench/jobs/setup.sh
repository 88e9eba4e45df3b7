#!/usr/bin/env bash
# Installs redis-server (Debian's) for the BullMQ side of the jobs benchmark, when missing.
# Runs as root (CI and the development machines); elsewhere it says what to install.
# The benchmark starts its own redis-server on an ephemeral port; a system one is not used.
set -euo pipefail

command -v redis-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/jobs/setup.sh: redis-server is missing; install it (apt-get install redis-server) or run as root" >&2
  exit 1
fi
echo "bench/jobs/setup.sh: installing redis-server"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a server on port 6379; the benchmark does not use it.
if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
