-- events_list: filters, patterns, order, limits, and the indexes behind them.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_list';

SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Created", "target": "d1", "data": {"n": 1}, "actor": "alice"},
  {"type": "Deal.Updated", "target": "d1", "data": {"n": 2}, "actor": "bob"},
  {"type": "Contact.Created", "target": "c1", "actor": "alice"},
  {"type": "page_view", "target": "c1"},
  {"type": "invoice.paid"}]');
CREATE TEMP TABLE marks AS SELECT now() AS at;
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Closed", "target": "d1", "data": {"won": true}, "actor": "bob"},
  {"type": "Deal.Created", "target": "d2", "actor": "carol"},
  {"type": "Contact.Updated", "target": "c1", "data": {"x": 1}, "actor": "alice"}]');
SELECT version FROM headlessly.events_append('Deal.Created', 'd_other', tenant => 'tt_list_other');


SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS everything
  FROM headlessly.events_list();
SELECT bool_and(seq > prev) AS ordered_by_seq, count(*) AS n
  FROM (SELECT seq, lag(seq) OVER (ORDER BY ordinality) AS prev
          FROM headlessly.events_list() WITH ORDINALITY) x;
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS by_target
  FROM headlessly.events_list(target => 'd1');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS exact
  FROM headlessly.events_list(type => 'Deal.Created');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS noun
  FROM headlessly.events_list(type => 'Deal.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS verb
  FROM headlessly.events_list(type => '*.Created');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS free_standing
  FROM headlessly.events_list(type => 'invoice.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS star
  FROM headlessly.events_list(type => '*');
SELECT count(*) AS no_match FROM headlessly.events_list(type => 'Nothing.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS by_actor
  FROM headlessly.events_list(actor => 'alice');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS after_mark
  FROM headlessly.events_list(after => (SELECT at FROM marks));
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS before_mark
  FROM headlessly.events_list(before => (SELECT at FROM marks) + interval '1 microsecond');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS combined
  FROM headlessly.events_list(target => 'd1', type => 'Deal.*', actor => 'bob',
                              after => '-infinity', before => 'infinity');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS first_two
  FROM headlessly.events_list(max_rows => 2);
SELECT count(*) AS all_rows FROM headlessly.events_list(max_rows => NULL);
SELECT count(*) AS zero_rows FROM headlessly.events_list(max_rows => 0);
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS other_tenant
  FROM headlessly.events_list(tenant => 'tt_list_other');

-- One stream (a target, no other filter) is read without SQL: the same rows
-- as the SQL query, every column, in seq order, with and without a limit.
CREATE FUNCTION pg_temp.same_as_sql(p_target text, p_max int) RETURNS boolean
LANGUAGE sql AS $$
    -- in the order the function returns them
    SELECT coalesce((SELECT array_agg(l) FROM headlessly.events_list(target => p_target, max_rows => p_max) l),
                    '{}')::text
         = coalesce((SELECT array_agg(e ORDER BY e.seq) FROM
                        (SELECT * FROM headlessly.events e
                          WHERE e.tenant = current_setting('headlessly.tenant') AND e.target = p_target
                          ORDER BY e.seq LIMIT p_max) e), '{}')::text
$$;
SELECT pg_temp.same_as_sql('d1', NULL) AS all_of_d1, pg_temp.same_as_sql('d1', 2) AS two_of_d1,
       pg_temp.same_as_sql('d1', 0) AS none_of_d1, pg_temp.same_as_sql('nobody', NULL) AS no_stream,
       (SELECT count(*) FROM headlessly.events_list(target => 'd1', max_rows => 0)) AS zero_rows;
-- what this transaction appended, and another tenant's stream of that name
BEGIN;
SELECT version FROM headlessly.events_append('Deal.Updated', 'd1', '{"n": 3}');
SELECT pg_temp.same_as_sql('d1', NULL) AS own_append_seen,
       (SELECT max(version) FROM headlessly.events_list(target => 'd1')) AS last_version;
ROLLBACK;
SELECT string_agg(target || ':' || type, ', ') AS other_tenant_stream
  FROM headlessly.events_list(target => 'd_other', tenant => 'tt_list_other');
SELECT count(*) AS not_in_this_tenant FROM headlessly.events_list(target => 'd_other');

-- A stream whose seq order is not its version order (restored from a log
-- that drew seq before locking the stream, as 0.1 did): the rows still come
-- in seq order, and a limit takes the lowest seqs.
SELECT nextval('headlessly.events_seq_seq') + 100 AS hi \gset
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data)
VALUES (:hi, 'evt_list_r1', 'Lamp.Created', 'lamp', 1, '2021-01-01', '2021-01-01', '{"on": false}');
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
VALUES (:hi - 50, 'evt_list_r2', 'Lamp.Updated', 'lamp', 2, '2021-01-02', '2021-01-02', '{"on": true}', '{"on": false}');
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
VALUES (:hi + 10, 'evt_list_r3', 'Lamp.Updated', 'lamp', 3, '2021-01-03', '2021-01-03', '{"on": false}', '{"on": true}');
SELECT string_agg(version::text, ', ' ORDER BY ord) AS versions_in_seq_order
  FROM headlessly.events_list(target => 'lamp') WITH ORDINALITY l(seq, id, tenant, type, target, version, actor, source,
       source_type, external_event_id, occurred_at, recorded_at, data, before, metadata, raw_payload, session_id, xact_id, hash, ord);
SELECT string_agg(version::text, ', ') AS lowest_seq
  FROM headlessly.events_list(target => 'lamp', max_rows => 1);
SELECT pg_temp.same_as_sql('lamp', NULL) AS lamp_all, pg_temp.same_as_sql('lamp', 1) AS lamp_one,
       pg_temp.same_as_sql('lamp', 2) AS lamp_two;
-- A restored stream of target whose version v has seq seqs[v]
CREATE FUNCTION pg_temp.restore_stream(p_target text, p_seqs bigint[]) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
    SELECT p_seqs[v], 'evt_' || p_target || '_' || v,
           CASE WHEN v = 1 THEN 'Lamp.Created' ELSE 'Lamp.Noted' END, p_target, v,
           '2021-01-01'::timestamptz + v * interval '1 hour', '2021-01-01'::timestamptz + v * interval '1 hour',
           '{}', CASE WHEN v > 1 THEN '{}'::jsonb END
      FROM generate_series(1, cardinality(p_seqs)) v ORDER BY v;
    SELECT count(*) FROM headlessly.events WHERE target = p_target
$$;
-- 30 restored versions, seq rising with them but for version 25, which
-- comes before version 3 in seq order: a limit of 2 is untouched by it,
-- one of 3 or more takes it, however far past the limit it lies
SELECT nextval('headlessly.events_seq_seq') + 1000 AS lo \gset
SELECT pg_temp.restore_stream('lamp_far', ARRAY(SELECT CASE WHEN v = 25 THEN :lo + 25 ELSE :lo + 100 + v * 10 END
                                               FROM generate_series(1, 30) v ORDER BY v)) AS restored;
SELECT string_agg(version::text, ', ') AS first_five
  FROM headlessly.events_list(target => 'lamp_far', max_rows => 5);
SELECT bool_and(pg_temp.same_as_sql('lamp_far', n)) AS lamp_far_every_limit
  FROM generate_series(0, 31) n;
-- versions past the limit out of order among themselves only: the limit's
-- rows are still the lowest seqs
SELECT nextval('headlessly.events_seq_seq') + 1000 AS lo \gset
SELECT pg_temp.restore_stream('lamp_tail', ARRAY(SELECT :lo + CASE v WHEN 8 THEN 9 WHEN 9 THEN 8 ELSE v END
                                                FROM generate_series(1, 12) v ORDER BY v)) AS restored;
SELECT bool_and(pg_temp.same_as_sql('lamp_tail', n)) AS lamp_tail_every_limit
  FROM generate_series(0, 13) n;


-- Row-level security on the log, and a role without SELECT on it: what SQL
-- would do, the direct scan does not bypass.
CREATE ROLE list_reader;
GRANT USAGE ON SCHEMA headlessly TO list_reader;
SET ROLE list_reader;
SELECT count(*) FROM headlessly.events_list(target => 'd1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT SELECT ON headlessly.events TO list_reader;
ALTER TABLE headlessly.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY list_reader_sees ON headlessly.events AS RESTRICTIVE FOR SELECT TO list_reader
    USING (type OPERATOR(pg_catalog.<>) 'Deal.Closed');
SET ROLE list_reader;
SELECT string_agg(type, ', ') AS under_row_security FROM headlessly.events_list(target => 'd1');
RESET ROLE;
SELECT string_agg(type, ', ') AS owner_sees_all FROM headlessly.events_list(target => 'd1');
DROP POLICY list_reader_sees ON headlessly.events;
ALTER TABLE headlessly.events DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON headlessly.events FROM list_reader;
REVOKE ALL ON SCHEMA headlessly FROM list_reader;
DROP ROLE list_reader;

-- invalid arguments
SELECT * FROM headlessly.events_list(max_rows => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => 'Deal*');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => '*.*');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => '');
\echo :LAST_ERROR_SQLSTATE

-- The plans behind each filter (target, type, actor, time) are shown on a
-- large log in README.md ("Time travel"); tiny tables here would only show
-- sequential scans.

-- The same on a log of its own, whose lowest seqs are the stream's
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;
-- A limit stops the scan: of a stream of 2,000 events at the start of the
-- log, 10 are asked for.  Rows fetched through the log's indexes in this
-- transaction: a few dozen, not the stream (it used to read all of it to
-- know that no later version has a lower seq; the log by seq below the
-- tenth is shorter).
SELECT count(*) AS appended FROM (
    SELECT headlessly.events_append('bulb_noted', 'bulb', jsonb_build_object('n', i))
      FROM generate_series(1, 2000) i) s;
BEGIN;
SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid)) AS fetched_before
  FROM pg_index WHERE indrelid = 'headlessly.events'::regclass \gset
SELECT string_agg(version::text, ', ') AS first_ten
  FROM headlessly.events_list(target => 'bulb', max_rows => 10);
SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid)) - :fetched_before < 50 AS stopped_early
  FROM pg_index WHERE indrelid = 'headlessly.events'::regclass;
COMMIT;
SELECT pg_temp.same_as_sql('bulb', 10) AS bulb_ten, pg_temp.same_as_sql('bulb', NULL) AS bulb_all;
-- and on another, a restored stream whose version 300 has its lowest seq:
-- found by the scan of the log by seq (the shorter), not the stream's rest
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;
SELECT pg_temp.restore_stream('lamp_long', ARRAY(SELECT CASE WHEN v = 300 THEN 1 ELSE 100 + v END
                                                FROM generate_series(1, 300) v ORDER BY v)) AS restored;
SELECT string_agg(version::text, ', ') AS first_three
  FROM headlessly.events_list(target => 'lamp_long', max_rows => 3);
SELECT bool_and(pg_temp.same_as_sql('lamp_long', n)) AS lamp_long_limits
  FROM unnest(ARRAY[1, 2, 5, 299, 300, 301, NULL]) n;
