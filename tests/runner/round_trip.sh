#!/bin/bash
# Plays scenarios with every endpoint traced (VMCI_TRACE) and the runner's
# hostpeer traced (--hostpeer-trace), records each session with
# `vmci-scenario record`, and replays the recording: it must pass too.
# Scenarios that restart hostpeer or reconnect an actor are included: record
# writes restart_hostpeer and reconnect where the traces show them.
#
#   round_trip.sh VMCI_SCENARIO SCENARIO_FILE_OR_DIR...
# $ROUND_TRIP_SKIP: a regular expression of scenario names to leave out
# (the 64 MiB streams make traces of 256 MiB).
set -euo pipefail
scenario=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0 left_out=0
for file in $(find "$@" -name '*.json' | sort); do
  name=$(basename "$file" .json)
  if [ -n "${ROUND_TRIP_SKIP:-}" ] && [[ $name =~ $ROUND_TRIP_SKIP ]]; then
    left_out=$((left_out + 1))
    continue
  fi
  if ! VMCI_TRACE=$dir/$name.jsonl "$scenario" run --hostpeer-trace "$dir/$name.jsonl" "$file" \
      > "$dir/$name.play" 2>&1; then
    echo "FAIL $name: the original did not pass"; tail -3 "$dir/$name.play"
    failed=$((failed + 1)); continue
  fi
  # Skipped (played against a program of its own): nothing was traced.
  if grep -q "1 scenario(s): 0 passed, 0 failed, 1 skipped" "$dir/$name.play"; then
    left_out=$((left_out + 1)); continue
  fi
  if ! "$scenario" record "$dir/$name.jsonl" -o "$dir/$name.replay.json" > "$dir/$name.rec" 2>&1; then
    echo "FAIL $name: record failed"; cat "$dir/$name.rec"
    failed=$((failed + 1)); continue
  fi
  if ! "$scenario" run "$dir/$name.replay.json" > "$dir/$name.replay" 2>&1; then
    echo "FAIL $name: the replay failed"; grep -m3 "FAIL\|warning" "$dir/$name.replay" "$dir/$name.rec" || true
    failed=$((failed + 1)); continue
  fi
  passed=$((passed + 1))
  echo "ok   $name ($(grep -o '[0-9]* step(s) passed' "$dir/$name.replay"))"
done
echo "round trips: $passed passed, $failed failed, $left_out left out (ROUND_TRIP_SKIP, or skipped when played)"
[ "$failed" -eq 0 ]
