#!/usr/bin/env bash
# Time-travel benchmarks of headlessly_events on a throwaway cluster: each
# comparison measures both sides in the same run, alternately, for ROUNDS
# rounds of SECONDS seconds (pgbench -f), and reports medians and the ratio
# of the two sides' time per call.
#   1. as_of on an entity with 100,000 events / one with 100
#   2. a naive PL/pgSQL replay / as_of, on an entity with 10,000 events
#   3. entities_as_of(noun, at, filter) over 100,000 entities / 1,000,000
#      events, now and at two points in the past / SELECT ... FROM
#      headlessly.entities WHERE state @> filter (the present)
#   4. that present query without / with a GIN index on state (which 0.2
#      dropped so that head updates are HOT), broad and selective filters
# and the time check_state() and rebuild_state() take on that tenant.
# Takes about 4 to 6 minutes on 2 cores, most of it appending the events.
# Usage: bash test/bench/run-time-travel-bench.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-3}
ROUNDS=${2:-3}
started=$(date +%s)

bench_cluster "synchronous_commit = off" "work_mem = 16MB"

say "fixtures: streams of 100, 10,000 and 100,000 events; 1,000,000 events on 100,000 entities"
$PSQL -f "$BENCH/time-travel-setup.sql" >/dev/null
$PSQL -c "CALL bench_tt.make_stream('small', 100, 1)"
$PSQL -c "CALL bench_tt.make_stream('mid', 10000, 37)"
$PSQL -c "CALL bench_tt.make_stream('big', 100000, 37)"
# the 1,000,000 events through the log's trigger, in two sessions at once
$PSQL -c "CALL bench_tt.make_many(0, 2)" &
$PSQL -c "CALL bench_tt.make_many(1, 2)" &
wait
$PSQL -c "INSERT INTO bench_tt.instants
          SELECT target, row_number() OVER (PARTITION BY target ORDER BY at), at
            FROM (SELECT DISTINCT target, recorded_at AS at FROM headlessly.events
                   WHERE tenant = 'bench_tt') d"
$PSQL -c "VACUUM ANALYZE"
generated=$(date +%s)

# points in time for entities_as_of: before the last 2 and the last 20 of
# the 1,000,000-event tenant's 200 transactions (10,000 and 100,000 events)
POINTS="2 20"
declare -A AT CHANGED AFTER
for p in $POINTS; do
    AT[$p]=$($PSQL -At -c "SELECT at FROM (SELECT DISTINCT recorded_at AS at FROM headlessly.events
                                            WHERE tenant = 'bench_many') d
                           ORDER BY at DESC OFFSET $p LIMIT 1")
    AFTER[$p]=$($PSQL -At -c "SELECT count(*) FROM headlessly.events
                              WHERE tenant = 'bench_many' AND recorded_at > '${AT[$p]}'")
    CHANGED[$p]=$($PSQL -At -c "SELECT count(*) FROM headlessly.streams
                                WHERE tenant = 'bench_many' AND last_recorded_at > '${AT[$p]}'")
done
FILTER='{"stage": "won"}'

scripts=$WORKDIR/scripts
mkdir -p "$scripts"
for t in small mid big; do
    n=$($PSQL -At -c "SELECT count(*) FROM bench_tt.instants WHERE target = '$t'")
    cat > "$scripts/as_of_$t.sql" <<SQL
\set i random(1, $n)
SELECT headlessly.as_of('$t', (SELECT at FROM bench_tt.instants WHERE target = '$t' AND i = :i), 'bench_tt');
SQL
    cat > "$scripts/naive_$t.sql" <<SQL
\set i random(1, $n)
SELECT bench_tt.naive_as_of('$t', (SELECT at FROM bench_tt.instants WHERE target = '$t' AND i = :i), 'bench_tt');
SQL
done
cat > "$scripts/entities_present.sql" <<SQL
SELECT count(*) FROM (SELECT target, version, state, created_at, updated_at FROM headlessly.entities
                       WHERE tenant = 'bench_many' AND noun = 'Deal' AND state @> '$FILTER') x;
SQL
cat > "$scripts/entities_as_of_now.sql" <<SQL
SELECT count(*) FROM headlessly.entities_as_of('Deal', NULL, '$FILTER', 'bench_many');
SQL
for p in $POINTS; do
    cat > "$scripts/entities_as_of_$p.sql" <<SQL
SELECT count(*) FROM headlessly.entities_as_of('Deal', '${AT[$p]}', '$FILTER', 'bench_many');
SQL
done

# milliseconds per call of one pgbench run
run() {
    pgbench_tps 1 "$scripts/$1.sql" | awk '{ printf "%.4f\n", 1000 / $1 }'
}

REPORT=$WORKDIR/report.md
# compare LABEL BASELINE SUBJECT GOAL: ratio = subject time / baseline time
compare() {
    local label=$1 base=$2 subject=$3 goal=$4 bm sm
    read -r bm sm < <(alternate "run $base" "run $subject")
    awk -v l="$label" -v b="$bm" -v s="$sm" -v g="$goal" -v bn="$base" -v sn="$subject" 'BEGIN {
        printf "| %s | %s: %.3f ms | %s: %.3f ms | **%.2f** | %s |\n", l, bn, b, sn, s, s / b, g }' | tee -a "$REPORT"
}

{
    echo "| comparison (A / B) | B: time per call | A: time per call | ratio A / B | goal |"
    echo "|---|---|---|---|---|"
} > "$REPORT"

say "measuring: $ROUNDS rounds of ${SECONDS_PER_RUN}s per side"
compare "as_of at a random instant: 100,000 events / 100 events" as_of_small as_of_big "≤ 2"
compare "naive PL/pgSQL replay / as_of, 10,000 events (speed-up of as_of)" as_of_mid naive_mid "≥ 50"
compare "entities_as_of(now) / entities WHERE state @> filter" entities_present entities_as_of_now "—"
for p in $POINTS; do
    compare "entities_as_of(at = before the last ${AFTER[$p]} events; ${CHANGED[$p]} of 100,000 entities changed since) / entities WHERE state @> filter" \
        entities_present "entities_as_of_$p" "≤ 10"
done

# 0.2 dropped the GIN index on state so that head updates are HOT: what the
# present costs with and without it, in the same run (the index is made
# and dropped between the rounds), for a broad and a selective filter
SELECTIVE='{"owner": "u7", "amount": 42}'
cat > "$scripts/entities_selective.sql" <<SQL
SELECT count(*) FROM (SELECT target, version, state, created_at, updated_at FROM headlessly.entities
                       WHERE tenant = 'bench_many' AND noun = 'Deal' AND state @> '$SELECTIVE') x;
SQL
with_gin() {
    $PSQL -c "CREATE INDEX bench_state_gin ON headlessly.streams USING gin (state jsonb_path_ops)
                WHERE state IS NOT NULL" -c "ANALYZE headlessly.streams" >/dev/null
}
without_gin() { $PSQL -c "DROP INDEX IF EXISTS headlessly.bench_state_gin" >/dev/null; }
compare_gin() {
    local label=$1 script=$2 bm sm
    read -r bm sm < <(alternate "with_gin; run $script" "without_gin; run $script")
    awk -v l="$label" -v b="$bm" -v s="$sm" 'BEGIN {
        printf "| %s | with GIN: %.3f ms | without: %.3f ms | **%.2f** | report |\n", l, b, s, s / b }' | tee -a "$REPORT"
}
say "entities WHERE state @> filter with and without a GIN index on state"
compare_gin "entities WHERE state @> '$FILTER' (about 25% of 100,000 deals): without / with a GIN index on state" entities_present
compare_gin "entities WHERE state @> '$SELECTIVE' (about 1 in 100,000): without / with a GIN index on state" entities_selective

say "check_state() and rebuild_state() of the 1,000,000-event tenant"
t0=$(date +%s%N)
drift=$($PSQL -At -c "SELECT count(*) FROM headlessly.check_state('bench_many')")
t1=$(date +%s%N)
$PSQL -c "SELECT * FROM headlessly.rebuild_state('bench_many')"
t2=$(date +%s%N)
echo "check_state('bench_many'): $(( (t1 - t0) / 1000000 )) ms, $drift differences; rebuild_state('bench_many'): $(( (t2 - t1) / 1000000 )) ms" | tee "$WORKDIR/admin.txt"

say "plans of events_list's filters on the 1,000,000-event tenant"
PLANS=$WORKDIR/plans.txt
for where in "e.target = 'deal_42'" "e.type = ANY ('{Deal.Created}')" "e.type = ANY ('{Deal.Deleted,Deal.Won}')" \
             "e.actor = 'agent_7'" "e.actor = 'agent_none'" \
             "e.recorded_at > '${AT[2]}' AND e.recorded_at < '${AT[2]}'::timestamptz + interval '1 second'"; do
    echo "-- events_list filter: $where"
    $PSQL -c "EXPLAIN (COSTS OFF) SELECT e.* FROM headlessly.events e
              WHERE e.tenant = 'bench_many' AND $where ORDER BY e.seq LIMIT 100"
done > "$PLANS"
echo "-- headlessly.entities WHERE state @> filter" >> "$PLANS"
$PSQL -c "EXPLAIN (COSTS OFF) SELECT target FROM headlessly.entities WHERE state @> '$FILTER'" >> "$PLANS"
cat "$PLANS"

say "results"
machine_line
echo "pgbench -M prepared, 1 client, ${SECONDS_PER_RUN}s x $ROUNDS rounds per side, medians;" \
     "generation $((generated - started))s, total $(( $(date +%s) - started ))s"
cat "$REPORT"
cat "$WORKDIR/admin.txt"
cat "$WORKDIR/admin.txt" >> "$REPORT"
mkdir -p "$BENCH/results"
cp "$REPORT" "$BENCH/results/time-travel-latest.md"
cp "$PLANS" "$BENCH/results/time-travel-plans.txt"
