# pg_dump and restore give back every event unchanged, the derived tables
# with them, and a log that goes on appending after the restored events.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', 'CREATE EXTENSION headlessly_events');
$node->safe_psql('source', q{
	SELECT headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice"}', actor => 'a1');
	SELECT headlessly.events_append('Contact.Updated', 'c1', '{"name": "Bob", "x": null}');
	SELECT headlessly.events_append('page_view', 'c1', metadata => '{"sessionId": "s1"}');
	SELECT headlessly.events_append('charge.succeeded', source => 'stripe', external_event_id => 'evt_1',
	                                raw_payload => '{"id":  "evt_1"}', occurred_at => '2020-01-01');
	SELECT headlessly.events_append('Deal.Created', 'd1', '{"amount": 1}', tenant => 'acme');
	SELECT headlessly.events_append('Deal.Deleted', 'd1', tenant => 'acme');
	CREATE TABLE lead_events (id serial, kind text);
	SELECT headlessly.make_append_only('lead_events');
	INSERT INTO lead_events (kind) VALUES ('created');
	CREATE FUNCTION tag(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"tagged": true}'::jsonb $$;
	SELECT headlessly.hook('Contact.*', 'before', 'tag(jsonb)');
	CREATE TABLE contacts (id int PRIMARY KEY, name text);
	SELECT headlessly.capture('contacts');
	INSERT INTO contacts VALUES (1, 'Ann');
});
# a later transaction, so restored recorded_at values differ from "now"
$node->safe_psql('source', q{SELECT headlessly.events_append('Contact.Qualified', 'c1', '{"stage": "sql"}')});

my $snapshot = q{SELECT string_agg(e::text, E'\n' ORDER BY seq) FROM headlessly.events e};
my $heads = q{SELECT string_agg(s::text, E'\n' ORDER BY tenant, target) FROM headlessly.streams s};
my $before_events = $node->safe_psql('source', $snapshot);
my $before_heads = $node->safe_psql('source', $heads);

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/source.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('source') ], 'pg_dump');

$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is($node->safe_psql('restored', $snapshot), $before_events, 'every event comes back unchanged');
is($node->safe_psql('restored', $heads), $before_heads, 'stream heads and entity state come back');
is($node->safe_psql('restored', 'SELECT count(*) FROM headlessly.event_keys'), '1', 'idempotency claims come back');

# the restored log keeps its rules
is($node->safe_psql('restored', q{
	SELECT seq > (SELECT max(seq) FROM headlessly.events WHERE seq < 1000000) - 1 AND version = 5
	  FROM headlessly.events_append('Contact.Updated', 'c1', '{"name": "Carol"}')}),
	't', 'appends continue the sequence and the stream');
is($node->safe_psql('restored', q{
	SELECT data->>'name' FROM headlessly.events_append('charge.succeeded', source => 'stripe',
	       external_event_id => 'evt_1', data => '{"name": "dup"}')}),
	'', 'a restored idempotency key still deduplicates');
my ($ret, $stdout, $stderr) = $node->psql('restored', 'DELETE FROM headlessly.events');
like($stderr, qr/append-only/, 'the restored log is still append-only');
($ret, $stdout, $stderr) = $node->psql('restored', 'DELETE FROM lead_events');
like($stderr, qr/append-only/, 'a restored make_append_only table is still guarded');
is($node->safe_psql('restored', 'SELECT count(*) FROM lead_events'), '1', 'its rows come back');
is($node->safe_psql('restored', q{SELECT data->>'tagged' FROM headlessly.events_append('Contact.Updated', 'c1', '{"n": 1}')}),
	'true', 'hooks come back and run');
$node->safe_psql('restored', q{UPDATE contacts SET name = 'Bea' WHERE id = 1});
is($node->safe_psql('restored', q{SELECT state->>'name' FROM headlessly.entities WHERE target = 'contact_1'}),
	'Bea', 'table capture goes on after restore');

$node->stop;
done_testing();
