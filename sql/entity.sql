-- Entity semantics: Created, merge-patch verbs, Deleted, and re-creation.
\pset null '(null)'
-- its own tenants: other tests have entities named c1 too
SET headlessly.tenant = 'entity_test';

SELECT version, data, before
  FROM headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice", "email": "ALICE@x.test", "stage": "lead"}');
SELECT noun, version, state FROM headlessly.entities WHERE target = 'c1' AND tenant = 'entity_test';

-- any other verb is a top-level merge patch: keys replace, null removes
SELECT version, data, before
  FROM headlessly.events_append('Contact.Qualified', 'c1', '{"stage": "qualified", "score": 80}');
SELECT version, data, before
  FROM headlessly.events_append('Contact.Updated', 'c1', '{"email": null, "tags": ["vip"], "address": {"city": "Oslo"}}');
SELECT state FROM headlessly.entities WHERE target = 'c1' AND tenant = 'entity_test';

-- nested objects are replaced whole, not merged
SELECT before FROM headlessly.events_append('Contact.Updated', 'c1', '{"address": {"zip": "0150"}}');
SELECT state -> 'address' AS address FROM headlessly.entities WHERE target = 'c1' AND tenant = 'entity_test';

-- removing a key that is not there stores a null before-value
SELECT data, before FROM headlessly.events_append('Contact.Updated', 'c1', '{"nickname": null}');

-- custom verbs work like Updated
SELECT version, before FROM headlessly.events_append('Contact.Escalated', 'c1', '{"priority": "high"}');

-- Deleted: data as given, before is the last state; the entity is gone
SELECT version, data, before
  FROM headlessly.events_append('Contact.Deleted', 'c1', '{"reason": "gdpr"}');
SELECT count(*) AS live FROM headlessly.entities WHERE target = 'c1' AND tenant = 'entity_test';
SELECT target, version, noun, state FROM headlessly.streams WHERE target = 'c1' AND tenant = 'entity_test';

-- non-entity events may still arrive on the stream of a deleted entity
SELECT version FROM headlessly.events_append('email_bounced', 'c1');

-- Created again: a new life from scratch
SELECT version, data, before FROM headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice II"}');
SELECT noun, version, state, created_at = updated_at AS fresh FROM headlessly.entities WHERE target = 'c1' AND tenant = 'entity_test';

-- the whole stream
SELECT version, type, data, before FROM headlessly.events
 WHERE tenant = 'entity_test' AND target = 'c1' ORDER BY version;

-- an entity type without a target is a free-standing event
SELECT target, version, before FROM headlessly.events_append('Contact.Created', data => '{"name": "nobody"}');

-- types that look almost like entity types are free-standing
SELECT type, version FROM headlessly.events_append('contact.Created', 'c9');
SELECT type, version FROM headlessly.events_append('Contact.created', 'c9');
SELECT type, version FROM headlessly.events_append('Contact.Created.Again', 'c9');
SELECT count(*) AS entities_c9 FROM headlessly.entities WHERE target = 'c9' AND tenant = 'entity_test';

-- the same target in another tenant is another entity
SELECT tenant, version FROM headlessly.events_append('Deal.Created', 'c1', '{"amount": 10}', tenant => 'other_tenant');
SELECT tenant, noun, state FROM headlessly.entities
 WHERE target = 'c1' AND tenant IN ('entity_test', 'other_tenant') ORDER BY tenant;

-- expected_version: conditional appends
SELECT version FROM headlessly.events_append('Deal.Created', 'd1', '{"amount": 100}', expected_version => 0);
SELECT version FROM headlessly.events_append('Deal.Updated', 'd1', '{"amount": 120}', expected_version => 1);
SELECT version FROM headlessly.events_append('note_added', 'd1', expected_version => 2);

-- recorded_at never decreases along a stream, and updated_at follows state changes only
SELECT bool_and(recorded_at >= lag) AS monotonic
  FROM (SELECT recorded_at, lag(recorded_at, 1, '-infinity') OVER (ORDER BY version) AS lag
          FROM headlessly.events WHERE tenant = 'entity_test' AND target = 'c1') s;

RESET headlessly.tenant;
