#!/usr/bin/env bash
# check_links.sh SOURCE_DIR: checks the relative links of the project's
# Markdown documentation: every *.md file under SOURCE_DIR except those
# under build/ and .git/.
#
# A link is an inline link or image, [text](target) or ![alt](target), or a
# reference definition, [label]: target. Links inside fenced code blocks
# (``` or ~~~) and inside code spans (`...`) are not links, and are skipped.
# Targets with a URL scheme (http://, https://, any scheme://) or mailto:,
# and targets that are only an #anchor, are not checked. Every other target,
# less its #anchor or ?query, must name a file or directory that exists
# relative to the file that links to it, inside SOURCE_DIR: the docs must
# stand alone in a clone. A target that contains `../shared`, leaves
# SOURCE_DIR, or is an absolute path fails even if it exists on this
# machine. Anchors themselves are not checked. A file that names
# `../shared/` anywhere, even in code, fails too: the team's reference
# specs are not part of a clone.
#
# Prints FILE:LINE: TARGET: why, for every bad link; exits 1 if there was
# one, 2 on a usage error, 0 otherwise.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 SOURCE_DIR" >&2
  exit 2
fi
root=$(realpath "$1")

# Prints LINE<TAB>TARGET for every link of the Markdown file on stdin.
extract_links() {
  awk '
    # A fence opens with three or more ` or ~ (indented at most 3 spaces)
    # and closes with at least as many of the same character.
    function fence_of(line,   m) {
      if (match(line, /^ ? ? ?(```+|~~~+)/)) {
        m = substr(line, RSTART, RLENGTH)
        sub(/^ +/, "", m)
        return m
      }
      return ""
    }
    # The line with its code spans removed: a run of N backticks up to the
    # next run of exactly N backticks (an unclosed run is left as it is).
    function strip_code(line,   out, run, rest, n, closer, pos) {
      out = ""
      while (match(line, /`+/)) {
        out = out substr(line, 1, RSTART - 1)
        run = substr(line, RSTART, RLENGTH)
        n = RLENGTH
        rest = substr(line, RSTART + n)
        closer = 0
        pos = 0
        while (match(substr(rest, pos + 1), /`+/)) {
          if (RLENGTH == n) { closer = pos + RSTART; break }
          pos += RSTART + RLENGTH - 1
        }
        if (closer == 0) { out = out run; line = rest; continue }
        line = substr(rest, closer + n)
      }
      return out line
    }
    # The target that starts at the beginning of s (just after "]("): up to
    # the ")" that closes it, parentheses nesting; <...> form; no title.
    function target_of(s,   i, c, depth, t) {
      if (substr(s, 1, 1) == "<") {
        i = index(s, ">")
        return i > 0 ? substr(s, 2, i - 2) : ""
      }
      depth = 0
      t = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "(") depth++
        else if (c == ")") { if (depth == 0) break; depth-- }
        else if (c == " " || c == "\t") break
        t = t c
      }
      return t
    }
    {
      f = fence_of($0)
      if (fence != "") {
        if (f != "" && substr(f, 1, 1) == substr(fence, 1, 1) && length(f) >= length(fence)) fence = ""
        next
      }
      if (f != "") { fence = f; next }
      line = strip_code($0)
      if (match(line, /^ ? ? ?\[[^]]+\]:[ \t]+/)) {
        t = substr(line, RSTART + RLENGTH)
        sub(/[ \t].*$/, "", t)
        gsub(/^<|>$/, "", t)
        if (t != "") print NR "\t" t
        next
      }
      while ((i = index(line, "](")) > 0) {
        line = substr(line, i + 2)
        t = target_of(line)
        if (t != "") print NR "\t" t
      }
    }
  '
}

cd "$root" || exit 2
files=()
while IFS= read -r -d '' f; do
  files+=("${f#./}")
done < <(find . \( -path ./build -o -path ./.git \) -prune -o -type f -name '*.md' -print0 | sort -z)
if [ ${#files[@]} -eq 0 ]; then
  echo "no Markdown files found under $root" >&2
  exit 2
fi

bad=0
checked=0
for file in "${files[@]}"; do
  dir=$(dirname "$root/$file")
  while IFS=$'\t' read -r line target; do
    case "$target" in
      \#*) continue ;;
      mailto:*) continue ;;
    esac
    if [[ "$target" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; then continue; fi
    checked=$((checked + 1))
    path=${target%%#*}
    path=${path%%\?*}
    why=""
    if [[ "$target" == *../shared* ]]; then
      why="links into ../shared, outside the repository"
    elif [[ "$path" == /* ]]; then
      why="an absolute path does not resolve in a clone"
    else
      resolved=$(realpath -m "$dir/$path")
      if [[ "$resolved" != "$root" && "$resolved" != "$root"/* ]]; then
        why="leaves the repository"
      elif [ ! -e "$resolved" ]; then
        why="no such file"
      fi
    fi
    if [ -n "$why" ]; then
      echo "$file:$line: $target: $why"
      bad=$((bad + 1))
    fi
  done < <(extract_links < "$root/$file")
  while IFS=: read -r line _; do
    echo "$file:$line: ../shared: names a file outside the repository"
    bad=$((bad + 1))
  done < <(grep -n -F '../shared/' "$root/$file")
done

echo "$checked relative link(s) checked in ${#files[@]} file(s): $bad bad"
[ "$bad" -eq 0 ]
