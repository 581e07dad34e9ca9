#!/bin/sh
# tests/timed.sh CMD [ARGS...] - run one test program and append how long it
# took to its log ("duration: 12.3 s"), so that CI can list where the time
# of make check goes (.ci/run prints the slowest).  The exit status is the
# program's own.
#
# A watchdog bounds each program: after CHAN_TEST_LIMIT seconds (900 unless
# set) it and every process it started get SIGTERM, SIGKILL 30 s later, and
# the program fails with a line that says so.  A test that hangs then costs
# one failure with its log instead of the whole run: each test has its own
# bounds, and this one is only for the hang nobody foresaw.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
limit=${CHAN_TEST_LIMIT:-900}
start=$(date +%s%N)
timeout -k 30 "$limit" "$@"
rc=$?
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && [ "$ms" -ge $((limit * 1000)) ] &&
    echo "FAIL: the watchdog stopped this test after $limit s (CHAN_TEST_LIMIT)"
printf 'duration: %d.%d s\n' $((ms / 1000)) $(( (ms % 1000) / 100 ))
exit $rc
