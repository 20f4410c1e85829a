-- Table capture never runs a user's operator, function, type or relation
-- because of search_path: a schema that shadows pg_catalog's operators for
-- jsonb, text and integers, and our own functions and relations, first in a
-- superuser's search_path while capture() runs and the captured table is
-- written.  Everything hostile records that it ran.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'capture_search_path';

CREATE SCHEMA hostile;
CREATE TABLE hostile.ran (what text);
CREATE FUNCTION hostile.noted(what pg_catalog.text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO hostile.ran VALUES (what);
    RETURN true;
END $$;

-- operators: each records its use, then does what pg_catalog's does
DO $$
DECLARE
    o record;
    n int := 0;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'jsonb', 'jsonb', 'bool'), ('<>', 'jsonb', 'jsonb', 'bool'),
        ('||', 'jsonb', 'jsonb', 'jsonb'), ('?', 'jsonb', 'text', 'bool'),
        ('@>', 'jsonb', 'jsonb', 'bool'), ('-', 'jsonb', 'text', 'jsonb'),
        ('->', 'jsonb', 'text', 'jsonb'), ('->>', 'jsonb', 'text', 'text'),
        ('=', 'text', 'text', 'bool'), ('<>', 'text', 'text', 'bool'),
        ('<', 'text', 'text', 'bool'), ('>', 'text', 'text', 'bool'),
        ('||', 'text', 'text', 'text'), ('~~', 'text', 'text', 'bool'),
        ('=', 'int8', 'int8', 'bool'), ('<>', 'int8', 'int8', 'bool'),
        ('<', 'int8', 'int8', 'bool'), ('>', 'int8', 'int8', 'bool'),
        ('<=', 'int8', 'int8', 'bool'), ('>=', 'int8', 'int8', 'bool'),
        ('+', 'int8', 'int8', 'int8'), ('=', 'int4', 'int4', 'bool'),
        ('<>', 'int4', 'int4', 'bool'), ('=', 'timestamptz', 'timestamptz', 'bool'),
        ('<=', 'timestamptz', 'timestamptz', 'bool')) AS v(op, l, r, result)
    LOOP
        n := n + 1;
        EXECUTE format($f$
            CREATE FUNCTION hostile.op_%s(a pg_catalog.%s, b pg_catalog.%s) RETURNS pg_catalog.%s
            LANGUAGE plpgsql SET search_path = pg_catalog AS $b$
            BEGIN
                PERFORM hostile.noted(%L);
                RETURN a OPERATOR(pg_catalog.%s) b;
            END $b$ $f$, n, o.l, o.r, o.result, o.l || ' ' || o.op || ' ' || o.r, o.op);
        EXECUTE format('CREATE OPERATOR hostile.%s (LEFTARG = pg_catalog.%s, RIGHTARG = pg_catalog.%s,'
                       ' FUNCTION = hostile.op_%s)', o.op, o.l, o.r, n);
    END LOOP;
END $$;

-- functions named like pg_catalog's and ours
CREATE FUNCTION hostile.to_jsonb(anyelement) RETURNS pg_catalog.jsonb LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT '{}'::jsonb WHERE hostile.noted('to_jsonb') $$;
CREATE FUNCTION hostile.jsonb_typeof(pg_catalog.jsonb) RETURNS pg_catalog.text LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT 'object' WHERE hostile.noted('jsonb_typeof') $$;
CREATE FUNCTION hostile.jsonb_strip_nulls(pg_catalog.jsonb) RETURNS pg_catalog.jsonb LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT $1 WHERE hostile.noted('jsonb_strip_nulls') $$;
CREATE FUNCTION hostile.starts_with(pg_catalog.text, pg_catalog.text) RETURNS boolean LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT hostile.noted('starts_with') $$;
CREATE FUNCTION hostile.length(pg_catalog.text) RETURNS int LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT 1 WHERE hostile.noted('length') $$;
CREATE FUNCTION hostile.now() RETURNS pg_catalog.timestamptz LANGUAGE sql
    SET search_path = pg_catalog AS $$ SELECT pg_catalog.now() WHERE hostile.noted('now') $$;
CREATE FUNCTION hostile.events_append(type pg_catalog.text, target pg_catalog.text DEFAULT NULL,
    data pg_catalog.jsonb DEFAULT '{}', actor pg_catalog.text DEFAULT NULL,
    tenant pg_catalog.text DEFAULT NULL, source pg_catalog.text DEFAULT NULL,
    source_type pg_catalog.text DEFAULT NULL, external_event_id pg_catalog.text DEFAULT NULL,
    occurred_at pg_catalog.timestamptz DEFAULT NULL, expected_version pg_catalog.int8 DEFAULT NULL,
    metadata pg_catalog.jsonb DEFAULT NULL, raw_payload pg_catalog.text DEFAULT NULL)
RETURNS headlessly.events LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT NULL::headlessly.events WHERE hostile.noted('events_append') $$;
CREATE FUNCTION hostile.capture_trigger() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$ BEGIN PERFORM hostile.noted('capture_trigger'); RETURN NULL; END $$;
-- relations named like ours
CREATE VIEW hostile.events AS SELECT * FROM headlessly.events WHERE hostile.noted('events');
CREATE VIEW hostile.entities AS SELECT * FROM headlessly.entities WHERE hostile.noted('entities');
CREATE VIEW hostile.streams AS SELECT * FROM headlessly.streams WHERE hostile.noted('streams');
-- types named like pg_catalog's
CREATE DOMAIN hostile.text AS pg_catalog.text CHECK (hostile.noted('text domain'));
CREATE DOMAIN hostile.jsonb AS pg_catalog.jsonb CHECK (hostile.noted('jsonb domain'));

CREATE TABLE public.tickets (id int PRIMARY KEY, title text, tags jsonb, due timestamptz);
INSERT INTO public.tickets VALUES (1, 'before capture', '{"a": 1}', NULL);
GRANT ALL ON SCHEMA hostile TO PUBLIC;

-- the trap is armed: an unqualified operator finds hostile's first
SET search_path = hostile, pg_catalog;
SELECT '{}'::pg_catalog.jsonb = '{}'::pg_catalog.jsonb AS armed;
RESET search_path;
SELECT what FROM hostile.ran;
TRUNCATE hostile.ran;

SET search_path = hostile, pg_catalog;
SELECT headlessly.capture('public.tickets', 'Ticket');
INSERT INTO public.tickets VALUES (2, 'new', '{"b": 2}', '2026-01-01');
UPDATE public.tickets SET title = 'changed', tags = NULL WHERE id OPERATOR(pg_catalog.=) 2;
UPDATE public.tickets SET id = 3 WHERE id OPERATOR(pg_catalog.=) 2;
DELETE FROM public.tickets WHERE id OPERATOR(pg_catalog.=) 1;
-- capture again: rows whose entity exists catch up with an Updated
SELECT headlessly.uncapture('public.tickets');
UPDATE public.tickets SET title = 'while uncaptured' WHERE id OPERATOR(pg_catalog.=) 3;
SELECT headlessly.capture('public.tickets', 'Ticket');
TRUNCATE public.tickets;
SELECT headlessly.uncapture('public.tickets');
RESET search_path;

-- nothing hostile ran
SELECT what, count(*) FROM hostile.ran GROUP BY what ORDER BY what;

-- and capture did its work
SELECT type, target, version, data, before FROM headlessly.events
 WHERE tenant = 'capture_search_path' ORDER BY seq;

DROP TABLE public.tickets;
SET client_min_messages = warning;
DROP SCHEMA hostile CASCADE;
RESET client_min_messages;
RESET headlessly.tenant;
