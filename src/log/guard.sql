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
    'Refuse UPDATE, DELETE, TRUNCATE and the DDL that could change its rows or remove its guard on a table, for every role; INSERT stays allowed.';

-- The log guards itself the same way users' tables are guarded.
SELECT headlessly.make_append_only('headlessly.events');

CREATE FUNCTION headlessly.guard_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'headlessly_guard_ddl'
LANGUAGE C;

-- Every command that could reach a guarded table or the extension's objects
-- (guard_ddl.c has the checks; without the library preloaded, this is what
-- runs them).
CREATE EVENT TRIGGER headlessly_guard_ddl
    ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER SEQUENCE', 'ALTER VIEW', 'ALTER SCHEMA',
                 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER TRIGGER',
                 'ALTER EXTENSION', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'CREATE SCHEMA',
                 'CREATE TRIGGER', 'CREATE RULE', 'CREATE FUNCTION', 'CREATE PROCEDURE',
                 'CREATE VIEW', 'DROP TRIGGER', 'DROP INDEX', 'DROP SEQUENCE', 'ALTER TYPE')
    EXECUTE FUNCTION headlessly.guard_ddl();
ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS;

REVOKE ALL ON FUNCTION headlessly.guard_ddl() FROM PUBLIC;
-- append_only_guard() stays executable by PUBLIC, as PostgreSQL's own trigger
-- functions are: make_append_only() runs as its caller, and CREATE TRIGGER
-- needs EXECUTE on the function; called any other way, it only raises.
