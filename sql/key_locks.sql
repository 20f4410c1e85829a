-- Idempotency keys are claimed under a short lock on the key, released once
-- the row is in the log's unique index: a keyed batch holds one at a time,
-- however many keys it has, so the lock table never fills.  A before hook
-- looks at this backend's locks while the batch runs.
CREATE TABLE key_lock_counts (n bigint);
CREATE FUNCTION count_key_locks(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO key_lock_counts
    SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
    RETURNING NULL::jsonb
$$;
SELECT headlessly.hook('lock_probe', 'before', 'count_key_locks(jsonb)') AS probe \gset
BEGIN;
SELECT count(*) AS appended, count(DISTINCT seq) AS stored
  FROM headlessly.events_append_batch((SELECT jsonb_agg(jsonb_build_object('type', 'lock_probe', 'external_event_id', 'lk_' || i % 3000))
                                         FROM generate_series(1, 5000) i));
SELECT count(*) AS hook_calls, max(n) AS most_key_locks_held FROM key_lock_counts;
SELECT count(*) AS key_locks_after FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';
COMMIT;
SELECT headlessly.unhook(:probe);
DROP TABLE key_lock_counts;
DROP FUNCTION count_key_locks(jsonb);

-- a plain INSERT keeps its key lock until this backend's next append, in
-- this statement or a later one (its row is in the index by then), also
-- across a rolled-back savepoint; no warning, nothing released twice
BEGIN;
SAVEPOINT a;
INSERT INTO headlessly.events (type, external_event_id) VALUES ('sp_probe', 'sp_k1');
SELECT count(*) AS key_locks_held FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';
ROLLBACK TO SAVEPOINT a;
SELECT count(*) AS key_locks_held FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';
INSERT INTO headlessly.events (type, external_event_id) VALUES ('sp_probe', 'sp_k1');
INSERT INTO headlessly.events (type, external_event_id) VALUES ('sp_probe', 'sp_k2');
SELECT count(*) AS key_locks_held FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';
COMMIT;
DO $$
BEGIN
    BEGIN
        PERFORM headlessly.events_append('Nobody.Updated', 'sp_missing', external_event_id => 'sp_k3');
    EXCEPTION WHEN sqlstate 'ZE004' THEN
        RAISE NOTICE 'refused: %', SQLERRM;
    END;
    PERFORM headlessly.events_append('sp_probe', external_event_id => 'sp_k3');
END
$$;
SELECT external_event_id, count(*) FROM headlessly.events WHERE type = 'sp_probe'
 GROUP BY external_event_id ORDER BY 1;
