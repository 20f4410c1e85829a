# headlessly.hook_timeout in the worker: an after_commit handler that
# catches every cancel cannot hold the worker.  It is cancelled at its
# limit and again every second; still running three seconds later, it
# ends the worker (whose attempt counts, so that after max_attempts the
# event is a dead letter), the launcher starts a new one, and the other
# subscriptions of the database are delivered.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hook_timeout');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 1s
headlessly.hook_timeout = 500ms
headlessly.retry_base_delay = 100ms
headlessly.retry_max_delay = 200ms
headlessly.checkpoint_interval = 0
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE SEQUENCE cancels_caught;
	CREATE TABLE handled (type text);
	-- swallows every cancel, for ever
	CREATE FUNCTION stubborn(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN
		LOOP
			BEGIN
				PERFORM pg_sleep(10);
			EXCEPTION WHEN query_canceled THEN
				PERFORM nextval('cancels_caught');
			END;
		END LOOP;
	END $$;
	CREATE FUNCTION record_event(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		INSERT INTO handled VALUES (event->>'type'); SELECT NULL::jsonb $$;
	-- registered first: rounds take it before the other
	SELECT headlessly.hook('Stuck.*', 'after_commit', 'stubborn(jsonb)', max_attempts => 2);
	SELECT headlessly.hook('Stuck.*', 'after_commit', 'record_event(jsonb)');
});
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Stuck.Created', 'st_1')});

ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM handled}),
	'the other subscription of the event is delivered');
ok($node->poll_query_until('postgres', q{
		SELECT d.status = 'dead' AND d.attempts = 2
		  FROM headlessly.deliveries d JOIN headlessly.subscriptions s ON s.name = d.subscription
		  JOIN headlessly.hooks h ON h.id = s.hook_id
		 WHERE h.handler = 'stubborn(jsonb)'::regprocedure}),
	'the stubborn handler\'s event is a dead letter after its two attempts (claimed a third time: not run, not counted)');
ok($node->safe_psql('postgres', q{SELECT last_value FROM cancels_caught}) >= 4,
	'it was cancelled again after catching the first cancel');
like(slurp_file($node->logfile, $log_offset), qr/terminating background worker "headlessly_events worker/,
	'the worker ended itself to stop it');
ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'}),
	'and a new worker serves the database');
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Stuck.Created', 'st_2')});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM handled}),
	'which goes on delivering');

$node->stop;
done_testing();
