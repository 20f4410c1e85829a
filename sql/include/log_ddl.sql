-- What only the log refuses: it has its own BEFORE INSERT trigger, columns
-- that are the extension's, and unique indexes its rules rely on.  Each is
-- refused with ZE001 (the SQLSTATE is echoed after each), and the log is
-- unchanged afterwards.  Expects forge_event() (a BEFORE trigger that forges
-- version, recorded_at and data), tbl and fp_before, as append_only_ddl.sql.

-- a trigger that would fire after the log's own BEFORE INSERT trigger and
-- change the row it checked
CREATE TRIGGER zz_forge BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION forge_event();
\echo :SQLSTATE
CREATE TRIGGER zz_forge BEFORE UPDATE OR INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION forge_event();
\echo :SQLSTATE
CREATE OR REPLACE TRIGGER events_append BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION forge_event();
\echo :SQLSTATE
ALTER TRIGGER events_append ON headlessly.events RENAME TO a_events_append;
\echo :SQLSTATE

-- a column every stored event would appear to have
ALTER TABLE headlessly.events ADD COLUMN note text DEFAULT 'forged';
\echo :SQLSTATE

-- the unique indexes that keep ids, versions and idempotency keys unique
DROP INDEX headlessly.events_stream_idx;
\echo :SQLSTATE
DROP INDEX headlessly.events_idempotency_idx;
\echo :SQLSTATE
ALTER TABLE headlessly.events DROP CONSTRAINT events_id_key;
\echo :SQLSTATE
ALTER TABLE headlessly.events DROP CONSTRAINT events_pkey;
\echo :SQLSTATE
ALTER INDEX headlessly.events_stream_idx DEPENDS ON EXTENSION plpgsql;
\echo :SQLSTATE

-- its other indexes are the owner's to add and drop
CREATE INDEX ddl_actor_idx ON headlessly.events (actor, seq);
DROP INDEX headlessly.ddl_actor_idx;
\echo :SQLSTATE

SELECT ddl_fingerprint(:'tbl') = :'fp_before' AS unchanged;
