# Appends in a prepared transaction (two-phase commit).  A notify
# subscription, anyone's, does not make PREPARE TRANSACTION fail (PostgreSQL
# refuses to prepare a transaction that has called NOTIFY: the extension
# NOTIFYs as the transaction commits); the prepared events are not
# NOTIFYed, but reach the other subscriptions after COMMIT PREPARED, in
# order.  While the prepared transaction holds consumers back, the lag of
# subscription_status() shows what waits.  NOTIFY still follows
# subtransactions: a rolled-back savepoint's appends are not announced.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('prepared');
$node->init;
$node->append_conf('postgresql.conf', "max_prepared_transactions = 4\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	CREATE ROLE listener;
	GRANT USAGE ON SCHEMA headlessly TO listener;
	GRANT SELECT ON headlessly.events TO listener;
	SELECT name FROM headlessly.subscribe('feed', 'Pn.*');
	SET ROLE listener;
	SELECT name FROM headlessly.subscribe('pn', notify => true);
});

# another role's notify subscription matches the append: PREPARE works
my ($ret, $out, $err) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	BEGIN;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_1', '{"n": 1}');
	PREPARE TRANSACTION 'two_phase';});
is($ret, 0, 'PREPARE TRANSACTION of an append a notify subscription matches works');
unlike($err, qr/ERROR/, 'no error') or diag($err);
is($node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts'), 'two_phase', 'the transaction is prepared');

# a later transaction commits meanwhile: its event waits, and the lag says so
$node->safe_psql('postgres', q{SELECT version FROM headlessly.events_append('Pn.Created', 'pn_2', '{"n": 2}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.read('feed')}), '0',
	'nothing is handed out while the prepared transaction is open');
is($node->safe_psql('postgres', q{SELECT lag_events FROM headlessly.subscription_status() WHERE name = 'feed'}),
	'1', 'the lag counts the committed event that waits for it');

$node->safe_psql('postgres', q{COMMIT PREPARED 'two_phase'});
is($node->safe_psql('postgres', q{SELECT string_agg(target, ',' ORDER BY xact_id, seq) FROM headlessly.read('feed')}),
	'pn_1,pn_2', 'after COMMIT PREPARED both are handed out, the prepared one first');

# NOTIFY at commit follows savepoints and rollbacks
$out = $node->safe_psql('postgres', q{
	LISTEN pn;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_3');
	BEGIN;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_4');
	SAVEPOINT a;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_5');
	SAVEPOINT a2;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_5b');
	RELEASE a2;
	ROLLBACK TO a;
	SAVEPOINT b;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_6');
	SAVEPOINT c;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_7');
	RELEASE c;
	RELEASE b;
	COMMIT;
	BEGIN;
	SELECT version FROM headlessly.events_append('Pn.Created', 'pn_8');
	ROLLBACK;
	SELECT 1;});
my @heard;
while ($out =~ /Asynchronous notification "pn" with payload "(.*?)" received from server process/g)
{
	my ($target) = $1 =~ /"target": "([^"]*)"/;
	push @heard, $target;
}
is(join(',', @heard), 'pn_3,pn_4,pn_6,pn_7',
	'NOTIFY at commit: the committed appends, in order, none of a rolled-back savepoint or transaction');
is($node->safe_psql('postgres', q{SELECT string_agg(target, ',' ORDER BY seq) FROM headlessly.events}),
	'pn_1,pn_2,pn_3,pn_4,pn_6,pn_7', 'the log holds what committed');

$node->stop;
done_testing();
