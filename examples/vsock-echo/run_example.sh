#!/usr/bin/env bash
# Runs the echo proxy, then three guests against it, each checking its echo.
# Usage: run_example.sh PROXY GUEST
set -euo pipefail
proxy="$1" guest="$2"
dir=$(mktemp -d /tmp/vsock-echo-XXXXXX)
"$proxy" "$dir/proxy.sock" > "$dir/proxy.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/proxy.sock" ] && break; sleep 0.05; done
for text in one "two words" "the third guest"; do
  got=$(VMCI_HOSTPEER_SOCKET="$dir/proxy.sock" "$guest" "$text")
  [ "$got" = "$text" ] || { echo "sent '$text', got '$got'" >&2; exit 1; }
  echo "echoed: $got"
done
