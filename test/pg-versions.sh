#!/usr/bin/env bash
# Builds headlessly_events and runs its tests on each PostgreSQL version
# that Debian ships, each in a Debian chroot of the suite that has it:
#
#   15  bookworm (Debian 12)      17  trixie (Debian 13)      18  sid
#
# A chroot starts as a bare Debian (mmdebstrap's "apt" variant), and
# test/run-tests.sh installs into it what it needs, as on a fresh machine.
# Chroots are kept under HL_CHROOT_DIR (default /var/tmp/headlessly-chroots)
# and reused; remove one to start it afresh.  Needs root (or sudo): chroot,
# mounts in a private mount namespace, which go away with it.
#
# Usage: bash test/pg-versions.sh [VERSION]... [-- RUN-TESTS ARGUMENTS]
#   e.g. bash test/pg-versions.sh                  every version, every suite
#        bash test/pg-versions.sh 18 -- regress    PostgreSQL 18, regress only
# Each version's output goes to test/results-pg-versions/pgN.log, its
# test/results/ to test/results-pg-versions/pgN/.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    exec sudo env HL_CHROOT_DIR="${HL_CHROOT_DIR:-}" HL_TEST_LOCALE="$HL_TEST_LOCALE" \
        bash "$0" "$@"
fi

declare -A SUITE=([15]=bookworm [17]=trixie [18]=sid)
CHROOT_DIR=${HL_CHROOT_DIR:-/var/tmp/headlessly-chroots}
OUT=$TOP/test/results-pg-versions

versions=()
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) [ -n "${SUITE[$1]:-}" ] || die "no Debian suite known for PostgreSQL '$1' (known: ${!SUITE[*]})"
           versions+=("$1"); shift ;;
    esac
done
[ ${#versions[@]} -gt 0 ] || versions=(15 17 18)
test_args=("$@")

install_packages mmdebstrap
mkdir -p "$CHROOT_DIR" "$OUT"

# make_chroot SUITE: a bare Debian of that suite, once.  A mirror that
# serves a snapshot of sid can carry a Release file past its Valid-Until.
make_chroot() {
    local suite=$1 dir=$CHROOT_DIR/$1
    [ -x "$dir/usr/bin/apt-get" ] && return 0
    say "creating a $suite chroot in $dir"
    rm -rf "$dir.new"
    mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
        "$suite" "$dir.new" >"$OUT/mmdebstrap-$suite.log" 2>&1 ||
        { tail -n 20 "$OUT/mmdebstrap-$suite.log" >&2; die "mmdebstrap $suite failed"; }
    mv "$dir.new" "$dir"
}

# run_in_chroot VERSION: a clean copy of the tree in the chroot's /src, then
# run-tests.sh there as root, in a private mount namespace with /proc, a
# /dev/shm for the server's shared memory and the host's /dev/pts.
run_in_chroot() {
    local v=$1 dir=$CHROOT_DIR/${SUITE[$1]}
    rm -rf "$dir/src"
    mkdir "$dir/src"
    tar -C "$TOP" --exclude=.git --exclude=./results --exclude=./test/results \
        --exclude=./test/results-pg-versions --exclude=./tmp_check --exclude=./output_iso \
        --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$dir/src" -xf -
    # shellcheck disable=SC2016
    unshare --mount --propagation private -- bash -c '
        set -e
        dir=$1 major=$2 test_locale=$3; shift 3
        mount -t proc proc "$dir/proc"
        mkdir -p "$dir/dev/shm"
        mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
        mkdir -p "$dir/dev/pts"
        mount --bind /dev/pts "$dir/dev/pts"    # apt-get logs through a pty
        exec chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            TERM=dumb PG_MAJOR="$major" HL_TEST_LOCALE="$test_locale" \
            bash /src/test/run-tests.sh "$@"
    ' run "$dir" "$v" "$HL_TEST_LOCALE" "${test_args[@]}"
}

status=0
summary=()
total_passed=0; total_failed=0
for v in "${versions[@]}"; do
    say "PostgreSQL $v on Debian ${SUITE[$v]}"
    make_chroot "${SUITE[$v]}"
    set +e
    run_in_chroot "$v" 2>&1 | tee "$OUT/pg$v.log"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] || status=1
    rm -rf "$OUT/pg$v"
    [ -d "$CHROOT_DIR/${SUITE[$v]}/src/test/results" ] &&
        cp -R "$CHROOT_DIR/${SUITE[$v]}/src/test/results" "$OUT/pg$v"
    # run-tests.sh's summary: the version, one line per suite, the total
    block=$(sed -n '/^==> summary/,$p' "$OUT/pg$v.log" | sed "/^$/d; s|/src/test/results|$OUT/pg$v|")
    [ -n "$block" ] || block="==> PostgreSQL $v: no summary (exit status $rc; see $OUT/pg$v.log)"
    summary+=("$block")
    p=; f=
    read -r p f < <(printf '%s\n' "$block" |
        sed -n 's/^headlessly_events: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p') || true
    [ -n "$p" ] || { p=0; f=1; }
    [ "$rc" = 0 ] || [ "$f" -gt 0 ] || f=1
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
done

say "all versions"
for block in "${summary[@]}"; do printf '%s\n' "$block"; done
echo
echo "pg-versions: $total_passed passed, $total_failed failed"
exit $status
