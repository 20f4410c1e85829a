#!/usr/bin/env bash
# Build and install headlessly_events, start a throwaway PostgreSQL (15, or
# PG_MAJOR) in a temporary folder, and show the log at work: appends, entity
# state, idempotency and the immutability guard, and the background worker
# (the library is preloaded) running an after_commit hook and a webhook
# signed and sent to a loopback receiver.  Installs what is missing first
# (see lib.sh); removes the server when done.
# Usage: bash test/demo.sh
source "$(dirname "$0")/lib.sh"

ensure_packages
build_and_install
make_workdir
start_cluster "shared_preload_libraries = 'headlessly_events'"
say "throwaway server on socket $PGHOST, port $PGPORT"

# a webhook receiver on the loopback interface, which checks signatures
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
python3 "$TOP/test/tools/webhook_receiver.py" --port-file "$WORKDIR/receiver.port" \
    --log "$WORKDIR/receiver.jsonl" --secret "$SECRET" >"$WORKDIR/receiver.out" 2>&1 &
RECEIVER_PID=$!
trap 'kill $RECEIVER_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$WORKDIR/receiver.port" ] && break; sleep 0.1; done

"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=0 -d postgres \
    -v receiver="http://127.0.0.1:$(cat "$WORKDIR/receiver.port")/ok/demo" -v secret="$SECRET" \
    -f - < "$TOP/test/demo.sql"

say "what the webhook receiver got"
python3 - "$WORKDIR/receiver.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = r["headers"]
    print("POST %s  signature %s" % (r["path"], "verified" if r["signature_ok"] else "BAD"))
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"):
        print("  %s: %s" % (name, h.get(name)))
    print("  body: %s" % json.dumps(r["body"], sort_keys=True))
PY

say "done; the server is stopped and $WORKDIR removed"
