-- Backend checks of src/tamper/ through the test module (test/tamper/backend.sh).
-- Each check prints one line, "ok - ..." or "not ok - ...".
-- psql variables: keydir (signing keys), datadir (the cluster's data directory)
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;

-- Events of every shape: entity events with before, free events, unicode,
-- control characters, numbers with scale, infinite and BC timestamps.
SELECT 'ok - ' || count(*) || ' events of every shape appended' FROM (
  SELECT headlessly.events_append('Contact.Created', 'contact_1',
    '{"name": "Alice", "nested": {"b": 1, "a": [1.50, 1e3, -0.0, 0.00001, "x\ty"]}, "": "empty key", "zz": null, "bool": true}',
    actor => 'agent_7', tenant => 'acme', metadata => '{"url": "https://example.com/?q=1", "sessionId": "s1"}')
  UNION ALL
  SELECT headlessly.events_append('Contact.Updated', 'contact_1',
    '{"name": "Alicé 😀", "ctl": "\u0001\u001f\u007f", "quote": "\"\\/"}', tenant => 'acme',
    raw_payload => E'raw\tbody\n"quoted" \\ é')
  UNION ALL
  SELECT headlessly.events_append('Contact.Deleted', 'contact_1', '{"reason": "gdpr"}', tenant => 'acme')
  UNION ALL
  SELECT headlessly.events_append('page_view', data => '{"path": "/"}', tenant => 'acme',
    occurred_at => 'infinity')
  UNION ALL
  SELECT headlessly.events_append('page_view', data => '{"n": 12345678901234567890.1230}', tenant => 'acme',
    occurred_at => '4714-11-24 00:00:00+00 BC')
  UNION ALL
  SELECT headlessly.events_append('page_view', data => '{}', tenant => 'tenänt',
    occurred_at => '294276-12-31 23:59:59.999999+00')
  UNION ALL
  SELECT headlessly.events_append('invoice.paid', data => '{"amount": 4200}', source => 'stripe',
    source_type => 'external', external_event_id => 'evt_1Nx', tenant => 'acme',
    occurred_at => '-infinity')
  UNION ALL
  SELECT headlessly.events_append('Deal.Created', 'deal_' || (i % 7), jsonb_build_object('amount', i, 'tags', jsonb_build_array('a', i)),
    tenant => CASE WHEN i % 7 % 3 = 0 THEN 'tenänt' ELSE 'acme' END,
    occurred_at => '2026-01-15 10:00:00.123456+00'::timestamptz + i * interval '1 second')
  FROM generate_series(1, 7) i
  UNION ALL
  SELECT headlessly.events_append('Deal.Updated', 'deal_' || (i % 7), jsonb_build_object('amount', i * 1.5, 'note', repeat('x', i)),
    tenant => CASE WHEN i % 7 % 3 = 0 THEN 'tenänt' ELSE 'acme' END)
  FROM generate_series(1, 60) i
) appended;

-- The canonical form does not depend on session settings.
CREATE TEMP TABLE forms AS
  SELECT seq, tamper_test.canonical(e) AS c FROM headlessly.events e;
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = -15;
SET bytea_output = 'escape';
SET lc_monetary = 'C';
SELECT CASE WHEN count(*) = (SELECT count(*) FROM headlessly.events) AND bool_and(f.c = tamper_test.canonical(e))
            THEN 'ok' ELSE 'not ok' END
       || ' - canonical forms are the same under another TimeZone, DateStyle, extra_float_digits and bytea_output'
FROM headlessly.events e JOIN forms f USING (seq);
RESET ALL;
SET client_min_messages = warning;

-- From a tuple and from datums alike.
SELECT CASE WHEN bool_and(tamper_test.canonical(e) = tamper_test.canonical_of(
              seq, id, tenant, type, target, version, actor, source, source_type,
              external_event_id, occurred_at, recorded_at, data, before, metadata, raw_payload))
            THEN 'ok' ELSE 'not ok' END || ' - canonical form from a row equals the one from its values'
FROM headlessly.events e;

-- Text forms inside the canonical form, checked against PostgreSQL's own output.
SELECT CASE WHEN bool_and(position(convert_to(data::text, 'UTF8') IN tamper_test.canonical(e)) > 0)
            THEN 'ok' ELSE 'not ok' END || ' - jsonb is written as data::text prints it'
FROM headlessly.events e;
SELECT CASE WHEN bool_and(position(convert_to(
              to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8')
              IN tamper_test.canonical(e)) > 0)
            THEN 'ok' ELSE 'not ok' END || ' - recorded_at is written as YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC'
FROM headlessly.events e;
SELECT CASE WHEN position('\x0100000008696e66696e697479'::bytea IN tamper_test.canonical(e)) > 0
            THEN 'ok' ELSE 'not ok' END || ' - infinity is written as "infinity"'
FROM headlessly.events e WHERE occurred_at = 'infinity';
SELECT CASE WHEN position(convert_to('-4713-11-24T00:00:00.000000Z', 'UTF8') IN tamper_test.canonical(e)) > 0
            THEN 'ok' ELSE 'not ok' END || ' - 4714 BC is astronomical year -4713'
FROM headlessly.events e WHERE occurred_at = '4714-11-24 00:00:00+00 BC';
SELECT CASE WHEN position(convert_to('294276-12-31T23:59:59.999999Z', 'UTF8') IN tamper_test.canonical(e)) > 0
            THEN 'ok' ELSE 'not ok' END || ' - the last timestamp PostgreSQL has'
FROM headlessly.events e WHERE occurred_at > '10000-01-01' AND isfinite(occurred_at);

-- The jsonb writer against jsonb_out on values of every kind.
CREATE TEMP TABLE corpus (j jsonb);
INSERT INTO corpus VALUES
  ('{}'), ('[]'), ('null'), ('true'), ('"str"'), ('0'), ('-0'), ('-0.000'), ('1e-7'), ('1E+3'),
  ('123456789012345678901234567890.123456789'), ('[[[]], {}, [{}]]'),
  ('{"b": 1, "a": 2, "aa": 3, "": 4, "é": 5, "z": {"y": [1, "\u0002x"]}}'),
  ('{"dup": 1, "dup": 2}'), ('"\b\f\n\r\t\u0001\u001f\"\\/ \u007f é 😀"'),
  ('{"k\"e\\y": "v", "\n": "newline key"}'), ('[1.0, 1.00, 100e-2, 0.1e1]');
INSERT INTO corpus
  SELECT jsonb_build_object('i', i, 'f', i / 7.0, 's', md5(i::text) || chr(1 + i % 31),
                            'a', jsonb_build_array(i, -i, i::text, i % 2 = 0, NULL),
                            'o', jsonb_build_object(repeat('k', i % 5), i, 'x' || i, '{}'::jsonb))
  FROM generate_series(1, 300) i;
-- more than JB_OFFSET_STRIDE (32) members, where jsonb stores offsets, not lengths
INSERT INTO corpus
  SELECT jsonb_object_agg('key' || i, CASE i % 5 WHEN 0 THEN to_jsonb(i) WHEN 1 THEN to_jsonb(md5(i::text))
                                      WHEN 2 THEN jsonb_build_array(i, 'x', NULL) WHEN 3 THEN 'null'::jsonb
                                      ELSE jsonb_build_object('n', i * 1.25) END)
  FROM (VALUES (31), (32), (33), (64), (65), (200)) sizes(n), generate_series(1, n) i GROUP BY n;
INSERT INTO corpus
  SELECT jsonb_agg(CASE i % 4 WHEN 0 THEN to_jsonb(i / 3.0) WHEN 1 THEN to_jsonb(repeat('s', i))
                   WHEN 2 THEN jsonb_build_object('i', i) ELSE to_jsonb(i % 2 = 0) END)
  FROM (VALUES (31), (32), (33), (100)) sizes(n), generate_series(1, n) i GROUP BY n;
-- integers, which are printed without numeric_out below 10^16: each side of
-- every power of ten and of the 10^16 limit, zeros left out of the stored digits
INSERT INTO corpus
  SELECT jsonb_build_array(n, -n, n - 1, 1 - n, n + 1, -n - 1, n * 7, -n * 7, n::numeric(40, 1), n * 1.0e0)
  FROM (SELECT (10::numeric ^ k)::numeric(40, 0) AS n FROM generate_series(0, 24) k) powers;
INSERT INTO corpus VALUES ('[9999999999999999, 10000000000000000, -9999999999999999, 1e15, 1E+16, 100000000, 0.0, 1e-20]');
-- long strings (written a block at a time), deep nesting
INSERT INTO corpus VALUES
  (to_jsonb(repeat(E'ab\u0001"\\é', 3000))),
  (jsonb_build_object(repeat('k', 5000), repeat(E'\n', 5000))),
  ((repeat('[', 300) || '1.50' || repeat(']', 300))::jsonb),
  ((repeat('{"a": ', 300) || '{}' || repeat('}', 300))::jsonb);
INSERT INTO corpus SELECT data FROM headlessly.events;
INSERT INTO corpus SELECT before FROM headlessly.events WHERE before IS NOT NULL;
SELECT CASE WHEN bool_and(tamper_test.jsonb_text(j) = j::text) THEN 'ok' ELSE 'not ok' END
       || ' - the jsonb writer prints what jsonb_out prints, for ' || count(*) || ' values'
FROM corpus;

-- Chains: version 1 and free events start from zeros, later versions from the previous hash.
CREATE TEMP TABLE hashes AS
  SELECT h.*, e.tenant, e.target, e.version
  FROM tamper_test.event_hashes('headlessly.events') h JOIN headlessly.events e USING (seq);
SELECT CASE WHEN count(*) = (SELECT count(*) FROM headlessly.events)
             AND bool_and(h.canonical = tamper_test.canonical(e))
            THEN 'ok' ELSE 'not ok' END || ' - event_hashes covers every event with its canonical form'
FROM hashes h JOIN headlessly.events e USING (seq);
SELECT CASE WHEN bool_and(prev = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
            THEN 'ok' ELSE 'not ok' END || ' - free events and first versions chain from 32 zero bytes'
FROM hashes WHERE target IS NULL OR version = 1;
SELECT CASE WHEN count(*) > 0 AND bool_and(h.prev = p.hash) THEN 'ok' ELSE 'not ok' END
       || ' - each later version chains from the previous version''s hash'
FROM hashes h JOIN hashes p ON p.tenant = h.tenant AND p.target = h.target AND p.version = h.version - 1;
SELECT CASE WHEN bool_and(hash = sha256(prev || canonical)) THEN 'ok' ELSE 'not ok' END
       || ' - each hash is sha256(prev || canonical form), as PostgreSQL''s sha256() computes it'
FROM hashes;

-- Merkle roots: streaming scan, arrays, audit paths.
SELECT CASE WHEN (SELECT root FROM tamper_test.scan('headlessly.events', 'hash'))
                 = tamper_test.merkle_root(array_agg(hash ORDER BY seq))
            THEN 'ok' ELSE 'not ok' END || ' - the root of a scan equals the root of its hashes'
FROM hashes;
SELECT CASE WHEN tamper_test.merkle_root('{}') = sha256('')
            THEN 'ok' ELSE 'not ok' END || ' - the empty tree''s root is sha256('''')';
SELECT CASE WHEN tamper_test.merkle_root(ARRAY[hash]) = sha256('\x00'::bytea || hash)
            THEN 'ok' ELSE 'not ok' END || ' - a one-leaf tree''s root is its leaf hash, sha256(0x00 || event hash)'
FROM hashes ORDER BY seq LIMIT 1;
SELECT CASE WHEN tamper_test.merkle_root(ARRAY[a.hash, b.hash])
                 = sha256('\x01'::bytea || sha256('\x00'::bytea || a.hash) || sha256('\x00'::bytea || b.hash))
            THEN 'ok' ELSE 'not ok' END || ' - a two-leaf root is sha256(0x01 || left leaf || right leaf)'
FROM hashes a, hashes b WHERE a.seq = (SELECT min(seq) FROM hashes) AND b.seq = (SELECT min(seq) + 1 FROM hashes);
SELECT tamper_test.fails_with($$SELECT tamper_test.audit_path(ARRAY['\x01'::bytea], 0)$$, '22023')
       || ' - a hash of the wrong length is refused (22023)';
SELECT tamper_test.fails_with($$SELECT tamper_test.audit_path('{}', 0)$$, '22023')
       || ' - a leaf index outside the tree is refused (22023)';

-- Checkpoint hashes: the preimage PostgreSQL's own functions build.
SELECT CASE WHEN tamper_test.checkpoint_hash('tenänt', 3, sha256('p'), sha256('r'), 5, 10, 20)
                 = sha256(convert_to(E'hl-checkpoint-v1\n', 'UTF8')
                          || int4send(octet_length(convert_to('tenänt', 'UTF8'))) || convert_to('tenänt', 'UTF8')
                          || int8send(3) || sha256('p') || sha256('r')
                          || int8send(5) || int8send(10) || int8send(20))
            THEN 'ok' ELSE 'not ok' END || ' - checkpoint hash: magic, tenant length and UTF-8, big-endian integers';

-- Signing: every bad key file is refused with its SQLSTATE.
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/missing.pem'), '58P01')
       || ' - a missing key file: 58P01';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'datadir' || '/inside.pem'), 'F0000')
       || ' - a key file inside the data directory: F0000';
SELECT tamper_test.fails_with($$SELECT tamper_test.sign('inside.pem', sha256('x'))$$, 'F0000')
       || ' - a relative path (inside the data directory): F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/link-inside.pem'), 'F0000')
       || ' - a symbolic link into the data directory: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/rsa.pem'), 'F0000')
       || ' - an RSA key: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/encrypted.pem'), 'F0000')
       || ' - an encrypted key: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/garbage.pem'), 'F0000')
       || ' - a file that is no key: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/world-readable.pem'), 'F0000')
       || ' - a key readable by others: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/other-owner.pem'), 'F0000')
       || ' - a key owned by another user: F0000';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir' || '/root-only.pem'), '42501')
       || ' - a key the server cannot read: 42501';
SELECT tamper_test.fails_with(format($$SELECT tamper_test.sign(%L, sha256('x'))$$, :'keydir'), 'F0000')
       || ' - a directory: F0000';
SELECT CASE WHEN length(signature) = 88 AND length(public_key) = 44 THEN 'ok' ELSE 'not ok' END
       || ' - a good key signs: 64-byte signature and 32-byte public key, in base64'
FROM tamper_test.sign(:'keydir' || '/ed25519.pem', sha256('x'));
-- the same 32 bytes, signed again, for backend.sh to verify outside
\o :keydir/backend-signature.txt
SELECT signature || E'\n' || public_key FROM tamper_test.sign(:'keydir' || '/ed25519.pem', sha256('x'));
\o
