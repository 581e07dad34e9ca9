#!/bin/sh
# tests/manpages.sh - the man pages and --help say the same: every option
# that `chand --help` (`chan --help`) lists has an entry in chand(8)
# (chan(1)), exactly one, with the same short option, and the other way
# round; --help lists each option once; every chan command is in both.
# The checker is tried on a page with an entry twice, which it must catch.
# Every public function of libchan (client/libchan.sym) is in libchan(3)
# and has a page of its own (a .so of libchan(3)) for make install.
# Run by make check ($CHAND and $CHAN set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
. "${top_srcdir:?set by make check}/tests/lib.sh"
docs=$top_srcdir/docs

# The options of a --help text, as "--opt" or "-x --opt": the lines that
# start, after two to eight blanks, with "--opt" or "-x, --opt" (help text
# wrapped onto further lines is indented further, and may start with an
# option's name).
help_opts() {
    sed -n 's/^ \{2,8\}\(-[a-zA-Z0-9]\)\{0,1\}\(, \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\1 \3/p' |
        sed 's/^ //'
}
# The options a man page gives an entry, the same way: the tag line (.B,
# .BI or .BR) after each .TP (or .TQ), with man's escaped dashes undone.
man_opts() {
    sed 's/\\-/-/g' "$1" | awk 'prev == ".TP" || prev == ".TQ" { print } { prev = $0 }' |
        sed -n 's/^\.B[IR]\{0,1\} \{1,\}\(\(-[a-zA-Z0-9]\) ", " \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2 \3/p' |
        sed 's/^ //'
}

check() {   # check NAME HELP_FILE MAN_PAGE
    help_opts <"$2" | sort >"$tmp/help.all"
    man_opts "$3" | sort >"$tmp/man.all"
    sort -u "$tmp/help.all" >"$tmp/help"
    sort -u "$tmp/man.all" >"$tmp/man"
    ok=yes
    for side in help man; do
        dups=$(sed 's/.* //' "$tmp/$side.all" | uniq -d | tr '\n' ' ')
        if [ -n "$dups" ]; then
            [ $side = help ] && where="$1 --help" || where=$3
            echo "FAIL: $where has more than one entry for: $dups"
            ok=no
        fi
    done
    if ! diff -u "$tmp/help" "$tmp/man" >"$tmp/diff"; then
        echo "FAIL: $1 --help (-) and $(basename "$3") (+) list different options:"
        cat "$tmp/diff"
        ok=no
    fi
    if [ $ok = yes ]; then
        echo "ok: $1 --help and $(basename "$3") list the same $(wc -l <"$tmp/help") options, once each"
        return 0
    fi
    return 1
}

"$CHAND" --help >"$tmp/chand.help"
check chand "$tmp/chand.help" "$docs/chand.8" || failures=$((failures + 1))
"$CHAN" --help >"$tmp/chan.help"
check chan "$tmp/chan.help" "$docs/chan.1" || failures=$((failures + 1))

# the checker itself: chand(8) with its --max-frame entry twice must fail
awk '{ print } /^\.BI \\-\\-max\\-frame / { print "Again."; print ".TP"; print }' \
    "$docs/chand.8" >"$tmp/dup.8"
if check chand "$tmp/chand.help" "$tmp/dup.8" >"$tmp/dup.out"; then
    fail "the checker missed --max-frame listed twice in a copy of chand.8"
elif grep -q "more than one entry for: --max-frame" "$tmp/dup.out"; then
    pass "the checker catches an option listed twice"
else
    fail "the checker failed on a copy of chand.8 with --max-frame twice, but not for that:"
    cat "$tmp/dup.out"
fi

# chan's commands: "  send NAME ..." in --help, ".B send" in chan(1)
sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' "$tmp/chan.help" | grep -v '^-' | sort -u >"$tmp/cmds.help"
sed -n 's/^\.B \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "$docs/chan.1" | grep -vx chan | sort -u \
    >"$tmp/cmds.man"
if diff -u "$tmp/cmds.help" "$tmp/cmds.man" >"$tmp/diff"; then
    pass "chan --help and chan(1) list the same commands: $(tr '\n' ' ' <"$tmp/cmds.help")"
else
    fail "chan's commands in --help (-) and chan(1) (+):"
    cat "$tmp/diff"
fi
# libchan's functions: each named in libchan(3), each with its page
top=$top_srcdir
builddir=${top_builddir:-.}
missing=""
for f in $(cat "$top/client/libchan.sym"); do
    grep -q "$f\([^a-z_]\|\$\)" "$docs/libchan.3" || missing="$missing $f(libchan.3)"
    grep -q "docs/man3/$f\.3" "$top/Makefile.am" || missing="$missing $f(Makefile.am)"
done
extra=$(sed -n 's|.*docs/man3/\([a-z_]*\)\.3.*|\1|p' "$top/Makefile.am" | sort -u |
    grep -vxF -f "$top/client/libchan.sym")
if [ -z "$missing" ] && [ -z "$extra" ]; then
    pass "every public function of libchan ($(wc -l <"$top/client/libchan.sym")) is in libchan(3) and has a page"
else
    fail "libchan's pages: missing$missing; pages of no public function: $extra"
fi
(cd "$builddir" && make -s docs/man3/chan_select.3 >/dev/null 2>&1)
if [ "$(cat "$builddir/docs/man3/chan_select.3" 2>/dev/null)" = ".so man3/libchan.3" ]; then
    pass "docs/man3/chan_select.3 names libchan(3)"
else
    fail "make docs/man3/chan_select.3 did not make a .so of libchan(3)"
fi
[ "$failures" -eq 0 ]
