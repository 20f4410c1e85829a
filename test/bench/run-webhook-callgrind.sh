#!/usr/bin/env bash
# Instructions the background worker spends per webhook event, counted by
# valgrind's callgrind (a figure a loaded machine does not change, unlike
# the CPU time of run-webhook-bench.sh).  For each N1:N2:TARGETS of
# BACKLOGS (default "500:1000:100 100:200:1"; multiples of 100), two lives
# of the worker: in each, N events over TARGETS targets are appended while
# the subscription is paused, then it is resumed, and once the receiver has
# the N requests the server is stopped (callgrind writes the worker's file
# then).  (I(N2) - I(N1)) / (N2 - N1) leaves out the worker's start and
# idle rounds: it is its whole work for an event (claim, documents,
# bodies, signatures, libcurl, recording the outcomes, its transactions),
# not the receiver's.
# CALLGRIND_KEEP=PREFIX keeps the dumps, for callgrind_annotate.
# Usage: [BACKLOGS="N1:N2:TARGETS ..."] bash test/bench/run-webhook-callgrind.sh
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/callgrind-lib.sh"
source "$(dirname "$0")/bench-lib.sh"

BACKLOGS=${BACKLOGS:-500:1000:100 100:200:1}
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

callgrind_cluster
trap 'kill $RECEIVER_PID 2>/dev/null; cleanup' EXIT
# the worker needs the library preloaded
$PSQL -c "ALTER SYSTEM SET shared_preload_libraries = 'headlessly_events'" >/dev/null
stop_server() { as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null; }
start_server() {
    as_cluster_user valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$WORKDIR/cg/callgrind.%p" \
        "$PG_BIN/postgres" -D "$WORKDIR/data" >>"$WORKDIR/server.log" 2>&1 &
    until as_cluster_user "$PG_BIN/pg_isready" -q; do sleep 1; done
}
stop_server
start_server

python3 "$TOP/test/tools/webhook_receiver.py" --port-file "$WORKDIR/receiver.port" \
    --log "$WORKDIR/receiver.jsonl" --secret "$SECRET" >"$WORKDIR/receiver.out" 2>&1 &
RECEIVER_PID=$!
for _ in $(seq 100); do [ -s "$WORKDIR/receiver.port" ] && break; sleep 0.1; done
[ -s "$WORKDIR/receiver.port" ] || die "the receiver did not start"
URL=http://127.0.0.1:$(cat "$WORKDIR/receiver.port")
received() { python3 -c "import urllib.request as u; print(u.urlopen('$URL/_count').read().decode())"; }

$PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null
$PSQL -c "SELECT name FROM headlessly.subscribe('backlog', 'backlog_item', url => '$URL/ok/backlog', secret => '$SECRET')" >/dev/null

# worker_life N TARGETS: the instructions of one worker's life, from its
# start to its end, during which it delivers N events over TARGETS targets
# (the worker writes its callgrind file when it exits, here when the
# server stops)
worker_life() {
    local n=$1 targets=$2 wpid= base deadline file
    # a worker of its own: the server starts again
    $PSQL -c "SELECT headlessly.pause('backlog')" >/dev/null
    stop_server
    start_server
    for _ in $(seq 300); do
        wpid=$(worker_pid)
        [ -n "$wpid" ] && break
        sleep 1
    done
    [ -n "$wpid" ] || die "no worker"
    backlog_sql "$n" "$targets" 100 | $PSQL >/dev/null
    $PSQL -c "VACUUM ANALYZE headlessly.deliveries" >/dev/null
    base=$(received)
    $PSQL -c "SELECT headlessly.resume('backlog')" >/dev/null
    deadline=$((SECONDS + 900))
    while [ "$(received)" -lt $((base + n)) ]; do
        [ $SECONDS -lt $deadline ] || die "the receiver got $(($(received) - base)) of $n requests in 900 s"
        sleep 0.5
    done
    # the round that sent the last one records it: let it end
    sleep 2
    stop_server
    start_server
    file=$WORKDIR/cg/callgrind.$wpid
    for _ in $(seq 120); do
        grep -q "^summary:" "$file" 2>/dev/null && break
        sleep 1
    done
    grep -q "^summary:" "$file" || die "no callgrind file of worker $wpid"
    [ -z "${CALLGRIND_KEEP:-}" ] || cp "$file" "$CALLGRIND_KEEP.$n.$targets"
    # totals: in a child of the postmaster, summary stays what it was at the fork
    sed -n 's/^totals: //p' "$file"
}

echo "| events over targets | worker instructions per event: (I(N2) - I(N1)) / (N2 - N1), one worker life each |"
echo "|---|---|"
for spec in $BACKLOGS; do
    IFS=: read -r n1 n2 targets <<<"$spec"
    i1=$(worker_life "$n1" "$targets")
    i2=$(worker_life "$n2" "$targets")
    echo "| $n1 and $n2 events over $targets target(s) | $(( (i2 - i1) / (n2 - n1) )) |"
done
$PSQL -c "SELECT headlessly.unsubscribe('backlog')" >/dev/null
stop_server
# the server's children write their files as they exit, after it
while pgrep -u "$CLUSTER_USER" -f "valgrind.*$WORKDIR/data" >/dev/null; do sleep 1; done
