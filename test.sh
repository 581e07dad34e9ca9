#!/bin/sh
# test.sh - install what is missing, build, and run every test (make check).
#   ./test.sh               the normal build, in build/
#   ./test.sh --sanitizers  an ASan+UBSan build in build-san/
set -e
top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/deps.sh"
jobs=$(nproc)
if [ "$1" = "--sanitizers" ]; then
    "$top/scripts/build.sh" "$top/build-san" --enable-sanitizers
    cd "$top/build-san"
else
    "$top/scripts/build.sh" "$top/build"
    cd "$top/build"
fi
make -j"$jobs" check
