-- Delivery after commit: subscriptions, pull consumers, after_commit hooks --

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
-- order.  A position restored from a dump has no xact_id (nor fence_xact):
-- another cluster's transaction ids mean nothing here, so it resumes after
-- safe_seq, through which every event had been acked (position.c).
CREATE TABLE headlessly.subscription_positions (
    subscription text COLLATE "C" NOT NULL
                 REFERENCES headlessly.subscriptions (name) ON DELETE CASCADE,
    member       integer NOT NULL,
    members      integer NOT NULL,
    xact_id      xid8,
    seq          bigint NOT NULL,
    acked_at     timestamptz,
    safe_seq     bigint NOT NULL,
    fence_seq    bigint,
    fence_xact   xid8,
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
    sender_pid      integer,
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
    FOR EACH ROW EXECUTE FUNCTION headlessly.restored_position_check('xact_id', 'fence_xact');
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
    'The next events of a pull subscription after this member''s acked position, in (xact_id, seq) order, due retries and released held events first; the same again until acked. Later events of a target whose event awaits a retry are held until it is acked or dead. wait: poll until some arrive or the interval passes.';

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
    'Ack through the event with that seq, but have that one event read again after a backoff, until max_attempts; then it is a dead letter. Until then, later events of its target are held back.';

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
