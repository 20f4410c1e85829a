-- Release 0.1 updated in place to the current version: what was appended
-- under 0.1 is still there, unchanged, and everything keeps working on it.
-- (test/t/005_upgrade.pl also checks that the updated catalog equals a fresh
-- install and that the updated database dumps and restores.)
\pset null '(null)'
\set SHOW_CONTEXT never
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'headlessly_events';

SET headlessly.tenant = 'upgrade';
CREATE TABLE up_contacts (id int PRIMARY KEY, name text);
SELECT headlessly.capture('up_contacts', 'Contact');
INSERT INTO up_contacts VALUES (1, 'Ann');
UPDATE up_contacts SET name = 'Anna' WHERE id = 1;
SELECT version FROM headlessly.events_append('Deal.Created', 'deal_1', '{"amount": 10}');
SELECT version FROM headlessly.events_append('Deal.Updated', 'deal_1', '{"amount": 20}');
SELECT version FROM headlessly.events_append('page_view', source => 'web', external_event_id => 'pv_1');
CREATE FUNCTION up_tag(event jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object('tagged', true) $$;
SELECT headlessly.hook('Deal.*', 'before', 'up_tag(jsonb)') > 0 AS hooked;
-- 0.1 let a handler be dropped, leaving its hook broken; and users may
-- build on the hooks view and grant it
CREATE FUNCTION up_gone(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT headlessly.hook('Gone.*', 'before', 'up_gone(jsonb)') AS h_gone \gset
DROP FUNCTION up_gone(jsonb);
SELECT headlessly.events_append('Gone.Created', 'gone_0');
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE regress_upgrade_reader;
CREATE VIEW up_hook_list AS SELECT id, pattern, phase, handler FROM headlessly.hooks;
GRANT SELECT ON up_hook_list, headlessly.hooks TO regress_upgrade_reader;
-- 0.1 filled seq before it locked the stream, so two appends to one stream
-- could take their seqs the wrong way round; the owner restores such a
-- stream here (version 1 has the higher seq)
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data)
  OVERRIDING SYSTEM VALUE
  VALUES (1000005, 'evt_legacy_1', 'Ticket.Created', 'tk1', 1, now(), now(), '{"s": 1}');
INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
  OVERRIDING SYSTEM VALUE
  VALUES (1000001, 'evt_legacy_2', 'Ticket.Updated', 'tk1', 2, now(), now(), '{"s": 2}', '{"s": 1}');
SELECT seq, version FROM headlessly.events WHERE target = 'tk1' ORDER BY seq;
CREATE TEMP TABLE before_update AS
    SELECT seq, id, tenant, type, target, version, data, before, recorded_at FROM headlessly.events;

ALTER EXTENSION headlessly_events UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'headlessly_events')
    AS at_default_version
  FROM pg_extension WHERE extname = 'headlessly_events';

-- the hook whose handler was dropped reads as a missing handler, as it did
-- at 0.1: a matching append fails and stores nothing; the others work
SELECT id = :h_gone AS gone, regexp_replace(handler, '[0-9]+', 'N') AS handler,
       handler_owner IS NULL AS unbound
  FROM headlessly.hook_registry WHERE phase = 'before' ORDER BY id;
SELECT headlessly.events_append('Gone.Created', 'gone_1');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS gone_events_stored FROM headlessly.events WHERE type LIKE 'Gone.%';
-- the user's view over headlessly.hooks and the grants stay
SELECT pattern, phase, handler FROM up_hook_list ORDER BY id;
SELECT has_table_privilege('regress_upgrade_reader', 'up_hook_list', 'SELECT') AS reader_on_user_view,
       has_table_privilege('regress_upgrade_reader', 'headlessly.hooks', 'SELECT') AS reader_on_hooks;

-- heads of 0.1 have no ordering transaction: their events' xact_id is 0,
-- which orders nothing
SELECT count(*) AS heads, count(xact_id) AS with_xact_id FROM headlessly.streams;

-- the events of 0.1, unchanged
SELECT count(*) AS events_0_1,
       count(*) FILTER (WHERE (e.seq, e.id, e.tenant, e.type, e.target, e.version, e.data, e.before, e.recorded_at)
                              IS NOT DISTINCT FROM (b.seq, b.id, b.tenant, b.type, b.target, b.version, b.data, b.before, b.recorded_at))
           AS unchanged
  FROM before_update b LEFT JOIN headlessly.events e USING (seq);

-- appends go on: versions, before hooks, idempotency, capture, state
SELECT version, data FROM headlessly.events_append('Deal.Updated', 'deal_1', '{"amount": 30}');
SELECT e.id = b.id AS duplicate_returns_stored_event
  FROM headlessly.events_append('page_view', source => 'web', external_event_id => 'pv_1') e,
       before_update b WHERE b.type = 'page_view';
SELECT count(*) AS page_views FROM headlessly.events WHERE type = 'page_view';
UPDATE up_contacts SET name = 'Anne' WHERE id = 1;
-- a table captured before the update goes on with the same target
SELECT target, version, state FROM headlessly.entities WHERE tenant = 'upgrade' ORDER BY target;
SELECT headlessly.as_of('deal_1') AS deal_now,
       headlessly.as_of_version('deal_1', 1) AS deal_v1;
SELECT type, version FROM headlessly.events_list(target => 'deal_1') ORDER BY version;
SELECT count(*) AS drift FROM headlessly.check_state('upgrade');

-- and 0.2's promises hold on the updated log
INSERT INTO headlessly.events (seq, type) VALUES (1000, 'forged');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM headlessly.events;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS zero_xact_ids_before_update FROM headlessly.events WHERE xact_id = '0';
SELECT xact_id = pg_current_xact_id() AS xact_recorded FROM headlessly.events_append('page_view');
-- the events of 0.1 got their hashes, chained; appends chain on; they seal and verify
SELECT count(*) AS unhashed FROM headlessly.events WHERE hash IS NULL;
SELECT count(*) AS heads_without_last_hash FROM headlessly.streams s
 WHERE s.hash IS DISTINCT FROM (SELECT e.hash FROM headlessly.events e
                                 WHERE (e.tenant, e.target, e.version) = (s.tenant, s.target, s.version));
SELECT headlessly.checkpoint() AS checkpoints;
-- chains follow version order, also where seq order differs: the untouched
-- log verifies, and the stream's next append chains on its version 2
SELECT tenant, ok, checked, problem FROM headlessly.verify();
SELECT version FROM headlessly.events_append('Ticket.Updated', 'tk1', '{"s": 3}');
-- heads of 0.1 got an ordering transaction from their appends since
SELECT s.target, s.xact_id IS NULL AS no_xact_id, s.xact_id = e.xact_id AS last_events_xact_id
  FROM headlessly.streams s
  JOIN headlessly.events e ON (e.tenant, e.target, e.version) = (s.tenant, s.target, s.version)
 ORDER BY s.target;
SELECT headlessly.checkpoint() AS checkpoints;
SELECT tenant, ok, checked, problem FROM headlessly.verify();

DROP TABLE up_contacts;
DROP VIEW up_hook_list;
DROP FUNCTION up_tag(jsonb);
DROP EXTENSION headlessly_events CASCADE;
DROP ROLE regress_upgrade_reader;

-- a column the owner added to the heads at 0.1 puts the columns of 0.2
-- after it: appends still know them, and leave the owner's NULL
CREATE EXTENSION headlessly_events VERSION '0.1';
ALTER TABLE headlessly.streams ADD COLUMN owner_note text;
SELECT version FROM headlessly.events_append('Deal.Created', 'deal_note', '{"amount": 1}');
ALTER EXTENSION headlessly_events UPDATE;
SELECT version FROM headlessly.events_append('Deal.Updated', 'deal_note', '{"amount": 2}');
SELECT target, version, owner_note FROM headlessly.streams WHERE target = 'deal_note';
SELECT count(*) AS drift FROM headlessly.check_state();
DROP EXTENSION headlessly_events CASCADE;
CREATE EXTENSION headlessly_events;
