#!/bin/bash
# nbdkit_copy.sh VMCI_VSOCK_RUN: nbdkit --vsock serves a 64 MiB image from
# guest 77 and nbdcopy copies it out from the host (nbd+vsock://77:PORT),
# each under vmci-vsock-run; the copy must equal the image. Skipped (77)
# where nbdkit or nbdcopy is not installed.
set -euo pipefail
run=$1
command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null ||
  { echo "no nbdkit or nbdcopy: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c $((64 * 1024 * 1024)) /dev/urandom >"$dir/disk.img"
"$run" --guest --cid 77 -- timeout 60 nbdkit -f --vsock -p 10809 file "$dir/disk.img" \
  >"$dir/nbdkit.log" 2>&1 &
for tries in $(seq 50); do
  timeout 30 "$run" --host -- nbdcopy "nbd+vsock://77:10809" "$dir/copy.img" 2>"$dir/copy.err" && break
  [ "$tries" -lt 50 ] || { cat "$dir/copy.err" "$dir/nbdkit.log"; exit 1; }
  sleep 0.1  # until nbdkit listens
done
cmp "$dir/disk.img" "$dir/copy.img"
echo "nbdcopy copied $(stat -c %s "$dir/copy.img") bytes from nbdkit on guest 77: identical"
