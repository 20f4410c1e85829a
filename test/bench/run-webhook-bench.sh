#!/usr/bin/env bash
# Webhook benchmarks on a throwaway cluster with the background worker
# (shared_preload_libraries), against the loopback receiver
# (test/tools/webhook_receiver.py, which checks every signature):
#   send     the sender alone: headlessly.webhook_send() of N signed events
#            (events/s, median of ROUNDS);
#   deliver  the worker: N events appended (1,000 a transaction) while a
#            webhook subscription is active; events/s from the first commit
#            to the N-th request recorded by the receiver, median of ROUNDS;
#   hooks    the worker's wake-up at commit, without the network: an
#            after_commit hook that records clock_timestamp(); N events
#            (1,000 a transaction): events/s from the first commit to the last
#            handled; and LATENCY_EVENTS single-event commits, one every
#            20 ms: handled_at - recorded_at, p50 and p99;
#   latency  commit -> receiver: LATENCY_EVENTS single-event transactions,
#            one every 20 ms; for each, the time the receiver recorded it
#            minus the event's recorded_at (its transaction's start, so a
#            little more than commit -> receiver); p50 and p99.
# Usage: bash test/bench/run-webhook-bench.sh [N] [ROUNDS] [SECTION...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

N=${1:-20000}
ROUNDS=${2:-3}
shift 2 2>/dev/null || shift $#
SECTIONS=${*:-send hooks deliver latency}
LATENCY_EVENTS=${LATENCY_EVENTS:-300}
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

bench_cluster "shared_preload_libraries = 'headlessly_events'" "synchronous_commit = off"

say "receiver"
python3 "$TOP/test/tools/webhook_receiver.py" --port-file "$WORKDIR/receiver.port" \
    --log "$WORKDIR/receiver.jsonl" --secret "$SECRET" >"$WORKDIR/receiver.out" 2>&1 &
RECEIVER_PID=$!
trap 'kill $RECEIVER_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$WORKDIR/receiver.port" ] && break; sleep 0.1; done
[ -s "$WORKDIR/receiver.port" ] || die "the receiver did not start"
URL=http://127.0.0.1:$(cat "$WORKDIR/receiver.port")

# requests the receiver has recorded so far
received() {
    python3 -c "import urllib.request as u; print(u.urlopen('$URL/_count').read().decode())"
}
# calc EXPRESSION: floating-point arithmetic
calc() { awk "BEGIN { print $1 }"; }
# wait_received COUNT: until the receiver has COUNT requests; prints the time
wait_received() {
    local deadline=$((SECONDS + 300))
    while [ "$(received)" -lt "$1" ]; do
        [ $SECONDS -lt $deadline ] || die "the receiver got $(received) requests of $1 in 300 s"
        sleep 0.02
    done
    date +%s.%N
}
# wait_handled COUNT: until the hook has recorded COUNT events
wait_handled() {
    local deadline=$((SECONDS + 300))
    while [ "$($PSQL -At -c 'SELECT count(*) FROM handled')" -lt "$1" ]; do
        [ $SECONDS -lt $deadline ] || die "the hook handled $($PSQL -At -c 'SELECT count(*) FROM handled') events of $1 in 300 s"
        sleep 0.05
    done
}

$PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null
REPORT=$WORKDIR/report.md
{ echo "| measure | value | goal |"; echo "|---|---|---|"; } > "$REPORT"

case " $SECTIONS " in *" send "*)
    say "send: webhook_send of $N events, $ROUNDS rounds"
    rates=()
    for r in $(seq "$ROUNDS"); do
        ms=$($PSQL -At -c "\\timing on" -c "
            SELECT count(*) FILTER (WHERE http_status = 200)
              FROM headlessly.webhook_send('$URL/ok/send',
                   (SELECT jsonb_agg(jsonb_build_object('id', 'evt_s${r}_' || i, 'type', 'page_view',
                                                        'data', jsonb_build_object('i', i)))
                      FROM generate_series(1, $N) i), '$SECRET')" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
        rates+=("$(calc "$N / ($ms / 1000)")")
        echo "round $r: $ms ms"
    done
    rate=$(printf '%s\n' "${rates[@]}" | median)
    printf '| webhook_send, events/s (median of %d) | %.0f | |\n' "$ROUNDS" "$rate" >> "$REPORT"
    ;;
esac

case " $SECTIONS " in *" hooks "*)
    say "hooks: $N events through an after_commit hook, then $LATENCY_EVENTS single commits"
    $PSQL >/dev/null <<'SQL'
CREATE TABLE handled (event_id text, handled_at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION record_event(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO handled (event_id) VALUES (event->>'id'); SELECT NULL::jsonb $$;
SELECT headlessly.hook('hooked', 'after_commit', 'record_event(jsonb)');
SQL
    start=$(date +%s.%N)
    for b in $(seq 1000 1000 "$N"); do
        echo "SELECT count(*) FROM headlessly.events_append_batch(
                (SELECT jsonb_agg(jsonb_build_object('type', 'hooked', 'target', 'h_' || (i % 500),
                                                     'data', jsonb_build_object('i', i)))
                   FROM generate_series($b - 999, $b) i));"
    done | $PSQL >/dev/null
    wait_handled "$N"
    rate=$(calc "$N / ($(date +%s.%N) - $start)")
    printf '| after_commit hook run by the worker, events/s (%d events) | %.0f | |\n' "$N" "$rate" >> "$REPORT"
    echo "$(printf '%.0f' "$rate") events/s"
    $PSQL -c "TRUNCATE handled" >/dev/null
    for i in $(seq "$LATENCY_EVENTS"); do
        echo "SELECT 1 FROM headlessly.events_append('hooked', 'once_$i');"
        echo "SELECT pg_sleep(0.02);"
    done | $PSQL >/dev/null
    wait_handled "$LATENCY_EVENTS"
    read -r p50 p99 < <($PSQL -At -F ' ' -c "
        SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
          FROM (SELECT extract(epoch FROM h.handled_at - e.recorded_at) * 1000 AS ms
                  FROM handled h JOIN headlessly.events e ON e.id = h.event_id) l")
    echo "p50 $p50 ms, p99 $p99 ms"
    printf '| commit -> after_commit hook ran, p50 / p99 ms (%d events) | %s / %s | |\n' \
        "$LATENCY_EVENTS" "$p50" "$p99" >> "$REPORT"
    ;;
esac

case " $SECTIONS " in *" deliver "*)
    say "deliver: $N events through the worker, $ROUNDS rounds"
    $PSQL -c "SELECT name FROM headlessly.subscribe('bench', url => '$URL/ok/deliver', secret => '$SECRET')" >/dev/null
    rates=()
    for r in $(seq "$ROUNDS"); do
        base=$(received)
        start=$(date +%s.%N)
        for b in $(seq 1000 1000 "$N"); do
            echo "SELECT count(*) FROM headlessly.events_append_batch(
                    (SELECT jsonb_agg(jsonb_build_object('type', 'page_view', 'target', 'page_' || (i % 500),
                                                         'data', jsonb_build_object('i', i)))
                       FROM generate_series($b - 999, $b) i));"
        done | $PSQL >/dev/null
        appended=$(date +%s.%N)
        done_at=$(wait_received $((base + N)))
        rate=$(calc "$N / ($done_at - $start)")
        rates+=("$rate")
        printf 'round %d: appended in %.2f s, delivered in %.2f s: %.0f events/s\n' "$r" \
            "$(calc "$appended - $start")" "$(calc "$done_at - $start")" "$rate"
    done
    rate=$(printf '%s\n' "${rates[@]}" | median)
    printf '| worker delivery to the receiver, events/s (median of %d, %d events each) | %.0f | >= 2000 |\n' \
        "$ROUNDS" "$N" "$rate" >> "$REPORT"
    bad=$(grep -c '"signature_ok": false' "$WORKDIR/receiver.jsonl" || true)
    echo "requests with a bad signature: $bad"
    $PSQL -c "SELECT headlessly.unsubscribe('bench')" >/dev/null
    ;;
esac

case " $SECTIONS " in *" latency "*)
    say "latency: $LATENCY_EVENTS single-event commits, one every 20 ms"
    $PSQL -c "SELECT name FROM headlessly.subscribe('latency', url => '$URL/ok/latency', secret => '$SECRET')" >/dev/null
    base=$(received)
    for i in $(seq "$LATENCY_EVENTS"); do
        echo "SELECT 1 FROM headlessly.events_append('page_view', 'lat_$i');"
        echo "SELECT pg_sleep(0.02);"
    done | $PSQL >/dev/null
    wait_received $((base + LATENCY_EVENTS)) >/dev/null
    read -r p50 p99 < <(python3 - "$WORKDIR/receiver.jsonl" <<'PY'
import json, sys
from datetime import datetime
lat = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].startswith("/ok/latency") and r["attempt"] == 1:
        t0 = datetime.fromisoformat(r["body"]["recorded_at"]).timestamp()
        lat.append((r["t"] - t0) * 1000)
lat.sort()
print("%.1f %.1f" % (lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
PY
)
    echo "p50 $p50 ms, p99 $p99 ms"
    printf '| commit -> receiver latency, p50 / p99 ms (%d events) | %s / %s | |\n' \
        "$LATENCY_EVENTS" "$p50" "$p99" >> "$REPORT"
    ;;
esac

say "report"
machine_line
cat "$REPORT"
