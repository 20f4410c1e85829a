# Which commits wake the delivery worker: one that appended an event a hook
# or webhook subscription matches, not one whose events no such
# subscription matches.  The naptime is an hour and the worker makes no
# checkpoints, so only a wake makes it run a round, which moves its
# pg_stat_activity.state_change.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_wake');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 1h
headlessly.checkpoint_interval = 0
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE TABLE handled (event_id text);
	CREATE FUNCTION record_event(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		INSERT INTO handled VALUES (event->>'id'); SELECT NULL::jsonb $$;
	SELECT headlessly.hook('Order.*', 'after_commit', 'record_event(jsonb)');
	SELECT name FROM headlessly.subscribe('pulled', 'Page.*');});

my $last_round = q{
	SELECT state_change FROM pg_stat_activity
	 WHERE backend_type = 'headlessly_events worker' AND state = 'idle'};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($last_round) r"),
	'the worker serves the database and waits');
# the set-up's own commits may still wake it once: the baseline is a
# state_change that held for a second
my $before = $node->safe_psql('postgres', $last_round);
for (1 .. 30)
{
	usleep(1_000_000);
	my $now = $node->safe_psql('postgres', $last_round);
	last if $now eq $before;
	$before = $now;
}

# a pull consumer matches these, but the worker has nothing to deliver
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Page.Viewed', data => '{}') FROM generate_series(1, 3);
	SELECT headlessly.events_append('Invoice.Created', 'inv_1', '{}');});
usleep(1_000_000);
is($node->safe_psql('postgres', $last_round), $before,
	'appends no hook or webhook subscription matches do not wake the worker');
is($node->safe_psql('postgres', 'SELECT count(*) FROM handled'), '0', 'and nothing was handled');

$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Page.Viewed', data => '{}');
	SELECT headlessly.events_append('Order.Created', 'order_1', '{}');});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM handled'),
	'an append a hook matches wakes it, and the hook runs');
isnt($node->safe_psql('postgres', $last_round), $before, 'it ran a round');

$node->stop;
done_testing();
