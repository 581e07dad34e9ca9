# bench/chand_up.sh - sourced by the bench scripts: chand_up CHAND WORK [ARGS...]
# starts chand on a loopback ephemeral port (the port comes back through
# its port file), logging to WORK/chand.log, and sets chand_pid and
# chand_addr.  The caller stops it by PID.
chand_up() {
    _chand=$1
    _work=$2
    shift 2
    rm -f "$_work/chand.port"
    "$_chand" --listen 127.0.0.1:0 --port-file "$_work/chand.port" --log-level warn "$@" \
        >"$_work/chand.log" 2>&1 &
    chand_pid=$!
    _i=0
    while [ ! -s "$_work/chand.port" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 100 ] || ! kill -0 "$chand_pid" 2>/dev/null; then
            echo "chand did not start:" >&2
            cat "$_work/chand.log" >&2
            return 1
        fi
        sleep 0.05
    done
    chand_addr="127.0.0.1:$(cat "$_work/chand.port")"
}
