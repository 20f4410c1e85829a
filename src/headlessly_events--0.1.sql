\echo Use "CREATE EXTENSION headlessly_events" to load this file. \quit

-- The log.  Every column the contract names, in this order; the C code finds
-- columns by name, so later versions may add columns at the end.  Names and
-- keys compare byte by byte (COLLATE "C"): they are identifiers, and a
-- linguistic collation made every index insertion call strcoll().
CREATE TABLE headlessly.events (
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    id                text COLLATE "C" NOT NULL,
    tenant            text COLLATE "C" NOT NULL,
    type              text COLLATE "C" NOT NULL,
    target            text COLLATE "C",
    version           bigint,
    actor             text COLLATE "C",
    source            text COLLATE "C",
    source_type       text COLLATE "C",
    external_event_id text COLLATE "C",
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL,
    data              jsonb NOT NULL DEFAULT '{}',
    before            jsonb,
    metadata          jsonb,
    raw_payload       text,
    session_id        text COLLATE "C",
    CONSTRAINT events_pkey PRIMARY KEY (seq),
    CONSTRAINT events_id_key UNIQUE (id)
);

COMMENT ON TABLE headlessly.events IS
    'The immutable event log: append with headlessly.events_append(); rows are never updated or deleted.';
COMMENT ON COLUMN headlessly.events.session_id IS
    'metadata->>''sessionId'', kept as a column so that sessions can be indexed and queried; set by the log.';

-- One entity's stream in version order; also makes versions unique per stream.
CREATE UNIQUE INDEX events_stream_idx
    ON headlessly.events (tenant, target, version) WHERE target IS NOT NULL;
-- The idempotency key.  NULLS NOT DISTINCT: a key without a source is still a key.
CREATE UNIQUE INDEX events_idempotency_idx
    ON headlessly.events (tenant, source, external_event_id) NULLS NOT DISTINCT
    WHERE external_event_id IS NOT NULL;
CREATE INDEX events_tenant_time_idx ON headlessly.events (tenant, recorded_at);
CREATE INDEX events_tenant_type_idx ON headlessly.events (tenant, type, recorded_at);
CREATE INDEX events_tenant_actor_idx
    ON headlessly.events (tenant, actor, recorded_at) WHERE actor IS NOT NULL;
CREATE INDEX events_tenant_session_idx
    ON headlessly.events (tenant, session_id, recorded_at) WHERE session_id IS NOT NULL;

-- Stream heads: the last version of every (tenant, target) and, for entities,
-- the current state.  Derived from the log, maintained by every append in the
-- same transaction; the row lock on a head is the lock on its stream.
CREATE TABLE headlessly.streams (
    tenant           text COLLATE "C" NOT NULL,
    target           text COLLATE "C" NOT NULL,
    version          bigint NOT NULL,
    last_recorded_at timestamptz,
    noun             text COLLATE "C",
    state            jsonb,
    created_at       timestamptz,
    updated_at       timestamptz,
    CONSTRAINT streams_pkey PRIMARY KEY (tenant, target)
);

COMMENT ON TABLE headlessly.streams IS
    'Derived from headlessly.events: the head of every stream and the current state of live entities.';

-- Idempotency claims.  INSERT ... ON CONFLICT on this table is how concurrent
-- appends of one key wait for each other without an unbounded number of locks.
CREATE TABLE headlessly.event_keys (
    tenant            text COLLATE "C" NOT NULL,
    source            text COLLATE "C",
    external_event_id text COLLATE "C" NOT NULL,
    seq               bigint NOT NULL,
    CONSTRAINT event_keys_pkey UNIQUE NULLS NOT DISTINCT (tenant, source, external_event_id)
);

COMMENT ON TABLE headlessly.event_keys IS
    'Derived from headlessly.events: one row per idempotency key, pointing at the stored event.';

CREATE VIEW headlessly.entities AS
    SELECT tenant, target, noun, version, state, created_at, updated_at
      FROM headlessly.streams
     WHERE state IS NOT NULL;

COMMENT ON VIEW headlessly.entities IS
    'Current state of every live entity, one row each.';

-- pg_dump keeps the data of these tables (and the position of the log's sequence).
SELECT pg_catalog.pg_extension_config_dump('headlessly.events', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.events_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.streams', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.event_keys', '');

-- Appending ------------------------------------------------------------------

CREATE FUNCTION headlessly.new_event_id()
RETURNS text
AS 'MODULE_PATHNAME', 'headlessly_new_event_id'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.new_event_id() IS
    'A fresh event id: evt_ followed by 18 URL-safe characters, roughly time-ordered.';

CREATE FUNCTION headlessly.events_append(
    type              text,
    target            text        DEFAULT NULL,
    data              jsonb       DEFAULT '{}',
    actor             text        DEFAULT NULL,
    tenant            text        DEFAULT NULL,
    source            text        DEFAULT NULL,
    source_type       text        DEFAULT NULL,
    external_event_id text        DEFAULT NULL,
    occurred_at       timestamptz DEFAULT NULL,
    expected_version  bigint      DEFAULT NULL,
    metadata          jsonb       DEFAULT NULL,
    raw_payload       text        DEFAULT NULL)
RETURNS headlessly.events
AS 'MODULE_PATHNAME', 'headlessly_events_append'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.events_append IS
    'Append one event; returns the stored row (the first one stored, for a repeated idempotency key).';

CREATE FUNCTION headlessly.events_append_batch(events jsonb)
RETURNS SETOF headlessly.events
AS 'MODULE_PATHNAME', 'headlessly_events_append_batch'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.events_append_batch(jsonb) IS
    'Append a JSON array of events, all or nothing; one row per element, in input order.';

-- The trigger that turns every INSERT into a proper append: defaults, checks,
-- idempotency, versions and entity state all happen here, whoever inserts.
CREATE FUNCTION headlessly.events_before_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_events_before_insert'
LANGUAGE C;

CREATE TRIGGER events_append
    BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION headlessly.events_before_insert();
ALTER TABLE headlessly.events ENABLE ALWAYS TRIGGER events_append;

-- Immutability ---------------------------------------------------------------

CREATE FUNCTION headlessly.append_only_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_append_only_guard'
LANGUAGE C;

COMMENT ON FUNCTION headlessly.append_only_guard() IS
    'Trigger that refuses UPDATE, DELETE and TRUNCATE with SQLSTATE ZE001.';

CREATE FUNCTION headlessly.make_append_only(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_make_append_only'
LANGUAGE C STRICT;

COMMENT ON FUNCTION headlessly.make_append_only(regclass) IS
    'Refuse UPDATE, DELETE, TRUNCATE and trigger disabling on a table, for every role; INSERT stays allowed.';

-- The log guards itself the same way users' tables are guarded.
SELECT headlessly.make_append_only('headlessly.events');

CREATE FUNCTION headlessly.guard_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'headlessly_guard_ddl'
LANGUAGE C;

CREATE EVENT TRIGGER headlessly_guard_ddl
    ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION headlessly.guard_ddl();
ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS;

-- Hooks ----------------------------------------------------------------------

CREATE TABLE headlessly.hook_registry (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern     text NOT NULL,
    phase       text NOT NULL CHECK (phase IN ('before', 'after')),
    handler     regprocedure NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  name NOT NULL DEFAULT current_user
);

COMMENT ON TABLE headlessly.hook_registry IS
    'Registered hooks; change it with headlessly.hook() and headlessly.unhook(), which tell every session.';

CREATE VIEW headlessly.hooks AS
    SELECT id, pattern, phase, handler,
           row_number() OVER (PARTITION BY phase ORDER BY id) AS position,
           created_at
      FROM headlessly.hook_registry;

COMMENT ON VIEW headlessly.hooks IS
    'Hooks in the order they run within their phase.';

CREATE TABLE headlessly.hook_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text NOT NULL,
    hook_id     bigint NOT NULL,
    handler     text NOT NULL,
    sqlstate    text NOT NULL,
    message     text NOT NULL,
    detail      text,
    hint        text,
    failed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX hook_failures_event_idx ON headlessly.hook_failures (event_id);

COMMENT ON TABLE headlessly.hook_failures IS
    'After hooks that raised: their work was undone, the append went on.';

SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_registry', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_registry_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_failures', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_failures_id_seq', '');

CREATE FUNCTION headlessly.hook(pattern text, phase text, handler regprocedure)
RETURNS bigint
AS 'MODULE_PATHNAME', 'headlessly_hook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.hook(text, text, regprocedure) IS
    'Run handler(event jsonb) RETURNS jsonb before or after each appended event whose type matches pattern.';

CREATE FUNCTION headlessly.unhook(id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_unhook'
LANGUAGE C VOLATILE STRICT;

-- The log's AFTER INSERT trigger (events_after_append, running this function)
-- exists only while after hooks are registered, so that appends without them
-- queue no trigger events; the registry's own trigger creates and drops it,
-- also when a restore loads the registry.
CREATE FUNCTION headlessly.events_after_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_events_after_insert'
LANGUAGE C;

CREATE FUNCTION headlessly.hook_registry_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_hook_registry_changed'
LANGUAGE C;

CREATE TRIGGER hook_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.hook_registry
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.hook_registry_changed();
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_changed;

-- Table capture -------------------------------------------------------------

CREATE FUNCTION headlessly.capture_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_capture_trigger'
LANGUAGE C;

CREATE FUNCTION headlessly.capture(rel regclass, noun text DEFAULT NULL, id_column name DEFAULT 'id')
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_capture'
LANGUAGE C;

COMMENT ON FUNCTION headlessly.capture(regclass, text, name) IS
    'Append Noun.Created, Noun.Updated (changed columns) and Noun.Deleted for every INSERT, UPDATE and DELETE of a table.';

CREATE FUNCTION headlessly.uncapture(rel regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_uncapture'
LANGUAGE C STRICT;

-- Privileges: the internals are not for direct use.
REVOKE ALL ON FUNCTION headlessly.events_before_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.events_after_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.hook_registry_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.guard_ddl() FROM PUBLIC;

-- Time travel ----------------------------------------------------------------

-- headlessly.entities WHERE state @> '{...}': the view's own predicate makes
-- this partial index usable.
CREATE INDEX streams_state_idx
    ON headlessly.streams USING gin (state jsonb_path_ops) WHERE state IS NOT NULL;
-- entities_as_of(noun, at): a noun's streams by when they last changed.  Those
-- unchanged since `at` answer from their head, only the others are replayed.
CREATE INDEX streams_noun_changed_idx
    ON headlessly.streams (tenant, noun, last_recorded_at) WHERE noun IS NOT NULL;

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

-- Dumped like the stream heads, so that a restored database reads the past
-- as fast as the original; as_of stays correct without them.
SELECT pg_catalog.pg_extension_config_dump('headlessly.snapshots', '');

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
          LEFT JOIN headlessly.streams s ON s.tenant = e.tenant AND s.target = e.target
         GROUP BY e.tenant, s.noun),
    st AS (
        SELECT s.tenant, s.noun, count(*) AS streams, count(s.state) AS entities
          FROM headlessly.streams s
         GROUP BY s.tenant, s.noun),
    sn AS (
        SELECT x.tenant, s.noun, count(*) AS snapshots
          FROM headlessly.snapshots x
          JOIN headlessly.streams s ON s.tenant = x.tenant AND s.target = x.target
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
