-- What no role may do to an append-only table: every statement below would
-- change, hide or forge its rows, or switch its guard off, and is refused with
-- ZE001 (the SQLSTATE is echoed after each); then the harmless DDL that stays
-- allowed, and a check that the table is exactly as it was.
--
-- Set before including: tbl (the table), data_col (NOT NULL, with a
-- default), null_col (nullable text), id_col (identity), gen_col
-- (generated), scratch (a schema the current role may create in), and
-- fp_before (ddl_fingerprint(tbl) before).

SELECT pg_get_serial_sequence(:'tbl', :'id_col') AS id_seq,
       (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = :'tbl'::regclass) AS tbl_owner \gset

-- rows: directly and through MERGE
UPDATE :tbl SET :null_col = 'mallory';
\echo :SQLSTATE
DELETE FROM :tbl;
\echo :SQLSTATE
TRUNCATE :tbl;
\echo :SQLSTATE
MERGE INTO :tbl t USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE;
\echo :SQLSTATE

-- rules: appends silently dropped, UPDATE and DELETE answering 0 rows
CREATE RULE drop_inserts AS ON INSERT TO :tbl DO INSTEAD NOTHING;
\echo :SQLSTATE
CREATE RULE quiet_updates AS ON UPDATE TO :tbl DO INSTEAD NOTHING;
\echo :SQLSTATE
CREATE OR REPLACE RULE quiet_deletes AS ON DELETE TO :tbl DO INSTEAD NOTHING;
\echo :SQLSTATE

-- inheritance and partitions: a parent whose UPDATE and DELETE reach the
-- rows, children whose rows show in every read of the table
CREATE TABLE :scratch.any_parent ();
ALTER TABLE :tbl INHERIT :scratch.any_parent;
\echo :SQLSTATE
DELETE FROM :scratch.any_parent;
CREATE TABLE :scratch.by_actor (LIKE :tbl) PARTITION BY LIST (:null_col);
ALTER TABLE :scratch.by_actor ATTACH PARTITION :tbl DEFAULT;
\echo :SQLSTATE
UPDATE :scratch.by_actor SET :null_col = 'mallory';
CREATE TABLE :scratch.forged_child () INHERITS (:tbl);
\echo :SQLSTATE
CREATE SCHEMA ddl_nested CREATE TABLE forged_child () INHERITS (:tbl);
\echo :SQLSTATE
CREATE TABLE :scratch.forged_rows (LIKE :tbl);
ALTER TABLE :scratch.forged_rows INHERIT :tbl;
\echo :SQLSTATE

-- a crash would empty it
ALTER TABLE :tbl SET UNLOGGED;
\echo :SQLSTATE

-- names: the table, its schema, its columns (a new column could take the name)
ALTER TABLE :tbl RENAME COLUMN :data_col TO old_data;
\echo :SQLSTATE
ALTER TABLE :tbl RENAME TO renamed;
\echo :SQLSTATE
ALTER INDEX :tbl RENAME TO renamed;
\echo :SQLSTATE
ALTER TABLE :tbl SET SCHEMA :scratch;
\echo :SQLSTATE

-- how columns are filled, read and numbered
ALTER TABLE :tbl ALTER COLUMN :data_col SET DEFAULT '{"forged": true}';
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :data_col DROP DEFAULT;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :data_col DROP NOT NULL;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :gen_col SET NOT NULL;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :gen_col DROP EXPRESSION;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :id_col RESTART WITH 1;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :id_col SET INCREMENT BY -1;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :id_col DROP IDENTITY;
\echo :SQLSTATE
ALTER SEQUENCE :id_seq INCREMENT BY -1;
\echo :SQLSTATE
ALTER TABLE :tbl ALTER COLUMN :null_col TYPE text USING 'mallory';
\echo :SQLSTATE
ALTER TABLE :tbl DROP COLUMN :null_col;
\echo :SQLSTATE
ALTER TABLE :tbl SET ACCESS METHOD heap;
\echo :SQLSTATE

-- the guard's triggers
ALTER TABLE :tbl DISABLE TRIGGER ALL;
\echo :SQLSTATE
ALTER TABLE :tbl DISABLE TRIGGER headlessly_append_only_row;
\echo :SQLSTATE
ALTER TABLE :tbl ENABLE TRIGGER headlessly_append_only_row;
\echo :SQLSTATE
DROP TRIGGER headlessly_append_only_row ON :tbl;
\echo :SQLSTATE
CREATE OR REPLACE TRIGGER headlessly_append_only BEFORE UPDATE ON :tbl
    FOR EACH STATEMENT EXECUTE FUNCTION ddl_pass();
\echo :SQLSTATE
ALTER TRIGGER headlessly_append_only ON :tbl RENAME TO retired;
\echo :SQLSTATE
-- DROP EXTENSION plpgsql CASCADE would then take the trigger along
ALTER TRIGGER headlessly_append_only_row ON :tbl DEPENDS ON EXTENSION plpgsql;
\echo :SQLSTATE

-- harmless: storage, statistics, indexes, ownership, replication identity
ALTER TABLE :tbl ALTER COLUMN :data_col SET STATISTICS 500;
ALTER TABLE :tbl ALTER COLUMN :data_col SET STATISTICS -1;
ALTER TABLE :tbl SET (fillfactor = 90);
ALTER TABLE :tbl RESET (fillfactor);
ALTER TABLE :tbl SET TABLESPACE pg_default;
ALTER TABLE :tbl REPLICA IDENTITY FULL;
ALTER TABLE :tbl REPLICA IDENTITY DEFAULT;
ALTER TABLE :tbl OWNER TO :"tbl_owner";
ALTER TABLE :tbl ENABLE ALWAYS TRIGGER headlessly_append_only;
CREATE INDEX ddl_probe_idx ON :tbl (:null_col);
ALTER TABLE :tbl CLUSTER ON ddl_probe_idx;
ALTER TABLE :tbl SET WITHOUT CLUSTER;
SELECT split_part(:'tbl', '.', 1) AS tbl_schema \gset
DROP INDEX :"tbl_schema".ddl_probe_idx;
\echo :SQLSTATE

SELECT ddl_fingerprint(:'tbl') = :'fp_before' AS unchanged;
DROP TABLE :scratch.any_parent, :scratch.by_actor, :scratch.forged_rows;
