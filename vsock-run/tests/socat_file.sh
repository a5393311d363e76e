#!/bin/bash
# socat_file.sh VMCI_VSOCK_RUN: socat moves a 64 MiB file over a vSockets
# stream, guest to host and host to guest, each socat under vmci-vsock-run
# (against $VMCI_HOSTPEER_SOCKET); the checksums must match.
set -euo pipefail
run=$1
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c $((64 * 1024 * 1024)) /dev/urandom >"$dir/in"
want=$(sha256sum <"$dir/in" | cut -d' ' -f1)

# move SERVER_ROLE CLIENT_ROLE CLIENT_CID: the server receives into out.
move() {
  rm -f "$dir/out"
  "$run" $1 -- socat -u VSOCK-LISTEN:7000 "CREATE:$dir/out" 2>"$dir/server.err" &
  local server=$!
  local tries=0
  until "$run" $2 -- socat -u "OPEN:$dir/in" "VSOCK-CONNECT:$3:7000" 2>"$dir/client.err"; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { cat "$dir/client.err" "$dir/server.err"; return 1; }
    sleep 0.1  # until the server listens
  done
  wait $server
  local got
  got=$(sha256sum <"$dir/out" | cut -d' ' -f1)
  echo "$1 <- $2: $(stat -c %s "$dir/out") bytes, sha256 ${got:0:16}"
  [ "$got" = "$want" ]
}
move --host "--guest --cid 77" 2
move "--guest --cid 78" --host 78
