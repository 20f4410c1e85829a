-- entities_as_of: every entity of a noun alive at a time, with a filter;
-- headlessly.entities and the indexes that serve both.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_entities';
SET headlessly.snapshot_interval = 3;

CREATE TEMP TABLE marks (name text PRIMARY KEY, at timestamptz);
INSERT INTO marks VALUES ('start', clock_timestamp());

SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Created", "target": "d1", "data": {"stage": "open", "amount": 100}},
  {"type": "Deal.Created", "target": "d2", "data": {"stage": "open", "amount": 200}},
  {"type": "Deal.Created", "target": "d3", "data": {"stage": "open", "amount": 300}},
  {"type": "Contact.Created", "target": "c1", "data": {"stage": "open"}}]');
INSERT INTO marks VALUES ('t1', clock_timestamp());
SELECT version FROM headlessly.events_append('Deal.Won', 'd1', '{"stage": "won"}');
SELECT version FROM headlessly.events_append('Deal.Lost', 'd2', '{"stage": "lost", "amount": null}');
SELECT version FROM headlessly.events_append('page_view', 'd3');
INSERT INTO marks VALUES ('t2', clock_timestamp());
SELECT version FROM headlessly.events_append('Deal.Deleted', 'd3');
SELECT version FROM headlessly.events_append('Deal.Created', 'd4', '{"stage": "won", "amount": 400}');
SELECT version FROM headlessly.events_append('Deal.Updated', 'd1', '{"amount": 150}');
SELECT version FROM headlessly.events_append('Deal.Updated', 'd1', '{"note": "upsell"}');
INSERT INTO marks VALUES ('t3', clock_timestamp());
SELECT version FROM headlessly.events_append('Deal.Reopened', 'd2', '{"stage": "open"}');
SELECT version FROM headlessly.events_append('Deal.Created', 'd3', '{"stage": "won", "amount": 1}');

SELECT m.name, x.target, x.version, x.state,
       x.created_at IS NOT NULL AS has_created, x.updated_at >= x.created_at AS updated_after_created
  FROM marks m, headlessly.entities_as_of('Deal', m.at) x
 ORDER BY m.at, x.target;

-- with filters, at several times
SELECT m.name, x.target, x.state
  FROM marks m, headlessly.entities_as_of('Deal', m.at, '{"stage": "won"}') x
 ORDER BY m.at, x.target;
SELECT m.name, array_agg(x.target ORDER BY x.target) AS open_deals
  FROM marks m, headlessly.entities_as_of('Deal', m.at, '{"stage": "open"}') x
 GROUP BY m.name ORDER BY m.name;

-- the present: at NULL is headlessly.entities
SELECT target, version, state FROM headlessly.entities_as_of('Deal') ORDER BY target;
SELECT (SELECT array_agg(x ORDER BY x.target) FROM headlessly.entities_as_of('Deal') x)
     = (SELECT array_agg(row(target COLLATE "default", version, state, created_at, updated_at)::record ORDER BY target)
          FROM headlessly.entities WHERE tenant = 'tt_entities' AND noun = 'Deal') AS same_as_entities;
-- and each row agrees with as_of at the same time
SELECT count(*) AS disagreements
  FROM marks m, headlessly.entities_as_of('Deal', m.at) x
 WHERE x.state IS DISTINCT FROM headlessly.as_of(x.target, m.at);
SELECT count(*) AS missing
  FROM marks m, (VALUES ('d1'), ('d2'), ('d3'), ('d4')) t(target)
 WHERE headlessly.as_of(t.target, m.at) IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM headlessly.entities_as_of('Deal', m.at) x WHERE x.target = t.target);

-- other nouns and tenants stay out
SELECT target FROM headlessly.entities_as_of('Contact', now());
SELECT count(*) FROM headlessly.entities_as_of('Deal', now(), tenant => 'nobody');
SELECT count(*) FROM headlessly.entities_as_of('NoSuchNoun', now());

-- invalid arguments
SELECT * FROM headlessly.entities_as_of(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.entities_as_of('Deal', now(), '[1]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS null_filter_matches_all FROM headlessly.entities_as_of('Deal', now(), NULL);

-- a noun's entities come from the (tenant, noun) index, the streams changed
-- after `at` from the log's (tenant, recorded_at) index; enough entities of
-- another noun that the plans below do not hang on costs
SELECT count(*) AS fillers FROM headlessly.events_append_batch(
    (SELECT jsonb_agg(jsonb_build_object('type', 'Filler.Created', 'target', 'filler_' || i,
                                         'tenant', 'tt_entities'))
       FROM generate_series(1, 2000) i));
ANALYZE headlessly.streams;
ANALYZE headlessly.events;
SET enable_seqscan = off;
-- the scans of a plan and their index conditions (how filters and subplans
-- are printed differs between PostgreSQL versions)
CREATE FUNCTION pg_temp.scans(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line ~ '(Scan|Index Cond)' THEN RETURN NEXT line; END IF;
    END LOOP;
END $$;
SELECT pg_temp.scans($$SELECT target FROM headlessly.entities
 WHERE tenant = 'tt_entities' AND noun = 'Deal' AND state @> '{"stage": "won"}'$$);
-- entities_as_of's two halves: heads unchanged since `at`, and the rest
EXPLAIN (COSTS OFF)
SELECT target FROM headlessly.streams
 WHERE tenant = 'tt_entities' AND noun = 'Deal' AND state IS NOT NULL
   AND state @> '{"stage": "won"}' AND last_recorded_at <= now();
EXPLAIN (COSTS OFF)
SELECT DISTINCT c.target FROM headlessly.events c
 WHERE c.tenant = 'tt_entities' AND c.recorded_at > now() AND c.target IS NOT NULL;
RESET enable_seqscan;
SELECT target FROM headlessly.entities WHERE state @> '{"stage": "won"}' AND tenant = 'tt_entities' ORDER BY target;

-- Streams changed after `at` are answered by undoing their last events from
-- the head where that is exact, else replayed: a JSON null from Created data
-- (a patch's "before" null is then ambiguous), a Deletion after `at`, more
-- events after `at` than are undone, and non-entity events in between.
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Lead.Created", "target": "l1", "data": {"a": 1, "b": null, "c": 3}},
  {"type": "Lead.Created", "target": "l2", "data": {"a": 1, "b": null}},
  {"type": "Lead.Created", "target": "l3", "data": {"a": 1}},
  {"type": "Lead.Created", "target": "l4", "data": {"a": 1}},
  {"type": "Lead.Created", "target": "l5", "data": {"a": 1}}]');
INSERT INTO marks VALUES ('t4', clock_timestamp());
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Lead.Updated", "target": "l1", "data": {"a": 2, "c": null}},
  {"type": "Lead.Updated", "target": "l2", "data": {"b": 5}},
  {"type": "Lead.Deleted", "target": "l3"},
  {"type": "Lead.Created", "target": "l3", "data": {"z": 1}},
  {"type": "Lead.Updated", "target": "l4", "data": {"a": 2}},
  {"type": "Lead.Updated", "target": "l4", "data": {"a": 3}},
  {"type": "Lead.Updated", "target": "l4", "data": {"a": 4}},
  {"type": "Lead.Updated", "target": "l4", "data": {"a": 5}},
  {"type": "Lead.Updated", "target": "l4", "data": {"a": 6}},
  {"type": "page_view", "target": "l5"},
  {"type": "Lead.Updated", "target": "l5", "data": {"a": 2}},
  {"type": "page_view", "target": "l5"}]');
SELECT x.target, x.version, x.state, x.created_at = x.updated_at AS never_updated,
       x.state = headlessly.as_of(x.target, m.at) AS same_as_as_of
  FROM marks m, headlessly.entities_as_of('Lead', m.at) x
 WHERE m.name = 't4' ORDER BY x.target;
SELECT target, version, state FROM headlessly.entities_as_of('Lead') ORDER BY target;
