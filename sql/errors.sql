-- Bad input: a clear error with our SQLSTATE, and nothing stored.
\pset null '(null)'
\set SHOW_CONTEXT never

CREATE TEMP TABLE baseline AS
SELECT (SELECT count(*) FROM headlessly.events) AS events,
       (SELECT count(*) FROM headlessly.streams) AS streams,
       (SELECT max(version) FROM headlessly.streams) AS max_version;

-- appends below that succeed on purpose are counted here
CREATE TEMP TABLE expected_appends (n int);
INSERT INTO expected_appends VALUES (0);
CREATE TEMP TABLE expected_streams (n int);
INSERT INTO expected_streams VALUES (0);

CREATE FUNCTION pg_temp.nothing_stored() RETURNS boolean LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM headlessly.events) = b.events + (SELECT n FROM expected_appends)
       AND (SELECT count(*) FROM headlessly.streams) = b.streams + (SELECT n FROM expected_streams)
      FROM baseline b
$$;

-- type
SELECT headlessly.events_append(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append(' Contact.Created');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.*');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append(E'page\nview');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append(repeat('x', 600));
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- data and metadata must be objects
SELECT headlessly.events_append('page_view', data => '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => '"text"');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => '42');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => 'true');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => 'null');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', metadata => '["s1"]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', metadata => jsonb_build_object('sessionId', repeat('s', 600)));
\echo :LAST_ERROR_SQLSTATE
-- invalid JSON keeps PostgreSQL's own SQLSTATE
SELECT headlessly.events_append('page_view', data => '{"a": ');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- payload size
SET headlessly.max_event_bytes = '1kB';
SHOW headlessly.max_event_bytes;
SELECT headlessly.events_append('page_view', data => jsonb_build_object('blob', repeat('x', 2000)));
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => jsonb_build_object('blob', repeat('x', 600)),
                                metadata => jsonb_build_object('blob', repeat('y', 600)));
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('webhook', raw_payload => repeat('z', 1025));
\echo :LAST_ERROR_SQLSTATE
-- just under the limit is fine
SELECT type FROM headlessly.events_append('webhook', raw_payload => repeat('z', 1000));
UPDATE expected_appends SET n = n + 1;
RESET headlessly.max_event_bytes;
SELECT pg_temp.nothing_stored();

-- source_type, names
SELECT headlessly.events_append('page_view', source_type => 'partner');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', target => '');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', tenant => '');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', target => repeat('t', 513));
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', external_event_id => '');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- entity state violations
SELECT version FROM headlessly.events_append('Contact.Created', 'err_c1', '{"name": "A"}');
UPDATE expected_appends SET n = n + 1;
UPDATE expected_streams SET n = n + 1;
SELECT headlessly.events_append('Contact.Created', 'err_c1', '{"name": "again"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.Updated', 'err_nobody', '{"name": "B"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.Deleted', 'err_nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Deal.Updated', 'err_c1', '{"amount": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM headlessly.events_append('Contact.Deleted', 'err_c1');
UPDATE expected_appends SET n = n + 1;
SELECT headlessly.events_append('Contact.Updated', 'err_c1', '{"name": "ghost"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.Deleted', 'err_c1');
\echo :LAST_ERROR_SQLSTATE
-- the noun is fixed by the first Created, also across a deletion
SELECT headlessly.events_append('Deal.Created', 'err_c1', '{"amount": 1}');
\echo :LAST_ERROR_SQLSTATE
-- a failed append leaves the stream where it was
SELECT version, noun, state FROM headlessly.streams WHERE tenant = 'default' AND target = 'err_c1';
SELECT pg_temp.nothing_stored();

-- expected_version
SELECT headlessly.events_append('Contact.Created', 'err_c1', '{"name": "A"}', expected_version => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.Created', 'err_c1', '{"name": "A"}', expected_version => 3);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', 'err_new', expected_version => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', 'err_c1', expected_version => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', expected_version => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- direct INSERTs follow the same rules
INSERT INTO headlessly.events (type, data) VALUES ('page_view', '[]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type) VALUES ('not-an-id', 'page_view');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type) VALUES ('evt_has space', 'page_view');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, version) VALUES ('page_view', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (seq, type) VALUES (1, 'page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- a failure inside a transaction takes the whole transaction's appends with it
BEGIN;
SELECT version FROM headlessly.events_append('page_view', 'err_tx');
SELECT headlessly.events_append('Contact.Updated', 'err_tx', '{}');
ROLLBACK;
SELECT count(*) AS err_tx_events FROM headlessly.events WHERE target = 'err_tx';
SELECT pg_temp.nothing_stored();
