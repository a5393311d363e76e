#!/bin/bash
# with_hostpeer.sh HOSTPEER COMMAND...: starts the vmci-hostpeer daemon on
# a private socket, runs COMMAND with VMCI_HOSTPEER_SOCKET naming it, and
# stops the daemon; the exit status is COMMAND's.
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
exit $status
