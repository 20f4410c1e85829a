# The DDL guard in sessions that have not loaded the library: there the
# event trigger alone runs the checks (the ProcessUtility hook is installed
# only when the library loads), so each attempt below is the first statement
# of a new session.  Also: which hole shared_preload_libraries closes, and
# that guarded tables -- partitions and inheritance children included --
# survive pg_dump and pg_restore with their guards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	SELECT headlessly.events_append('Contact.Created', 'c1', '{"name": "Alice"}');
	CREATE TABLE ledger (id int GENERATED ALWAYS AS IDENTITY, account text, amount int NOT NULL DEFAULT 0);
	INSERT INTO ledger (account, amount) VALUES ('a1', 10);
	SELECT headlessly.make_append_only('ledger');
	CREATE TABLE payments (id int, amount int) PARTITION BY RANGE (id);
	CREATE TABLE payments_1 PARTITION OF payments FOR VALUES FROM (0) TO (100);
	INSERT INTO payments VALUES (1, 10);
	SELECT headlessly.make_append_only('payments_1');
	CREATE TABLE books (title text);
	CREATE TABLE books_2024 () INHERITS (books);
	INSERT INTO books_2024 VALUES ('Dune');
	SELECT headlessly.make_append_only('books_2024');
	CREATE FUNCTION forge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.version := 42; RETURN NEW; END $$;
	CREATE TABLE spare ();
	CREATE TABLE by_tenant (LIKE headlessly.events) PARTITION BY LIST (tenant);
});

# what a guarded table's rows and guard look like, to compare afterwards
my $state = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	    SELECT (to_jsonb(e) - 'xact_id')::text AS x FROM headlessly.events e
	    UNION ALL SELECT l::text FROM ledger l
	    UNION ALL SELECT p::text FROM payments p
	    UNION ALL SELECT b::text FROM books b
	    UNION ALL SELECT format('%s %s %s', tgrelid::regclass, tgname, tgenabled) FROM pg_trigger
	     WHERE NOT tgisinternal
	    UNION ALL SELECT format('%s %s %s %s', attrelid::regclass, attname, attnotnull,
	                            pg_get_expr(adbin, adrelid))
	      FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
	     WHERE attrelid IN ('headlessly.events'::regclass, 'ledger'::regclass) AND attnum > 0
	    UNION ALL SELECT format('%s %s', oid::regclass, relpersistence) FROM pg_class
	     WHERE relnamespace IN ('headlessly'::regnamespace, 'public'::regnamespace)
	    UNION ALL SELECT format('%s inherits %s', inhrelid::regclass, inhparent::regclass) FROM pg_inherits
	    UNION ALL SELECT format('rule %s', rulename) FROM pg_rules WHERE schemaname <> 'pg_catalog'
	    UNION ALL SELECT pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'headlessly'::regnamespace
	    UNION ALL SELECT format('%s %s', evtname, evtenabled) FROM pg_event_trigger) s};
my $before = $node->safe_psql('postgres', $state);

my @attempts = (
	'ALTER TABLE headlessly.events DISABLE TRIGGER ALL',
	'DROP TRIGGER headlessly_append_only_row ON ledger',
	'CREATE TRIGGER zz_forge BEFORE INSERT ON headlessly.events FOR EACH ROW EXECUTE FUNCTION forge()',
	'CREATE OR REPLACE TRIGGER events_append BEFORE INSERT ON headlessly.events FOR EACH ROW EXECUTE FUNCTION forge()',
	'ALTER TRIGGER events_append ON headlessly.events RENAME TO a_first',
	'CREATE RULE quiet AS ON UPDATE TO ledger DO INSTEAD NOTHING',
	'ALTER TABLE ledger INHERIT spare',
	'ALTER TABLE by_tenant ATTACH PARTITION headlessly.events DEFAULT',
	'ALTER TABLE payments DETACH PARTITION payments_1',
	'ALTER TABLE books_2024 NO INHERIT books',
	'CREATE TABLE forged () INHERITS (headlessly.events)',
	'CREATE SCHEMA sneaky CREATE TABLE forged () INHERITS (ledger)',
	'ALTER TABLE ledger SET UNLOGGED',
	'ALTER TABLE ledger RENAME COLUMN amount TO old_amount',
	'ALTER TABLE books RENAME COLUMN title TO old_title',
	'ALTER TABLE ledger RENAME TO old_ledger',
	'ALTER INDEX ledger RENAME TO old_ledger',
	'ALTER TABLE ledger SET SCHEMA headlessly',
	'ALTER SCHEMA headlessly RENAME TO old_headlessly',
	'ALTER TABLE ledger ALTER COLUMN amount SET DEFAULT 100',
	'ALTER TABLE ledger ALTER COLUMN amount DROP NOT NULL',
	'ALTER TABLE ledger ALTER COLUMN id RESTART WITH 1',
	q{ALTER SEQUENCE ledger_id_seq INCREMENT BY -1},
	'ALTER TABLE payments DROP COLUMN amount',
	'ALTER TABLE headlessly.events ADD COLUMN note text',
	'DROP INDEX headlessly.events_stream_idx',
	'ALTER TABLE headlessly.events DROP CONSTRAINT events_pkey',
	q{CREATE OR REPLACE FUNCTION headlessly.append_only_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$},
	q{CREATE FUNCTION headlessly.events_append(type text) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$},
	'ALTER FUNCTION headlessly.append_only_guard() RENAME TO guard_off',
	'ALTER FUNCTION headlessly.events_append SECURITY DEFINER',
	'ALTER ROUTINE headlessly.make_append_only SET SCHEMA public',
	'ALTER FUNCTION headlessly.append_only_guard() DEPENDS ON EXTENSION plpgsql',
	'ALTER TRIGGER headlessly_append_only ON ledger DEPENDS ON EXTENSION plpgsql',
	'ALTER EXTENSION headlessly_events DROP FUNCTION headlessly.append_only_guard()',
	q{CREATE OR REPLACE VIEW headlessly.entities AS SELECT tenant, target, noun, version, '{}'::jsonb AS state, created_at, updated_at FROM headlessly.streams},
	'ALTER VIEW headlessly.entities RENAME TO old_entities',
	'DROP SEQUENCE ledger_id_seq CASCADE',);

foreach my $sql (@attempts)
{
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  ZE001/, "refused in a new session: $sql");
}
is($node->safe_psql('postgres', $state), $before, 'nothing changed');

# UPDATE and DELETE through a parent, and under a replication role
foreach my $sql ('UPDATE payments SET amount = 0', 'DELETE FROM books',
	'SET session_replication_role = replica; DELETE FROM books')
{
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  ZE001/, "refused: $sql");
}

# Without the library loaded, the event trigger cannot guard itself: a
# superuser can disable it in a new session (tamper evidence is the answer).
$node->safe_psql('postgres', 'ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE');
is($node->safe_psql('postgres', q{SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'headlessly_guard_ddl'}),
	'D', 'a new session without the library can disable the event trigger');
$node->safe_psql('postgres', 'ALTER EVENT TRIGGER headlessly_guard_ddl ENABLE ALWAYS');

# With the library preloaded, it cannot.
$node->append_conf('postgresql.conf', q{shared_preload_libraries = 'headlessly_events'});
$node->restart;
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER EVENT TRIGGER headlessly_guard_ddl DISABLE',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  ZE001/, 'with shared_preload_libraries, a new session cannot disable it');
($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP EVENT TRIGGER headlessly_guard_ddl',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  ZE001/, 'nor drop it');
is($node->safe_psql('postgres', $state), $before, 'nothing changed');

# Dump and restore keep every guard, partitions and children included.
my $dump = "${PostgreSQL::Test::Utils::tmp_check}/guarded.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore of guarded tables');
is($node->safe_psql('restored', $state), $before, 'restored as they were, guards included');
foreach my $sql ('UPDATE payments SET amount = 0', 'DELETE FROM books', 'TRUNCATE ledger')
{
	($ret, $stdout, $stderr) =
	  $node->psql('restored', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  ZE001/, "refused after the restore: $sql");
}

# DROP EXTENSION is the way out, in any session.
$node->safe_psql('restored', 'DROP EXTENSION headlessly_events CASCADE');
is($node->safe_psql('restored', 'DELETE FROM books RETURNING title'), 'Dune',
	'DROP EXTENSION ... CASCADE removes the guards');

$node->stop;
done_testing();
