\echo Use "ALTER EXTENSION headlessly_events UPDATE TO '0.2'" to load this file. \quit

-- Every public function says what it does.

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

-- The handler becomes a schema-qualified signature in text: pg_upgrade
-- refuses a table with a regprocedure column (function OIDs are not kept).
-- The view that shows it stops depending on the column while it changes
-- (replaced, not dropped: user views over it and its grants stay).  0.1 let
-- a handler be dropped: such a regprocedure prints as its bare OID, which
-- becomes a well-formed name that resolves to nothing, so the hook reads as
-- a missing handler, as it did.  The UPDATE has the row trigger above
-- qualify every name that resolves and bind it to its function's owner.
CREATE OR REPLACE VIEW headlessly.hooks AS
    SELECT id, pattern, phase, NULL::pg_catalog.regprocedure AS handler,
           row_number() OVER (PARTITION BY phase ORDER BY id) AS position,
           created_at
      FROM headlessly.hook_registry;
ALTER TABLE headlessly.hook_registry ALTER COLUMN handler TYPE text
    USING (CASE WHEN handler::pg_catalog.text OPERATOR(pg_catalog.~) '^[0-9]+$'
                THEN 'pg_catalog."dropped handler ' OPERATOR(pg_catalog.||) handler::pg_catalog.oid::pg_catalog.text
                     OPERATOR(pg_catalog.||) '"(pg_catalog.jsonb)'
                ELSE handler::pg_catalog.text END);
ALTER TABLE headlessly.hook_registry ADD COLUMN handler_owner regrole;
UPDATE headlessly.hook_registry SET handler = handler
 WHERE pg_catalog.to_regprocedure(handler) IS NOT NULL;

COMMENT ON COLUMN headlessly.hook_registry.handler IS
    'The handler function, schema-qualified with its argument types (text rather than regprocedure, which pg_upgrade refuses); a name written here is resolved under the writer''s search_path and stored qualified.';

COMMENT ON COLUMN headlessly.hook_registry.handler_owner IS
    'The owner of the handler function when the hook was registered, set by the registry''s row trigger; a function of that name owned by another role is no handler (it would run as every appending role).';

CREATE OR REPLACE VIEW headlessly.hooks AS
    SELECT r.id, r.pattern, r.phase,
           (SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
             WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(r.handler)
               AND p.proowner OPERATOR(pg_catalog.=) r.handler_owner) AS handler,
           row_number() OVER (PARTITION BY r.phase ORDER BY r.id) AS position,
           r.created_at
      FROM headlessly.hook_registry r;

COMMENT ON VIEW headlessly.hooks IS
    'Hooks in the order they run within their phase.';

-- Append-only guard (ddl-guard) ------------------------------------------------

COMMENT ON FUNCTION headlessly.make_append_only(regclass) IS
    'Refuse UPDATE, DELETE, TRUNCATE and the DDL that could change its rows or remove its guard on a table, for every role; INSERT stays allowed.';

-- Every guarded table, the log included, also gets the row-level guard, which
-- fires for rows reached through a parent or a partitioned table.
SELECT headlessly.make_append_only(guarded.tgrelid::pg_catalog.regclass)
  FROM (SELECT DISTINCT tgrelid FROM pg_catalog.pg_trigger
         WHERE tgfoid OPERATOR(pg_catalog.=) 'headlessly.append_only_guard()'::pg_catalog.regprocedure) guarded;

-- The event trigger runs for every command the guard now checks (ALTER TYPE:
-- renaming an enum label or attribute of a type a guarded table holds).
DROP EVENT TRIGGER headlessly_guard_ddl;
CREATE EVENT TRIGGER headlessly_guard_ddl
    ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER SEQUENCE', 'ALTER VIEW', 'ALTER SCHEMA',
                 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER TRIGGER',
                 'ALTER EXTENSION', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'CREATE SCHEMA',
                 'CREATE TRIGGER', 'CREATE RULE', 'CREATE FUNCTION', 'CREATE PROCEDURE',
                 'CREATE VIEW', 'DROP TRIGGER', 'DROP INDEX', 'DROP SEQUENCE', 'ALTER TYPE')
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
    'Position in the whole log, assigned by the log once the event''s stream is locked: along a stream, seq order is version order for events appended since 0.2 (not always for those appended by 0.1 or restored).';
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
ALTER TABLE headlessly.streams SET (fillfactor = 50);

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
    'The transaction the event is ordered by, set by the log: the appending top-level transaction''s id (pg_current_xact_id()), or, if higher, that of the stream''s previous version, so that (xact_id, seq) order is version order along every stream. Events are handed out and sealed in (xact_id, seq) order once every transaction below their xact_id has ended. A restored event has the restoring transaction''s.';
CREATE INDEX events_xact_idx ON headlessly.events (xact_id, seq);

-- tamper: event hashes, checkpoints, verify ------------------------------------

-- Every event carries its hash, and every stream head its last event's.
ALTER TABLE headlessly.events ADD COLUMN hash bytea;
COMMENT ON COLUMN headlessly.events.hash IS
    'SHA-256 of the previous hash of the event''s stream (32 zero bytes for version 1 and events without a target) and the event''s canonical form, set by the log; checked by headlessly.verify().';
ALTER TABLE headlessly.streams ADD COLUMN hash bytea;
-- pending_heads() returns rows of headlessly.streams: the views over it take
-- the new column
CREATE OR REPLACE VIEW headlessly.heads AS
    SELECT s.tenant, s.target, s.version, s.last_recorded_at, s.noun, s.state,
           s.created_at, s.updated_at
      FROM headlessly.streams s
     WHERE (s.tenant, s.target) NOT IN (SELECT p.tenant, p.target FROM headlessly.pending_heads() p)
    UNION ALL
    SELECT p.tenant, p.target, p.version, p.last_recorded_at, p.noun, p.state,
           p.created_at, p.updated_at
      FROM headlessly.pending_heads() p;

-- The events appended so far get their hashes, each stream in version order.
-- Their rows are rewritten once, here, with the guards set aside for that
-- one statement (the extension's own scripts may; nothing else can).
CREATE FUNCTION headlessly.tamper_upgrade_hashes()
RETURNS TABLE (seq bigint, hash bytea)
AS 'MODULE_PATHNAME', 'headlessly_tamper_upgrade_hashes'
LANGUAGE C;
ALTER TABLE headlessly.events DISABLE TRIGGER headlessly_append_only;
ALTER TABLE headlessly.events DISABLE TRIGGER headlessly_append_only_row;
UPDATE headlessly.events e SET hash = h.hash
  FROM headlessly.tamper_upgrade_hashes() h
 WHERE e.seq OPERATOR(pg_catalog.=) h.seq;
ALTER TABLE headlessly.events ENABLE ALWAYS TRIGGER headlessly_append_only;
ALTER TABLE headlessly.events ENABLE ALWAYS TRIGGER headlessly_append_only_row;
DROP FUNCTION headlessly.tamper_upgrade_hashes();
UPDATE headlessly.streams s SET hash = e.hash
  FROM headlessly.events e
 WHERE e.tenant OPERATOR(pg_catalog.=) s.tenant AND e.target OPERATOR(pg_catalog.=) s.target
   AND e.version OPERATOR(pg_catalog.=) s.version;

-- Checkpoints: per tenant, a Merkle tree over the hashes of the events
-- committed since the tenant's previous checkpoint, chained to it.  Which
-- events a checkpoint sealed is kept by seq (which a dump and restore keep):
-- seqs covers exactly the sealed events among the tenant's, and may span
-- other tenants' events.  The rows are append-only, like the log's.
CREATE TABLE headlessly.checkpoints (
    tenant     text COLLATE "C" NOT NULL,
    number     bigint NOT NULL,
    prev_hash  bytea NOT NULL,
    root       bytea NOT NULL,
    count      bigint NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    seqs       int8multirange NOT NULL,
    created_at timestamptz NOT NULL,
    hash       bytea NOT NULL,
    signature  bytea,
    public_key bytea,
    CONSTRAINT checkpoints_pkey PRIMARY KEY (tenant, number)
);

COMMENT ON TABLE headlessly.checkpoints IS
    'Checkpoints of the log, made by headlessly.checkpoint(): per tenant, the Merkle root of the event hashes sealed, chained to the previous checkpoint; append-only.';

SELECT headlessly.make_append_only('headlessly.checkpoints');
SELECT pg_catalog.pg_extension_config_dump('headlessly.checkpoints', '');

-- Every committed event with xact_id below this has been sealed.  Local to
-- the cluster (transaction ids mean nothing elsewhere), so not dumped: after
-- a restore, the next checkpoint finds what is unsealed by seq instead.
CREATE TABLE headlessly.checkpoint_horizon (
    sealed_below xid8 NOT NULL
);

COMMENT ON TABLE headlessly.checkpoint_horizon IS
    'Where headlessly.checkpoint() continues: every committed event with xact_id below sealed_below is sealed. Local to this cluster; not dumped.';

CREATE FUNCTION headlessly.checkpoint()
RETURNS bigint
AS 'MODULE_PATHNAME', 'headlessly_checkpoint'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.checkpoint() IS
    'Seal, per tenant, every committed event no checkpoint has sealed yet; returns the number of checkpoints made. Never waits for appends.';

CREATE FUNCTION headlessly.verify(tenant text DEFAULT NULL, digest jsonb DEFAULT NULL)
RETURNS TABLE (tenant text, ok boolean, checked bigint, target text, version bigint,
               event_id text, seq bigint, problem text)
AS 'MODULE_PATHNAME', 'headlessly_verify'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.verify(text, jsonb) IS
    'Recompute event hashes, stream chains and checkpoints (and compare with a digest kept outside); one row per tenant, naming the first bad event.';

-- A checkpoint as digest() and proof() give it (hashes in hex, the
-- signature and public key in base64), the format test/tools/hl_verify.py reads.
CREATE FUNCTION headlessly.checkpoint_json(c headlessly.checkpoints)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
               'tenant', c.tenant, 'number', c.number,
               'prev_hash', encode(c.prev_hash, 'hex'), 'root', encode(c.root, 'hex'),
               'count', c.count, 'first_seq', c.first_seq, 'last_seq', c.last_seq,
               'hash', encode(c.hash, 'hex'))
           || CASE WHEN c.signature IS NULL THEN '{ }'::jsonb
                   ELSE jsonb_build_object(
                            'signature', translate(encode(c.signature, 'base64'), E'\n', ''),
                            'public_key', translate(encode(c.public_key, 'base64'), E'\n', ''))
              END
$$;

COMMENT ON FUNCTION headlessly.checkpoint_json(headlessly.checkpoints) IS
    'A checkpoint as JSON, as headlessly.digest() and headlessly.proof() show it.';

CREATE FUNCTION headlessly.digest(tenant text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'headlessly_digest'
LANGUAGE C STABLE;

COMMENT ON FUNCTION headlessly.digest(text) IS
    'The latest checkpoint of each tenant (or of one), to keep outside the database and pass to headlessly.verify() later.';

CREATE FUNCTION headlessly.merkle_audit_path(leaves bytea[], leaf_index bigint)
RETURNS bytea[]
AS 'MODULE_PATHNAME', 'headlessly_merkle_audit_path'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.merkle_audit_path(bytea[], bigint) IS
    'RFC 6962 audit path of a leaf in the Merkle tree over the given event hashes: sibling hashes from the leaf up.';

CREATE FUNCTION headlessly.proof(event_id text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ev AS (
        SELECT e.seq, e.tenant, e.target, e.version, e.hash
          FROM headlessly.events e WHERE e.id = $1),
    cp AS (
        SELECT c FROM headlessly.checkpoints c, ev
         WHERE c.tenant = ev.tenant
           AND ev.seq BETWEEN c.first_seq AND c.last_seq AND c.seqs @> ev.seq
         ORDER BY c.number LIMIT 1),
    leaves AS (
        SELECT array_agg(m.hash ORDER BY m.seq) AS hashes,
               count(*) FILTER (WHERE m.seq < ev.seq) AS leaf_index
          FROM headlessly.events m, cp, ev
         WHERE m.tenant = (cp.c).tenant
           AND m.seq BETWEEN (cp.c).first_seq AND (cp.c).last_seq
           AND (cp.c).seqs @> m.seq)
    SELECT jsonb_build_object(
               'event_id', $1, 'seq', ev.seq, 'event_hash', encode(ev.hash, 'hex'),
               'prev_hash', encode(coalesce(
                    (SELECT p.hash FROM headlessly.events p
                      WHERE p.tenant = ev.tenant AND p.target = ev.target
                        AND p.version = ev.version - 1 AND ev.version > 1),
                    decode(repeat('00', 32), 'hex')), 'hex'),
               'leaf_index', leaves.leaf_index, 'tree_size', (cp.c).count,
               'path', coalesce((SELECT jsonb_agg(encode(h, 'hex') ORDER BY i)
                                   FROM unnest(headlessly.merkle_audit_path(leaves.hashes,
                                                                            leaves.leaf_index))
                                        WITH ORDINALITY AS a(h, i)), '[]'),
               'root', encode((cp.c).root, 'hex'),
               'checkpoint', headlessly.checkpoint_json(cp.c))
      FROM ev, cp, leaves
$$;

COMMENT ON FUNCTION headlessly.proof(text) IS
    'Inclusion proof of an event in the checkpoint that sealed it (RFC 6962 audit path), for test/tools/hl_verify.py; NULL while it is not sealed.';

-- Sealing writes checkpoints as the log's owner: the owner grants it.
REVOKE ALL ON FUNCTION headlessly.checkpoint() FROM PUBLIC;
-- Nothing of a tenant's in it; verify() reads it as its caller.
GRANT SELECT ON headlessly.checkpoint_horizon TO PUBLIC;

-- log: one stream's events in version order across transactions -------------

-- After the heads' hash (table order).  Heads of 0.1 keep NULL: their last
-- events carry xact_id '0', which orders nothing.
ALTER TABLE headlessly.streams ADD COLUMN xact_id xid8;
COMMENT ON COLUMN headlessly.streams.xact_id IS
    'xact_id of the stream''s last event, which the next append is ordered after; NULL if it has none (appended before 0.2).';
CREATE OR REPLACE VIEW headlessly.heads AS
    SELECT s.tenant, s.target, s.version, s.last_recorded_at, s.noun, s.state,
           s.created_at, s.updated_at
      FROM headlessly.streams s
     WHERE (s.tenant, s.target) NOT IN (SELECT p.tenant, p.target FROM headlessly.pending_heads() p)
    UNION ALL
    SELECT p.tenant, p.target, p.version, p.last_recorded_at, p.noun, p.state,
           p.created_at, p.updated_at
      FROM headlessly.pending_heads() p;

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

-- Everyone may see which subscriptions exist, never a secret: not the
-- signing secret, nor the url and headers, which carry credentials
-- (Authorization, PostHog's api_key, tokens in webhook URLs).
REVOKE ALL ON headlessly.subscriptions FROM PUBLIC;
GRANT SELECT (name, kind, pattern, target, tenant, format, notify,
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
    'Subscribe to the events matching pattern (and target, tenant): a pull consumer, or a webhook with url (which needs EXECUTE on headlessly.webhook_send); notify => true also sends each with NOTIFY on channel name at commit. Returns the row, with its secret.';

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

-- A restored position resumes after safe_seq, through which every event had
-- been acked; the fence moves it (position.c) and is forgotten by a restore.
ALTER TABLE headlessly.subscription_positions
    ADD COLUMN safe_seq bigint NOT NULL,
    ADD COLUMN fence_seq bigint,
    ADD COLUMN fence_xact xid8;
DROP TRIGGER subscription_positions_check ON headlessly.subscription_positions;
CREATE TRIGGER subscription_positions_check
    BEFORE INSERT ON headlessly.subscription_positions
    FOR EACH ROW EXECUTE FUNCTION headlessly.restored_position_check('xact_id', 'fence_xact');
ALTER TABLE headlessly.subscription_positions ENABLE ALWAYS TRIGGER subscription_positions_check;

-- A nacked event holds back later events of its target (pull.c).
COMMENT ON FUNCTION headlessly.read(text, integer, integer, integer, interval) IS
    'The next events of a pull subscription after this member''s acked position, in (xact_id, seq) order, due retries and released held events first; the same again until acked. Later events of a target whose event awaits a retry are held until it is acked or dead. wait: poll until some arrive or the interval passes.';

COMMENT ON FUNCTION headlessly.nack(text, bigint, text, integer) IS
    'Ack through the event with that seq, but have that one event read again after a backoff, until max_attempts; then it is a dead letter. Until then, later events of its target are held back.';

-- A claimed delivery names its sender: a round takes in-flight rows only
-- from senders that are gone (round.c).
ALTER TABLE headlessly.deliveries ADD COLUMN sender_pid integer;

-- Whether the sender that claimed a delivery (sender_pid, at last_attempt_at)
-- is still running: a round only takes in-flight rows whose sender is gone
-- (round.c).  Internal: the rounds call it as the log's owner.
CREATE FUNCTION headlessly.delivery_sender_alive(pid integer, claimed_at timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_delivery_sender_alive'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION headlessly.delivery_sender_alive(integer, timestamptz) IS
    'Whether the backend with that pid that claimed a delivery at claimed_at is still sending it; false once it has exited, or ended the delivery round that claimed it.';

REVOKE ALL ON FUNCTION headlessly.delivery_sender_alive(integer, timestamptz) FROM PUBLIC;

-- A delivery's lease changes no indexed column: with room left on its page
-- it is a HOT update, which writes no index entry (three otherwise).
ALTER TABLE headlessly.deliveries SET (fillfactor = 50);

-- webhooks: see src/delivery/webhook.sql

-- Webhooks -------------------------------------------------------------------

-- What the worker sends for a webhook subscription, sent at once and waited
-- for: to check a receiver (its signature check, the body it expects) before
-- subscribing it.  Internal: it has the server open connections, and so
-- does a webhook subscription, which needs EXECUTE on it (subscription.c).
CREATE FUNCTION headlessly.webhook_send(
    url     text,
    events  jsonb,
    secret  text  DEFAULT NULL,
    headers jsonb DEFAULT '{}',
    format  text  DEFAULT 'event')
RETURNS TABLE (http_status int, error text, duration_ms int, retry_after int)
AS 'MODULE_PATHNAME', 'hl_webhook_send_sql'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION headlessly.webhook_send(text, jsonb, text, jsonb, text) IS
    'POST each event of a JSON array to url as a webhook subscription would (Standard Webhooks headers, signed with secret, the format''s body, the headers), all at once, and return each answer: HTTP status, error (NULL on 2xx), time taken, Retry-After. For testing a receiver; EXECUTE on it is also the right to subscribe webhooks.';

REVOKE ALL ON FUNCTION headlessly.webhook_send(text, jsonb, text, jsonb, text) FROM PUBLIC;

-- worker: see src/worker/worker.sql

-- The background worker ------------------------------------------------------

-- With shared_preload_libraries = 'headlessly_events', a launcher starts one
-- worker per database that has the extension.  Installing (or updating) the
-- extension tells it, at commit, to look here.
CREATE FUNCTION headlessly.worker_wake()
RETURNS boolean
AS 'MODULE_PATHNAME', 'hl_worker_wake_sql'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION headlessly.worker_wake() IS
    'Have the background worker''s launcher look for the extension in this database when the transaction commits; false when no worker runs (the library is not in shared_preload_libraries). Called by the install and upgrade scripts.';

REVOKE ALL ON FUNCTION headlessly.worker_wake() FROM PUBLIC;

SELECT headlessly.worker_wake();

-- tenancy: tenant roles, their grants, and row security on tenant rows ------

-- Which tenants each tenant role may use.  A role with any row here is a
-- tenant role; revoking keeps its row with rights 'none', so it stays one
-- and fails closed.  Only the owner changes it (grant_tenant() and
-- revoke_tenant() check the caller and write as the owner).
CREATE TABLE headlessly.tenant_grants (
    role        regrole NOT NULL,
    tenant      text COLLATE "C" NOT NULL,
    rights      text NOT NULL CHECK (rights IN ('none', 'read', 'write', 'admin')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  name NOT NULL DEFAULT current_user,
    CONSTRAINT tenant_grants_pkey PRIMARY KEY (role, tenant)
);

COMMENT ON TABLE headlessly.tenant_grants IS
    'Tenant roles and their tenants; change it with headlessly.grant_tenant() and headlessly.revoke_tenant(). rights ''none'': revoked (the role stays a tenant role and may not use the tenant).';

SELECT pg_catalog.pg_extension_config_dump('headlessly.tenant_grants', '');

-- Every change reaches the per-backend caches of the grants (tenancy.c).
CREATE FUNCTION headlessly.tenant_grants_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_tenant_grants_changed'
LANGUAGE C;

CREATE TRIGGER tenant_grants_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.tenant_grants
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.tenant_grants_changed();
ALTER TABLE headlessly.tenant_grants ENABLE ALWAYS TRIGGER tenant_grants_changed;

REVOKE ALL ON FUNCTION headlessly.tenant_grants_changed() FROM PUBLIC;

CREATE FUNCTION headlessly.grant_tenant(role regrole, tenant text, rights text DEFAULT 'write')
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_grant_tenant'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.grant_tenant(regrole, text, text) IS
    'Bind a role to a tenant with rights ''read'', ''write'' or ''admin''; the role then reads and writes only its tenants. The first binding turns row security on for the extension''s tables.';

CREATE FUNCTION headlessly.revoke_tenant(role regrole, tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_revoke_tenant'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.revoke_tenant(regrole, text) IS
    'Take a tenant from a tenant role; false if it held no rights on it. The role stays a tenant role: without tenants it sees nothing.';

-- The row security predicates: the current role's grants (cached per
-- backend), never the setting headlessly.tenant.  Every role may call them:
-- row security runs them as the querying role, and they only tell it about
-- its own rights.
CREATE FUNCTION headlessly.tenant_readable(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_tenant_readable'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.tenant_readable(text) IS
    'Whether the current role may read the tenant''s rows: true for roles not bound to tenants.';

CREATE FUNCTION headlessly.tenant_writable(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_tenant_writable'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.tenant_writable(text) IS
    'Whether the current role may write the tenant''s rows: true for roles not bound to tenants.';

CREATE FUNCTION headlessly.tenant_isolation_enforce()
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_tenant_isolation_enforce'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION headlessly.tenant_isolation_enforce() FROM PUBLIC;

-- One policy per table with tenant rows; row security itself is turned on
-- (ENABLE, FORCE) by the first grant_tenant(), for every table with a
-- policy of this name.  A new table with a tenant column needs one line:
--   CREATE POLICY tenant_isolation ON headlessly.<table>
--       USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.events
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.streams
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.snapshots
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.checkpoints
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
-- a delivery belongs to its event's tenant; a subscription to its tenant,
-- and one for every tenant (tenant NULL) to its owner
CREATE POLICY tenant_isolation ON headlessly.deliveries
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_readable(tenant));
CREATE POLICY tenant_isolation ON headlessly.subscriptions
    USING (coalesce(headlessly.tenant_readable(tenant), false)
           OR pg_catalog.pg_has_role(owner, 'MEMBER'))
    WITH CHECK (coalesce(headlessly.tenant_readable(tenant), false)
                OR pg_catalog.pg_has_role(owner, 'MEMBER'));
-- a hook failure belongs to its event's tenant: visible with the event
CREATE POLICY tenant_isolation ON headlessly.hook_failures
    USING (EXISTS (SELECT FROM headlessly.events e
                    WHERE e.id OPERATOR(pg_catalog.=) hook_failures.event_id))
    WITH CHECK (EXISTS (SELECT FROM headlessly.events e
                         WHERE e.id OPERATOR(pg_catalog.=) hook_failures.event_id
                           AND headlessly.tenant_writable(e.tenant)));

-- The views over the heads read them with their owner's rights (a role may
-- be granted entities alone), so row security on streams, which checks the
-- owner's rights, does not filter them: they filter with the same
-- predicate.  security_barrier: a caller's own conditions (leaky functions)
-- see only rows that passed it.
CREATE OR REPLACE VIEW headlessly.heads WITH (security_barrier = true) AS
    SELECT s.tenant, s.target, s.version, s.last_recorded_at, s.noun, s.state,
           s.created_at, s.updated_at
      FROM headlessly.streams s
     WHERE (s.tenant, s.target) NOT IN (SELECT p.tenant, p.target FROM headlessly.pending_heads() p)
       AND headlessly.tenant_readable(s.tenant)
    UNION ALL
    SELECT p.tenant, p.target, p.version, p.last_recorded_at, p.noun, p.state,
           p.created_at, p.updated_at
      FROM headlessly.pending_heads() p
     WHERE headlessly.tenant_readable(p.tenant);

-- A dropped role's grants are not dumped, and forget_dropped_roles() removes them.
SELECT pg_catalog.pg_extension_config_dump('headlessly.tenant_grants',
    'WHERE role::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT r.oid FROM pg_catalog.pg_roles r)');

CREATE FUNCTION headlessly.forget_dropped_roles()
RETURNS TABLE (role oid, tenant text, rights text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM headlessly.tenant_grants g
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                        WHERE r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid)
    RETURNING g.role::pg_catalog.oid, g.tenant, g.rights
$$;

COMMENT ON FUNCTION headlessly.forget_dropped_roles() IS
    'Remove the tenant grants of roles that have been dropped (DROP ROLE leaves them behind, unused); returns them. Run it in every database of the extension after dropping tenant roles.';

REVOKE ALL ON FUNCTION headlessly.forget_dropped_roles() FROM PUBLIC;
