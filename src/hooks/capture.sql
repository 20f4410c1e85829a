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

REVOKE ALL ON FUNCTION headlessly.capture_trigger() FROM PUBLIC;
