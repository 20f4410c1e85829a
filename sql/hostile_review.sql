-- Found by the hostile review of 0.2: each section reproduces a defect that
-- was fixed, and checks the SQLSTATE and that nothing was stored or changed.
\pset null '(null)'
\set SHOW_CONTEXT never
SET headlessly.tenant = 'hr';

-- A BEFORE INSERT trigger of the log's owner that skips a row (it fires
-- before the log's own, so the log allows it) stores nothing: the append
-- functions give back NULL for that event, as INSERT ... RETURNING gives no
-- row, instead of an internal error.
SELECT version FROM headlessly.events_append('Spam.Created', 'hr_spam', '{"a": 1}');
SELECT recorded_at AS hr_t1 FROM headlessly.events WHERE target = 'hr_spam' \gset
SELECT version FROM headlessly.events_append('Spam.Updated', 'hr_spam', '{"a": 2}');
CREATE FUNCTION public.hr_skip_spam() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.type = 'spam' OR NEW.target = 'hr_spam' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_hr_skip_spam BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION public.hr_skip_spam();
SELECT count(*) AS events_before FROM headlessly.events \gset
SELECT e IS NULL AS skipped FROM headlessly.events_append('spam') e;
SELECT e IS NULL AS skipped FROM headlessly.events_append('spam', external_event_id => 'hr_k1') e;
SELECT type, id IS NULL AS skipped
  FROM headlessly.events_append_batch('[{"type": "spam"}, {"type": "hr_kept"},
                                        {"type": "spam", "external_event_id": "hr_k2"}]');
-- a key that is stored comes back as the stored row, skipped or not
SELECT type FROM headlessly.events_append('hr_keyed', external_event_id => 'hr_k3');
SELECT type FROM headlessly.events_append('spam', external_event_id => 'hr_k3');
-- events_rollback's event skipped
SELECT e IS NULL AS skipped FROM headlessly.events_rollback('hr_spam', :'hr_t1') e;
SELECT version, state FROM headlessly.entities WHERE target = 'hr_spam';
SELECT count(*) - :events_before AS stored FROM headlessly.events;
SELECT count(*) AS skipped_stored FROM headlessly.events WHERE type = 'spam';
DROP TRIGGER a_hr_skip_spam ON headlessly.events;
DROP FUNCTION public.hr_skip_spam();

-- A guarded table's rows hold values of user types.  Renaming an enum label
-- or a composite type's attribute changes what every stored row says
-- without touching it: refused with ZE001 for a type a guarded table uses
-- (directly, in an array, a domain, a range or a composite), allowed for
-- any other.
CREATE TYPE public.hr_status AS ENUM ('paid', 'refunded');
CREATE DOMAIN public.hr_status_d AS public.hr_status;
CREATE TYPE public.hr_money AS (amount numeric, currency text);
CREATE TYPE public.hr_free AS ENUM ('a', 'b');
CREATE TYPE public.hr_free_pair AS (x int, y int);
CREATE TABLE public.hr_ledger (id int, status public.hr_status_d[], price public.hr_money);
SELECT headlessly.make_append_only('public.hr_ledger');
INSERT INTO public.hr_ledger VALUES (1, '{paid}', (10, 'EUR'));
-- a new session, where the library is not loaded: the event trigger refuses
\c -
ALTER TYPE public.hr_status RENAME VALUE 'paid' TO 'refunded_later';
\echo :LAST_ERROR_SQLSTATE
ALTER TYPE public.hr_money RENAME ATTRIBUTE amount TO refund;
\echo :LAST_ERROR_SQLSTATE
-- a table's row type used as a column is held the same way
CREATE TABLE public.hr_row (a int);
CREATE TABLE public.hr_ledger2 (id int, r public.hr_row);
SELECT headlessly.make_append_only('public.hr_ledger2');
ALTER TABLE public.hr_row RENAME COLUMN a TO b;
\echo :LAST_ERROR_SQLSTATE
SELECT to_jsonb(l) FROM public.hr_ledger l;
SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = 'public.hr_status'::regtype ORDER BY e.enumsortorder;
-- types no guarded table uses, and adding a label, stay free
ALTER TYPE public.hr_status ADD VALUE 'disputed';
ALTER TYPE public.hr_free RENAME VALUE 'a' TO 'c';
ALTER TYPE public.hr_free_pair RENAME ATTRIBUTE x TO z;
DROP TABLE public.hr_ledger, public.hr_ledger2, public.hr_row;
DROP TYPE public.hr_money, public.hr_free, public.hr_free_pair;
DROP DOMAIN public.hr_status_d;
DROP TYPE public.hr_status;

-- expected_version goes to the log's trigger by the event's id.  A BEFORE
-- INSERT trigger of the owner's that fires first and gives the row another
-- id made the append store it unchecked, whatever version was expected;
-- now the append fails (55000) and stores nothing.  The batch, which finds
-- its rows by id too, fails the same way instead of an internal error.
SET headlessly.tenant = 'hr';
SELECT version FROM headlessly.events_append('Card.Created', 'hr_card', '{"n": 1}');
SELECT recorded_at AS hr_t2 FROM headlessly.events WHERE target = 'hr_card' \gset
SELECT version FROM headlessly.events_append('Card.Updated', 'hr_card', '{"n": 2}');
CREATE FUNCTION public.hr_reid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.id := headlessly.new_event_id();
    RETURN NEW;
END $$;
CREATE TRIGGER a_hr_reid BEFORE INSERT ON headlessly.events
    FOR EACH ROW EXECUTE FUNCTION public.hr_reid();
SELECT count(*) AS events_before FROM headlessly.events \gset
-- (terse: the details name generated ids)
\set VERBOSITY terse
SELECT version FROM headlessly.events_append('Card.Updated', 'hr_card', '{"n": 3}', expected_version => 42);
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM headlessly.events_append_batch(
    '[{"type": "Card.Updated", "target": "hr_card", "data": {"n": 4}, "expected_version": 42}]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM headlessly.events_append_batch('[{"type": "hr_a"}, {"type": "hr_b"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM headlessly.events_rollback('hr_card', :'hr_t2');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) - :events_before AS stored FROM headlessly.events;
SELECT version, state FROM headlessly.entities WHERE target = 'hr_card';
-- without expected_version the trigger's ids stand; without the trigger,
-- expected_version works as before
SELECT version FROM headlessly.events_append('Card.Updated', 'hr_card', '{"n": 5}');
DROP TRIGGER a_hr_reid ON headlessly.events;
DROP FUNCTION public.hr_reid();
SELECT version FROM headlessly.events_append('Card.Updated', 'hr_card', '{"n": 6}', expected_version => 3);
