# Delivery after commit, across sessions: NOTIFY at commit (payload, the
# 8000-byte limit, rolled-back appends, owners who may not read), read()
# with wait as a long poll, and subscription positions across pg_dump and
# restore (a late-committing writer's event, unacked at dump time below the
# acked seq, is delivered after the restore).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('delivery');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION headlessly_events');

# --- NOTIFY at commit -------------------------------------------------------
$node->safe_psql('postgres', q{
	SELECT name FROM headlessly.subscribe('rt', 'Lead.*', notify => true);
	SELECT name FROM headlessly.subscribe('rt_acme', tenant => 'acme', notify => true);
	CREATE ROLE blind;
	GRANT USAGE ON SCHEMA headlessly TO blind;
	GRANT SELECT ON headlessly.events TO blind;
});
$node->safe_psql('postgres', q{
	SET ROLE blind;
	SELECT name FROM headlessly.subscribe('rt_blind', notify => true);
});
# blind may no longer read the log: its subscription gets no notification
$node->safe_psql('postgres', 'REVOKE SELECT ON headlessly.events FROM blind');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN rt; LISTEN rt_acme; LISTEN rt_blind');

sub notifications
{
	my $out = $listener->query_safe('SELECT 1');
	my @got;
	while ($out =~ /Asynchronous notification "([^"]+)" with payload "(.*?)" received from server process/g)
	{
		push @got, [ $1, decode_json($2) ];
	}
	return @got;
}

$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Lead.Created', 'lead_1', '{"name": "Ann"}', actor => 'a1');
	SELECT pg_sleep(0.2);
	COMMIT;
});
my @n = notifications();
is(scalar(@n), 1, 'one notification for one matching event');
is($n[0][0], 'rt', 'on the subscription\'s channel');
my $p = $n[0][1];
is_deeply([ sort keys %$p ],
	[ qw(actor data id recorded_at seq target tenant type version) ],
	'payload: id, seq, tenant, type, target, version, actor, recorded_at, data');
is($p->{type}, 'Lead.Created', 'payload type');
is($p->{data}{name}, 'Ann', 'payload data');
is($p->{version}, 1, 'payload version');
is($node->safe_psql('postgres', "SELECT seq FROM headlessly.events WHERE id = '$p->{id}'"),
	$p->{seq}, 'payload id and seq name the stored event');

# The payload's text, byte for byte, is the jsonb text of the stored row's
# fields (keys in jsonb's order, recorded_at in UTC): strings that need
# escaping, a NULL target and version, and around the 8000-byte limit, where
# data gives way to "truncated": true.
$listener->query_safe('LISTEN rt_text');
$node->safe_psql('postgres', q{SELECT name FROM headlessly.subscribe('rt_text', 'Text.*', notify => true)});

sub raw_notifications
{
	my ($channel) = @_;
	my $out = $listener->query_safe('SELECT 1');
	my @got;
	while ($out =~ /Asynchronous notification "\Q$channel\E" with payload "(.*?)" received from server process/g)
	{
		push @got, $1;
	}
	return @got;
}

sub expected_payload
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{
		SET timezone = 'UTC';
		SELECT CASE WHEN octet_length(full_text) < 8000 THEN full_text
		            ELSE (row - 'data' || '{"truncated": true}')::text END
		  FROM (SELECT r AS row, r::text AS full_text
		          FROM (SELECT jsonb_build_object('id', id, 'seq', seq, 'data', data, 'type', type,
		                       'actor', actor, 'target', target, 'tenant', tenant,
		                       'version', version, 'recorded_at', recorded_at) AS r
		                  FROM headlessly.events WHERE id = '$id') e) f});
}

# in one transaction: the two share recorded_at
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Text.Created', 'q_1',
		jsonb_build_object('s', 'a "quote", a ' || chr(92) || ' backslash,' || chr(9) || 'a tab, été',
			'n', 1.50, 'l', jsonb_build_array(true, null)),
		actor => 'act"or' || chr(92), tenant => 'ten' || chr(10) || 'ant');
	SELECT headlessly.events_append('Text.Free', data => '{}');
	COMMIT;
});
my @raw = raw_notifications('rt_text');
is(scalar(@raw), 2, 'two payloads to compare');
my @ids = map { $node->safe_psql('postgres',
		"SELECT id FROM headlessly.events WHERE type = '$_'") } ('Text.Created', 'Text.Free');
is($raw[0], expected_payload($ids[0]), 'escaped strings: the payload is the row\'s jsonb text');
is($raw[1], expected_payload($ids[1]), 'no target: target and version are null');

# find the data length that makes the payload 8000 bytes, then both sides of it
my $base_len = $node->safe_psql('postgres', qq{
	SELECT octet_length(jsonb_build_object('id', id, 'seq', seq, 'data', '{"x": ""}'::jsonb, 'type', type,
		'actor', actor, 'target', target, 'tenant', tenant, 'version', version,
		'recorded_at', recorded_at)::text)
	  FROM headlessly.events WHERE id = '$ids[1]'});
my %seen;
for my $pad (-3 .. 1)
{
	my $x = 8000 - $base_len + $pad;
	$node->safe_psql('postgres',
		"SELECT headlessly.events_append('Text.Free', data => jsonb_build_object('x', repeat('y', $x)))");
	my ($got) = raw_notifications('rt_text');
	my $id = $node->safe_psql('postgres',
		"SELECT id FROM headlessly.events WHERE type = 'Text.Free' ORDER BY seq DESC LIMIT 1");
	my $len = $node->safe_psql('postgres',
		"SET timezone = 'UTC'; SELECT octet_length(jsonb_build_object('id', id, 'seq', seq, 'data', data, 'type', type,"
		  . " 'actor', actor, 'target', target, 'tenant', tenant, 'version', version, 'recorded_at', recorded_at)::text)"
		  . " FROM headlessly.events WHERE id = '$id'");
	$seen{ $len < 8000 ? 'whole' : 'truncated' }++;
	is($got, expected_payload($id), "a payload of $len bytes with data is sent "
		  . ($len < 8000 ? 'whole' : 'truncated'));
}
ok($seen{whole} && $seen{truncated}, 'both sides of the 8000-byte limit were tried');

# rolled back: nothing; another tenant's subscription matches by tenant
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Lead.Created', 'lead_rb', '{}');
	ROLLBACK;
	SELECT headlessly.events_append('page_view', tenant => 'acme');
	SELECT headlessly.events_append('page_view', tenant => 'other');
});
@n = notifications();
is(scalar(@n), 1, 'no notification for a rolled-back append, none for a non-matching one');
is($n[0][0], 'rt_acme', 'the tenant subscription hears its tenant');
ok(!exists $n[0][1]{truncated}, 'a small payload is not truncated');

# over 8000 bytes: sent without data, marked truncated
$node->safe_psql('postgres',
	q{SELECT headlessly.events_append('Lead.Updated', 'lead_1', jsonb_build_object('notes', repeat('x', 9000)))});
@n = notifications();
is(scalar(@n), 1, 'a large event is still notified');
ok($n[0][1]{truncated}, 'marked truncated');
ok(!exists $n[0][1]{data}, 'without data');
is($n[0][1]{version}, 2, 'but with the rest');

# target, actor and tenant of control characters (6 bytes each escaped):
# too long even without data, the payload keeps id and seq only, and the
# append goes through (it failed with 22023 "payload string too long")
my $ctl = q{repeat(chr(1), 500)};
$node->safe_psql('postgres',
	qq{SELECT headlessly.events_append('Lead.Created', 'l' || $ctl, '{}', actor => 'a' || $ctl, tenant => 't' || $ctl)});
@raw = raw_notifications('rt');
my $long_id = $node->safe_psql('postgres',
	q{SELECT id FROM headlessly.events WHERE type = 'Lead.Created' ORDER BY seq DESC LIMIT 1});
is(scalar(@raw), 1, 'an event whose fields outgrow NOTIFY is still appended and notified');
is($raw[0], $node->safe_psql('postgres',
		qq{SELECT jsonb_build_object('id', id, 'seq', seq, 'truncated', true)::text FROM headlessly.events WHERE id = '$long_id'}),
	'with id and seq only, marked truncated');

# a rolled-back subtransaction takes its notification with it
$node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	SELECT headlessly.events_append('Lead.Created', 'lead_sp', '{"n": "gone"}');
	ROLLBACK TO SAVEPOINT s;
	SELECT headlessly.events_append('Lead.Created', 'lead_sp2', '{"n": "kept"}');
	COMMIT;
});
@n = notifications();
is(scalar(@n), 1, 'one notification: the rolled-back subtransaction sends none');
is($n[0][1]{target}, 'lead_sp2', 'the committed append is the one sent');

# a tenant role's subscription without a tenant hears only its tenants,
# and nothing once its rights are revoked
$node->safe_psql('postgres', q{
	CREATE ROLE acme_rt;
	GRANT USAGE ON SCHEMA headlessly TO acme_rt;
	GRANT SELECT ON headlessly.events TO acme_rt;
	SELECT headlessly.grant_tenant('acme_rt', 'acme', 'read');
	SET ROLE acme_rt;
	SELECT name FROM headlessly.subscribe('rt_tenant_role', 'Acct.*', notify => true);
});
$listener->query_safe('LISTEN rt_tenant_role');
$node->safe_psql('postgres', q{
	SELECT headlessly.events_append('Acct.Created', 'acct_1', '{}', tenant => 'other');
	SELECT headlessly.events_append('Acct.Created', 'acct_1', '{}', tenant => 'acme');
	SELECT headlessly.events_append('Acct.Created', 'acct_2', '{}');
});
@n = grep { $_->[0] eq 'rt_tenant_role' } notifications();
is(scalar(@n), 1, 'a tenant role\'s subscription hears one event: its tenant\'s');
is($n[0][1]{tenant}, 'acme', 'of its tenant only');
$node->safe_psql('postgres', q{SELECT headlessly.revoke_tenant('acme_rt', 'acme')});
$node->safe_psql('postgres',
	q{SELECT headlessly.events_append('Acct.Created', 'acct_3', '{}', tenant => 'acme')});
is(scalar(grep { $_->[0] eq 'rt_tenant_role' } notifications()), 0,
	'nothing once the tenant is revoked');

# one appending session throughout: what its cache remembers of an owner's
# rights follows REVOKE, role membership and tenant grants
$node->safe_psql('postgres', q{
	CREATE ROLE log_readers;
	GRANT SELECT ON headlessly.events TO log_readers;
	CREATE ROLE sub_owner;
	GRANT USAGE ON SCHEMA headlessly TO sub_owner;
	GRANT SELECT ON headlessly.events TO sub_owner;
	SET ROLE sub_owner;
	SELECT name FROM headlessly.subscribe('rt_rights', 'Right.*', notify => true);
});
$listener->query_safe('LISTEN rt_rights');
my $appender = $node->background_psql('postgres');
sub append_right
{
	$appender->query_safe(q{SELECT headlessly.events_append('Right.Checked', tenant => 'acme')});
	return scalar(grep { $_->[0] eq 'rt_rights' } notifications());
}
is(append_right(), 1, 'an owner who may read the log is notified');
$node->safe_psql('postgres', 'REVOKE SELECT ON headlessly.events FROM sub_owner');
is(append_right(), 0, 'not once SELECT is revoked, in the same appending session');
$node->safe_psql('postgres', 'GRANT log_readers TO sub_owner');
is(append_right(), 1, 'again once a role it belongs to may read the log');
$node->safe_psql('postgres', q{SELECT headlessly.grant_tenant('sub_owner', 'other', 'read')});
is(append_right(), 0, 'not once it becomes a tenant role of another tenant');
$node->safe_psql('postgres', q{SELECT headlessly.grant_tenant('sub_owner', 'acme', 'read')});
is(append_right(), 1, 'again once it may read the event\'s tenant');
$node->safe_psql('postgres', 'REVOKE log_readers FROM sub_owner');
is(append_right(), 0, 'not once it leaves that role');
$appender->quit;

# a subscription change reaches the appending sessions' caches
$node->safe_psql('postgres', q{SELECT headlessly.pause('rt')});
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Lead.Updated', 'lead_1', '{"n": 1}')});
is(scalar(notifications()), 0, 'a paused subscription is not notified');
$listener->quit;

# --- read() with wait is a long poll -----------------------------------------
$node->safe_psql('postgres', q{SELECT name FROM headlessly.subscribe('lp', 'Poll.*')});
my ($out, $err) = ('', '');
my $start = time();
my $reader = IPC::Run::start(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
	  '-c', q{SELECT type FROM headlessly.read('lp', wait => '60s')} ],
	'>', \$out, '2>', \$err);
sleep(1);
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Poll.Created', 'poll_1')});
$reader->finish;
my $elapsed = time() - $start;
is($out, "Poll.Created\n", 'the waiting read returns the event committed meanwhile');
ok($elapsed < 30, "long before its wait ran out ($elapsed s)");

# cancel interrupts the wait
$node->safe_psql('postgres', q{SELECT name FROM headlessly.subscribe('lp_idle', 'Poll.*')});
$out = $err = '';
{
	local $ENV{PGOPTIONS} = '-c statement_timeout=300ms';
	$reader = IPC::Run::start(
		[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		  '-c', q{SELECT type FROM headlessly.read('lp_idle', wait => '60s')} ],
		'>', \$out, '2>', \$err);
}
$start = time();
$reader->finish;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels the wait');
ok(time() - $start < 30, 'promptly');

# --- positions across dump and restore ---------------------------------------
$node->safe_psql('postgres', q{
	SELECT name FROM headlessly.subscribe('resume', 'Order.*', start_at => 'beginning');
	SELECT headlessly.events_append('Order.Created', 'order_' || i) FROM generate_series(1, 5) i;
});
# the consumer acks the first three
$node->safe_psql('postgres', q{
	SELECT headlessly.ack('resume', (SELECT seq FROM headlessly.read('resume', 3) ORDER BY seq DESC LIMIT 1))});
my $dump = $node->basedir . '/delivery.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', q{
	SELECT count(*) FILTER (WHERE xact_id IS NULL) = count(*) FROM headlessly.subscription_positions}),
	't', 'restored positions forget the other database\'s transaction ids');
# at least once: it may get a few acked events again, never one less
like($node->safe_psql('restored',
	q{SELECT string_agg(target, ',' ORDER BY seq) FROM headlessly.read('resume')}),
	qr/(^|,)order_4,order_5$/, 'a restored consumer resumes after what it acked');
$node->safe_psql('restored', q{
	SELECT headlessly.ack('resume', (SELECT max(seq) FROM headlessly.read('resume')));
	SELECT headlessly.events_append('Order.Created', 'order_6');
});
is($node->safe_psql('restored',
	q{SELECT string_agg(target, ',' ORDER BY seq) FROM headlessly.read('resume')}),
	'order_6', 'and goes on with new events once it acks again');
is($node->safe_psql('restored', q{SELECT count(*) FROM headlessly.subscriptions WHERE secret IS NOT NULL OR true}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.subscriptions}),
	'every subscription is restored');

# A late-committing writer: T appends first (lower seq) but with a higher
# transaction id than U, whose later event the consumer reads and acks while
# T is still open.  At dump time T's event lies below the acked seq,
# unacked.  Restored events all carry the restoring transaction's id, so
# only safe_seq tells the restored position what it had not acked.
$node->safe_psql('postgres', q{SELECT name FROM headlessly.subscribe('late', 'Late.*', start_at => 'beginning')});
for my $i (1 .. 4)
{
	$node->safe_psql('postgres', "SELECT headlessly.events_append('Late.Created', 'early_$i')");
	$node->safe_psql('postgres',
		q{SELECT headlessly.ack('late', (SELECT max(seq) FROM headlessly.read('late')))});
}
my $u = $node->background_psql('postgres');
my $t = $node->background_psql('postgres');
$u->query_safe('BEGIN; SELECT pg_current_xact_id()');
$t->query_safe(q{BEGIN; SELECT headlessly.events_append('Late.Created', 'late_1')});
$u->query_safe(q{SELECT headlessly.events_append('Late.Created', 'quick_1'); COMMIT});
is($node->safe_psql('postgres', q{SELECT string_agg(target, ',') FROM headlessly.read('late')}),
	'quick_1', 'while T is open, only U\'s event is handed out');
$node->safe_psql('postgres',
	q{SELECT headlessly.ack('late', (SELECT seq FROM headlessly.events WHERE target = 'quick_1'))});
$t->query_safe('COMMIT');
$u->quit;
$t->quit;
is($node->safe_psql('postgres', q{
	SELECT (SELECT seq FROM headlessly.events WHERE target = 'late_1')
	     < (SELECT seq FROM headlessly.subscription_positions WHERE subscription = 'late')}),
	't', 'the late event lies below the acked seq');
is($node->safe_psql('postgres', q{SELECT string_agg(target, ',') FROM headlessly.read('late')}),
	'late_1', 'and is handed out next here');
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump with the late event unacked');
$node->safe_psql('postgres', 'CREATE DATABASE restored_late');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored_late'), $dump ], 'pg_restore');
my $after = $node->safe_psql('restored_late',
	q{SELECT string_agg(target, ',' ORDER BY seq) FROM headlessly.read('late')});
like($after, qr/(^|,)late_1(,|$)/, "after the restore the late event is delivered ($after)");
unlike($after, qr/early_1/, 'what was acked well before is not delivered again');
$node->safe_psql('restored_late',
	q{SELECT headlessly.ack('late', (SELECT max(seq) FROM headlessly.read('late')))});
is($node->safe_psql('restored_late', q{SELECT count(*) FROM headlessly.read('late')}),
	'0', 'once acked, nothing is left');

# The same late-committing writer against an after_commit hook: a delivery
# round moves the hook's position past the events it enqueues, and after a
# restore it must resume after its safe_seq too, or the late event is
# never enqueued (nor run).
$node->safe_psql('postgres', q{
	CREATE TABLE late_ran (target text, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION late_record(e jsonb) RETURNS jsonb LANGUAGE sql
		AS $$ INSERT INTO late_ran (target) VALUES (e ->> 'target') RETURNING NULL::jsonb $$;
	SELECT headlessly.hook('LateHook.*', 'after_commit', 'late_record(jsonb)');
});
for my $i (1 .. 4)
{
	$node->safe_psql('postgres', "SELECT headlessly.events_append('LateHook.Created', 'hearly_$i')");
	$node->safe_psql('postgres', 'SELECT headlessly.deliver()');
}
$u = $node->background_psql('postgres');
$t = $node->background_psql('postgres');
$u->query_safe('BEGIN; SELECT pg_current_xact_id()');
$t->query_safe(q{BEGIN; SELECT headlessly.events_append('LateHook.Created', 'hlate_1')});
$u->query_safe(q{SELECT headlessly.events_append('LateHook.Created', 'hquick_1'); COMMIT});
$node->safe_psql('postgres', 'SELECT headlessly.deliver()');
is($node->safe_psql('postgres', q{SELECT string_agg(target, ',' ORDER BY at) FROM late_ran}),
	'hearly_1,hearly_2,hearly_3,hearly_4,hquick_1', 'while T is open, the round runs U\'s event');
$t->query_safe('COMMIT');
$u->quit;
$t->quit;
my $hook_position = q{
	SELECT p.seq FROM headlessly.subscription_positions p
	  JOIN headlessly.subscriptions s ON s.name = p.subscription WHERE s.kind = 'hook'};
is($node->safe_psql('postgres', qq{
	SELECT (SELECT seq FROM headlessly.events WHERE target = 'hlate_1') < ($hook_position)}),
	't', 'the late event lies below the hook\'s position, not enqueued yet');
is($node->safe_psql('postgres', q{
	SELECT p.safe_seq >= (SELECT seq FROM headlessly.events WHERE target = 'hearly_3')
	  FROM headlessly.subscription_positions p
	  JOIN headlessly.subscriptions s ON s.name = p.subscription WHERE s.kind = 'hook'}),
	't', 'rounds move the hook\'s safe_seq: a restore does not walk back to its start');
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ],
	'pg_dump with the hook\'s late event not enqueued');
$node->safe_psql('postgres', 'CREATE DATABASE restored_hook');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored_hook'), $dump ], 'pg_restore');
$node->safe_psql('restored_hook', 'SELECT headlessly.deliver()');
is($node->safe_psql('restored_hook', q{
	SELECT string_agg(target || ':' || n, ',' ORDER BY target)
	  FROM (SELECT target, count(*) AS n FROM late_ran GROUP BY target) c}),
	'hearly_1:1,hearly_2:1,hearly_3:1,hearly_4:1,hlate_1:1,hquick_1:1',
	'after the restore the round runs the late event, and nothing it had run again');
is($node->safe_psql('restored_hook', q{
	SELECT count(*) FROM headlessly.deliveries WHERE status <> 'delivered'}),
	'0', 'every delivery is done');
$node->safe_psql('restored_hook', q{SELECT headlessly.events_append('LateHook.Created', 'hnext_1')});
$node->safe_psql('restored_hook', 'SELECT headlessly.deliver()');
is($node->safe_psql('restored_hook', q{SELECT count(*) FROM late_ran WHERE target = 'hnext_1'}),
	'1', 'and goes on with new events');

done_testing();
