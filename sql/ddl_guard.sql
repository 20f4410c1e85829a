-- The log's history cannot be rewritten through DDL, by a superuser or by a
-- role that owns the log: each attempt is refused with ZE001 and changes
-- nothing.  make_append_only.sql does the same for users' own tables.
-- (included files are named from the top of the tree, where pg_regress runs)
\set ECHO none
\i sql/include/ddl_setup.sql
\set ECHO all

SELECT (headlessly.events_append('Contact.Created', 'ddl_1', '{"name": "Alice"}')).version;
SELECT (headlessly.events_append('page_view', 'ddl_1', actor => 'agent_1')).version;

-- What every guarded table refuses, as a superuser -------------------------
\set tbl headlessly.events
\set data_col data
\set null_col actor
\set id_col seq
\set gen_col session_id
\set scratch ddl_scratch
CREATE SCHEMA ddl_scratch;
SELECT ddl_fingerprint(:'tbl') AS fp_before, ddl_extension_fingerprint() AS ext_before \gset
\i sql/include/append_only_ddl.sql

-- What only the log refuses, as a superuser -----------------------------------
CREATE FUNCTION forge_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := 42;
    NEW.recorded_at := '2000-01-01';
    NEW.data := '{"forged": true}';
    RETURN NEW;
END $$;
\i sql/include/log_ddl.sql
DROP SCHEMA ddl_scratch CASCADE;

-- BEFORE INSERT triggers that fire before the log's own are the owner's ----
-- (they fire in name order; the log's is found by its function): the log
-- checks what they made
CREATE FUNCTION lower_actor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.actor := lower(NEW.actor);
    RETURN NEW;
END $$;
CREATE TRIGGER aa_lower_actor BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION lower_actor();
CREATE OR REPLACE TRIGGER aa_lower_actor BEFORE INSERT OR UPDATE ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION lower_actor();
-- but they may not be moved after it
ALTER TRIGGER aa_lower_actor ON headlessly.events RENAME TO zz_lower_actor;
\echo :SQLSTATE
ALTER TRIGGER aa_lower_actor ON headlessly.events RENAME TO ab_lower_actor;
-- AFTER triggers and BEFORE UPDATE triggers cannot change an appended row
CREATE TRIGGER zz_after AFTER INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION forge_event();
CREATE TRIGGER zz_before_update BEFORE UPDATE ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION forge_event();
SELECT version, actor, data, recorded_at > '2000-01-01' AS recorded_now
  FROM headlessly.events_append('Contact.Updated', 'ddl_1', '{"stage": "lead"}', actor => 'Agent_1');
DROP TRIGGER ab_lower_actor ON headlessly.events;
DROP TRIGGER zz_after ON headlessly.events;
DROP TRIGGER zz_before_update ON headlessly.events;

-- The extension's functions, views, schema and event trigger ---------------
-- replaced, altered, renamed, moved or freed from the extension, any of them
-- would switch a guard off (the guard's checks find its functions by what
-- they run, not by their names)
CREATE OR REPLACE FUNCTION headlessly.append_only_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
\echo :SQLSTATE
CREATE OR REPLACE FUNCTION headlessly.events_before_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
\echo :SQLSTATE
-- nor overloaded: a call meant for the extension's function could reach it
CREATE FUNCTION headlessly.events_append(type text) RETURNS headlessly.events
    LANGUAGE sql AS $$ SELECT NULL::headlessly.events $$;
\echo :SQLSTATE
CREATE FUNCTION public.events_append(type text) RETURNS headlessly.events
    LANGUAGE sql AS $$ SELECT NULL::headlessly.events $$;
ALTER FUNCTION public.events_append(text) SET SCHEMA headlessly;
\echo :SQLSTATE
CREATE FUNCTION headlessly.my_helper(type text) RETURNS headlessly.events
    LANGUAGE sql AS $$ SELECT NULL::headlessly.events $$;
ALTER FUNCTION headlessly.my_helper(text) RENAME TO events_append;
\echo :SQLSTATE
DROP FUNCTION public.events_append(text), headlessly.my_helper(text);
ALTER FUNCTION headlessly.append_only_guard() RENAME TO append_only_guard_off;
\echo :SQLSTATE
ALTER ROUTINE headlessly.guard_ddl RENAME TO guard_ddl_off;
\echo :SQLSTATE
ALTER FUNCTION headlessly.make_append_only SET SCHEMA public;
\echo :SQLSTATE
ALTER FUNCTION headlessly.events_append SECURITY DEFINER;
\echo :SQLSTATE
ALTER FUNCTION headlessly.as_of SET search_path = public;
\echo :SQLSTATE
ALTER FUNCTION headlessly.append_only_guard() DEPENDS ON EXTENSION plpgsql;
\echo :SQLSTATE
CREATE OR REPLACE VIEW headlessly.entities AS
    SELECT tenant, target, noun, version, '{}'::jsonb AS state, created_at, updated_at
      FROM headlessly.streams;
\echo :SQLSTATE
ALTER VIEW headlessly.entities RENAME TO entities_then;
\echo :SQLSTATE
ALTER TABLE headlessly.streams RENAME TO streams_then;
\echo :SQLSTATE
ALTER VIEW headlessly.entities RENAME COLUMN state TO state_then;
\echo :SQLSTATE
ALTER SCHEMA headlessly RENAME TO headlessly_then;
\echo :SQLSTATE
ALTER EXTENSION headlessly_events DROP FUNCTION headlessly.append_only_guard();
\echo :SQLSTATE
ALTER EXTENSION headlessly_events DROP TABLE headlessly.events;
\echo :SQLSTATE
ALTER EXTENSION headlessly_events DROP EVENT TRIGGER headlessly_guard_ddl;
\echo :SQLSTATE
ALTER EVENT TRIGGER headlessly_guard_ddl RENAME TO guard_ddl_off;
\echo :SQLSTATE
ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE;
\echo :SQLSTATE
-- even renamed behind the extension's back (a catalog edit), the guard's
-- function is still found by what it runs
BEGIN;
UPDATE pg_proc SET proname = 'renamed_guard'
 WHERE oid = 'headlessly.append_only_guard()'::regprocedure;
ALTER TABLE headlessly.events DISABLE TRIGGER headlessly_append_only;
\echo :SQLSTATE
ROLLBACK;
-- harmless: ownership, and functions of the same names elsewhere
ALTER FUNCTION headlessly.append_only_guard() OWNER TO CURRENT_USER;
CREATE OR REPLACE FUNCTION public.append_only_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
DROP FUNCTION public.append_only_guard();
SELECT ddl_extension_fingerprint() = :'ext_before' AS extension_unchanged;

-- The same, as a role that owns the log but is no superuser ----------------
-- (in a transaction rolled back at the end, each statement in a savepoint)
BEGIN;
\set ON_ERROR_ROLLBACK on
CREATE ROLE regress_hl_log_owner;
ALTER TABLE headlessly.events OWNER TO regress_hl_log_owner;
GRANT USAGE, CREATE ON SCHEMA headlessly TO regress_hl_log_owner;
GRANT CREATE ON DATABASE :"db" TO regress_hl_log_owner;
CREATE SCHEMA ddl_scratch AUTHORIZATION regress_hl_log_owner;
SELECT ddl_fingerprint(:'tbl') AS fp_before \gset
SET ROLE regress_hl_log_owner;
\i sql/include/append_only_ddl.sql
\i sql/include/log_ddl.sql
RESET ROLE;
ROLLBACK;
\set ON_ERROR_ROLLBACK off

-- The indexes the extension finds by name ------------------------------------
-- renamed, the log's appends, checkpoints or stream heads would miss them,
-- and an index of the owner's could take the name
ALTER INDEX headlessly.events_stream_idx RENAME TO ddl_stream_idx;
\echo :SQLSTATE
ALTER INDEX headlessly.events_idempotency_idx RENAME TO ddl_key_idx;
\echo :SQLSTATE
ALTER INDEX headlessly.events_xact_idx RENAME TO ddl_xact_idx;
\echo :SQLSTATE
ALTER TABLE headlessly.events RENAME CONSTRAINT events_id_key TO ddl_id_key;
\echo :SQLSTATE
ALTER INDEX headlessly.streams_pkey RENAME TO ddl_streams_pkey;
\echo :SQLSTATE
ALTER TABLE headlessly.streams RENAME CONSTRAINT streams_pkey TO ddl_streams_pkey;
\echo :SQLSTATE
ALTER TABLE headlessly.streams DROP CONSTRAINT streams_pkey;
\echo :SQLSTATE
-- a guarded table's indexes too
CREATE TABLE ddl_renamed (id int PRIMARY KEY);
SELECT headlessly.make_append_only('ddl_renamed');
ALTER INDEX ddl_renamed_pkey RENAME TO ddl_other_pkey;
\echo :SQLSTATE
ALTER TABLE ddl_renamed RENAME CONSTRAINT ddl_renamed_pkey TO ddl_other_pkey;
\echo :SQLSTATE
DROP TABLE ddl_renamed;
SELECT indexrelid::regclass AS index FROM pg_index
 WHERE indrelid IN ('headlessly.events'::regclass, 'headlessly.streams'::regclass)
 ORDER BY indexrelid::regclass::text;
-- the log's other indexes stay the owner's to drop, but one of the owner's
-- under the name of the one checkpoints read is refused, not misread
-- (a checkpoint first: the next one reads the index for what came since)
SELECT headlessly.checkpoint() IS NOT NULL AS sealed;
SELECT version FROM headlessly.events_append('Contact.Created', 'ddl_xact_1', '{}');
BEGIN;
DROP INDEX headlessly.events_xact_idx;
CREATE INDEX events_xact_idx ON headlessly.events (xact_id, (seq OPERATOR(pg_catalog.+) 1000));
SELECT headlessly.checkpoint() IS NOT NULL AS sealed;
ROLLBACK;
BEGIN;
DROP INDEX headlessly.events_xact_idx;
SELECT headlessly.checkpoint() IS NOT NULL AS sealed;
ROLLBACK;
BEGIN;
DROP INDEX headlessly.events_xact_idx;
CREATE INDEX events_xact_idx ON headlessly.events (xact_id, seq) WHERE seq OPERATOR(pg_catalog.<) 0;
SELECT headlessly.checkpoint() IS NOT NULL AS sealed;
ROLLBACK;

-- an index the owner adds to the stream heads is kept up by appends (one
-- entity per noun in tenant ddl_deferred here); a deferrable one cannot be
-- checked there (appends write heads without the executor's deferred
-- checks), so appends refuse it rather than let it lie
BEGIN;
ALTER TABLE headlessly.streams ADD CONSTRAINT ddl_one_per_noun
    EXCLUDE USING btree (noun WITH OPERATOR(pg_catalog.=))
    WHERE (tenant OPERATOR(pg_catalog.=) 'ddl_deferred') DEFERRABLE INITIALLY DEFERRED;
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_1', '{}', tenant => 'ddl_deferred');
\echo :SQLSTATE
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_2', '{}', tenant => 'ddl_deferred');
SELECT count(*) AS lead_heads FROM headlessly.streams WHERE tenant = 'ddl_deferred';
ROLLBACK;
BEGIN;
ALTER TABLE headlessly.streams ADD CONSTRAINT ddl_one_per_noun
    EXCLUDE USING btree (noun WITH OPERATOR(pg_catalog.=))
    WHERE (tenant OPERATOR(pg_catalog.=) 'ddl_deferred');
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_1', '{}', tenant => 'ddl_deferred');
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_2', '{}', tenant => 'ddl_deferred');
ROLLBACK;

-- nor can a CHECK or a column the owner adds to the heads be kept (heads
-- are not written through the executor): appends refuse them rather than
-- store heads that break them.  (So is SET NOT NULL on a column a head may
-- leave NULL, which cannot be added here once other tests left such heads.)
BEGIN;
ALTER TABLE headlessly.streams ADD CONSTRAINT ddl_first_versions
    CHECK (tenant OPERATOR(pg_catalog.<>) 'ddl_deferred' OR version OPERATOR(pg_catalog.<) 2);
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_3', '{}', tenant => 'ddl_deferred');
\echo :SQLSTATE
SELECT version FROM headlessly.events_append('Lead.Updated', 'ddl_lead_3', '{}', tenant => 'ddl_deferred');
SELECT target, version FROM headlessly.streams WHERE tenant = 'ddl_deferred';
ROLLBACK;
BEGIN;
ALTER TABLE headlessly.streams ADD COLUMN ddl_extra int NOT NULL DEFAULT 5;
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_4', '{}', tenant => 'ddl_deferred');
\echo :SQLSTATE
SELECT target, ddl_extra FROM headlessly.streams WHERE tenant = 'ddl_deferred';
ROLLBACK;
-- a nullable column of the owner's without a default gets what an INSERT
-- would give it, NULL, and keeps what the owner wrote into it, as an
-- UPDATE would: appends go on
ALTER TABLE headlessly.streams ADD COLUMN ddl_note text;
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_5', '{}', tenant => 'ddl_notes');
SELECT target, ddl_note FROM headlessly.streams WHERE tenant = 'ddl_notes';
UPDATE headlessly.streams SET ddl_note = 'kept' WHERE target = 'ddl_lead_5';
SELECT version FROM headlessly.events_append('Lead.Updated', 'ddl_lead_5', '{"n": 1}', tenant => 'ddl_notes');
-- twice in one transaction: the second is written at commit
BEGIN;
SELECT version FROM headlessly.events_append('Lead.Updated', 'ddl_lead_5', '{"n": 2}', tenant => 'ddl_notes');
SELECT version FROM headlessly.events_append('Lead.Updated', 'ddl_lead_5', '{"n": 3}', tenant => 'ddl_notes');
COMMIT;
SELECT target, version, state, ddl_note FROM headlessly.streams WHERE tenant = 'ddl_notes';
SELECT count(*) AS drift FROM headlessly.check_state();
ALTER TABLE headlessly.streams DROP COLUMN ddl_note;
-- heads are built as the extension's column types: PostgreSQL keeps them
-- (the extension's views and policy use every column), and appends would
-- refuse another type rather than misread it
DO $$
DECLARE c text; t text;
BEGIN
  FOR c, t IN VALUES ('tenant','varchar'),('target','varchar'),('version','numeric'),('last_recorded_at','timestamp'),
                     ('noun','varchar'),('state','json'),('created_at','timestamp'),('updated_at','timestamp') LOOP
    BEGIN
      EXECUTE format('ALTER TABLE headlessly.streams ALTER COLUMN %I TYPE %s', c, t);
      RAISE NOTICE '% altered', c;
      RAISE EXCEPTION 'undo';
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE '% %: %', c, SQLSTATE, SQLERRM;
    END;
  END LOOP;
END $$;
-- foreign keys and row triggers on the heads would not be applied either
CREATE TABLE ddl_nouns (noun text COLLATE "C" PRIMARY KEY);
BEGIN;
ALTER TABLE headlessly.streams ADD CONSTRAINT ddl_known_noun
    FOREIGN KEY (noun) REFERENCES ddl_nouns NOT VALID;
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_6', '{}', tenant => 'ddl_deferred');
\echo :SQLSTATE
ROLLBACK;
CREATE FUNCTION ddl_head_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
BEGIN;
CREATE TRIGGER ddl_head_trigger BEFORE INSERT OR UPDATE ON headlessly.streams
    FOR EACH ROW EXECUTE FUNCTION ddl_head_trigger();
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_6', '{}', tenant => 'ddl_deferred');
\echo :SQLSTATE
ROLLBACK;
DROP FUNCTION ddl_head_trigger();
DROP TABLE ddl_nouns;
-- a table of the owner's that references the heads puts PostgreSQL's own
-- foreign key triggers on them: appends go on
BEGIN;
CREATE TABLE ddl_head_notes (tenant text COLLATE "C", target text COLLATE "C", note text,
    FOREIGN KEY (tenant, target) REFERENCES headlessly.streams);
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_8', '{}', tenant => 'ddl_deferred');
ROLLBACK;
-- a CHECK added after this transaction's appends, which the heads it holds
-- in memory break, is refused when they are written at commit: nothing of
-- the transaction stays
BEGIN;
SELECT version FROM headlessly.events_append('Lead.Created', 'ddl_lead_7', '{}', tenant => 'ddl_deferred');
SELECT version FROM headlessly.events_append('Lead.Updated', 'ddl_lead_7', '{}', tenant => 'ddl_deferred');
ALTER TABLE headlessly.streams ADD CONSTRAINT ddl_first_versions
    CHECK (tenant OPERATOR(pg_catalog.<>) 'ddl_deferred' OR version OPERATOR(pg_catalog.<) 2);
COMMIT;
\echo :SQLSTATE
SELECT count(*) AS lead_7_events FROM headlessly.events WHERE target = 'ddl_lead_7';
SELECT count(*) AS lead_7_heads FROM headlessly.streams WHERE target = 'ddl_lead_7';
SELECT conname FROM pg_constraint WHERE conname = 'ddl_first_versions';

-- DROP EXTENSION is the way out -----------------------------------------------
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE TABLE ddl_kept (x int);
INSERT INTO ddl_kept VALUES (1);
SELECT headlessly.make_append_only('ddl_kept');
SAVEPOINT plain;
-- a guarded table depends on it
DROP EXTENSION headlessly_events;
\echo :SQLSTATE
ROLLBACK TO plain;
DROP EXTENSION headlessly_events CASCADE;
SELECT count(*) AS guard_triggers_left FROM pg_trigger WHERE tgrelid = 'ddl_kept'::regclass;
DELETE FROM ddl_kept;
CREATE EXTENSION headlessly_events;
SELECT version FROM headlessly.events_append('Contact.Created', 'ddl_1', '{"name": "Bob"}');
DROP EXTENSION headlessly_events;
ROLLBACK;

DROP FUNCTION forge_event(), lower_actor();
DROP FUNCTION ddl_fingerprint(regclass), ddl_extension_fingerprint(), ddl_pass();
