#!/usr/bin/env bash
# Delivery benchmarks of headlessly_events on a throwaway cluster; each side
# of a comparison measured alternately in the same run (ROUNDS rounds), with
# medians and their ratio:
#   append  1. appends (4 clients, free-standing events) with one NOTIFY
#              subscription and one webhook subscription matching them /
#              with no subscription (events/s): what matching against the
#              per-backend subscription cache and NOTIFY cost an append;
#   notify  2. commit -> notification received by a LISTENing client, with 8
#              writers appending as fast as they can: p50, p99 and max (ms);
#   pull    3. read + ack of N events (batches of 100, one transaction per
#              batch) by one consumer / the same N rows taken from a queue
#              table with DELETE ... FOR UPDATE SKIP LOCKED (events/s).
# Usage: bash test/bench/run-delivery-bench.sh [SECONDS] [ROUNDS] [N] [SECTION...]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
N=${3:-100000}
shift 3 2>/dev/null || shift $#
SECTIONS=${*:-append notify pull}

bench_cluster "synchronous_commit = off"
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
        $PSQL -c "SELECT headlessly.unsubscribe('bench_notify'), headlessly.unsubscribe('bench_webhook')" >/dev/null
        for s in "$@"; do
            case $s in
                notify) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_notify', 'Bench.*', notify => true)" >/dev/null ;;
                webhook) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_webhook', 'Bench.*', url => 'http://127.0.0.1:9/')" >/dev/null ;;
            esac
        done
        pgbench_tps 4 "$scripts/append.sql"
    }
    read -r base subj <<< "$(alternate subs 'subs webhook')"
    say "1a. appends/s, 4 clients: no subscription $base, a webhook subscription $subj," \
        "ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    read -r base subj <<< "$(alternate subs 'subs notify webhook')"
    say "1b. appends/s, 4 clients: no subscription $base, NOTIFY + webhook subscriptions $subj," \
        "ratio $(echo "$subj / $base" | bc -l | cut -c1-5)"
    $PSQL -c "SELECT headlessly.unsubscribe('bench_notify'), headlessly.unsubscribe('bench_webhook')" >/dev/null
    ;;
notify)
    gcc -O2 -o "$WORKDIR/notify_listener" "$BENCH/notify_listener.c" \
        -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq || die "cannot build the listener"
    $PSQL -c "SELECT name FROM headlessly.subscribe('bench_rt', 'Ping.*', notify => true)" >/dev/null
    cat > "$scripts/ping.sql" <<'SQL'
SELECT headlessly.events_append('Ping.Sent', data => jsonb_build_object('t', extract(epoch FROM clock_timestamp())));
SQL
    for r in $(seq "$ROUNDS"); do
        out=$WORKDIR/listener.$r
        "$WORKDIR/notify_listener" "host=$PGHOST port=$PGPORT dbname=postgres" bench_rt 1000000 \
            $((SECONDS_PER_RUN + 5)) > "$out" &
        lpid=$!
        sleep 0.5
        tps=$(pgbench_tps 8 "$scripts/ping.sql")
        wait "$lpid"
        read -r n p50 p99 max <<< "$(tail -1 "$out")"
        say "2. round $r: 8 writers at $tps appends/s; $n notifications, commit -> received" \
            "p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
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
