# Appends under load from several clients, then a crash (immediate stop) and
# restart: every acknowledged append is there, every stream's versions are
# 1..n without gaps, and the derived stream heads agree with the log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 40\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

# a few entities that the load patches concurrently
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Counter.Created', 'counter_' || i, jsonb_build_object('i', i))
	  FROM generate_series(1, 10) i});

# background load: 6 pgbench clients on 10 hot streams, entity and plain events
my $script = "${PostgreSQL::Test::Utils::tmp_check}/load.sql";
open my $fh, '>', $script or die $!;
print $fh <<'SQL';
\set t random(1, 10)
SELECT version FROM headlessly.events_append('Counter.Updated', 'counter_' || :t, jsonb_build_object('c' || :client_id, :t));
SELECT version FROM headlessly.events_append('tick', 'hot_' || :t, external_event_id => 'k' || :client_id || '_' || random());
SELECT version FROM headlessly.events_append('page_view');
SQL
close $fh;

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '6', '-j', '2', '-T', '60', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# meanwhile, appends whose acknowledgement we record
my @acked;
my $session = $node->background_psql('postgres');
for my $i (1 .. 200)
{
	my $seq = $session->query_safe(
		"SELECT seq FROM headlessly.events_append('Counter.Updated', 'counter_" . (1 + $i % 10)
		  . "', jsonb_build_object('acked', $i))");
	push @acked, $seq;
}
ok(scalar(@acked) == 200, 'acknowledged 200 appends during the load');

# crash while the load is running
$node->stop('immediate');
$bench->finish;
$session->{run}->kill_kill;
$node->start;

my $acked_list = join(',', @acked);
is($node->safe_psql('postgres',
		"SELECT count(*) FROM headlessly.events WHERE seq IN ($acked_list)"),
	'200', 'every acknowledged append survived the crash');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT tenant, target FROM headlessly.events WHERE target IS NOT NULL
	   GROUP BY tenant, target
	  HAVING min(version) <> 1 OR max(version) <> count(*) OR count(DISTINCT version) <> count(*)) s}),
	'0', 'every stream has versions 1..n without gaps or duplicates');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.streams s
	  FULL JOIN (SELECT tenant, target, max(version) AS version FROM headlessly.events
	              WHERE target IS NOT NULL GROUP BY tenant, target) e USING (tenant, target)
	 WHERE s.version IS DISTINCT FROM e.version}),
	'0', 'stream heads agree with the log');

# seq is drawn under the stream lock: concurrent appends never invert it
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY tenant, target ORDER BY version) AS inverted
	    FROM headlessly.events WHERE target IS NOT NULL) s
	 WHERE inverted}),
	'0', 'along every stream seq order is version order');

# each counter's state is the merge of all its committed patches
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.entities en
	 WHERE en.state->>'acked' IS DISTINCT FROM (
	   SELECT e.data->>'acked' FROM headlessly.events e
	    WHERE e.tenant = en.tenant AND e.target = en.target AND e.data ? 'acked'
	    ORDER BY e.version DESC LIMIT 1)}),
	'0', 'entity state reflects the last committed patch');

ok($node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.events') > 200 + 10,
	'the background load appended too');

# the log goes on where it stopped
is($node->safe_psql('postgres', q{
	SELECT e.version = s.version + 1
	  FROM (SELECT version FROM headlessly.streams WHERE target = 'counter_1') s,
	       headlessly.events_append('Counter.Updated', 'counter_1', '{"after": "restart"}') e}),
	't', 'appends continue with the next version after restart');

$node->stop;
done_testing();
