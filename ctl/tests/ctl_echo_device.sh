#!/bin/bash
# ctl_echo_device.sh VMCI_CTL ECHO_DEVICE ECHO_GUEST: the echo-device
# example (a proxy embedding hostpeer, with a socket) and two of its guests
# streaming; vmci-ctl, a third connection, must show both guests, their two
# pairs attached with the device, and the device's doorbells and handle, as
# JSON and as tables in a real terminal (tmux); then a bad view is refused.
set -u
ctl=$1 device=$2 guest=$3
command -v tmux >/dev/null || { echo "tmux missing: skipped"; exit 77; }
dir=$(mktemp -d)
# A tmux server of this test's own (-L), so that nothing else's sessions matter.
tm() { tmux -L "vmci-ctl-test-$$" "$@"; }
trap 'tm kill-server 2>/dev/null; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$device" "$dir/echo.sock" >"$dir/device.log" 2>&1 &
for _ in $(seq 400); do grep -q "serving on" "$dir/device.log" && break; sleep 0.05; done
"$guest" "$dir/echo.sock" 100000000 >"$dir/guest1.log" 2>&1 &
"$guest" "$dir/echo.sock" 100000000 >"$dir/guest2.log" 2>&1 &

# Both pairs attached, as JSON.
for _ in $(seq 100); do
  "$ctl" --socket "$dir/echo.sock" --json >"$dir/snap.json" 2>"$dir/ctl.err" || fail "vmci-ctl: $(cat "$dir/ctl.err")"
  [ "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(p["state"]=="attached-mem" for p in s["pairs"]))' "$dir/snap.json")" = 2 ] && break
  sleep 0.1
done
python3 - "$dir/snap.json" <<'PY' || exit 1
import json, re, sys
s = json.load(open(sys.argv[1]))
guests = [c for c in s["contexts"] if c["role"] == "guest"]
hosts = [c for c in s["contexts"] if c["role"] == "host"]
assert s["format"] == 1 and re.fullmatch(r"2\.\d+", s["protocol"]), s
assert len(guests) == 2, s["contexts"]
assert len(hosts) == 2, hosts  # the device's own endpoint, and vmci-ctl
assert all(g["pid"] > 0 and g["uid"] >= 0 for g in guests), guests
assert all(g["datagrams_sent"] >= 1 for g in guests), guests  # each opened its session
pairs = s["pairs"]
assert len(pairs) == 2 and all(p["state"] == "attached-mem" for p in pairs), pairs
assert sorted(p["creator_cid"] for p in pairs) == sorted(g["cid"] for g in guests), pairs
assert all(p["attacher_cid"] == 2 for p in pairs), pairs
assert all(p["creator_to_attacher"]["size"] > 0 for p in pairs), pairs
assert s["stats"]["queue_pairs"] == 2 and s["stats"]["guest_contexts"] == 2, s["stats"]
assert len(s["doorbells"]) >= 2, s["doorbells"]
assert len(s["handles"]) >= 1, s["handles"]
print("json: %d guests %s, %d pairs attached-mem, %d doorbells, %d handles" % (
    len(guests), [g["cid"] for g in guests], len(pairs), len(s["doorbells"]), len(s["handles"])))
PY

# The tables, in a real terminal.
tm new-session -d -s tables -x 160 -y 40 \
  "'$ctl' --socket '$dir/echo.sock' contexts; '$ctl' --socket '$dir/echo.sock' pairs; sleep 60"
for _ in $(seq 50); do tm capture-pane -p -t tables >"$dir/screen" 2>/dev/null; grep -q HANDLE "$dir/screen" && grep -q attached "$dir/screen" && break; sleep 0.1; done
cat "$dir/screen" | sed '/^$/d'
grep -q '^CONN  *CID  *ROLE  *PID  *UID' "$dir/screen" || fail "no contexts header on the terminal"
[ "$(grep -cE '^[0-9]+ +[0-9]+ +guest ' "$dir/screen")" = 2 ] || fail "not two guest rows"
[ "$(grep -cE ' attached-mem .* hostpeer ' "$dir/screen")" = 2 ] || fail "not two attached pairs"

# watch redraws (twice here) and ends. (The first session stays: its
# server then stays up for this one.)
tm new-session -d -s watch -x 160 -y 40 \
  "'$ctl' --socket '$dir/echo.sock' watch doorbells --interval 0.2 --count 3; echo watch-ended; sleep 60"
for _ in $(seq 50); do tm capture-pane -p -t watch >"$dir/screen" 2>/dev/null; grep -q watch-ended "$dir/screen" && break; sleep 0.1; done
grep -q '^vmci-ctl watch doorbells' "$dir/screen" || fail "watch drew no header"
grep -q watch-ended "$dir/screen" || fail "watch --count 3 did not end"
[ "$(grep -c '^vmci-ctl watch' "$dir/screen")" = 1 ] || fail "watch did not redraw in place"

# A bad view and an absent hostpeer get clear errors.
"$ctl" --socket "$dir/echo.sock" pair 2>"$dir/err"; [ $? = 2 ] && grep -q "unknown view 'pair'" "$dir/err" || fail "bad view: $(cat "$dir/err")"
"$ctl" --socket "$dir/none.sock" 2>"$dir/err"; [ $? = 1 ] && grep -q "none.sock" "$dir/err" || fail "absent hostpeer: $(cat "$dir/err")"
echo "absent hostpeer: $(cat "$dir/err")"
echo ok
