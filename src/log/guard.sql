-- Immutability ---------------------------------------------------------------

CREATE FUNCTION headlessly.append_only_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_append_only_guard'
LANGUAGE C;

COMMENT ON FUNCTION headlessly.append_only_guard() IS
    'Trigger that refuses UPDATE, DELETE and TRUNCATE with SQLSTATE ZE001.';

CREATE FUNCTION headlessly.make_append_only(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_make_append_only'
LANGUAGE C STRICT;

COMMENT ON FUNCTION headlessly.make_append_only(regclass) IS
    'Refuse UPDATE, DELETE, TRUNCATE and trigger disabling on a table, for every role; INSERT stays allowed.';

-- The log guards itself the same way users' tables are guarded.
SELECT headlessly.make_append_only('headlessly.events');

CREATE FUNCTION headlessly.guard_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'headlessly_guard_ddl'
LANGUAGE C;

CREATE EVENT TRIGGER headlessly_guard_ddl
    ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION headlessly.guard_ddl();
ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS;

REVOKE ALL ON FUNCTION headlessly.guard_ddl() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.append_only_guard() FROM PUBLIC;
