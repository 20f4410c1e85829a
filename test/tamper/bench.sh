#!/usr/bin/env bash
# What tamper evidence costs per event: the canonical form and SHA-256 of an
# event with a 200-byte data object.
#   1. instructions (valgrind callgrind, repeatable), frontend driver: framing
#      and hashing of texts, and backend (single-user postgres): a walk over
#      the rows that only deforms them, against one that also builds the
#      canonical form (jsonb walked, timestamps formatted), and one that also
#      hashes, chains and adds each hash to a Merkle tree;
#   2. throughput over N rows (default 1,000,000) in a running server, the
#      three walks alternated, best of ROUNDS; and the Merkle root of a
#      checkpoint of 100,000 and 1,000,000 events.
# Usage: PG_BIN=... bash test/tamper/bench.sh [N] [ROUNDS]
set -eu
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-1000000}
ROUNDS=${2:-3}
source "$TOP/test/lib.sh"
ensure_packages
command -v valgrind >/dev/null || { $SUDO apt-get install -y -qq valgrind >/dev/null; }
build_and_install
make_workdir
trap cleanup EXIT

mkdir "$WORKDIR/module"
cp "$TOP"/test/tamper/module/* "$WORKDIR/module/"
make -C "$WORKDIR/module" -s PG_CONFIG="$PG_CONFIG" TAMPER_DIR="$TOP/src/tamper"
chmod -R a+rX "$WORKDIR/module"
cc $($PG_CONFIG --cflags) -DFRONTEND -DUSE_PRIVATE_ENCODING_FUNCS -I"$TOP/src" -I"$($PG_CONFIG --includedir-server)" \
    -o "$WORKDIR/tamper_test" "$TOP/test/tamper/tamper_test.c" "$TOP"/src/tamper/*.c \
    -L"$($PG_CONFIG --pkglibdir)" -lpgcommon -lpgport -lcrypto -lm

callgrind() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : //p'
}

echo "==> frontend: framing and SHA-256 of an event whose fields are already text"
a=$(callgrind "$WORKDIR/tamper_test" bench 1000)
b=$(callgrind "$WORKDIR/tamper_test" bench 11000)
echo "instructions per event: $(( (b - a) / 10000 ))"
"$WORKDIR/tamper_test" bench 1000000
echo "==> a checkpoint's Merkle tree"
"$WORKDIR/tamper_test" merkle 100000
"$WORKDIR/tamper_test" merkle 1000000

# The rows: the log's 16 covered columns, 90% of events on 100,000 streams.
SETUP="
CREATE TABLE bench_events AS
SELECT i::bigint AS seq,
       'evt_' || lpad(to_hex(i), 18, '0') AS id,
       'tenant_' || (i % 10) AS tenant,
       CASE WHEN i % 10 = 0 THEN 'page_view' ELSE 'Contact.Updated' END AS type,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'contact_' || (i % 100000) END AS target,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (i / 100000 + 1)::bigint END AS version,
       'agent_' || (i % 50) AS actor, 'API' AS source, 'internal' AS source_type,
       NULL::text AS external_event_id,
       timestamptz '2026-01-01' + i * interval '1 second' AS occurred_at,
       timestamptz '2026-01-01' + i * interval '1 second' + interval '0.123456 s' AS recorded_at,
       jsonb_build_object('name', 'Alice Example', 'email', 'alice' || i || '@example.com',
                          'stage', 'qualified', 'score', i % 100, 'tags', jsonb_build_array('vip', 'newsletter'),
                          'address', jsonb_build_object('city', 'Lisbon', 'zip', '1100-148'),
                          'owner', 'agent_7') AS data,
       NULL::jsonb AS before,
       CASE WHEN i % 4 = 0 THEN jsonb_build_object('sessionId', 's' || (i % 1000)) END AS metadata,
       NULL::text AS raw_payload
FROM generate_series(1, \$n) i;
CREATE UNIQUE INDEX ON bench_events (seq);
VACUUM ANALYZE bench_events;
"

start_cluster "shared_buffers = 1GB" "work_mem = 64MB"
psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE EXTENSION headlessly_events"
psql_q -v lib="$WORKDIR/module/hl_tamper_test.so" -f "$WORKDIR/module/hl_tamper_test.sql"
printf '%s\n' "${SETUP//\$n/$N}" | psql_q
printf '%s\n' "${SETUP//\$n/20000}" | sed 's/bench_events/bench_small/g' | psql_q
echo "data object: $(psql_q -At -c "SELECT round(avg(octet_length(data::text))) FROM bench_events") bytes of jsonb text on average"

echo "==> backend instructions (single-user postgres, 20,000 rows)"
as_cluster_user pg_ctl -D "$WORKDIR/data" -w stop >/dev/null
single() { as_cluster_user valgrind --tool=callgrind --callgrind-out-file=/dev/null \
               "$PG_BIN/postgres" --single -D "$WORKDIR/data" postgres 2>&1 |
               sed -n 's/.*Collected : //p'; }
baseline=$(echo "SELECT 1" | single)
declare -A ins
for mode in scan canonical hash; do
    ins[$mode]=$(echo "SELECT events FROM tamper_test.scan('bench_small', '$mode')" | single)
    echo "  $mode: $(( (ins[$mode] - baseline) / 20000 )) instructions per event (whole walk)"
done
echo "  canonical form: $(( (ins[canonical] - ins[scan]) / 20000 )) per event"
echo "  SHA-256, chain, Merkle leaf: $(( (ins[hash] - ins[canonical]) / 20000 )) per event"
as_cluster_user pg_ctl -D "$WORKDIR/data" -l "$WORKDIR/server.log" -w start >/dev/null

echo "==> backend throughput over $N rows, best of $ROUNDS, modes alternated"
declare -A best
for round in $(seq 1 "$ROUNDS"); do
    for mode in scan canonical hash; do
        t=$( { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 <<EOF
\timing on
SELECT events FROM tamper_test.scan('bench_events', '$mode');
EOF
        } | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
        if [ -z "${best[$mode]:-}" ] || awk "BEGIN { exit !($t < ${best[$mode]}) }"; then best[$mode]=$t; fi
    done
done
for mode in scan canonical hash; do
    awk -v m="$mode" -v t="${best[$mode]}" -v n="$N" \
        'BEGIN { printf "  %-9s %8.0f ms  %9.0f events/s\n", m, t, n / (t / 1000) }'
done
