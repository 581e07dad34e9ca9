#!/bin/sh
# tests/sources.sh - what every file of the source tree must carry: the
# licence's copyright line in each source file (its top comment), and no
# merge-conflict markers left in any text (code, scripts, documents).
# Reads the tree at $top_srcdir (the release tarball's, under distcheck).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
top=${top_srcdir:?set by make check}
. "$top/tests/lib.sh"

LINE='Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).'

# The source files: C, assembly, shell, the protocol, Go, the build and the
# packaging's own scripts.  Generated files (protoc-c's output, autotools')
# are not ours; build directories inside the tree are skipped.
cd "$top" || exit 99
find proto client common daemon include tests examples bench scripts completion dist .ci \
    -path '*/build*' -prune -o -path tests/fuzz/corpus -prune -o \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.sh' -o -name '*.proto' \
    -o -name '*.go' -o -name '*.service' -o -name '*.dict' -o -name chan -o -name run \) \
    ! -name '*.pb-c.*' -print 2>/dev/null | sort >"$tmp/sources"
printf '%s\n' Makefile.am configure.ac run.sh test.sh >>"$tmp/sources"
n=0 missing=""
while read -r f; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    grep -qF "$LINE" "$f" || missing="$missing $f"
done <"$tmp/sources"
if [ "$n" -lt 100 ]; then
    fail "only $n source files found under $top"
elif [ -z "$missing" ]; then
    pass "all $n source files carry the copyright line"
else
    fail "no copyright line in its top comment:$missing"
fi

# Conflict markers, in everything text: sources and documents.
find . -path './build*' -prune -o -path ./tests/fuzz/corpus -prune -o -path ./.git -prune -o \
    -type f \( -name '*.[chS]' -o -name '*.sh' -o -name '*.md' -o -name '*.am' -o -name '*.ac' \
    -o -name '*.proto' -o -name '*.[0-9]' -o -name '*.go' -o -name '*.in' \) -print |
    xargs grep -ln '^<<<<<<< \|^>>>>>>> \|^=======$' >"$tmp/marked" 2>/dev/null
if [ -s "$tmp/marked" ]; then
    fail "merge-conflict markers in: $(tr '\n' ' ' <"$tmp/marked")"
else
    pass "no merge-conflict markers in the tree"
fi

[ "$failures" -eq 0 ]
