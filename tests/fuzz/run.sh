#!/bin/sh
# run.sh SRCDIR BUILDDIR SECONDS TARGET... - fuzz each libFuzzer target for
# SECONDS (make fuzz; FUZZ_SECONDS), one after the other.
#
# Each target works on a scratch copy of its corpus in BUILDDIR/fuzz-work/
# (new inputs go there, never into the repository), with chan.dict if it
# reads frames.  For each target it prints libFuzzer's last status line
# (executions, cov: and ft:) and its totals; on a crash it prints the end of
# the log and the reproducer (path and bytes), and exits 1 once all ran.
# To keep a reproducer, copy it into tests/fuzz/corpus/TARGET/.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
src=$1 build=$2 secs=$3
shift 3
failed=0
for t in "$@"; do
    name=$(basename "$t")
    work=$build/fuzz-work/$name
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/crashes"
    cp "$src/tests/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null
    set -- -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/crashes/"
    # the targets that read frames get the wire tokens of chan.proto
    [ "$name" != fuzz_core ] && set -- "$@" -dict="$src/tests/fuzz/chan.dict"
    echo "fuzz: $name for $secs s ($(ls "$work/corpus" | wc -l) seeds)"
    "$build/tests/fuzz/$name" "$@" "$work/corpus" > "$work/log" 2>&1
    rc=$?
    grep -E '^#[0-9]+.*(cov|ft):' "$work/log" | tail -n 1 | sed "s/^/fuzz: $name: /"
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$work/log" | sed "s/^/fuzz: $name: /"
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "fuzz: $name FAILED (exit $rc); the end of its log:"
        tail -n 80 "$work/log"
        for f in "$work/crashes"/*; do
            [ -f "$f" ] || continue
            echo "fuzz: $name: reproducer $f ($(wc -c < "$f") bytes):"
            od -A d -t x1 "$f" | head -n 64
            echo "fuzz: replay it with: $build/tests/fuzz/$name $f"
        done
    else
        echo "fuzz: $name: no crash"
    fi
done
exit $failed
