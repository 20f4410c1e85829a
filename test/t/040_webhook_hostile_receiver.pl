# A receiver that answers as an attacker would: 429 with a Retry-After far
# in the future (a subscription's target held back for years, never a dead
# letter, never paused), or a negative one.  Each is an ordinary failure,
# recorded and retried within headlessly.retry_max_delay.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use WebhookReceiver;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = WebhookReceiver->new(secret => $secret);
# a receiver counts attempts per event id: one for each subscription
my $recv_neg = WebhookReceiver->new(secret => $secret);

my $node = PostgreSQL::Test::Cluster->new('webhook_hostile_receiver');
$node->init;
$node->append_conf('postgresql.conf', qq{
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 2s
headlessly.http_timeout = 2s
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

# Retry-After: 100000000 (three years) on the first attempt of each event.
# It was honoured as given: the event and every later one of its target
# waited that long, though retry_max_delay is the longest a failed
# delivery waits.  (next_attempt_at counts from the outcome, last_attempt_at
# is the claim: a few ms more than the delay.)
my $huge_url = $recv->url('retry-after/100000000/1/huge');
my $neg_url = $recv_neg->url('retry-after/-5/1/neg');
$node->safe_psql('postgres', qq{
	SELECT name FROM headlessly.subscribe('huge', 'Invoice.*', url => '$huge_url', secret => '$secret');
	SELECT name FROM headlessly.subscribe('neg', 'Invoice.*', url => '$neg_url', secret => '$secret');
	SELECT headlessly.events_append('Invoice.Created', 'invoice_1');
	SELECT headlessly.events_append('Invoice.Sent', 'invoice_1');
	SELECT headlessly.deliver();
});
is($node->safe_psql('postgres', q{
	SELECT http_status || ' ' || (next_attempt_at - last_attempt_at BETWEEN interval '1.5 s' AND interval '3 s')::text
	  FROM headlessly.deliveries WHERE subscription = 'huge' AND status = 'failed'}),
	'429 true', 'a Retry-After far past retry_max_delay waits retry_max_delay');
is($node->safe_psql('postgres', q{
	SELECT http_status || ' ' || (next_attempt_at - last_attempt_at < interval '1 s')::text
	  FROM headlessly.deliveries WHERE subscription = 'neg' AND status = 'failed'}),
	'429 true', 'a negative Retry-After is the backoff (10 ms here), not a wait');

# both events reach the receiver, in version order, once the capped delay passed
my $done;
for (1 .. 50)
{
	usleep(200_000);
	$node->safe_psql('postgres', 'SELECT headlessly.deliver()');
	$done = $node->safe_psql('postgres', q{
		SELECT count(*) FROM headlessly.deliveries
		 WHERE subscription IN ('huge', 'neg') AND status = 'delivered'});
	last if $done eq '4';
}
is($done, '4', 'every event delivered within retry_max_delay of the 429');
is(join(',', map { $_->{body}{type} . ':' . $_->{answer} } $recv->requests_to('retry-after/100000000')),
	'Invoice.Created:429,Invoice.Created:200,Invoice.Sent:429,Invoice.Sent:200',
	'one target\'s events in version order, each after its own 429');

$node->stop;
$recv->stop;
$recv_neg->stop;
done_testing();
