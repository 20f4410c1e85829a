#!/usr/bin/env bash
# Every test of headlessly_events: the pg_regress suite, the isolation specs
# and the TAP tests, against a throwaway PostgreSQL.  Installs what is
# missing first (see lib.sh).  Every selected suite runs even when an
# earlier one fails; the script reports each and exits non-zero at the end
# if anything failed.
#
# Usage: bash test/run-tests.sh [SUITE|TEST]...
#   no argument       every suite
#   regress, isolation, tap, tamper
#                     that whole suite (tamper: test/tamper/run.sh, the
#                     tamper-evidence building blocks)
#   a test's name     that regression test (sql/NAME.sql), isolation spec
#                     (test/isolation/specs/NAME.spec) or TAP test
#                     (test/t/NAME.pl; its number alone will do)
# e.g. bash test/run-tests.sh hooks capture 005
#
# Outputs, diffs and logs are copied to test/results/ (HL_RESULTS_DIR) before
# the throwaway cluster is removed.
source "$(dirname "$0")/lib.sh"

RESULTS_DIR=${HL_RESULTS_DIR:-$TOP/test/results}

# The Makefile's lists, so that a test is declared in one place.
makefile_list() {
    sed -n "s/^$1 = //p" "$TOP/Makefile"
}
ALL_REGRESS=$(makefile_list REGRESS)
ALL_ISOLATION=$(makefile_list ISOLATION)
ALL_TAP=$(cd "$TOP" && echo test/t/*.pl)

in_list() {
    local x
    for x in $2; do [ "$x" = "$1" ] && return 0; done
    return 1
}

REGRESS_SEL=; ISOLATION_SEL=; TAP_SEL=; TAMPER_SEL=
if [ $# = 0 ]; then
    set -- regress isolation tap tamper
fi
for arg in "$@"; do
    case "$arg" in
        regress) REGRESS_SEL="$REGRESS_SEL $ALL_REGRESS" ;;
        isolation) ISOLATION_SEL="$ISOLATION_SEL $ALL_ISOLATION" ;;
        tap) TAP_SEL="$TAP_SEL $ALL_TAP" ;;
        tamper) TAMPER_SEL=1 ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *)
            found=
            if in_list "$arg" "$ALL_REGRESS"; then REGRESS_SEL="$REGRESS_SEL $arg"; found=1; fi
            if in_list "$arg" "$ALL_ISOLATION"; then ISOLATION_SEL="$ISOLATION_SEL $arg"; found=1; fi
            for t in $ALL_TAP; do
                case "$(basename "$t" .pl)" in
                    "$arg"|"${arg}_"*) TAP_SEL="$TAP_SEL $t"; found=1 ;;
                esac
            done
            [ -n "$found" ] || die "no suite or test named '$arg' (suites: regress isolation tap; tests:" \
                $ALL_REGRESS $ALL_ISOLATION $(for t in $ALL_TAP; do basename "$t" .pl; done) ")"
            ;;
    esac
done

ensure_packages
build_and_install
make_workdir

# The cluster user writes results into the tree, so it gets its own copy.
say "copying the tree to $WORKDIR/tree"
mkdir "$WORKDIR/tree"
tar -C "$TOP" --exclude=.git --exclude=./results --exclude=./test/results \
    --exclude=./tmp_check --exclude=./output_iso -cf - . | tar -C "$WORKDIR/tree" -xf -
if [ "$(id -u)" = 0 ]; then chown -R "$CLUSTER_USER" "$WORKDIR/tree"; fi

start_cluster
say "server on socket $PGHOST, port $PGPORT, locale $HL_TEST_LOCALE, $("$PG_BIN/postgres" --version)"

# run_suite NAME make-arguments...: never stops the script; the output goes to
# $WORKDIR/NAME.out for counting.
run_suite() {
    local name=$1; shift
    say "$name"
    as_cluster_user env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" \
        make -C "$WORKDIR/tree" -s PG_CONFIG="$PG_CONFIG" "$@" >"$WORKDIR/$name.out" 2>&1
    local rc=$?
    cat "$WORKDIR/$name.out"
    return $rc
}

declare -A RC
set +e
if [ -n "$REGRESS_SEL" ]; then
    run_suite regress installcheck REGRESS="$REGRESS_SEL" ISOLATION= TAP_TESTS=
    RC[regress]=$?
    [ -s "$WORKDIR/tree/regression.diffs" ] && { say "regression.diffs"; cat "$WORKDIR/tree/regression.diffs"; }
fi
if [ -n "$ISOLATION_SEL" ]; then
    run_suite isolation installcheck REGRESS= ISOLATION="$ISOLATION_SEL" TAP_TESTS=
    RC[isolation]=$?
    [ -s "$WORKDIR/tree/output_iso/regression.diffs" ] &&
        { say "output_iso/regression.diffs"; cat "$WORKDIR/tree/output_iso/regression.diffs"; }
fi
if [ -n "$TAP_SEL" ]; then
    run_suite tap installcheck REGRESS= ISOLATION= PROVE_TESTS="$TAP_SEL" PROVE_FLAGS=--timer
    RC[tap]=$?
    if [ "${RC[tap]}" != 0 ]; then
        for log in "$WORKDIR"/tree/tmp_check/log/regress_log_*; do
            [ -f "$log" ] && { say "$log (tail)"; tail -n 40 "$log"; }
        done
    fi
fi
if [ -n "$TAMPER_SEL" ]; then
    # its own throwaway server; as the cluster user when run as root
    say tamper
    PG_BIN="$PG_BIN" bash "$TOP/test/tamper/run.sh" >"$WORKDIR/tamper.out" 2>&1
    RC[tamper]=$?
    cat "$WORKDIR/tamper.out"
fi
set -e

# Kept for the developer: outputs, diffs, TAP logs, the server's log.
stop_cluster fast
rm -rf "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"
for f in results regression.diffs regression.out output_iso tmp_check/log; do
    [ -e "$WORKDIR/tree/$f" ] || continue
    mkdir -p "$RESULTS_DIR/$(dirname "$f")"
    cp -R "$WORKDIR/tree/$f" "$RESULTS_DIR/$f"
done
cp "$WORKDIR"/*.out "$WORKDIR/server.log" "$RESULTS_DIR/" 2>/dev/null || true

# One line per suite, then one for everything: checks are regression tests,
# isolation permutations and TAP assertions.
say "summary (PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //'), locale $HL_TEST_LOCALE; outputs in $RESULTS_DIR)"
total_passed=0; total_failed=0; status=0
report() {
    local suite=$1 unit=$2 check=$3 units checks passed failed
    shift 3
    read -r units checks passed failed < <(perl "$TOP/test/count-checks.pl" "$suite" "$WORKDIR/$suite.out" "$@")
    # a suite that failed without a failure counted still fails
    [ "${RC[$suite]}" = 0 ] || [ "$failed" -gt 0 ] || failed=1
    [ "$failed" = 0 ] || status=1
    local what="$units $unit"
    [ "$unit" = "$check" ] || what="$what, $checks $check"
    printf '%-10s %-28s %d passed, %d failed\n' "$suite:" "$what:" "$passed" "$failed"
    total_passed=$((total_passed + passed)); total_failed=$((total_failed + failed))
}
[ -z "$REGRESS_SEL" ] || report regress tests tests
[ -z "$ISOLATION_SEL" ] || report isolation specs permutations \
    "$WORKDIR/tree/test/isolation/expected" "$WORKDIR/tree/output_iso/results"
[ -z "$TAP_SEL" ] || report tap files assertions
[ -z "$TAMPER_SEL" ] || report tamper runs checks

echo
echo "headlessly_events: $total_passed passed, $total_failed failed"
exit $status
