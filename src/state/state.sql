-- Time travel ----------------------------------------------------------------

-- A noun's entities (headlessly.entities by noun, entities_as_of).  The heads
-- have no index on a column that every append changes (state, version,
-- last_recorded_at), so that updating a head is a HOT update: no index
-- entries, and the page's old versions pruned as it goes.  The noun is set
-- once, by a stream's first Created.
CREATE INDEX streams_noun_idx
    ON headlessly.streams (tenant, noun) WHERE noun IS NOT NULL;

-- Snapshots of entity state, every headlessly.snapshot_interval versions.
-- Derived from the log: written by the append that reaches the version,
-- rebuilt by headlessly.rebuild_state(); readers never rely on them existing.
CREATE TABLE headlessly.snapshots (
    tenant      text COLLATE "C" NOT NULL,
    target      text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    state       jsonb,
    created_at  timestamptz,
    updated_at  timestamptz,
    CONSTRAINT snapshots_pkey PRIMARY KEY (tenant, target, version)
);
-- recorded_at never decreases along a stream: (recorded_at, version) order
-- is version order, and this index finds the nearest snapshot to a time.
CREATE INDEX snapshots_time_idx
    ON headlessly.snapshots (tenant, target, recorded_at, version);

COMMENT ON TABLE headlessly.snapshots IS
    'Derived from headlessly.events: entity state right after every headlessly.snapshot_interval-th version (state NULL: not alive then).';

-- Not dumped: restoring the log through its trigger writes them again, at
-- the restoring server's headlessly.snapshot_interval.

CREATE FUNCTION headlessly.as_of(target text, at timestamptz DEFAULT NULL, tenant text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'headlessly_as_of'
LANGUAGE C STABLE;

COMMENT ON FUNCTION headlessly.as_of(text, timestamptz, text) IS
    'The entity''s state after all of its events with recorded_at <= at; NULL if it did not exist then. at NULL: the present.';

CREATE FUNCTION headlessly.as_of_version(target text, version bigint, tenant text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'headlessly_as_of_version'
LANGUAGE C STABLE;

COMMENT ON FUNCTION headlessly.as_of_version(text, bigint, text) IS
    'The entity''s state right after the given version of its stream; NULL if it did not exist then.';

CREATE FUNCTION headlessly.entities_as_of(
    noun   text,
    at     timestamptz DEFAULT NULL,
    filter jsonb       DEFAULT '{}',
    tenant text        DEFAULT NULL)
RETURNS TABLE (target text, version bigint, state jsonb,
               created_at timestamptz, updated_at timestamptz)
AS 'MODULE_PATHNAME', 'headlessly_entities_as_of'
LANGUAGE C STABLE
ROWS 1000
-- its plans are cached and cheap to run but look expensive to the planner:
-- JIT-compiling them again at every call would cost more than it saves
SET jit = off;

COMMENT ON FUNCTION headlessly.entities_as_of(text, timestamptz, jsonb, text) IS
    'Every entity of the noun alive at `at` (NULL: now) whose state @> filter.';

CREATE FUNCTION headlessly.events_rollback(
    target  text,
    to_time timestamptz,
    actor   text DEFAULT NULL,
    tenant  text DEFAULT NULL)
RETURNS headlessly.events
AS 'MODULE_PATHNAME', 'headlessly_events_rollback'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.events_rollback(text, timestamptz, text, text) IS
    'Append the one event (Noun.Updated, Noun.Created or Noun.Deleted) after which the state equals as_of(target, to_time); metadata records rollbackTo and rollbackToVersion.';

CREATE FUNCTION headlessly.events_list(
    target   text        DEFAULT NULL,
    type     text        DEFAULT NULL,
    actor    text        DEFAULT NULL,
    after    timestamptz DEFAULT NULL,
    before   timestamptz DEFAULT NULL,
    max_rows int         DEFAULT 100,
    tenant   text        DEFAULT NULL)
RETURNS SETOF headlessly.events
AS 'MODULE_PATHNAME', 'headlessly_events_list'
LANGUAGE C STABLE
ROWS 100;

COMMENT ON FUNCTION headlessly.events_list(text, text, text, timestamptz, timestamptz, int, text) IS
    'Events of a tenant in seq order, filtered by target, type pattern (exact, Noun.*, *.Verbed, *), actor and recorded_at (after < recorded_at < before); at most max_rows (NULL: all).';

-- Time travel: administration -------------------------------------------------

CREATE FUNCTION headlessly.stats()
RETURNS TABLE (tenant text, noun text, events bigint, streams bigint, entities bigint,
               snapshots bigint, event_bytes bigint, last_recorded_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ev AS (
        SELECT e.tenant, s.noun, count(*) AS events,
               sum(pg_column_size(e.*))::bigint AS event_bytes,
               max(e.recorded_at) AS last_recorded_at
          FROM headlessly.events e
          LEFT JOIN headlessly.heads s ON s.tenant = e.tenant AND s.target = e.target
         GROUP BY e.tenant, s.noun),
    st AS (
        SELECT s.tenant, s.noun, count(*) AS streams, count(s.state) AS entities
          FROM headlessly.heads s
         GROUP BY s.tenant, s.noun),
    sn AS (
        SELECT x.tenant, s.noun, count(*) AS snapshots
          FROM headlessly.snapshots x
          JOIN headlessly.heads s ON s.tenant = x.tenant AND s.target = x.target
         GROUP BY x.tenant, s.noun),
    per_noun AS (
        SELECT ev.tenant, ev.noun, ev.events, coalesce(st.streams, 0) AS streams,
               coalesce(st.entities, 0) AS entities, coalesce(sn.snapshots, 0) AS snapshots,
               ev.event_bytes, ev.last_recorded_at
          FROM ev
          LEFT JOIN st ON st.tenant = ev.tenant AND st.noun IS NOT DISTINCT FROM ev.noun
          LEFT JOIN sn ON sn.tenant = ev.tenant AND sn.noun IS NOT DISTINCT FROM ev.noun)
    SELECT tenant, noun, events, streams, entities, snapshots, event_bytes, last_recorded_at
      FROM per_noun
    UNION ALL
    SELECT NULL, NULL, sum(events)::bigint, sum(streams)::bigint, sum(entities)::bigint,
           sum(snapshots)::bigint, pg_total_relation_size('headlessly.events'),
           max(last_recorded_at)
      FROM per_noun
     ORDER BY 1 NULLS LAST, 2 NULLS FIRST
$$;

COMMENT ON FUNCTION headlessly.stats() IS
    'Events, streams, live entities and snapshots per tenant and noun (noun NULL: events about no entity), with the bytes of their rows; the last row (tenant NULL) sums them and gives the log''s size on disk, indexes and TOAST included.';

CREATE FUNCTION headlessly.check_state(tenant text DEFAULT NULL)
RETURNS TABLE (tenant text, target text, version bigint, problem text,
               stored jsonb, expected jsonb)
AS 'MODULE_PATHNAME', 'headlessly_check_state'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION headlessly.check_state(text) IS
    'Replay the log (of one tenant, or all) and report every stream head or snapshot that differs from it; no rows: no drift.';

CREATE FUNCTION headlessly.rebuild_state(tenant text DEFAULT NULL)
RETURNS TABLE (streams bigint, heads_changed bigint, snapshots bigint)
AS 'MODULE_PATHNAME', 'headlessly_rebuild_state'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION headlessly.rebuild_state(text) IS
    'Rebuild stream heads (headlessly.entities) and snapshots from the log, for one tenant or all; appends wait meanwhile.';

REVOKE ALL ON FUNCTION headlessly.check_state(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.rebuild_state(text) FROM PUBLIC;
