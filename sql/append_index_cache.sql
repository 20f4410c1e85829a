-- An append inserts through the log's indexes as described once per backend
-- (append.c, LogIndexes): every index the log has when the row goes in gets
-- its entry, whenever the index came, went or changed.
\pset null '(null)'
-- a log of its own: appends take the direct path only while the log has no
-- row security, which another test's first grant_tenant() turns on for good
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;
CREATE EXTENSION IF NOT EXISTS amcheck;

-- the same rows through the index and through the heap
CREATE FUNCTION probe_counts(OUT by_index bigint, OUT by_heap bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL enable_seqscan = off;
    SET LOCAL enable_bitmapscan = off;
    SELECT count(*) INTO by_index FROM headlessly.events WHERE actor = 'probe' AND lower(type) <> '';
    SET LOCAL enable_seqscan = on;
    SET LOCAL enable_indexscan = off;
    SET LOCAL enable_bitmapscan = off;
    SELECT count(*) INTO by_heap FROM headlessly.events WHERE actor = 'probe' AND lower(type) <> '';
END $$;

-- the cache is built by this append
SELECT version FROM headlessly.events_append('Probe.Created', 'probe_1', '{"n": 0}', actor => 'probe');

-- an index added mid-transaction, after appends that built the cache: a
-- partial one on an expression, so that the predicate and the expression
-- are both the new index's own
BEGIN;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 1}', actor => 'probe');
CREATE INDEX events_probe_idx ON headlessly.events (lower(type)) WHERE actor = 'probe';
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 2}', actor => 'probe');
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 3}', actor => 'other');
-- every row the index's predicate takes is in it
SELECT bt_index_check('headlessly.events_probe_idx', true);
-- the index holds every probe row: those before it, which CREATE INDEX put
-- in, and the one appended after it
SELECT * FROM probe_counts();
COMMIT;
SELECT * FROM probe_counts();
SELECT bt_index_check('headlessly.events_probe_idx', true);

-- an index dropped: appends go on without it, and through a new one of
-- another definition under the same name
BEGIN;
DROP INDEX headlessly.events_probe_idx;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 4}', actor => 'probe');
CREATE INDEX events_probe_idx ON headlessly.events (lower(type)) WHERE actor IN ('probe', 'other');
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 5}', actor => 'probe');
COMMIT;
SELECT count(*) AS indexed_all FROM headlessly.events WHERE actor IN ('probe', 'other');
SELECT bt_index_check('headlessly.events_probe_idx', true);

-- an index made in a subtransaction that rolls back: the appends after it
-- do not look for it, the ones inside it filled it
BEGIN;
SAVEPOINT s;
CREATE INDEX events_probe2_idx ON headlessly.events (target) WHERE actor = 'probe';
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 6}', actor => 'probe');
ROLLBACK TO s;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 7}', actor => 'probe');
COMMIT;
SELECT count(*) AS probe2_gone FROM pg_class WHERE relname = 'events_probe2_idx';

-- an append that fails inside the insert (a version conflict, in the log's
-- trigger) hands the cache back: appends after it still fill every index
BEGIN;
SAVEPOINT s;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 8}', actor => 'probe',
                                             expected_version => 1);
ROLLBACK TO s;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 9}', actor => 'probe');
COMMIT;
SELECT * FROM probe_counts();
SELECT bt_index_check('headlessly.events_probe_idx', true);
SELECT bt_index_check('headlessly.events_tenant_actor_idx', true);

-- an invalidation while an append is using the cache: a before hook
-- analyzes the log (a relcache invalidation of it) and appends, so the
-- nested append rebuilds the cache while the outer one still holds the
-- old descriptions, which it then inserts its own row's index entries with
CREATE FUNCTION analyze_then_append(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    ANALYZE headlessly.events;
    PERFORM headlessly.events_append('nested_probe', actor => 'probe');
    RETURN NULL;
END $$;
SELECT headlessly.hook('Outer.Created', 'before', 'analyze_then_append(jsonb)') AS h_outer \gset
SELECT version FROM headlessly.events_append('Outer.Created', 'outer_1', '{"n": 1}', actor => 'probe');
SELECT headlessly.unhook(:h_outer);
SELECT type, target, version FROM headlessly.events WHERE type IN ('Outer.Created', 'nested_probe') ORDER BY seq;
SELECT * FROM probe_counts();
SELECT bt_index_check('headlessly.events_probe_idx', true);
SELECT bt_index_check('headlessly.events_tenant_actor_idx', true);
SELECT bt_index_check('headlessly.events_stream_idx', true);
DROP FUNCTION analyze_then_append(jsonb);

-- the extension dropped and created again in one transaction: a new log
-- with new indexes, which the appends after it fill
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 10}', actor => 'probe');
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
SELECT version FROM headlessly.events_append('Probe.Created', 'probe_1', '{"n": 0}', actor => 'probe');
SELECT version FROM headlessly.events_append('Probe.Updated', 'probe_1', '{"n": 1}', actor => 'probe');
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT target, version FROM headlessly.events WHERE tenant = 'default' AND target = 'probe_1' ORDER BY version;
SELECT count(*) AS by_actor_index FROM headlessly.events WHERE tenant = 'default' AND actor = 'probe';
COMMIT;
SELECT bt_index_check(indexrelid, true) FROM pg_index WHERE indrelid = 'headlessly.events'::regclass;

DROP FUNCTION probe_counts();
DROP EXTENSION amcheck;
