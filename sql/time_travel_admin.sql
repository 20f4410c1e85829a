-- Administration: stats, the snapshot interval, check_state and rebuild_state.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_admin';

-- the setting: superuser-only, 0 turns snapshots off
LOAD 'headlessly_events';
SHOW headlessly.snapshot_interval;
SET headlessly.snapshot_interval = -1;
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE regress_tt_admin;
SET ROLE regress_tt_admin;
SET headlessly.snapshot_interval = 5;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE USAGE ON SCHEMA headlessly FROM regress_tt_admin;
DROP ROLE regress_tt_admin;

SET headlessly.snapshot_interval = 0;
SELECT count(*) FROM headlessly.events_append_batch(
  (SELECT jsonb_agg(jsonb_build_object('type', CASE WHEN i = 1 THEN 'Account.Created' ELSE 'Account.Updated' END,
                                        'target', 'a1', 'data', jsonb_build_object('n', i)))
     FROM generate_series(1, 7) i));
SELECT count(*) AS no_snapshots FROM headlessly.snapshots WHERE tenant = 'tt_admin';
SET headlessly.snapshot_interval = 3;
SELECT count(*) FROM headlessly.events_append_batch(
  (SELECT jsonb_agg(jsonb_build_object('type', 'Account.Updated', 'target', 'a1', 'data', jsonb_build_object('n', i)))
     FROM generate_series(8, 10) i));
SELECT version, state FROM headlessly.snapshots WHERE tenant = 'tt_admin' ORDER BY version;
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Created", "target": "d1", "data": {"x": 1}},
  {"type": "Deal.Deleted", "target": "d1"},
  {"type": "page_view", "target": "home"},
  {"type": "signup"}]');

-- stats: per tenant and noun, then a total row
SELECT noun, events, streams, entities, snapshots, event_bytes > 0 AS has_bytes
  FROM headlessly.stats() WHERE tenant = 'tt_admin' ORDER BY noun NULLS FIRST;
SELECT tenant IS NULL AND noun IS NULL AS total_row, event_bytes >= 8192 AS log_size
  FROM headlessly.stats() WHERE tenant IS NULL;

-- no drift after ordinary appends
SELECT count(*) AS problems FROM headlessly.check_state('tt_admin');
SELECT count(*) AS problems_anywhere FROM headlessly.check_state();

-- derived tables damaged by hand: check_state names each difference
UPDATE headlessly.streams SET state = '{"n": 0}' WHERE tenant = 'tt_admin' AND target = 'a1';
UPDATE headlessly.snapshots SET state = '{"n": -1}' WHERE tenant = 'tt_admin' AND version = 9;
DELETE FROM headlessly.streams WHERE tenant = 'tt_admin' AND target = 'home';
INSERT INTO headlessly.streams (tenant, target, version, last_recorded_at, noun, state)
VALUES ('tt_admin', 'ghost', 1, now(), 'Deal', '{}');
INSERT INTO headlessly.snapshots (tenant, target, version, recorded_at, state)
VALUES ('tt_admin', 'a1', 99, now(), '{}'), ('tt_admin', 'ghost', 3, now(), '{}');
SELECT target, version, problem, stored -> 'state' AS stored_state, expected -> 'state' AS expected_state
  FROM headlessly.check_state('tt_admin') ORDER BY target, version, problem;
SELECT count(*) AS live_ghosts FROM headlessly.entities WHERE tenant = 'tt_admin' AND target = 'ghost';
SELECT headlessly.as_of_version('a1', 9) AS wrong_snapshot_misleads;

-- rebuild from the log: heads fixed, snapshots rewritten at the current interval
SET headlessly.snapshot_interval = 4;
SELECT * FROM headlessly.rebuild_state('tt_admin');
SELECT count(*) AS problems FROM headlessly.check_state('tt_admin');
SELECT version, state FROM headlessly.snapshots WHERE tenant = 'tt_admin' ORDER BY target, version;
SELECT target, version, state FROM headlessly.streams WHERE tenant = 'tt_admin' ORDER BY target;
SELECT headlessly.as_of_version('a1', 9) AS fixed;
-- a second rebuild changes nothing
SELECT * FROM headlessly.rebuild_state('tt_admin');

-- without snapshots, reads are still right (replay from the first event)
DELETE FROM headlessly.snapshots WHERE tenant = 'tt_admin';
SELECT array_agg(headlessly.as_of_version('a1', v) ->> 'n' ORDER BY v) AS replayed FROM generate_series(1, 10) v;

-- only the owner may check or rebuild
CREATE ROLE regress_tt_admin;
GRANT USAGE ON SCHEMA headlessly TO regress_tt_admin;
SET ROLE regress_tt_admin;
SELECT * FROM headlessly.rebuild_state();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.check_state();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE USAGE ON SCHEMA headlessly FROM regress_tt_admin;
DROP ROLE regress_tt_admin;

-- the chain head: each stream head carries its last event's hash, so that
-- the next append chains on it without reading the log; rebuild_state()
-- restores it and check_state() compares it
SELECT count(*) AS heads_without_their_hash
  FROM headlessly.streams s
 WHERE s.tenant = 'tt_admin'
   AND s.hash IS DISTINCT FROM (SELECT e.hash FROM headlessly.events e
                                 WHERE e.tenant = s.tenant AND e.target = s.target
                                   AND e.version = s.version);
UPDATE headlessly.streams SET hash = '\x00' WHERE tenant = 'tt_admin' AND target = 'a1';
SELECT target, version, problem, stored ->> 'hash' AS stored_hash,
       expected ->> 'hash' = (SELECT '\x' || encode(hash, 'hex') FROM headlessly.events
                               WHERE tenant = 'tt_admin' AND target = 'a1' AND version = 10) AS expected_is_last_hash
  FROM headlessly.check_state('tt_admin') ORDER BY target, version, problem;
DELETE FROM headlessly.streams WHERE tenant = 'tt_admin';
SELECT * FROM headlessly.rebuild_state('tt_admin');
SELECT count(*) AS heads, count(*) FILTER (WHERE s.hash IS NOT DISTINCT FROM
         (SELECT e.hash FROM headlessly.events e
           WHERE e.tenant = s.tenant AND e.target = s.target AND e.version = s.version)) AS with_last_hash
  FROM headlessly.streams s WHERE s.tenant = 'tt_admin';
SELECT count(*) AS problems FROM headlessly.check_state('tt_admin');
-- the chain goes on from the rebuilt heads, and verifies
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"n": 11}');
SELECT version FROM headlessly.events_append('page_view', 'home');
SELECT ok, checked, problem FROM headlessly.verify('tt_admin');

-- the ordering transaction: each stream head carries its last event's
-- xact_id, after which the stream's next append is ordered (so that
-- (xact_id, seq) order is version order); appends keep it, also when one
-- transaction appends to a stream several times (a head kept in memory until
-- commit), rebuild_state() restores it and check_state() compares it
BEGIN;
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"n": 12}');
SELECT version FROM headlessly.events_append('Account.Updated', 'a1', '{"n": 13}');
SELECT xact_id = pg_current_xact_id() AS own_xact
  FROM headlessly.events WHERE tenant = 'tt_admin' AND target = 'a1' AND version = 13;
COMMIT;
SELECT count(*) AS heads,
       count(*) FILTER (WHERE s.xact_id = (SELECT e.xact_id FROM headlessly.events e
                                            WHERE e.tenant = s.tenant AND e.target = s.target
                                              AND e.version = s.version)) AS with_last_xact_id
  FROM headlessly.streams s WHERE s.tenant = 'tt_admin';
UPDATE headlessly.streams SET xact_id = '3' WHERE tenant = 'tt_admin' AND target = 'a1';
UPDATE headlessly.streams SET xact_id = NULL WHERE tenant = 'tt_admin' AND target = 'home';
SELECT target, version, problem, stored ->> 'xact_id' AS stored_xact_id,
       (expected ->> 'xact_id')::xid8 = (SELECT xact_id FROM headlessly.events e
                                          WHERE e.tenant = 'tt_admin' AND e.target = c.target
                                            AND e.version = c.version) AS expected_is_last_xact_id
  FROM headlessly.check_state('tt_admin') c ORDER BY target, version, problem;
SELECT heads_changed FROM headlessly.rebuild_state('tt_admin');
SELECT count(*) AS heads,
       count(*) FILTER (WHERE s.xact_id = (SELECT e.xact_id FROM headlessly.events e
                                            WHERE e.tenant = s.tenant AND e.target = s.target
                                              AND e.version = s.version)) AS with_last_xact_id
  FROM headlessly.streams s WHERE s.tenant = 'tt_admin';
SELECT count(*) AS problems FROM headlessly.check_state('tt_admin');
-- a head whose last event is of a higher transaction than the appending one
-- orders the append after it (isolation spec delivery_version_order); an id
-- no transaction has had yet (an owner's edit of the head) is not taken: it
-- would hold the stream's events back from every consumer
BEGIN;
UPDATE headlessly.streams SET xact_id = '4000000000' WHERE tenant = 'tt_admin' AND target = 'a1';
UPDATE headlessly.streams SET xact_id = NULL WHERE tenant = 'tt_admin' AND target = 'home';
SELECT version, xact_id = pg_current_xact_id() AS own_xact
  FROM headlessly.events_append('Account.Updated', 'a1', '{"n": 14}');
-- a stream without one (a head of 0.1): the appending transaction's own
SELECT version, xact_id = pg_current_xact_id() AS own_xact
  FROM headlessly.events_append('page_view', 'home');
ROLLBACK;
SELECT count(*) AS problems FROM headlessly.check_state('tt_admin');
