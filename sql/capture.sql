-- Table capture: a table's INSERT, UPDATE and DELETE become entity events.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'capture_test';

CREATE TABLE contacts (id int PRIMARY KEY, name text, email text, stage text, tags text[]);
-- a row from before capture becomes an entity when capture starts
INSERT INTO contacts VALUES (1, 'Pre', 'pre@x.test', NULL, NULL);
SELECT headlessly.capture('contacts');
SELECT type, target, version, data FROM headlessly.events WHERE tenant = 'capture_test' ORDER BY seq;

INSERT INTO contacts VALUES (2, 'Alice', 'alice@x.test', 'lead', '{vip}');
UPDATE contacts SET stage = 'qualified', email = NULL WHERE id = 2;
-- an UPDATE that changes nothing appends nothing
UPDATE contacts SET stage = 'qualified' WHERE id = 2;
DELETE FROM contacts WHERE id = 2;
SELECT type, target, version, actor, data, before, metadata
  FROM headlessly.events WHERE tenant = 'capture_test' AND target = 'contact_2' ORDER BY version;
SELECT target, noun, version, state FROM headlessly.entities WHERE tenant = 'capture_test' ORDER BY target;

-- the actor: the current role, or the setting headlessly.actor
SET headlessly.actor = 'agent_7';
INSERT INTO contacts VALUES (4, 'Dana', 'dana@x.test', 'lead', NULL);
RESET headlessly.actor;
SELECT type, target, actor FROM headlessly.events WHERE tenant = 'capture_test' AND target = 'contact_4';

-- a changed id ends one entity and starts another
UPDATE contacts SET id = 5 WHERE id = 4;
SELECT type, target, version FROM headlessly.events
 WHERE tenant = 'capture_test' AND target IN ('contact_4', 'contact_5') ORDER BY seq;

-- in one transaction with the table change; a rollback takes both back
BEGIN;
INSERT INTO contacts VALUES (6, 'Eve', NULL, NULL, NULL);
ROLLBACK;
SELECT count(*) AS events_for_6 FROM headlessly.events WHERE tenant = 'capture_test' AND target = 'contact_6';

-- a before hook that raises rejects the table change itself
CREATE FUNCTION no_lost_deals(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF event->'data'->>'stage' = 'lost' THEN
        RAISE EXCEPTION 'contact % cannot be lost', event->>'target' USING ERRCODE = 'P0A03';
    END IF;
    RETURN NULL;
END $$;
SELECT headlessly.hook('Contact.Updated', 'before', 'no_lost_deals(jsonb)') AS h \gset
UPDATE contacts SET stage = 'lost' WHERE id = 5;
\echo :LAST_ERROR_SQLSTATE
SELECT id, stage FROM contacts WHERE id = 5;
UPDATE contacts SET stage = 'won' WHERE id = 5;
SELECT id, stage FROM contacts WHERE id = 5;
SELECT headlessly.unhook(:h);

-- after capture, as_of answers what a row looked like at any time
INSERT INTO contacts VALUES (10, 'Gus', 'gus@x.test', 'lead', NULL);
SELECT recorded_at AS t_created FROM headlessly.events
 WHERE tenant = 'capture_test' AND target = 'contact_10' ORDER BY version DESC LIMIT 1 \gset
UPDATE contacts SET stage = 'customer', email = NULL WHERE id = 10;
SELECT recorded_at AS t_updated FROM headlessly.events
 WHERE tenant = 'capture_test' AND target = 'contact_10' ORDER BY version DESC LIMIT 1 \gset
DELETE FROM contacts WHERE id = 10;
SELECT headlessly.as_of('contact_10', :'t_created') AS at_insert,
       headlessly.as_of('contact_10', :'t_updated') AS at_update,
       headlessly.as_of('contact_10') AS now,
       headlessly.as_of_version('contact_10', 2) AS version_2;

-- TRUNCATE deletes every entity; an id that starts with the noun's prefix
-- is the target as it is
CREATE TABLE deals (deal_id text PRIMARY KEY, amount numeric);
SELECT headlessly.capture('deals', 'Deal', 'deal_id');
INSERT INTO deals VALUES ('deal_1', 10), ('d2', 20);
UPDATE deals SET amount = amount * 2;
SELECT target, state FROM headlessly.entities WHERE tenant = 'capture_test' AND noun = 'Deal' ORDER BY target;
TRUNCATE deals;
SELECT count(*) AS live_deals FROM headlessly.entities WHERE tenant = 'capture_test' AND noun = 'Deal';
SELECT type, target, version FROM headlessly.events
 WHERE tenant = 'capture_test' AND type LIKE 'Deal.%' ORDER BY seq;

-- tables with serial ids: each noun has its own targets, so they never collide
CREATE TABLE orders (id serial PRIMARY KEY, total int);
CREATE TABLE order_lines (id serial PRIMARY KEY, qty int);
SELECT headlessly.capture('orders'), headlessly.capture('order_lines');
INSERT INTO orders (total) VALUES (100);
INSERT INTO order_lines (qty) VALUES (3);
UPDATE orders SET total = 90;
SELECT type, target, version, data FROM headlessly.events
 WHERE tenant = 'capture_test' AND type LIKE 'Order%' ORDER BY seq;

-- capturing again catches an entity up only where the row changed: the
-- target is made of the id's text as its type prints it (char(n) keeps its
-- padding), both when the row is written and when capture starts; a
-- dropped column is no column
CREATE TABLE padded (code char(4) PRIMARY KEY, dropped int, on_sale boolean);
ALTER TABLE padded DROP COLUMN dropped;
INSERT INTO padded VALUES ('ab', true), ('cd', false);
SELECT headlessly.capture('padded', 'Pad', 'code');
SELECT headlessly.uncapture('padded');
UPDATE padded SET on_sale = true WHERE code = 'cd';
SELECT headlessly.capture('padded', 'Pad', 'code');
UPDATE padded SET on_sale = false WHERE code = 'ab';
SELECT type, target, data FROM headlessly.events
 WHERE tenant = 'capture_test' AND type LIKE 'Pad.%' ORDER BY seq;

-- names with quotes, backslashes and letters beyond ASCII work, and metadata
-- names the schema, table and operation as JSON whatever they contain
CREATE SCHEMA "we""ird\schema";
CREATE TABLE "we""ird\schema"."Kundenbücher" ("i""d\x" int PRIMARY KEY, "na""me" text, "größe" int);
INSERT INTO "we""ird\schema"."Kundenbücher" VALUES (1, 'vorher', 1);
SELECT headlessly.capture('"we""ird\schema"."Kundenbücher"', id_column => 'i"d\x');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('"we""ird\schema"."Kundenbücher"', 'Kundenbuch', 'i"d\x');
INSERT INTO "we""ird\schema"."Kundenbücher" VALUES (2, 'O''Brien "the" \ one', 2);
UPDATE "we""ird\schema"."Kundenbücher" SET "größe" = 3 WHERE "i""d\x" = 2;
DELETE FROM "we""ird\schema"."Kundenbücher" WHERE "i""d\x" = 1;
TRUNCATE "we""ird\schema"."Kundenbücher";
SELECT type, target, data, metadata,
       metadata = jsonb_build_object('schema', 'we"ird\schema', 'table', 'Kundenbücher',
                                     'operation', metadata->>'operation') AS names_exact
  FROM headlessly.events WHERE tenant = 'capture_test' AND type LIKE 'Kundenbuch.%' ORDER BY seq;
-- a name cannot smuggle keys into metadata
CREATE TABLE "x"", ""sessionId"": ""injected" (id int);
SELECT headlessly.capture('"x"", ""sessionId"": ""injected"', 'Smuggled');
INSERT INTO "x"", ""sessionId"": ""injected" VALUES (1);
SELECT type, session_id, metadata ? 'sessionId' AS has_session, metadata->>'table' AS "table"
  FROM headlessly.events WHERE tenant = 'capture_test' AND type = 'Smuggled.Created';

-- nouns from table names
CREATE TABLE companies (id int);
CREATE TABLE lead_events (id int);
CREATE TABLE addresses (id int);
CREATE TABLE status (id int);
SELECT headlessly.capture('companies'), headlessly.capture('lead_events'),
       headlessly.capture('addresses'), headlessly.capture('status');
SELECT tgrelid::regclass AS captured, encode(tgargs, 'escape') AS noun_and_id
  FROM pg_trigger WHERE tgname = 'headlessly_capture' ORDER BY tgrelid::regclass::text;

-- capture() needs TRIGGER and SELECT on the table, uncapture() its
-- ownership: checked before any lock is taken, and nothing changes
CREATE ROLE regress_capture_stranger;
GRANT USAGE ON SCHEMA headlessly TO regress_capture_stranger;
GRANT SELECT ON orders TO regress_capture_stranger;
CREATE TABLE stranger_sees (id int);
SET ROLE regress_capture_stranger;
SELECT headlessly.capture('stranger_sees');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('orders');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.uncapture('orders');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tgrelid::regclass AS captured, count(*) AS triggers FROM pg_trigger
 WHERE tgrelid IN ('stranger_sees'::regclass, 'orders'::regclass) GROUP BY 1 ORDER BY 1::text;
DROP TABLE stranger_sees;
REVOKE ALL ON orders FROM regress_capture_stranger;
REVOKE ALL ON SCHEMA headlessly FROM regress_capture_stranger;
DROP ROLE regress_capture_stranger;

-- capturing twice changes nothing; uncapture stops it
SELECT headlessly.capture('contacts');
SELECT headlessly.uncapture('contacts'), headlessly.uncapture('contacts');
INSERT INTO contacts VALUES (7, 'Uncaptured', NULL, NULL, NULL);
SELECT count(*) AS events_for_7 FROM headlessly.events WHERE tenant = 'capture_test' AND target = 'contact_7';

-- what cannot be captured: refused, and nothing is appended or installed
SELECT count(*) AS events_before_refusals FROM headlessly.events WHERE tenant = 'capture_test' \gset
CREATE VIEW contact_view AS SELECT * FROM contacts;
SELECT headlessly.capture('contact_view');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('contacts', id_column => 'uuid');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('contacts', id_column => 'ctid');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('contacts', noun => 'contact');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture('headlessly.streams');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE "9lives" (id int);
SELECT headlessly.capture('"9lives"');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE nullable_ids (id int, x int);
INSERT INTO nullable_ids VALUES (NULL, 1);
SELECT headlessly.capture('nullable_ids');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM nullable_ids;
SELECT headlessly.capture('nullable_ids');
INSERT INTO nullable_ids VALUES (NULL, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_kept FROM nullable_ids;
SELECT count(*) - :events_before_refusals AS events_appended,
       (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'headlessly_capture%'
           AND tgrelid IN ('"9lives"'::regclass, 'contact_view'::regclass)) AS triggers_installed
  FROM headlessly.events WHERE tenant = 'capture_test';

-- Row security: TRUNCATE removes every row whatever the policies, so a
-- role they hide rows from may not truncate (its Deleted events would miss
-- the hidden rows), nor capture (the catch-up would miss them); the owner,
-- whom they do not bind, may
CREATE ROLE regress_capture_partial;
CREATE TABLE guarded_rows (id int PRIMARY KEY, seen_by text);
INSERT INTO guarded_rows VALUES (1, 'regress_capture_partial'), (2, 'nobody');
ALTER TABLE guarded_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON guarded_rows USING (seen_by OPERATOR(pg_catalog.=) current_user);
GRANT SELECT, TRUNCATE, TRIGGER ON guarded_rows TO regress_capture_partial;
GRANT USAGE ON SCHEMA headlessly TO regress_capture_partial;
GRANT SELECT, INSERT ON headlessly.events TO regress_capture_partial;
GRANT SELECT ON headlessly.entities TO regress_capture_partial;
SET ROLE regress_capture_partial;
SELECT headlessly.capture('guarded_rows');
\echo :SQLSTATE
RESET ROLE;
SELECT count(*) AS guarded_entities FROM headlessly.entities
 WHERE tenant = 'capture_test' AND noun = 'GuardedRow';
SELECT headlessly.capture('guarded_rows');
SET ROLE regress_capture_partial;
SELECT id FROM guarded_rows;
TRUNCATE guarded_rows;
\echo :SQLSTATE
RESET ROLE;
SELECT count(*) AS rows_kept FROM guarded_rows;
TRUNCATE guarded_rows;
SELECT type, target FROM headlessly.events
 WHERE tenant = 'capture_test' AND type LIKE 'GuardedRow.%' ORDER BY seq;
SELECT count(*) AS guarded_entities_left FROM headlessly.entities
 WHERE tenant = 'capture_test' AND noun = 'GuardedRow';
DROP TABLE guarded_rows;
REVOKE ALL ON headlessly.events, headlessly.entities FROM regress_capture_partial;
REVOKE ALL ON SCHEMA headlessly FROM regress_capture_partial;
DROP ROLE regress_capture_partial;

DROP VIEW contact_view;
DROP TABLE contacts, deals, companies, lead_events, addresses, status, "9lives", nullable_ids,
           orders, order_lines, padded, "x"", ""sessionId"": ""injected";
DROP SCHEMA "we""ird\schema" CASCADE;
RESET headlessly.tenant;
