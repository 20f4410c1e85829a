-- events_list: filters, patterns, order, limits, and the indexes behind them.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'tt_list';

SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Created", "target": "d1", "data": {"n": 1}, "actor": "alice"},
  {"type": "Deal.Updated", "target": "d1", "data": {"n": 2}, "actor": "bob"},
  {"type": "Contact.Created", "target": "c1", "actor": "alice"},
  {"type": "page_view", "target": "c1"},
  {"type": "invoice.paid"}]');
CREATE TEMP TABLE marks AS SELECT now() AS at;
SELECT count(*) FROM headlessly.events_append_batch('[
  {"type": "Deal.Closed", "target": "d1", "data": {"won": true}, "actor": "bob"},
  {"type": "Deal.Created", "target": "d2", "actor": "carol"},
  {"type": "Contact.Updated", "target": "c1", "data": {"x": 1}, "actor": "alice"}]');
SELECT version FROM headlessly.events_append('Deal.Created', 'd_other', tenant => 'tt_list_other');


SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS everything
  FROM headlessly.events_list();
SELECT bool_and(seq > prev) AS ordered_by_seq, count(*) AS n
  FROM (SELECT seq, lag(seq) OVER (ORDER BY ordinality) AS prev
          FROM headlessly.events_list() WITH ORDINALITY) x;
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS by_target
  FROM headlessly.events_list(target => 'd1');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS exact
  FROM headlessly.events_list(type => 'Deal.Created');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS noun
  FROM headlessly.events_list(type => 'Deal.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS verb
  FROM headlessly.events_list(type => '*.Created');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS free_standing
  FROM headlessly.events_list(type => 'invoice.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS star
  FROM headlessly.events_list(type => '*');
SELECT count(*) AS no_match FROM headlessly.events_list(type => 'Nothing.*');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS by_actor
  FROM headlessly.events_list(actor => 'alice');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS after_mark
  FROM headlessly.events_list(after => (SELECT at FROM marks));
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS before_mark
  FROM headlessly.events_list(before => (SELECT at FROM marks) + interval '1 microsecond');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS combined
  FROM headlessly.events_list(target => 'd1', type => 'Deal.*', actor => 'bob',
                              after => '-infinity', before => 'infinity');
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS first_two
  FROM headlessly.events_list(max_rows => 2);
SELECT count(*) AS all_rows FROM headlessly.events_list(max_rows => NULL);
SELECT count(*) AS zero_rows FROM headlessly.events_list(max_rows => 0);
SELECT string_agg(coalesce(target, '-') || ':' || type, ', ' ORDER BY seq) AS other_tenant
  FROM headlessly.events_list(tenant => 'tt_list_other');

-- invalid arguments
SELECT * FROM headlessly.events_list(max_rows => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => 'Deal*');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => '*.*');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_list(type => '');
\echo :LAST_ERROR_SQLSTATE

-- The plans behind each filter (target, type, actor, time) are shown on a
-- large log in README.md ("Time travel"); tiny tables here would only show
-- sequential scans.
