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

DROP OWNED BY regress_hd_hooker, regress_hd_acme;
DROP ROLE regress_hd_hooker, regress_hd_acme;
