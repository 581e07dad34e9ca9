#!/bin/sh
# bench/section.sh - put one section into bench/RESULTS.md: replace the
# section whose heading is the section file's first line ("## ..."), or add
# it at the end.  Shared by every bench script:
#   section.sh RESULTS_MD SECTION_FILE
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
results=$1
section=$2
heading=$(head -n 1 "$section")
if [ -f "$results" ]; then
    awk -v sec="$section" -v h="$heading" '
        $0 == h { while ((getline l < sec) > 0) print l; skip = 1; next }
        /^## / && skip { skip = 0; print "" }
        !skip { print }' "$results" >"$results.new"
    grep -qxF "$heading" "$results" || { echo; cat "$section"; } >>"$results.new"
    mv "$results.new" "$results"
else
    { echo "# Benchmark results"; echo; cat "$section"; } >"$results"
fi
