# Heads a transaction changes more than once are kept in memory and written
# when it commits: also when it is prepared (two-phase commit), when the
# extension is dropped (and created again) in the same transaction, and when
# one transaction changes more heads than the cache keeps (it writes them
# and starts afresh).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('heads');
$node->init;
$node->append_conf('postgresql.conf', "max_prepared_transactions = 4\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	SELECT headlessly.events_append('Deal.Created', 'deal_' || i, '{"n": 0}')
	  FROM generate_series(1, 2) i});

# two-phase commit: the heads are written before the transaction is prepared
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Deal.Updated', 'deal_1', jsonb_build_object('n', i))
	  FROM generate_series(1, 5) i;
	PREPARE TRANSACTION 'five'});
is($node->safe_psql('postgres',
		q{SELECT version FROM headlessly.entities WHERE target = 'deal_1'}),
	'1', 'a prepared transaction\'s appends are not visible yet');
$node->safe_psql('postgres', q{COMMIT PREPARED 'five'});
is($node->safe_psql('postgres',
		q{SELECT version || ' ' || (state ->> 'n') FROM headlessly.streams WHERE target = 'deal_1'}),
	'6 5', 'COMMIT PREPARED leaves the head of the last append');

$node->safe_psql('postgres', q{
	BEGIN;
	SELECT headlessly.events_append('Deal.Updated', 'deal_2', jsonb_build_object('n', i))
	  FROM generate_series(1, 5) i;
	PREPARE TRANSACTION 'undone'});
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'undone'});
is($node->safe_psql('postgres',
		q{SELECT version || ' ' || (state ->> 'n') FROM headlessly.streams WHERE target = 'deal_2'}),
	'1 0', 'ROLLBACK PREPARED leaves the head as it was');
is($node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.check_state()'),
	'0', 'heads agree with the log after two-phase commits');

# the extension dropped in the transaction that holds unwritten heads
my ($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SELECT count(headlessly.events_append('Deal.Updated', 'deal_1', jsonb_build_object('n', i)))
	  FROM generate_series(1, 5) i;
	DROP EXTENSION headlessly_events;
	COMMIT});
is($rc, 0, 'DROP EXTENSION after several appends to one stream commits') or diag($err);

# ... and created again, with appends to the same key on both sides
($rc, $out, $err) = $node->psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	SELECT headlessly.events_append('Deal.Created', 'deal_1', '{"n": 0}');
	BEGIN;
	SELECT count(headlessly.events_append('Deal.Updated', 'deal_1', jsonb_build_object('n', i)))
	  FROM generate_series(1, 3) i;
	DROP EXTENSION headlessly_events;
	CREATE EXTENSION headlessly_events;
	SELECT count(headlessly.events_append(CASE WHEN i = 1 THEN 'Deal.Created' ELSE 'Deal.Updated' END,
	                                      'deal_1', jsonb_build_object('again', i)))
	  FROM generate_series(1, 4) i;
	COMMIT});
is($rc, 0, 'DROP and CREATE EXTENSION between appends to one stream commit') or diag($err);
is($node->safe_psql('postgres',
		q{SELECT version || ' ' || state::text FROM headlessly.streams WHERE target = 'deal_1'}),
	'4 {"again": 4}', 'the new extension\'s head is the one written');

# more heads than the cache keeps (16,384), each changed twice, in one
# transaction: the cache writes its heads and starts afresh, more than once
$node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.events_append_batch(
	  (SELECT jsonb_agg(jsonb_build_object('type', 'Item.Created', 'target', 'item_' || i,
	                                       'data', jsonb_build_object('n', 0)))
	     FROM generate_series(1, 17000) i))});
is($node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO headlessly.events (type, target, data)
	SELECT 'Item.Updated', 'item_' || (i % 17000 + 1), jsonb_build_object('n', i / 17000 + 1)
	  FROM generate_series(0, 33999) i;
	SELECT count(*) FILTER (WHERE version = 3 AND state ->> 'n' = '2')
	       || ' ' || ((SELECT count(*) FROM headlessly.pending_heads()) BETWEEN 1 AND 16383)
	  FROM headlessly.entities WHERE noun = 'Item';
	COMMIT}),
	'17000 true', 'every head of 17,000 changed twice is current in the transaction, '
	  . 'fewer of them unwritten than the cache keeps');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM headlessly.streams
	 WHERE noun = 'Item' AND version = 3 AND state ->> 'n' = '2'}),
	'17000', 'and written when it commits');

# One backend's appends in transactions of their own find each head where
# they found it last and prune its page only when the next version may not
# fit: the heads' page is still pruned, every update stays on it (HOT), and
# the head read is the newest, also while its state grows.
$node->safe_psql('postgres', 'CREATE DATABASE ticks');
$node->safe_psql('ticks', q{
	CREATE EXTENSION headlessly_events;
	SELECT headlessly.events_append('Tick.Created', 'tick_' || i, '{"n": 0}')
	  FROM generate_series(1, 2) i;
	CREATE TABLE hot_probe AS SELECT pg_relation_size('headlessly.streams') AS size});
my $before = $node->safe_psql('ticks', q{
	SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables
	 WHERE relid = 'headlessly.streams'::regclass});
my ($upd0, $hot0) = split / /, $before;
$node->safe_psql('ticks', join("\n",
	map {
		"SELECT headlessly.events_append('Tick.Updated', 'tick_1', jsonb_build_object('n', $_));\n"
		  . "SELECT headlessly.events_append('Tick.Updated', 'tick_2', jsonb_build_object('s', repeat('x', $_)));"
	} 1 .. 300));
is($node->safe_psql('ticks', q{
	SELECT string_agg(target || ' ' || version || ' ' || coalesce(length(state ->> 's')::text, state ->> 'n'), ', '
	                  ORDER BY target)
	  FROM headlessly.streams WHERE noun = 'Tick'}),
	'tick_1 301 300, tick_2 301 300',
	'600 appends in transactions of their own leave the newest heads');
is($node->safe_psql('ticks', q{
	SELECT pg_relation_size('headlessly.streams') OPERATOR(pg_catalog.=) size FROM hot_probe}),
	't', 'the heads\' page was pruned: the table did not grow');
my ($upd, $hot) = split / /, $node->safe_psql('ticks', q{
	SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables
	 WHERE relid = 'headlessly.streams'::regclass});
is($upd - $upd0, 600, 'each append updated its head');
is($hot - $hot0, 600, 'and every update stayed on the page (HOT)');
is($node->safe_psql('ticks', 'SELECT count(*) FROM headlessly.check_state()'),
	'0', 'the heads are what the log gives');

$node->stop;
done_testing();
