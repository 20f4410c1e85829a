-- Heads a transaction changes more than once: kept in memory, written once
-- at commit, and seen meanwhile by every reader in the transaction; undone
-- with the subtransactions that changed them.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_heads';

SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Account.Created", "target": "a1", "data": {"n": 0}},
  {"type": "Account.Created", "target": "a2", "data": {"n": 0}}]');

-- head row versions written by this session, not yet reported to the
-- statistics (which happens only outside transaction blocks)
CREATE FUNCTION pg_temp.head_writes() RETURNS bigint LANGUAGE sql AS
  $$ SELECT n_tup_upd + n_tup_ins FROM pg_stat_xact_user_tables
      WHERE relid = 'headlessly.streams'::regclass $$;

-- 50 appends to one entity in one transaction write its row once (the rest
-- at commit), and every reader sees each append at once
BEGIN;
SELECT pg_temp.head_writes() AS writes_before \gset
SELECT count(headlessly.events_append('Account.Updated', 'a1', jsonb_build_object('n', i)))
  FROM generate_series(1, 50) i;
SELECT pg_temp.head_writes() - :writes_before AS head_rows_written;
SELECT version, state FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a1';
SELECT headlessly.as_of('a1') AS as_of_now, headlessly.as_of_version('a1', 50) AS as_of_version_50;
SELECT tenant, target, version, state FROM headlessly.pending_heads();
-- the table row is the first append's until commit; headlessly.heads is current
SELECT s.version AS stored_version, h.version AS current_version
  FROM headlessly.streams s JOIN headlessly.heads h USING (tenant, target)
 WHERE s.tenant = 'tt_heads' AND s.target = 'a1';
SELECT target, version, state FROM headlessly.entities_as_of('Account') ORDER BY target;
SELECT noun, streams, entities FROM headlessly.stats() WHERE tenant = 'tt_heads';
COMMIT;
SELECT version, state FROM headlessly.streams WHERE tenant = 'tt_heads' AND target = 'a1';
SELECT count(*) AS pending_after_commit FROM headlessly.pending_heads();
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- the heads have no index on what an append changes: updates are HOT (no
-- index entries, old versions pruned as the page is used)
CREATE FUNCTION pg_temp.hot_writes() RETURNS bigint LANGUAGE sql AS
  $$ SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables
      WHERE relid = 'headlessly.streams'::regclass $$;
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Hot.Created", "target": "h1", "data": {"n": 0}, "tenant": "tt_hot"},
  {"type": "Hot.Created", "target": "h2", "data": {"n": 0}, "tenant": "tt_hot"},
  {"type": "page_view", "target": "h3", "tenant": "tt_hot"}]');
BEGIN;
SELECT pg_temp.head_writes() AS writes_before, pg_temp.hot_writes() AS hot_before \gset
SELECT version FROM headlessly.events_append('Hot.Updated', 'h1', '{"n": 1, "more": [1, 2, 3]}', tenant => 'tt_hot');
SELECT version FROM headlessly.events_append('Hot.Deleted', 'h2', tenant => 'tt_hot');
SELECT version FROM headlessly.events_append('page_view', 'h3', tenant => 'tt_hot');
SELECT pg_temp.head_writes() - :writes_before AS head_writes, pg_temp.hot_writes() - :hot_before AS hot;
COMMIT;

-- a savepoint rolled back puts the head back as it was at the savepoint
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"k": "before"}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"k": "kept"}');
SAVEPOINT s1;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"k": "undone"}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"k": "undone"}');
SELECT version FROM headlessly.events_append('Account.Created', 'a3', '{"k": "undone"}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a3', '{"k": "undone too"}');
ROLLBACK TO SAVEPOINT s1;
SELECT target, version, state FROM headlessly.entities WHERE tenant = 'tt_heads' ORDER BY target;
SELECT headlessly.as_of('a1') ->> 'k' AS a1_k, headlessly.as_of('a3') AS a3;
-- appends go on from there
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"k": "after"}');
SELECT version FROM headlessly.events_append('Account.Created', 'a3', '{"k": "new"}');
COMMIT;
SELECT target, version, state FROM headlessly.streams WHERE tenant = 'tt_heads' ORDER BY target;
SELECT target, max(version) AS log_version FROM headlessly.events
 WHERE tenant = 'tt_heads' GROUP BY target ORDER BY target;
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- nested savepoints: an inner one released into an outer one that is rolled
-- back; a change before the savepoint survives
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"m": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"m": 2}');
SAVEPOINT outer_sp;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"m": 3}');
SAVEPOINT inner_sp;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"m": 4}');
RELEASE SAVEPOINT inner_sp;
SELECT version, state ->> 'm' AS m FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a2';
ROLLBACK TO SAVEPOINT outer_sp;
SELECT version, state ->> 'm' AS m FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a2';
-- a released savepoint keeps what it did
SAVEPOINT again;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"m": 5}');
RELEASE SAVEPOINT again;
COMMIT;
SELECT version, state ->> 'm' AS m FROM headlessly.streams WHERE tenant = 'tt_heads' AND target = 'a2';
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- an EXCEPTION block undoes its appends, also those written by a read
-- (entities_as_of writes the heads it needs) inside it
DO $$
BEGIN
    PERFORM headlessly.events_append('Account.Updated', 'a1', '{"e": 1}');
    PERFORM headlessly.events_append('Account.Updated', 'a1', '{"e": 2}');
    BEGIN
        PERFORM headlessly.events_append('Account.Updated', 'a1', '{"e": 3}');
        PERFORM count(*) FROM headlessly.entities_as_of('Account');
        PERFORM headlessly.events_append('Account.Updated', 'a1', '{"e": 4}');
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        RAISE NOTICE 'e after the block: %', headlessly.as_of('a1') ->> 'e';
    END;
    PERFORM headlessly.events_append('Account.Updated', 'a1', '{"f": 1}');
END $$;
SELECT state ->> 'e' AS e, state ->> 'f' AS f FROM headlessly.streams WHERE tenant = 'tt_heads' AND target = 'a1';
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- an after hook's failed subtransaction undoes the hook's own append to the
-- same entity; the event that fired it stays
CREATE FUNCTION bump_then_fail(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF event ->> 'type' = 'Account.Touched' THEN
        PERFORM headlessly.events_append('Account.Bumped', event ->> 'target', '{"bumped": true}');
        RAISE EXCEPTION 'hook fails after appending';
    END IF;
    RETURN NULL;
END $$;
SELECT headlessly.hook('Account.Touched', 'after', 'bump_then_fail(jsonb)') AS hook_id \gset
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"t": 1}');
SELECT version FROM headlessly.events_append('Account.Touched', 'a2', '{"t": 2}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"t": 3}');
SELECT version, state ? 'bumped' AS bumped FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a2';
COMMIT;
SELECT headlessly.unhook(:hook_id);
DROP FUNCTION bump_then_fail(jsonb);
SELECT version, state ? 'bumped' AS bumped, state ->> 't' AS t FROM headlessly.streams
 WHERE tenant = 'tt_heads' AND target = 'a2';
SELECT count(*) AS bumped_events FROM headlessly.events WHERE tenant = 'tt_heads' AND type = 'Account.Bumped';
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- a direct change of headlessly.streams is refused while heads are unwritten
-- (it would act on outdated rows), and changes nothing
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"d": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"d": 2}');
UPDATE headlessly.streams SET state = '{}' WHERE tenant = 'tt_heads' AND target = 'a2';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"d": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"d": 2}');
TRUNCATE headlessly.streams;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS heads, sum(version) AS versions FROM headlessly.streams WHERE tenant = 'tt_heads';

-- without unwritten heads it is allowed, and the next append reads the
-- changed row instead of the one it held
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"g": 1}');
UPDATE headlessly.streams SET state = state || '{"fixed": true}' WHERE tenant = 'tt_heads' AND target = 'a1';
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"g": 2}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"g": 3}');
COMMIT;
SELECT state ->> 'fixed' AS fixed, state ->> 'g' AS g FROM headlessly.streams
 WHERE tenant = 'tt_heads' AND target = 'a1';
-- rebuild_state writes the heads first, and appends after it read its rows
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"h": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"h": 2}');
-- (check_state sees the appends, and the hand-made change above)
SELECT problem, stored -> 'state' ->> 'fixed' AS fixed, expected -> 'version' AS version
  FROM headlessly.check_state('tt_heads');
SELECT heads_changed FROM headlessly.rebuild_state('tt_heads');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"h": 3}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"h": 4}');
COMMIT;
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');
SELECT state ->> 'fixed' AS fixed, state ->> 'h' AS h FROM headlessly.streams
 WHERE tenant = 'tt_heads' AND target = 'a1';

-- a rewrite of the table in the transaction moves every row: the unwritten
-- heads are written where their rows went (CLUSTER fires no trigger)
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 2}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a3', '{"w": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a3', '{"w": 2}');
CLUSTER headlessly.streams USING streams_pkey;
SELECT version FROM headlessly.events_append('Account.Updated', 'a3', '{"w": 3}');
COMMIT;
SELECT target, version, state ->> 'w' AS w FROM headlessly.streams
 WHERE tenant = 'tt_heads' AND target IN ('a1', 'a3') ORDER BY target;
SELECT count(*) AS problems FROM headlessly.check_state();
-- also when the heads were written meanwhile (by entities_as_of), after an
-- ANALYZE made the appending code forget the table's OIDs
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 3}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 4}');
ANALYZE headlessly.streams;
SELECT count(*) FROM headlessly.entities_as_of('Account');
CLUSTER headlessly.streams USING streams_pkey;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 5}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"w": 6}');
COMMIT;
SELECT version, state ->> 'w' AS w FROM headlessly.streams WHERE tenant = 'tt_heads' AND target = 'a1';
SELECT count(*) AS problems FROM headlessly.check_state();

-- rollback in the transaction that changed the head sees its appends
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"r": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"r": 2}');
SELECT type, data FROM headlessly.events_rollback('a2',
    (SELECT max(recorded_at) FROM headlessly.events
      WHERE tenant = 'tt_heads' AND target = 'a2' AND recorded_at < now()));
SELECT state ? 'r' AS has_r FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a2';
COMMIT;
SELECT count(*) AS problems FROM headlessly.check_state('tt_heads');

-- a role that may read entities reads the unwritten heads too
CREATE ROLE regress_heads_app;
GRANT USAGE ON SCHEMA headlessly TO regress_heads_app;
GRANT SELECT, INSERT ON headlessly.events TO regress_heads_app;
GRANT SELECT ON headlessly.entities TO regress_heads_app;
SET ROLE regress_heads_app;
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"app": 1}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a2', '{"app": 2}');
SELECT version, state ->> 'app' AS app FROM headlessly.entities WHERE tenant = 'tt_heads' AND target = 'a2';
COMMIT;
RESET ROLE;
REVOKE ALL ON headlessly.events, headlessly.entities FROM regress_heads_app;
REVOKE USAGE ON SCHEMA headlessly FROM regress_heads_app;
DROP ROLE regress_heads_app;

-- the streams_changed() trigger function is internal
SELECT has_function_privilege('public', 'headlessly.streams_changed()', 'EXECUTE') AS public_may_call;
SELECT headlessly.streams_changed();
\echo :LAST_ERROR_SQLSTATE
