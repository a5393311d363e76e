#!/bin/bash
# Records a live session of the echo device and one echo guest (each its
# own process, traced), writes the guest alone with `record --actor vm1`,
# and replays that guest against a new echo-device process with
# `run --connect`: it must pass. Against a bare hostpeer daemon, where no
# device answers, the same replay must fail: it really talks to the proxy.
#
#   record_one_actor.sh VMCI_SCENARIO ECHO_DEVICE ECHO_GUEST VMCI_HOSTPEER [MESSAGES]
set -euo pipefail
scenario=$1 device=$2 guest=$3 daemon=$4 messages=${5:-50}
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
wait_for() {  # FILE TEXT
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "'$2' never appeared in $1"; cat "$1"; exit 1
}

VMCI_TRACE=$dir/device.jsonl "$device" "$dir/rec.sock" --trace "$dir/hostpeer.jsonl" > "$dir/device.out" &
pids+=($!)
wait_for "$dir/device.out" "serving on"
VMCI_TRACE=$dir/guest.jsonl "$guest" "$dir/rec.sock" "$messages"
wait_for "$dir/device.out" "gone"
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true; pids=()

"$scenario" record "$dir"/device.jsonl "$dir"/guest.jsonl "$dir"/hostpeer.jsonl --actor vm1 \
  -o "$dir/guest-alone.json"
python3 - "$dir/guest-alone.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
actors = [a["name"] for a in s["actors"]]
assert actors == ["vm1"], actors
assert "hostpeer" not in s
def ops(steps):
    for st in steps:
        yield st
        yield from ops(st.get("steps", []))
assert all(st.get("actor", "vm1") == "vm1" for st in ops(s["steps"])), "a step of another actor"
print(f"the guest alone: {len(s['steps'])} step(s)")
PY

# A new echo-device process: the recorded guest is played against it.
"$device" "$dir/new.sock" > "$dir/new.out" &
pids+=($!)
wait_for "$dir/new.out" "serving on"
"$scenario" run --connect "$dir/new.sock" "$dir/guest-alone.json" > "$dir/replay.out" 2>&1 ||
  { tail -20 "$dir/replay.out"; echo "the guest's replay against echo-device failed"; exit 1; }
tail -1 "$dir/replay.out"
grep -q "1 scenario(s): 1 passed" "$dir/replay.out"

# Against hostpeer with no device behind it, the guest's OPEN goes nowhere.
"$daemon" --socket "$dir/bare.sock" --log-level warn 2> "$dir/daemon.log" &
pids+=($!)
for _ in $(seq 200); do [ -S "$dir/bare.sock" ] && break; sleep 0.05; done
if "$scenario" run --connect "$dir/bare.sock" "$dir/guest-alone.json" > "$dir/bare.out" 2>&1; then
  echo "the guest's replay passed without the device"; exit 1
fi
grep -m1 "FAIL" "$dir/bare.out"
echo "record --actor: ok"
