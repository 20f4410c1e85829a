-- Rules every object of the extension keeps, whoever adds it: listed here
-- are the objects that break one (so every result below should be empty).

-- a function anyone may call says what it does
SELECT p.oid::regprocedure AS public_function_without_comment
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'headlessly_events')
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
   AND obj_description(p.oid, 'pg_proc') IS NULL
 ORDER BY 1::text;

-- trigger functions are internals: not callable by PUBLIC (except the
-- append-only guard and the capture trigger: CREATE TRIGGER needs EXECUTE
-- on them, and make_append_only() and capture() create them with the
-- rights of the table's owner)
SELECT p.oid::regprocedure AS trigger_function_public
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'headlessly_events')
   AND p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype)
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.oid NOT IN ('headlessly.append_only_guard()'::regprocedure,
                     'headlessly.capture_trigger()'::regprocedure)
 ORDER BY 1::text;

-- a function that runs with its owner's rights pins search_path
SELECT p.oid::regprocedure AS security_definer_without_search_path
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'headlessly_events')
   AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
 ORDER BY 1::text;

-- every table and view is described
SELECT c.oid::regclass AS relation_without_comment
  FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'headlessly_events')
   AND c.relkind IN ('r', 'v', 'p')
   AND obj_description(c.oid, 'pg_class') IS NULL
 ORDER BY 1::text;

-- nothing of the extension lives outside its schema
SELECT pg_describe_object(d.classid, d.objid, 0) AS outside_schema
  FROM pg_depend d
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
  LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'headlessly_events')
   AND d.deptype = 'e'
   AND coalesce(p.pronamespace, c.relnamespace, t.typnamespace, 'headlessly'::regnamespace)
       <> 'headlessly'::regnamespace
 ORDER BY 1;
