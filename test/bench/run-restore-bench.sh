#!/usr/bin/env bash
# What restoring the log costs: pg_restore replays every event through the
# log's trigger (validation, stream heads, snapshots, idempotency keys).
# Compared, alternately in the same run, with COPY of the same rows into a
# plain table of the log's shape, indexes included.
# Usage: bash test/bench/run-restore-bench.sh [STREAMS] [ROUNDS]
source "$(dirname "$0")/../lib.sh"

STREAMS=${1:-20000}
ROUNDS=${2:-3}
ensure_packages
build_and_install
make_workdir
start_cluster
psql() { as_cluster_user "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

say "a log of $(( STREAMS * 5 )) events: $STREAMS streams, Created and 4 keyed updates each"
psql -d postgres -c "CREATE DATABASE source"
psql -d source -c "CREATE EXTENSION headlessly_events" -c "
    SELECT count(*) FROM headlessly.events_append_batch((
        SELECT jsonb_agg(jsonb_build_object('type', 'Deal.Created', 'target', 'deal_' || i,
                                            'data', jsonb_build_object('amount', i)))
          FROM generate_series(1, $STREAMS) i))" >/dev/null
for r in 1 2 3 4; do
    psql -d source -c "
        SELECT count(*) FROM headlessly.events_append_batch((
            SELECT jsonb_agg(jsonb_build_object('type', 'Deal.Updated', 'target', 'deal_' || i,
                                                'data', jsonb_build_object('stage', $r),
                                                'source', 'crm', 'external_event_id', 'w${r}_' || i))
              FROM generate_series(1, $STREAMS) i))" >/dev/null
done
as_cluster_user "$PG_BIN/pg_dump" -Fc -d source -f "$WORKDIR/log.dump"
psql -d source -c "\\copy (SELECT * FROM headlessly.events ORDER BY seq) TO '$WORKDIR/log.copy'"

now() { date +%s.%N; }
restores=(); copies=()
for round in $(seq 1 "$ROUNDS"); do
    psql -d postgres -c "DROP DATABASE IF EXISTS restored" -c "CREATE DATABASE restored"
    start=$(now)
    as_cluster_user "$PG_BIN/pg_restore" --exit-on-error -d restored "$WORKDIR/log.dump"
    restores+=("$(echo "$(now) - $start" | bc)")

    psql -d postgres -c "DROP DATABASE IF EXISTS plain" -c "CREATE DATABASE plain"
    psql -d plain -c "CREATE EXTENSION headlessly_events" \
        -c "CREATE TABLE plain_events (LIKE headlessly.events INCLUDING ALL)"
    start=$(now)
    psql -d plain -c "\\copy plain_events FROM '$WORKDIR/log.copy'"
    copies+=("$(echo "$(now) - $start" | bc)")
    echo "round $round: pg_restore ${restores[-1]} s, COPY into a plain table ${copies[-1]} s"
done
[ "$(psql -d restored -tA -c 'SELECT count(*) FROM headlessly.check_state()')" = 0 ] ||
    { echo "the restored heads drift from the log"; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
r=$(median "${restores[@]}"); c=$(median "${copies[@]}")
echo
echo "| events | pg_restore (median) | COPY into a plain table (median) | ratio |"
echo "|---|---|---|---|"
printf '| %d | %.2f s | %.2f s | %.2f |\n' $(( STREAMS * 5 )) "$r" "$c" "$(echo "$r / $c" | bc -l)"
