#!/usr/bin/env bash
# Instructions per operation, counted by valgrind's callgrind in a
# single-user backend: repeatable whatever else the machine is doing, so it
# complements the pgbench ratios of run-bench.sh.  Each case runs N times in
# a PL/pgSQL loop (one statement per operation, as a client would send them)
# and once with 10 operations; the difference over N - 10 is the figure.
# Usage: bash test/bench/run-callgrind.sh [N]
source "$(dirname "$0")/../lib.sh"

N=${1:-2010}
ensure_packages
command -v valgrind >/dev/null || { $SUDO apt-get install -y -qq valgrind >/dev/null; }
build_and_install
make_workdir
trap cleanup EXIT

as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync >/dev/null
single() { as_cluster_user "$PG_BIN/postgres" --single -j -D "$WORKDIR/data" postgres; }
single < "$TOP/test/bench/setup.sql" >/dev/null

# name|statement run in the loop ($i is the loop counter)
cases=(
"plain INSERT|INSERT INTO bench.plain_events (type, data, metadata, session_id) VALUES ('page_view', '{\"path\": \"/pricing\"}', '{\"sessionId\": \"s1\"}', 's1')"
"events_append, no target|PERFORM headlessly.events_append('page_view', data => '{\"path\": \"/pricing\"}', metadata => '{\"sessionId\": \"s1\"}')"
"events_append, no target, new idempotency key|PERFORM headlessly.events_append('page_view', data => '{\"path\": \"/pricing\"}', source => 'web', external_event_id => 'k' || i)"
"events_append, no target, duplicate idempotency key|PERFORM headlessly.events_append('page_view', data => '{\"path\": \"/pricing\"}', source => 'web', external_event_id => 'dup')"
"events_append_batch of 100 events with new keys (per batch)|PERFORM count(*) FROM headlessly.events_append_batch((SELECT jsonb_agg(jsonb_build_object('type', 'page_view', 'external_event_id', 'b' || i || '_' || j)) FROM generate_series(1, 100) j))"
"PL/pgSQL store, entity update|PERFORM bench.pl_append('Account.Updated', 'acct_' || (i % 1000 + 1), jsonb_build_object('n', i))"
"events_append, entity update|PERFORM headlessly.events_append('Account.Updated', 'acct_' || (i % 1000 + 1), jsonb_build_object('n', i))"
"INSERT, uncaptured table|INSERT INTO bench.contacts_plain (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead')"
"INSERT, PL/pgSQL audit trigger|INSERT INTO bench.contacts_audited (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead')"
"INSERT, captured table|INSERT INTO bench.contacts_captured (name, email, stage) VALUES ('Alice', 'alice@example.com', 'lead')"
)

count() {
    local n=$1 stmt=$2 out=$WORKDIR/cg.$RANDOM
    echo "DO \$\$ BEGIN FOR i IN 1..$n LOOP $stmt; END LOOP; END \$\$;" |
        as_cluster_user valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            "$PG_BIN/postgres" --single -D "$WORKDIR/data" postgres 2>&1 |
        sed -n 's/.*Collected : //p'
}

echo "| operation | instructions per operation |"
echo "|---|---|"
for c in "${cases[@]}"; do
    name=${c%%|*}; stmt=${c#*|}
    base=$(count 10 "$stmt")
    full=$(count "$N" "$stmt")
    echo "| $name | $(( (full - base) / (N - 10) )) |"
done
