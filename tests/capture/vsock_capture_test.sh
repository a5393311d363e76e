#!/bin/bash
# vsock_capture_test.sh VSOCK_RUN ECHO_PY: a host's echo server and guest
# 77's client, each under `vmci-vsock-run --capture` (against
# $VMCI_HOSTPEER_SOCKET); tshark's own vsock dissector reads both captures:
# the handshake's CONNECT records with their contexts and ports, then the
# client's 4096 bytes written and read back. Exits 77 (skipped) without tshark.
set -euo pipefail
run=$1 echo_py=$2
command -v tshark >/dev/null || { echo "tshark is not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

"$run" --host --capture "$dir/server.pcapng" -- python3 "$echo_py" serve 5000 >"$dir/server" 2>&1 &
server=$!
for _ in $(seq 200); do grep -q listening "$dir/server" 2>/dev/null && break; sleep 0.05; done
"$run" --guest --cid 77 --capture "$dir/client.pcapng" -- python3 "$echo_py" ask 2 5000 4096
wait $server
[ "$(stat -c %a "$dir/client.pcapng")" = 600 ] || { echo "the capture is not mode 0600"; exit 1; }

fields() {  # fields FILE FILTER: op, contexts and ports, bytes of payload
  tshark -r "$1" -Y "$2" -T fields -E separator=' ' -e vsock.op -e vsock.src_cid \
    -e vsock.src_port -e vsock.dst_cid -e vsock.dst_port -e vsock.trans_len -e vsock.payload \
    | awk '{ print $1, $2, $3, $4, $5, $6, length($7) / 2 }'
}
expect() {  # expect WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    printf '%s: expected\n%s\ngot\n%s\n' "$1" "$2" "$3"
    exit 1
  fi
  printf '%s:\n%s\n' "$1" "$3"
}

client=$(fields "$dir/client.pcapng" 'vsock.op == 1' | head -1 | cut -d' ' -f3)
[ -n "$client" ] || { echo "no CONNECT record in the client's capture"; exit 1; }
# The client's side: REQUEST2 out, NEGOTIATE2 in, OFFER out, ATTACH in (op 1,
# CONNECT; the 32-byte packet as the transport header), then its bytes
# written and read back (op 4, PAYLOAD), 4096 each way in all.
expect "the client's handshake" "1 77 $client 2 5000 32 0
1 2 5000 77 $client 32 0
1 77 $client 2 5000 32 0
1 2 5000 77 $client 32 0" "$(fields "$dir/client.pcapng" 'vsock.op == 1')"
sum() { awk -v src="$2" '$2 == src { n += $7 } END { print n + 0 }' <<<"$1"; }
payload=$(fields "$dir/client.pcapng" 'vsock.op == 4')
expect "the client's bytes written, read" "4096 4096" "$(sum "$payload" 77) $(sum "$payload" 2)"
payload=$(fields "$dir/server.pcapng" 'vsock.op == 4')
expect "the server's bytes read, written" "4096 4096" "$(sum "$payload" 77) $(sum "$payload" 2)"
echo "vmci-vsock-run's captures decode with tshark's vsock dissector"
