#!/bin/sh
# tests/timed.sh CMD [ARGS...] - run one test program and append how long it
# took to its log ("duration: 12.3 s"), so that CI can list where the time
# of make check goes (.ci/run prints the slowest).  The exit status is the
# program's own.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
start=$(date +%s%N)
"$@"
rc=$?
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
printf 'duration: %d.%d s\n' $((ms / 1000)) $(( (ms % 1000) / 100 ))
exit $rc
