#!/bin/sh
# tests/cli.sh - the chan CLI and chand's command line against a real chand
# on an ephemeral port.  Run by make check ($CHAND and $CHAN set there).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
. "${top_srcdir:?set by make check}/tests/lib.sh"

# says TEXT: the last expect's command printed exactly TEXT on stderr
says() {
    if [ "$(cat "$tmp/err")" = "$1" ]; then pass "says: $1"; else fail "said '$(cat "$tmp/err")', wanted '$1'"; fi
}

# ---- chand's own command line ----
expect 0 "chand --help" -- "$CHAND" --help
grep -q -- "--max-output" "$tmp/out" || fail "chand --help lists --max-output"
expect 0 "chand --version" -- "$CHAND" --version
expect 2 "chand bad flag" -- "$CHAND" --no-such-flag
expect 2 "chand bad number" -- "$CHAND" --max-frame lots
for t in 5x 10d -1s s 1.5s 5000h; do
    expect 2 "chand bad time $t" -- "$CHAND" --hello-timeout "$t"
done
grep -q "hello-timeout" "$tmp/err" || fail "the error names --hello-timeout"
expect 1 "chand bad address" -- "$CHAND" --listen nowhere
# --metrics takes --listen's addresses (chan_addr_parse), TCP only
for m in nowhere :9090 ::1:9090 127.0.0.1:99999 unix:$tmp/metrics.sock; do
    expect 1 "chand bad --metrics $m" -- "$CHAND" --listen 127.0.0.1:0 --metrics "$m"
    grep -q -- "--metrics $m: not HOST:PORT" "$tmp/err" || fail "the error names --metrics $m"
done
expect 0 "chan --help" -- "$CHAN" --help
grep -q "Exit status" "$tmp/out" || fail "chan --help documents exit codes"
grep -q "5 no such channel" "$tmp/out" || fail "chan --help documents exit code 5"
expect 2 "chan without a command" -- "$CHAN"
expect 2 "chan unknown command" -- "$CHAN" frobnicate

# ---- start chand ----
start_chand --listen "unix:$tmp/sock" || exit 1

expect 0 "ping" -- "$CHAN" ping
grep -q PONG "$tmp/out" || fail "ping prints PONG"
expect 0 "ping over a unix socket" -- "$CHAN" --addr "unix:$tmp/sock" ping
expect 1 "connection refused" -- "$CHAN" --addr 127.0.0.1:1 ping

# ---- make, send, recv, stat, ls ----
expect 0 "make buffered" -- "$CHAN" make jobs --cap 3
expect 1 "make with another capacity" -- "$CHAN" make jobs --cap 4
says "chan: channel 'jobs' exists with capacity 3, not 4"
expect 1 "bad channel name" -- "$CHAN" make "no spaces"
says "chan: 'no spaces' is not a channel name: 1 to 255 bytes of [A-Za-z0-9._:/-]"
expect 0 "send three values" -- "$CHAN" send jobs one two three
expect 0 "stat a channel" -- "$CHAN" stat jobs
grep -q "^len: 3$" "$tmp/out" || fail "stat shows len 3"
expect 0 "recv two" -- "$CHAN" recv jobs -n 2
[ "$(cat "$tmp/out")" = "$(printf 'one\ntwo')" ] || fail "recv printed '$(cat "$tmp/out")'"
expect 0 "ls" -- "$CHAN" ls
grep -q "^jobs " "$tmp/out" || fail "ls lists jobs"
expect 0 "daemon stat" -- "$CHAN" stat
grep -q "^channels: 1$" "$tmp/out" || fail "daemon stat counts one channel"
# --json: one object per line, the same figures
expect 0 "stat a channel as JSON" -- "$CHAN" --json stat jobs
grep -q '^{"name":"jobs","len":1,"cap":3,.*"closed":false,"temp":false}$' "$tmp/out" ||
    fail "stat --json: $(cat "$tmp/out")"
expect 0 "daemon stat as JSON" -- "$CHAN" stat --json
grep -q '^{"uptime_ms":[0-9]*,"connections":[0-9]*,"channels":1,.*"loop_callbacks":\[\[100,[0-9]*\],.*\[null,[0-9]*\]\],"durable":false,"tls":false}$' \
    "$tmp/out" || fail "daemon stat --json: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "daemon stat --json is one line"
expect 0 "ls as JSON" -- "$CHAN" ls --json
[ "$(grep -c '^{"name":"[^"]*","len":' "$tmp/out")" -eq "$(wc -l <"$tmp/out")" ] &&
    grep -q '^{"name":"jobs",' "$tmp/out" || fail "ls --json: $(cat "$tmp/out")"
expect 5 "stat of a missing channel" -- "$CHAN" stat nosuch
says "chan: no such channel 'nosuch'"
expect 5 "close of a missing channel" -- "$CHAN" close nosuch
says "chan: no such channel 'nosuch'"

# ---- timeouts and close ----
expect 3 "recv times out" -- "$CHAN" recv empty --timeout 100
expect 3 "unbuffered send times out with no receiver" -- "$CHAN" send lonely x --timeout 100
expect 0 "close" -- "$CHAN" close jobs
expect 4 "close twice" -- "$CHAN" close jobs
expect 4 "send on closed" -- "$CHAN" send jobs four
expect 0 "recv drains the closed channel" -- "$CHAN" recv jobs
[ "$(cat "$tmp/out")" = "three" ] || fail "drained value was '$(cat "$tmp/out")'"
expect 4 "recv on closed and drained" -- "$CHAN" recv jobs
expect 0 "recv -n 0 stops at close" -- "$CHAN" recv jobs -n 0

# ---- rm ----
expect 0 "make one to remove" -- "$CHAN" make doomed --cap 2
expect 0 "rm" -- "$CHAN" rm doomed
expect 5 "rm again: no such channel" -- "$CHAN" rm doomed
says "chan: no such channel 'doomed'"

# ---- raw values ----
printf 'line one\nline two\n\001\002' >"$tmp/blob"
expect 0 "make raw" -- "$CHAN" make raw --cap 1
timeout 20 "$CHAN" send raw --raw <"$tmp/blob" || fail "send --raw"
timeout 20 "$CHAN" recv raw --raw >"$tmp/blob2" || fail "recv --raw"
cmp -s "$tmp/blob" "$tmp/blob2" && pass "raw value round trip" || fail "raw value differs"

# ---- --no-create: send and recv only to a channel that exists ----
expect 5 "send --no-create to a missing channel" -- "$CHAN" send absent x --no-create
says "chan: no such channel 'absent'"
expect 5 "recv --no-create from a missing channel" -- "$CHAN" recv absent --no-create --timeout 100
says "chan: no such channel 'absent'"
expect 5 "and neither made it" -- "$CHAN" stat absent
expect 2 "make --no-create is a usage error" -- "$CHAN" make absent --no-create
expect 0 "make present" -- "$CHAN" make present --cap 2
expect 0 "send --no-create to a channel that exists" -- "$CHAN" send present x --no-create
expect 0 "recv --no-create from it" -- "$CHAN" recv present --no-create
[ "$(cat "$tmp/out")" = "x" ] || fail "recv --no-create printed '$(cat "$tmp/out")'"

# ---- -0/--null: values end with NUL, so they may hold newlines ----
printf 'one\ntwo\000three\000\000last' >"$tmp/nul.in"
expect 0 "make nul" -- "$CHAN" make nul --cap 10
expect 0 "send --null" -- sh -c '"$1" send nul --null <"$2"' sh "$CHAN" "$tmp/nul.in"
expect 0 "stat nul" -- "$CHAN" stat nul
grep -q "^len: 4$" "$tmp/out" && pass "--null sent four values (one empty)" ||
    fail "--null sent: $(grep '^len' "$tmp/out")"
expect 0 "recv -0" -- "$CHAN" recv nul -n 4 -0
printf 'one\ntwo\000three\000\000last\000' | cmp -s - "$tmp/out" &&
    pass "--null round trip, each value ended by a NUL" || fail "recv -0 printed $(od -c "$tmp/out")"
expect 2 "--raw with --null" -- "$CHAN" recv nul --raw --null

# ---- a value over chand's limit (--max-frame 1m less 512 bytes) ----
expect 0 "make big" -- "$CHAN" make big --cap 1
head -c 2000000 /dev/zero >"$tmp/big"
expect 1 "send a value over the limit" -- sh -c '"$1" send big --raw <"$2"' sh "$CHAN" "$tmp/big"
says "chan: value of 2000000 bytes over chand's limit of 1048064 bytes"

# ---- values a reader could not print go back to the channel ----
expect 0 "make buffered for a broken pipe" -- "$CHAN" make broken --cap 10
expect 0 "fill it" -- "$CHAN" send broken a b c
timeout 20 "$CHAN" recv broken -n 3 >/dev/full 2>/dev/null
[ $? -eq 1 ] && pass "recv into a full stdout fails" || fail "recv into /dev/full"
expect 0 "nothing lost" -- "$CHAN" recv broken -n 3
[ "$(cat "$tmp/out")" = "$(printf 'a\nb\nc')" ] && pass "the three values are back, in order" ||
    fail "after a failed print: '$(cat "$tmp/out")'"
# --redelivered shows that: a value printed nowhere comes back counted
expect 0 "one more value" -- "$CHAN" send broken d
timeout 20 "$CHAN" recv broken >/dev/full 2>/dev/null
expect 0 "recv --redelivered" -- "$CHAN" recv broken --redelivered
[ "$(cat "$tmp/out")" = "$(printf '1\td')" ] && pass "--redelivered: '1<tab>d'" ||
    fail "--redelivered after a failed print: '$(cat "$tmp/out")'"
expect 0 "a fresh value" -- "$CHAN" send broken e
expect 0 "recv --redelivered again" -- "$CHAN" recv broken --redelivered
[ "$(cat "$tmp/out")" = "$(printf '0\te')" ] && pass "--redelivered: '0<tab>e'" ||
    fail "--redelivered of a first delivery: '$(cat "$tmp/out")'"
expect 2 "--redelivered with --raw" -- "$CHAN" recv broken --redelivered --raw
expect 2 "--redelivered with send" -- "$CHAN" send broken x --redelivered

# ---- an unbuffered send waits for its receiver ----
timeout 20 "$CHAN" send rdv hello >"$tmp/send.out" 2>&1 &
spid=$!
i=0
while [ $i -lt 100 ]; do
    "$CHAN" stat rdv 2>/dev/null | grep -q "^blocked_senders: 1$" && break
    sleep 0.05; i=$((i + 1))
done
if kill -0 $spid 2>/dev/null; then pass "sender blocked before a receiver"; else fail "sender returned early"; fi
expect 0 "receiver takes it" -- "$CHAN" recv rdv
wait $spid && pass "sender returned 0 once received" || fail "sender exit code"

# ---- it pipes: 100,000 lines through an unbuffered channel ----
(seq 100000 | timeout 60 "$CHAN" send pipe; echo $? >"$tmp/sender.rc") &
spid=$!
n=$(timeout 60 "$CHAN" recv pipe -n 100000 | wc -l)
wait $spid
[ "$n" -eq 100000 ] && pass "recv printed 100000 lines" || fail "recv printed $n lines"
[ "$(cat "$tmp/sender.rc")" = 0 ] && pass "sender exited 0" || fail "sender exit $(cat "$tmp/sender.rc")"
seq 100000 | timeout 60 "$CHAN" send piped-buffered --cap 1000 &
spid=$!
timeout 60 "$CHAN" recv piped-buffered -n 100000 --cap 1000 >"$tmp/lines"
wait $spid
seq 100000 | cmp -s - "$tmp/lines" && pass "100000 lines in order" || fail "lines differ"

# ---- nothing left waiting ----
expect 0 "stat after the pipe" -- "$CHAN" stat pipe
grep -q "^blocked_senders: 0$" "$tmp/out" && grep -q "^blocked_receivers: 0$" "$tmp/out" &&
    grep -q "^inflight: 0$" "$tmp/out" && pass "no leaked waiters" || fail "leaked waiters: $(cat "$tmp/out")"

# ---- SIGTERM: exit 0 ----
stop_chand && pass "SIGTERM exits 0" || fail "SIGTERM exit $rc"
[ ! -e "$tmp/sock" ] && pass "unix socket removed" || fail "unix socket left behind"

# ---- a chand with few channels says which limit it hit ----
start_chand --max-channels 2 || exit 1
expect 0 "make one" -- "$CHAN" make one
expect 0 "make two" -- "$CHAN" make two
expect 1 "make a third over --max-channels 2" -- "$CHAN" make three
says "chan: too many channels (--max-channels 2)"
expect 1 "send makes a third too" -- "$CHAN" send four x
says "chan: too many channels (--max-channels 2)"
stop_chand

# ---- users: chan acl hash, --user, a refusal, chand refusing a bad file ----
printf 'alice-secret\n' | "$CHAN" acl hash alice >"$tmp/acl" 2>"$tmp/err"
grep -Eq '^user alice pbkdf2-sha256\$10000\$[0-9a-f]{32}\$[0-9a-f]{64}$' "$tmp/acl" &&
    pass "chan acl hash prints a user line" || fail "chan acl hash printed '$(cat "$tmp/acl")'"
printf 'x\n' | "$CHAN" acl hash --iterations 2000 >"$tmp/out" 2>"$tmp/err"
grep -Eq '^pbkdf2-sha256\$2000\$' "$tmp/out" && pass "chan acl hash --iterations" ||
    fail "chan acl hash --iterations printed '$(cat "$tmp/out")'"
expect 1 "chan acl hash without a secret" -- "$CHAN" acl hash </dev/null
expect 2 "chan acl hash bad user name" -- "$CHAN" acl hash 'a b' </dev/null
expect 2 "chan acl frobnicate" -- "$CHAN" acl frobnicate
echo 'allow alice send,make jobs.*' >>"$tmp/acl"
printf 'alice-secret\n' >"$tmp/alice.token"
printf 'wrong\n' >"$tmp/wrong.token"
echo 'allow alice fly' >"$tmp/bad.acl"
expect 1 "chand refuses a bad --acl-file" -- "$CHAND" --listen 127.0.0.1:0 --acl-file "$tmp/bad.acl"
grep -q "bad.acl:1: allow: no user alice" "$tmp/err" && pass "it names the line" ||
    fail "chand said '$(cat "$tmp/err")'"
start_chand --acl-file "$tmp/acl" || exit 1
expect 0 "alice sends to jobs.1" -- "$CHAN" --user alice --token-file "$tmp/alice.token" send jobs.1 --cap 5 x
expect 1 "alice may not send to other" -- "$CHAN" --user alice --token-file "$tmp/alice.token" send other x
says "chan: user alice may not make 'other'"
expect 1 "alice may not stat the server" -- env CHAN_USER=alice CHAN_TOKEN=alice-secret "$CHAN" stat
says "chan: user alice may not stat the server"
expect 1 "a wrong secret" -- "$CHAN" --user alice --token-file "$tmp/wrong.token" ping
says "chan: cannot connect to $CHAN_ADDR: bad user name or secret"
expect 1 "no user" -- "$CHAN" ping
says "chan: cannot connect to $CHAN_ADDR: this chand needs a user name (and its secret)"
stop_chand

echo "cli.sh: $failures failure(s)"
[ $failures -eq 0 ]
