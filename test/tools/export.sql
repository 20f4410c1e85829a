-- Export headlessly.events for an outside check with test/tools/hl_verify.py:
-- one JSON object per line, in seq order.
--   psql -XAtq -v ON_ERROR_STOP=1 -f export.sql DBNAME > events.jsonl
-- Timestamps are exported as they print in UTC with DateStyle ISO (exact
-- over the whole range); jsonb columns as the text jsonb prints, in a JSON
-- string, so that no JSON parser can change a number or a key order.  With
-- each event its stored hash, and the number of the checkpoint that sealed it.
SET client_encoding = 'UTF8';
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT json_build_object(
    'seq', e.seq, 'id', e.id, 'tenant', e.tenant, 'type', e.type, 'target', e.target,
    'version', e.version, 'actor', e.actor, 'source', e.source,
    'source_type', e.source_type, 'external_event_id', e.external_event_id,
    'occurred_at', e.occurred_at::text, 'recorded_at', e.recorded_at::text,
    'data', e.data::text, 'before', e.before::text, 'metadata', e.metadata::text,
    'raw_payload', e.raw_payload, 'hash', encode(e.hash, 'hex'),
    'checkpoint', (SELECT c.number FROM headlessly.checkpoints c
                    WHERE c.tenant = e.tenant AND e.seq BETWEEN c.first_seq AND c.last_seq
                      AND c.seqs @> e.seq))
FROM headlessly.events e
ORDER BY e.seq;
