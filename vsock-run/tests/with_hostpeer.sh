#!/bin/bash
# with_hostpeer.sh HOSTPEER COMMAND...: starts the vmci-hostpeer daemon on
# a private socket, runs COMMAND with VMCI_HOSTPEER_SOCKET naming it, and
# stops the daemon; the exit status is COMMAND's. When COMMAND fails,
# hostpeer's warnings follow its output.
set -u
daemon=$1
shift
dir=$(mktemp -d)
"$daemon" --socket "$dir/hp.sock" --log-level warn 2>"$dir/hostpeer.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/hp.sock" ] && break; sleep 0.05; done
export VMCI_HOSTPEER_SOCKET=$dir/hp.sock
"$@"
status=$?
if ! kill -0 $pid 2>/dev/null; then
  echo "with_hostpeer.sh: hostpeer died:"; cat "$dir/hostpeer.log"; exit 1
fi
if [ $status -ne 0 ] && [ $status -ne 77 ] && [ -s "$dir/hostpeer.log" ]; then
  echo "with_hostpeer.sh: the command exited $status; hostpeer's warnings:"; cat "$dir/hostpeer.log"
fi
exit $status
