#!/usr/bin/env bash
# check_links_test.sh CHECK_LINKS: runs check_links.sh on a small tree made
# here and checks its verdicts: it names the file, line and target of every
# bad link (a missing file, a link into ../shared, one that leaves the tree,
# an absolute path), and passes what is not a relative link or is fine
# (URLs, mailto:, anchors, code spans, fenced blocks, existing targets).
set -uo pipefail
checker="$1"
work=$(mktemp -d /tmp/vmci-check-links-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/docs" "$work/shared/spec"
touch "$work/shared/spec/vmci.md" "$work/tree/docs/B.md"

# Line numbers matter: the expected output below names them.
cat > "$work/tree/README.md" <<'EOF'
# Title
[fine](docs/A.md) and [fine too](docs/A.md#part) and [web](https://example.com/x.md)
[missing](docs/NOPE.md) and ![image](img/none.png)
[outside](../shared/spec/vmci.md) exists on disk, yet must fail
`[in a code span](nope.md)` and [mail](mailto:a@b.c) and [anchor](#title)
```
[in a fence](nope.md)
```
[abs](/etc/passwd) [up](../tree/docs/B.md) [escape](../../etc)
[ref]: docs/gone.md
EOF
cat > "$work/tree/docs/A.md" <<'EOF'
Back to [the README](../README.md), and a [sibling](B.md).
~~~
[in a tilde fence](nope.md)
~~~
A [bad sibling](C.md "with a title").
EOF
# Any Markdown file outside build/ and .git/ is checked, however deep.
mkdir -p "$work/tree/tools/deep" "$work/tree/build/x" "$work/tree/.git"
cat > "$work/tree/tools/deep/NOTES.md" <<'EOF'
[up two](../../docs/B.md) is fine; [gone](gone.md) is not.
As `../shared/spec/vmci.md` says (a code span, still outside the clone).
EOF
printf '[ignored](nope.md)\n' > "$work/tree/build/x/README.md"
printf '[ignored](nope.md)\n' > "$work/tree/.git/README.md"

out=$("$checker" "$work/tree")
status=$?
echo "$out"
fail=0
[ "$status" -eq 1 ] || { echo "exit status $status, expected 1"; fail=1; }
want=(
  "README.md:3: docs/NOPE.md: no such file"
  "README.md:3: img/none.png: no such file"
  "README.md:4: ../shared/spec/vmci.md: links into ../shared, outside the repository"
  "README.md:9: /etc/passwd: an absolute path does not resolve in a clone"
  "README.md:9: ../../etc: leaves the repository"
  "README.md:10: docs/gone.md: no such file"
  "docs/A.md:5: C.md: no such file"
  "tools/deep/NOTES.md:1: gone.md: no such file"
  "tools/deep/NOTES.md:2: ../shared: names a file outside the repository"
  "README.md:4: ../shared: names a file outside the repository"
  "10 bad"
)
for line in "${want[@]}"; do
  grep -qF -- "$line" <<<"$out" || { echo "output lacks: $line"; fail=1; }
done
# Nothing else is reported: no URL, anchor, code span, fence or good link.
reported=$(grep -cE '^[^ ]+:[0-9]+: ' <<<"$out")
[ "$reported" -eq 10 ] || { echo "$reported bad links reported, expected 10"; fail=1; }

# A clean tree passes.
rm "$work/tree/README.md"
printf '[fine](docs/B.md)\n' > "$work/tree/README.md"
printf 'See [B](B.md).\n' > "$work/tree/docs/A.md"
rm -r "$work/tree/tools"
"$checker" "$work/tree" || { echo "a clean tree failed"; fail=1; }
exit "$fail"
