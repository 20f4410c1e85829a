# A webhook claim takes several events of one target (a chain) and the
# sender sends each after the one before it succeeded: every event is
# sent and marked delivered exactly once, each target's in version order;
# a failure stops its chain, and the rows behind it are given back as they
# were (no attempt counted); connections to the receiver are kept and
# reused from one round to the next.  Rows behind a failure are given back
# only if their sender still holds them, and a chain never takes a row that
# another live sender holds.
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

my $node = PostgreSQL::Test::Cluster->new('webhook_chains');
$node->init;
$node->append_conf('postgresql.conf', qq{
headlessly.retry_base_delay = 10ms
headlessly.retry_max_delay = 20ms
headlessly.http_timeout = 5s
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

my ($ok_url, $fail_url) = map { $recv->url($_) } ('ok/chain', 'fail/1/stop');
$node->safe_psql('postgres', qq{
	SELECT name FROM headlessly.subscribe('chain', 'Item.*', url => '$ok_url', secret => '$secret');
	SELECT name FROM headlessly.subscribe('stop', 'Part.*', url => '$fail_url', secret => '$secret');
});

# 4 targets of 6 events each, interleaved in the log
$node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.events_append_batch(
		(SELECT jsonb_agg(jsonb_build_object('type', CASE WHEN i <= 4 THEN 'Item.Created' ELSE 'Item.Updated' END,
		                                     'target', 'item_' || (i % 4), 'data', jsonb_build_object('i', i))
		                  ORDER BY i)
		   FROM generate_series(1, 24) i))});

# two rounds in one backend (its connections are its own), with 8 more
# events appended between them
is($node->safe_psql('postgres', q{
	SELECT headlessly.deliver();
	SELECT pg_sleep(0.2);
	SELECT count(*) FROM headlessly.events_append_batch(
		(SELECT jsonb_agg(jsonb_build_object('type', 'Item.Updated', 'target', 'item_' || (i % 4)) ORDER BY i)
		   FROM generate_series(1, 8) i));
	SELECT headlessly.deliver()}), "24\n\n8\n8",
	'one round sends all 24 events, 6 to a target; the next the 8 appended since');
my @reqs = grep { $_->{body}{version} <= 6 } $recv->requests_to('ok/chain');
is(scalar(@reqs), 24, '24 requests');
my %per_id;
$per_id{ $_->{id} }++ for @reqs;
is(scalar(grep { $per_id{$_} == 1 } keys %per_id), 24, 'each event sent once');
ok((grep { $_->{signature_ok} } @reqs) == 24, 'every request signed');

# each target's requests arrived in version order: the next was sent only
# after the answer to the one before
my %versions;
push @{ $versions{ $_->{body}{target} } }, $_->{body}{version} for @reqs;
is(join(' ', map { join(',', @{ $versions{$_} }) } sort keys %versions),
	join(' ', ('1,2,3,4,5,6') x 4), 'each target\'s events arrived in version order');

is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE status = 'delivered' AND attempts = 1 AND http_status = 200
	                          AND next_attempt_at IS NULL AND error IS NULL) || '/' || count(*)
	  FROM headlessly.deliveries WHERE subscription = 'chain'}),
	'32/32', 'the batch\'s successes are recorded once each, in one statement');

# connections: at most one per target in flight, kept for the next round
my %peers1 = map { $_->{peer} => 1 } @reqs;
ok(keys(%peers1) <= 4, 'at most 4 connections for 4 chains (' . scalar(keys %peers1) . ')');
my @reqs2 = grep { $_->{body}{version} > 6 } $recv->requests_to('ok/chain');
is(scalar(@reqs2), 8, '8 new requests');
is(scalar(grep { !$peers1{ $_->{peer} } } @reqs2), 0,
	'the next round reuses the connections of the one before');

# a failure stops its target's chain: the receiver answers 500 to the first
# attempt of each event
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append(CASE WHEN n = 1 THEN 'Part.Created' ELSE 'Part.Updated' END, 'part_1',
	                                jsonb_build_object('n', n))
	  FROM generate_series(1, 3) n});
is($node->safe_psql('postgres', 'SELECT headlessly.deliver()'), '1',
	'a round attempts only the first event of the failing target');
is(scalar($recv->requests_to('fail/1/stop')), 1, 'one request: the ones behind it were not sent');
is($node->safe_psql('postgres', q{
	SELECT string_agg(status || ':' || attempts || ':' || (last_attempt_at IS NULL) || ':' || (next_attempt_at IS NULL),
	                  ',' ORDER BY seq)
	  FROM headlessly.deliveries WHERE subscription = 'stop'}),
	'failed:1:false:false,pending:0:true:true,pending:0:true:true',
	'the rows not sent are given back as they were, no attempt counted');

for (1 .. 20)
{
	last if $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE status = 'delivered') FROM headlessly.deliveries WHERE subscription = 'stop'}) eq '3';
	select(undef, undef, undef, 0.05);
	$node->safe_psql('postgres', 'SELECT headlessly.deliver()');
}
is(join(',', map { "$_->{body}{version}:$_->{answer}" } $recv->requests_to('fail/1/stop')),
	'1:500,1:200,2:500,2:200,3:500,3:200',
	'each event goes after the one before it succeeded, failures included');
is($node->safe_psql('postgres', q{
	SELECT string_agg(status || ':' || attempts, ',' ORDER BY seq) FROM headlessly.deliveries WHERE subscription = 'stop'}),
	'delivered:2,delivered:2,delivered:2', 'two attempts each, counted once each');

# --- a chain's rows are given back only while their sender holds them ---
# The worker sends the first event of a chain to a receiver slower than its
# timeout; meanwhile the other rows of the chain are marked as another live
# sender's (as if they had been taken over).  The failure of the first
# must give back only what the worker still holds: none of them.
my $fenced = PostgreSQL::Test::Cluster->new('chain_fence');
$fenced->init;
$fenced->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 100ms
headlessly.retry_base_delay = 1h
headlessly.retry_max_delay = 1h
headlessly.http_timeout = 4s
});
$fenced->start;
my $slow_url = $recv->url('sleep/8/fence');
$fenced->safe_psql('postgres', qq{
	CREATE EXTENSION headlessly_events;
	SELECT name FROM headlessly.subscribe('fence', 'Fence.*', url => '$slow_url', secret => '$secret');
	SELECT headlessly.events_append(CASE WHEN n = 1 THEN 'Fence.Created' ELSE 'Fence.Updated' END, 'fence_1',
	                                jsonb_build_object('n', n))
	  FROM generate_series(1, 3) n});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/sleep/8/fence') == 0 } @_) == 1 }, 20)
	or die 'the worker did not send the first event of the chain';
my $other = $fenced->background_psql('postgres');
my $other_pid = $other->query_safe('SELECT pg_backend_pid()');
# status:attempts:whether held by $other, in seq order
sub fence_rows
{
	return $fenced->safe_psql('postgres', qq{
		SELECT string_agg(status || ':' || attempts || ':' || coalesce((sender_pid = $other_pid)::text, 'none'), ','
		                  ORDER BY seq)
		  FROM headlessly.deliveries WHERE subscription = 'fence'});
}
is($fenced->safe_psql('postgres', qq{
	WITH taken AS (
		UPDATE headlessly.deliveries SET sender_pid = $other_pid, last_attempt_at = clock_timestamp()
		 WHERE subscription = 'fence' AND status = 'pending' AND sender_pid IS NOT NULL
		   AND seq > (SELECT min(seq) FROM headlessly.deliveries WHERE subscription = 'fence')
		RETURNING 1)
	SELECT count(*) FROM taken}), '2', 'the chain\'s other two rows, claimed with the first, taken over');
ok($fenced->poll_query_until('postgres', q{
	SELECT status = 'failed' FROM headlessly.deliveries WHERE subscription = 'fence' ORDER BY seq LIMIT 1}),
	'the first event fails (the receiver is slower than http_timeout)');
is(fence_rows(),
	'failed:1:none,pending:0:true,pending:0:true',
	'the rows the worker no longer holds are left to their sender, not given back');
is(scalar($recv->requests_to('sleep/8/fence')), 1, 'and not sent');

# The first row due again (as after a redeliver()) before rows a live
# sender holds: a chain stops before them, so the head goes alone.
$fenced->safe_psql('postgres', q{
	UPDATE headlessly.deliveries SET next_attempt_at = clock_timestamp()
	 WHERE subscription = 'fence' AND status = 'failed'});
$recv->wait_for(sub { scalar(grep { index($_->{path}, '/sleep/8/fence') == 0 } @_) == 2 }, 20)
	or die 'the worker did not send the first event again';
is(fence_rows(),
	'pending:2:false,pending:0:true,pending:0:true',
	'a chain stops before the rows another live sender holds: its head is claimed alone');
$other->quit;
$fenced->stop;

done_testing();
