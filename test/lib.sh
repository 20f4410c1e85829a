# Shared by demo.sh, run-tests.sh, valgrind.sh and the benchmarks: install
# what is missing, build and install the extension, and run throwaway
# clusters.  Works as root (clusters run as the unprivileged "postgres" user)
# or as an ordinary user (installs through sudo, clusters run as that user),
# from any directory and in any locale.
#
# Environment:
#   PG_MAJOR        PostgreSQL major version (default 15)
#   PG_BIN          its bin directory (default Debian's for PG_MAJOR)
#   HL_TEST_LOCALE  locale of the test clusters and of everything the
#                   scripts run (default C.UTF-8); generated if missing

set -eu

PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    SUDO=
else
    command -v sudo >/dev/null ||
        die "run this as root, or install sudo and run it as a user allowed to use it"
    SUDO=sudo
fi

# The Debian packages the scripts need, one a line: PostgreSQL, its headers
# and PGXS (which bring clang for the bitcode, the isolation tester and the
# TAP modules), IPC::Run for PostgreSQL::Test::Cluster, a compiler, prove,
# runuser (clusters run as postgres when the scripts run as root), OpenSSL's
# headers (SHA-256 and Ed25519 of tamper evidence), libcurl's (webhooks),
# python3 for the outside verifier and the webhook receiver.
REQUIRED_PACKAGES=(
    "postgresql-$PG_MAJOR"
    "postgresql-server-dev-$PG_MAJOR"
    libipc-run-perl
    make
    gcc
    perl
    util-linux
    libssl-dev
    openssl
    libcurl4-openssl-dev
    python3
    pgbouncer
)

package_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# install_packages NAME...: install those not installed yet (apt-get update
# first, once per run).
APT_UPDATED=
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    say "installing: ${missing[*]}"
    # in C.UTF-8: the caller's locale may not be there yet (perl warns)
    if [ -z "$APT_UPDATED" ]; then
        $SUDO env LC_ALL=C.UTF-8 apt-get update -qq
        APT_UPDATED=1
    fi
    # Debian's postgresql package starts a cluster of its own; ours are
    # separate and do not need it.
    $SUDO env LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# The test locale, generated when the system does not have it (C.UTF-8 is
# part of Debian's libc-bin, others come with the locales package).
HL_TEST_LOCALE=${HL_TEST_LOCALE:-C.UTF-8}
locale_available() {
    local want norm
    want=$(printf '%s' "$1" | tr 'A-Z' 'a-z' | sed 's/utf-8/utf8/')
    for norm in $(locale -a 2>/dev/null | tr 'A-Z' 'a-z'); do
        [ "$norm" = "$want" ] && return 0
    done
    return 1
}
ensure_locale() {
    case "$HL_TEST_LOCALE" in C|POSIX) return 0 ;; esac
    locale_available "$HL_TEST_LOCALE" && return 0
    install_packages locales
    locale_available "$HL_TEST_LOCALE" && return 0
    say "generating locale $HL_TEST_LOCALE"
    local charset=${HL_TEST_LOCALE#*.}
    [ "$charset" != "$HL_TEST_LOCALE" ] || charset=UTF-8
    $SUDO localedef -i "${HL_TEST_LOCALE%%.*}" -c -f "$charset" "$HL_TEST_LOCALE" ||
        die "could not generate locale $HL_TEST_LOCALE"
}

# Everything below runs in the test locale, whatever the caller's: initdb
# of the TAP tests' clusters takes it from LANG (PostgreSQL::Test::Utils
# drops LC_ALL and sets LC_MESSAGES=C itself), and a missing locale in the
# caller's environment would only bring warnings.
# LANG first: unsetting LC_* while LANG names a missing locale makes bash warn.
use_test_locale() {
    export LANG=$HL_TEST_LOCALE
    unset LC_ALL LC_COLLATE LC_CTYPE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME LANGUAGE
}

ensure_packages() {
    install_packages "${REQUIRED_PACKAGES[@]}"
    [ -x "$PG_BIN/postgres" ] || die "no PostgreSQL server in $PG_BIN (PG_BIN)"
    [ -f "$("$PG_CONFIG" --pgxs)" ] || die "no PGXS for $PG_CONFIG"
    ensure_locale
    use_test_locale
}

# WERROR=1: every warning of the compiler fails the build.  Objects built
# against another server (another PG_BIN, version or build) are rebuilt:
# make alone would keep them, and inline functions of one minor version's
# headers can call what another's server lacks.
build_and_install() {
    local stamp=$TOP/.pg_config.stamp want
    want="$PG_CONFIG $("$PG_CONFIG" --version) $("$PG_CONFIG" --configure | cksum)"
    say "building and installing headlessly_events into $("$PG_CONFIG" --pkglibdir)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" clean
    fi
    make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" WERROR=1
    printf '%s\n' "$want" >"$stamp"
    $SUDO make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# The OS user that runs test clusters: PostgreSQL refuses to run as root.
if [ "$(id -u)" = 0 ]; then CLUSTER_USER=postgres; else CLUSTER_USER=$(id -un); fi

# Run a command as the cluster user, from / : the caller's directory may be
# one that user cannot enter (initdb and postgres would complain).
as_cluster_user() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u "$CLUSTER_USER" -- env PATH="$PG_BIN:$PATH" "$@")
    else
        (cd / && env PATH="$PG_BIN:$PATH" "$@")
    fi
}

# A directory the cluster user owns, removed on exit however the script ends.
make_workdir() {
    WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/headlessly.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    chmod 755 "$WORKDIR"
    if [ "$(id -u)" = 0 ]; then chown "$CLUSTER_USER" "$WORKDIR"; fi
}

# start_cluster [extra postgresql.conf lines...]: a fresh cluster in
# $WORKDIR/data, in the test locale, listening only on a socket in $WORKDIR.
start_cluster() {
    PGPORT=$(( 20000 + $$ % 20000 ))
    PGHOST=$WORKDIR
    PGUSER=postgres
    export PGPORT PGHOST PGUSER
    as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync \
        --encoding=UTF8 --locale="$HL_TEST_LOCALE" >"$WORKDIR/initdb.log" 2>&1 ||
        { cat "$WORKDIR/initdb.log" >&2; die "initdb failed"; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$WORKDIR'"
        echo "port = $PGPORT"
        echo "max_connections = 50"
        echo "fsync = on"
        for line in "$@"; do echo "$line"; done
    } | as_cluster_user tee -a "$WORKDIR/data/postgresql.conf" >/dev/null
    as_cluster_user pg_ctl -D "$WORKDIR/data" -l "$WORKDIR/server.log" -w start >/dev/null ||
        { tail -n 20 "$WORKDIR/server.log" >&2; die "the server did not start"; }
}

stop_cluster() {
    if [ -f "$WORKDIR/data/postmaster.pid" ]; then
        as_cluster_user pg_ctl -D "$WORKDIR/data" -m "${1:-fast}" -w stop >/dev/null 2>&1 || true
    fi
}

cleanup() {
    if [ -n "${WORKDIR:-}" ] && [ -d "$WORKDIR" ]; then
        stop_cluster immediate
        rm -rf "$WORKDIR"
    fi
}
