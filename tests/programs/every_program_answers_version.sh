#!/bin/bash
# every_program_answers_version.sh VERSION PROGRAM...: each PROGRAM, run with
# --version, exits 0 and prints one line "NAME VERSION" where NAME is the
# program's file name.
set -u
version=$1
shift
status=0
for program in "$@"; do
  name=$(basename "$program")
  out=$("$program" --version 2>&1)
  code=$?
  if [ $code -ne 0 ] || [ "$out" != "$name $version" ]; then
    echo "FAIL $name --version: exit $code, printed: $out"
    status=1
  else
    echo "ok   $out"
  fi
done
exit $status
