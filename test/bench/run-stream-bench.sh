#!/usr/bin/env bash
# Stream benchmarks of headlessly_events on a throwaway cluster, each side of
# a comparison measured alternately in the same run (ROUNDS rounds), with
# medians and their ratio:
#   onetxn  1. N appends to one entity in one transaction / N appends spread
#              over N existing entities in one transaction (time; N = 20,000
#              by default);
#           2. as_of(the present) right after those, without VACUUM / as_of
#              of a 100-event entity (time per call), and the same while an
#              older snapshot is open (nothing can be pruned then);
#   append  3. appends with a target, 8 clients on 1,000 entities of one
#              category / mdb.write_message on 1,000 streams of one category,
#              and / a PL/pgSQL store whose heads table has headlessly.streams'
#              indexes (events/s), with synchronous_commit off and on; for
#              the latter, also the ratio of times net of an empty
#              transaction's (SELECT 1, measured in the same rounds);
#              the store is also compared with both functions called the
#              same way, in the select list and in FROM (bench-lib.sh's
#              append_scripts says why that matters);
#   read    4. events_list of one entity's 1,000 events / mdb.get_stream_messages
#              of the same 1,000 messages (calls/s), each returning the same
#              data: what a Message DB message is (id, stream, type, position
#              in the stream, global position, data, metadata, time), every
#              column of mdb's message against events_list's id, target,
#              type, version, seq, data, metadata, recorded_at.  Also, for
#              what it costs: every column of both (events_list's row has 18
#              columns, three of them jsonb, against mdb's 8); and
#              events_list / a plain SELECT by target.
# mdb is this project's SQL re-implementation of Message DB's write_message
# and get_stream_messages (test/bench/stream-setup.sql), not Message DB.
# Usage: bash test/bench/run-stream-bench.sh [SECONDS] [ROUNDS] [N] [SECTION...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
N=${3:-20000}
shift 3 2>/dev/null || shift $#
SECTIONS=${*:-onetxn append read}
started=$(date +%s)

# autovacuum off: "right after, without VACUUM" is what section 2 measures
bench_cluster "autovacuum = off" "synchronous_commit = off"

stream_fixtures
scripts=$WORKDIR/scripts
append_scripts "$scripts"
cat > "$scripts/events_list.sql" <<'SQL'
SELECT * FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'reader');
SQL
cat > "$scripts/get_stream_messages.sql" <<'SQL'
SELECT * FROM mdb.get_stream_messages('reader-1');
SQL
cat > "$scripts/events_list_message.sql" <<'SQL'
SELECT id, target, type, version, seq, data, metadata, recorded_at
  FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'reader');
SQL
cat > "$scripts/plain_select.sql" <<'SQL'
SELECT * FROM headlessly.events WHERE tenant = 'reader' AND target = 'reader_1' ORDER BY seq LIMIT 1000;
SQL
cat > "$scripts/as_of_small.sql" <<'SQL'
SELECT headlessly.as_of('small', tenant => 'hot');
SQL

REPORT=$WORKDIR/report.md
NOTES=$WORKDIR/notes.txt
: > "$NOTES"
{
    echo "| comparison (A / B) | B | A | ratio | goal |"
    echo "|---|---|---|---|---|"
} > "$REPORT"

# row LABEL B A RATIO GOAL
row() { printf '| %s | %s | %s | **%s** | %s |\n' "$@" | tee -a "$REPORT"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# compare_tps LABEL CLIENTS BASELINE SUBJECT GOAL: ratio of throughputs, subject / baseline
compare_tps() {
    local label=$1 clients=$2 base=$3 subject=$4 goal=$5 bm sm
    read -r bm sm < <(alternate "pgbench_tps $clients $scripts/$base.sql" \
                                "pgbench_tps $clients $scripts/$subject.sql")
    row "$label" "$base: $(printf '%.0f' "$bm")/s" "$subject: $(printf '%.0f' "$sm")/s" \
        "$(ratio "$sm" "$bm")" "$goal"
    echo "$label: $(round_ratios_line)" | tee -a "$NOTES"
}

# compare_tps_net LABEL CLIENTS BASELINE SUBJECT GOAL: compare_tps, with an
# empty transaction (SELECT 1) run in each round too, and a note of the
# ratio of the two sides' times net of it: what every transaction costs
# the client, the kernel and the server before any work, both sides pay.
compare_tps_net() {
    local label=$1 clients=$2 base=$3 subject=$4 goal=$5 b=() s=() e=() bm sm em
    for _ in $(seq "$ROUNDS"); do
        b+=("$(pgbench_tps "$clients" "$scripts/$base.sql")")
        s+=("$(pgbench_tps "$clients" "$scripts/$subject.sql")")
        e+=("$(pgbench_tps "$clients" "$scripts/empty.sql")")
        awk -v b="${b[-1]}" -v s="${s[-1]}" 'BEGIN { printf "%.2f\n", s / b }'
    done > "$WORKDIR/round_ratios"
    bm=$(printf '%s\n' "${b[@]}" | median)
    sm=$(printf '%s\n' "${s[@]}" | median)
    em=$(printf '%s\n' "${e[@]}" | median)
    row "$label" "$base: $(printf '%.0f' "$bm")/s" "$subject: $(printf '%.0f' "$sm")/s" \
        "$(ratio "$sm" "$bm")" "$goal"
    awk -v b="$bm" -v s="$sm" -v e="$em" -v l="$label" 'BEGIN {
        printf "%s: empty transactions %.0f/s; net of one, %s takes %.1f us and %s %.1f us per transaction: ratio %.2f\n",
               l, e, "the subject", 1e6 / s - 1e6 / e, "the baseline", 1e6 / b - 1e6 / e,
               (1e6 / b - 1e6 / e) / (1e6 / s - 1e6 / e) }' | tee -a "$NOTES"
    echo "$label: $(round_ratios_line)" | tee -a "$NOTES"
}

# elapsed_ms SQL: milliseconds a statement takes, from the client (commit included)
elapsed_ms() {
    local t0 t1
    t0=$(date +%s%N)
    $PSQL -c "$1" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

# as_of of TARGET / of the 100-event entity: ratio of times per call
compare_as_of() {
    local label=$1 target=$2 bm sm
    cat > "$scripts/as_of_$target.sql" <<SQL
SELECT headlessly.as_of('$target', tenant => 'hot');
SQL
    read -r bm sm < <(alternate "pgbench_tps 1 $scripts/as_of_small.sql" \
                                "pgbench_tps 1 $scripts/as_of_$target.sql")
    row "$label" "$(awk -v t="$bm" 'BEGIN { printf "%.3f ms", 1000 / t }')" \
        "$(awk -v t="$sm" 'BEGIN { printf "%.3f ms", 1000 / t }')" "$(ratio "$bm" "$sm")" "≤ 2"
}

APPEND_ONE="SELECT count(headlessly.events_append('Item.Updated', '%s',
                jsonb_build_object('n', i, 'k' || (i %% 10), i), tenant => 'hot'))
              FROM generate_series(1, $N) i"

case " $SECTIONS " in *" onetxn "*)
say "1. $N appends in one transaction: to one entity / to $N entities ($ROUNDS rounds)"
spread=() one=()
for r in $(seq "$ROUNDS"); do
    spread+=("$(elapsed_ms "SELECT count(headlessly.events_append('Item.Updated', 'item_' || i,
                              jsonb_build_object('n', i, 'r', $r), tenant => 'spread'))
                              FROM generate_series(1, $N) i")")
    $PSQL -c "SELECT headlessly.events_append('Item.Created', 'hot_$r', '{\"n\": 0}', tenant => 'hot')" >/dev/null
    # shellcheck disable=SC2059
    one+=("$(elapsed_ms "$(printf "$APPEND_ONE" "hot_$r")")")
    echo "round $r: to $N entities ${spread[-1]} ms, to one entity ${one[-1]} ms"
done
sm=$(printf '%s\n' "${spread[@]}" | median)
om=$(printf '%s\n' "${one[@]}" | median)
row "$N appends in one transaction: to one entity / to $N entities" "$sm ms" "$om ms" \
    "$(ratio "$om" "$sm")" "≤ 2"
$PSQL -At -c "SELECT 'headlessly.streams after $ROUNDS x $N appends to one entity and to $N entities: '
                     || pg_size_pretty(pg_table_size('headlessly.streams')) || ' heap, '
                     || pg_size_pretty(pg_indexes_size('headlessly.streams')) || ' indexes, '
                     || (SELECT count(*) FROM headlessly.streams) || ' heads'" | tee -a "$NOTES"

# the same number of appends to one entity, each in its own transaction:
# what the heads table grows by (HOT updates are pruned as the page is used)
size_of_streams() { $PSQL -At -c "SELECT pg_table_size('headlessly.streams') + pg_indexes_size('headlessly.streams')"; }
$PSQL -c "SELECT headlessly.events_append('Item.Created', 'hot_each', '{\"n\": 0}', tenant => 'hot')" >/dev/null
cat > "$scripts/append_each.sql" <<'SQL'
SELECT version FROM headlessly.events_append('Item.Updated', 'hot_each', jsonb_build_object('n', random()), tenant => 'hot');
SQL
before=$(size_of_streams)
"$PG_BIN/pgbench" -n -M prepared -c 1 -t "$N" -f "$scripts/append_each.sql" postgres >/dev/null 2>&1
echo "$N appends to one entity, each in its own transaction: headlessly.streams and its indexes grew by" \
     "$(( ($(size_of_streams) - before) / 1024 )) kB" | tee -a "$NOTES"

say "2. as_of right after, without VACUUM"
compare_as_of "as_of(present) right after $N appends to it in one transaction / as_of of a 100-event entity" "hot_$ROUNDS"

# an older snapshot stays open while the next entity gets its N appends
fifo=$WORKDIR/holder.fifo
mkfifo "$fifo"
$PG_BIN/psql -X -q -d postgres < "$fifo" > /dev/null &
holder=$!
exec 7> "$fifo"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM headlessly.streams;" >&7
sleep 1
$PSQL -c "SELECT headlessly.events_append('Item.Created', 'hot_old', '{\"n\": 0}', tenant => 'hot')" >/dev/null
# shellcheck disable=SC2059
echo "with an older snapshot open: $(elapsed_ms "$(printf "$APPEND_ONE" hot_old)") ms for $N appends to one entity" |
    tee -a "$NOTES"
compare_as_of "the same while an older snapshot is open / as_of of a 100-event entity" hot_old
echo "ROLLBACK;" >&7
exec 7>&-
wait "$holder"
;; esac

case " $SECTIONS " in *" append "*)
say "3. appends with a target, 8 clients"
for SYNC in off on; do
    $PSQL -c "ALTER SYSTEM SET synchronous_commit = $SYNC" -c "SELECT pg_reload_conf()" >/dev/null
    compare_tps "append to 1,000 entities of one noun / mdb.write_message to 1,000 streams of one category (8 clients, synchronous_commit $SYNC)" \
        8 write_message append_target "≥ 3"
    compare_tps_net "append to 1,000 entities in FROM / PL/pgSQL store with the same indexes in the select list (8 clients, synchronous_commit $SYNC)" \
        8 plpgsql_store append_target "≥ 1.5"
    compare_tps "the same, both in the select list (8 clients, synchronous_commit $SYNC)" \
        8 plpgsql_store append_target_call "≥ 1.5"
    compare_tps "the same, both in FROM (8 clients, synchronous_commit $SYNC)" \
        8 plpgsql_store_from append_target "≥ 1.5"
done
$PSQL -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
;; esac

case " $SECTIONS " in *" read "*)
say "4. reading one entity's 1,000 events"
compare_tps "events_list(target, max_rows => 1000): id, target, type, version, seq, data, metadata, recorded_at / mdb.get_stream_messages, every column (the same data; 1 client)" 1 \
    get_stream_messages events_list_message "≥ 1.2"
compare_tps "events_list(target, max_rows => 1000), every column (18) / mdb.get_stream_messages, every column (8) (1 client)" 1 \
    get_stream_messages events_list "—"
compare_tps "events_list(target, max_rows => 1000) / SELECT * FROM events WHERE target ORDER BY seq (1 client)" 1 \
    plain_select events_list "—"
;; esac

say "results"
machine_line
echo "pgbench -M prepared, ${SECONDS_PER_RUN}s x $ROUNDS rounds per side, medians; total $(( $(date +%s) - started ))s"
echo "mdb: this project's SQL re-implementation of Message DB's write_message/get_stream_messages (not Message DB)"
cat "$REPORT" "$NOTES"
cat "$NOTES" >> "$REPORT"
mkdir -p "$BENCH/results"
cp "$REPORT" "$BENCH/results/stream-latest.md"
