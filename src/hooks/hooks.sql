-- Hooks ----------------------------------------------------------------------

CREATE TABLE headlessly.hook_registry (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern     text NOT NULL,
    phase       text NOT NULL CHECK (phase IN ('before', 'after', 'after_commit')),
    handler     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  name NOT NULL DEFAULT current_user,
    handler_owner regrole
);

COMMENT ON TABLE headlessly.hook_registry IS
    'Registered hooks; change it with headlessly.hook() and headlessly.unhook(), which tell every session.';

COMMENT ON COLUMN headlessly.hook_registry.handler IS
    'The handler function, schema-qualified with its argument types (text rather than regprocedure, which pg_upgrade refuses); a name written here is resolved under the writer''s search_path and stored qualified.';

COMMENT ON COLUMN headlessly.hook_registry.handler_owner IS
    'The owner of the handler function when the hook was registered, set by the registry''s row trigger; a function of that name owned by another role is no handler (it would run as every appending role).';

CREATE VIEW headlessly.hooks AS
    SELECT r.id, r.pattern, r.phase,
           (SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
             WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(r.handler)
               AND p.proowner OPERATOR(pg_catalog.=) r.handler_owner) AS handler,
           row_number() OVER (PARTITION BY r.phase ORDER BY r.id) AS position,
           r.created_at
      FROM headlessly.hook_registry r;

COMMENT ON VIEW headlessly.hooks IS
    'Hooks in the order they run within their phase.';

CREATE TABLE headlessly.hook_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text NOT NULL,
    hook_id     bigint NOT NULL,
    handler     text NOT NULL,
    sqlstate    text NOT NULL,
    message     text NOT NULL,
    detail      text,
    hint        text,
    failed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX hook_failures_event_idx ON headlessly.hook_failures (event_id);

COMMENT ON TABLE headlessly.hook_failures IS
    'After hooks that raised: their work was undone, the append went on.';

SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_registry', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_registry_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_failures', '');
SELECT pg_catalog.pg_extension_config_dump('headlessly.hook_failures_id_seq', '');

CREATE FUNCTION headlessly.hook(pattern text, phase text, handler regprocedure,
                                max_attempts integer DEFAULT 10)
RETURNS bigint
AS 'MODULE_PATHNAME', 'headlessly_hook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.hook(text, text, regprocedure, integer) IS
    'Run handler(event jsonb) RETURNS jsonb before or after each appended event whose type matches pattern, in its transaction, or after_commit: once it has committed, as the registering role, retried up to max_attempts.';

CREATE FUNCTION headlessly.unhook(id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_unhook'
LANGUAGE C VOLATILE STRICT;

-- The log's AFTER INSERT trigger (events_after_append, running this function)
-- exists only while after hooks are registered, so that appends without them
-- queue no trigger events; the registry's own trigger creates and drops it,
-- also when a restore loads the registry.
CREATE FUNCTION headlessly.events_after_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_events_after_insert'
LANGUAGE C;

CREATE FUNCTION headlessly.hook_registry_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_hook_registry_changed'
LANGUAGE C;

CREATE TRIGGER hook_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.hook_registry
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.hook_registry_changed();
ALTER TABLE headlessly.hook_registry ENABLE ALWAYS TRIGGER hook_registry_changed;

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

COMMENT ON FUNCTION headlessly.unhook(bigint) IS
    'Remove a hook registered with headlessly.hook(); false if there was none with that id.';

REVOKE ALL ON FUNCTION headlessly.events_after_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.hook_registry_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION headlessly.hook_registry_check() FROM PUBLIC;
