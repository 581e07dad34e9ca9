#!/bin/sh
# xfail_nonblock_recv_select_sender.sh - a known bug, reproduced (XFAIL_TESTS):
# a non-blocking receive (chan_recv with deadline 0, or a select with default
# whose cases are all on one daemon) from an unbuffered remote channel whose
# sender waits in a select with a case in another place fails with ETIMEDOUT
# instead of taking the value.  See known_nonblock_recv_select_sender in
# tests/check_goports2.c.  Passing means it is fixed: move the test into the
# normal suite and drop this wrapper.
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
CHAN_KNOWN_BUGS=1
CK_RUN_CASE=known-bugs
RT_CHANNELS=split
export CHAN_KNOWN_BUGS CK_RUN_CASE RT_CHANNELS
exec "${top_builddir:-.}/tests/check_goports2"
