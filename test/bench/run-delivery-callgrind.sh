#!/usr/bin/env bash
# Instructions per append of the delivery benchmark's append section
# (run-delivery-bench.sh append), counted by valgrind's callgrind in the
# server's backend: a free-standing event with no subscription, with a
# webhook subscription that matches it, and with a NOTIFY subscription and a
# webhook subscription that match it.  As in run-stream-callgrind.sh, each
# case is one pgbench client (-M prepared, one statement a transaction) run
# for N1 and N2 transactions, and (I(N2) - I(N1)) / (N2 - N1) is the figure.
# The server is not preloaded (as in the bench): no worker is woken.  Each
# case runs in a database of its own, created for it: on one log shared by
# the cases, each later case would pay for the indexes the earlier ones
# grew (some 6,000 instructions an append at these sizes), which is no cost
# of its subscriptions.
# CALLGRIND_KEEP=PREFIX keeps the client's callgrind files, for
# callgrind_annotate.
# Usage: bash test/bench/run-delivery-callgrind.sh [N1 N2]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/callgrind-lib.sh"
source "$(dirname "$0")/delivery-subscriptions.sh"

N1=${1:-1000}
N2=${2:-2000}
callgrind_cluster
trap cleanup EXIT

as_cluster_user mkdir "$WORKDIR/scripts"
as_cluster_user tee "$WORKDIR/scripts/append.sql" >/dev/null <<'SQL'
SELECT headlessly.events_append('Bench.Appended', data => '{"k": 1}');
SQL

# bench_case_setup "[notify] [webhook]": the extension and the case's subscriptions
bench_case_setup() {
    $PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null
    # shellcheck disable=SC2086
    bench_subscriptions $1
}

echo "| free-standing append (pgbench -M prepared, transactions $N1 to $N2) | instructions per append |"
echo "|---|---|"
for c in "no subscription|" "a webhook subscription|webhook" \
         "a NOTIFY and a webhook subscription|notify webhook"; do
    IFS='|' read -r name which <<<"$c"
    db=case_${which// /_}
    $PSQL -c "CREATE DATABASE $db" >/dev/null
    # psql takes the last -d
    PSQL="$PSQL -d $db" bench_case_setup "$which"
    # a first client pays what the first in a database fresh from CREATE
    # EXTENSION pays once (hint bits of the new catalog rows ...): left out,
    # so that the N1 and N2 runs pay the same one-time costs
    CALLGRIND_DB=$db callgrind_count "$WORKDIR/scripts/append.sql" 20 >/dev/null
    keep=${CALLGRIND_KEEP:+$CALLGRIND_KEEP.${which// /_}}
    echo "| $name | $(CALLGRIND_DB=$db CALLGRIND_KEEP=$keep callgrind_per_transaction "$WORKDIR/scripts/append.sql" "$N1" "$N2") |"
done

as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
