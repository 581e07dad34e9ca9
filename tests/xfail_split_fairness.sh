#!/bin/sh
# xfail_split_fairness.sh - a known deviation, reproduced (XFAIL_TESTS): a
# select over ready cases in several places (two daemons and a local
# channel) does not choose uniformly at random as DESIGN.md's semantics
# table says: a ready local case wins every time (chan.h documents this).
# See select_uniform_across_places in tests/check_select.c.  Passing means
# it is fixed: drop the exception in the fairness tests and this wrapper.
RT_CHANNELS=split
CHAN_KNOWN_BUGS=1
CK_RUN_CASE=known-bugs
export RT_CHANNELS CHAN_KNOWN_BUGS CK_RUN_CASE
exec "${top_builddir:-.}/tests/check_select"
