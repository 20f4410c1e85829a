#!/usr/bin/env bash
# events_list(target, max_rows => 10) on a 100,000-event stream: shared
# buffers and execution time of one call (EXPLAIN ANALYZE BUFFERS, in one
# session, medians of ROUNDS calls), next to reading the whole stream
# (max_rows => NULL), which is what a limited call cost before it stopped
# after max_rows.  Two logs: "solo", the stream first in the log (the scan
# of the log by seq that proves the order is the shorter), and "mixed", the
# stream after 150,000 other events and interleaved 1:1 with others (the
# rest of the stream is the shorter: it is read, as before).
# Usage: bash test/bench/run-events-list-limit.sh [ROUNDS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"
ROUNDS=${1:-5}

bench_cluster
say "fixtures"
$PSQL <<'SQL'
CREATE EXTENSION headlessly_events;
INSERT INTO headlessly.events (tenant, type, target, data)
SELECT 'solo', 'x_touched', 'x', jsonb_build_object('n', i) FROM generate_series(1, 100000) i;
INSERT INTO headlessly.events (tenant, type, target, data)
SELECT 'mixed', 'y_touched', 'y' || (i % 1000), jsonb_build_object('n', i) FROM generate_series(1, 50000) i;
INSERT INTO headlessly.events (tenant, type, target, data)
SELECT 'mixed', 'x_touched', CASE WHEN i % 2 = 0 THEN 'x' ELSE 'y' || (i % 1000) END, jsonb_build_object('n', i)
  FROM generate_series(1, 200000) i;
VACUUM ANALYZE headlessly.events;
SQL
machine_line

# measure TENANT MAX_ROWS: "buffers median_ms" over ROUNDS calls after a warm-up call
measure() {
    for i in $(seq 0 "$ROUNDS"); do
        echo "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON, FORMAT JSON)
              SELECT * FROM headlessly.events_list(target => 'x', max_rows => $2, tenant => '$1');"
    done | $PSQL -At | python3 -c '
import json, statistics, sys
text, dec, plans = sys.stdin.read(), json.JSONDecoder(), []
while text.strip():
    text = text.lstrip()
    obj, end = dec.raw_decode(text)
    plans.append(obj[0])
    text = text[end:]
plans = plans[1:]
hits = {p["Plan"]["Shared Hit Blocks"] + p["Plan"]["Shared Read Blocks"] for p in plans}
print(max(hits), round(statistics.median(p["Execution Time"] for p in plans), 3))'
}

for t in solo mixed; do
    read -r lb lt <<<"$(measure "$t" 10)"
    read -r wb wt <<<"$(measure "$t" NULL)"
    echo "$t: max_rows 10: $lb buffers, $lt ms; whole stream: $wb buffers, $wt ms"
done
