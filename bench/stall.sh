#!/bin/sh
# bench/stall.sh - does any one request stall chand for everyone else?
# Starts chand on a loopback ephemeral port, runs bench_stall against it
# (a million channels; pings alone and while another client lists them all;
# heavy requests measured by chand's loop-stall histogram), stops chand,
# and writes the section "No request stalls chand" of bench/RESULTS.md.
# Run by `make bench-stall`:
#   stall.sh CHAND BENCH_STALL WORK_DIR RESULTS_MD
# CHANNELS (default 1000000) and SECONDS (default 10) size the run.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
chand=$1
bench=$2
work=$3
results=$4
channels=${CHANNELS:-1000000}
secs=${SECONDS_RUN:-10}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chand_pid=""
out=$(mktemp)
section=$(mktemp)
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/table.sh"
trap 'server_stop "$chand_pid"; rm -f "$out" "$section"' EXIT
trap 'exit 130' INT TERM
load=$(cut -d' ' -f1-3 /proc/loadavg)
chand_up "$chand" "$work" --max-channels 2000000 || exit 1
"$bench" "$chand_addr" "$channels" "$secs" >"$out"
cat "$out"
machine=$(machine)
{
    echo "## No request stalls chand"
    echo
    echo "Command: \`make bench-stall\` (bench/stall.sh, bench/bench_stall.c): one chand on a loopback"
    echo "ephemeral port holding $channels channels. A client pings it once a millisecond on its own"
    echo "connection, alone and then while another client lists every channel in a loop"
    echo "(\`chan_list\`: \`Stat{all}\` a page of about 1000 at a time); then each heavy request runs"
    echo "once, and chand's loop-stall histogram (\`Stat{}\`: how long each event-loop callback kept"
    echo "every other client waiting) gives the longest callback it caused. Goal: a ping's p99"
    echo "under 5 ms while listing."
    echo
    echo "Machine: $machine; load average $load at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end (the machine may be shared)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    cat "$out"
} >"$section"
sh "$(dirname "$0")/section.sh" "$results" "$section"
echo "wrote $results"
