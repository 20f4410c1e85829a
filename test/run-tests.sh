#!/usr/bin/env bash
# Every test of headlessly_events: pg_regress, isolation specs and TAP tests,
# against a throwaway PostgreSQL 15.  Installs what is missing first.
# Usage: bash test/run-tests.sh
source "$(dirname "$0")/lib.sh"

ensure_packages
build_and_install
make_workdir

# The cluster user writes results into the tree, so it gets its own copy.
say "copying the tree to $WORKDIR/tree"
mkdir "$WORKDIR/tree"
tar -C "$TOP" --exclude=.git --exclude=results --exclude=tmp_check --exclude=output_iso -cf - . |
    tar -C "$WORKDIR/tree" -xf -
[ "$(id -u)" = 0 ] && chown -R "$CLUSTER_USER" "$WORKDIR/tree"

start_cluster
say "server on socket $PGHOST, port $PGPORT"

status=0
run_suite() {
    local name=$1; shift
    say "$name"
    if ! as_cluster_user env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" \
            make -C "$WORKDIR/tree" -s PG_CONFIG="$PG_CONFIG" "$@" 2>&1 | tee "$WORKDIR/$name.out"; then
        status=1
    fi
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
}

run_suite regress installcheck TAP_TESTS=
for diffs in "$WORKDIR"/tree/regression.diffs "$WORKDIR"/tree/output_iso/regression.diffs; do
    if [ -s "$diffs" ]; then say "$diffs"; cat "$diffs"; status=1; fi
done
run_suite tap installcheck REGRESS= ISOLATION= PROVE_FLAGS=--timer
if [ $status != 0 ]; then
    for log in "$WORKDIR"/tree/tmp_check/log/regress_log_*; do
        [ -f "$log" ] && { say "$log (tail)"; tail -n 40 "$log"; }
    done
fi

# One closing line for everything: pg_regress and the isolation tester print
# one line per test ("... ok" / "... FAILED"); prove prints its own totals.
passed=$(grep -Ec '^(test| )?.* \.\.\. ok' "$WORKDIR/regress.out" || true)
failed=$(grep -Ec ' \.\.\. FAILED' "$WORKDIR/regress.out" || true)
tap_files=$(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\).*/\1/p' "$WORKDIR/tap.out")
tap_failed=$(grep -Ec '^t.*\.pl .*(Failed|Dubious)|^test/t/.*\.pl \.+ (Failed|Dubious)' "$WORKDIR/tap.out" || true)
tap_passed=$(( ${tap_files:-0} - tap_failed ))
passed=$(( passed + tap_passed )); failed=$(( failed + tap_failed ))
[ $status = 0 ] || [ $failed -gt 0 ] || failed=1

echo
echo "headlessly_events: $passed passed, $failed failed"
exit $status
