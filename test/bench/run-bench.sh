#!/usr/bin/env bash
# Benchmarks of headlessly_events against baselines measured in the same run,
# on a throwaway cluster.  Each comparison alternates baseline and subject
# for ROUNDS rounds of SECONDS seconds and reports medians and their ratio,
# once with synchronous_commit = off (the extension's own cost) and once on.
# Usage: bash test/bench/run-bench.sh [SECONDS] [ROUNDS] [SECTION...]
# Sections: log (appends, batch), hooks, capture; all by default.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-8}
ROUNDS=${2:-3}
shift 2 2>/dev/null || shift $#
SECTIONS=${*:-log hooks capture}

bench_cluster "autovacuum = on"

say "fixtures"
$PSQL -f "$BENCH/setup.sql" >/dev/null
# the COPY baseline reads the same 1,000 rows from a file the server can read
$PSQL -c "COPY (SELECT e->>'type', e->'data', e->'metadata', e->'metadata'->>'sessionId'
                  FROM bench.batch_payload, jsonb_array_elements(events) e)
          TO STDOUT" > "$WORKDIR/batch.tsv"
[ "$(id -u)" = 0 ] && chown "$CLUSTER_USER" "$WORKDIR/batch.tsv"

scripts=$WORKDIR/scripts
append_scripts "$scripts"
cat > "$scripts/plain_insert.sql" <<'SQL'
INSERT INTO bench.plain_events (type, data, metadata, session_id) VALUES ('page_view', '{"path": "/pricing"}', '{"sessionId": "s1"}', 's1');
SQL
cat > "$scripts/append_no_target.sql" <<'SQL'
SELECT seq FROM headlessly.events_append('page_view', data => '{"path": "/pricing"}', metadata => '{"sessionId": "s1"}');
SQL
cat > "$scripts/one_noun.sql" <<'SQL'
SELECT version FROM headlessly.events_append('Thing.Updated', 'thing_' || :client_id, '{"n": 1}');
SQL
cat > "$scripts/many_nouns.sql" <<'SQL'
SELECT version FROM headlessly.events_append('Noun' || :client_id || '.Updated', 'noun_' || :client_id, '{"n": 1}');
SQL
cat > "$scripts/copy_1000.sql" <<SQL
COPY bench.plain_events (type, data, metadata, session_id) FROM '$WORKDIR/batch.tsv';
SQL
cat > "$scripts/batch_1000.sql" <<'SQL'
SELECT count(*) FROM headlessly.events_append_batch((SELECT events FROM bench.batch_payload));
SQL
cat > "$scripts/insert_plain_table.sql" <<'SQL'
INSERT INTO bench.contacts_plain (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead');
SQL
cat > "$scripts/insert_captured_table.sql" <<'SQL'
INSERT INTO bench.contacts_captured (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead');
SQL
cat > "$scripts/insert_audited_table.sql" <<'SQL'
INSERT INTO bench.contacts_audited (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead');
SQL

# SQL run before each run of a side, to put hooks in place or take them away
declare -A PRE=(
    [append_no_target]="SELECT count(headlessly.unhook(id)) FROM headlessly.hook_registry"
    [append_50_hooks]="SELECT count(headlessly.unhook(id)) FROM headlessly.hook_registry;
        SELECT count(headlessly.hook('NoMatch' || i || '.*', CASE WHEN i % 2 = 0 THEN 'before' ELSE 'after' END, 'bench.noop(jsonb)'))
          FROM generate_series(1, 50) i"
    [append_after_hook]="SELECT count(headlessly.unhook(id)) FROM headlessly.hook_registry;
        SELECT headlessly.hook('page_view', 'after', 'bench.noop(jsonb)')"
)
cp "$scripts/append_no_target.sql" "$scripts/append_50_hooks.sql"
cp "$scripts/append_no_target.sql" "$scripts/append_after_hook.sql"

# tps of one pgbench run
run() {
    local clients=$1 script=$2
    [ -n "${PRE[$script]:-}" ] && $PSQL -c "${PRE[$script]}" >/dev/null
    pgbench_tps "$clients" "$scripts/$script.sql"
}

REPORT=$WORKDIR/report.md
# compare LABEL CLIENTS BASELINE SUBJECT UNIT_FACTOR GOAL
compare() {
    local label=$1 clients=$2 base=$3 subject=$4 factor=$5 goal=$6 bm sm
    read -r bm sm < <(alternate "run $clients $base" "run $clients $subject")
    awk -v l="$label" -v c="$clients" -v sc="$SYNC" -v b="$bm" -v s="$sm" -v f="$factor" -v g="$goal" -v bn="$base" -v sn="$subject" 'BEGIN {
        printf "| %s | %s | %s | %s: %.0f | %s: %.0f | **%.2f** | %s |\n", l, c, sc, bn, b * f, sn, s * f, s / b, g }' | tee -a "$REPORT"
}

{
    echo "| comparison | clients | synchronous_commit | baseline (events/s) | subject (events/s) | ratio | goal |"
    echo "|---|---|---|---|---|---|---|"
} > "$REPORT"

for SYNC in off on; do
    say "synchronous_commit = $SYNC: $ROUNDS rounds of ${SECONDS_PER_RUN}s per side"
    $PSQL -c "ALTER SYSTEM SET synchronous_commit = $SYNC" -c "SELECT pg_reload_conf()" >/dev/null
    case " $SECTIONS " in *" log "*)
    compare "append, no target / plain INSERT" 1 plain_insert append_no_target 1 "≥ 0.85"
    compare "append, no target / plain INSERT" 8 plain_insert append_no_target 1 "≥ 0.85"
    compare "append, 1,000 hot entities / PL/pgSQL store" 8 plpgsql_store append_target 1 "≥ 2"
    compare "8 entities of one noun / 8 nouns" 8 many_nouns one_noun 1 "≥ 0.9"
    compare "batch of 1,000 / COPY of 1,000" 1 copy_1000 batch_1000 1000 "≥ 0.5"
    ;; esac
    case " $SECTIONS " in *" hooks "*)
    compare "append with 50 non-matching hooks / no hooks" 1 append_no_target append_50_hooks 1 "≥ 0.95"
    compare "append with 1 trivial SQL after hook / no hooks" 1 append_no_target append_after_hook 1 "report"
    $PSQL -c "SELECT count(headlessly.unhook(id)) FROM headlessly.hook_registry" >/dev/null
    ;; esac
    case " $SECTIONS " in *" capture "*)
    compare "INSERT into captured table / uncaptured" 1 insert_plain_table insert_captured_table 1 "≥ 0.5"
    compare "INSERT into captured table / PL/pgSQL audit trigger" 1 insert_audited_table insert_captured_table 1 "≥ 2"
    ;; esac
done

say "results"
machine_line
echo "pgbench -M prepared, ${SECONDS_PER_RUN}s x $ROUNDS rounds per side, medians"
cat "$REPORT"
mkdir -p "$BENCH/results"
cp "$REPORT" "$BENCH/results/latest.md"
