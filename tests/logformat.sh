#!/bin/sh
# tests/logformat.sh - the shape of every line of each --log-format: text,
# journal (<N> priority prefixes), json (each line parses, keys in order,
# strings escaped, bytes that are not UTF-8 replaced), and syslog (the
# datagrams syslog(3) sends to /dev/log, caught in a private mount
# namespace where one can be made; skipped elsewhere).  Run by make check
# ($CHAND and $CHAN set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
PYTHON=${PYTHON:-python3}
. "${top_srcdir:?set by make check}/tests/lib.sh"
for v in $(env | sed -n 's/^\(CHAND_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

if ! "$PYTHON" -c 'import json' 2>/dev/null; then
    echo "FAIL: this test reads JSON with python3: install it (Debian: python3)"
    exit 1
fi

# A config file whose name holds a quote, a backslash, a tab, a byte that
# is not UTF-8 and an 'é': chand logs its name ("configuration: ...").
odd=$(printf '%s/a"b\\c\td\377\303\251.conf' "$tmp")
: >"$odd"

# run FORMAT [ARGS...]: start chand with --log-format FORMAT at debug,
# ping it, stop it; its stderr in $tmp/FORMAT.log, its port in $port
chand_limit=60
run() {
    fmt=$1
    shift
    chand_log=$tmp/$fmt.log
    start_chand --config "$odd" --log-level debug --log-format "$fmt" "$@" ||
        { fail "$fmt: chand did not start"; return 1; }
    timeout 10 "$CHAN" --addr "127.0.0.1:$port" ping >/dev/null || fail "$fmt: ping"
    stop_chand || fail "$fmt: chand exited $rc"
}

# ---- text ----
run text
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z chand\[[0-9]+\] (error|warn|info|debug): .' \
    "$tmp/text.log")
[ "$bad" -eq 0 ] && pass "text: every line is 'TIME chand[PID] LEVEL: MESSAGE'" ||
    { fail "text: $bad lines of another shape:"; cat "$tmp/text.log"; }
grep -qE "^[^ ]+ chand\[[0-9]+\] info: listening on 127\.0\.0\.1:$port$" "$tmp/text.log" &&
    pass "text: the listening line" || fail "text: no 'info: listening on 127.0.0.1:$port'"
grep -qE "^[^ ]+ chand\[[0-9]+\] debug: conn 1 from 127\.0\.0\.1:" "$tmp/text.log" &&
    pass "text: a debug line" || fail "text: no debug line"

# ---- journal ----
run journal
bad=$(grep -cvE '^<[3467]>[^<]' "$tmp/journal.log")
[ "$bad" -eq 0 ] && pass "journal: every line is '<N>MESSAGE'" ||
    { fail "journal: $bad lines of another shape:"; cat "$tmp/journal.log"; }
grep -qx "<6>listening on 127\.0\.0\.1:$port" "$tmp/journal.log" &&
    pass "journal: <6>listening on ..." || fail "journal: no '<6>listening on 127.0.0.1:$port'"
grep -q "^<7>conn 1 from 127\.0\.0\.1:" "$tmp/journal.log" &&
    pass "journal: <7> for debug" || fail "journal: no '<7>conn 1 from'"

# ---- json (to a --log-file too: the same lines) ----
run json --log-file "$tmp/json.file"
[ -s "$tmp/json.log" ] && fail "json: with --log-file, stderr got lines"
if "$PYTHON" - "$tmp/json.file" "$port" "$odd" <<'EOF'
import json, re, sys
path, port, odd = sys.argv[1], sys.argv[2], sys.argv[3].encode('utf-8', 'surrogateescape')
want_odd = 'configuration: ' + odd.decode('utf-8', 'replace')
ok, seen = True, set()
pids = set()
for n, raw in enumerate(open(path, 'rb'), 1):
    try:
        obj = json.loads(raw)
    except ValueError as e:
        print('FAIL: json: line %d does not parse (%s): %r' % (n, e, raw)); ok = False; continue
    if list(obj) != ['ts', 'level', 'msg', 'pid']:
        print('FAIL: json: line %d has keys %s' % (n, list(obj))); ok = False
    if not re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', obj.get('ts', '')):
        print('FAIL: json: line %d: ts %r' % (n, obj.get('ts'))); ok = False
    if obj.get('level') not in ('error', 'warn', 'info', 'debug'):
        print('FAIL: json: line %d: level %r' % (n, obj.get('level'))); ok = False
    if not isinstance(obj.get('pid'), int) or not isinstance(obj.get('msg'), str):
        print('FAIL: json: line %d: pid or msg of the wrong type' % n); ok = False
    pids.add(obj.get('pid'))
    seen.add((obj.get('level'), obj.get('msg')))
for level, msg in (('info', 'listening on 127.0.0.1:' + port), ('info', want_odd),
                   ('info', 'stopped')):
    if (level, msg) not in seen:
        print('FAIL: json: no line {"level":%r, "msg":%r}' % (level, msg)); ok = False
if not any(l == 'debug' and m.startswith('conn 1 from') for l, m in seen):
    print('FAIL: json: no debug line'); ok = False
if len(pids) != 1:
    print('FAIL: json: pids %s' % pids); ok = False
sys.exit(0 if ok else 1)
EOF
then
    pass "json: every line parses, keys ts, level, msg, pid; quote, backslash, tab, bad byte escaped"
else
    fail "json: see above"
    cat "$tmp/json.file"
fi
grep -qF '\"b\\c\td\ufffd' "$tmp/json.file" && pass "json: the escapes as written" ||
    fail "json: no '\\\"b\\\\c\\td\\ufffd' in the configuration line"

# ---- syslog: syslog(3) writes datagrams to /dev/log; in a user and mount
# namespace of our own a tmpfs over /dev lets us be that socket.  Every
# process here ends by itself: chand under timeout --foreground -k (the
# plain form's SIGCONT can land in a sanitized chand's leak check and hang
# it for good: see start_chand), the listener after 60 s of silence ----
cat >"$tmp/syslog.sh" <<EOF
set -e
touch "$tmp/null"
mount --bind /dev/null "$tmp/null"
mount -t tmpfs tmpfs /dev
touch /dev/null
mount --bind "$tmp/null" /dev/null
: >"$tmp/syslog.mounted"
"$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(60)
open(sys.argv[1], "w").close()
with open(sys.argv[2], "wb") as out:
    while True:
        d = s.recv(65536)
        out.write(d + b"\n")
        out.flush()
' "$tmp/syslog.ready" "$tmp/syslog.got" &
listener=\$!
trap 'kill \$listener 2>/dev/null' EXIT
i=0
while [ ! -e "$tmp/syslog.ready" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
timeout --foreground -k 10 20 "$CHAND" --listen 127.0.0.1:0 --config /dev/null --log-format syslog 2>"$tmp/syslog.err" &
chand=\$!
i=0
while ! grep -q "ready" "$tmp/syslog.got" 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
kill -TERM \$chand || echo "chand was gone before its SIGTERM" >>"$tmp/syslog.err"
wait \$chand || echo "chand exited \$?" >>"$tmp/syslog.err"
sleep 0.2
EOF
timeout --foreground -k 5 90 unshare -rm sh "$tmp/syslog.sh" 2>"$tmp/unshare.err"
rc=$?
if [ ! -e "$tmp/syslog.mounted" ]; then
    echo "skip: syslog: no private user and mount namespace here ($(head -n 1 "$tmp/unshare.err"))"
elif [ "$rc" -ne 0 ]; then
    fail "syslog: the namespace's script exited $rc: $(cat "$tmp/unshare.err" "$tmp/syslog.err")"
else
    # "<30>Dec  7 04:42:28 chand[123]: listening on ...": daemon (3) * 8 + info (6)
    grep -qE '^<30>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} chand\[[0-9]+\]: listening on 127\.0\.0\.1:[0-9]+$' \
        "$tmp/syslog.got" && pass "syslog: <30>TIME chand[PID]: listening on ..." ||
        { fail "syslog: no '<30>... chand[PID]: listening on' datagram:"; cat "$tmp/syslog.got"; }
    grep -qE '^<30>.* chand\[[0-9]+\]: stopped$' "$tmp/syslog.got" && pass "syslog: the last line" ||
        fail "syslog: no 'stopped' datagram"
    [ -s "$tmp/syslog.err" ] && fail "syslog: stderr or exit: $(cat "$tmp/syslog.err")"
fi

[ "$failures" -eq 0 ]
