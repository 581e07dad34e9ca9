#!/bin/sh
# bench/cluster.sh - a chand cluster on this machine: one etcd member and a
# group of two chands (primary and replica).
#   - throughput of the producer->consumer load of bench/durable.sh
#     (chanbench, batches of 256, 64-byte values) against a single chand
#     with --data-dir, and against the cluster's primary under
#     --replication sync and async (all --fsync everysec);
#   - failover time over KILLS (default 20) kills: SIGKILL of the primary
#     to the replica serving as primary (its log line), with --lease-ttl 2s;
#     the killed node is started again and catches up before the next kill.
# Writes the section "Cluster: replication and failover" of RESULTS.md.
# Run by `make bench-cluster`:
#   cluster.sh CHAND CHANBENCH WORK_DIR RESULTS_MD
# Every process is started here, on loopback ports, and stopped by PID.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
cbench=$2
work=$3
results=$4
reps=${REPS:-3}
count=${CL_COUNT:-1000000}
kills=${KILLS:-20}
ttl=2

mkdir -p "$work"
work=$(cd "$work" && pwd)
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
data=$(mktemp -d "$work/cluster.XXXXXX")
runs="$work/cluster.runs"
: >"$runs"
etcd_pid=""
n1=""
n2=""
chand_pid=""
cleanup() {
    for p in $n1 $n2 $chand_pid $etcd_pid; do server_stop "$p"; done
    rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v etcd >/dev/null || { echo "cluster: etcd is not installed (etcd-server)" >&2; exit 1; }

etcd_up "$data" || exit 1

# start_node N PORT MODE CLUSTER: node N of CLUSTER (sets nN)
start_node() {
    mkdir -p "$data/$4"
    "$chand" --listen "127.0.0.1:$2" --data-dir "$data/$4/d$1" --cluster "$4" --etcd "$ETCD" \
        --lease-ttl ${ttl}s --replication "$3" --fsync everysec >>"$data/$4/n$1.log" 2>&1 &
    eval "n$1=$!"
}
# serving CLUSTER N: the term node N last started serving in (empty: none)
serving() {
    grep -o "serving as primary of group g1 (term [0-9]*)" "$data/$1/n$2.log" 2>/dev/null |
        tail -n 1 | sed 's/.*term \([0-9]*\))/\1/'
}
# wait_serving CLUSTER AFTER_TERM: until a node serves in a term later than
# AFTER_TERM (0: any); sets who and term
wait_serving() {
    _i=0
    while [ $_i -lt 3000 ]; do
        for _n in 1 2; do
            _t=$(serving "$1" $_n)
            if [ -n "$_t" ] && [ "$_t" -gt "$2" ]; then who=$_n; term=$_t; return 0; fi
        done
        _i=$((_i + 1))
        sleep 0.01
    done
    echo "cluster: no primary in $1" >&2
    exit 1
}
joined() {   # joined CLUSTER N: how many replicas joined node N so far
    grep -c "replica .* joined" "$data/$1/n$2.log" 2>/dev/null || true
}
wait_joined() {   # wait_joined CLUSTER N COUNT
    _i=0
    until [ "$(joined "$1" "$2")" -ge "$3" ]; do
        _i=$((_i + 1))
        [ $_i -lt 1000 ] || { echo "cluster: no replica joined in $1" >&2; exit 1; }
        sleep 0.01
    done
}

pc="-p 1 -m 1 -P 256 -r 256 -s 64 -n $count --cap 65536"
load=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- throughput ----
run_single() {
    d="$data/single"
    rm -rf "$d"
    mkdir -p "$d"
    chand_up "$chand" "$d" --data-dir "$d/data" --fsync everysec || exit 1
    line=$(run "$cbench" -a "$chand_addr" $pc)
    server_stop "$chand_pid"
    chand_pid=""
}
run_cluster() {   # run_cluster MODE
    c="c$1$i"
    free_port P1
    free_port P2
    start_node 1 "$P1" "$1" "$c"
    wait_serving "$c" 0
    start_node 2 "$P2" "$1" "$c"
    wait_joined "$c" "$who" 1
    eval "paddr=127.0.0.1:\$P$who"
    line=$(run "$cbench" -a "$paddr" $pc)
    server_stop "$n1"
    server_stop "$n2"
    n1=""
    n2=""
}
echo "cluster: $reps runs each of single, sync and async ($count values)" >&2
for i in $(seq "$reps"); do
    run_single
    echo "$line" >>"$data/t_single"
    run_cluster sync
    echo "$line" >>"$data/t_sync"
    run_cluster async
    echo "$line" >>"$data/t_async"
done

# ---- failover ----
echo "cluster: $kills failovers" >&2
c=fail
free_port P1
free_port P2
start_node 1 "$P1" sync "$c"
wait_serving "$c" 0
start_node 2 "$P2" sync "$c"
wait_joined "$c" "$who" 1
: >"$data/failover_ms"
for k in $(seq "$kills"); do
    victim=$who
    eval "vp=\$n$victim"
    eval "vport=\$P$victim"
    survivor=$((3 - victim))
    joins=$(joined "$c" "$survivor")
    t0=$(date +%s%N)
    kill -KILL "$vp"
    wait "$vp" 2>/dev/null || true
    wait_serving "$c" "$term"
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 )) >>"$data/failover_ms"
    start_node "$victim" "$vport" sync "$c"
    wait_joined "$c" "$who" $((joins + 1))
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the section ----
rate() { fmt_rate "$(med values_per_s "$(cat "$data/t_$1")")"; }
fo_med=$(median <"$data/failover_ms")
fo_max=$(sort -n "$data/failover_ms" | tail -n 1)
fo_min=$(sort -n "$data/failover_ms" | head -n 1)
s=$(med values_per_s "$(cat "$data/t_single")")
commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || true)
section="$data/section.md"
{
    echo "## Cluster: replication and failover"
    echo
    echo "Command: \`make bench-cluster\` (bench/cluster.sh)."
    echo
    echo "One etcd member and a group of two chands (primary and replica), all on this machine,"
    echo "\`--fsync everysec\`. Throughput: chanbench's producer->consumer load ($count values"
    echo "of 64 bytes, batches of 256, acknowledgements on) against the primary; medians of $reps."
    echo "Under \`sync\` a send is answered once the replica has written its records; the replica"
    echo "shares the machine's two cores with the primary and the load generator."
    echo
    echo "| chand | throughput | against one durable chand |"
    echo "|---|---|---|"
    echo "| single, \`--data-dir\` | $(rate single) | 1.00 |"
    echo "| cluster, \`--replication sync\` | $(rate sync) | $(ratio "$(med values_per_s "$(cat "$data/t_sync")")" "$s") |"
    echo "| cluster, \`--replication async\` | $(rate async) | $(ratio "$(med values_per_s "$(cat "$data/t_async")")" "$s") |"
    echo
    echo "Failover, $kills times: SIGKILL of the primary to the replica's log line \"serving as"
    echo "primary\" (its lease expired on etcd, it was elected, and it loaded its copy), with"
    echo "\`--lease-ttl 2s\`; the killed node then restarts and catches up before the next kill."
    echo "Median **$fo_med ms**, min $fo_min ms, max $fo_max ms. Most of it is the lease: the"
    echo "replica sees the primary key go on its next read of etcd (every 100 ms), waits two"
    echo "reads so every node has published its position, and campaigns."
    echo
    echo "Machine: $(machine); load average $load at the start and $load_end at the end."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')${commit:+; chand at commit $commit}."
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
echo "wrote $results (every run's line: $runs)"
