# Types with invisible or white-space characters, and blank targets, are
# refused whatever the database encoding: the characters are looked at as
# Unicode, not as bytes.  In a SQL_ASCII database bytes have no declared
# meaning: those that are UTF-8 are checked as UTF-8, and an event with
# others is refused (its hash covers its text as UTF-8).  The outside
# verifier agrees with the hashes in a LATIN1 and a SQL_ASCII database.
use strict;
use warnings;
use File::Basename;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use HlExport;

my $node = PostgreSQL::Test::Cluster->new('encodings');
$node->init;
$node->start;

# $sql must fail with ZE003 in $db
sub refused
{
	my ($db, $sql, $name) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	like($stderr, qr/ERROR:  ZE003:/, "$db: $name is refused with ZE003");
}

sub events
{
	my ($db) = @_;
	return $node->safe_psql($db, 'SELECT count(*) FROM headlessly.events');
}

foreach my $encoding (qw(LATIN1 WIN1252 EUC_JP SQL_ASCII))
{
	my $db = lc $encoding;
	$node->safe_psql('postgres',
		"CREATE DATABASE $db TEMPLATE template0 ENCODING '$encoding' LOCALE 'C'");
	$node->safe_psql($db, 'CREATE EXTENSION headlessly_events');
	is($node->safe_psql($db, 'SHOW server_encoding'), $encoding, "$db is $encoding");
}

# LATIN1: no-break space is byte A0, soft hyphen AD, NEL 85
refused('latin1', q{SELECT headlessly.events_append(U&'page\00A0view')}, 'a no-break space');
refused('latin1', q{SELECT headlessly.events_append(U&'page\00ADview')}, 'a soft hyphen');
refused('latin1', q{SELECT headlessly.events_append(U&'page\0085view')}, 'a C1 control');
refused('latin1', q{INSERT INTO headlessly.events (type, target) VALUES ('page_view', U&'\00A0 ')},
	'a target of white space');
is(events('latin1'), '0', 'latin1: nothing stored');
is($node->safe_psql('latin1',
		q{SELECT type = U&'caf\00E9_ordered' FROM headlessly.events_append(U&'caf\00E9_ordered')}),
	't', 'latin1: a letter beyond ASCII is fine');

# WIN1252: A0 is a no-break space, but 80 is the euro sign, not a control
refused('win1252', q{SELECT headlessly.events_append(U&'price\00A0paid')}, 'a no-break space');
refused('win1252', q{SELECT headlessly.events_append('Contact.Created', U&'\00A0')}, 'a blank target');
is(events('win1252'), '0', 'win1252: nothing stored');
is($node->safe_psql('win1252',
		q{SELECT octet_length(type) FROM headlessly.events_append(U&'price_\20AC')}),
	'7', 'win1252: the euro sign (byte 80) is fine');

# EUC_JP: the ideographic space is two bytes, A1 A1
refused('euc_jp', q{SELECT headlessly.events_append(U&'\6CE8\6587\3000\4F5C\6210')},
	'an ideographic space');
refused('euc_jp', q{SELECT headlessly.events_append('page_view', U&'\3000')}, 'a blank target');
is(events('euc_jp'), '0', 'euc_jp: nothing stored');
is($node->safe_psql('euc_jp',
		q{SELECT length(type) FROM headlessly.events_append(U&'\6CE8\6587.\4F5C\6210')}),
	'5', 'euc_jp: Japanese letters are fine');

# SQL_ASCII: UTF-8 bytes are checked as UTF-8; other bytes have no meaning
refused('sql_ascii',
	q{SELECT headlessly.events_append(convert_from('\x70616765c2a076696577', 'SQL_ASCII'))},
	'a no-break space in UTF-8');
refused('sql_ascii',
	q{SELECT headlessly.events_append('page_view', convert_from('\xe38080', 'SQL_ASCII'))},
	'a target of an ideographic space in UTF-8');
is(events('sql_ascii'), '0', 'sql_ascii: nothing stored');
is($node->safe_psql('sql_ascii',
		q{SELECT octet_length(type) FROM headlessly.events_append(convert_from('\x706167655f76696577c3a9', 'SQL_ASCII'))}),
	'11', 'sql_ascii: a letter beyond ASCII in UTF-8 is fine');

# SQL_ASCII converts nothing, and the hash covers text as UTF-8: an event
# with other bytes (LATIN1 from a client, say) could be verified by nobody
# outside (the export cannot even print it), so it is refused
foreach my $bad (
	[ q{SELECT headlessly.events_append(convert_from('\x70616765a076696577', 'SQL_ASCII'))}, 'a type' ],
	[ q{SELECT headlessly.events_append('page_view', convert_from('\x636166e9', 'SQL_ASCII'))}, 'a target' ],
	[ q{SELECT headlessly.events_append('page_view', actor => convert_from('\x636166e9', 'SQL_ASCII'))}, 'an actor' ],
	[ q{SELECT headlessly.events_append('page_view', data => ('{"name": "' || convert_from('\x52656ee965', 'SQL_ASCII') || '"}')::jsonb)}, 'a string in data' ],
	[ q{SELECT headlessly.events_append('page_view', data => ('{"' || convert_from('\xe9', 'SQL_ASCII') || '": 1}')::jsonb)}, 'a key in data' ],
	[ q{SELECT headlessly.events_append('page_view', raw_payload => convert_from('\xff', 'SQL_ASCII'))}, 'a raw payload' ],
	[ q{INSERT INTO headlessly.events (type, metadata) VALUES ('page_view', ('{"url": "' || convert_from('\xe9', 'SQL_ASCII') || '"}')::jsonb)}, 'metadata by INSERT' ],
	[ q{SELECT count(*) FROM headlessly.events_append_batch(('[{"type": "ok"}, {"type": "page_view", "source": "' || convert_from('\xe9', 'SQL_ASCII') || '"}]')::jsonb)}, 'a source in a batch' ])
{
	refused('sql_ascii', $bad->[0], "text that is not UTF-8 ($bad->[1])");
}
is(events('sql_ascii'), '1', 'sql_ascii: nothing more stored');

# The outside verifier agrees with the hashes of events beyond ASCII, in a
# database that converts to UTF-8 (LATIN1) and in one that does not
my $tools = dirname(__FILE__) . '/../tools';
$node->safe_psql('latin1', q{
	SELECT headlessly.events_append(U&'Caf\00E9.Ordered', U&'caf\00E9_1', jsonb_build_object(U&'cr\00E8me', U&'br\00FBl\00E9e'),
	                                actor => U&'Ren\00E9e', raw_payload => U&'\00BFs\00ED?');
	SELECT headlessly.checkpoint();});
$node->safe_psql('sql_ascii', 'SELECT headlessly.checkpoint()');
foreach my $db (qw(latin1 sql_ascii))
{
	my $dir = $node->basedir;
	export_events($node, $db, "$dir/$db.jsonl");
	my ($out, $err) = run_command([ 'python3', "$tools/hl_verify.py", 'verify', "$dir/$db.jsonl" ]);
	my $n = $node->safe_psql($db, 'SELECT count(*) FROM headlessly.events');
	like($out, qr/^default\tt\t$n\t/m, "$db: hl_verify.py agrees with the stored hashes of its $n events");
	is($node->safe_psql($db, 'SELECT ok FROM headlessly.verify()'), 't', "$db: verify() is OK");
}

$node->stop;
done_testing();
