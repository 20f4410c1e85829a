# Shared by demo.sh, run-tests.sh and the benchmarks: install what is
# missing, build and install the extension, and run throwaway clusters.
# Works as root (clusters run as the unprivileged "postgres" user) or as an
# ordinary user (installs through sudo, clusters run as that user).

set -eu

PG_MAJOR=15
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi

say() { printf '\n==> %s\n' "$*"; }

# Debian's packages for PostgreSQL 15, its headers and PGXS, pgbench and the
# TAP test modules (PostgreSQL::Test::Cluster needs IPC::Run).
ensure_packages() {
    local missing=""
    [ -x "$PG_BIN/postgres" ] || missing="$missing postgresql-$PG_MAJOR"
    [ -x "$PG_CONFIG" ] && [ -f "$($PG_CONFIG --pgxs 2>/dev/null || echo /nonexistent)" ] ||
        missing="$missing postgresql-server-dev-$PG_MAJOR"
    [ -x "$PG_BIN/pgbench" ] || missing="$missing postgresql-contrib"
    perl -MIPC::Run -e 1 2>/dev/null || missing="$missing libipc-run-perl"
    command -v make >/dev/null || missing="$missing make"
    command -v gcc >/dev/null || missing="$missing gcc"
    command -v prove >/dev/null || missing="$missing perl"
    if [ -n "$missing" ]; then
        say "installing:$missing"
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib \
            libipc-run-perl make gcc perl >/dev/null
    fi
    # Debian's package starts its own cluster; ours are separate and need none.
}

build_and_install() {
    say "building and installing headlessly_events"
    make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" WERROR=1
    $SUDO make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# The OS user that runs test clusters: PostgreSQL refuses to run as root.
if [ "$(id -u)" = 0 ]; then CLUSTER_USER=postgres; else CLUSTER_USER=$(id -un); fi

as_cluster_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$CLUSTER_USER" -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}

# A directory the cluster user owns, removed by cleanup.
make_workdir() {
    WORKDIR=$(mktemp -d /tmp/headlessly.XXXXXX)
    chmod 755 "$WORKDIR"
    [ "$(id -u)" = 0 ] && chown "$CLUSTER_USER" "$WORKDIR"
    return 0
}

# start_cluster [extra postgresql.conf lines...]: a fresh cluster in
# $WORKDIR/data listening only on a socket in $WORKDIR.
start_cluster() {
    PGPORT=$(( 20000 + $$ % 20000 ))
    PGHOST=$WORKDIR
    PGUSER=postgres
    export PGPORT PGHOST PGUSER
    as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$WORKDIR'"
        echo "port = $PGPORT"
        echo "max_connections = 50"
        echo "fsync = on"
        for line in "$@"; do echo "$line"; done
    } | as_cluster_user tee -a "$WORKDIR/data/postgresql.conf" >/dev/null
    as_cluster_user pg_ctl -D "$WORKDIR/data" -l "$WORKDIR/server.log" -w start >/dev/null
    trap cleanup EXIT
}

cleanup() {
    if [ -n "${WORKDIR:-}" ] && [ -d "$WORKDIR" ]; then
        if [ -f "$WORKDIR/data/postmaster.pid" ]; then
            as_cluster_user pg_ctl -D "$WORKDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$WORKDIR"
    fi
}
