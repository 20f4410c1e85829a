-- The trust boundary of the log: the columns it assigns (seq, recorded_at,
-- version, before) are refused from application roles, and rows that come
-- back with them (a restore) are accepted only from the owner, validated as
-- an append is and kept in step with the stream heads.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tb';

SELECT current_user AS admin \gset
CREATE ROLE regress_hl_app LOGIN;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_app;
GRANT SELECT, INSERT ON headlessly.events TO regress_hl_app;

SELECT version FROM headlessly.events_append('Account.Created', 'tb_acct', '{"plan": "free"}');

-- everything an attempt could change: the log and the heads (failed appends
-- may use up sequence numbers, as any sequence's users do)
CREATE FUNCTION public.tb_log_state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(coalesce((SELECT string_agg(e::text, '|' ORDER BY seq) FROM headlessly.events e), '')
            || coalesce((SELECT string_agg(s::text, '|' ORDER BY tenant, target) FROM headlessly.streams s), ''))
$$;
SELECT public.tb_log_state() AS before_app \gset

-- an application role ----------------------------------------------------------
\c - regress_hl_app
SET headlessly.tenant = 'tb';
\set SHOW_CONTEXT never
-- seq, by INSERT (with or without OVERRIDING SYSTEM VALUE) and by COPY
INSERT INTO headlessly.events (seq, type) OVERRIDING SYSTEM VALUE VALUES (-100, 'forged');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (seq, type) OVERRIDING SYSTEM VALUE VALUES (0, 'forged');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (seq, type) OVERRIDING SYSTEM VALUE VALUES (9223372036854775807, 'forged');
\echo :LAST_ERROR_SQLSTATE
-- a future seq would make a later append fail with 23505
INSERT INTO headlessly.events (seq, type) OVERRIDING SYSTEM VALUE VALUES (1000000, 'forged');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (seq, type) VALUES (1000001, 'forged');
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (seq, type) FROM stdin;
1000002	forged
\.
\echo :LAST_ERROR_SQLSTATE
-- recorded_at, version, before
INSERT INTO headlessly.events (type, occurred_at, recorded_at) VALUES ('forged', now(), '2000-01-01');
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (type, occurred_at, recorded_at) FROM stdin;
forged	2000-01-01 00:00:00+00	2000-01-01 00:00:00+00
\.
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target, version) VALUES ('Account.Updated', 'tb_acct', 2);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target, version) VALUES ('Account.Updated', 'tb_acct', 7);
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (type, target, version, data) FROM stdin;
Account.Updated	tb_acct	2	{"plan": "pro"}
\.
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target, data, before) VALUES ('Account.Updated', 'tb_acct', '{"plan": "pro"}', '{"plan": "enterprise"}');
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (type, target, data, before) FROM stdin;
Account.Updated	tb_acct	{"plan": "pro"}	{"plan": "enterprise"}
\.
\echo :LAST_ERROR_SQLSTATE
-- xact_id: consumers trust it to tell what has committed
INSERT INTO headlessly.events (type, xact_id) VALUES ('forged', '1');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target, xact_id) VALUES ('Account.Updated', 'tb_acct', pg_current_xact_id());
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (type, xact_id) FROM stdin;
forged	0
\.
\echo :LAST_ERROR_SQLSTATE
-- a direct INSERT gets the validation events_append gets
INSERT INTO headlessly.events (type, target, data) VALUES ('', 'tb_acct', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target, data) VALUES ('Account.Updated', 'tb_acct', '[1]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target) VALUES ('Account.Created', 'tb_acct');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type) VALUES ('x', 'imported');
\echo :LAST_ERROR_SQLSTATE
\c - :admin
SELECT public.tb_log_state() = :'before_app' AS nothing_stored_or_changed;

\c - regress_hl_app
SET headlessly.tenant = 'tb';
\set SHOW_CONTEXT never
-- an id may be imported, if well-formed and unused
INSERT INTO headlessly.events (id, type) VALUES ('evt_tb_imported_1', 'imported');
INSERT INTO headlessly.events (id, type) VALUES ('evt_tb_imported_1', 'imported');
\echo :LAST_ERROR_SQLSTATE
-- expected_version keeps working, single and batched, and stays checked
SELECT version FROM headlessly.events_append('Account.Updated', 'tb_acct', '{"plan": "pro"}', expected_version => 1);
SELECT version FROM headlessly.events_append('Account.Updated', 'tb_acct', '{"plan": "team"}', expected_version => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM headlessly.events_append_batch('[{"type": "Account.Updated", "target": "tb_acct", "data": {"seats": 3}, "expected_version": 2},
                                                      {"type": "Account.Updated", "target": "tb_acct", "data": {"seats": 4}, "expected_version": 3}]');
SELECT version FROM headlessly.events_append_batch('[{"type": "Account.Updated", "target": "tb_acct", "data": {"seats": 5}, "expected_version": 3}]');
\echo :LAST_ERROR_SQLSTATE
-- an expectation that failed leaves nothing behind for the next append
SELECT version FROM headlessly.events_append('Account.Updated', 'tb_acct', '{"seats": 5}');
\c - :admin
SET headlessly.tenant = 'tb';
\set SHOW_CONTEXT never
SELECT version, data, before FROM headlessly.events WHERE target = 'tb_acct' ORDER BY seq;

-- restoring: the owner brings stored events back ----------------------------------
CREATE TABLE tb_hook_calls (phase text, id text);
CREATE FUNCTION tb_before_hook(event jsonb) RETURNS jsonb LANGUAGE sql AS
    $$ INSERT INTO tb_hook_calls VALUES ('before', event->>'id') RETURNING NULL::jsonb $$;
CREATE FUNCTION tb_after_hook(event jsonb) RETURNS jsonb LANGUAGE sql AS
    $$ INSERT INTO tb_hook_calls VALUES ('after', event->>'id') RETURNING NULL::jsonb $$;
SELECT headlessly.hook('*', 'before', 'tb_before_hook(jsonb)') AS before_hook \gset
SELECT headlessly.hook('*', 'after', 'tb_after_hook(jsonb)') AS after_hook \gset

SELECT max(recorded_at) AS last_at FROM headlessly.events WHERE target = 'tb_acct' \gset
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_t1', 'tick', 'tb_clock', 1, '2021-01-01 00:00:00+00', '2021-01-01 00:00:00+00', '{}');
SELECT public.tb_log_state() AS before_restore \gset
-- each of these is refused, and nothing of it is stored
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', '', 'tb_acct', 6, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'Account.Updated', 'tb_acct', -5, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'Account.Updated', 'tb_acct', 6, :'last_at', :'last_at', '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('x', 'Account.Updated', 'tb_acct', 6, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
-- a version gap, and a stream that would go back in time
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'Account.Updated', 'tb_acct', 8, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'tick', 'tb_clock', 2, '2020-12-31 23:59:59+00', '2020-12-31 23:59:59+00', '{}');
\echo :LAST_ERROR_SQLSTATE
-- entity rules, and a before that the stream does not give
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'Account.Created', 'tb_acct', 6, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data, before)
VALUES ('evt_tb_r1', 'Account.Updated', 'tb_acct', 6, :'last_at', :'last_at', '{"plan": "x"}', '{"plan": "free"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'Account.Updated', 'tb_acct', 6, :'last_at', :'last_at', '{"plan": "x"}');
\echo :LAST_ERROR_SQLSTATE
-- versions only with a target, and the other way round; seq from 1
INSERT INTO headlessly.events (id, type, version, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'page_view', 1, :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, target, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'page_view', 'tb_acct', :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (seq, id, type, occurred_at, recorded_at, data)
VALUES (-100, 'evt_tb_r1', 'page_view', :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
-- a key, an id or a seq that is stored already
SELECT seq AS stored_seq FROM headlessly.events_append('charge', source => 'stripe', external_event_id => 'tb_key') \gset
SELECT public.tb_log_state() AS before_restore \gset
INSERT INTO headlessly.events (id, type, source, external_event_id, occurred_at, recorded_at, data)
VALUES ('evt_tb_r1', 'charge', 'stripe', 'tb_key', :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (id, type, occurred_at, recorded_at, data)
VALUES ('evt_tb_imported_1', 'charge', :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO headlessly.events (seq, id, type, occurred_at, recorded_at, data)
VALUES (:stored_seq, 'evt_tb_r1', 'charge', :'last_at', :'last_at', '{}');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT public.tb_log_state() = :'before_restore' AS nothing_stored_or_changed;

-- well-formed stored events come back as they were, and the heads follow
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
VALUES (9000000, 'evt_tb_r1', 'Account.Updated', 'tb_acct', 6, '2020-01-01', :'last_at', '{"plan": "x"}', '{"plan": "pro"}'),
       (9000001, 'evt_tb_r2', 'Account.Deleted', 'tb_acct', 7, '2020-01-01', :'last_at', '{}',
        '{"plan": "x", "seats": 5}'),
       (9000002, 'evt_tb_r3', 'Account.Created', 'tb_new', 1, '2020-01-01', :'last_at', '{"plan": "y"}', NULL),
       (9000003, 'evt_tb_r4', 'charge', NULL, NULL, '2020-01-01', :'last_at', '{}', NULL);
COPY headlessly.events (seq, id, tenant, type, target, version, occurred_at, recorded_at, data, before, external_event_id, source) FROM stdin;
9000004	evt_tb_r5	tb	Account.Updated	tb_new	2	2020-01-01 00:00:00+00	2030-01-01 00:00:00+00	{"plan": "z"}	{"plan": "y"}	tb_key_2	stripe
\.
-- headlessly.max_event_bytes is about new appends: a stored event comes back whatever its size
SET headlessly.max_event_bytes = '1kB';
INSERT INTO headlessly.events (seq, id, type, occurred_at, recorded_at, data)
VALUES (9000005, 'evt_tb_r6', 'upload', '2020-01-01', :'last_at', jsonb_build_object('blob', repeat('b', 2000)));
SELECT headlessly.events_append('upload', data => jsonb_build_object('blob', repeat('b', 2000)));
\echo :LAST_ERROR_SQLSTATE
RESET headlessly.max_event_bytes;
SELECT seq, id, type, target, version, occurred_at, recorded_at = :'last_at' AS kept_recorded_at, left(data::text, 40) AS data, before
  FROM headlessly.events WHERE id LIKE 'evt_tb_r_' ORDER BY seq;
SELECT target, version, noun, state FROM headlessly.streams WHERE tenant = 'tb' ORDER BY target;
-- no hook ran for them: hooks ran when the events were first appended
SELECT count(*) AS hook_calls FROM tb_hook_calls WHERE id LIKE 'evt_tb_r_';
-- the restored key is claimed
SELECT id FROM headlessly.events_append('charge', source => 'stripe', external_event_id => 'tb_key_2');
-- appends continue after the restored events: next version, seq past them,
-- recorded_at not before the stream's last
SELECT seq > 9000005 AS seq_after_restored, version, recorded_at = '2030-01-01 00:00:00+00' AS recorded_at_raised
  FROM headlessly.events_append('Account.Updated', 'tb_new', '{"plan": "w"}');
SELECT count(*) AS drift FROM headlessly.check_state('tb');
-- every event records the top-level transaction that appended it, a
-- restored one the restoring transaction (another cluster's ids mean nothing here)
BEGIN;
SAVEPOINT s;
SELECT xact_id = pg_current_xact_id() AS appended_by_this_transaction
  FROM headlessly.events_append('Account.Updated', 'tb_new', '{"plan": "v"}');
RELEASE s;
INSERT INTO headlessly.events (seq, id, type, occurred_at, recorded_at, data, xact_id)
VALUES (9000100, 'evt_tb_r7', 'charge', '2020-01-01', :'last_at', '{}', '12345');
SELECT count(DISTINCT xact_id) AS one_transaction, bool_and(xact_id = pg_current_xact_id()) AS this_one
  FROM headlessly.events WHERE id = 'evt_tb_r7' OR seq = (SELECT max(seq) FROM headlessly.events WHERE target = 'tb_new');
COMMIT;

-- other roles may not restore
\c - regress_hl_app
SET headlessly.tenant = 'tb';
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data)
VALUES (9000010, 'evt_tb_r9', 'Account.Updated', 'tb_new', 4, '2020-01-01', '2030-01-01', '{}');
\echo :LAST_ERROR_SQLSTATE
\c - :admin
SELECT count(*) AS stored FROM headlessly.events WHERE id = 'evt_tb_r9';

SELECT headlessly.unhook(:before_hook), headlessly.unhook(:after_hook);
DROP TABLE tb_hook_calls;
DROP FUNCTION tb_before_hook(jsonb), tb_after_hook(jsonb), public.tb_log_state();
REVOKE ALL ON headlessly.events FROM regress_hl_app;
REVOKE ALL ON SCHEMA headlessly FROM regress_hl_app;
DROP ROLE regress_hl_app;
