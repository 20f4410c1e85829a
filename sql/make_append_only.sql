-- make_append_only(): the log's guard for users' own tables.
\pset null '(null)'
\set SHOW_CONTEXT never

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
