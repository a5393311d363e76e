#!/usr/bin/env bash
# against_daemon.sh RUNNER HOSTPEER CORPUS: starts the vmci-hostpeer daemon
# on a private socket and plays the whole corpus against it with --connect
# (interop as a user tests another build). Expects exit 0, the scenarios
# that need a hostpeer of their own reported as skipped, and the daemon
# still alive afterwards.
set -u
runner="$1" daemon="$2" corpus="$3"
dir=$(mktemp -d)
"$daemon" --socket "$dir/hp.sock" --log-level warn 2>"$dir/hostpeer.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/hp.sock" ] && break; sleep 0.05; done
out=$("$runner" run --connect "$dir/hp.sock" --junit "$dir/junit.xml" "$corpus" 2>&1)
got=$?
echo "$out" | tail -15
[ "$got" -eq 0 ] || { echo "exit status $got, expected 0"; exit 1; }
grep -q "skipped: it restarts hostpeer" <<<"$out" || { echo "no scenario was skipped for restarting hostpeer"; exit 1; }
grep -q "skipped: it sets up its own hostpeer" <<<"$out" || { echo "no scenario was skipped for its own hostpeer"; exit 1; }
grep -q 'skipped="[1-9]' "$dir/junit.xml" || { echo "the JUnit report shows no skipped scenario"; exit 1; }
kill -0 "$pid" 2>/dev/null || { echo "hostpeer died:"; cat "$dir/hostpeer.log"; exit 1; }
