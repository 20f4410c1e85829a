# Webhook subscriptions delivered by deliver() (one delivery round in the
# calling backend, no worker): signed requests to a loopback receiver that
# checks the signatures itself, one per committed matching event, never for
# a rolled-back append; failures retried with backoff until delivered or
# dead; Retry-After honoured on 429; 410 Gone pauses the subscription;
# delivered rows are deleted after headlessly.delivery_retention.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use WebhookReceiver;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = WebhookReceiver->new(secret => $secret);

my $node = PostgreSQL::Test::Cluster->new('webhook_rounds');
$node->init;
$node->append_conf('postgresql.conf', qq{
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 20ms
headlessly.http_timeout = 2s
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

my ($ok_url, $fail_url, $err_url, $gone_url, $retry_url) =
	map { $recv->url($_) } ('ok/wh', 'fail/2/flaky', 'status/500/dead', 'gone/wh', 'retry-after/1/1/ra');
$node->safe_psql('postgres', qq{
	SELECT name FROM headlessly.subscribe('wh', 'Order.*', url => '$ok_url', secret => '$secret',
	                                      headers => '{"Authorization": "Bearer t0k"}');
	SELECT name FROM headlessly.subscribe('flaky', 'Order.*', url => '$fail_url', secret => '$secret',
	                                      max_attempts => 5);
	SELECT name FROM headlessly.subscribe('dead', 'Order.*', url => '$err_url', secret => '$secret',
	                                      max_attempts => 2);
});
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Order.Created', 'order_1', '{"total": 5}');
	SELECT headlessly.events_append('Contact.Created', 'contact_1');
	BEGIN;
	SELECT headlessly.events_append('Order.Created', 'order_rb');
	ROLLBACK;
	SELECT headlessly.events_append('Order.Shipped', 'order_1');
});

is($node->safe_psql('postgres', 'SELECT headlessly.deliver()'), '4',
	'one round attempts both events of the healthy subscription, the first of each failing one');
my @wh = $recv->requests_to('ok/wh');
is(scalar(@wh), 2, 'two requests to the healthy receiver');
ok((grep { $_->{signature_ok} } @wh) == 2, 'both signed with the subscription\'s secret');
is($wh[0]{body}{type}, 'Order.Created', 'in version order: Created');
is($wh[1]{body}{type}, 'Order.Shipped', 'then Shipped');
is($wh[0]{body}{state}{total}, 5, 'the body carries the state after the event');
is($wh[0]{headers}{authorization}, 'Bearer t0k', 'with the subscription\'s headers');
is($wh[0]{id}, $node->safe_psql('postgres', q{SELECT id FROM headlessly.events WHERE target = 'order_1' AND version = 1}),
	'webhook-id is the event id');
ok(!(grep { ($_->{body}{target} // '') eq 'order_rb' } $recv->requests), 'never a rolled-back append');
is($node->safe_psql('postgres', q{
	SELECT string_agg(status || ':' || http_status, ',' ORDER BY seq) FROM headlessly.deliveries WHERE subscription = 'wh'}),
	'delivered:200,delivered:200', 'recorded as delivered with the status');
is($wh[1]{body}{state}{total}, 5, 'and the state after the next event, from the one before it');

# the failing receiver: only the first event of the target was tried; the second waits behind it
is($node->safe_psql('postgres', q{
	SELECT string_agg(status || ':' || attempts || ':' || COALESCE(http_status, 0), ',' ORDER BY seq)
	  FROM headlessly.deliveries WHERE subscription = 'flaky'}),
	'failed:1:500,pending:0:0', 'a failure is retried later, and holds back its target\'s next event');

# retries, one attempt per row and round: the flaky receiver answers 200 to
# the third attempt of each event; the dead subscription gives up after 2
for (1 .. 8)
{
	select(undef, undef, undef, 0.1);
	$node->safe_psql('postgres', 'SELECT headlessly.deliver()');
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(status || ':' || attempts, ',' ORDER BY seq) FROM headlessly.deliveries WHERE subscription = 'flaky'}),
	'delivered:3,delivered:3', 'delivered on the third attempt, then the held event');
is($node->safe_psql('postgres', q{
	SELECT string_agg(target || ':' || attempts || ':' || http_status, ',' ORDER BY seq) FROM headlessly.dead_letters
	 WHERE subscription = 'dead'}),
	'order_1:2:500,order_1:2:500', 'dead letters after max_attempts, which no longer hold the target back');
is($node->safe_psql('postgres', q{SELECT headlessly.redeliver('dead')}), '2', 'redeliver puts them back');

# 429 with Retry-After: 1 s waits a second, not the 10 ms backoff (up to
# retry_max_delay, raised for it here; TAP 040 has the cap)
$node->safe_psql('postgres', qq{
	SET headlessly.retry_max_delay = '5s';
	SELECT name FROM headlessly.subscribe('ra', 'Invoice.*', url => '$retry_url', secret => '$secret');
	SELECT headlessly.events_append('Invoice.Created', 'invoice_1');
	SELECT headlessly.deliver();
});
ok($node->safe_psql('postgres', q{
	SELECT next_attempt_at - last_attempt_at > interval '900 ms' FROM headlessly.deliveries WHERE subscription = 'ra'}) eq 't',
	'Retry-After on 429 is honoured');

# 410 Gone pauses the subscription
$node->safe_psql('postgres', qq{
	SELECT name FROM headlessly.subscribe('gone', 'Invoice.*', url => '$gone_url', secret => '$secret');
	SELECT headlessly.events_append('Invoice.Sent', 'invoice_1');
	SELECT headlessly.deliver();
});
is($node->safe_psql('postgres', q{SELECT state FROM headlessly.subscriptions WHERE name = 'gone'}),
	'paused', '410 Gone pauses the subscription');

# the states of a stream sent event after event, over several rounds, are
# what as_of_version() replays
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Order.Updated', 'order_1', '{"total": 7, "note": "gift"}');
	SELECT headlessly.deliver();
	SELECT headlessly.events_append('Order.Updated', 'order_1', '{"note": null, "paid": true}');
	SELECT headlessly.deliver();
});
@wh = $recv->requests_to('ok/wh');
my $json = JSON::PP->new->canonical;
is(join(' ', map { $json->encode($_->{body}{state}) } @wh[2, 3]),
	join(' ', map { $json->encode($json->decode($node->safe_psql('postgres',
		"SELECT headlessly.as_of_version('order_1', $_)"))) } (3, 4)),
	'the states after versions 3 and 4 are those as_of_version() gives');

# retention: delivered rows older than headlessly.delivery_retention are
# deleted by a round; newer ones, and failed and dead ones, stay
$node->safe_psql('postgres', q{
	UPDATE headlessly.deliveries SET last_attempt_at = last_attempt_at - interval '2 days'
	 WHERE subscription IN ('wh', 'dead')});
my $before = $node->safe_psql('postgres', q{
	SELECT string_agg(subscription || ':' || seq, ',' ORDER BY subscription, seq) FROM headlessly.deliveries
	 WHERE subscription <> 'wh'});
is($node->safe_psql('postgres', q{
	SET headlessly.delivery_retention = '1d';
	SELECT headlessly.deliver() >= 0;
	SELECT count(*) FROM headlessly.deliveries WHERE subscription = 'wh'}), "t\n0",
	'delivered rows past the retention are deleted');
is($node->safe_psql('postgres', q{
	SELECT string_agg(subscription || ':' || seq, ',' ORDER BY subscription, seq) FROM headlessly.deliveries
	 WHERE subscription <> 'wh'}), $before,
	'younger delivered rows and undelivered ones stay');

done_testing();
