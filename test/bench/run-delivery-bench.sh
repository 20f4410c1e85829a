#!/usr/bin/env bash
# Delivery benchmarks of headlessly_events on a throwaway cluster; each side
# of a comparison measured alternately in the same run (ROUNDS rounds), with
# medians and their ratio:
#   append  1. appends (4 clients, free-standing events) with one NOTIFY
#              subscription and one webhook subscription matching them /
#              with no subscription (events/s): what matching against the
#              per-backend subscription cache and NOTIFY cost an append;
#              and a control without the extension: a small INSERT with
#              and without a pg_notify() of a payload of the same shape
#              (PostgreSQL serializes notifying commits);
#   notify  2. notification received by a LISTENing client (a C libpq loop
#              asleep in select()), with 8 writers appending as fast as they
#              can, then paced at half that rate: p50 and p99 (ms) from the
#              appending statement (its clock_timestamp() in the event) and
#              from the commit (the event's commit timestamp), and max.
#              The control, run in turn with it and at the same rates: the
#              same writers sending a plain pg_notify() of a payload of the
#              same shape, without the extension (no append, no event): what
#              PostgreSQL's NOTIFY and this machine's scheduler give anyway.
#              LISTENER_NICE=-10 runs the listener and its backend at that
#              priority (needs root or sudo): how much of the latency is
#              waiting for a CPU behind the writers; WRITERS=2 (default 8)
#              as many writers as this machine has cores;
#   pull    3. read + ack of N events (batches of 100, one transaction per
#              batch) by one consumer / the same N rows taken from a queue
#              table with DELETE ... FOR UPDATE SKIP LOCKED (events/s).
# Usage: bash test/bench/run-delivery-bench.sh [SECONDS] [ROUNDS] [N] [SECTION...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"
source "$(dirname "$0")/delivery-subscriptions.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
N=${3:-100000}
WRITERS=${WRITERS:-8}
shift 3 2>/dev/null || shift $#
SECTIONS=${*:-append notify pull}

bench_cluster "synchronous_commit = off" "track_commit_timestamp = on"
$PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null
scripts=$WORKDIR/scripts
mkdir -p "$scripts"
machine_line

for section in $SECTIONS; do
case $section in
append)
    cat > "$scripts/append.sql" <<'SQL'
SELECT headlessly.events_append('Bench.Appended', data => '{"k": 1}');
SQL
    subs() {
        bench_subscriptions "$@"
        pgbench_tps 4 "$scripts/append.sql"
    }
    read -r base subj <<< "$(alternate subs 'subs webhook')"
    say "1a. appends/s, 4 clients: no subscription $base, a webhook subscription $subj," \
        "ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    read -r base subj <<< "$(alternate subs 'subs notify webhook')"
    say "1b. appends/s, 4 clients: no subscription $base, NOTIFY + webhook subscriptions $subj," \
        "ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    # control: what PostgreSQL's own NOTIFY costs a small insert (it
    # serializes notifying commits on a database-wide lock), no extension
    $PSQL -c "CREATE TABLE IF NOT EXISTS bench_plain (id bigserial, data jsonb)" >/dev/null
    cat > "$scripts/plain.sql" <<'SQL'
INSERT INTO bench_plain (data) VALUES ('{"k": 1}');
SQL
    cat > "$scripts/plain_notify.sql" <<'SQL'
BEGIN;
INSERT INTO bench_plain (data) VALUES ('{"k": 1}');
SELECT pg_notify('bench_plain', '{"id": "evt_0VcjIQU1xCa74BpZjP", "seq": 1, "data": {"k": 1}, "type": "Bench.Appended", "actor": null, "target": null, "tenant": "default", "version": null, "recorded_at": "2026-12-03T09:21:17.524871+00:00"}');
COMMIT;
SQL
    read -r base subj <<< "$(alternate "pgbench_tps 4 $scripts/plain.sql" "pgbench_tps 4 $scripts/plain_notify.sql")"
    say "1c. control, no extension: inserts/s, 4 clients: plain $base, with a pg_notify() of a payload of the same shape $subj," \
        "ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    bench_subscriptions
    ;;
notify)
    gcc -O2 -o "$WORKDIR/notify_listener" "$BENCH/notify_listener.c" \
        -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq || die "cannot build the listener"
    $PSQL -c "SELECT name FROM headlessly.subscribe('bench_rt', 'Ping.*', notify => true)" >/dev/null
    cat > "$scripts/ping.sql" <<'SQL'
SELECT headlessly.events_append('Ping.Sent', data => jsonb_build_object('t', extract(epoch FROM clock_timestamp())));
SQL
    # the control: the payload's id is the transaction's id
    cat > "$scripts/ping_control.sql" <<'SQL'
SELECT pg_notify('bench_control', jsonb_build_object('id', txid_current()::text,
    'data', jsonb_build_object('t', extract(epoch FROM clock_timestamp())))::text);
SQL
    # latency of one run: the listener's lines joined to the transactions'
    # commit timestamps (track_commit_timestamp): statement -> received
    # includes the wait for NOTIFY's commit lock; commit -> received is
    # PostgreSQL's delivery to the listening backend and on to the client.
    # latencies FILE control: the ids are transaction ids, not events'.
    latencies() {
        local xact="e.xact_id::text::bigint" from="got g JOIN headlessly.events e ON e.id = g.id"
        [ "${2:-}" != control ] || { xact="g.id::bigint"; from="got g"; }
        head -n -1 "$1" > "$1.lines"
        $PSQL -At -F ' ' <<SQL
CREATE TEMP TABLE got (id text, arrived float8, sent float8);
\\copy got FROM '$1.lines' (DELIMITER ' ')
WITH l AS (
    SELECT (g.arrived - g.sent) * 1000 AS from_statement,
           (g.arrived - extract(epoch FROM pg_xact_commit_timestamp(
                ($xact % 4294967296)::text::xid))) * 1000 AS from_commit
      FROM $from)
SELECT count(*),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY from_statement)::numeric, 2),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY from_statement)::numeric, 2),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY from_commit)::numeric, 2),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY from_commit)::numeric, 2),
       round(max(from_commit)::numeric, 2)
  FROM l;
SQL
    }
    # ping RATE [control]: WRITERS writers, as fast as they can (RATE 0) or
    # at RATE appends (or plain NOTIFYs) a second in all; prints the rate
    # reached and the latencies
    ping() {
        local out=$WORKDIR/listener.$1.$RANDOM lpid tps rate=() channel=bench_rt script=$scripts/ping.sql
        [ "$1" = 0 ] || rate=(-R "$1")
        [ "${2:-}" != control ] || { channel=bench_control; script=$scripts/ping_control.sql; }
        "$WORKDIR/notify_listener" "host=$PGHOST port=$PGPORT dbname=postgres" $channel 10000000 \
            $((SECONDS_PER_RUN + 5)) > "$out" 2> "$out.err" &
        lpid=$!
        sleep 0.5
        if [ -n "${LISTENER_NICE:-}" ]; then
            $SUDO renice -n "$LISTENER_NICE" -p "$lpid" \
                "$(sed -n 's/^backend //p' "$out.err")" >/dev/null || die "cannot renice the listener"
        fi
        tps=$("$PG_BIN/pgbench" -n -M prepared -c "$WRITERS" -j 2 -T "$SECONDS_PER_RUN" "${rate[@]}" \
                  -f "$script" postgres 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
        wait "$lpid" || true
        echo "$tps $(latencies "$out" "${2:-}")"
    }
    for r in $(seq "$ROUNDS"); do
        read -r tps n sp50 sp99 cp50 cp99 cmax <<< "$(ping 0)"
        say "2. round $r: $WRITERS writers as fast as they can, $tps appends/s; $n notifications;" \
            "statement -> received p50 $sp50 ms, p99 $sp99 ms;" \
            "commit -> received p50 $cp50 ms, p99 $cp99 ms, max $cmax ms"
        read -r ctps n sp50 sp99 cp50 cp99 cmax <<< "$(ping 0 control)"
        say "2. round $r, control: $WRITERS writers of plain NOTIFY as fast as they can, $ctps/s;" \
            "$n notifications; statement -> received p50 $sp50 ms, p99 $sp99 ms;" \
            "commit -> received p50 $cp50 ms, p99 $cp99 ms, max $cmax ms"
        # the control at the appends' own rate: the same load of notifications
        half=$(echo "$tps / 2" | bc)
        read -r ctps n sp50 sp99 cp50 cp99 cmax <<< "$(ping "${tps%.*}" control)"
        say "2. round $r, control: $WRITERS writers of plain NOTIFY paced at ${tps%.*}/s (the appends' rate), $ctps/s;" \
            "$n notifications; statement -> received p50 $sp50 ms, p99 $sp99 ms;" \
            "commit -> received p50 $cp50 ms, p99 $cp99 ms, max $cmax ms"
        read -r tps n sp50 sp99 cp50 cp99 cmax <<< "$(ping "$half")"
        say "2. round $r: $WRITERS writers paced at $half appends/s in all (half the above), $tps appends/s;" \
            "$n notifications; statement -> received p50 $sp50 ms, p99 $sp99 ms;" \
            "commit -> received p50 $cp50 ms, p99 $cp99 ms, max $cmax ms"
        read -r ctps n sp50 sp99 cp50 cp99 cmax <<< "$(ping "$half" control)"
        say "2. round $r, control: $WRITERS writers of plain NOTIFY paced at $half/s, $ctps/s;" \
            "$n notifications; statement -> received p50 $sp50 ms, p99 $sp99 ms;" \
            "commit -> received p50 $cp50 ms, p99 $cp99 ms, max $cmax ms"
    done
    ;;
pull)
    $PSQL <<SQL >/dev/null
CREATE TABLE queue (id bigserial PRIMARY KEY, payload jsonb NOT NULL);
CREATE PROCEDURE consume_queue() LANGUAGE plpgsql AS \$\$
DECLARE n bigint;
BEGIN
    LOOP
        WITH taken AS (
            DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100)
            RETURNING id, payload)
        SELECT count(*) INTO n FROM taken;
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END \$\$;
CREATE PROCEDURE consume_subscription() LANGUAGE plpgsql AS \$\$
DECLARE last bigint;
BEGIN
    LOOP
        SELECT seq INTO last FROM headlessly.read('bench_pull', 100) ORDER BY xact_id DESC, seq DESC LIMIT 1;
        EXIT WHEN last IS NULL;
        PERFORM headlessly.ack('bench_pull', last);
        COMMIT;
    END LOOP;
END \$\$;
SELECT count(headlessly.events_append('Pull.Item', data => jsonb_build_object('i', i))) FROM generate_series(1, $N) i;
SQL
    time_ms() { local s; s=$(date +%s%N); $PSQL -c "$1" >/dev/null; echo $(( ($(date +%s%N) - s) / 1000000 )); }
    queue_run() {
        $PSQL -c "INSERT INTO queue (payload) SELECT jsonb_build_object('i', i) FROM generate_series(1, $N) i" >/dev/null
        $PSQL -c "VACUUM ANALYZE queue" >/dev/null
        local ms; ms=$(time_ms 'CALL consume_queue()')
        echo "queue: $ms ms" >&2
        echo "$N * 1000 / $ms" | bc
    }
    pull_run() {
        $PSQL -c "SELECT headlessly.unsubscribe('bench_pull');
                  SELECT name FROM headlessly.subscribe('bench_pull', 'Pull.*', start_at => 'beginning')" >/dev/null
        local ms; ms=$(time_ms 'CALL consume_subscription()')
        echo "pull: $ms ms" >&2
        echo "$N * 1000 / $ms" | bc
    }
    read -r base subj <<< "$(alternate queue_run pull_run)"
    say "3. events/s taken by one consumer, batches of 100: SKIP LOCKED queue $base," \
        "read + ack $subj, ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    ;;
*) die "unknown section $section" ;;
esac
done
