# Tenant isolation through transaction pooling: two clients of two tenant
# roles share one server connection through a real pgbouncer
# (pool_mode = transaction, one server connection).  Each transaction takes
# its tenant role with SET LOCAL ROLE; one client also leaves a session-level
# headlessly.tenant behind on the shared connection.  Neither client ever
# reads or writes the other's tenant: nothing depends on session state.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::BackgroundPsql;
use Test::More;
use IPC::Run;

# Debian's pgbouncer (test/lib.sh installs it)
my $pgbouncer = $ENV{PGBOUNCER} // '/usr/sbin/pgbouncer';

# A client of pgbouncer, as the cluster's own background_psql is (its
# constructor only accepts calls from the cluster's package).
{
	package PostgreSQL::Test::Cluster;

	sub hl_client_psql
	{
		my ($self, $connstr) = @_;
		return PostgreSQL::Test::BackgroundPsql->new(0,
			[ $self->installed_command('psql'), '-XAtq', '-d', $connstr, '-f', '-' ],
			undef, 1);
	}
}

my $node = PostgreSQL::Test::Cluster->new('pooled');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE ROLE tenant_a;
	CREATE ROLE tenant_b;
	-- the pool's own login can only take a tenant role, not read as itself
	CREATE ROLE pool_login LOGIN NOINHERIT;
	GRANT tenant_a, tenant_b TO pool_login;
	GRANT USAGE ON SCHEMA headlessly TO tenant_a, tenant_b;
	GRANT SELECT, INSERT ON headlessly.events TO tenant_a, tenant_b;
	GRANT SELECT ON headlessly.streams, headlessly.snapshots, headlessly.heads, headlessly.entities
	   TO tenant_a, tenant_b;
	SELECT headlessly.grant_tenant('tenant_a', 'a');
	SELECT headlessly.grant_tenant('tenant_b', 'b');
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $host = $node->host;
my $node_port = $node->port;
PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq{"alice" ""\n"bob" ""\n});
PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", <<"EOC");
[databases]
pooled = host=$host port=$node_port dbname=postgres user=pool_login

[pgbouncer]
listen_addr =
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
max_db_connections = 1
max_client_conn = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOC
my ($out, $err) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ], '>', \$out, '2>', \$err);
# wait for its socket
for (my $i = 0; $i < 100 && !-S "$dir/.s.PGSQL.$port"; $i++)
{
	select(undef, undef, undef, 0.1);
}
ok(-S "$dir/.s.PGSQL.$port", 'pgbouncer listens');

my $alice = $node->hl_client_psql("host=$dir port=$port dbname=pooled user=alice");
my $bob = $node->hl_client_psql("host=$dir port=$port dbname=pooled user=bob");

# Run one statement list; returns (stdout, stderr) and clears stderr.
sub run
{
	my ($client, $sql) = @_;
	$client->{stderr} = '';
	my $got = $client->query($sql);
	my $errors = $client->{stderr};
	$client->{stderr} = '';
	return ($got, $errors);
}

my %pids;
my $crossed = 0;
my $rounds = 10;
for my $i (1 .. $rounds)
{
	for my $c ([ $alice, 'a' ], [ $bob, 'b' ])
	{
		my ($client, $t) = @$c;
		my ($got, $errors) = run($client, qq{
			BEGIN;
			SET LOCAL ROLE tenant_$t;
			SELECT pg_backend_pid();
			SELECT (headlessly.events_append('Order.Created', 'order_${t}_$i', jsonb_build_object('by', '$t'))).tenant;
			SELECT string_agg(DISTINCT tenant, ',') FROM headlessly.events;
			SELECT count(*) FROM headlessly.entities WHERE state->>'by' <> '$t';
			SELECT headlessly.as_of('order_${t}_$i')->>'by';
			COMMIT;});
		is($errors, '', "round $i, tenant $t: no error");
		my ($pid, $tenant, $seen, $foreign, $state) = split /\n/, $got;
		$pids{$pid} = 1;
		is("$tenant $seen $foreign $state", "$t $t 0 $t",
			"round $i, tenant $t: appends to and reads only its tenant");
	}
}
is(scalar(keys %pids), 1, 'every transaction of both clients ran on one server connection');

# alice leaves a session-level setting on the shared server connection
my ($got, $errors) = run($alice, q{SET headlessly.tenant = 'a'; SHOW headlessly.tenant;});
is($got, 'a', 'a session-level tenant is left on the server connection');

# bob's transaction now runs with alice's leftover setting: it cannot use it
($got, $errors) = run($bob, q{
	BEGIN;
	SET LOCAL ROLE tenant_b;
	SHOW headlessly.tenant;
	SELECT headlessly.events_append('Order.Created', 'order_b_leak');});
like($got, qr/^a$/m, 'bob\'s transaction inherits the leftover setting');
like($errors, qr/tenant "a" is not permitted for role "tenant_b"/, 'and appending under it fails (ZE008)');
($got, $errors) = run($bob, q{ROLLBACK;
	BEGIN;
	SET LOCAL ROLE tenant_b;
	SELECT string_agg(DISTINCT tenant, ',') FROM headlessly.events;
	SELECT headlessly.as_of('order_a_1');
	COMMIT;});
like($errors, qr/tenant "a" is not permitted for role "tenant_b"/, 'reading under it fails too (ZE008)');
like($got, qr/^b$/m, 'while the table shows bob only tenant b');

# a tenant role on the pooled connection cannot set another tenant either
($got, $errors) = run($bob, q{ROLLBACK;
	BEGIN;
	SET LOCAL ROLE tenant_b;
	SET LOCAL headlessly.tenant = 'a';});
like($errors, qr/tenant "a" is not permitted for role "tenant_b"/, 'SET LOCAL of another tenant fails');
run($bob, q{ROLLBACK;});

$alice->quit;
$bob->quit;
$bouncer->kill_kill;

is($node->safe_psql('postgres', q{
	SELECT string_agg(tenant || ':' || count, ' ' ORDER BY tenant) FROM (
	  SELECT tenant, count(*) FROM headlessly.events
	   WHERE target NOT LIKE 'order_' || tenant || '_%' OR data->>'by' <> tenant
	      OR tenant NOT IN ('a', 'b')
	   GROUP BY tenant) x}), '', 'no event crossed to the other tenant');
is($node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.events}), 2 * $rounds,
	'every append of both clients, and nothing else, is stored');

done_testing();
