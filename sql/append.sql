-- The log: appending events and what gets stored.
\pset null '(null)'
-- a log of its own: what the default tenant holds is this test's alone
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;

-- the contract's columns, with their types
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'headlessly.events'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- a free-standing event: no target, no version, defaults filled in
SELECT type, target, version, tenant, actor, data, before, metadata,
       id ~ '^evt_[0-9A-Za-z]{18}$' AS id_ok,
       occurred_at = recorded_at AS occurred_defaults_to_recorded,
       recorded_at = now() AS recorded_is_xact_time
  FROM headlessly.events_append('page_view', data => '{"path": "/pricing"}',
                                metadata => '{"sessionId": "s1", "url": "https://x.test/pricing"}');

-- the session id is a column of its own, as metadata->>'sessionId' gives it
SELECT session_id FROM headlessly.events WHERE type = 'page_view';
SELECT session_id, session_id = metadata->>'sessionId' AS same
  FROM headlessly.events_append('session_probe', metadata => '{"sessionId": 42}');
SELECT session_id FROM headlessly.events_append('session_probe', metadata => '{"sessionId": null}');

-- named arguments, as in the contract
SELECT type, target, version, actor, data, before
  FROM headlessly.events_append('Contact.Created', 'contact_1', '{"name":"Alice"}', actor => 'agent_7');

-- every column an append can set
SELECT type, target, version, actor, tenant, source, source_type, external_event_id,
       occurred_at, data, metadata, raw_payload
  FROM headlessly.events_append(
        type => 'purchase_completed', target => 'contact_1', data => '{"amount": 42}',
        actor => 'user_1', tenant => 'acme', source => 'stripe', source_type => 'external',
        external_event_id => 'evt_stripe_1', occurred_at => '2026-01-15 10:00:00+00',
        metadata => '{"ip": "127.0.0.1"}', raw_payload => '{"id":"evt_stripe_1",  "amount":42}');

-- raw_payload keeps the bytes exactly, white space included
SELECT raw_payload = '{"id":"evt_stripe_1",  "amount":42}' AS raw_kept
  FROM headlessly.events WHERE external_event_id = 'evt_stripe_1';

-- versions are per (tenant, target): contact_1 in tenant acme is a new stream
SELECT tenant, target, version, type FROM headlessly.events WHERE target = 'contact_1' ORDER BY seq;

-- non-entity events with a target take the next version and change no state
SELECT version FROM headlessly.events_append('page_view', 'contact_1');
SELECT version FROM headlessly.events_append('email_opened', 'contact_1', '{"campaign": "c7"}');
SELECT target, noun, version, state FROM headlessly.entities WHERE target = 'contact_1';

-- seq increases in append order; ids are unique
SELECT count(*) = count(DISTINCT id) AS ids_unique,
       bool_and(seq > 0) AS seq_positive
  FROM headlessly.events;
SELECT array_agg(version ORDER BY seq) AS versions
  FROM headlessly.events WHERE tenant = 'default' AND target = 'contact_1';

-- recorded_at is the transaction's time; all events of one transaction share it
BEGIN;
SELECT (headlessly.events_append('tick', 'clock_1')).version;
SELECT (headlessly.events_append('tick', 'clock_1')).version;
SELECT count(DISTINCT recorded_at) AS distinct_times, max(version) AS last_version
  FROM headlessly.events WHERE target = 'clock_1';
COMMIT;

-- a plain INSERT goes through the same rules
INSERT INTO headlessly.events (type, target, data) VALUES ('Contact.Updated', 'contact_1', '{"stage": "lead"}');
SELECT version, data, before FROM headlessly.events
 WHERE target = 'contact_1' AND tenant = 'default' ORDER BY seq DESC LIMIT 1;

-- ids given by an importer are kept when well-formed
INSERT INTO headlessly.events (id, type) VALUES ('evt_imported-42', 'imported');
SELECT id, type FROM headlessly.events WHERE id = 'evt_imported-42';

-- new_event_id() is short, URL-safe and unique
SELECT count(DISTINCT headlessly.new_event_id()) AS distinct_ids,
       bool_and(headlessly.new_event_id() ~ '^evt_[0-9A-Za-z]{18}$') AS shape_ok
  FROM generate_series(1, 1000);

-- the indexes that serve streams, time, type, actor, session and idempotency
SELECT indexrelid::regclass AS index, indisunique AS is_unique,
       pg_get_expr(indpred, indrelid) AS predicate
  FROM pg_index WHERE indrelid = 'headlessly.events'::regclass
 ORDER BY indexrelid::regclass::text COLLATE "C";

-- one entity's stream in version order is an index scan
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT * FROM headlessly.events WHERE tenant = 'default' AND target = 'contact_1' ORDER BY version;
EXPLAIN (COSTS OFF)
SELECT * FROM headlessly.events WHERE tenant = 'default' AND session_id = 's1' ORDER BY recorded_at;
RESET enable_seqscan;

-- appends take a direct path unless something needs SQL's own machinery:
-- statement triggers on the log, row security, column-level grants.  Both
-- paths store the same row under the same rules.
CREATE TABLE statement_log (n int);
CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO statement_log VALUES (1); RETURN NULL; END $$;
CREATE TRIGGER count_statements AFTER INSERT ON headlessly.events
    FOR EACH STATEMENT EXECUTE FUNCTION count_statement();
SELECT type, target, version, data FROM headlessly.events_append('Path.Created', 'sql_path', '{"via": "sql"}');
SELECT type, version FROM headlessly.events_append('Path.Created', 'sql_path_dup', external_event_id => 'path_k');
SELECT type, version FROM headlessly.events_append('Path.Created', 'sql_path_dup', external_event_id => 'path_k');
SELECT count(*) AS statements_seen FROM statement_log;
DROP TRIGGER count_statements ON headlessly.events;
SELECT type, target, version, data FROM headlessly.events_append('Path.Updated', 'sql_path', '{"via": "direct"}');
SELECT count(*) AS statements_seen FROM statement_log;
SELECT target, state FROM headlessly.entities WHERE target = 'sql_path';
DROP TABLE statement_log;
DROP FUNCTION count_statement();
