# Shared by the benchmark scripts, after test/lib.sh: a throwaway cluster
# set up for benchmarks, pgbench runs, and medians of alternating rounds.
# The scripts set SECONDS_PER_RUN and ROUNDS.

BENCH=$TOP/test/bench

# bench_cluster [postgresql.conf lines...]: build, install and start a
# cluster sized for benchmarks; PSQL runs SQL in it.
bench_cluster() {
    ensure_packages
    build_and_install
    make_workdir
    start_cluster "shared_buffers = 512MB" "max_wal_size = 4GB" "checkpoint_timeout = 30min" \
                  "wal_level = minimal" "max_wal_senders = 0" "$@"
    PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d postgres"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pgbench_tps CLIENTS FILE: transactions per second of one pgbench run
pgbench_tps() {
    local clients=$1 file=$2 jobs=$(( $1 < 2 ? $1 : 2 ))
    "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$jobs" -T "$SECONDS_PER_RUN" \
        -f "$file" postgres 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

# alternate BASELINE_COMMAND SUBJECT_COMMAND: runs both ROUNDS times, in
# turn, and prints the median of each ("baseline subject").  Each round's
# ratio subject / baseline goes to $WORKDIR/round_ratios, one a line: the
# two runs of a round meet the same table sizes and the same neighbours on
# the machine, so their ratio drifts less than either figure.
alternate() {
    local b=() s=() i
    for r in $(seq "$ROUNDS"); do
        b+=("$(eval "$1")")
        s+=("$(eval "$2")")
    done
    for i in "${!b[@]}"; do
        awk -v b="${b[$i]}" -v s="${s[$i]}" 'BEGIN { printf "%.2f\n", s / b }'
    done > "$WORKDIR/round_ratios"
    echo "$(printf '%s\n' "${b[@]}" | median) $(printf '%s\n' "${s[@]}" | median)"
}

# round_ratios_line: the last alternate's per-round ratios and their median
round_ratios_line() {
    echo "per-round ratios $(paste -sd ' ' "$WORKDIR/round_ratios"), median $(median < "$WORKDIR/round_ratios")"
}

# machine_line: what the figures were measured on
machine_line() {
    echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
         "load average $(cut -d ' ' -f 1-3 /proc/loadavg); $("$PG_BIN/psql" -X -At -d postgres -c 'SHOW server_version')"
}

# stream_fixtures: the fixtures of the stream benchmarks, analyzed
stream_fixtures() {
    say "fixtures"
    $PSQL -f "$BENCH/setup.sql" >/dev/null
    $PSQL -f "$BENCH/stream-setup.sql" >/dev/null
    $PSQL -c "VACUUM ANALYZE" >/dev/null
}

# append_scripts DIR: the pgbench scripts of the appends with a target on
# 1,000 entities of one noun (append_target, called in FROM as the README
# does; append_target_call, called in the select list), mdb.write_message
# on 1,000 streams of one category (write_message), the PL/pgSQL store
# (plpgsql_store, called in the select list; plpgsql_store_from, in FROM),
# and an empty transaction (empty).  A function called in FROM costs the
# executor a function scan and a tuplestore more than one called in the
# select list: a comparison of two functions calls both the same way (the
# append still builds and returns its whole row, the store a bigint).
append_scripts() {
    mkdir -p "$1"
    cat > "$1/append_target.sql" <<'SQL'
\set a random(1, 1000)
SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
    cat > "$1/append_target_call.sql" <<'SQL'
\set a random(1, 1000)
SELECT (headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int))).version;
SQL
    cat > "$1/plpgsql_store_from.sql" <<'SQL'
\set a random(1, 1000)
SELECT version FROM bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int)) AS version;
SQL
    cat > "$1/write_message.sql" <<'SQL'
\set a random(1, 1000)
SELECT mdb.write_message(gen_random_uuid()::text, 'account-' || :a, 'Updated', jsonb_build_object('n', :a::int));
SQL
    cat > "$1/plpgsql_store.sql" <<'SQL'
\set a random(1, 1000)
SELECT bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
    cat > "$1/empty.sql" <<'SQL'
SELECT 1;
SQL
}

# backlog_sql N TARGETS CHUNK: the statements that append N backlog_item
# events over TARGETS targets, CHUNK to a statement (N a multiple of CHUNK)
backlog_sql() {
    local n=$1 targets=$2 chunk=$3 b
    for b in $(seq "$chunk" "$chunk" "$n"); do
        echo "SELECT count(*) FROM headlessly.events_append_batch(
                (SELECT jsonb_agg(jsonb_build_object('type', 'backlog_item', 'target', 'item_' || (i % $targets),
                                                     'data', jsonb_build_object('i', i)))
                   FROM generate_series($b - $chunk + 1, $b) i));"
    done
}

worker_pid() { $PSQL -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'"; }
