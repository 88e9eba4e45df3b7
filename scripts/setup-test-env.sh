#!/usr/bin/env bash
# Installs the system packages the tests use (Debian's), when they are missing:
# nginx (the hub's transports behind a buffering reverse proxy) and chromium (browser tests).
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
exec bash "$(dirname "$0")/apt-install.sh" setup-test-env "${need[@]}"
