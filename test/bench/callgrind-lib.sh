# Shared by the callgrind benchmarks, after test/lib.sh: a throwaway cluster
# whose server runs under valgrind's callgrind, and the instructions that
# the backend of one pgbench client spends per transaction.

# callgrind_cluster [FIXTURE.sql...]: build, install and initdb; the
# fixtures run on a plain server first (under valgrind they would take
# long), then the server runs under callgrind, one output file per process
# in $WORKDIR/cg.  PSQL runs SQL in it.
callgrind_cluster() {
    ensure_packages
    command -v valgrind >/dev/null || { $SUDO apt-get install -y -qq valgrind >/dev/null; }
    build_and_install
    make_workdir

    PGPORT=$(( 20000 + $$ % 20000 ))
    PGHOST=$WORKDIR
    PGUSER=postgres
    export PGPORT PGHOST PGUSER
    as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync >/dev/null
    printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\nautovacuum = off\nsynchronous_commit = off\n" \
        "$WORKDIR" "$PGPORT" | as_cluster_user tee -a "$WORKDIR/data/postgresql.conf" >/dev/null
    PSQL="as_cluster_user $PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d postgres"

    if [ $# -gt 0 ]; then
        as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -l "$WORKDIR/setup.log" -w start >/dev/null
        local fixture
        for fixture in "$@"; do $PSQL -f "$fixture" >/dev/null 2>&1; done
        $PSQL -c "VACUUM ANALYZE" >/dev/null
        as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
    fi

    as_cluster_user mkdir "$WORKDIR/cg"
    as_cluster_user valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$WORKDIR/cg/callgrind.%p" \
        "$PG_BIN/postgres" -D "$WORKDIR/data" >"$WORKDIR/server.log" 2>&1 &
    until as_cluster_user "$PG_BIN/pg_isready" -q; do sleep 1; done
}

# callgrind_count FILE N: instructions of the backend of pgbench's client
# in one run of N transactions of FILE (-M prepared).  pgbench also opens a
# short connection of its own, which runs no statement; callgrind writes a
# backend's file when it exits.  With CALLGRIND_KEEP set, the client's
# file is kept as $CALLGRIND_KEEP.N.  The database is $CALLGRIND_DB
# (default postgres).
callgrind_count() {
    local file=$1 n=$2 before new client=
    before=$(ls "$WORKDIR"/cg/callgrind.* | sort)
    as_cluster_user "$PG_BIN/pgbench" -n -M prepared -c 1 -t "$n" -f "$file" "${CALLGRIND_DB:-postgres}" >/dev/null 2>&1 ||
        die "pgbench failed on $file"
    for _ in $(seq 600); do
        new=$(comm -13 <(echo "$before") <(ls "$WORKDIR"/cg/callgrind.* | sort))
        if [ -n "$new" ] && [ -z "$(grep -L "^summary:" $new)" ]; then
            client=$(grep -l "PortalStart" $new | head -n 1)
            [ -n "$client" ] && break
        fi
        sleep 1
    done
    [ -n "$client" ] || die "no backend of pgbench's client for $file"
    sed -n 's/^summary: //p' "$client"
    [ -z "${CALLGRIND_KEEP:-}" ] || cp "$client" "$CALLGRIND_KEEP.$n"
    rm -f $new
}

# callgrind_per_transaction FILE N1 N2: (I(N2) - I(N1)) / (N2 - N1), which
# leaves out connecting and loading the library
callgrind_per_transaction() {
    local low high
    low=$(callgrind_count "$1" "$2")
    high=$(callgrind_count "$1" "$3")
    echo $(( (high - low) / ($3 - $2) ))
}
