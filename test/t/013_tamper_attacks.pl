# Tamper evidence against a superuser who bypassed every guard: the guarding
# triggers are switched off in the catalog (which no DDL guard sees), the
# log is changed with plain UPDATE, DELETE and INSERT, a dump is edited and
# restored, the extension is dropped and created again.  Each time
# headlessly.verify() names the first bad event and what is wrong; an
# untouched dump and restore verifies OK, and the outside verifier
# (test/tools/hl_verify.py) agrees on a real export and checks a proof().
use strict;
use warnings;
use File::Basename;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use HlExport;

my $tools = dirname(__FILE__) . '/../tools';
my $hl_verify = "$tools/hl_verify.py";

my $node = PostgreSQL::Test::Cluster->new('tamper');
$node->init;
$node->start;

# Every database gets the same history: seq 1..8 sealed by the first
# checkpoints, seq 9 appended after them.
my $history = q{
CREATE EXTENSION headlessly_events;
SELECT headlessly.events_append('Contact.Created', 'c1', '{"n": 1}', tenant => 'acme');
SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 2}', tenant => 'acme');
SELECT headlessly.events_append('page_view', data => '{"path": "/a"}', tenant => 'acme');
SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 3}', tenant => 'acme');
SELECT headlessly.events_append('Deal.Created', 'd1', '{"a": 1}', tenant => 'acme');
SELECT headlessly.events_append('Deal.Updated', 'd1', '{"a": 2}', tenant => 'acme');
SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 4}', tenant => 'acme');
SELECT headlessly.events_append('Contact.Created', 'x1', '{}', tenant => 'other');
SELECT headlessly.checkpoint();
SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 5}', tenant => 'acme');
};

my $n = 0;
sub fresh_db
{
	my $db = 'attack_' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, $history);
	return $db;
}

# The bypass: the log's guarding triggers disabled in pg_trigger directly.
sub tamper
{
	my ($db, $sql) = @_;
	$node->safe_psql($db, q{
		UPDATE pg_trigger SET tgenabled = 'D'
		 WHERE tgrelid = 'headlessly.events'::regclass
		   AND tgname IN ('headlessly_append_only', 'headlessly_append_only_row', 'events_append')});
	$node->safe_psql($db, $sql);
	$node->safe_psql($db, q{
		UPDATE pg_trigger SET tgenabled = 'A'
		 WHERE tgrelid = 'headlessly.events'::regclass
		   AND tgname IN ('headlessly_append_only', 'headlessly_append_only_row', 'events_append')});
}

sub verify_row
{
	my ($db, $tenant, $digest) = @_;
	$digest = defined $digest ? "'$digest'" : 'NULL';
	return $node->safe_psql($db, qq{
		SELECT format('%s|%s|%s|%s|%s|%s', ok, target, version, event_id, seq, problem)
		  FROM headlessly.verify('$tenant', $digest)});
}

sub event_id
{
	my ($db, $seq) = @_;
	return $node->safe_psql($db, "SELECT id FROM headlessly.events WHERE seq = $seq");
}

# the bypass really bypasses: the guard refuses the same change otherwise
{
	my $db = fresh_db();
	my ($ret, $out, $err) = $node->psql($db, q{UPDATE headlessly.events SET data = '{}'});
	like($err, qr/ZE001|not allowed/, 'the guard refuses an UPDATE of the log');
	is(verify_row($db, 'acme'), 't|||||', 'untouched: verify is OK');
	is(verify_row($db, 'other'), 't|||||', 'untouched: the other tenant is OK');
}

# 1. one event's data changed in the middle of a stream
{
	my $db = fresh_db();
	my $id = event_id($db, 2);
	tamper($db, q{UPDATE headlessly.events SET data = '{"n": 20}' WHERE seq = 2});
	is(verify_row($db, 'acme'), "f|c1|2|$id|2|altered", 'data changed mid-stream: altered, named');
	is(verify_row($db, 'other'), 't|||||', 'data changed: the other tenant stays OK');
}

# 1b. another covered column (actor) of a free event
{
	my $db = fresh_db();
	my $id = event_id($db, 3);
	tamper($db, q{UPDATE headlessly.events SET actor = 'mallory' WHERE seq = 3});
	is(verify_row($db, 'acme'), "f|||$id|3|altered", 'actor of a free event changed: altered, named');
}

# 2. a middle event removed: the next version names the gap
{
	my $db = fresh_db();
	my $id = event_id($db, 7);
	tamper($db, q{DELETE FROM headlessly.events WHERE seq = 4});
	is(verify_row($db, 'acme'), "f|c1|4|$id|7|removed", 'middle event removed: removed, at the next version');
}

# 3. the latest event of a stream removed after a checkpoint sealed it
{
	my $db = fresh_db();
	tamper($db, q{DELETE FROM headlessly.events WHERE seq = 6});
	is(verify_row($db, 'acme'), 'f|d1|2|||removed', 'latest event removed: the stream and version named');
}

# 3b. ... and the stream's head set back to match: the checkpoint tells
{
	my $db = fresh_db();
	tamper($db, q{DELETE FROM headlessly.events WHERE seq = 6;
	              UPDATE headlessly.streams SET version = 1 WHERE target = 'd1'});
	is(verify_row($db, 'acme'), 'f|||||removed', 'latest event removed, its head set back: its checkpoint tells');
}

# 3c. ... or the head removed with it: events that no head knows
{
	my $db = fresh_db();
	tamper($db, q{DELETE FROM headlessly.events WHERE seq = 6;
	              DELETE FROM headlessly.streams WHERE target = 'd1'});
	is(verify_row($db, 'acme'), 'f|d1|1|||inserted', 'latest event and its head removed: the stream without a head named');
}

# 4. a whole stream removed
{
	my $db = fresh_db();
	tamper($db, q{DELETE FROM headlessly.events WHERE target = 'd1'});
	is(verify_row($db, 'acme'), 'f|d1|1|||removed', 'whole stream removed: the stream named from version 1');
}

# 5. a forged, well-formed event (its hash computed as the README says)
#    inserted among sealed ones
sub forge
{
	my ($db, $event, $prev) = @_;
	my $file = $node->basedir . "/forged_$db.jsonl";
	open my $fh, '>', $file or die;
	print $fh $event;
	close $fh;
	my ($hash) = run_command([ 'python3', $hl_verify, 'canonical', $file ]);
	$hash = (split /\s+/, $hash)[-1];
	return $hash;
}
{
	my $db = fresh_db();
	my $at = $node->safe_psql($db, q{SELECT recorded_at FROM headlessly.events WHERE seq = 3});
	my $xact = $node->safe_psql($db, q{SELECT xact_id FROM headlessly.events WHERE seq = 3});
	my $ts = $node->safe_psql($db,
		q{SELECT (recorded_at AT TIME ZONE 'UTC')::text || '+00' FROM headlessly.events WHERE seq = 3});
	my $event = qq({"seq": 100, "id": "evt_forged", "tenant": "acme", "type": "page_view", "target": null, "version": null, "actor": null, "source": null, "source_type": null, "external_event_id": null, "occurred_at": "$ts", "recorded_at": "$ts", "data": "{\\"path\\": \\"/forged\\"}", "before": null, "metadata": null, "raw_payload": null}\n);
	my $hash = forge($db, $event);
	like($hash, qr/^[0-9a-f]{64}$/, 'the forger computes the hash outside');
	tamper($db, qq{
		INSERT INTO headlessly.events (seq, id, tenant, type, occurred_at, recorded_at, data, xact_id, hash)
		VALUES (100, 'evt_forged', 'acme', 'page_view', '$at', '$at', '{"path": "/forged"}', '$xact',
		        decode('$hash', 'hex'))});
	is($node->safe_psql($db, q{SELECT hash = decode(encode(hash, 'hex'), 'hex') FROM headlessly.events WHERE seq = 100}),
		't', 'the forged event is stored');
	is(verify_row($db, 'acme'), 'f|||evt_forged|100|inserted', 'forged event among sealed ones: inserted, named');
}

# 5b. a forged event at the end of a stream, chained properly
{
	my $db = fresh_db();
	tamper($db, q{
		INSERT INTO headlessly.events (seq, id, tenant, type, target, version, occurred_at, recorded_at, data, xact_id, hash)
		SELECT 101, 'evt_forged2', 'acme', 'Contact.Updated', 'c1', 6, recorded_at, recorded_at, '{"n": 6}', xact_id, hash
		  FROM headlessly.events WHERE seq = 9});
	is(verify_row($db, 'acme'), 'f|c1|6|evt_forged2|101|altered', 'forged stream event with a wrong hash: altered');
}

# 6. two events of a stream swapped
{
	my $db = fresh_db();
	my $id = event_id($db, 2);
	tamper($db, q{
		UPDATE headlessly.events SET version = -1 WHERE seq = 2;
		UPDATE headlessly.events SET version = 2 WHERE seq = 4;
		UPDATE headlessly.events SET version = 3 WHERE seq = 2});
	is(verify_row($db, 'acme'), "f|c1|3|$id|2|reordered", 'two events swapped: reordered');
}

# 6b. a stream whose seq order differs from its version order, as 0.1 could
# write one (it drew seq before locking the stream) and as its owner may
# restore one: chains follow version order, so it verifies, inside and
# outside, until one of its events is changed
{
	my $db = fresh_db();
	my $at = $node->safe_psql($db, 'SELECT now()');
	$node->safe_psql($db, qq{
		INSERT INTO headlessly.events (seq, id, tenant, type, target, version, occurred_at, recorded_at, data)
		VALUES (1005, 'evt_legacy_1', 'acme', 'Ticket.Created', 'tk1', 1, '$at', '$at', '{"s": 1}');
		INSERT INTO headlessly.events (seq, id, tenant, type, target, version, occurred_at, recorded_at, data, before)
		VALUES (1001, 'evt_legacy_2', 'acme', 'Ticket.Updated', 'tk1', 2, '$at', '$at', '{"s": 2}', '{"s": 1}');
		SELECT headlessly.checkpoint();
		SELECT headlessly.events_append('Ticket.Updated', 'tk1', '{"s": 3}', tenant => 'acme');
		SELECT headlessly.checkpoint();
	});
	is(verify_row($db, 'acme'), 't|||||', 'a stream out of seq order, untouched: verify OK');
	my $dir = $node->basedir;
	export_events($node, $db, "$dir/legacy.jsonl");
	export_checkpoints($node, $db, "$dir/legacy_checkpoints.jsonl");
	my ($out, $err) = run_command([ 'python3', $hl_verify, 'verify', "$dir/legacy.jsonl",
		'--checkpoints', "$dir/legacy_checkpoints.jsonl" ]);
	like($out, qr/^acme\tt\t11\t/m, 'hl_verify.py: the stream out of seq order verifies');

	tamper($db, q{UPDATE headlessly.events SET data = '{"s": 22}' WHERE seq = 1001});
	is(verify_row($db, 'acme'), 'f|tk1|2|evt_legacy_2|1001|altered',
		'its event that comes first in seq order changed: altered, named');
}

# 7. dump and restore, untouched and edited
{
	my $db = fresh_db();
	my $digest = $node->safe_psql($db, 'SELECT headlessly.digest()');
	my $dump = $node->basedir . '/tamper.sql';
	command_ok([ 'pg_dump', '--restrict-key=tamper', '-f', $dump, '-d', $node->connstr($db) ], 'pg_dump');

	$node->safe_psql('postgres', 'CREATE DATABASE restored_ok');
	command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $node->connstr('restored_ok') ],
		'untouched dump restored');
	is(verify_row('restored_ok', 'acme', $digest), 't|||||', 'untouched dump/restore: verify OK against the kept digest');
	is($node->safe_psql('restored_ok', q{SELECT count(*) FROM headlessly.events e JOIN headlessly.checkpoints c
	                                      ON c.tenant = e.tenant AND c.seqs @> e.seq}),
		'8', 'restored checkpoints still know their events');
	# the next checkpoint seals the unsealed event, after the restore too
	is($node->safe_psql('restored_ok', 'SELECT headlessly.checkpoint()'), '1', 'checkpoint after restore');
	is($node->safe_psql('restored_ok', 'SELECT headlessly.checkpoint()'), '0', 'then nothing new to seal');
	is(verify_row('restored_ok', 'acme', $digest), 't|||||', 'restored, sealed again: OK against the old digest');
	$node->safe_psql('restored_ok', q{SELECT headlessly.events_append('page_view', tenant => 'acme');
	                                  SELECT headlessly.checkpoint()});
	is(verify_row('restored_ok', 'acme', $digest), 't|||||', 'appends go on after the restore');

	my $id = event_id($db, 3);
	my $text = slurp_file($dump);
	my $count = ($text =~ s{\{"path": "/a"\}}{{"path": "/b"}}g);
	is($count, 1, 'the dump is edited');
	my $edited = $node->basedir . '/tamper_edited.sql';
	open my $fh, '>', $edited or die;
	print $fh $text;
	close $fh;
	$node->safe_psql('postgres', 'CREATE DATABASE restored_edited');
	command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $edited, '-d', $node->connstr('restored_edited') ],
		'edited dump restored');
	is(verify_row('restored_edited', 'acme'), "f|||$id|3|altered", 'edited dump restored: the event named altered');
}

# 8. the extension dropped and created again with another history
{
	my $db = fresh_db();
	my $digest = $node->safe_psql($db, 'SELECT headlessly.digest()');
	$node->safe_psql($db, q{
		DROP EXTENSION headlessly_events CASCADE;
		CREATE EXTENSION headlessly_events;
		SELECT headlessly.events_append('Contact.Created', 'c1', '{"n": 100}', tenant => 'acme');
		SELECT headlessly.events_append('Contact.Created', 'x1', '{}', tenant => 'other');
		SELECT headlessly.checkpoint();});
	is(verify_row($db, 'acme'), 't|||||', 'the new history is consistent in itself');
	is(verify_row($db, 'acme', $digest), 'f|||||digest mismatch', 'against the kept digest: digest mismatch');
	is(verify_row($db, 'other', $digest), 'f|||||digest mismatch', 'the other tenant too');
}

# 9. the outside verifier on a real export, and on a proof
{
	my $db = fresh_db();
	$node->safe_psql($db, 'SELECT headlessly.checkpoint()');
	my $dir = $node->basedir;
	export_events($node, $db, "$dir/events.jsonl");
	export_checkpoints($node, $db, "$dir/checkpoints.jsonl");
	open my $fh, '>', "$dir/digest.json" or die;
	print $fh $node->safe_psql($db, 'SELECT headlessly.digest()');
	close $fh;
	my ($out, $err) = run_command([ 'python3', $hl_verify, 'verify', "$dir/events.jsonl",
		'--checkpoints', "$dir/checkpoints.jsonl", '--digest', "$dir/digest.json" ]);
	like($out, qr/^acme\tt\t8\t/m, 'hl_verify.py: the export verifies (acme)');
	like($out, qr/^other\tt\t1\t/m, 'hl_verify.py: the export verifies (other)');

	my $id = event_id($db, 4);
	open $fh, '>', "$dir/proof.json" or die;
	print $fh $node->safe_psql($db, "SELECT headlessly.proof('$id')");
	close $fh;
	my $event = $node->safe_psql($db, slurp_file("$tools/export.sql") =~ s/ORDER BY e\.seq;/WHERE e.seq = 4;/r);
	$event =~ s/^SET\n//mg;
	open $fh, '>', "$dir/event.json" or die;
	print $fh $event;
	close $fh;
	($out, $err) = run_command([ 'python3', $hl_verify, 'proof', "$dir/proof.json", '--event', "$dir/event.json",
		'--checkpoints', "$dir/checkpoints.jsonl", '--digest', "$dir/digest.json" ]);
	like($out . $err, qr/^ok: event hash [0-9a-f]{64} is leaf 3 of 7 under checkpoint 1 of tenant acme$/,
		'hl_verify.py: the proof of an event holds, up to the digest');

	# and it fails for an event that is not the proven one
	$event =~ s/"n" *: *3/"n": 33/;
	$event =~ s/\{\\"n\\": 3\}/{\\"n\\": 33}/;
	open $fh, '>', "$dir/event.json" or die;
	print $fh $event;
	close $fh;
	($out, $err) = run_command([ 'python3', $hl_verify, 'proof', "$dir/proof.json", '--event', "$dir/event.json" ]);
	like($out . $err, qr/does not hash/, 'hl_verify.py: a changed event does not match the proof');
}

done_testing();
