# Every upgrade path ends where a fresh install starts: the extension's
# objects, definitions, rights, comments and dump configuration reached
# through the chain of upgrade scripts are those of the current install
# script, and data appended before the upgrade is still there and readable.
use strict;
use warnings;
use File::Basename;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $describe = do {
	local $/;
	my $file = dirname(__FILE__) . '/../sql/extension_objects.sql';
	open my $fh, '<', $file or die "cannot read $file: $!";
	<$fh>;
};

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'headlessly_events'});
my @versions = split /\n/, $node->safe_psql('postgres', q{
	SELECT version FROM pg_available_extension_versions
	 WHERE name = 'headlessly_events' ORDER BY string_to_array(version, '.')::int[]});
ok(scalar(@versions) >= 2, "versions available: @versions");

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION headlessly_events');
my $expected = $node->safe_psql('fresh', $describe);
ok(length($expected) > 1000, 'the fresh install has objects to compare');

foreach my $from (@versions)
{
	next if $from eq $current;
	my $db = "from_$from";
	$db =~ s/\./_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION headlessly_events VERSION '$from'");
	$node->safe_psql($db, q{
		SELECT headlessly.events_append('Contact.Created', 'contact_1', '{"name": "Alice"}');
		SELECT headlessly.events_append('Contact.Updated', 'contact_1', '{"stage": "lead"}');
		SELECT headlessly.events_append('page_view', external_event_id => 'k1', source => 'web');
	});
	my $events_before = $node->safe_psql($db,
		q{SELECT string_agg((to_jsonb(e) - 'xact_id' - 'hash')::text, E'\n' ORDER BY seq) FROM headlessly.events e});

	# a session that appended before the update (rolled back: the counts
	# below stay), and so read the catalog as it was, goes on after it
	my $old_session = $node->background_psql($db);
	$old_session->query_safe(q{BEGIN; SELECT headlessly.events_append('page_view', source => 'old_session'); ROLLBACK});

	$node->safe_psql($db, 'ALTER EXTENSION headlessly_events UPDATE');
	is($node->safe_psql($db,
			q{SELECT extversion FROM pg_extension WHERE extname = 'headlessly_events'}),
		$current, "$from updates to $current");

	my $got = $node->safe_psql($db, $describe);
	if ($got ne $expected)
	{
		# name the lines that differ, not two walls of text
		my %want = map { $_ => 1 } split /\n/, $expected;
		my %have = map { $_ => 1 } split /\n/, $got;
		diag("only after the upgrade: $_") for grep { !$want{$_} } sort keys %have;
		diag("only in a fresh install: $_") for grep { !$have{$_} } sort keys %want;
	}
	ok($got eq $expected, "objects after updating from $from equal a fresh install");

	is($node->safe_psql($db,
			q{SELECT string_agg((to_jsonb(e) - 'xact_id' - 'hash')::text, E'\n' ORDER BY seq) FROM headlessly.events e
			   WHERE seq <= 3}),
		$events_before, "events appended under $from are unchanged");
	is($node->safe_psql($db, q{SELECT count(*) FROM headlessly.events WHERE xact_id <> '0'}), '0',
		"events appended under $from sort before every later transaction");
	is($node->safe_psql($db, q{SELECT string_agg(tenant || ':' || ok || ':' || checked, ',') FROM headlessly.verify()}),
		'default:true:3', "events appended under $from got their hashes: verify is OK");
	$node->safe_psql($db, q{
		SELECT headlessly.events_append('Contact.Qualified', 'contact_1', '{"stage": "sql"}');
		SELECT headlessly.events_append('page_view', external_event_id => 'k1', source => 'web');
	});
	is($node->safe_psql($db, q{
			SELECT version || ' ' || (SELECT count(*) FROM headlessly.events)::text || ' ' ||
			       headlessly.as_of('contact_1')::text
			  FROM headlessly.entities WHERE target = 'contact_1'}),
		'3 4 {"name": "Alice", "stage": "sql"}',
		"appends, idempotency and state keep working after updating from $from");
	# rows stored before xact_id existed have its value only in the catalog
	is($node->safe_psql($db, q{SELECT string_agg(l::text, E'\n') FROM headlessly.events_list(target => 'contact_1') l}),
		$node->safe_psql($db, q{SELECT string_agg(e::text, E'\n' ORDER BY seq) FROM headlessly.events e
								 WHERE target = 'contact_1'}),
		"events_list reads a stream begun under $from as SQL does, xact_id '0' included");

	# the session from before the update sees the tables the update added:
	# a subscription made now notifies its appends
	$node->safe_psql($db, q{SELECT headlessly.subscribe('after_update', 'Upgrade.*', notify => true)});
	$old_session->query_safe('LISTEN after_update');
	my $heard = $old_session->query_safe(q{SELECT headlessly.events_append('Upgrade.Created', 'up_1')});
	$heard .= $old_session->query_safe('SELECT 1');
	like($heard, qr/Asynchronous notification "after_update" with payload ".*Upgrade\.Created/,
		"after updating from $from, a session opened before the update sends NOTIFY for a new subscription");
	$old_session->quit;
	$node->safe_psql($db, q{SELECT headlessly.unsubscribe('after_update')});

	# seq: drawn by the log now, from where the identity column left off
	is($node->safe_psql($db, q{
			SELECT e.seq = m.seq + 1 FROM (SELECT max(seq) AS seq FROM headlessly.events) m,
			       headlessly.events_append('page_view') e}),
		't', "after updating from $from, seq goes on from the identity's position");
	my ($ret, $out, $err) = $node->psql($db,
		q{INSERT INTO headlessly.events (seq, type) OVERRIDING SYSTEM VALUE VALUES (1000, 'forged')});
	like($err, qr/seq is assigned by the log/, "after updating from $from, a chosen seq is refused");

	# the updated database dumps and restores like a fresh one
	my $dump = "${PostgreSQL::Test::Utils::tmp_check}/$db.dump";
	command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr($db) ], "pg_dump after updating from $from");
	$node->safe_psql('postgres', "CREATE DATABASE ${db}_restored");
	command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr("${db}_restored"), $dump ],
		"pg_restore after updating from $from");
	# xact_id is the restoring transaction's (test 002 checks it)
	my $all = q{SELECT string_agg((to_jsonb(e) - 'xact_id')::text, E'\n' ORDER BY seq) FROM headlessly.events e};
	is($node->safe_psql("${db}_restored", $all), $node->safe_psql($db, $all),
		"events appended under $from and after come back unchanged");
	is($node->safe_psql("${db}_restored", 'SELECT count(*) FROM headlessly.check_state()'), '0',
		'and the restore rebuilt the stream heads');
}

$node->stop;
done_testing();
