# after_commit hooks run by the background worker (hl_delivery_round from
# src/worker/worker.c): within moments of the commit (the commit wakes the
# worker), never for a rolled-back append, retried when the handler fails;
# checkpoints made by the worker every headlessly.checkpoint_interval;
# a kill -9 of the worker while handlers run and a server restart lose
# nothing (at least once), and delivery goes on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_hooks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
restart_after_crash = on
# longer than a commit's wake-up may take, shorter than the tests' patience
# for retries, which only the naptime brings
headlessly.worker_naptime = 5s
headlessly.retry_base_delay = 100ms
headlessly.retry_max_delay = 200ms
headlessly.http_timeout = 1s
headlessly.checkpoint_interval = 1s
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE TABLE handled (event_id text, type text, at timestamptz DEFAULT clock_timestamp());
	CREATE SEQUENCE flaky_calls;    -- nextval is not undone with the failed call
	CREATE FUNCTION record_event(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		INSERT INTO handled (event_id, type) VALUES (event->>'id', event->>'type'); SELECT NULL::jsonb $$;
	-- fails on its first call, then works
	CREATE FUNCTION flaky(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN
		IF nextval('flaky_calls') = 1 THEN RAISE EXCEPTION 'first call fails'; END IF;
		INSERT INTO handled (event_id, type) VALUES (event->>'id', event->>'type');
		RETURN NULL;
	END $$;
	CREATE FUNCTION slow(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		SELECT pg_sleep(0.2);
		INSERT INTO handled (event_id, type) VALUES (event->>'id', event->>'type'); SELECT NULL::jsonb $$;
	SELECT headlessly.hook('Order.*', 'after_commit', 'record_event(jsonb)');
	SELECT headlessly.hook('Flaky.*', 'after_commit', 'flaky(jsonb)');
	SELECT headlessly.hook('Slow.*', 'after_commit', 'slow(jsonb)');});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'}),
	'the worker serves the database');

# every event of $type handled, each at least once (polls; survives a
# server that is restarting)
sub all_handled
{
	my ($type, $n) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT count(DISTINCT h.event_id) = $n FROM handled h
		  JOIN headlessly.events e ON e.id = h.event_id WHERE e.type LIKE '$type'});
}

# --- the commit wakes the worker (its naptime is 5 s) ---
my $t0 = time;
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Order.Created', 'order_' || i, '{}') FROM generate_series(1, 5) i});
ok(all_handled('Order.%', 5), 'after_commit hooks run by the worker');
cmp_ok(time - $t0, '<', 2, 'within moments of the commit, woken by it');

# --- the worker seals what has committed, every checkpoint_interval ---
ok($node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM headlessly.checkpoints WHERE tenant = 'default'}),
	'the worker makes checkpoints without headlessly.checkpoint() being called');
is($node->safe_psql('postgres', q{SELECT bool_and(ok) FROM headlessly.verify()}), 't',
	'and verify() accepts them');

# --- a rolled-back append is never delivered ---
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Order.Created', 'order_rolled_back', '{}');
	ROLLBACK;
	SELECT headlessly.events_append('Order.Created', 'order_6', '{}');});
ok(all_handled('Order.%', 6), 'the committed append after it is delivered');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM handled h WHERE NOT EXISTS (SELECT FROM headlessly.events e WHERE e.id = h.event_id)}),
	'0', 'the rolled-back one never');

# --- a failing handler is retried by the worker ---
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Flaky.Created', 'flaky_1', '{}')});
ok(all_handled('Flaky.%', 1), 'a handler that failed once is retried and succeeds');
is($node->safe_psql('postgres', 'SELECT last_value FROM flaky_calls'), '2', 'in two calls');

# --- kill -9 of the worker while handlers run: nothing lost ---
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Slow.Created', 'slow_' || i, '{}') FROM generate_series(1, 20) i});
$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM handled WHERE type = 'Slow.Created'});
my $pid = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'});
kill 'KILL', $pid;
# the crash restarts the server; the in-flight lease (http_timeout + 60 s) must pass
ok(all_handled('Slow.%', 20), 'kill -9 mid-delivery: every event still handled (at least once)');

# --- a server restart with undelivered events ---
# The worker runs subscriptions in registration order: while it waits in the
# Hold handler (on an advisory lock this session holds), the Order events
# appended next are not even claimed; the restart finds them waiting.
$node->safe_psql('postgres', q{
	CREATE FUNCTION hold(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		SELECT pg_advisory_xact_lock_shared(7);
		INSERT INTO handled (event_id, type) VALUES (event->>'id', event->>'type'); SELECT NULL::jsonb $$;
	SELECT headlessly.hook('Hold.*', 'after_commit', 'hold(jsonb)');});
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(7)');
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Hold.Created', 'hold_1', '{}')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE backend_type = 'headlessly_events worker' AND wait_event_type = 'Lock'});
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Order.Created', 'order_r' || i, '{}') FROM generate_series(1, 10) i});
is($node->safe_psql('postgres', q{SELECT count(*) FROM handled WHERE type = 'Order.Created'}), '6',
	'while the worker waits, the new Order events are not delivered');
$node->restart;
eval { $locker->quit };
ok(all_handled('Order.%', 16), 'after a restart the waiting events are delivered');

$node->safe_psql('postgres', q{SELECT headlessly.events_append('Order.Created', 'order_last', '{}')});
ok(all_handled('Order.%', 17), 'and new ones go on being delivered');

$node->stop;
done_testing();
