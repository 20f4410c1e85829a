\echo Use "ALTER EXTENSION headlessly_events UPDATE TO '0.2'" to load this file. \quit

-- Internals are not for direct use; every public function says what it does.
REVOKE ALL ON FUNCTION headlessly.append_only_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.capture_trigger() FROM PUBLIC;

COMMENT ON FUNCTION headlessly.unhook(bigint) IS
    'Remove a hook registered with headlessly.hook(); false if there was none with that id.';
COMMENT ON FUNCTION headlessly.uncapture(regclass) IS
    'Stop capturing a table; false if it was not captured.';

-- Hooks ----------------------------------------------------------------------

-- Rows written without hook() (an INSERT or UPDATE of the registry, a
-- restore) get the checks hook() makes: pattern, phase, handler signature.
CREATE FUNCTION headlessly.hook_registry_check()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_hook_registry_check'
LANGUAGE C;

CREATE TRIGGER hook_registry_check
    BEFORE INSERT OR UPDATE ON headlessly.hook_registry
    FOR EACH ROW EXECUTE FUNCTION headlessly.hook_registry_check();
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_check;

REVOKE ALL ON FUNCTION headlessly.hook_registry_check() FROM PUBLIC;
