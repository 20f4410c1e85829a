# The webhook sender (src/delivery/webhook.c) against the loopback receiver
# (test/tools/webhook_receiver.py), through headlessly.webhook_send(): the
# Standard Webhooks headers and signature (checked by the receiver's own
# HMAC), custom headers, the three body formats, failures, Retry-After, 410,
# many requests in flight, and what is refused before anything is sent.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WebhookReceiver;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = WebhookReceiver->new(secret => $secret);

my $node = PostgreSQL::Test::Cluster->new('webhook_send');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE ROLE app LOGIN;
	GRANT USAGE ON SCHEMA headlessly TO app});

sub send_sql
{
	my ($path, $events, $extra) = @_;
	$extra //= '';
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(http_status::text, '-') || '|' || coalesce(error, '') || '|'
		       || coalesce(retry_after::text, '-')
		  FROM headlessly.webhook_send('${\ $recv->url($path)}', '$events' $extra)});
}

# --- one signed event, with a custom header ---
my $event = '[{"id": "evt_sig1", "type": "Contact.Created", "target": "contact_1", "data": {"name": "Ann"}}]';
is(send_sql('ok/sig', $event, ", '$secret', '{\"Authorization\": \"Bearer t0k\", \"X-Empty\": \"\"}'"),
	'200||-', 'a 2xx answer: status, no error');
my ($r) = $recv->requests_to('ok/sig');
ok($r->{signature_ok}, 'the receiver verifies the signature with its own HMAC');
is($r->{headers}{'webhook-id'}, 'evt_sig1', 'webhook-id is the event id');
like($r->{headers}{'webhook-timestamp'}, qr/^\d{10}$/, 'webhook-timestamp is Unix seconds');
ok(abs($r->{headers}{'webhook-timestamp'} - time()) < 60, 'webhook-timestamp is now');
like($r->{headers}{'webhook-signature'}, qr/^v1,[A-Za-z0-9+\/]{43}=$/, 'webhook-signature is v1,<base64 of 32 bytes>');
is($r->{headers}{'content-type'}, 'application/json', 'Content-Type: application/json');
is($r->{headers}{authorization}, 'Bearer t0k', 'custom headers are sent');
ok(exists $r->{headers}{'x-empty'} && $r->{headers}{'x-empty'} eq '', 'a custom header may be empty');
is_deeply($r->{body}, { id => 'evt_sig1', type => 'Contact.Created', target => 'contact_1', data => { name => 'Ann' } },
	"format 'event': the event as JSON");

# --- unsigned without a secret ---
send_sql('ok/nosig', '[{"id": "evt_nosig"}]');
($r) = $recv->requests_to('ok/nosig');
ok(!exists $r->{headers}{'webhook-signature'}, 'no secret: no signature header');

# --- failures are answers, not errors ---
is(send_sql('fail/1/f', '[{"id": "evt_f1"}, {"id": "evt_f2"}]'),
	"500|HTTP 500: answered 500|-\n500|HTTP 500: answered 500|-",
	'a 5xx answer: its status and the start of its body');
is(send_sql('fail/1/f', '[{"id": "evt_f1"}]'), '200||-', 'the receiver fails each id once');
is(send_sql('retry-after/7/1/r', '[{"id": "evt_ra"}]'), '429|HTTP 429: answered 429|7',
	'429: Retry-After seconds are returned');
is(send_sql('gone/g', '[{"id": "evt_gone"}]'), '410|HTTP 410: answered 410|-', '410 Gone');
like($node->safe_psql('postgres', q{
	SELECT coalesce(http_status::text, '-') || '|' || error
	  FROM headlessly.webhook_send('http://127.0.0.1:1/x', '[{"id": "evt_conn"}]')}),
	# libcurl's text for CURLE_COULDNT_CONNECT: "Couldn't ..." in bookworm's
	# 7.88, "Could not ..." in trixie's 8.14
	qr/^-\|Could(?:n't| not) connect to server/, 'a refused connection: no status, the reason');

# --- headlessly.http_timeout bounds a request ---
my $timed = $node->safe_psql('postgres', qq{
	SET headlessly.http_timeout = '300ms';
	SELECT coalesce(http_status::text, '-') || '|' || error || '|' || (duration_ms < 1500)
	  FROM headlessly.webhook_send('${\ $recv->url('sleep/3/t')}', '[{"id": "evt_timeout"}]')});
like($timed, qr/^-\|timed out.*\|true$/, 'a receiver slower than headlessly.http_timeout: timed out, no status, promptly');

# --- query cancel is never swallowed by the wait ---
my ($ret, $out, $err) = $node->psql('postgres', qq{
	SET statement_timeout = '300ms';
	SELECT * FROM headlessly.webhook_send('${\ $recv->url('sleep/5/c')}', '[{"id": "evt_cancel"}]')});
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels a request in flight (57014)');

# --- bodies for analytics services ---
my $pv = '[{"id": "evt_ph", "type": "page_view", "actor": "user_9", "tenant": "acme",'
  . ' "occurred_at": "2026-01-15T10:00:00+00:00", "data": {"plan": "pro"},'
  . ' "metadata": {"url": "https://example.com/a", "anonymousId": "anon_1", "ip": "192.0.2.1"}}]';
send_sql('ok/posthog', $pv, q{, NULL, '{"api_key": "phc_test"}', 'posthog'});
($r) = $recv->requests_to('ok/posthog');
is_deeply($r->{body}, {
		api_key => 'phc_test', event => 'page_view', distinct_id => 'anon_1',
		timestamp => '2026-01-15T10:00:00+00:00',
		properties => { plan => 'pro', '$insert_id' => 'evt_ph', '$current_url' => 'https://example.com/a',
			'$ip' => '192.0.2.1', tenant => 'acme' } },
	"format 'posthog': PostHog's capture body");

my $deal = '[{"id": "evt_ga", "type": "Deal.Closed", "target": "deal_1", "actor": "user_9",'
  . ' "occurred_at": "2026-01-15T10:00:00+00:00",'
  . ' "data": {"value": 12.5, "won": true, "items": [{"item_id": "sku_1"}], "google_x": 1,'
  . ' "note": "' . ('x' x 150) . '", "extra": {"a": 1}},'
  . ' "metadata": {"url": "https://example.com/d", "clientId": "555.777"}}]';
send_sql('ok/ga4', $deal, q{, NULL, '{}', 'ga4'});
($r) = $recv->requests_to('ok/ga4');
is_deeply($r->{body}, {
		client_id => '555.777', timestamp_micros => 1768471200000000,
		events => [ { name => 'deal_closed', params => {
			event_id => 'evt_ga', page_location => 'https://example.com/d', value => 12.5,
			won => 'true', items => [ { item_id => 'sku_1' } ], note => 'x' x 100,
			extra => '{"a": 1}' } } ] },
	"format 'ga4': Measurement Protocol body, names snake_case, values short, google_* left out");

# --- many in flight ---
$node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.webhook_send('} . $recv->url('ok/many') . q{',
		(SELECT jsonb_agg(jsonb_build_object('id', 'evt_m' || i, 'type', 'page_view')) FROM generate_series(1, 200) i),
		'} . $secret . q{')});
my @many = $recv->requests_to('ok/many');
is(scalar @many, 200, '200 events: 200 requests');
is(scalar(grep { $_->{signature_ok} } @many), 200, 'all signed correctly');
my %peers = map { $_->{peer} => 1 } @many;
cmp_ok(scalar keys %peers, '>', 1, 'over more than one connection at once');
cmp_ok(scalar keys %peers, '<=', 64, 'no more connections than headlessly.webhook_max_in_flight');

# --- refused before anything is sent ---
my $before = scalar $recv->requests;
sub refused
{
	my ($sql, $sqlstate, $name) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/ERROR:\s+$sqlstate/, $name);
}
refused(q{SELECT * FROM headlessly.webhook_send('file:///etc/passwd', '[{"id": "evt_x"}]')},
	'22023', 'file:// URL refused');
refused(q{SELECT * FROM headlessly.webhook_send('gopher://127.0.0.1/', '[{"id": "evt_x"}]')},
	'22023', 'gopher:// URL refused');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '[{"id": "evt_x"}]', NULL, '{"X-A": "b\\r\\nX-Injected: 1"}')},
	'22023', 'CR/LF in a header value refused');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '[{"id": "evt_x"}]', NULL, '{"Bad Name": "v"}')},
	'22023', 'a header name that is no HTTP token refused');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '[{"id": "evt_x"}]', NULL, '{"webhook-signature": "v1,forged"}')},
	'22023', 'the signature header cannot be supplied');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '[{"id": "evt_x"}]', 'whsec_!!!')},
	'22023', 'a secret that is not base64 refused');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '[{"id": "evt_x"}]', NULL, '{}', 'csv')},
	'22023', 'an unknown format refused');
refused(qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/h')}', '{"id": "evt_x"}')},
	'22023', 'events not an array refused');
is(scalar $recv->requests, $before, 'nothing refused reached the receiver');

# --- internal: PUBLIC may not make the server open connections ---
($ret, $out, $err) = $node->psql('postgres',
	qq{SELECT * FROM headlessly.webhook_send('${\ $recv->url('ok/app')}', '[{"id": "evt_app"}]')},
	extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied for function webhook_send/, 'webhook_send is not for PUBLIC');
is(scalar $recv->requests_to('ok/app'), 0, 'and sent nothing');

$node->stop;
$recv->stop;
done_testing();
