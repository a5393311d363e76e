#!/bin/bash
# Starts examples/echo-device (a device proxy embedding hostpeer) and plays
# a scenario against it with `--connect SOCKET --against echo-device`;
# expects it to pass (not to be skipped).
#
#   echo_device_scenario.sh VMCI_SCENARIO ECHO_DEVICE SCENARIO_FILE
set -euo pipefail
scenario=$1 device=$2 file=$3
dir=$(mktemp -d)
device_pid=
cleanup() {
  [ -n "$device_pid" ] && kill "$device_pid" 2>/dev/null && wait "$device_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$device" "$dir/echo.sock" > "$dir/device.out" 2>&1 &
device_pid=$!
# Ready once it says so (its handles exist then), not once its socket does.
for _ in $(seq 200); do grep -q "serving on" "$dir/device.out" 2>/dev/null && break; sleep 0.05; done
grep -q "serving on" "$dir/device.out" || { echo "echo-device did not start"; cat "$dir/device.out"; exit 1; }
status=0
"$scenario" run --connect "$dir/echo.sock" --against echo-device "$file" > "$dir/run.out" 2>&1 || status=$?
cat "$dir/run.out"
echo "--- echo-device:"; cat "$dir/device.out"
[ "$status" -eq 0 ] || { echo "exit status $status, expected 0"; exit 1; }
grep -q "1 scenario(s): 1 passed" "$dir/run.out" || { echo "the scenario did not pass (skipped?)"; exit 1; }
# Without --against the runner does not know what it talks to: skipped.
"$scenario" run --connect "$dir/echo.sock" "$file" > "$dir/skip.out" 2>&1
grep -q "skipped: it is played against echo-device" "$dir/skip.out" || { cat "$dir/skip.out"; exit 1; }
echo "echo-device scenario: ok"
