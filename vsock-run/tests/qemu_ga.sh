#!/bin/bash
# qemu_ga.sh VMCI_VSOCK_RUN: QEMU's guest agent listens on vSockets in guest
# 77 (qemu-ga -m vsock-listen), and the host asks it guest-ping and
# guest-info through socat, each under vmci-vsock-run. Skipped (77) where
# qemu-ga or socat is not installed.
set -euo pipefail
run=$1
command -v qemu-ga >/dev/null && command -v socat >/dev/null ||
  { echo "no qemu-ga or socat: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$run" --guest --cid 77 -- timeout 30 qemu-ga -m vsock-listen -p 77:1234 -t "$dir" \
  -f "$dir/qga.pid" >"$dir/qga.log" 2>&1 &
for tries in $(seq 50); do
  printf '{"execute":"guest-ping"}\n{"execute":"guest-info"}\n' |
    timeout 10 "$run" --host -- socat -t 2 - VSOCK-CONNECT:77:1234 >"$dir/answers" 2>"$dir/socat.err" &&
    [ -s "$dir/answers" ] && break
  [ "$tries" -lt 50 ] || { cat "$dir/socat.err" "$dir/qga.log"; exit 1; }
  sleep 0.1  # until qemu-ga listens
done
echo "guest-ping: $(head -1 "$dir/answers")"
echo "guest-info: $(sed -n 2p "$dir/answers" | cut -c1-60)..."
[ "$(head -1 "$dir/answers")" = '{"return": {}}' ]
grep -q '"name": "guest-ping"' "$dir/answers"
