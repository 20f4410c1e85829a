# Table capture with this library on a database still at 0.1, and tables
# captured by 0.1: their triggers have two arguments (noun, id column) and
# keep appending to bare-id targets after the update, so the entities they
# made go on; a table captured again gets the prefixed targets.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('capture_versions');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION headlessly_events VERSION '0.1';
	-- what 0.1's capture() installed
	CREATE TABLE legacy (id int PRIMARY KEY, name text);
	CREATE TRIGGER headlessly_capture AFTER INSERT OR UPDATE OR DELETE ON legacy
	    FOR EACH ROW EXECUTE FUNCTION headlessly.capture_trigger('Legacy', 'id');
	CREATE TRIGGER headlessly_capture_truncate BEFORE TRUNCATE ON legacy
	    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.capture_trigger('Legacy', 'id');
	INSERT INTO legacy VALUES (1, 'one'), (2, 'two');
	-- captured with this library while the database is at 0.1
	CREATE TABLE fresh (id int PRIMARY KEY, name text);
	INSERT INTO fresh VALUES (1, 'one');
	SELECT headlessly.capture('fresh');
	INSERT INTO fresh VALUES (2, 'two');
});

my $entities = q{SELECT string_agg(target || '=' || (state->>'name'), ' ' ORDER BY target)
                   FROM headlessly.entities};
is($node->safe_psql('postgres', $entities), '1=one 2=two fresh_1=one fresh_2=two',
	'at 0.1: bare targets for the 0.1 trigger, prefixed ones for a new capture');

$node->safe_psql('postgres', 'ALTER EXTENSION headlessly_events UPDATE');
$node->safe_psql('postgres', q{
	UPDATE legacy SET name = 'uno' WHERE id = 1;
	DELETE FROM legacy WHERE id = 2;
	UPDATE fresh SET name = 'eins' WHERE id = 1;
});
is($node->safe_psql('postgres', $entities), '1=uno fresh_1=eins fresh_2=two',
	'after the update the 0.1 trigger goes on with the entities it made');

my ($ret, $stdout, $stderr) = $node->psql('postgres', q{SELECT headlessly.capture('legacy')});
like($stderr, qr/already captured/, 'capturing a 0.1-captured table again changes nothing');

$node->safe_psql('postgres', q{
	SELECT headlessly.uncapture('legacy');
	SELECT headlessly.capture('legacy');
	UPDATE legacy SET name = 'one again' WHERE id = 1;
});
is($node->safe_psql('postgres', q{
	SELECT string_agg(type || ' ' || target, ', ' ORDER BY seq) FROM headlessly.events
	 WHERE type LIKE 'Legacy.%' AND target LIKE 'legacy_%'}),
	'Legacy.Created legacy_1, Legacy.Updated legacy_1',
	'captured again, the table appends to prefixed targets');

$node->stop;
done_testing();
