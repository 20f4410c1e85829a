#!/usr/bin/env bash
# A held target's backlog (issue 9): one target with N events (default
# 30,001) and one event of another target; the consumer reads the first
# event and nacks it.  Prints the time of the nack, of each of READS
# read(100) after it (rows returned) with how many rows of headlessly.events
# it went through (pg_stat_xact_user_tables: a count, not a timing), and of
# a fresh subscription's read(100).
# Usage: bash test/bench/run-hold-bench.sh [N] [READS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

N=${1:-30001}
READS=${2:-3}

bench_cluster
$PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null
machine_line

# ms of one statement, run alone in a session ("ms rows")
timed() {
    $PSQL -At -c "SET headlessly.retry_base_delay = '1h'" -c "\\timing on" -c "$1" |
        awk '/^Time:/ { ms = $2 } !/^Time:/ && NF { rows = $0 } END { print ms, rows }'
}

$PSQL -c "SELECT headlessly.subscribe('p1', 'Bulk.*')" >/dev/null
$PSQL -c "SELECT count(headlessly.events_append(CASE WHEN i = 1 THEN 'Bulk.Created' ELSE 'Bulk.Updated' END,
                                                'bulk_a', jsonb_build_object('n', i)))
            FROM generate_series(1, $N) i" >/dev/null
$PSQL -c "SELECT headlessly.events_append('Bulk.Created', 'bulk_b', '{}')" >/dev/null
$PSQL -c "SELECT count(*) FROM headlessly.read('p1', 1)" >/dev/null
echo "nack (ms, -): $(timed "SELECT headlessly.nack('p1', (SELECT seq FROM headlessly.events WHERE target = 'bulk_a' AND version = 1), 'down')")"
# the read itself is counted: the first one after the nack is the one that
# used to go through the held backlog
for r in $(seq "$READS"); do
    echo "read('p1', 100) #$r (ms, rows returned, rows of events it went through): $($PSQL -At \
        -c "SELECT pg_stat_force_next_flush()" -c "BEGIN" -c "\\timing on" \
        -c "SELECT 'rows=' || count(*) FROM headlessly.read('p1', 100)" -c "\\timing off" \
        -c "SELECT 'read=' || (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) FROM pg_stat_xact_user_tables WHERE relid = 'headlessly.events'::regclass" \
        -c "COMMIT" |
        awk -F= '/^Time:/ { split($0, t, " "); ms = t[2] } /^rows=/ { rows = $2 } /^read=/ { read = $2 } END { print ms, rows, read }')"
done
echo "deliveries rows: $($PSQL -At -c "SELECT count(*) FROM headlessly.deliveries WHERE subscription = 'p1'")"
$PSQL -c "SELECT headlessly.subscribe('fresh', 'Bulk.*', start_at => 'beginning')" >/dev/null
echo "fresh read(100) (ms, rows): $(timed "SELECT count(*) FROM headlessly.read('fresh', 100)")"
