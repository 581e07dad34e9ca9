# bench/table.sh - sourced by the bench scripts: running the load
# generators and the arithmetic of their tables, on the key=value result
# lines of chanbench, redisbench, natsbench and fsync_lat.
#   run PROGRAM ARGS...  run a load generator (--timeout 60 added): its result
#                        line, also appended to the file $runs; a failure or
#                        check=FAILED ends the calling script (under set -e)
#   field NAME LINE      the value of NAME= in LINE
#   median               the median of the numbers on stdin, one a line ("-" if none)
#   med NAME LINES       the median of NAME= over result lines (one a line)
#   spread NAME LINES    "min–max" of NAME= over the lines ("" if fewer than 2)
#   ratio A B            A / B with 2 decimals ("-" unless both are positive)
#   fmt_rate V           values/s as "1.23 M values/s" (below 0.1 M: "12.3 k values/s")
#   machine              "N cores, CPU model, kernel" for a results section
#   started              "LOAD AVERAGES|DATE" now: what stamp says of a table
#   stamp COMMAND STARTED  the line above a table: the command that made it,
#                        the machine, the load average when it started, the date
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).

run() {
    line=$("$@" --timeout 60) || { echo "$(basename "$0"): failed: $*" >&2; exit 1; }
    case $line in
    *check=FAILED*) echo "$(basename "$0"): check failed: $line" >&2; exit 1 ;;
    esac
    echo "$line" >>"$runs"
    echo "$line"
}
field() {
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}
med() {
    echo "$2" | grep . | while read -r l; do field "$1" "$l"; done | median
}
spread() {
    echo "$2" | grep . | while read -r l; do field "$1" "$l"; done |
        awk 'NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 }
             END { if (NR > 1) printf "%s–%s", lo, hi }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'
}
fmt_rate() {
    awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"
        else if (v < 1e5) printf "%.1f k values/s", v / 1e3
        else printf "%.2f M values/s", v / 1e6 }'
}
machine() {
    echo "$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
}
started() {
    echo "$(cut -d' ' -f1-3 /proc/loadavg)|$(date -u '+%Y-%m-%d %H:%M UTC')"
}
stamp() {
    echo "Command: \`$1\`. Machine: $(machine); load average ${2%%|*} at the start; ${2#*|}."
}
