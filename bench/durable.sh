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
#   durable.sh CHAND CHANBENCH REDISBENCH FSYNC_LAT WORK_DIR RESULTS_MD
# The logs live in a fresh directory under WORK_DIR (or $DURABLE_DIR), which
# must be on a disk, not tmpfs; it is removed at the end.  Servers are
# started fresh for every run, on an empty data directory, and stopped by
# PID.  REPS (default 3) runs of each throughput measure and REC_REPS
# (default 3) of each recovery, chand and Redis alternating; the tables show
# medians.  DUR_COUNT (default 1000000) values per throughput run,
# REC_COUNT (default 1000000) per recovery, FSYNC_COUNT (default 1000)
# appends per fsync_lat run.
# A chand without --data-dir (durability not built in yet) is said so once;
# its rows are left unmeasured, Redis's and the disk's are measured and
# written, and the script exits 1.
set -e
chand=$1
cbench=$2
rbench=$3
fsync_lat=$4
work=$5
results=$6
reps=${REPS:-3}
pc_count=${DUR_COUNT:-1000000}
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

rec_chand() {
    d="$data/rec"
    rm -rf "$d"
    mkdir -p "$d"
    chand_up "$chand" "$d" --data-dir "$d/data" --fsync no || exit 1
    port=${chand_addr##*:}
    run "$cbench" -a "$chand_addr" --mode fill $rec --cap "$rec_count" >>"$data/rc_fill"
    server_stop "$chand_pid"
    chand_pid=""
    [ "$stop_rc" = 0 ] || { echo "durable: chand exited $stop_rc on SIGTERM" >&2; exit 1; }
    echo "stop_ms=$stop_ms bytes=$(du -sb "$d/data" | cut -f1)" >>"$data/rc_stop"
    t=$(date +%s%N)
    "$chand" --data-dir "$d/data" --check >"$d/check.log" 2>&1 ||
        { echo "durable: chand --check failed on the log:" >&2; cat "$d/check.log" >&2; exit 1; }
    echo "check_ms=$(( ($(date +%s%N) - t) / 1000000 ))" >>"$data/rc_check"
    chand_listen="127.0.0.1:$port"
    t0=$(date +%s%N)
    chand_start "$chand" "$d" --data-dir "$d/data" --fsync no
    chand_listen=""
    drain_from "$t0" "$cbench" "127.0.0.1:$port"
    chand_wait || exit 1
    drain_wait "$chand_pid"
    echo "$line" >>"$data/rc_drain"
    server_stop "$chand_pid"
    chand_pid=""
}

# rec_redis FORM: FORM "log" restarts on the AOF as the RPUSHes wrote it
# (automatic rewrites off); "rewritten" after BGREWRITEAOF, whose base is
# an RDB snapshot (aof-use-rdb-preamble, the default).
rec_redis() {
    d="$data/rec"
    rm -rf "$d"
    mkdir -p "$d/data"
    redis_up "$redis_server" "$rbench" "$d" --save '' --appendonly yes --appendfsync no \
        --auto-aof-rewrite-percentage 0 --dir "$d/data" || exit 1
    run "$rbench" -a "$redis_addr" --mode fill $rec --multi-push >>"$data/rr_fill"
    if [ "$1" = rewritten ]; then
        "$redis_cli" -h 127.0.0.1 -p "$redis_port" BGREWRITEAOF >/dev/null
        while "$redis_cli" -h 127.0.0.1 -p "$redis_port" INFO persistence |
            grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
            sleep 0.05
        done
        "$redis_cli" -h 127.0.0.1 -p "$redis_port" INFO persistence |
            grep -q '^aof_last_bgrewrite_status:ok' ||
            { echo "durable: Redis's BGREWRITEAOF failed" >&2; exit 1; }
    fi
    server_stop "$redis_pid"
    redis_pid=""
    [ "$stop_rc" = 0 ] || { echo "durable: redis-server exited $stop_rc on SIGTERM" >&2; exit 1; }
    echo "stop_ms=$stop_ms bytes=$(du -sb "$d/data" | cut -f1)" >>"$data/rr_${1}_stop"
    (cd "$d/data/appendonlydir" && ls -l | awk 'NR > 1 { printf "%s`%s` (%d B)", s, $NF, $5; s = ", " }') \
        >"$data/rr_${1}_files"
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
    [ $chand_durable = yes ] && rec_chand
    rec_redis log
    rec_redis rewritten
done

# ---- the tables ----
lines() { cat "$data/$1" 2>/dev/null || true; }
m() {   # m FIELD FILE: the median of FIELD over the file's lines, "-" if none
    med "$1" "$(lines "$2")"
}
na="not measured"
[ $chand_durable = yes ] || na="not measured: no --data-dir in this chand"
rate_cell() {   # rate_cell FILE
    v=$(m values_per_s "$1")
    [ "$v" = - ] && echo "$na" || fmt_rate "$v"
}
ms_cell() {   # ms_cell FIELD FILE
    v=$(m "$1" "$2")
    [ "$v" = - ] && echo "-" || echo "$v ms"
}
mb_cell() {   # mb_cell FILE: the median of bytes=, in MB
    v=$(m bytes "$1")
    awk -v v="$v" 'BEGIN { if (v == "-") print "-"; else printf "%.1f MB", v / 1e6 }'
}

table=$data/table
{
    echo "| fsync policy | chand | Redis | chand / Redis |"
    echo "|---|---|---|---|"
    for p in $policies; do
        case $p in
        always) label="always: a write is on the disk before it is answered" ;;
        everysec) label="everysec: fdatasync about once a second" ;;
        no) label="no: no fdatasync, the kernel writes back when it likes" ;;
        none) label="memory only, for reference (chand without --data-dir; Redis appendonly no)" ;;
        esac
        c=$(m values_per_s "c_$p") r=$(m values_per_s "r_$p")
        printf '| %s | %s | %s | %s |\n' "$label" "$(rate_cell "c_$p")" "$(rate_cell "r_$p")" \
            "$(ratio "$c" "$r")"
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
    echo "| recovery of $rec_count buffered 64 B values | chand | Redis, AOF as written | Redis, after BGREWRITEAOF |"
    echo "|---|---|---|---|"
    printf '| load (fsync no; batches of 256) | %s | %s | %s |\n' "$(rate_cell rc_fill)" \
        "$(rate_cell rr_fill)" "(the same load)"
    printf '| log on disk after the load | %s | %s | %s |\n' "$(mb_cell rc_stop)" \
        "$(mb_cell rr_log_stop)" "$(mb_cell rr_rewritten_stop)"
    printf '| stop: SIGTERM to exit | %s | %s | %s |\n' "$(ms_cell stop_ms rc_stop)" \
        "$(ms_cell stop_ms rr_log_stop)" "$(ms_cell stop_ms rr_rewritten_stop)"
    printf '| offline check (chand --check) | %s | | |\n' "$(ms_cell check_ms rc_check)"
    printf '| exec → first connection accepted | %s | %s | %s |\n' "$(ms_cell connect_ms rc_drain)" \
        "$(ms_cell connect_ms rr_log_drain)" "$(ms_cell connect_ms rr_rewritten_drain)"
    printf '| exec → LLEN answers %s | | %s | %s |\n' "$rec_count" \
        "$(ms_cell len_ms rr_log_drain)" "$(ms_cell len_ms rr_rewritten_drain)"
    printf '| exec → first value received | %s | %s | %s |\n' "$(ms_cell first_ms rc_drain)" \
        "$(ms_cell first_ms rr_log_drain)" "$(ms_cell first_ms rr_rewritten_drain)"
    printf '| exec → all %s received | %s | %s | %s |\n' "$rec_count" "$(ms_cell all_ms rc_drain)" \
        "$(ms_cell all_ms rr_log_drain)" "$(ms_cell all_ms rr_rewritten_drain)"
} >"$table"
echo
cat "$table"

rver=$("$redis_server" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
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
    echo "redis-server $rver with \`--appendonly yes --appendfsync always|everysec|no\` and its other"
    echo "settings at their defaults (so an automatic AOF rewrite may fork during a run), driven"
    echo "in its best form: one variadic RPUSH of 256 values per batch, LPOP 256 (BLPOP when"
    echo "empty). Every run gets a fresh server on an empty data directory on $disk, the"
    echo "repository's disk (not tmpfs); the directories are removed afterwards. Medians of $reps"
    echo "runs, chand and Redis alternating. Ratios above 1: chand is faster."
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
    echo "Recovery: $rec_count values of 64 bytes are sent in batches of 256 into one channel"
    echo "(chand: capacity $rec_count, \`--fsync no\`) or one list (Redis: \`appendfsync no\`,"
    echo "automatic rewrites off); the server is stopped with SIGTERM (the time it takes to exit"
    echo "is shown), chand's log is verified offline with \`chand --check\`, and the server is"
    echo "started again on the same data directory and port. The times run from \`date +%s%N\`"
    echo "just before that exec: a drain client (loadgen \`--mode drain\`) started right after it"
    echo "retries every 2 ms until it connects, then (Redis) asks LLEN until it answers"
    echo "$rec_count (Redis answers LOADING until it has loaded the whole AOF), then receives"
    echo "256 at a time until all $rec_count are in and checked. The log was just written, so it"
    echo "is read from the page cache: a restart, not a cold boot. Redis twice, medians of"
    echo "$rec_reps recoveries each:"
    echo
    echo "- on the AOF as the RPUSHes wrote it: $(lines rr_log_files);"
    echo "- after BGREWRITEAOF, whose base is an RDB snapshot (aof-use-rdb-preamble, the"
    echo "  default): $(lines rr_rewritten_files)."
    echo
    echo "Machine: $(machine); load average $load at the start (the machine is shared)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    cat "$table"
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
echo "wrote $results (every run's line: $runs)"
if [ $chand_durable = no ]; then
    echo "durable: chand was not measured: $chand has no --data-dir" >&2
    exit 1
fi
