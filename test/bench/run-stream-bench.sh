#!/usr/bin/env bash
# Stream benchmarks of headlessly_events on a throwaway cluster, each side of
# a comparison measured alternately in the same run (ROUNDS rounds), with
# medians and their ratio:
#   1. N appends to one entity in one transaction / N appends spread over N
#      existing entities in one transaction (time; N = 20,000 by default);
#   2. as_of(the present) right after those, without VACUUM / as_of of a
#      100-event entity (time per call), and the same while an older
#      snapshot is open (nothing can be pruned then);
#   3. appends with a target, 8 clients on 1,000 entities of one category /
#      mdb.write_message on 1,000 streams of one category, and / a PL/pgSQL
#      store whose heads table has headlessly.streams' indexes (events/s),
#      with synchronous_commit off and on;
#   4. events_list of one entity's 1,000 events / mdb.get_stream_messages of
#      the same 1,000 messages, and / a plain SELECT by target (calls/s).
# mdb is this project's SQL re-implementation of Message DB's write_message
# and get_stream_messages (test/bench/stream-setup.sql), not Message DB.
# Usage: bash test/bench/run-stream-bench.sh [SECONDS] [ROUNDS] [N]
source "$(dirname "$0")/../lib.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
N=${3:-20000}
BENCH=$TOP/test/bench
started=$(date +%s)

ensure_packages
build_and_install
make_workdir
# autovacuum off: "right after, without VACUUM" is what section 2 measures
start_cluster "shared_buffers = 512MB" "max_wal_size = 4GB" "checkpoint_timeout = 30min" \
              "autovacuum = off" "wal_level = minimal" "max_wal_senders = 0" \
              "synchronous_commit = off"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d postgres"

say "fixtures"
$PSQL -f "$BENCH/setup.sql" >/dev/null
$PSQL -f "$BENCH/stream-setup.sql" >/dev/null
$PSQL -c "VACUUM ANALYZE" >/dev/null

scripts=$WORKDIR/scripts
mkdir -p "$scripts"
cat > "$scripts/append_target.sql" <<'SQL'
\set a random(1, 1000)
SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
cat > "$scripts/write_message.sql" <<'SQL'
\set a random(1, 1000)
SELECT mdb.write_message(gen_random_uuid()::text, 'account-' || :a, 'Updated', jsonb_build_object('n', :a::int));
SQL
cat > "$scripts/plpgsql_store.sql" <<'SQL'
\set a random(1, 1000)
SELECT bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
cat > "$scripts/events_list.sql" <<'SQL'
SELECT * FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'reader');
SQL
cat > "$scripts/get_stream_messages.sql" <<'SQL'
SELECT * FROM mdb.get_stream_messages('reader-1');
SQL
cat > "$scripts/plain_select.sql" <<'SQL'
SELECT * FROM headlessly.events WHERE tenant = 'reader' AND target = 'reader_1' ORDER BY seq LIMIT 1000;
SQL
cat > "$scripts/as_of_small.sql" <<'SQL'
SELECT headlessly.as_of('small', tenant => 'hot');
SQL

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# tps of one pgbench run
tps() {
    local clients=$1 script=$2 jobs=$(( $1 < 2 ? $1 : 2 ))
    "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$jobs" -T "$SECONDS_PER_RUN" \
        -f "$scripts/$script.sql" postgres 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

REPORT=$WORKDIR/report.md
{
    echo "| comparison (A / B) | B | A | ratio | goal |"
    echo "|---|---|---|---|---|"
} > "$REPORT"

# row LABEL BASE_TEXT SUBJECT_TEXT RATIO GOAL
row() { printf '| %s | %s | %s | **%s** | %s |\n' "$@" | tee -a "$REPORT"; }

# compare_tps LABEL CLIENTS BASELINE SUBJECT GOAL: ratio = subject / baseline throughput
compare_tps() {
    local label=$1 clients=$2 base=$3 subject=$4 goal=$5 b=() s=()
    for r in $(seq "$ROUNDS"); do
        b+=("$(tps "$clients" "$base")")
        s+=("$(tps "$clients" "$subject")")
    done
    local bm sm
    bm=$(printf '%s\n' "${b[@]}" | median)
    sm=$(printf '%s\n' "${s[@]}" | median)
    row "$label" "$base: $(printf '%.0f' "$bm")/s" "$subject: $(printf '%.0f' "$sm")/s" \
        "$(awk -v b="$bm" -v s="$sm" 'BEGIN { printf "%.2f", s / b }')" "$goal"
}

# milliseconds a statement takes, from the client (commit included)
elapsed_ms() {
    local t0 t1
    t0=$(date +%s%N)
    $PSQL -c "$1" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

say "1. $N appends in one transaction: one entity / $N entities ($ROUNDS rounds)"
spread=() one=()
for r in $(seq "$ROUNDS"); do
    spread+=("$(elapsed_ms "SELECT count(headlessly.events_append('Item.Updated', 'item_' || i,
                              jsonb_build_object('n', i, 'r', $r), tenant => 'spread'))
                              FROM generate_series(1, $N) i")")
    $PSQL -c "SELECT headlessly.events_append('Item.Created', 'hot_$r', '{\"n\": 0}', tenant => 'hot')" >/dev/null
    one+=("$(elapsed_ms "SELECT count(headlessly.events_append('Item.Updated', 'hot_$r',
                           jsonb_build_object('n', i, 'k' || (i % 10), i), tenant => 'hot'))
                           FROM generate_series(1, $N) i")")
    echo "round $r: spread ${spread[-1]} ms, one entity ${one[-1]} ms"
done
sm=$(printf '%s\n' "${spread[@]}" | median)
om=$(printf '%s\n' "${one[@]}" | median)
row "$N appends in one transaction: to one entity / to $N entities" "$sm ms" "$om ms" \
    "$(awk -v b="$sm" -v s="$om" 'BEGIN { printf "%.2f", s / b }')" "≤ 2"
$PSQL -At -c "SELECT 'headlessly.streams after ' || $ROUNDS || ' x $N updates of one entity: '
                     || pg_size_pretty(pg_table_size('headlessly.streams')) || ' heap, '
                     || pg_size_pretty(pg_indexes_size('headlessly.streams')) || ' indexes, '
                     || (SELECT count(*) FROM headlessly.streams) || ' heads'" | tee -a "$WORKDIR/notes.txt"

# as_of of the last hot entity / of the 100-event one, alternately
compare_as_of() {
    local label=$1 target=$2 b=() s=()
    cat > "$scripts/as_of_$target.sql" <<SQL
SELECT headlessly.as_of('$target', tenant => 'hot');
SQL
    for r in $(seq "$ROUNDS"); do
        b+=("$(tps 1 as_of_small)")
        s+=("$(tps 1 "as_of_$target")")
    done
    local bm sm
    bm=$(printf '%s\n' "${b[@]}" | median)
    sm=$(printf '%s\n' "${s[@]}" | median)
    row "$label" "$(awk -v t="$bm" 'BEGIN { printf "%.3f ms", 1000 / t }')" \
        "$(awk -v t="$sm" 'BEGIN { printf "%.3f ms", 1000 / t }')" \
        "$(awk -v b="$bm" -v s="$sm" 'BEGIN { printf "%.2f", b / s }')" "≤ 2"
}

say "2. as_of right after, without VACUUM"
compare_as_of "as_of(present) right after $N appends in one transaction / as_of of a 100-event entity" "hot_$ROUNDS"

# an older snapshot stays open while the next entity gets its N appends
fifo=$WORKDIR/holder.fifo
mkfifo "$fifo"
$PG_BIN/psql -X -q -d postgres < "$fifo" > /dev/null &
holder=$!
exec 7> "$fifo"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM headlessly.streams;" >&7
sleep 1
$PSQL -c "SELECT headlessly.events_append('Item.Created', 'hot_old', '{\"n\": 0}', tenant => 'hot')" >/dev/null
echo "with an older snapshot open: $(elapsed_ms "SELECT count(headlessly.events_append('Item.Updated', 'hot_old',
                jsonb_build_object('n', i, 'k' || (i % 10), i), tenant => 'hot'))
                FROM generate_series(1, $N) i") ms for $N appends to one entity" | tee -a "$WORKDIR/notes.txt"
compare_as_of "the same, while an older snapshot is open / as_of of a 100-event entity" hot_old
echo "ROLLBACK;" >&7
exec 7>&-
wait "$holder"

say "3. appends with a target, 8 clients"
for SYNC in off on; do
    $PSQL -c "ALTER SYSTEM SET synchronous_commit = $SYNC" -c "SELECT pg_reload_conf()" >/dev/null
    compare_tps "append to 1,000 entities of one noun / mdb.write_message to 1,000 streams of one category (8 clients, synchronous_commit $SYNC)" \
        8 write_message append_target "≥ 3"
    compare_tps "append to 1,000 entities / PL/pgSQL store with the same indexes (8 clients, synchronous_commit $SYNC)" \
        8 plpgsql_store append_target "≥ 1.5"
done
$PSQL -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null

say "4. reading one entity's 1,000 events"
compare_tps "events_list(target, max_rows => 1000) / mdb.get_stream_messages (1 client)" 1 \
    get_stream_messages events_list "≥ 1.2"
compare_tps "events_list(target, max_rows => 1000) / SELECT * FROM events WHERE target ORDER BY seq (1 client)" 1 \
    plain_select events_list "—"

say "results"
$PSQL -c "SELECT version()" -At
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; pgbench -M prepared," \
     "${SECONDS_PER_RUN}s x $ROUNDS rounds per side, medians; total $(( $(date +%s) - started ))s"
echo "mdb: this project's SQL re-implementation of Message DB's write_message/get_stream_messages (not Message DB)"
cat "$REPORT"
cat "$WORKDIR/notes.txt"
cat "$WORKDIR/notes.txt" >> "$REPORT"
mkdir -p "$BENCH/results"
cp "$REPORT" "$BENCH/results/stream-latest.md"
