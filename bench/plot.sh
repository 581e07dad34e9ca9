#!/bin/sh
# bench/plot.sh - draw the pictures bench/RESULTS.md shows, as SVG files
# beside it, with gnuplot, from the data the bench scripts leave in their
# work directory:
#   throughput  throughput.svg: values/s against values per batch, both
#               axes logarithmic, chand, Redis and NATS (bench/compare.sh's
#               throughput.dat)
#   latency     latency.svg: request/reply round trips as a CDF (the share
#               of round trips within each latency, log x), chand with
#               channels of capacity 1 and unbuffered, Redis and NATS
#               (bench/compare.sh's latency.NAME.us, one round trip a line)
#   runtime     runtime.svg: time per operation, libchan against Go, a pair
#               of bars for each workload, log y (bench/runtime.sh's
#               runtime.dat)
# Run by `make bench-compare` (throughput, latency) and `make bench-runtime`
# (runtime) once they have measured:
#   plot.sh WORK_DIR OUT_DIR [PLOT...]        (no PLOT: all three)
# Missing data is an error: a picture is never drawn from nothing.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
work=$1
out=$2
shift 2
plots=${*:-throughput latency runtime}
gnuplot=${GNUPLOT:-gnuplot}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need() {
    [ -s "$1" ] || { echo "plot: no data in $1 (run the benchmark first)" >&2; exit 1; }
}

# The look every picture shares: SVG, white, a grid, the key top left.
preamble() {
    cat <<EOF
set terminal svg size $1,$2 dynamic noenhanced font "sans,12" background rgb "white"
set grid xtics ytics mytics lc rgb "#dddddd"
set key top left box opaque
set border 3
set tics nomirror
set style line 1 lc rgb "#1b6ac9" lw 2 pt 7 ps 0.8
set style line 2 lc rgb "#d62728" lw 2 pt 5 ps 0.8
set style line 3 lc rgb "#2ca02c" lw 2 pt 9 ps 0.9
set style line 4 lc rgb "#7fa9e0" lw 2 dt 2 pt 6 ps 0.8
EOF
}

# Draw $tmp/script into OUT_DIR/NAME.svg (written whole, or not at all).
draw() {
    "$gnuplot" "$tmp/script" >"$tmp/$1.svg"
    mv "$tmp/$1.svg" "$out/$1.svg"
    echo "plot: wrote $out/$1.svg"
}

throughput() {
    data="$work/throughput.dat"
    need "$data"
    {
        preamble 800 480
        cat <<EOF
set title "Producer to consumer: values per second against values per batch (64 B values)"
set logscale x 2
set logscale y 10
set xtics (1, 4, 16, 64, 256, 1024)
set format y "%.0s %c"
set xlabel "values per batch (a receive takes up to a batch)"
set ylabel "values per second"
plot "$data" using 1:3 with linespoints ls 1 title "chand (chan_send_many)", \\
     "" using 1:4 with linespoints ls 2 title "Redis (variadic RPUSH)", \\
     "" using 1:5 with linespoints ls 3 title "NATS (PUBs, then PING)"
EOF
    } >"$tmp/script"
    draw throughput
}

# NAME.us -> NAME.cdf: "µs share" at most ~1000 points (every 0.1% of the
# round trips, and the slowest one), sorted.
cdf() {
    need "$work/latency.$1.us"
    sort -n "$work/latency.$1.us" | awk -v n="$(grep -c . "$work/latency.$1.us")" '
        { k = int(NR * 1000 / n); if (k != last || NR == n) { print $1, NR / n; last = k } }' \
        >"$tmp/$1.cdf"
}

latency() {
    for s in chand-cap1 chand-cap0 redis nats; do
        cdf "$s"
    done
    {
        preamble 800 480
        cat <<EOF
set title "Request/reply round trips between two clients: share within each latency"
set logscale x 10
set xlabel "round trip (µs)"
set ylabel "share of round trips"
set yrange [0:1]
set ytics 0.1
set key bottom right box opaque
plot "$tmp/chand-cap1.cdf" using 1:2 with lines ls 1 title "chand, channels of capacity 1", \\
     "$tmp/chand-cap0.cdf" using 1:2 with lines ls 4 title "chand, unbuffered channels", \\
     "$tmp/redis.cdf" using 1:2 with lines ls 2 title "Redis (RPUSH + BLPOP)", \\
     "$tmp/nats.cdf" using 1:2 with lines ls 3 title "NATS (a PUB each way)"
EOF
    } >"$tmp/script"
    draw latency
}

runtime() {
    data="$work/runtime.dat"
    need "$data"
    {
        preamble 960 560
        cat <<EOF
set title "libchan against Go 1.19: time per operation (lower is faster)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 10
set yrange [10:*]
set ylabel "ns per operation"
set xtics rotate by 30 right font ",10"
set bmargin 10
set lmargin 24
plot "$data" using 2:xtic(1) lc rgb "#1b6ac9" title "libchan", \\
     "" using 3 lc rgb "#9e9e9e" title "Go"
EOF
    } >"$tmp/script"
    draw runtime
}

command -v "$gnuplot" >/dev/null 2>&1 ||
    { echo "plot: $gnuplot not found (scripts/deps.sh gnuplot-nox installs it)" >&2; exit 1; }
mkdir -p "$out"
for p in $plots; do
    case $p in
    throughput | latency | runtime) "$p" ;;
    *) echo "plot: unknown plot $p (throughput, latency, runtime)" >&2; exit 64 ;;
    esac
done
