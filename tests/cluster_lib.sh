# tests/cluster_lib.sh - sourced by the cluster tests (cluster.sh,
# cluster_copy.sh, cluster_slots.sh) after tests/lib.sh (the scratch dir,
# the report, stopping by PID what they start: they add each process to
# pids): free loopback ports, and three etcd members.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).

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

# ---- etcd: three members on loopback ports ----
# start_etcd3: sets ETCD (the client endpoints), etcd1..3 (their pids) and
# E1..E3; fails the test if they do not come up.
start_etcd() {   # start_etcd N CLIENT_PORT PEER_PORT
    etcd --name "e$1" --data-dir "$tmp/etcd$1" \
        --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
        --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
        --initial-cluster "$members" --initial-cluster-token "t$$" \
        --heartbeat-interval 50 --election-timeout 500 >>"$tmp/etcd$1.log" 2>&1 &
    eval "etcd$1=$!"
    pids="$pids $!"
}
# A port picked may be taken before etcd binds it: then the members are
# started again on other ports (three tries).
start_etcd3() {
    etcd_up=no
    for try in 1 2 3; do
        free_port E1; free_port E2; free_port E3
        free_port P1; free_port P2; free_port P3
        members="e1=http://127.0.0.1:$P1,e2=http://127.0.0.1:$P2,e3=http://127.0.0.1:$P3"
        rm -rf "$tmp"/etcd[123]
        start_etcd 1 "$E1" "$P1"
        start_etcd 2 "$E2" "$P2"
        start_etcd 3 "$E3" "$P3"
        ETCD="127.0.0.1:$E1,127.0.0.1:$E2,127.0.0.1:$E3"
        end=$(( $(date +%s) + 30 ))
        while [ "$(date +%s)" -lt "$end" ]; do
            if ETCDCTL_API=3 etcdctl --endpoints "$ETCD" --dial-timeout 1s --command-timeout 2s \
                endpoint health >/dev/null 2>&1; then
                etcd_up=yes
                break
            fi
            dead=no
            for e in "$etcd1" "$etcd2" "$etcd3"; do kill -0 "$e" 2>/dev/null || dead=yes; done
            [ $dead = no ] || break
            sleep 0.1
        done
        [ $etcd_up = yes ] && break
        for e in "$etcd1" "$etcd2" "$etcd3"; do stop_pid "$e"; done
        echo "etcd did not come up (try $try): $(grep -h "address already in use" "$tmp"/etcd*.log | head -n 1)"
    done
    [ $etcd_up = yes ] || { fail "etcd did not come up"; return 1; }
}

# etcd_not_leader N: if etcd member N leads, it hands the leadership to the
# next member (a test that hangs member N then sees a follower hang, not an
# election of etcd's own).  0, or 1 if etcd does not answer.
etcd_status() {   # etcd_status N FIELD: member N's FIELD (member_id, leader), decimal
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$(eval echo "\$E$1")" --command-timeout 5s \
        endpoint status -w json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2
}
etcd_not_leader() {
    lead_id=$(etcd_status "$1" member_id)
    leader=$(etcd_status "$1" leader)
    [ -n "$lead_id" ] && [ -n "$leader" ] || return 1
    [ "$lead_id" = "$leader" ] || return 0
    # (move-leader takes the id in hex, as the simple status's second column)
    next_id=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$(eval echo "\$E$(( $1 % 3 + 1 ))")" \
        --command-timeout 5s endpoint status -w simple 2>/dev/null | awk -F', ' '{ print $2 }')
    [ -n "$next_id" ] &&
        ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$(eval echo "\$E$1")" --command-timeout 5s \
            move-leader "$next_id" >/dev/null 2>&1
}
