# The first grant_tenant() turns row security on for every tenant table,
# under ACCESS EXCLUSIVE locks that it takes all at once or waits for
# holding none (grant.c, lock_all_or_wait).  When some table is busy in
# every one of its rounds -- here two sessions that take turns holding
# checkpoints and deliveries, the first two tables it locks, each taking
# its table again while the grant waits for the other -- it gives up
# after 100 rounds and takes the rest in order, holding what it has.
# This shows that fallback: the grant ends up waiting for deliveries while
# it holds checkpoints (which it never does before), then completes with
# no error or deadlock, and what a grant promises holds: row security on
# every tenant table, the grant recorded, and the role reads its tenant's
# events only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('grant_lock_fallback');
$node->init;
# nothing else may lock the tables: autovacuum would add busy rounds
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE ROLE fb_tenant;
	GRANT USAGE ON SCHEMA headlessly TO fb_tenant;
	GRANT SELECT ON headlessly.events TO fb_tenant;
	SELECT headlessly.events_append('Deal.Created', 'deal_1', '{"v": "a"}', tenant => 'acme');
	SELECT headlessly.events_append('Deal.Created', 'deal_1', '{"v": "b"}', tenant => 'other');});

# the tables the grant locks, in its order: the first two take turns
my @tables = split /\n/, $node->safe_psql('postgres', q{
	SELECT c.relname FROM pg_class c
	 WHERE c.relnamespace = 'headlessly'::regnamespace
	   AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')
	 ORDER BY c.relname});
is("@tables[0, 1]", 'checkpoints deliveries', 'the grant locks checkpoints first, then deliveries');

my %holder = (checkpoints => $node->background_psql('postgres'),
	deliveries => $node->background_psql('postgres'));
my %held;
sub hold
{
	my ($table) = @_;
	$holder{$table}->query_safe("BEGIN; LOCK TABLE headlessly.$table IN ACCESS SHARE MODE");
	$held{$table} = 1;
}
sub free
{
	my ($table) = @_;
	$holder{$table}->query_safe('COMMIT');
	delete $held{$table};
}
hold($_) for sort keys %holder;

my $granter = $node->background_psql('postgres');
my $gpid = $granter->query_safe('SELECT pg_backend_pid()');
$granter->{stdin} .= "SELECT headlessly.grant_tenant('fb_tenant', 'acme');\n\\echo GRANT_DONE\n";
$granter->{run}->pump_nb;

# Once the grant waits: the table it waits for, and how many of the tables
# it holds in ACCESS EXCLUSIVE mode meanwhile (only the fallback holds any).
sub grant_waits
{
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_locks
		 WHERE pid = $gpid AND locktype = 'relation' AND NOT granted})
	  or die 'the grant does not wait';
	return split / /, $node->safe_psql('postgres', qq{
		SELECT (SELECT pg_catalog.replace(l.relation::regclass::text, 'headlessly.', '')
		          FROM pg_locks l
		         WHERE l.pid = $gpid AND l.locktype = 'relation' AND NOT l.granted)
		       || ' ' ||
		       (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		         WHERE l.pid = $gpid AND l.granted AND l.mode = 'AccessExclusiveLock'
		           AND c.relnamespace = 'headlessly'::regnamespace
		           AND EXISTS (SELECT FROM pg_policy p
		                        WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'))});
}

# Each round the grant waits for one table holding none; that table's
# holder lets go; the grant takes it, finds the other busy, lets it go and
# waits for the other; the first is taken again.  A lock is released at
# COMMIT before psql hears of it, so the next wait seen is a new one.
my ($waits_for, $holds) = grant_waits();
my $rounds = 1;
my @waited = ($waits_for);
while ($holds == 0 && $rounds < 150)
{
	die "the grant waits for $waits_for" unless $held{$waits_for};
	my $freed = $waits_for;
	free($freed);
	($waits_for, $holds) = grant_waits();
	$rounds++;
	push @waited, $waits_for;
	hold($freed) if $holds == 0;
}
# tries 0 to 100 each found a table busy and waited holding nothing (101
# rounds, the last one the fallback's wait for checkpoints); then the
# fallback waits for deliveries holding checkpoints
is($rounds, 102, 'after 101 waits holding nothing, the grant holds a table while it waits');
is("$waits_for $holds", 'deliveries 1', 'the fallback: it waits for deliveries holding checkpoints');
is(join(',', @waited[0 .. 3]), 'checkpoints,deliveries,checkpoints,deliveries',
	'before that, every round found the other table busy');

free($_) for sort keys %held;
$granter->{run}->pump until $granter->{stdout} =~ /GRANT_DONE/ || $granter->{timeout}->is_expired;
like($granter->{stdout}, qr/GRANT_DONE/, 'the grant completes');
is($granter->{stderr}, '', 'with no error (no deadlock)');
$granter->quit;
$_->quit for values %holder;

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_class c
	 WHERE c.relnamespace = 'headlessly'::regnamespace AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
	   AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')}),
	'0', 'row security is on for every tenant table');
is($node->safe_psql('postgres', q{
	SELECT role::text || ' ' || tenant || ' ' || rights FROM headlessly.tenant_grants}),
	'fb_tenant acme write', 'the grant is recorded');
is($node->safe_psql('postgres', q{
	SET ROLE fb_tenant; SELECT string_agg(tenant || ':' || (data->>'v'), ',') FROM headlessly.events}),
	'acme:a', 'the role reads its tenant\'s events only');

$node->stop;
done_testing();
