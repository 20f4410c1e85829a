# test/tools/webhook_receiver.py for TAP tests: start it, read what it
# recorded, stop it.
package WebhookReceiver;

use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

my $script = File::Spec->rel2abs(
	dirname(__FILE__) . '/../../tools/webhook_receiver.py');

# WebhookReceiver->new(secret => 'whsec_...')
sub new
{
	my ($class, %args) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $self = bless { dir => $dir, log => "$dir/requests.jsonl" }, $class;
	my @cmd = ('python3', $script, '--port-file', "$dir/port", '--log', $self->{log});
	push @cmd, '--secret', $args{secret} if defined $args{secret};
	$self->{handle} = IPC::Run::start(\@cmd, '>', "$dir/out", '2>', "$dir/err");
	for (1 .. 100)
	{
		last if -s "$dir/port";
		usleep(100_000);
	}
	die "webhook receiver did not start: " . slurp_file("$dir/err") unless -s "$dir/port";
	$self->{port} = slurp_file("$dir/port");
	return $self;
}

sub port { return $_[0]->{port} }

# the base URL; url('fail/2/sub') is http://127.0.0.1:PORT/fail/2/sub
sub url
{
	my ($self, $path) = @_;
	return "http://127.0.0.1:$self->{port}/$path";
}

# every request recorded so far, oldest first, as hashes
sub requests
{
	my ($self) = @_;
	return () unless -e $self->{log};
	my $json = JSON::PP->new;
	return map { $json->decode($_) } grep { /\S/ } split /\n/, slurp_file($self->{log});
}

# requests whose path starts with /$prefix
sub requests_to
{
	my ($self, $prefix) = @_;
	return grep { index($_->{path}, "/$prefix") == 0 } $self->requests;
}

# waits until $cond->(requests) is true, up to $seconds; returns whether it was
sub wait_for
{
	my ($self, $cond, $seconds) = @_;
	$seconds //= 30;
	for (1 .. $seconds * 10)
	{
		return 1 if $cond->($self->requests);
		usleep(100_000);
	}
	return 0;
}

# answers the requests held by /hold/$name/..., and those to come at once
sub release
{
	my ($self, $name) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
		Proto => 'tcp') or die "cannot reach the webhook receiver: $!";
	print $sock "GET /_release/$name HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	my $answer = do { local $/; <$sock> };
	close $sock;
	die "the webhook receiver did not release $name" unless ($answer // '') =~ m{^HTTP/1.1 200};
}

sub stop
{
	my ($self) = @_;
	return unless $self->{handle};
	$self->{handle}->kill_kill;
	$self->{handle} = undef;
}

sub DESTROY { $_[0]->stop }

1;
