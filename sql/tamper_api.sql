-- Tamper evidence: hashes on append, checkpoints, verify, digest, proof.
SET client_min_messages = warning;
-- a log of its own: checkpoints and verify cover every tenant
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;

-- every append gets a hash; events with a target chain along their stream
SELECT (headlessly.events_append('Contact.Created', 'contact_1', '{"name": "Alice"}', tenant => 't1')).seq IS NOT NULL AS appended;
SELECT (headlessly.events_append('Contact.Updated', 'contact_1', '{"stage": "lead"}', tenant => 't1')).seq IS NOT NULL AS appended;
SELECT (headlessly.events_append('page_view', data => '{"path": "/"}', tenant => 't1')).seq IS NOT NULL AS appended;
SELECT (headlessly.events_append('Contact.Created', 'contact_2', '{"name": "Bob"}', tenant => 't2')).seq IS NOT NULL AS appended;
SELECT version, octet_length(hash) AS hash_bytes FROM headlessly.events ORDER BY seq;
-- the head carries the stream's last hash
SELECT s.target, s.hash = e.hash AS head_has_last_hash
  FROM headlessly.streams s JOIN headlessly.events e USING (tenant, target, version)
 ORDER BY 1;
-- one transaction appending twice to a stream keeps the chain
BEGIN;
SELECT (headlessly.events_append('Contact.Updated', 'contact_1', '{"stage": "mql"}', tenant => 't1')).version;
SELECT (headlessly.events_append('Contact.Updated', 'contact_1', '{"stage": "sql"}', tenant => 't1')).version;
COMMIT;
SELECT tenant, ok, checked, target, version, event_id, seq, problem FROM headlessly.verify();

-- hash is assigned by the log: refused with ZE003, nothing stored
\set VERBOSITY sqlstate
INSERT INTO headlessly.events (type, tenant, hash) VALUES ('page_view', 't1', '\x00');
\set VERBOSITY default
SELECT count(*) FROM headlessly.events;

-- before any checkpoint, the digest is empty and nothing can be proven
SELECT headlessly.digest();
SELECT headlessly.proof(id) FROM headlessly.events ORDER BY seq LIMIT 1;

-- checkpoint(): one per tenant with new events, then none until more commit
SELECT headlessly.checkpoint();
SELECT headlessly.checkpoint();
SELECT tenant, number, count, first_seq, last_seq, seqs, octet_length(hash) AS hash_bytes,
       prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS first
  FROM headlessly.checkpoints ORDER BY tenant, number;
SELECT (headlessly.events_append('page_view', tenant => 't1')).seq IS NOT NULL AS appended;
SELECT (headlessly.events_append('page_view', tenant => 't2')).seq IS NOT NULL AS appended;
SELECT (headlessly.events_append('page_view', tenant => 't1')).seq IS NOT NULL AS appended;
-- this transaction's own appends are not committed: not sealed
BEGIN;
SELECT (headlessly.events_append('page_view', tenant => 't1')).seq IS NOT NULL AS appended;
SELECT headlessly.checkpoint();
COMMIT;
SELECT tenant, number, count, first_seq, last_seq, seqs,
       prev_hash = (SELECT hash FROM headlessly.checkpoints p WHERE p.tenant = c.tenant AND p.number = c.number - 1) AS chained
  FROM headlessly.checkpoints c WHERE number > 1 ORDER BY tenant, number;
SELECT headlessly.checkpoint();
SELECT tenant, number, count, seqs FROM headlessly.checkpoints ORDER BY tenant, number;
SELECT tenant, ok, checked, problem FROM headlessly.verify();
SELECT tenant, ok, checked FROM headlessly.verify('t2');

-- digest: the latest checkpoint of each tenant; verify against it
SELECT jsonb_path_query(headlessly.digest(), '$.tenants[*].number') AS latest;
SELECT jsonb_object_keys(headlessly.digest()->'tenants'->0) AS keys ORDER BY 1;
SELECT tenant, ok FROM headlessly.verify(NULL, headlessly.digest());
-- a digest of another history
SELECT tenant, ok, problem FROM headlessly.verify(NULL,
    jsonb_set(headlessly.digest(), '{tenants,0,hash}', to_jsonb(repeat('ab', 32))));
-- a digest naming a tenant the log does not have
SELECT tenant, ok, checked, problem FROM headlessly.verify('t9',
    '{"tenants": [{"tenant": "t9", "number": 1, "hash": "0000000000000000000000000000000000000000000000000000000000000000"}]}');
-- malformed digests are refused
\set VERBOSITY sqlstate
SELECT * FROM headlessly.verify(NULL, '[]');
SELECT * FROM headlessly.verify(NULL, '{"tenants": [{"tenant": "t1"}]}');
SELECT * FROM headlessly.verify(NULL, '{"tenants": [1]}');
\set VERBOSITY default

-- proof: the audit path of an event against the checkpoint that sealed it
SELECT p->>'leaf_index' AS leaf_index, p->>'tree_size' AS tree_size,
       jsonb_array_length(p->'path') AS path_length, p->'checkpoint'->>'number' AS checkpoint,
       p->>'root' = p->'checkpoint'->>'root' AS root_matches
  FROM (SELECT headlessly.proof(id) AS p FROM headlessly.events
         WHERE tenant = 't1' ORDER BY seq) x;
SELECT headlessly.proof('evt_nosuchevent');
SELECT headlessly.merkle_audit_path(ARRAY['\x01'::bytea, '\x02', '\x03'], 2);
\set VERBOSITY sqlstate
SELECT headlessly.merkle_audit_path(ARRAY['\x01'::bytea], 1);
\set VERBOSITY default

-- rights: checkpoint() is the owner's to grant; verify reads as its caller
CREATE ROLE tamper_reader;
SET ROLE tamper_reader;
\set VERBOSITY sqlstate
SELECT headlessly.checkpoint();
SELECT * FROM headlessly.verify();
\set VERBOSITY default
RESET ROLE;
GRANT USAGE ON SCHEMA headlessly TO tamper_reader;
GRANT SELECT ON headlessly.events, headlessly.streams, headlessly.checkpoints TO tamper_reader;
GRANT EXECUTE ON FUNCTION headlessly.checkpoint() TO tamper_reader;
SET ROLE tamper_reader;
SELECT headlessly.checkpoint();
SELECT tenant, ok FROM headlessly.verify();
-- the key file is a superuser's setting
\set VERBOSITY sqlstate
SET headlessly.signing_key_file = '/tmp/key.pem';
\set VERBOSITY default
RESET ROLE;
REVOKE ALL ON headlessly.events, headlessly.streams, headlessly.checkpoints FROM tamper_reader;
REVOKE EXECUTE ON FUNCTION headlessly.checkpoint() FROM tamper_reader;
REVOKE USAGE ON SCHEMA headlessly FROM tamper_reader;
DROP ROLE tamper_reader;

-- checkpoints are append-only too
\set VERBOSITY sqlstate
UPDATE headlessly.checkpoints SET count = 0;
DELETE FROM headlessly.checkpoints;
\set VERBOSITY default

-- signing: only a superuser sets the key file, an absolute path
SHOW headlessly.signing_key_file;
SET headlessly.signing_key_file = 'relative.pem';
SET headlessly.signing_key_file = '/nonexistent/key.pem';
SELECT (headlessly.events_append('page_view', tenant => 't1')).seq IS NOT NULL AS appended;
\set VERBOSITY sqlstate
SELECT headlessly.checkpoint();
\set VERBOSITY default
RESET headlessly.signing_key_file;
SELECT count(*) FROM headlessly.checkpoints;
