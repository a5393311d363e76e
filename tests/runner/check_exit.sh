#!/usr/bin/env bash
# check_exit.sh RUNNER FILE STATUS TEXT: runs `RUNNER run FILE`, expects exit
# STATUS and TEXT somewhere in what it printed.
runner="$1" file="$2" want="$3" text="$4"
out=$("$runner" run "$file" 2>&1)
got=$?
echo "$out"
[ "$got" -eq "$want" ] || { echo "exit status $got, expected $want"; exit 1; }
grep -qF -- "$text" <<<"$out" || { echo "output lacks: $text"; exit 1; }
