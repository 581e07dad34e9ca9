#!/bin/sh
# replay.sh - run every fuzz target once over each input of its corpus
# (tests/fuzz/corpus/TARGET/): part of make check, in every build.  Without
# --enable-fuzz the targets are linked with fuzz_main.c; with it they are
# libFuzzer programs, which run the files named on their command line once
# each.  A crash, a sanitizer report or a failed check fails the test.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
: "${top_builddir:?}" "${top_srcdir:?}"
rc=0
# The targets' scratch files go in a directory of our own ($TMPDIR), which
# each must leave empty.
scratch=$(mktemp -d /tmp/chan-replay-XXXXXX) || exit 99
trap 'rm -rf "$scratch"' EXIT
for t in fuzz_frame fuzz_core fuzz_dispatch fuzz_journal; do
    bin=$top_builddir/tests/fuzz/$t
    dir=$top_srcdir/tests/fuzz/corpus/$t
    [ -x "$bin" ] || continue
    set -- "$dir"/*
    if [ ! -f "$1" ]; then
        echo "replay: $t: no corpus in $dir"
        rc=1
        continue
    fi
    if TMPDIR=$scratch "$bin" "$@" > "$t.replay.log" 2>&1; then
        echo "replay: $t: $# inputs, all passed"
    else
        echo "replay: $t: FAILED over $# inputs"
        tail -n 50 "$t.replay.log"
        rc=1
    fi
    rm -f "$t.replay.log"
    if [ -n "$(ls -A "$scratch")" ]; then
        echo "replay: $t: left behind in \$TMPDIR: $(ls -A "$scratch" | tr '\n' ' ')"
        rm -rf "${scratch:?}"/*
        rc=1
    fi
done
exit $rc
