# Signed checkpoints, end to end: a key made with openssl, named by the
# superuser setting headlessly.signing_key_file; the checkpoints made by
# checkpoint() and by the background worker carry an Ed25519 signature that
# openssl verifies outside the database, over the checkpoint hash recomputed
# here from the bytes the README documents.  A non-superuser can neither set
# nor read the key's path; a missing, unreadable, malformed or misplaced key
# makes checkpoint() fail with a clear SQLSTATE and stores nothing (the
# events wait for the next good checkpoint); a tampered signature is named
# by verify().
use strict;
use warnings;
use Digest::SHA qw(sha256);
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('signing');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'headlessly_events'
headlessly.worker_naptime = 200ms
headlessly.checkpoint_interval = 0
});
$node->start;

# keys outside the data directory, as the README makes them
my $keydir = PostgreSQL::Test::Utils::tempdir();
sub openssl
{
	my @args = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'openssl', @args ], '>', \$stdout, '2>', \$stderr);
	return ($ok, $stdout // '', $stderr // '');
}
sub write_file
{
	my ($path, $bytes, $mode) = @_;
	open(my $fh, '>:raw', $path) or die "could not write $path: $!";
	print $fh $bytes;
	close($fh);
	chmod($mode // 0600, $path);
}
sub read_file
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "could not read $path: $!";
	local $/;
	my $bytes = <$fh>;
	close($fh);
	return $bytes;
}

my $key = "$keydir/sign.pem";
my ($ok, $out, $err) = openssl('genpkey', '-algorithm', 'ed25519', '-out', $key);
ok($ok, 'openssl made an Ed25519 key') or diag($err);
chmod(0600, $key);
($ok, $out, $err) = openssl('pkey', '-in', $key, '-pubout', '-out', "$keydir/sign.pub");
ok($ok, 'and its public key') or diag($err);
($ok, $out, $err) = openssl('pkey', '-pubin', '-in', "$keydir/sign.pub", '-outform', 'DER', '-out', "$keydir/sign.der");
ok($ok, 'in DER') or diag($err);
# an Ed25519 SubjectPublicKeyInfo ends with the 32 raw bytes
my $raw_public_key = substr(read_file("$keydir/sign.der"), -32);

$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events;
	SELECT headlessly.events_append('Contact.Created', 'c1', '{"n": 1}', tenant => 'acme');
	SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 2}', tenant => 'acme');
	SELECT headlessly.events_append('page_view', tenant => 'acme');
	SELECT headlessly.events_append('Contact.Created', 'x1', '{}', tenant => 'other');
	CREATE ROLE app LOGIN;
	GRANT USAGE ON SCHEMA headlessly TO app;
	GRANT EXECUTE ON FUNCTION headlessly.checkpoint() TO app;
});

sub set_key
{
	my ($path) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET headlessly.signing_key_file = '$path'");
	$node->reload;
	$node->poll_query_until('postgres', 'SHOW headlessly.signing_key_file', $path)
	  or die "the server did not take the key file $path";
}

sub checkpoint_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM headlessly.checkpoints');
}

# Check one checkpoint outside the database: its hash from the documented
# bytes, its public key, and its signature with openssl.
sub check_signed
{
	my ($tenant, $number, $what) = @_;
	my $row = $node->safe_psql('postgres', qq{
		SELECT encode(convert_to(tenant, 'UTF8'), 'hex'), number, encode(prev_hash, 'hex'),
		       encode(root, 'hex'), count, first_seq, last_seq, encode(hash, 'hex'),
		       coalesce(encode(signature, 'hex'), ''), coalesce(encode(public_key, 'hex'), '')
		  FROM headlessly.checkpoints WHERE tenant = '$tenant' AND number = $number});
	my ($t, $n, $prev, $root, $count, $first, $last, $hash, $sig, $pub) = split /\|/, $row;
	my $tenant_bytes = pack('H*', $t);
	my $bytes = "hl-checkpoint-v1\n"
	  . pack('N', length($tenant_bytes)) . $tenant_bytes
	  . pack('q>', $n) . pack('H*', $prev) . pack('H*', $root)
	  . pack('q>', $count) . pack('q>', $first) . pack('q>', $last);
	is(unpack('H*', sha256($bytes)), $hash, "$what: the checkpoint hash is SHA-256 of the documented bytes");
	is(length($sig), 128, "$what: signed (64 bytes)");
	is($pub, unpack('H*', $raw_public_key), "$what: the public key is the key file's");

	write_file("$keydir/hash.bin", pack('H*', $hash));
	write_file("$keydir/sig.bin", pack('H*', $sig));
	my ($verified, $stdout, $stderr) = openssl('pkeyutl', '-verify', '-rawin', '-pubin',
		'-inkey', "$keydir/sign.pub", '-in', "$keydir/hash.bin", '-sigfile', "$keydir/sig.bin");
	ok($verified && $stdout =~ /Signature Verified Successfully/,
		"$what: openssl pkeyutl -verify accepts the signature") or diag($stdout . $stderr);

	# the same check fails for another message: it is not vacuous
	my $other = pack('H*', $hash);
	substr($other, 0, 1) = chr(ord(substr($other, 0, 1)) ^ 1);
	write_file("$keydir/other.bin", $other);
	($verified, $stdout, $stderr) = openssl('pkeyutl', '-verify', '-rawin', '-pubin',
		'-inkey', "$keydir/sign.pub", '-in', "$keydir/other.bin", '-sigfile', "$keydir/sig.bin");
	ok(!$verified, "$what: openssl refuses the signature for another hash");
	return $sig;
}

# 1. checkpoint() signs; openssl agrees; digest() carries the same bytes
set_key($key);
is($node->safe_psql('postgres', 'SELECT headlessly.checkpoint()'), '2', 'checkpoint() sealed both tenants');
my $sig = check_signed('acme', 1, 'checkpoint() of acme');
check_signed('other', 1, 'checkpoint() of other');
is($node->safe_psql('postgres', q{
	SELECT encode(decode(d -> 'signature' ->> 0, 'base64'), 'hex') || '|' ||
	       encode(decode(d -> 'public_key' ->> 0, 'base64'), 'hex')
	  FROM (SELECT jsonb_path_query_array(headlessly.digest('acme'), '$.tenants[*]') AS t) x,
	       LATERAL (SELECT jsonb_build_object('signature', jsonb_agg(e -> 'signature'),
	                                          'public_key', jsonb_agg(e -> 'public_key')) AS d
	                  FROM jsonb_array_elements(x.t) e) y}),
	"$sig|" . unpack('H*', $raw_public_key), 'digest() carries the signature and public key in base64');
is($node->safe_psql('postgres', q{SELECT string_agg(format('%s|%s', tenant, ok), ',' ORDER BY tenant)
                                   FROM headlessly.verify()}),
	'acme|t,other|t', 'verify() accepts the signed checkpoints');

# 2. the worker's periodic checkpoints are signed with the same key
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 3}', tenant => 'acme')});
$node->safe_psql('postgres', q{ALTER SYSTEM SET headlessly.checkpoint_interval = '300ms'});
$node->reload;
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM headlessly.checkpoints WHERE tenant = 'acme' AND number = 2}, '1'),
	'the worker sealed the new event');
$node->safe_psql('postgres', q{ALTER SYSTEM SET headlessly.checkpoint_interval = 0});
$node->reload;
check_signed('acme', 2, "the worker's checkpoint");

# 3. the key's path: a non-superuser neither sets nor reads it
my %cases = (
	'SHOW headlessly.signing_key_file' => 'SHOW',
	q{SELECT current_setting('headlessly.signing_key_file')} => 'current_setting()',
	q{SET headlessly.signing_key_file = '/tmp/mine.pem'} => 'SET',
	q{SELECT set_config('headlessly.signing_key_file', '/tmp/mine.pem', false)} => 'set_config()',
	q{SET headlessly.signing_key_file = ''} => 'SET to nothing (unsigned checkpoints)',
);
for my $sql (sort keys %cases)
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql,
		extra_params => [ '-U', 'app', '-v', 'VERBOSITY=sqlstate' ]);
	like($stderr, qr/42501/, "app: $cases{$sql} is refused with 42501");
	unlike($stdout . $stderr, qr/\Q$key\E/, "app: $cases{$sql} does not show the path");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_settings WHERE name = 'headlessly.signing_key_file'},
		extra_params => [ '-U', 'app' ]),
	'0', 'app: pg_settings does not list it');
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{ALTER ROLE app SET headlessly.signing_key_file = '/tmp/mine.pem'},
	extra_params => [ '-U', 'app', '-v', 'VERBOSITY=sqlstate' ]);
like($stderr, qr/42501/, 'app: ALTER ROLE ... SET is refused');

# 4. a bad key: checkpoint() fails with a clear error, nothing is stored,
# and the events wait for the next good checkpoint
write_file("$keydir/garbage.pem", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
write_file("$keydir/unreadable.pem", read_file($key), 0000);
write_file("$keydir/open.pem", read_file($key), 0644);
($ok, $out, $err) = openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
	'-out', "$keydir/ec.pem");
ok($ok, 'openssl made an EC key') or diag($err);
chmod(0600, "$keydir/ec.pem");
my $in_data = $node->data_dir . '/sign.pem';
write_file($in_data, read_file($key));
mkdir("$keydir/dir");

my @bad = (
	[ "$keydir/missing.pem", '58P01', qr/does not exist/, 'a missing file' ],
	[ "$keydir/unreadable.pem", '42501', qr/could not read signing key file/, 'an unreadable file' ],
	[ "$keydir/garbage.pem", 'F0000', qr/signing key file/, 'a malformed file' ],
	[ "$keydir/ec.pem", 'F0000', qr/Ed25519/, 'a key that is not Ed25519' ],
	[ "$keydir/open.pem", 'F0000', qr/signing key file/, 'a key readable by others' ],
	[ "$keydir/dir", 'F0000', qr/not a regular file/, 'a directory' ],
	[ $in_data, 'F0000', qr/inside the data directory/, 'a key inside the data directory' ],
);
$node->safe_psql('postgres', q{SELECT headlessly.events_append('Contact.Updated', 'c1', '{"n": 4}', tenant => 'acme')});
my $before = checkpoint_count();
for my $case (@bad)
{
	my ($path, $sqlstate, $message, $what) = @$case;
	($ret, $stdout, $stderr) = $node->psql('postgres',
		"SET headlessly.signing_key_file = '$path'; SELECT headlessly.checkpoint();",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($stderr, qr/ERROR:  $sqlstate: /, "$what: checkpoint() fails with $sqlstate");
	like($stderr, $message, "$what: the message says why");
	is(checkpoint_count(), $before, "$what: no checkpoint stored");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM headlessly.events e
                                   WHERE NOT EXISTS (SELECT FROM headlessly.checkpoints c
                                                      WHERE c.tenant = e.tenant AND c.seqs @> e.seq)}),
	'1', 'the new event is still unsealed');

# the worker with a bad key: its checkpoints fail (logged), none is stored
my $log_offset = -s $node->logfile;
set_key("$keydir/garbage.pem");
$node->safe_psql('postgres', q{ALTER SYSTEM SET headlessly.checkpoint_interval = '300ms'});
$node->reload;
ok($node->wait_for_log(qr/ERROR:  signing key file "\Q$keydir\E\/garbage.pem"/, $log_offset),
	'the worker logs the bad key');
is(checkpoint_count(), $before, "the worker stored no checkpoint with a bad key");
set_key($key);
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM headlessly.checkpoints', $before + 1),
	'with the key fixed, the worker seals the waiting event');
$node->safe_psql('postgres', q{ALTER SYSTEM SET headlessly.checkpoint_interval = 0});
$node->reload;
check_signed('acme', 3, 'the checkpoint after the fix');

# 5. a tampered signature, by a superuser who bypassed the guard: verify names it
is($node->safe_psql('postgres', q{SELECT string_agg(format('%s|%s', tenant, ok), ',' ORDER BY tenant)
                                   FROM headlessly.verify()}),
	'acme|t,other|t', 'untouched: verify OK');
$node->safe_psql('postgres', q{
	UPDATE pg_trigger SET tgenabled = 'D'
	 WHERE tgrelid = 'headlessly.checkpoints'::regclass AND tgname LIKE 'headlessly_append_only%';
	UPDATE headlessly.checkpoints SET signature = set_byte(signature, 5, get_byte(signature, 5) # 1)
	 WHERE tenant = 'acme' AND number = 2;
	UPDATE pg_trigger SET tgenabled = 'A'
	 WHERE tgrelid = 'headlessly.checkpoints'::regclass AND tgname LIKE 'headlessly_append_only%';
});
is($node->safe_psql('postgres', q{SELECT format('%s|%s|%s|%s|%s|%s|%s', tenant, ok, target, version, event_id, seq, problem)
                                   FROM headlessly.verify() ORDER BY tenant}),
	"acme|f|||||altered\nother|t|||||", 'a flipped signature bit: verify says the checkpoint was altered');

done_testing();
