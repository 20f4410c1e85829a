#!/usr/bin/env bash
# Instructions per append of the delivery benchmark's append section
# (run-delivery-bench.sh append), counted by valgrind's callgrind in the
# server's backend: a free-standing event with no subscription, with a
# webhook subscription that matches it, and with a NOTIFY subscription and a
# webhook subscription that match it.  As in run-stream-callgrind.sh, each
# case is one pgbench client (-M prepared, one statement a transaction) run
# for N1 and N2 transactions, and (I(N2) - I(N1)) / (N2 - N1) is the figure.
# The server is not preloaded (as in the bench): no worker is woken.
# Usage: bash test/bench/run-delivery-callgrind.sh [N1 N2]
source "$(dirname "$0")/../lib.sh"

N1=${1:-1000}
N2=${2:-2000}
ensure_packages
command -v valgrind >/dev/null || { $SUDO apt-get install -y -qq valgrind >/dev/null; }
build_and_install
make_workdir
trap cleanup EXIT

PGPORT=$(( 20000 + $$ % 20000 ))
PGHOST=$WORKDIR
PGUSER=postgres
export PGPORT PGHOST PGUSER
as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\nautovacuum = off\nsynchronous_commit = off\n" \
    "$WORKDIR" "$PGPORT" | as_cluster_user tee -a "$WORKDIR/data/postgresql.conf" >/dev/null

as_cluster_user mkdir "$WORKDIR/cg"
as_cluster_user valgrind --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$WORKDIR/cg/callgrind.%p" \
    "$PG_BIN/postgres" -D "$WORKDIR/data" >"$WORKDIR/server.log" 2>&1 &
until as_cluster_user "$PG_BIN/pg_isready" -q; do sleep 1; done
PSQL="as_cluster_user $PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d postgres"
$PSQL -c "CREATE EXTENSION headlessly_events" >/dev/null

# instructions of the backend of pgbench's client in one run of n
# transactions (callgrind writes a backend's file when it exits)
count() {
    local file=$1 n=$2 before new client=
    before=$(ls "$WORKDIR"/cg/callgrind.* | sort)
    as_cluster_user "$PG_BIN/pgbench" -n -M prepared -c 1 -t "$n" -f "$file" postgres >/dev/null 2>&1 ||
        die "pgbench failed on $file"
    for _ in $(seq 600); do
        new=$(comm -13 <(echo "$before") <(ls "$WORKDIR"/cg/callgrind.* | sort))
        if [ -n "$new" ] && [ -z "$(grep -L "^summary:" $new)" ]; then
            client=$(grep -l "PortalStart" $new | head -n 1)
            [ -n "$client" ] && break
        fi
        sleep 1
    done
    [ -n "$client" ] || die "no backend of pgbench's client for $file"
    sed -n 's/^summary: //p' "$client"
    [ -z "${KEEP:-}" ] || cp "$client" "$KEEP.$n"
    rm -f $new
}

per_transaction() {
    local low high
    low=$(count "$1" "$2")
    high=$(count "$1" "$3")
    echo $(( (high - low) / ($3 - $2) ))
}

subs() {
    $PSQL -c "SELECT headlessly.unsubscribe('bench_notify'), headlessly.unsubscribe('bench_webhook')" >/dev/null
    for s in "$@"; do
        case $s in
            notify) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_notify', 'Bench.*', notify => true)" >/dev/null ;;
            webhook) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_webhook', 'Bench.*', url => 'http://127.0.0.1:9/')" >/dev/null ;;
        esac
    done
}

as_cluster_user mkdir "$WORKDIR/scripts"
as_cluster_user tee "$WORKDIR/scripts/append.sql" >/dev/null <<'SQL'
SELECT headlessly.events_append('Bench.Appended', data => '{"k": 1}');
SQL

echo "| free-standing append (pgbench -M prepared, transactions $N1 to $N2) | instructions per append |"
echo "|---|---|"
for c in "no subscription|" "a webhook subscription|webhook" \
         "a NOTIFY and a webhook subscription|notify webhook"; do
    IFS='|' read -r name which <<<"$c"
    # shellcheck disable=SC2086
    subs $which
    KEEP=${CALLGRIND_KEEP:+$CALLGRIND_KEEP.${which// /_}}
    echo "| $name | $(KEEP=$KEEP per_transaction "$WORKDIR/scripts/append.sql" "$N1" "$N2") |"
done

as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w stop >/dev/null
