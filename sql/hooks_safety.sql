-- Hooks never crash the server, never run a handler from a freed cache, and
-- never reuse one handler's execution state for a nested call.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'hooks_safety';

CREATE TABLE ran (n serial, hook text, type text, data jsonb);

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
SELECT headlessly.unhook(id) FROM headlessly.hook_registry WHERE handler = 'note(jsonb)'::regprocedure;

-- The same with unhook(): the handler removes itself, then appends.
CREATE FUNCTION unhook_then_append(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT headlessly.unhook(id) FROM headlessly.hook_registry
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
    PERFORM headlessly.unhook(id) FROM headlessly.hook_registry
      WHERE handler = 'unhook_append_fail(jsonb)'::regprocedure;
    PERFORM headlessly.hook('Other.*', 'before', 'note(jsonb)');
    PERFORM headlessly.events_append('audit_noted', 'audit_x');
    RETURN '[1, 2]';
END $$;
SELECT headlessly.hook('Signup.Created', 'before', 'unhook_append_fail(jsonb)') AS h_fail \gset
SELECT count(*) AS events FROM headlessly.events \gset before_
\set VERBOSITY sqlstate
SELECT headlessly.events_append('Signup.Created', 'su4');
\set VERBOSITY default
SELECT replace(:'LAST_ERROR_MESSAGE', :'h_fail', '<h_fail>') AS message;
-- nothing stored, and the hooks it changed are back as they were
SELECT count(*) - :before_events AS stored FROM headlessly.events;
SELECT id = :h_fail AS same_hook, handler FROM headlessly.hooks;
SELECT headlessly.unhook(:h_fail);

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

RESET headlessly.tenant;
