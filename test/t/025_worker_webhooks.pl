# Webhooks delivered by the background worker to the loopback receiver:
# signed, one target's events in version order; a failing first attempt is
# retried; 429 + Retry-After is honoured; 410 pauses the subscription; a
# rolled-back append is never delivered; deliver() leaves alone what the
# worker has in flight, a whole chain of one target's events too; a server restart, pg_terminate_backend and a kill -9
# of the worker in the middle of deliveries lose nothing (at least once) and
# the events in flight are sent again at once; deliveries go on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use WebhookReceiver;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = WebhookReceiver->new(secret => $secret);

my $node = PostgreSQL::Test::Cluster->new('worker_delivery');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
restart_after_crash = on
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 200ms
headlessly.retry_max_delay = 1s
# longer than a held answer may wait under load: a timeout would send it again
headlessly.http_timeout = 30s
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'}),
	'the worker serves the database');

sub subscribe
{
	my ($name, $path, $pattern) = @_;
	$pattern //= '*';
	$node->safe_psql('postgres', qq{
		SELECT name FROM headlessly.subscribe('$name', '$pattern', url => '${\ $recv->url($path)}',
		                                      secret => '$secret')});
}

# ids of the events appended by $sql, in seq order
sub append
{
	my ($sql) = @_;
	return split /\n/, $node->safe_psql('postgres', $sql);
}

# first delivered request per webhook-id for a path prefix, as id => request
sub delivered
{
	my ($prefix) = @_;
	my %first;
	for my $r ($recv->requests_to($prefix))
	{
		next unless $r->{answer} >= 200 && $r->{answer} < 300;
		$first{ $r->{id} } //= $r;
	}
	return \%first;
}

sub wait_delivered
{
	my ($prefix, $ids, $seconds) = @_;
	return $recv->wait_for(sub {
		my $d = delivered($prefix);
		return !grep { !$d->{$_} } @$ids;
	}, $seconds // 30);
}

# --- delivered, signed, in version order, within moments of the commit ---
subscribe('orders', 'ok/orders', 'Order.*');
my $t0 = time;
my @ids = append(q{
	SELECT id FROM headlessly.events_append('Order.Created', 'order_1', '{"total": 10}');
	SELECT id FROM headlessly.events_append('Order.Updated', 'order_1', '{"total": 12}');
	SELECT id FROM headlessly.events_append('Order.Shipped', 'order_1', '{}');
	SELECT id FROM headlessly.events_append('page_view', 'order_1');});
pop @ids;    # page_view does not match Order.*
ok(wait_delivered('ok/orders', \@ids, 20), 'the three Order events are delivered');
cmp_ok(time - $t0, '<', 5, 'within seconds of the commit');
my @got = grep { $_->{answer} == 200 } $recv->requests_to('ok/orders');
is(scalar @got, 3, 'and nothing else');
is(join(',', map { $_->{body}{version} } @got), '1,2,3', 'in version order');
ok(!grep({ !$_->{signature_ok} } @got), 'all signed correctly');
is($got[0]{body}{type}, 'Order.Created', 'the body is the event');

# --- a failing first attempt is retried ---
subscribe('flaky', 'fail/1/flaky', 'Flaky.*');
@ids = append(q{SELECT id FROM headlessly.events_append('Flaky.Created', 'flaky_1', '{}')});
ok(wait_delivered('fail/1/flaky', \@ids, 20), 'a 500 is retried until it succeeds');
my @attempts = $recv->requests_to('fail/1/flaky');
is(join(',', map { $_->{answer} } @attempts), '500,200', 'one failure, one success');

# --- 429 + Retry-After is honoured (up to retry_max_delay, 1 s here) ---
subscribe('limited', 'retry-after/1/1/limited', 'Limited.*');
@ids = append(q{SELECT id FROM headlessly.events_append('Limited.Created', 'limited_1', '{}')});
ok(wait_delivered('retry-after/1/1/limited', \@ids, 20), '429 then delivered');
@attempts = $recv->requests_to('retry-after/1/1/limited');
cmp_ok($attempts[1]{t} - $attempts[0]{t}, '>=', 0.9, 'not before Retry-After: 1 s (the backoff: 0.2 s)');

# --- 410 pauses the subscription ---
subscribe('gone', 'gone/g', 'Gone.*');
append(q{SELECT id FROM headlessly.events_append('Gone.Created', 'gone_1', '{}')});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'paused' FROM headlessly.subscription_status() WHERE name = 'gone'}),
	'410 Gone pauses the subscription');

# --- a rolled-back append is never delivered ---
subscribe('rb', 'ok/rb', 'Rb.*');
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT id FROM headlessly.events_append('Rb.Created', 'rb_never', '{}');
	ROLLBACK;});
@ids = append(q{SELECT id FROM headlessly.events_append('Rb.Created', 'rb_1', '{}')});
ok(wait_delivered('ok/rb', \@ids, 20), 'the committed one is delivered');
usleep(500_000);
is(scalar(grep { ($_->{body}{target} // '') eq 'rb_never' } $recv->requests_to('ok/rb')), 0,
	'the rolled-back one never');

sub worker_pid
{
	return $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'});
}

# --- a live sender's in-flight deliveries are not taken by another ---
# The receiver holds its answers until released.  While the worker waits
# for them, deliver() in another session must leave them alone.
subscribe('held', 'hold/held', 'Held.*');
@ids = append(q{
	SELECT (headlessly.events_append('Held.Created', 'held_' || i, '{}')).id FROM generate_series(1, 5) i});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/held') == 0 } @_) == 5 }, 20);
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.deliveries d
	  JOIN pg_stat_activity a ON a.pid = d.sender_pid AND a.backend_type = 'headlessly_events worker'
	 WHERE d.subscription = 'held' AND d.status = 'pending' AND d.attempts = 1}), '5',
	'the worker has the five in flight, its pid in their rows');
is($node->safe_psql('postgres', 'SELECT headlessly.deliver()'), '0',
	'deliver() meanwhile attempts none of them: the worker holds them');
$recv->release('held');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM headlessly.deliveries WHERE subscription = 'held' AND status = 'delivered'}),
	'the worker delivers them');
my %sent;
$sent{ $_->{id} }++ for $recv->requests_to('hold/held');
is(scalar(grep { $sent{$_} == 1 } @ids), 5, 'each of them once');

# Events the worker had sent (the receiver got them) when it was stopped:
# the receiver holds its answers until after the stop, so none of them can
# have been recorded as delivered, and each must be sent again.
sub in_flight
{
	my ($prefix, $before) = @_;
	my %ids = map { $_->{id} => 1 } grep { $_->{t} <= $before } $recv->requests_to($prefix);
	return [ sort keys %ids ];
}

# --- the worker terminated while requests are in flight: sent again at once ---
# Its successor finds the rows it had claimed and sends them again without
# waiting for a lease to end (http_timeout + 60 s): their sender is gone.
subscribe('term', 'hold/term', 'Term.*');
@ids = append(q{
	SELECT (headlessly.events_append('Term.Created', 'term_' || i, '{}')).id FROM generate_series(1, 5) i});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/term') == 0 } @_) > 0 }, 20);
my $t_stop = time;
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'headlessly_events worker'});
my $term_in_flight = in_flight('hold/term', time);
$recv->release('term');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM headlessly.deliveries WHERE subscription = 'term' AND status = 'delivered'}),
	'pg_terminate_backend mid-delivery: every event ends delivered');
cmp_ok(time - $t_stop, '<', 20, 'within seconds, not after the lease');
my %term;
$term{ $_->{id} }++ for $recv->requests_to('hold/term');
cmp_ok(scalar(@$term_in_flight), '>', 0, 'the worker had events in flight when it was stopped');
is(scalar(grep { $term{$_} >= 2 } @$term_in_flight), scalar(@$term_in_flight),
	'each of those in flight was sent again');

# --- a chain: every row names the worker; its successor sends it again ---
# A claim takes several events of one target; only the first is in flight,
# the rest wait for its answer, yet each row names the worker as its
# sender.  The worker stopped, its successor takes the whole chain at once.
subscribe('chain', 'hold/chain', 'Chain.*');
@ids = append(q{
	SELECT (headlessly.events_append(CASE WHEN n = 1 THEN 'Chain.Created' ELSE 'Chain.Updated' END,
	                                 'chain_1', jsonb_build_object('n', n))).id
	  FROM generate_series(1, 3) n});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/chain') == 0 } @_) == 1 }, 20);
my $chain_sender = worker_pid();
is($node->safe_psql('postgres', qq{
	SELECT string_agg(status || ':' || attempts || ':' || (sender_pid = $chain_sender), ',' ORDER BY seq)
	  FROM headlessly.deliveries WHERE subscription = 'chain'}),
	'pending:1:true,pending:0:true,pending:0:true',
	'the whole chain is claimed, each row naming the worker, while its first event is in flight (the only attempt made, and counted)');
is($node->safe_psql('postgres', 'SELECT headlessly.deliver()'), '0',
	'deliver() meanwhile takes none of the chain');
is(scalar($recv->requests_to('hold/chain')), 1, 'one request: the rest wait for its answer');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($chain_sender)");
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $chain_sender)"),
	'the worker is gone');
$recv->release('chain');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 3 FROM headlessly.deliveries
	 WHERE subscription = 'chain' AND status = 'delivered' AND sender_pid IS NULL}),
	'its successor delivers the chain');
is(join(',', map { $_->{body}{version} } $recv->requests_to('hold/chain')), '1,1,2,3',
	'the event in flight is sent again, then the rest of its target, in order');
is($node->safe_psql('postgres', q{
	SELECT string_agg(attempts::text, ',' ORDER BY seq) FROM headlessly.deliveries WHERE subscription = 'chain'}),
	'2,1,1', 'attempts: the first two, the rest one each (none lost to the stopped worker)');

# --- kill -9 of the worker while requests are in flight: nothing lost ---
# The receiver holds its answers until after the kill, so the worker cannot
# record any of them.  After the crash restart the new worker sends what
# it had claimed again, at once.
subscribe('slow', 'hold/slow', 'Slow.*');
@ids = append(q{
	SELECT (headlessly.events_append('Slow.Created', 'slow_' || i, '{}')).id FROM generate_series(1, 20) i});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/hold/slow') == 0 } @_) > 0 }, 20);
my $pid = worker_pid();
my $t_kill = time;
kill 'KILL', $pid;
# what arrived until now is the killed worker's: the new one starts after it died
my $kill_in_flight = in_flight('hold/slow', time);
$recv->release('slow');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 20 FROM headlessly.deliveries WHERE subscription = 'slow' AND status = 'delivered'}),
	'kill -9 mid-delivery: every event ends delivered');
cmp_ok(time - $t_kill, '<', 30, 'within seconds of the crash restart, not after the lease');
my %seen;
$seen{ $_->{id} }++ for $recv->requests_to('hold/slow');
is(scalar(grep { $seen{$_} } @ids), 20, 'the receiver got every one of them');
cmp_ok(scalar(@$kill_in_flight), '>', 0, 'the worker had events in flight at the kill');
is(scalar(grep { $seen{$_} >= 2 } @$kill_in_flight), scalar(@$kill_in_flight),
	'each of those in flight at the kill was sent again');

# --- server restart with undelivered events ---
subscribe('restart', 'ok/restart', 'Restart.*');
$node->safe_psql('postgres', q{SELECT headlessly.pause('restart')});
@ids = append(q{
	SELECT (headlessly.events_append('Restart.Created', 'restart_' || i, '{}')).id FROM generate_series(1, 10) i});
$node->restart;
$node->safe_psql('postgres', q{SELECT headlessly.resume('restart')});
ok(wait_delivered('ok/restart', \@ids, 60), 'after a restart the waiting events are delivered');

# --- and deliveries go on ---
@ids = append(q{SELECT id FROM headlessly.events_append('Order.Created', 'order_2', '{}')});
ok(wait_delivered('ok/orders', \@ids, 20), 'new events keep being delivered');

$node->stop;
$recv->stop;
done_testing();
