#!/bin/sh
# tests/cluster_slots.sh - one namespace over two groups: three etcd members,
# groups g1 and g2 of a primary and a replica each (sync replication), on
# loopback ports.  The slot map in etcd; a move of half the slots with
# their channels and values; every operation and a select across groups
# through one client; slots moved back and forth while producers and
# consumers run (nothing lost, nothing repeated unmarked, order kept); a
# move that outlives the old group's primary (killed in the middle) ends
# under its successor; values of 700 kB move whole; a call waits for a
# group that has no node until one is back; a part of an older move is
# refused.  Run by make check
# ($CHAND, $CHAN and $CLUSTER_CLIENT set there); every process it starts is
# stopped by PID.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
CLIENT=${CLUSTER_CLIENT:?set by make check}
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    echo "SKIP: etcd is not installed (Debian: etcd-server, etcd-client; ./test.sh installs them)"
    exit 77
fi
. "${top_srcdir:?set by make check}/tests/lib.sh"
. "$top_srcdir/tests/cluster_lib.sh"
TTL=3

start_etcd3 || exit 1
pass "three etcd members up"

# ---- two groups of two ----
free_port C1; free_port C2; free_port C3; free_port C4
SEEDS="127.0.0.1:$C1,127.0.0.1:$C2,127.0.0.1:$C3,127.0.0.1:$C4"
start_node() {   # start_node N: nodes 1, 2 are group g1; 3, 4 group g2
    g=g$(( ($1 + 1) / 2 ))
    "$CHAND" --listen "127.0.0.1:$(eval echo "\$C$1")" --data-dir "$tmp/d$1" --cluster s \
        --group "$g" --etcd "$ETCD" --lease-ttl ${TTL}s --replication sync >>"$tmp/n$1.log" 2>&1 &
    eval "node$1=$!"
    pids="$pids $!"
}
for n in 1 2 3 4; do start_node $n; done

# the node serving as primary of group G now, by the logs ("" if none)
primary_of() {   # primary_of G
    best=""; bt=0
    for n in 1 2 3 4; do
        t=$(grep -o "serving as primary of group $1 (term [0-9]*)" "$tmp/n$n.log" 2>/dev/null |
            tail -n 1 | sed 's/.*term \([0-9]*\))/\1/')
        if [ -n "$t" ] && [ "$t" -gt "$bt" ]; then best=$n; bt=$t; fi
    done
    echo "$best"
}
have_primaries() { [ -n "$(primary_of g1)" ] && [ -n "$(primary_of g2)" ]; }
wait_for 150 have_primaries || { fail "no primary in each group in 15 s"; exit 1; }
p1=$(primary_of g1); p2=$(primary_of g2)
pass "node $p1 is primary of g1, node $p2 of g2"
joined() { grep -q "replica .* joined" "$tmp/n$p1.log" && grep -q "replica .* joined" "$tmp/n$p2.log"; }
wait_for 150 joined || fail "the replicas did not join"

# ---- the map: made by the first primary, every slot its group's ----
slots_ok() {
    timeout 20 "$CHAN" --addr "$SEEDS" cluster slots >"$tmp/slots" 2>&1 &&
        grep -q "^0-1023 g[12] 127.0.0.1:" "$tmp/slots"
}
wait_for 100 slots_ok || { fail "no slot map: $(cat "$tmp/slots")"; exit 1; }
first=$(sed -n 's/^0-1023 \(g[12]\) .*/\1/p' "$tmp/slots")
if [ "$first" = g1 ]; then second=g2; else second=g1; fi
pass "the slot map gives every slot to $first"
[ "$("$CHAN" cluster slot jobs)" = "$("$CHAN" cluster slot jobs)" ] &&
    [ "$("$CHAN" cluster slot jobs)" -lt 1024 ] || fail "chan cluster slot"

# channels and values before the move
for i in $(seq 0 39); do
    timeout 20 "$CHAN" --addr "$SEEDS" make "pre.$i" --cap 10 >/dev/null &&
        timeout 20 "$CHAN" --addr "$SEEDS" send "pre.$i" "a$i" "b$i" ||
        fail "make and send pre.$i"
done
if timeout 60 "$CHAN" --addr "$SEEDS" cluster move 512-1023 "$second" >"$tmp/move1" 2>&1; then
    pass "$(cat "$tmp/move1")"
else
    fail "cluster move 512-1023 $second: $(cat "$tmp/move1")"
fi
timeout 20 "$CHAN" --addr "$SEEDS" cluster slots >"$tmp/slots2" 2>&1
grep -q "^0-511 $first " "$tmp/slots2" && grep -q "^512-1023 $second " "$tmp/slots2" ||
    fail "the map after the move: $(cat "$tmp/slots2")"
# each group's primary holds the channels of its slots, and only those
count_on() {   # count_on NODE: channels its server stat counts
    timeout 20 "$CHAN" --addr "127.0.0.1:$(eval echo "\$C$1")" stat | sed -n 's/^channels: //p'
}
n1=$(count_on "$p1"); n2=$(count_on "$p2")
if [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] && [ $((n1 + n2)) -eq 40 ]; then
    pass "the 40 channels are spread: $n1 on g1, $n2 on g2"
else
    fail "channels per group after the move: $n1 and $n2"
fi
bad=0
for i in $(seq 0 39); do
    got=$(timeout 20 "$CHAN" --addr "$SEEDS" recv "pre.$i" -n 2 | tr '\n' ' ')
    [ "$got" = "a$i b$i " ] || { bad=$((bad + 1)); echo "pre.$i: '$got'"; }
done
[ $bad -eq 0 ] && pass "every value sent before the move is received after it, in order" ||
    fail "$bad channels lost values in the move"
# a moved channel's values are in the new group's replica too: its journal
# took them (Adopt is answered once durable)
grep -q "slots 512-1023: adopted" "$tmp/n$(primary_of "$second").log" ||
    fail "the new group's primary did not log the adoption"
timeout 10 "$CHAN" --addr "$SEEDS" cluster move 0-1023 "$first" >"$tmp/bad" 2>&1 &&
    fail "a move across two groups' slots was taken"
grep -q "more than one group" "$tmp/bad" && pass "a move across two groups is refused: $(cat "$tmp/bad")" ||
    fail "a move across groups: $(cat "$tmp/bad")"

# ---- every operation, across groups, through one client ----
if timeout 60 "$CLIENT" ops "$SEEDS" >"$tmp/ops" 2>&1; then
    pass "operations across groups: $(grep -c '^ok:' "$tmp/ops") checks"
else
    fail "operations across groups:"
    cat "$tmp/ops"
fi

# ---- moves under traffic ----
timeout 120 "$CLIENT" load "$SEEDS" 12 8 >"$tmp/load" 2>&1 &
load=$!
pids="$pids $load"
sleep 1
moves=0
for r in 1 2 3; do
    timeout 60 "$CHAN" --addr "$SEEDS" cluster move 512-1023 "$first" >>"$tmp/moves" 2>&1 &&
        moves=$((moves + 1))
    sleep 0.5
    timeout 60 "$CHAN" --addr "$SEEDS" cluster move 512-1023 "$second" >>"$tmp/moves" 2>&1 &&
        moves=$((moves + 1))
    sleep 0.5
done
[ $moves -eq 6 ] && pass "six moves while values flow: $(tr '\n' ';' <"$tmp/moves")" ||
    fail "moves under traffic: $(cat "$tmp/moves")"
if wait "$load"; then
    pass "$(grep '^load:' "$tmp/load")"
else
    fail "under moves: $(cat "$tmp/load")"
fi

# ---- a move whose old primary dies in the middle ----
# The new group's primary is stopped (SIGSTOP, for less than its lease) so
# that the move cannot end; the old group's primary is killed once it has
# started the move; its replica, elected, carries the move through.
timeout 20 "$CHAN" --addr "$SEEDS" make big.0 --cap 100000 &&
    seq 1 20000 | timeout 60 "$CHAN" --addr "$SEEDS" send big.0 ||
    fail "20000 values to big.0"
slot=$("$CHAN" cluster slot big.0)
owner=$(timeout 20 "$CHAN" --addr "$SEEDS" cluster slots |
    awk -v s="$slot" '{ split($1, r, "-"); if (s >= r[1] && s <= r[2]) print $2 }')
[ "$owner" = g1 ] && other=g2 || other=g1
victim=$(primary_of "$owner")
target=$(primary_of "$other")
heir=$(( victim % 2 == 1 ? victim + 1 : victim - 1 ))
eval "kill -STOP \$node$target"
timeout 60 "$CHAN" --addr "$SEEDS" cluster move "$slot" "$other" >"$tmp/move_kill" 2>&1 &
mover=$!
wait_for 50 grep -q "moving slots $slot-$slot" "$tmp/n$victim.log" ||
    fail "node $victim did not start the move"
eval "kill -KILL \$node$victim"
sleep 1
eval "kill -CONT \$node$target"
if wait "$mover"; then
    pass "a move whose old primary was killed in the middle ended: $(cat "$tmp/move_kill")"
else
    fail "the move after its primary died: $(cat "$tmp/move_kill")"
fi
grep -q "moved slots $slot-$slot to group $other" "$tmp/n$heir.log" &&
    pass "node $heir, elected in its place, ended it" ||
    fail "node $heir did not end the move"
got=$(timeout 60 "$CHAN" --addr "$SEEDS" recv big.0 -n 20000 2>"$tmp/big.err" | sort -n | uniq |
    wc -l)
if [ "$got" -eq 20000 ]; then
    pass "big.0's 20000 values are all in group $other"
else
    fail "big.0 after the move: $got of 20000 values: $(cat "$tmp/big.err")"
    for n in 1 2 3 4; do   # each node's view of the map
        echo "node $n: $(timeout 5 "$CHAN" --addr "127.0.0.1:$(eval echo "\$C$n")" cluster slots 2>&1 |
            tr '\n' ' ')"
    done
fi

# ---- large values move too: each Adopt part stays within a frame ----
# (the killed node comes back as its heir's replica first: under sync
# replication a primary without one holds its answers)
joins=$(grep -c "replica .* joined" "$tmp/n$heir.log")
start_node "$victim"
rejoined() { [ "$(grep -c "replica .* joined" "$tmp/n$heir.log")" -gt "$joins" ]; }
wait_for 150 rejoined || fail "node $victim did not rejoin as node $heir's replica"
free_slot=$("$CHAN" cluster slot huge.0)
head -c 700000 /dev/urandom >"$tmp/v1"
head -c 700000 /dev/urandom >"$tmp/v2"
timeout 20 "$CHAN" --addr "$SEEDS" make huge.0 --cap 4 &&
    timeout 20 "$CHAN" --addr "$SEEDS" send huge.0 --raw <"$tmp/v1" &&
    timeout 20 "$CHAN" --addr "$SEEDS" send huge.0 --raw <"$tmp/v2" ||
    fail "two values of 700 kB to huge.0"
howner=$(timeout 20 "$CHAN" --addr "$SEEDS" cluster slots |
    awk -v s="$free_slot" '{ split($1, r, "-"); if (s >= r[1] && s <= r[2]) print $2 }')
[ "$howner" = g1 ] && hother=g2 || hother=g1
if timeout 60 "$CHAN" --addr "$SEEDS" cluster move "$free_slot" "$hother" >"$tmp/move_huge" 2>&1 &&
    timeout 20 "$CHAN" --addr "$SEEDS" recv huge.0 --raw >"$tmp/r1" &&
    timeout 20 "$CHAN" --addr "$SEEDS" recv huge.0 --raw >"$tmp/r2" &&
    cmp -s "$tmp/v1" "$tmp/r1" && cmp -s "$tmp/v2" "$tmp/r2"; then
    pass "two values of 700 kB moved to $hother whole and in order: $(cat "$tmp/move_huge")"
else
    fail "large values in a move: $(cat "$tmp/move_huge")"
fi

# ---- a large value after smaller channels of the same slot ----
# Channels are moved in the order the node keeps them, several to an Adopt
# part: a channel whose first value is near the largest a frame holds must
# start a part of its own, whatever came before it.  Four channels of one
# 200 kB value and four of one 1,000,000-byte value, all in huge.0's slot
# (names found with the slot function: FNV-1a, 32 bits, modulo 1024), are
# moved back to the group the slot came from.
names=$(python3 -c '
import sys
want, found, k = int(sys.argv[1]), [], 0
while len(found) < 8:
    k += 1
    n = ("mix.%d" % k).encode()
    h = 2166136261
    for b in n:
        h = ((h ^ b) * 16777619) & 0xffffffff
    if h % 1024 == want:
        found.append(n.decode())
print(" ".join(found))' "$free_slot")
head -c 200000 /dev/urandom >"$tmp/small"
head -c 1000000 /dev/urandom >"$tmp/large"
i=0
for n in $names; do
    [ "$("$CHAN" cluster slot "$n")" = "$free_slot" ] || fail "$n is not in slot $free_slot"
    i=$((i + 1))
    [ $i -le 4 ] && v="$tmp/small" || v="$tmp/large"
    timeout 20 "$CHAN" --addr "$SEEDS" make "$n" --cap 2 &&
        timeout 20 "$CHAN" --addr "$SEEDS" send "$n" --raw <"$v" || fail "a value to $n"
done
if timeout 60 "$CHAN" --addr "$SEEDS" cluster move "$free_slot" "$howner" >"$tmp/move_mix" 2>&1; then
    i=0 bad=""
    for n in $names; do
        i=$((i + 1))
        [ $i -le 4 ] && v="$tmp/small" || v="$tmp/large"
        timeout 20 "$CHAN" --addr "$SEEDS" recv "$n" --raw -t 5000 >"$tmp/got" 2>&1 &&
            cmp -s "$v" "$tmp/got" || bad="$bad $n"
    done
    [ -z "$bad" ] && pass "8 channels with values of 200 kB and 1 MB moved back to $howner whole: $(cat "$tmp/move_mix")" ||
        fail "after the move back, wrong or missing values in:$bad"
    # at the first attempt: a part over a frame is refused, and the move
    # tries again (until the order of the channels happens to fit)
    retried=$(cat "$tmp"/n*.log | grep "moving slots $free_slot-$free_slot to group $howner: .*trying again" | head -n 1)
    [ -z "$retried" ] && pass "the move back took one attempt" || fail "the move back was retried: $retried"
else
    fail "moving slot $free_slot back to $howner with values of 1 MB: $(cat "$tmp/move_mix")"
fi

# ---- a group with no node: a call waits for one, within its deadline ----
# Both nodes of the group that serves wait.0's slot are killed; once their
# leases have run out the map names no node for that group.  A make of
# wait.0 through the other group waits (before, it failed at once: "group
# ... of the cluster has no node") and goes through once the group is back.
# So does a client that had read the map while the group was up: it must
# not fail on the nodes it knew (they refuse connections).
timeout 20 "$CHAN" --addr "$SEEDS" cluster slots >"$tmp/wslots"
owner_of() {   # owner_of NAME: the group serving NAME's slot, by $tmp/wslots
    awk -v s="$("$CHAN" cluster slot "$1")" \
        '{ split($1, r, "-"); if (s >= r[1] && s <= r[2]) print $2 }' "$tmp/wslots"
}
wowner=$(owner_of wait.0)
if [ "$wowner" = g1 ]; then a=1 b=2 live="127.0.0.1:$C3,127.0.0.1:$C4"; else a=3 b=4 live="127.0.0.1:$C1,127.0.0.1:$C2"; fi
known="" waitname=""
for k in $(seq 1 100); do
    o=$(owner_of "wait.$k")
    [ -z "$known" ] && [ "$o" != "$wowner" ] && known="wait.$k"
    [ -z "$waitname" ] && [ "$o" = "$wowner" ] && waitname="wait.$k"
done
"$CLIENT" wait "$live" "$known" "$waitname" "$tmp/go" >"$tmp/waitc.out" 2>&1 &
waitc=$!
pids="$pids $waitc"
wait_for 100 grep -q "^ready$" "$tmp/waitc.out" ||
    fail "the client that reads the map first: $(cat "$tmp/waitc.out")"
eval "ka=\$node$a kb=\$node$b"
kill -KILL "$ka" "$kb"
wait "$ka" "$kb" 2>/dev/null
no_primary() {
    timeout 10 "$CHAN" --addr "$live" cluster slots 2>/dev/null |
        awk -v g="$wowner" '$2 == g' | grep -q "(no primary)"
}
wait_for $(( (TTL + 10) * 10 )) no_primary || fail "group $wowner's primary is still in the map"
sleep 1   # (the nodes' own keys share their lease)
timeout 30 "$CHAN" --addr "$live" make wait.0 --cap 1 >"$tmp/wait.out" 2>&1 &
waiter=$!
touch "$tmp/go"
sleep 1
if kill -0 "$waiter" 2>/dev/null; then
    pass "a make in a group with no node waits for one"
else
    wait "$waiter"
    fail "a make in a group with no node did not wait: exit $?: $(cat "$tmp/wait.out")"
fi
kill -0 "$waitc" 2>/dev/null ||
    fail "a client that knew the group's nodes did not wait: $(cat "$tmp/waitc.out")"
start_node "$a"
start_node "$b"
if wait "$waiter"; then
    pass "it went through once group $wowner was back"
else
    fail "the make waiting for group $wowner: $(cat "$tmp/wait.out")"
fi
wait "$waitc" && pass "$(sed -n 's/^ok: \(a client that knew\)/\1/p' "$tmp/waitc.out")" ||
    fail "the client that knew the group's nodes: $(cat "$tmp/waitc.out")"

# ---- an Adopt of an older move, or from a superseded primary, is refused ----
# Adopt parts name the map whose move they belong to, and their sender's
# term.  A part of an older move, or one of this move from a primary since
# superseded (a lower term than a part already taken), arriving late, must
# not touch the current move's channels: a first part drops every channel
# of the range.  The map is written by hand: slot S of stale.0 held by group g9,
# which has no node (so that no mover runs), moving to group T; the parts
# are sent as a mover would.  The current move's part lands; an older
# map's first part, after it, is refused and leaves it whole, and so is a
# first part of a lower term; a newer map's is told to wait.  Then the move is ended by hand and stale.0
# holds the current part's value.
MAPKEY=/chand/s/slots
sslot=$("$CHAN" cluster slot stale.0)
tgroup=$(awk -v s="$sslot" '{ split($1, r, "-"); if (s >= r[1] && s <= r[2]) print $2 }' \
    "$tmp/wslots")
tnode=$(primary_of "$tgroup")
map_with() {   # map_with MOVING(0|1) OWNER: the map, slot S given to OWNER
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD" get "$MAPKEY" --print-value-only |
        python3 -c '
import json, sys
m, s, moving, owner, to = json.load(sys.stdin), int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4]
own = [None] * 1024
for lo, hi, g in m["ranges"]:
    for i in range(lo, hi + 1):
        own[i] = g
own[s] = owner
ranges, lo = [], 0
for i in range(1, 1025):
    if i == 1024 or own[i] != own[lo]:
        ranges.append([lo, i - 1, own[lo]])
        lo = i
out = {"ranges": ranges}
if moving:
    out["moving"] = [s, s, to]
print(json.dumps(out))' "$sslot" "$1" "$2" "$tgroup"
}
ETCDCTL_API=3 etcdctl --endpoints "$ETCD" put "$MAPKEY" "$(map_with 1 g9)" >/dev/null ||
    fail "writing the slot map by hand"
mver=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD" get "$MAPKEY" -w json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')
tgt="127.0.0.1:$(eval echo "\$C$tnode")"
adopt() {   # adopt VERSION TERM ATTEMPT VALUE: the answer of group T's primary
    "$CLIENT" adopt "$tgt" "$sslot" "$sslot" "$1" "$2" "$3" stale.0 "$4"
}
took() { adopt "$mver" 200 100 current >"$tmp/adopt1" 2>&1; grep -q "^OK" "$tmp/adopt1"; }
wait_for 100 took && pass "the current move's part is taken" ||
    fail "the current move's part: $(cat "$tmp/adopt1")"
adopt $((mver - 1)) 300 200 stale >"$tmp/adopt2" 2>&1
grep -q "^BAD_REQUEST" "$tmp/adopt2" && pass "an older move's part is refused: $(cat "$tmp/adopt2")" ||
    fail "an older move's part: $(cat "$tmp/adopt2")"
adopt $((mver + 1000)) 300 300 newer >"$tmp/adopt3" 2>&1
grep -q "^RETRY" "$tmp/adopt3" && pass "a newer map's part waits: $(cat "$tmp/adopt3")" ||
    fail "a newer map's part: $(cat "$tmp/adopt3")"
adopt "$mver" 100 400 superseded >"$tmp/adopt4" 2>&1
grep -q "^BAD_REQUEST" "$tmp/adopt4" &&
    pass "a part from a superseded primary is refused: $(cat "$tmp/adopt4")" ||
    fail "a part of a lower term: $(cat "$tmp/adopt4")"
ETCDCTL_API=3 etcdctl --endpoints "$ETCD" put "$MAPKEY" "$(map_with 0 "$tgroup")" >/dev/null ||
    fail "ending the move by hand"
got=$(timeout 20 "$CHAN" --addr "$SEEDS" recv stale.0 -t 10000 2>&1)
[ "$got" = current ] && pass "stale.0 holds the current move's value" ||
    fail "stale.0 after the move: '$got'"

[ "$failures" -eq 0 ]
