-- Tenant isolation: tenant roles read and write only their tenants, through
-- the tables (row security) and through every function (ZE008), whatever
-- they set or pass; revoking fails closed.  Real login roles (\c).
\pset null '(null)'
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- a log of its own: the first grant_tenant() turns row security on, for good
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;

SELECT current_user AS admin \gset
CREATE ROLE regress_hl_ta LOGIN;       -- tenant a, write
CREATE ROLE regress_hl_tb LOGIN;       -- tenant b, admin
CREATE ROLE regress_hl_tr LOGIN;       -- tenant a, read
CREATE ROLE regress_hl_tm LOGIN;       -- tenants a and b, write
CREATE ROLE regress_hl_plain LOGIN;    -- never bound
CREATE ROLE regress_hl_bypass LOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_ta, regress_hl_tb, regress_hl_tr, regress_hl_tm, regress_hl_plain;
GRANT SELECT, INSERT ON headlessly.events TO regress_hl_ta, regress_hl_tb, regress_hl_tr, regress_hl_tm, regress_hl_plain;
GRANT SELECT ON headlessly.streams, headlessly.snapshots, headlessly.heads, headlessly.entities,
      headlessly.hook_failures, headlessly.checkpoints
   TO regress_hl_ta, regress_hl_tb, regress_hl_tr, regress_hl_tm, regress_hl_plain;
-- (regress_hl_tr may read entities, not the view of heads under it)
REVOKE SELECT ON headlessly.heads FROM regress_hl_tr;

SELECT tenant, version FROM headlessly.events_append('Deal.Created', 'deal_1', '{"v": "a1"}', tenant => 'ten_a');
SELECT tenant, version FROM headlessly.events_append('Deal.Created', 'deal_1', '{"v": "b1"}', tenant => 'ten_b');
SELECT tenant, version FROM headlessly.events_append('page_view', tenant => 'ten_b');

-- what an attempt could change: the log, the heads, the snapshots, the grants
CREATE FUNCTION public.tn_state() RETURNS text LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT md5(coalesce((SELECT string_agg(e::text, '|' ORDER BY seq) FROM headlessly.events e), '')
            || coalesce((SELECT string_agg(s::text, '|' ORDER BY tenant, target) FROM headlessly.streams s), '')
            || coalesce((SELECT string_agg(s::text, '|' ORDER BY tenant, target, version) FROM headlessly.snapshots s), '')
            || coalesce((SELECT string_agg(g.role::text || g.tenant || g.rights, '|' ORDER BY 1) FROM headlessly.tenant_grants g), ''))
$$;
GRANT EXECUTE ON FUNCTION public.tn_state() TO PUBLIC;
-- a function that sets another tenant for its caller
CREATE FUNCTION public.tn_in_b() RETURNS text LANGUAGE sql SET headlessly.tenant = 'ten_b'
    AS $$ SELECT (headlessly.events_append('page_view')).tenant $$;

-- no tenant role yet: no row security, and COPY FROM works for everyone
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relnamespace = 'headlessly'::regnamespace AND relkind = 'r' ORDER BY 1;

-- granting -------------------------------------------------------------------
SELECT headlessly.grant_tenant('regress_hl_ta', 'ten_a');
-- the very first binding already protects: its role reads its tenant only
SELECT count(*) AS unprotected_tables FROM pg_class c
 WHERE c.relnamespace = 'headlessly'::regnamespace AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
   AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation');
SET ROLE regress_hl_ta;
SELECT tenant, count(*) FROM headlessly.events GROUP BY tenant ORDER BY tenant;
RESET ROLE;
SELECT headlessly.grant_tenant('regress_hl_tb', 'ten_b', 'admin');
SELECT headlessly.grant_tenant('regress_hl_tr', 'ten_a', 'read');
SELECT headlessly.grant_tenant('regress_hl_tm', 'ten_a');
SELECT headlessly.grant_tenant('regress_hl_tm', 'ten_b');
SELECT role, tenant, rights, granted_by = current_user AS by_me FROM headlessly.tenant_grants ORDER BY 1, 2;
-- the first tenant role turned row security on for every table with tenant rows
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relnamespace = 'headlessly'::regnamespace AND relkind = 'r' ORDER BY 1;

SELECT public.tn_state() AS before_bad_grants \gset
SELECT headlessly.grant_tenant('regress_hl_ta', 'ten_a', 'owner');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_ta', 'ten_a', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant(NULL, 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_ta', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_ta', '');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant(:'admin', 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_bypass', 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_state() = :'before_bad_grants' AS nothing_changed;

-- who may grant: not a plain role; a tenant's admin for read/write of its own tenant
\c - regress_hl_plain
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT headlessly.grant_tenant('regress_hl_plain', 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.revoke_tenant('regress_hl_ta', 'ten_a');
\echo :LAST_ERROR_SQLSTATE
-- a never-bound role sees every tenant, as before
SELECT tenant, count(*) FROM headlessly.events WHERE tenant LIKE 'ten\_%' GROUP BY 1 ORDER BY 1;

\c - regress_hl_tb
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT headlessly.grant_tenant('regress_hl_ta', 'ten_b', 'admin');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_ta', 'ten_a', 'read');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.grant_tenant('regress_hl_plain', 'ten_b', 'read');
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_state() = :'before_bad_grants' AS nothing_changed;
SELECT headlessly.grant_tenant('regress_hl_tr', 'ten_b', 'read');
SELECT headlessly.revoke_tenant('regress_hl_tr', 'ten_b');
SELECT headlessly.revoke_tenant('regress_hl_tr', 'ten_b');

-- a tenant role with write rights --------------------------------------------
\c - regress_hl_ta
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- its one tenant is its default
SELECT tenant, type, version FROM headlessly.events_append('Deal.Updated', 'deal_1', '{"v": "a2"}');
SELECT tenant, target, version FROM headlessly.events ORDER BY seq;
SELECT tenant, target, version, state FROM headlessly.streams;
SELECT tenant, target, version, state FROM headlessly.heads;
SELECT tenant, target, state FROM headlessly.entities;
SELECT count(*) FROM headlessly.snapshots WHERE tenant <> 'ten_a';
SELECT tenant, noun, events FROM headlessly.stats();
SELECT headlessly.as_of('deal_1');
SELECT headlessly.as_of_version('deal_1', 1);
SELECT target, state FROM headlessly.entities_as_of('Deal');
SELECT tenant, type FROM headlessly.events_list();

SELECT public.tn_state() AS before_ta \gset
-- another tenant, by every argument and setting
SELECT headlessly.events_append('Deal.Updated', 'deal_1', '{"v": "x"}', tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "Deal.Updated", "target": "deal_1", "data": {"v": "x"}, "tenant": "ten_b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (tenant, type, target, data) VALUES ('ten_b', 'Deal.Updated', 'deal_1', '{"v": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('deal_1', tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of_version('deal_1', 1, tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.entities_as_of('Deal', tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_rollback('deal_1', now(), tenant => 'ten_b');
\echo :LAST_ERROR_SQLSTATE
-- verify and digest name a tenant too: their own works, another is ZE008
SELECT tenant, ok FROM headlessly.verify('ten_a');
SELECT jsonb_array_length(headlessly.digest('ten_a')->'tenants') AS own_digests;
SELECT * FROM headlessly.verify('ten_b');
\echo :SQLSTATE
SELECT headlessly.digest('ten_b');
\echo :SQLSTATE
SELECT * FROM headlessly.verify('ten_b', '{"tenants": []}');
\echo :SQLSTATE
SET headlessly.tenant = 'ten_b';
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL headlessly.tenant = 'ten_b';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT set_config('headlessly.tenant', 'ten_b', false);
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('headlessly.tenant', 'ten_b', true);
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_in_b();
\echo :LAST_ERROR_SQLSTATE
SHOW headlessly.tenant;
-- COPY FROM: row security refuses it for non-owners (PostgreSQL's rule)
-- (no inline data: whether psql is in COPY mode when the error comes would
-- depend on timing, and a slow server left the data lines to run as SQL)
\copy headlessly.events (tenant, type) FROM '/dev/null'
\echo :LAST_ERROR_SQLSTATE
-- a non-existent tenant is no different
SELECT headlessly.events_append('page_view', tenant => 'ten_zzz');
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_state() = :'before_ta' AS nothing_changed;
-- the setting to its own tenant is fine
SET headlessly.tenant = 'ten_a';
SELECT tenant, type FROM headlessly.events_append('page_view');
RESET headlessly.tenant;
SELECT count(*) FROM headlessly.events WHERE tenant = 'ten_a';

-- a read-only tenant role ----------------------------------------------------
\c - regress_hl_tr
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT public.tn_state() AS before_tr \gset
SELECT tenant, target, state FROM headlessly.entities;
SELECT count(*) FROM headlessly.heads;
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('deal_1');
SELECT count(*) FROM headlessly.events WHERE tenant <> 'ten_a';
SELECT headlessly.events_append('page_view');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type) VALUES ('page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_rollback('deal_1',
    (SELECT recorded_at FROM headlessly.events WHERE target = 'deal_1' AND version = 1));
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_state() = :'before_tr' AS nothing_changed;

-- a role bound to two tenants must choose ------------------------------------
\c - regress_hl_tm
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT headlessly.events_append('page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('deal_1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, count(*) FROM headlessly.events GROUP BY 1 ORDER BY 1;
BEGIN;
SET LOCAL headlessly.tenant = 'ten_b';
SELECT tenant, type FROM headlessly.events_append('page_view');
SELECT headlessly.as_of('deal_1');
COMMIT;
SELECT tenant, type FROM headlessly.events_append('page_view', tenant => 'ten_a');

-- a value that slipped in at connection start is checked where it is used ------
\c - :admin
ALTER ROLE regress_hl_ta SET headlessly.tenant = 'ten_b';
\c - regress_hl_ta
\set SHOW_CONTEXT never
\set VERBOSITY terse
SHOW headlessly.tenant;
SELECT public.tn_state() AS before_slipped \gset
SELECT headlessly.events_append('page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('deal_1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list();
\echo :LAST_ERROR_SQLSTATE
SELECT DISTINCT tenant FROM headlessly.events;
SELECT public.tn_state() = :'before_slipped' AS nothing_changed;
\c - :admin
ALTER ROLE regress_hl_ta RESET headlessly.tenant;

-- hooks run as the appending role: one cannot carry an append to another tenant
CREATE FUNCTION public.tn_hook(event jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT to_jsonb(headlessly.events_append('page_view', tenant => 'ten_b')) - 'data' $$;
SELECT headlessly.hook('Deal.Noted', 'after', 'public.tn_hook(jsonb)') AS hook_id \gset
\c - regress_hl_ta
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT tenant, type FROM headlessly.events_append('Deal.Noted', 'deal_1', '{"note": "x"}');
-- the hook's failure is recorded, and visible to the event's tenant only
SELECT sqlstate FROM headlessly.hook_failures;
\c - regress_hl_tb
SELECT count(*) FROM headlessly.hook_failures;
SELECT count(*) FROM headlessly.events WHERE tenant = 'ten_b' AND type = 'page_view';
\c - :admin
SELECT headlessly.unhook(:hook_id);
DROP FUNCTION public.tn_hook(jsonb);
-- leave no failure behind for the tests that count them
DELETE FROM headlessly.hook_failures WHERE hook_id = :hook_id;

-- grants are seen at once in the granting session, and a rolled-back grant is forgotten
BEGIN;
SET LOCAL ROLE regress_hl_tr;
SELECT count(*) FROM headlessly.events WHERE tenant = 'ten_b';
RESET ROLE;
SELECT headlessly.grant_tenant('regress_hl_tr', 'ten_b', 'read');
SET LOCAL ROLE regress_hl_tr;
SELECT count(*) > 0 AS sees_b FROM headlessly.events WHERE tenant = 'ten_b';
ROLLBACK;
SET ROLE regress_hl_tr;
SELECT count(*) FROM headlessly.events WHERE tenant = 'ten_b';
RESET ROLE;

-- revoking fails closed -------------------------------------------------------
SELECT headlessly.revoke_tenant('regress_hl_ta', 'ten_a');
SELECT headlessly.revoke_tenant('regress_hl_ta', 'ten_a');
\c - regress_hl_ta
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT public.tn_state() AS before_revoked \gset
SELECT count(*) FROM headlessly.events;
SELECT count(*) FROM headlessly.entities;
SELECT headlessly.events_append('page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', tenant => 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('deal_1', tenant => 'ten_a');
\echo :LAST_ERROR_SQLSTATE
SET headlessly.tenant = 'ten_a';
\echo :LAST_ERROR_SQLSTATE
SELECT public.tn_state() = :'before_revoked' AS nothing_changed;

-- the owner and superusers are not restricted
\c - :admin
SELECT tenant, count(*) FROM headlessly.events WHERE tenant LIKE 'ten\_%' GROUP BY 1 ORDER BY 1;

-- a dropped role's grants -------------------------------------------------------
-- Grants are kept by role OID: a new role of the same name is a new role and
-- inherits nothing.  The dropped role's rows are left behind (DROP ROLE is
-- global and reaches no database's tables); pg_dump leaves them out (a
-- dangling OID would name whichever role has it in the restoring cluster),
-- and forget_dropped_roles() lists and removes them.
CREATE ROLE regress_hl_gone LOGIN;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_gone;
GRANT SELECT, INSERT ON headlessly.events TO regress_hl_gone;
SELECT headlessly.grant_tenant('regress_hl_gone', 'ten_a');
SELECT 'regress_hl_gone'::regrole::oid AS gone_oid \gset
DROP OWNED BY regress_hl_gone;
DROP ROLE regress_hl_gone;
CREATE ROLE regress_hl_gone LOGIN;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_gone;
GRANT SELECT, INSERT ON headlessly.events TO regress_hl_gone;
SELECT count(*) AS rows_of_new_role FROM headlessly.tenant_grants WHERE role = 'regress_hl_gone'::regrole;
SELECT role::oid = :gone_oid AS of_dropped_role, tenant, rights
  FROM headlessly.tenant_grants g WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role::oid);
\c - regress_hl_gone
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- never bound: no tenant role (any tenant, as a migration role)
SELECT tenant FROM headlessly.events_append('page_view', tenant => 'ten_b');
SELECT headlessly.forget_dropped_roles();
\echo :LAST_ERROR_SQLSTATE
\c - :admin
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- what pg_dump dumps of the grants: the extension's dump condition
SELECT c.cond AS grants_dump_condition
  FROM pg_extension x,
       LATERAL (SELECT x.extcondition[array_position(x.extconfig, 'headlessly.tenant_grants'::regclass::oid)] AS cond) c
 WHERE x.extname = 'headlessly_events' \gset
SELECT count(*) FILTER (WHERE d.role::oid = :gone_oid) AS dumped_of_dropped_role,
       count(*) = (SELECT count(*) FROM headlessly.tenant_grants g
                    WHERE EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role::oid)) AS dumps_every_live_grant
  FROM (SELECT * FROM ONLY headlessly.tenant_grants :grants_dump_condition) d;
SELECT role::oid = :gone_oid AS of_dropped_role, tenant, rights FROM headlessly.forget_dropped_roles();
SELECT count(*) AS forgotten_again FROM headlessly.forget_dropped_roles();
SELECT count(*) AS grants_left FROM headlessly.tenant_grants;

-- leave the database as other tests expect it: no tenant roles, no row security
DELETE FROM headlessly.tenant_grants;
ALTER TABLE headlessly.events NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE headlessly.streams NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE headlessly.snapshots NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE headlessly.hook_failures NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
DROP FUNCTION public.tn_state();
DROP FUNCTION public.tn_in_b();
DROP OWNED BY regress_hl_ta, regress_hl_tb, regress_hl_tr, regress_hl_tm, regress_hl_plain, regress_hl_gone;
DROP ROLE regress_hl_ta, regress_hl_tb, regress_hl_tr, regress_hl_tm, regress_hl_plain, regress_hl_bypass,
          regress_hl_gone;
