#!/bin/bash
# socket_activate.sh VMCI_VSOCK_RUN: systemd-socket-activate -l vsock::PORT
# under vmci-vsock-run (--host) makes the listening socket, hands it to
# itself at descriptor 3 (LISTEN_FDS), accepts, and runs /bin/cat on each
# connection (--inetd); a guest's ncat gets its line back. Skipped (77)
# where systemd-socket-activate is not installed.
set -euo pipefail
run=$1
command -v systemd-socket-activate >/dev/null || { echo "no systemd-socket-activate: skipped"; exit 77; }
command -v ncat >/dev/null || { echo "no ncat: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$run" --host -- timeout 20 systemd-socket-activate -l vsock::5500 --inetd -a /bin/cat \
  >"$dir/activate.log" 2>&1 &
for _ in $(seq 100); do grep -q "Listening" "$dir/activate.log" && break; sleep 0.05; done
got=$( (echo "socket-activated"; sleep 1) | "$run" --guest -- timeout 10 ncat --vsock 2 5500)
cat "$dir/activate.log"
echo "got \"$got\""
[ "$got" = "socket-activated" ]
