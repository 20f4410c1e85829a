#!/usr/bin/env bash
# Where the 8-client appends of run-stream-bench.sh's section 3 sleep on a
# lock, by code path: run-append-profile.sh's wait sampling says how often
# the backends wait on LWLock:BufferContent, not on which buffer.  Here
# perf records every time a backend of the cluster goes to sleep
# (sched:sched_switch, with its stack unwound through DWARF) during one
# run of each case, and the sleeps under LWLockAcquire are grouped by the
# first caller that names what was locked: the log's heap (heap_insert),
# a btree insert (_bt_doinsert: which index is not in the stack, only
# whether it is the leaf search or the split), the sequence
# (nextval_internal), a head update (heap_update), and so on.
# Which index a btree insert waited on is found by a uprobe on _bt_doinsert
# that records its relation's OID (RelationData.rd_id, whose offset is
# taken from the server's headers): a sleep under _bt_doinsert is charged
# to the index of that backend's latest _bt_doinsert.  The probe is
# removed at exit.
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
say "fixtures"
$PSQL -f "$BENCH/setup.sql" >/dev/null
$PSQL -f "$BENCH/stream-setup.sql" >/dev/null
$PSQL -c "VACUUM ANALYZE" >/dev/null

scripts=$WORKDIR/scripts
mkdir -p "$scripts"
cat > "$scripts/append_target.sql" <<'SQL'
\set a random(1, 1000)
SELECT version FROM headlessly.events_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL
cat > "$scripts/write_message.sql" <<'SQL'
\set a random(1, 1000)
SELECT mdb.write_message(gen_random_uuid()::text, 'account-' || :a, 'Updated', jsonb_build_object('n', :a::int));
SQL
cat > "$scripts/plpgsql_store.sql" <<'SQL'
\set a random(1, 1000)
SELECT bench.pl_append('Account.Updated', 'acct_' || :a, jsonb_build_object('n', :a::int));
SQL

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

# the frames that say what a sleeping LWLockAcquire was for, innermost first
WHAT='_bt_split|_bt_search|_bt_getroot|_bt_doinsert|_bt_check_unique|heap_insert|heap_update|heap_lock_tuple|RelationGetBufferForTuple|nextval_internal|XLogInsert|XLogFlush|AdvanceXLInsertBuffer|ProcArrayEndTransaction|LockAcquireExtended|SimpleLruWriteAll|TransactionIdSetTreeStatus|hl_[a-z_]+|index_fetch_heap|_bt_first|heap_getnext|heapam_index_fetch_tuple|ExecInsertIndexTuples|index_insert'
for c in $CASES; do
    say "$c: $CLIENTS clients, ${SECONDS_PER_RUN}s under perf"
    "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T $(( SECONDS_PER_RUN + 2 )) \
        -f "$scripts/$c.sql" postgres > "$WORKDIR/pgbench.$c" 2>&1 &
    bench=$!
    sleep 1
    pids=$(pgrep -d, -f "postgres: postgres postgres \[local\]" || true)
    # shellcheck disable=SC2046
    perf record -q -e sched:sched_switch --call-graph dwarf,16384 \
        $([ -z "$probe_added" ] || echo "-e $PROBE/call-graph=no/") -p "$pids" \
        -o "$WORKDIR/perf.$c" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 || true
    wait "$bench"
    sed -n 's/^tps = \([0-9.]*\) .*/tps \1/p' "$WORKDIR/pgbench.$c"
    perf script -i "$WORKDIR/perf.$c" 2>/dev/null |
        awk -v what="^($WHAT)\$" -v names="$($PSQL -At -F= -c "SELECT oid, relname FROM pg_class WHERE relkind = 'i'" | tr '\n' ' ')" '
            BEGIN { k = split(names, kv, " "); for (i = 1; i <= k; i++) { split(kv[i], p, "="); name[p[1]] = p[2] } }
            /_bt_doinsert:/ { if (n) flush(); n = 0; if (match($0, /relid=[0-9]+/)) last[$2] = substr($0, RSTART + 6, RLENGTH - 6); next }
            /^[^ \t]/ { if (n) flush(); n = 0; lw = 0; found = ""; why = ""; pid = $2
                        preempted = ($0 ~ /prev_state=R/); next }
            NF == 0 { if (n) flush(); n = 0; next }
            { n++; f = $2; sub(/\+0x.*/, "", f)
              if (why == "" && f ~ /^(LWLockAcquire|LWLockAcquireOrWait|LWLockWaitForVar)$/) { lw = 1; why = "LWLock" }
              else if (why == "" && f ~ /^(ProcSleep|ConditionVariableSleep|WaitLatch|WaitEventSetWait|secure_read|pq_recvbuf|secure_write|XLogFlush|perform_spin_delay|pg_usleep)$/) why = f
              if (lw && found == "" && f ~ what) found = f }
            function flush() {
                total++
                kind[preempted ? "preempted (runnable)" : (why == "" ? "(other sleep)" : why)]++
                if (lw) { lwt++; by[found == "" ? "(other)" : found]++
                          if (found == "_bt_doinsert" && pid in last) { bt++; idx[last[pid] in name ? name[last[pid]] : last[pid]]++ } } }
            END {
                printf "  sleeps: %d\n", total
                for (k in kind) printf "  %6.1f%% of sleeps  %s\n", 100 * kind[k] / total, k | "sort -rn"
                close("sort -rn")
                for (k in by) printf "  %6.1f%% of LWLock sleeps  %s\n", 100 * by[k] / lwt, k | "sort -rn"
                close("sort -rn")
                for (k in idx) printf "  %6.1f%% of sleeps in _bt_doinsert  %s\n", 100 * idx[k] / bt, k | "sort -rn"
            }'
done
say "results"
machine_line
