#!/usr/bin/env bash
# allow_lists_test.sh HOSTPEER TEST_PEER: the daemon's allow-lists with real
# unprivileged users. hostpeer runs as root with --allow-guest-uid G and
# --allow-host-uid H; vmci-test-peer connects as each user (setpriv, no
# supplementary groups) and as each role:
#   - G is admitted as a guest, and refused the host role with a reason
#     naming --allow-host-uid G;
#   - H is admitted as the host and as a guest;
#   - O, on neither list, cannot open the socket, and is told to start
#     hostpeer with --allow-guest-uid O or --allow-host-uid O;
#   - with the socket in a directory G cannot search, hostpeer warns of G at
#     start, naming the directory, and G is told which directory stops it.
# G is `nobody`; H and O are uids without an account (the kernel needs none).
# Needs root (to start processes as other users): exits 77 (skipped) if not.
set -uo pipefail
hostpeer="$1"
peer="$2"

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root to run clients as other users"
  exit 77
fi
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is needed"; exit 1; }

work=$(mktemp -d /tmp/vmci-allow-lists-XXXXXX)
chmod 0711 "$work"
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# A uid with no account, from 61000 up, other than those in "$@".
free_uid() {
  local uid=61000
  while getent passwd "$uid" >/dev/null || [[ " $* " == *" $uid "* ]]; do uid=$((uid + 1)); done
  echo "$uid"
}
guest_uid=$(id -u nobody 2>/dev/null || echo 65534)
host_uid=$(free_uid "$guest_uid")
other_uid=$(free_uid "$guest_uid" "$host_uid")

# as_user UID COMMAND...: runs COMMAND as UID:UID, with no other groups and
# no capabilities. setpriv keeps root's capabilities until its own exec, so
# `env` (a system program) makes the exec of COMMAND as the user alone.
as_user() {
  local uid="$1"
  shift
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all env -- "$@"
}
# The users must really be unprivileged, or the socket's permissions would
# not be what stops them.
if ! as_user "$other_uid" grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status; then
  echo "FAIL: a process started as uid $other_uid keeps capabilities:"
  as_user "$other_uid" grep '^Cap' /proc/self/status
  exit 1
fi

# The unprivileged users must be able to run the peer where it was built;
# if a directory on the way keeps them out, they run a copy, with the
# project's libraries beside it.
if ! as_user "$other_uid" "$peer" </dev/null >/dev/null 2>&1; then
  mkdir -m 0755 "$work/bin"
  cp "$peer" "$work/bin/"
  ldd "$peer" | awk '$3 ~ /^\// && $3 !~ /^\/(usr\/)?lib/ { print $3 }' |
    while read -r lib; do cp "$lib" "$work/bin/"; done
  chmod -R a+rX "$work/bin"
  export LD_LIBRARY_PATH="$work/bin"
  peer="$work/bin/$(basename "$peer")"
  echo "note: the unprivileged users cannot run the built peer in place; using a copy in $work/bin"
fi

# start_daemon DIR LOG ARGS...: hostpeer on DIR/hostpeer.sock, its log in LOG.
start_daemon() {
  local dir="$1" log="$2"
  shift 2
  "$hostpeer" --socket "$dir/hostpeer.sock" --log-level info "$@" 2>"$log" &
  daemons+=($!)
  for _ in $(seq 200); do
    [ -S "$dir/hostpeer.sock" ] && return 0
    sleep 0.05
  done
  echo "FAIL: hostpeer did not start:"
  cat "$log"
  exit 1
}

failures=0
# connect_as UID ROLE SOCKET: prints and returns vmci-test-peer's answer.
connect_as() {
  printf 'connect %s %s\nquit\n' "$3" "$2" | as_user "$1" "$peer"
}
# expect UID ROLE SOCKET PATTERN: the answer must match the glob PATTERN.
expect() {
  local answer
  answer=$(connect_as "$1" "$2" "$3")
  echo "uid $1 as $2: $answer"
  # shellcheck disable=SC2053
  if [[ "$answer" != $4 ]]; then
    echo "  FAIL: expected $4"
    failures=$((failures + 1))
  fi
}

echo "users: guest-allowed $guest_uid, host-allowed $host_uid, neither $other_uid"

mkdir -m 0711 "$work/open"
start_daemon "$work/open" "$work/open.log" --allow-guest-uid "$guest_uid" --allow-host-uid "$host_uid"
socket="$work/open/hostpeer.sock"
mode=$(stat -c %a "$socket")
echo "socket mode: $mode (0600, plus an ACL entry for each allowed user; the group bits show its mask)"
[ "$mode" = 660 ] || { echo "  FAIL: expected 660"; failures=$((failures + 1)); }

expect "$guest_uid" guest "$socket" "0 1[6-9]"
expect "$guest_uid" host "$socket" "-7 hostpeer refused: *--allow-host-uid $guest_uid*"
expect "$host_uid" host "$socket" "0 2"
expect "$host_uid" guest "$socket" "0 1[6-9]"
expect "$other_uid" guest "$socket" "-* Permission denied*--allow-guest-uid $other_uid *"
expect "$other_uid" host "$socket" "-* Permission denied*--allow-host-uid $other_uid *"
if grep -q "cannot reach" "$work/open.log"; then
  echo "  FAIL: hostpeer warned of a closed directory with every directory open:"
  cat "$work/open.log"
  failures=$((failures + 1))
fi

mkdir -m 0700 "$work/closed"
start_daemon "$work/closed" "$work/closed.log" --allow-guest-uid "$guest_uid"
echo "hostpeer with its socket in a 0700 directory said: $(grep "cannot reach" "$work/closed.log")"
if ! grep -q "warning user $guest_uid cannot reach .*directory $work/closed (owner 0, mode 0700)" \
    "$work/closed.log"; then
  echo "  FAIL: expected a warning naming user $guest_uid and $work/closed"
  failures=$((failures + 1))
fi
expect "$guest_uid" guest "$work/closed/hostpeer.sock" \
  "-* Permission denied: directory $work/closed does not let user $guest_uid through*"

if [ "$failures" -ne 0 ]; then
  echo "FAIL: $failures check(s)"
  exit 1
fi
echo "PASS"
