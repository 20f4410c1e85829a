-- make_append_only(): the log's guard for users' own tables.
-- (included files are named from the top of the tree, where pg_regress runs)
\set ECHO none
\i sql/include/ddl_setup.sql
\set ECHO all

CREATE TABLE lead_events (
    id bigserial PRIMARY KEY,
    lead_id text NOT NULL,
    kind text NOT NULL,
    provider_event_id text,
    payload jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX lead_events_provider_idx ON lead_events (provider_event_id)
    WHERE provider_event_id IS NOT NULL;

SELECT headlessly.make_append_only('lead_events');

INSERT INTO lead_events (lead_id, kind, provider_event_id) VALUES ('l1', 'created', 'p1'), ('l1', 'called', NULL);
-- the user's own partial unique index keeps working
INSERT INTO lead_events (lead_id, kind, provider_event_id) VALUES ('l1', 'created', 'p1') ON CONFLICT DO NOTHING;
SELECT lead_id, kind, provider_event_id FROM lead_events ORDER BY id;

UPDATE lead_events SET kind = 'x';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM lead_events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE lead_events;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO lead_events (lead_id, kind, provider_event_id) VALUES ('l1', 'created', 'p1')
    ON CONFLICT (provider_event_id) WHERE provider_event_id IS NOT NULL DO UPDATE SET kind = 'x';
\echo :LAST_ERROR_SQLSTATE
SET session_replication_role = replica;
DELETE FROM lead_events;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
ALTER TABLE lead_events DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lead_events DISABLE TRIGGER headlessly_append_only;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER headlessly_append_only ON lead_events;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lead_events DROP COLUMN payload;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_kept FROM lead_events;

-- other triggers of a guarded table stay the owner's to manage
CREATE FUNCTION lead_events_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER lead_touch BEFORE INSERT ON lead_events FOR EACH ROW EXECUTE FUNCTION lead_events_touch();
ALTER TABLE lead_events DISABLE TRIGGER lead_touch;
DROP TRIGGER lead_touch ON lead_events;
-- adding columns is not changing rows
ALTER TABLE lead_events ADD COLUMN note text;

-- a second call changes nothing
SELECT headlessly.make_append_only('lead_events');

-- works with names that need quoting
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Lead ""Events""" (x int);
SELECT headlessly.make_append_only('"Odd Schema"."Lead ""Events"""');
DELETE FROM "Odd Schema"."Lead ""Events""";
\echo :LAST_ERROR_SQLSTATE

-- unguarded tables are untouched by the guard
CREATE TABLE scratch (x int);
INSERT INTO scratch VALUES (1);
UPDATE scratch SET x = 2;
ALTER TABLE scratch DISABLE TRIGGER ALL;
TRUNCATE scratch;

-- only ordinary tables
CREATE VIEW lead_view AS SELECT * FROM lead_events;
SELECT headlessly.make_append_only('lead_view');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE parted (x int) PARTITION BY RANGE (x);
SELECT headlessly.make_append_only('parted');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.make_append_only('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.make_append_only(NULL);

-- dropping a guarded table is the owner's right
DROP VIEW lead_view;
DROP TABLE lead_events;
DROP SCHEMA "Odd Schema" CASCADE;
DROP TABLE scratch, parted;
DROP FUNCTION lead_events_touch();

-- What the owner of a guarded table may not do ------------------------------
-- as a role that owns it and is no superuser, then as a superuser
CREATE ROLE regress_hl_table_owner;
CREATE SCHEMA guard_owner AUTHORIZATION regress_hl_table_owner;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_table_owner;
GRANT CREATE ON DATABASE :"db" TO regress_hl_table_owner;
SET ROLE regress_hl_table_owner;
CREATE TABLE guard_owner.ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account text,
    entry jsonb NOT NULL DEFAULT '{}',
    entry_size int GENERATED ALWAYS AS (length(entry::text)) STORED
);
INSERT INTO guard_owner.ledger (account, entry) VALUES ('acct_1', '{"amount": 10}'), (NULL, '{"amount": -3}');
SELECT headlessly.make_append_only('guard_owner.ledger');
\set tbl guard_owner.ledger
\set data_col entry
\set null_col account
\set id_col id
\set gen_col entry_size
\set scratch guard_owner
SELECT ddl_fingerprint(:'tbl') AS fp_before \gset
\i sql/include/append_only_ddl.sql
RESET ROLE;
\i sql/include/append_only_ddl.sql
-- new columns are the owner's business
SET ROLE regress_hl_table_owner;
ALTER TABLE guard_owner.ledger ADD COLUMN note text;
RESET ROLE;

-- Rows reached through a parent -------------------------------------------------
-- UPDATE and DELETE on a parent do not fire its children's statement
-- triggers: the row-level guard refuses them
CREATE TABLE ledgers (account text, amount int);
CREATE TABLE ledger_2024 () INHERITS (ledgers);
INSERT INTO ledger_2024 VALUES ('acct_1', 10);
SELECT headlessly.make_append_only('ledger_2024');
UPDATE ledgers SET amount = 0;
\echo :SQLSTATE
DELETE FROM ledgers;
\echo :SQLSTATE
TRUNCATE ledgers;
\echo :SQLSTATE
-- the parent's DDL reaches its children
ALTER TABLE ledgers DROP COLUMN amount;
\echo :SQLSTATE
ALTER TABLE ledgers ALTER COLUMN amount TYPE bigint USING 0;
\echo :SQLSTATE
ALTER TABLE ledgers RENAME COLUMN amount TO balance;
\echo :SQLSTATE
ALTER TABLE ledgers ALTER COLUMN amount SET DEFAULT 0;
\echo :SQLSTATE
ALTER TABLE ledger_2024 NO INHERIT ledgers;
\echo :SQLSTATE
-- unless ONLY keeps it to the parent
ALTER TABLE ONLY ledgers ALTER COLUMN amount SET DEFAULT 0;
SELECT tableoid::regclass, * FROM ledgers;

CREATE TABLE payments (id int, amount int) PARTITION BY RANGE (id);
CREATE TABLE payments_1 PARTITION OF payments FOR VALUES FROM (0) TO (100);
INSERT INTO payments VALUES (1, 10);
SELECT headlessly.make_append_only('payments_1');
UPDATE payments SET amount = 0;
\echo :SQLSTATE
UPDATE payments SET id = 200;
\echo :SQLSTATE
DELETE FROM payments;
\echo :SQLSTATE
MERGE INTO payments p USING (SELECT 1 AS id) s ON p.id = s.id WHEN MATCHED THEN UPDATE SET amount = 0;
\echo :SQLSTATE
TRUNCATE payments;
\echo :SQLSTATE
ALTER TABLE payments DROP COLUMN amount;
\echo :SQLSTATE
SELECT tableoid::regclass, * FROM payments;
-- its rows stay where every read of the partitioned table finds them
ALTER TABLE payments DETACH PARTITION payments_1;
\echo :SQLSTATE
-- while other partitions come and go as before
CREATE TABLE payments_2 (id int, amount int);
ALTER TABLE payments ATTACH PARTITION payments_2 FOR VALUES FROM (100) TO (200);
INSERT INTO payments VALUES (101, 5);
UPDATE payments SET amount = 6 WHERE id = 101;
ALTER TABLE payments DETACH PARTITION payments_2;

-- What make_append_only() will not guard ------------------------------------------
-- a table with rules, a typed table, a table with children
CREATE TABLE ruled (x int);
CREATE RULE quiet AS ON UPDATE TO ruled DO INSTEAD NOTHING;
SELECT headlessly.make_append_only('ruled');
\echo :SQLSTATE
CREATE TYPE pair AS (a int, b int);
CREATE TABLE typed_pairs OF pair;
SELECT headlessly.make_append_only('typed_pairs');
\echo :SQLSTATE
SELECT headlessly.make_append_only('ledgers');
\echo :SQLSTATE
-- nor a table the caller may not create triggers on
SET ROLE regress_hl_table_owner;
SELECT headlessly.make_append_only('ledgers');
\echo :SQLSTATE
RESET ROLE;
SELECT count(*) AS guard_triggers FROM pg_trigger
 WHERE tgrelid IN ('ruled'::regclass, 'typed_pairs'::regclass, 'ledgers'::regclass);
-- nor let a guarded table become typed: ALTER TYPE ... CASCADE would reach it
CREATE TABLE pairs (a int, b int);
SELECT headlessly.make_append_only('pairs');
ALTER TABLE pairs OF pair;
\echo :SQLSTATE

-- an unlogged table: a crash would empty it (SET UNLOGGED is refused on a
-- guarded table for that reason); it is refused until it is made logged
CREATE UNLOGGED TABLE unlogged_ledger (x int);
INSERT INTO unlogged_ledger VALUES (1);
SELECT headlessly.make_append_only('unlogged_ledger');
\echo :SQLSTATE
SELECT count(*) AS guard_triggers FROM pg_trigger WHERE tgrelid = 'unlogged_ledger'::regclass;
ALTER TABLE unlogged_ledger SET LOGGED;
SELECT headlessly.make_append_only('unlogged_ledger');
DELETE FROM unlogged_ledger;
\echo :SQLSTATE

-- the extension's own tables, which it updates (delivery state, positions,
-- grants): guarded, they would stop it for good, as nothing can remove a
-- guard; refused, nothing created; the log is append-only already
SELECT headlessly.make_append_only('headlessly.subscriptions');
\echo :SQLSTATE
SELECT headlessly.make_append_only('headlessly.deliveries');
\echo :SQLSTATE
SELECT headlessly.make_append_only('headlessly.streams');
\echo :SQLSTATE
SELECT count(*) AS guard_triggers FROM pg_trigger
 WHERE tgrelid IN ('headlessly.subscriptions'::regclass, 'headlessly.deliveries'::regclass,
                   'headlessly.streams'::regclass)
   AND tgfoid = 'headlessly.append_only_guard()'::regprocedure;
SELECT headlessly.make_append_only('headlessly.events');

-- A table guarded by version 0.1 (no row-level guard) is completed
CREATE TABLE old_guard (x int);
CREATE TRIGGER headlessly_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON old_guard
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.append_only_guard();
ALTER TABLE old_guard ENABLE ALWAYS TRIGGER headlessly_append_only;
SELECT headlessly.make_append_only('old_guard');
SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'old_guard'::regclass ORDER BY tgname;

DROP TABLE guard_owner.ledger, ledger_2024, ledgers, payments, payments_2, ruled,
    typed_pairs, pairs, old_guard, unlogged_ledger;
DROP TYPE pair;
DROP SCHEMA guard_owner;
REVOKE CREATE ON DATABASE :"db" FROM regress_hl_table_owner;
REVOKE USAGE ON SCHEMA headlessly FROM regress_hl_table_owner;
DROP ROLE regress_hl_table_owner;
DROP FUNCTION ddl_fingerprint(regclass), ddl_extension_fingerprint(), ddl_pass();
