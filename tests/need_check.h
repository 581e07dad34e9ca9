/*
 * need_check.h - stands in for the Check framework's flags when configure
 * did not find it: building and installing chand, libchan and chan need no
 * Check, and `make check` stops here saying what is missing.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#error "make check needs the Check unit test framework (Debian: apt-get install check; then ./configure again)"
