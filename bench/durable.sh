#!/bin/sh
# bench/durable.sh - chand's log against Redis's AOF, in one run: the same
# producer->consumer load as bench/compare.sh against chand with --data-dir
# and --fsync always / everysec / no and against redis-server with
# appendonly yes and appendfsync always / everysec / no (plus both memory
# only, for reference); the disk's own bound (bench/fsync_lat.c: write +
# fdatasync); and recovery: a million buffered values, a SIGTERM, a restart
# on the same data, and the time from exec until the values can be received.
# Writes the section "Durable: chand's log against Redis's AOF" of
# bench/RESULTS.md.  Run by `make bench-durable` (and `make bench-compare`):
#   durable.sh CHAND CHANBENCH REDISBENCH FSYNC_LAT CHAN_CLI WORK_DIR RESULTS_MD
# The logs live in a fresh directory under WORK_DIR (or $DURABLE_DIR), which
# must be on a disk, not tmpfs; it is removed at the end.  Servers are
# started fresh for every run, on an empty data directory, and stopped by
# PID.  REPS (default 3) runs of each throughput measure and REC_REPS
# (default 3) of each recovery, chand and Redis alternating; the tables show
# medians.  DUR_COUNT (default 3000000) values per throughput run,
# REC_COUNT (default 1000000) per recovery, FSYNC_COUNT (default 1000)
# appends per fsync_lat run.
# A chand without --data-dir (durability not built in yet) is said so once;
# its rows are left unmeasured, Redis's and the disk's are measured and
# written, and the script exits 1.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
cbench=$2
rbench=$3
fsync_lat=$4
chan_cli=$5
work=$6
results=$7
reps=${REPS:-3}
pc_count=${DUR_COUNT:-3000000}
rec_count=${REC_COUNT:-1000000}
rec_reps=${REC_REPS:-3}
fsync_count=${FSYNC_COUNT:-1000}
redis_server=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
redis_cli=${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}

mkdir -p "$work"
work=$(cd "$work" && pwd)
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
chand_pid=""
redis_pid=""
drain_pid=""
data=$(mktemp -d "${DURABLE_DIR:-$work}/durable.XXXXXX")
runs="$work/durable.runs"
: >"$runs"
cleanup() {
    server_stop "$drain_pid"
    server_stop "$chand_pid"
    server_stop "$redis_pid"
    rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

disk=$(df -PT "$data" | awk 'NR == 2 { print $1 " (" $2 ")" }')
case $disk in
*"(tmpfs)"* | *"(ramfs)"*)
    echo "durable: $data is on $disk: the logs must be on a disk (set DURABLE_DIR)" >&2
    exit 1 ;;
esac

# ---- does this chand have a log?  (an unknown option: it exits at once) ----
chand_durable=yes
mkdir "$data/probe"
if chand_up "$chand" "$data/probe" --data-dir "$data/probe/data" --fsync no 2>/dev/null; then
    server_stop "$chand_pid"
else
    chand_durable=no
    why=$(grep -v '^Try' "$data/probe/chand.log" | head -n 1)
    echo "durable: $chand has no durable mode (${why:-it did not start with --data-dir})." >&2
    echo "durable: its rows are not measured; Redis's and the disk's are." >&2
fi
chand_pid=""

# ---- one fresh server per run, on an empty data directory ----
# c_run POLICY / r_run POLICY: one producer->consumer run; POLICY is
# always, everysec, no, or none (memory only).  Sets line.
pc="-p 1 -m 1 -P 256 -r 256 -s 64 -n $pc_count"
c_run() {
    d="$data/run"
    rm -rf "$d"
    mkdir -p "$d"
    if [ "$1" = none ]; then
        chand_up "$chand" "$d" || exit 1
    else
        chand_up "$chand" "$d" --data-dir "$d/data" --fsync "$1" || exit 1
    fi
    line=$(run "$cbench" -a "$chand_addr" $pc --cap 65536)
    # the longest any one callback of chand's event loop ran (rewrites too)
    stall=$("$chan_cli" -a "$chand_addr" stat 2>/dev/null | sed -n 's/^loop_max_us: //p')
    echo "loop_max_us=${stall:--}" >>"$data/cs_$1"
    server_stop "$chand_pid"
    chand_pid=""
}
r_run() {
    d="$data/run"
    rm -rf "$d"
    mkdir -p "$d/data"
    if [ "$1" = none ]; then
        redis_up "$redis_server" "$rbench" "$d" --save '' --appendonly no --dir "$d/data" || exit 1
    else
        redis_up "$redis_server" "$rbench" "$d" --save '' --appendonly yes --appendfsync "$1" \
            --dir "$d/data" || exit 1
    fi
    line=$(run "$rbench" -a "$redis_addr" $pc --multi-push)
    server_stop "$redis_pid"
    redis_pid=""
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "durable: logs in $data on $disk; $reps runs of each, chand and Redis alternating" >&2
policies="always everysec no none"
for i in $(seq "$reps"); do
    for size in 64 4096; do
        run "$fsync_lat" -d "$data" -s "$size" -n "$fsync_count" >>"$data/fsync_$size"
    done
    for p in $policies; do
        if [ $chand_durable = yes ] || [ $p = none ]; then
            c_run "$p"
            echo "$line" >>"$data/c_$p"
        fi
        r_run "$p"
        echo "$line" >>"$data/r_$p"
    done
done

# ---- recovery: fill, SIGTERM, restart on the same data, drain ----
# Each time is from the exec of the restarted server (date +%s%N just
# before it, handed to the drain as --since) to: its first accepted
# connection (connect_ms), LLEN answering the count (len_ms, Redis), the
# first value received (first_ms), all of them received (all_ms).
rec="-P 256 -r 256 -s 64 -n $rec_count --prefix rec"

# drain_from T0 BENCH ADDR ARGS...: start the drain in the background, timed
# from T0; drain_wait SERVER_PID: its result line into line, or exit (at
# once if the server dies first).
drain_from() {
    _t0=$1 _bench=$2 _addr=$3
    shift 3
    "$_bench" -a "$_addr" --mode drain $rec --since "$_t0" --timeout 120 "$@" >"$data/drain.out" &
    drain_pid=$!
}
drain_wait() {
    while _s=$(child_state "$drain_pid") && [ -n "$_s" ] && [ "$_s" != Z ]; do
        _s=$(child_state "$1")
        if [ -z "$_s" ] || [ "$_s" = Z ]; then
            echo "durable: the server died during the recovery:" >&2
            tail -n 5 "$data/rec/chand.log" "$data/rec/redis.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    wait "$drain_pid" || { echo "durable: the drain failed: $(cat "$data/drain.out")" >&2; exit 1; }
    drain_pid=""
    line=$(cat "$data/drain.out")
    case $line in *check=ok*) ;; *) echo "durable: the drain's check failed: $line" >&2; exit 1 ;; esac
    echo "$line" >>"$runs"
}

# Each recovery runs in one of two forms, the same for both servers:
#   log       the log as the load wrote it, replayed whole (automatic
#             rewrites off: chand --rewrite-size 1024g, Redis
#             --auto-aof-rewrite-percentage 0);
#   snapshot  the log compacted into a snapshot first: Redis BGREWRITEAOF
#             (its base is then an RDB file, aof-use-rdb-preamble being the
#             default); chand, which rewrites by itself only, is started once
#             more with --rewrite-size 4096, which rewrites at its first
#             tick, and stopped when `chan stat` counts the rewrite.
# FILES DIR: the files of DIR as "`name` (N B), ..." into the file $2.
files() {
    (cd "$1" && ls -l | awk 'NR > 1 { printf "%s`%s` (%d B)", s, $NF, $5; s = ", " }') >"$2"
}
chand_norw="--rewrite-size 1024g"
rec_chand() {
    d="$data/rec"
    rm -rf "$d"
    mkdir -p "$d"
    chand_up "$chand" "$d" --data-dir "$d/data" --fsync no $chand_norw || exit 1
    port=${chand_addr##*:}
    run "$cbench" -a "$chand_addr" --mode fill $rec --cap "$rec_count" >>"$data/rc_fill"
    server_stop "$chand_pid"
    chand_pid=""
    [ "$stop_rc" = 0 ] || { echo "durable: chand exited $stop_rc on SIGTERM" >&2; exit 1; }
    echo "stop_ms=$stop_ms" >>"$data/rc_${1}_stop"
    chand_listen="127.0.0.1:$port"
    if [ "$1" = snapshot ]; then
        chand_up "$chand" "$d" --data-dir "$d/data" --fsync no --rewrite-size 4096 || exit 1
        i=0
        until "$chan_cli" -a "$chand_addr" stat | grep -q '^rewrites: [1-9]'; do
            i=$((i + 1))
            [ $i -lt 1200 ] || { echo "durable: chand did not rewrite its log" >&2; exit 1; }
            sleep 0.1
        done
        server_stop "$chand_pid"
        chand_pid=""
    fi
    echo "bytes=$(du -sb "$d/data" | cut -f1)" >>"$data/rc_${1}_stop"
    files "$d/data" "$data/rc_${1}_files"
    t=$(date +%s%N)
    "$chand" --data-dir "$d/data" --check >"$d/check.log" 2>&1 ||
        { echo "durable: chand --check failed on the log:" >&2; cat "$d/check.log" >&2; exit 1; }
    echo "check_ms=$(( ($(date +%s%N) - t) / 1000000 ))" >>"$data/rc_${1}_check"
    t0=$(date +%s%N)
    chand_start "$chand" "$d" --data-dir "$d/data" --fsync no $chand_norw
    chand_listen=""
    drain_from "$t0" "$cbench" "127.0.0.1:$port"
    chand_wait || exit 1
    drain_wait "$chand_pid"
    echo "$line" >>"$data/rc_${1}_drain"
    server_stop "$chand_pid"
    chand_pid=""
}

rec_redis() {
    d="$data/rec"
    rm -rf "$d"
    mkdir -p "$d/data"
    redis_up "$redis_server" "$rbench" "$d" --save '' --appendonly yes --appendfsync no \
        --auto-aof-rewrite-percentage 0 --dir "$d/data" || exit 1
    run "$rbench" -a "$redis_addr" --mode fill $rec --multi-push >>"$data/rr_fill"
    if [ "$1" = snapshot ]; then
        "$redis_cli" -h 127.0.0.1 -p "$redis_port" BGREWRITEAOF >/dev/null
        i=0
        while "$redis_cli" -h 127.0.0.1 -p "$redis_port" INFO persistence |
            grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
            i=$((i + 1))
            [ $i -lt 1200 ] || { echo "durable: Redis's BGREWRITEAOF did not end" >&2; exit 1; }
            sleep 0.1
        done
        "$redis_cli" -h 127.0.0.1 -p "$redis_port" INFO persistence |
            grep -q '^aof_last_bgrewrite_status:ok' ||
            { echo "durable: Redis's BGREWRITEAOF failed" >&2; exit 1; }
    fi
    server_stop "$redis_pid"
    redis_pid=""
    [ "$stop_rc" = 0 ] || { echo "durable: redis-server exited $stop_rc on SIGTERM" >&2; exit 1; }
    echo "stop_ms=$stop_ms bytes=$(du -sb "$d/data" | cut -f1)" >>"$data/rr_${1}_stop"
    files "$d/data/appendonlydir" "$data/rr_${1}_files"
    t0=$(date +%s%N)
    redis_start "$redis_server" "$d" "$redis_port" --save '' --appendonly yes --appendfsync no \
        --auto-aof-rewrite-percentage 0 --dir "$d/data"
    drain_from "$t0" "$rbench" "$redis_addr" --await-len
    drain_wait "$redis_pid"
    echo "$line" >>"$data/rr_${1}_drain"
    server_stop "$redis_pid"
    redis_pid=""
}

echo "durable: recovery of $rec_count values, $rec_reps times each" >&2
for i in $(seq "$rec_reps"); do
    for form in log snapshot; do
        [ $chand_durable = no ] || rec_chand $form
        rec_redis $form
    done
done

# ---- the tables ----
lines() { cat "$data/$1" 2>/dev/null || true; }
m() {   # m FIELD FILE: the median of FIELD over the file's lines, "-" if none
    med "$1" "$(lines "$2")"
}
na="not measured"
[ $chand_durable = yes ] || na="not measured: no --data-dir in this chand"
rate_cell() {   # rate_cell FILE: the median values/s, and the runs' range in M
    v=$(m values_per_s "$1")
    r=$(spread values_per_s "$(lines "$1")" |
        awk -F– '{ if (NF == 2) printf " (%.2f–%.2f)", $1 / 1e6, $2 / 1e6 }')
    [ "$v" = - ] && echo "$na" || echo "$(fmt_rate "$v")$r"
}
ms_cell() {   # ms_cell FIELD FILE: the median, and the runs' range
    v=$(m "$1" "$2")
    r=$(spread "$1" "$(lines "$2")")
    [ "$v" = - ] && echo "-" || echo "$v ms${r:+ ($r)}"
}
pair_ratio() {   # pair_ratio FILE_A FILE_B: the median of the runs' A / B values/s
    lines "$1" | while read -r a && read -r b <&3; do
        ratio "$(field values_per_s "$a")" "$(field values_per_s "$b")"
        echo
    done 3<"$data/$2" | grep -E '^[0-9.]+$' | median
}
stall_cell() {   # stall_cell FILE: the longest loop_max_us= of the runs, in ms
    v=$(lines "$1" | sed -n 's/^loop_max_us=\([0-9][0-9]*\)$/\1/p' | sort -n | tail -n 1)
    [ -n "$v" ] && awk -v v="$v" 'BEGIN { printf "%.1f ms", v / 1000 }' || echo "-"
}
mb_cell() {   # mb_cell FILE: the median of bytes=, in MB
    v=$(m bytes "$1")
    awk -v v="$v" 'BEGIN { if (v == "-") print "-"; else printf "%.1f MB", v / 1e6 }'
}

table=$data/table
{
    echo "| fsync policy | chand | Redis | chand / Redis | chand's longest loop stall |"
    echo "|---|---|---|---|---|"
    for p in $policies; do
        case $p in
        always) label="always: a write is on the disk before it is answered" ;;
        everysec) label="everysec: fdatasync about once a second" ;;
        no) label="no: no fdatasync, the kernel writes back when it likes" ;;
        none) label="memory only, for reference (chand without --data-dir; Redis appendonly no)" ;;
        esac
        x=-
        [ -s "$data/c_$p" ] && x=$(pair_ratio "c_$p" "r_$p")
        printf '| %s | %s | %s | %s | %s |\n' "$label" "$(rate_cell "c_$p")" "$(rate_cell "r_$p")" \
            "$x" "$(stall_cell "cs_$p")"
    done
    echo
    echo "| write + fdatasync, appended to one file | p50 | p99 | max | per second | 256 values per fdatasync |"
    echo "|---|---|---|---|---|---|"
    for size in 64 4096; do
        s=$(m syncs_per_s "fsync_$size")
        printf '| %s B | %s µs | %s µs | %s µs | %s | %s |\n' "$size" "$(m p50_us "fsync_$size")" \
            "$(m p99_us "fsync_$size")" "$(m max_us "fsync_$size")" "$s" \
            "$(fmt_rate "$(awk -v s="$s" 'BEGIN { print s * 256 }')")"
    done
    echo
    echo "| recovery of $rec_count buffered 64 B values | chand, log | Redis, AOF as written | chand, snapshot | Redis, after BGREWRITEAOF |"
    echo "|---|---|---|---|---|"
    printf '| load (fsync no; batches of 256) | %s | %s | (the same load) | (the same load) |\n' \
        "$(rate_cell rc_fill)" "$(rate_cell rr_fill)"
    printf '| stop after the load: SIGTERM to exit | %s | %s | %s | %s |\n' \
        "$(ms_cell stop_ms rc_log_stop)" "$(ms_cell stop_ms rr_log_stop)" \
        "$(ms_cell stop_ms rc_snapshot_stop)" "$(ms_cell stop_ms rr_snapshot_stop)"
    printf '| on disk at the restart | %s | %s | %s | %s |\n' "$(mb_cell rc_log_stop)" \
        "$(mb_cell rr_log_stop)" "$(mb_cell rc_snapshot_stop)" "$(mb_cell rr_snapshot_stop)"
    printf '| offline check (chand --check) | %s | | %s | |\n' "$(ms_cell check_ms rc_log_check)" \
        "$(ms_cell check_ms rc_snapshot_check)"
    for f in connect_ms len_ms first_ms all_ms; do
        case $f in
        connect_ms) label="exec → first connection accepted" ;;
        len_ms) label="exec → LLEN answers $rec_count" ;;
        first_ms) label="exec → first value received" ;;
        all_ms) label="exec → all $rec_count received" ;;
        esac
        printf '| %s | %s | %s | %s | %s |\n' "$label" "$(ms_cell $f rc_log_drain)" \
            "$(ms_cell $f rr_log_drain)" "$(ms_cell $f rc_snapshot_drain)" \
            "$(ms_cell $f rr_snapshot_drain)"
    done
} >"$table"
echo
cat "$table"

rver=$("$redis_server" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || true)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
section=$data/section
{
    echo "## Durable: chand's log against Redis's AOF"
    echo
    echo "Command: \`make bench-durable\` (bench/durable.sh; \`make bench-compare\` runs it too)."
    echo
    echo "Throughput: bench-compare's load, chanbench against redisbench (bench/loadgen.c): 1"
    echo "producer and 1 consumer on their own connections, $pc_count values of 64 bytes (a"
    echo "sequence number and pseudo-random bytes), batches of 256, acknowledgements on (chand:"
    echo "channel capacity 65536). chand runs with \`--data-dir\` and \`--fsync always|everysec|no\`;"
    echo "redis-server $rver with \`--appendonly yes --appendfsync always|everysec|no\`; the other"
    echo "settings are both servers' defaults, so either may fork a rewrite of its log during a run"
    echo "(chand past \`--rewrite-size\` 64 MiB, Redis past auto-aof-rewrite-min-size 64 MB). Redis"
    echo "is driven in its best form: one variadic RPUSH of 256 values per batch, LPOP 256 (BLPOP"
    echo "when empty). Every run gets a fresh server on an empty data directory on $disk, the"
    echo "repository's disk (not tmpfs); the directories are removed afterwards. Medians of $reps"
    echo "runs, chand and Redis alternating, with the range of the runs in brackets; the ratio is the"
    echo "median of the runs' own ratios (each chand run against the Redis run next to it), above"
    echo "1 when chand is faster. The last column is the longest that any one callback of chand's"
    echo "event loop ran in any of the runs (\`chan stat\`'s \`loop_max_us\`, read at the end of each"
    echo "run): every client waits that long. A rewrite's fork is usually the longest."
    echo
    echo "The disk's bound: bench/fsync_lat.c appends 64 or 4096 bytes to a file with write()"
    echo "and makes them durable with fdatasync(), $fsync_count times after a warm-up (medians of"
    echo "$reps runs). The file grows, so each fdatasync also commits its new size, as a log's"
    echo "does. One fdatasync per request is what a fully synchronous log pays; the last column"
    echo "is that rate times 256, the ceiling of \`fsync always\` if a batch of 256 values and its"
    echo "acknowledgements shared one fdatasync (a send and a receive that each wait for their"
    echo "own halve it). The disk is a virtual one: how the host honours a flush is not visible"
    echo "from inside."
    echo
    echo "Reading it: chand's log holds three records per batch (its values put, their delivery,"
    echo "their acknowledgement: a delivered value goes back to its channel if the receiver dies"
    echo "unacknowledged, so a restart must know which were acknowledged), Redis's AOF two commands"
    echo "(RPUSH, LPOP: a popped value is gone). Under \`fsync always\` Redis ends every loop turn"
    echo "that wrote to its AOF with an fdatasync, the RPUSH's and the LPOP's; chand's sync thread"
    echo "flushes while its loop goes on, only a send's answer waits (a delivery and an ack promise"
    echo "nobody anything and ride with the next flush), and what arrives meanwhile shares the next"
    echo "flush: about one fdatasync per batch against Redis's two. The disk's fdatasync latency,"
    echo "not the CPU, sets those rows, and other jobs' fdatasyncs on the same disk drag them down."
    echo
    echo "Recovery: $rec_count values of 64 bytes are sent in batches of 256 into one channel"
    echo "(chand: capacity $rec_count, \`--fsync no\`) or one list (Redis: \`appendfsync no\`),"
    echo "and the server is stopped with SIGTERM (the time it takes to exit is shown). Two forms,"
    echo "each with automatic rewrites off during the load (chand \`--rewrite-size 1024g\`, Redis"
    echo "\`--auto-aof-rewrite-percentage 0\`), so that both are the same every time:"
    echo
    echo "- log: the log as the load wrote it, replayed whole. chand: $(lines rc_log_files);"
    echo "  Redis's appendonlydir: $(lines rr_log_files)."
    echo "- snapshot: the log compacted first. Redis: BGREWRITEAOF, whose base is an RDB file"
    echo "  (aof-use-rdb-preamble, the default): $(lines rr_snapshot_files). chand rewrites by"
    echo "  itself only, so it is started once more with \`--rewrite-size 4096\`, which rewrites at"
    echo "  once, and stopped when \`chan stat\` counts the rewrite: $(lines rc_snapshot_files)."
    echo
    echo "chand's data dir is then verified offline (\`chand --check\`, timed), and the server is"
    echo "started again on the same data directory and port. The times run from \`date +%s%N\`"
    echo "just before that exec: a drain client (loadgen \`--mode drain\`) started right after it"
    echo "retries every 2 ms until it connects, then (Redis) asks LLEN until it answers"
    echo "$rec_count (Redis answers LOADING until it has loaded everything), then receives 256"
    echo "at a time until all $rec_count are in and checked. chand loads its data dir before it"
    echo "listens, so its first connection comes when the load is done. The files were just"
    echo "written, so they are read from the page cache: a restart, not a cold boot. Medians of"
    echo "$rec_reps recoveries in each form."
    echo
    echo "Machine: $(machine); load average $load at the start and $load_end at the end."
    echo "The machine is shared: other jobs' CPU and fdatasyncs on the same disk move these"
    echo "figures (every run's line is in the build tree's bench/work/durable.runs)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')${commit:+; chand at commit $commit}."
    echo
    cat "$table"
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
echo "wrote $results (every run's line: $runs)"
if [ $chand_durable = no ]; then
    echo "durable: chand was not measured: $chand has no --data-dir" >&2
    exit 1
fi
