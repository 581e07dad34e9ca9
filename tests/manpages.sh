#!/bin/sh
# tests/manpages.sh - the man pages and --help say the same: every option
# that `chand --help` (`chan --help`) lists has an entry in chand(8)
# (chan(1)), exactly one, and the other way round; every chan command too.
# Run by make check ($CHAND and $CHAN set there).
set -u
CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
docs=${top_srcdir:-$(dirname "$0")/..}/docs
tmp=$(mktemp -d /tmp/chan-man-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

# The long options of a --help text: lines that start (after blanks) with
# "--opt" or "-x, --opt".
help_opts() {
    grep -oE '^[[:space:]]+(-[a-zA-Z0-9], )?--[a-z][a-z0-9-]*' | sed 's/.*--/--/'
}
# The long options a man page gives an entry: the tag line (.B, .BI or .BR)
# after each .TP (or .TQ), with man's escaped dashes undone.
man_opts() {
    sed 's/\\-/-/g' "$1" | awk 'prev == ".TP" || prev == ".TQ" { print } { prev = $0 }' |
        sed -n 's/^\.B[IR]\{0,1\} \{1,\}\(-[a-zA-Z0-9] ", " \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p'
}

check() {   # check NAME HELP_FILE MAN_PAGE
    help_opts <"$2" | sort -u >"$tmp/help"
    man_opts "$3" | sort >"$tmp/man.all"
    sort -u "$tmp/man.all" >"$tmp/man"
    dups=$(uniq -d "$tmp/man.all" | tr '\n' ' ')
    if [ -n "$dups" ]; then
        echo "FAIL: $3 has more than one entry for: $dups"
        failures=$((failures + 1))
    fi
    if ! diff -u "$tmp/help" "$tmp/man" >"$tmp/diff"; then
        echo "FAIL: $1 --help (-) and $(basename "$3") (+) list different options:"
        cat "$tmp/diff"
        failures=$((failures + 1))
    else
        echo "ok: $1 --help and $(basename "$3") list the same $(wc -l <"$tmp/help") options"
    fi
}

"$CHAND" --help >"$tmp/chand.help"
check chand "$tmp/chand.help" "$docs/chand.8"
"$CHAN" --help >"$tmp/chan.help"
check chan "$tmp/chan.help" "$docs/chan.1"

# chan's commands: "  send NAME ..." in --help, ".B send" in chan(1)
sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' "$tmp/chan.help" | grep -v '^-' | sort -u >"$tmp/cmds.help"
sed -n 's/^\.B \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "$docs/chan.1" | grep -vx chan | sort -u \
    >"$tmp/cmds.man"
if diff -u "$tmp/cmds.help" "$tmp/cmds.man" >"$tmp/diff"; then
    echo "ok: chan --help and chan(1) list the same commands: $(tr '\n' ' ' <"$tmp/cmds.help")"
else
    echo "FAIL: chan's commands in --help (-) and chan(1) (+):"
    cat "$tmp/diff"
    failures=$((failures + 1))
fi
[ "$failures" -eq 0 ]
