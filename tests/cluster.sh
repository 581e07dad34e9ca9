#!/bin/sh
# tests/cluster.sh - a chand cluster against a real etcd: three etcd members
# and one group of two chands (a primary and a replica) on loopback ports.
# Failover under load with sync replication (no acknowledged value lost),
# the killed node rejoining and catching up (then a second failover onto
# it), one etcd member down changing nothing, and no split brain: a primary
# stopped (SIGSTOP) past its lease refuses to answer when it resumes.
# Run by make check ($CHAND and $CHAN set there); every process it starts
# is stopped by PID.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    echo "SKIP: etcd is not installed (Debian: etcd-server, etcd-client; ./test.sh installs them)"
    exit 77
fi
. "${top_srcdir:?set by make check}/tests/lib.sh"
. "$top_srcdir/tests/cluster_lib.sh"
TTL=2

# ---- etcd: three members ----
start_etcd3 || exit 1
pass "three etcd members up"

# ---- two chands, one group ----
free_port C1; free_port C2
SEEDS="127.0.0.1:$C1,127.0.0.1:$C2"
start_node() {   # start_node N PORT
    "$CHAND" --listen "127.0.0.1:$2" --data-dir "$tmp/d$1" --cluster t --etcd "$ETCD" \
        --lease-ttl ${TTL}s --replication sync >>"$tmp/n$1.log" 2>&1 &
    eval "node$1=$!"
    pids="$pids $!"
}
start_node 1 "$C1"
start_node 2 "$C2"

joined_count() {   # joined_count N: replicas that joined node N so far
    grep -c "replica .* joined" "$tmp/n$1.log" 2>/dev/null || true
}
joins_at_least() {   # joins_at_least N LOG...: the logs tell of N replicas joined
    [ "$(shift; cat "$@" 2>/dev/null | grep -c "replica .* joined")" -ge "$1" ]
}

# The node that serves as primary now, by its log ("" if none yet).
primary_of() {   # primary_of: prints 1 or 2
    best=""; bt=0
    for n in 1 2; do
        t=$(grep -o "serving as primary of group g1 (term [0-9]*)" "$tmp/n$n.log" 2>/dev/null |
            tail -n 1 | sed 's/.*term \([0-9]*\))/\1/')
        f=$(grep -c "no longer primary" "$tmp/n$n.log" 2>/dev/null)
        if [ -n "$t" ] && [ "$t" -gt "$bt" ]; then best=$n; bt=$t; fi
    done
    echo "$best"
}
wait_primary() {   # wait_primary NOT_N TIMEOUT_TENTHS: a primary other than NOT_N
    i=0
    while [ $i -lt "$2" ]; do
        p=$(primary_of)
        if [ -n "$p" ] && [ "$p" != "$1" ]; then echo "$p"; return 0; fi
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
first=$(wait_primary none 100) || { fail "no primary elected in 10 s"; exit 1; }
pass "node $first elected primary"
other=$((3 - first))
wait_for 300 grep -q "replica .* joined" "$tmp/n$first.log" ||
    { fail "the replica did not join"; exit 1; }
pass "node $other replicates from node $first"

# ---- half a copy: a replica killed in the middle of a full copy ----
# leaves the marker COPYING in its dir.  A single chand refuses the dir; a
# cluster node alone in its group with it never runs for primary.
mkdir -p "$tmp/d9"
: >"$tmp/d9/COPYING"
timeout --foreground -k 10 20 "$CHAND" --listen 127.0.0.1:0 --data-dir "$tmp/d9" >"$tmp/single9.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "unfinished copy" "$tmp/single9.out"; then
    pass "a single chand refuses a dir holding half a copy"
else
    fail "a single chand on half a copy: exit $rc: $(cat "$tmp/single9.out")"
fi
free_port C9
"$CHAND" --listen "127.0.0.1:$C9" --data-dir "$tmp/d9" --cluster t --group g9 --etcd "$ETCD" \
    --lease-ttl ${TTL}s >"$tmp/n9.log" 2>&1 &
node9=$!
pids="$pids $node9"

# chan cluster status, through the seeds: the primary's view (nodes publish
# their role and position in etcd a few times a second).
i=0
while :; do
    timeout 20 "$CHAN" --addr "$SEEDS" cluster status >"$tmp/status" 2>&1
    if grep -q "^replicas: 1$" "$tmp/status" && grep -q "^role: primary$" "$tmp/status" &&
        [ "$(grep -c " g1 .* \(primary\|replica\) " "$tmp/status")" -eq 2 ]; then
        pass "chan cluster status shows the primary, its replica and both nodes"
        timeout 20 "$CHAN" --addr "$SEEDS" cluster status --json >"$tmp/status.json" 2>&1
        [ "$(grep -c '^{"cluster":"t","node":"127.0.0.1:[0-9]*","group":"g1","role":"primary",' \
            "$tmp/status.json")" -eq 1 ] &&
            [ "$(grep -c '^{"member":"[^"]*","group":"g1",.*"lag_bytes":' "$tmp/status.json")" -eq 2 ] ||
            fail "cluster status --json: $(cat "$tmp/status.json")"
        break
    fi
    i=$((i + 1))
    if [ $i -gt 150 ]; then fail "cluster status: $(cat "$tmp/status")"; break; fi
    sleep 0.1
done

# ---- a hung etcd member (the first endpoint every node uses) ----
# Renewals that hang are tried on the next member before the lease could
# lapse: the primary keeps serving.  The member that hangs is a follower:
# were it etcd's leader, etcd itself would stall for its own election (half
# a second here, seconds on a loaded machine) and the lease could lapse
# whatever chand did.
etcd_not_leader 1 || fail "etcd's leadership could not be moved off member 1"
eval "e=\$etcd1"
kill -STOP "$e"
timeout 20 "$CHAN" --addr "$SEEDS" make hung --cap 10 2>"$tmp/hung.err" ||
    fail "make while an etcd member hangs: $(cat "$tmp/hung.err")"
sleep $((TTL * 2))
timeout 20 "$CHAN" --addr "$SEEDS" send hung x 2>"$tmp/hung.err" ||
    fail "send while an etcd member hangs: $(cat "$tmp/hung.err")"
kill -CONT "$e"
if grep -q "no longer primary" "$tmp/n$first.log"; then
    fail "the primary stepped down while one etcd member hung"
else
    pass "one etcd member hung for $((TTL * 2)) s: the primary kept its lease and served"
fi

# Clients go through the seeds and land on the primary.
timeout 20 "$CHAN" --addr "$SEEDS" make jobs --cap 100000 || fail "make through the seeds"
seq 1 1000 | timeout 20 "$CHAN" --addr "$SEEDS" send jobs || fail "send 1000 through the seeds"

# ---- failover under load ----
# A producer sends one value per command, retrying each until it is
# answered OK; what was answered OK is in acked.  The primary is killed
# while it runs.
producer() {
    v=1001
    end=$(( $(date +%s) + 30 ))
    while [ ! -f "$tmp/stop" ] && [ "$(date +%s)" -lt "$end" ]; do
        if timeout 10 "$CHAN" --addr "$SEEDS" send jobs "$v" 2>>"$tmp/producer.err"; then
            echo "$v" >>"$tmp/acked"
            v=$((v + 1))
        else
            sleep 0.05
        fi
    done
}
: >"$tmp/acked"
producer &
prod=$!
pids="$pids $prod"
sleep 1
eval "victim=\$node$first"
t0=$(date +%s%N)
kill -KILL "$victim"
wait "$victim" 2>/dev/null
# A client dialling now is told of the dead primary until its lease runs
# out: it waits for the election instead of giving up (the send is
# answered once the new primary has a replica again: below, so its bound
# covers the failover's, the second before the restart and the rejoin's)
timeout $(( TTL * 2 + 4 + 1 + 30 + 10 )) "$CHAN" --addr "$SEEDS" send jobs 999999 2>"$tmp/during.err" &
during=$!
second=$(wait_primary "$first" $(( (TTL + 10) * 10 ))) || { fail "no failover"; exit 1; }
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
# (the bound has room for a loaded machine: it catches a failover that
# waits for something other than the lease, not a slow one)
if [ "$ms" -le $(( (TTL * 2 + 4) * 1000 )) ]; then
    pass "node $second took over ${ms} ms after the kill (lease TTL ${TTL} s)"
else
    fail "failover took ${ms} ms, over twice the lease TTL + 4 s"
fi
sleep 1
# ---- the killed node rejoins as a replica and catches up ----
start_node "$first" "$(eval echo "\$C$first")"
if wait_for 300 joins_at_least 1 "$tmp/n$second.log"; then
    pass "node $first rejoined as a replica $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill"
else
    fail "the killed node did not rejoin"
fi
wait "$during"
rc=$?
t2=$(date +%s%N)
if [ "$rc" -eq 0 ]; then
    echo 999999 >>"$tmp/acked"
    pass "a send dialled while the primary was dead waited for the new one ($(( (t2 - t0) / 1000000 )) ms)"
else
    fail "a send dialled while the primary was dead: exit $rc after $(( (t2 - t0) / 1000000 )) ms: $(cat "$tmp/during.err")"
    # (the logs' ends shown at exit are long past this moment)
    since=$(date -u -d "@$((t0 / 1000000000))" +%Y-%m-%dT%H:%M:%S)
    for n in 1 2; do
        echo "---- n$n.log since the kill ($since)"
        awk -v t="$since" 'substr($1, 1, 19) >= t' "$tmp/n$n.log" | head -n 60
    done
fi
sleep 1
touch "$tmp/stop"
wait "$prod" 2>/dev/null
nacked=$(wc -l <"$tmp/acked")
[ "$nacked" -gt 0 ] || fail "the producer got no send through"

# ---- a second failover, onto the node that rejoined ----
eval "victim=\$node$second"
kill -KILL "$victim"
wait "$victim" 2>/dev/null
third=$(wait_primary "$second" $(( (TTL + 10) * 10 ))) || { fail "no second failover"; exit 1; }
pass "node $third took over again"

# Every value answered OK is there: 1..1000, then each acked one.
total=$(timeout 20 "$CHAN" --addr "$SEEDS" stat jobs | sed -n 's/^len: //p')
timeout 30 "$CHAN" --addr "$SEEDS" recv jobs -n "$total" >"$tmp/got" ||
    fail "receive the $total values"
seq 1 1000 >"$tmp/want"
cat "$tmp/acked" >>"$tmp/want"
missing=$(sort -n "$tmp/want" | comm -23 - "$(sort -n "$tmp/got" >"$tmp/got.s"; echo "$tmp/got.s")" | head -n 5)
if [ -z "$missing" ]; then
    pass "all 1000 + $nacked values answered OK are there after two failovers ($total held)"
else
    fail "values answered OK and lost: $missing"
fi
# in order: the first 1000 as sent
head -n 1000 "$tmp/got" | cmp -s - "$(seq 1 1000 >"$tmp/s1000"; echo "$tmp/s1000")" ||
    fail "the first 1000 values are out of order"

# ---- no split brain, with one etcd member down ----
eval "e=\$etcd3"
kill -KILL "$e"
wait "$e" 2>/dev/null
restarted=$((3 - third))
start_node "$restarted" "$(eval echo "\$C$restarted")"
wait_for 300 joins_at_least 2 "$tmp/n$third.log" ||
    fail "no replica rejoined with an etcd member down"
eval "stopped=\$node$third"
kill -STOP "$stopped"
fourth=$(wait_primary "$third" $(( (TTL + 10) * 10 ))) ||
    { fail "no failover while the primary is stopped"; exit 1; }
pass "node $fourth elected while node $third is stopped (one etcd member down)"
# Under sync replication the new primary answers a send only once a
# replica has it: the only other node is the stopped one, so this send
# waits until it has stepped down and caught up.  A client talking to the
# stopped primary directly: its request waits in the socket.
timeout 30 "$CHAN" --addr "$SEEDS" send jobs after-failover 2>"$tmp/after.err" &
after=$!
timeout 20 "$CHAN" --addr "127.0.0.1:$(eval echo "\$C$third")" send jobs from-the-past \
    >"$tmp/past.out" 2>&1 &
past=$!
sleep 0.5
kill -CONT "$stopped"
wait "$past"
past_rc=$?
wait "$after" || fail "send to the new primary: $(cat "$tmp/after.err")"
wait_for 150 grep -q "no longer primary" "$tmp/n$third.log" &&
    pass "the resumed primary stepped down" || fail "the resumed primary did not step down"
sleep 1
timeout 20 "$CHAN" --addr "$SEEDS" recv jobs -n 1000000 -t 1000 >"$tmp/rest" 2>/dev/null
grep -qx "after-failover" "$tmp/rest" || fail "the new primary lost the value sent to it"
if [ "$past_rc" -eq 0 ]; then
    grep -qx "from-the-past" "$tmp/rest" ||
        fail "a send answered OK by the stale primary is not on the new one"
    pass "the send to the stale primary was answered only once the new primary had it"
else
    pass "the send to the stale primary was refused (exit $past_rc)"
fi

if grep -q "elected primary" "$tmp/n9.log"; then
    fail "a node holding half a copy was elected"
elif ! grep -q "unfinished copy" "$tmp/n9.log"; then
    fail "the node holding half a copy did not say so: $(cat "$tmp/n9.log")"
else
    pass "a node holding half a copy was never elected (alone in its group for the whole test)"
fi
stop_pid "$node9"

# ---- TLS: nodes whose listeners speak TLS replicate over TLS ----
# Certificates made here (a CA, one certificate for 127.0.0.1 that every
# node shows, as server and as replica dialling its primary).
# The nodes reach each other through relays (tcp_relay), so that the test
# can cut the replica's link.
mkdir -p "$tmp/tls"
make_pki() {   # make_pki TAG: ca-TAG.pem, node-TAG.pem and node-TAG.key
    (
        cd "$tmp/tls" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "ca-$1.key" -out "ca-$1.pem" -days 2 -subj "/CN=cluster-test-ca-$1" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "node-$1.key" \
                -out "node-$1.csr" -subj /CN=127.0.0.1 &&
            printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >ext &&
            openssl x509 -req -in "node-$1.csr" -CA "ca-$1.pem" -CAkey "ca-$1.key" \
                -CAcreateserial -out "node-$1.pem" -days 2 -extfile ext
    ) >"$tmp/tls/openssl.log" 2>&1 || fail "making certificates: $(cat "$tmp/tls/openssl.log")"
}
use_pki() {   # use_pki TAG: the files the nodes were told of become TAG's
    for f in ca.pem node.pem node.key; do
        cp "$tmp/tls/${f%%.*}-$1.${f#*.}" "$tmp/tls/$f.new" && mv "$tmp/tls/$f.new" "$tmp/tls/$f"
    done
}
make_pki a
make_pki b
use_pki a
RELAY=${TCP_RELAY:-$(dirname "$CHAND")/../tests/tcp_relay}
free_port T1; free_port T2; free_port TR1; free_port TR2
for n in 1 2; do
    eval "tp=\$T$n; tr=\$TR$n"
    "$RELAY" "$tr" "$tp" &
    eval "trelay$n=$!"
    pids="$pids $!"
    "$CHAND" --listen "127.0.0.1:$tp" --advertise "127.0.0.1:$tr" --data-dir "$tmp/dt$n" \
        --cluster t --group gt --etcd "$ETCD" --lease-ttl ${TTL}s --tls-cert "$tmp/tls/node.pem" \
        --tls-key "$tmp/tls/node.key" --tls-ca "$tmp/tls/ca.pem" >"$tmp/nt$n.log" 2>&1 &
    eval "tnode$n=$!"
    pids="$pids $!"
done
TSEEDS="tls://127.0.0.1:$T1,tls://127.0.0.1:$T2"
# --tls-ca makes the nodes ask clients for a certificate too: the CLI shows
# the same one
export CHAN_TLS_CERT="$tmp/tls/node.pem" CHAN_TLS_KEY="$tmp/tls/node.key"
wait_for 300 joins_at_least 1 "$tmp/nt1.log" "$tmp/nt2.log" || fail "no replica joined over TLS"
tp=1
grep -q "replica .* joined" "$tmp/nt2.log" && tp=2
pass "a replica copies its primary over TLS"
# Certificates renewed from another CA: both nodes read the files again on
# SIGHUP, the primary then trusts only the new CA, and the replica's next
# dial (its link cut) must show its new certificate to be let in.
use_pki b
kill -HUP "$tnode1" "$tnode2"
for n in 1 2; do
    wait_for 50 grep -q "SIGHUP: TLS certificate for new connections" "$tmp/nt$n.log" ||
        fail "node $n did not reload its TLS files"
done
kill -USR1 "$trelay1" "$trelay2"
if wait_for 300 joins_at_least 2 "$tmp/nt1.log" "$tmp/nt2.log"; then
    pass "after SIGHUP the replica redials its primary with the renewed certificate"
else
    fail "the replica did not rejoin with its renewed certificate: $(grep -h "TLS" "$tmp/nt1.log" "$tmp/nt2.log" | tail -n 3)"
fi
CHAN_TLS_CA="$tmp/tls/ca.pem" timeout 20 "$CHAN" --addr "$TSEEDS" make secure --cap 10 &&
    CHAN_TLS_CA="$tmp/tls/ca.pem" timeout 20 "$CHAN" --addr "$TSEEDS" send secure sealed ||
    fail "send over TLS through the seeds"
eval "tv=\$tnode$tp"
kill -KILL "$tv"
wait "$tv" 2>/dev/null
to=$((3 - tp))
wait_for $(( (TTL + 10) * 10 )) grep -q "serving as primary" "$tmp/nt$to.log" || fail "no TLS failover"
got=$(CHAN_TLS_CA="$tmp/tls/ca.pem" timeout 20 "$CHAN" --addr "$TSEEDS" recv secure -t 5000 2>&1)
[ "$got" = sealed ] && pass "the value sent over TLS survives the failover" ||
    fail "after the TLS failover: $got"
eval "tv=\$tnode$to"
stop_pid "$tv"
stop_pid "$trelay1"
stop_pid "$trelay2"
unset CHAN_TLS_CERT CHAN_TLS_KEY

# ---- etcd loses its quorum: the primary stops answering ----
# (etcd member 3 is down already; member 1 goes too)
eval "e=\$etcd1"
kill -KILL "$e"
wait "$e" 2>/dev/null
eval "np=\$node$fourth"
before=$(grep -c "no longer primary" "$tmp/n$fourth.log")
stepped_down() { [ "$(grep -c "no longer primary" "$tmp/n$fourth.log")" -gt "$before" ]; }
wait_for $(( (TTL + 3) * 10 )) stepped_down &&
    pass "with etcd's quorum lost the primary stopped answering (within the lease TTL)" ||
    fail "the primary kept serving without etcd"
timeout 10 "$CHAN" --addr "$SEEDS" send jobs no-quorum -t 1000 2>/dev/null &&
    fail "a send was answered with etcd's quorum lost"
# etcd back: a primary again, and every value still there
start_etcd 1 "$E1" "$P1"
start_etcd 3 "$E3" "$P3"
wait_primary none $(( (TTL + 20) * 10 )) >/dev/null || fail "no primary once etcd is back"
timeout 20 "$CHAN" --addr "$SEEDS" send jobs after-quorum ||
    fail "send once etcd is back"
timeout 20 "$CHAN" --addr "$SEEDS" recv jobs -n 1 -t 5000 >"$tmp/last" 2>&1
grep -qx "after-quorum" "$tmp/last" && pass "served again once etcd's quorum is back" ||
    fail "the value sent once etcd is back: $(cat "$tmp/last")"

# ---- a clean stop hands over at once ----
# SIGTERM: the primary waits until its replica has everything, revokes its
# lease (no waiting for the TTL), and exits 0.
p=$(primary_of)
eval "pp=\$node$p"
one_replica() {   # the primary says it has one replica
    timeout 10 "$CHAN" --addr "$SEEDS" cluster status 2>/dev/null | grep -q "^replicas: 1$"
}
replica_of() { [ "$(joined_count "$1")" -ge 1 ] && one_replica; }
wait_for 300 replica_of "$p" || fail "no replica before the clean stop"
timeout 20 "$CHAN" --addr "$SEEDS" send jobs before-term || fail "send before the clean stop"
kill -TERM "$pp"
wait "$pp"
term_rc=$?
[ "$term_rc" -eq 0 ] || fail "the primary stopped by SIGTERM exited $term_rc"
grep -q "lease revoked" "$tmp/n$p.log" && pass "the stopped primary revoked its lease" ||
    fail "the stopped primary did not revoke its lease"
wait_primary "$p" $(( (TTL + 10) * 10 )) >/dev/null || fail "no primary after the clean stop"
timeout 20 "$CHAN" --addr "$SEEDS" recv jobs -n 1 -t 5000 >"$tmp/term" 2>&1
grep -qx "before-term" "$tmp/term" && pass "the value sent before the clean stop is on the new primary" ||
    fail "after the clean stop: $(cat "$tmp/term")"

# ---- a node with an empty disk is not elected while the data is away ----
# The node stopped above comes back as a replica, takes a value, and is
# killed; its disk is replaced (the dir removed); then the primary is
# killed.  Started alone, the empty node finds the group's acknowledged
# position in etcd beyond its copy: it waits.  Once the old primary is
# back, it is elected and the value is there.
paddr=$(timeout 20 "$CHAN" --addr "$SEEDS" cluster status 2>/dev/null | sed -n 's/^node: //p')
p=1
[ "$paddr" = "127.0.0.1:$C2" ] && p=2
q=$((3 - p))
eval "vq=\$node$q"
kill -0 "$vq" 2>/dev/null || start_node "$q" "$(eval echo "\$C$q")"
wait_for 300 one_replica || fail "node $q did not rejoin"
timeout 20 "$CHAN" --addr "$SEEDS" send jobs on-one-disk || fail "send before the disk is replaced"
sleep 0.5   # the primary records what its replica acknowledged
eval "vq=\$node$q"
kill -KILL "$vq"
wait "$vq" 2>/dev/null
rm -rf "$tmp/d$q"
eval "vp=\$node$p"
kill -KILL "$vp"
wait "$vp" 2>/dev/null
served=$(grep -c "serving as primary" "$tmp/n$q.log")
start_node "$q" "$(eval echo "\$C$q")"
sleep $((TTL * 3))
if [ "$(grep -c "serving as primary" "$tmp/n$q.log")" -gt "$served" ]; then
    fail "a node with an empty disk was elected while the data was away"
elif grep -q "falls short of what group g1 acknowledged" "$tmp/n$q.log"; then
    pass "a node with an empty disk waits: its copy falls short of what the group acknowledged"
else
    fail "the empty node neither served nor said why it waits"
fi
start_node "$p" "$(eval echo "\$C$p")"
got=$(timeout 30 "$CHAN" --addr "$SEEDS" recv jobs -n 1 -t 20000 2>&1)
[ "$got" = on-one-disk ] && pass "once the node with the data is back, the value is there" ||
    fail "after the disk was replaced: $got"

[ "$failures" -eq 0 ] || exit 1
echo "all cluster tests passed"
