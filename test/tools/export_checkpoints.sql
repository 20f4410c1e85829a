-- Export headlessly.checkpoints for test/tools/hl_verify.py, one per line:
--   psql -XAtq -v ON_ERROR_STOP=1 -f export_checkpoints.sql DBNAME > checkpoints.jsonl
SELECT headlessly.checkpoint_json(c) FROM headlessly.checkpoints c ORDER BY c.tenant, c.number;
