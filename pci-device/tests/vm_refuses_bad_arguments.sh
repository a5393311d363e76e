#!/bin/bash
# vm_refuses_bad_arguments.sh VMCI_VM: vmci-vm refuses what it cannot do
# before it builds an image or boots anything, each time with a message that
# names the argument, and exit status 2 (command line) or 125 (refused).
set -u
vm=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0

expect() {  # expect STATUS TEXT ARGS...: vmci-vm ARGS exits STATUS, stderr has TEXT
  local want=$1 text=$2
  shift 2
  timeout 20 "$vm" "$@" >"$dir/out" 2>"$dir/err" </dev/null
  local got=$?
  if [ "$got" -ne "$want" ] || ! grep -qF -- "$text" "$dir/err"; then
    echo "FAIL: vmci-vm $* -> $got (want $want), stderr:"; cat "$dir/err"; failed=1
  else
    echo "ok: vmci-vm $* -> $got: $(head -1 "$dir/err")"
  fi
}

expect 2 "--interrupts" --interrupts bogus -- true
expect 2 "--initrd replaces" --initrd /dev/null -- true
expect 125 "not found on this machine" --host-program no-such-program-here -- true
printf '#!/bin/sh\necho hi\n' >"$dir/script.sh"
expect 125 "not a 64-bit ELF program" --host-program "$dir/script.sh" -- true
expect 125 "--file $dir/missing: no such file" --file "$dir/missing" -- true
if [ ! -e /dev/kvm ]; then
  expect 125 "leave --kvm out" --kvm -- true
fi
exit $failed
