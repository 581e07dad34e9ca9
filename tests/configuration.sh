#!/bin/sh
# tests/configuration.sh - chand's configuration: the config file, CHAND_*
# variables and flags, each winning over the one before (--print-config,
# and a real start); which file is read; errors naming the file and line
# (or the variable); and SIGHUP: the log level changed live, the log file
# opened again, other changes logged as needing a restart, a broken file
# refused while chand goes on.  Run by make check ($CHAND and $CHAN set
# there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u
CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
. "${top_srcdir:?set by make check}/tests/lib.sh"
# make check sets CHAND_CONFIG=/dev/null for every test; this one sets its
# own, and no CHAND_ variable of the caller's may leak in
for v in $(env | sed -n 's/^\(CHAND_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

# says TEXT: the last expect's command printed exactly TEXT first on stderr
says() {
    if [ "$(head -n 1 "$tmp/err")" = "$1" ]; then pass "says: $1"; else
        fail "said '$(head -n 1 "$tmp/err")', wanted '$1'"; fi
}
# has LINE: --print-config's output (in $tmp/out) has LINE, its value and
# where the value came from, blanks squeezed
has() {
    if tr -s ' ' <"$tmp/out" | grep -qxF "$1"; then pass "print-config: $1"; else
        fail "print-config has no line '$1':"; cat "$tmp/out"; fi
}
# wait_line PATTERN FILE: until FILE has a line matching PATTERN (10 s)
wait_line() {
    wait_for 100 grep -q -- "$1" "$2" 2>/dev/null
}

# ---- precedence: defaults < file < environment < flags ----
cat >"$tmp/c.conf" <<EOF
# chand's configuration for this test
listen 127.0.0.1:1       # replaced by the environment's
listen unix:$tmp/no.sock
max-frame 2m
max-conns 5

max-pending 100
data-dir $tmp/a#b
EOF
expect 0 "--print-config" -- env CHAND_MAX_CONNS=6 CHAND_MAX_PENDING=200 \
    "CHAND_LISTEN=127.0.0.1:0 [::1]:0" "$CHAND" --config "$tmp/c.conf" --max-pending 300 --print-config
has "max-frame 2m # $tmp/c.conf:4"
has "max-conns 6 # CHAND_MAX_CONNS"
has "max-pending 300 # --max-pending"
has "listen 127.0.0.1:0 # CHAND_LISTEN"
has "listen [::1]:0 # CHAND_LISTEN"
has "max-batch 4k # default"
has "data-dir $tmp/a#b # $tmp/c.conf:8"
grep -q "no.sock" "$tmp/out" && fail "the environment's listen addresses replace the file's"
cp "$tmp/out" "$tmp/printed.conf"
expect 0 "--print-config reads back" -- "$CHAND" --config "$tmp/printed.conf" --print-config
sed -e '/^#/d' -e 's/ *# [^ ]*$//' "$tmp/printed.conf" >"$tmp/a"
sed -e '/^#/d' -e 's/ *# [^ ]*$//' "$tmp/out" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" && pass "the printed configuration reads back the same" ||
    fail "reading --print-config's output back gives another configuration: $(diff "$tmp/a" "$tmp/b")"
expect 0 "flags' --listen replace the file's" -- "$CHAND" --config "$tmp/c.conf" -l 127.0.0.1:9 \
    --print-config
[ "$(grep -c '^listen' "$tmp/out")" -eq 1 ] || fail "listen lines: $(grep '^listen' "$tmp/out")"
has "listen 127.0.0.1:9 # --listen"

# which file: --config, else $CHAND_CONFIG, else the default if it exists
default=$("$CHAND" --help | tr -s ' \n' '  ' | sed -n 's/.*(default \(\/[^,]*\), if it exists.*/\1/p')
[ -n "$default" ] || fail "--help names the default config file"
echo "max-conns 7" >"$tmp/env.conf"
expect 0 "\$CHAND_CONFIG" -- env CHAND_CONFIG="$tmp/env.conf" "$CHAND" --print-config
has "max-conns 7 # $tmp/env.conf:1"
expect 0 "--config wins over \$CHAND_CONFIG" -- env CHAND_CONFIG="$tmp/env.conf" "$CHAND" \
    --config "$tmp/c.conf" --print-config
has "max-conns 5 # $tmp/c.conf:5"
if [ -e "$default" ]; then
    echo "skip: $default exists here; not checking that a missing one is skipped"
else
    expect 0 "no file where none is named and $default is missing" -- "$CHAND" --print-config
    head -n 1 "$tmp/out" | grep -q "no config file" && pass "no config file read" ||
        fail "print-config says: $(head -n 1 "$tmp/out")"
fi

# ---- errors: the file and line, or the variable; exit 2 ----
bad() {   # bad DESCRIPTION MESSAGE LINES...: a config file of LINES is refused with MESSAGE
    what=$1 msg=$2
    shift 2
    printf '%s\n' "$@" >"$tmp/bad.conf"
    expect 2 "refused: $what" -- "$CHAND" --config "$tmp/bad.conf"
    says "chand: $tmp/bad.conf:$msg"
}
bad "an unknown option" "1: unknown option 'max-frams'" "max-frams 1"
bad "a bad number" "3: max-frame: '12q' is not a number from 1024 to 268435456" \
    "# comment" "" "max-frame 12q"
bad "a bad word" "1: fsync: 'sometimes' is not always, everysec or no" "fsync sometimes"
bad "an option twice" "2: max-frame: set before, on line 1" "max-frame 1m" "max-frame 2m"
bad "a flag's dashes" "1: unknown option '--listen' (a name is written without its dashes)" \
    "--listen 127.0.0.1:0"
bad "no value" "2: data-dir needs a value" "listen 127.0.0.1:0" "data-dir   # none"
bad "--check in a file" "1: check cannot be set in a config file" "check yes"
bad "--config in a file" "1: config cannot be set in a config file" "config /etc/x"
bad "too many addresses" "1: listen: at most 16 of them" \
    "listen a b c d e f g h i j k l m n o p q"
expect 2 "refused: a bad variable" -- env CHAND_LOG_LEVEL=loud "$CHAND" --config /dev/null
says "chand: CHAND_LOG_LEVEL: 'loud' is not error, warn, info or debug"
expect 2 "refused: a --config that is not there" -- "$CHAND" --config "$tmp/none.conf"
says "chand: --config $tmp/none.conf: No such file or directory"
expect 2 "refused: a \$CHAND_CONFIG that is not there" -- env CHAND_CONFIG="$tmp/none.conf" "$CHAND"
says "chand: CHAND_CONFIG: $tmp/none.conf: No such file or directory"
expect 2 "refused: a config file that is a directory" -- "$CHAND" --config "$tmp"
says "chand: --config $tmp: Is a directory"
expect 2 "refused: --log-file with syslog" -- "$CHAND" --config /dev/null --log-format syslog \
    --log-file "$tmp/x.log"
expect 1 "a --log-file that cannot be opened" -- "$CHAND" --config /dev/null \
    --log-file "$tmp/no/such/dir/chand.log"
says "chand: --log-file $tmp/no/such/dir/chand.log: No such file or directory"

# ---- a real start: each value from where precedence says ----
cat >"$tmp/live.conf" <<EOF
listen 127.0.0.1:1
port-file $tmp/file.port
log-file $tmp/chand.log
log-level info
EOF
# the file says port 1 and file.port; the environment says port 0; the flag
# says port
CHAND_LISTEN=127.0.0.1:0 timeout --foreground -k 60 120 "$CHAND" --config "$tmp/live.conf" \
    --port-file "$tmp/port" 2>"$tmp/stderr" &
wait_port "$tmp/port" || { fail "no port file"; cat "$tmp/stderr" "$tmp/chand.log"; exit 1; }
pid=$(sed -n 's/.* ready (pid \([0-9]*\))$/\1/p' "$tmp/chand.log")
[ -n "$pid" ] || { fail "no 'ready (pid N)' line in the log file"; exit 1; }
CHAN_ADDR=127.0.0.1:$(cat "$tmp/port")
export CHAN_ADDR
echo "chand pid $pid on $CHAN_ADDR"
[ -e "$tmp/file.port" ] && fail "the flag's --port-file wins over the file's" ||
    pass "the flag's --port-file won over the file's"
expect 0 "chand listens where the environment said" -- "$CHAN" ping
grep -q "info: configuration: $tmp/live.conf; environment: CHAND_LISTEN$" "$tmp/chand.log" &&
    pass "the log names the file read and the variables set" ||
    fail "no 'configuration:' line naming the file and CHAND_LISTEN"
[ -s "$tmp/stderr" ] && fail "with --log-file, stderr got: $(cat "$tmp/stderr")"
grep -q "debug:" "$tmp/chand.log" && fail "debug lines at --log-level info"

# ---- SIGHUP: the log level live, other changes need a restart ----
sed -e 's/^log-level info$/log-level debug/' "$tmp/live.conf" >"$tmp/next.conf"
echo "max-frame 2m" >>"$tmp/next.conf"
mv "$tmp/next.conf" "$tmp/live.conf"
kill -HUP "$pid"
wait_line "info: SIGHUP: log-level is now debug (was info)$" "$tmp/chand.log" &&
    pass "SIGHUP: the log level changed" || fail "no line saying log-level is now debug"
grep -q "warn: SIGHUP: max-frame is 2m in the configuration and 1m in force: that needs a restart$" \
    "$tmp/chand.log" && pass "SIGHUP: a change of --max-frame needs a restart" ||
    fail "no line saying max-frame needs a restart"
expect 0 "ping at debug" -- "$CHAN" ping
wait_line "debug: conn [0-9]* from 127.0.0.1:" "$tmp/chand.log" &&
    pass "debug lines now" || fail "no debug line after SIGHUP set log-level debug"

# logrotate: the file moved away, SIGHUP makes a new one
mv "$tmp/chand.log" "$tmp/chand.log.1"
kill -HUP "$pid"
wait_line "SIGHUP: no --acl-file, --auth-file or --tls-cert" "$tmp/chand.log" &&
    pass "SIGHUP opened a new log file" || fail "no new log file after SIGHUP"
expect 0 "ping after the rotation" -- "$CHAN" ping
wait_line "debug: conn [0-9]* from" "$tmp/chand.log" && pass "the new log file gets the lines" ||
    fail "no debug line in the new log file"
grep -q "SIGHUP: log-level" "$tmp/chand.log" && fail "an unchanged log level logged as changed"

# a file that no longer parses changes nothing
sed 's/^max-frame 2m$/max-frame zz/' "$tmp/live.conf" >"$tmp/next.conf"
mv "$tmp/next.conf" "$tmp/live.conf"
kill -HUP "$pid"
wait_line "error: SIGHUP: $tmp/live.conf:5: max-frame: 'zz' is not a number from 1024 to 268435456; the configuration in force stays$" \
    "$tmp/chand.log" && pass "SIGHUP: a bad line is logged with its file and line" ||
    fail "no error naming live.conf:5 after SIGHUP"
expect 0 "chand still answers" -- "$CHAN" ping
# back to info, in JSON, to another file
printf 'listen 127.0.0.1:1\nlog-file %s/json.log\nlog-level info\nlog-format json\n' "$tmp" \
    >"$tmp/live.conf"
kill -HUP "$pid"
wait_line "SIGHUP: log-level is now info (was debug)" "$tmp/chand.log" &&
    pass "SIGHUP: back to info" || fail "no line saying log-level is now info"
grep -q "SIGHUP: log-file is now $tmp/json.log (was $tmp/chand.log)" "$tmp/chand.log" &&
    grep -q "SIGHUP: log-format is now json (was text)" "$tmp/chand.log" &&
    pass "SIGHUP: log-file and log-format changed" || fail "no lines saying log-file and log-format changed"
grep -q "port-file" "$tmp/chand.log" && fail "port-file logged as changed: the flag gives it, as before"

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && fail "chand did not stop on SIGTERM"
wait_line '^{"ts":"[^"]*","level":"info","msg":"stopped","pid":'"$pid"'}$' "$tmp/json.log" &&
    pass "stopped, logged in JSON to the new file" || fail "no JSON 'stopped' line in json.log"

[ "$failures" -eq 0 ]
