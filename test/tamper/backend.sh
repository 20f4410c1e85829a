# Sourced by test/tamper/run.sh: src/tamper/ in the backend, on real rows of
# headlessly.events, through the test module test/tamper/module (built from
# the same sources, loaded by path, never installed), and cross-checked with
# test/tools/hl_verify.py on an export made by test/tools/export.sql.
# Uses test/lib.sh for the build and the throwaway cluster.

source "$TOP/test/lib.sh"
ensure_packages
build_and_install
make_workdir
trap 'cleanup; cleanup_work' EXIT

echo "==> building the test module"
mkdir "$WORKDIR/module"
cp "$TOP"/test/tamper/module/* "$WORKDIR/module/"
make -C "$WORKDIR/module" -s PG_CONFIG="$PG_CONFIG" TAMPER_DIR="$TOP/src/tamper"
chmod -R a+rX "$WORKDIR/module"

start_cluster
trap 'cleanup; cleanup_work' EXIT
PSQL=$PG_BIN/psql
export PGCLIENTENCODING=UTF8
psql_q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE EXTENSION headlessly_events"
psql_q -v lib="$WORKDIR/module/hl_tamper_test.so" -f "$WORKDIR/module/hl_tamper_test.sql"

echo "==> signing keys the server can use"
BKEYS=$WORKDIR/keys
mkdir "$BKEYS"
(
    cd "$BKEYS"
    umask 077
    openssl genpkey -algorithm ed25519 -out ed25519.pem 2>/dev/null
    openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out rsa.pem 2>/dev/null
    openssl genpkey -algorithm ed25519 -aes-128-cbc -pass pass:secret -out encrypted.pem 2>/dev/null
    echo "not a key" > garbage.pem
    cp ed25519.pem world-readable.pem && chmod 644 world-readable.pem
    cp ed25519.pem "$WORKDIR/data/inside.pem"
    ln -s "$WORKDIR/data/inside.pem" link-inside.pem
)
chown -R "$CLUSTER_USER" "$BKEYS" "$WORKDIR/data/inside.pem"
chmod 755 "$BKEYS"
if [ "$(id -u)" = 0 ]; then
    cp "$BKEYS/ed25519.pem" "$BKEYS/other-owner.pem"
    chown nobody "$BKEYS/other-owner.pem" && chmod 644 "$BKEYS/other-owner.pem"
    cp "$BKEYS/ed25519.pem" "$BKEYS/root-only.pem"
    chown root "$BKEYS/root-only.pem" && chmod 600 "$BKEYS/root-only.pem"
fi

echo "==> backend checks"
psql_q -v keydir="$BKEYS" -v datadir="$WORKDIR/data" -f "$TOP/test/tamper/backend.sql" \
    > "$WORKDIR/backend.out" 2>&1 || echo "not ok - backend.sql stopped" >> "$WORKDIR/backend.out"
if [ "$(id -u)" != 0 ]; then
    # without root there is no file of another owner to try
    sed -i -E 's/^[^o].* - a key owned by another user: F0000$/ok - (skipped: not root) a key owned by another user/;
               s/^[^o].* - a key the server cannot read: 42501$/ok - (skipped: not root) a key the server cannot read/' \
        "$WORKDIR/backend.out"
fi
cat "$WORKDIR/backend.out"
b_ok=$(grep -c '^ok - ' "$WORKDIR/backend.out" || true)
b_bad=$(grep -vc '^ok - ' "$WORKDIR/backend.out" || true)
passed=$((passed + b_ok)); failed=$((failed + b_bad))

sig=$(sed -n 1p "$BKEYS/backend-signature.txt" 2>/dev/null || true)
pub=$(sed -n 2p "$BKEYS/backend-signature.txt" 2>/dev/null || true)
if TOP=$TOP python3 - "$sig" "$pub" <<'EOF'
import base64, hashlib, os, sys
sys.path.insert(0, os.path.join(os.environ["TOP"], "test", "tools"))
import hl_verify
sig, pub = base64.b64decode(sys.argv[1]), base64.b64decode(sys.argv[2])
sys.exit(0 if hl_verify.ed25519_verify(pub, hashlib.sha256(b"x").digest(), sig) else 1)
EOF
then ok "the backend's signature of a checkpoint hash verifies outside"
else not_ok "the backend's signature of a checkpoint hash verifies outside"
fi

echo "==> the export, checked outside"
"$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -f "$TOP/test/tools/export.sql" > "$WORKDIR/events.jsonl"
"$PSQL" -X -A -t -F $'\t' -v ON_ERROR_STOP=1 -c \
    "SELECT id, encode(canonical, 'hex'), encode(hash, 'hex') FROM tamper_test.event_hashes('headlessly.events') ORDER BY seq" \
    > "$WORKDIR/c.tsv"
$VERIFY canonical "$WORKDIR/events.jsonl" > "$WORKDIR/py.tsv"
if [ -s "$WORKDIR/c.tsv" ] && cmp -s "$WORKDIR/c.tsv" "$WORKDIR/py.tsv"; then
    ok "hl_verify.py rebuilds every canonical form and hash the backend made ($(wc -l < "$WORKDIR/c.tsv") events)"
else
    diff "$WORKDIR/c.tsv" "$WORKDIR/py.tsv" | head -n 10
    not_ok "hl_verify.py rebuilds every canonical form and hash the backend made"
fi

# One checkpoint per tenant sealing everything, made with the backend's
# functions; the stored hashes and checkpoint go to hl_verify.py.
"$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 > "$WORKDIR/checkpoints.jsonl" <<'EOF'
SET client_encoding = 'UTF8';
WITH per AS (
  SELECT e.tenant, tamper_test.merkle_root(array_agg(h.hash ORDER BY h.seq)) AS root,
         count(*) AS n, min(h.seq) AS first_seq, max(h.seq) AS last_seq
  FROM tamper_test.event_hashes('headlessly.events') h JOIN headlessly.events e USING (seq)
  GROUP BY e.tenant)
SELECT json_build_object('tenant', tenant, 'number', 1, 'prev_hash', repeat('0', 64),
         'root', encode(root, 'hex'), 'count', n, 'first_seq', first_seq, 'last_seq', last_seq,
         'hash', encode(tamper_test.checkpoint_hash(tenant, 1, '\x0000000000000000000000000000000000000000000000000000000000000000',
                                                     root, n, first_seq, last_seq), 'hex'))
FROM per ORDER BY tenant;
EOF
python3 - "$WORKDIR/events.jsonl" "$WORKDIR/c.tsv" "$WORKDIR/sealed.jsonl" <<'EOF'
import json, sys
hashes = dict(line.rstrip("\n").split("\t")[0::2] for line in open(sys.argv[2]))
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        ev = json.loads(line)
        ev["hash"] = hashes[ev["id"]]
        ev["checkpoint"] = 1
        out.write(json.dumps(ev, ensure_ascii=False) + "\n")
EOF
if $VERIFY verify "$WORKDIR/sealed.jsonl" --checkpoints "$WORKDIR/checkpoints.jsonl" > "$WORKDIR/verify.out" &&
   [ "$(cut -f2 "$WORKDIR/verify.out" | sort -u)" = t ]; then
    ok "hl_verify.py accepts the backend's hashes, roots and checkpoint hashes"
else
    cat "$WORKDIR/verify.out"; not_ok "hl_verify.py accepts the backend's hashes, roots and checkpoint hashes"
fi

# An inclusion proof built from the backend's audit path, for an event in
# the middle of the first tenant's tree, checked with the event itself.
"$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 > "$WORKDIR/proof.json" <<'EOF'
SET client_encoding = 'UTF8';
WITH t AS (SELECT 'acme' AS tenant),
leaves AS (
  SELECT h.seq, h.id, h.prev, h.hash, row_number() OVER (ORDER BY h.seq) - 1 AS idx
  FROM tamper_test.event_hashes('headlessly.events', 'acme') h),
tree AS (SELECT array_agg(hash ORDER BY seq) AS hashes, count(*) AS n,
                min(seq) AS first_seq, max(seq) AS last_seq FROM leaves),
me AS (SELECT * FROM leaves WHERE idx = (SELECT n / 2 FROM tree)),
cp AS (SELECT tamper_test.merkle_root(hashes) AS root, n, first_seq, last_seq, hashes FROM tree)
SELECT json_build_object(
  'event_id', me.id, 'seq', me.seq, 'event_hash', encode(me.hash, 'hex'),
  'prev_hash', encode(me.prev, 'hex'), 'leaf_index', me.idx, 'tree_size', cp.n,
  'path', (SELECT json_agg(encode(p, 'hex') ORDER BY ord)
           FROM unnest(tamper_test.audit_path(cp.hashes, me.idx)) WITH ORDINALITY AS u(p, ord)),
  'root', encode(cp.root, 'hex'),
  'checkpoint', json_build_object('tenant', 'acme', 'number', 1, 'prev_hash', repeat('0', 64),
     'root', encode(cp.root, 'hex'), 'count', cp.n, 'first_seq', cp.first_seq, 'last_seq', cp.last_seq,
     'hash', encode(tamper_test.checkpoint_hash('acme', 1, '\x0000000000000000000000000000000000000000000000000000000000000000',
                                                 cp.root, cp.n, cp.first_seq, cp.last_seq), 'hex')))
FROM me, cp;
EOF
event_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["event_id"])' "$WORKDIR/proof.json")
grep -F "\"$event_id\"" "$WORKDIR/events.jsonl" > "$WORKDIR/event.json"
if $VERIFY proof "$WORKDIR/proof.json" --event "$WORKDIR/event.json" \
       --checkpoints "$WORKDIR/checkpoints.jsonl" --digest <(python3 -c '
import json, sys
print(json.dumps({"tenants": [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]}))' \
       "$WORKDIR/checkpoints.jsonl"); then
    ok "hl_verify.py checks the backend's inclusion proof from the event up to a kept digest"
else
    not_ok "hl_verify.py checks the backend's inclusion proof from the event up to a kept digest"
fi

echo "==> a database whose encoding is not UTF-8"
psql_q -c "CREATE DATABASE latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
PGDATABASE=latin1 psql_q -c "CREATE EXTENSION headlessly_events"
PGDATABASE=latin1 psql_q -v lib="$WORKDIR/module/hl_tamper_test.so" -f "$WORKDIR/module/hl_tamper_test.sql"
same_event="SELECT encode(tamper_test.canonical_of(7, 'evt_x', 'tenänt', 'Café.Créé', 'cible_é', 1, 'acteur',
    NULL, NULL, NULL, '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00',
    '{\"clé\": \"été\", \"n\": 1.50}', NULL, '{\"ü\": true}', 'brut é'), 'hex')"
utf8_form=$("$PSQL" -X -A -t -v ON_ERROR_STOP=1 -c "SET client_encoding = 'UTF8'; $same_event" | tail -n 1)
latin1_form=$(PGDATABASE=latin1 "$PSQL" -X -A -t -v ON_ERROR_STOP=1 -c "SET client_encoding = 'UTF8'; $same_event" | tail -n 1)
if [ -n "$utf8_form" ] && [ "$utf8_form" = "$latin1_form" ] &&
   printf '%s' "$utf8_form" | grep -q c3a974c3a9; then   # "été" in UTF-8
    ok "a LATIN1 database writes the same UTF-8 canonical form as a UTF-8 one"
else
    not_ok "a LATIN1 database writes the same UTF-8 canonical form as a UTF-8 one ($utf8_form vs $latin1_form)"
fi

if command -v valgrind >/dev/null; then
    echo "==> the backend code under valgrind (single-user postgres)"
    "$PG_BIN/pg_ctl" --version >/dev/null
    as_cluster_user pg_ctl -D "$WORKDIR/data" -w stop >/dev/null
    # Every error whose stack passes through src/tamper or the test module
    # counts; PostgreSQL itself is not built for valgrind here, so errors
    # elsewhere (uninitialised padding written to disk ...) are not ours.
    as_cluster_user valgrind --error-limit=no --num-callers=30 --log-file="$WORKDIR/valgrind.%p" \
        "$PG_BIN/postgres" --single -D "$WORKDIR/data" postgres > "$WORKDIR/single.out" 2>&1 <<EOSQL || true
SELECT count(tamper_test.canonical(e)) FROM headlessly.events e
SELECT count(*) FROM tamper_test.event_hashes('headlessly.events')
SELECT * FROM tamper_test.scan('headlessly.events', 'hash')
SELECT tamper_test.jsonb_text(jsonb_object_agg('k' || i, jsonb_build_array(i / 7.0, repeat(E'\\n', i), NULL))) FROM generate_series(1, 100) i
SELECT tamper_test.audit_path(array_agg(hash ORDER BY seq), 3) FROM tamper_test.event_hashes('headlessly.events')
SELECT tamper_test.checkpoint_hash('tenänt', 1, sha256('a'), sha256('b'), 2, 3, 4)
SELECT * FROM tamper_test.sign('$BKEYS/ed25519.pem', sha256('x'))
SELECT * FROM tamper_test.sign('$BKEYS/rsa.pem', sha256('x'))
SELECT * FROM tamper_test.sign('$WORKDIR/data/inside.pem', sha256('x'))
EOSQL
    ours=$(cat "$WORKDIR"/valgrind.* | awk '
        /^==[0-9]+== [A-Z]/ && !/HEAP SUMMARY|LEAK SUMMARY|ERROR SUMMARY|Memcheck|Copyright|Using Valgrind|Command:|Parent PID/ { block = $0; in_block = 1; next }
        in_block && /^==[0-9]+== *$/ { if (block ~ /hl_tamper_test|canonical\.c|hash\.c|merkle\.c|checkpoint\.c|sign\.c/) n++; in_block = 0; next }
        in_block { block = block "\n" $0 }
        END { print n + 0 }')
    if grep -q "signing key file .* inside the data directory" "$WORKDIR/single.out" && [ "$ours" = 0 ]; then
        ok "valgrind: no invalid access in src/tamper in the backend"
    else
        cat "$WORKDIR"/valgrind.* | grep -B2 -A25 -E "hl_tamper_test|canonical\.c|hash\.c|merkle\.c" | head -n 80
        not_ok "valgrind: no invalid access in src/tamper in the backend ($ours errors)"
    fi
fi
