#!/bin/sh
# test.sh - install what is missing, build, and run every test (make check).
#   ./test.sh               the normal build, in build/
#   ./test.sh --sanitizers  an ASan+UBSan build in build-san/
#   ./test.sh --tsan        a ThreadSanitizer build (clang) in build-tsan/
# A make target after the option runs instead of check: e.g.
#   ./test.sh --tsan check-threads   only the suites where threads meet (CI)
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
top=$(cd "$(dirname "$0")" && pwd)
# etcd-server and etcd-client (etcdctl): the cluster tests start etcd
# members of their own; python3: tests/logformat.sh parses chand's JSON logs
"$top/scripts/deps.sh" etcd-server etcd-client python3
jobs=$(nproc)
case "$1" in
--sanitizers)
    "$top/scripts/build.sh" "$top/build-san" --enable-sanitizers
    cd "$top/build-san"
    ;;
--tsan)
    # clang and its TSan runtime, of the version the clang package is
    # (configure.ac says why not gcc's).
    "$top/scripts/deps.sh" clang
    "$top/scripts/deps.sh" "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    "$top/scripts/build.sh" "$top/build-tsan" --enable-tsan CC=clang
    cd "$top/build-tsan"
    ;;
*)
    "$top/scripts/build.sh" "$top/build"
    cd "$top/build"
    ;;
esac
make -j"$jobs" "${2:-check}"
