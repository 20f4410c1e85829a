-- Export headlessly.events for an outside check with test/tools/hl_verify.py:
-- one JSON object per line, in seq order.
--   psql -XAtq -v ON_ERROR_STOP=1 -f export.sql DBNAME > events.jsonl
-- Timestamps are exported as they print in UTC with DateStyle ISO (exact
-- over the whole range); jsonb columns as the text jsonb prints, in a JSON
-- string, so that no JSON parser can change a number or a key order.
SET client_encoding = 'UTF8';
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT json_build_object(
    'seq', seq, 'id', id, 'tenant', tenant, 'type', type, 'target', target,
    'version', version, 'actor', actor, 'source', source,
    'source_type', source_type, 'external_event_id', external_event_id,
    'occurred_at', occurred_at::text, 'recorded_at', recorded_at::text,
    'data', data::text, 'before', before::text, 'metadata', metadata::text,
    'raw_payload', raw_payload)
FROM headlessly.events
ORDER BY seq;
