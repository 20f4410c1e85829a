-- events_append_batch: all or nothing, one row per input, in input order.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'batch_test';

SELECT type, target, version, actor, data, before, tenant
  FROM headlessly.events_append_batch('[
    {"type": "Deal.Created", "target": "deal_1", "data": {"stage": "new", "amount": 100}, "actor": "u1"},
    {"type": "page_view", "data": {"path": "/"}},
    {"type": "Deal.Updated", "target": "deal_1", "data": {"stage": "won"}},
    {"type": "Deal.Created", "target": "deal_2", "tenant": "other_tenant"},
    {"type": "Deal.Closed", "target": "deal_1", "expected_version": 2}
  ]');

SELECT target, state FROM headlessly.entities WHERE tenant = 'batch_test' ORDER BY target;

-- every key of events_append is accepted
SELECT type, target, version, actor, tenant, source, source_type, external_event_id,
       occurred_at, metadata, raw_payload
  FROM headlessly.events_append_batch('[{"type": "charge.succeeded", "target": "cus_1", "data": {},
       "actor": "stripe", "tenant": "batch_test", "source": "stripe", "source_type": "external",
       "external_event_id": "evt_b1", "occurred_at": "2026-01-15T10:00:00Z",
       "expected_version": 0, "metadata": {"ip": "::1"}, "raw_payload": "{\"id\": \"evt_b1\"}"}]');

-- duplicates, in the batch and of stored events, return the stored row in place
SELECT type, version, external_event_id, data
  FROM headlessly.events_append_batch('[
    {"type": "charge.succeeded", "source": "stripe", "external_event_id": "evt_b1", "data": {"x": 1}},
    {"type": "charge.refunded", "source": "stripe", "external_event_id": "evt_b2", "data": {"n": 1}},
    {"type": "charge.refunded", "source": "stripe", "external_event_id": "evt_b2", "data": {"n": 2}},
    {"type": "charge.disputed", "source": "stripe", "external_event_id": "evt_b3"}
  ]');
SELECT count(*) AS stored_b2 FROM headlessly.events WHERE external_event_id = 'evt_b2';

-- an empty array appends nothing
SELECT count(*) FROM headlessly.events_append_batch('[]');

CREATE TEMP TABLE baseline AS SELECT count(*) AS events FROM headlessly.events;

-- one bad element: nothing of the batch is stored
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2"}, {"type": "Deal.Updated", "target": "nope"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2", "data": [1]}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "Deal.Updated", "target": "deal_1", "expected_version": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": null}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2", "data": null}]');
\echo :LAST_ERROR_SQLSTATE
-- malformed elements and keys
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, "page_view"]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2", "taget": "x"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1", "target": 7}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1", "target": "t", "expected_version": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1", "occurred_at": "yesterday-ish"}]');
\echo :LAST_ERROR_SQLSTATE
-- the element and the key are named for timestamps too
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2"}, {"type": "ok_3", "occurred_at": "2026-13-45"}]');
\echo :LAST_ERROR_SQLSTATE
-- errors raised while the rows are appended name the element too (context)
\set SHOW_CONTEXT errors
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2"}, {"type": ""}]');
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "Deal.Created", "target": "deal_1"}]');
\set SHOW_CONTEXT never
-- expected_version must be a whole number in range: jsonb would round 0.4 to 0
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "Deal.Updated", "target": "deal_9", "expected_version": 0.4}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "Deal.Updated", "target": "deal_1", "data": {"x": 1}, "expected_version": 3.5}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1"}, {"type": "ok_2", "target": "t", "expected_version": -1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1", "target": "t", "expected_version": 1e30}]');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('[{"type": "ok_1", "target": "t", "expected_version": 9223372036854775807}]');
\echo :LAST_ERROR_SQLSTATE
-- a whole number written with a fraction part is still that number
SELECT type, version FROM headlessly.events_append_batch('[{"type": "Deal.Updated", "target": "deal_1", "data": {"y": 1}, "expected_version": 3.0}]');
UPDATE baseline SET events = events + 1;
-- not an array
SELECT headlessly.events_append_batch('{"type": "page_view"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch('"page_view"');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append_batch(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM headlessly.events) = events AS nothing_stored FROM baseline;

RESET headlessly.tenant;
