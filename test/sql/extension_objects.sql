-- Every object of the extension, one line each, with its full definition:
-- the same on a fresh install and on one reached through upgrade scripts.
-- Used by test/t/005_upgrade.pl.
WITH ext AS (
    SELECT oid, extconfig, extcondition FROM pg_catalog.pg_extension
     WHERE extname = 'headlessly_events'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'headlessly'::pg_catalog.regnamespace
)
SELECT line FROM (
    -- member objects, with their access rights and comments
    SELECT pg_catalog.format('member %s acl=%s comment=%s',
               pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid),
               COALESCE((SELECT p.proacl::text FROM pg_catalog.pg_proc p
                          WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid),
                        (SELECT c.relacl::text FROM pg_catalog.pg_class c
                          WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = m.objid)),
               pg_catalog.obj_description(m.objid, (SELECT relname FROM pg_catalog.pg_class
                                                     WHERE oid = m.classid))) AS line
      FROM members m
    UNION ALL
    -- functions
    SELECT 'function ' || pg_catalog.pg_get_functiondef(p.oid)
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'headlessly'::pg_catalog.regnamespace AND p.prokind <> 'a'
    UNION ALL
    -- columns
    SELECT pg_catalog.format('column %s.%s %s %s collate=%s notnull=%s default=%s identity=%s generated=%s comment=%s',
               r.relname, a.attname, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod),
               (SELECT collname FROM pg_catalog.pg_collation WHERE oid = a.attcollation),
               a.attnotnull, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
               pg_catalog.col_description(r.oid, a.attnum))
      FROM rels r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
    UNION ALL
    -- relation options
    SELECT pg_catalog.format('relation %s kind=%s persistence=%s options=%s rls=%s/%s',
               c.relname, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity)
      FROM pg_catalog.pg_class c WHERE c.relnamespace = 'headlessly'::pg_catalog.regnamespace
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM pg_catalog.pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT pg_catalog.format('constraint %s.%s %s', r.relname, co.conname,
               pg_catalog.pg_get_constraintdef(co.oid))
      FROM pg_catalog.pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT pg_catalog.format('trigger %s enabled=%s', pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_catalog.pg_trigger t JOIN rels r ON r.oid = t.tgrelid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT pg_catalog.format('view %s %s', r.relname, pg_catalog.pg_get_viewdef(r.oid))
      FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT pg_catalog.format('policy %s.%s %s permissive=%s %s using=%s check=%s', r.relname, po.polname,
               po.polcmd, po.polpermissive, po.polroles::text, pg_catalog.pg_get_expr(po.polqual, po.polrelid),
               pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid))
      FROM pg_catalog.pg_policy po JOIN rels r ON r.oid = po.polrelid
    UNION ALL
    SELECT pg_catalog.format('event trigger %s %s %s %s %s', e.evtname, e.evtevent,
               e.evtfoid::pg_catalog.regprocedure, e.evtenabled, e.evttags)
      FROM pg_catalog.pg_event_trigger e
    UNION ALL
    -- what pg_dump keeps of the extension's tables
    SELECT pg_catalog.format('config %s %s', cfg.rel::pg_catalog.regclass, cond.c)
      FROM ext, pg_catalog.unnest(ext.extconfig) WITH ORDINALITY AS cfg(rel, n)
      JOIN pg_catalog.unnest(ext.extcondition) WITH ORDINALITY AS cond(c, n) USING (n)
) lines
ORDER BY line COLLATE "C";
