-- Time travel: as_of, as_of_version, entities_as_of over a contact's life.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_test';
-- a snapshot every 2 versions, so that reads start from snapshots too
SET headlessly.snapshot_interval = 2;
SHOW headlessly.snapshot_interval;

-- each statement is its own transaction, so each event has its own recorded_at
SELECT version FROM headlessly.events_append('Contact.Created', 'c1',
       '{"name": "Alice", "email": "a@x.test", "stage": "lead"}', actor => 'agent_1');
SELECT version FROM headlessly.events_append('Contact.Qualified', 'c1', '{"stage": "qualified", "score": 80}');
SELECT version FROM headlessly.events_append('page_view', 'c1', '{"path": "/pricing"}');
SELECT version, before FROM headlessly.events_append('Contact.Updated', 'c1', '{"email": null, "phone": "555"}');
SELECT version, before FROM headlessly.events_append('Contact.Deleted', 'c1', '{"reason": "gdpr"}');
SELECT version FROM headlessly.events_append('email_bounced', 'c1');
SELECT version FROM headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice II"}');
SELECT version FROM headlessly.events_append('Contact.Updated', 'c1', '{"stage": "lead"}');

-- snapshots were written at versions 2, 4, 6 and 8
SELECT version, state FROM headlessly.snapshots WHERE tenant = 'tt_test' AND target = 'c1' ORDER BY version;

-- every instant: just before each event, at it, and half way to the next
CREATE TEMP TABLE instants AS
SELECT version, recorded_at,
       lead(recorded_at) OVER (ORDER BY version) AS next_at
  FROM headlessly.events WHERE tenant = 'tt_test' AND target = 'c1';
SELECT version,
       headlessly.as_of('c1', recorded_at - interval '1 microsecond') AS just_before,
       headlessly.as_of('c1', recorded_at) AS at_event,
       headlessly.as_of('c1', recorded_at + (coalesce(next_at, recorded_at + interval '1 hour') - recorded_at) / 2) AS half_way
  FROM instants ORDER BY version;

-- by version
SELECT v, headlessly.as_of_version('c1', v) FROM generate_series(0, 9) v;

-- the same with snapshots missing (after a restore without them, say): same answers
CREATE TEMP TABLE with_snapshots AS
SELECT version, headlessly.as_of('c1', recorded_at) AS s, headlessly.as_of_version('c1', version) AS v
  FROM instants;
DELETE FROM headlessly.snapshots WHERE tenant = 'tt_test' AND target = 'c1';
SELECT count(*) AS differences FROM with_snapshots w
 WHERE w.s IS DISTINCT FROM headlessly.as_of('c1', (SELECT recorded_at FROM instants i WHERE i.version = w.version))
    OR w.v IS DISTINCT FROM headlessly.as_of_version('c1', w.version);

-- the present; at NULL; +/- infinity
SELECT headlessly.as_of('c1') AS present,
       headlessly.as_of('c1', NULL) AS at_null,
       headlessly.as_of('c1', 'infinity') AS at_infinity,
       headlessly.as_of('c1', '-infinity') AS at_minus_infinity;
SELECT headlessly.as_of('c1') = state AS present_is_current FROM headlessly.entities WHERE tenant = 'tt_test' AND target = 'c1';

-- a transaction sees its own appends, and as_of never shows half of one
BEGIN;
SELECT version FROM headlessly.events_append('Contact.Updated', 'c1', '{"stage": "customer"}');
SELECT version FROM headlessly.events_append('Contact.Updated', 'c1', '{"plan": "pro"}');
SELECT headlessly.as_of('c1') AS own_appends, headlessly.as_of('c1', now()) AS at_now,
       headlessly.as_of('c1', now() - interval '1 microsecond') AS before_this_transaction;
ROLLBACK;

-- other tenants are other worlds
SELECT headlessly.as_of('c1', tenant => 'someone_else') AS other_tenant;
SELECT version FROM headlessly.events_append('Contact.Created', 'c1', '{"name": "Other"}', tenant => 'tt_other');
SELECT headlessly.as_of('c1', tenant => 'tt_other') AS other_tenant, headlessly.as_of('c1') AS ours;

-- invalid arguments
SELECT headlessly.as_of('no_such_target') AS unknown_target,
       headlessly.as_of('no_such_target', now()) AS unknown_target_at,
       headlessly.as_of_version('no_such_target', 1) AS unknown_target_version;
SELECT headlessly.as_of(NULL) AS null_target, headlessly.as_of_version('c1', NULL) AS null_version;
SELECT headlessly.as_of_version('c1', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.as_of('c1', 'yesterday at noon');
\echo :LAST_ERROR_SQLSTATE
