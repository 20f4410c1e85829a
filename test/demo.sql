\pset null '∅'
\set SHOW_CONTEXT never
\set ECHO queries
\set VERBOSITY default

CREATE EXTENSION headlessly_events;

-- A contact is created and changed; each fact is one appended event.
SELECT seq, id, type, target, version, data, before
  FROM headlessly.events_append('Contact.Created', 'contact_1',
                                '{"name": "Alice", "email": "alice@example.com"}', actor => 'agent_7');
SELECT seq, type, version, data, before
  FROM headlessly.events_append('Contact.Qualified', 'contact_1', '{"stage": "qualified", "email": null}');
SELECT seq, type, version
  FROM headlessly.events_append('page_view', 'contact_1', metadata => '{"sessionId": "s_1", "path": "/pricing"}');

-- The current state, maintained by every append in the same transaction.
SELECT target, noun, version, state FROM headlessly.entities;

-- A Stripe webhook delivered twice: stored once, the first row comes back both times.
SELECT seq, type, external_event_id, data
  FROM headlessly.events_append('invoice.paid', data => '{"amount": 4200}', source => 'stripe',
                                source_type => 'external', external_event_id => 'evt_1Nx',
                                raw_payload => '{"id":"evt_1Nx","amount":4200}');
SELECT seq, type, external_event_id, data
  FROM headlessly.events_append('invoice.paid', data => '{"amount": 4200}', source => 'stripe',
                                source_type => 'external', external_event_id => 'evt_1Nx',
                                raw_payload => '{"id":"evt_1Nx","amount":4200}');

-- A batch is all or nothing and returns rows in input order.
SELECT seq, type, target, version
  FROM headlessly.events_append_batch('[{"type": "Deal.Created", "target": "deal_1", "data": {"amount": 100}},
                                        {"type": "Deal.Closed", "target": "deal_1", "data": {"won": true}}]');

-- Optimistic concurrency: the append only happens at the expected version.
SELECT headlessly.events_append('Deal.Updated', 'deal_1', '{"amount": 90}', expected_version => 1);

-- Time travel: the contact as it was after its first event.
SELECT headlessly.as_of_version('contact_1', 1) AS contact_at_version_1;

-- A before hook lower-cases e-mail addresses of every Contact event.
CREATE FUNCTION lower_email(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT CASE WHEN event->'data' ? 'email'
              THEN jsonb_build_object('email', lower(event->'data'->>'email')) END $$;
SELECT headlessly.hook('Contact.*', 'before', 'lower_email(jsonb)') AS hook_id;
SELECT type, version, data FROM headlessly.events_append('Contact.Updated', 'contact_1', '{"email": "ALICE@EXAMPLE.COM"}');

-- Table capture: an ordinary table's changes become entity events.
CREATE TABLE deals (id int PRIMARY KEY, amount int, stage text);
SELECT headlessly.capture('deals');
INSERT INTO deals VALUES (7, 500, 'open');
UPDATE deals SET stage = 'won' WHERE id = 7;
SELECT type, target, version, data, before FROM headlessly.events WHERE target = 'deal_7' ORDER BY version;

-- The log is immutable, for superusers too.
UPDATE headlessly.events SET actor = 'mallory';
DELETE FROM headlessly.events;
TRUNCATE headlessly.events;
ALTER TABLE headlessly.events DISABLE TRIGGER ALL;

-- Bad input is refused with a clear error.
SELECT headlessly.events_append('Contact.Updated', 'contact_404', '{"name": "nobody"}');
SELECT headlessly.events_append('page_view', data => '[1, 2, 3]');

SELECT count(*) AS events, count(DISTINCT target) AS targets FROM headlessly.events;

-- The background worker (shared_preload_libraries) serves this database.
SELECT backend_type, datname FROM pg_stat_activity WHERE backend_type LIKE 'headlessly%' ORDER BY 1;

-- An after_commit hook runs in the worker once the append has committed.
CREATE TABLE welcome_mails (contact text, sent_at timestamptz DEFAULT now());
CREATE FUNCTION send_welcome(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
  INSERT INTO welcome_mails (contact) VALUES (event->>'target'); SELECT NULL::jsonb $$;
SELECT headlessly.hook('Contact.Created', 'after_commit', 'send_welcome(jsonb)') AS hook_id;
SELECT type, target FROM headlessly.events_append('Contact.Created', 'contact_2', '{"name": "Bob"}');
SELECT pg_sleep(0.5);
SELECT contact FROM welcome_mails;

-- A webhook as a subscription sends it: Standard Webhooks headers, signed.
SELECT http_status, error
  FROM headlessly.webhook_send(:'receiver',
       (SELECT jsonb_agg(to_jsonb(e)) FROM headlessly.events e WHERE target = 'contact_2'), :'secret');
