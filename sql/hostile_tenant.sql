-- Found by the third hostile pass, as a tenant role: each section
-- reproduces a defect that was fixed, in which a tenant role learnt about
-- another tenant's rows, and checks the role's own rows still show.
\pset null '(null)'
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE ROLE regress_ht_acme LOGIN;     -- tenant role of ht_acme
CREATE ROLE regress_ht_app LOGIN;      -- never bound: appends to any tenant
GRANT USAGE ON SCHEMA headlessly TO regress_ht_acme, regress_ht_app;
GRANT SELECT, INSERT ON headlessly.events TO regress_ht_acme, regress_ht_app;
GRANT SELECT ON headlessly.streams, headlessly.heads, headlessly.entities
   TO regress_ht_acme, regress_ht_app;

SELECT version FROM headlessly.events_append('Ht.Created', 'ht_1', '{"secret": "globex v1"}',
                                             tenant => 'ht_globex');
SELECT version FROM headlessly.events_append('ht.free', data => '{"secret": "globex free"}',
                                             tenant => 'ht_globex');
-- row security as it was, to leave the database as other tests expect it
CREATE TABLE public.ht_rls AS
    SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity
      FROM pg_class c WHERE c.oid IN (SELECT polrelid FROM pg_policy WHERE polname = 'tenant_isolation');
SELECT headlessly.grant_tenant('regress_ht_acme', 'ht_acme');

-- pending_heads() returned every head this transaction had changed and not
-- written yet, whatever its tenant: a tenant role calling a function that
-- appends to another tenant for it (SECURITY DEFINER, owned by a role
-- that may) read that tenant's whole entity state, which neither
-- headlessly.streams nor headlessly.heads shows it.  Now it returns the
-- heads of the tenants the role may read, as the heads view does.
CREATE FUNCTION public.ht_touch_globex() RETURNS void LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT headlessly.events_append('Ht.Updated', 'ht_1', '{"touched": 1}', tenant => 'ht_globex');
    SELECT headlessly.events_append('Ht.Updated', 'ht_1', '{"touched": 2}', tenant => 'ht_globex');
$$;
ALTER FUNCTION public.ht_touch_globex() OWNER TO regress_ht_app;
GRANT EXECUTE ON FUNCTION public.ht_touch_globex() TO regress_ht_acme;
BEGIN;
SET LOCAL ROLE regress_ht_acme;
SELECT public.ht_touch_globex();
SELECT (headlessly.events_append('Ht.Created', 'ht_2', '{"mine": 1}')).version;
SELECT (headlessly.events_append('Ht.Updated', 'ht_2', '{"mine": 2}')).version;
SELECT tenant, target, version, state FROM headlessly.pending_heads() ORDER BY 1, 2;
SELECT tenant, target, version, state FROM headlessly.heads WHERE target LIKE 'ht\_%' ORDER BY 1, 2;
RESET ROLE;
-- the owner of the function, and the superuser, still see both
SET LOCAL ROLE regress_ht_app;
SELECT tenant, target, version FROM headlessly.pending_heads() ORDER BY 1, 2;
ROLLBACK;

-- subscription_status() counted a subscription's lag over every tenant's
-- events, reading as the log's owner: a tenant role's subscription to
-- another tenant's target (or type) told it how many events that tenant
-- had appended to it, one query per guess.  Now the lag counts the events
-- the subscription's owner may read, which are the ones it would get.
SET ROLE regress_ht_acme;
SELECT name FROM headlessly.subscribe('ht_probe_target', target => 'ht_1', start_at => 'beginning');
SELECT name FROM headlessly.subscribe('ht_probe_type', pattern => 'ht.free', start_at => 'beginning');
SELECT name, lag_events FROM headlessly.subscription_status()
 WHERE name LIKE 'ht\_probe%' ORDER BY name;
SELECT version FROM headlessly.events_append('Ht.Created', 'ht_1', '{"mine": 1}');
SELECT seq > 0 AS appended FROM headlessly.events_append('ht.free');
SELECT name, lag_events FROM headlessly.subscription_status()
 WHERE name LIKE 'ht\_probe%' ORDER BY name;
-- the events it counts are those it reads
SELECT tenant, type, target FROM headlessly.read('ht_probe_target');
SELECT tenant, type, target FROM headlessly.read('ht_probe_type');
RESET ROLE;
-- a role bound to no tenant counts every tenant's, as before
SET ROLE regress_ht_app;
SELECT name FROM headlessly.subscribe('ht_plain_target', target => 'ht_1', start_at => 'beginning');
SELECT name, lag_events FROM headlessly.subscription_status() WHERE name = 'ht_plain_target';
RESET ROLE;
-- and the superuser sees each subscription's lag as its owner would
SELECT name, lag_events FROM headlessly.subscription_status()
 WHERE name LIKE 'ht\_%' ORDER BY name;
-- An owner who lost USAGE on the schema reads nothing; its lag is NULL.
-- The lag query ran as it regardless, and subscription_status() failed
-- with 42501 for every caller, the superuser included; read() and
-- replay() on its subscription name the owner's missing rights.
REVOKE USAGE ON SCHEMA headlessly FROM regress_ht_acme;
SELECT name, lag_events FROM headlessly.subscription_status()
 WHERE name LIKE 'ht\_%' ORDER BY name;
SELECT count(*) FROM headlessly.read('ht_probe_target');
\set VERBOSITY sqlstate
SELECT headlessly.replay('ht_probe_target', now());
\set VERBOSITY terse
SELECT name, acked_seq > 0 AS moved FROM headlessly.subscription_status() WHERE name = 'ht_probe_target';
GRANT USAGE ON SCHEMA headlessly TO regress_ht_acme;
SELECT headlessly.unsubscribe(name) FROM (VALUES ('ht_probe_target'), ('ht_probe_type'),
                                                 ('ht_plain_target')) v(name);

-- ack() and nack() looked the event up by seq as the log's owner, in any
-- tenant: a tenant role could nack another tenant's event into its own
-- subscription, which then held a delivery row naming that tenant's event
-- and target, pending for ever (read() never returns it), and learnt which
-- seqs were another tenant's.  Now an event the subscription's owner may
-- not read is no event to it.
SELECT seq AS ht_globex_seq FROM headlessly.events
 WHERE tenant = 'ht_globex' AND type = 'ht.free' \gset
SET ROLE regress_ht_acme;
SELECT name FROM headlessly.subscribe('ht_acks', start_at => 'beginning');
\set VERBOSITY sqlstate
SELECT headlessly.nack('ht_acks', :ht_globex_seq, 'planted');
SELECT headlessly.ack('ht_acks', :ht_globex_seq);
\set VERBOSITY terse
SELECT name, pending, dead, last_error FROM headlessly.subscription_status() WHERE name = 'ht_acks';
-- its own tenant's events it acks and nacks as before
SELECT seq AS ht_acme_seq FROM headlessly.events_append('ht.free') \gset
SELECT headlessly.nack('ht_acks', :ht_acme_seq, 'retry it');
SELECT name, pending, last_error FROM headlessly.subscription_status() WHERE name = 'ht_acks';
RESET ROLE;
SELECT tenant, status, error FROM headlessly.deliveries WHERE subscription = 'ht_acks';
SELECT headlessly.unsubscribe('ht_acks');

-- subscribe(start_at => a time) and replay(name, a time) placed the
-- position before the first event recorded from then on in any tenant, as
-- the log's owner: subscribe() returned it (start_seq) and
-- subscription_status() showed it (acked_seq), so a tenant role could
-- bisect for when another tenant's events were recorded.  Now the first
-- event the subscription's owner may read counts; with none, 'now'.
SELECT clock_timestamp() AS ht_since \gset
SELECT seq AS ht_globex_later FROM headlessly.events_append('ht.later', tenant => 'ht_globex') \gset
SET ROLE regress_ht_acme;
SELECT start_seq = :ht_globex_later - 1 AS at_globex_event, start_seq = 0 AS from_now
  FROM headlessly.subscribe('ht_since', start_at => :'ht_since');
SELECT seq AS ht_acme_later FROM headlessly.events_append('ht.later') \gset
SELECT headlessly.replay('ht_since', :'ht_since');
SELECT acked_seq = :ht_globex_later - 1 AS at_globex_event, acked_seq = :ht_acme_later - 1 AS at_own_event
  FROM headlessly.subscription_status() WHERE name = 'ht_since';
SELECT tenant, type FROM headlessly.read('ht_since');
SELECT headlessly.unsubscribe('ht_since');
RESET ROLE;
-- a role bound to no tenant starts at any tenant's event, as before
SET ROLE regress_ht_app;
SELECT start_seq = :ht_globex_later - 1 AS at_globex_event
  FROM headlessly.subscribe('ht_since_plain', start_at => :'ht_since');
SELECT headlessly.replay('ht_since_plain', :'ht_since');
SELECT acked_seq = :ht_globex_later - 1 AS at_globex_event
  FROM headlessly.subscription_status() WHERE name = 'ht_since_plain';
SELECT headlessly.unsubscribe('ht_since_plain');
RESET ROLE;

-- leave the database as other tests expect it: no tenant roles, row security as it was
DELETE FROM headlessly.tenant_grants WHERE role = 'regress_ht_acme'::regrole;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM public.ht_rls LOOP
        EXECUTE format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', r.rel,
                       CASE WHEN r.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END,
                       CASE WHEN r.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END);
    END LOOP;
END $$;
DROP TABLE public.ht_rls;
DROP FUNCTION public.ht_touch_globex();
DROP OWNED BY regress_ht_acme, regress_ht_app;
DROP ROLE regress_ht_acme, regress_ht_app;
