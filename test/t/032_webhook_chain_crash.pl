# An attempt of a webhook chain is counted when it is made.  A claim takes
# a target's events as a chain, and the sender sends each after the one
# before it succeeded; the server crashes while the first is in flight.
# After the restart every event is sent and delivered: the first was
# attempted twice and counts 2; the others, claimed twice but sent once,
# count 1 (the crash used to cost them an attempt each, and a chain's last
# events could become dead letters without ever being sent).
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

my $node = PostgreSQL::Test::Cluster->new('webhook_chain_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 20ms
headlessly.http_timeout = 30s
});
$node->start;
my $url = $recv->url('hold/crash/chain');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION headlessly_events;
	SELECT name FROM headlessly.subscribe('chain', 'Lamp.*', url => '$url', secret => '$secret',
	                                      max_attempts => 2);
	SELECT headlessly.events_append(CASE WHEN n = 1 THEN 'Lamp.Created' ELSE 'Lamp.Updated' END, 'lamp_1',
	                                jsonb_build_object('n', n))
	  FROM generate_series(1, 3) n});

# the worker claims the three as a chain and sends the first, which the
# receiver holds
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/crash/') == 0 } @_) == 1 }, 30)
	or die 'the worker did not send the first event';
sub rows
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(status || ':' || attempts, ',' ORDER BY seq)
		  FROM headlessly.deliveries WHERE subscription = 'chain'});
}
is(rows(), 'pending:1,pending:0,pending:0',
	'in flight: the first event\'s attempt counted, not those of the two behind it');

# crash, then let the receiver answer
$node->stop('immediate');
$recv->release('crash');
$node->start;

ok($node->poll_query_until('postgres', q{
	SELECT count(*) FILTER (WHERE status = 'delivered') = 3
	  FROM headlessly.deliveries WHERE subscription = 'chain'}),
	'after the restart every event is delivered');
is(rows(), 'delivered:2,delivered:1,delivered:1',
	'the first attempted twice, the others once: each attempt counted once, when made');
is(join(',', map { $_->{body}{version} } $recv->requests_to('hold/crash/chain')), '1,1,2,3',
	'requests: the first twice (the crash lost its answer), then the others in version order');
is($node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.dead_letters'), '0',
	'no dead letter at max_attempts 2');

$node->stop;
done_testing();
