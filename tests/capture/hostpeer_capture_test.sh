#!/bin/bash
# hostpeer_capture_test.sh HOSTPEER TEST_PEER VSOCK_RUN ECHO_PY VMCI_LUA:
# runs `vmci-hostpeer --capture` while a guest sends a host one datagram and
# a guest's vSockets client talks to a host's server, then reads the capture
# back with tshark and the shipped dissector: the datagram's source,
# destination and size, the vSockets handshake's packet types, ports and
# sizes in order, and the queue pair's life (created by the guest, attached
# by the host, detached by both). Exits 77 (skipped) without tshark.
set -euo pipefail
hostpeer=$1 test_peer=$2 run=$3 echo_py=$4 lua=$5
command -v tshark >/dev/null || { echo "tshark is not installed: skipped"; exit 77; }
dir=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
capture=$dir/hostpeer.pcapng

"$hostpeer" --socket "$dir/hp.sock" --capture "$capture" --log-level warn 2>"$dir/hostpeer.log" &
hostpeer_pid=$!
for _ in $(seq 200); do [ -S "$dir/hp.sock" ] && break; sleep 0.05; done
[ -S "$dir/hp.sock" ] || { echo "hostpeer did not start:"; cat "$dir/hostpeer.log"; exit 1; }
[ "$(stat -c %a "$capture")" = 600 ] || { echo "the capture is not mode 0600"; exit 1; }

# One datagram: guest 77 sends "hello" to the host's handle 2:4242.
# Each test peer reads commands from a FIFO and answers into a file.
. "$(dirname "$0")/../lib/test_peer_fifo.sh"
start_peer host
start_peer guest
answers host "connect $dir/hp.sock host" "0 2"
answers host "create 4242" "0 2:4242"
answers guest "connect $dir/hp.sock guest 77" "0 77"
answers guest "create 4243" "0 77:4243"
answers guest "send 77:4243 2:4242 68656c6c6f" 29
answers host "next 5000" "datagram 2:4242 77:4243 68656c6c6f"
echo quit >&"$guest_fd"
echo quit >&"$host_fd"
wait "$guest_pid" "$host_pid" 2>/dev/null || true

# One vSockets connection: guest 77's client to the host's server on port 5000.
"$run" --socket "$dir/hp.sock" --host -- python3 "$echo_py" serve 5000 >"$dir/server" 2>&1 &
server=$!
for _ in $(seq 200); do grep -q listening "$dir/server" 2>/dev/null && break; sleep 0.05; done
"$run" --socket "$dir/hp.sock" --guest --cid 77 -- python3 "$echo_py" ask 2 5000 4096
wait $server
kill $hostpeer_pid
wait $hostpeer_pid || true

fields() {  # fields FILTER FIELD...: one line per record that FILTER keeps
  local filter=$1
  shift
  local args=()
  for f in "$@"; do args+=(-e "$f"); done
  tshark -X lua_script:"$lua" -r "$capture" -Y "$filter" -T fields -E separator=' ' \
    -E occurrence=f "${args[@]}"
}
expect() {  # expect WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    printf '%s: expected\n%s\ngot\n%s\n' "$1" "$2" "$3"
    exit 1
  fi
  printf '%s:\n%s\n' "$1" "$3"
}

# Kind (4 send, 5 deliver), the record's context, source, destination, payload
# size and result.
expect "the datagram" "5 2 77 4243 2 4242 5 0
4 77 77 4243 2 4242 5 29" \
  "$(fields 'vmci.dg.dst.resource == 4242' vmci.kind vmci.cid vmci.dg.src.context \
       vmci.dg.src.resource vmci.dg.dst.context vmci.dg.dst.resource vmci.dg.payload_size \
       vmci.result)"

# The test peers' hellos: the host (role 2) got context 2, the guest (role
# 1) the 77 it asked for.
expect "the admissions" "2 2 SUCCESS
1 77 SUCCESS" "$(fields 'vmci.kind == 2' vmci.role vmci.cid vmci.result_name | head -2)"

# The handshake as delivered (sources as routing stamped them): type, source
# and destination contexts, source and
# destination ports (C: the client's port, whatever it was given), size
# (REQUEST2 and NEGOTIATE2 carry the buffer size).
expect "the vSockets handshake" "11 77 2 C 5000 262144
12 2 77 5000 C 262144
3 77 2 C 5000
4 2 77 5000 C" \
  "$(fields 'vmci.kind == 5 && vmci.vsock.type in {11, 12, 3, 4}' vmci.vsock.type \
       vmci.dg.src.context vmci.dg.dst.context vmci.vsock.src_port vmci.vsock.dst_port \
       vmci.vsock.size \
     | awk 'NR == 1 { client = $4 } { for (i = 4; i <= 5; ++i) if ($i == client) $i = "C"; print }' \
     | sed -E 's/ +$//')"

# The pair's life, from its alloc on (kind, context, hypercall, sizes, result,
# event; comma-separated): the guest's QUEUEPAIR_ALLOC creates it (reported
# as the broker's request, 7, then as the hypercall, 4), the guest is told
# of the host's attach (QP_PEER_ATTACH, 3) before the host's request is
# reported; then one launcher ends first (whichever: 3, removed, which
# detaches its end), the other end is told (QP_PEER_DETACH, 4) and its
# launcher ends too.
life=$(tshark -X lua_script:"$lua" -r "$capture" -T fields -E separator=, -E occurrence=f \
         -Y 'vmci.kind in {3, 7, 8} || (vmci.kind == 4 && vmci.hypercall in {10, 11}) || vmci.event in {3, 4}' \
         -e vmci.kind -e vmci.cid -e vmci.hypercall -e vmci.produce_size -e vmci.consume_size \
         -e vmci.result_name -e vmci.event | awk '/^7,/ { on = 1 } on')
start="7,77,,262144,262144,SUCCESS,
4,77,10,262144,262144,SUCCESS,
5,77,,,,SUCCESS,3
7,2,,262144,262144,SUCCESS,"
ends() { printf '3,%s,,,,SUCCESS,\n5,%s,,,,SUCCESS,4\n3,%s,,,,SUCCESS,' "$1" "$2" "$2"; }
# The end that is told may detach its own before its launcher ends (8; a
# guest's is also its QUEUEPAIR_DETACH hypercall, 4 with 11).
detach=$(grep -E '^(8,|4,[0-9]+,11,)' <<<"$life" || true)
life=$(grep -vE '^(8,|4,[0-9]+,11,)' <<<"$life")
if [ "$life" = "$start
$(ends 77 2)" ]; then
  expect "the queue pair's life (the guest ended first)" "$start
$(ends 77 2)" "$life"
  survivor=2
else
  expect "the queue pair's life (the host ended first)" "$start
$(ends 2 77)" "$life"
  survivor=77
fi
if [ -n "$detach" ]; then
  if [ $survivor = 77 ]; then
    expect "the guest's own detach" "8,77,,,,SUCCESS,
4,77,11,,,SUCCESS," "$detach"
  else
    expect "the host's own detach" "8,2,,,,SUCCESS," "$detach"
  fi
fi
# Bad records: the dissector marks them and tshark goes on (exit 0): not a
# record, a body past the packet's end, a send shorter than a datagram
# header, an unknown kind (shown as such).
python3 - "$dir/bad.pcapng" <<'PY'
import struct, sys
def block(t, body):
    body += b'\0' * ((-len(body)) % 4)
    n = len(body) + 12
    return struct.pack('<II', t, n) + body + struct.pack('<I', n)
out = block(0x0A0D0D0A, struct.pack('<IHHq', 0x1A2B3C4D, 1, 0, -1))
out += block(1, struct.pack('<HHI', 147, 0, 0))
def packet(data):
    return block(6, struct.pack('<IIIII', 0, 0, 0, len(data), len(data)) + data)
hdr = lambda kind, body_size: b'VMCI' + struct.pack('<BBHQIIq', 1, kind, 32, 1, 77, body_size, 0)
out += packet(b'not a record at all')
out += packet(hdr(4, 100) + b'\0' * 10)           # body_size past the end
out += packet(hdr(4, 10) + b'\0' * 10)            # a send shorter than a datagram header
out += packet(hdr(99, 0))                          # an unknown kind
open(sys.argv[1], 'wb').write(out)
PY
expect "bad records" "1  Not a vmci-hostpeer capture record
2 4 Not a vmci-hostpeer capture record
3 4 Not a vmci-hostpeer capture record
4 99 " "$(tshark -X lua_script:"$lua" -r "$dir/bad.pcapng" -T fields -E separator=' ' \
             -e frame.number -e vmci.kind -e _ws.expert.message)"
echo "hostpeer's capture decodes as expected"
