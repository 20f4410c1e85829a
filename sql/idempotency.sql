-- Idempotency: (tenant, source, external_event_id) is stored once.
\pset null '(null)'
-- a log of its own: the default tenant's streams and keys are this test's alone
SET client_min_messages = warning;
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
RESET client_min_messages;

SELECT version, data, source, external_event_id
  FROM headlessly.events_append('Order.Created', 'order_1', '{"total": 10}',
                                source => 'shopify', external_event_id => 'wh_1') \gset first_
SELECT :first_version AS version;

-- the same key again: the first row comes back, nothing is stored, no version is taken
SELECT e.id = f.id AS same_event, e.data, e.version
  FROM headlessly.events_append('Order.Created', 'order_1', '{"total": 99}',
                                source => 'shopify', external_event_id => 'wh_1') e,
       (SELECT id FROM headlessly.events WHERE external_event_id = 'wh_1') f;
SELECT count(*) AS stored FROM headlessly.events WHERE external_event_id = 'wh_1';
SELECT version FROM headlessly.streams WHERE target = 'order_1';

-- a duplicate is returned even where the append itself would now be refused
SELECT type, version FROM headlessly.events_append('Order.Created', 'order_1', '{}',
                                                   source => 'shopify', external_event_id => 'wh_1');

-- another source or tenant is another key
SELECT source, tenant, version FROM headlessly.events_append('order_paid', 'order_1', source => 'stripe', external_event_id => 'wh_1');
SELECT source, tenant, version FROM headlessly.events_append('order_paid', 'order_1', tenant => 't2', source => 'shopify', external_event_id => 'wh_1');

-- a key without a source is still a key
SELECT version FROM headlessly.events_append('ping', 'order_1', external_event_id => 'nosrc_1');
SELECT version FROM headlessly.events_append('ping', 'order_1', external_event_id => 'nosrc_1');
SELECT count(*) AS stored FROM headlessly.events WHERE external_event_id = 'nosrc_1';

-- within one transaction
BEGIN;
SELECT version FROM headlessly.events_append('ping', 'order_2', source => 'api', external_event_id => 'tx_1');
SELECT version FROM headlessly.events_append('ping', 'order_2', source => 'api', external_event_id => 'tx_1');
COMMIT;
SELECT count(*) AS stored FROM headlessly.events WHERE external_event_id = 'tx_1';

-- a rolled-back append frees its key
BEGIN;
SELECT version FROM headlessly.events_append('ping', 'order_3', source => 'api', external_event_id => 'rb_1');
ROLLBACK;
SELECT version FROM headlessly.events_append('ping', 'order_3', source => 'api', external_event_id => 'rb_1');

-- the partial unique index the contract names
SELECT pg_get_indexdef('headlessly.events_idempotency_idx'::regclass);

-- a duplicate runs no part of the append: the stream head is untouched
SELECT target, version FROM headlessly.streams WHERE target IN ('order_1', 'order_2', 'order_3') AND tenant = 'default' ORDER BY target;

-- the log's unique index is the keys' only store
SELECT count(*) AS key_tables FROM pg_class
 WHERE relnamespace = 'headlessly'::regnamespace AND relname = 'event_keys';
