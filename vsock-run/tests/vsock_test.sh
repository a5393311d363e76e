#!/bin/bash
# vsock_test.sh VMCI_VSOCK_RUN VERSION DIRECTION: Linux's own vsock test
# suite (tools/testing/vsock/vsock_test of Debian's linux-source-VERSION,
# built and cached by scripts/lib/vsock-test-build) between two programs
# under vmci-vsock-run, against $VMCI_HOSTPEER_SOCKET. DIRECTION is
# host-server (the server a host connection, the client guest 77) or
# guest-server (the server guest 77, the client a host connection); the
# control channel is TCP on 127.0.0.1. Exits 77 (skipped) when vsock_test
# cannot be built here.
#
# The skip list, with the reason for each, is docs/FIDELITY.md's
# "vsock_test" table: SEQPACKET (VMCI has none), zerocopy, virtio's credit
# update (VMCI has none; a connected socket's buffer size is its queue
# pair's), poll with
# SO_RCVLOWAT (VMCI's qstate protocol sends no WROTE into a queue that is
# not empty), and the cases that read, on the host, what a guest wrote just
# before it closed (a host cannot read a guest's queue once the guest has
# detached: Linux's vmci_transport_handle_detach says so).
set -u
run=$1 version=$2 direction=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if ! dir=$("$repo/scripts/lib/vsock-test-build" "$version" 2>"${TMPDIR:-/tmp}/vsock-test-build.$$.log" | tail -1) ||
   [ ! -x "$dir/vsock_test" ]; then
  echo "vsock_test $version could not be built here; skipped:"; cat "${TMPDIR:-/tmp}/vsock-test-build.$$.log"
  rm -f "${TMPDIR:-/tmp}/vsock-test-build.$$.log"
  exit 77
fi
rm -f "${TMPDIR:-/tmp}/vsock-test-build.$$.log"
vsock_test=$dir/vsock_test

skip=(6 7 8 9 10)  # SEQPACKET 6-9; poll() + SO_RCVLOWAT 10
if [ "$version" != 6.1 ]; then
  skip+=(11 13 15 25 18 19 20 22 23)  # SEQPACKET; MSG_ZEROCOPY; virtio's credit update
fi
case $direction in
  host-server) skip+=(2 4 5) ;;  # the guest client writes, closes; the host reads after
  guest-server) skip+=(3 4) ;;   # the guest server writes, closes; the host reads after
  *) echo "unknown direction $direction"; exit 2 ;;
esac
args=()
for id in "${skip[@]}"; do args+=("--skip=$id"); done

port=$((20000 + $$ % 40000))
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
if [ "$direction" = host-server ]; then
  server=(--host) client=(--guest --cid 77) server_peer=77 client_peer=2
else
  server=(--guest --cid 77) client=(--host) server_peer=2 client_peer=77
fi
"$run" "${server[@]}" -- "$vsock_test" --mode=server --control-port=$port \
  --peer-cid=$server_peer "${args[@]}" >"$out/server" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q "listening" "$out/server" && break; sleep 0.05; done
timeout 100 "$run" "${client[@]}" -- "$vsock_test" --mode=client --control-host=127.0.0.1 \
  --control-port=$port --peer-cid=$client_peer "${args[@]}" >"$out/client" 2>&1
client_status=$?
wait $server_pid
server_status=$?
echo "== vsock_test $version ($dir), $direction; client (exit $client_status):"
cat "$out/client"
echo "== server (exit $server_status):"
cat "$out/server"
[ $client_status -eq 0 ] && [ $server_status -eq 0 ]
