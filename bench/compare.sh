#!/bin/sh
# bench/compare.sh - chand against Redis, the same work in one run: start
# chand and redis-server on loopback ephemeral ports, drive both with the
# same load generator (chanbench / redisbench, bench/loadgen.c), stop both,
# print one table of ratios and write it into bench/RESULTS.md (section
# "chand vs Redis").  Run by `make bench-compare`:
#   compare.sh CHAND CHANBENCH REDISBENCH WORK_DIR RESULTS_MD [BENCH_REMOTE]
# With BENCH_REMOTE (bench/bench_remote.c) it also measures remote channels
# from goroutines against the raw TCP floor and Redis (the goals for remote channels from goroutines).
# Then the same load over TLS (section "chand and Redis over TLS"): a chand
# with --tls-cert and a redis-server with --tls-port, on certificates made
# for the run by openssl in a temporary directory, against the plain ones
# (`make bench-tls`, or ONLY=tls, runs this section alone).
# Each measurement runs REPS times (default 5), chand and Redis alternating
# so that both see the same machine; the table shows the medians.  The
# machine may be shared: the load average at the start is recorded with
# the table.  Speed is reported, never asserted.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
cbench=$2
rbench=$3
work=$4
results=$5
gbench=${6:-}
reps=${REPS:-5}
pc_count=${PC_COUNT:-1000000}   # values per producer->consumer run
rt_count=${RT_COUNT:-10000}     # round trips per latency run
redis_server=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
only=${ONLY:-}                  # "tls": only the TLS section
case $only in
"" | tls) ;;
*) echo "compare: ONLY=$only: only 'tls' is known" >&2; exit 64 ;;
esac

mkdir -p "$work"
work=$(cd "$work" && pwd)
chand_pid=""
redis_pid=""
tchand_pid=""
tredis_pid=""
table=$(mktemp)
gtable=$(mktemp)
ttable=$(mktemp)
certs=$(mktemp -d)
runs="$work/compare.runs"
: >"$runs"

. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
stop() {
    server_stop "$chand_pid"
    server_stop "$redis_pid"
    server_stop "$tchand_pid"
    server_stop "$tredis_pid"
    chand_pid=""
    redis_pid=""
    tchand_pid=""
    tredis_pid=""
}
trap 'stop; rm -rf "$table" "$gtable" "$ttable" "$certs"' EXIT
trap 'exit 130' INT TERM

# ---- start chand (port 0) and redis-server (free-looking ports) ----
chand_up "$chand" "$work" || exit 1
redis_up "$redis_server" "$rbench" "$work" --save '' --appendonly no || exit 1
# ---- and the same two speaking TLS, on certificates made for this run ----
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
row() {   # row LABEL CHAND REDIS RATIO GOAL
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" >>"$table"
}

measure_plain() {
    # ---- producer -> consumer throughput, 64-byte values ----
    pc="-p 1 -m 1 -P 256 -r 256 -s 64 -n $pc_count"
    c_pc="" r_pc="" r_pcv=""
    for i in $(seq "$reps"); do
        l=$(run "$cbench" -a "$chand_addr" $pc --cap 65536); c_pc="$c_pc $(field values_per_s "$l")"
        l=$(run "$rbench" -a "$redis_addr" $pc); r_pc="$r_pc $(field values_per_s "$l")"
        l=$(run "$rbench" -a "$redis_addr" $pc --multi-push); r_pcv="$r_pcv $(field values_per_s "$l")"
    done
    c_pc=$(echo $c_pc | tr ' ' '\n' | median)
    r_pc=$(echo $r_pc | tr ' ' '\n' | median)
    r_pcv=$(echo $r_pcv | tr ' ' '\n' | median)
    x=$(ratio "$c_pc" "$r_pc")
    row "producer→consumer, 64 B values, batches of 256 (Redis: pipeline of 256 RPUSH; LPOP 256, BLPOP when empty)" \
        "$(fmt_rate "$c_pc")" "$(fmt_rate "$r_pc")" "**$x**" "≥ 1.5: $(verdict "$x" ">=" 1.5)"
    x=$(ratio "$c_pc" "$r_pcv")
    row "the same, Redis pushing each batch with one variadic RPUSH of 256 values" \
        "$(fmt_rate "$c_pc")" "$(fmt_rate "$r_pcv")" "$x" "(for reference)"

    # ---- request/reply round trips between two clients over two channels ----
    c1="" c0="" rr=""
    for i in $(seq "$reps"); do
        c1="$c1
    $(run "$cbench" -a "$chand_addr" --mode ping-pong --cap 1 -n "$rt_count")"
        rr="$rr
    $(run "$rbench" -a "$redis_addr" --mode ping-pong -n "$rt_count")"
        c0="$c0
    $(run "$cbench" -a "$chand_addr" --mode ping-pong --cap 0 -n "$rt_count")"
    done
    c1_50=$(med rtt_p50_us "$c1") c1_99=$(med rtt_p99_us "$c1")
    c0_50=$(med rtt_p50_us "$c0") c0_99=$(med rtt_p99_us "$c0")
    r_50=$(med rtt_p50_us "$rr") r_99=$(med rtt_p99_us "$rr")
    x=$(ratio "$c1_50" "$r_50")
    row "request/reply round trip, median (chand: channels of capacity 1; Redis: RPUSH + BLPOP)" \
        "$c1_50 µs" "$r_50 µs" "**$x**" "≤ 0.5: $(verdict "$x" "<=" 0.5)"
    row "request/reply round trip, p99 (capacity 1)" "$c1_99 µs" "$r_99 µs" "$(ratio "$c1_99" "$r_99")" ""
    x=$(ratio "$c0_50" "$r_50")
    row "request/reply round trip, median (chand: unbuffered channels, the send waits for the ack)" \
        "$c0_50 µs" "$r_50 µs" "**$x**" "≤ 0.5: $(verdict "$x" "<=" 0.5)"
    row "request/reply round trip, p99 (unbuffered)" "$c0_99 µs" "$r_99 µs" "$(ratio "$c0_99" "$r_99")" ""

    # ---- references: one client's round trip to the server, and raw TCP ----
    cp="" rp="" tp=""
    for i in $(seq "$reps"); do
        cp="$cp
    $(run "$cbench" -a "$chand_addr" --mode ping -n "$rt_count")"
        rp="$rp
    $(run "$rbench" -a "$redis_addr" --mode ping -n "$rt_count")"
        tp="$tp
    $(run "$cbench" --mode tcp -n "$rt_count")"
    done
    cp50=$(med rtt_p50_us "$cp") rp50=$(med rtt_p50_us "$rp") tp50=$(med rtt_p50_us "$tp")
    row "one client's ping to the server, median (chan_ping / PING)" "$cp50 µs" "$rp50 µs" \
        "$(ratio "$cp50" "$rp50")" "(for reference)"
    row "raw TCP round trip over loopback, 64 B, median (no server: the floor for both)" "$tp50 µs" "$tp50 µs" \
        "" "(a request/reply through any server is ≥ 2 of these)"

    # ---- from goroutines: bench_remote interleaves its own rounds ----
    if [ -n "$gbench" ]; then
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
            "$(fmt_rate "$gtp")" "" "" "(reported)" >>"$gtable"
    fi
}

# ---- the same over TLS: chand with TLS, chand plain, Redis with TLS (and
# plain, for its own cost); producer->consumer with Redis in its best form
# (one variadic RPUSH a batch), round trips as above ----
measure_tls() {
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

load=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$only" != tls ]; then
    echo "compare: chand on $chand_addr, redis-server on $redis_addr; $reps runs of each, alternating" >&2
    measure_plain
fi
echo "compare: over TLS: chand on $tchand_addr, redis-server on $tredis_addr (and the plain ones);" \
    "$reps runs of each, alternating" >&2
measure_tls
stop

# ---- print and record ----
machine=$(machine)
rver=$("$redis_server" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
hver=$(pkg-config --modversion hiredis 2>/dev/null || echo "?")
record_plain() {
header='| measure | chand | Redis | chand / Redis | goal |
|---|---|---|---|---|'
echo
echo "$header"
cat "$table"
gheader='| measure | chand | against | ratio | goal |
|---|---|---|---|---|'
if [ -s "$gtable" ]; then
    echo
    echo "$gheader"
    cat "$gtable"
fi

section=$(mktemp)
{
    echo "## chand vs Redis"
    echo
    echo "Command: \`make bench-compare\` (bench/compare.sh): chand and redis-server $rver on loopback"
    echo "ephemeral ports, driven by the same load generator (bench/loadgen.c) through libchan"
    echo "(chanbench) and hiredis $hver (redisbench). Each measure is the median of $reps runs, chand and"
    echo "Redis alternating. Throughput: $pc_count values, 1 producer and 1 consumer thread on"
    echo "their own connections; chand's channel has capacity 65536 (Redis lists are unbounded) and"
    echo "acknowledgements are on, as always. Round trips: $rt_count timed after a warm-up,"
    echo "64-byte values. Ratios are chand / Redis: above 1 is faster for throughput, below 1"
    echo "is faster for latency."
    echo
    echo "Reading it: a request/reply through any server is four one-way hops (A to server,"
    echo "server to B, B to server, server to A), each waking a sleeping process, so its floor"
    echo "is about two raw TCP round trips (last row). That row moves with the machine: on these"
    echo "VMs a wake-up is slow when the vCPUs are idle and fast when they are busy (we saw 17-22"
    echo "µs idle, 6 µs busy). Redis's variadic RPUSH row is the closest analogue of chand's"
    echo "one-request batches; the goal is stated against the pipelined form."
    echo "On a shared machine separate runs of this command differ by tens of percent: compare"
    echo "the ratios within one run."
    echo
    echo "Machine: $machine; load average $load at the start (the machine is shared)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "$header"
    cat "$table"
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
        echo "$gheader"
        cat "$gtable"
        echo
        echo "Reading it: the caller waiting for a reply reads it from the socket itself (the reader"
        echo "role, client/remote/chan_client.h): one wake-up per reply, as with hiredis, and it polls for"
        echo "up to CHAN_READ_SPIN_US (50 µs) before sleeping, which is why one remote operation can"
        echo "beat a raw round trip whose ends block in read().  Ping-pong over unbuffered channels:"
        echo "a send completes only when the receiver has acknowledged the value (nothing is lost if"
        echo "it dies), and the next value cannot move until the receiver has asked again, so a round"
        echo "crosses about eight one-way hops where RPUSH+BLPOP crosses four.  Half of Redis's median"
        echo "would take less than half a raw round trip per hop: out of reach unless a send completed"
        echo "on delivery instead of acknowledgement, which would give up that guarantee."
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
    echo "the reader and copied once more through OpenSSL's buffers, and OpenSSL reads a record with"
    echo "two system calls, its 5-byte header and then its body (no read-ahead). Throughput: a batch"
    echo "of 256 values (about 18 KB as chand frames it) crosses as two records, and for the same"
    echo "500,000 values \`strace -c\` counted about four times as many reads over TLS as without,"
    echo "in chand and in its clients alike; with a producer, a consumer and the server on two"
    echo "cores, those calls and the crypto come out of the cycles that moved values, for Redis's"
    echo "variadic RPUSH as for chand. Round trips pay per hop, and there chand pays more than Redis:"
    echo "chand and libchan read a TLS socket until OpenSSL finds it empty, a third read per record"
    echo "that answers EAGAIN, and a libchan client polls its socket for up to 50 µs before it"
    echo "sleeps, fewer times when each poll costs more reads. Per request/reply (ping-pong, capacity"
    echo "1) strace counted 16 reads in chand over TLS against 5 without, and 14 in the two libchan"
    echo "clients against 6, which slept 1.6 times against 1.1; redisbench's TLS clients make 8 (two"
    echo "per reply: hiredis's reader knows when a reply is whole). Reading ahead"
    echo "(SSL_CTX_set_read_ahead) and stopping once a whole frame is in would bring chand's cost"
    echo "toward Redis's. The p99 rows are the machine's: other jobs preempt a client or a server"
    echo "now and then, TLS or not."
    echo
    echo "Machine: $machine; load average $load at the start (the machine is shared)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')."
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
