#!/bin/sh
# Publish to a Kobold hub channel from a shell script through the hub's UNIX socket.
# Usage: ./publish.sh /path/to/publish.sock news:site '{"title":"Hello"}'
# Needs a netcat with UNIX-socket support (OpenBSD netcat: `nc -U`) or socat.
set -eu
socket="${1:-/run/kobold/publish.sock}"
channel="${2:-news:site}"
data="${3:-\"hello from sh\"}"

line=$(printf '{"method":"publish","channel":"%s","data":%s}' "$channel" "$data")
if command -v socat >/dev/null 2>&1; then
  printf '%s\n' "$line" | socat - "UNIX-CONNECT:$socket"
else
  printf '%s\n' "$line" | nc -U -N "$socket"
fi
