# Claims of deliveries name their sender (headlessly.deliveries.sender_pid,
# claimed at last_attempt_at): a delivery round takes a row in flight only
# from a sender that has ended.  Two live senders -- the worker and
# deliver() sessions -- never run one event twice, even when a handler
# drops every advisory lock of its backend; a row whose sender is gone goes
# again at once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('claims');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 100ms
headlessly.retry_max_delay = 200ms
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE TABLE ran (event_id text, target text, pid int);
	-- drops the advisory locks of the backend running it, and takes its time
	CREATE FUNCTION unlocking(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_advisory_unlock_all();
		PERFORM pg_sleep(0.05);
		INSERT INTO ran VALUES (event->>'id', event->>'target', pg_backend_pid());
		RETURN NULL;
	END $$;
	SELECT headlessly.hook('Claim.*', 'after_commit', 'unlocking(jsonb)');
	CREATE FUNCTION record(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
		INSERT INTO ran VALUES (event->>'id', event->>'target', pg_backend_pid()) RETURNING NULL::jsonb $$;
	SELECT headlessly.hook('Fake.*', 'after_commit', 'record(jsonb)');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'}),
	'the worker serves the database');

# --- whether a sender is alive ---
my $other = $node->background_psql('postgres');
my $other_pid = $other->query_safe('SELECT pg_backend_pid()');
is($node->safe_psql('postgres', qq{SELECT headlessly.delivery_sender_alive($other_pid, now())}),
	't', 'a running backend is a live sender');
is($node->safe_psql('postgres', qq{
	SELECT headlessly.delivery_sender_alive($other_pid, backend_start - interval '1 s')
	  FROM pg_stat_activity WHERE pid = $other_pid}),
	'f', 'not for a claim made before it started: its pid was another backend\'s');
is($node->safe_psql('postgres', q{SELECT headlessly.delivery_sender_alive(pg_backend_pid(), now())}),
	'f', 'this backend outside a delivery round holds nothing');
is($node->safe_psql('postgres', q{SELECT headlessly.delivery_sender_alive(pg_backend_pid(), now() - interval '10 years')}),
	'f', 'nor does a claim made before the server started');
$node->safe_psql('postgres', q{
	CREATE ROLE outsider;
	GRANT USAGE ON SCHEMA headlessly TO outsider});
my ($rc, $out, $err) = $node->psql('postgres', qq{
	SET ROLE outsider; SELECT headlessly.delivery_sender_alive($other_pid, now())});
like($err, qr/permission denied for function delivery_sender_alive/, 'an internal function');

# --- a row a live sender holds is left alone; once it is gone, at once ---
my $fake = $node->safe_psql('postgres', q{SELECT 'hook:' || id FROM headlessly.hooks
	WHERE handler = 'record(jsonb)'::regprocedure});
$node->safe_psql('postgres', qq{
	BEGIN;
	SELECT headlessly.events_append('Fake.Created', 'fake_1');
	INSERT INTO headlessly.deliveries (subscription, event_id, seq, tenant, target, status, attempts,
	                                   sender_pid, last_attempt_at, next_attempt_at)
	SELECT '$fake', id, seq, tenant, target, 'pending', 1, $other_pid, clock_timestamp(),
	       clock_timestamp() + interval '1 s'
	  FROM headlessly.events WHERE target = 'fake_1';
	COMMIT});
usleep(1_500_000);    # the worker's rounds, the row's lease long past
is($node->safe_psql('postgres', 'SELECT headlessly.deliver()'), '0',
	'deliver() takes nothing another live backend holds');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ran WHERE target = 'fake_1'}), '0', 'nor does the worker: not run');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || sender_pid FROM headlessly.deliveries WHERE subscription = '$fake'}),
	"pending $other_pid", 'still held by its sender');
$other->quit;
my $t_gone = time;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ran WHERE target = 'fake_1'}),
	'once its sender has ended, it is run');
cmp_ok(time - $t_gone, '<', 5, 'at once, not when a lease runs out');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || attempts || ' ' || (sender_pid IS NULL)
	  FROM headlessly.deliveries WHERE subscription = '$fake'}),
	'delivered 2 true', 'delivered on its second attempt, held by no one');

# --- the worker and three deliver() sessions at once ---
# Each handler drops every advisory lock of the backend it runs in: with a
# lock as the only guard, the others would take what the worker (or one of
# them) has in flight and run it again.
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Claim.Created', 'claim_' || i) FROM generate_series(1, 40) i});
my @sessions;
for my $s (1 .. 3)
{
	my ($o, $e) = ('', '');
	push @sessions, [ IPC::Run::start(
		[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c', q{
			DO $$ BEGIN
				FOR i IN 1 .. 30 LOOP
					PERFORM headlessly.deliver(3);
					COMMIT;
					PERFORM pg_sleep(0.02);
				END LOOP;
			END $$} ],
		'>', \$o, '2>', \$e), \$e ];
}
$_->[0]->finish for @sessions;
ok($node->poll_query_until('postgres', q{
	SELECT count(DISTINCT event_id) = 40 FROM ran WHERE target LIKE 'claim\_%'}),
	'every event is run');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ran WHERE target LIKE 'claim\_%'}), '40', 'each once');
is(join('', map { ${ $_->[1] } } @sessions), '', 'and no session was warned of anything');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.deliveries WHERE sender_pid IS NOT NULL OR status <> 'delivered'}),
	'0', 'every delivery is done, none held');

# --- a handler that removes its own hook ---
# Its row goes with the hook: nothing is left to record, and nothing to undo.
$node->safe_psql('postgres', q{
	CREATE FUNCTION unhook_self(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO ran VALUES (event->>'id', event->>'target', pg_backend_pid());
		PERFORM headlessly.unhook(id) FROM headlessly.hooks
		  WHERE handler = 'unhook_self(jsonb)'::regprocedure;
		RETURN NULL;
	END $$;
	SELECT headlessly.hook('Once.*', 'after_commit', 'unhook_self(jsonb)');
	SELECT headlessly.events_append('Once.Created', 'once_1');});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ran WHERE target = 'once_1'}),
	'a handler that unhooks itself runs');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.hooks WHERE handler = 'unhook_self(jsonb)'::regprocedure}),
	'0', 'and its hook is gone');
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Once.Created', 'once_2')});
usleep(500_000);
is($node->safe_psql('postgres', q{SELECT count(*) FROM ran WHERE target LIKE 'once\_%'}),
	'1', 'once, and not for later events');

done_testing();
