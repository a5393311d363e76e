#!/bin/bash
# What `run DIR` and `list DIR` do with files that are not scenarios, and
# what the reports hold when a file does not load.
#
#   directories_and_reports.sh VMCI_SCENARIO GOOD_SCENARIO BAD_SCENARIO
# 1. A directory holding a scenario and a --report file of an earlier run:
#    run and list skip the report with a note and exit 0.
# 2. A directory holding a scenario and a file that does not load: run
#    exits 2, plays nothing, and still writes --junit and --report, each
#    with a failed test case naming the load error.
set -uo pipefail
scenario=$1 good=$2 bad=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir "$dir/with-report"
cp "$good" "$dir/with-report/"
"$scenario" run "$good" --report "$dir/with-report/report.json" > /dev/null || fail "the good scenario failed"
out=$("$scenario" run "$dir/with-report" 2>&1); status=$?
echo "$out"
[ "$status" -eq 0 ] || fail "run DIR with a report in it: exit $status"
grep -q "note: .*report.json is not a scenario" <<<"$out" || fail "no note about the report"
grep -q "1 scenario(s): 1 passed" <<<"$out" || fail "the scenario was not played"
out=$("$scenario" list "$dir/with-report" 2>&1); status=$?
[ "$status" -eq 0 ] || fail "list DIR with a report in it: exit $status"
grep -q "note: .*report.json is not a scenario" <<<"$out" || fail "list: no note about the report"
# Named on the command line, the same file is an error: the user meant it.
"$scenario" run "$dir/with-report/report.json" > "$dir/named.out" 2>&1
[ $? -eq 2 ] || fail "a report named as a scenario did not exit 2"

mkdir "$dir/with-bad"
cp "$good" "$bad" "$dir/with-bad/"
out=$("$scenario" run "$dir/with-bad" --junit "$dir/junit.xml" --report "$dir/report.json" 2>&1); status=$?
echo "$out"
[ "$status" -eq 2 ] || fail "run DIR with a broken file: exit $status, expected 2"
grep -q "scenario(s):" <<<"$out" && fail "something was played"
[ -s "$dir/junit.xml" ] || fail "no JUnit file"
cat "$dir/junit.xml"
grep -q '<failure message="the file does not load: .*'"$(basename "$bad")"': \$\.steps' "$dir/junit.xml" ||
  fail "the JUnit file names no load error"
python3 - "$dir/report.json" <<'PY' || fail "the JSON report names no load error"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["scenarios"]
assert len(s) == 1 and s[0]["status"] == "failed" and "does not load" in s[0]["reason"], s
PY
echo "directories and reports: ok"
