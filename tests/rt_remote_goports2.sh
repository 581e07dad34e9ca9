#!/bin/sh
# rt_remote_goports2.sh - tests/check_goports2 with every channel on one chand
# (RT_CHANNELS=remote; the binary starts and stops the daemons, see tests/rt_test.h).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
RT_CHANNELS=remote
export RT_CHANNELS
exec "${top_builddir:-.}/tests/check_goports2"
