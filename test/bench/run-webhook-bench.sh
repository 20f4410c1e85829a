#!/usr/bin/env bash
# Webhook benchmarks on a throwaway cluster with the background worker
# (shared_preload_libraries), against the loopback receiver
# (test/tools/webhook_receiver.py, which checks every signature):
#   send     the sender alone: headlessly.webhook_send() of N signed events
#            (events/s, median of ROUNDS);
#   backlog  the worker over a backlog: for each N:TARGETS of BACKLOGS
#            (default "20000:500 100000:500 2000:1"), N events over TARGETS
#            targets are appended while the subscription is paused; then it
#            is resumed: events/s from the resume to the N-th request
#            received, and its ratio to the send figure of the same run;
#            with the CPU the receiver and the worker used meanwhile (a side
#            near 1.0 core is the limit), and the worker's CPU per event
#            against the sending backend's in send (on a shared machine the
#            CPU per event is steadier than the wall clock);
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
# PERF_DATA=FILE records the worker with perf during each backlog (into
# FILE.N.TARGETS).
# RECEIVER=light runs the receiver without signature checks or its log
# (--light; the latency section needs the log and is skipped): what the
# sender reaches when the receiver costs least.
# Usage: bash test/bench/run-webhook-bench.sh [N] [ROUNDS] [SECTION...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

N=${1:-20000}
ROUNDS=${2:-3}
shift 2 2>/dev/null || shift $#
SECTIONS=${*:-send backlog hooks deliver latency}
BACKLOGS=${BACKLOGS:-20000:500 100000:500 2000:1}
RECEIVER=${RECEIVER:-verify}
LATENCY_EVENTS=${LATENCY_EVENTS:-300}
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

bench_cluster "shared_preload_libraries = 'headlessly_events'" "synchronous_commit = off"

light=()
if [ "$RECEIVER" = light ]; then
    light=(--light)
    SECTIONS=${SECTIONS/latency/}
fi
say "receiver ($RECEIVER)"
python3 "$TOP/test/tools/webhook_receiver.py" --port-file "$WORKDIR/receiver.port" \
    --log "$WORKDIR/receiver.jsonl" --secret "$SECRET" "${light[@]}" >"$WORKDIR/receiver.out" 2>&1 &
RECEIVER_PID=$!
trap 'kill $RECEIVER_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$WORKDIR/receiver.port" ] && break; sleep 0.1; done
[ -s "$WORKDIR/receiver.port" ] || die "the receiver did not start"
URL=http://127.0.0.1:$(cat "$WORKDIR/receiver.port")

# requests the receiver has recorded so far
received() {
    python3 -c "import urllib.request as u; print(u.urlopen('$URL/_count').read().decode())"
}
# connections that brought the receiver a POST so far
connections() {
    python3 -c "import urllib.request as u; print(u.urlopen('$URL/_connections').read().decode())"
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
# cpu_s PID: CPU seconds (user + system) the process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
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
    cpus=()
    for r in $(seq "$ROUNDS"); do
        rcpu=$(cpu_s "$RECEIVER_PID")
        # the backend's own CPU around the call, read from /proc by psql's \!
        ms=$($PSQL -At <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\! awk -v hz="$(getconf CLK_TCK)" '{ print (\$14 + \$15) / hz }' /proc/\$BPID/stat > $WORKDIR/send.cpu0
\timing on
SELECT count(*) FILTER (WHERE http_status = 200)
  FROM headlessly.webhook_send('$URL/ok/send',
       (SELECT jsonb_agg(jsonb_build_object('id', 'evt_s${r}_' || i, 'type', 'page_view',
                                            'data', jsonb_build_object('i', i)))
          FROM generate_series(1, $N) i), '$SECRET');
\timing off
\! awk -v hz="$(getconf CLK_TCK)" '{ print (\$14 + \$15) / hz }' /proc/\$BPID/stat > $WORKDIR/send.cpu1
SQL
)
        rates+=("$(calc "$N / ($ms / 1000)")")
        cpus+=("$(calc "($(cat "$WORKDIR/send.cpu1") - $(cat "$WORKDIR/send.cpu0")) * 1000000 / $N")")
        echo "round $r: $ms ms; CPU: the sending backend ${cpus[-1]} us/event," \
             "the receiver $(calc "($(cpu_s "$RECEIVER_PID") - $rcpu) / ($ms / 1000)") cores"
    done
    SEND_RATE=$(printf '%s\n' "${rates[@]}" | median)
    SEND_CPU=$(printf '%s\n' "${cpus[@]}" | median)
    printf '| webhook_send (the sender alone), events/s (median of %d, %d events, receiver: %s) | %.0f (its backend: %.0f us CPU/event) | |\n' \
        "$ROUNDS" "$N" "$RECEIVER" "$SEND_RATE" "$SEND_CPU" >> "$REPORT"
    ;;
esac

case " $SECTIONS " in *" backlog "*)
    $PSQL -c "SELECT name FROM headlessly.subscribe('backlog', 'backlog_item', url => '$URL/ok/backlog', secret => '$SECRET')" >/dev/null
    for spec in $BACKLOGS; do
        n=${spec%%:*}
        targets=${spec##*:}
        say "backlog: $n events over $targets targets, then the worker delivers them"
        $PSQL -c "SELECT headlessly.pause('backlog')" >/dev/null
        backlog_sql "$n" "$targets" 1000 | $PSQL >/dev/null
        $PSQL -c "VACUUM ANALYZE headlessly.deliveries" >/dev/null
        base=$(received)
        conns=$(connections)
        wpid=$(worker_pid)
        rcpu=$(cpu_s "$RECEIVER_PID")
        wcpu=$(cpu_s "$wpid")
        start=$(date +%s.%N)
        perf_pid=
        if [ -n "${PERF_DATA:-}" ]; then
            perf record -F 999 -g -p "$wpid" -o "$PERF_DATA.$n.$targets" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        $PSQL -c "SELECT headlessly.resume('backlog')" >/dev/null
        done_at=$(wait_received $((base + n)))
        if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
        conns=$(( $(connections) - conns ))
        secs=$(calc "$done_at - $start")
        rate=$(calc "$n / $secs")
        rshare=$(calc "($(cpu_s "$RECEIVER_PID") - $rcpu) / $secs")
        wshare=$(calc "($(cpu_s "$wpid") - $wcpu) / $secs")
        wus=$(calc "($(cpu_s "$wpid") - $wcpu) * 1000000 / $n")
        ratio=${SEND_RATE:+$(calc "$rate / $SEND_RATE")}
        cratio=${SEND_CPU:+$(calc "$wus / $SEND_CPU")}
        printf '%.0f events/s in %.1f s (ratio to the sender alone %s); CPU: receiver %.2f, worker %.2f cores;' \
            "$rate" "$secs" "${ratio:-?}" "$rshare" "$wshare"
        printf ' worker %.0f us/event (ratio to the sender alone %s); %d new connections\n' "$wus" "${cratio:-?}" "$conns"
        printf '| worker over a backlog of %d events, %d target(s), events/s (receiver %s) | %.0f (ratio to sender alone %s); worker CPU %.0f us/event (ratio %s); receiver %.2f, worker %.2f cores; %d new connections | >= 2000 |\n' \
            "$n" "$targets" "$RECEIVER" "$rate" "${ratio:-?}" "$wus" "${cratio:-?}" "$rshare" "$wshare" "$conns" >> "$REPORT"
    done
    $PSQL -c "SELECT headlessly.unsubscribe('backlog')" >/dev/null
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
    wuss=()
    wpid=$(worker_pid)
    for r in $(seq "$ROUNDS"); do
        base=$(received)
        wcpu=$(cpu_s "$wpid")
        rcpu=$(cpu_s "$RECEIVER_PID")
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
        wuss+=("$(calc "($(cpu_s "$wpid") - $wcpu) * 1000000 / $N")")
        printf 'round %d: appended in %.2f s (%.0f events/s), delivered in %.2f s: %.0f events/s;' "$r" \
            "$(calc "$appended - $start")" "$(calc "$N / ($appended - $start)")" "$(calc "$done_at - $start")" "$rate"
        printf ' CPU: worker %.0f us/event, %.2f cores; receiver %.2f cores\n' "${wuss[-1]}" \
            "$(calc "($(cpu_s "$wpid") - $wcpu) / ($done_at - $start)")" \
            "$(calc "($(cpu_s "$RECEIVER_PID") - $rcpu) / ($done_at - $start)")"
    done
    rate=$(printf '%s\n' "${rates[@]}" | median)
    wus=$(printf '%s\n' "${wuss[@]}" | median)
    printf '| worker delivery to the receiver while appending, events/s (median of %d, %d events each, receiver %s) | %.0f; worker CPU %.0f us/event | >= 2000 |\n' \
        "$ROUNDS" "$N" "$RECEIVER" "$rate" "$wus" >> "$REPORT"
    bad=$(grep -c '"signature_ok": false' "$WORKDIR/receiver.jsonl" || true)
    echo "requests with a bad signature: $bad"
    $PSQL -c "SELECT headlessly.unsubscribe('bench')" >/dev/null
    ;;
esac

case " $SECTIONS " in *" latency "*)
    say "latency of the sender alone: $LATENCY_EVENTS single-event webhook_send calls"
    for i in $(seq "$LATENCY_EVENTS"); do
        echo "SELECT http_status FROM headlessly.webhook_send('$URL/ok/alone',
                jsonb_build_array(jsonb_build_object('id', 'evt_alone_$i', 'type', 'page_view')), '$SECRET');"
    done > "$WORKDIR/alone.sql"
    read -r sp50 sp99 < <($PSQL -At -c '\timing on' -f "$WORKDIR/alone.sql" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -g |
        awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.1f %.1f\n", v[int((NR + 1) / 2)], v[i] }')
    echo "sender alone: p50 $sp50 ms, p99 $sp99 ms"
    printf '| webhook_send of one event, round trip p50 / p99 ms (%d calls) | %s / %s | |\n' \
        "$LATENCY_EVENTS" "$sp50" "$sp99" >> "$REPORT"
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
