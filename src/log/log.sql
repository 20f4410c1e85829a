-- The log: events, stream heads, and appending --------------------------------

-- The log.  Every column the contract names, in this order; the C code finds
-- columns by name, so later versions may add columns at the end.  Names and
-- keys compare byte by byte (COLLATE "C"): they are identifiers, and a
-- linguistic collation made every index insertion call strcoll().
CREATE TABLE headlessly.events (
    seq               bigint NOT NULL,
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
    xact_id           xid8 NOT NULL,
    hash              bytea,
    CONSTRAINT events_pkey PRIMARY KEY (seq),
    CONSTRAINT events_id_key UNIQUE (id)
);

COMMENT ON TABLE headlessly.events IS
    'The immutable event log: append with headlessly.events_append(); rows are never updated or deleted.';
COMMENT ON COLUMN headlessly.events.seq IS
    'Position in the whole log, assigned by the log once the event''s stream is locked: along a stream, seq order is version order for events appended since 0.2 (not always for those appended by 0.1 or restored).';
COMMENT ON COLUMN headlessly.events.session_id IS
    'metadata->>''sessionId'', kept as a column so that sessions can be indexed and queried; set by the log.';

COMMENT ON COLUMN headlessly.events.xact_id IS
    'The transaction the event is ordered by, set by the log: the appending top-level transaction''s id (pg_current_xact_id()), or, if higher, that of the stream''s previous version, so that (xact_id, seq) order is version order along every stream. Events are handed out and sealed in (xact_id, seq) order once every transaction below their xact_id has ended. A restored event has the restoring transaction''s.';
COMMENT ON COLUMN headlessly.events.hash IS
    'SHA-256 of the previous hash of the event''s stream (32 zero bytes for version 1 and events without a target) and the event''s canonical form, set by the log; checked by headlessly.verify().';

-- seq comes from this sequence, taken by the log's trigger (not a column
-- default: a default cannot be told from a value the inserting role chose).
-- CACHE 1 is what keeps seq order equal to version order along a stream:
-- with cached values, a later append could draw a smaller number.
CREATE SEQUENCE headlessly.events_seq_seq AS bigint CACHE 1 OWNED BY headlessly.events.seq;

COMMENT ON SEQUENCE headlessly.events_seq_seq IS
    'Source of headlessly.events.seq; only the log''s trigger draws from it.';

-- One entity's stream in version order; also makes versions unique per stream.
CREATE UNIQUE INDEX events_stream_idx
    ON headlessly.events (tenant, target, version) WHERE target IS NOT NULL;
-- The idempotency key, and its only store: the log's trigger looks a key up
-- here before anything else of the append happens (idempotency.c).  NULLS
-- NOT DISTINCT: a key without a source is still a key.
CREATE UNIQUE INDEX events_idempotency_idx
    ON headlessly.events (tenant, source, external_event_id) NULLS NOT DISTINCT
    WHERE external_event_id IS NOT NULL;
-- What has committed since a position: consumers and checkpoints.
CREATE INDEX events_xact_idx ON headlessly.events (xact_id, seq);
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
    hash             bytea,
    xact_id          xid8,
    CONSTRAINT streams_pkey PRIMARY KEY (tenant, target)
)
-- room on each page for the next versions of its heads: updates stay HOT,
-- and a page is pruned (a pass over all its rows) once per some twenty
-- updates instead of once per few (fillfactor 80 cost 2% of an append)
WITH (fillfactor = 50);

COMMENT ON TABLE headlessly.streams IS
    'Derived from headlessly.events: the head of every stream and the current state of live entities. A transaction that appends to a stream again writes its head when it commits; headlessly.heads shows it meanwhile.';

COMMENT ON COLUMN headlessly.streams.xact_id IS
    'xact_id of the stream''s last event, which the next append is ordered after; NULL if it has none (appended before 0.2).';

-- A head that a transaction changes again after writing it is kept in that
-- transaction's memory and written once, at commit (many events to one
-- entity in one transaction then leave one or two row versions, not one per
-- event).  pending_heads() returns those heads; headlessly.heads shows them
-- in place of their rows, so readers in the same transaction see every append.
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

CREATE VIEW headlessly.entities AS
    SELECT tenant, target, noun, version, state, created_at, updated_at
      FROM headlessly.heads
     WHERE state IS NOT NULL;

COMMENT ON VIEW headlessly.entities IS
    'Current state of every live entity, one row each.';

-- A direct change of headlessly.streams makes the appending code look its
-- rows up again; in a transaction with unwritten heads it is refused.
CREATE FUNCTION headlessly.streams_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_streams_changed'
LANGUAGE C;

CREATE TRIGGER streams_direct_change
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.streams
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.streams_changed();
ALTER TABLE headlessly.streams ENABLE ALWAYS TRIGGER streams_direct_change;
REVOKE ALL ON FUNCTION headlessly.streams_changed() FROM PUBLIC;

-- pg_dump keeps the log and the position of its sequence.  Restoring replays
-- the log through its trigger, which validates every row and rebuilds the
-- derived tables (stream heads, snapshots), so those are not dumped.  The
-- trigger needs each stream in version order: the filter (pg_dump appends it
-- to its SELECT) lists events by seq, except that an event comes no later
-- than its stream's later versions (logs written before seq was assigned
-- under the stream lock may have two appends' seq the wrong way round).
SELECT pg_catalog.pg_extension_config_dump('headlessly.events',
    'ORDER BY CASE WHEN target IS NULL THEN seq'
    ' ELSE pg_catalog.min(seq) OVER (PARTITION BY tenant, target ORDER BY version DESC) END,'
    ' version');
SELECT pg_catalog.pg_extension_config_dump('headlessly.events_seq_seq', '');

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

-- Internals: not for direct use.
REVOKE ALL ON FUNCTION headlessly.events_before_insert() FROM PUBLIC;
