# tests/lib.sh - what the shell tests share, sourced first thing by each
# (`. "$top_srcdir/tests/lib.sh"`): a scratch directory, the report
# (fail/pass and the count of failures), and chand on an ephemeral
# loopback port.  Every process a test starts is stopped by its PID at exit,
# whatever the exit: the chand of start_chand in $pid, any other in $pids.
#
# Sets tmp (a new directory, removed at exit), failures=0, pid="", pids="".
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).

tmp=$(mktemp -d "/tmp/chan-$(basename "$0" .sh)-XXXXXX") || exit 99
failures=0
pid=""
pids=""

lib_failed=""
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
    lib_failed="$lib_failed
FAIL: $*"
}
pass() { echo "ok: $*"; }

# stop_pid PID: SIGTERM (after SIGCONT: it may be stopped), SIGKILL after
# 5 s; reaps it if it is a child.
stop_pid() {
    [ -n "$1" ] || return 0
    kill -CONT "$1" 2>/dev/null
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# At exit: stop what is left, show the end of every log of $tmp if a check
# failed, remove $tmp (kept after a failure if CHAN_TEST_KEEP is set).
lib_cleanup() {
    for p in $pids $pid; do stop_pid "$p"; done
    if [ "$failures" -gt 0 ]; then
        for f in "$tmp"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f"
            tail -n 40 "$f"
        done
        # once more, last, so that the end of the test's log names them
        echo "---- the checks that failed:$lib_failed"
        if [ -n "${CHAN_TEST_KEEP:-}" ]; then
            echo "---- kept $tmp (CHAN_TEST_KEEP)"
            return
        fi
    fi
    rm -rf "$tmp"
}
trap lib_cleanup EXIT
trap 'exit 99' HUP INT TERM

# expect CODE DESCRIPTION -- CMD...: run CMD (20 s at most) with its output
# in $tmp/out and $tmp/err, and check its exit code.
expect() {
    want=$1; what=$2; shift 3
    timeout 20 "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then pass "$what"; else fail "$what: exit $got, wanted $want ($(cat "$tmp/err"))"; fi
}

# wait_for TENTHS COMMAND...: run COMMAND every 0.1 s until it succeeds (0),
# at most TENTHS times (1).
wait_for() {
    lib_tries=$1
    shift
    lib_try=1
    until "$@"; do
        [ "$lib_try" -lt "$lib_tries" ] || return 1
        lib_try=$((lib_try + 1))
        sleep 0.1
    done
}

# wait_port FILE [PID]: until FILE (a --port-file) is written, 10 s at most;
# 1 if it is not, or if PID exits first.
wait_port() {
    i=0
    while [ ! -s "$1" ]; do
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
        [ $i -lt 100 ] || return 1
        sleep 0.1; i=$((i + 1))
    done
}

# start_chand [ARGS...]: chand on 127.0.0.1:0 with ARGS, its stderr added
# to $chand_log ($tmp/chand.log unless set), under timeout(1) for
# $chand_limit seconds (300 unless set).  Sets pid, port and CHAN_ADDR
# (exported), once chand has written its port file ($tmp/port).  On
# failure: fail, the log, and 1.
#
# --foreground: stopping timeout(1) then signals chand alone.  Without it,
# timeout also sends SIGTERM and SIGCONT to its process group, and a SIGCONT
# landing while a sanitized chand's leak check stops its threads (ptrace)
# cancels that stop: the check hangs until the watchdog's SIGKILL.  pid is
# timeout's; it passes SIGTERM on to chand and exits with chand's status.
start_chand() {
    lib_log=${chand_log:-$tmp/chand.log}
    rm -f "$tmp/port"
    timeout --foreground -k 120 "${chand_limit:-300}" "$CHAND" --listen 127.0.0.1:0 \
        --port-file "$tmp/port" "$@" 2>>"$lib_log" &
    pid=$!
    if ! wait_port "$tmp/port" "$pid"; then
        if kill -0 "$pid" 2>/dev/null; then fail "chand wrote no port file in 10 s"; else fail "chand died"; fi
        tail -n 40 "$lib_log"
        return 1
    fi
    port=$(cat "$tmp/port")
    CHAN_ADDR=127.0.0.1:$port
    export CHAN_ADDR
    echo "chand pid $pid on $CHAN_ADDR"
}

# stop_chand: SIGTERM to the chand of start_chand; returns its exit status.
stop_chand() {
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    pid=""
    return $rc
}
