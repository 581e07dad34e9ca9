#!/bin/sh
# scripts/package-test.sh - build chand's Debian packages and install them
# on a fresh minimal Debian, as a new machine would get them:
#   1. a clean copy of the tree (no .git, no build dirs, nothing that
#      autoreconf or configure made) in a scratch directory;
#   2. dpkg-buildpackage -us -uc -b there: chand, chan, libchan0, libchan-dev;
#   3. lintian on the result: a tag not overridden in debian/ fails;
#   4. a minimal root of this machine's Debian release from its mirror
#      (debootstrap --variant=minbase), made once and kept in /tmp
#      ($CHAND_PKG_BASE), copied afresh for each run;
#   5. chrooted there: apt-get installs the four packages (their
#      dependencies from the mirror) and systemd; then the user chand and
#      /var/lib/chand, the files, the unit (systemd-analyze verify), a
#      program of examples/ compiled with `pkg-config --cflags --libs
#      libchan` (and against libchan.a), and examples/jobs.c (README's and
#      libchan(3)'s program) compiled as README says, on its own, and run;
#      /usr/sbin/chand started as the user chand on a loopback port with
#      --data-dir /var/lib/chand, the programs and chan send/recv against it,
#      a value kept across a stop and a start, each stop by chand's PID;
#   6. the root booted with systemd (systemd-nspawn, a private network):
#      chand.service is up at boot, sandboxed, reloads, restarts with its
#      data; purging chand stops it and removes /var/lib/chand.
#      $CHAND_PKG_SYSTEMD: auto (the default: a machine where the container
#      does not boot skips this stage, saying so), yes (it must boot), no.
#      Without this stage, chand is purged in the chroot.
# The packages are left in build-deb/.  Needs root and the network; not part
# of make check.  DEB_BUILD_OPTIONS goes to dpkg-buildpackage (CI passes
# nocheck: its other passes ran make check on the same tree).
#
# Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
set -eu

fail() {
    echo "package-test: FAIL: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Stage 5, chrooted in the fresh root (`package-test.sh --inside`).
inside() {
    cd /root/pkgtest
    export DEBIAN_FRONTEND=noninteractive
    t=$(date +%s)
    apt-get update -qq
    # shellcheck disable=SC2046
    apt-get install -y -qq --no-install-recommends $(ls ./debs/*.deb) gcc libc6-dev pkgconf \
        systemd >apt.log 2>&1 || { tail -n 40 apt.log; fail "apt-get install"; }
    echo "package-test: installed chand, chan, libchan0, libchan-dev and their dependencies ($(($(date +%s) - t)) s)"

    # -- what the packages put in place --
    ent=$(getent passwd chand) || fail "no user chand after installing chand"
    case "$ent" in
    chand:*:*:*:*:/var/lib/chand:/usr/sbin/nologin) ;;
    *) fail "user chand: $ent (want home /var/lib/chand, shell /usr/sbin/nologin)" ;;
    esac
    getent group chand >/dev/null || fail "no group chand"
    own=$(stat -c %U:%G:%a /var/lib/chand)
    [ "$own" = chand:chand:750 ] || fail "/var/lib/chand is $own, want chand:chand:750"
    for f in /usr/sbin/chand /usr/bin/chan /lib/systemd/system/chand.service \
        /usr/share/man/man8/chand.8.gz /usr/share/man/man1/chan.1.gz \
        /usr/share/man/man3/libchan.3.gz /usr/include/chan/chan.h; do
        [ -f "$f" ] || fail "$f is missing"
    done
    libdir=$(pkg-config --variable=libdir libchan) || fail "pkg-config finds no libchan"
    for f in "$libdir/libchan.so.0" "$libdir/libchan.so" "$libdir/libchan.a"; do
        [ -e "$f" ] || fail "$f is missing"
    done
    [ -L /etc/systemd/system/multi-user.target.wants/chand.service ] ||
        fail "chand.service is not enabled"
    echo "package-test: ok: user chand, /var/lib/chand chand:chand 750, files, unit enabled"
    # --man=no: man(1) is not installed here; the page's presence is checked above
    systemd-analyze verify --man=no /lib/systemd/system/chand.service ||
        fail "systemd-analyze verify chand.service"
    echo "package-test: ok: systemd-analyze verify chand.service;" \
        "$(systemd-analyze security --offline=true /lib/systemd/system/chand.service 2>&1 |
            grep -o 'Overall exposure level.*' || echo 'no exposure level')"

    # -- a program of examples/ built against libchan-dev --
    cd ex
    : >config.h   # the examples include the build's config.h; nothing in it is needed
    cflags=$(pkg-config --cflags libchan)
    libs=$(pkg-config --libs libchan)
    pkg-config --static --libs libchan >/dev/null || fail "pkg-config --static --libs libchan"
    # shellcheck disable=SC2086
    gcc -O2 -Wall -D_GNU_SOURCE -I. generator.c talk.c common.c $cflags $libs -o generator ||
        fail "compiling examples/generator.c with pkg-config --cflags --libs libchan"
    so=$(ldd ./generator | sed -n 's/^[[:space:]]*libchan\.so\.0 => \([^ ]*\) .*/\1/p')
    if [ -z "$so" ] || [ "$(readlink -f "$so")" != "$(readlink -f "$libdir/libchan.so.0")" ]; then
        fail "generator is not linked with $libdir/libchan.so.0: $(ldd ./generator)"
    fi
    # shellcheck disable=SC2086,SC2046
    gcc -O2 -Wall -D_GNU_SOURCE -I. generator.c talk.c common.c $cflags "$libdir/libchan.a" \
        $(pkg-config --libs libprotobuf-c openssl) -o generator-static ||
        fail "compiling examples/generator.c against libchan.a"
    if ldd ./generator-static | grep -q libchan; then fail "generator-static uses libchan.so"; fi
    # README's and libchan(3)'s program, alone, as they say to build it
    # shellcheck disable=SC2086
    gcc -Wall -Wextra -Werror jobs.c $cflags $libs -o jobs ||
        fail "compiling examples/jobs.c with pkg-config --cflags --libs libchan"
    out=$(./jobs 2>&1) || fail "jobs (a local channel) exited $?: $out"
    [ "$out" = "$(printf 'got job 1\ngot job 2\ngot job 3\n3 jobs done')" ] || fail "jobs printed: $out"
    cd ..
    echo "package-test: ok: examples/generator.c built with pkg-config libchan (shared, and static);" \
        "examples/jobs.c built alone and run"

    # -- the installed chand, as the user chand, on a loopback port --
    install -d -o chand -g chand -m 0750 /run/chand-test
    pid=""
    trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid"; fi' EXIT
    start_chand
    addr=127.0.0.1:$port
    chan --cap 4 send pkgtest "hello from the package test" || fail "chan send"
    got=$(chan recv pkgtest) || fail "chan recv"
    [ "$got" = "hello from the package test" ] || fail "chan recv gave '$got'"
    for prog in generator generator-static; do
        out=$(./ex/$prog --remote "$addr" --scale 0.01) || fail "$prog --remote: $out"
        n=$(printf '%s\n' "$out" | grep -c '^You say: "boring! [0-4]"$' || true)
        if [ "$n" -ne 5 ] || ! printf '%s\n' "$out" | grep -q "I'm leaving"; then
            fail "$prog --remote printed: $out"
        fi
    done
    out=$(./ex/jobs --remote "$addr" 2>&1) || fail "jobs --remote exited $?: $out"
    [ "$out" = "$(printf 'got job 1\ngot job 2\ngot job 3\n3 jobs done')" ] || fail "jobs --remote printed: $out"
    rc=0
    chan stat jobs >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 5 ] || fail "after jobs --remote, chan stat jobs exited $rc (5: no such channel)"
    echo "package-test: ok: chan send/recv, generator --remote and jobs --remote against /usr/sbin/chand (pid $pid, $addr, user $(stat -c %U /proc/"$pid"))"
    chan --cap 4 send kept "still here" || fail "chan send kept"
    stop_chand
    start_chand
    addr=127.0.0.1:$port
    got=$(chan recv kept) || fail "chan recv kept"
    [ "$got" = "still here" ] || fail "after a restart, chan recv kept gave '$got'"
    stop_chand
    others=$(find /var/lib/chand ! -user chand)
    [ -z "$others" ] || fail "in /var/lib/chand, not the user chand's: $others"
    echo "package-test: ok: a value kept in /var/lib/chand across a stop and a start ($(cd /var/lib/chand && echo *))"
}

# The installed chan, talking to $addr.
chan() {
    /usr/bin/chan --addr "$addr" "$@"
}

# Start /usr/sbin/chand as the user chand (setpriv execs it: $! is chand's
# PID) and wait for its port.
start_chand() {
    rm -f /run/chand-test/port
    setpriv --reuid=chand --regid=chand --init-groups /usr/sbin/chand \
        --listen 127.0.0.1:0 --port-file /run/chand-test/port --data-dir /var/lib/chand \
        2>>/run/chand-test/log &
    pid=$!
    i=0
    while [ ! -s /run/chand-test/port ]; do
        kill -0 "$pid" 2>/dev/null || { cat /run/chand-test/log; pid=""; fail "chand exited"; }
        i=$((i + 1))
        [ "$i" -lt 100 ] || { cat /run/chand-test/log; fail "chand wrote no port file in 10 s"; }
        sleep 0.1
    done
    port=$(cat /run/chand-test/port)
}

# SIGTERM to chand's PID; it must exit 0.
stop_chand() {
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || { cat /run/chand-test/log; fail "chand exited $rc on SIGTERM"; }
}

purge_chand() {
    apt-get purge -y -qq chand >/root/pkgtest/apt.log 2>&1 ||
        { tail -n 20 /root/pkgtest/apt.log; fail "apt-get purge chand"; }
    [ ! -e /var/lib/chand ] || fail "/var/lib/chand is still there after purging chand"
    [ ! -e /etc/systemd/system/multi-user.target.wants/chand.service ] ||
        fail "chand.service is still enabled after purging chand"
    getent passwd chand >/dev/null || fail "purging chand removed the user chand"
}

# ---------------------------------------------------------------------------
# Stage 6, in the booted root (`package-test.sh --systemd`): chand.service
# as systemd runs it, on 127.0.0.1:7070 of the container's own network.
in_systemd() {
    addr=127.0.0.1:7070
    journal() { journalctl --no-pager -u chand | tail -n 30; }
    [ "$(systemctl is-active chand)" = active ] || { journal; fail "chand.service is not active after boot"; }
    main=$(systemctl show -P MainPID chand)
    status=$(cat "/proc/$main/status")
    tab=$(printf '\t')
    for want in "Uid:$tab$(id -u chand)$tab" "NoNewPrivs:${tab}1" "Seccomp:${tab}2" \
        "CapEff:${tab}0000000000000000"; do
        printf '%s\n' "$status" | grep -q "^$want" ||
            fail "chand.service's process (pid $main) has no '$want' in /proc/$main/status"
    done
    chan --cap 4 send viasystemd "through systemd" || { journal; fail "chan send to chand.service"; }
    systemctl reload chand || { journal; fail "systemctl reload chand"; }
    [ "$(systemctl is-active chand)" = active ] || { journal; fail "chand.service not active after a reload"; }
    journalctl --no-pager -u chand | grep -q 'SIGHUP' || { journal; fail "no SIGHUP in chand's journal"; }
    systemctl restart chand || { journal; fail "systemctl restart chand"; }
    got=$(chan recv viasystemd) || { journal; fail "chan recv after a restart"; }
    [ "$got" = "through systemd" ] || fail "after systemctl restart, chan recv gave '$got'"
    main=$(systemctl show -P MainPID chand)
    echo "package-test: ok: chand.service up at boot as chand (pid $main: no new privileges," \
        "seccomp, no capabilities); systemctl reload and restart, a value kept in /var/lib/chand"
    purge_chand
    [ "$(systemctl is-active chand)" != active ] || fail "chand.service still active after purging chand"
    if kill -0 "$main" 2>/dev/null; then fail "chand (pid $main) still runs after purging chand"; fi
    echo "package-test: ok: purging chand stops chand.service and removes /var/lib/chand"
}

case "${1:-}" in
--inside)
    inside
    exit 0
    ;;
--systemd)
    in_systemd
    exit 0
    ;;
--purge)
    purge_chand
    echo "package-test: ok: purging chand removes /var/lib/chand and the unit's links"
    exit 0
    ;;
esac

# ---------------------------------------------------------------------------
# Outside: build, lintian, the root.
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot)"
top=$(cd "$(dirname "$0")/.." && pwd)
t=$(date +%s)
lap() {
    now=$(date +%s)
    echo "package-test: $1 ($((now - t)) s)"
    t=$now
}
with_systemd=${CHAND_PKG_SYSTEMD:-auto}
case "$with_systemd" in
auto | yes) extra=systemd-container ;;
no) extra="" ;;
*) fail "CHAND_PKG_SYSTEMD=$with_systemd: auto, yes or no" ;;
esac

# shellcheck disable=SC2086
"$top/scripts/deps.sh" build-essential debhelper dpkg-dev lintian debootstrap python3 $extra
lap "build tools installed"

work=$(mktemp -d /tmp/chand-pkg.XXXXXX)
run=$work/root
nspawn=""
made=""   # directories the systemd stage made in /run for nspawn (removed when empty)
keep=yes   # the scratch dir stays for a look unless everything passed
unmount_root() {
    umount -R "$run/proc" 2>/dev/null || true
    umount -R "$run/dev" 2>/dev/null || true
}
stop_container() {
    [ -n "$nspawn" ] || return 0
    kill -TERM "$nspawn" 2>/dev/null || true   # nspawn powers the container off
    i=0
    while kill -0 "$nspawn" 2>/dev/null && [ "$i" -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
    nspawn=""
}
cleanup() {
    stop_container
    for d in $made; do rmdir "$d" 2>/dev/null || true; done
    # processes left in the chroot (a test that failed half-way): each by its PID
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$run" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    unmount_root
    if grep -q " $run/" /proc/mounts; then
        echo "package-test: $run still has mounts; not removing $work" >&2
    elif [ "$keep" = no ]; then
        rm -rf --one-file-system "$work"
    else
        echo "package-test: left $work for a look" >&2
    fi
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

# 1. a clean copy
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=$(sed -n 's/^AC_INIT(\[chand\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ "${version%-*}" = "$upstream" ] ||
    fail "debian/changelog's version $version is not of configure.ac's $upstream (dch -v $upstream-1)"
src=$work/chand-${version%-*}
mkdir -p "$src"
(cd "$top" && tar -c --exclude=./.git --exclude=./build --exclude='./build-*' \
    --exclude='./_build*' --exclude='./chand-*.tar.gz' --exclude=./autom4te.cache \
    --exclude=./configure --exclude=./aclocal.m4 --exclude=./config.h.in --exclude='*/Makefile.in' \
    --exclude=./Makefile.in --exclude=./config.status --exclude=./config.log \
    --exclude=./config.h --exclude=./Makefile --exclude=./libtool --exclude=./stamp-h1 \
    --exclude=./libchan.pc --exclude='./build-aux/[!.]*' --exclude='./m4/[!.]*' .) |
    tar -x -C "$src"

# 2. the packages
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log"
    fail "dpkg-buildpackage (the whole log: $work/build.log)"
}
lap "dpkg-buildpackage -us -uc -b: $(cd "$work" && echo *.deb)"
mkdir -p "$top/build-deb"
rm -f "$top"/build-deb/*.deb
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$top/build-deb/"

# 3. lintian: anything it says that debian/*.lintian-overrides does not
# override fails
rc=0
lintian -I --pedantic --fail-on error,warning,info,pedantic "$work"/*.changes \
    >"$work/lintian.log" 2>&1 || rc=$?
grep -v '^running with root privileges' "$work/lintian.log" || true
[ "$rc" -eq 0 ] || fail "lintian has something to say (above)"
lap "lintian: clean (overrides: $(cat "$top"/debian/*.lintian-overrides | grep -c '^[a-z]'))"

# 4. the minimal root, of this machine's release and mirror
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/{print $2; exit}' "$sources" 2>/dev/null || true)
base=${CHAND_PKG_BASE:-/tmp/chand-pkg-base-$codename}
if [ ! -f "$base/.ok" ]; then
    rm -rf --one-file-system "$base"
    debootstrap --variant=minbase "$codename" "$base" "${mirror:-http://deb.debian.org/debian}" \
        >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log"
        fail "debootstrap"
    }
    if [ -f "$sources" ]; then
        cp "$sources" "$base/etc/apt/sources.list.d/"
        rm -f "$base/etc/apt/sources.list"
    fi
    touch "$base/.ok"
    lap "debootstrap --variant=minbase $codename: $base"
fi
cp -a "$base" "$run"
mkdir -p "$run/root/pkgtest/debs" "$run/root/pkgtest/ex"
for p in chand chan libchan0 libchan-dev; do
    cp "$work/${p}_${version}_"*.deb "$run/root/pkgtest/debs/"
done
for f in generator.c talk.c talk.h common.c common.h jobs.c; do
    cp "$top/examples/$f" "$run/root/pkgtest/ex/"
done
cp "$0" "$run/root/pkgtest/package-test.sh"
cp /etc/resolv.conf "$run/etc/resolv.conf" 2>/dev/null || true
lap "a fresh root: $run"

in_chroot() {
    mount -t proc proc "$run/proc"
    mount --rbind /dev "$run/dev"
    mount --make-rslave "$run/dev"
    rc=0
    chroot "$run" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        sh /root/pkgtest/package-test.sh "$1" || rc=$?
    unmount_root
    return "$rc"
}

# 5. install and run, chrooted
in_chroot --inside
lap "installed and ran the packages in the fresh root"

# 6. boot it (systemd-nspawn wants /run/systemd/nspawn on a tmpfs: a private
# mount namespace gives it one) and run chand.service
booted=no
if [ "$with_systemd" != no ]; then
    for d in /run/systemd /run/systemd/nspawn; do [ -d "$d" ] || made="$d $made"; done
    # shellcheck disable=SC2016
    unshare --mount --propagation private sh -c '
        mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn &&
        exec systemd-nspawn --quiet --register=no --keep-unit --private-network \
            --console=passive -D "$1" -b' sh "$run" >"$work/nspawn.log" 2>&1 &
    nspawn=$!   # unshare and sh exec: this is nspawn's PID
    state=""
    i=0
    while [ "$i" -lt 600 ] && kill -0 "$nspawn" 2>/dev/null; do   # up to 60 s
        init=$(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null || true)
        init=${init%% *}
        if [ -n "$init" ]; then
            state=$(nsenter -t "$init" -a systemctl is-system-running 2>/dev/null || true)
            case "$state" in running | degraded) break ;; esac
        fi
        sleep 0.1
        i=$((i + 1))
    done
    case "$state" in
    running | degraded)
        booted=yes
        lap "booted the root with systemd-nspawn ($state)"
        nsenter -t "$init" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
            sh /root/pkgtest/package-test.sh --systemd
        stop_container
        lap "chand.service under systemd"
        ;;
    *)
        stop_container
        tail -n 20 "$work/nspawn.log"
        [ "$with_systemd" = auto ] || fail "the root did not boot with systemd-nspawn (above)"
        echo "package-test: SKIPPED chand.service under systemd: the root did not boot with" \
            "systemd-nspawn here (above); CHAND_PKG_SYSTEMD=yes makes that a failure"
        ;;
    esac
fi
if [ "$booted" = no ]; then
    in_chroot --purge
fi
keep=no
echo "package-test: all passed; the packages are in $top/build-deb/"
