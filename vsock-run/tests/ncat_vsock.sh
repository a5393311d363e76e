#!/bin/bash
# ncat_vsock.sh VMCI_VSOCK_RUN: Ncat's --vsock, each ncat under
# vmci-vsock-run (against $VMCI_HOSTPEER_SOCKET): a stream whose server
# hands the connection to an exec'd child (-e /bin/cat: the socket crosses
# fork and exec) and echoes a line back; then -u datagrams, guest to host.
set -euo pipefail
run=$1
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

wait_listening() {  # FILE
  for _ in $(seq 100); do grep -q "Listening" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "ncat did not listen:"; cat "$1"; return 1
}

"$run" --host -- timeout 20 ncat -v --vsock -l 5000 -e /bin/cat 2>"$dir/stream.err" &
wait_listening "$dir/stream.err"
# stdin stays open a moment: ncat closes at the end of its input.
got=$( (echo "through cat and back"; sleep 1) | "$run" --guest -- timeout 10 ncat --vsock 2 5000)
echo "stream (-e /bin/cat): got \"$got\""
[ "$got" = "through cat and back" ]

"$run" --host -- timeout 20 ncat -v --vsock -u -l 6000 >"$dir/datagrams" 2>"$dir/dgram.err" &
server=$!
wait_listening "$dir/dgram.err"
(echo "datagram one"; sleep 0.3; echo "datagram two"; sleep 0.3) |
  "$run" --guest -- timeout 10 ncat --vsock -u 2 6000
for _ in $(seq 100); do [ "$(wc -l <"$dir/datagrams")" -ge 2 ] && break; sleep 0.05; done
kill $server 2>/dev/null || true
echo "datagrams (-u): got $(tr '\n' '|' <"$dir/datagrams")"
[ "$(cat "$dir/datagrams")" = "$(printf 'datagram one\ndatagram two')" ]
