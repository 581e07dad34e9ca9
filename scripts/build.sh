#!/bin/sh
# scripts/build.sh [DIR [configure args...]] - configure (once) and build
# chand in DIR (default: build/).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
[ $# -gt 0 ] && shift
cd "$top"
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p "$dir"
cd "$dir"
if [ ! -f Makefile ]; then
    "$top/configure" -q "$@"
fi
make -j"$(nproc)" >/dev/null
