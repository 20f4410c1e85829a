-- verify() reads the log two ways: straight from the heap on the primary key
-- (a caller without row security, here the superuser) and through SPI with
-- the policies applied (a tenant role).  Both must give the same answer, on
-- rows of every shape: toasted data, NULL target, NULL optional columns, a
-- stream whose events span many pages, a row without its hash.
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
\pset null '(null)'

-- tenant vs_a: one stream of 300 versions interleaved with 300 events of
-- other streams and 60 without a target, so that it spans many pages
SELECT count(*) AS created FROM (
    SELECT headlessly.events_append('Contact.Created', t, '{}', tenant => 'vs_a')
      FROM unnest(ARRAY['long_stream', 'other_0', 'other_1', 'other_2', 'other_3',
                        'other_4', 'other_5', 'other_6']) t) s;
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('Contact.Updated', 'long_stream',
               jsonb_build_object('n', i, 'pad', repeat('x', 200)), tenant => 'vs_a'),
           headlessly.events_append('Contact.Updated', 'other_' || (i % 7),
               jsonb_build_object('n', i), tenant => 'vs_a'),
           CASE WHEN i % 5 = 0 THEN headlessly.events_append('page_view',
               data => jsonb_build_object('i', i), tenant => 'vs_a') END
      FROM generate_series(1, 300) i) s;
-- toasted data: 100 kB that does not compress, stored out of line
SELECT (headlessly.events_append('Document.Created', 'doc_1',
            jsonb_build_object('body', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3200) g)),
            tenant => 'vs_a')).version;
SELECT pg_column_size(data) > 50000 AS toasted_large,
       pg_column_size(data) < octet_length(data::text) AS stored_compressed
  FROM headlessly.events WHERE target = 'doc_1';
-- every optional column set, and tenant vs_b with a stream of its own
SELECT (headlessly.events_append('Contact.Created', 'c_b', '{"name": "B\u00e9"}',
            actor => 'agent_1', source => 'API', source_type => 'internal',
            external_event_id => 'ext-1', metadata => '{"m": [1, 2.50, null, true]}',
            tenant => 'vs_b')).version;
SELECT count(*) > 10 AS spans_many_pages FROM (
    SELECT DISTINCT (ctid::text::point)[0] FROM headlessly.events WHERE target = 'long_stream') p;
SELECT headlessly.checkpoint() AS checkpoints;
-- the next checkpoint finds what is new on events_xact_idx alone: an
-- aborted append's entry there widens what it reads, and changes nothing
BEGIN;
SELECT (headlessly.events_append('page_view', tenant => 'vs_b')).seq AS aborted_seq \gset
ROLLBACK;
SELECT (headlessly.events_append('page_view', tenant => 'vs_b')).seq > :aborted_seq AS after_it;
SELECT headlessly.checkpoint() AS checkpoints;
SELECT number, count, first_seq = last_seq AS one_event, first_seq > :aborted_seq AS after_aborted,
       seqs = int8multirange(int8range(first_seq, last_seq + 1)) AS seqs_exact
  FROM headlessly.checkpoints WHERE tenant = 'vs_b' ORDER BY number;

-- the superuser reads directly; tenant roles through their policies
CREATE ROLE regress_hl_vs_a;
CREATE ROLE regress_hl_vs_plain;
SELECT headlessly.grant_tenant('regress_hl_vs_a', 'vs_a', 'read');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'headlessly.events'::regclass;
GRANT USAGE ON SCHEMA headlessly TO regress_hl_vs_a, regress_hl_vs_plain;
GRANT SELECT ON headlessly.events, headlessly.streams, headlessly.checkpoints,
                headlessly.checkpoint_horizon TO regress_hl_vs_a, regress_hl_vs_plain;
SELECT tenant, ok, checked, target, version, event_id, seq, problem FROM headlessly.verify();
SELECT tenant, ok, checked FROM headlessly.verify('vs_b');
SET ROLE regress_hl_vs_a;
SELECT tenant, ok, checked, target, version, event_id, seq, problem FROM headlessly.verify();
-- naming another tenant is ZE008, as every tenant argument
\set VERBOSITY sqlstate
SELECT tenant, ok, checked FROM headlessly.verify('vs_b');
\set VERBOSITY default
RESET ROLE;
-- a role bound to no tenant reads every tenant, through the policies too
SET ROLE regress_hl_vs_plain;
SELECT tenant, ok, checked FROM headlessly.verify();
RESET ROLE;

-- tampering, with the log's triggers bypassed in pg_trigger as
-- 013_tamper_attacks does (each step in a new session, which sees it)
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) AS log_before FROM headlessly.events e \gset
UPDATE pg_trigger SET tgenabled = 'D'
 WHERE tgrelid = 'headlessly.events'::regclass
   AND tgname IN ('headlessly_append_only', 'headlessly_append_only_row', 'events_append');
\c -
-- one byte of the toasted value changed
UPDATE headlessly.events SET data = jsonb_set(data, '{body}', to_jsonb('y' || substr(data->>'body', 2)))
 WHERE target = 'doc_1';
\c -
SELECT seq AS toasted_seq, id AS toasted_id FROM headlessly.events WHERE target = 'doc_1' \gset
-- that event is named, both ways
SELECT tenant, ok, target, version, event_id = :'toasted_id' AS names_it, seq = :toasted_seq AS at_its_seq,
       problem
  FROM headlessly.verify() ORDER BY tenant;
SET ROLE regress_hl_vs_a;
SELECT tenant, ok, target, version, event_id = :'toasted_id' AS names_it, seq = :toasted_seq AS at_its_seq,
       problem
  FROM headlessly.verify();
RESET ROLE;
-- an earlier row without its hash (as a 0.1-era row the upgrade did not
-- hash would be) comes first in seq order
UPDATE headlessly.events SET hash = NULL WHERE target = 'long_stream' AND version = 250;
UPDATE pg_trigger SET tgenabled = 'A'
 WHERE tgrelid = 'headlessly.events'::regclass
   AND tgname IN ('headlessly_append_only', 'headlessly_append_only_row', 'events_append');
\c -
\pset null '(null)'
SELECT seq AS nulled_seq FROM headlessly.events WHERE target = 'long_stream' AND version = 250 \gset
SELECT tenant, ok, target, version, seq = :nulled_seq AS at_its_seq, problem
  FROM headlessly.verify() ORDER BY tenant;
SET ROLE regress_hl_vs_a;
SELECT tenant, ok, target, version, seq = :nulled_seq AS at_its_seq, problem
  FROM headlessly.verify('vs_a');
RESET ROLE;
-- the guard is back
\set VERBOSITY sqlstate
UPDATE headlessly.events SET hash = NULL WHERE target = 'doc_1';
\set VERBOSITY default
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) AS log_tampered FROM headlessly.events e \gset
SELECT tenant, ok, checked, problem FROM headlessly.verify('vs_b');
-- verify changed nothing
SELECT md5(string_agg(e::text, '|' ORDER BY seq)) = :'log_tampered' AS log_unchanged FROM headlessly.events e;
SELECT :'log_tampered' <> :'log_before' AS tampering_happened;

SET client_min_messages = warning;
REVOKE ALL ON headlessly.events, headlessly.streams, headlessly.checkpoints,
              headlessly.checkpoint_horizon FROM regress_hl_vs_a, regress_hl_vs_plain;
REVOKE USAGE ON SCHEMA headlessly FROM regress_hl_vs_a, regress_hl_vs_plain;
DROP EXTENSION headlessly_events CASCADE;
DROP OWNED BY regress_hl_vs_a, regress_hl_vs_plain;
DROP ROLE regress_hl_vs_a, regress_hl_vs_plain;
CREATE EXTENSION headlessly_events;
