# pg_upgrade with headlessly_events installed and its worker preloaded: the
# log comes through whole, in copy mode and in link mode.  Every event byte
# for byte (xact_id and hash included: pg_upgrade keeps the transaction ids
# and their epoch), the derived state, the hash chains and checkpoints (the
# digest kept outside still verifies), the registries and subscription
# positions; the guards, tenancy policies, hooks, capture and the worker
# still in force afterwards, and appends continue every stream.  The new
# cluster is the same major version as the old, as in PostgreSQL's own
# src/bin/pg_upgrade/t/002_pg_upgrade.pl, so this runs on every version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The worker preloaded; snapshots every 3 versions; the worker's own
# checkpoints off, so that headlessly.checkpoint() alone seals and the
# digests compare exactly.
my $conf = qq{
shared_preload_libraries = 'headlessly_events'
headlessly.snapshot_interval = 3
headlessly.checkpoint_interval = 0
headlessly.worker_naptime = 200ms
};

# The tenants are bound before the worker runs: the first grant_tenant()
# turns row security on table by table, which can deadlock with a delivery
# round (left to tenancy, see the report).
my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE app');
$old->safe_psql('app', q{
	CREATE EXTENSION headlessly_events;
	CREATE ROLE app_acme LOGIN;
	CREATE ROLE app_globex LOGIN;
	GRANT USAGE ON SCHEMA headlessly TO app_acme, app_globex;
	GRANT SELECT, INSERT ON headlessly.events TO app_acme, app_globex;
	GRANT SELECT ON headlessly.streams, headlessly.snapshots, headlessly.entities, headlessly.heads
	   TO app_acme, app_globex;
	SELECT headlessly.grant_tenant('app_acme', 'acme');
	SELECT headlessly.grant_tenant('app_globex', 'globex');
});
$old->append_conf('postgresql.conf', $conf);
$old->restart;
$old->safe_psql('app', q{

	CREATE FUNCTION stamp(event jsonb) RETURNS jsonb LANGUAGE sql
	    AS $$ SELECT jsonb_build_object('stamped', true) $$;
	SELECT headlessly.hook('Deal.*', 'before', 'stamp(jsonb)');
	CREATE TABLE after_seen (event_id text);
	CREATE FUNCTION seen(event jsonb) RETURNS jsonb LANGUAGE sql
	    AS $$ INSERT INTO after_seen VALUES (event->>'id') RETURNING NULL::jsonb $$;
	SELECT headlessly.hook('*', 'after', 'seen(jsonb)');
	CREATE FUNCTION fails(event jsonb) RETURNS jsonb LANGUAGE plpgsql
	    AS $$ BEGIN RAISE EXCEPTION 'after hook fails'; END $$;
	SELECT headlessly.hook('Broken.*', 'after', 'fails(jsonb)');
	CREATE TABLE committed_seen (event_id text);
	CREATE FUNCTION committed(event jsonb) RETURNS jsonb LANGUAGE sql
	    AS $$ INSERT INTO committed_seen VALUES (event->>'id') RETURNING NULL::jsonb $$;
	SELECT headlessly.hook('Order.*', 'after_commit', 'committed(jsonb)');

	SELECT name FROM headlessly.subscribe('pull_all', start_at => 'beginning');

	CREATE TABLE lead_events (id serial PRIMARY KEY, kind text);
	SELECT headlessly.make_append_only('lead_events');
	INSERT INTO lead_events (kind) VALUES ('created'), ('qualified');

	CREATE TABLE contacts (id int PRIMARY KEY, name text, email text);
	SELECT headlessly.capture('contacts');
	INSERT INTO contacts VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bo', NULL);
	UPDATE contacts SET email = 'bo@example.com' WHERE id = 2;
	DELETE FROM contacts WHERE id = 1;
});
# entities with many versions in three tenants, one deleted and created again
foreach my $tenant ('acme', 'globex', 'default')
{
	$old->safe_psql('app', qq{
		SELECT headlessly.events_append('Account.Created', 'acct_' || i, jsonb_build_object('n', i),
		                                tenant => '$tenant', actor => 'agent_' || i)
		  FROM generate_series(1, 3) i;
		SELECT headlessly.events_append('Account.Updated', 'acct_' || (i % 3 + 1),
		                                jsonb_build_object('step', i, 'gone', CASE WHEN i % 4 = 0 THEN NULL END),
		                                tenant => '$tenant')
		  FROM generate_series(1, 15) i;
		SELECT headlessly.events_append('Deal.Created', 'deal_1', '{"amount": 10.50}', tenant => '$tenant');
		SELECT headlessly.events_append('Deal.Deleted', 'deal_1', '{"reason": "lost"}', tenant => '$tenant');
		SELECT headlessly.events_append('Deal.Created', 'deal_1', '{"amount": 12}', tenant => '$tenant');
		SELECT headlessly.events_append('page_view', metadata => jsonb_build_object('path', '/p/' || i),
		                                tenant => '$tenant')
		  FROM generate_series(1, 4) i;
	});
}
$old->safe_psql('app', q{
	SELECT headlessly.events_append('charge.succeeded', source => 'stripe', external_event_id => 'ch_1',
	                                raw_payload => '{"id":  "ch_1"}', tenant => 'acme');
	SELECT headlessly.events_append('charge.succeeded', source => 'stripe', external_event_id => 'ch_1',
	                                raw_payload => '{"id":  "ch_1"}', tenant => 'acme');
	SELECT count(*) FROM headlessly.events_append_batch(jsonb_build_array(
	    jsonb_build_object('type', 'Ticket.Created', 'target', 'tk_1', 'tenant', 'globex'),
	    jsonb_build_object('type', 'Ticket.Closed', 'target', 'tk_1', 'tenant', 'globex'),
	    jsonb_build_object('type', 'refund.created', 'source', 'stripe', 'external_event_id', 're_1')));
	SELECT headlessly.events_append('Broken.Created', 'broken_1');
	SELECT headlessly.events_append('Order.Created', 'order_' || i, '{}') FROM generate_series(1, 3) i;
});
ok($old->poll_query_until('app', q{SELECT count(*) = 3 FROM committed_seen}),
	'old cluster: the worker ran the after_commit hooks');
# a sealed part and an unsealed tail (checked as chains only)
$old->safe_psql('app', q{
	SELECT headlessly.checkpoint();
	SELECT headlessly.events_append('Account.Updated', 'acct_1', '{"late": true}', tenant => 'acme');
	SELECT headlessly.events_append('page_view', tenant => 'globex');
});
# the pull consumer reads and acks part of the log
my $acked = $old->safe_psql('app', q{
	SELECT max(seq) FROM (SELECT seq FROM headlessly.read('pull_all', 10)) r});
$old->safe_psql('app', qq{SELECT headlessly.ack('pull_all', $acked)});

# What must come through exactly, as text.
my %query = (
	events => q{SELECT string_agg(to_jsonb(e)::text, E'\n' ORDER BY seq) FROM headlessly.events e},
	event_bytes => q{SELECT md5(string_agg(e::text || encode(e.hash, 'hex') || coalesce(e.raw_payload, ''),
	                                       E'\n' ORDER BY seq)) FROM headlessly.events e},
	streams => q{SELECT string_agg(to_jsonb(s)::text, E'\n' ORDER BY tenant, target) FROM headlessly.streams s},
	entities => q{SELECT string_agg(to_jsonb(s)::text, E'\n' ORDER BY to_jsonb(s)::text) FROM headlessly.entities s},
	snapshots => q{SELECT string_agg(s::text, E'\n' ORDER BY s::text) FROM headlessly.snapshots s},
	checkpoints => q{SELECT string_agg(c::text, E'\n' ORDER BY c::text) FROM headlessly.checkpoints c},
	checkpoint_horizon => q{SELECT string_agg(c::text, E'\n' ORDER BY c::text) FROM headlessly.checkpoint_horizon c},
	subscriptions => q{SELECT string_agg(s::text, E'\n' ORDER BY s::text) FROM headlessly.subscriptions s},
	positions => q{SELECT string_agg(p::text, E'\n' ORDER BY p::text) FROM headlessly.subscription_positions p},
	deliveries => q{SELECT string_agg(d::text, E'\n' ORDER BY d::text) FROM headlessly.deliveries d},
	hooks => q{SELECT string_agg(h::text, E'\n' ORDER BY h::text) FROM headlessly.hook_registry h},
	hook_failures => q{SELECT string_agg(h::text, E'\n' ORDER BY h::text) FROM headlessly.hook_failures h},
	tenant_grants => q{SELECT string_agg(g::text, E'\n' ORDER BY g::text) FROM headlessly.tenant_grants g},
	user_tables => q{SELECT (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM after_seen a) || ' / ' ||
	                        (SELECT string_agg(c::text, ',' ORDER BY c::text) FROM committed_seen c) || ' / ' ||
	                        (SELECT string_agg(l::text, ',' ORDER BY l::text) FROM lead_events l) || ' / ' ||
	                        (SELECT string_agg(c::text, ',' ORDER BY c::text) FROM contacts c)},
	sequences => q{SELECT string_agg(format('%s %s %s', schemaname, sequencename, last_value), E'\n' ORDER BY schemaname, sequencename)
	                 FROM pg_sequences},
	verify => q{SELECT string_agg(v::text, E'\n' ORDER BY tenant) FROM headlessly.verify() v},
	digest => q{SELECT headlessly.digest()},
	check_state => q{SELECT count(*) FROM headlessly.check_state()},
	next_read => q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM headlessly.read('pull_all', 5)},
	extension => q{SELECT extversion || ' ' || array_to_string(extconfig::regclass[], ',') || ' ' ||
	                      array_to_string(extcondition, ',')
	                 FROM pg_extension WHERE extname = 'headlessly_events'},
	triggers => q{SELECT string_agg(format('%s %s %s %s', tgrelid::regclass, tgname, tgenabled, tgfoid::regprocedure),
	                                E'\n' ORDER BY format('%s %s %s %s', tgrelid::regclass, tgname, tgenabled, tgfoid::regprocedure))
	                FROM pg_trigger WHERE NOT tgisinternal},
	event_triggers => q{SELECT string_agg(format('%s %s %s %s %s', evtname, evtevent, evtenabled, evtfoid::regprocedure,
	                                             evttags), E'\n' ORDER BY format('%s %s %s %s %s', evtname, evtevent, evtenabled, evtfoid::regprocedure,
	                                                      evttags)) FROM pg_event_trigger},
	policies => q{SELECT string_agg(to_jsonb(p)::text, E'\n' ORDER BY tablename, policyname) FROM pg_policies p},
	row_security => q{SELECT string_agg(format('%s %s %s', oid::regclass, relrowsecurity, relforcerowsecurity),
	                                    E'\n' ORDER BY format('%s %s %s', oid::regclass, relrowsecurity, relforcerowsecurity))
	                    FROM pg_class WHERE relnamespace = 'headlessly'::regnamespace AND relkind = 'r'},
	# effective rights: a table-level ACL equal to the owner's default comes
	# back as NULL (pg_dump writes no GRANT for it), which is the same rights
	acl => q{SELECT string_agg(format('%s %s', c.oid::regclass, a), E'\n' ORDER BY format('%s %s', c.oid::regclass, a))
	           FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
	          WHERE c.relnamespace = 'headlessly'::regnamespace},
	column_acl => q{SELECT string_agg(format('%s.%s %s', attrelid::regclass, attname, attacl), E'\n'
	                                  ORDER BY format('%s.%s %s', attrelid::regclass, attname, attacl))
	                  FROM pg_attribute
	                 WHERE attacl IS NOT NULL
	                   AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'headlessly'::regnamespace)},
	function_acl => q{SELECT string_agg(format('%s %s', oid::regprocedure, proacl), E'\n'
	                                    ORDER BY format('%s %s', oid::regprocedure, proacl))
	                    FROM pg_proc WHERE pronamespace = 'headlessly'::regnamespace},
	# secrets stay unreadable: what PUBLIC may read of subscriptions
	public_columns => q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	                     WHERE attrelid = 'headlessly.subscriptions'::regclass AND attnum > 0
	                       AND has_column_privilege('public', attrelid, attnum, 'SELECT')},
);
my %before = map { $_ => $old->safe_psql('app', $query{$_}) } keys %query;
is($before{check_state}, '0', 'old cluster: the state is in step with the log');
unlike($before{verify}, qr/,f,/, 'old cluster: verify() is clean');
cmp_ok(scalar(split /\n/, $before{snapshots}), '>', 6, 'old cluster: entities have snapshots');
cmp_ok(scalar(split /\n/, $before{checkpoints}), '>=', 3, 'old cluster: a checkpoint per tenant');
like($before{positions}, qr/\b$acked\b/, 'old cluster: the subscription has a position');
like($before{hook_failures}, qr/after hook fails/, 'old cluster: a recorded hook failure');

my $max_seq = $old->safe_psql('app', 'SELECT max(seq) FROM headlessly.events');

my $bindir = $old->config_data('--bindir');
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
# pg_upgrade writes its logs into the current directory (and the new data
# directory): ours must be writable
chdir $tmp;

# pg_upgrade's command line from OLD to NEW; its servers log which
# background workers they start (DEBUG1), and their logs are kept.
sub pg_upgrade_command
{
	my ($from, $to, @extra) = @_;
	return [
		'pg_upgrade', '--no-sync', '--retain',
		'-d', $from->data_dir, '-D', $to->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $to->host, '-p', $from->port, '-P', $to->port,
		'-o', '-c log_min_messages=debug1', '-O', '-c log_min_messages=debug1',
		@extra ];
}

# Which of our background workers pg_upgrade's servers started (their
# DEBUG1 lines), with both clusters' servers in binary-upgrade mode: a
# worker there would write into databases that are being restored or
# whose files are about to be replaced.
sub workers_started
{
	my ($to) = @_;
	my @lines;
	foreach my $log (glob($to->data_dir . '/pg_upgrade_output.d/*/log/pg_upgrade_server.log'))
	{
		push @lines, grep { /starting background worker process "headlessly_events/ } split /\n/, slurp_file($log);
	}
	return join "\n", @lines;
}

sub new_cluster
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', $conf);
	return $node;
}

# Everything captured above, exactly as it was.
sub compare_all
{
	my ($node, $mode) = @_;
	foreach my $what (sort keys %query)
	{
		is($node->safe_psql('app', $query{$what}), $before{$what}, "$mode: $what as before the upgrade");
	}
}

# $sql as $role (a superuser by default) fails with $sqlstate
sub refused
{
	my ($node, $sql, $sqlstate, $what, $role) = @_;
	my $set_role = $role ? "SET ROLE $role;\n" : '';
	my ($rc, $stdout, $stderr) = $node->psql('app', "\\set VERBOSITY sqlstate\n$set_role$sql");
	like($stderr, qr/ERROR:  $sqlstate/, $what);
}

# The guards, tenancy, hooks, capture, subscriptions and the worker in
# force on the upgraded cluster, and appends that continue the log.
sub check_in_force
{
	my ($node, $mode) = @_;

	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'headlessly_events worker' AND datname = 'app'}),
		"$mode: the worker serves the database");

	# a superuser in an ordinary session: refused, nothing changed
	foreach my $sql (
		'UPDATE headlessly.events SET data = \'{}\'',
		'DELETE FROM headlessly.events',
		'TRUNCATE headlessly.events',
		'ALTER TABLE headlessly.events DISABLE TRIGGER ALL',
		'ALTER TABLE headlessly.events DROP COLUMN data',
		'UPDATE lead_events SET kind = \'x\'',
		'DELETE FROM lead_events',
		'TRUNCATE lead_events',
		'ALTER TABLE lead_events DISABLE TRIGGER headlessly_append_only',
		'ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE',
		'DROP EVENT TRIGGER headlessly_guard_ddl')
	{
		refused($node, $sql, 'ZE001', "$mode: refused: $sql");
	}
	is($node->safe_psql('app', $query{events}), $before{events}, "$mode: the log is unchanged after them");
	is($node->safe_psql('app', $query{user_tables}), $before{user_tables},
		"$mode: lead_events is unchanged after them");
	is($node->safe_psql('app', $query{event_triggers}), $before{event_triggers},
		"$mode: the DDL guard is still enabled");

	# tenancy
	is($node->safe_psql('app', q{
		SET ROLE app_acme; SELECT string_agg(DISTINCT tenant, ',') FROM headlessly.events}),
		'acme', "$mode: a tenant role reads only its tenant's events");
	refused($node, q{SELECT headlessly.events_append('page_view', tenant => 'globex')}, 'ZE008',
		"$mode: a tenant role cannot append to another tenant", 'app_acme');
	is($node->safe_psql('app', 'SELECT max(seq) FROM headlessly.events'), $max_seq,
		"$mode: the refused append stored nothing");

	# appends continue every stream, the log's seq and the hash chains
	my $continued = $node->safe_psql('app', q{
		WITH last AS (
		    SELECT tenant, target, max(version) AS version FROM headlessly.events
		     WHERE type LIKE 'Account.%' GROUP BY tenant, target)
		SELECT bool_and(e.version = last.version + 1 AND e.hash IS NOT NULL)
		  FROM last, headlessly.events_append('Account.Updated', last.target, '{"after_upgrade": true}',
		                                      tenant => last.tenant) e});
	is($continued, 't', "$mode: an append continues each stream at the next version");
	is($node->safe_psql('app', qq{
		SELECT min(seq) > $max_seq FROM headlessly.events WHERE data ? 'after_upgrade'}),
		't', "$mode: and the log's seq after the old events");
	is($node->safe_psql('app', q{
		SELECT (e.version, e.data->>'amount', e.data->>'stamped')::text
		  FROM headlessly.events_append('Deal.Updated', 'deal_1', '{"amount": 13}', tenant => 'acme') e}),
		'(4,13,true)', "$mode: the before hook runs");
	is($node->safe_psql('app', q{
		SELECT count(*) FROM after_seen a JOIN headlessly.events e ON e.id = a.event_id
		 WHERE e.type = 'Deal.Updated'}),
		'1', "$mode: the after hook runs");
	is($node->safe_psql('app', q{
		SELECT (s.id = e.id)::text || ' ' || count(*) OVER ()
		  FROM headlessly.events_append('charge.succeeded', source => 'stripe', external_event_id => 'ch_1',
		                                tenant => 'acme') e,
		       headlessly.events s WHERE s.external_event_id = 'ch_1'}),
		'true 1', "$mode: an idempotency key from before the upgrade still dedupes");
	$node->safe_psql('app', q{INSERT INTO contacts VALUES (3, 'Cy')});
	is($node->safe_psql('app', q{
		SELECT type || ' ' || version FROM headlessly.events WHERE target = 'contact_3'}),
		'Contact.Created 1', "$mode: the captured table is still captured");
	my $order = $node->safe_psql('app', q{
		SELECT id FROM headlessly.events_append('Order.Created', 'order_4', '{}')});
	ok($node->poll_query_until('app', qq{SELECT count(*) = 1 FROM committed_seen WHERE event_id = '$order'}),
		"$mode: the worker runs the after_commit hook for a new event");
	is($node->safe_psql('app', q{SELECT count(*) FROM committed_seen}), '4',
		"$mode: and for none of the old ones again");

	is($node->safe_psql('app', q{SELECT count(*) FROM headlessly.check_state()}), '0',
		"$mode: the state is in step with the log");
	$node->safe_psql('app', 'SELECT headlessly.checkpoint()');
	is($node->safe_psql('app', qq{
		SELECT bool_and(ok) FROM headlessly.verify(digest => '$before{digest}')}),
		't', "$mode: verify() is clean, against the digest taken before the upgrade too");
}

my $copy = new_cluster('new_copy');

# A database still at 0.1 keeps its hook handlers in a regprocedure column,
# which pg_upgrade refuses; ALTER EXTENSION ... UPDATE turns it into text.
$old->safe_psql('postgres', 'CREATE DATABASE legacy');
$old->safe_psql('legacy', q{
	CREATE EXTENSION headlessly_events VERSION '0.1';
	CREATE FUNCTION stamp(event jsonb) RETURNS jsonb LANGUAGE sql
	    AS $$ SELECT jsonb_build_object('stamped', true) $$;
	SELECT headlessly.hook('Deal.*', 'before', 'stamp(jsonb)');
});
my ($check_out) = run_command(pg_upgrade_command($old, $copy, '--check'));
# PostgreSQL 15 prints "... fatal", 17 and later "failed check: ..."
like($check_out, qr/Checking for reg\* data types in user tables +fatal|failed check: +Checking for reg\* data types in user tables/,
	'pg_upgrade --check refuses a database at 0.1, for its regprocedure column');
$old->safe_psql('legacy', q{ALTER EXTENSION headlessly_events UPDATE TO '0.2'});
is($old->safe_psql('legacy', q{SELECT handler || ' ' || pg_typeof(handler) FROM headlessly.hook_registry}),
	'public.stamp(pg_catalog.jsonb) text', 'the update stores the handler qualified, as text');

command_ok(pg_upgrade_command($old, $copy, '--check'),
	'pg_upgrade --check against the old cluster running, its worker serving the database');
$old->stop;
command_ok(pg_upgrade_command($old, $copy, '--check'), 'pg_upgrade --check against the stopped old cluster');
command_ok(pg_upgrade_command($old, $copy), 'pg_upgrade (copy)');
is(workers_started($copy), '', 'copy: no worker of ours ran under pg_upgrade');
$copy->start;
compare_all($copy, 'copy');
check_in_force($copy, 'copy');
is($copy->safe_psql('legacy', q{SELECT data FROM headlessly.events_append('Deal.Created', 'deal_1')}),
	'{"stamped": true}', 'copy: the hook of the database updated from 0.1 runs');
$copy->stop;

# link mode takes the old cluster's files (copy mode left them as they were)
my $link = new_cluster('new_link');
command_ok(pg_upgrade_command($old, $link, '--link'), 'pg_upgrade --link');
is(workers_started($link), '', 'link: no worker of ours ran under pg_upgrade');
$link->start;
compare_all($link, 'link');
check_in_force($link, 'link');
$link->stop;

done_testing();
