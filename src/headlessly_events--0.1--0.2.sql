\echo Use "ALTER EXTENSION headlessly_events UPDATE TO '0.2'" to load this file. \quit

-- Internals are not for direct use; every public function says what it does.
REVOKE ALL ON FUNCTION headlessly.append_only_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.capture_trigger() FROM PUBLIC;

COMMENT ON FUNCTION headlessly.unhook(bigint) IS
    'Remove a hook registered with headlessly.hook(); false if there was none with that id.';
COMMENT ON FUNCTION headlessly.uncapture(regclass) IS
    'Stop capturing a table; false if it was not captured.';
