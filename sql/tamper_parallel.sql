-- verify() with parallel workers (each checking some of the tenants) gives
-- exactly the serial path's rows, in the same order, for every kind of
-- tampering, across tenants; and falls back to the serial path where it
-- must.  DEBUG1 says how many workers verify() launched.
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
\pset null '(null)'

-- tenants p0 .. p7, five streams each, and events without a target
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('contact_touched', 'c_' || (i % 5),
               jsonb_build_object('n', i), tenant => 'p' || (i % 8))
      FROM generate_series(1, 400) i) s;
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('page_view', data => jsonb_build_object('i', i),
               tenant => 'p' || (i % 8))
      FROM generate_series(1, 80) i) s;
SELECT headlessly.checkpoint() AS checkpoints;
-- and more, not sealed yet
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('contact_touched', 'c_' || (i % 5),
               jsonb_build_object('n', i), tenant => 'p' || (i % 8))
      FROM generate_series(401, 440) i) s;
CREATE TABLE kept AS SELECT headlessly.digest() AS digest;

-- Both paths over the whole log against the kept digest: the parallel
-- path's rows, then how many rows differ (ordinality included)
CREATE TABLE serial_rows (tenant text, ok boolean, checked bigint, target text, version bigint,
                          event_id text, seq bigint, problem text, ordinality bigint);
CREATE TABLE parallel_rows (LIKE serial_rows);
\set verify_both 'SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 0; TRUNCATE serial_rows, parallel_rows; INSERT INTO serial_rows SELECT * FROM headlessly.verify(NULL, (SELECT digest FROM kept)) WITH ORDINALITY; SET max_parallel_workers_per_gather = 3; SET client_min_messages = debug1; INSERT INTO parallel_rows SELECT * FROM headlessly.verify(NULL, (SELECT digest FROM kept)) WITH ORDINALITY; SET client_min_messages = warning; SELECT tenant, ok, checked, target, version, seq, problem FROM parallel_rows ORDER BY ordinality; SELECT count(*) AS differences FROM ((TABLE serial_rows EXCEPT ALL TABLE parallel_rows) UNION ALL (TABLE parallel_rows EXCEPT ALL TABLE serial_rows)) d;'
:verify_both

-- in a transaction that has appended twice to streams (their heads kept
-- unwritten until verify() writes them), the first verify() compares those
-- heads with the events: serial and parallel, nothing to report
\set appended_in_transaction 'BEGIN; SELECT count(*) AS appended FROM (SELECT headlessly.events_append(''contact_touched'', ''c_'' || (i % 9), jsonb_build_object(''n'', i), tenant => ''p'' || (i % 8)) FROM generate_series(1, 100) i) s;'
:appended_in_transaction
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT tenant, ok, checked, target, version, problem FROM headlessly.verify() WHERE NOT ok;
ROLLBACK;
:appended_in_transaction
SET LOCAL max_parallel_workers_per_gather = 3;
SET LOCAL client_min_messages = debug1;
SELECT tenant, ok, checked, target, version, problem FROM headlessly.verify() WHERE NOT ok;
ROLLBACK;

-- tampering, with the guarding triggers bypassed in pg_trigger (as
-- 013_tamper_attacks does), one kind per tenant; p7: its digest
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) AS log_before FROM headlessly.events e \gset
CREATE TABLE saved_triggers AS
    SELECT oid, tgenabled FROM pg_trigger
     WHERE tgrelid IN ('headlessly.events'::regclass, 'headlessly.checkpoints'::regclass)
       AND NOT tgisinternal;
UPDATE pg_trigger SET tgenabled = 'D' WHERE oid IN (SELECT oid FROM saved_triggers);
\c -
-- p0: an event's data changed
UPDATE headlessly.events SET data = '{"n": -1}' WHERE tenant = 'p0' AND target = 'c_1' AND version = 3;
-- p1: an event removed mid-stream
DELETE FROM headlessly.events WHERE tenant = 'p1' AND target = 'c_2' AND version = 4;
-- p2: a copy of a sealed event without a target, after everything: sealed by none
INSERT INTO headlessly.events (seq, id, tenant, type, occurred_at, recorded_at, data, xact_id, hash)
SELECT 100000, 'evt_forged', tenant, type, occurred_at, recorded_at, data, xact_id, hash
  FROM headlessly.events WHERE tenant = 'p2' AND target IS NULL ORDER BY seq LIMIT 1;
-- p3: two events of a stream swapped
UPDATE headlessly.events SET version = -1 WHERE tenant = 'p3' AND target = 'c_3' AND version = 2;
UPDATE headlessly.events SET version = 2 WHERE tenant = 'p3' AND target = 'c_3' AND version = 3;
UPDATE headlessly.events SET version = 3 WHERE tenant = 'p3' AND target = 'c_3' AND version = -1;
-- p4: a stream head that knows more versions than there are events
UPDATE headlessly.streams SET version = version + 2 WHERE tenant = 'p4' AND target = 'c_4';
-- p5: a stream head that knows fewer
UPDATE headlessly.streams SET version = version - 1 WHERE tenant = 'p5' AND target = 'c_0';
-- p6: a checkpoint's count changed
UPDATE headlessly.checkpoints SET count = count + 1 WHERE tenant = 'p6';
-- p7: the kept digest names another hash
UPDATE kept SET digest = jsonb_set(digest, '{tenants,7,hash}', to_jsonb(repeat('ab', 32)));
SELECT digest->'tenants'->7->>'tenant' AS digest_changed_for FROM kept;
UPDATE pg_trigger t SET tgenabled = s.tgenabled FROM saved_triggers s WHERE t.oid = s.oid;
\c -
\pset null '(null)'
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) AS log_tampered FROM headlessly.events e \gset
:verify_both
-- the forged event is named by its id, the same both ways
SELECT tenant, event_id, problem FROM parallel_rows WHERE tenant = 'p2';

-- serial fallbacks, the same rows each: one tenant named (no workers)
SET client_min_messages = debug1;
SELECT tenant, ok, checked, target, version, seq, problem FROM headlessly.verify('p3');
-- no worker can be launched: the leader checks every tenant
SET client_min_messages = warning;
TRUNCATE parallel_rows;
SET client_min_messages = debug1;
SET max_parallel_workers = 0;
INSERT INTO parallel_rows SELECT * FROM headlessly.verify(NULL, (SELECT digest FROM kept)) WITH ORDINALITY;
SELECT count(*) AS differences FROM ((TABLE serial_rows EXCEPT ALL TABLE parallel_rows)
                                     UNION ALL (TABLE parallel_rows EXCEPT ALL TABLE serial_rows)) d;
RESET max_parallel_workers;
-- one worker: two participants, four tenants each
SET max_parallel_workers_per_gather = 1;
SELECT tenant, ok, problem FROM headlessly.verify() WHERE NOT ok ORDER BY tenant;
-- a log smaller than min_parallel_table_scan_size: serial
SET min_parallel_table_scan_size = '8MB';
SELECT count(*) AS tenants FROM headlessly.verify();
SET min_parallel_table_scan_size = 0;
-- 0 workers asked for: serial
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS tenants FROM headlessly.verify();
SET max_parallel_workers_per_gather = 3;
-- already in parallel mode: verify() called in a parallel worker itself
-- (debug_parallel_query, before PostgreSQL 16 force_parallel_mode)
SET client_min_messages = warning;
CREATE FUNCTION verify_count() RETURNS bigint LANGUAGE sql PARALLEL SAFE
    AS 'SELECT count(*) FROM headlessly.verify()';
SET client_min_messages = debug1;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false) AS forced;
SELECT verify_count() AS tenants;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'off', false) AS forced;
-- a caller under row security: SPI reads its rows, serial
SET client_min_messages = warning;
CREATE ROLE regress_hl_par_reader;
SELECT headlessly.grant_tenant('regress_hl_par_reader', 'p3', 'read');
GRANT USAGE ON SCHEMA headlessly TO regress_hl_par_reader;
GRANT SELECT ON headlessly.events, headlessly.streams, headlessly.checkpoints,
                headlessly.checkpoint_horizon TO regress_hl_par_reader;
SET client_min_messages = debug1;
SET ROLE regress_hl_par_reader;
SELECT tenant, ok, checked, target, version, seq, problem FROM headlessly.verify();
RESET ROLE;
-- verify changed nothing
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) = :'log_tampered' AS log_unchanged
  FROM headlessly.events e;
SELECT :'log_tampered' <> :'log_before' AS tampering_happened;
-- one tenant in the log: no worker has a tenant to check
SET client_min_messages = warning;
CREATE TABLE one_tenant_rows AS SELECT * FROM headlessly.verify('p0');
UPDATE pg_trigger SET tgenabled = 'D' WHERE oid IN (SELECT oid FROM saved_triggers);
\c -
DELETE FROM headlessly.events WHERE tenant <> 'p0';
DELETE FROM headlessly.streams WHERE tenant <> 'p0';
DELETE FROM headlessly.checkpoints WHERE tenant <> 'p0';
UPDATE pg_trigger t SET tgenabled = s.tgenabled FROM saved_triggers s WHERE t.oid = s.oid;
\c -
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 3;
CREATE TABLE one_tenant_log_rows (LIKE one_tenant_rows);
SET client_min_messages = debug1;
INSERT INTO one_tenant_log_rows SELECT * FROM headlessly.verify();
SET client_min_messages = warning;
SELECT count(*) AS differences FROM ((TABLE one_tenant_rows EXCEPT ALL TABLE one_tenant_log_rows)
                                     UNION ALL (TABLE one_tenant_log_rows EXCEPT ALL TABLE one_tenant_rows)) d;

-- two stream heads of one (new) tenant wrong: the one named is the first target
-- by its bytes, whichever order the heads are read in (here zz's head is
-- written, and tampered with, before aa's)
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('contact_touched', t, '{}', tenant => 'q0')
      FROM unnest(ARRAY['zz_first', 'aa_second', 'aa_second']) t) s;
UPDATE pg_trigger SET tgenabled = 'D' WHERE oid IN (SELECT oid FROM saved_triggers);
\c -
UPDATE headlessly.streams SET version = version + 2 WHERE tenant = 'q0' AND target = 'zz_first';
UPDATE headlessly.streams SET version = version - 1 WHERE tenant = 'q0' AND target = 'aa_second';
UPDATE pg_trigger t SET tgenabled = s.tgenabled FROM saved_triggers s WHERE t.oid = s.oid;
\c -
SELECT tenant, ok, target, version, problem FROM headlessly.verify('q0');

-- stream heads that do not match their events, one kind per tenant, the
-- same both ways: h1 a head set to version 0, h2 to a negative version,
-- h3 a head deleted (its events known to no head), h4 a head at version 0
-- for a target without events, h5 a head at version 2 for one without
SET client_min_messages = warning;
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('contact_touched', 'c_' || (i % 2), '{}', tenant => 'h' || (i % 5 + 1))
      FROM generate_series(1, 30) i) s;
UPDATE pg_trigger SET tgenabled = 'D' WHERE oid IN (SELECT oid FROM saved_triggers);
\c -
UPDATE headlessly.streams SET version = 0 WHERE tenant = 'h1' AND target = 'c_1';
UPDATE headlessly.streams SET version = -3 WHERE tenant = 'h2' AND target = 'c_0';
DELETE FROM headlessly.streams WHERE tenant = 'h3' AND target = 'c_1';
INSERT INTO headlessly.streams (tenant, target, version) VALUES ('h4', 'ghost', 0), ('h5', 'ghost', 2);
UPDATE pg_trigger t SET tgenabled = s.tgenabled FROM saved_triggers s WHERE t.oid = s.oid;
\c -
SET client_min_messages = warning;
\pset null '(null)'
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) AS heads_log FROM headlessly.events e \gset
SELECT md5(string_agg(s::text, '|' ORDER BY tenant, target)) AS heads_streams FROM headlessly.streams s \gset
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 0;
TRUNCATE serial_rows, parallel_rows;
INSERT INTO serial_rows SELECT * FROM headlessly.verify() WITH ORDINALITY;
SET max_parallel_workers_per_gather = 3;
SET client_min_messages = debug1;
INSERT INTO parallel_rows SELECT * FROM headlessly.verify() WITH ORDINALITY;
SET client_min_messages = warning;
SELECT tenant, ok, checked, target, version, seq, problem FROM parallel_rows
 WHERE tenant LIKE 'h%' ORDER BY ordinality;
SELECT count(*) AS differences FROM ((TABLE serial_rows EXCEPT ALL TABLE parallel_rows)
                                     UNION ALL (TABLE parallel_rows EXCEPT ALL TABLE serial_rows)) d;
-- one tenant named: the same rows
SELECT tenant, ok, checked, target, version, seq, problem FROM headlessly.verify('h3');
SELECT tenant, ok, checked, target, version, seq, problem FROM headlessly.verify('h4');
-- verify changed nothing
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) = :'heads_log' AS log_unchanged
  FROM headlessly.events e;
SELECT md5(string_agg(s::text, '|' ORDER BY tenant, target)) = :'heads_streams' AS heads_unchanged
  FROM headlessly.streams s;
-- the one head at version 0 that is no tampering: a before hook sees the
-- head its append has just locked, before the event is stored
SET max_parallel_workers_per_gather = 0;
CREATE FUNCTION verify_in_hook(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('verified', bool_and(ok)) FROM headlessly.verify('hb') $$;
SELECT headlessly.hook('hb_probe', 'before', 'verify_in_hook(jsonb)') AS probe_hook \gset
SELECT data, version FROM headlessly.events_append('hb_probe', 'fresh', '{}', tenant => 'hb');
SELECT headlessly.unhook(:probe_hook);
DROP FUNCTION verify_in_hook(jsonb);
SELECT tenant, ok, checked, target, version, problem FROM headlessly.verify('hb');

SET client_min_messages = warning;
REVOKE ALL ON headlessly.events, headlessly.streams, headlessly.checkpoints,
              headlessly.checkpoint_horizon FROM regress_hl_par_reader;
REVOKE USAGE ON SCHEMA headlessly FROM regress_hl_par_reader;
DROP FUNCTION verify_count();
DROP TABLE kept, saved_triggers, one_tenant_rows, one_tenant_log_rows, serial_rows, parallel_rows;
DROP EXTENSION headlessly_events CASCADE;
DROP OWNED BY regress_hl_par_reader;
DROP ROLE regress_hl_par_reader;
CREATE EXTENSION headlessly_events;
