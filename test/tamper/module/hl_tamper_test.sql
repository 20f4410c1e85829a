-- The test module's functions; psql variable :lib is the path of its .so.
CREATE SCHEMA tamper_test;

CREATE FUNCTION tamper_test.canonical(e headlessly.events) RETURNS bytea
    STRICT LANGUAGE c AS :'lib', 'tamper_test_canonical';
CREATE FUNCTION tamper_test.canonical_of(
    seq bigint, id text, tenant text, type text, target text, version bigint,
    actor text, source text, source_type text, external_event_id text,
    occurred_at timestamptz, recorded_at timestamptz, data jsonb, before jsonb,
    metadata jsonb, raw_payload text) RETURNS bytea
    LANGUAGE c AS :'lib', 'tamper_test_canonical_of';
CREATE FUNCTION tamper_test.jsonb_text(jsonb) RETURNS text
    STRICT LANGUAGE c AS :'lib', 'tamper_test_jsonb_text';
CREATE FUNCTION tamper_test.event_hashes(log regclass, tenant text DEFAULT NULL)
    RETURNS TABLE (seq bigint, id text, prev bytea, hash bytea, canonical bytea)
    LANGUAGE c AS :'lib', 'tamper_test_event_hashes';
CREATE FUNCTION tamper_test.scan(log regclass, mode text,
                                 OUT events bigint, OUT root bytea)
    STRICT LANGUAGE c AS :'lib', 'tamper_test_scan';
CREATE FUNCTION tamper_test.merkle_root(bytea[]) RETURNS bytea
    STRICT LANGUAGE c AS :'lib', 'tamper_test_merkle_root';
CREATE FUNCTION tamper_test.audit_path(bytea[], bigint) RETURNS bytea[]
    STRICT LANGUAGE c AS :'lib', 'tamper_test_audit_path';
CREATE FUNCTION tamper_test.checkpoint_hash(tenant text, number bigint, prev bytea,
    root bytea, count bigint, first_seq bigint, last_seq bigint) RETURNS bytea
    STRICT LANGUAGE c AS :'lib', 'tamper_test_checkpoint_hash';
CREATE FUNCTION tamper_test.sign(key_file text, hash bytea,
                                 OUT signature text, OUT public_key text)
    STRICT LANGUAGE c AS :'lib', 'tamper_test_sign';

-- 'ok' if the statement fails with that SQLSTATE, else what happened
CREATE FUNCTION tamper_test.fails_with(statement text, sqlstate text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE = fails_with.sqlstate THEN
        RETURN 'ok';
    END IF;
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
