#!/bin/bash
# guest_kernel.sh VMCI_VM VSOCK_RUN GUEST_TOOL TEST_PEER CASE [INTERRUPTS]: one case of
# the real guest kernel (Debian's 6.1, vmw_vmci and vSockets, unmodified)
# against the hostpeer named by VMCI_HOSTPEER_SOCKET (with_hostpeer.sh starts
# one). INTERRUPTS (ivshmem or poll) is given to vmci-vm --interrupts; without
# it, vmci-vm's default.
#   context-id      the guest asks for context 42; its kernel's
#                   IOCTL_VM_SOCKETS_GET_LOCAL_CID answers 42
#   dgram-both-ways a guest datagram to a host program under vmci-vsock-run
#                   and the answer back; then the host first, to a guest
#                   that echoes
#   dgram-before-the-bridge
#                   the host sends datagrams to the guest's context from
#                   before the VM starts: those raised before vmci-irq-bridge
#                   ran must not wedge the guest; it echoes one of the later
#   dgram-rtt       200 datagram round trips guest -> host echo -> guest,
#                   timed in the guest (min and median printed)
#   stream-64MiB-guest-to-host
#                   64 MiB guest -> host socat (the guest creates the queue
#                   pair in its pages), checksums compared
#   stream-64MiB-host-to-guest
#                   64 MiB host socat -> guest (the host creates the pair,
#                   the guest attaches with its pages), checksums compared
#   stream-reset-and-half-close
#                   a connect to a port nobody listens on is reset; the guest
#                   shuts down writing and still reads the host's answer
#                   (socat EXEC:sha256sum: the digest of what it sent)
#   socat-both-ways
#                   Debian's own socat inside the guest (--host-program)
#                   against a host socat under vmci-vsock-run: 8 MiB each way,
#                   checksums compared
#   vm-killed-mid-stream
#                   the VM is killed while it streams to a host socat: the
#                   host's socket ends, hostpeer holds nothing of the VM
#                   (its stats through TEST_PEER: no guest context, pair,
#                   doorbell or pending datagram), and the guest's context
#                   is free again (a new VM gets the same --cid)
# Exit 77 (skipped) when QEMU is not installed.
set -u
vm=$1 run=$2 tool=$3 peer=$4 case=$5
interrupts=()
[ -n "${6:-}" ] && interrupts=(--interrupts "$6")
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
here=$(cd "$(dirname "$0")" && pwd)

guest() {  # guest COMMAND...: runs COMMAND in a fresh guest, its output in $dir/guest.out
  "$vm" "${interrupts[@]}" --host-program "$tool" --timeout 90 "$@" >"$dir/console" 2>"$dir/vm.err"
  local status=$?
  tr -d '\r' <"$dir/console" | grep -v '^\[ *[0-9.]*\]' >"$dir/guest.out"
  if [ $status -ne 0 ]; then
    echo "vmci-vm exited $status; console:"; tail -30 "$dir/console"; cat "$dir/vm.err"
  fi
  return $status
}

case $case in
  context-id)
    guest --cid 42 -- vmci-guest-tool cid || exit 1
    got=$(grep -x '[0-9]*' "$dir/guest.out" | tail -1)
    echo "the guest kernel's local CID: $got"
    [ "$got" = 42 ] || { echo "expected 42"; exit 1; }
    ;;
  dgram-both-ways)
    "$run" --host -- python3 "$here/dgram_peer.py" answer 5000 >"$dir/host.out" 2>&1 &
    for _ in $(seq 100); do grep -q ready "$dir/host.out" && break; sleep 0.1; done
    guest -- vmci-guest-tool dgram-ping 2 5000 hello-from-the-guest || exit 1
    wait
    cat "$dir/host.out"
    grep -q 'echo:hello-from-the-guest (from 2:5000)' "$dir/guest.out" \
      || { echo "the guest did not get the answer:"; cat "$dir/guest.out"; exit 1; }
    echo "guest -> host -> guest: $(grep echo: "$dir/guest.out")"
    # The host first: the guest binds 6000 and echoes one datagram.
    guest --cid 43 -- vmci-guest-tool dgram-echo 6000 1 &
    vm_pid=$!
    for _ in $(seq 300); do grep -q ready "$dir/console" 2>/dev/null && break; sleep 0.1; done
    "$run" --host -- python3 "$here/dgram_peer.py" ask 43 6000 hello-from-the-host >"$dir/host2.out" 2>&1
    status=$?
    wait $vm_pid || exit 1
    cat "$dir/host2.out"
    [ $status -eq 0 ] && grep -q "b'hello-from-the-host' from (43, 6000)" "$dir/host2.out" || exit 1
    ;;
  dgram-before-the-bridge)
    "$run" --host -- python3 "$here/dgram_peer.py" flood 47 6000 >"$dir/host.out" 2>&1 &
    host_pid=$!
    for _ in $(seq 100); do grep -q ready "$dir/host.out" && break; sleep 0.1; done
    guest --cid 47 -- vmci-guest-tool dgram-echo 6000 1 || exit 1
    wait $host_pid
    status=$?
    cat "$dir/host.out"
    [ $status -eq 0 ] || exit 1
    ;;
  dgram-rtt)
    "$run" --host -- python3 "$here/dgram_peer.py" echo 5004 200 >"$dir/host.out" 2>&1 &
    for _ in $(seq 100); do grep -q ready "$dir/host.out" && break; sleep 0.1; done
    guest -- vmci-guest-tool dgram-rtt 2 5004 200 || exit 1
    wait
    grep dgram-rtt: "$dir/guest.out" || exit 1
    ;;
  stream-64MiB-guest-to-host)
    "$run" --host -- socat -u VSOCK-LISTEN:5001 CREATE:"$dir/up.bin" >"$dir/host.out" 2>&1 &
    sleep 0.5
    guest -- sh -c 'dd if=/dev/urandom of=/tmp/f bs=1M count=64 2>/dev/null &&
      sha256sum /tmp/f && start=$(cut -d" " -f1 /proc/uptime) &&
      vmci-guest-tool stream-send 2 5001 /tmp/f &&
      echo "stream-send took $start -> $(cut -d" " -f1 /proc/uptime) s (guest uptime)"' || exit 1
    wait
    sent=$(grep -E '^[0-9a-f]{64}  /tmp/f$' "$dir/guest.out" | cut -d' ' -f1)
    got=$(sha256sum <"$dir/up.bin" | cut -d' ' -f1)
    echo "guest -> host: $(stat -c %s "$dir/up.bin") bytes, sent $sent, got $got"
    grep 'stream-send took' "$dir/guest.out"
    [ -n "$sent" ] && [ "$sent" = "$got" ] || exit 1
    ;;
  stream-64MiB-host-to-guest)
    head -c 64M /dev/urandom >"$dir/down.bin"
    want=$(sha256sum <"$dir/down.bin" | cut -d' ' -f1)
    guest --cid 44 -- sh -c 'vmci-guest-tool stream-recv 6000 /tmp/g && sha256sum /tmp/g &&
      echo "size $(wc -c </tmp/g)"' &
    vm_pid=$!
    for _ in $(seq 300); do grep -q ready "$dir/console" 2>/dev/null && break; sleep 0.1; done
    "$run" --host -- socat -u FILE:"$dir/down.bin" VSOCK-CONNECT:44:6000 || exit 1
    wait $vm_pid || exit 1
    got=$(grep -E '^[0-9a-f]{64}  /tmp/g$' "$dir/guest.out" | cut -d' ' -f1)
    echo "host -> guest: 67108864 bytes, sent $want; the guest got $(grep '^size ' "$dir/guest.out"), $got"
    if [ "$want" != "$got" ]; then
      # Where they differ: the guest's bytes at a few offsets, beside the host's.
      echo "MISMATCH"; tail -40 "$dir/console"; exit 1
    fi
    ;;
  stream-reset-and-half-close)
    "$run" --host -- socat VSOCK-LISTEN:5002 EXEC:sha256sum >"$dir/host.out" 2>&1 &
    sleep 0.5
    guest -- sh -c 'echo -n "half-closed" >/tmp/h
      vmci-guest-tool stream-send 2 5999 /tmp/h; echo "closed port: $?"
      vmci-guest-tool stream-send 2 5002 /tmp/h' || exit 1
    wait
    grep -E 'connect|closed port' "$dir/guest.out"
    grep -q 'connect: Connection reset by peer' "$dir/guest.out" || exit 1
    want=$(printf half-closed | sha256sum | cut -d' ' -f1)
    grep -q "^$want" "$dir/guest.out" || { echo "no answer after the half-close"; exit 1; }
    echo "after SHUT_WR the guest read the host's answer: $want"
    ;;
  socat-both-ways)
    command -v socat >/dev/null || { echo "socat missing: skipped"; exit 77; }
    socat_files=(--host-program socat)  # the host's socat, with its libraries
    "$run" --host -- socat -u VSOCK-LISTEN:5100 CREATE:"$dir/from-guest.bin" >"$dir/host.out" 2>&1 &
    sleep 0.5
    guest "${socat_files[@]}" -- sh -c 'dd if=/dev/urandom of=/tmp/f bs=1M count=8 2>/dev/null &&
      sha256sum /tmp/f && socat -u FILE:/tmp/f VSOCK-CONNECT:2:5100' || exit 1
    wait
    sent=$(grep -E '^[0-9a-f]{64}  /tmp/f$' "$dir/guest.out" | cut -d' ' -f1)
    got=$(sha256sum <"$dir/from-guest.bin" | cut -d' ' -f1)
    echo "guest socat -> host socat: $(stat -c %s "$dir/from-guest.bin") bytes, sent $sent, got $got"
    [ -n "$sent" ] && [ "$sent" = "$got" ] || exit 1
    head -c 8M /dev/urandom >"$dir/to-guest.bin"
    want=$(sha256sum <"$dir/to-guest.bin" | cut -d' ' -f1)
    guest --cid 46 "${socat_files[@]}" -- sh -c 'echo listening
      socat -u VSOCK-LISTEN:6100 CREATE:/tmp/g && sha256sum /tmp/g' &
    vm_pid=$!
    for _ in $(seq 300); do grep -q listening "$dir/console" 2>/dev/null && break; sleep 0.1; done
    for _ in $(seq 60); do  # until the guest's socat listens (a reset before)
      "$run" --host -- socat -u FILE:"$dir/to-guest.bin" VSOCK-CONNECT:46:6100 2>/dev/null && break
      sleep 0.5
    done
    wait $vm_pid || exit 1
    got=$(grep -E '^[0-9a-f]{64}  /tmp/g$' "$dir/guest.out" | cut -d' ' -f1)
    echo "host socat -> guest socat: 8388608 bytes, sent $want, got $got"
    [ "$want" = "$got" ] || exit 1
    ;;
  vm-killed-mid-stream)
    "$run" --host -- socat -u VSOCK-LISTEN:5003 CREATE:"$dir/partial.bin" >"$dir/host.out" 2>&1 &
    host_pid=$!
    sleep 0.5
    guest --cid 45 -- sh -c 'echo streaming; while :; do cat /bin/busybox; done |
      vmci-guest-tool stream-send 2 5003 /proc/self/fd/0' &
    vm_pid=$!
    for _ in $(seq 300); do grep -q streaming "$dir/console" 2>/dev/null && break; sleep 0.1; done
    for _ in $(seq 100); do [ "$(stat -c %s "$dir/partial.bin" 2>/dev/null || echo 0)" -gt 1000000 ] && break; sleep 0.1; done
    launcher=$(pgrep -f "vmci-vm .*--cid 45 " | head -1)
    pkill -KILL -P "$launcher" qemu-system-x86 || { echo "no QEMU to kill"; exit 1; }
    wait $vm_pid
    for _ in $(seq 100); do kill -0 $host_pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $host_pid 2>/dev/null; then echo "the host's socat did not see the end"; exit 1; fi
    echo "the host received $(stat -c %s "$dir/partial.bin") bytes, then its stream ended"
    # Then hostpeer holds nothing of the VM: only the stats connection itself.
    want="0 guest_contexts=0 host_connections=1 host_datagram_handles=0 queue_pairs=0 doorbells=0 ring_channels=0 pending_datagrams=0"
    for _ in $(seq 50); do
      held=$(printf 'connect %s host\nstats\nquit\n' "$VMCI_HOSTPEER_SOCKET" | "$peer" | tail -1)
      [ "$held" = "$want" ] && break
      sleep 0.1
    done
    echo "hostpeer's stats after the VM died: $held"
    [ "$held" = "$want" ] || { echo "expected: $want"; exit 1; }
    guest --cid 45 -- vmci-guest-tool cid || exit 1
    grep -qx 45 "$dir/guest.out" || exit 1
    echo "context 45 was free again for a new VM"
    ;;
  *) echo "unknown case $case"; exit 2 ;;
esac
