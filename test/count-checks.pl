#!/usr/bin/perl
# Counts the checks of one suite's run from what it printed, for
# run-tests.sh's summary.  Prints "UNITS CHECKS PASSED FAILED".
#
#   count-checks.pl regress OUTPUT
#       units and checks: the tests pg_regress ran
#   count-checks.pl isolation OUTPUT EXPECTED_DIR RESULTS_DIR
#       units: specs; checks: their permutations, each compared with its
#       part of the expected output when the spec failed
#   count-checks.pl tap OUTPUT
#       units: test files; checks: their assertions (a file that died or
#       exited non-zero counts one failure more)
#   count-checks.pl tamper OUTPUT
#       checks: test/tamper/run.sh's (frontend, outside verifier, backend)
#
# Both pg_regress formats are read: "test name ... ok" (PostgreSQL 15) and
# "ok 1 - name" (16 and later).  A suite that printed no result counts as one
# failure, so a run that breaks early never looks like a smaller pass.
use strict;
use warnings;

my ($suite, $output, @dirs) = @ARGV;
die "usage: $0 regress|isolation|tap OUTPUT [EXPECTED_DIR RESULTS_DIR]\n"
	unless $suite && $output;

my @lines;
if (open my $fh, '<', $output)
{
	@lines = <$fh>;
	close $fh;
}

# name => 1 (passed) or 0 (failed), in the order pg_regress ran them
sub regress_results
{
	my (@order, %status);
	for (@lines)
	{
		my ($name, $ok);
		if (/^(?:test\s+)?\s*(\S+)\s+\.\.\.\s+(ok|FAILED|failed \(ignored\))/)
		{
			($name, $ok) = ($1, $2 ne 'FAILED');
		}
		elsif (/^(not )?ok\s+\d+\s+[-+]\s+(\S+)/)
		{
			($name, $ok) = ($2, !defined $1 || /# \(ignored\)/);
		}
		next unless defined $name;
		push @order, $name unless exists $status{$name};
		$status{$name} = $ok ? 1 : 0;
	}
	return (\@order, \%status);
}

sub slurp
{
	my ($file) = @_;
	open my $fh, '<', $file or return undef;
	local $/;
	return scalar <$fh>;
}

# the parts of an isolation output, one per permutation
sub permutations
{
	my ($text) = @_;
	return () unless defined $text;
	my @parts = split /^(?=starting permutation:)/m, $text;
	shift @parts if @parts && $parts[0] !~ /^starting permutation:/;
	return @parts;
}

my ($units, $checks, $passed, $failed) = (0, 0, 0, 0);

if ($suite eq 'regress')
{
	my ($order, $status) = regress_results();
	$units = $checks = scalar @$order;
	$passed += $status->{$_} for @$order;
	$failed = $checks - $passed;
}
elsif ($suite eq 'isolation')
{
	my ($expected_dir, $results_dir) = @dirs;
	my ($order, $status) = regress_results();
	$units = scalar @$order;
	for my $spec (@$order)
	{
		my @got = permutations(slurp("$results_dir/$spec.out"));
		if ($status->{$spec})
		{
			$passed += @got;
			$checks += @got;
			next;
		}
		my @want = permutations(slurp("$expected_dir/$spec.out"));
		my $n = @want > @got ? scalar @want : scalar @got;
		$n = 1 if $n == 0;
		for my $i (0 .. $n - 1)
		{
			if (defined $want[$i] && defined $got[$i] && $want[$i] eq $got[$i])
			{
				$passed++;
			}
			else
			{
				$failed++;
			}
		}
		$checks += $n;
	}
}
elsif ($suite eq 'tap')
{
	my ($files, $tests, $file, %extra);
	for (@lines)
	{
		($files, $tests) = ($1, $2) if /^Files=(\d+), Tests=(\d+)/;
		if (/^(\S+)\s+\(Wstat: (\d+)(?: \(.*?\))? Tests: (\d+) Failed: (\d+)\)/)
		{
			my ($wstat, $file_failed) = ($2, $4);
			$file = $1;
			$failed += $file_failed;
			$passed -= $file_failed;
			# died or exited non-zero with no assertion failed: one failure more
			$extra{$file} = 1 if $file_failed == 0 && $wstat != 0;
		}
		# a plan not kept, no plan at all
		$extra{$file} = 1 if defined $file && /^\s+Parse errors:/;
	}
	$failed += keys %extra;
	if (defined $files)
	{
		$units = $files;
		$passed += $tests;
		$checks = $tests;
	}
}
elsif ($suite eq 'tamper')
{
	# test/tamper/run.sh ends with "tamper: N passed, N failed"
	for (@lines)
	{
		($passed, $failed) = ($1, $2) if /^tamper: (\d+) passed, (\d+) failed/;
	}
	$checks = $passed + $failed;
	$units = $checks > 0 ? 1 : 0;
}
else
{
	die "unknown suite $suite\n";
}

# nothing printed: the suite broke before running anything
$failed = 1 if $units == 0;
print "$units $checks $passed $failed\n";
