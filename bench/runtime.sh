#!/bin/sh
# bench/runtime.sh - run the runtime benchmarks in C (libchan) and in Go,
# side by side, print a table with ratios and write it into
# bench/RESULTS.md (section "Runtime vs Go"), and the time per operation of
# each line into WORK_DIR/runtime.dat for bench/plot.sh (a daisy chain's
# wall time per goroutine of the chain; memory stays in the table).  Run by
# `make bench-runtime`:
#   runtime.sh C_BENCH_BINARY GO_SOURCE_DIR WORK_DIR RESULTS_MD
# Each figure is the median of REPS runs (default 9: single runs of one
# line differ by up to 4x here, when two goroutines land on one worker or
# on two, and a select over buffered channels has two speeds, fixed at its
# start), libchan and Go alternating so that both see the same machine;
# `nice` keeps other work responsive.  Speed is reported, never asserted.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
cbin=$1
godir=$2
work=$3
results=$4
mkdir -p "$work"
work=$(cd "$work" && pwd)

# Go, offline: modules from the source tree only, caches in the build dir.
gobin="$work/bench_runtime_go"
if command -v go >/dev/null 2>&1; then
    (cd "$godir" && GOFLAGS=-mod=mod GOPATH="$work/gopath" GOCACHE="$work/gocache" \
        GOPROXY=off go build -o "$gobin" .) || gobin=""
else
    gobin=""
fi

reps=${REPS:-9}

# run ENV-ASSIGNMENT PROGRAM ARGS... -> the program's one output line
run() {
    envset=$1
    shift
    env $envset nice -n 10 "$@" 2>/dev/null | tail -n 1
}

# median: of the numbers on stdin, one a line ("" if none)
median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# col N LINES: the median of word N over the (non-empty) lines, else "-"
col() {
    _m=$(echo "$2" | awk -v f="$1" 'NF { print $f }' | median)
    echo "${_m:--}"
}

table=$(mktemp)
trap 'rm -f "$table"' EXIT
printf '| workload | libchan | Go 1.19 | Go / libchan |\n|---|---|---|---|\n' >"$table"
load=$(cut -d' ' -f1-3 /proc/loadavg)
date=$(date -u '+%Y-%m-%d %H:%M UTC')
data="$work/runtime.dat"
printf '# workload, ns per operation: libchan Go (bench/runtime.sh; "-": not run)\n' >"$data"

# line LABEL UNIT PROCS CMD N [FIELD]: FIELD is the output word with the value
line() {
    label=$1 unit=$2 procs=$3 cmd=$4 n=$5 field=${6:-2}
    cls="" gls=""
    for _r in $(seq "$reps"); do   # alternating: both see the same machine
        cls="$cls
$(run "CHAN_PROCS=$procs" "$cbin" "$cmd" "$n")"
        [ -z "$gobin" ] || gls="$gls
$(run "GOMAXPROCS=$procs" "$gobin" "$cmd" "$n")"
    done
    c=$(col "$field" "$cls") g=$(col "$field" "$gls")
    ratio=$(awk -v c="$c" -v g="$g" 'BEGIN { if (c > 0 && g > 0) printf "%.2f", g / c; else print "-" }')
    printf '| %s | %s %s | %s %s | %s |\n' "$label" "$c" "$unit" "$g" "$unit" "$ratio" >>"$table"
    printf '"%s" %s %s\n' "$label" "${c:--}" "${g:--}" >>"$data"
    printf '%-44s %10s %10s  %s\n' "$label ($unit)" "$c" "$g" "$ratio"
}

# daisy LABEL N: wall time and peak RSS, medians of $reps runs of each
daisy() {
    label=$1 n=$2
    cls="" gls=""
    for _r in $(seq "$reps"); do
        cls="$cls
$(run "" "$cbin" daisy "$n")"
        [ -z "$gobin" ] || gls="$gls
$(run "" "$gobin" daisy "$n")"
    done
    ct=$(col 3 "$cls") cm=$(col 5 "$cls") gt=$(col 3 "$gls") gm=$(col 5 "$gls")
    rt=$(awk -v c="$ct" -v g="$gt" 'BEGIN { if (c > 0 && g > 0) printf "%.2f", g / c; else print "-" }')
    rm_=$(awk -v c="$cm" -v g="$gm" 'BEGIN { if (c > 0 && g > 0) printf "%.2f", g / c; else print "-" }')
    printf '| %s, wall time | %s s | %s s | %s |\n' "$label" "$ct" "$gt" "$rt" >>"$table"
    printf '| %s, peak RSS | %s MB | %s MB | %s |\n' "$label" "$cm" "$gm" "$rm_" >>"$table"
    printf '"%s, per goroutine" %s %s\n' "$label" \
        "$(awk -v t="$ct" -v n="$n" 'BEGIN { if (t > 0) printf "%.1f", t * 1e9 / n; else print "-" }')" \
        "$(awk -v t="$gt" -v n="$n" 'BEGIN { if (t > 0) printf "%.1f", t * 1e9 / n; else print "-" }')" \
        >>"$data"
    printf '%-44s %10s %10s  %s\n' "$label wall (s)" "$ct" "$gt" "$rt"
    printf '%-44s %10s %10s  %s\n' "$label peak RSS (MB)" "$cm" "$gm" "$rm_"
}

printf '%-44s %10s %10s  %s\n' "workload (unit)" "libchan" "Go" "Go/libchan"
line "unbuffered ping-pong, 1 worker" "ns/handoff" 1 pingpong 1000000
line "unbuffered ping-pong, 2 workers" "ns/handoff" 2 pingpong 1000000
line "buffered channel cap 1024" "ns/value" 2 buffered 5000000
line "select over 2 buffered channels" "ns/select" 2 select2 2000000
line "select over 4 buffered channels" "ns/select" 2 select4 2000000
line "select over 2 unbuffered channels" "ns/select" 2 select2u 1000000
line "select over 4 unbuffered channels" "ns/select" 2 select4u 1000000
line "goroutine start+exit" "ns" 2 spawn 1000000
daisy "daisy chain 100,000" 100000
daisy "daisy chain 1,000,000" 1000000
line "fan-in of 4 generators" "ns/value" 2 fanin 1000000

# Replace the section "Runtime vs Go" of RESULTS.md (or add it).
machine="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
section=$(mktemp)
{
    echo "## Runtime vs Go"
    echo
    echo "bench/runtime.sh runs each program $reps times, libchan and Go 1.19 alternating, Go with"
    echo "GOMAXPROCS equal to CHAN_PROCS; the table shows the medians. Ratio above 1: libchan is faster"
    echo "(or smaller). On this VM single runs of one line differ widely. A select over buffered"
    echo "channels runs in one of two ways, fixed at its start: with both producers started on the"
    echo "other worker the selecting goroutine has a core to itself (select over 2: 39-47 ns in 9"
    echo "runs of 2026-12-08), with one of them on its own worker it shares it for good, since a"
    echo "goroutine that has started never moves (80-86 ns); Go moves goroutines (50-55 ns). And a"
    echo "run that first touches memory the guest has not used before is slow: the chain of"
    echo "1,000,000 took 3.3-9.0 s in single runs of libchan (4 GB), 3.4-4.0 s of Go (2.7 GB)."
    echo "The picture shows the time per operation (a daisy chain's: its wall time per goroutine)."
    echo
    echo "![Time per operation, libchan against Go, for each workload](runtime.svg)"
    echo
    echo "Command: \`make bench-runtime\`. Machine: $machine; load average $load at the start; $date."
    echo
    cat "$table"
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
rm -f "$section"
echo "wrote $results"
