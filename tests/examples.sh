#!/bin/sh
# tests/examples.sh - the programs of examples/ (the talk's, and jobs.c,
# which README and libchan(3) show), each run locally, with --remote against
# a real chand on an ephemeral port, and (sequence, google) across
# processes; their output is checked for what the talk (or the page) shows.
# Run by make check ($CHAND and $CHAN set there).
#
# Pauses are scaled down (CHAN_EXAMPLES_SCALE) so the talk runs fast; no
# check depends on the test's own clock: only on what the programs print.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -u

CHAND=${CHAND:?set by make check}
CHAN=${CHAN:?set by make check}
EX=${top_builddir:?set by make check}/examples
. "${top_srcdir:?set by make check}/tests/lib.sh"

# run NAME CMD...: run an example (bounded), its output in $tmp/NAME.out;
# 0 if it exited 0.
run() {
    name=$1; shift
    t0=$(date +%s%N)
    timeout -k 5 300 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
    took="$(( ($(date +%s%N) - t0) / 1000000 )) ms"
    if [ $rc -ne 0 ]; then
        fail "$name: exit $rc ($took)"
        sed 's/^/    /' "$tmp/$name.err" | head -n 20
        return 1
    fi
    return 0
}

# verdict NAME CHECK: apply the check (an awk program) to NAME's output.
verdict() {
    name=$1; check=$2
    if awk "$check" "$tmp/$name.out" >"$tmp/$name.why"; then
        pass "$name ($took)"
    else
        fail "$name: $(cat "$tmp/$name.why")"
        sed 's/^/    | /' "$tmp/$name.out" | head -n 40
    fi
}

# ---- what each example must print ----

# 1: five messages from boring("boring!"), in order, then main leaves.
GENERATOR='
NR <= 5 { if ($0 != "You say: \"boring! " NR - 1 "\"") { print "line " NR ": " $0; bad = 1 } }
NR == 6 && $0 != "You'"'"'re boring; I'"'"'m leaving." { print "no goodbye"; bad = 1 }
END { if (NR != 6) { print NR " lines, wanted 6"; bad = 1 } exit bad }'

# 2: Joe and Ann in lockstep: Joe i, Ann i, five times.
SERVICES='
NR <= 10 { want = (NR % 2 ? "Joe " : "Ann ") int((NR - 1) / 2)
           if ($0 != want) { print "line " NR ": \"" $0 "\", wanted \"" want "\""; bad = 1 } }
NR == 11 && $0 != "You'"'"'re both boring; I'"'"'m leaving." { print "no goodbye"; bad = 1 }
END { if (NR != 11) { print NR " lines, wanted 11"; bad = 1 } exit bad }'

# 3: ten messages in any interleaving; each talker in order from 0; both speak.
FANIN='
NR <= 10 { if (!($1 == "Joe" || $1 == "Ann") || $2 != next_[$1] + 0) { print "line " NR ": " $0; bad = 1 }
           next_[$1]++ }
NR == 11 && $0 != "You'"'"'re both boring; I'"'"'m leaving." { print "no goodbye"; bad = 1 }
END { if (NR != 11) { print NR " lines, wanted 11"; bad = 1 }
      if (!next_["Joe"] || !next_["Ann"]) { print "only one talker spoke"; bad = 1 }
      exit bad }'

# 4: strict alternation: round r is one "Joe r" and one "Ann r", either order.
SEQUENCE='
NR <= 10 { r = int((NR - 1) / 2); seen[$0]++
           if ($0 != "Joe " r && $0 != "Ann " r) { print "line " NR ": \"" $0 "\" in round " r; bad = 1 }
           if (seen[$0] > 1) { print "\"" $0 "\" twice"; bad = 1 } }
NR == 11 && $0 != "You'"'"'re all boring; I'"'"'m leaving." { print "no goodbye"; bad = 1 }
END { if (NR != 11) { print NR " lines, wanted 11"; bad = 1 } exit bad }'

# 5: Joe 0, Joe 1, ... until the timeout message (given as -v last=...).
TIMEOUT='
$0 == last { done = NR; next }
{ if (done || $0 != "Joe " (n + 0)) { print "line " NR ": " $0; bad = 1 } n++ }
END { if (!done || done != NR) { print "no \"" last "\" at the end"; bad = 1 } exit bad }'

# 6: 1 to 10 messages, then the quit (and with --reply: cleanup, then the answer).
QUIT='
/^Joe [0-9]+$/ { if (after || $0 != "Joe " (n + 0)) { print "line " NR ": " $0; bad = 1 } n++; next }
{ after = 1; tail = tail $0 "|" }
END { if (n < 1 || n > 10) { print n " messages, wanted 1 to 10"; bad = 1 }
      if (tail != want) { print "ending \"" tail "\", wanted \"" want "\""; bad = 1 } exit bad }'

# 7: exactly 100001 (N + 1 for a chain of N).
DAISY='{ if ($0 != n + 1) bad = 1 } END { if (NR != 1 || bad) { print "not " n + 1; exit 1 } }'
# Sanitizer builds are about ten times slower and check memory safety or
# races, not scale: their chain is 10,000 long (the plain build runs the
# talk's 100,000; under ThreadSanitizer 100,000 goroutines, each with TSan's
# own shadow stack and trace, run out of mappings).  CHAN_TEST_FULL=1 (make
# check-full) runs the full size in any build.
DAISY_N=100000
if [ "${CHAN_TEST_FULL:-0}" = 0 ] &&
   grep -Eq "define CHAN_(SANITIZERS|TSAN) 1" "$top_builddir/config.h" 2>/dev/null; then
    DAISY_N=10000
fi
echo "size: daisy chain links = $DAISY_N"

# 8: every search prints its results, its elapsed time and a summary whose
# count matches; 1.0 and 2.0 always get all three kinds; with -v full=V at
# least one search of version V reports all three kinds before its deadline.
GOOGLE='
/^Google Search / { if (open) { print "search without a summary"; bad = 1 } open = 1; results = 0; ms = 0; next }
/^  (web|image|video)[0-9]* result for "golang"$/ { results++; next }
/^timed out$/ || /^no answer/ { next }
/^[0-9]+\.[0-9]+ms$/ { ms = 1; next }
/^[0-9.]+: [0-3] of 3 results/ {
    if (!open || !ms) { print "summary without a search or elapsed time: " $0; bad = 1 }
    if ($2 != results) { print "summary says " $2 ", printed " results; bad = 1 }
    if (($1 == "1.0:" || $1 == "2.0:") && $0 !~ /3 of 3 results \(web image video\)$/) { print "incomplete: " $0; bad = 1 }
    if ($1 == full ":" && $0 ~ /3 of 3 results \(web image video\) before the 80 ms deadline$/) complete++
    searches++; open = 0; next }
{ print "unexpected line " NR ": " $0; bad = 1 }
END { if (!searches || open) { print "no complete search"; bad = 1 }
      if (full != "" && !complete) { print "no " full " search got web, image and video before its deadline"; bad = 1 }
      exit bad }'

# jobs.c, the program README and libchan(3) show whole: the worker gets
# the three jobs in order, then main reports them done.
JOBS='
NR <= 3 { if ($0 != "got job " NR) { print "line " NR ": " $0; bad = 1 } }
NR == 4 && $0 != "3 jobs done" { print "line 4: " $0; bad = 1 }
END { if (NR != 4) { print NR " lines, wanted 4"; bad = 1 } exit bad }'

export CHAN_EXAMPLES_SCALE=0.05
for where in local remote; do
    if [ $where = remote ]; then
        chand_limit=600
        start_chand || exit 1
        R=--remote
    else
        R=
    fi
    run jobs-$where "$EX/jobs" $R && verdict jobs-$where "$JOBS"
    run generator-$where "$EX/generator" $R && verdict generator-$where "$GENERATOR"
    run services-$where "$EX/services" $R && verdict services-$where "$SERVICES"
    run fanin-$where "$EX/fanin" $R && verdict fanin-$where "$FANIN"
    run fanin-select-$where "$EX/fanin" --select $R && verdict fanin-select-$where "$FANIN"
    run sequence-$where "$EX/sequence" $R && verdict sequence-$where "$SEQUENCE"
    run timeout-$where "$EX/timeout" $R &&
        verdict timeout-$where "BEGIN { last = \"You're too slow.\" } $TIMEOUT"
    run timeout-whole-$where "$EX/timeout" --whole $R &&
        verdict timeout-whole-$where "BEGIN { last = \"You talk too much.\" } $TIMEOUT"
    run quit-$where "$EX/quit" $R &&
        verdict quit-$where "BEGIN { want = \"Told Joe to quit.|\" } $QUIT"
    run quit-reply-$where "$EX/quit" --reply $R &&
        verdict quit-reply-$where "BEGIN { want = \"Joe: cleaning up|Joe says: \\\"See you!\\\"|\" } $QUIT"
    run daisy-$where "$EX/daisy" -n $DAISY_N $R && verdict daisy-$where "BEGIN { n = $DAISY_N } $DAISY"
    # The search backends take the talk's real times (up to 100 ms, an 80 ms
    # budget): 3.0 has ten tries at a complete answer (a loaded machine can make any one
    # search miss its budget).
    run google-$where env CHAN_EXAMPLES_SCALE=1 "$EX/google" $R && verdict google-$where "$GOOGLE"
    run google3-$where env CHAN_EXAMPLES_SCALE=1 "$EX/google" --version 3.0 -n 10 $R &&
        verdict google3-$where "BEGIN { full = \"3.0\" } $GOOGLE"
done

# jobs: chand refusing (the channel exists with another capacity) is told
# in chand's words, and is a failure; so is a bad command line.
"$CHAN" make jobs --cap 4 || fail "chan make jobs --cap 4"
timeout 60 "$EX/jobs" --remote >"$tmp/jobs-refused.out" 2>"$tmp/jobs-refused.err"
rc=$?
if [ $rc -eq 1 ] && [ ! -s "$tmp/jobs-refused.out" ] &&
    [ "$(cat "$tmp/jobs-refused.err")" = "jobs: open jobs: channel 'jobs' exists with capacity 4, not 16" ]; then
    pass "jobs --remote: chand's refusal in its words, exit 1"
else
    fail "jobs --remote against a 'jobs' of capacity 4: exit $rc, said: $(cat "$tmp/jobs-refused.err" "$tmp/jobs-refused.out")"
fi
"$CHAN" rm jobs || fail "chan rm jobs"
timeout 60 "$EX/jobs" --bogus >"$tmp/jobs-usage.out" 2>&1
rc=$?
[ $rc -eq 2 ] && pass "jobs --bogus: exit 2" || fail "jobs --bogus: exit $rc: $(cat "$tmp/jobs-usage.out")"

# ---- across processes ----

# 4: Joe and Ann are child processes; their wait channels cross to main.
run sequence-procs "$EX/sequence" --remote --procs && verdict sequence-procs "$SEQUENCE"

# 8: six search-replica processes; web1 dies holding its second request.
for r in web1 web2 image1 image2 video1 video2; do
    crash=""
    [ $r = web1 ] && crash="--crash-after 2"
    CHAN_EXAMPLES_SCALE=1 timeout --foreground -k 2 300 "$EX/search-replica" --remote $crash $r \
        >"$tmp/$r.log" 2>&1 &
    eval "pid_$r=$!"
    pids="$pids $!"
done
for r in web1 web2 image1 image2 video1 video2; do
    i=0
    until "$CHAN" stat "search.$r" 2>/dev/null | grep -q "^blocked_receivers: 1$"; do
        i=$((i + 1))
        [ $i -lt 200 ] || { fail "replica $r never served search.$r"; cat "$tmp/$r.log"; break; }
        sleep 0.05
    done
done
if run google-services env CHAN_EXAMPLES_SCALE=1 "$EX/google" --remote --services --version 3.0 -n 12; then
    verdict google-services "BEGIN { full = \"3.0\" } $GOOGLE"
    # After web1 took its second request, only web2 can answer for the web.
    if awk '/^3.0: / { n++ } n >= 2 && /web1 result/ { bad = 1 } n >= 2 && /web2 result/ { web2++ }
            END { exit bad || !web2 }' "$tmp/google-services.out"; then
        pass "google-services: web2 answers once web1 is gone"
    else
        fail "google-services: web answers after the crash come from web2"
        sed 's/^/    | /' "$tmp/google-services.out"
    fi
fi
wait "$pid_web1"
rc=$?
grep -q "killed mid-request" "$tmp/web1.log" && [ $rc -eq 137 ] &&
    pass "web1 was killed mid-request (SIGKILL)" || fail "web1 exit $rc: $(cat "$tmp/web1.log")"
# web1 is reaped: its number may belong to another process by now
pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$pid_web1" | tr '\n' ' ')
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
for p in $pids; do wait "$p" 2>/dev/null; done
pids=""

# ---- nothing left behind in chand: every channel but the replicas' named
# request channels was temporary, gone with its program's connection ----
i=0
while :; do
    "$CHAN" ls >"$tmp/ls" 2>&1 || { fail "chan ls: $(cat "$tmp/ls")"; break; }
    left=$(awk 'NR > 1 && $1 !~ /^search\./' "$tmp/ls" | wc -l)
    [ "$left" -eq 0 ] && { pass "no channel outlived its program"; break; }
    i=$((i + 1))
    [ $i -lt 100 ] || { fail "$left channels left behind: $(head -n 5 "$tmp/ls")"; break; }
    sleep 0.1
done

stop_chand && pass "chand exits 0" || fail "chand exit $rc"

echo "examples.sh: $failures failure(s)"
[ $failures -eq 0 ]
