-- Found by the hostile review of 0.2: each section reproduces a defect that
-- was fixed, and checks the SQLSTATE and that nothing was stored or changed.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'hr';

-- A BEFORE INSERT trigger of the log's owner that skips a row (it fires
-- before the log's own, so the log allows it) stores nothing: the append
-- functions give back NULL for that event, as INSERT ... RETURNING gives no
-- row, instead of an internal error.
SELECT version FROM headlessly.events_append('Spam.Created', 'hr_spam', '{"a": 1}');
SELECT recorded_at AS hr_t1 FROM headlessly.events WHERE target = 'hr_spam' \gset
SELECT version FROM headlessly.events_append('Spam.Updated', 'hr_spam', '{"a": 2}');
CREATE FUNCTION public.hr_skip_spam() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.type = 'spam' OR NEW.target = 'hr_spam' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_hr_skip_spam BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION public.hr_skip_spam();
SELECT count(*) AS events_before FROM headlessly.events \gset
SELECT e IS NULL AS skipped FROM headlessly.events_append('spam') e;
SELECT e IS NULL AS skipped FROM headlessly.events_append('spam', external_event_id => 'hr_k1') e;
SELECT type, id IS NULL AS skipped
  FROM headlessly.events_append_batch('[{"type": "spam"}, {"type": "hr_kept"},
                                        {"type": "spam", "external_event_id": "hr_k2"}]');
-- a key that is stored comes back as the stored row, skipped or not
SELECT type FROM headlessly.events_append('hr_keyed', external_event_id => 'hr_k3');
SELECT type FROM headlessly.events_append('spam', external_event_id => 'hr_k3');
-- events_rollback's event skipped
SELECT e IS NULL AS skipped FROM headlessly.events_rollback('hr_spam', :'hr_t1') e;
SELECT version, state FROM headlessly.entities WHERE target = 'hr_spam';
SELECT count(*) - :events_before AS stored FROM headlessly.events;
SELECT count(*) AS skipped_stored FROM headlessly.events WHERE type = 'spam';
DROP TRIGGER a_hr_skip_spam ON headlessly.events;
DROP FUNCTION public.hr_skip_spam();
