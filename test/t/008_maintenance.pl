# Appends keep working while VACUUM and ANALYZE run on the stream heads, as
# autovacuum does: each of those sends a relcache invalidation for
# headlessly.streams and its indexes, which must never catch an append
# between opening the table and opening its primary key (once "could not
# open relation with OID 0").  8 pgbench clients create new streams and
# append to existing ones while another session vacuums and analyzes the
# heads in a loop; no append may fail, and the heads must agree with the log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $seconds = 8;

my $node = PostgreSQL::Test::Cluster->new('maintenance');
$node->init;
# our own loop does what autovacuum would, only more often
$node->append_conf('postgresql.conf', "max_connections = 40\nautovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE SEQUENCE new_stream;
	SELECT headlessly.events_append('Counter.Created', 'counter_' || i, '{"n": 0}')
	  FROM generate_series(1, 20) i});

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my %scripts = (
	'appends.sql' => <<'SQL',
\set c random(1, 20)
SELECT version FROM headlessly.events_append('Thing.Created', 'thing_' || nextval('new_stream'), '{"a": 1}');
SELECT version FROM headlessly.events_append('page_view', 'page_' || nextval('new_stream'));
SELECT version FROM headlessly.events_append('Counter.Updated', 'counter_' || :c, jsonb_build_object('n', :c));
SQL
	'vacuum.sql'  => "VACUUM headlessly.streams;\n",
	'analyze.sql' => "ANALYZE headlessly.streams;\n");
while (my ($name, $text) = each %scripts)
{
	open my $fh, '>', "$dir/$name" or die "cannot write $dir/$name: $!";
	print $fh $text;
	close $fh;
}

my @connection = ('-h', $node->host, '-p', $node->port, 'postgres');
my ($mout, $merr) = ('', '');
my $maintenance = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '1', '-T', $seconds,
	  '-f', "$dir/vacuum.sql", '-f', "$dir/analyze.sql", @connection ],
	'>', \$mout, '2>', \$merr);

my ($out, $err) = ('', '');
IPC::Run::run(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', $seconds,
	  '-f', "$dir/appends.sql", @connection ],
	'>', \$out, '2>', \$err);
my $appends_status = $?;
$maintenance->finish;
my $maintenance_status = $?;

my @errors = grep { /ERROR|aborted/ } split /\n/, $err;
diag($_) for @errors[0 .. ($#errors < 9 ? $#errors : 9)];
is(scalar(@errors), 0, 'no append failed while the heads were vacuumed and analyzed');
is($appends_status, 0, 'the append clients ran to the end');
my ($transactions) = $out =~ /number of transactions actually processed: (\d+)/;
ok(defined $transactions && $transactions > 0, 'the clients appended ('
	  . ($transactions // 0) . ' transactions of 3 appends)');
is($maintenance_status, 0, 'VACUUM and ANALYZE ran meanwhile') or diag($merr);
my ($rounds) = $mout =~ /number of transactions actually processed: (\d+)/;
ok(defined $rounds && $rounds > 10, 'the heads were vacuumed or analyzed '
	  . ($rounds // 0) . ' times');

is($node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.check_state()'),
	'0', 'every stream head agrees with the log');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT target FROM headlessly.events WHERE target IS NOT NULL
	   GROUP BY tenant, target HAVING max(version) <> count(*)) s}),
	'0', 'every stream has versions 1..n');

$node->stop;
done_testing();
