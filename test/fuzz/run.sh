#!/usr/bin/env bash
# libFuzzer harnesses for every pure-C parser of headlessly_events, built with
# AddressSanitizer and UndefinedBehaviorSanitizer and each run for a bounded
# time:
#   fuzz_event_type    src/log/event_type.c  hl_check_event_type, hl_parse_event_type
#   fuzz_type_pattern  src/log/event_type.c  hl_parse_type_pattern, hl_type_pattern_matches
#   fuzz_event_id      src/log/event_id.c    hl_event_id_is_valid
#   fuzz_canonical     src/tamper/canonical.c  parser, writer, text forms
# The src/log/ files are compiled as they are, against the server's headers,
# with test/fuzz/pg_shim.c standing in for ereport and palloc.
# Usage: PG_BIN=/usr/lib/postgresql/15/bin bash test/fuzz/run.sh [SECONDS per harness]
# Exits non-zero if a harness finds a crash (its input is kept and printed).
set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECONDS_EACH=${1:-30}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BIN/pg_config
CLANG=${CLANG:-clang-15}
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi

if ! command -v "$CLANG" >/dev/null || ! dpkg -s libfuzzer-15-dev >/dev/null 2>&1; then
    echo "==> installing clang-15 and libfuzzer-15-dev"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-15 libfuzzer-15-dev >/dev/null
fi

OUT=${FUZZ_OUT:-$(mktemp -d /tmp/hl_fuzz.XXXXXX)}
mkdir -p "$OUT"
echo "==> building in $OUT"

SANITIZE="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
COMMON="-g -O1 -Wno-ignored-attributes -ffunction-sections -fdata-sections -Wl,--gc-sections -I$TOP/src -I$TOP/test/fuzz -I$($PG_CONFIG --includedir-server)"
PGLIBS="-L$($PG_CONFIG --pkglibdir) -L$($PG_CONFIG --libdir) -lpgcommon -lpgport"

# src/log/ as it is: backend headers, the shim for ereport and palloc.
# Each of those files also holds a function that needs a running server
# (event_type.c: hl_check_json_object walks a jsonb; event_id.c:
# hl_generate_event_id returns a text).  The harnesses never call them: the
# link leaves exactly those references unresolved, and is refused if any
# other symbol is missing.
link_log() {
    local h=$1 src=$2 allowed=$3
    $CLANG $SANITIZE $COMMON -fno-pie -no-pie -Wl,--warn-unresolved-symbols -o "$OUT/$h" \
        "$TOP/test/fuzz/$h.c" "$TOP/test/fuzz/pg_shim.c" "$TOP/src/log/$src" $PGLIBS \
        2> "$OUT/$h.link" || { cat "$OUT/$h.link"; exit 1; }
    local missing
    missing=$(sed -n "s/.*undefined reference to \`\(.*\)'.*/\1/p" "$OUT/$h.link" | sort -u | tr '\n' ' ')
    if [ "$missing" != "$allowed " ] && [ -n "$missing" ]; then
        cat "$OUT/$h.link"
        echo "$h: unexpected unresolved symbols: $missing (allowed: $allowed)"
        exit 1
    fi
}
link_log fuzz_event_type event_type.c "JsonbIteratorInit JsonbIteratorNext"
link_log fuzz_type_pattern event_type.c "JsonbIteratorInit JsonbIteratorNext"
link_log fuzz_event_id event_id.c "cstring_to_text_with_len"
# src/tamper/ as frontend code
$CLANG $SANITIZE $COMMON -DFRONTEND -DUSE_PRIVATE_ENCODING_FUNCS -o "$OUT/fuzz_canonical" "$TOP/test/fuzz/fuzz_canonical.c" \
    "$TOP/src/tamper/canonical.c" "$TOP/src/tamper/hash.c" $PGLIBS -lcrypto

echo "==> seeds"
seed() { mkdir -p "$OUT/corpus/$1"; printf -- "$2" > "$OUT/corpus/$1/$(printf '%s' "$2" | md5sum | cut -c1-16)"; }
for t in 'Contact.Created' 'Deal.Closed' 'Contact.Deleted' 'page_view' 'Order Completed' \
         'invoice.payment_succeeded' 'A.B' 'a.B' ' x' 'x*'; do seed fuzz_event_type "$t"; done
for p in '*\0Contact.Created' 'Contact.*\0Contact.Updated' '*.Created\0Deal.Created' \
         'page_view\0page_view' '*.*\0A.B' 'Contact.\0x'; do seed fuzz_type_pattern "$p"; done
for i in 'evt_0123456789abcdefgh' 'evt_' 'evt_-_' 'EVT_x'; do seed fuzz_event_id "$i"; done
mkdir -p "$OUT/corpus/fuzz_canonical"
python3 "$TOP/test/tools/hl_verify.py" vectors 40 7 | python3 -c '
import sys, os
out = sys.argv[1]
for n, line in enumerate(sys.stdin):
    canonical = bytes.fromhex(line.rstrip("\n").split("\t")[16])
    open(os.path.join(out, "vector%02d" % n), "wb").write(canonical)
    open(os.path.join(out, "json%02d" % n), "wb").write(
        bytes.fromhex(line.split("\t")[12]))
' "$OUT/corpus/fuzz_canonical"
seed fuzz_canonical '2026-01-15T10:00:00.123456Z'
seed fuzz_canonical '-4713-11-24T00:00:00.000000Z'
seed fuzz_canonical '-9223372036854775808'

# Names are limited to 512 bytes: let libFuzzer try long inputs at once, or
# it would spend a short run below the limit.
options_for() {
    case $1 in
        fuzz_canonical) echo "-dict=$TOP/test/fuzz/canonical.dict -max_len=4096" ;;
        fuzz_event_type|fuzz_type_pattern)
            echo "-dict=$TOP/test/fuzz/event_type.dict -max_len=1100 -len_control=0" ;;
        fuzz_event_id) echo "-max_len=200 -len_control=0" ;;
    esac
}

passed=0
failed=0
for h in fuzz_event_type fuzz_type_pattern fuzz_event_id fuzz_canonical; do
    echo "==> $h for ${SECONDS_EACH}s"
    mkdir -p "$OUT/artifacts/$h"
    if (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            "./$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$h/" $(options_for "$h") \
            "$OUT/corpus/$h" > "$OUT/$h.log" 2>&1); then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$h.log")
        echo "ok - $h: ${runs:-?} inputs, no crash"
        passed=$((passed + 1))
    else
        tail -n 40 "$OUT/$h.log"
        for a in "$OUT/artifacts/$h"/*; do
            [ -f "$a" ] && { echo "crashing input $a:"; od -c "$a" | head -n 20; }
        done
        echo "not ok - $h crashed"
        failed=$((failed + 1))
    fi
done

echo
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ -z "${FUZZ_OUT:-}" ] && rm -rf "$OUT"
[ "$failed" = 0 ]
