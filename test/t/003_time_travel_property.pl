# Property test of time travel: random event sequences for many entities,
# then as_of / as_of_version at every version and at many instants must
# equal a naive replay written in plain SQL here, entities_as_of must equal
# the naive replay of every entity, the present must equal as_of(now()),
# and check_state must find no drift -- also with snapshots missing or
# written at a different interval.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('property');
$node->init;
$node->append_conf('postgresql.conf', "headlessly.snapshot_interval = 3\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

# 120 transactions of 1 to 8 random events each on 30 entities of two nouns;
# each COMMIT starts a new transaction, so recorded_at moves on.
$node->safe_psql('postgres', q{
SET headlessly.tenant = 'prop';
DO $$
DECLARE
    t text; noun text; alive boolean; r float8; patch jsonb; n int;
BEGIN
    PERFORM setseed(0.4242);
    FOR tx IN 1..120 LOOP
        n := 1 + floor(random() * 8)::int;
        FOR i IN 1..n LOOP
            t := 'e' || floor(random() * 30)::int;
            noun := CASE WHEN right(t, 1) IN ('0', '1', '2') THEN 'Q' ELSE 'P' END;
            alive := EXISTS (SELECT 1 FROM headlessly.entities e WHERE e.tenant = 'prop' AND e.target = t);
            r := random();
            patch := (SELECT coalesce(jsonb_object_agg('k' || k,
                              CASE WHEN random() < 0.3 THEN 'null'::jsonb
                                   WHEN random() < 0.5 THEN to_jsonb(floor(random() * 5)::int)
                                   ELSE jsonb_build_object('v', floor(random() * 3)::int) END), '{}')
                        FROM generate_series(0, floor(random() * 4)::int) k);
            IF NOT alive THEN
                IF r < 0.15 THEN
                    PERFORM headlessly.events_append('page_view', t);
                ELSE
                    -- Created data may hold JSON nulls (kept in the state, unlike a patch's)
                    PERFORM headlessly.events_append(noun || '.Created', t,
                            CASE WHEN r < 0.5 THEN patch ELSE jsonb_strip_nulls(patch) END);
                END IF;
            ELSIF r < 0.08 THEN
                PERFORM headlessly.events_append(noun || '.Deleted', t);
            ELSIF r < 0.18 THEN
                PERFORM headlessly.events_append('page_view', t, jsonb_build_object('k0', 'ignored'));
            ELSIF r < 0.30 THEN
                PERFORM headlessly.events_append(noun || '.Qualified', t, patch);
            ELSE
                PERFORM headlessly.events_append(noun || '.Updated', t, patch);
            END IF;
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
});

my ($events, $instants) = split /\|/, $node->safe_psql('postgres',
	q{SELECT count(*), count(DISTINCT recorded_at) FROM headlessly.events WHERE tenant = 'prop'});
cmp_ok($events, '>', 400, "random log has $events events");
cmp_ok($instants, '>', 100, "at $instants distinct instants");

# The naive replay: every stream from its first event, one version after
# the other, in plain SQL; naive(target, version) is the state after it.
$node->safe_psql('postgres', q{
CREATE TABLE naive AS
WITH RECURSIVE r(target, version, recorded_at, state) AS (
    SELECT DISTINCT target, 0::bigint, '-infinity'::timestamptz, NULL::jsonb
      FROM headlessly.events WHERE tenant = 'prop' AND target IS NOT NULL
    UNION ALL
    SELECT r.target, e.version, e.recorded_at,
           CASE WHEN e.type !~ '^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$' THEN r.state
                WHEN split_part(e.type, '.', 2) = 'Created' THEN e.data
                WHEN split_part(e.type, '.', 2) = 'Deleted' THEN NULL
                ELSE (SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}')
                        FROM (SELECT s.key, s.value FROM jsonb_each(r.state) s WHERE NOT e.data ? s.key
                              UNION ALL
                              SELECT p.key, p.value FROM jsonb_each(e.data) p WHERE p.value <> 'null') x)
           END
      FROM r JOIN headlessly.events e
        ON e.tenant = 'prop' AND e.target = r.target AND e.version = r.version + 1)
SELECT * FROM r;
CREATE UNIQUE INDEX ON naive (target, version);
CREATE FUNCTION naive_as_of_version(t text, v bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT state FROM naive WHERE target = t AND version <= v ORDER BY version DESC LIMIT 1
$$;
CREATE FUNCTION naive_as_of(t text, at timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT state FROM naive WHERE target = t AND recorded_at <= at ORDER BY version DESC LIMIT 1
$$;
-- instants: every recorded_at, just before it, and half way to the next
CREATE TABLE instants AS
SELECT DISTINCT v.at FROM (
    SELECT recorded_at AS rec_at, recorded_at - interval '1 microsecond' AS before_at,
           recorded_at + (lead(recorded_at) OVER (ORDER BY recorded_at) - recorded_at) / 2 AS half
      FROM (SELECT DISTINCT recorded_at FROM headlessly.events WHERE tenant = 'prop') d) x,
    LATERAL (VALUES (x.rec_at), (x.before_at), (x.half)) v(at)
 WHERE v.at IS NOT NULL;
CREATE TABLE targets AS SELECT DISTINCT target FROM headlessly.events WHERE tenant = 'prop';
});

my $by_version = q{
	SELECT count(*) FILTER (WHERE headlessly.as_of_version(t.target, v, 'prop')
	                              IS DISTINCT FROM naive_as_of_version(t.target, v)), count(*)
	  FROM targets t,
	       generate_series(0, (SELECT max(version) + 1 FROM headlessly.events
	                            WHERE tenant = 'prop' AND target = t.target)) v};
my $by_time = q{
	SELECT count(*) FILTER (WHERE headlessly.as_of(t.target, i.at, 'prop')
	                              IS DISTINCT FROM naive_as_of(t.target, i.at)), count(*)
	  FROM targets t, instants i};
my $entities = q{
	SELECT count(*) FROM (SELECT at FROM instants ORDER BY md5(at::text) LIMIT 80) i, (VALUES ('P'), ('Q')) n(noun)
	 WHERE (SELECT coalesce(jsonb_agg(jsonb_build_array(x.target, x.state) ORDER BY x.target), '[]')
	          FROM headlessly.entities_as_of(n.noun, i.at, '{}', 'prop') x)
	       IS DISTINCT FROM
	       (SELECT coalesce(jsonb_agg(jsonb_build_array(t.target, naive_as_of(t.target, i.at)) ORDER BY t.target), '[]')
	          FROM targets t
	         WHERE naive_as_of(t.target, i.at) IS NOT NULL
	           AND (SELECT noun FROM headlessly.streams s WHERE s.tenant = 'prop' AND s.target = t.target) = n.noun)};
my $filtered = q{
	SELECT count(*) FROM (SELECT at FROM instants ORDER BY md5(at::text) LIMIT 40) i,
	       (VALUES ('{"k1": 1}'::jsonb), ('{"k2": {"v": 0}}'), ('{"k0": 3, "k3": 2}')) f(filter)
	 WHERE (SELECT coalesce(jsonb_agg(x.target ORDER BY x.target), '[]')
	          FROM headlessly.entities_as_of('P', i.at, f.filter, 'prop') x)
	       IS DISTINCT FROM
	       (SELECT coalesce(jsonb_agg(t.target ORDER BY t.target), '[]')
	          FROM targets t
	         WHERE naive_as_of(t.target, i.at) @> f.filter
	           AND (SELECT noun FROM headlessly.streams s WHERE s.tenant = 'prop' AND s.target = t.target) = 'P')};
# version, created_at and updated_at of entities_as_of, from the log directly
my $columns = q{
	SELECT count(*) FROM (SELECT at FROM instants ORDER BY md5(at::text) LIMIT 80) i, (VALUES ('P'), ('Q')) n(noun),
	       headlessly.entities_as_of(n.noun, i.at, '{}', 'prop') x,
	       LATERAL (SELECT max(e.version) AS version,
	                       max(e.recorded_at) FILTER (WHERE e.type ~ '^[A-Z][A-Za-z0-9]*\.Created$') AS created_at,
	                       max(e.recorded_at) FILTER (WHERE e.type ~ '^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$') AS updated_at
	                  FROM headlessly.events e
	                 WHERE e.tenant = 'prop' AND e.target = x.target AND e.recorded_at <= i.at) l
	 WHERE (x.version, x.created_at, x.updated_at) IS DISTINCT FROM (l.version, l.created_at, l.updated_at)};
my $present = q{
	SELECT count(*) FROM targets t
	 WHERE headlessly.as_of(t.target, now(), 'prop') IS DISTINCT FROM
	       (SELECT state FROM headlessly.entities e WHERE e.tenant = 'prop' AND e.target = t.target)
	    OR headlessly.as_of(t.target, NULL, 'prop') IS DISTINCT FROM naive_as_of_version(t.target, 1000000)};

sub check_all
{
	my ($label) = @_;
	my ($bad, $total) = split /\|/, $node->safe_psql('postgres', $by_version);
	is($bad, 0, "$label: as_of_version equals the naive replay ($total cases)");
	($bad, $total) = split /\|/, $node->safe_psql('postgres', $by_time);
	is($bad, 0, "$label: as_of equals the naive replay ($total cases)");
	is($node->safe_psql('postgres', $entities), 0,
		"$label: entities_as_of equals the naive replay of every entity");
	is($node->safe_psql('postgres', $filtered), 0,
		"$label: entities_as_of with filters equals the naive replay");
	is($node->safe_psql('postgres', $columns), 0,
		"$label: entities_as_of's version, created_at and updated_at match the log");
	is($node->safe_psql('postgres', $present), 0,
		"$label: entities and as_of(now()) equal the replay of the whole log");
}

cmp_ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT at FROM instants ORDER BY md5(at::text) LIMIT 40) i,
	       (VALUES ('{"k1": 1}'::jsonb), ('{"k2": {"v": 0}}'), ('{"k0": 3, "k3": 2}')) f(filter),
	       headlessly.entities_as_of('P', i.at, f.filter, 'prop')}), '>', 20,
	'the filters match entities at the sampled instants');

my $snapshots = $node->safe_psql('postgres',
	q{SELECT count(*) FROM headlessly.snapshots WHERE tenant = 'prop'});
cmp_ok($snapshots, '>', 50, "$snapshots snapshots were written");
check_all('snapshots every 3 versions');
is($node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.check_state('prop')}), 0,
	'check_state finds no drift');

# snapshots are derived data: half of them gone, the answers stay the same
$node->safe_psql('postgres',
	q{DELETE FROM headlessly.snapshots WHERE tenant = 'prop' AND (hashtext(target) + version) % 2 = 0});
check_all('half of the snapshots missing');

# rebuilt at another interval: heads unchanged, snapshots rewritten
is($node->safe_psql('postgres',
	q{SET headlessly.snapshot_interval = 5; SELECT heads_changed FROM headlessly.rebuild_state('prop')}),
	0, 'rebuild_state changes no head');
check_all('snapshots rebuilt every 5 versions');

$node->safe_psql('postgres', q{DELETE FROM headlessly.snapshots WHERE tenant = 'prop'});
check_all('no snapshots');

$node->stop;
done_testing();
