# A webhook delivery is attempted at most max_attempts times, however often
# its sender dies while it is in flight.  A target's first event is sent
# and held by the receiver; the worker is killed (kill -9), then the server
# stopped (immediate), each time while that event is in flight: each of
# those attempts counts, and after max_attempts (2) of them the event is a
# dead letter without being sent a third time (it used to be sent again
# after every crash, its count going past max_attempts).  The target's
# later events are no longer held back by it and are delivered.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WebhookReceiver;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = WebhookReceiver->new(secret => $secret);

my $node = PostgreSQL::Test::Cluster->new('webhook_crash_attempts');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
restart_after_crash = on
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 20ms
headlessly.http_timeout = 60s
});
$node->start;
my $url = $recv->url('hold/crash/lamps');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION headlessly_events;
	SELECT name FROM headlessly.subscribe('lamps', 'Lamp.*', url => '$url', secret => '$secret',
	                                      max_attempts => 2);
	SELECT headlessly.events_append(CASE WHEN n = 1 THEN 'Lamp.Created' ELSE 'Lamp.Updated' END, 'lamp_1',
	                                jsonb_build_object('n', n))
	  FROM generate_series(1, 3) n});

sub rows
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(status || ':' || attempts, ',' ORDER BY seq)
		  FROM headlessly.deliveries WHERE subscription = 'lamps'});
}

# versions of the requests the receiver got, in arrival order
sub versions
{
	return join(',', map { $_->{body}{version} } $recv->requests_to('hold/crash/lamps'));
}

sub wait_requests
{
	my ($n, $what) = @_;
	$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/crash/') == 0 } @_) >= $n }, 60)
	  or die "no request $n ($what): got " . versions();
}

# 1: in flight, the worker is killed; the postmaster restarts everything
wait_requests(1, 'the first attempt');
is(rows(), 'pending:1,pending:0,pending:0', 'the first event in flight, its attempt counted');
my $pid = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'});
like($pid, qr/^\d+$/, 'the worker runs');
kill 'KILL', $pid;

# 2: sent again after the crash restart; in flight, the server is stopped
wait_requests(2, 'the second attempt, after the kill');
is(versions(), '1,1', 'the first event sent again after the kill');
ok( $node->poll_query_until('postgres', q{
	SELECT attempts = 2 FROM headlessly.deliveries WHERE subscription = 'lamps' AND seq = 1}),
	'its second attempt counted');
$node->stop('immediate');
$node->start;

# 3: the next request is the second event: the first is not sent a third time
wait_requests(3, 'after the restart');
is(versions(), '1,1,2',
	'after two attempts ended by crashes the first event is not sent again; the second is');
is(rows(), 'dead:2,pending:1,pending:0', 'the first a dead letter after its 2 attempts');
is($node->safe_psql('postgres', q{
	SELECT attempts || ' ' || error FROM headlessly.dead_letters WHERE subscription = 'lamps'}),
	'2 max_attempts reached without a recorded outcome (the sender ended during the last attempt, or max_attempts was lowered)',
	'the dead letter says why');

$recv->release('crash');
ok( $node->poll_query_until('postgres', q{
	SELECT count(*) FILTER (WHERE status IN ('delivered', 'dead')) = 3
	  FROM headlessly.deliveries WHERE subscription = 'lamps'}),
	'every row ends delivered or dead');
is(rows(), 'dead:2,delivered:1,delivered:1', 'each of them attempted once');
is(versions(), '1,1,2,3', 'requests: the first twice, then the others in version order');
is($node->safe_psql('postgres', q{
	SELECT max(attempts) <= 2 FROM headlessly.deliveries}), 't', 'no row past max_attempts');

$node->stop;
done_testing();
