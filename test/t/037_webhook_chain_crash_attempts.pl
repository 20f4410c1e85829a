# A webhook chain's later event is attempted at most max_attempts times,
# however often its sender dies while it is in flight.  A claim takes a
# target's three events as a chain: the receiver answers the first and
# holds the second, and the server stops (immediate) while the second is
# in flight, twice.  Before a later event of a chain is sent, the sender
# records that the one before it was delivered and counts the later one's
# attempt: after the first stop the first is not sent again, and the
# second counts each attempt that a stop ended; after max_attempts (2) of
# them it is a dead letter, not sent a third time.  (Its attempts used to
# be counted only with their outcome, which a stop loses: it was sent
# again after every stop, as was the first, answered each time.)
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

my $node = PostgreSQL::Test::Cluster->new('webhook_chain_crash_attempts');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 20ms
headlessly.http_timeout = 60s
});
$node->start;
# versions 2 and later are held until released
my $url = $recv->url('hold-from/chain/2/lamps');
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
	return join(',', map { $_->{body}{version} } $recv->requests_to('hold-from/chain/'));
}

sub wait_requests
{
	my ($n, $what) = @_;
	$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold-from/chain/') == 0 } @_) >= $n }, 60)
	  or die "no request $n ($what): got " . versions();
}

# the first answered, the second in flight
wait_requests(2, 'the chain sent');
is(versions(), '1,2', 'the first event answered, the second sent after it');
is(rows(), 'delivered:1,pending:1,pending:0',
	'before the second was sent: the first recorded delivered, the second\'s attempt counted');
$node->stop('immediate');
$node->start;

wait_requests(3, 'after the first stop');
is(versions(), '1,2,2', 'after the stop: the second sent again, not the first');
ok( $node->poll_query_until('postgres', q{
	SELECT attempts = 2 FROM headlessly.deliveries WHERE subscription = 'lamps' AND seq = 2}),
	'its second attempt counted');
$node->stop('immediate');
$node->start;

wait_requests(4, 'after the second stop');
is(versions(), '1,2,2,3', 'after the second stop the second is not sent a third time; the third is');
is(rows(), 'delivered:1,dead:2,pending:1', 'the second a dead letter after its 2 attempts');

$recv->release('chain');
ok( $node->poll_query_until('postgres', q{
	SELECT count(*) FILTER (WHERE status IN ('delivered', 'dead')) = 3
	  FROM headlessly.deliveries WHERE subscription = 'lamps'}),
	'every row ends delivered or dead');
is(rows(), 'delivered:1,dead:2,delivered:1', 'the third attempted once');
is(versions(), '1,2,2,3', 'no other request');

# A row exhausted by crashes can sit behind a head that redeliver() put
# back (the crashes after the head was dead, the redeliver() before the
# next claim): written here as that state.  The head is sent; the row behind
# it is not sent, counts no attempt, and is a dead letter.
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append(CASE WHEN n = 1 THEN 'Lamp.Created' ELSE 'Lamp.Updated' END, 'lamp_2',
	                                jsonb_build_object('n', n))
	  FROM generate_series(1, 2) n});
ok( $node->poll_query_until('postgres', q{
	SELECT count(*) = 4 FROM headlessly.deliveries WHERE subscription = 'lamps' AND status = 'delivered'}),
	'lamp_2\'s events delivered');
my $before = scalar($recv->requests_to('hold-from/chain/'));
$node->safe_psql('postgres', q{
	UPDATE headlessly.deliveries d
	   SET status = CASE e.version WHEN 1 THEN 'failed' ELSE 'pending' END,
	       attempts = CASE e.version WHEN 1 THEN 0 ELSE 2 END,
	       sender_pid = CASE e.version WHEN 1 THEN NULL ELSE 1 END,
	       last_attempt_at = CASE e.version WHEN 1 THEN d.last_attempt_at ELSE '2000-01-01' END,
	       next_attempt_at = CASE e.version WHEN 1 THEN now() - interval '1 s' END
	  FROM headlessly.events e
	 WHERE d.subscription = 'lamps' AND e.id = d.event_id AND e.target = 'lamp_2'});
ok( $node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM headlessly.deliveries d JOIN headlessly.events e ON e.id = d.event_id
	 WHERE d.subscription = 'lamps' AND e.target = 'lamp_2' AND d.status IN ('pending', 'failed')}),
	'lamp_2\'s rows settle');
is($node->safe_psql('postgres', q{
	SELECT string_agg(d.status || ':' || d.attempts, ',' ORDER BY d.seq)
	  FROM headlessly.deliveries d JOIN headlessly.events e ON e.id = d.event_id
	 WHERE d.subscription = 'lamps' AND e.target = 'lamp_2'}),
	'delivered:1,dead:2', 'the redelivered head delivered, the exhausted row behind it dead at its 2 attempts');
is(join(',', map { $_->{body}{version} } ($recv->requests_to('hold-from/chain/'))[$before .. $before]),
	'1', 'only the head was sent');
is(scalar($recv->requests_to('hold-from/chain/')), $before + 1, 'one request');

is($node->safe_psql('postgres', q{
	SELECT max(attempts) <= 2 FROM headlessly.deliveries}), 't', 'no row past max_attempts');

$node->stop;
done_testing();
