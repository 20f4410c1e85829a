# Tamper evidence through a crash and on a streaming replica: 8 pgbench
# clients append (entity and free events, two tenants) while checkpoints
# are taken alongside; the server is killed (immediate stop) and restarted.
# Every acknowledged event is there, streams have no gaps, and verify() is
# OK for every tenant, also once the events committed before the crash are
# sealed.  A streaming replica then answers as_of, events_list and verify
# exactly as the primary does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "max_connections = 40\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Counter.Created', 'counter_' || i, jsonb_build_object('i', i),
	                                tenant => 't' || (i % 2))
	  FROM generate_series(1, 10) i});

my $script = "${PostgreSQL::Test::Utils::tmp_check}/tamper_load.sql";
open my $fh, '>', $script or die $!;
print $fh <<'SQL';
\set t random(1, 10)
SELECT version FROM headlessly.events_append('Counter.Updated', 'counter_' || :t, jsonb_build_object('c' || :client_id, :t), tenant => 't' || (:t % 2));
SELECT seq FROM headlessly.events_append('page_view', data => jsonb_build_object('c', :client_id), tenant => 't' || (:client_id % 2));
SQL
close $fh;

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', '60', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# checkpoints while the load runs: they never wait for appends
my $sealer = $node->background_psql('postgres');
my $made = 0;
my @acked;
my $session = $node->background_psql('postgres');
for my $i (1 .. 150)
{
	push @acked, $session->query_safe(
		"SELECT seq FROM headlessly.events_append('Counter.Updated', 'counter_" . (1 + $i % 10)
		  . "', jsonb_build_object('acked', $i), tenant => 't" . ((1 + $i % 10) % 2) . "')");
	$made += $sealer->query_safe('SELECT headlessly.checkpoint()') if $i % 25 == 0;
}
cmp_ok($made, '>', 0, "checkpoints made under load: $made");

$node->stop('immediate');
$bench->finish;
$session->{run}->kill_kill;
$sealer->{run}->kill_kill;
$node->start;

my $acked_list = join(',', @acked);
is($node->safe_psql('postgres', "SELECT count(*) FROM headlessly.events WHERE seq IN ($acked_list)"),
	'150', 'every acknowledged append survived the crash');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.events'), '>', 500,
	'the load appended');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT tenant, target, max(version) = count(*) AND min(version) = 1 AS gapless
	    FROM headlessly.events WHERE target IS NOT NULL GROUP BY tenant, target) s
	 WHERE NOT gapless}),
	'0', 'every stream is gapless after the crash');
is($node->safe_psql('postgres', q{SELECT string_agg(tenant || ':' || ok, ',' ORDER BY tenant) FROM headlessly.verify()}),
	't0:true,t1:true', 'verify is OK after the crash');
cmp_ok($node->safe_psql('postgres', 'SELECT headlessly.checkpoint()'), '>=', 1,
	'what committed before the crash is sealed now');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.events e
	 WHERE NOT EXISTS (SELECT FROM headlessly.checkpoints c
	                    WHERE c.tenant = e.tenant AND c.seqs @> e.seq)}),
	'0', 'every event is sealed, once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.events e JOIN headlessly.checkpoints c
	    ON c.tenant = e.tenant AND c.seqs @> e.seq}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.events'),
	'no event is sealed twice');
my $digest = $node->safe_psql('postgres', 'SELECT headlessly.digest()');
is($node->safe_psql('postgres', qq{SELECT string_agg(tenant || ':' || ok, ',' ORDER BY tenant)
                                     FROM headlessly.verify(NULL, '$digest')}),
	't0:true,t1:true', 'verify is OK against the digest, sealed');

# a streaming replica answers as the primary does
$node->backup('tamper_backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'tamper_backup', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Counter.Updated', 'counter_1', '{"after": "backup"}', tenant => 't1');
	SELECT headlessly.events_append('page_view', tenant => 't0');
	SELECT headlessly.checkpoint();
	SELECT headlessly.events_append('Counter.Updated', 'counter_2', '{"unsealed": true}', tenant => 't0');});
$node->wait_for_catchup($standby);

my %queries = (
	as_of => q{SELECT string_agg(t || '=' || coalesce(headlessly.as_of(t, tenant => 't' || (i % 2))::text, 'null'), ';')
	             FROM (SELECT i, 'counter_' || i AS t FROM generate_series(1, 10) i) s},
	as_of_past => q{SELECT headlessly.as_of('counter_2', (SELECT recorded_at FROM headlessly.events
	                                                       WHERE tenant = 't0' ORDER BY seq OFFSET 40 LIMIT 1), 't0')},
	events_list => q{SELECT string_agg(id || ':' || version, ',') FROM headlessly.events_list('counter_1', max_rows => 1000, tenant => 't1')},
	verify => q{SELECT string_agg(concat_ws(':', tenant, ok, checked, problem), ',' ORDER BY tenant) FROM headlessly.verify()},
	verify_digest => qq{SELECT string_agg(concat_ws(':', tenant, ok, checked, problem), ',' ORDER BY tenant)
	                      FROM headlessly.verify(NULL, '$digest')},
	digest => q{SELECT headlessly.digest()},
	proof => q{SELECT headlessly.proof(id) FROM headlessly.events WHERE tenant = 't1' ORDER BY seq LIMIT 1},
);
foreach my $what (sort keys %queries)
{
	my $primary = $node->safe_psql('postgres', $queries{$what});
	ok(length($primary) > 0, "primary answers $what");
	is($standby->safe_psql('postgres', $queries{$what}), $primary, "the replica answers $what as the primary");
}
like($standby->safe_psql('postgres', $queries{verify}), qr/^t0:t:\d+,t1:t:\d+$/, 'verify on the replica is OK');
my ($ret, $sout, $serr) = $standby->psql('postgres', 'SELECT headlessly.checkpoint()');
like($serr, qr/read-only/, 'checkpoint() on the replica: refused, read-only');

# a write on the replica is refused as read-only (25006), never as an
# internal error; and the replica stores nothing
foreach my $write (
	q{SELECT headlessly.events_rollback('counter_1', now() - interval '1 day', tenant => 't1')},
	q{SELECT headlessly.events_append('Counter.Updated', 'counter_1', '{"x": 1}', tenant => 't1')})
{
	($ret, $sout, $serr) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$write");
	like($serr, qr/ERROR:  25006:/, "on the replica, refused with 25006: $write");
}
is($standby->safe_psql('postgres', q{SELECT count(*) FROM headlessly.events WHERE tenant = 't1' AND target = 'counter_1'}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.events WHERE tenant = 't1' AND target = 'counter_1'}),
	'the replica stored nothing');

done_testing();
