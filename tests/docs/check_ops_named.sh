#!/usr/bin/env bash
# check_ops_named.sh RUNNER DOC: runs `RUNNER ops` and checks that DOC names
# every op it lists as a code span (`op_name`). Prints each op DOC does not
# name; exits 1 if there is one, or if RUNNER lists no ops or fails.
set -uo pipefail
runner="$1" doc="$2"

if ! listing=$("$runner" ops); then
  echo "$runner ops failed"
  exit 1
fi
# The op is the first word of each line.
ops=$(awk 'NF > 0 { print $1 }' <<<"$listing")
if [ -z "$ops" ]; then
  echo "$runner ops listed no ops"
  exit 1
fi

missing=0
count=0
while read -r op; do
  count=$((count + 1))
  if ! grep -qF -- "\`$op\`" "$doc"; then
    echo "$doc does not name op $op"
    missing=$((missing + 1))
  fi
done <<<"$ops"
echo "$count op(s) listed by $runner ops: $missing not named in $doc"
[ "$missing" -eq 0 ]
