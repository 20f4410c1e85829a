#!/usr/bin/env bash
# Tests of src/tamper/ (tamper evidence's building blocks), before any SQL
# API exists:
#   1. a frontend driver compiled from src/tamper/*.c with -DFRONTEND against
#      libpgcommon, libpgport and OpenSSL (test/tamper/tamper_test.c);
#   2. the outside verifier test/tools/hl_verify.py against the C, both ways,
#      and against exports tampered with in every way the contract lists;
#   3. with BACKEND=1 (default when PostgreSQL can be started): the backend
#      code on real rows of headlessly.events, through a small test module
#      (test/tamper/module), cross-checked with hl_verify.py.
# Ends with "tamper: N passed, N failed"; exits non-zero on any failure.
# Usage: PG_BIN=/usr/lib/postgresql/15/bin bash test/tamper/run.sh
set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BIN/pg_config
BACKEND=${BACKEND:-1}
VERIFY="python3 $TOP/test/tools/hl_verify.py"

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
missing=""
command -v python3 >/dev/null || missing="$missing python3"
command -v openssl >/dev/null || missing="$missing openssl"
command -v cc >/dev/null || missing="$missing gcc"
[ -f /usr/include/openssl/evp.h ] || missing="$missing libssl-dev"
if [ -n "$missing" ]; then
    echo "==> installing:$missing"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

WORK=$(mktemp -d /tmp/hl_tamper.XXXXXX)
chmod 755 "$WORK"
cleanup_work() { rm -rf "$WORK"; }
trap cleanup_work EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
# count the "N passed, N failed" line of a sub-test
tally() {
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 || true)
    if [ -z "$line" ]; then not_ok "$2: no result line"; return; fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" = 0 ] || grep -E '^(not ok|#)' "$1" || true
}

echo "==> building the frontend test driver"
cc $($PG_CONFIG --cflags) -Werror -DFRONTEND -DUSE_PRIVATE_ENCODING_FUNCS -I"$TOP/src" -I"$($PG_CONFIG --includedir-server)" \
    -o "$WORK/tamper_test" "$TOP/test/tamper/tamper_test.c" "$TOP"/src/tamper/*.c \
    -L"$($PG_CONFIG --pkglibdir)" -L"$($PG_CONFIG --libdir)" -lpgcommon -lpgport -lcrypto -lm

echo "==> signing keys"
KEYS=$WORK/keys
mkdir -p "$KEYS/data" "$KEYS/dir.pem"
(
    cd "$KEYS"
    umask 077
    openssl genpkey -algorithm ed25519 -out ed25519.pem 2>/dev/null
    cp ed25519.pem data/inside.pem
    ln -s data/inside.pem link-inside.pem
    openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out rsa.pem 2>/dev/null
    openssl genpkey -algorithm ed25519 -aes-128-cbc -pass pass:secret -out encrypted.pem 2>/dev/null
    openssl pkey -in ed25519.pem -pubout -out public.pem
    echo "not a key" > garbage.pem
    cp ed25519.pem world-readable.pem && chmod 644 world-readable.pem
    cp ed25519.pem unreadable.pem && chmod 000 unreadable.pem
    if [ "$(id -u)" = 0 ]; then cp ed25519.pem other-owner.pem && chown nobody other-owner.pem; fi
)

$VERIFY vectors 3000 42 > "$WORK/vectors.tsv"

echo "==> unit checks"
"$WORK/tamper_test" check "$KEYS" > "$WORK/check.out" || true
cat "$WORK/check.out"
tally "$WORK/check.out" "tamper_test check"

# The C's signature is the one openssl signs with the same key, and its
# public key is the key's.
printf '%s' "message" > "$WORK/message"
openssl pkeyutl -sign -rawin -inkey "$KEYS/ed25519.pem" -in "$WORK/message" -out "$WORK/sig.bin"
pub_openssl=$(openssl pkey -in "$KEYS/ed25519.pem" -pubout -outform DER | tail -c 32 | base64 -w0)
if [ "$(sed -n 1p "$KEYS/c-signature.b64")" = "$(base64 -w0 < "$WORK/sig.bin")" ] &&
   [ "$(sed -n 2p "$KEYS/c-signature.b64")" = "$pub_openssl" ]; then
    ok "signature and public key equal openssl pkeyutl's"
else
    not_ok "signature and public key equal openssl pkeyutl's"
fi
if TOP=$TOP python3 - "$KEYS/c-signature.b64" <<'EOF'
import base64, os, sys
sys.path.insert(0, os.path.join(os.environ["TOP"], "test", "tools"))
import hl_verify
sig, pub = [base64.b64decode(l) for l in open(sys.argv[1]).read().split()]
sys.exit(0 if hl_verify.ed25519_verify(pub, b"message", sig)
         and not hl_verify.ed25519_verify(pub, b"messagE", sig) else 1)
EOF
then ok "hl_verify.py's own Ed25519 verifies the C's signature, and only for its message"
else not_ok "hl_verify.py's own Ed25519 verifies the C's signature, and only for its message"
fi

if command -v valgrind >/dev/null; then
    echo "==> the unit checks and the vectors under valgrind"
    vg() { valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
               --error-exitcode=9 "$WORK/tamper_test" "$@" > /dev/null 2> "$WORK/valgrind.err"; }
    if vg check "$KEYS" && vg vectors "$WORK/vectors.tsv"; then
        ok "valgrind: no invalid access, no leak in src/tamper (frontend)"
    else
        cat "$WORK/valgrind.err"; not_ok "valgrind: no invalid access, no leak in src/tamper (frontend)"
    fi
fi

echo "==> hl_verify.py self test"
$VERIFY selftest > "$WORK/selftest.out" || true
cat "$WORK/selftest.out"
tally "$WORK/selftest.out" "hl_verify.py selftest"

echo "==> C and Python agree, both ways"
"$WORK/tamper_test" vectors "$WORK/vectors.tsv" > "$WORK/vectors.out" || true
cat "$WORK/vectors.out"
tally "$WORK/vectors.out" "vectors"

mkdir "$WORK/emit"
"$WORK/tamper_test" emit "$WORK/emit"
if $VERIFY verify "$WORK/emit/events.jsonl" --checkpoints "$WORK/emit/checkpoints.jsonl" > "$WORK/verify.out" &&
   [ "$(cut -f2 "$WORK/verify.out" | sort -u)" = t ]; then
    ok "hl_verify.py recomputes the C's event hashes, chains, roots and checkpoints"
else
    cat "$WORK/verify.out"; not_ok "hl_verify.py recomputes the C's event hashes, chains, roots and checkpoints"
fi
if $VERIFY proof "$WORK/emit/proof.json" --checkpoints "$WORK/emit/checkpoints.jsonl" > /dev/null; then
    ok "hl_verify.py accepts the C's inclusion proof"
else
    not_ok "hl_verify.py accepts the C's inclusion proof"
fi
python3 - "$WORK/emit/proof.json" "$WORK/bad-proof.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["path"][1] = p["path"][1][:-1] + ("0" if p["path"][1][-1] != "0" else "1")
json.dump(p, open(sys.argv[2], "w"))
EOF
if ! $VERIFY proof "$WORK/bad-proof.json" > /dev/null; then
    ok "hl_verify.py refuses a proof with one changed path hash"
else
    not_ok "hl_verify.py refuses a proof with one changed path hash"
fi

echo "==> tampered exports"
for kind in alter alter-column remove-version remove-free remove-latest reorder \
            insert-version insert-free checkpoint rewrite; do
    rm -rf "$WORK/m" && mkdir "$WORK/m"
    expect=$(python3 "$TOP/test/tamper/mutate.py" "$kind" "$WORK/emit/events.jsonl" \
                 "$WORK/emit/checkpoints.jsonl" "$WORK/m")
    digest=()
    [ -f "$WORK/m/digest.json" ] && digest=(--digest "$WORK/m/digest.json")
    tenant=$(printf '%s' "$expect" | cut -f1)
    got=$($VERIFY verify "$WORK/m/events.jsonl" --checkpoints "$WORK/m/checkpoints.jsonl" "${digest[@]}" |
          awk -F'\t' -v t="$tenant" '$1 == t { print $1 "\t" $6 "\t" $8 }') || true
    if [ "$got" = "$expect" ]; then
        ok "tampered export ($kind): $(printf '%s' "$expect" | cut -f2,3 | tr '\t' ' ')"
    else
        not_ok "tampered export ($kind): expected [$expect], got [$got]"
    fi
done

if [ "$BACKEND" = 1 ]; then
    source "$TOP/test/tamper/backend.sh"
fi

echo
echo "tamper: $passed passed, $failed failed"
[ "$failed" = 0 ]
