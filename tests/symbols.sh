#!/bin/sh
# tests/symbols.sh - libchan.so exports exactly the functions listed in
# client/libchan.sym (what chan.h marks CHAN_API): no internal helper, no
# protobuf-c code; debian/libchan0.symbols lists them too.  A difference
# fails with the diff: '-' lines are listed but not exported, '+' lines
# exported but not listed.  Run by make check ($top_builddir and
# $top_srcdir set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

top_builddir=${top_builddir:?set by make check}
top_srcdir=${top_srcdir:?set by make check}
so=$top_builddir/client/.libs/libchan.so
list=$top_srcdir/client/libchan.sym

if [ ! -f "$so" ]; then
    echo "SKIP: no $so (configured with --disable-shared?)"
    exit 77
fi
command -v nm >/dev/null 2>&1 || { echo "SKIP: no nm"; exit 77; }
[ -f "$list" ] || { echo "FAIL: no $list"; exit 1; }

. "$top_srcdir/tests/lib.sh"

# Defined code and data: "ADDRESS TYPE NAME"; versioned names lose "@...".
nm -D --defined-only "$so" >"$tmp/nm" || { echo "FAIL: nm -D $so"; exit 1; }
awk '$2 ~ /^[TDBR]$/ { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | LC_ALL=C sort -u >"$tmp/exported"
grep -v '^[[:space:]]*$' "$list" | LC_ALL=C sort -u >"$tmp/listed"

if ! LC_ALL=C sort -c "$list" 2>/dev/null; then
    echo "FAIL: $list is not sorted (LC_ALL=C sort)"
    exit 1
fi
# The Debian package's symbols file (not in a release tarball) names the
# same functions: dpkg-buildpackage fails on any difference from the library.
deb=$top_srcdir/debian/libchan0.symbols
if [ -f "$deb" ]; then
    sed -n 's/^ \([A-Za-z0-9_]*\)@Base .*/\1/p' "$deb" | LC_ALL=C sort -u >"$tmp/debian"
    if ! diff -u "$tmp/listed" "$tmp/debian" >"$tmp/diff"; then
        echo "FAIL: debian/libchan0.symbols (+) names other functions than client/libchan.sym (-)"
        tail -n +3 "$tmp/diff"
        exit 1
    fi
fi
if diff -u "$tmp/listed" "$tmp/exported" >"$tmp/diff"; then
    echo "ok: libchan.so exports the $(wc -l <"$tmp/listed") functions of client/libchan.sym"
    exit 0
fi
echo "FAIL: libchan.so's exports differ from client/libchan.sym"
tail -n +3 "$tmp/diff"
exit 1
