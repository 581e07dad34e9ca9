#!/bin/sh
# tests/docblocks.sh - the C that README.md and the man pages show is code
# that make check compiles and runs, so that it cannot rot.  Every C block
# names the file of examples/ it shows, on the line right before it:
#
#   README.md          <!-- example: examples/jobs.c -->     then ```c
#                      <!-- excerpt: examples/talk.c -->     then ```c
#   docs/*.[0-9]       .\" example: examples/jobs.c          then .nf (or .EX)
#
# and is held to it:
#   example   the block is the whole file, byte for byte (the man page's
#             text once roff's escapes \- \e \\ \& \(aq \(dq are read).
#   excerpt   the block's lines are consecutive lines of the file, in
#             order, with whitespace at line ends ignored and the same
#             indentation taken off every line; a line that is only "..."
#             stands for one or more lines of the file left out.
# The file must be one the build names (Makefile.am), and a whole example
# one that tests/examples.sh runs.  A C block with no such line fails, and
# so does a block that looks like C (#include, /*, or a line ending in ; or
# {) fenced as something else (```, ```sh) or in a man page's .nf without
# one.  The checker is then tried on copies of the documents with a block
# edited, which it must catch.  Run by make check (top_srcdir set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
. "${top_srcdir:?set by make check}/tests/lib.sh"
top=$top_srcdir

# The blocks of the documents named, each in a file of $1 (the text as
# shown: a man page's escapes read, a fence's indentation taken off), and
# one line per block in $1/list: N, where (file:line), rule, file shown.
# The rule is example, excerpt, unclaimed (C, no line naming a file) or
# stray (a naming line with no C block after it).
# shellcheck disable=SC2016
EXTRACT='
function looks_like_c(s) {
    return s ~ /^[ \t]*#[ \t]*include[ \t]*[<"]/ || s ~ /\/\*/ || s ~ /[;{][ \t]*$/
}
# roff text as printed: \- \e \\ \& \(aq \(dq; any other escape is kept
function unroff(s,   r, i, c) {
    r = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c != "\\") { r = r c; continue }
        c = substr(s, i + 1, 1)
        if (c == "-") { r = r "-"; i++ }
        else if (c == "e" || c == "\\") { r = r "\\"; i++ }
        else if (c == "&") i++
        else if (substr(s, i + 1, 3) == "(aq") { r = r "\047"; i += 3 }
        else if (substr(s, i + 1, 3) == "(dq") { r = r "\""; i += 3 }
        else r = r "\\"
    }
    return r
}
function begin_block(rule, target) {
    n++; inblock = 1; is_c = 0; lines = 0
    brule = rule; btarget = target; bwhere = FILENAME ":" FNR
    printf "" >(out "/" n)
}
function end_block() {
    inblock = 0
    close(out "/" n)
    if (brule == "" && is_c) brule = "unclaimed"
    if (brule != "") printf "%d\t%s\t%s\t%s\n", n, bwhere, brule, btarget >>(out "/list")
}
function stray() {
    printf "0\t%s\t%s\t%s\n", mwhere, "stray", mtarget >>(out "/list")
}
FNR == 1 { if (pending) stray(); pending = 0; inblock = 0; man = FILENAME !~ /\.md$/ }

# ---- Markdown: fenced blocks; the naming line is an HTML comment ----
!man && inblock && /^ *```+[ \t]*$/ { end_block(); next }
!man && inblock {
    line = $0
    for (i = 0; i < fence - 3 && substr(line, 1, 1) == " "; i++) line = substr(line, 2)
    print line >>(out "/" n)
    if (looks_like_c(line)) is_c = 1
    next
}
!man && /^ *```/ {
    match($0, /^ *```/); fence = RLENGTH
    info = substr($0, fence + 1); sub(/^[ \t]+/, "", info); sub(/[ \t].*/, "", info)
    if (info == "c") {
        begin_block(pending ? mrule : "", pending ? mtarget : "")
        is_c = 1
    } else {
        if (pending) stray()
        begin_block("", "")
    }
    pending = 0; next
}
!man && /^<!-- (example|excerpt): [^ ]+ -->$/ {
    if (pending) stray()
    pending = 1; mrule = $2; sub(/:$/, "", mrule); mtarget = $3; mwhere = FILENAME ":" FNR; next
}

# ---- roff: .nf/.fi and .EX/.EE; the naming line is a comment ----
man && inblock && ($0 ~ /^\.fi([ \t]|$)/ || $0 ~ /^\.EE([ \t]|$)/) { end_block(); next }
man && inblock {
    if (substr($0, 1, 1) == "." || substr($0, 1, 1) == "\047") {
        print >>(out "/" n)         # a request: never the text of a file
    } else {
        line = unroff($0)
        print line >>(out "/" n)
        if (looks_like_c(line)) is_c = 1
    }
    next
}
man && ($0 ~ /^\.nf([ \t]|$)/ || $0 ~ /^\.EX([ \t]|$)/) {
    begin_block(pending ? mrule : "", pending ? mtarget : ""); pending = 0; next
}
man && /^\.\\" (example|excerpt): [^ ]+$/ {
    if (pending) stray()
    pending = 1; mrule = $2; sub(/:$/, "", mrule); mtarget = $3; mwhere = FILENAME ":" FNR; next
}

{ if (pending) stray(); pending = 0 }
END { if (pending) stray() }'

# awk "$EXCERPT" BLOCK FILE: 0 if BLOCK is an excerpt of FILE (the rule
# above); otherwise 1 and why.
# shellcheck disable=SC2016
EXCERPT='
function rstrip(s) { sub(/[ \t]+$/, "", s); return s }
function spaces(k,   s) { s = ""; while (k-- > 0) s = s " "; return s }
function same(bl, fl, d) { return bl == "" ? fl == "" : fl == spaces(d) bl }
# how many lines of segment k match the file from line p, shifted by d
function placed(k, p, d,   i) {
    for (i = 0; i < sl[k] && p + i <= nf && same(b[sb[k] + i], f[p + i], d); i++) ;
    return i
}
FNR == NR { b[++nb] = rstrip($0); next }
{ f[++nf] = rstrip($0) }
END {
    ns = 0; lead = 0; tail = 0
    for (i = 1; i <= nb; i++) {
        if (b[i] ~ /^[ \t]*\.\.\.$/) {
            if (i > 1 && b[i - 1] ~ /^[ \t]*\.\.\.$/) { print "two \"...\" lines in a row"; exit 1 }
            if (i == 1) lead = 1
            if (i == nb) tail = 1
            continue
        }
        if (i == 1 || b[i - 1] ~ /^[ \t]*\.\.\.$/) { sb[++ns] = i; sl[ns] = 0 }
        sl[ns]++
    }
    if (ns == 0) { print "nothing but \"...\""; exit 1 }
    if (b[sb[1]] == "") { print "it starts with a blank line"; exit 1 }
    far = sb[1] - 1
    for (j = 1 + lead; j <= nf; j++) {
        d = length(f[j]) - length(b[sb[1]])
        if (d < 0) continue
        m = placed(1, j, d)
        if (sb[1] + m - 1 > far) far = sb[1] + m - 1
        if (m < sl[1]) continue
        end = j + sl[1] - 1
        for (k = 2; k <= ns; k++) {
            for (p = end + 2; p + sl[k] - 1 <= nf; p++) {
                m = placed(k, p, d)
                if (sb[k] + m - 1 > far) far = sb[k] + m - 1
                if (m == sl[k]) break
            }
            if (p + sl[k] - 1 > nf) break
            end = p + sl[k] - 1
        }
        if (k > ns && (!tail || end < nf)) exit 0
    }
    if (far >= nb || b[far + 1] ~ /^[ \t]*\.\.\.$/)
        print "its lines are all in the file, but not in that order, or not next to each other"
    else
        printf "line %d of the block is not where it should be in the file: %s\n", far + 1, b[far + 1]
    exit 1
}'

# check_docs DOC...: every C block of the documents against its file;
# "ok:" and "FAIL:" lines; 1 if any failed.
check_docs() {
    dir=$(mktemp -d "$tmp/blocks.XXXXXX")
    : >"$dir/list"
    awk -v out="$dir" "$EXTRACT" "$@" || { echo "FAIL: reading $*"; return 1; }
    bad=0
    tab=$(printf '\t')
    while IFS=$tab read -r n where rule target; do
        where=${where#"$top"/}
        where=${where#"$tmp"/m/}
        why=""
        src=$top/$target
        case $rule in
        unclaimed)
            why="a C block that names no file of examples/ on the line before it" ;;
        stray) why="the line naming $target is followed by no C block" ;;
        *)
            case $target in
            examples/*.c | examples/*.h) ;;
            *) why="$target is not a file of examples/" ;;
            esac
            if [ -z "$why" ] && [ ! -f "$src" ]; then
                why="$target: no such file"
            elif [ -z "$why" ] && ! grep -Fqw "$target" "$top/Makefile.am"; then
                why="$target is no source of the build (Makefile.am)"
            fi ;;
        esac
        if [ -z "$why" ] && [ "$rule" = example ]; then
            prog=$(basename "$target" .c)
            if ! grep -q "\"\$EX/$prog\"" "$top/tests/examples.sh"; then
                why="tests/examples.sh does not run examples/$prog"
            elif ! cmp -s "$dir/$n" "$src"; then
                why="not the text of $target:
$(diff -u "$src" "$dir/$n" | tail -n +3 | head -n 30)"
            fi
        elif [ -z "$why" ] && [ "$rule" = excerpt ]; then
            if ! awk "$EXCERPT" "$dir/$n" "$src" >"$dir/why"; then
                why="not an excerpt of $target: $(cat "$dir/why")"
            fi
        fi
        if [ -n "$why" ]; then
            echo "FAIL: $where: $why"
            bad=$((bad + 1))
        else
            echo "ok: $where: $rule of $target ($(wc -l <"$dir/$n") lines)"
        fi
    done <"$dir/list"
    [ "$bad" -eq 0 ]
}

docs="$top/README.md $(ls "$top"/docs/*.[1-9])"
# shellcheck disable=SC2086
check_docs $docs >"$tmp/real.out"
rc=$?
cat "$tmp/real.out"
[ $rc -eq 0 ] || failures=$((failures + $(grep -c '^FAIL' "$tmp/real.out")))
for want in "README.md:.*: example of examples/jobs.c" "libchan.3:.*: example of examples/jobs.c"; do
    grep -q "^ok: .*$want" "$tmp/real.out" || fail "no block passed as: $want"
done

# ---- the checker must catch a block that is not its file's text ----
# mutate DOC WHAT K ACTION: a copy of DOC (in $tmp/m/) where, in the first
# block naming WHAT ("example: examples/jobs.c"), content line K is edited
# (a letter doubled), dropped, given trailing blanks, or replaced by
# "...", or where the naming line itself is gone (K 0, unmark)
mutate() {
    mkdir -p "$tmp/m"
    awk -v what="$2" -v k="$3" -v act="$4" '
        !done && index($0, what) && ($0 ~ /^<!-- / || $0 ~ /^\.\\"/) {
            if (act == "unmark") { done = 1; next }
            at = NR + 1; print; next
        }
        at && NR > at && NR - at == k {
            at = 0; done = 1
            if (act == "drop") next
            if (act == "edit") sub(/[A-Za-z]/, "&&")
            if (act == "blank") $0 = $0 "   "
            if (act == "elide") { match($0, /^ */); $0 = substr($0, 1, RLENGTH) "..." }
        }
        { print }' "$1" >"$tmp/m/$(basename "$1")"
    if cmp -s "$1" "$tmp/m/$(basename "$1")"; then
        fail "mutate: nothing changed in $1 ($2 $3 $4)"
        return 1
    fi
}
# tried DESCRIPTION DOC [WHY]: the checker on the copy of DOC passes, or
# with WHY fails for that reason (a FAIL line matching WHY)
tried() {
    check_docs "$tmp/m/$2" >"$tmp/m.out"
    rc=$?
    if [ -z "${3:-}" ] && [ $rc -eq 0 ]; then
        pass "the checker: $1: passes"
    elif [ -n "${3:-}" ] && [ $rc -ne 0 ] && grep -q "^FAIL: $2:[0-9]*: .*$3" "$tmp/m.out"; then
        pass "the checker: $1: $(grep -m 1 "^FAIL: $2:[0-9]*: .*$3" "$tmp/m.out" | cut -c 7-120)"
    else
        fail "the checker: $1: wanted ${3:+a failure: }${3:-a pass}, got:"
        grep -v '^ok:' "$tmp/m.out"
    fi
}
jobs="example: examples/jobs.c"
services="excerpt: examples/services.c"
mutate "$top/README.md" "$jobs" 40 edit &&
    tried "a line of jobs.c edited in README" README.md "not the text of examples/jobs.c"
mutate "$top/README.md" "$jobs" 40 blank &&
    tried "blanks after a line of jobs.c in README" README.md "not the text of examples/jobs.c"
mutate "$top/README.md" "$jobs" 0 unmark &&
    tried "README's jobs.c naming no file" README.md "names no file"
mutate "$top/README.md" "$services" 3 edit &&
    tried "a line of an excerpt edited" README.md "not an excerpt of examples/services.c"
mutate "$top/README.md" "$services" 3 drop &&
    tried "a line of an excerpt left out" README.md "not an excerpt of examples/services.c"
mutate "$top/README.md" "$services" 3 elide && tried "a line of an excerpt shown as ..." README.md
mutate "$top/README.md" "$services" 3 blank && tried "blanks after a line of an excerpt" README.md
mutate "$top/docs/libchan.3" "$jobs" 40 edit &&
    tried "a line of jobs.c edited in libchan(3)" libchan.3 "not the text of examples/jobs.c"
mutate "$top/docs/libchan.3" "$jobs" 0 unmark &&
    tried "libchan(3)'s EXAMPLE naming no file" libchan.3 "names no file"

[ "$failures" -eq 0 ]
