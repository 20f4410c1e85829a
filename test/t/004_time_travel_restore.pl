# Time travel across pg_dump and pg_restore: snapshots are not dumped, the
# restore's replay of the log through its trigger writes them again (at the
# restoring server's interval, here the same); without them, as_of and
# entities_as_of still give the same answers, check_state finds no drift, and
# rebuild_state writes them again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restore_tt');
$node->init;
$node->append_conf('postgresql.conf', "headlessly.snapshot_interval = 4\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', 'CREATE EXTENSION headlessly_events');
# 30 transactions of patches on three contacts, a deletion and a re-creation
$node->safe_psql('source', q{
DO $$
BEGIN
    PERFORM headlessly.events_append('Contact.Created', 'c' || i, jsonb_build_object('n', 0))
       FROM generate_series(1, 3) i;
    COMMIT;
    FOR tx IN 1..30 LOOP
        PERFORM headlessly.events_append('Contact.Updated', 'c' || (1 + tx % 3),
                                         jsonb_build_object('n', tx, 'k' || (tx % 5), tx, 'k' || ((tx + 2) % 5), NULL));
        IF tx = 20 THEN
            PERFORM headlessly.events_append('Contact.Deleted', 'c1');
            PERFORM headlessly.events_append('Contact.Created', 'c1', '{"again": true}');
        END IF;
        COMMIT;
    END LOOP;
END
$$;
});

my $answers = q{
	SELECT md5(string_agg(coalesce(headlessly.as_of(t, e.recorded_at)::text, '-')
	                      || coalesce(headlessly.as_of_version(t, e.version)::text, '-'), '|'
	                      ORDER BY t, e.version))
	       || md5((SELECT string_agg(x::text, '|' ORDER BY m.recorded_at, x.target)
	                 FROM (SELECT DISTINCT recorded_at FROM headlessly.events) m,
	                      headlessly.entities_as_of('Contact', m.recorded_at) x))
	  FROM headlessly.events e, LATERAL (SELECT e.target) tt(t) WHERE e.target IS NOT NULL};
my $snapshots = q{SELECT count(*) FROM headlessly.snapshots};
my $expected = $node->safe_psql('source', $answers);
my $nsnapshots = $node->safe_psql('source', $snapshots);
cmp_ok($nsnapshots, '>', 5, "the source has $nsnapshots snapshots");

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/tt.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('source') ], 'pg_dump');

$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $snapshots), $nsnapshots, 'the restore writes the snapshots again');
is($node->safe_psql('restored', q{SELECT string_agg(s::text, '|' ORDER BY target, version) FROM headlessly.snapshots s}),
	$node->safe_psql('source', q{SELECT string_agg(s::text, '|' ORDER BY target, version) FROM headlessly.snapshots s}),
	'the same snapshots as the source');
is($node->safe_psql('restored', $answers), $expected, 'the past reads the same after a restore');
is($node->safe_psql('restored', 'SELECT count(*) FROM headlessly.check_state()'), '0', 'no drift');

# a restore that leaves the derived snapshots out
$node->safe_psql('postgres', 'CREATE DATABASE without');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('without'), $dump ],
	'pg_restore again');
$node->safe_psql('without', 'DELETE FROM headlessly.snapshots');
is($node->safe_psql('without', $answers), $expected, 'without snapshots the past reads the same');
is($node->safe_psql('without', 'SELECT count(*) FROM headlessly.check_state()'), '0',
	'missing snapshots are not drift');
is($node->safe_psql('without', 'SELECT snapshots FROM headlessly.rebuild_state()'), $nsnapshots,
	'rebuild_state writes them again');
is($node->safe_psql('without', $answers), $expected, 'and the answers stay the same');

# appends go on after a restore, snapshots with them
$node->safe_psql('restored', q{
	SELECT headlessly.events_append('Contact.Updated', 'c2', jsonb_build_object('n', i))
	  FROM generate_series(1, 8) i});
is($node->safe_psql('restored', 'SELECT count(*) FROM headlessly.check_state()'), '0',
	'appends after the restore keep heads and snapshots in line with the log');
cmp_ok($node->safe_psql('restored', $snapshots), '>', $nsnapshots, 'and write new snapshots');

$node->stop;
done_testing();
