#!/usr/bin/env bash
# Where the 8-client appends of run-stream-bench.sh's section 3 sleep on a
# lock, by code path: run-append-profile.sh's wait sampling says how often
# the backends wait on LWLock:BufferContent, not on which buffer.  Here
# perf records every time a backend of the cluster goes to sleep
# (sched:sched_switch, with its stack unwound through DWARF) and is woken
# (sched:sched_wakeup) during one run of each case, and
# test/bench/append_sleeps.py charges each sleep under LWLockAcquire, count
# and time, to the first caller that names what was locked: the log's heap
# (RelationGetBufferForTuple), a btree insert (_bt_doinsert), the sequence
# (nextval_internal), a head update (heap_update), and so on.  Which index
# a btree insert waited on is found by a uprobe on _bt_doinsert that
# records its relation's OID (RelationData.rd_id, whose offset is taken
# from the server's headers): a sleep under _bt_doinsert is charged to the
# index of that backend's latest _bt_doinsert.  The probe is removed at
# exit.
# Needs root (perf tracepoints and uprobes).
# Usage: [CLIENTS=8] bash test/bench/run-append-waits.sh [SECONDS] [SCRIPT...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-5}
shift 1 2>/dev/null || shift $#
CASES=${*:-append_target plpgsql_store write_message}
CLIENTS=${CLIENTS:-8}
JOBS=$(( CLIENTS < 2 ? CLIENTS : 2 ))
command -v perf >/dev/null || die "perf is needed"

bench_cluster "autovacuum = off" "synchronous_commit = off"
stream_fixtures
scripts=$WORKDIR/scripts
append_scripts "$scripts"

# rd_id's offset, for the uprobe
cat > "$WORKDIR/rd_id.c" <<'C'
#include "postgres.h"
#include "utils/rel.h"
int main(void) { return (int) offsetof(RelationData, rd_id); }
C
gcc -I"$($PG_CONFIG --includedir-server)" -o "$WORKDIR/rd_id" "$WORKDIR/rd_id.c"
"$WORKDIR/rd_id" && rd_id=0 || rd_id=$?
PROBE=probe_postgres:_bt_doinsert
probe_added=
if perf probe -q -x "$PG_BIN/postgres" --add "_bt_doinsert relid=+$rd_id(%di):u32" 2>/dev/null; then
    probe_added=1
    trap 'perf probe -q -d "$PROBE" 2>/dev/null || true; cleanup' EXIT
fi

for c in $CASES; do
    say "$c: $CLIENTS clients, ${SECONDS_PER_RUN}s under perf"
    "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T $(( SECONDS_PER_RUN + 2 )) \
        -f "$scripts/$c.sql" postgres > "$WORKDIR/pgbench.$c" 2>&1 &
    bench=$!
    sleep 1
    pids=$(pgrep -d, -f "postgres: postgres postgres \[local\]" || true)
    # shellcheck disable=SC2046
    perf record -q -e sched:sched_switch --call-graph dwarf,16384 -e sched:sched_wakeup/call-graph=no/ \
        $([ -z "$probe_added" ] || echo "-e $PROBE/call-graph=no/") -p "$pids" \
        -o "$WORKDIR/perf.$c" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 || true
    wait "$bench"
    sed -n 's/^tps = \([0-9.]*\) .*/tps \1/p' "$WORKDIR/pgbench.$c"
    $PSQL -At -F ' ' -c "SELECT oid, relname FROM pg_class WHERE relkind = 'i'" > "$WORKDIR/indexes"
    perf script -i "$WORKDIR/perf.$c" 2>/dev/null |
        python3 "$BENCH/append_sleeps.py" "$WORKDIR/indexes" "$CLIENTS" "$SECONDS_PER_RUN"
done
say "results"
machine_line
