#!/bin/bash
# lost_when_peer_stalls.sh VSOCK_RUN: when a program exits with bytes the
# launcher still holds and its peer takes nothing for --linger seconds, the
# launcher gives up on them and says so, one line for the stream (its
# addresses, the bytes left, the room in its queue pair), and still exits
# with the program's status. The guest accepts and never reads; the host
# writes without blocking until its socket stays full (the queue pair full,
# the rest in the launcher's socketpair) and exits. Then again with a long
# --linger, ended by SIGINT.
set -u
run=$1
dir=$(mktemp -d)
# Both programs import the guard that refuses to run outside the launcher.
export PYTHONPATH="$(cd "$(dirname "$0")/../guard" && pwd)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$run" --guest --cid 78 -- python3 -c '
import under_launcher
import socket, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 7101)); s.listen(1)
print("ready", flush=True)
held = []
while True:  # never reads
    c, _ = s.accept()
    held.append(c)
    print("accepted", flush=True)
' >"$dir/stalled.out" 2>&1 &
for _ in $(seq 100); do grep -q ready "$dir/stalled.out" && break; sleep 0.05; done
writer='
import under_launcher
import os, socket, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((78, 7101))
s.setblocking(False)
sent = 0
full = 0  # refused in a row, 0.1 s apart: the queue pair is full and so is the rest
while full < 5:
    try:
        sent += s.send(b"x" * 65536)
        full = 0
    except BlockingIOError:
        full += 1
        time.sleep(0.1)
print("wrote", sent, flush=True)
os._exit(3)  # no close: the process just ends
'
# After a launcher ran the writer: what it printed, and its exit status,
# which must be the writer's (3). Sets elapsed_ms since $start.
ended_with_the_programs_status() {
  local status=$1
  elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  cat "$dir/writer.out" "$dir/writer.err"
  echo "exit status $status after $elapsed_ms ms"
  [ "$status" = 3 ] || { echo "the launcher did not exit with its program's status"; exit 1; }
}
start=$(date +%s%N)
"$run" --host --linger 1 -- python3 -c "$writer" >"$dir/writer.out" 2>"$dir/writer.err"
ended_with_the_programs_status $?
grep -q '^vmci-vsock-run: its peer took nothing in 1 s, so what the program wrote is lost: ' \
  "$dir/writer.err" || { echo "no line about the lost bytes"; exit 1; }
[ "$(grep -c 'is lost: ' "$dir/writer.err")" = 1 ] || { echo "not one line"; exit 1; }
grep -q 'is lost: 2:[0-9]* -> 78:7101: [0-9]* bytes unread' "$dir/writer.err" ||
  { echo "the line does not name the stream"; exit 1; }
grep -q accepted "$dir/stalled.out" || { echo "the guest never accepted"; exit 1; }
# It gave up after about --linger, not the default 10 s.
[ "$elapsed_ms" -lt 8000 ] || { echo "it waited $elapsed_ms ms"; exit 1; }

# A signal ends the wait at once: with --linger 60, SIGINT once the program
# has exited.
: >"$dir/writer.out"
start=$(date +%s%N)
"$run" --host --linger 60 -- python3 -c "$writer" >"$dir/writer.out" 2>"$dir/writer.err" &
launcher=$!
for _ in $(seq 200); do grep -q wrote "$dir/writer.out" && break; sleep 0.05; done
sleep 0.5
kill -INT $launcher
wait $launcher
ended_with_the_programs_status $?
grep -q '^vmci-vsock-run: stopped by a signal, so what the program wrote is lost: 2:' \
  "$dir/writer.err" || { echo "no line about the bytes a signal gave up"; exit 1; }
[ "$elapsed_ms" -lt 20000 ] || { echo "it waited $elapsed_ms ms"; exit 1; }
