#!/bin/sh
# rt_split_goports2.sh - tests/check_goports2 with channels split over two chand daemons and local ones
# (RT_CHANNELS=split; the binary starts and stops the daemons, see tests/rt_test.h).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
RT_CHANNELS=split
export RT_CHANNELS
exec "${top_builddir:-.}/tests/check_goports2"
