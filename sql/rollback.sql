-- events_rollback: one new event that brings the past state back.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_rollback';

SELECT version FROM headlessly.events_append('Contact.Created', 'r1',
       '{"name": "Alice", "email": "a@x.test", "stage": "lead"}');
SELECT version FROM headlessly.events_append('Contact.Qualified', 'r1', '{"stage": "qualified", "score": 80}');
CREATE TEMP TABLE marks AS SELECT 'qualified'::text AS name, max(recorded_at) AS at
  FROM headlessly.events WHERE tenant = 'tt_rollback' AND target = 'r1';
SELECT version FROM headlessly.events_append('Contact.Updated', 'r1', '{"email": null, "phone": "555", "stage": "customer"}');
SELECT version FROM headlessly.events_append('page_view', 'r1');

-- form 1: the entity is alive: Noun.Updated with a patch (null removes keys)
SELECT type, version, actor, data, before, metadata ? 'rollbackTo' AS has_time,
       metadata -> 'rollbackToVersion' AS to_version,
       (metadata ->> 'rollbackTo')::timestamptz = (SELECT at FROM marks) AS time_recorded
  FROM headlessly.events_rollback('r1', (SELECT at FROM marks), actor => 'admin_1');
SELECT headlessly.as_of('r1') AS now, headlessly.as_of('r1') = headlessly.as_of('r1', (SELECT at FROM marks)) AS restored;
SELECT state FROM headlessly.entities WHERE tenant = 'tt_rollback' AND target = 'r1';

-- rolling back to the state it already has appends an empty patch, for the record
SELECT type, version, data, before FROM headlessly.events_rollback('r1', (SELECT at FROM marks));

-- form 2: the entity is gone now: Noun.Created with the past state
SELECT version FROM headlessly.events_append('Contact.Deleted', 'r1', '{"reason": "mistake"}');
SELECT type, version, data, before, metadata -> 'rollbackToVersion' AS to_version
  FROM headlessly.events_rollback('r1', (SELECT at FROM marks));
SELECT headlessly.as_of('r1') = headlessly.as_of('r1', (SELECT at FROM marks)) AS restored;

-- form 3: gone then, alive now: Noun.Deleted
INSERT INTO marks SELECT 'deleted', max(recorded_at) FROM headlessly.events
 WHERE tenant = 'tt_rollback' AND target = 'r1' AND type = 'Contact.Deleted';
SELECT headlessly.as_of('r1', (SELECT at FROM marks WHERE name = 'deleted')) AS then;
SELECT type, version, data, before IS NOT NULL AS has_before
  FROM headlessly.events_rollback('r1', (SELECT at FROM marks WHERE name = 'deleted'));
SELECT count(*) AS live FROM headlessly.entities WHERE tenant = 'tt_rollback' AND target = 'r1';

-- gone then and gone now: nothing to do, a clear error (its message names
-- the time, which changes from run to run)
\set VERBOSITY sqlstate
SELECT * FROM headlessly.events_rollback('r1', (SELECT at FROM marks WHERE name = 'deleted'));
\set VERBOSITY default
SELECT :'LAST_ERROR_MESSAGE' ~ '^Contact "r1" was deleted at .* and is deleted now$' AS message_names_the_time;
\echo :LAST_ERROR_SQLSTATE

-- before the entity existed
SELECT * FROM headlessly.events_rollback('r1', '2000-01-01');
\echo :LAST_ERROR_SQLSTATE
-- no such target, not an entity, NULL arguments
SELECT * FROM headlessly.events_rollback('nobody', now());
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM headlessly.events_append('page_view', 'just_a_page');
SELECT * FROM headlessly.events_rollback('just_a_page', now());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_rollback('r1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_rollback(NULL, now());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_rollback('r1', 'infinity');
\echo :LAST_ERROR_SQLSTATE

-- the whole stream: the rollbacks are ordinary events
SELECT version, type, data, before FROM headlessly.events
 WHERE tenant = 'tt_rollback' AND target = 'r1' ORDER BY version;
