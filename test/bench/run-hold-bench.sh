#!/usr/bin/env bash
# A held target's backlog (issue 9): one target with N events (default
# 30,001) and one event of another target; the consumer reads the first
# event and nacks it.  Prints the time of the nack, of each of READS
# read(100) after it (rows returned), of a fresh subscription's read(100),
# and how many rows of headlessly.events each read after the nack went
# through (pg_stat_xact_user_tables: a count, not a timing).
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
for r in $(seq "$READS"); do
    echo "read('p1', 100) #$r (ms, rows returned): $(timed "SELECT count(*) FROM headlessly.read('p1', 100)")"
    echo "  rows of events it went through: $($PSQL -At -c "SELECT pg_stat_force_next_flush()" \
        -c "BEGIN" -c "SELECT count(*) FROM headlessly.read('p1', 100)" \
        -c "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE relid = 'headlessly.events'::regclass" \
        -c "COMMIT" | tail -1)"
done
echo "deliveries rows: $($PSQL -At -c "SELECT count(*) FROM headlessly.deliveries WHERE subscription = 'p1'")"
$PSQL -c "SELECT headlessly.subscribe('fresh', 'Bulk.*', start_at => 'beginning')" >/dev/null
echo "fresh read(100) (ms, rows): $(timed "SELECT count(*) FROM headlessly.read('fresh', 100)")"
