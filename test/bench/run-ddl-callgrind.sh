#!/usr/bin/env bash
# What the DDL guard costs, in instructions counted by valgrind's callgrind:
# per DDL statement in a database with the extension (its event trigger and
# ProcessUtility hook) against one without, and per append with and without
# the row-level guard on the log.  The server runs under valgrind (the
# single-user mode of run-callgrind.sh fires no event triggers); each case
# runs in one session N1 and N2 times, and (I(N2) - I(N1)) / (N2 - N1) is the
# figure, so connecting and loading the library are left out.
# Usage: bash test/bench/run-ddl-callgrind.sh
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/callgrind-lib.sh"

N1=50
N2=250
callgrind_cluster

psql_as() { as_cluster_user "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
for db in with_ext without_ext no_row_guard; do psql_as -d postgres -c "CREATE DATABASE $db"; done
psql_as -d with_ext -c "CREATE EXTENSION headlessly_events" \
    -c "CREATE TABLE ledger (id int, amount int)" -c "SELECT headlessly.make_append_only('ledger')" >/dev/null
psql_as -d without_ext -c "CREATE TABLE ledger (id int, amount int)"
# the log without its row-level guard: removed in a session that never loads
# the library, where only the event trigger guards (the documented hole)
psql_as -d no_row_guard -c "CREATE EXTENSION headlessly_events"
psql_as -d no_row_guard -c "ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE" \
    -c "DROP TRIGGER headlessly_append_only_row ON headlessly.events" \
    -c "ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS"

# instructions of one session that runs a statement n times
count() {
    local db=$1 n=$2 stmt=$3 script=$WORKDIR/cg/script.sql pid file
    { echo '\o /dev/null'; for _ in $(seq "$n"); do echo "$stmt"; done; echo '\o'; echo 'SELECT pg_backend_pid()'; } |
        as_cluster_user tee "$script" >/dev/null
    pid=$(psql_as -At -d "$db" -f "$script" | tail -n 1)
    file=$WORKDIR/cg/callgrind.$pid
    for _ in $(seq 120); do grep -q "^summary:" "$file" 2>/dev/null && break; sleep 1; done
    sed -n 's/^summary: //p' "$file"
}

per_statement() {
    local low high
    low=$(count "$1" $N1 "$2")
    high=$(count "$1" $N2 "$2")
    echo $(( (high - low) / (N2 - N1) ))
}

echo "| statement | database | instructions per statement |"
echo "|---|---|---|"
while IFS='|' read -r name stmt dbs; do
    for db in $dbs; do
        echo "| $name | $db | $(per_statement "$db" "$stmt") |"
    done
done <<'EOF'
ALTER TABLE ... SET STATISTICS|ALTER TABLE ledger ALTER COLUMN amount SET STATISTICS 100;|with_ext without_ext
CREATE OR REPLACE FUNCTION|CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a';|with_ext without_ext
CREATE TABLE + DROP TABLE|CREATE TABLE scratch (x int); DROP TABLE scratch;|with_ext without_ext
events_append|SELECT headlessly.events_append('page_view', data => '{"x": 1}');|with_ext no_row_guard
EOF

as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
