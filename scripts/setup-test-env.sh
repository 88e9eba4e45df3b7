#!/usr/bin/env bash
# Installs the system packages the tests use (Debian's), when they are missing:
# nginx (the hub's transports behind a buffering reverse proxy) and chromium (browser tests).
# Runs as root (CI and the development machines); elsewhere it says what to install.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-test-env: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
  exit 1
fi
echo "setup-test-env: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The nginx package starts a server on port 80; tests start their own on ephemeral ports.
if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
