#!/bin/sh
# run.sh - install what is missing, build, and run chand in the foreground on
# 127.0.0.1:7070.  Extra arguments go to chand (see chand --help).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -e
top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build"
cat <<MSG
chand is starting on 127.0.0.1:7070 (Ctrl-C stops it).  From another terminal:
    $top/build/client/cli/chan send greetings "hello, world"     # blocks until received
    $top/build/client/cli/chan recv greetings
    $top/build/client/cli/chan stat
MSG
exec "$top/build/daemon/chand" --listen 127.0.0.1:7070 "$@"
