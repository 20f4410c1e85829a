-- Fixtures of test/bench/run-time-travel-bench.sh: generators of the log the
-- time-travel benchmarks read, and the naive replay they are compared with.
CREATE EXTENSION IF NOT EXISTS headlessly_events;
CREATE SCHEMA bench_tt;

-- One entity's stream of n events: Contact.Created, then merge patches that
-- set one key and remove another, per_tx events per transaction (so that
-- points in time fall anywhere between two snapshots).
CREATE PROCEDURE bench_tt.make_stream(t text, n int, per_tx int)
LANGUAGE plpgsql AS $$
DECLARE
    done int := 0;
BEGIN
    WHILE done < n LOOP
        INSERT INTO headlessly.events (tenant, type, target, data)
        SELECT 'bench_tt',
               CASE WHEN i = 1 THEN 'Contact.Created' ELSE 'Contact.Updated' END, t,
               jsonb_build_object('n', i, 'k' || (i % 20), i, 'k' || ((i + 7) % 20), NULL)
          FROM generate_series(done + 1, least(done + per_tx, n)) i;
        done := least(done + per_tx, n);
        COMMIT;
    END LOOP;
END
$$;

-- Part `part` of `parts` of the many-entities log: 100,000 deals created in
-- chunks, then 900,000 updates, chunk after chunk (one transaction each),
-- on targets drawn with a skew (a few deals get many updates, most a few).
CREATE PROCEDURE bench_tt.make_many(part int, parts int)
LANGUAGE plpgsql AS $$
DECLARE
    per_part int := 100000 / parts;
    chunk int := 10000 / parts;
BEGIN
    PERFORM setseed(0.1 * (part + 1));
    FOR c IN 0 .. per_part / chunk - 1 LOOP
        INSERT INTO headlessly.events (tenant, type, target, data, actor)
        SELECT 'bench_many', 'Deal.Created', 'deal_' || (part + parts * i),
               jsonb_build_object('stage', 'open', 'amount', i % 1000, 'owner', 'u' || (i % 100)),
               'agent_' || (i % 50)
          FROM generate_series(c * chunk, (c + 1) * chunk - 1) i;
        COMMIT;
    END LOOP;
    FOR c IN 1 .. 90 LOOP
        INSERT INTO headlessly.events (tenant, type, target, data, actor)
        SELECT 'bench_many', 'Deal.Updated',
               'deal_' || (part + parts * floor(per_part * power(random(), 2))::int),
               jsonb_build_object('stage', (ARRAY['open', 'qualified', 'won', 'lost'])[1 + floor(random() * 4)::int],
                                  'amount', floor(random() * 1000)::int),
               'agent_' || floor(random() * 50)::int
          FROM generate_series(1, chunk);
        COMMIT;
    END LOOP;
END
$$;

-- The naive way: replay the whole stream up to `at` in PL/pgSQL.
CREATE FUNCTION bench_tt.naive_as_of(t text, at timestamptz, tn text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    e record;
    st jsonb;
    k text;
    v jsonb;
BEGIN
    FOR e IN SELECT type, data FROM headlessly.events
              WHERE tenant = tn AND target = t AND recorded_at <= at ORDER BY version LOOP
        IF e.type !~ '^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$' THEN
            CONTINUE;
        ELSIF split_part(e.type, '.', 2) = 'Created' THEN
            st := e.data;
        ELSIF split_part(e.type, '.', 2) = 'Deleted' THEN
            st := NULL;
        ELSE
            FOR k, v IN SELECT key, value FROM jsonb_each(e.data) LOOP
                IF v = 'null'::jsonb THEN
                    st := st - k;
                ELSE
                    st := jsonb_set(st, ARRAY[k], v);
                END IF;
            END LOOP;
        END IF;
    END LOOP;
    RETURN st;
END
$$;

-- Points in time to read at: every distinct recorded_at of a stream.
CREATE TABLE bench_tt.instants (target text, i int, at timestamptz, PRIMARY KEY (target, i));
