-- Found by the hostile pass over delivery and tenancy: each section
-- reproduces a defect that was fixed, and checks the SQLSTATE and that
-- nothing was stored or changed.
\pset null '(null)'
\set SHOW_CONTEXT never
SELECT current_user AS hd_admin \gset
CREATE ROLE regress_hd_hooker LOGIN;    -- may register hooks
CREATE ROLE regress_hd_acme LOGIN;      -- tenant role of hd_acme
GRANT USAGE ON SCHEMA headlessly TO regress_hd_hooker, regress_hd_acme;
GRANT SELECT, INSERT ON headlessly.events TO regress_hd_hooker, regress_hd_acme;
GRANT INSERT, SELECT ON headlessly.hook_registry TO regress_hd_hooker;
CREATE SCHEMA regress_hd_hooker AUTHORIZATION regress_hd_hooker;

-- A delivery round runs the after_commit handlers of every owner in one
-- backend (the worker's, or deliver()'s).  A handler that changed a setting
-- for the session (set_config(..., false), SET) handed it to the handlers
-- of other owners run after it: here a search_path that puts its owner's
-- schema before pg_catalog, so that another owner's unqualified upper()
-- ran the attacker's function with that owner's rights (a superuser's:
-- ALTER ROLE ... SUPERUSER).  Now a handler's settings end with it.
CREATE TABLE public.hd_victim_log (who text, note text, search_path text);
CREATE FUNCTION public.hd_victim(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.hd_victim_log
        VALUES (current_user, upper(e->>'type'), current_setting('search_path'));
    RETURN NULL;
END $$;
SET ROLE regress_hd_hooker;
CREATE FUNCTION regress_hd_hooker.plant(e jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT pg_catalog.set_config('search_path', 'regress_hd_hooker, pg_catalog, public', false);
    SELECT pg_catalog.set_config('statement_timeout', '123s', false);
    SELECT NULL::jsonb
$$;
CREATE FUNCTION regress_hd_hooker.upper(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_hd_hooker SUPERUSER';
    END IF;
    RETURN 'attacker''s upper() ran as ' || current_user;
END $$;
SELECT headlessly.hook('Hd.*', 'after_commit', 'regress_hd_hooker.plant(jsonb)') AS hd_plant \gset
RESET ROLE;
SELECT headlessly.hook('Hd.*', 'after_commit', 'public.hd_victim(jsonb)') AS hd_victim \gset
SELECT (headlessly.events_append('Hd.Created', 'hd_1', tenant => 'hd')).version;
SELECT headlessly.deliver() > 0 AS delivered;
SELECT who, note, search_path FROM public.hd_victim_log;
SELECT rolsuper AS hooker_became_superuser FROM pg_roles WHERE rolname = 'regress_hd_hooker';
-- nor does the setting outlive the round in the caller's session
SHOW search_path;
SHOW statement_timeout;
SELECT s.kind, d.status, count(*) FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id IN (:hd_plant, :hd_victim) GROUP BY 1, 2;
SELECT headlessly.unhook(:hd_plant), headlessly.unhook(:hd_victim);
DROP TABLE public.hd_victim_log;
DROP FUNCTION public.hd_victim(jsonb);

-- The same backend keeps a handler's TEMP tables, and pg_temp comes first
-- for relations unless search_path names it: the next owner's handler
-- writing to a table it names unqualified wrote into the attacker's temp
-- table, which the attacker's next handler copied out (another owner's
-- data, another tenant's).  Now handlers run with pg_temp last.
CREATE TABLE public.hd_audit (note text);
CREATE TABLE public.hd_stolen (note text);
GRANT INSERT ON public.hd_stolen TO regress_hd_hooker;
GRANT TEMP ON DATABASE :"DBNAME" TO regress_hd_hooker;
CREATE FUNCTION public.hd_auditor(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hd_audit VALUES (e->'data'->>'card');
    RETURN NULL;
END $$;
SET ROLE regress_hd_hooker;
CREATE FUNCTION regress_hd_hooker.shadow(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS hd_audit (note text);
    GRANT ALL ON pg_temp.hd_audit TO PUBLIC;
    INSERT INTO public.hd_stolen SELECT note FROM pg_temp.hd_audit;
    RETURN NULL;
END $$;
SELECT headlessly.hook('Hd.*', 'after_commit', 'regress_hd_hooker.shadow(jsonb)') AS hd_shadow \gset
RESET ROLE;
SELECT headlessly.hook('Hd.*', 'after_commit', 'public.hd_auditor(jsonb)') AS hd_auditor \gset
SELECT (headlessly.events_append('Hd.Created', 'hd_2', '{"card": "4111"}', tenant => 'hd')).version;
SELECT headlessly.deliver() > 0 AS delivered;
SELECT (headlessly.events_append('Hd.Created', 'hd_3', '{"card": "5500"}', tenant => 'hd')).version;
SELECT headlessly.deliver() > 0 AS delivered;
SELECT 'public' AS audit, note FROM public.hd_audit UNION ALL
SELECT 'stolen', note FROM public.hd_stolen ORDER BY 1, 2;
SELECT headlessly.unhook(:hd_shadow), headlessly.unhook(:hd_auditor);
DISCARD TEMP;
DROP TABLE public.hd_audit, public.hd_stolen;
DROP FUNCTION public.hd_auditor(jsonb);
REVOKE TEMP ON DATABASE :"DBNAME" FROM regress_hd_hooker;

-- DROP ROLE succeeds for a role that owns subscriptions (owner is a
-- regrole: no dependency).  Its first claim, run as a role that no longer
-- exists, failed (42501) and took the whole round with it: every later
-- subscription of the database stopped (the worker logged it each second,
-- deliver() raised it).  Now a subscription whose owner is gone delivers
-- nothing and the others go on.
CREATE ROLE regress_hd_ghost;
GRANT USAGE ON SCHEMA headlessly TO regress_hd_ghost;
GRANT SELECT ON headlessly.events TO regress_hd_ghost;
GRANT INSERT, SELECT ON headlessly.hook_registry TO regress_hd_ghost;
CREATE TABLE public.hd_ghost_log (who text, type text);
GRANT INSERT ON public.hd_ghost_log TO PUBLIC;
CREATE FUNCTION public.hd_record(e jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ INSERT INTO public.hd_ghost_log VALUES (current_user, e->>'type') RETURNING NULL::jsonb $$;
SET ROLE regress_hd_ghost;
SELECT headlessly.hook('HdGhost.*', 'after_commit', 'public.hd_record(jsonb)') AS hd_ghost_hook \gset
RESET ROLE;
SELECT headlessly.hook('HdGhost.*', 'after_commit', 'public.hd_record(jsonb)') AS hd_live_hook \gset
REVOKE ALL ON headlessly.events, headlessly.hook_registry FROM regress_hd_ghost;
REVOKE USAGE ON SCHEMA headlessly FROM regress_hd_ghost;
DROP ROLE regress_hd_ghost;
SELECT (headlessly.events_append('HdGhost.Created', 'hd_g1', tenant => 'hd')).version;
\set VERBOSITY sqlstate
SELECT headlessly.deliver() AS delivered;
\set VERBOSITY default
SELECT who, type FROM public.hd_ghost_log;
SELECT s.hook_id = :hd_ghost_hook AS of_ghost, d.status, d.attempts FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id IN (:hd_ghost_hook, :hd_live_hook) ORDER BY 1;
SELECT headlessly.unhook(:hd_ghost_hook), headlessly.unhook(:hd_live_hook);

-- The same for an owner that stays but loses SELECT on the log, the way
-- to stop its subscriptions (see Threat model): its claim, run as the
-- owner, failed with 42501 and ended the round before every later
-- subscription.  Now it delivers nothing and the others go on.
CREATE ROLE regress_hd_revoked;
GRANT USAGE ON SCHEMA headlessly TO regress_hd_revoked;
GRANT SELECT ON headlessly.events TO regress_hd_revoked;
GRANT INSERT, SELECT ON headlessly.hook_registry TO regress_hd_revoked;
SET ROLE regress_hd_revoked;
SELECT headlessly.hook('HdRevoked.*', 'after_commit', 'public.hd_record(jsonb)') AS hd_revoked_hook \gset
RESET ROLE;
SELECT headlessly.hook('HdRevoked.*', 'after_commit', 'public.hd_record(jsonb)') AS hd_live_hook \gset
REVOKE SELECT ON headlessly.events FROM regress_hd_revoked;
SELECT (headlessly.events_append('HdRevoked.Created', 'hd_r1', tenant => 'hd')).version;
\set VERBOSITY sqlstate
SELECT headlessly.deliver() AS delivered;
\set VERBOSITY default
SELECT who = :'hd_admin' AS by_admin, type FROM public.hd_ghost_log WHERE type LIKE 'HdRevoked.%';
SELECT s.hook_id = :hd_revoked_hook AS of_revoked, d.status, d.attempts FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id IN (:hd_revoked_hook, :hd_live_hook) ORDER BY 1;
-- granted again, it delivers from where it stood
GRANT SELECT ON headlessly.events TO regress_hd_revoked;
SELECT headlessly.deliver() AS delivered;
SELECT who = :'hd_admin' AS by_admin, type FROM public.hd_ghost_log WHERE type LIKE 'HdRevoked.%' ORDER BY 1;
-- An owner without USAGE on the schema cannot have its claim planned (its
-- plans are made as the owner): in a backend that had not planned it yet
-- (a new worker, a new session's deliver()) the round ended at it the same
-- way, every second.  Such a subscription is skipped too.
REVOKE USAGE ON SCHEMA headlessly FROM regress_hd_revoked;
SELECT (headlessly.events_append('HdRevoked.Updated', 'hd_r1', tenant => 'hd')).version;
\c - :hd_admin
\set SHOW_CONTEXT never
\set VERBOSITY sqlstate
SELECT headlessly.deliver() AS delivered;
\set VERBOSITY default
SELECT who = :'hd_admin' AS by_admin, type FROM public.hd_ghost_log
 WHERE type LIKE 'HdRevoked.%' ORDER BY 2, 1;
GRANT USAGE ON SCHEMA headlessly TO regress_hd_revoked;
SELECT headlessly.deliver() AS delivered;
SELECT who = :'hd_admin' AS by_admin, type FROM public.hd_ghost_log
 WHERE type LIKE 'HdRevoked.%' ORDER BY 2, 1;
SELECT headlessly.unhook(:hd_revoked_hook), headlessly.unhook(:hd_live_hook);
REVOKE ALL ON headlessly.events, headlessly.hook_registry FROM regress_hd_revoked;
REVOKE USAGE ON SCHEMA headlessly FROM regress_hd_revoked;
DROP ROLE regress_hd_revoked;
DROP TABLE public.hd_ghost_log;
DROP FUNCTION public.hd_record(jsonb);

-- A handler's error that must not be caught (a cancel, ASSERT) ended the
-- round, unrecorded, and so did one a handler raised itself with such a
-- SQLSTATE: every later handler and webhook of the database stopped, the
-- worker tried the same event every second (here with max_attempts at its
-- highest, for ever).  Now only a real interrupt (a cancel, a timeout of
-- the caller, which PostgreSQL raises when it processes interrupts) ends
-- the round; what a handler raises is its failure, recorded and retried.
SET ROLE regress_hd_hooker;
CREATE FUNCTION regress_hd_hooker.fake_cancel(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'not really cancelled' USING ERRCODE = 'query_canceled';
END $$;
CREATE FUNCTION regress_hd_hooker.assert_false(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    ASSERT false, 'handler asserts';
    RETURN NULL;
END $$;
SELECT headlessly.hook('HdFake.*', 'after_commit', 'regress_hd_hooker.fake_cancel(jsonb)',
                       max_attempts => 2147483647) AS hd_fake_hook \gset
SELECT headlessly.hook('HdFake.*', 'after_commit', 'regress_hd_hooker.assert_false(jsonb)',
                       max_attempts => 2147483647) AS hd_assert_hook \gset
RESET ROLE;
CREATE TABLE public.hd_fake_log (who text, type text);
CREATE FUNCTION public.hd_fake_victim(e jsonb) RETURNS jsonb LANGUAGE sql AS
  $$ INSERT INTO public.hd_fake_log VALUES (current_user, e->>'type') RETURNING NULL::jsonb $$;
SELECT headlessly.hook('HdFake.*', 'after_commit', 'public.hd_fake_victim(jsonb)') AS hd_victim_hook \gset
SELECT (headlessly.events_append('HdFake.Created', 'hd_f1', tenant => 'hd')).version;
\set VERBOSITY sqlstate
SELECT headlessly.deliver() AS delivered;
\set VERBOSITY default
SELECT who = :'hd_admin' AS by_admin, type FROM public.hd_fake_log;
SELECT s.hook_id = :hd_fake_hook AS fake, s.hook_id = :hd_assert_hook AS asserts,
       d.status, d.attempts, d.error
  FROM headlessly.deliveries d JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id IN (:hd_fake_hook, :hd_assert_hook, :hd_victim_hook) ORDER BY s.hook_id;
SELECT headlessly.unhook(:hd_fake_hook), headlessly.unhook(:hd_assert_hook),
       headlessly.unhook(:hd_victim_hook);
DROP TABLE public.hd_fake_log;
DROP FUNCTION public.hd_fake_victim(jsonb);

-- A handler that never returns held the round, and with it every delivery
-- of the database (the worker's round runs one handler at a time).  Now a
-- handler runs at most headlessly.hook_timeout: then its attempt fails, is
-- retried with backoff like any failure, and the round goes on.  The
-- caller's own statement_timeout still cancels deliver() (57014).
CREATE TABLE public.hd_slow_log (target text);
CREATE FUNCTION public.hd_slow(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (e->'data' ? 'quick') THEN PERFORM pg_sleep(60); END IF;
    INSERT INTO public.hd_slow_log VALUES (e->>'target');
    RETURN NULL;
END $$;
SELECT headlessly.hook('HdSlow.*', 'after_commit', 'public.hd_slow(jsonb)') AS hd_slow_hook \gset
SELECT (headlessly.events_append('HdSlow.Created', 'hd_s1', tenant => 'hd')).version;
SELECT (headlessly.events_append('HdSlow.Created', 'hd_s2', data => '{"quick": true}', tenant => 'hd')).version;
SET headlessly.hook_timeout = '200ms';
SELECT headlessly.deliver() AS attempted;
SELECT target FROM public.hd_slow_log;
SELECT status, attempts, error FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id = :hd_slow_hook ORDER BY seq;
-- the caller's statement_timeout is not the handler's: it cancels deliver()
UPDATE headlessly.deliveries d SET next_attempt_at = now() - interval '1 s'
  FROM headlessly.subscriptions s WHERE s.name = d.subscription AND s.hook_id = :hd_slow_hook;
SET headlessly.hook_timeout = '30s';
SET statement_timeout = '300ms';
\set VERBOSITY sqlstate
SELECT headlessly.deliver() AS attempted;
\set VERBOSITY default
RESET statement_timeout;
RESET headlessly.hook_timeout;
SELECT status, attempts FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id = :hd_slow_hook ORDER BY seq;
-- a handler that catches the cancel is cancelled again (it completed after
-- the one cancel, and a loop catching each would run for ever), and a
-- handler that runs deliver() keeps its own limit after the inner round
-- (the inner handler's timer replaced it)
TRUNCATE public.hd_slow_log;
CREATE SEQUENCE public.hd_cancels;   -- counts outside the transaction
CREATE FUNCTION public.hd_stubborn(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..3 LOOP
        BEGIN
            PERFORM pg_sleep(2);
        EXCEPTION WHEN query_canceled THEN
            PERFORM nextval('public.hd_cancels');
        END;
    END LOOP;
    INSERT INTO public.hd_slow_log VALUES ('stubborn ' || (e->>'target'));
    RETURN NULL;
END $$;
CREATE FUNCTION public.hd_nesting(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM headlessly.deliver();
    PERFORM pg_sleep(3);
    INSERT INTO public.hd_slow_log VALUES ('nesting ' || (e->>'target'));
    RETURN NULL;
END $$;
SELECT headlessly.hook('HdStubborn.*', 'after_commit', 'public.hd_stubborn(jsonb)') AS hd_stubborn_hook \gset
SELECT headlessly.hook('HdNesting.*', 'after_commit', 'public.hd_nesting(jsonb)') AS hd_nesting_hook \gset
SELECT (headlessly.events_append('HdStubborn.Created', 'hd_st1', tenant => 'hd')).version;
SELECT (headlessly.events_append('HdNesting.Created', 'hd_ne1', tenant => 'hd')).version;
SET headlessly.hook_timeout = '200ms';
SELECT headlessly.deliver() >= 2 AS attempted;
RESET headlessly.hook_timeout;
-- each of the stubborn handler's sleeps was cancelled (one was, before)
SELECT last_value AS cancels_caught FROM public.hd_cancels;
SELECT target FROM public.hd_slow_log;
SELECT s.hook_id = :hd_stubborn_hook AS stubborn, status, attempts, error FROM headlessly.deliveries d
  JOIN headlessly.subscriptions s ON s.name = d.subscription
 WHERE s.hook_id IN (:hd_stubborn_hook, :hd_nesting_hook) ORDER BY 1;
SELECT headlessly.unhook(:hd_stubborn_hook), headlessly.unhook(:hd_nesting_hook);
DROP FUNCTION public.hd_stubborn(jsonb), public.hd_nesting(jsonb);
DROP SEQUENCE public.hd_cancels;

-- not a setting for every role: a handler's owner cannot lift it
SET ROLE regress_hd_acme;
SET headlessly.hook_timeout = 0;
\echo :SQLSTATE
RESET ROLE;
SELECT headlessly.unhook(:hd_slow_hook);
DROP TABLE public.hd_slow_log;
DROP FUNCTION public.hd_slow(jsonb);

-- A schema ahead of pg_catalog in search_path with an = for text (any role
-- with CREATE on a schema that others put first): read() compared a row
-- with an unqualified IN, which looked the operator up there, and failed
-- (0A000) for every caller with that search_path.  Now qualified.
CREATE SCHEMA regress_hd_ops;
CREATE FUNCTION regress_hd_ops.eq(a text, b text) RETURNS boolean LANGUAGE sql AS
  $$ SELECT a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR regress_hd_ops.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_hd_ops.eq);
SELECT name FROM headlessly.subscribe('hd_ops', start_at => 'beginning');
SET search_path = regress_hd_ops, pg_catalog, public;
SELECT count(*) > 0 AS read FROM headlessly.read('hd_ops', 2);
SELECT min(seq) AS hd_first FROM headlessly.read('hd_ops', 2) \gset
SELECT headlessly.nack('hd_ops', :hd_first, 'again');
SELECT count(*) > 0 AS read_again FROM headlessly.read('hd_ops', 2);
RESET search_path;
SELECT headlessly.unsubscribe('hd_ops');
DROP SCHEMA regress_hd_ops CASCADE;

-- A tenant role subscribed to another tenant's events with tenant =>: the
-- subscription was stored (it delivered nothing, row security filtering
-- the reads) and showed in that tenant's subscription list.  Now ZE008, as
-- every other tenant => argument, and nothing is stored.
CREATE TABLE public.hd_rls AS
    SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity
      FROM pg_class c WHERE c.oid IN (SELECT polrelid FROM pg_policy WHERE polname = 'tenant_isolation');
SELECT headlessly.grant_tenant('regress_hd_acme', 'hd_acme');
\c - regress_hd_acme
\set VERBOSITY terse
SELECT name FROM headlessly.subscribe('hd_other', tenant => 'hd_globex');
\echo :SQLSTATE
SELECT name FROM headlessly.subscribe('hd_other_hook', tenant => 'hd_globex', url => 'http://127.0.0.1:9/');
\echo :SQLSTATE
-- its own tenant, and every tenant it may read (NULL), are allowed
SELECT name, tenant FROM headlessly.subscribe('hd_own', tenant => 'hd_acme');
SELECT name, tenant FROM headlessly.subscribe('hd_mine');
\set VERBOSITY default
\c - :hd_admin
\set SHOW_CONTEXT never
SELECT name, tenant, owner FROM headlessly.subscriptions WHERE name LIKE 'hd%' ORDER BY name;
SELECT headlessly.unsubscribe('hd_own'), headlessly.unsubscribe('hd_mine');

-- leave the database as other tests expect it: no tenant roles, row security as it was
DELETE FROM headlessly.tenant_grants;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM public.hd_rls LOOP
        EXECUTE format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', r.rel,
                       CASE WHEN r.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END,
                       CASE WHEN r.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END);
    END LOOP;
END $$;
DROP TABLE public.hd_rls;

-- A webhook's url and headers carry credentials (an Authorization header,
-- PostHog's api_key, a token in the URL); every role could read them, as
-- any column of headlessly.subscriptions but the secret.  Now only the
-- extension's owner (and superusers) read them; subscribe() returns them
-- to the caller.
SELECT name FROM headlessly.subscribe('hd_crm', url => 'https://hook.example/t0ken',
                                      headers => '{"Authorization": "Bearer hd-credential"}');
SET ROLE regress_hd_acme;
SELECT url FROM headlessly.subscriptions WHERE name = 'hd_crm';
\echo :SQLSTATE
SELECT headers FROM headlessly.subscriptions WHERE name = 'hd_crm';
\echo :SQLSTATE
-- the other columns stay readable (which rows, row security decides)
SELECT count(*) >= 0 AS readable FROM (SELECT name, kind, tenant, owner FROM headlessly.subscriptions) s;
RESET ROLE;
SELECT headlessly.unsubscribe('hd_crm');

-- A webhook subscription has the server open connections, as
-- webhook_send() does, which is revoked from PUBLIC; but subscribe(), which
-- every role may call, took any url: a role with only SELECT on the log
-- had the worker POST to the cloud's metadata address or any port of the
-- server's loopback, and read each outcome in subscription_status() (a
-- port scan).  Now a webhook subscription needs its owner's EXECUTE on
-- webhook_send(), when it is made (42501, nothing stored) and at each
-- round (revoking it stops the owner's webhooks).
SET ROLE regress_hd_acme;
\set VERBOSITY terse
SELECT name FROM headlessly.subscribe('hd_ssrf', url => 'http://169.254.169.254/latest/meta-data/');
\echo :SQLSTATE
SELECT name FROM headlessly.subscribe('hd_ssrf', url => 'http://127.0.0.1:5432/');
\echo :SQLSTATE
\set VERBOSITY default
-- a pull subscription needs no such right
SELECT name FROM headlessly.subscribe('hd_pull_only');
RESET ROLE;
SELECT name FROM headlessly.subscriptions WHERE name IN ('hd_ssrf', 'hd_pull_only') ORDER BY name;
SELECT headlessly.unsubscribe('hd_pull_only');
GRANT EXECUTE ON FUNCTION headlessly.webhook_send(text, jsonb, text, jsonb, text) TO regress_hd_acme;
SET ROLE regress_hd_acme;
SELECT name FROM headlessly.subscribe('hd_net', 'HdNet.*', url => 'http://127.0.0.1:1/');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION headlessly.webhook_send(text, jsonb, text, jsonb, text) FROM regress_hd_acme;
SELECT (headlessly.events_append('HdNet.Created', 'hd_net_1', '{}')).version;
SELECT headlessly.deliver() >= 0 AS delivered;
-- nothing was sent: no delivery row (a refused connection's failure before)
SELECT count(*) AS hd_net_rows FROM headlessly.deliveries WHERE subscription = 'hd_net';
SELECT headlessly.unsubscribe('hd_net');

DROP OWNED BY regress_hd_hooker, regress_hd_acme;
DROP ROLE regress_hd_hooker, regress_hd_acme;
