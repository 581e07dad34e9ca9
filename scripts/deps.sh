#!/bin/sh
# scripts/deps.sh - install the Debian packages chand needs to build and test,
# if any is missing.  Used by run.sh and test.sh; safe to run again.
# Extra package names on the command line are installed too (e.g. for
# benchmarks: redis-server golang-go).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
pkgs="autoconf automake libtool pkg-config make gcc libc6-dev libevent-dev
      libprotobuf-c-dev protobuf-c-compiler libjson-c-dev check libssl-dev openssl $*"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
