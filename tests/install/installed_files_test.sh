#!/usr/bin/env bash
# installed_files_test.sh BUILD_DIR SOURCE_DIR: installs the build into a
# temporary prefix and checks what a user finds there besides the
# libraries: the documentation (README.md and docs/*.md, with VMCI.md),
# the examples' sources, the systemd units (system and user), and the
# scenario corpus, which the installed vmci-scenario lists whole (every
# scenario file of the source tree) and plays (the demo scenarios, against
# an embedded hostpeer).
set -uo pipefail
build="$1" src="$2"
work=$(mktemp -d /tmp/vmci-installed-files-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
if ! cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
  cat "$work/install.log"
  exit 1
fi
fail=0
expect_file() {
  if [ -f "$prefix/$1" ]; then echo "installed: $1"; else echo "missing: $1"; fail=1; fi
}
expect_file share/doc/vmci-hostpeer/README.md
expect_file share/doc/vmci-hostpeer/docs/VMCI.md
expect_file share/doc/vmci-hostpeer/docs/FIDELITY.md
expect_file share/doc/vmci-hostpeer/examples/echo-device/echo_device.cc
expect_file share/doc/vmci-hostpeer/examples/vsock-echo/echo_guest.c
for kind in system user; do
  expect_file lib/systemd/$kind/vmci-hostpeer.service
  expect_file lib/systemd/$kind/vmci-hostpeer.socket
done

corpus="$prefix/share/vmci-hostpeer/scenarios"
want=$(cd "$src/scenarios" && find . -name '*.json' -not -path './runner/*' -not -path './tool/*' \
         -not -path './record/*' | wc -l)
have=$(find "$corpus" -name '*.json' | wc -l)
if [ "$want" -ne "$have" ] || [ "$have" -eq 0 ]; then
  echo "corpus: $have scenario files installed, the source tree has $want"
  fail=1
fi
if "$prefix/bin/vmci-scenario" list "$corpus" >"$work/list.out" 2>&1; then
  echo "vmci-scenario list on the installed corpus: $(wc -l <"$work/list.out") lines"
else
  echo "vmci-scenario list on the installed corpus failed:"
  cat "$work/list.out"
  fail=1
fi
if "$prefix/bin/vmci-scenario" run "$corpus/demo" >"$work/run.out" 2>&1; then
  echo "vmci-scenario run on the installed demo scenarios: passed"
else
  echo "vmci-scenario run on the installed demo scenarios failed:"
  cat "$work/run.out"
  fail=1
fi
exit "$fail"
