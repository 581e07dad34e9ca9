# bench/servers.sh - sourced by the bench scripts: start chand,
# redis-server and nats-server on loopback, wait until they serve, stop
# them by PID.
#
#   chand_up CHAND WORK [ARGS...]
#       starts chand on a loopback ephemeral port (the port comes back
#       through its port file), logging to WORK/chand.log, and sets
#       chand_pid and chand_addr.  $chand_listen, if set, is the address
#       instead (a restart on the port chand had before).
#   chand_start CHAND WORK [ARGS...] / chand_wait
#       the two halves of chand_up: exec it (sets chand_pid) / wait for its
#       port file (sets chand_addr).  Between them a client can be started
#       that times the server from its exec.
#   redis_up REDIS_SERVER REDISBENCH WORK [ARGS...]
#       starts redis-server on a free-looking loopback port (Redis has no
#       port 0) with ARGS (e.g. --save '' --appendonly no), logging to
#       WORK/redis.log, waits until it answers PING, and sets redis_pid,
#       redis_port and redis_addr.
#   redis_start REDIS_SERVER WORK PORT [ARGS...] / redis_wait REDISBENCH
#       the two halves of one try of redis_up, on a known port.
#       With $redis_tls set to a directory of tls_certs, redis-server speaks
#       TLS only (--port 0 --tls-port PORT, that certificate, clients not
#       asked for one), redis_addr is tls://127.0.0.1:PORT, and REDISBENCH
#       is given the CA (--tls-ca).
#   nats_up NATS_SERVER NATSBENCH WORK [ARGS...]
#       starts nats-server on a loopback ephemeral port (-a 127.0.0.1 -p -1;
#       the port comes back through the ports file it writes into
#       WORK/nats.ports), logging to WORK/nats.log, waits until it answers
#       PING, and sets nats_pid and nats_addr.
#   tls_certs DIR
#       makes, with openssl ($OPENSSL, else openssl), a CA (DIR/ca.crt) and a
#       certificate for 127.0.0.1 that it signed (DIR/server.crt and
#       DIR/server.key), valid for a day: for chand's --tls-cert and
#       redis-server's --tls-cert-file.  Returns 1 if openssl fails.
#   server_stop PID
#       SIGTERM, then wait for the exit (SIGKILL after 60 s); sets stop_rc
#       (the exit status) and stop_ms (SIGTERM to exit, 10 ms steps).
#       Only a child of this shell is signalled: a PID that has gone, and
#       may have been reused, is left alone.
#   etcd_up DIR
#       starts one etcd member on loopback ports with its data in DIR/etcd,
#       waits until it is healthy, and sets etcd_pid and ETCD (its client
#       endpoint).
#   free_port VAR
#       sets VAR to a loopback port no socket has (below the ephemeral
#       range), not handed out before by this shell.
# Each returns 1 (after saying why on stderr) if the server does not start.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).

chand_start() {
    _chand=$1
    _work=$2
    shift 2
    rm -f "$_work/chand.port"
    "$_chand" --listen "${chand_listen:-127.0.0.1:0}" --port-file "$_work/chand.port" \
        --log-level warn "$@" >"$_work/chand.log" 2>&1 &
    chand_pid=$!
    chand_work=$_work
}

chand_wait() {
    _i=0
    while [ ! -s "$chand_work/chand.port" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 100 ] || ! kill -0 "$chand_pid" 2>/dev/null; then
            echo "chand did not start:" >&2
            cat "$chand_work/chand.log" >&2
            return 1
        fi
        sleep 0.05
    done
    chand_addr="127.0.0.1:$(cat "$chand_work/chand.port")"
}

chand_up() {
    chand_start "$@"
    chand_wait
}

redis_start() {
    _server=$1
    _work=$2
    redis_port=$3
    shift 3
    if [ -n "${redis_tls:-}" ]; then
        "$_server" --port 0 --tls-port "$redis_port" --tls-cert-file "$redis_tls/server.crt" \
            --tls-key-file "$redis_tls/server.key" --tls-ca-cert-file "$redis_tls/ca.crt" \
            --tls-auth-clients no --bind 127.0.0.1 --daemonize no \
            --logfile "$_work/redis.log" "$@" &
        redis_pid=$!
        redis_addr="tls://127.0.0.1:$redis_port"
        return
    fi
    "$_server" --port "$redis_port" --bind 127.0.0.1 --daemonize no \
        --logfile "$_work/redis.log" "$@" &
    redis_pid=$!
    redis_addr="127.0.0.1:$redis_port"
}

redis_wait() {
    _i=0
    while [ $_i -lt 100 ]; do
        kill -0 "$redis_pid" 2>/dev/null || return 1
        "$1" -a "$redis_addr" ${redis_tls:+--tls-ca "$redis_tls/ca.crt"} --mode ping -n 10 \
            >/dev/null 2>&1 && return 0
        _i=$((_i + 1))
        sleep 0.05
    done
    return 1
}

redis_up() {
    _rserver=$1
    _rbench=$2
    _rwork=$3
    shift 3
    for _try in 1 2 3 4 5 6 7 8; do
        _port=$(( 20000 + ($$ * 7919 + _try * 104729) % 40000 ))
        if command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$_port" 2>/dev/null | grep -q .; then
            continue
        fi
        redis_start "$_rserver" "$_rwork" "$_port" "$@"
        redis_wait "$_rbench" && return 0
        server_stop "$redis_pid"
        redis_pid=""
    done
    echo "redis-server did not start ($_rserver):" >&2
    tail -n 5 "$_rwork/redis.log" >&2 2>/dev/null || true
    return 1
}

nats_up() {
    _nserver=$1
    _nbench=$2
    _nwork=$3
    shift 3
    rm -rf "$_nwork/nats.ports"
    mkdir -p "$_nwork/nats.ports"
    "$_nserver" -a 127.0.0.1 -p -1 --ports_file_dir "$_nwork/nats.ports" \
        -l "$_nwork/nats.log" "$@" &
    nats_pid=$!
    _i=0
    while :; do
        # the file is <program>_<pid>.ports: {"nats":["nats://127.0.0.1:PORT"],...}
        nats_addr=$(sed -n 's|.*"nats://\([^"]*\)".*|\1|p' "$_nwork/nats.ports/"*_"$nats_pid".ports \
            2>/dev/null || true)
        if [ -n "$nats_addr" ] &&
            "$_nbench" -a "$nats_addr" --mode ping -n 10 >/dev/null 2>&1; then
            return 0
        fi
        _i=$((_i + 1))
        if [ $_i -gt 100 ] || ! kill -0 "$nats_pid" 2>/dev/null; then
            echo "nats-server did not start ($_nserver):" >&2
            tail -n 5 "$_nwork/nats.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
}

tls_certs() {
    _o=${OPENSSL:-openssl}
    [ -n "$_o" ] && [ "$_o" != no ] || _o=openssl
    (
        set -e
        cd "$1"
        "$_o" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout ca.key -out ca.crt -days 1 -subj "/CN=chand bench CA" \
            -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        "$_o" req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' \
            >server.ext
        "$_o" x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
            -extfile server.ext -out server.crt 2>/dev/null
    ) || { echo "tls_certs: openssl ($_o) failed" >&2; return 1; }
}

# The state letter of process $1 if it is a child of this shell, else "".
# /proc/PID/stat: "pid (name) state ppid ..."; the name may hold spaces and
# parentheses (redis-server retitles itself), so match after the last ") ".
child_state() {
    sed -n "s/.*) \([A-Za-z]\) $$ .*/\1/p" "/proc/$1/stat" 2>/dev/null || true
}

server_stop() {
    stop_rc=0
    stop_ms=0
    [ -n "$1" ] || return 0
    _t0=$(date +%s%N)
    [ -n "$(child_state "$1")" ] && kill -TERM "$1" 2>/dev/null || true
    _i=0
    while :; do
        _s=$(child_state "$1")
        [ -z "$_s" ] || [ "$_s" = Z ] && break
        _i=$((_i + 1))
        if [ $_i -eq 6000 ]; then
            echo "pid $1 still running 60 s after SIGTERM: SIGKILL" >&2
            kill -KILL "$1" 2>/dev/null || true
        fi
        sleep 0.01
    done
    stop_ms=$(( ($(date +%s%N) - _t0) / 1000000 ))
    wait "$1" 2>/dev/null || stop_rc=$?
}

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

etcd_up() {
    free_port EC
    free_port EP
    etcd --name e1 --data-dir "$1/etcd" \
        --listen-client-urls "http://127.0.0.1:$EC" --advertise-client-urls "http://127.0.0.1:$EC" \
        --listen-peer-urls "http://127.0.0.1:$EP" --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
        --initial-cluster "e1=http://127.0.0.1:$EP" >"$1/etcd.log" 2>&1 &
    etcd_pid=$!
    ETCD="127.0.0.1:$EC"
    _i=0
    until ETCDCTL_API=3 etcdctl --endpoints "$ETCD" endpoint health >/dev/null 2>&1; do
        _i=$((_i + 1))
        [ $_i -lt 300 ] || { echo "etcd did not start (see $1/etcd.log)" >&2; return 1; }
        sleep 0.1
    done
}
