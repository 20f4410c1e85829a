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

-- Every query the extension builds, against look-alikes: a schema ahead of
-- pg_catalog with an operator for each of pg_catalog's (concrete types), a
-- function for each plain one, the aggregates and polymorphic functions
-- the extension's queries use, and a domain for each common type name,
-- also in pg_temp (searched first for types whatever search_path says).
-- Each look-alike raises a WARNING naming itself and then does what the
-- real one does: this test's expected output has none.  Run by a role
-- that is not the log's owner (what the extension runs as the owner shows)
-- and by the superuser.  This file's own statements name every schema.
CREATE SCHEMA audit_trap;
GRANT USAGE ON SCHEMA audit_trap TO PUBLIC;
CREATE FUNCTION audit_trap.note(what pg_catalog.text) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'TRAP % ran as %', what, current_user; END $$;
DO $do$
DECLARE
    o record;
    f record;
BEGIN
    FOR o IN
        SELECT op.oid, op.oprname, op.oprleft, op.oprright, op.oprresult
          FROM pg_catalog.pg_operator op
         WHERE op.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
           AND op.oprright OPERATOR(pg_catalog.<>) 0
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                            WHERE t.oid OPERATOR(pg_catalog.=) ANY (ARRAY[op.oprleft, op.oprright, op.oprresult])
                              AND t.typtype OPERATOR(pg_catalog.=) 'p')
    LOOP
        BEGIN
            IF o.oprleft OPERATOR(pg_catalog.=) 0 THEN
                EXECUTE pg_catalog.format($f$CREATE FUNCTION audit_trap.op_%s(b %s) RETURNS %s LANGUAGE plpgsql AS
                    $b$ BEGIN PERFORM audit_trap.note(%L); RETURN OPERATOR(pg_catalog.%s) b; END $b$$f$,
                    o.oid, o.oprright::pg_catalog.regtype, o.oprresult::pg_catalog.regtype,
                    pg_catalog.format('operator %s %s', o.oprname, o.oprright::pg_catalog.regtype), o.oprname);
                EXECUTE pg_catalog.format('CREATE OPERATOR audit_trap.%s (RIGHTARG = %s, FUNCTION = audit_trap.op_%s)',
                    o.oprname, o.oprright::pg_catalog.regtype, o.oid);
            ELSE
                EXECUTE pg_catalog.format($f$CREATE FUNCTION audit_trap.op_%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql AS
                    $b$ BEGIN PERFORM audit_trap.note(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$,
                    o.oid, o.oprleft::pg_catalog.regtype, o.oprright::pg_catalog.regtype, o.oprresult::pg_catalog.regtype,
                    pg_catalog.format('operator %s %s %s', o.oprleft::pg_catalog.regtype, o.oprname,
                                      o.oprright::pg_catalog.regtype), o.oprname);
                EXECUTE pg_catalog.format('CREATE OPERATOR audit_trap.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = audit_trap.op_%s)',
                    o.oprname, o.oprleft::pg_catalog.regtype, o.oprright::pg_catalog.regtype, o.oid);
            END IF;
        EXCEPTION WHEN OTHERS THEN NULL;    -- a look-alike PostgreSQL will not take (e.g. a reserved combination)
        END;
    END LOOP;
    FOR f IN
        SELECT p.proname, p.prorettype, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
               (SELECT pg_catalog.string_agg(pg_catalog.format('$%s', i), ', ')
                  FROM pg_catalog.generate_series(1, p.pronargs) i) AS refs
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
           AND p.prokind OPERATOR(pg_catalog.=) 'f' AND NOT p.proretset
           AND p.provariadic OPERATOR(pg_catalog.=) 0
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                            WHERE (t.oid OPERATOR(pg_catalog.=) ANY (p.proargtypes::pg_catalog.oid[])
                                   OR t.oid OPERATOR(pg_catalog.=) p.prorettype)
                              AND t.typtype OPERATOR(pg_catalog.=) 'p')
    LOOP
        BEGIN
            EXECUTE pg_catalog.format($f$CREATE FUNCTION audit_trap.%I(%s) RETURNS %s LANGUAGE plpgsql AS
                $b$ BEGIN PERFORM audit_trap.note(%L); RETURN pg_catalog.%I(%s); END $b$$f$,
                f.proname, f.args, f.prorettype::pg_catalog.regtype,
                pg_catalog.format('function %s(%s)', f.proname, f.args), f.proname, COALESCE(f.refs, ''));
        EXCEPTION WHEN OTHERS THEN NULL;    -- e.g. a name taken by an earlier overload's look-alike
        END;
    END LOOP;
END
$do$;
CREATE FUNCTION audit_trap.jsonb_build_object(VARIADIC pg_catalog.text[]) RETURNS pg_catalog.jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function jsonb_build_object'); RETURN NULL; END $$;
CREATE FUNCTION audit_trap.format(pg_catalog.text, VARIADIC pg_catalog.text[]) RETURNS pg_catalog.text LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function format'); RETURN $1; END $$;
CREATE FUNCTION audit_trap.to_jsonb(anyelement) RETURNS pg_catalog.jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function to_jsonb'); RETURN pg_catalog.to_jsonb($1); END $$;
CREATE FUNCTION audit_trap.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function unnest'); RETURN QUERY SELECT * FROM pg_catalog.unnest($1); END $$;
CREATE FUNCTION audit_trap.jsonb_array_elements(pg_catalog.jsonb) RETURNS SETOF pg_catalog.jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function jsonb_array_elements');
         RETURN QUERY SELECT * FROM pg_catalog.jsonb_array_elements($1); END $$;
CREATE FUNCTION audit_trap.jsonb_each(pg_catalog.jsonb, OUT key pg_catalog.text, OUT value pg_catalog.jsonb)
RETURNS SETOF record LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('function jsonb_each'); RETURN QUERY SELECT * FROM pg_catalog.jsonb_each($1); END $$;
CREATE FUNCTION audit_trap.agg1(s pg_catalog.int8, v anyelement) RETURNS pg_catalog.int8 LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('an aggregate'); RETURN 1; END $$;
CREATE FUNCTION audit_trap.agg2(s pg_catalog.int8, k anyelement, v anyelement) RETURNS pg_catalog.int8 LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('an aggregate'); RETURN 1; END $$;
CREATE FUNCTION audit_trap.agg0(s pg_catalog.int8) RETURNS pg_catalog.int8 LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note('aggregate count(*)'); RETURN 1; END $$;
CREATE AGGREGATE audit_trap.count(*) (SFUNC = audit_trap.agg0, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.count(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.min(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.max(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.sum(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.bool_or(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.array_agg(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.jsonb_agg(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.range_agg(anyelement) (SFUNC = audit_trap.agg1, STYPE = pg_catalog.int8);
CREATE AGGREGATE audit_trap.jsonb_object_agg(anyelement, anyelement) (SFUNC = audit_trap.agg2, STYPE = pg_catalog.int8);
CREATE FUNCTION audit_trap.type_used(what pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM audit_trap.note(pg_catalog.textcat('type ', what)); RETURN true; END $$;
-- type names as domains, in a schema (audit_trap) or in pg_temp
CREATE FUNCTION audit_trap.type_trap(nsp pg_catalog.text) RETURNS void LANGUAGE plpgsql AS $do$
DECLARE
    t pg_catalog.text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'jsonb', 'int8', 'int4', 'int2', 'oid', 'bool', 'timestamptz',
                             'xid8', 'bytea', 'name', 'regclass', 'regproc', 'regprocedure',
                             'regrole', 'regtype', 'regnamespace', 'numeric', 'float8', 'interval',
                             'json', 'varchar', 'int8range', 'xid', 'tid']::pg_catalog.text[]
    LOOP
        EXECUTE pg_catalog.format('CREATE DOMAIN %I.%I AS pg_catalog.%I CHECK (audit_trap.type_used(%L))',
                                  nsp, t, t, t);
    END LOOP;
END $do$;
SELECT audit_trap.type_trap('audit_trap');
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA audit_trap TO PUBLIC;

-- a role that is not the log's owner, with what the README grants an
-- application, plus registering hooks, subscribing (webhooks too), and its
-- own tables
CREATE ROLE regress_audit_app;
CREATE SCHEMA audit_app AUTHORIZATION regress_audit_app;
GRANT USAGE ON SCHEMA headlessly TO regress_audit_app;
GRANT SELECT, INSERT ON headlessly.events TO regress_audit_app;
GRANT SELECT ON headlessly.entities, headlessly.heads, headlessly.streams, headlessly.snapshots,
    headlessly.checkpoints TO regress_audit_app;
GRANT INSERT, SELECT, DELETE ON headlessly.hook_registry TO regress_audit_app;
GRANT USAGE ON SEQUENCE headlessly.hook_registry_id_seq TO regress_audit_app;
GRANT SELECT ON headlessly.hooks TO regress_audit_app;
GRANT EXECUTE ON FUNCTION headlessly.webhook_send(text, jsonb, text, jsonb, text) TO regress_audit_app;

SET ROLE regress_audit_app;
SET search_path = audit_trap, pg_catalog;
SELECT audit_trap.type_trap('pg_temp');
CREATE TABLE audit_app.cap (id pg_catalog.int4 PRIMARY KEY, v pg_catalog.text);
CREATE TABLE audit_app.guarded (id pg_catalog.int4, v pg_catalog.text);
INSERT INTO audit_app.cap VALUES (0, 'before capture');
SELECT headlessly.capture('audit_app.cap');
SELECT headlessly.make_append_only('audit_app.guarded');
INSERT INTO audit_app.guarded VALUES (1, 'x');
CREATE FUNCTION audit_app.h(e pg_catalog.jsonb) RETURNS pg_catalog.jsonb LANGUAGE sql
    AS $$ SELECT NULL::pg_catalog.jsonb $$;
CREATE FUNCTION audit_app.hfail(e pg_catalog.jsonb) RETURNS pg_catalog.jsonb LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hfail'; END $$;
SELECT headlessly.hook('AuditContact.*', 'before', 'audit_app.h(pg_catalog.jsonb)') OPERATOR(pg_catalog.>) 0;
SELECT headlessly.hook('AuditContact.*', 'after', 'audit_app.hfail(pg_catalog.jsonb)') OPERATOR(pg_catalog.>) 0;
SELECT headlessly.hook('AuditContact.*', 'after_commit', 'audit_app.h(pg_catalog.jsonb)') OPERATOR(pg_catalog.>) 0;
SELECT (headlessly.events_append('AuditContact.Created', 'c1', '{"a":1}', external_event_id => 'k1', source => 's')).version;
SELECT (headlessly.events_append('AuditContact.Created', 'c1', '{"a":1}', external_event_id => 'k1', source => 's')).version;
SELECT (headlessly.events_append('AuditContact.Updated', 'c1', '{"a":2}', expected_version => 1)).version;
SELECT (headlessly.events_append('audit_view')).version;
SELECT e.version FROM headlessly.events_append_batch(
    '[{"type":"AuditContact.Updated","target":"c1","data":{"a":3}},{"type":"audit_x"},
      {"type":"AuditContact.Created","target":"c2","external_event_id":"k2","source":"s"}]') e;
INSERT INTO headlessly.events (type, target, data) VALUES ('AuditDeal.Created', 'd1', '{"v":1}');
INSERT INTO audit_app.cap VALUES (1, 'a');
UPDATE audit_app.cap SET v = 'b';
DELETE FROM audit_app.cap WHERE id OPERATOR(pg_catalog.=) 0;
TRUNCATE audit_app.cap;
SELECT headlessly.as_of('c1'), headlessly.as_of_version('c1', 1),
       headlessly.as_of('c1', pg_catalog.now()) OPERATOR(pg_catalog.=) headlessly.as_of('c1');
SELECT target FROM headlessly.entities_as_of('AuditContact', filter => '{"a":3}');
SELECT target FROM headlessly.entities_as_of('AuditContact', pg_catalog.now()) ORDER BY target COLLATE pg_catalog."C";
SELECT type FROM headlessly.events_list(type => 'AuditContact.*', target => 'c1',
                                        after => '-infinity', before => 'infinity');
SELECT (headlessly.events_rollback('c1', pg_catalog.now())).type;
SELECT target FROM headlessly.pending_heads();
SELECT name FROM headlessly.subscribe('audit_pull', 'AuditContact.*', start_at => 'beginning', notify => true);
SELECT name FROM headlessly.subscribe('audit_target', target => 'c1', tenant => 'audit', start_at => '2000-01-01');
SELECT name FROM headlessly.subscribe('audit_hook', url => 'http://127.0.0.1:9/', headers => '{"x-a":"b"}');
SELECT type FROM headlessly.read('audit_pull', 2);
SELECT type FROM headlessly.read('audit_pull', 2, 1, 2);
SELECT headlessly.ack('audit_pull', e.seq) FROM headlessly.events e
 WHERE e.tenant OPERATOR(pg_catalog.=) 'audit' AND e.target OPERATOR(pg_catalog.=) 'c1' AND e.version OPERATOR(pg_catalog.=) 1;
SELECT headlessly.nack('audit_pull', e.seq, 'later') FROM headlessly.events e
 WHERE e.tenant OPERATOR(pg_catalog.=) 'audit' AND e.target OPERATOR(pg_catalog.=) 'c1' AND e.version OPERATOR(pg_catalog.=) 2;
SELECT headlessly.redeliver('audit_pull');
SELECT headlessly.replay('audit_pull', '-infinity');
SELECT headlessly.pause('audit_target'), headlessly.resume('audit_target');
SELECT name, kind, state FROM headlessly.subscription_status() WHERE name OPERATOR(pg_catalog.~~) 'audit%';
SELECT headlessly.delivery_horizon() IS NOT NULL;
-- sealed or not yet (the worker may have sealed it): only what the call runs matters here
SELECT pg_catalog.count(headlessly.proof(e.id)) OPERATOR(pg_catalog.>=) 0 FROM headlessly.events e WHERE e.tenant OPERATOR(pg_catalog.=) 'audit' AND e.target OPERATOR(pg_catalog.=) 'c1' AND e.version OPERATOR(pg_catalog.=) 1;
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM headlessly.stats();
SELECT target FROM headlessly.entities WHERE tenant OPERATOR(pg_catalog.=) 'audit' ORDER BY target COLLATE pg_catalog."C";
SELECT target FROM headlessly.heads WHERE tenant OPERATOR(pg_catalog.=) 'audit' ORDER BY target COLLATE pg_catalog."C";
-- past the snapshot interval: a snapshot is written as the log's owner and read back
SELECT pg_catalog.max((headlessly.events_append('AuditContact.Updated', 'c2',
                                               pg_catalog.jsonb_build_object('n', i))).version)
  FROM pg_catalog.generate_series(1, 120) i;
SELECT pg_catalog.count(*) AS snapshots FROM headlessly.snapshots
 WHERE tenant OPERATOR(pg_catalog.=) 'audit' AND target OPERATOR(pg_catalog.=) 'c2';
SELECT headlessly.as_of_version('c2', 110), headlessly.as_of('c2') OPERATOR(pg_catalog.=) headlessly.as_of_version('c2', 121);
SELECT target, version FROM headlessly.entities_as_of('AuditContact', pg_catalog.now()) ORDER BY target COLLATE pg_catalog."C";
SELECT headlessly.unhook(id) FROM headlessly.hooks
 WHERE pattern OPERATOR(pg_catalog.=) 'AuditContact.*' AND phase OPERATOR(pg_catalog.<>) 'after_commit';
SELECT headlessly.uncapture('audit_app.cap');
SELECT headlessly.unsubscribe('audit_target');
RESET ROLE;

-- the superuser, with the same look-alikes
SET search_path = audit_trap, pg_catalog;
-- a delivery round runs the application role's after_commit handler as that role
SELECT headlessly.deliver() OPERATOR(pg_catalog.>) 0;
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS handler_ran
  FROM headlessly.deliveries d JOIN headlessly.subscriptions s ON s.name OPERATOR(pg_catalog.=) d.subscription
 WHERE s.kind OPERATOR(pg_catalog.=) 'hook' AND s.pattern OPERATOR(pg_catalog.=) 'AuditContact.*'
   AND d.status OPERATOR(pg_catalog.=) 'delivered';
SELECT headlessly.unhook(id) FROM headlessly.hooks WHERE pattern OPERATOR(pg_catalog.=) 'AuditContact.*';
SELECT headlessly.checkpoint() OPERATOR(pg_catalog.>=) 0;
SELECT tenant, ok FROM headlessly.verify('audit');
SELECT tenant, ok FROM headlessly.verify('audit', headlessly.digest('audit'));
SELECT headlessly.proof(e.id) IS NOT NULL FROM headlessly.events e WHERE e.tenant OPERATOR(pg_catalog.=) 'audit' AND e.target OPERATOR(pg_catalog.=) 'c1' AND e.version OPERATOR(pg_catalog.=) 1;
SELECT pg_catalog.count(*) FROM headlessly.check_state('audit');
SELECT headlessly.rebuild_state('audit');
CREATE ROLE regress_audit_tenant;
CREATE ROLE regress_audit_admin;
GRANT USAGE ON SCHEMA headlessly TO regress_audit_tenant, regress_audit_admin;
GRANT regress_audit_tenant TO regress_audit_admin WITH ADMIN OPTION;
SELECT headlessly.grant_tenant('regress_audit_admin', 'audit_t', 'admin');
GRANT SELECT, INSERT ON headlessly.events TO regress_audit_tenant;
GRANT SELECT ON headlessly.entities, headlessly.heads, headlessly.streams, headlessly.snapshots
    TO regress_audit_tenant;
SET ROLE regress_audit_admin;
SET search_path = audit_trap, pg_catalog;
SELECT headlessly.grant_tenant('regress_audit_tenant', 'audit_t', 'write');
-- a tenant role: row security and the tenant checks on every path
SET ROLE regress_audit_tenant;
SET search_path = audit_trap, pg_catalog;
SET headlessly.tenant = 'audit_t';
SELECT (headlessly.events_append('AuditT.Created', 't1', '{"a":1}')).tenant;
SELECT (headlessly.events_append('AuditT.Updated', 't1', '{"a":2}', tenant => 'audit_t')).version;
SELECT headlessly.as_of('t1'), pg_catalog.count(*) FROM headlessly.events_list() GROUP BY 1;
SELECT target FROM headlessly.entities_as_of('AuditT');
SELECT target, version FROM headlessly.heads;
SELECT (headlessly.events_rollback('t1', pg_catalog.now())).type;
\set VERBOSITY sqlstate
SELECT headlessly.as_of('c1', tenant => 'audit');
\set VERBOSITY terse
SET ROLE regress_audit_admin;
SET search_path = audit_trap, pg_catalog;
SELECT headlessly.revoke_tenant('regress_audit_tenant', 'audit_t');
RESET ROLE;
SET search_path = audit_trap, pg_catalog;
SET headlessly.tenant = 'audit';
-- a restored row (assigned columns, as pg_restore sends them)
INSERT INTO headlessly.events (seq, id, tenant, type, target, version, recorded_at, data)
VALUES ((SELECT pg_catalog.max(e.seq) OPERATOR(pg_catalog.+) 1000 FROM headlessly.events e),
        'evt_auditrestored00001', 'audit', 'AuditRestored.Created', 'r1', 1,
        pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval, '{"a":1}');
SELECT version, hash IS NOT NULL AS hashed FROM headlessly.events WHERE id OPERATOR(pg_catalog.=) 'evt_auditrestored00001';
SELECT headlessly.tenant_isolation_enforce();
SELECT pg_catalog.count(*) FROM headlessly.forget_dropped_roles();
SELECT headlessly.unsubscribe('audit_pull'), headlessly.unsubscribe('audit_hook');
RESET search_path;

-- how many look-alikes there are depends on the server version
SET client_min_messages = warning;
DROP SCHEMA audit_trap CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_audit_app, regress_audit_tenant, regress_audit_admin;
DELETE FROM headlessly.tenant_grants
 WHERE role IN ('regress_audit_tenant'::regrole, 'regress_audit_admin'::regrole);
DROP ROLE regress_audit_app, regress_audit_tenant, regress_audit_admin;

-- A temporary function is dropped when its session ends: as a hook handler
-- it would make every matching append fail from then on, in every session.
-- Refused by hook() and by the registry's own check, nothing stored.
CREATE FUNCTION pg_temp.audit_tmp_handler(e pg_catalog.jsonb) RETURNS pg_catalog.jsonb
    LANGUAGE sql AS $$ SELECT NULL::pg_catalog.jsonb $$;
DO $$
DECLARE
    detail pg_catalog.text;
BEGIN
    PERFORM headlessly.hook('AuditTmp.*', 'before', 'pg_temp.audit_tmp_handler(pg_catalog.jsonb)');
EXCEPTION WHEN undefined_function THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE '42883: %', detail;
END $$;
\set VERBOSITY sqlstate
SELECT headlessly.hook('AuditTmp.*', 'after_commit', 'pg_temp.audit_tmp_handler(pg_catalog.jsonb)');
INSERT INTO headlessly.hook_registry (pattern, phase, handler)
    VALUES ('AuditTmp.*', 'after', 'pg_temp.audit_tmp_handler(pg_catalog.jsonb)');
\set VERBOSITY terse
SELECT pg_catalog.count(*) AS temporary_handlers FROM headlessly.hook_registry
 WHERE pattern OPERATOR(pg_catalog.=) 'AuditTmp.*';
SELECT pg_catalog.count(*) AS temporary_handler_subscriptions FROM headlessly.subscriptions
 WHERE kind OPERATOR(pg_catalog.=) 'hook' AND pattern OPERATOR(pg_catalog.=) 'AuditTmp.*';
DROP FUNCTION pg_temp.audit_tmp_handler(pg_catalog.jsonb);

-- capture() by a table's owner who is not a superuser: CREATE TRIGGER needs
-- EXECUTE on the capture trigger's function, as make_append_only() needs it
-- on the guard's.  That right gives nothing more: a trigger made by hand
-- with it appends as the role writing the table, through the log's checks,
-- so a role without INSERT on the log stores nothing.
CREATE ROLE regress_audit_owner;
CREATE SCHEMA audit_owner AUTHORIZATION regress_audit_owner;
GRANT USAGE ON SCHEMA headlessly TO regress_audit_owner;
GRANT SELECT ON headlessly.entities TO regress_audit_owner;
SET ROLE regress_audit_owner;
CREATE TABLE audit_owner.contacts (id int PRIMARY KEY, name text);
SELECT headlessly.capture('audit_owner.contacts', 'AuditOwned');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_owner.contacts'::regclass ORDER BY 1;
\set VERBOSITY sqlstate
INSERT INTO audit_owner.contacts VALUES (1, 'no INSERT on the log');
SELECT headlessly.uncapture('audit_owner.contacts');
CREATE TRIGGER by_hand AFTER INSERT ON audit_owner.contacts FOR EACH ROW
    EXECUTE FUNCTION headlessly.capture_trigger('AuditOwned', 'id', 'forged_');
INSERT INTO audit_owner.contacts VALUES (2, 'no INSERT on the log');
SELECT headlessly.capture_trigger();
\set VERBOSITY terse
RESET ROLE;
SELECT pg_catalog.count(*) AS stored FROM headlessly.events WHERE type LIKE 'AuditOwned.%';
GRANT INSERT, SELECT ON headlessly.events TO regress_audit_owner;
SET ROLE regress_audit_owner;
INSERT INTO audit_owner.contacts VALUES (3, 'with INSERT on the log');
RESET ROLE;
SELECT type, target, data FROM headlessly.events WHERE type LIKE 'AuditOwned.%' ORDER BY seq;
DROP OWNED BY regress_audit_owner;
DROP ROLE regress_audit_owner;
