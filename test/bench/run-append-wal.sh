#!/usr/bin/env bash
# What an append and the PL/pgSQL store (test/bench/setup.sql) each ask of
# the WAL with synchronous_commit = on, 8 clients on 1,000 entities, the
# two in turn: transactions per second, and per transaction the WAL
# records, bytes and flushes (pg_stat_wal).  With the same flushes per
# transaction, both wait on the same disk and their rates swing with it.
# Usage: bash test/bench/run-append-wal.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"
BENCH=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-8}

bench_cluster "autovacuum = off" "synchronous_commit = on"
stream_fixtures
append_scripts "$WORKDIR/scripts"
wal() { $PSQL -At -F ' ' -c "SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal"; }

say "8 clients, synchronous_commit = on, $ROUNDS rounds of $SECONDS_PER_RUN s a side"
for r in $(seq "$ROUNDS"); do
    for side in plpgsql_store append_target; do
        read -r records bytes syncs <<<"$(wal)"
        out=$("$PG_BIN/pgbench" -n -M prepared -c 8 -j 2 -T "$SECONDS_PER_RUN" \
              -f "$WORKDIR/scripts/$side.sql" postgres 2>&1)
        read -r records2 bytes2 syncs2 <<<"$(wal)"
        n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
        tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
        awk -v side="$side" -v tps="$tps" -v n="$n" -v rec=$((records2 - records)) \
            -v b=$((bytes2 - bytes)) -v s=$((syncs2 - syncs)) 'BEGIN {
            printf "round %d %-14s %6.0f tps; per transaction: %.1f WAL records, %.0f bytes, %.3f flushes\n",
                   '"$r"', side, tps, rec / n, b / n, s / n }'
    done
done
machine_line
