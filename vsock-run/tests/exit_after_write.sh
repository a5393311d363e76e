#!/bin/bash
# exit_after_write.sh VSOCK_RUN: a host program that writes and exits at once
# loses nothing. The guest listens and reads only after a second; the host
# connects, writes 1 MiB (more than the queue pair holds, so the launcher
# still has bytes in its socketpair when its program exits) and exits
# without closing. The guest must read all of it: the launcher passes on
# what its program wrote before it ends, and a guest reads what is left in
# its queue after the host has detached. (Not the other way round: a VMCI
# host cannot read a guest's queue once the guest has detached.)
set -u
run=$1
dir=$(mktemp -d)
# Both programs import the guard that refuses to run outside the launcher.
export PYTHONPATH="$(cd "$(dirname "$0")/../guard" && pwd)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$run" --guest --cid 77 -- python3 -c '
import under_launcher
import socket, sys, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 7100)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
time.sleep(1)  # (the writing program may be gone by the end)
got = 0
while True:
    b = c.recv(65536)
    if not b: break
    got += len(b)
print("received", got, flush=True)
' >"$dir/reader.out" 2>&1 &
reader=$!
for _ in $(seq 100); do grep -q ready "$dir/reader.out" && break; sleep 0.05; done
"$run" --host -- python3 -c '
import under_launcher
import os, socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((77, 7100))
s.sendall(b"x" * (1 << 20))
os._exit(0)  # no close, no shutdown: the process just ends
' || { echo "the writer failed"; exit 1; }
wait $reader
cat "$dir/reader.out"
grep -qx "received 1048576" "$dir/reader.out"
