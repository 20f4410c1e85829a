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
