# pg_dump and restore give back every event unchanged, byte for byte, in
# every format and way of restoring: the log's rows replay through its
# trigger, which validates each one and rebuilds the stream heads and
# snapshots (they are not dumped), runs no hooks, and leaves a log that goes
# on appending after the restored events.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "headlessly.snapshot_interval = 2\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', 'CREATE EXTENSION headlessly_events');
$node->safe_psql('source', q{
	SELECT headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice"}', actor => 'a1');
	SELECT headlessly.events_append('Contact.Updated', 'c1', '{"name": "Bob", "x": null}');
	SELECT headlessly.events_append('page_view', 'c1', metadata => '{"sessionId": "s1"}');
	SELECT headlessly.events_append('charge.succeeded', source => 'stripe', external_event_id => 'evt_1',
	                                raw_payload => '{"id":  "evt_1"}', occurred_at => '2020-01-01');
	SELECT headlessly.events_append('Deal.Created', 'd1', '{"amount": 1.50}', tenant => 'acme');
	SELECT headlessly.events_append('Deal.Deleted', 'd1', tenant => 'acme');
	CREATE TABLE lead_events (id serial, kind text);
	SELECT headlessly.make_append_only('lead_events');
	INSERT INTO lead_events (kind) VALUES ('created');
	CREATE FUNCTION tag(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"tagged": true}'::jsonb $$;
	SELECT headlessly.hook('Contact.*', 'before', 'tag(jsonb)');
	CREATE TABLE after_log (event_id text);
	CREATE FUNCTION log_after(event jsonb) RETURNS jsonb LANGUAGE sql AS
	    $$ INSERT INTO after_log VALUES (event->>'id') RETURNING NULL::jsonb $$;
	SELECT headlessly.hook('*', 'after', 'log_after(jsonb)');
	CREATE TABLE contacts (id int PRIMARY KEY, name text);
	SELECT headlessly.capture('contacts');
	INSERT INTO contacts VALUES (1, 'Ann');
});
# a later transaction, so restored recorded_at values differ from "now"
$node->safe_psql('source', q{SELECT headlessly.events_append('Contact.Qualified', 'c1', '{"stage": "sql"}')});

# Holes: rolled-back appends leave dead rows, VACUUM frees their space, and
# later appends fill it, so the heap no longer holds the log in seq order.
$node->safe_psql('source', q{
	BEGIN;
	SELECT headlessly.events_append('filler', data => jsonb_build_object('pad', repeat('x', 500)))
	  FROM generate_series(1, 300);
	ROLLBACK;
	SELECT headlessly.events_append('Contact.Updated', 'c1', jsonb_build_object('n', i)) FROM generate_series(1, 3) i;
	VACUUM headlessly.events;
	SELECT headlessly.events_append('Contact.Updated', 'c1', jsonb_build_object('n', i)) FROM generate_series(4, 9) i;
});
is($node->safe_psql('source', q{
	SELECT count(*) > 0 FROM (
	  SELECT seq < lag(seq) OVER (ORDER BY ctid) AS out_of_order FROM headlessly.events) s
	 WHERE out_of_order}),
	't', 'the heap holds the log out of seq order');

# A log written before seq was drawn under the stream lock can have two
# appends' seq the wrong way round; the owner restores such a stream here.
my $at = $node->safe_psql('source', 'SELECT now()');
$node->safe_psql('source', qq{
	INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data)
	VALUES (1000005, 'evt_legacy_1', 'Ticket.Created', 'tk1', 1, '$at', '$at', '{"s": 1}');
	INSERT INTO headlessly.events (seq, id, type, target, version, occurred_at, recorded_at, data, before)
	VALUES (1000001, 'evt_legacy_2', 'Ticket.Updated', 'tk1', 2, '$at', '$at', '{"s": 2}', '{"s": 1}');
});

my %query = (
	# every column but xact_id, which is the restoring transaction's (checked
	# below; a head's is its last event's, which check_state() compares)
	events => q{SELECT string_agg((to_jsonb(e) - 'xact_id')::text, E'\n' ORDER BY seq) FROM headlessly.events e},
	heads => q{SELECT string_agg((to_jsonb(s) - 'xact_id')::text, E'\n' ORDER BY tenant, target) FROM headlessly.streams s},
	snapshots => q{SELECT string_agg(s::text, E'\n' ORDER BY tenant, target, version) FROM headlessly.snapshots s},
	after_log => q{SELECT count(*) FROM after_log},
	hook_failures => q{SELECT count(*) FROM headlessly.hook_failures},
	sequence => q{SELECT last_value FROM headlessly.events_seq_seq},
);
my %source = map { $_ => $node->safe_psql('source', $query{$_}) } keys %query;
cmp_ok($node->safe_psql('source', 'SELECT count(*) FROM headlessly.snapshots'), '>', 3,
	'the source has snapshots');

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $source_plain = "$dir/source.sql";
# a fixed \restrict key, so that two plain dumps of the same data are the same bytes
my @plain = ('pg_dump', '--restrict-key=headlessly');
command_ok([ @plain, '-f', $source_plain, '-d', $node->connstr('source') ], 'plain pg_dump of the source');

sub slurp
{
	my ($file) = @_;
	open my $fh, '<', $file or die "cannot read $file: $!";
	local $/;
	return <$fh>;
}

# A plain dump with the log's xact_id (its last column) left out: a restored
# event records the restoring transaction, not the one that first appended it.
sub dump_without_xact_ids
{
	my ($text) = @_;
	my $in_log = 0;
	my @lines;
	for my $line (split /\n/, $text)
	{
		$in_log = 1 if $line =~ /^COPY headlessly\.events \(.*, xact_id, hash\) FROM stdin;$/;
		$in_log = 0 if $line eq '\\.';
		$line =~ s/\t\d+(\t[^\t]*)$/\t(xact_id)$1/ if $in_log;
		push @lines, $line;
	}
	return join "\n", @lines;
}

# The restored database against the source, and a dump of it against the source's.
sub check_restored
{
	my ($db, $how) = @_;
	foreach my $what (sort keys %query)
	{
		is($node->safe_psql($db, $query{$what}), $source{$what}, "$how: $what as in the source");
	}
	is($node->safe_psql($db, 'SELECT count(*) FROM headlessly.check_state()'), '0', "$how: no drift");
	my $again = "$dir/$db.sql";
	command_ok([ @plain, '-f', $again, '-d', $node->connstr($db) ], "$how: pg_dump again");
	ok(dump_without_xact_ids(slurp($again)) eq dump_without_xact_ids(slurp($source_plain)),
		"$how: dumps again byte for byte as the source, xact_id aside");
	is($node->safe_psql($db, q{
			SELECT count(DISTINCT xact_id) = 1 AND max(xact_id) < pg_current_xact_id()
			  FROM headlessly.events}),
		't', "$how: restored events record the restoring transaction");
}

# custom format, pg_restore; the hook registry is loaded before the log, so
# the after-hook trigger is there while the events come back
my $dump = "$dir/source.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('source') ], 'pg_dump -Fc');
my ($list) = run_command([ 'pg_restore', '-l', $dump ]);
my @toc = grep { !/TABLE DATA headlessly hook_registry / } split /\n/, $list;
my ($registry) = grep { /TABLE DATA headlessly hook_registry / } split /\n/, $list;
my ($log_at) = grep { $toc[$_] =~ /TABLE DATA headlessly events / } 0 .. $#toc;
ok(defined $registry && defined $log_at, 'the dump has the hook registry and the log');
splice @toc, $log_at, 0, $registry;
my $listfile = "$dir/toc.list";
open my $lf, '>', $listfile or die $!;
print $lf join("\n", @toc), "\n";
close $lf;
$node->safe_psql('postgres', 'CREATE DATABASE restored_c');
command_ok([ 'pg_restore', '--exit-on-error', '-L', $listfile, '-d', $node->connstr('restored_c'), $dump ],
	'pg_restore, hook registry first');
check_restored('restored_c', 'pg_restore');

# plain format, psql
$node->safe_psql('postgres', 'CREATE DATABASE restored_p');
command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $source_plain, '-d', $node->connstr('restored_p') ],
	'psql -f of a plain dump');
check_restored('restored_p', 'psql');

# data only, --disable-triggers: the guard refuses DISABLE TRIGGER ALL on the
# log, and the data loads through the trigger all the same
$node->safe_psql('postgres', 'CREATE DATABASE restored_d');
command_ok([ 'pg_restore', '--schema-only', '--exit-on-error', '-d', $node->connstr('restored_d'), $dump ],
	'pg_restore --schema-only');
my ($stdout, $stderr);
IPC::Run::run([ 'pg_restore', '--data-only', '--disable-triggers', '-d', $node->connstr('restored_d'), $dump ],
	'>', \$stdout, '2>', \$stderr);
like($stderr, qr/cannot change how all triggers fire on append-only table "headlessly.events"/,
	'--disable-triggers: the log refuses to have its triggers disabled');
check_restored('restored_d', '--disable-triggers');

# the restored log keeps its rules and goes on where the source is
my $next = q{SELECT seq || ' ' || version FROM headlessly.events_append('Contact.Updated', 'c1', '{"name": "Carol"}')};
my $source_next = $node->safe_psql('source', $next);
is($node->safe_psql('restored_c', $next), $source_next,
	"appends continue with the source's next seq and version ($source_next)");
is($node->safe_psql('restored_c', q{
	SELECT data->>'name' FROM headlessly.events_append('charge.succeeded', source => 'stripe',
	       external_event_id => 'evt_1', data => '{"name": "dup"}')}),
	'', 'a restored idempotency key still deduplicates');
is($node->safe_psql('restored_c', q{SELECT version FROM headlessly.events_append('Ticket.Closed', 'tk1')}),
	'3', 'a stream restored with its seq the wrong way round goes on');
my ($ret, $out, $err) = $node->psql('restored_c', 'DELETE FROM headlessly.events');
like($err, qr/append-only/, 'the restored log is still append-only');
($ret, $out, $err) = $node->psql('restored_c', 'DELETE FROM lead_events');
like($err, qr/append-only/, 'a restored make_append_only table is still guarded');
is($node->safe_psql('restored_c', 'SELECT count(*) FROM lead_events'), '1', 'its rows come back');
is($node->safe_psql('restored_c', q{SELECT data->>'tagged' FROM headlessly.events_append('Contact.Updated', 'c1', '{"n": 1}')}),
	'true', 'before hooks come back and run for new appends');
is($node->safe_psql('restored_c', 'SELECT count(*) FROM after_log'), $source{after_log} + 3,
	'after hooks too');
$node->safe_psql('restored_c', q{UPDATE contacts SET name = 'Bea' WHERE id = 1});
is($node->safe_psql('restored_c', q{SELECT state->>'name' FROM headlessly.entities WHERE noun = 'Contact' AND state->>'id' = '1'}),
	'Bea', 'table capture goes on after restore');

$node->stop;
done_testing();
