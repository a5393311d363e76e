#!/bin/bash
# python_echo.sh VMCI_VSOCK_RUN: Python's socket.AF_VSOCK echo, both ways:
# a host server and a guest client (and 200 non-blocking connects refused
# by the host's vSockets), then a guest server and a host client,
# each program under vmci-vsock-run (against $VMCI_HOSTPEER_SOCKET).
set -euo pipefail
run=$1
here=$(dirname "$0")
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

wait_listening() {  # FILE: until the server says it listens
  for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "the server did not listen:"; cat "$1"; return 1
}

"$run" --host -- python3 "$here/echo.py" serve 5000 >"$dir/host-server" 2>&1 &
server=$!
wait_listening "$dir/host-server"
"$run" --guest -- python3 "$here/echo.py" refused 2 5999 200
"$run" --guest -- python3 "$here/echo.py" ask 2 5000 $((4 * 1024 * 1024))
wait $server
cat "$dir/host-server"

"$run" --guest --cid 77 -- python3 "$here/echo.py" serve 6000 >"$dir/guest-server" 2>&1 &
server=$!
wait_listening "$dir/guest-server"
"$run" --host -- python3 "$here/echo.py" ask 77 6000 $((1024 * 1024))
wait $server
cat "$dir/guest-server"
