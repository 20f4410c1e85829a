#!/usr/bin/env bash
# Where an append's CPU goes natively: 8 clients appending with a target (the
# append_target script of run-stream-bench.sh) while `perf record` samples
# every CPU, then each function's inclusive share of the samples.  callgrind
# (run-tamper-bench.sh, run-stream-callgrind.sh) runs OpenSSL's software
# SHA-256, since valgrind hides the CPU's SHA instructions; this counts what
# the machine really spends, hashing included.  Reported for each function
# named: its share of the backends' samples and of every busy sample
# (backends, kernel, pgbench; idle left out): with the CPUs busy,
# throughput without that work would be 1 / (1 - the latter) as high.
# Usage: bash test/bench/run-append-perf.sh [SECONDS] [FUNCTION...]
# (default functions: hash_event, the log's trigger, the append)
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bench-lib.sh"

SECONDS_PER_RUN=${1:-8}
shift 1 2>/dev/null || shift $#
FUNCTIONS=${*:-hash_event headlessly_events_before_insert headlessly_events_append}

command -v perf >/dev/null || install_packages linux-perf
bench_cluster "autovacuum = off" "synchronous_commit = off"
trap cleanup EXIT
stream_fixtures
scripts=$WORKDIR/scripts
append_scripts "$scripts"

say "8 clients appending, $SECONDS_PER_RUN s, sampled by perf"
pgbench_tps 8 "$scripts/append_target.sql" >/dev/null    # every entity's head seen once
$SUDO perf record -F 999 -a -g -o "$WORKDIR/perf.data" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
recorder=$!
echo "append_target: $(pgbench_tps 8 "$scripts/append_target.sql") transactions/s"
wait "$recorder"

# per sample: a line with its command, its frames (a tab first, leaf first), a blank line
$SUDO perf script -i "$WORKDIR/perf.data" -F comm,ip,sym 2>/dev/null |
    awk -v functions="$FUNCTIONS" '
        BEGIN { n = split(functions, f, " ") }
        function flush() {
            if (comm == "") return
            if (comm != "swapper") busy++
            if (comm == "postgres") {
                backend++
                for (i = 1; i <= n; i++) if (index(stack, " " f[i] " ")) hit[i]++
            }
            comm = ""; stack = " "
        }
        NF == 0 { flush(); next }
        /^\t/ { sym = $NF; sub(/\+0x[0-9a-f]+$/, "", sym); stack = stack sym " "; next }
        { flush(); comm = $1; stack = " " }
        END {
            flush()
            printf "samples: %d busy, %d in postgres processes\n", busy, backend
            for (i = 1; i <= n; i++)
                printf "%s: %.2f%% of postgres samples, %.2f%% of busy samples (throughput without it: x%.3f)\n",
                       f[i], 100 * hit[i] / backend, 100 * hit[i] / busy, 1 / (1 - hit[i] / busy)
        }'
machine_line
