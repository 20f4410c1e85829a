-- Benchmark fixtures: the extension, and baselines written the plain way.
CREATE EXTENSION IF NOT EXISTS headlessly_events;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- A plain table of the log's shape (collations included) and indexes, without
-- triggers; like the log, it records the inserting transaction (xact_id).
CREATE TABLE bench.plain_events (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text COLLATE "C" NOT NULL UNIQUE DEFAULT headlessly.new_event_id(),
    tenant            text COLLATE "C" NOT NULL DEFAULT 'default',
    type              text COLLATE "C" NOT NULL,
    target            text COLLATE "C",
    version           bigint,
    actor             text COLLATE "C",
    source            text COLLATE "C",
    source_type       text COLLATE "C",
    external_event_id text COLLATE "C",
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    data              jsonb NOT NULL DEFAULT '{}',
    before            jsonb,
    metadata          jsonb,
    raw_payload       text,
    session_id        text COLLATE "C",
    xact_id           xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE UNIQUE INDEX ON bench.plain_events (tenant, target, version) WHERE target IS NOT NULL;
CREATE UNIQUE INDEX ON bench.plain_events (tenant, source, external_event_id) NULLS NOT DISTINCT
    WHERE external_event_id IS NOT NULL;
CREATE INDEX ON bench.plain_events (xact_id, seq);
CREATE INDEX ON bench.plain_events (tenant, recorded_at);
CREATE INDEX ON bench.plain_events (tenant, type, recorded_at);
CREATE INDEX ON bench.plain_events (tenant, actor, recorded_at) WHERE actor IS NOT NULL;
CREATE INDEX ON bench.plain_events (tenant, session_id, recorded_at) WHERE session_id IS NOT NULL;

-- A straightforward PL/pgSQL event store: row-locked stream head, insert, head
-- update.  Its heads table has the columns, indexes and storage parameters of
-- headlessly.streams, whatever those are, and the store maintains the same
-- columns.
CREATE TABLE bench.pl_events (LIKE bench.plain_events INCLUDING ALL);
CREATE TABLE bench.pl_streams (LIKE headlessly.streams INCLUDING ALL);
DO $$ BEGIN
    EXECUTE coalesce((SELECT format('ALTER TABLE bench.pl_streams SET (%s)', array_to_string(reloptions, ', '))
                        FROM pg_class WHERE oid = 'headlessly.streams'::regclass), 'SELECT');
END $$;
CREATE FUNCTION bench.pl_append(p_type text, p_target text, p_data jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    head bench.pl_streams;
BEGIN
    SELECT * INTO head FROM bench.pl_streams
     WHERE tenant = 'default' AND target = p_target FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO bench.pl_streams (tenant, target, version, noun, state, created_at)
        VALUES ('default', p_target, 0, split_part(p_type, '.', 1), '{}', now())
            ON CONFLICT DO NOTHING;
        SELECT * INTO head FROM bench.pl_streams
         WHERE tenant = 'default' AND target = p_target FOR UPDATE;
    END IF;
    INSERT INTO bench.pl_events (type, target, version, data, before)
    VALUES (p_type, p_target, head.version + 1, p_data,
            (SELECT jsonb_object_agg(k, head.state -> k) FROM jsonb_object_keys(p_data) k));
    UPDATE bench.pl_streams
       SET version = head.version + 1, state = head.state || p_data,
           last_recorded_at = now(), updated_at = now()
     WHERE tenant = 'default' AND target = p_target;
    RETURN head.version + 1;
END $$;

-- 1,000 hot entities for both stores
SELECT count(*) FROM headlessly.events_append_batch(
    (SELECT jsonb_agg(jsonb_build_object('type', 'Account.Created', 'target', 'acct_' || i,
                                         'data', jsonb_build_object('n', 0)))
       FROM generate_series(1, 1000) i));
SELECT count(bench.pl_append('Account.Created', 'acct_' || i, jsonb_build_object('n', 0)))
  FROM generate_series(1, 1000) i;

-- one entity per client, of one noun and of eight nouns
SELECT count(*) FROM headlessly.events_append_batch(
    (SELECT jsonb_agg(e) FROM (
        SELECT jsonb_build_object('type', 'Thing.Created', 'target', 'thing_' || i) AS e
          FROM generate_series(0, 15) i
        UNION ALL
        SELECT jsonb_build_object('type', 'Noun' || i || '.Created', 'target', 'noun_' || i)
          FROM generate_series(0, 15) i) s));

-- the batch of 1,000 events, and the same rows as a file for COPY
CREATE TABLE bench.batch_payload AS
SELECT jsonb_agg(jsonb_build_object('type', 'page_view',
                                    'data', jsonb_build_object('path', '/p/' || i, 'i', i),
                                    'metadata', jsonb_build_object('sessionId', 's' || (i % 50))))
       AS events
  FROM generate_series(1, 1000) i;

-- Hooks: a handler that does nothing
CREATE FUNCTION bench.noop(event jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';

-- Capture: the same table three times: plain, captured, and audited by a
-- PL/pgSQL trigger that writes the same event row into a table of the log's
-- shape and indexes.
CREATE TABLE bench.contacts_plain (id bigserial PRIMARY KEY, name text, email text, stage text);
CREATE TABLE bench.contacts_captured (LIKE bench.contacts_plain INCLUDING ALL);
CREATE TABLE bench.contacts_audited (LIKE bench.contacts_plain INCLUDING ALL);
SELECT headlessly.capture('bench.contacts_captured', 'Contact');
CREATE TABLE bench.audit_events (LIKE bench.plain_events INCLUDING ALL);
CREATE FUNCTION bench.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.audit_events (type, target, version, actor, source, source_type, data, metadata)
    VALUES ('Contact.Created', 'contact_' || NEW.id, 1, current_user, 'capture', 'internal',
            jsonb_strip_nulls(to_jsonb(NEW)),
            jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'operation', TG_OP));
    RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT ON bench.contacts_audited FOR EACH ROW EXECUTE FUNCTION bench.audit();
