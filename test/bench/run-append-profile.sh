#!/usr/bin/env bash
# Where the wall-clock time of 8-client appends goes, beside the baselines of
# run-stream-bench.sh's section 3 (append with a target / mdb.write_message /
# the PL/pgSQL store), each run ROUNDS times in turn for SECONDS:
#   - transactions per second;
#   - CPU time per transaction of this cluster's processes, from /proc
#     (other engineers' work on the machine is not counted): the backends'
#     user and system time (the postmaster's reaped children: measured once
#     the run's backends have exited), the auxiliary processes' (WAL writer,
#     background writer, checkpointer), and pgbench's own; callgrind's count
#     of one backend's instructions leaves out the kernel, the auxiliary
#     processes, and the waits of 8 clients on 2 cores;
#   - WAL records, bytes and full-page images per transaction (pg_stat_wal);
#   - what the backends waited on, in one more run of each: pg_stat_activity
#     sampled every 10 ms, the share of samples per wait event (CPU: running,
#     no wait event).
# Usage: [CLIENTS=8] bash test/bench/run-append-profile.sh [SECONDS] [ROUNDS] [SCRIPT...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
shift 2 2>/dev/null || shift $#
CASES=${*:-append_target write_message plpgsql_store}
CLIENTS=${CLIENTS:-8}
JOBS=$(( CLIENTS < 2 ? CLIENTS : 2 ))

bench_cluster "autovacuum = off" "synchronous_commit = off"
stream_fixtures
scripts=$WORKDIR/scripts
append_scripts "$scripts"

# cpu: clock ticks so far of the backends (user, system), reaped by the
# postmaster, and of the auxiliary processes (user + system)
cpu() {
    local pm aux=0 p
    pm=$(head -n 1 "$WORKDIR/data/postmaster.pid")
    for p in $(pgrep -P "$pm"); do
        aux=$(( aux + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0) ))
    done
    awk -v aux="$aux" '{ print $16, $17, aux }' "/proc/$pm/stat"
}

# sample_waits SECONDS: wait events of the pgbench backends, one line a sample
sample_waits() {
    local until=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -lt "$until" ]; do
        $PG_BIN/psql -X -At -d postgres -c \
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
               FROM pg_stat_activity
              WHERE application_name = 'pgbench' AND state = 'active'
                AND pid <> pg_backend_pid()"
        sleep 0.01
    done
}

declare -A TPS USR SYS IDLE REC BYTES FPI
for r in $(seq "$ROUNDS"); do
    for c in $CASES; do
        $PSQL -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
        read -r u0 s0 i0 < <(cpu)
        out=$(perf stat -x, -e task-clock -o "$WORKDIR/client.$c" -- \
                  "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$SECONDS_PER_RUN" -f "$scripts/$c.sql" postgres 2>&1)
        sleep 1    # the backends have exited and been reaped
        read -r u1 s1 i1 < <(cpu)
        client_ms=$(awk -F, '/task-clock/ { print $1 }' "$WORKDIR/client.$c")
        tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
        n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
        read -r rec bytes fpi < <($PG_BIN/psql -X -At -F ' ' -d postgres -c \
            "SELECT wal_records, wal_bytes, wal_fpi FROM pg_stat_wal")
        hz=$(getconf CLK_TCK)
        printf '%-15s %s clients, round %s: %8.0f tps; per transaction, CPU: backends user %.1f us, system %.1f us, auxiliary %.1f us, pgbench %.1f us; WAL %.1f records, %.0f bytes, %.3f FPI\n' \
            "$c" "$CLIENTS" "$r" "$tps" \
            "$(awk -v a="$u0" -v b="$u1" -v n="$n" -v hz="$hz" 'BEGIN { print (b - a) / hz * 1e6 / n }')" \
            "$(awk -v a="$s0" -v b="$s1" -v n="$n" -v hz="$hz" 'BEGIN { print (b - a) / hz * 1e6 / n }')" \
            "$(awk -v a="$i0" -v b="$i1" -v n="$n" -v hz="$hz" 'BEGIN { print (b - a) / hz * 1e6 / n }')" \
            "$(awk -v ms="$client_ms" -v n="$n" 'BEGIN { print ms * 1e3 / n }')" \
            "$(awk -v x="$rec" -v n="$n" 'BEGIN { print x / n }')" \
            "$(awk -v x="$bytes" -v n="$n" 'BEGIN { print x / n }')" \
            "$(awk -v x="$fpi" -v n="$n" 'BEGIN { print x / n }')" | tee -a "$WORKDIR/rounds"
    done
done

# the sampler's own connections would count as the backends' CPU time: a
# run of its own for each case
say "wait events (share of samples of active pgbench backends)"
for c in $CASES; do
    sample_waits "$SECONDS_PER_RUN" > "$WORKDIR/waits.$c" &
    sampler=$!
    "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$SECONDS_PER_RUN" -f "$scripts/$c.sql" postgres >/dev/null 2>&1
    wait "$sampler"
done
for c in $CASES; do
    echo "$c:"
    sort "$WORKDIR/waits.$c" | uniq -c | sort -rn | head -n 8 |
        awk -v t="$(wc -l < "$WORKDIR/waits.$c")" '{ printf "  %5.1f%%  %s\n", 100 * $1 / t, $2 }'
done
say "results"
machine_line
cat "$WORKDIR/rounds"
