-- Names that look right but are not: types with invisible or non-ASCII
-- white-space characters, blank targets and blank tenants.  Each is refused with ZE003 by
-- every way into the log, and nothing is stored.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'bad_names';

CREATE TEMP TABLE stored_before AS
SELECT (SELECT count(*) FROM headlessly.events) AS events,
       (SELECT count(*) FROM headlessly.streams) AS streams;
-- appends below that succeed on purpose are counted here
CREATE TEMP TABLE expected_appends (events int, streams int);
INSERT INTO expected_appends VALUES (0, 0);
CREATE FUNCTION pg_temp.nothing_stored() RETURNS boolean LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM headlessly.events) = b.events + x.events
       AND (SELECT count(*) FROM headlessly.streams) = b.streams + x.streams
      FROM stored_before b, expected_appends x
$$;

-- the SQLSTATE and message of one append, for tables of cases
CREATE FUNCTION pg_temp.refusal(type text, target text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    PERFORM headlessly.events_append(type, target);
    RETURN 'stored';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RETURN SQLSTATE || ' ' || regexp_replace(msg, '"[^"]*"', '"..."');
END $$;

-- types: every invisible or white-space character, at the start, inside and
-- at the end
SELECT to_hex(c) AS code_point,
       pg_temp.refusal(chr(c) || 'Contact.Created', 'bad_1') AS at_start,
       pg_temp.refusal('Contact' || chr(c) || '.Created', 'bad_1') AS inside,
       pg_temp.refusal('page_view' || chr(c)) AS at_end
  FROM unnest(ARRAY[
         x'00A0', x'0085', x'00AD', x'034F', x'061C', x'115F', x'1680', x'17B4', x'180E',
         x'2000', x'2001', x'2002', x'2003', x'2004', x'2005', x'2006', x'2007', x'2008',
         x'2009', x'200A', x'200B', x'200C', x'200D', x'200E', x'200F', x'2028', x'2029',
         x'202A', x'202B', x'202C', x'202D', x'202E', x'202F', x'205F', x'2060', x'2061',
         x'2062', x'2063', x'2064', x'2066', x'2067', x'2068', x'2069', x'3000', x'3164',
         x'FE0F', x'FEFF', x'FFA0', x'1D173', x'E0001', x'E0100']::int[]) AS c
 ORDER BY c;

-- a combining mark with nothing to combine with
SELECT pg_temp.refusal(chr(x'0301'::int) || 'page_view') AS at_start,
       pg_temp.refusal('Contact.' || chr(x'0301'::int) || 'Created', 'bad_1') AS after_dot,
       pg_temp.refusal('page ' || chr(x'20DD'::int) || 'view') AS after_space,
       pg_temp.refusal('page_' || chr(x'0308'::int) || 'view') AS after_underscore;
-- the ASCII rules hold after a letter beyond ASCII too
SELECT pg_temp.refusal(U&'caf\00E9.*') AS star, pg_temp.refusal(U&'caf\00E9' || E'\n') AS control;
SELECT pg_temp.nothing_stored();

-- the same refusals at the top level, by every way into the log
SELECT headlessly.events_append(U&'Contact\00A0.Created', 'bad_1');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append(U&'page\200Bview');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_append_batch(jsonb_build_array(
    jsonb_build_object('type', 'page_view'),
    jsonb_build_object('type', U&'page_view\FEFF')));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type) VALUES (U&'\3000page_view');
\echo :LAST_ERROR_SQLSTATE
COPY headlessly.events (type, target) FROM stdin;
page_view	bad_2
page\xC2\xA0view	bad_3
\.
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- what stays accepted: an ASCII space between words, letters of any script,
-- a combining mark on a letter, emoji
SELECT type FROM headlessly.events_append('Order Completed');
SELECT type FROM headlessly.events_append(U&'caf\00E9_ordered');
SELECT type FROM headlessly.events_append(U&'nai\0308ve_event');
SELECT type FROM headlessly.events_append(U&'\6CE8\6587.\4F5C\6210');
SELECT type FROM headlessly.events_append(U&'\+01F389_party');
UPDATE expected_appends SET events = events + 5;
SELECT pg_temp.nothing_stored();

-- targets: blank or only white space, ASCII or not
SELECT pg_temp.refusal('page_view', t) AS refusal, length(t) AS characters
  FROM unnest(ARRAY[' ', '   ', E'\t', E' \n ', E'\r\f\x0b',
                    U&'\00A0', U&'\3000', U&'\2003\2009', U&'\200B', U&'\FEFF',
                    U&' \00A0 \202F ', U&'\2028\2029', U&'\00AD']) WITH ORDINALITY AS u(t, n)
 ORDER BY n;
SELECT headlessly.events_append('Contact.Created', ' ', '{"name": "nobody"}');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('page_view', U&'\00A0\3000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_append_batch(jsonb_build_array(
    jsonb_build_object('type', 'page_view', 'target', 'fine_1'),
    jsonb_build_object('type', 'page_view', 'target', E'\t')));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (type, target) VALUES ('page_view', U&'\200B');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.nothing_stored();

-- tenants: blank, by argument, by INSERT, by batch and by setting
SELECT headlessly.events_append('page_view', tenant => ' ');
\echo :LAST_ERROR_SQLSTATE
SELECT headlessly.events_append('Contact.Created', 'c_1', tenant => U&'\00A0\200B');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO headlessly.events (tenant, type) VALUES (E'\t', 'page_view');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM headlessly.events_append_batch(jsonb_build_array(
    jsonb_build_object('type', 'page_view', 'tenant', 'fine'),
    jsonb_build_object('type', 'page_view', 'tenant', U&'\3000')));
\echo :LAST_ERROR_SQLSTATE
SET headlessly.tenant = ' ';
SELECT headlessly.events_append('page_view');
\echo :LAST_ERROR_SQLSTATE
RESET headlessly.tenant;
SELECT pg_temp.nothing_stored();

-- a target with white space around or inside other characters is a name
SELECT target FROM headlessly.events_append('page_view', 'contact 1');
SELECT target FROM headlessly.events_append('page_view', U&'kontakt_\00FC');
UPDATE expected_appends SET events = events + 2, streams = streams + 2;
SELECT pg_temp.nothing_stored();

RESET headlessly.tenant;
