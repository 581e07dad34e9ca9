#!/bin/sh
# tests/completion.sh - the bash completion of chan and chand
# (completion/chan): sourced in a bash of its own, with the built programs
# first on PATH, `chan se<TAB>` gives send, and so on for commands, options
# and option values (read from each program's --help); and `make install
# DESTDIR=...` puts it in bash-completion's directory under both names.
# Run by make check ($CHAND, $CHAN, top_srcdir and top_builddir set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
LC_ALL=C   # the order sort gives
export LC_ALL
CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
. "${top_srcdir:?set by make check}/tests/lib.sh"

if ! command -v bash >/dev/null; then
    echo "FAIL: this test needs bash"
    exit 1
fi

mkdir "$tmp/bin" "$tmp/files"
ln -s "$CHAN" "$tmp/bin/chan"
ln -s "$CHAND" "$tmp/bin/chand"
: >"$tmp/files/chand.conf"
: >"$tmp/files/other.conf"

# complete FILE WORD...: what completing the last WORD of the command line
# WORD... gives, one candidate a line, sorted (as bash would, after TAB)
complete_line() {
    file=$1
    shift
    PATH="$tmp/bin:$PATH" bash --norc --noprofile -c '
        . "$1" || exit 1
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        fn=$(complete -p "$1" 2>/dev/null | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "no completion for $1" >&2; exit 1; }
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
        printf "%s\n" "${COMPREPLY[@]}"' bash "$file" "$@" | sed '/^$/d' | sort | tr '\n' ' ' |
        sed 's/ $//'
}

# completes WANT WORD...: completing WORD... (the last one being completed)
# gives WANT (candidates separated by blanks)
completes() {
    want=$1
    shift
    got=$(complete_line "$file" "$@")
    if [ "$got" = "$want" ]; then pass "'$*<TAB>' gives '$want'"; else
        fail "'$*<TAB>' gives '$got', wanted '$want'"; fi
}

file=$top_srcdir/completion/chan
PATH="$tmp/bin:$PATH" bash --norc --noprofile -c '. "$1" && complete -p chan chand' bash "$file" \
    >"$tmp/complete-p" 2>&1
grep -qx "complete -F _chan chan" "$tmp/complete-p" && grep -qx "complete -F _chand chand" "$tmp/complete-p" &&
    pass "sourcing it registers chan and chand" || fail "complete -p says: $(cat "$tmp/complete-p")"

completes "send" chan se
completes "send stat" chan s
completes "acl close cluster ls make ping recv rm send stat" chan ""
completes "status" chan cluster st
completes "hash" chan acl ""
completes "send" chan --addr 127.0.0.1:7070 se
completes "send" chan -a 127.0.0.1:7070 se
completes "--timeout --tls-ca --tls-cert --tls-key --tls-servername --token-file" chan send x --t
completes "" chan send x ""
completes "$tmp/files/chand.conf" chan --token-file "$tmp/files/ch"
completes "--log-file --log-format --log-level" chand --log-
completes "journal json" chand --log-format j
completes "always everysec no" chand --fsync ""
completes "debug" chand --log-level = d
completes "$tmp/files/chand.conf $tmp/files/other.conf" chand --config "$tmp/files/"
completes "$tmp/files" chand --data-dir "$tmp/fi"
completes "" chand --listen ""
completes "--lease-ttl --listen --log-file --log-format --log-level" chand --check --l
# every option chand --help lists, and nothing else
"$CHAND" --help | sed -n 's/^ \{2,8\}\(-[a-zA-Z0-9], \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p' |
    sort | tr '\n' ' ' | sed 's/ $//' >"$tmp/want"
completes "$(cat "$tmp/want")" chand --

# ---- make install puts it where bash-completion looks, under both names ----
if [ -n "${top_builddir:-}" ] && [ -f "$top_builddir/Makefile" ]; then
    dest=$tmp/dest
    if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -C "$top_builddir" install \
        DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
        dir=$(cd "$top_builddir" && env -u MAKEFLAGS ${MAKE:-make} -s -f Makefile -f - print-dir <<'EOF'
print-dir:
	@echo $(bashcompletiondir)
EOF
)
        case $dir in
        */bash-completion/completions) pass "completions dir: $dir" ;;
        *) fail "completions dir: '$dir'" ;;
        esac
        if [ -f "$dest$dir/chan" ] && [ -e "$dest$dir/chand" ] && cmp -s "$dest$dir/chand" "$file"; then
            pass "make install DESTDIR=... installs $dir/chan and chand"
            file=$dest$dir/chand
            completes "send" chan se
        else
            fail "make install DESTDIR=... put no chan and chand in $dir: $(find "$dest" -path '*completion*')"
        fi
    else
        fail "make install DESTDIR=$dest failed:"
        tail -n 20 "$tmp/install.log"
    fi
else
    echo "skip: make install (no \$top_builddir/Makefile)"
fi

[ "$failures" -eq 0 ]
