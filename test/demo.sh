#!/usr/bin/env bash
# Build and install headlessly_events, start a throwaway PostgreSQL (15, or
# PG_MAJOR) in a temporary folder, and show the log at work: appends, entity
# state, idempotency and the immutability guard.  Installs what is missing
# first (see lib.sh); removes the server when done.
# Usage: bash test/demo.sh
source "$(dirname "$0")/lib.sh"

ensure_packages
build_and_install
make_workdir
start_cluster
say "throwaway server on socket $PGHOST, port $PGPORT"

"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=0 -d postgres -f - < "$TOP/test/demo.sql"

say "done; the server is stopped and $WORKDIR removed"
