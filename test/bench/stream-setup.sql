-- Fixtures of test/bench/run-stream-bench.sh (after setup.sql): a
-- re-implementation of Message DB's write_message / get_stream_messages, the
-- entities the benchmarks append to, and the stream they read.
--
-- mdb is NOT Message DB: it is this project's own SQL written from Message
-- DB's documented algorithm (message-db.github.io/message-db, "Write a
-- message", "Get messages from a stream"), so that its costs can be measured
-- beside ours in the same run:
--   write_message: an exclusive transaction-level advisory lock on a 64-bit
--     hash of the stream's category (the part of the stream name before the
--     first "-"), the stream's version read as max(position) of its
--     messages, the expected-version check, and an insert into the messages
--     table, which has Message DB's three indexes (unique id; unique stream
--     name and position; category and global position);
--   get_stream_messages: the stream's messages from a position in position
--     order, at most a batch (1,000 by default), built as a dynamic query and
--     returned from PL/pgSQL, with Message DB's column types.
DROP SCHEMA IF EXISTS mdb CASCADE;
CREATE SCHEMA mdb;

-- as in Message DB, the category and the lock's hash are PL/pgSQL functions
CREATE FUNCTION mdb.category(stream_name varchar) RETURNS varchar
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN split_part(stream_name, '-', 1); END $$;

CREATE FUNCTION mdb.hash_64(value varchar) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN ('x' || left(md5(value), 16))::bit(64)::bigint; END $$;

CREATE TABLE mdb.messages (
    global_position bigserial PRIMARY KEY,
    position        bigint NOT NULL,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    time            timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    stream_name     text NOT NULL,
    type            text NOT NULL,
    data            jsonb,
    metadata        jsonb
);
CREATE UNIQUE INDEX messages_id ON mdb.messages (id);
CREATE UNIQUE INDEX messages_stream ON mdb.messages
    (stream_name, position, mdb.category(metadata ->> 'correlationStreamName'));
CREATE INDEX messages_category ON mdb.messages
    (mdb.category(stream_name), global_position, mdb.category(metadata ->> 'correlationStreamName'));

CREATE TYPE mdb.message AS (
    id varchar, stream_name varchar, type varchar, position bigint,
    global_position bigint, data varchar, metadata varchar, time timestamp);

CREATE FUNCTION mdb.write_message(id varchar, stream_name varchar, type varchar, data jsonb,
                                  metadata jsonb DEFAULT NULL, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_version bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(mdb.hash_64(mdb.category(write_message.stream_name)));
    SELECT coalesce(max(m.position), -1) INTO current_version
      FROM mdb.messages m WHERE m.stream_name = write_message.stream_name;
    IF write_message.expected_version IS NOT NULL
       AND write_message.expected_version <> current_version THEN
        RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
            write_message.expected_version, write_message.stream_name, current_version;
    END IF;
    INSERT INTO mdb.messages (id, stream_name, position, type, data, metadata)
    VALUES (write_message.id::uuid, write_message.stream_name, current_version + 1,
            write_message.type, write_message.data, write_message.metadata);
    RETURN current_version + 1;
END $$;

CREATE FUNCTION mdb.get_stream_messages(stream_name varchar, "position" bigint DEFAULT 0,
                                        batch_size bigint DEFAULT 1000)
RETURNS SETOF mdb.message
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT id::varchar, stream_name::varchar, type::varchar, position, global_position,
                data::varchar, metadata::varchar, time
           FROM mdb.messages
          WHERE stream_name = $1 AND position >= $2
          ORDER BY position LIMIT $3'
      USING get_stream_messages.stream_name, coalesce(get_stream_messages.position, 0),
            coalesce(get_stream_messages.batch_size, 1000);
END $$;

-- 1,000 accounts in each store, for the 8-client appends
SELECT count(mdb.write_message(gen_random_uuid()::text, 'account-' || i, 'Opened',
                               jsonb_build_object('n', 0)))
  FROM generate_series(1, 1000) i;

-- 20,000 entities for the "spread" side of the one-transaction comparison
SELECT count(*) FROM headlessly.events_append_batch(
    (SELECT jsonb_agg(jsonb_build_object('type', 'Item.Created', 'target', 'item_' || i,
                                         'tenant', 'spread', 'data', jsonb_build_object('n', 0)))
       FROM generate_series(1, 20000) i));

-- a 100-event entity, the yardstick of as_of
SELECT count(*) FROM headlessly.events_append_batch(
    (SELECT jsonb_agg(jsonb_build_object('type', CASE WHEN i = 1 THEN 'Item.Created' ELSE 'Item.Updated' END,
                                         'target', 'small', 'tenant', 'hot',
                                         'data', jsonb_build_object('n', i, 'k' || (i % 10), i)))
       FROM generate_series(1, 100) i));

-- The stream both stores read: 1,000 events of one entity, each appended in
-- its own transaction between 9 events of other entities, as a live entity's
-- events are scattered over the log.
CREATE PROCEDURE mdb.make_reader_streams()
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 1000 LOOP
        PERFORM headlessly.events_append(CASE WHEN i = 1 THEN 'Reader.Created' ELSE 'Reader.Updated' END,
                                         'reader_1', jsonb_build_object('n', i, 'note', 'event ' || i),
                                         tenant => 'reader', metadata => '{"sessionId": "s1"}');
        PERFORM mdb.write_message(gen_random_uuid()::text, 'reader-1', 'Updated',
                                  jsonb_build_object('n', i, 'note', 'event ' || i), '{"sessionId": "s1"}');
        PERFORM headlessly.events_append('page_view', 'other_' || (i * 10 + j), '{"path": "/"}',
                                         tenant => 'reader')
          FROM generate_series(1, 9) j;
        PERFORM mdb.write_message(gen_random_uuid()::text, 'other-' || (i * 10 + j), 'Viewed', '{"path": "/"}')
          FROM generate_series(1, 9) j;
        COMMIT;
    END LOOP;
END $$;
CALL mdb.make_reader_streams();
