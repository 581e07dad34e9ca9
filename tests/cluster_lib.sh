# tests/cluster_lib.sh - sourced by the cluster tests (cluster.sh,
# cluster_copy.sh): stopping what they started, their reports, and free
# loopback ports.  The sourcing script sets tmp (its scratch dir) first;
# pids collects what it starts, failures counts what failed.
pids=""
failures=0

# stop_pid PID: SIGTERM (after SIGCONT: it may be stopped), SIGKILL after 5 s
stop_pid() {
    [ -n "$1" ] || return 0
    kill -CONT "$1" 2>/dev/null
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# Every process started is stopped by PID; on a failure, the logs' tails.
cleanup() {
    for p in $pids; do stop_pid "$p"; done
    if [ "$failures" -gt 0 ]; then
        for f in "$tmp"/*.log; do
            echo "---- $f"
            tail -n 40 "$f"
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# A loopback port no socket has (random, checked; the few ports a test
# needs are taken within a second of being picked), below Linux's
# ephemeral ports (32768-60999), so that no outgoing connection holds it
# while a listener binds it.
port_used=" "
# in_use PORT: some socket has it (any address, any state: /proc/net/tcp*)
in_use() {
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v h=":$hex" '{ if (substr($2, length($2) - 4) == h) f = 1 } END { exit !f }'
}
free_port() {   # free_port VAR: VAR=a port no socket has, not handed out before
    while :; do
        p=$(( ($(od -An -N2 -tu2 /dev/urandom) % 12000) + 20000 ))
        case "$port_used" in *" $p "*) continue ;; esac
        if ! in_use "$p"; then
            port_used="$port_used$p "
            eval "$1=$p"
            return
        fi
    done
}
