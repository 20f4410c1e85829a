-- Security audit: what a role with no more than the defaults (TEMP on the
-- database, USAGE on schema headlessly) can make the extension run as the
-- log's owner.  pg_temp is searched first for relations and type names,
-- whatever search_path says, so a query the extension runs as the log's
-- owner must name every type, function and operator with its schema.
\set SHOW_CONTEXT never
\set VERBOSITY terse
SET headlessly.tenant = 'audit';
CREATE ROLE regress_audit_eve;
GRANT USAGE ON SCHEMA headlessly TO regress_audit_eve;
SELECT name FROM headlessly.subscribe('audit_sub');

-- subscription_status() reads the subscriptions as the log's owner: a
-- temporary domain named "text" whose CHECK raises, made by a role with
-- only the defaults, must never be evaluated there
SET ROLE regress_audit_eve;
CREATE FUNCTION pg_temp.ran(v pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the caller''s temporary domain ran as %', current_user;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.ran(VALUE));
SELECT name, kind, state FROM headlessly.subscription_status() WHERE name OPERATOR(pg_catalog.=) 'audit_sub';
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_audit_eve';

SELECT headlessly.unsubscribe('audit_sub');
DROP OWNED BY regress_audit_eve;
DROP ROLE regress_audit_eve;
