#!/bin/sh
# Runs the echo device and two guests against it, as a user would.
# Usage: run_example.sh ECHO_DEVICE ECHO_GUEST
set -eu
device="$1" guest="$2"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$device" "$work/echo.sock" > "$work/device.log" 2>&1 &
pid=$!
# Ready once it says so (its handles exist then), not once its socket does.
for _ in $(seq 400); do grep -q "serving on" "$work/device.log" && break; sleep 0.05; done
"$guest" "$work/echo.sock" 300 &
first=$!
"$guest" "$work/echo.sock" 300
wait "$first"
cat "$work/device.log"
