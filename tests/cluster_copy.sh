#!/bin/sh
# tests/cluster_copy.sh - replication copies cut short, against a real etcd
# (one member) and two chands whose replication goes through tcp_relay, a
# relay that slows the stream down, holds back acknowledgements on SIGUSR2
# and cuts the stream on SIGUSR1:
#   - a snapshot sent to a replica live, its connection cut in the middle:
#     the replica takes it whole once it reconnects;
#   - a replica's acknowledgement lost with its connection: once it
#     reconnects holding everything, what waited for it is answered;
#   - a node whose full copy is not whole (a new disk, copying from the
#     primary) when the primary dies: it is not elected (it lacks values
#     answered OK), and once the old primary is back every value is there;
#   - under async replication, a replica left behind by several rewrites
#     (the logs it lacks removed): its copy goes on through the snapshot;
#   - a primary that wrote a record its replica never got, back as the
#     replica of the new primary: it cuts that record off and rejoins.
# Run by make check ($CHAND, $CHAN and $TCP_RELAY set there); every process
# it starts is stopped by PID.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
RELAY=${TCP_RELAY:-$(dirname "$CHAND")/../tests/tcp_relay}
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    echo "SKIP: etcd is not installed (Debian: etcd-server, etcd-client; ./test.sh installs them)"
    exit 77
fi
. "${top_srcdir:?set by make check}/tests/lib.sh"
. "$top_srcdir/tests/cluster_lib.sh"
# 3 s: a 2 s lease can lapse on a busy machine (keepalives late), and a
# fenced primary would fail the load
TTL=3

# wait_log FILE PATTERN TENTHS [COUNT]: until FILE has COUNT (1) lines matching
count_lines() {   # count_lines FILE PATTERN: 0 for a file not created yet
    n=$(grep -c "$2" "$1" 2>/dev/null)
    echo "${n:-0}"
}
wait_log() {
    i=0
    # (the node's shell may not have created its log at the first look)
    while [ "$(count_lines "$1" "$2")" -lt "${4:-1}" ]; do
        i=$((i + 1))
        [ $i -gt "$3" ] && return 1
        sleep 0.1
    done
}

free_port E; free_port EP
etcd --name e1 --data-dir "$tmp/etcd" \
    --listen-client-urls "http://127.0.0.1:$E" --advertise-client-urls "http://127.0.0.1:$E" \
    --listen-peer-urls "http://127.0.0.1:$EP" --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
    --initial-cluster "e1=http://127.0.0.1:$EP" \
    --heartbeat-interval 50 --election-timeout 500 >"$tmp/etcd.log" 2>&1 &
pids="$pids $!"
ETCD="127.0.0.1:$E"
etcd_healthy() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD" endpoint health >/dev/null 2>&1; }
wait_for 300 etcd_healthy || { fail "etcd did not come up in 30 s"; exit 1; }

# Node N listens on C$N; the others reach it through its relay R$N (4 MB/s).
free_port C1; free_port C2; free_port R1; free_port R2
for n in 1 2; do
    eval "\"$RELAY\" \$R$n \$C$n 4000000 &"
    eval "relay$n=$!"
    pids="$pids $!"
done
start_node() {   # start_node N
    eval "c=\$C$1 r=\$R$1"
    "$CHAND" --listen "127.0.0.1:$c" --advertise "127.0.0.1:$r" --data-dir "$tmp/d$1" \
        --cluster t --etcd "$ETCD" --lease-ttl ${TTL}s --replication sync --rewrite-size 1m \
        >>"$tmp/n$1.log" 2>&1 &
    eval "node$1=$!"
    pids="$pids $!"
}
start_node 1
wait_log "$tmp/n1.log" "serving as primary" 100 || { fail "node 1 not elected"; exit 1; }
start_node 2
wait_log "$tmp/n1.log" "replica .* joined" 100 || { fail "node 2 did not join"; exit 1; }
pass "node 1 primary, node 2 its replica"

# ---- a live snapshot cut in the middle ----
# 60000 values of 100 bytes: rewrites every 1 MiB of log; each snapshot goes
# to the replica as it is made.  The first time the replica is receiving
# one, its connection is cut.
seq -f "%.0f-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    1 60000 | timeout 120 "$CHAN" --addr "127.0.0.1:$C1" send big --cap 1000000 >"$tmp/load.out" 2>&1 &
load=$!
pids="$pids $load"
i=0
until ls "$tmp/d2" | grep -q '^snap\..*\.tmp$'; do
    i=$((i + 1))
    if [ $i -gt 1000 ]; then break; fi
    sleep 0.01
done
kill -USR1 "$relay1"
wait "$load" || fail "the load: $(cat "$tmp/load.out")"
# same_snapshot N M: node M holds node N's newest snapshot (sa, sb: theirs)
same_snapshot() {
    sa=$(ls "$tmp/d$1" | grep '^snap\.[0-9]*$' | tail -n 1)
    sb=$(ls "$tmp/d$2" | grep '^snap\.[0-9]*$' | tail -n 1)
    [ -n "$sa" ] && [ "$sa" = "$sb" ]
}
# settled: the replica holds the primary's newest snapshot
if ! wait_for 100 same_snapshot 1 2; then
    fail "the replica never took the snapshot its cut connection was sending ($sa / $sb)"
elif grep -q "snapshot bytes out of order" "$tmp/n2.log"; then
    fail "the replica refused the snapshot sent again from its start"
else
    pass "a snapshot cut in the middle is taken whole after the reconnection"
fi
ls "$tmp/d2" | grep -q '\.tmp$' && fail "a part of a snapshot was left: $(ls "$tmp/d2")"
# rewrites every 1 MiB while the replica lags: the primary removes logs its
# copy has not reached, and must send the snapshot instead, never a log
# whose predecessor the replica lacks
if grep -q "does not follow" "$tmp/n2.log"; then
    fail "the primary skipped logs its replica lacked"
else
    pass "the replica's copy never skipped a log across $(grep -c "rewrite done" "$tmp/n1.log") rewrites"
fi

# ---- an acknowledgement lost with the connection ----
# The replica writes the value; its acknowledgement waits in the relay,
# which then drops it with the connection.  The replica reconnects with
# nothing to copy: the send must be answered all the same.
kill -USR2 "$relay1"
sleep 0.2
timeout 20 "$CHAN" --addr "127.0.0.1:$C1" send big ack-lost >"$tmp/acklost.out" 2>&1 &
acklost=$!
sleep 1
# meanwhile the primary still answers what promises nothing: Hello, Stat
if timeout 5 "$CHAN" --addr "127.0.0.1:$C1" stat >/dev/null 2>"$tmp/stat.err" &&
    timeout 5 "$CHAN" --addr "127.0.0.1:$C1" cluster status >/dev/null 2>>"$tmp/stat.err"; then
    pass "stat and cluster status answer while a send waits for its replica"
else
    fail "stat while a send waits for its replica: $(cat "$tmp/stat.err")"
fi
kill -USR1 "$relay1"
i=0
while kill -0 "$acklost" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$acklost" 2>/dev/null; then
    fail "a send waits for an acknowledgement lost with the replica's connection"
elif wait "$acklost"; then
    pass "a send whose acknowledgement was lost is answered once the replica reconnects"
else
    fail "send ack-lost: $(cat "$tmp/acklost.out")"
fi
wait "$acklost" 2>/dev/null

# ---- the primary dies while a new disk is copied ----
kill -KILL "$node1"
wait "$node1" 2>/dev/null
wait_log "$tmp/n2.log" "serving as primary" $(( (TTL + 4) * 10 )) || { fail "no failover"; exit 1; }
rm -rf "$tmp/d1"
served=$(grep -c "serving as primary" "$tmp/n1.log")
start_node 1
wait_log "$tmp/n1.log" "taking a full copy" 100 || { fail "node 1 took no full copy"; exit 1; }
# The primary dies once the copy's snapshot is whole, the logs after it
# (values answered OK) still coming through the slow relay.
i=0
until ls "$tmp/d1" | grep -q '^snap\.[0-9]*$'; do
    i=$((i + 1))
    if [ $i -gt 1000 ]; then break; fi
    sleep 0.01
done
copying=no waited=no
[ -f "$tmp/d1/COPYING" ] && copying=yes
kill -KILL "$node2"
wait "$node2" 2>/dev/null
sleep $((TTL + 2))
if [ "$(grep -c "serving as primary" "$tmp/n1.log")" -gt "$served" ]; then
    # fine only if its copy was whole: every value must be there below
    echo "note: node 1 was elected (its copy was marked unfinished: $copying)"
    [ "$copying" = yes ] && fail "node 1 was elected with a copy marked unfinished"
else
    pass "a node whose copy is not whole is not elected"
    waited=yes
fi
start_node 2
len=$(timeout 30 "$CHAN" --addr "127.0.0.1:$C1,127.0.0.1:$C2" stat big | sed -n 's/^len: //p')
if [ "$len" = 60001 ]; then
    pass "all 60001 values answered OK are there"
else
    fail "values answered OK and lost: $len of 60001 left"
fi
[ "$waited" = yes ] &&
    { wait_log "$tmp/n1.log" "the full copy is whole" 200 || fail "node 1's copy never became whole"; }

# ---- async: a replica left behind by rewrites ----
# Under --replication async nothing waits for the replica: with its stream
# stopped (the relay in front of the primary, SIGSTOP) the primary rewrites
# eight times (more than the sockets between hold), removing logs the
# replica's copy had not reached.  Resumed, the copy must go on through the
# snapshot, never by skipping to a log whose predecessor it lacks.  A
# cluster of its own (t2): a second group of cluster t would have no slots.
free_port C3; free_port C4; free_port R3; free_port R4
for n in 3 4; do
    eval "\"$RELAY\" \$R$n \$C$n 4000000 &"
    eval "relay$n=$!"
    pids="$pids $!"
done
start_async() {   # start_async N
    eval "c=\$C$1 r=\$R$1"
    "$CHAND" --listen "127.0.0.1:$c" --advertise "127.0.0.1:$r" --data-dir "$tmp/d$1" \
        --cluster t2 --group ga --etcd "$ETCD" --lease-ttl ${TTL}s --replication async \
        --rewrite-size 1m >>"$tmp/n$1.log" 2>&1 &
    eval "node$1=$!"
    pids="$pids $!"
}
start_async 3
wait_log "$tmp/n3.log" "serving as primary" 100 || { fail "node 3 not elected"; exit 1; }
start_async 4
wait_log "$tmp/n3.log" "replica .* joined" 100 || { fail "node 4 did not join"; exit 1; }
timeout 20 "$CHAN" --addr "127.0.0.1:$C3" make lag --cap 1000000 || fail "make lag"
sleep 0.5
kill -STOP "$relay3"
# Each round's values are received again, so that the snapshots stay
# small and the logs reach --rewrite-size (1 MiB) round after round.
for round in 1 2 3 4 5 6 7 8; do
    seq -f "%.0f-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
        1 12000 | timeout 120 "$CHAN" --addr "127.0.0.1:$C3" send lag >"$tmp/lag.out" 2>&1 ||
        fail "the async load: $(cat "$tmp/lag.out")"
    timeout 60 "$CHAN" --addr "127.0.0.1:$C3" recv lag -n 12000 >/dev/null 2>"$tmp/lag.out" ||
        fail "receiving the round: $(cat "$tmp/lag.out")"
    wait_log "$tmp/n3.log" "rewrite done" 100 "$round" || fail "node 3 did not rewrite ($round)"
done
seq 1 100 | timeout 20 "$CHAN" --addr "127.0.0.1:$C3" send lag || fail "the last 100 values"
kill -CONT "$relay3"
wait_for 300 same_snapshot 3 4 || fail "the replica left behind never caught up ($sa / $sb)"
if grep -q "does not follow" "$tmp/n4.log"; then
    fail "the primary skipped logs its replica lacked"
else
    pass "a replica left behind by $(grep -c "rewrite done" "$tmp/n3.log") rewrites went on through the snapshot"
fi
sleep 1   # the last records after the snapshot
kill -KILL "$node3"
wait "$node3" 2>/dev/null
wait_log "$tmp/n4.log" "serving as primary" $(( (TTL + 4) * 10 )) || fail "node 4 not elected"
len=$(timeout 30 "$CHAN" --addr "127.0.0.1:$C4" stat lag | sed -n 's/^len: //p')
[ "$len" = 100 ] && pass "the copy that went on through the snapshot holds the 100 values left" ||
    fail "node 4 holds $len of the 100 values left"

# ---- a primary that wrote what its replica never got rejoins: the cut ----
# Under sync replication the primary writes a send's record before its
# replica has it (the answer waits).  Its stream to the replica stopped
# (the relay in front of it, SIGSTOP, then killed with what it held), the
# primary writes one such record and dies.  The replica is elected and
# starts a log of its own term; the old primary comes back as its replica
# holding a longer copy of the log before, and must be told to cut that
# record off before the new logs come: else it never rejoins, and under
# sync replication the new primary answers nothing.  A cluster of its own.
free_port C5; free_port C6; free_port R5; free_port R6
start_relay() {   # start_relay N
    eval ""$RELAY" \$R$1 \$C$1 &"
    eval "relay$1=$!"
    pids="$pids $!"
}
start_cut() {   # start_cut N
    eval "c=\$C$1 r=\$R$1"
    "$CHAND" --listen "127.0.0.1:$c" --advertise "127.0.0.1:$r" --data-dir "$tmp/d$1" \
        --cluster t3 --group gc --etcd "$ETCD" --lease-ttl ${TTL}s --replication sync \
        >>"$tmp/n$1.log" 2>&1 &
    eval "node$1=$!"
    pids="$pids $!"
}
start_relay 5
start_relay 6
start_cut 5
wait_log "$tmp/n5.log" "serving as primary" 100 || { fail "node 5 not elected"; exit 1; }
start_cut 6
wait_log "$tmp/n5.log" "replica .* joined" 100 || { fail "node 6 did not join"; exit 1; }
SEEDS56="127.0.0.1:$C5,127.0.0.1:$C6"
timeout 20 "$CHAN" --addr "127.0.0.1:$C5" make cut --cap 100 &&
    timeout 20 "$CHAN" --addr "127.0.0.1:$C5" send cut before || fail "make and send before the cut"
kill -STOP "$relay5"
timeout 20 "$CHAN" --addr "127.0.0.1:$C5" send cut unreplicated >/dev/null 2>&1 &
tail_send=$!
sleep 1   # written to node 5's log, its answer waiting for the replica
kill -KILL "$node5" "$relay5"
wait "$node5" "$relay5" 2>/dev/null
wait "$tail_send" 2>/dev/null
wait_log "$tmp/n6.log" "serving as primary" $(( (TTL + 6) * 10 )) || { fail "node 6 not elected"; exit 1; }
start_relay 5
start_cut 5
if wait_log "$tmp/n6.log" "replica .* joined: a cut" 150 && wait_log "$tmp/n5.log" "replica: cut log" 100; then
    pass "the old primary rejoined, its record the new primary never had cut off"
else
    fail "the old primary did not take the cut: $(grep "replica" "$tmp/n5.log" | tail -n 2)"
fi
if timeout 20 "$CHAN" --addr "$SEEDS56" send cut after 2>"$tmp/after.err"; then
    pass "the new primary answers a send once the old one is its replica"
else
    fail "a send to the new primary: $(cat "$tmp/after.err")"
fi
# and the copy is right: once node 5 is primary again, the channel holds
# what node 6 answered OK, without the record cut off
kill -KILL "$node6"
wait "$node6" 2>/dev/null
wait_log "$tmp/n5.log" "serving as primary" $(( (TTL + 6) * 10 )) 2 || fail "node 5 not elected again"
got=$(timeout 20 "$CHAN" --addr "$SEEDS56" recv cut -n 10 -t 1000 2>/dev/null | tr '\n' ' ')
[ "$got" = "before after " ] && pass "after the cut and a failover the channel holds: $got" ||
    fail "after the cut and a failover the channel holds: '$got', not 'before after '"

[ "$failures" -eq 0 ] || exit 1
echo "all cluster copy tests passed"
