#!/bin/bash
# Records a live session (the echo device, a device proxy embedding
# hostpeer, and two echo guests, each in its own process, each traced with
# VMCI_TRACE; hostpeer traced with --trace), turns the traces into a
# scenario with `vmci-scenario record`, replays it against a fresh hostpeer
# and expects it to pass; then changes one recorded byte and expects the
# replay to fail at that step.
#
#   record_replay.sh VMCI_SCENARIO ECHO_DEVICE ECHO_GUEST [MESSAGES]
set -euo pipefail
scenario=$1 device=$2 guest=$3 messages=${4:-200}
dir=$(mktemp -d)
device_pid=
cleanup() {
  [ -n "$device_pid" ] && kill "$device_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

socket=$dir/echo.sock
VMCI_TRACE=$dir/device.jsonl "$device" "$socket" --trace "$dir/hostpeer.jsonl" > "$dir/device.out" &
device_pid=$!
for _ in $(seq 100); do grep -q "serving on" "$dir/device.out" 2>/dev/null && break; sleep 0.05; done
grep -q "serving on" "$dir/device.out" || { echo "echo-device did not start"; exit 1; }

VMCI_TRACE=$dir/guest1.jsonl "$guest" "$socket" "$messages" &
first=$!
VMCI_TRACE=$dir/guest2.jsonl "$guest" "$socket" "$messages"
wait "$first"
# The device sees both guests go before it stops.
for _ in $(seq 100); do [ "$(grep -c "gone" "$dir/device.out")" -ge 2 ] && break; sleep 0.05; done
kill -TERM "$device_pid"
wait "$device_pid"
device_pid=

echo "traces: $(cat "$dir"/*.jsonl | wc -l) lines"
"$scenario" record "$dir"/device.jsonl "$dir"/guest1.jsonl "$dir"/guest2.jsonl "$dir"/hostpeer.jsonl \
  -o "$dir/echo-session.json"
"$scenario" run "$dir/echo-session.json" > "$dir/replay.out" || { tail -20 "$dir/replay.out"; exit 1; }
tail -1 "$dir/replay.out"

# A replay that checks nothing would pass this too: change one byte the
# device echoed and the replay must fail, naming that step.
python3 - "$dir/echo-session.json" "$dir/tampered.json" <<'PY'
import base64, json, sys
s = json.load(open(sys.argv[1]))
steps = s["steps"]
for i, step in enumerate(steps):
    if step.get("op") == "qpair_dequeue" and step.get("actor", "").startswith("vm") and "expect_data" in step:
        data = bytearray(base64.b64decode(step["expect_data"]["base64"]))
        data[0] ^= 0xff
        step["expect_data"]["base64"] = base64.b64encode(bytes(data)).decode()
        print(f"changed the first byte expected at step {i + 1}")
        break
else:
    sys.exit("no guest dequeue with expect_data in the recording")
json.dump(s, open(sys.argv[2], "w"))
PY
if "$scenario" run "$dir/tampered.json" > "$dir/tampered.out"; then
  echo "the tampered replay passed"; exit 1
fi
grep -m1 "first differing offset\|differ" "$dir/tampered.out" || { tail -5 "$dir/tampered.out"; exit 1; }
echo "record and replay: ok"
