# The background worker's life (src/worker/): with shared_preload_libraries
# a launcher serves every database that has the extension, a new one within
# seconds; databases without it get no worker; DROP DATABASE, ALTER
# DATABASE RENAME / SET TABLESPACE and CREATE DATABASE ... TEMPLATE work
# while a worker serves the database; a worker that dies is started again;
# kill -9 restarts the server and the workers; DROP EXTENSION sends the
# worker away; fast shutdown is prompt.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
max_worker_processes = 16
restart_after_crash = on
headlessly.worker_naptime = 200ms
});
$node->start;

# the databases a worker serves, as "db1,db2"
sub served
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')
		  FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'});
}

sub worker_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'headlessly_events worker' AND datname = '$db'});
}

# waits up to $seconds for served() to be $want; returns the seconds it took, or undef
sub wait_served
{
	my ($want, $seconds) = @_;
	my $start = time;
	while (time - $start < $seconds)
	{
		return time - $start if served() eq $want;
		usleep(50_000);
	}
	return undef;
}

ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'headlessly_events launcher'}),
	'the launcher starts with the server');
ok(defined wait_served('', 5), 'no database has the extension: no worker stays');

# --- a database gets a worker once the extension is installed, within seconds ---
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');
my $took = wait_served('postgres', 10);
ok(defined $took, 'CREATE EXTENSION: the database is served');
cmp_ok($took // 99, '<', 3, 'within 3 s of the commit');

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION headlessly_events');
ok(defined wait_served('postgres,shop', 10), 'a new database with the extension is served');

$node->safe_psql('postgres', 'CREATE DATABASE plain');
usleep(1_500_000);
is(served(), 'postgres,shop', 'a database without the extension is not');

# a rolled-back CREATE EXTENSION leaves nothing to serve
$node->safe_psql('plain', 'BEGIN; CREATE EXTENSION headlessly_events; ROLLBACK;');
usleep(1_500_000);
is(served(), 'postgres,shop', 'a rolled-back CREATE EXTENSION is not served');

# --- DDL that needs the database to itself works while it is served ---
my $start = time;
$node->safe_psql('postgres', 'ALTER DATABASE shop RENAME TO store');
cmp_ok(time - $start, '<', 4, 'ALTER DATABASE RENAME does not wait for PostgreSQL\'s 5 s');
ok(defined wait_served('postgres,store', 10), 'the renamed database is served again');

my $tsdir = PostgreSQL::Test::Utils::tempdir_short();
$node->safe_psql('postgres', "CREATE TABLESPACE elsewhere LOCATION '$tsdir'");
$node->safe_psql('postgres', 'ALTER DATABASE store SET TABLESPACE elsewhere');
ok(defined wait_served('postgres,store', 10), 'ALTER DATABASE SET TABLESPACE works; served again');

$node->safe_psql('postgres', 'CREATE DATABASE store_copy TEMPLATE store');
ok(defined wait_served('postgres,store,store_copy', 10),
	'CREATE DATABASE ... TEMPLATE of a served database works; both are served');
is($node->safe_psql('store_copy', q{SELECT extname FROM pg_extension WHERE extname = 'headlessly_events'}),
	'headlessly_events', 'the copy has the extension');

$start = time;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE store_copy');
is($ret, 0, 'DROP DATABASE of a served database works') or diag($err);
cmp_ok(time - $start, '<', 4, 'promptly');
ok(defined wait_served('postgres,store', 10), 'its worker is not started again');

# a failing DROP DATABASE (someone else is connected) leaves it served
my $session = $node->background_psql('store');
$session->query_safe('SELECT 1');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE store');
like($err, qr/is being accessed by other users/, 'DROP DATABASE with a user connected fails as usual');
$session->quit;
ok(defined wait_served('postgres,store', 10), 'and the database is served again');

# --- a worker that exits is started again; kill -9 restarts everything ---
my $pid = worker_pid('postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE backend_type = 'headlessly_events worker' AND datname = 'postgres' AND pid <> $pid}),
	'a terminated worker is started again');

$pid = worker_pid('store');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', q{
	SELECT string_agg(datname, ',' ORDER BY datname) = 'postgres,store'
	  FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'}),
	'kill -9 of a worker: the server restarts, and both databases are served again');

# --- DROP EXTENSION sends the worker away ---
$node->safe_psql('store', 'DROP EXTENSION headlessly_events');
ok(defined wait_served('postgres', 10), 'DROP EXTENSION: its worker leaves');
$node->safe_psql('store', 'CREATE EXTENSION headlessly_events');
ok(defined wait_served('postgres,store', 10), 'CREATE EXTENSION again: served again');

# --- the server restarts with it ---
$node->restart;
ok(defined wait_served('postgres,store', 15), 'after a restart both databases are served');

# --- fast shutdown is prompt ---
$start = time;
$node->stop('fast');
cmp_ok(time - $start, '<', 5, 'pg_ctl stop -m fast is prompt with the workers running');

done_testing();
