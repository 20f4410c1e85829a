# A database's log and checkpoints written to files, as a user exports them
# for test/tools/hl_verify.py (test/tools/export.sql, checkpoint_json()).
package HlExport;

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(export_events export_checkpoints);

my $export_sql = dirname(__FILE__) . '/../../tools/export.sql';

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh "$text\n";
	close $fh;
}

# export_events($node, $db, $path): every event, one JSON object a line
sub export_events
{
	my ($node, $db, $path) = @_;
	my $events = $node->safe_psql($db, slurp_file($export_sql));
	$events =~ s/^SET\n//mg;
	write_file($path, $events);
}

# export_checkpoints($node, $db, $path): every checkpoint, one a line
sub export_checkpoints
{
	my ($node, $db, $path) = @_;
	write_file($path, $node->safe_psql($db,
		'SELECT headlessly.checkpoint_json(c) FROM headlessly.checkpoints c ORDER BY tenant, number'));
}

1;
