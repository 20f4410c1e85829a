-- Hooks: before hooks transform or reject, after hooks run in their own
-- subtransaction, in registration order, for every path that appends.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'hooks_test';

-- The error of a statement with a hook's id written as <id>: ids depend on
-- which tests ran before this one.
CREATE FUNCTION pg_temp.failure_of(statement text, hook_id bigint,
    OUT state text, OUT message text, OUT detail text, OUT hint text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    state := '00000';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    message := replace(message, 'hook ' || hook_id, 'hook <id>');
    hint := replace(hint, '(' || hook_id || ')', '(<id>)');
END $$;

CREATE TABLE hook_log (n serial, hook text, type text, target text, version bigint, state jsonb);

-- handlers in SQL and PL/pgSQL
CREATE FUNCTION lower_email(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT CASE WHEN event->'data' ? 'email'
                THEN jsonb_build_object('email', lower(event->'data'->>'email')) END
$$;
CREATE FUNCTION default_stage(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF event->>'type' = 'Contact.Created' AND NOT event->'data' ? 'stage' THEN
        RETURN '{"stage": "lead"}';
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION reject_spam(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF event->'data'->>'email' LIKE '%spam%' THEN
        RAISE EXCEPTION 'no spam: %', event->'data'->>'email'
            USING ERRCODE = 'P0A01', HINT = 'Use a real address.';
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION log_event(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO hook_log (hook, type, target, version, state)
    VALUES ('log', event->>'type', event->>'target', (event->>'version')::bigint, event->'state');
    SELECT NULL::jsonb
$$;

SELECT headlessly.hook('Contact.*', 'before', 'lower_email(jsonb)') AS h_lower \gset
SELECT headlessly.hook('Contact.Created', 'before', 'default_stage(jsonb)') AS h_stage \gset
SELECT headlessly.hook('*', 'before', 'reject_spam(jsonb)') AS h_spam \gset
SELECT headlessly.hook('Contact.*', 'after', 'log_event(jsonb)') AS h_log \gset
CREATE FUNCTION log_before(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO hook_log (hook, type, target, version, state)
    VALUES ('before', event->>'type', event->>'target', (event->>'version')::bigint, event->'state');
    SELECT NULL::jsonb
$$;
SELECT headlessly.hook('Contact.Updated', 'before', 'log_before(jsonb)') AS h_logb \gset
SELECT pattern, phase, handler, position FROM headlessly.hooks ORDER BY phase DESC, position;

-- transform: the merged data is stored, and the state follows it
SELECT version, data FROM headlessly.events_append('Contact.Created', 'hc1', '{"email": "ALICE@Example.COM"}');
SELECT state FROM headlessly.entities WHERE target = 'hc1';
-- after hooks see the stored event and the state after it
SELECT hook, type, target, version, state FROM hook_log ORDER BY n;

-- before hooks see the state before the event; the patch is computed after the merge
SELECT data, before FROM headlessly.events_append('Contact.Updated', 'hc1', '{"email": "NEW@Example.com"}');
SELECT hook, type, version, state FROM hook_log ORDER BY n DESC LIMIT 2;

-- reject: the handler's own SQLSTATE and message, nothing stored, no after hook
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT count(*) AS logged FROM hook_log \gset before_
SELECT headlessly.events_append('Contact.Updated', 'hc1', '{"email": "spam@example.com"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', data => '{"email": "spam@example.com"}');
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM headlessly.events) - :before_events AS stored,
       (SELECT count(*) FROM hook_log) - :before_logged AS after_hooks_ran,
       (SELECT version FROM headlessly.streams WHERE tenant = 'hooks_test' AND target = 'hc1') AS version;
-- the same through the batch and a plain INSERT
SELECT headlessly.events_append_batch('[{"type": "Contact.Created", "target": "hc2"}, {"type": "ok", "data": {"email": "spam"}}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, data) VALUES ('x', '{"email": "spam"}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) - :before_events AS stored FROM headlessly.events;

-- hooks run for plain INSERTs and batches too
INSERT INTO headlessly.events (type, target, data) VALUES ('Contact.Created', 'hc3', '{"email": "Bob@X.test"}');
SELECT target, data FROM headlessly.events_append_batch('[{"type": "Contact.Created", "target": "hc4", "data": {"email": "Carol@X.test"}}]');
SELECT target, state FROM headlessly.entities WHERE target IN ('hc3', 'hc4') ORDER BY target;

SELECT headlessly.unhook(:h_lower), headlessly.unhook(:h_stage), headlessly.unhook(:h_spam), headlessly.unhook(:h_log), headlessly.unhook(:h_logb);
-- unhooking twice finds nothing
SELECT headlessly.unhook(:h_log);
SELECT count(*) AS hooks_left FROM headlessly.hooks;

-- order: three before hooks run in registration order, each seeing the last one's data
CREATE FUNCTION trace_a(event jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ SELECT jsonb_build_object('trace', coalesce(event->'data'->'trace', '[]') || '"a"') $$;
CREATE FUNCTION trace_b(event jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ SELECT jsonb_build_object('trace', coalesce(event->'data'->'trace', '[]') || '"b"') $$;
CREATE FUNCTION trace_c(event jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ SELECT jsonb_build_object('trace', coalesce(event->'data'->'trace', '[]') || '"c"') $$;
SELECT headlessly.hook('Order.*', 'before', 'trace_b(jsonb)') AS t1,
       headlessly.hook('*', 'before', 'trace_c(jsonb)') AS t2,
       headlessly.hook('Order.Created', 'before', 'trace_a(jsonb)') AS t3 \gset
SELECT data FROM headlessly.events_append('Order.Created', 'ho1');
SELECT headlessly.unhook(:t1), headlessly.unhook(:t2), headlessly.unhook(:t3);

-- after hooks: a failure is undone and recorded, the others run, the append commits
CREATE FUNCTION after_one(event jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ INSERT INTO hook_log (hook, type) VALUES ('one', event->>'type'); SELECT NULL::jsonb $$;
CREATE FUNCTION after_fails(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hook_log (hook, type) VALUES ('fails', event->>'type');
    PERFORM headlessly.events_append('side_effect', 'fail_side');
    RAISE EXCEPTION 'webhook endpoint down' USING ERRCODE = 'P0A02', DETAIL = 'HTTP 503';
END $$;
CREATE FUNCTION after_three(event jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ INSERT INTO hook_log (hook, type) VALUES ('three', event->>'type'); SELECT NULL::jsonb $$;
SELECT headlessly.hook('Invoice.*', 'after', 'after_one(jsonb)') AS a1,
       headlessly.hook('Invoice.*', 'after', 'after_fails(jsonb)') AS a2,
       headlessly.hook('Invoice.*', 'after', 'after_three(jsonb)') AS a3 \gset
-- the log has an AFTER trigger only while after hooks exist, guarded like the rest
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'headlessly.events'::regclass AND tgname = 'events_after_append';
ALTER TABLE headlessly.events DISABLE TRIGGER events_after_append;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER events_after_append ON headlessly.events;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM hook_log;
SELECT id AS invoice_event, version FROM headlessly.events_append('Invoice.Created', 'inv1', '{"total": 5}') \gset
SELECT :version AS version;
SELECT hook, type FROM hook_log ORDER BY n;
-- failures other tests left are not these hooks': count only theirs
SELECT event_id = :'invoice_event' AS right_event, hook_id = :a2 AS right_hook, handler, sqlstate, message, detail
  FROM headlessly.hook_failures WHERE hook_id IN (:a1, :a2, :a3);
SELECT count(*) AS side_effects_kept FROM headlessly.events WHERE target = 'fail_side';
SELECT count(*) AS invoice_stored FROM headlessly.events WHERE target = 'inv1';
-- inside an explicit transaction the append and the other hooks' work commit together
BEGIN;
SELECT version FROM headlessly.events_append('Invoice.Paid', 'inv1', '{"paid": true}');
COMMIT;
SELECT hook, count(*) FROM hook_log GROUP BY hook ORDER BY hook;
SELECT count(*) AS failures FROM headlessly.hook_failures WHERE hook_id IN (:a1, :a2, :a3);
SELECT headlessly.unhook(:a1), headlessly.unhook(:a2), headlessly.unhook(:a3);
SELECT count(*) AS after_trigger FROM pg_trigger
 WHERE tgrelid = 'headlessly.events'::regclass AND tgname = 'events_after_append';

-- hooks may append: Deal.Closed creates a subscription
CREATE FUNCTION open_subscription(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT NULL::jsonb FROM headlessly.events_append('Subscription.Created', 'sub_' || (event->>'target'),
        jsonb_build_object('deal', event->>'target', 'plan', event->'state'->>'plan'), actor => 'hook')
$$;
SELECT headlessly.hook('Deal.Closed', 'after', 'open_subscription(jsonb)') AS ds \gset
SELECT version FROM headlessly.events_append('Deal.Created', 'hd1', '{"plan": "pro"}');
SELECT version FROM headlessly.events_append('Deal.Closed', 'hd1', '{"won": true}');
SELECT target, noun, state FROM headlessly.entities WHERE target = 'sub_hd1';
SELECT headlessly.unhook(:ds);

-- nesting deeper than headlessly.max_hook_depth fails with ZE006
CREATE FUNCTION ping_again(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT NULL::jsonb FROM headlessly.events_append('ping', data => jsonb_build_object('n', (event->'data'->>'n')::int + 1))
$$;
SELECT headlessly.hook('ping', 'before', 'ping_again(jsonb)') AS pa \gset
SET headlessly.max_hook_depth = 3;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT headlessly.events_append('ping', data => '{"n": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT headlessly.unhook(:pa);
-- a before hook may append to its own stream: the event takes the version after
CREATE FUNCTION note_first(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT NULL::jsonb FROM headlessly.events_append('note', event->>'target')
$$;
SELECT headlessly.hook('Ticket.Escalated', 'before', 'note_first(jsonb)') AS nf \gset
SELECT version FROM headlessly.events_append('Ticket.Created', 'tk1');
SELECT version FROM headlessly.events_append('Ticket.Escalated', 'tk1', '{"level": 2}');
SELECT version, type FROM headlessly.events WHERE target = 'tk1' ORDER BY version;
SELECT headlessly.unhook(:nf);
RESET headlessly.max_hook_depth;

-- a duplicate runs no hook
SELECT headlessly.hook('Payment.*', 'before', 'log_event(jsonb)') AS pb,
       headlessly.hook('Payment.*', 'after', 'log_event(jsonb)') AS pb2 \gset
DELETE FROM hook_log;
SELECT version FROM headlessly.events_append('Payment.Created', 'pay1', source => 'stripe', external_event_id => 'ch_1');
SELECT count(*) AS hook_runs_first FROM hook_log;
SELECT version FROM headlessly.events_append('Payment.Created', 'pay1', source => 'stripe', external_event_id => 'ch_1');
SELECT version FROM headlessly.events_append_batch('[{"type": "Payment.Created", "target": "pay1", "source": "stripe", "external_event_id": "ch_1"}]');
SELECT count(*) AS hook_runs_after_duplicates FROM hook_log;
SELECT headlessly.unhook(:pb), headlessly.unhook(:pb2);

-- which patterns match which types (case-sensitive)
CREATE TEMP TABLE matched (type text);
CREATE FUNCTION log_match(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO matched VALUES (event->>'type'); SELECT NULL::jsonb
$$;
CREATE FUNCTION pg_temp.matches(pattern text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE id bigint; r text;
BEGIN
    DELETE FROM matched;
    id := headlessly.hook(pattern, 'before', 'log_match(jsonb)');
    PERFORM headlessly.events_append(t)
       FROM unnest(ARRAY['Ticket.Escalated', 'Ticket.Created', 'Deal.Escalated',
                         'page_view', 'ticket.escalated']) t;
    PERFORM headlessly.unhook(id);
    SELECT string_agg(type, ', ' ORDER BY type COLLATE "C") INTO r FROM matched;
    RETURN r;
END $$;
SELECT p AS pattern, pg_temp.matches(p) AS matches
  FROM unnest(ARRAY['*', 'Ticket.*', '*.Escalated', 'Ticket.Escalated', 'ticket.*',
                    '*.escalated', 'page_view', 'Tick.*', '*.Escalate']) p
 ORDER BY p COLLATE "C";

-- custom verbs work with hooks like any other
SELECT headlessly.hook('*.Escalated', 'after', 'log_event(jsonb)') AS esc \gset
DELETE FROM hook_log;
SELECT version FROM headlessly.events_append('Ticket.Escalated', 'tk1', '{"level": 3}');
SELECT type, version, state FROM hook_log;
SELECT headlessly.unhook(:esc);

-- bad registrations
SELECT headlessly.hook('Contact.*', 'during', 'log_event(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook('Contact*', 'before', 'log_event(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook('*.*', 'before', 'log_event(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook('', 'before', 'log_event(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook(NULL, 'before', 'log_event(jsonb)');
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION wrong_shape(event json) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT headlessly.hook('*', 'before', 'wrong_shape(json)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook('*', 'before', 'no_such_function(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook('*', 'before', 'headlessly.events_append_batch(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS hooks FROM headlessly.hooks;

-- a before hook must return an object or NULL
CREATE FUNCTION returns_array(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '[1]'::jsonb $$;
SELECT headlessly.hook('odd', 'before', 'returns_array(jsonb)') AS ra \gset
\x on
SELECT * FROM pg_temp.failure_of($$SELECT headlessly.events_append('odd')$$, :ra);
\x off
SELECT headlessly.unhook(:ra);

-- a dropped handler is reported, and unhook removes the hook
CREATE FUNCTION short_lived(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT headlessly.hook('gone', 'before', 'short_lived(jsonb)') AS sl \gset
DROP FUNCTION short_lived(jsonb);
\x on
SELECT * FROM pg_temp.failure_of($$SELECT headlessly.events_append('gone')$$, :sl);
\x off
SELECT headlessly.unhook(:sl);
SELECT type FROM headlessly.events_append('gone');

SELECT count(*) AS hooks_left FROM headlessly.hooks;
RESET headlessly.tenant;
