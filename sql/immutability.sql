-- The log is append-only for every role, under every replication role.
\pset null '(null)'
\set SHOW_CONTEXT never

SELECT count(*) AS events FROM headlessly.events \gset before_

SELECT (headlessly.events_append('guard_probe', 'guard_1')).version;

-- as a superuser (the test runs as one)
UPDATE headlessly.events SET actor = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE headlessly.events SET actor = 'mallory' WHERE false;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM headlessly.events WHERE type = 'guard_probe';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE headlessly.events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE headlessly.events CASCADE;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type) VALUES ('upsert') ON CONFLICT (seq) DO UPDATE SET actor = 'mallory';
\echo :LAST_ERROR_SQLSTATE

-- under session_replication_role = replica, which skips ordinary triggers
SET session_replication_role = replica;
UPDATE headlessly.events SET actor = 'mallory';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM headlessly.events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE headlessly.events;
\echo :LAST_ERROR_SQLSTATE
-- appends still follow the log's rules there
SELECT version FROM headlessly.events_append('guard_probe', 'guard_1');
RESET session_replication_role;

-- the triggers cannot be disabled, demoted or dropped
ALTER TABLE headlessly.events DISABLE TRIGGER headlessly_append_only;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events DISABLE TRIGGER events_append;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events DISABLE TRIGGER USER;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events ENABLE TRIGGER headlessly_append_only;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events ENABLE REPLICA TRIGGER headlessly_append_only;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events ENABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER headlessly_append_only ON headlessly.events;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER events_append ON headlessly.events;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events DROP COLUMN raw_payload;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE headlessly.events ALTER COLUMN actor TYPE varchar(3);
\echo :LAST_ERROR_SQLSTATE
-- ENABLE ALWAYS is what they are already; saying so again is harmless
ALTER TABLE headlessly.events ENABLE ALWAYS TRIGGER headlessly_append_only;
SET session_replication_role = replica;
ALTER TABLE headlessly.events DISABLE TRIGGER headlessly_append_only;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;

-- the event trigger that enforces this is itself protected
ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE;
\echo :LAST_ERROR_SQLSTATE
ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE REPLICA;
\echo :LAST_ERROR_SQLSTATE
DROP EVENT TRIGGER headlessly_guard_ddl;
\echo :LAST_ERROR_SQLSTATE

SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'headlessly.events'::regclass ORDER BY tgname;
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname = 'headlessly_guard_ddl';

-- a role that was granted UPDATE and DELETE is refused all the same
SELECT current_user AS admin \gset
CREATE ROLE regress_hl_writer LOGIN;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_writer;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON headlessly.events TO regress_hl_writer;
GRANT SELECT ON headlessly.streams, headlessly.snapshots TO regress_hl_writer;
-- a fresh session as that role: it needs no rights on the log's derived tables
\c - regress_hl_writer
UPDATE headlessly.events SET actor = 'mallory';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM headlessly.events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE headlessly.events;
\echo :LAST_ERROR_SQLSTATE
-- and may not bring in "stored" events with a recorded_at of its choosing
INSERT INTO headlessly.events (type, occurred_at, recorded_at) VALUES ('forged', now(), '2000-01-01');
\echo :LAST_ERROR_SQLSTATE
-- appending works: new and existing streams, idempotency keys
SELECT type, actor, version FROM headlessly.events_append('Probe.Created', 'guard_2', actor => current_user);
SELECT type, actor, version FROM headlessly.events_append('Probe.Updated', 'guard_2', '{"x": 1}', actor => current_user);
SELECT type, version FROM headlessly.events_append('guard_probe', 'guard_2', external_event_id => 'k_writer');
SELECT type, version FROM headlessly.events_append('guard_probe', 'guard_2', external_event_id => 'k_writer');
-- reads the past and rolls back
SELECT headlessly.as_of('guard_2') AS now, headlessly.as_of_version('guard_2', 1) AS v1;
SELECT type, data FROM headlessly.events_rollback('guard_2',
       (SELECT recorded_at FROM headlessly.events WHERE target = 'guard_2' AND version = 1));
-- but cannot change the derived tables directly
UPDATE headlessly.streams SET version = 0;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.snapshots VALUES ('t', 'guard_2', 1, now(), '{}', now(), now());
\echo :LAST_ERROR_SQLSTATE
\c - :admin
REVOKE ALL ON headlessly.events, headlessly.streams, headlessly.snapshots FROM regress_hl_writer;
REVOKE ALL ON SCHEMA headlessly FROM regress_hl_writer;
DROP ROLE regress_hl_writer;

SELECT count(*) - :before_events AS appended_since FROM headlessly.events;
SELECT count(*) AS mallory_rows FROM headlessly.events WHERE actor = 'mallory';
