-- Table capture -------------------------------------------------------------

CREATE FUNCTION headlessly.capture_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_capture_trigger'
LANGUAGE C;

CREATE FUNCTION headlessly.capture(rel regclass, noun text DEFAULT NULL, id_column name DEFAULT 'id')
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_capture'
LANGUAGE C;

COMMENT ON FUNCTION headlessly.capture(regclass, text, name) IS
    'Append Noun.Created, Noun.Updated (changed columns) and Noun.Deleted for every INSERT, UPDATE and DELETE of a table.';

CREATE FUNCTION headlessly.uncapture(rel regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_uncapture'
LANGUAGE C STRICT;

COMMENT ON FUNCTION headlessly.uncapture(regclass) IS
    'Stop capturing a table; false if it was not captured.';

-- capture_trigger() keeps EXECUTE for PUBLIC, as append_only_guard() does:
-- capture() runs CREATE TRIGGER with the rights of the table's owner, which
-- needs it.  It grants nothing more: the trigger appends as the role that
-- writes the table, through the log's own checks and rights.
