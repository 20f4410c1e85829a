-- Set-up shared by ddl_guard.sql and make_append_only.sql: psql settings,
-- the database's name (as :db), and what the tests compare before and after
-- an attempt -- everything that decides what a table's rows read as or how
-- its guard works, and the extension's own objects.
\pset null '(null)'
\set SHOW_CONTEXT never
SELECT current_database() AS db \gset

-- rows (those reached through children included), names, persistence,
-- columns, triggers, rules, inheritance, indexes, constraints, sequences
CREATE OR REPLACE FUNCTION ddl_fingerprint(rel regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    rows text;
BEGIN
    EXECUTE format('SELECT string_agg(t::text, E''\n'' ORDER BY t::text) FROM %s t', rel) INTO rows;
    RETURN concat_ws(E'\n', rows,
        (SELECT format('relation %s.%s kind=%s persistence=%s am=%s oftype=%s', n.nspname, c.relname,
                       c.relkind, c.relpersistence, c.relam, c.reloftype)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel),
        (SELECT string_agg(format('column %s %s notnull=%s default=%s identity=%s generated=%s',
                                  a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated),
                           E'\n' ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped),
        (SELECT string_agg(format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled),
                           E'\n' ORDER BY t.tgname)
           FROM pg_trigger t WHERE t.tgrelid = rel),
        (SELECT string_agg('rule ' || r.rulename, E'\n' ORDER BY r.rulename)
           FROM pg_rewrite r WHERE r.ev_class = rel),
        (SELECT string_agg(format('inherits %s from %s', i.inhrelid::regclass, i.inhparent::regclass),
                           E'\n' ORDER BY i.inhrelid, i.inhparent)
           FROM pg_inherits i WHERE rel IN (i.inhrelid, i.inhparent)),
        (SELECT string_agg('index ' || pg_get_indexdef(i.indexrelid), E'\n' ORDER BY i.indexrelid)
           FROM pg_index i WHERE i.indrelid = rel),
        (SELECT string_agg(format('constraint %s %s', co.conname, pg_get_constraintdef(co.oid)),
                           E'\n' ORDER BY co.conname)
           FROM pg_constraint co WHERE co.conrelid = rel),
        (SELECT string_agg(format('sequence %s increment=%s min=%s max=%s cycle=%s dependency=%s',
                                  s.seqrelid::regclass, s.seqincrement, s.seqmin, s.seqmax,
                                  s.seqcycle, d.deptype), E'\n' ORDER BY s.seqrelid)
           FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid
          WHERE d.classid = 'pg_class'::regclass AND d.refobjid = rel AND d.deptype IN ('a', 'i')));
END $$;

-- the extension's members, its functions' definitions, its event trigger
CREATE OR REPLACE FUNCTION ddl_extension_fingerprint() RETURNS text
LANGUAGE sql AS $$
    SELECT concat_ws(E'\n',
        (SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), E'\n'
                           ORDER BY pg_describe_object(d.classid, d.objid, d.objsubid))
           FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
          WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
            AND e.extname = 'headlessly_events'),
        (SELECT string_agg(pg_get_functiondef(p.oid), E'\n' ORDER BY p.oid)
           FROM pg_proc p WHERE p.pronamespace = 'headlessly'::regnamespace),
        (SELECT string_agg(format('event trigger %s %s %s %s', evtname, evtenabled, evtfoid::regproc, evttags),
                           E'\n' ORDER BY evtname)
           FROM pg_event_trigger),
        (SELECT string_agg(format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid)), E'\n' ORDER BY c.oid)
           FROM pg_class c WHERE c.relnamespace = 'headlessly'::regnamespace AND c.relkind = 'v'),
        (SELECT string_agg(format('relation %s', c.oid::regclass), E'\n' ORDER BY c.oid)
           FROM pg_class c WHERE c.relnamespace = 'headlessly'::regnamespace));
$$;

-- a trigger function that lets everything through
CREATE OR REPLACE FUNCTION ddl_pass() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
