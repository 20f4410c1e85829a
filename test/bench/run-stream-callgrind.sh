#!/usr/bin/env bash
# Instructions per transaction of the stream benchmarks (run-stream-bench.sh),
# counted by valgrind's callgrind in the server's backend: repeatable
# whatever else the machine runs, where the pgbench ratios are not.  The
# server runs under valgrind; each case is one pgbench client (-M prepared,
# each transaction one statement, as in run-stream-bench.sh) run for N1 and
# N2 transactions, and (I(N2) - I(N1)) / (N2 - N1) is the figure, so that
# connecting and loading the library are left out.  What the client and the
# kernel spend is not counted: an empty transaction (SELECT 1) shows what
# every transaction costs the server before any work.
# Usage: bash test/bench/run-stream-callgrind.sh [N1 N2 [A1 A2]]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

N1=${1:-20}
N2=${2:-120}
A1=${3:-2000}
A2=${4:-3000}
callgrind_cluster "synchronous_commit = off"

# fixtures without valgrind, then the server under it
PSQL="as_cluster_user $PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d postgres"
$PSQL -f "$TOP/test/bench/setup.sql" >/dev/null 2>&1
$PSQL -f "$TOP/test/bench/stream-setup.sql" >/dev/null 2>&1
$PSQL -c "VACUUM ANALYZE" >/dev/null
callgrind_server

# instructions of the backend of pgbench's client in one run of n
# transactions: pgbench also opens a short connection of its own, which
# runs no statement; callgrind writes a backend's file when it exits
count() {
    local file=$1 n=$2 before new client=
    before=$(ls "$WORKDIR"/cg/callgrind.* | sort)
    as_cluster_user "$PG_BIN/pgbench" -n -M prepared -c 1 -t "$n" -f "$file" postgres >/dev/null 2>&1 ||
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
    rm -f $new
}

# per_transaction FILE FROM TO
per_transaction() {
    local low high
    low=$(count "$1" "$2")
    high=$(count "$1" "$3")
    echo $(( (high - low) / ($3 - $2) ))
}

scripts=$WORKDIR/scripts
as_cluster_user mkdir "$scripts"
write() { as_cluster_user tee "$scripts/$1.sql" >/dev/null; }
write empty <<'SQL'
SELECT 1;
SQL
write append_target <<'SQL'
\set a random(1, 1000)
SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
write plpgsql_store <<'SQL'
\set a random(1, 1000)
SELECT bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
write write_message <<'SQL'
\set a random(1, 1000)
SELECT mdb.write_message(gen_random_uuid()::text, 'account-' || :a, 'Updated', jsonb_build_object('n', :a::int));
SQL
write events_list_message <<'SQL'
SELECT id, target, type, version, seq, data, metadata, recorded_at
  FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'reader');
SQL
write events_list <<'SQL'
SELECT * FROM headlessly.events_list(target => 'reader_1', max_rows => 1000, tenant => 'reader');
SQL
write get_stream_messages <<'SQL'
SELECT * FROM mdb.get_stream_messages('reader-1');
SQL

echo "| transaction (pgbench -M prepared, one statement) | instructions per transaction |"
echo "|---|---|"
for c in "empty transaction (SELECT 1)|empty|$N1 $N2" \
         "events_append with a target (1,000 entities)|append_target|$A1 $A2" \
         "PL/pgSQL store with the same indexes|plpgsql_store|$A1 $A2" \
         "mdb.write_message|write_message|$A1 $A2" \
         "events_list, a Message DB message's columns, 1,000 events|events_list_message|$N1 $N2" \
         "events_list, every column, 1,000 events|events_list|$N1 $N2" \
         "mdb.get_stream_messages, every column, 1,000 messages|get_stream_messages|$N1 $N2"; do
    IFS='|' read -r name script range <<<"$c"
    # shellcheck disable=SC2086
    echo "| $name (transactions ${range/ / to }) | $(per_transaction "$scripts/$script.sql" $range) |"
done

as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
