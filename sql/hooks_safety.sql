-- Hooks never crash the server, never run a handler from a freed cache, and
-- never reuse one handler's execution state for a nested call.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'hooks_safety';

CREATE TABLE ran (n serial, hook text, type text, data jsonb);

-- the error a statement raises, with a hook id shown as <id>
CREATE FUNCTION pg_temp.error_of(query text, id bigint DEFAULT NULL,
    OUT state text, OUT message text, OUT detail text, OUT hint text, OUT context text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT, context = PG_EXCEPTION_CONTEXT;
    context := split_part(context, E'\n', 1);
    IF id IS NOT NULL THEN
        message := regexp_replace(message, '\m' || id || '\M', '<id>', 'g');
        hint := regexp_replace(hint, '\m' || id || '\M', '<id>', 'g');
        context := regexp_replace(context, '\m' || id || '\M', '<id>', 'g');
    END IF;
END $$;

-- A SQL-language before hook that registers a hook and then appends: the
-- append reloads the hook cache while this handler is still running from it.
CREATE FUNCTION note(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO ran (hook, type, data) VALUES ('note', event->>'type', event->'data');
    SELECT NULL::jsonb
$$;
CREATE FUNCTION hook_then_append(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT headlessly.hook('Signup.*', 'before', 'note(jsonb)');
    SELECT NULL::jsonb FROM headlessly.events_append('audit_noted', 'audit_' || (event->>'target'));
    SELECT jsonb_build_object('checked', true)
$$;
SELECT headlessly.hook('Signup.Created', 'before', 'hook_then_append(jsonb)') AS h_then \gset
SELECT type, target, data FROM headlessly.events_append('Signup.Created', 'su1');
SELECT type, target FROM headlessly.events WHERE tenant = 'hooks_safety' ORDER BY seq;
-- the hook registered by the handler runs from the next event on
SELECT count(*) AS note_ran FROM ran;
SELECT type, data FROM headlessly.events_append('Signup.Confirmed', 'su1', '{"ok": true}');
SELECT hook, type, data FROM ran ORDER BY n;
SELECT headlessly.unhook(:h_then);
SELECT headlessly.unhook(id) FROM headlessly.hooks WHERE handler = 'note(jsonb)'::regprocedure;

-- The same with unhook(): the handler removes itself, then appends.
CREATE FUNCTION unhook_then_append(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT headlessly.unhook(id) FROM headlessly.hooks
     WHERE handler = 'unhook_then_append(jsonb)'::regprocedure;
    SELECT NULL::jsonb FROM headlessly.events_append('audit_noted', 'audit_' || (event->>'target'));
    SELECT jsonb_build_object('once', true)
$$;
SELECT headlessly.hook('Signup.Created', 'before', 'unhook_then_append(jsonb)') AS h_once \gset
SELECT type, target, data FROM headlessly.events_append('Signup.Created', 'su2');
SELECT type, target, data FROM headlessly.events_append('Signup.Created', 'su3');
SELECT count(*) AS hooks_left FROM headlessly.hooks;

-- A before hook that removes itself, appends, and then fails: the error
-- names this hook and its handler, not whatever the rebuilt cache holds.
CREATE FUNCTION unhook_append_fail(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM headlessly.unhook(id) FROM headlessly.hooks
      WHERE handler = 'unhook_append_fail(jsonb)'::regprocedure;
    PERFORM headlessly.hook('Other.*', 'before', 'note(jsonb)');
    PERFORM headlessly.events_append('audit_noted', 'audit_x');
    RETURN '[1, 2]';
END $$;
SELECT headlessly.hook('Signup.Created', 'before', 'unhook_append_fail(jsonb)') AS h_fail \gset
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT state, message FROM pg_temp.error_of('SELECT headlessly.events_append(''Signup.Created'', ''su4'')', :h_fail);
-- nothing stored, and the hooks it changed are back as they were
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT id = :h_fail AS same_hook, handler FROM headlessly.hooks;
SELECT headlessly.unhook(:h_fail);

-- The same in SQL, failing in its last statement: the hooks it ran from
-- are freed as the error unwinds, SQL function state and all.
CREATE FUNCTION unhook_append_divide(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT headlessly.unhook(id) FROM headlessly.hooks
     WHERE handler = 'unhook_append_divide(jsonb)'::regprocedure;
    SELECT NULL::jsonb FROM headlessly.events_append('audit_noted', 'audit_y');
    SELECT jsonb_build_object('ratio', 1 / (event->'data'->>'zero')::int)
$$;
SELECT headlessly.hook('Signup.Created', 'before', 'unhook_append_divide(jsonb)') AS h_divide \gset
SELECT state, message FROM pg_temp.error_of('SELECT headlessly.events_append(''Signup.Created'', ''su5'', ''{"zero": 0}'')');
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT id = :h_divide AS same_hook, handler FROM headlessly.hooks;
SELECT headlessly.unhook(:h_divide);

-- A handler that appends an event its own hook matches: each nested call
-- runs with execution state of its own.
CREATE FUNCTION chain(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT NULL::jsonb FROM headlessly.events_append('chain',
        data => jsonb_build_object('n', (event->'data'->>'n')::int + 1))
     WHERE (event->'data'->>'n')::int < 3;
    SELECT jsonb_build_object('seen', (event->'data'->>'n')::int)
$$;
SELECT headlessly.hook('chain', 'before', 'chain(jsonb)') AS h_chain \gset
SELECT data FROM headlessly.events_append('chain', data => '{"n": 0}');
SELECT data FROM headlessly.events WHERE type = 'chain' ORDER BY seq;
SELECT headlessly.unhook(:h_chain);

-- A SQL-language handler that fails halfway, its error caught by the
-- caller, starts from its first statement at the next event of the same
-- transaction (its execution state used to be resumed: "tupdesc reference
-- ... is not owned by resource owner").
CREATE FUNCTION two_steps(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO ran (hook, type) VALUES ('step one', event->>'type');
    INSERT INTO ran (hook, type) VALUES ('step two', event->>'type')
        RETURNING 1 / (event->'data'->>'divisor')::int;
    SELECT jsonb_build_object('steps', 2)
$$;
SELECT headlessly.hook('Steps.*', 'before', 'two_steps(jsonb)') AS h_steps \gset
DELETE FROM ran;
BEGIN;
SELECT data FROM headlessly.events_append('Steps.Created', 'st1', '{"divisor": 1}');
DO $$
BEGIN
    PERFORM headlessly.events_append('Steps.Created', 'st2', '{"divisor": 0}');
EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'the handler failed at step two';
END $$;
SELECT data FROM headlessly.events_append('Steps.Created', 'st3', '{"divisor": 1}');
SELECT data FROM headlessly.events_append('Steps.Created', 'st4', '{"divisor": 1}');
COMMIT;
SELECT hook, type FROM ran ORDER BY n;
SELECT target, data FROM headlessly.events WHERE type = 'Steps.Created' ORDER BY seq;
SELECT headlessly.unhook(:h_steps);

-- After hooks may change the registry too, also the last after hook
-- removing itself (which drops the log's after trigger while it fires):
-- each event runs the after hooks registered when its own began.
CREATE FUNCTION after_self(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO ran (hook, type) VALUES ('after_self', event->>'type');
    SELECT headlessly.unhook(id) FROM headlessly.hooks
     WHERE handler = 'after_self(jsonb)'::regprocedure;
    SELECT NULL::jsonb
$$;
CREATE FUNCTION after_adds(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO ran (hook, type) VALUES ('after_adds', event->>'type');
    SELECT headlessly.hook('After.*', 'after', 'note(jsonb)')
     WHERE NOT EXISTS (SELECT FROM headlessly.hooks WHERE handler = 'note(jsonb)'::regprocedure);
    SELECT NULL::jsonb
$$;
SELECT headlessly.hook('After.*', 'after', 'after_self(jsonb)') AS h_self \gset
DELETE FROM ran;
SELECT type FROM headlessly.events_append_batch('[{"type": "After.One"}, {"type": "After.Two"}]');
SELECT hook, type FROM ran ORDER BY n;
SELECT count(*) AS after_trigger FROM pg_trigger
 WHERE tgrelid = 'headlessly.events'::regclass AND tgname = 'events_after_append';
SELECT headlessly.hook('After.*', 'after', 'after_adds(jsonb)') AS h_adds \gset
DELETE FROM ran;
SELECT type FROM headlessly.events_append_batch('[{"type": "After.Three"}, {"type": "After.Four"}]');
SELECT hook, type FROM ran ORDER BY n;
SELECT count(*) AS failures FROM headlessly.hook_failures WHERE hook_id IN (:h_self, :h_adds);
SELECT headlessly.unhook(id) FROM headlessly.hook_registry ORDER BY id;

-- Handlers that are not f(event jsonb) RETURNS jsonb are refused with
-- 42883 however the registry row is written, and nothing is stored.
CREATE FUNCTION takes_json(event json) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
CREATE FUNCTION returns_int(event jsonb) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION returns_set(event jsonb) RETURNS SETOF jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
CREATE FUNCTION two_args(event jsonb, extra int DEFAULT 0) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
CREATE FUNCTION returns_record(event jsonb, OUT a jsonb, OUT b jsonb) LANGUAGE sql AS 'SELECT NULL::jsonb, NULL::jsonb';
CREATE PROCEDURE a_procedure(event jsonb) LANGUAGE sql AS 'SELECT 1';
CREATE AGGREGATE an_aggregate(jsonb) (sfunc = pg_catalog.jsonb_concat, stype = jsonb);
CREATE FUNCTION good(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('good', true) $$;
CREATE TEMP TABLE bad_handlers (handler regprocedure);
INSERT INTO bad_handlers VALUES ('takes_json(json)'), ('returns_int(jsonb)'), ('returns_set(jsonb)'),
    ('two_args(jsonb, int)'), ('returns_record(jsonb)'), ('a_procedure(jsonb)'), ('an_aggregate(jsonb)'),
    ('pg_catalog.now()'), ('pg_catalog.jsonb_typeof(jsonb)'), ('pg_catalog.jsonb_path_query(jsonb, jsonpath, jsonb, boolean)');
SELECT count(*) AS hooks FROM headlessly.hook_registry \gset before_
SELECT e.state, e.message, e.detail
  FROM bad_handlers, pg_temp.error_of(format('SELECT headlessly.hook(%L, %L, %L)', '*', 'before', handler)) e
 ORDER BY handler::text;
SELECT e.state, e.message
  FROM bad_handlers, pg_temp.error_of(format('INSERT INTO headlessly.hook_registry (pattern, phase, handler) VALUES (%L, %L, %L)',
                                             'Order.*', 'after', handler)) e
 ORDER BY handler::text;
-- an OID that is no function at all
SELECT state, message, detail FROM pg_temp.error_of('SELECT headlessly.hook(''*'', ''before'', 4294967295::oid::regprocedure)');
-- UPDATE gets the same checks: handler, pattern, phase
SELECT headlessly.hook('Order.*', 'before', 'good(jsonb)') AS h_good \gset
SELECT e.state, e.message
  FROM bad_handlers, pg_temp.error_of(format('UPDATE headlessly.hook_registry SET handler = %L WHERE id = %s', handler, :h_good)) e
 WHERE handler::text LIKE 'returns%' ORDER BY handler::text;
SELECT state, message, detail
  FROM pg_temp.error_of(format('UPDATE headlessly.hook_registry SET pattern = %L WHERE id = %s', 'Order*', :h_good));
SELECT state, message, detail
  FROM pg_temp.error_of(format('UPDATE headlessly.hook_registry SET pattern = %L WHERE id = %s', '', :h_good));
SELECT state, message, hint
  FROM pg_temp.error_of(format('INSERT INTO headlessly.hook_registry (pattern, phase, handler) VALUES (%L, %L, %L)',
                               'Order.*', 'during', 'good(jsonb)'));
SELECT count(*) - :before_hooks AS stored_besides_good,
       (SELECT pattern || ' ' || phase || ' ' || handler FROM headlessly.hook_registry WHERE id = :h_good) AS good_row
  FROM headlessly.hook_registry;
SELECT headlessly.unhook(:h_good);

-- The registry holds the handler schema-qualified, as text (pg_upgrade
-- refuses a regprocedure column).  A name written into it is resolved once,
-- under the writer's search_path; a function that shadows it on another
-- search_path is never called in its place.
CREATE SCHEMA shadow;
CREATE FUNCTION shadow.good(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('shadow', true) $$;
INSERT INTO headlessly.hook_registry (pattern, phase, handler) VALUES ('Shadow.*', 'before', 'good(jsonb)')
RETURNING id AS h_written \gset
SELECT handler AS stored, pg_typeof(handler) AS stored_as FROM headlessly.hook_registry WHERE id = :h_written;
SELECT handler AS shown FROM headlessly.hooks WHERE id = :h_written;
SET search_path = shadow, public;
SELECT data FROM headlessly.events_append('Shadow.Created', 'shadow_1');
RESET search_path;
-- the registry names the function: renamed, it is a missing handler
ALTER FUNCTION good(jsonb) RENAME TO good_renamed;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT state, message, hint FROM pg_temp.error_of('SELECT headlessly.events_append(''Shadow.Created'', ''shadow_2'')', :h_written);
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT handler IS NULL AS shown_missing FROM headlessly.hooks WHERE id = :h_written;
ALTER FUNCTION good_renamed(jsonb) RENAME TO good;
SELECT data FROM headlessly.events_append('Shadow.Created', 'shadow_2');
SELECT headlessly.unhook(:h_written);
DROP SCHEMA shadow CASCADE;

-- The registration is bound to the handler's owner: a function that takes
-- a dropped handler's name but belongs to another role is a missing
-- handler, never run (it would run as every appending role).  The owner's
-- own new function of that name is the handler: the owner vouches for its
-- functions.
CREATE ROLE regress_hook_mallory;
CREATE SCHEMA hijack;
GRANT USAGE, CREATE ON SCHEMA hijack TO regress_hook_mallory;
CREATE FUNCTION hijack.audit(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT headlessly.hook('Lamp.*', 'before', 'hijack.audit(jsonb)') AS h_lamp \gset
SELECT handler, handler_owner = current_user::regrole AS owner_bound
  FROM headlessly.hook_registry WHERE id = :h_lamp;
-- the owner is the trigger's to fill: a value written is overwritten
UPDATE headlessly.hook_registry SET handler_owner = 'regress_hook_mallory' WHERE id = :h_lamp;
SELECT handler_owner = current_user::regrole AS still_owner_bound FROM headlessly.hook_registry WHERE id = :h_lamp;
SELECT data FROM headlessly.events_append('Lamp.Created', 'lamp_0');
DROP FUNCTION hijack.audit(jsonb);
SET ROLE regress_hook_mallory;
CREATE FUNCTION hijack.audit(e jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object('pwned_as', current_user::text) $$;
RESET ROLE;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT state, message, detail, hint
  FROM pg_temp.error_of('SELECT data FROM headlessly.events_append(''Lamp.Created'', ''lamp_1'', ''{}'')', :h_lamp);
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT handler IS NULL AS shown_missing FROM headlessly.hooks WHERE id = :h_lamp;
-- an owner change of the handler unbinds it too
DROP FUNCTION hijack.audit(jsonb);
CREATE FUNCTION hijack.audit(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('same_owner', true) $$;
SELECT data FROM headlessly.events_append('Lamp.Created', 'lamp_2');
ALTER FUNCTION hijack.audit(jsonb) OWNER TO regress_hook_mallory;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT state, message FROM pg_temp.error_of('SELECT headlessly.events_append(''Lamp.Created'', ''lamp_3'')', :h_lamp);
SELECT count(*) - :before_events AS stored FROM headlessly.events;
ALTER FUNCTION hijack.audit(jsonb) OWNER TO CURRENT_USER;
SELECT data FROM headlessly.events_append('Lamp.Created', 'lamp_3');
-- re-registering binds it to the function's current owner
ALTER FUNCTION hijack.audit(jsonb) OWNER TO regress_hook_mallory;
UPDATE headlessly.hook_registry SET handler = handler WHERE id = :h_lamp;
SELECT handler_owner::text AS rebound_to FROM headlessly.hook_registry WHERE id = :h_lamp;
SELECT data FROM headlessly.events_append('Lamp.Created', 'lamp_4');
SELECT headlessly.unhook(:h_lamp);
-- after_commit hooks, run by delivery rounds, are bound the same way
CREATE TABLE hijack_log (n serial, who text);
GRANT INSERT ON hijack_log TO regress_hook_mallory;
GRANT USAGE ON SEQUENCE hijack_log_n_seq TO regress_hook_mallory;
CREATE FUNCTION hijack.later(e jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO public.hijack_log (who) VALUES ('owner') RETURNING NULL::jsonb $$;
SELECT headlessly.hook('Lamp.*', 'after_commit', 'hijack.later(jsonb)') AS h_later \gset
SELECT type FROM headlessly.events_append('Lamp.Created', 'lamp_5');
SELECT headlessly.deliver() AS attempted;
DROP FUNCTION hijack.later(jsonb);
SET ROLE regress_hook_mallory;
CREATE FUNCTION hijack.later(e jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO public.hijack_log (who) VALUES ('pwned as ' || current_user) RETURNING NULL::jsonb $$;
RESET ROLE;
SELECT type FROM headlessly.events_append('Lamp.Created', 'lamp_6');
SELECT headlessly.deliver() AS attempted;
SELECT who FROM hijack_log ORDER BY n;
SELECT d.target, d.status, d.attempts, regexp_replace(d.error, '\m' || :h_later || '\M', '<id>') AS error
  FROM headlessly.deliveries d JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id = :h_later ORDER BY d.seq;
SELECT headlessly.unhook(:h_later);
DROP TABLE hijack_log;
DROP SCHEMA hijack CASCADE;
DROP ROLE regress_hook_mallory;
-- A round resolves a handler's name again once a function or schema has
-- changed: here the handler renames its own schema on lamp_7, and the
-- round's next event fails as it would in a round started now.
CREATE SCHEMA moving;
CREATE TABLE moving_log (n serial, target text);
CREATE FUNCTION moving.h(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.moving_log (target) VALUES (e->>'target');
    IF e->>'target' = 'lamp_7' THEN
        ALTER SCHEMA moving RENAME TO moved;
    END IF;
    RETURN NULL;
END $$;
SELECT headlessly.hook('Lamp.*', 'after_commit', 'moving.h(jsonb)') AS h_moving \gset
SELECT type FROM headlessly.events_append('Lamp.Created', 'lamp_7');
SELECT type FROM headlessly.events_append('Lamp.Created', 'lamp_8');
SELECT headlessly.deliver() AS attempted;
SELECT target FROM moving_log ORDER BY n;
SELECT d.target, d.status, d.attempts, regexp_replace(d.error, '\m' || :h_moving || '\M', '<id>') AS error
  FROM headlessly.deliveries d JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id = :h_moving ORDER BY d.seq;
SELECT headlessly.unhook(:h_moving);
DROP TABLE moving_log;
DROP SCHEMA moved CASCADE;

-- hook() needs EXECUTE on the handler, as CREATE TRIGGER does on its
-- function; a row written into the registry directly did not: a role with
-- INSERT (or UPDATE) on it registered a function it may not call (here a
-- SECURITY DEFINER one of the superuser's, EXECUTE revoked from PUBLIC),
-- which then ran at every matching append, its own included, with its
-- owner's rights on the attacker's data.  The registry's row trigger now
-- checks EXECUTE too (42501), and nothing is registered.
CREATE ROLE regress_hook_eve;
GRANT USAGE ON SCHEMA headlessly TO regress_hook_eve;
GRANT SELECT, INSERT ON headlessly.events TO regress_hook_eve;
GRANT SELECT, INSERT, UPDATE ON headlessly.hook_registry TO regress_hook_eve;
CREATE TABLE privileged_log (who text, data jsonb);
CREATE FUNCTION public.privileged(e jsonb) RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ INSERT INTO public.privileged_log VALUES (current_user, e->'data') RETURNING NULL::jsonb $$;
REVOKE EXECUTE ON FUNCTION public.privileged(jsonb) FROM PUBLIC;
CREATE FUNCTION public.harmless(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT headlessly.hook('Priv.*', 'before', 'public.harmless(jsonb)') AS h_harmless \gset
SET ROLE regress_hook_eve;
SELECT headlessly.hook('Priv.*', 'before', 'public.privileged(jsonb)');
INSERT INTO headlessly.hook_registry (pattern, phase, handler)
VALUES ('Priv.*', 'before', 'public.privileged(jsonb)');
UPDATE headlessly.hook_registry SET handler = 'public.privileged(jsonb)' WHERE id = :h_harmless;
SELECT type FROM headlessly.events_append('Priv.Created', 'priv_1', '{"as": "eve"}');
RESET ROLE;
SELECT who = session_user AS ran_as_its_owner, data FROM privileged_log;
SELECT count(*) AS privileged_hooks FROM headlessly.hook_registry
 WHERE handler = 'public.privileged(pg_catalog.jsonb)';
-- granted EXECUTE, the role registers it directly as with hook()
GRANT EXECUTE ON FUNCTION public.privileged(jsonb) TO regress_hook_eve;
SET ROLE regress_hook_eve;
INSERT INTO headlessly.hook_registry (pattern, phase, handler)
VALUES ('Priv.*', 'before', 'public.privileged(jsonb)') RETURNING id AS h_priv \gset
SELECT type FROM headlessly.events_append('Priv.Created', 'priv_2', '{"as": "eve, granted"}');
RESET ROLE;
SELECT who = session_user AS ran_as_its_owner, data FROM privileged_log;
-- An after_commit handler runs as the role that registered the hook: a
-- role with UPDATE on the registry pointed the superuser's hook at a
-- function of its own (which it may execute), which the next delivery
-- round then ran as the superuser.  Changing such a row now needs the
-- rights of the hook's registering role (42501).
SELECT headlessly.unhook(:h_priv);
SELECT headlessly.hook('Priv.*', 'after_commit', 'public.harmless(jsonb)') AS h_later \gset
CREATE SCHEMA eve AUTHORIZATION regress_hook_eve;
SET ROLE regress_hook_eve;
CREATE FUNCTION eve.mine(e jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO public.privileged_log VALUES (current_user, '"eve.mine"') RETURNING NULL::jsonb $$;
\set VERBOSITY sqlstate
UPDATE headlessly.hook_registry SET handler = 'eve.mine(jsonb)' WHERE id = :h_later;
UPDATE headlessly.hook_registry SET pattern = '*' WHERE id = :h_later;
\set VERBOSITY default
RESET ROLE;
GRANT INSERT ON privileged_log TO regress_hook_eve;
TRUNCATE privileged_log;
SELECT type FROM headlessly.events_append('Priv.Created', 'priv_3', '{"as": "superuser"}');
SELECT headlessly.deliver() AS attempted;
SELECT who = session_user AS ran_as_superuser, data FROM privileged_log;
SELECT handler, pattern FROM headlessly.hook_registry WHERE id = :h_later;
-- the registering role (or one with its rights) still may
UPDATE headlessly.hook_registry SET pattern = 'Priv.Created' WHERE id = :h_later;
SELECT headlessly.unhook(:h_later);
DROP SCHEMA eve CASCADE;
SELECT headlessly.unhook(:h_harmless);
DROP TABLE privileged_log;
DROP FUNCTION public.privileged(jsonb);
DROP FUNCTION public.harmless(jsonb);
DROP OWNED BY regress_hook_eve;
DROP ROLE regress_hook_eve;

-- A malformed row that got in anyway (here: restored with the registry's
-- triggers disabled, so with the owner a dump holds) fails the appends its
-- hook matches with a clear error; other appends go on.  The wrong handlers
-- used to be called as if they were f(jsonb) RETURNS jsonb:
-- pg_catalog.now() crashed the server.
ALTER TABLE headlessly.hook_registry DISABLE TRIGGER hook_registry_check;
INSERT INTO headlessly.hook_registry (pattern, phase, handler, handler_owner)
SELECT 'Bad.Created', 'before', 'pg_catalog.now()', proowner::regrole
  FROM pg_proc WHERE oid = 'pg_catalog.now()'::regprocedure
RETURNING id AS bad_before \gset
INSERT INTO headlessly.hook_registry (pattern, phase, handler, handler_owner)
VALUES ('bad_thing', 'after', 'takes_json(json)', current_user::regrole) RETURNING id AS bad_after \gset
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_check;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT state, message, detail, hint
  FROM pg_temp.error_of('SELECT headlessly.events_append(''Bad.Created'', ''bad1'')', :bad_before);
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT type, target FROM headlessly.events_append('Good.Created', 'good1');
-- a malformed after hook is a failing after hook: recorded, the append stands
SELECT id AS bad_event FROM headlessly.events_append('bad_thing') \gset
SELECT event_id = :'bad_event' AS right_event, hook_id = :bad_after AS right_hook, handler, sqlstate,
       replace(message, :'bad_after', '<id>') AS message, detail
  FROM headlessly.hook_failures WHERE hook_id = :bad_after;
SELECT headlessly.unhook(:bad_before), headlessly.unhook(:bad_after);

-- A malformed pattern that got in stops every append, naming the hook,
-- until it is removed: what it was meant to match is unknown.
ALTER TABLE headlessly.hook_registry DISABLE TRIGGER hook_registry_check;
INSERT INTO headlessly.hook_registry (pattern, phase, handler)
VALUES ('Bad*', 'before', 'good(jsonb)') RETURNING id AS bad_pattern \gset
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_check;
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT * FROM pg_temp.error_of('SELECT headlessly.events_append(''page_view'')', :bad_pattern);
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT headlessly.unhook(:bad_pattern);
SELECT type FROM headlessly.events_append('page_view');

-- A handler whose pg_proc row changes is checked again at the next append
-- (here a superuser edits the catalog; a dropped function whose OID is
-- reused would do the same).
SELECT headlessly.hook('Order.*', 'before', 'good(jsonb)') AS h_good \gset
SELECT data FROM headlessly.events_append('Order.Created', 'ord1');
UPDATE pg_proc SET prorettype = 'int4'::regtype WHERE oid = 'good(jsonb)'::regprocedure;
SELECT state, message, detail
  FROM pg_temp.error_of('SELECT headlessly.events_append(''Order.Updated'', ''ord1'', ''{"n": 1}'')', :h_good);
UPDATE pg_proc SET prorettype = 'jsonb'::regtype WHERE oid = 'good(jsonb)'::regprocedure;
SELECT version, data FROM headlessly.events_append('Order.Updated', 'ord1', '{"n": 1}');
SELECT headlessly.unhook(:h_good);

-- After hooks record their failures, but a cancel or statement_timeout
-- (57014) cancels the whole statement: nothing stored, no failure recorded.
-- So do an ASSERT failure (P0004), which PL/pgSQL's WHEN OTHERS does not
-- catch either.  These used to be recorded as hook failures and the append
-- went on.
CREATE FUNCTION sleeper(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ran (hook, type) VALUES ('sleeper', event->>'type');
    PERFORM pg_sleep(30);
    RETURN NULL;
END $$;
CREATE FUNCTION asserter(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    ASSERT event->'data' ? 'checked', 'events must be checked';
    RETURN NULL;
END $$;
SELECT headlessly.hook('Slow.*', 'after', 'sleeper(jsonb)') AS h_sleep,
       headlessly.hook('Strict.*', 'after', 'asserter(jsonb)') AS h_assert \gset
SELECT count(*) AS events FROM headlessly.events \gset before_
SELECT count(*) AS ran FROM ran \gset before_
SET statement_timeout = '200ms';
SELECT headlessly.events_append('Slow.Created', 'slow1');
\echo :SQLSTATE
RESET statement_timeout;
SELECT headlessly.events_append('Strict.Created', 'strict1');
\echo :SQLSTATE
SELECT (SELECT count(*) FROM headlessly.events) - :before_events AS stored,
       (SELECT count(*) FROM ran) - :before_ran AS hook_work_kept,
       (SELECT count(*) FROM headlessly.hook_failures WHERE hook_id IN (:h_sleep, :h_assert)) AS failures;
-- the hook passes events that meet its assertion
SELECT version FROM headlessly.events_append('Strict.Created', 'strict2', '{"checked": true}');
SELECT headlessly.unhook(:h_sleep), headlessly.unhook(:h_assert);

RESET headlessly.tenant;
