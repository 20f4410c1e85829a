-- The noun capture() makes of a table name: words split on "_", the last
-- made singular by English rules (irregular and uncountable words, -ses,
-- -xes, -ches, -shes, -zzes, -ies, -ves, -oes, -us, -is, -ices, -men, ...),
-- each capitalised.
CREATE SCHEMA nouns;
CREATE TEMP TABLE noun_cases (table_name text PRIMARY KEY, noun text NOT NULL);
INSERT INTO noun_cases VALUES
    -- plain -s, and the words a table is usually named after
    ('contacts', 'Contact'), ('deals', 'Deal'), ('lead_events', 'LeadEvent'),
    ('order_items', 'OrderItem'), ('users', 'User'), ('employees', 'Employee'),
    ('issues', 'Issue'), ('messages', 'Message'), ('settings', 'Setting'),
    ('metrics', 'Metric'), ('photos', 'Photo'), ('days', 'Day'), ('keys', 'Key'),
    -- already singular
    ('contact', 'Contact'), ('status', 'Status'), ('address', 'Address'),
    ('campus', 'Campus'), ('analysis', 'Analysis'), ('office', 'Office'),
    ('specimens', 'Specimen'), ('specimen', 'Specimen'),
    -- -ies
    ('companies', 'Company'), ('categories', 'Category'), ('entries', 'Entry'),
    ('product_categories', 'ProductCategory'), ('entities', 'Entity'),
    ('movies', 'Movie'), ('cookies', 'Cookie'), ('zombies', 'Zombie'),
    ('ties', 'Tie'), ('pies', 'Pie'),
    -- sibilants: -sses, -xes, -ches, -shes, -zzes
    ('addresses', 'Address'), ('user_addresses', 'UserAddress'), ('classes', 'Class'),
    ('businesses', 'Business'), ('processes', 'Process'), ('boxes', 'Box'),
    ('taxes', 'Tax'), ('indexes', 'Index'), ('matches', 'Match'),
    ('batches', 'Batch'), ('branches', 'Branch'), ('caches', 'Cache'),
    ('niches', 'Niche'), ('headaches', 'Headache'), ('wishes', 'Wish'),
    ('hashes', 'Hash'), ('buzzes', 'Buzz'), ('quizzes', 'Quiz'),
    ('waltzes', 'Waltz'), ('sizes', 'Size'), ('prizes', 'Prize'),
    -- -us, -is, -as
    ('statuses', 'Status'), ('buses', 'Bus'), ('campuses', 'Campus'),
    ('viruses', 'Virus'), ('bonuses', 'Bonus'), ('houses', 'House'),
    ('warehouses', 'Warehouse'), ('causes', 'Cause'), ('uses', 'Use'),
    ('abuses', 'Abuse'), ('excuses', 'Excuse'), ('analyses', 'Analysis'),
    ('crises', 'Crisis'), ('diagnoses', 'Diagnosis'), ('hypotheses', 'Hypothesis'),
    ('bases', 'Base'), ('databases', 'Database'), ('cases', 'Case'),
    ('purchases', 'Purchase'), ('responses', 'Response'), ('licenses', 'License'),
    ('courses', 'Course'), ('aliases', 'Alias'), ('alias', 'Alias'),
    ('gases', 'Gas'), ('canvas', 'Canvas'), ('lenses', 'Lens'),
    ('cacti', 'Cactus'), ('radii', 'Radius'), ('alumni', 'Alumnus'),
    -- -ices
    ('invoices', 'Invoice'), ('prices', 'Price'), ('devices', 'Device'),
    ('services', 'Service'), ('indices', 'Index'), ('vertices', 'Vertex'),
    ('matrices', 'Matrix'), ('appendices', 'Appendix'),
    -- -ves
    ('wolves', 'Wolf'), ('halves', 'Half'), ('knives', 'Knife'), ('wives', 'Wife'),
    ('lives', 'Life'), ('shelves', 'Shelf'), ('bookshelves', 'Bookshelf'),
    ('archives', 'Archive'), ('objectives', 'Objective'), ('olives', 'Olive'),
    ('drives', 'Drive'), ('valves', 'Valve'), ('curves', 'Curve'), ('moves', 'Move'),
    -- -oes
    ('heroes', 'Hero'), ('potatoes', 'Potato'), ('echoes', 'Echo'),
    ('shoes', 'Shoe'), ('toes', 'Toe'), ('canoes', 'Canoe'), ('videos', 'Video'),
    -- -men, and other irregular plurals
    ('men', 'Man'), ('women', 'Woman'), ('salesmen', 'Salesman'),
    ('people', 'Person'), ('sales_people', 'SalesPerson'), ('salespeople', 'Salesperson'),
    ('children', 'Child'), ('grandchildren', 'Grandchild'), ('mice', 'Mouse'),
    ('dice', 'Die'), ('feet', 'Foot'), ('teeth', 'Tooth'), ('geese', 'Goose'),
    ('oxen', 'Ox'), ('criteria', 'Criterion'), ('phenomena', 'Phenomenon'),
    ('curricula', 'Curriculum'), ('formulae', 'Formula'),
    -- uncountable
    ('data', 'Data'), ('metadata', 'Metadata'), ('media', 'Media'), ('news', 'News'),
    ('series', 'Series'), ('time_series', 'TimeSeries'), ('species', 'Species'),
    ('equipment', 'Equipment'), ('information', 'Information'), ('sheep', 'Sheep'),
    ('fish', 'Fish'), ('software', 'Software'), ('feedback', 'Feedback'),
    ('analytics', 'Analytics'),
    -- letter case is kept
    ('Contacts', 'Contact'), ('COMPANIES', 'COMPANY'), ('leadEvents', 'LeadEvent'),
    ('Statuses', 'Status');

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT table_name FROM noun_cases LOOP
        EXECUTE format('CREATE TABLE nouns.%I (id int)', t);
        PERFORM headlessly.capture(format('nouns.%I', t)::regclass);
    END LOOP;
END $$;

-- the noun is the capture trigger's first argument
CREATE TEMP VIEW made_nouns AS
SELECT c.table_name, c.noun AS expected,
       split_part(encode(t.tgargs, 'escape'), '\000', 1) AS made
  FROM noun_cases c
  JOIN pg_trigger t ON t.tgrelid = format('nouns.%I', c.table_name)::regclass
                   AND t.tgname = 'headlessly_capture';
SELECT count(*) AS cases, count(*) FILTER (WHERE made = expected) AS right FROM made_nouns;
SELECT table_name, expected, made FROM made_nouns WHERE made IS DISTINCT FROM expected
 ORDER BY table_name;

SET client_min_messages = warning;
DROP SCHEMA nouns CASCADE;
RESET client_min_messages;
