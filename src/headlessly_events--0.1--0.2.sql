\echo Use "ALTER EXTENSION headlessly_events UPDATE TO '0.2'" to load this file. \quit

-- Internals are not for direct use; every public function says what it does.
REVOKE ALL ON FUNCTION headlessly.capture_trigger() FROM PUBLIC;

COMMENT ON FUNCTION headlessly.unhook(bigint) IS
    'Remove a hook registered with headlessly.hook(); false if there was none with that id.';
COMMENT ON FUNCTION headlessly.uncapture(regclass) IS
    'Stop capturing a table; false if it was not captured.';

-- Hooks ----------------------------------------------------------------------

-- Rows written without hook() (an INSERT or UPDATE of the registry, a
-- restore) get the checks hook() makes: pattern, phase, handler signature.
CREATE FUNCTION headlessly.hook_registry_check()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_hook_registry_check'
LANGUAGE C;

CREATE TRIGGER hook_registry_check
    BEFORE INSERT OR UPDATE ON headlessly.hook_registry
    FOR EACH ROW EXECUTE FUNCTION headlessly.hook_registry_check();
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_check;

REVOKE ALL ON FUNCTION headlessly.hook_registry_check() FROM PUBLIC;

-- Append-only guard (ddl-guard) ------------------------------------------------

COMMENT ON FUNCTION headlessly.make_append_only(regclass) IS
    'Refuse UPDATE, DELETE, TRUNCATE and the DDL that could change its rows or remove its guard on a table, for every role; INSERT stays allowed.';

-- Every guarded table, the log included, also gets the row-level guard, which
-- fires for rows reached through a parent or a partitioned table.
SELECT headlessly.make_append_only(guarded.tgrelid::pg_catalog.regclass)
  FROM (SELECT DISTINCT tgrelid FROM pg_catalog.pg_trigger
         WHERE tgfoid OPERATOR(pg_catalog.=) 'headlessly.append_only_guard()'::pg_catalog.regprocedure) guarded;

-- The event trigger runs for every command the guard now checks.
DROP EVENT TRIGGER headlessly_guard_ddl;
CREATE EVENT TRIGGER headlessly_guard_ddl
    ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER SEQUENCE', 'ALTER VIEW', 'ALTER SCHEMA',
                 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER TRIGGER',
                 'ALTER EXTENSION', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'CREATE SCHEMA',
                 'CREATE TRIGGER', 'CREATE RULE', 'CREATE FUNCTION', 'CREATE PROCEDURE',
                 'CREATE VIEW', 'DROP TRIGGER', 'DROP INDEX', 'DROP SEQUENCE')
    EXECUTE FUNCTION headlessly.guard_ddl();
ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS;

-- log ------------------------------------------------------------------------

-- seq is no longer an identity column: the log's trigger draws it from a
-- plain sequence once the stream is locked, and refuses one chosen by the
-- inserting role.  The new sequence takes over the identity's position and
-- name.  ALTER EXTENSION ... DROP forgets a table's or sequence's dump
-- configuration (a plain DROP would leave its OID behind in extconfig).
CREATE SEQUENCE headlessly.events_seq_next AS bigint CACHE 1;
SELECT pg_catalog.setval('headlessly.events_seq_next', last_value, is_called)
  FROM headlessly.events_seq_seq;
ALTER EXTENSION headlessly_events DROP SEQUENCE headlessly.events_seq_seq;
ALTER TABLE headlessly.events ALTER COLUMN seq DROP IDENTITY;
ALTER SEQUENCE headlessly.events_seq_next RENAME TO events_seq_seq;
ALTER SEQUENCE headlessly.events_seq_seq OWNED BY headlessly.events.seq;
COMMENT ON COLUMN headlessly.events.seq IS
    'Position in the whole log, assigned by the log once the event''s stream is locked: along a stream, seq order is version order.';
COMMENT ON SEQUENCE headlessly.events_seq_seq IS
    'Source of headlessly.events.seq; only the log''s trigger draws from it.';

-- Idempotency keys have one store, the log's own unique index.
ALTER EXTENSION headlessly_events DROP TABLE headlessly.event_keys;
DROP TABLE headlessly.event_keys;

-- Restoring replays the log through its trigger, which rebuilds the derived
-- tables: they are no longer dumped (dropping a table from the extension and
-- adding it back forgets its dump configuration).  The log is dumped with
-- each stream in version order.
ALTER EXTENSION headlessly_events DROP TABLE headlessly.streams;
ALTER EXTENSION headlessly_events ADD TABLE headlessly.streams;
ALTER EXTENSION headlessly_events DROP TABLE headlessly.snapshots;
ALTER EXTENSION headlessly_events ADD TABLE headlessly.snapshots;
SELECT pg_catalog.pg_extension_config_dump('headlessly.events',
    'ORDER BY CASE WHEN target IS NULL THEN seq'
    ' ELSE pg_catalog.min(seq) OVER (PARTITION BY tenant, target ORDER BY version DESC) END,'
    ' version');
SELECT pg_catalog.pg_extension_config_dump('headlessly.events_seq_seq', '');

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

-- log: the appending transaction --------------------------------------------

-- Events appended before the update have no recorded transaction: '0' sorts
-- them before every later one, which is their true order.
ALTER TABLE headlessly.events ADD COLUMN xact_id xid8 NOT NULL DEFAULT '0';
ALTER TABLE headlessly.events ALTER COLUMN xact_id DROP DEFAULT;
COMMENT ON COLUMN headlessly.events.xact_id IS
    'The appending top-level transaction (pg_current_xact_id()), set by the log: events are handed out and sealed in (xact_id, seq) order once every older transaction has ended. A restored event has the restoring transaction''s.';
CREATE INDEX events_xact_idx ON headlessly.events (xact_id, seq);

-- delivery: subscriptions, pull consumers, after_commit hooks, NOTIFY -------

-- hook() takes the phase after_commit and a fourth argument, max_attempts
-- (with a default: 3-argument calls keep working).  CREATE OR REPLACE
-- cannot add an argument, so the function is dropped and created again.
ALTER TABLE headlessly.hook_registry DROP CONSTRAINT hook_registry_phase_check;
ALTER TABLE headlessly.hook_registry ADD CONSTRAINT hook_registry_phase_check
    CHECK (phase IN ('before', 'after', 'after_commit'));
DROP FUNCTION headlessly.hook(text, text, regprocedure);
CREATE FUNCTION headlessly.hook(pattern text, phase text, handler regprocedure,
                                max_attempts integer DEFAULT 10)
RETURNS bigint
AS 'MODULE_PATHNAME', 'headlessly_hook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.hook(text, text, regprocedure, integer) IS
    'Run handler(event jsonb) RETURNS jsonb before or after each appended event whose type matches pattern, in its transaction, or after_commit: once it has committed, as the registering role, retried up to max_attempts.';

-- Every subscription: pull consumers, webhooks, after_commit hooks.  Written
-- only by the extension's functions, which run as the log's owner; other
-- roles read it through subscription_status() or the columns granted below
-- (never secret).
CREATE TABLE headlessly.subscriptions (
    name         text COLLATE "C" PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('webhook', 'hook', 'pull')),
    pattern      text NOT NULL DEFAULT '*',
    target       text COLLATE "C",
    tenant       text COLLATE "C",
    url          text,
    headers      jsonb NOT NULL DEFAULT '{}',
    secret       text,
    format       text NOT NULL DEFAULT 'event' CHECK (format IN ('event', 'posthog', 'ga4')),
    notify       boolean NOT NULL DEFAULT false,
    max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts >= 1),
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'disabled')),
    hook_id      bigint UNIQUE REFERENCES headlessly.hook_registry (id) ON DELETE CASCADE,
    owner        regrole NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    start_xact   xid8,
    start_seq    bigint NOT NULL,
    CONSTRAINT subscriptions_name_check CHECK (octet_length(name) BETWEEN 1 AND 63),
    CONSTRAINT subscriptions_kind_shape CHECK ((kind = 'webhook') = (url IS NOT NULL)
                                                AND (kind = 'hook') = (hook_id IS NOT NULL))
);

COMMENT ON TABLE headlessly.subscriptions IS
    'Subscriptions to the log: pull consumers, webhooks and after_commit hooks; change them with headlessly.subscribe(), unsubscribe(), pause() and resume().';

-- Where each member of a subscription has acked through, in (xact_id, seq)
-- order.  A position restored from a dump has no xact_id: another
-- cluster's transaction ids mean nothing here, so it resumes after acked_seq.
CREATE TABLE headlessly.subscription_positions (
    subscription text COLLATE "C" NOT NULL
                 REFERENCES headlessly.subscriptions (name) ON DELETE CASCADE,
    member       integer NOT NULL,
    members      integer NOT NULL,
    xact_id      xid8,
    seq          bigint NOT NULL,
    acked_at     timestamptz,
    PRIMARY KEY (subscription, member),
    CHECK (members >= 1 AND member >= 0 AND member < members)
);

COMMENT ON TABLE headlessly.subscription_positions IS
    'Where each member of each subscription has acked through; moved by headlessly.ack(), nack() and delivery rounds.';

-- One row per (subscription, event) that needed more than a plain read.
CREATE TABLE headlessly.deliveries (
    subscription    text COLLATE "C" NOT NULL
                    REFERENCES headlessly.subscriptions (name) ON DELETE CASCADE,
    event_id        text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL,
    tenant          text COLLATE "C" NOT NULL,
    target          text COLLATE "C",
    member          integer NOT NULL DEFAULT 0,
    members         integer NOT NULL DEFAULT 1,
    attempts        integer NOT NULL DEFAULT 0,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    http_status     integer,
    error           text,
    duration_ms     integer,
    last_attempt_at timestamptz,
    next_attempt_at timestamptz,
    PRIMARY KEY (subscription, event_id)
);
CREATE INDEX deliveries_due_idx ON headlessly.deliveries (subscription, member, seq)
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_target_idx ON headlessly.deliveries (subscription, tenant, target, seq)
    WHERE status IN ('pending', 'failed');

COMMENT ON TABLE headlessly.deliveries IS
    'Deliveries that needed more than a plain read: retries, held events, dead letters; delivered rows are kept for headlessly.delivery_retention.';

CREATE VIEW headlessly.dead_letters AS
    SELECT subscription, event_id, seq, tenant, target, attempts, http_status, error,
           duration_ms, last_attempt_at
      FROM headlessly.deliveries
     WHERE status = 'dead';

COMMENT ON VIEW headlessly.dead_letters IS
    'Events whose delivery failed headlessly.subscriptions.max_attempts times; headlessly.redeliver() puts them back.';

SELECT pg_catalog.pg_extension_config_dump('headlessly.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.subscription_positions', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.deliveries', '');

-- Everyone may see which subscriptions exist, never a secret.
REVOKE ALL ON headlessly.subscriptions FROM PUBLIC;
GRANT SELECT (name, kind, pattern, target, tenant, url, headers, format, notify,
              max_attempts, state, hook_id, owner, created_at)
    ON headlessly.subscriptions TO PUBLIC;

-- A position that arrives without our functions (a restore) forgets its
-- transaction id, which belongs to another cluster: it resumes after its
-- seq.  Every backend's NOTIFY cache hears of subscription changes.
CREATE FUNCTION headlessly.restored_position_check()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_restored_position_check'
LANGUAGE C;

CREATE TRIGGER subscription_positions_check
    BEFORE INSERT ON headlessly.subscription_positions
    FOR EACH ROW EXECUTE FUNCTION headlessly.restored_position_check('xact_id');
ALTER TABLE headlessly.subscription_positions ENABLE ALWAYS TRIGGER subscription_positions_check;

CREATE TRIGGER subscriptions_check
    BEFORE INSERT ON headlessly.subscriptions
    FOR EACH ROW EXECUTE FUNCTION headlessly.restored_position_check('start_xact');
ALTER TABLE headlessly.subscriptions ENABLE ALWAYS TRIGGER subscriptions_check;

CREATE FUNCTION headlessly.subscriptions_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_subscriptions_changed'
LANGUAGE C;

CREATE TRIGGER subscriptions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.subscriptions_changed();
ALTER TABLE headlessly.subscriptions ENABLE ALWAYS TRIGGER subscriptions_changed;

REVOKE ALL ON FUNCTION headlessly.restored_position_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.subscriptions_changed() FROM PUBLIC;

CREATE FUNCTION headlessly.delivery_horizon()
RETURNS xid8
AS 'MODULE_PATHNAME', 'headlessly_delivery_horizon'
LANGUAGE C STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION headlessly.delivery_horizon() IS
    'The oldest transaction other than this one still running: events of transactions below it (xact_id < horizon) have all committed or rolled back, and are what subscriptions hand out.';

CREATE FUNCTION headlessly.type_matches(type text, pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_type_matches'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.type_matches(text, text) IS
    'Whether an event type matches a pattern as hooks and subscriptions take them: an exact type, Noun.*, *.Verbed or *.';

CREATE FUNCTION headlessly.group_member(tenant text, key text, members integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'headlessly_group_member'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.group_member(text, text, integer) IS
    'The member of a consumer group of that size that reads the events of (tenant, key): key is the target, or the event id for events without one.';

CREATE FUNCTION headlessly.subscribe(
    name         text,
    pattern      text        DEFAULT '*',
    target       text        DEFAULT NULL,
    tenant       text        DEFAULT NULL,
    url          text        DEFAULT NULL,
    headers      jsonb       DEFAULT '{}',
    secret       text        DEFAULT NULL,
    format       text        DEFAULT 'event',
    notify       boolean     DEFAULT false,
    start_at     text        DEFAULT 'now',
    max_attempts integer     DEFAULT 10)
RETURNS headlessly.subscriptions
AS 'MODULE_PATHNAME', 'headlessly_subscribe'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.subscribe(text, text, text, text, text, jsonb, text, text, boolean, text, integer) IS
    'Subscribe to the events matching pattern (and target, tenant): a pull consumer, or a webhook with url; notify => true also sends each with NOTIFY on channel name at commit. Returns the row, with its secret.';

CREATE FUNCTION headlessly.unsubscribe(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_unsubscribe'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.unsubscribe(text) IS
    'Remove a subscription with its positions and deliveries; false if there was none of that name.';

CREATE FUNCTION headlessly.pause(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_pause'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.pause(text) IS
    'Stop delivering to a subscription until headlessly.resume(); its position stays.';

CREATE FUNCTION headlessly.resume(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_resume'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.resume(text) IS
    'Deliver to a paused or disabled subscription again, from where it stopped.';

CREATE FUNCTION headlessly.read(name text, max_events integer DEFAULT 100,
                                member integer DEFAULT 0, members integer DEFAULT 1,
                                wait interval DEFAULT '0')
RETURNS SETOF headlessly.events
AS 'MODULE_PATHNAME', 'headlessly_read'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION headlessly.read(text, integer, integer, integer, interval) IS
    'The next events of a pull subscription after this member''s acked position, in (xact_id, seq) order, due retries first; the same again until acked. wait: poll until some arrive or the interval passes.';

CREATE FUNCTION headlessly.ack(name text, seq bigint, member integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_ack'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.ack(text, bigint, integer) IS
    'Move this member''s position through the event with that seq: it and everything before it are done.';

CREATE FUNCTION headlessly.nack(name text, seq bigint, error text, member integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_nack'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.nack(text, bigint, text, integer) IS
    'Ack through the event with that seq, but have that one event read again after a backoff, until max_attempts; then it is a dead letter.';

CREATE FUNCTION headlessly.redeliver(name text, event_id text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'headlessly_redeliver'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.redeliver(text, text) IS
    'Put a subscription''s dead letters (or the one of that event) back to be delivered now; returns how many.';

CREATE FUNCTION headlessly.replay(name text, from_time timestamptz)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_replay'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.replay(text, timestamptz) IS
    'Move every member of a subscription back so that events recorded from from_time on are delivered again.';

CREATE FUNCTION headlessly.subscription_status()
RETURNS TABLE (name text, kind text, state text, acked_seq bigint, lag_events bigint,
               oldest_pending_age interval, pending bigint, dead bigint, delivered bigint,
               last_error text, last_delivered_at timestamptz)
AS 'MODULE_PATHNAME', 'headlessly_subscription_status'
LANGUAGE C STABLE;

COMMENT ON FUNCTION headlessly.subscription_status() IS
    'Each subscription the caller may act for: its kind, state, position, lag and deliveries.';

CREATE FUNCTION headlessly.deliver(max_events integer DEFAULT 1000)
RETURNS integer
AS 'MODULE_PATHNAME', 'headlessly_deliver'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.deliver(integer) IS
    'Run one delivery round of after_commit hooks and webhooks in this backend (for use without the background worker, e.g. from pg_cron); returns the deliveries attempted.';

-- deliver() runs other roles' handlers as them: the owner grants it.
REVOKE ALL ON FUNCTION headlessly.deliver(integer) FROM PUBLIC;
