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
# Usage: bash test/bench/run-stream-callgrind.sh [N1 N2 [A1 A2 [CASE...]]]
# (CASE: the scripts below, e.g. append_target plpgsql_store; all if none).
# The _x10 cases append ten times per transaction: run them with A1 and A2
# a tenth of the others' (e.g. 100 150) for as many appends, and divide.
# CALLGRIND_KEEP=DIR keeps each case's callgrind files there as CASE.N, for
# callgrind_annotate.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/callgrind-lib.sh"

N1=${1:-20}
N2=${2:-120}
A1=${3:-2000}
A2=${4:-3000}
shift 4 2>/dev/null || shift $#
ONLY=" $* "
KEEP_DIR=${CALLGRIND_KEEP:-}
callgrind_cluster "$TOP/test/bench/setup.sql" "$TOP/test/bench/stream-setup.sql"
trap cleanup EXIT

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
# the same two called the same way: both in the select list, both in FROM
write append_target_call <<'SQL'
\set a random(1, 1000)
SELECT (headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int))).version;
SQL
write plpgsql_store_from <<'SQL'
\set a random(1, 1000)
SELECT version FROM bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int)) AS version;
SQL
# write_ten NAME LINE: LINE ten times in one transaction, its :a drawn anew each time
write_ten() {
    {
        echo "BEGIN;"
        for i in 0 1 2 3 4 5 6 7 8 9; do
            echo "\\set a$i random(1, 1000)"
            printf '%s\n' "${2//:a/:a$i}"
        done
        echo "COMMIT;"
    } | write "$1"
}
write_ten append_target_x10 \
    "SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));"
write_ten plpgsql_store_x10 \
    "SELECT bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));"
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
         "events_append with a target, in the select list|append_target_call|$A1 $A2" \
         "PL/pgSQL store, in FROM|plpgsql_store_from|$A1 $A2" \
         "ten events_append with a target in one transaction|append_target_x10|$A1 $A2" \
         "ten PL/pgSQL store appends in one transaction|plpgsql_store_x10|$A1 $A2" \
         "mdb.write_message|write_message|$A1 $A2" \
         "events_list, a Message DB message's columns, 1,000 events|events_list_message|$N1 $N2" \
         "events_list, every column, 1,000 events|events_list|$N1 $N2" \
         "mdb.get_stream_messages, every column, 1,000 messages|get_stream_messages|$N1 $N2"; do
    IFS='|' read -r name script range <<<"$c"
    [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $script "* ]] || continue
    [ -z "$KEEP_DIR" ] || { mkdir -p "$KEEP_DIR"; CALLGRIND_KEEP=$KEEP_DIR/$script; }
    # shellcheck disable=SC2086
    echo "| $name (transactions ${range/ / to }) | $(callgrind_per_transaction "$scripts/$script.sql" $range) |"
done

as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
