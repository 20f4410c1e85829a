#!/usr/bin/env bash
# What tenant isolation costs, measured alternately in one run (ROUNDS
# rounds, medians and their ratio), on two databases of one cluster with the
# same data: "plain" (no tenant role: no row security, appends take the
# direct path) and "tenanted" (tenant roles exist: row security on every
# tenant table, and the appending role is a tenant role, so every row goes
# through the policy predicate and every append through the tenant check).
#   append  1. events_append with a target, 1 client (events/s);
#   read    2. events_list of one entity's 1,000 events (calls/s);
#           3. SELECT of one tenant's 1,000 events straight from the log
#              (calls/s): the predicate once per row.
# Usage: bash test/bench/run-tenancy-bench.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}

bench_cluster "synchronous_commit = off"

say "fixtures"
$PSQL <<'SQL' >/dev/null
CREATE ROLE bench_app LOGIN;
CREATE DATABASE plain;
CREATE DATABASE tenanted;
SQL
for db in plain tenanted; do
    $PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL' >/dev/null
CREATE EXTENSION headlessly_events;
GRANT USAGE ON SCHEMA headlessly TO bench_app;
GRANT SELECT, INSERT ON headlessly.events TO bench_app;
GRANT SELECT ON headlessly.streams, headlessly.snapshots, headlessly.entities TO bench_app;
SELECT headlessly.events_append('Account.Created', 'acct_' || i, '{}', tenant => 'bench')
  FROM generate_series(1, 1000) i;
SELECT headlessly.events_append('Reader.Created', 'reader_1', '{}', tenant => 'bench');
SELECT headlessly.events_append('Reader.Updated', 'reader_1', jsonb_build_object('n', i), tenant => 'bench')
  FROM generate_series(2, 1000) i;
-- other tenants' rows, which the tenant role's reads must skip
SELECT headlessly.events_append('page_view', tenant => 'other_' || (i % 10))
  FROM generate_series(1, 20000) i;
VACUUM ANALYZE;
SQL
done
$PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d tenanted \
    -c "SELECT headlessly.grant_tenant('bench_app', 'bench')" >/dev/null

scripts=$WORKDIR/scripts
mkdir -p "$scripts"
cat > "$scripts/append.sql" <<'SQL'
\set a random(1, 1000)
SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int), tenant => 'bench');
SQL
cat > "$scripts/events_list.sql" <<'SQL'
SELECT * FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'bench');
SQL
cat > "$scripts/select.sql" <<'SQL'
SELECT * FROM headlessly.events WHERE tenant = 'bench' AND target = 'reader_1' ORDER BY seq LIMIT 1000;
SQL

tps() {
    "$PG_BIN/pgbench" -n -M prepared -c 1 -j 1 -T "$SECONDS_PER_RUN" -U bench_app \
        -f "$scripts/$2.sql" "$1" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

report() {
    local what=$1 pair=$2
    set -- $pair
    printf '%-40s plain %10.1f   tenanted %10.1f   tenanted/plain %.3f\n' "$what" "$1" "$2" \
        "$(echo "$2 / $1" | bc -l)"
}

say "measuring: $ROUNDS rounds of $SECONDS_PER_RUN s each"
machine_line
report "append (events/s)" "$(alternate 'tps plain append' 'tps tenanted append')"
report "events_list 1,000 events (calls/s)" "$(alternate 'tps plain events_list' 'tps tenanted events_list')"
report "SELECT 1,000 events (calls/s)" "$(alternate 'tps plain select' 'tps tenanted select')"
