#!/usr/bin/env bash
# systemd_units_test.sh SERVICE SOCKET VMCI_HOSTPEER VMCI_TEST_PEER: checks
# the systemd units as installed (SERVICE is the configured .service, SOCKET
# the .socket), with the service's ExecStart pointed at the build's daemon:
# - `systemd-analyze verify` accepts them as system and as user units, and
#   says nothing at all about them (a warning fails too);
# - what they describe works: the daemon started as ExecStart says, by
#   systemd-socket-activate on the socket ListenStream names (%t being a
#   temporary directory), serves a guest that connects.
# Exits 77 (skipped) when neither systemd-analyze nor systemd-socket-activate
# is installed.
set -uo pipefail
service=$1 socket=$2 hostpeer=$3 test_peer=$4
have_analyze=0 have_activate=0
command -v systemd-analyze >/dev/null && have_analyze=1
command -v systemd-socket-activate >/dev/null && have_activate=1
if [ $have_analyze -eq 0 ] && [ $have_activate -eq 0 ]; then
  echo "neither systemd-analyze nor systemd-socket-activate: skipped"
  exit 77
fi

work=$(mktemp -d /tmp/vmci-units-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fail=0

# The installed ExecStart, with the program replaced by the build's.
exec_line=$(sed -n 's/^ExecStart=//p' "$service")
[ -n "$exec_line" ] || { echo "no ExecStart= in $service"; exit 1; }
read -r -a exec_words <<<"$exec_line"
exec_words[0]=$hostpeer
mkdir -p "$work/units" "$work/runtime"
sed "s|^ExecStart=.*|ExecStart=${exec_words[*]}|" "$service" > "$work/units/vmci-hostpeer.service"
cp "$socket" "$work/units/vmci-hostpeer.socket"

if [ $have_analyze -eq 1 ]; then
  for scope in --system --user; do
    out=$(cd "$work/units" && XDG_RUNTIME_DIR="$work/runtime" systemd-analyze $scope verify \
            --man=no vmci-hostpeer.socket vmci-hostpeer.service 2>&1)
    status=$?
    if [ $status -ne 0 ] || grep -q vmci-hostpeer <<<"$out"; then
      echo "systemd-analyze $scope verify (exit $status):"
      echo "$out"
      # A user manager cannot start in some containers; only a complaint
      # about the units themselves counts there.
      if [ $scope = --system ] || grep -q vmci-hostpeer <<<"$out"; then fail=1; fi
    else
      echo "systemd-analyze $scope verify: clean"
    fi
  done
else
  echo "no systemd-analyze: verify not run"
fi

if [ $have_activate -eq 1 ]; then
  listen=$(sed -n 's/^ListenStream=//p' "$socket")
  path=${listen//%t/$work/runtime}
  systemd-socket-activate -l "$path" "${exec_words[@]}" 2>"$work/daemon.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -S "$path" ] && break; sleep 0.05; done
  answer=$(echo "connect $path guest" | timeout 20 "$test_peer" | head -n 1)
  if [ "$answer" = "0 16" ]; then
    echo "a guest connected through the socket unit's ListenStream ($path): $answer"
  else
    echo "a guest connecting to $path got '$answer'; the daemon said:"
    cat "$work/daemon.log"
    fail=1
  fi
else
  echo "no systemd-socket-activate: the units' socket activation not run"
fi
exit $fail
