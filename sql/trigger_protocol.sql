-- The trigger protocol of every trigger function of the extension: called
-- directly, or fired otherwise than it was written for, each refuses with
-- 39P01 before it reads the trigger data, and the statement stores nothing.
\set SHOW_CONTEXT never
\set VERBOSITY default
-- called directly, not by the trigger manager
SELECT headlessly.restored_position_check();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.subscriptions_changed();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.capture_trigger();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_after_insert();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook_registry_changed();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.hook_registry_check();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.append_only_guard();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.streams_changed();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_before_insert();
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.tenant_grants_changed();
\echo :LAST_ERROR_SQLSTATE

-- fire_wrongly(FUNCTION, TIMING, EVENTS, LEVEL): an INSERT and an UPDATE on
-- a table of their own with the function attached that way; the error, and
-- what was stored.  Some of these triggers make their table append-only
-- (no DROP TRIGGER), so each case drops its table.
CREATE FUNCTION pg_temp.fire_wrongly(fn text, timing text, events text, level text)
RETURNS TABLE (err_state text, err_message text, rows_stored bigint)
LANGUAGE plpgsql AS $$
BEGIN
  CREATE TABLE trig_scratch (id int, position bigint);
  EXECUTE format('CREATE TRIGGER wrong %s %s ON trig_scratch FOR EACH %s EXECUTE FUNCTION %s',
                 timing, events, level, fn);
  BEGIN
    INSERT INTO trig_scratch VALUES (1, 1);
    UPDATE trig_scratch SET id = 2;
    err_state := '00000';
    err_message := 'no error';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
  END;
  rows_stored := (SELECT count(*) FROM trig_scratch);
  DROP TABLE trig_scratch;
  RETURN NEXT;
END
$$;

SELECT f.fn, f.timing, f.events, f.level, w.*
  FROM (VALUES
    ('headlessly.restored_position_check(''position'')', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.restored_position_check(''position'')', 'BEFORE', 'INSERT', 'STATEMENT'),
    ('headlessly.restored_position_check(''position'')', 'BEFORE', 'UPDATE', 'ROW'),
    ('headlessly.subscriptions_changed()', 'BEFORE', 'INSERT', 'STATEMENT'),
    ('headlessly.subscriptions_changed()', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.hook_registry_changed()', 'BEFORE', 'INSERT', 'STATEMENT'),
    ('headlessly.hook_registry_changed()', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.events_after_insert()', 'BEFORE', 'INSERT', 'ROW'),
    ('headlessly.events_after_insert()', 'AFTER', 'INSERT', 'STATEMENT'),
    ('headlessly.events_after_insert()', 'AFTER', 'UPDATE', 'ROW'),
    ('headlessly.hook_registry_check()', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.hook_registry_check()', 'BEFORE', 'INSERT', 'STATEMENT'),
    ('headlessly.hook_registry_check()', 'BEFORE', 'DELETE OR INSERT', 'STATEMENT'),
    ('headlessly.append_only_guard()', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.streams_changed()', 'AFTER', 'INSERT', 'STATEMENT'),
    ('headlessly.streams_changed()', 'BEFORE', 'INSERT', 'ROW'),
    ('headlessly.events_before_insert()', 'AFTER', 'INSERT', 'ROW'),
    ('headlessly.events_before_insert()', 'BEFORE', 'INSERT', 'STATEMENT'),
    ('headlessly.events_before_insert()', 'BEFORE', 'UPDATE', 'ROW'),
    ('headlessly.capture_trigger()', 'BEFORE', 'INSERT', 'ROW'),
    ('headlessly.capture_trigger()', 'AFTER', 'INSERT', 'STATEMENT'))
    AS f (fn, timing, events, level),
  LATERAL pg_temp.fire_wrongly(f.fn, f.timing, f.events, f.level) w;

-- an UPDATE where only INSERT is expected: the row the INSERT stored stays
CREATE TABLE trig_scratch (id int, position bigint);
INSERT INTO trig_scratch VALUES (1, 1);
CREATE TRIGGER wrong BEFORE UPDATE ON trig_scratch FOR EACH ROW
  EXECUTE FUNCTION headlessly.events_before_insert();
UPDATE trig_scratch SET id = 2;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM trig_scratch;
DROP TABLE trig_scratch;
