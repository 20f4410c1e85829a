# Types with invisible or white-space characters, and blank targets, are
# refused whatever the database encoding: the characters are looked at as
# Unicode, not as bytes.  In a SQL_ASCII database bytes have no declared
# meaning: those that are UTF-8 are checked as UTF-8, the rest are taken as
# visible.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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
		q{SELECT octet_length(type) FROM headlessly.events_append(convert_from('\x70616765a076696577', 'SQL_ASCII'))}),
	'9', 'sql_ascii: bytes that are not UTF-8 are taken as they are');

$node->stop;
done_testing();
