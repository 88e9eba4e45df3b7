#!/usr/bin/env bash
# Installs Debian packages that tests and benchmarks need: apt-get as root (CI and the
# development machines); elsewhere it says what to install. A service a package starts on
# install is stopped again: tests and benchmarks start their own, on ephemeral ports.
#   apt-install.sh <who asks> <package>...
set -euo pipefail

who=$1
shift
if [ "$(id -u)" -ne 0 ]; then
  echo "$who: missing $*; install them (apt-get install $*) or run as root" >&2
  exit 1
fi
echo "$who: installing $*"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
if command -v service >/dev/null 2>&1; then
  for package in "$@"; do service "$package" stop >/dev/null 2>&1 || true; done
fi
