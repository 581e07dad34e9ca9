#!/bin/sh
# bench/groups.sh - one namespace over 1, 2 and 4 groups on this machine:
# one etcd member and G chands, each the primary of a group of its own
# (--replication async, --fsync everysec: no replica shares the cores),
# the slots spread evenly by `chan cluster move`; then one
# producer->consumer pair per group (chanbench, batches of 256, 64-byte
# values) at the same time, each on a channel of its group's slots,
# through the seeds (libchan routes by slot).  Reports the sum of their
# throughputs, and the time each move took.
# Writes the section "Cluster: groups" of RESULTS.md.  Run by
# `make bench-cluster`:
#   groups.sh CHAND CHANBENCH CHAN WORK_DIR RESULTS_MD
# Every process is started here, on loopback ports, and stopped by PID.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
cbench=$2
chan=$3
work=$4
results=$5
reps=${REPS:-3}
count=${GROUPS_COUNT:-1000000}

mkdir -p "$work"
work=$(cd "$work" && pwd)
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
data=$(mktemp -d "$work/groups.XXXXXX")
runs="$work/groups.runs"
: >"$runs"
etcd_pid=""
nodes=""
cleanup() {
    for p in $nodes $etcd_pid; do server_stop "$p"; done
    rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v etcd >/dev/null || { echo "groups: etcd is not installed (etcd-server)" >&2; exit 1; }

etcd_up "$data" || exit 1

# prefix_in LO HI: a chanbench --prefix whose channel (PREFIX.q) is in a
# slot of LO..HI
prefix_in() {
    _k=0
    while :; do
        _s=$("$chan" cluster slot "p$_k.q")
        if [ "$_s" -ge "$1" ] && [ "$_s" -le "$2" ]; then echo "p$_k"; return; fi
        _k=$((_k + 1))
    done
}

# run_groups G: a cluster of G groups, its slots spread, G pairs at once;
# appends the summed values/s to $data/t_G and each move's ms to $data/moves
run_groups() {
    g=$1
    c="g$g.$r"
    seeds=""
    nodes=""
    mkdir -p "$data/$c"
    for k in $(seq "$g"); do
        free_port P
        "$chand" --listen "127.0.0.1:$P" --data-dir "$data/$c/d$k" --cluster "$c" --group "g$k" \
            --etcd "$ETCD" --lease-ttl 5s --replication async --fsync everysec \
            >>"$data/$c.n$k.log" 2>&1 &
        nodes="$nodes $!"
        seeds="${seeds:+$seeds,}127.0.0.1:$P"
    done
    i=0
    until [ "$(grep -l "serving as primary" "$data/$c".n*.log 2>/dev/null | wc -l)" -eq "$g" ] &&
        "$chan" --addr "$seeds" cluster slots >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 300 ] || { echo "groups: $c did not come up" >&2; exit 1; }
        sleep 0.1
    done
    # the first primary took every slot; give group k its share
    first=$("$chan" --addr "$seeds" cluster slots | sed -n 's/^0-1023 \(g[0-9]*\) .*/\1/p')
    per=$((1024 / g))
    k=0
    for grp in $(seq "$g" | sed 's/^/g/' | grep -vx "$first"); do
        k=$((k + 1))
        lo=$((k * per))
        hi=$((lo + per - 1))
        "$chan" --addr "$seeds" cluster move "$lo-$hi" "$grp" |
            sed -n 's/.* in \([0-9]*\) ms$/\1/p' >>"$data/moves"
    done
    # one pair per group, all at once
    pids=""
    k=0
    "$chan" --addr "$seeds" cluster slots | while read -r range grp _; do
        lo=${range%-*}
        hi=${range#*-}
        echo "$lo $hi"
    done >"$data/ranges"
    : >"$data/lines"
    while read -r lo hi; do
        k=$((k + 1))
        pre=$(prefix_in "$lo" "$hi")
        "$cbench" -a "$seeds" --prefix "$pre" -p 1 -m 1 -P 256 -r 256 -s 64 -n "$count" \
            --cap 65536 --timeout 120 >"$data/line$k" &
        pids="$pids $!"
    done <"$data/ranges"
    for p in $pids; do wait "$p" || { echo "groups: a chanbench failed" >&2; exit 1; }; done
    cat "$data"/line* >>"$runs"
    cat "$data"/line* | while read -r l; do field values_per_s "$l"; done |
        awk '{ s += $1 } END { printf "%.0f\n", s }' >>"$data/t_$g"
    rm -f "$data"/line*
    for p in $nodes; do server_stop "$p"; done
    nodes=""
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$data/moves"
echo "groups: $reps runs each of 1, 2 and 4 groups ($count values per pair)" >&2
for r in $(seq "$reps"); do
    for g in 1 2 4; do run_groups "$g"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

rate() { fmt_rate "$(median <"$data/t_$1")"; }
one=$(median <"$data/t_1")
mv_med=$(median <"$data/moves")
mv_max=$(sort -n "$data/moves" | tail -n 1)
commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || true)
section="$data/section.md"
{
    echo "## Cluster: groups"
    echo
    echo "Command: \`make bench-groups\` (bench/groups.sh; \`make bench-cluster\` runs it too)."
    echo
    echo "One etcd member and 1, 2 or 4 groups of one chand each (\`--replication async\`,"
    echo "\`--fsync everysec\`), the slots spread evenly with \`chan cluster move\`; then one"
    echo "chanbench producer->consumer pair per group at once ($count values of 64 bytes each,"
    echo "batches of 256), each on a channel of its group's slots, through the seeds (libchan"
    echo "routes each channel to its group's primary). Sum of the pairs' throughputs, medians of"
    echo "$reps."
    echo
    echo "| groups | throughput, all pairs | against one group |"
    echo "|---|---|---|"
    for g in 1 2 4; do
        echo "| $g | $(rate "$g") | $(ratio "$(median <"$data/t_$g")" "$one") |"
    done
    echo
    echo "Reading it: a chand is one event loop, so one group's throughput is bound by one"
    echo "core (its loop) while its pair's threads use part of the other. Two groups put a"
    echo "loop on each of this machine's two cores; four share the same two, with the pairs'"
    echo "threads. The routing itself (a hash and a table lookup per call) costs nothing"
    echo "visible. On a machine with a core per chand and per client, each group adds its own"
    echo "loop, journal and replication stream, and a pair never crosses groups: throughput"
    echo "grows with the groups until the network or the disks bind."
    echo
    echo "The $(wc -l <"$data/moves") moves that spread the slots (empty channels) took $mv_med ms"
    echo "at the median and $mv_max ms at most: mostly the nodes' next read of etcd (every 100 ms)."
    echo
    echo "Machine: $(machine); load average $load at the start and $load_end at the end."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')${commit:+; chand at commit $commit}."
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
echo "wrote $results (every run's line: $runs)"
