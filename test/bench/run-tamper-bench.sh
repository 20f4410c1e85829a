#!/usr/bin/env bash
# What tamper evidence costs, on a throwaway cluster:
#   1. the append path: instructions per append spent hashing (canonical
#      form, SHA-256, the hash's bytea), counted by callgrind in one
#      single-user run, as a share of the whole append: throughput with
#      hashing relative to without is 1 - share (the 32 stored bytes more
#      per row and per head are not in the share);
#   1b. verify() under callgrind over VERIFY_CG (default 100,000) events
#      more in that database: instructions per event, and of them the
#      canonical form's, the event hash's and the Merkle leaf's;
#   2. verify() over N events (default 1,000,000; 90% on 100,000 streams,
#      a 200-byte data object each, 10 tenants): events per second, best of
#      ROUNDS, serial (max_parallel_workers_per_gather = 0) and with
#      VERIFY_WORKERS parallel workers (default 1), in turn;
#   3. checkpoint() of CP (default 100,000) newly committed events, twice:
#      its CPU time, then its wall-clock time.
#   Verify and checkpoint also report their CPU seconds (steadier than the
#   wall clock on a shared machine), the parallel workers' included, and
#   verify its peak private memory.
# Usage: bash test/bench/run-tamper-bench.sh [N] [CP] [ROUNDS] [APPENDS]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

N=${1:-1000000}
CP=${2:-100000}
ROUNDS=${3:-3}
APPENDS=${4:-5000}
VERIFY_CG=${VERIFY_CG:-100000}
VERIFY_WORKERS=${VERIFY_WORKERS:-1}

command -v valgrind >/dev/null || { ensure_packages; $SUDO apt-get install -y -qq valgrind >/dev/null; }
bench_cluster

say "1. the append path under callgrind ($APPENDS entity and $APPENDS free appends)"
as_cluster_user initdb -D "$WORKDIR/cg" -U postgres -A trust --no-sync >/dev/null
single() { as_cluster_user "$@" "$PG_BIN/postgres" --single -j -D "$WORKDIR/cg" postgres; }
single <<'SQL' >/dev/null 2>&1
CREATE EXTENSION headlessly_events;
SELECT headlessly.events_append('Account.Created', 'acct_' || i, '{"n": 0}') FROM generate_series(1, 1000) i;
SQL
single valgrind --tool=callgrind --callgrind-out-file="$WORKDIR/cg.out" <<SQL >/dev/null 2>&1
DO \$\$ BEGIN
  FOR i IN 1..$APPENDS LOOP
    PERFORM headlessly.events_append('Account.Updated', 'acct_' || (i % 1000 + 1),
        jsonb_build_object('n', i, 'name', 'Alice Example', 'email', 'alice@example.com'));
    PERFORM headlessly.events_append('page_view', data => '{"path": "/pricing"}',
        metadata => '{"sessionId": "s1"}');
  END LOOP;
END \$\$;
SQL
inclusive() {
    callgrind_annotate --inclusive=yes "$WORKDIR/cg.out" 2>/dev/null |
        awk -v f="$1" '$0 ~ (":" f " ") || $0 ~ (":" f "$") { gsub(",", "", $1); print $1; exit }'
}
total=$(inclusive headlessly_events_append)
hashing=$(inclusive hl_event_hash_of_datums)
echo "instructions: events_append $total, of which hashing $hashing"
awk -v t="$total" -v h="$hashing" -v n="$APPENDS" 'BEGIN {
    printf "per append: %.0f instructions, hashing %.0f (%.1f%%); throughput with/without hashing: %.3f\n",
        t / (2 * n), h / (2 * n), 100 * h / t, (t - h) / t }'

# verify under callgrind: instructions per event, steadier than any clock on
# a shared machine; but valgrind hides SHA-NI, so OpenSSL's SHA-256 runs its
# slower vector code there and counts for more than it costs on the CPU
say "1b. verify() under callgrind ($VERIFY_CG events, 10 tenants, 1 in 10 without a target)"
single <<SQL >/dev/null 2>&1
INSERT INTO headlessly.events (tenant, type, target, actor, source, source_type, data)
SELECT 'tenant_' || (i % 10),
       CASE WHEN i % 10 = 0 THEN 'page_view' ELSE 'contact_touched' END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'contact_' || (i % ($VERIFY_CG / 10)) END,
       'agent_' || (i % 50), 'API', 'internal',
       jsonb_build_object('name', 'Alice Example', 'email', 'alice' || i || '@example.com',
                          'stage', 'qualified', 'score', i % 100,
                          'tags', jsonb_build_array('vip', 'newsletter'),
                          'address', jsonb_build_object('city', 'Lisbon', 'zip', '1100-148'))
  FROM generate_series(1, $VERIFY_CG) i;

SELECT headlessly.checkpoint();
SQL
single valgrind --tool=callgrind --callgrind-out-file="$WORKDIR/cg-verify.out" <<'SQL' >/dev/null 2>&1
SELECT count(*) FROM headlessly.verify();
SQL
verify_events=$(( VERIFY_CG + 1000 + 2 * APPENDS ))
inclusive_of() {
    callgrind_annotate --inclusive=yes "$WORKDIR/cg-verify.out" 2>/dev/null |
        awk -v f="$1" '$0 ~ (":" f " ") { gsub(",", "", $1); print $1; exit }'
}
awk -v t="$(inclusive_of headlessly_verify)" -v c="$(inclusive_of hl_canonical_from_row)" \
    -v h="$(inclusive_of hl_event_hash)" -v m="$(inclusive_of hl_merkle_add)" -v n="$verify_events" 'BEGIN {
    printf "verify, per event: %.0f instructions; canonical form %.0f, event hash %.0f, Merkle leaf %.0f\n",
        t / n, c / n, h / n, m / n }'

say "2. verify() over $N events"
$PSQL -c "CREATE EXTENSION headlessly_events"
$PSQL <<SQL
SET synchronous_commit = off;
DO \$\$ BEGIN
  FOR c IN 0..($N - 1) / 100000 LOOP
    INSERT INTO headlessly.events (tenant, type, target, actor, source, source_type, data)
    SELECT 'tenant_' || (i % 10),
           CASE WHEN i % 10 = 0 THEN 'page_view' ELSE 'contact_touched' END,
           CASE WHEN i % 10 = 0 THEN NULL ELSE 'contact_' || (i % 100000) END,
           'agent_' || (i % 50), 'API', 'internal',
           jsonb_build_object('name', 'Alice Example', 'email', 'alice' || i || '@example.com',
                              'stage', 'qualified', 'score', i % 100,
                              'tags', jsonb_build_array('vip', 'newsletter'),
                              'address', jsonb_build_object('city', 'Lisbon', 'zip', '1100-148'))
      FROM generate_series(c * 100000 + 1, least((c + 1) * 100000, $N)) i;
    COMMIT;
  END LOOP;
END \$\$;
VACUUM ANALYZE headlessly.events;
SQL
timed() {
    $PSQL -At -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); n bigint;
                  BEGIN $1; RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0); END \$\$" 2>&1 |
        sed -n 's/^NOTICE: *//p'
}
echo "first checkpoint, sealing all $N: $(timed 'PERFORM headlessly.checkpoint()') s"
# with_workers W COMMAND...: COMMAND's sessions verify with W parallel workers
with_workers() { local w=$1; shift; PGOPTIONS="-c max_parallel_workers_per_gather=$w" "$@"; }
best_serial=
best_parallel=
for r in $(seq "$ROUNDS"); do
    s=$(with_workers 0 timed "PERFORM count(*) FROM headlessly.verify()")
    p=$(with_workers "$VERIFY_WORKERS" timed "PERFORM count(*) FROM headlessly.verify()")
    echo "verify round $r: serial $s s, $VERIFY_WORKERS worker(s) $p s"
    best_serial=$(printf '%s\n%s\n' "$s" "$best_serial" | sed '/^$/d' | sort -g | head -n 1)
    best_parallel=$(printf '%s\n%s\n' "$p" "$best_parallel" | sed '/^$/d' | sort -g | head -n 1)
done
ok=$(with_workers "$VERIFY_WORKERS" $PSQL -At -c "SELECT bool_and(ok) FROM headlessly.verify()")
awk -v n="$N" -v s="$best_serial" -v p="$best_parallel" -v w="$VERIFY_WORKERS" -v ok="$ok" 'BEGIN {
    printf "verify, serial: %d events in %.3f s = %.0f events/s\n", n, s, n / s
    printf "verify, %d worker(s): %d events in %.3f s = %.0f events/s (all ok: %s); %.2fx serial\n",
        w, n, p, n / p, ok, s / p }'

# backend_cost SQL: CPU seconds of the backend running SQL and of its
# parallel workers (user + system, which other processes on a shared
# machine do not inflate as they do the wall-clock time), and peak private
# memory (RssAnon: shared buffers excluded) of the backend and of all of
# them together, sampled from /proc every 20 ms while it runs.  Workers are
# found by their process title, "parallel worker for PID <backend>"; a
# worker's last 20 ms may go unsampled.
backend_cost() {
    local pid= peak=0 peak_all=0 ticks=0 wticks=0 rss all t w
    local -A worker_ticks=()
    $PSQL -At -c "SET application_name = 'hl_bench_cost'" -c "SELECT pg_sleep(0.3)" \
        -c "$1" >/dev/null &
    while [ -z "$pid" ]; do
        pid=$($PSQL -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'hl_bench_cost'")
    done
    while [ -r "/proc/$pid/stat" ]; do
        rss=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || break
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || break
        [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
        [ -n "$t" ] && ticks=$t
        all=${rss:-0}
        for w in $(pgrep -f "parallel worker for PID $pid( |\$)"); do
            t=$(awk '{ print $14 + $15 }' "/proc/$w/stat" 2>/dev/null) || continue
            rss=$(awk '/^RssAnon:/ { print $2 }' "/proc/$w/status" 2>/dev/null) || continue
            [ -n "$t" ] && worker_ticks[$w]=$t
            all=$(( all + ${rss:-0} ))
        done
        [ "$all" -gt "$peak_all" ] && peak_all=$all
        sleep 0.02
    done
    wait
    for w in "${!worker_ticks[@]}"; do wticks=$(( wticks + ${worker_ticks[$w]} )); done
    echo "$ticks $wticks $(getconf CLK_TCK) $peak $peak_all ${#worker_ticks[@]}"
}
for w in 0 "$VERIFY_WORKERS"; do
    read -r ticks wticks hz peak peak_all nw <<<"$(with_workers "$w" backend_cost "SELECT count(*) FROM headlessly.verify()")"
    awk -v n="$N" -v t="$ticks" -v wt="$wticks" -v hz="$hz" -v kb="$peak" -v kball="$peak_all" -v w="$w" -v nw="$nw" 'BEGIN {
        printf "verify, %d worker(s) asked for, %d seen: %.2f CPU s (leader %.2f, workers %.2f) = %.0f events per CPU second; peak private memory (RssAnon) leader %.1f MB, all %.1f MB\n",
            w, nw, (t + wt) / hz, t / hz, wt / hz, n / ((t + wt) / hz), kb / 1024, kball / 1024 }'
done
read -r ticks wticks hz peak peak_all nw <<<"$(backend_cost "SELECT count(*) FROM headlessly.verify('tenant_0')")"
awk -v t="$ticks" -v hz="$hz" -v kb="$peak" 'BEGIN {
    printf "verify(one tenant of 10): %.2f CPU s; peak private memory %.1f MB\n", t / hz, kb / 1024 }'

say "3. checkpoint() of $CP new events"
$PSQL -c "INSERT INTO headlessly.events (tenant, type, target, data)
          SELECT 'tenant_' || (i % 10), 'contact_touched', 'contact_' || (i % 100000), '{\"n\": 1}'
            FROM generate_series(1, $CP) i" >/dev/null
read -r ticks wticks hz peak peak_all nw <<<"$(backend_cost "SELECT headlessly.checkpoint()")"
awk -v cp="$CP" -v t="$ticks" -v hz="$hz" 'BEGIN { printf "checkpoint of %d new events: %.2f CPU s\n", cp, t / hz }'
$PSQL -c "INSERT INTO headlessly.events (tenant, type, target, data)
          SELECT 'tenant_' || (i % 10), 'contact_touched', 'contact_' || (i % 100000), '{\"n\": 2}'
            FROM generate_series(1, $CP) i" >/dev/null
echo "checkpoint of $CP new events: $(timed 'PERFORM headlessly.checkpoint()') s"
machine_line
