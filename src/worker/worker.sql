-- The background worker ------------------------------------------------------

-- With shared_preload_libraries = 'headlessly_events', a launcher starts one
-- worker per database that has the extension.  Installing (or updating) the
-- extension tells it, at commit, to look here.
CREATE FUNCTION headlessly.worker_wake()
RETURNS boolean
AS 'MODULE_PATHNAME', 'hl_worker_wake_sql'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION headlessly.worker_wake() IS
    'Have the background worker''s launcher look for the extension in this database when the transaction commits; false when no worker runs (the library is not in shared_preload_libraries). Called by the install and upgrade scripts.';

REVOKE ALL ON FUNCTION headlessly.worker_wake() FROM PUBLIC;

SELECT headlessly.worker_wake();
