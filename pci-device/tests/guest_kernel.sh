#!/bin/bash
# guest_kernel.sh VMCI_VM VSOCK_RUN GUEST_TOOL CASE: one case of the real
# guest kernel (Debian's 6.1, vmw_vmci and vSockets, unmodified) against the
# hostpeer named by VMCI_HOSTPEER_SOCKET (with_hostpeer.sh starts one).
#   context-id      the guest asks for context 42; its kernel's
#                   IOCTL_VM_SOCKETS_GET_LOCAL_CID answers 42
#   dgram-both-ways a guest datagram to a host program under vmci-vsock-run
#                   and the answer back; then the host first, to a guest
#                   that echoes
# Exit 77 (skipped) when QEMU is not installed.
set -u
vm=$1 run=$2 tool=$3 case=$4
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
here=$(cd "$(dirname "$0")" && pwd)

guest() {  # guest COMMAND...: runs COMMAND in a fresh guest, its output in $dir/guest.out
  "$vm" --file "$tool" --timeout 90 "$@" >"$dir/console" 2>"$dir/vm.err"
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
  *) echo "unknown case $case"; exit 2 ;;
esac
