\echo Use "ALTER EXTENSION headlessly_events UPDATE TO '0.2'" to load this file. \quit

-- Internals are not for direct use; every public function says what it does.
REVOKE ALL ON FUNCTION headlessly.append_only_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.capture_trigger() FROM PUBLIC;

COMMENT ON FUNCTION headlessly.unhook(bigint) IS
    'Remove a hook registered with headlessly.hook(); false if there was none with that id.';
COMMENT ON FUNCTION headlessly.uncapture(regclass) IS
    'Stop capturing a table; false if it was not captured.';

-- Streams: a head changed again in one transaction is written at commit, and
-- updating a head is HOT (no index on a column that appends change) ----------

DROP INDEX headlessly.streams_state_idx;
DROP INDEX headlessly.streams_noun_changed_idx;
CREATE INDEX streams_noun_idx
    ON headlessly.streams (tenant, noun) WHERE noun IS NOT NULL;
ALTER TABLE headlessly.streams SET (fillfactor = 80);

COMMENT ON TABLE headlessly.streams IS
    'Derived from headlessly.events: the head of every stream and the current state of live entities. A transaction that appends to a stream again writes its head when it commits; headlessly.heads shows it meanwhile.';

CREATE FUNCTION headlessly.pending_heads()
RETURNS SETOF headlessly.streams
AS 'MODULE_PATHNAME', 'headlessly_pending_heads'
LANGUAGE C STABLE PARALLEL RESTRICTED
ROWS 10;

COMMENT ON FUNCTION headlessly.pending_heads() IS
    'Stream heads this transaction has changed but not written yet (they are written at commit); empty in any other session.';

CREATE VIEW headlessly.heads AS
    SELECT s.tenant, s.target, s.version, s.last_recorded_at, s.noun, s.state,
           s.created_at, s.updated_at
      FROM headlessly.streams s
     WHERE (s.tenant, s.target) NOT IN (SELECT p.tenant, p.target FROM headlessly.pending_heads() p)
    UNION ALL
    SELECT p.tenant, p.target, p.version, p.last_recorded_at, p.noun, p.state,
           p.created_at, p.updated_at
      FROM headlessly.pending_heads() p;

COMMENT ON VIEW headlessly.heads IS
    'Every stream head as this transaction sees it: headlessly.streams, with the heads this transaction has not written yet in place of their rows.';

CREATE OR REPLACE VIEW headlessly.entities AS
    SELECT tenant, target, noun, version, state, created_at, updated_at
      FROM headlessly.heads
     WHERE state IS NOT NULL;

CREATE FUNCTION headlessly.streams_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_streams_changed'
LANGUAGE C;

CREATE TRIGGER streams_direct_change
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.streams
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.streams_changed();
ALTER TABLE headlessly.streams ENABLE ALWAYS TRIGGER streams_direct_change;
REVOKE ALL ON FUNCTION headlessly.streams_changed() FROM PUBLIC;

-- stats() reads the heads as the calling transaction sees them
CREATE OR REPLACE FUNCTION headlessly.stats()
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
