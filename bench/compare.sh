#!/bin/sh
# bench/compare.sh - chand against Redis and NATS, the same work in one run:
# start chand, redis-server and nats-server on loopback ephemeral ports,
# drive them with the same load generator (chanbench / redisbench /
# natsbench, bench/loadgen.c), stop them, print one table of ratios and
# write it into bench/RESULTS.md (section "chand vs Redis and NATS").  Run
# by `make bench-compare`:
#   compare.sh CHAND CHANBENCH REDISBENCH NATSBENCH WORK_DIR RESULTS_MD [BENCH_REMOTE [DAISY]]
# The section has: producer->consumer throughput with 1 producer and 1
# consumer and with 25 + 25 on 50 connections; request/reply round trips
# (every one of them written to WORK_DIR/latency.NAME.us for bench/plot.sh's
# CDF) and pings; a sweep of throughput against the batch size
# (WORK_DIR/throughput.dat, plotted too).  With BENCH_REMOTE
# (bench/bench_remote.c) it also measures remote channels from goroutines
# against the raw TCP floor and Redis (the goals for remote channels from
# goroutines), and with DAISY (examples/daisy) the chain of 100,000
# goroutines across chand against the same chain of local channels.
# Then the same load over TLS (section "chand and Redis over TLS"): a chand
# with --tls-cert and a redis-server with --tls-port, on certificates made
# for the run by openssl in a temporary directory, against the plain ones
# (`make bench-tls`, or ONLY=tls, runs this section alone).
# Each measurement runs REPS times (default 5), the servers alternating so
# that all see the same machine; the tables show the medians.  Sizes:
# PC_COUNT values per producer->consumer run (default 3000000: a run of
# about a second, long enough to average over the VM's hiccups), RT_COUNT
# round trips per latency run (10000), MANY_COUNT and MANY1_COUNT values
# per 50-connection run in batches of 16 and of 1 (400000, 100000); the
# sweep runs SWEEP_REPS times (default REPS, at most 3), min(SWEEP_COUNT,
# SWEEP_UNIT x batch) values a run (1000000, 10000).  The machine may be
# shared: the load average at the start is recorded with each table.  Speed
# is reported, never asserted.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
cbench=$2
rbench=$3
nbench=$4
work=$5
results=$6
gbench=${7:-}
daisy=${8:-}                    # examples/daisy: the chain across chand
reps=${REPS:-5}
pc_count=${PC_COUNT:-3000000}   # values per producer->consumer run
rt_count=${RT_COUNT:-10000}     # round trips per latency run
many_count=${MANY_COUNT:-400000}
many1_count=${MANY1_COUNT:-100000}
sweep_unit=${SWEEP_UNIT:-10000}
sweep_max=${SWEEP_COUNT:-1000000}
sweep_reps=${SWEEP_REPS:-$((reps < 3 ? reps : 3))}
sweep_batches="1 4 16 64 256 1024"
redis_server=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
nats_server=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
only=${ONLY:-}                  # "tls": only the TLS section
case $only in
"" | tls) ;;
*) echo "compare: ONLY=$only: only 'tls' is known" >&2; exit 64 ;;
esac

mkdir -p "$work"
work=$(cd "$work" && pwd)
chand_pid=""
redis_pid=""
nats_pid=""
tchand_pid=""
tredis_pid=""
table=$(mktemp)
gtable=$(mktemp)
ttable=$(mktemp)
stable=$(mktemp)
sweep=$(mktemp)
certs=$(mktemp -d)
runs="$work/compare.runs"
: >"$runs"

. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
stop() {
    server_stop "$chand_pid"
    server_stop "$redis_pid"
    server_stop "$nats_pid"
    server_stop "$tchand_pid"
    server_stop "$tredis_pid"
    chand_pid=""
    redis_pid=""
    nats_pid=""
    tchand_pid=""
    tredis_pid=""
}
trap 'stop; rm -rf "$table" "$gtable" "$ttable" "$stable" "$sweep" "$certs"' EXIT
trap 'exit 130' INT TERM

# ---- start chand (port 0), redis-server (free-looking ports), nats-server (port -1) ----
chand_up "$chand" "$work" || exit 1
redis_up "$redis_server" "$rbench" "$work" --save '' --appendonly no || exit 1
if [ "$only" != tls ]; then
    nats_up "$nats_server" "$nbench" "$work" || exit 1
fi
# ---- and chand and Redis speaking TLS, on certificates made for this run ----
tls_certs "$certs" || exit 1
mkdir -p "$work/tls"
# (servers.sh keeps one chand and one redis-server in its variables: the
# plain ones' are put back, also when a start fails, so that stop() ends all)
p_pid=$chand_pid p_addr=$chand_addr
chand_up "$chand" "$work/tls" --tls-cert "$certs/server.crt" --tls-key "$certs/server.key" ||
    { tchand_pid=$chand_pid chand_pid=$p_pid; exit 1; }
tchand_pid=$chand_pid tchand_addr="tls://$chand_addr"
chand_pid=$p_pid chand_addr=$p_addr
p_pid=$redis_pid p_addr=$redis_addr
redis_tls=$certs
redis_up "$redis_server" "$rbench" "$work/tls" --save '' --appendonly no ||
    { redis_pid=$p_pid; exit 1; }
redis_tls=""
tredis_pid=$redis_pid tredis_addr=$redis_addr
redis_pid=$p_pid redis_addr=$p_addr
ca="--tls-ca $certs/ca.crt"

# ---- helpers ----
verdict() {   # verdict RATIO OP LIMIT -> met / not met
    awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (r == "-") { print "-"; exit }
        ok = (op == ">=") ? (r + 0 >= l + 0) : (r + 0 <= l + 0)
        print (ok ? "met" : "not met") }'
}
row() {   # row LABEL CHAND REDIS CHAND/REDIS NATS CHAND/NATS GOAL
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@" >>"$table"
}
rate() {   # rate PROGRAM ARGS...: one run's values/s
    _l=$(run "$@")
    field values_per_s "$_l"
}
mid() {   # mid "V1 V2 ...": their median
    echo $1 | tr ' ' '\n' | median
}
rtt() {   # rtt NAME PROGRAM ARGS...: a ping-pong run's line; its round trips
          # are added to $work/latency.NAME.us
    _name=$1
    shift
    _l=$(run "$@" --samples "$work/latency.$_name.tmp")
    cat "$work/latency.$_name.tmp" >>"$work/latency.$_name.us"
    rm -f "$work/latency.$_name.tmp"
    echo "$_l"
}

measure_plain() {
    plain_started=$(started)
    # ---- producer -> consumer throughput, 64-byte values ----
    pc="-p 1 -m 1 -s 64 -n $pc_count"
    c_pc="" r_pc="" r_pcv="" n_pc="" n_pck=""
    for i in $(seq "$reps"); do
        c_pc="$c_pc $(rate "$cbench" -a "$chand_addr" $pc -P 256 -r 256 --cap 65536)"
        r_pc="$r_pc $(rate "$rbench" -a "$redis_addr" $pc -P 256 -r 256)"
        r_pcv="$r_pcv $(rate "$rbench" -a "$redis_addr" $pc -P 256 -r 256 --multi-push)"
        n_pc="$n_pc $(rate "$nbench" -a "$nats_addr" $pc -P 256 -r 256)"
        n_pck="$n_pck $(rate "$nbench" -a "$nats_addr" $pc -P 1000 -r 1000)"
    done
    c_pc=$(mid "$c_pc") r_pc=$(mid "$r_pc") r_pcv=$(mid "$r_pcv") n_pc=$(mid "$n_pc")
    n_pck=$(mid "$n_pck")
    x=$(ratio "$c_pc" "$r_pc")
    row "producer→consumer, 64 B values, batches of 256 (Redis: pipeline of 256 RPUSH; LPOP 256, BLPOP when empty; NATS: 256 PUB then PING, done at the PONG)" \
        "$(fmt_rate "$c_pc")" "$(fmt_rate "$r_pc")" "**$x**" "$(fmt_rate "$n_pc")" \
        "**$(ratio "$c_pc" "$n_pc")**" "(reported)"
    x=$(ratio "$c_pc" "$r_pcv")
    row "the same, Redis in its best form: each batch one variadic RPUSH of 256 values" \
        "$(fmt_rate "$c_pc")" "$(fmt_rate "$r_pcv")" "**$x**" "" "" \
        "≥ 2 against Redis: $(verdict "$x" ">=" 2)"
    x=$(ratio "$c_pc" "$n_pck")
    row "the same, NATS in its own best form: batches of 1000 PUB then PING (chand: 256)" \
        "$(fmt_rate "$c_pc")" "" "" "$(fmt_rate "$n_pck")" "**$x**" \
        "≥ 2 against NATS: $(verdict "$x" ">=" 2)"

    # ---- request/reply round trips between two clients over two channels ----
    rm -f "$work"/latency.*.us
    c1="" c0="" rr="" nr=""
    for i in $(seq "$reps"); do
        c1="$c1
$(rtt chand-cap1 "$cbench" -a "$chand_addr" --mode ping-pong --cap 1 -n "$rt_count")"
        rr="$rr
$(rtt redis "$rbench" -a "$redis_addr" --mode ping-pong -n "$rt_count")"
        nr="$nr
$(rtt nats "$nbench" -a "$nats_addr" --mode ping-pong -n "$rt_count")"
        c0="$c0
$(rtt chand-cap0 "$cbench" -a "$chand_addr" --mode ping-pong --cap 0 -n "$rt_count")"
    done
    r_50=$(med rtt_p50_us "$rr") r_99=$(med rtt_p99_us "$rr")
    n_50=$(med rtt_p50_us "$nr") n_99=$(med rtt_p99_us "$nr")
    for cap in 1 0; do
        if [ "$cap" = 1 ]; then
            lines=$c1 what="chand: channels of capacity 1" short="capacity 1" goal=0.75
        else
            lines=$c0 what="chand: unbuffered channels, the send waits for the ack" short="unbuffered"
            goal=1
        fi
        c50=$(med rtt_p50_us "$lines") c99=$(med rtt_p99_us "$lines")
        x=$(ratio "$c50" "$r_50")
        row "request/reply round trip, median ($what; Redis: RPUSH + BLPOP; NATS: a PUB each way)" \
            "$c50 µs" "$r_50 µs" "**$x**" "$n_50 µs" "**$(ratio "$c50" "$n_50")**" \
            "≤ $goal against Redis: $(verdict "$x" "<=" "$goal")"
        x=$(ratio "$c99" "$r_99")
        row "request/reply round trip, p99 ($short)" "$c99 µs" "$r_99 µs" "$x" \
            "$n_99 µs" "$(ratio "$c99" "$n_99")" "≤ 1 against Redis: $(verdict "$x" "<=" 1)"
    done

    # ---- references: one client's round trip to the server, and raw TCP ----
    cp="" rp="" np="" tp=""
    for i in $(seq "$reps"); do
        cp="$cp
$(run "$cbench" -a "$chand_addr" --mode ping -n "$rt_count")"
        rp="$rp
$(run "$rbench" -a "$redis_addr" --mode ping -n "$rt_count")"
        np="$np
$(run "$nbench" -a "$nats_addr" --mode ping -n "$rt_count")"
        tp="$tp
$(run "$cbench" --mode tcp -n "$rt_count")"
    done
    cp50=$(med rtt_p50_us "$cp") rp50=$(med rtt_p50_us "$rp") np50=$(med rtt_p50_us "$np")
    tp50=$(med rtt_p50_us "$tp")
    row "one client's ping to the server, median (chan_ping / PING / PING)" "$cp50 µs" "$rp50 µs" \
        "$(ratio "$cp50" "$rp50")" "$np50 µs" "$(ratio "$cp50" "$np50")" "(for reference)"
    row "raw TCP round trip over loopback, 64 B, median (no server: the floor for all)" "$tp50 µs" \
        "$tp50 µs" "" "$tp50 µs" "" "(a request/reply through any server is ≥ 2 of these)"

    # ---- many clients: 25 producers and 25 consumers, 50 connections ----
    for b in 16 1; do
        n=$many_count
        [ "$b" = 1 ] && n=$many1_count
        many="-p 25 -m 25 -c 50 -P $b -r $b -s 64 -n $n"
        c_m="" r_m="" n_m=""
        for i in $(seq "$reps"); do
            c_m="$c_m $(rate "$cbench" -a "$chand_addr" $many --cap 65536)"
            r_m="$r_m $(rate "$rbench" -a "$redis_addr" $many --multi-push)"
            n_m="$n_m $(rate "$nbench" -a "$nats_addr" $many)"
        done
        c_m=$(mid "$c_m") r_m=$(mid "$r_m") n_m=$(mid "$n_m")
        if [ "$b" = 16 ]; then
            label="25 producers and 25 consumers on 50 connections, batches of 16 (Redis: one variadic RPUSH of 16; LPOP 16, BLPOP when empty; NATS: 16 PUB then PING)"
        else
            label="the same, batches of 1 (chand: chan_send and chan_recv; Redis: RPUSH and BLPOP; NATS: PUB then PING)"
        fi
        x=$(ratio "$c_m" "$r_m")
        row "$label" "$(fmt_rate "$c_m")" "$(fmt_rate "$r_m")" "**$x**" \
            "$(fmt_rate "$n_m")" "$(ratio "$c_m" "$n_m")" "≥ 1.5 against Redis: $(verdict "$x" ">=" 1.5)"
    done

    # ---- throughput against the batch size ----
    sweep_started=$(started)
    : >"$sweep"
    for i in $(seq "$sweep_reps"); do
        for b in $sweep_batches; do
            n=$((sweep_unit * b))
            [ "$n" -le "$sweep_max" ] || n=$sweep_max
            sw="-p 1 -m 1 -P $b -r $b -s 64 -n $n"
            echo "$b $n chand $(rate "$cbench" -a "$chand_addr" $sw --cap 65536)" >>"$sweep"
            echo "$b $n redis $(rate "$rbench" -a "$redis_addr" $sw --multi-push)" >>"$sweep"
            echo "$b $n nats $(rate "$nbench" -a "$nats_addr" $sw)" >>"$sweep"
        done
    done
    {
        echo "# values/s against values per batch: 1 producer, 1 consumer, 64 B values,"
        echo "# medians of $sweep_reps runs (bench/compare.sh)"
        echo "# batch values chand redis nats"
        for b in $sweep_batches; do
            n=$(awk -v b="$b" '$1 == b { print $2; exit }' "$sweep")
            printf '%s %s' "$b" "$n"
            for s in chand redis nats; do
                printf ' %s' "$(awk -v b="$b" -v s="$s" '$1 == b && $3 == s { print $4 }' "$sweep" | median)"
            done
            echo
        done
    } >"$work/throughput.dat"
    grep -v '^#' "$work/throughput.dat" | while read -r b n c r t; do
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$b" "$n" "$(fmt_rate "$c")" \
            "$(fmt_rate "$r")" "$(fmt_rate "$t")" "$(ratio "$c" "$r")" "$(ratio "$c" "$t")"
    done >"$stable"

    # ---- from goroutines: bench_remote interleaves its own rounds ----
    if [ -n "$gbench" ]; then
        goroutine_started=$(started)
        g=$("$gbench" "$chand_addr" "$reps") || { echo "compare: $gbench failed" >&2; exit 1; }
        echo "$g" | tr '\n' ' ' >>"$runs"
        echo >>"$runs"
        gf() { echo "$g" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        graw=$(gf raw_tcp_rtt_p50_us) gop=$(gf goroutine_op_p50_us) gth=$(gf thread_op_p50_us)
        gpp=$(gf pingpong_p50_us) gtp=$(gf tput_64x64_values_per_s)
        x=$(ratio "$gop" "$graw")
        printf '| %s | %s | %s | %s | %s |\n' "one remote operation (chan_ping) from a goroutine, median" \
            "$gop µs" "raw TCP $graw µs" "**$x**" "≤ 1.5: $(verdict "$x" "<=" 1.5)" >>"$gtable"
        printf '| %s | %s | %s | %s | %s |\n' "the same from a plain thread, median" \
            "$gth µs" "raw TCP $graw µs" "$(ratio "$gth" "$graw")" "(for reference)" >>"$gtable"
        x=$(ratio "$gpp" "$r_50")
        printf '| %s | %s | %s | %s | %s |\n' \
            "ping-pong between goroutines in two processes over two unbuffered channels, median" \
            "$gpp µs" "Redis RPUSH+BLPOP $r_50 µs" "**$x**" "≤ 0.5: $(verdict "$x" "<=" 0.5)" >>"$gtable"
        printf '| %s | %s | %s | %s | %s |\n' \
            "64 goroutines sending, 64 receiving, one unbuffered channel, one connection each side" \
            "$(fmt_rate "$gtp")" "" "" \
            "≥ 0.4 M values/s: $(verdict "$(awk -v v="$gtp" 'BEGIN { print v / 1e6 }')" ">=" 0.4)" \
            >>"$gtable"
    fi

    # ---- the daisy chain across chand (examples/daisy --remote) against
    # the same chain of local channels, runs alternating ----
    if [ -n "$daisy" ] && [ -n "$gbench" ]; then
        dl="" dr=""
        for _ in $(seq "$sweep_reps"); do
            dl="$dl $(wall_ms "$daisy")"
            dr="$dr $(wall_ms "$daisy" --remote "$chand_addr")"
        done
        echo "daisy_local_ms=$dl daisy_remote_ms=$dr" >>"$runs"
        dl=$(mid "$dl") dr=$(mid "$dr")
        x=$(awk -v r="$dr" -v l="$dl" 'BEGIN { printf "%.1f", r / l }')
        floor=$(awk -v op="$gop" 'BEGIN { printf "%.1f", op * 100000 / 1e6 }')
        printf '| %s | %s | %s | %s | %s |\n' \
            "daisy chain of 100,000 goroutines across chand (examples/daisy --remote), wall time; floor: 100,000 remote operations in a row, $floor s" \
            "$(awk -v v="$dr" 'BEGIN { printf "%.2f s", v / 1000 }')" \
            "local channels $(awk -v v="$dl" 'BEGIN { printf "%.2f s", v / 1000 }')" \
            "$x× the local run" "≤ 3×: $(verdict "$x" "<=" 3)" >>"$gtable"
    fi
}

wall_ms() {   # wall_ms PROGRAM ARGS...: its wall time in ms (it must succeed)
    _t0=$(date +%s%N)
    "$@" >/dev/null || { echo "compare: $* failed" >&2; exit 1; }
    echo $(( ($(date +%s%N) - _t0) / 1000000 ))
}

# ---- the same over TLS: chand with TLS, chand plain, Redis with TLS (and
# plain, for its own cost); producer->consumer with Redis in its best form
# (one variadic RPUSH a batch), round trips as above ----
measure_tls() {
    tls_started=$(started)
    pc="-p 1 -m 1 -P 256 -r 256 -s 64 -n $pc_count"
    t_pc="" p_pc="" tr_pc="" pr_pc=""
    t1="" p1="" t0="" p0="" trr="" prr="" tp="" pp="" trp="" prp=""
    for i in $(seq "$reps"); do
        l=$(run "$cbench" -a "$tchand_addr" $ca $pc --cap 65536); t_pc="$t_pc $(field values_per_s "$l")"
        l=$(run "$cbench" -a "$chand_addr" $pc --cap 65536); p_pc="$p_pc $(field values_per_s "$l")"
        l=$(run "$rbench" -a "$tredis_addr" $ca $pc --multi-push); tr_pc="$tr_pc $(field values_per_s "$l")"
        l=$(run "$rbench" -a "$redis_addr" $pc --multi-push); pr_pc="$pr_pc $(field values_per_s "$l")"
        t1="$t1
$(run "$cbench" -a "$tchand_addr" $ca --mode ping-pong --cap 1 -n "$rt_count")"
        p1="$p1
$(run "$cbench" -a "$chand_addr" --mode ping-pong --cap 1 -n "$rt_count")"
        trr="$trr
$(run "$rbench" -a "$tredis_addr" $ca --mode ping-pong -n "$rt_count")"
        prr="$prr
$(run "$rbench" -a "$redis_addr" --mode ping-pong -n "$rt_count")"
        t0="$t0
$(run "$cbench" -a "$tchand_addr" $ca --mode ping-pong --cap 0 -n "$rt_count")"
        p0="$p0
$(run "$cbench" -a "$chand_addr" --mode ping-pong --cap 0 -n "$rt_count")"
        tp="$tp
$(run "$cbench" -a "$tchand_addr" $ca --mode ping -n "$rt_count")"
        pp="$pp
$(run "$cbench" -a "$chand_addr" --mode ping -n "$rt_count")"
        trp="$trp
$(run "$rbench" -a "$tredis_addr" $ca --mode ping -n "$rt_count")"
        prp="$prp
$(run "$rbench" -a "$redis_addr" --mode ping -n "$rt_count")"
    done
    t_pc=$(echo $t_pc | tr ' ' '\n' | median)
    p_pc=$(echo $p_pc | tr ' ' '\n' | median)
    tr_pc=$(echo $tr_pc | tr ' ' '\n' | median)
    pr_pc=$(echo $pr_pc | tr ' ' '\n' | median)
    trow "producer→consumer, 64 B values, batches of 256 (Redis: one variadic RPUSH of 256; LPOP 256, BLPOP when empty)" \
        "$(fmt_rate "$t_pc")" "$(fmt_rate "$p_pc")" "$(ratio "$t_pc" "$p_pc")" \
        "$(fmt_rate "$tr_pc")" "$(fmt_rate "$pr_pc")" "$(ratio "$tr_pc" "$pr_pc")" \
        "**$(ratio "$t_pc" "$tr_pc")**"
    for q in 50 99; do
        a=$(med "rtt_p${q}_us" "$t1") b=$(med "rtt_p${q}_us" "$p1")
        c=$(med "rtt_p${q}_us" "$trr") d=$(med "rtt_p${q}_us" "$prr")
        label="request/reply round trip, p$q (chand: channels of capacity 1; Redis: RPUSH + BLPOP)"
        [ "$q" = 50 ] && label="request/reply round trip, median (chand: channels of capacity 1; Redis: RPUSH + BLPOP)"
        trow "$label" "$a µs" "$b µs" "$(ratio "$a" "$b")" "$c µs" "$d µs" "$(ratio "$c" "$d")" \
            "$([ "$q" = 50 ] && echo "**$(ratio "$a" "$c")**" || ratio "$a" "$c")"
    done
    for q in 50 99; do
        a=$(med "rtt_p${q}_us" "$t0") b=$(med "rtt_p${q}_us" "$p0")
        c=$(med "rtt_p${q}_us" "$trr") d=$(med "rtt_p${q}_us" "$prr")
        label="request/reply round trip, p$q (chand: unbuffered channels)"
        [ "$q" = 50 ] && label="request/reply round trip, median (chand: unbuffered channels, the send waits for the ack)"
        trow "$label" "$a µs" "$b µs" "$(ratio "$a" "$b")" "$c µs" "$d µs" "$(ratio "$c" "$d")" \
            "$(ratio "$a" "$c")"
    done
    a=$(med rtt_p50_us "$tp") b=$(med rtt_p50_us "$pp")
    c=$(med rtt_p50_us "$trp") d=$(med rtt_p50_us "$prp")
    trow "one client's ping to the server, median (chan_ping / PING)" "$a µs" "$b µs" \
        "$(ratio "$a" "$b")" "$c µs" "$d µs" "$(ratio "$c" "$d")" "$(ratio "$a" "$c")"
}
trow() {   # trow LABEL CHAND_TLS CHAND PLAIN_RATIO REDIS_TLS REDIS REDIS_RATIO TLS_RATIO
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@" >>"$ttable"
}

if [ "$only" != tls ]; then
    echo "compare: chand on $chand_addr, redis-server on $redis_addr, nats-server on $nats_addr;" \
        "$reps runs of each, alternating" >&2
    measure_plain
fi
echo "compare: over TLS: chand on $tchand_addr, redis-server on $tredis_addr (and the plain ones);" \
    "$reps runs of each, alternating" >&2
measure_tls
stop

# ---- print and record ----
rver=$("$redis_server" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
hver=$(pkg-config --modversion hiredis 2>/dev/null || echo "?")
nver=$("$nats_server" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p')
record_plain() {
header='| measure | chand | Redis | chand / Redis | NATS | chand / NATS | goal |
|---|---|---|---|---|---|---|'
sheader='| values per batch | values a run | chand | Redis (variadic RPUSH) | NATS | chand / Redis | chand / NATS |
|---|---|---|---|---|---|---|'
gheader='| measure | chand | against | ratio | goal |
|---|---|---|---|---|'
echo
echo "$header"
cat "$table"
echo
echo "$sheader"
cat "$stable"
if [ -s "$gtable" ]; then
    echo
    echo "$gheader"
    cat "$gtable"
fi

section=$(mktemp)
{
    echo "## chand vs Redis and NATS"
    echo
    echo "Command: \`make bench-compare\` (bench/compare.sh): chand, redis-server $rver and"
    echo "nats-server $nver on loopback ephemeral ports, driven by the same load generator"
    echo "(bench/loadgen.c) through libchan (chanbench), hiredis $hver (redisbench) and NATS's"
    echo "text protocol spoken on a socket (natsbench, no client library). Each measure is the"
    echo "median of $reps runs, the servers alternating. Throughput: $pc_count values, 1 producer"
    echo "and 1 consumer thread on their own connections; chand's channel has capacity 65536"
    echo "(Redis lists are unbounded) and acknowledgements are on, as always (libchan's default:"
    echo "a receiver's acknowledgements ride on its next request, or go alone after 1 ms). Round trips:"
    echo "$rt_count timed after a warm-up, 64-byte values. Many clients: 25 producer and 25"
    echo "consumer threads, each on its own connection, $many_count values in batches of 16 and"
    echo "$many1_count in batches of 1. Ratios are chand / Redis and chand / NATS: above 1 is"
    echo "faster for throughput, below 1 is faster for latency."
    echo
    echo "NATS core promises less than a channel, which the figures should be read with: a"
    echo "channel is a subject with one queue group of subscribers (each message goes to one of"
    echo "them), a PUB is answered by nothing, and the server pushes messages to subscribers"
    echo "without waiting for them. A batch is its PUBs followed by a PING, and the send is done"
    echo "when the PONG comes back (the server has handled every PUB before it: NATS's only flow"
    echo "control); a subscriber that falls behind is cut off and its messages dropped (such a run"
    echo "fails here, it is not reported). A chand send is answered once the value is in the"
    echo "channel, a full channel makes the producer wait, and every value is acknowledged by its"
    echo "receiver. In request/reply a NATS request and reply are one PUB each, the reply being"
    echo "the acknowledgement. nats-server is written in Go and runs on both cores; chand and"
    echo "Redis each serve from one event loop."
    echo
    echo "Reading it: a request/reply through any server is four one-way hops (A to server,"
    echo "server to B, B to server, server to A), each waking a sleeping process, so its floor"
    echo "is about two raw TCP round trips (the raw TCP row). That row moves with the machine: on"
    echo "these VMs a wake-up is slow when the vCPUs are idle and fast when they are busy (we saw"
    echo "17-22 µs idle, 6 µs busy). Redis's variadic RPUSH row is the closest analogue of chand's"
    echo "one-request batches and its best form: the goals are stated against it, and against NATS's"
    echo "batches of 1000."
    echo "What bounds the throughput rows here: both cores are busy, the server's event loop on one"
    echo "and the clients on the other (at batches of 256, chand's loop spent 170-320 ns of CPU a"
    echo "value and Redis's 350-410 ns, from /proc/PID/stat around runs of 3,000,000 values on"
    echo "2026-12-07); with 50 connections and one value a request, most of the server's time is"
    echo "the kernel's TCP work for each small message."
    echo "On a shared machine separate runs of this command differ by tens of percent: compare"
    echo "the ratios within one run."
    echo
    echo "![Request/reply round trips: the share of $((reps * rt_count)) round trips within each latency, chand (capacity 1 and unbuffered), Redis and NATS](latency.svg)"
    echo
    echo "$(stamp "make bench-compare" "$plain_started")"
    echo
    echo "$header"
    cat "$table"
    echo
    echo "### Throughput against batch size"
    echo
    echo "The same producer→consumer load (1 producer, 1 consumer, 64 B values) with batches of"
    echo "$(echo $sweep_batches | sed 's/ /, /g; s/, \([0-9]*\)$/ and \1/') values, a receive taking up to a batch: chand's"
    echo "\`chan_send_many\` (\`chan_send\` for one), Redis's variadic RPUSH (its best form),"
    echo "NATS's PUBs and a PING. Median of $sweep_reps runs, the servers alternating; each run"
    echo "moves $sweep_unit values per value of the batch size, at most $sweep_max."
    echo "The medians are also in bench/work/throughput.dat under the build directory, which"
    echo "bench/plot.sh draws."
    echo
    echo "![Values per second against values per batch, chand, Redis and NATS](throughput.svg)"
    echo
    echo "$(stamp "make bench-compare" "$sweep_started")"
    echo
    echo "$sheader"
    cat "$stable"
    if [ -s "$gtable" ]; then
        echo
        echo "### Remote channels from goroutines"
        echo
        echo "bench/bench_remote.c in the same run, median of $reps interleaved rounds: one remote"
        echo "operation (a request to chand and its reply) from a goroutine and from a thread, against a"
        echo "raw TCP round trip between two processes measured alongside; goroutines in two processes"
        echo "playing ping-pong over two unbuffered channels (a send completes when the other side"
        echo "has the value), against Redis's RPUSH+BLPOP ping-pong above; and 64 goroutines sending"
        echo "and 64 receiving over one connection per side."
        echo
        echo "$(stamp "make bench-compare" "$goroutine_started")"
        echo
        echo "$gheader"
        cat "$gtable"
        echo
        echo "Reading it: the caller waiting for a reply reads it from the socket itself (the reader"
        echo "role, client/remote/chan_client.h): one wake-up per reply, as with hiredis, and it polls for"
        echo "up to CHAN_READ_SPIN_US (50 µs) before sleeping, which is why one remote operation can"
        echo "beat a raw round trip whose ends block in read().  Ping-pong over unbuffered channels:"
        echo "a send completes only when the receiver has acknowledged the value (nothing is lost if"
        echo "it dies; the acknowledgement rides on the receiver's next request, here its own send),"
        echo "and the next value cannot move until the receiver has asked again, so a round crosses"
        echo "six to eight one-way hops where RPUSH+BLPOP crosses four.  Half of Redis's median"
        echo "would take less than half a raw round trip per hop: out of reach unless a send completed"
        echo "on delivery instead of acknowledgement, which would give up that guarantee."
        echo "The daisy chain (median of $sweep_reps runs each, alternating) passes one number through"
        echo "100,000 goroutines, each between two channels: across chand every link is a delivery to a"
        echo "goroutine and its send back, one remote operation at least, and no link can start before"
        echo "the one before it ends, so 100,000 of them in a row are its floor (the row above's"
        echo "median times 100,000), where a local link is a switch between two goroutines (a few"
        echo "hundred ns to a few µs).  Where the floor alone is above 3× the local run, as here, the"
        echo "goal is out of reach of any server on this machine; what is left above the floor is the"
        echo "wake-ups of the client's I/O thread and worker per link."
    fi
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
rm -f "$section"
}

record_tls() {
theader='| measure | chand, TLS | chand, plain | chand TLS / plain | Redis, TLS | Redis, plain | Redis TLS / plain | chand / Redis, both TLS |
|---|---|---|---|---|---|---|---|'
echo
echo "$theader"
cat "$ttable"
over=$(openssl version 2>/dev/null | cut -d' ' -f2)
section=$(mktemp)
{
    echo "## chand and Redis over TLS"
    echo
    if [ "$only" = tls ]; then
        echo "Command: \`make bench-tls\` (bench/compare.sh with ONLY=tls; \`make bench-compare\`"
        echo "runs it too): beside the plain chand and redis-server $rver, a chand with \`--tls-cert\` and a"
    else
        echo "Command: \`make bench-compare\` (bench/compare.sh; \`make bench-tls\` runs this section"
        echo "alone): beside the plain chand and redis-server $rver, a chand with \`--tls-cert\` and a"
    fi
    echo "redis-server with \`--tls-port\` (\`--port 0\`, \`--tls-auth-clients no\`), both on a"
    echo "certificate (P-256) made for the run by openssl in a temporary directory; the clients check it"
    echo "against the run's CA and the address. Both ends use OpenSSL $over: libchan for chand,"
    echo "redisbench's own TLS transport for Redis (Debian's hiredis $hver has none: an OpenSSL"
    echo "session whose bytes feed hiredis's reply reader, commands formatted as over TCP). The"
    echo "load is the section above's (1 producer, 1 consumer, $pc_count values of 64 bytes in"
    echo "batches of 256; round trips: $rt_count timed after a warm-up), Redis in its best form"
    echo "(one variadic RPUSH per batch). Connections are made before the clock starts, so no"
    echo "handshake is timed. Medians of $reps runs, the four servers taking turns. Ratios: TLS /"
    echo "plain below 1 is a loss for throughput, above 1 for latency; chand / Redis as above."
    echo
    echo "Reading it: once connected, TLS adds no round trip; it adds work at both ends of every"
    echo "hop. Each write becomes TLS records (at most 16 KiB; AES-GCM, which these CPUs do in"
    echo "hardware; 22 bytes of header and tag each under TLS 1.3), sealed by the writer, opened by"
    echo "the reader and copied once more through OpenSSL's buffers. chand and libchan let OpenSSL"
    echo "read ahead (64 KiB at a time), so one read takes every record the socket holds; without"
    echo "it OpenSSL read each record's 5-byte header and then its body, and for 500,000 values"
    echo "in batches of 256 \`strace -c\` counted 19,607 reads in chand against 7,845 with it."
    echo "Throughput: with a producer, a consumer and the server on two cores, the crypto and"
    echo "the copies come out of the cycles that moved values, for Redis's variadic RPUSH as for"
    echo "chand. Round trips pay per hop, and there chand pays more than Redis: chand and libchan"
    echo "read a TLS socket until OpenSSL finds it empty, a second read per wake-up that answers"
    echo "EAGAIN, and a libchan client polls its socket for up to 50 µs before it sleeps, each poll"
    echo "a read through OpenSSL. For a ping-pong run of 2,000 timed round trips (capacity 1)"
    echo "strace counted 17,658 reads in chand over TLS, half of them EAGAIN, against 8,891"
    echo "without, and 26,374 in the two libchan clients against 17,058. Stopping once a whole"
    echo "frame is in would save chand's EAGAIN read. The p99 rows are the machine's: other jobs"
    echo "preempt a client or a server now and then, TLS or not."
    echo
    echo "$(stamp "$([ "$only" = tls ] && echo "make bench-tls" || echo "make bench-compare")" "$tls_started")"
    echo
    echo "$theader"
    cat "$ttable"
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
rm -f "$section"
}

[ "$only" = tls ] || record_plain
record_tls
echo "wrote $results (every run's line: $runs)"
