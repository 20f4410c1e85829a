#!/usr/bin/env bash
# Where the instructions of run-stream-bench.sh's `read` comparison go:
# events_list(target, max_rows => 1000) returning a Message DB message's
# columns, against mdb.get_stream_messages of the same 1,000 messages, each
# counted by callgrind in the server's backend (run-stream-callgrind.sh's
# method: (I(N2) - I(N1)) / (N2 - N1) per call), then split by the
# functions that make up a read, inclusive, per call:
#   - the function itself (headlessly_events_list; mdb: the PL/pgSQL call,
#     its dynamic query's executor run);
#   - the stream's index scan and heap fetches (index_getnext_slot; mdb's
#     plan is a bitmap scan, then a sort on position);
#   - the result's tuplestore (tuplestore_puttuple: the function's rows
#     copied in; ExecStoreMinimalTuple/slot_getsomeattrs_int: read back
#     and deformed by the function scan);
#   - output: jsonb_out of data and metadata (mdb pays it in its casts to
#     varchar), the time's output function, and the protocol messages
#     (pq_sendcountedtext).
# Usage: bash test/bench/run-read-callgrind.sh [N1 N2]
source "$(dirname "$0")/../lib.sh"

N1=${1:-5}
N2=${2:-25}
command -v python3 >/dev/null || die "python3 is needed"
KEEP=$(mktemp -d /tmp/headlessly-read-callgrind.XXXXXX)
CALLGRIND_KEEP=$KEEP bash "$TOP/test/bench/run-stream-callgrind.sh" "$N1" "$N2" 0 0 \
    events_list_message get_stream_messages

python3 - "$KEEP" "$N1" "$N2" <<'PY'
import re, subprocess, sys
keep, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def inclusive(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$', line)
        if m and '=>' not in line:
            name = re.sub(r'\s*\[.*\]$', '', m.group(2)).split(':')[-1]
            costs.setdefault(name, int(m.group(1).replace(',', '')))
    return costs

def per_call(case):
    low, high = inclusive(f"{keep}/{case}.{n1}"), inclusive(f"{keep}/{case}.{n2}")
    return {k: (high.get(k, 0) - low.get(k, 0)) / (n2 - n1) for k in set(low) | set(high)}

ours, mdb = per_call("events_list_message"), per_call("get_stream_messages")
rows = [
    ("everything (the statement)", "PortalRun"),
    ("the set-returning function, rows into its tuplestore", "ExecMakeTableFunctionResult"),
    ("  headlessly_events_list", "headlessly_events_list"),
    ("  mdb: PL/pgSQL and its dynamic query", "plpgsql_call_handler"),
    ("  index scan and heap fetch (index_getnext_slot)", "index_getnext_slot"),
    ("  mdb: bitmap index scan", "MultiExecBitmapIndexScan"),
    ("  mdb: sort on position", "tuplesort_puttupleslot"),
    ("  mdb: forming rows (heap_form_minimal_tuple)", "heap_form_minimal_tuple"),
    ("  rows copied into the tuplestore (tuplestore_puttuple)", "tuplestore_puttuple"),
    ("function scan: rows read back, deformed, projected (ExecScan)", "ExecScan"),
    ("  deforming (slot_getsomeattrs_int)", "slot_getsomeattrs_int"),
    ("output functions of the returned columns", "OutputFunctionCall"),
    ("jsonb_out (data, metadata)", "jsonb_out"),
    ("timestamptz_out (events_list's recorded_at)", "timestamptz_out"),
    ("timestamp_out (mdb's time)", "timestamp_out"),
    ("uuid_out (mdb's id)", "uuid_out"),
    ("protocol (pq_sendcountedtext)", "pq_sendcountedtext"),
]
print()
print("| per call, inclusive (callgrind) | events_list | mdb.get_stream_messages |")
print("|---|---|---|")
for label, fn in rows:
    print(f"| {label} | {ours.get(fn, 0):,.0f} | {mdb.get(fn, 0):,.0f} |")
print(f"\nratio of instructions per call, mdb / events_list: "
      f"{mdb.get('PortalRun', 0) / ours.get('PortalRun', 1):.3f}")
PY
rm -rf "$KEEP"
