-- Tamper evidence --------------------------------------------------------------

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
