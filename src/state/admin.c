/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  check_state() and rebuild_state(): the derived tables against the log.
 *
 * The log is the truth; stream heads (and so headlessly.entities) and
 * snapshots are derived from it.  Both functions replay every stream of
 * the log (or of one tenant) from its first event with the rules of
 * replay.c.  check_state() reports every head or snapshot that differs from
 * the replay, every head missing and every one without events;
 * rebuild_state() rewrites the heads that differ, removes those without
 * events, and writes all snapshots afresh at the current
 * headlessly.snapshot_interval.
 *
 * A head also carries the hash of its stream's last event (schema 0.2), on
 * which the next append chains: both functions take it from the log, as
 * stored (verify() is what recomputes hashes), and the xact_id of that
 * event, after which the next append is ordered (NULL for an event appended
 * before 0.2, whose xact_id is 0).  On a schema still at 0.1 there are
 * neither, and the queries leave them out.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_check_state);
PG_FUNCTION_INFO_V1(headlessly_rebuild_state);

#define STREAMS_QUERY_FROM \
	"  FROM " HL_SCHEMA ".events" \
	" WHERE target IS NOT NULL" \
	"   AND ($1 IS NULL OR tenant OPERATOR(pg_catalog.=) $1)" \
	" ORDER BY tenant, target, version"
#define STREAMS_QUERY \
	"SELECT tenant, target, version, type, data, recorded_at, hash, xact_id" STREAMS_QUERY_FROM
#define STREAMS_QUERY_01 \
	"SELECT tenant, target, version, type, data, recorded_at" STREAMS_QUERY_FROM
#define COL_HASH 7
#define COL_XACT_ID 8

/* the expected head, as jsonb, beside the stored one */
#define HEAD_QUERY_FROM \
	"  FROM (SELECT) AS one" \
	"  LEFT JOIN " HL_SCHEMA ".streams s" \
	"    ON s.tenant OPERATOR(pg_catalog.=) $1 AND s.target OPERATOR(pg_catalog.=) $2"
/* the extension's columns only: the owner may have added some of its own */
#define STORED_HEAD_01 \
	"'version', s.version, 'last_recorded_at', s.last_recorded_at, 'noun', s.noun," \
	" 'state', s.state, 'created_at', s.created_at, 'updated_at', s.updated_at"
#define HEAD_QUERY \
	"SELECT CASE WHEN s.target IS NOT NULL THEN pg_catalog.jsonb_build_object(" \
	STORED_HEAD_01 ", 'hash', s.hash, 'xact_id', s.xact_id) END," \
	"       pg_catalog.jsonb_build_object('version', $3, 'last_recorded_at', $4, 'noun', $5," \
	"                                     'state', $6, 'created_at', $7, 'updated_at', $8," \
	"                                     'hash', $9, 'xact_id', $10)" \
	HEAD_QUERY_FROM
#define HEAD_QUERY_01 \
	"SELECT CASE WHEN s.target IS NOT NULL THEN pg_catalog.jsonb_build_object(" \
	STORED_HEAD_01 ") END," \
	"       pg_catalog.jsonb_build_object('version', $3, 'last_recorded_at', $4, 'noun', $5," \
	"                                     'state', $6, 'created_at', $7, 'updated_at', $8)" \
	HEAD_QUERY_FROM

#define SNAPSHOTS_QUERY \
	"SELECT version, pg_catalog.to_jsonb(sn) OPERATOR(pg_catalog.-) 'tenant'::pg_catalog.text" \
	"                                        OPERATOR(pg_catalog.-) 'target'::pg_catalog.text" \
	"  FROM " HL_SCHEMA ".snapshots sn" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1 AND target OPERATOR(pg_catalog.=) $2" \
	" ORDER BY version"

#define EXPECTED_SNAPSHOT_QUERY \
	"SELECT pg_catalog.jsonb_build_object('version', $1, 'recorded_at', $2, 'state', $3," \
	"                                     'created_at', $4, 'updated_at', $5)"

#define ORPHAN_HEADS_QUERY \
	"SELECT s.tenant, s.target, s.version, pg_catalog.to_jsonb(s)" \
	"  FROM " HL_SCHEMA ".streams s" \
	" WHERE ($1 IS NULL OR s.tenant OPERATOR(pg_catalog.=) $1)" \
	"   AND NOT EXISTS (SELECT FROM " HL_SCHEMA ".events e" \
	"                    WHERE e.tenant OPERATOR(pg_catalog.=) s.tenant" \
	"                      AND e.target OPERATOR(pg_catalog.=) s.target)"

#define ORPHAN_SNAPSHOTS_QUERY \
	"SELECT sn.tenant, sn.target, sn.version, pg_catalog.to_jsonb(sn)" \
	"  FROM " HL_SCHEMA ".snapshots sn" \
	" WHERE ($1 IS NULL OR sn.tenant OPERATOR(pg_catalog.=) $1)" \
	"   AND NOT EXISTS (SELECT FROM " HL_SCHEMA ".events e" \
	"                    WHERE e.tenant OPERATOR(pg_catalog.=) sn.tenant" \
	"                      AND e.target OPERATOR(pg_catalog.=) sn.target)"

#define UPSERT_HEAD_QUERY \
	"INSERT INTO " HL_SCHEMA ".streams AS s" \
	" (tenant, target, version, last_recorded_at, noun, state, created_at, updated_at, hash," \
	"  xact_id)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)" \
	" ON CONFLICT (tenant, target) DO UPDATE" \
	"   SET version = excluded.version, last_recorded_at = excluded.last_recorded_at," \
	"       noun = excluded.noun, state = excluded.state," \
	"       created_at = excluded.created_at, updated_at = excluded.updated_at," \
	"       hash = excluded.hash, xact_id = excluded.xact_id" \
	" WHERE ROW(s.version, s.last_recorded_at, s.noun, s.state, s.created_at, s.updated_at," \
	"           s.hash, s.xact_id)" \
	"       IS DISTINCT FROM" \
	"       ROW(excluded.version, excluded.last_recorded_at, excluded.noun, excluded.state," \
	"           excluded.created_at, excluded.updated_at, excluded.hash, excluded.xact_id)"
#define UPSERT_HEAD_QUERY_01 \
	"INSERT INTO " HL_SCHEMA ".streams AS s" \
	" (tenant, target, version, last_recorded_at, noun, state, created_at, updated_at)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)" \
	" ON CONFLICT (tenant, target) DO UPDATE" \
	"   SET version = excluded.version, last_recorded_at = excluded.last_recorded_at," \
	"       noun = excluded.noun, state = excluded.state," \
	"       created_at = excluded.created_at, updated_at = excluded.updated_at" \
	" WHERE ROW(s.version, s.last_recorded_at, s.noun, s.state, s.created_at, s.updated_at)" \
	"       IS DISTINCT FROM" \
	"       ROW(excluded.version, excluded.last_recorded_at, excluded.noun, excluded.state," \
	"           excluded.created_at, excluded.updated_at)"

#define DELETE_SNAPSHOTS_QUERY \
	"DELETE FROM " HL_SCHEMA ".snapshots WHERE ($1 IS NULL OR tenant OPERATOR(pg_catalog.=) $1)"

#define DELETE_ORPHAN_HEADS_QUERY \
	"DELETE FROM " HL_SCHEMA ".streams s" \
	" WHERE ($1 IS NULL OR s.tenant OPERATOR(pg_catalog.=) $1)" \
	"   AND NOT EXISTS (SELECT FROM " HL_SCHEMA ".events e" \
	"                    WHERE e.tenant OPERATOR(pg_catalog.=) s.tenant" \
	"                      AND e.target OPERATOR(pg_catalog.=) s.target)"

/* [0]: schema 0.2, with the heads' hash and xact_id; [1]: a schema still at 0.1 */
static SPIPlanPtr streams_plan[2] = {NULL, NULL};
static SPIPlanPtr head_plan[2] = {NULL, NULL};
static SPIPlanPtr snapshots_plan = NULL;
static SPIPlanPtr expected_snapshot_plan = NULL;
static SPIPlanPtr orphan_heads_plan = NULL;
static SPIPlanPtr orphan_snapshots_plan = NULL;
static SPIPlanPtr upsert_head_plan[2] = {NULL, NULL};
static SPIPlanPtr delete_snapshots_plan = NULL;
static SPIPlanPtr delete_orphan_heads_plan = NULL;

/* One stream being replayed. */
typedef struct StreamWork
{
	bool		rebuild;		/* else check */
	bool		with_hash;		/* the schema has events.hash, streams.hash and
								 * streams.xact_id (0.2) */
	HlResultSet *rs;			/* check: where problems go */
	text	   *tenant;
	text	   *target;
	char	   *noun;
	HlReplay	r;
	/* the stored hash of the stream's last event so far */
	bool		has_hash;
	uint8		hash[HL_HEAD_HASH_LEN];
	/* the xact_id of the stream's last event so far; invalid: none (0.1) */
	FullTransactionId xact_id;
	/* check: stored snapshots, in version order */
	int			nsnapshots;
	int			next_snapshot;
	int64	   *snapshot_versions;
	Jsonb	  **snapshot_rows;
	/* counts */
	int64		streams;
	int64		changed;
	int64		snapshots;
} StreamWork;

static void
report(StreamWork *w, text *tenant, text *target, int64 version, const char *problem,
	   Jsonb *stored, Jsonb *expected)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = PointerGetDatum(tenant);
	values[1] = PointerGetDatum(target);
	values[2] = Int64GetDatum(version);
	values[3] = CStringGetTextDatum(problem);
	values[4] = stored ? JsonbPGetDatum(stored) : (Datum) 0;
	nulls[4] = stored == NULL;
	values[5] = expected ? JsonbPGetDatum(expected) : (Datum) 0;
	nulls[5] = expected == NULL;
	tuplestore_putvalues(w->rs->store, w->rs->tupdesc, values, nulls);
}

static bool
jsonb_same(Jsonb *a, Jsonb *b)
{
	return DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

/* the replay's head as the 10 arguments of HEAD_QUERY / UPSERT_HEAD_QUERY (8 at 0.1) */
static void
head_args(StreamWork *w, Datum *args, char *nulls)
{
	Jsonb	   *state = hl_replay_state(&w->r);

	memset(nulls, ' ', 10);
	args[0] = PointerGetDatum(w->tenant);
	args[1] = PointerGetDatum(w->target);
	args[2] = Int64GetDatum(w->r.version);
	args[3] = TimestampTzGetDatum(w->r.last_recorded_at);
	if (!w->r.has_last_recorded_at)
		nulls[3] = 'n';
	if (w->noun)
		args[4] = CStringGetTextDatum(w->noun);
	else
		nulls[4] = 'n';
	if (state)
		args[5] = JsonbPGetDatum(state);
	else
		nulls[5] = 'n';
	args[6] = TimestampTzGetDatum(w->r.created_at);
	if (!w->r.has_created_at)
		nulls[6] = 'n';
	args[7] = TimestampTzGetDatum(w->r.updated_at);
	if (!w->r.has_updated_at)
		nulls[7] = 'n';
	if (w->has_hash)
	{
		bytea	   *hash = palloc(VARHDRSZ + HL_HEAD_HASH_LEN);

		SET_VARSIZE(hash, VARHDRSZ + HL_HEAD_HASH_LEN);
		memcpy(VARDATA(hash), w->hash, HL_HEAD_HASH_LEN);
		args[8] = PointerGetDatum(hash);
	}
	else
		nulls[8] = 'n';
	if (FullTransactionIdIsValid(w->xact_id))
		args[9] = FullTransactionIdGetDatum(w->xact_id);
	else
		nulls[9] = 'n';
}

/* Does the schema have the heads' hash and xact_id (0.2), or is it still at 0.1? */
static bool
schema_has_hash(void)
{
	Oid			streams = get_relname_relid("streams", get_namespace_oid(HL_SCHEMA, false));

	return OidIsValid(streams) && get_attnum(streams, "hash") != InvalidAttrNumber &&
		get_attnum(streams, "xact_id") != InvalidAttrNumber;
}

static void
start_stream(void *arg, text *tenant, text *target, HeapTuple tup, TupleDesc desc)
{
	StreamWork *w = arg;

	w->tenant = tenant;
	w->target = target;
	hl_replay_init(&w->r);
	w->has_hash = false;
	w->xact_id = InvalidFullTransactionId;
	w->noun = NULL;
	w->nsnapshots = w->next_snapshot = 0;
	w->streams++;

	if (!w->rebuild)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		args[2] = {PointerGetDatum(w->tenant), PointerGetDatum(w->target)};
		int			rc;
		bool		isnull;

		hl_prepare_cached(&snapshots_plan, SNAPSHOTS_QUERY, 2, types);
		rc = SPI_execute_plan(snapshots_plan, args, NULL, true, 0);
		hl_spi_check(rc, SPI_OK_SELECT, SNAPSHOTS_QUERY);
		w->nsnapshots = SPI_processed;
		w->snapshot_versions = palloc(Max(w->nsnapshots, 1) * sizeof(int64));
		w->snapshot_rows = palloc(Max(w->nsnapshots, 1) * sizeof(Jsonb *));
		for (int i = 0; i < w->nsnapshots; i++)
		{
			w->snapshot_versions[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
																  SPI_tuptable->tupdesc, 1, &isnull));
			w->snapshot_rows[i] = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[i],
																   SPI_tuptable->tupdesc, 2, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);
	}
}

/* after each event: the snapshot of this version, written or checked */
static void
at_version(StreamWork *w)
{
	if (w->rebuild)
	{
		if (hl_snapshot_interval > 0 && w->noun != NULL &&
			w->r.version % hl_snapshot_interval == 0)
		{
			hl_snapshot_write(w->tenant, w->target, &w->r, hl_replay_state(&w->r));
			w->snapshots++;
		}
		return;
	}

	while (w->next_snapshot < w->nsnapshots &&
		   w->snapshot_versions[w->next_snapshot] <= w->r.version)
	{
		int			i = w->next_snapshot++;

		if (w->snapshot_versions[i] == w->r.version)
		{
			Oid			types[5] = {INT8OID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
			Datum		args[5];
			char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
			Jsonb	   *state = hl_replay_state(&w->r);
			Jsonb	   *expected;
			bool		isnull;
			int			rc;

			args[0] = Int64GetDatum(w->r.version);
			args[1] = TimestampTzGetDatum(w->r.last_recorded_at);
			args[2] = state ? JsonbPGetDatum(state) : (Datum) 0;
			nulls[2] = state ? ' ' : 'n';
			args[3] = TimestampTzGetDatum(w->r.created_at);
			nulls[3] = w->r.has_created_at ? ' ' : 'n';
			args[4] = TimestampTzGetDatum(w->r.updated_at);
			nulls[4] = w->r.has_updated_at ? ' ' : 'n';
			hl_prepare_cached(&expected_snapshot_plan, EXPECTED_SNAPSHOT_QUERY, 5, types);
			rc = SPI_execute_plan(expected_snapshot_plan, args, nulls, true, 1);
			hl_spi_check(rc, SPI_OK_SELECT, EXPECTED_SNAPSHOT_QUERY);
			expected = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 1, &isnull));
			SPI_freetuptable(SPI_tuptable);
			if (!jsonb_same(w->snapshot_rows[i], expected))
				report(w, w->tenant, w->target, w->r.version, "snapshot differs from the log",
					   w->snapshot_rows[i], expected);
		}
		else
			report(w, w->tenant, w->target, w->snapshot_versions[i],
				   "snapshot of a version the log does not have", w->snapshot_rows[i], NULL);
	}
}

static void
finish_stream(void *arg)
{
	StreamWork *w = arg;
	Oid			types[10] = {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID,
	JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, BYTEAOID, XID8OID};
	Datum		args[10];
	char		nulls[10];
	int			nargs = w->with_hash ? 10 : 8;
	int			v01 = w->with_hash ? 0 : 1;
	int			rc;

	head_args(w, args, nulls);

	if (w->rebuild)
	{
		const char *query = w->with_hash ? UPSERT_HEAD_QUERY : UPSERT_HEAD_QUERY_01;

		hl_prepare_cached(&upsert_head_plan[v01], query, nargs, types);
		rc = SPI_execute_plan(upsert_head_plan[v01], args, nulls, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT, query);
		w->changed += SPI_processed;
	}
	else
	{
		bool		stored_null;
		bool		isnull;
		Jsonb	   *stored;
		Jsonb	   *expected;
		Datum		d;
		const char *query = w->with_hash ? HEAD_QUERY : HEAD_QUERY_01;

		/* snapshots past the stream's last version */
		while (w->next_snapshot < w->nsnapshots)
		{
			report(w, w->tenant, w->target, w->snapshot_versions[w->next_snapshot],
				   "snapshot of a version the log does not have",
				   w->snapshot_rows[w->next_snapshot], NULL);
			w->next_snapshot++;
		}

		hl_prepare_cached(&head_plan[v01], query, nargs, types);
		rc = SPI_execute_plan(head_plan[v01], args, nulls, true, 1);
		hl_spi_check(rc, SPI_OK_SELECT, query);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &stored_null);
		stored = stored_null ? NULL : DatumGetJsonbPCopy(d);
		expected = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull));
		SPI_freetuptable(SPI_tuptable);
		if (stored == NULL)
			report(w, w->tenant, w->target, w->r.version, "stream head missing", NULL, expected);
		else if (!jsonb_same(stored, expected))
			report(w, w->tenant, w->target, w->r.version, "stream head differs from the log",
				   stored, expected);
	}
}

/* one event of the open stream */
static void
replay_event(void *arg, HeapTuple tup, TupleDesc desc)
{
	StreamWork *w = arg;
	bool		isnull;
	text	   *type = DatumGetTextPP(SPI_getbinval(tup, desc, 4, &isnull));
	HlEventType et = hl_parse_event_type(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));

	if (et.kind == HL_VERB_CREATED && w->noun == NULL)
		w->noun = pnstrdup(VARDATA_ANY(type), et.noun_len);
	if (w->with_hash)
	{
		Datum		hash = SPI_getbinval(tup, desc, COL_HASH, &isnull);

		w->has_hash = !isnull && VARSIZE_ANY_EXHDR(DatumGetPointer(hash)) == HL_HEAD_HASH_LEN;
		if (w->has_hash)
			memcpy(w->hash, VARDATA_ANY(DatumGetPointer(hash)), HL_HEAD_HASH_LEN);
		/* 0 (appended before 0.2) is no transaction: the head keeps NULL */
		w->xact_id = DatumGetFullTransactionId(SPI_getbinval(tup, desc, COL_XACT_ID, &isnull));
	}
	hl_replay_apply(&w->r,
					DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)),
					type,
					DatumGetJsonbP(SPI_getbinval(tup, desc, 5, &isnull)),
					DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull)));
	at_version(w);
}

static void
keep_stream(void *arg)
{
	hl_replay_keep(&((StreamWork *) arg)->r);
}

/* Replay every stream of the log (of one tenant if given). */
static void
replay_log(StreamWork *w, Datum tenant_arg, char tenant_null)
{
	static const HlStreamWalk walk = {.tenant_column = 1, .target_column = 2,
		.start = start_stream, .row = replay_event, .keep = keep_stream, .finish = finish_stream};
	Oid			types[1] = {TEXTOID};
	int			v01;

	w->with_hash = schema_has_hash();
	v01 = w->with_hash ? 0 : 1;
	hl_prepare_cached(&streams_plan[v01], w->with_hash ? STREAMS_QUERY : STREAMS_QUERY_01,
					  1, types);
	hl_walk_streams(streams_plan[v01], &tenant_arg, &tenant_null, !w->rebuild, &walk, w);
}

/* Report each (tenant, target, version, state) row the query finds. */
static void
report_orphans(StreamWork *w, SPIPlanPtr *plan, const char *query,
			   Datum tenant_arg, char tenant_null, const char *problem)
{
	Oid			types[1] = {TEXTOID};
	int			rc;

	hl_prepare_cached(plan, query, 1, types);
	rc = SPI_execute_plan(*plan, &tenant_arg, &tenant_null, true, 0);
	hl_spi_check(rc, SPI_OK_SELECT, query);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		report(w, DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull)),
			   DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
			   DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)),
			   problem,
			   DatumGetJsonbP(SPI_getbinval(tup, desc, 4, &isnull)), NULL);
	}
}

/*
 * check_state(tenant text DEFAULT NULL)
 *   RETURNS TABLE (tenant, target, version, problem, stored jsonb, expected jsonb)
 */
Datum
headlessly_check_state(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	StreamWork	w;
	Datum		tenant_arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	char		tenant_null = PG_ARGISNULL(0) ? 'n' : ' ';
	bool		pushed;

	hl_result_set_init(fcinfo, "check_state", &rs);
	memset(&w, 0, sizeof(w));
	w.rs = &rs;

	pushed = hl_write_pending_heads();
	hl_spi_connect();

	replay_log(&w, tenant_arg, tenant_null);

	report_orphans(&w, &orphan_heads_plan, ORPHAN_HEADS_QUERY, tenant_arg, tenant_null,
				   "stream head without events");
	report_orphans(&w, &orphan_snapshots_plan, ORPHAN_SNAPSHOTS_QUERY, tenant_arg, tenant_null,
				   "snapshot of a stream without events");

	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	PG_RETURN_NULL();
}

/*
 * rebuild_state(tenant text DEFAULT NULL)
 *   RETURNS TABLE (streams bigint, heads_changed bigint, snapshots bigint)
 */
Datum
headlessly_rebuild_state(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	StreamWork	w;
	Oid			types[1] = {TEXTOID};
	Datum		tenant_arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	char		tenant_null = PG_ARGISNULL(0) ? 'n' : ' ';
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			rc;

	hl_result_set_init(fcinfo, "rebuild_state", &rs);
	memset(&w, 0, sizeof(w));
	w.rebuild = true;

	/* its queries take snapshots of their own: writing the heads is enough */
	hl_streams_flush();
	hl_spi_connect();

	/* no appends meanwhile: they would change what is being rebuilt */
	rc = SPI_execute("LOCK TABLE " HL_SCHEMA ".events IN SHARE MODE", false, 0);
	hl_spi_check(rc, SPI_OK_UTILITY, "LOCK TABLE");

	hl_prepare_cached(&delete_snapshots_plan, DELETE_SNAPSHOTS_QUERY, 1, types);
	rc = SPI_execute_plan(delete_snapshots_plan, &tenant_arg, &tenant_null, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, DELETE_SNAPSHOTS_QUERY);

	replay_log(&w, tenant_arg, tenant_null);

	hl_prepare_cached(&delete_orphan_heads_plan, DELETE_ORPHAN_HEADS_QUERY, 1, types);
	rc = SPI_execute_plan(delete_orphan_heads_plan, &tenant_arg, &tenant_null, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, DELETE_ORPHAN_HEADS_QUERY);
	w.changed += SPI_processed;

	SPI_finish();

	values[0] = Int64GetDatum(w.streams);
	values[1] = Int64GetDatum(w.changed);
	values[2] = Int64GetDatum(w.snapshots);
	tuplestore_putvalues(rs.store, rs.tupdesc, values, nulls);
	PG_RETURN_NULL();
}
