/*-------------------------------------------------------------------------
 *
 * append.c
 *	  events_append() and events_append_batch().
 *
 * Both are thin: they turn their arguments into an INSERT into the log, and
 * the log's trigger (log_trigger.c) does the rest.  What is left here is
 * resolving the tenant, mapping expected_version onto the version the row
 * must get, and giving back the stored row when the idempotency key was
 * already taken (the trigger then skips the row and nothing is returned).
 *
 * A single append inserts its row the way logical replication's apply
 * worker does (ExecSimpleRelationInsert: row triggers, constraints, heap
 * and index entries), which skips planning and executor start-up, a third
 * of an append's cost.  Whatever that path does not do - statement
 * triggers, row security, column privileges - sends the append through SQL
 * instead, so the two paths store the same rows under the same rules.
 *
 *-------------------------------------------------------------------------
 */
#include "headlessly.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(headlessly_events_append);
PG_FUNCTION_INFO_V1(headlessly_events_append_batch);

static const Oid column_types[A_NCOLUMNS] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID
};

#define APPEND_COLUMNS \
	"id, tenant, type, target, version, actor, source, source_type," \
	" external_event_id, occurred_at, data, metadata, raw_payload"

#define INSERT_ONE_QUERY \
	"INSERT INTO " HL_SCHEMA ".events AS e (" APPEND_COLUMNS ")" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"

#define INSERT_ONE_RETURNING_QUERY INSERT_ONE_QUERY " RETURNING e"

#define INSERT_MANY_QUERY \
	"INSERT INTO " HL_SCHEMA ".events AS e (" APPEND_COLUMNS ")" \
	" SELECT u.id, u.tenant, u.type, u.target, u.version, u.actor, u.source," \
	"        u.source_type, u.external_event_id, u.occurred_at, u.data," \
	"        u.metadata, u.raw_payload" \
	"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)," \
	"        pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)," \
	"        pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8)," \
	"        pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)," \
	"        pg_catalog.unnest($12), pg_catalog.unnest($13))" \
	"        WITH ORDINALITY AS u(" APPEND_COLUMNS ", n)" \
	"  ORDER BY u.n" \
	" RETURNING e, e.id"

static SPIPlanPtr insert_one_plan = NULL;
static SPIPlanPtr insert_one_returning_plan = NULL;
static SPIPlanPtr insert_many_plan = NULL;

static const char *const column_names[A_NCOLUMNS] = {
	"id", "tenant", "type", "target", "version", "actor", "source", "source_type",
	"external_event_id", "occurred_at", "data", "metadata", "raw_payload"
};

/* where the append's columns are in the log, found once per relation */
typedef struct LogLayout
{
	Oid			relid;
	Oid			seq_relid;		/* the identity sequence of seq */
	int			seq_attno;
	int			attnos[A_NCOLUMNS];
} LogLayout;

static LogLayout layout;

/* The version a row must get for the caller's expected_version. */
static int64
version_for_expected(int64 expected)
{
	if (expected < 0 || expected == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("expected_version " INT64_FORMAT " is out of range", expected),
				 errhint("Pass the version the target is at now, or 0 for a target without events.")));
	return expected + 1;
}

static text *
nullable_text(Datum *values, char *nulls, HlAppendColumn col)
{
	return nulls[col] == 'n' ? NULL : DatumGetTextPP(values[col]);
}

/*
 * The row stored for an append whose INSERT returned nothing: its
 * idempotency key was taken.
 */
static Datum
stored_duplicate(Datum *values, char *nulls)
{
	if (nulls[A_KEY] == 'n')
		elog(ERROR, "append without an idempotency key stored nothing");
	return hl_stored_event_by_key(DatumGetTextPP(values[A_TENANT]),
								  nullable_text(values, nulls, A_SOURCE),
								  DatumGetTextPP(values[A_KEY]));
}

static void
resolve_layout(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);

	if (layout.relid == RelationGetRelid(rel))
		return;
	layout.relid = InvalidOid;
	for (int i = 0; i < A_NCOLUMNS; i++)
	{
		layout.attnos[i] = SPI_fnumber(tupdesc, column_names[i]);
		if (layout.attnos[i] <= 0)
			elog(ERROR, "column \"%s\" is missing from the log", column_names[i]);
	}
	layout.seq_attno = SPI_fnumber(tupdesc, "seq");
	if (layout.seq_attno <= 0)
		elog(ERROR, "column \"seq\" is missing from the log");
	layout.seq_relid = getIdentitySequence(RelationGetRelid(rel), layout.seq_attno, false);
	layout.relid = RelationGetRelid(rel);
}

/* Can this append skip SQL?  Only where the direct path does all SQL would. */
static bool
direct_insert_allowed(Relation rel, bool want_row)
{
	TriggerDesc *td = rel->trigdesc;
	Oid			relid = RelationGetRelid(rel);

	if (rel->rd_rel->relrowsecurity)
		return false;
	if (td && (td->trig_insert_before_statement || td->trig_insert_after_statement ||
			   td->trig_insert_new_table))
		return false;
	/* table-level rights; column-level grants take the SQL path and its checks */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return false;
	if (want_row && pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return false;
	return true;
}

/*
 * Insert through ExecSimpleRelationInsert.  Returns false if the direct path
 * does not apply (nothing done); otherwise *stored says whether a row was
 * stored (false: the idempotency key was taken) and *row is it, if wanted.
 */
static bool
insert_directly(Datum *values, char *nulls, bool want_row, bool *stored, Datum *row)
{
	Oid			relid = hl_log_relid();
	Relation	rel;
	TupleDesc	tupdesc;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	rel = table_open(relid, RowExclusiveLock);
	if (!direct_insert_allowed(rel, want_row))
	{
		table_close(rel, NoLock);
		return false;
	}
	resolve_layout(rel);
	tupdesc = RelationGetDescr(rel);

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);

	slot = ExecInitExtraTupleSlot(estate, tupdesc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, tupdesc->natts * sizeof(bool));
	for (int i = 0; i < A_NCOLUMNS; i++)
	{
		slot->tts_values[layout.attnos[i] - 1] = values[i];
		slot->tts_isnull[layout.attnos[i] - 1] = nulls[i] == 'n';
	}
	/* the identity column's default, as INSERT would take it */
	slot->tts_values[layout.seq_attno - 1] =
		Int64GetDatum(nextval_internal(layout.seq_relid, false));
	slot->tts_isnull[layout.seq_attno - 1] = false;
	ExecStoreVirtualTuple(slot);
	ItemPointerSetInvalid(&slot->tts_tid);

	ExecOpenIndices(rri, false);
	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, slot);
	/* the append trigger skips a row whose key is taken: then no TID */
	*stored = ItemPointerIsValid(&slot->tts_tid);
	if (*stored && want_row)
		*row = heap_copy_tuple_as_datum(ExecFetchSlotHeapTuple(slot, false, NULL), tupdesc);
	ExecCloseIndices(rri);
	/* after hooks run here, before the append returns */
	AfterTriggerEndQuery(estate);
	/* including what the trigger machinery opened for them */
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);

	/* what this append did is visible to what comes next, as after SQL */
	CommandCounterIncrement();
	return true;
}

/*
 * Append one event given as the columns of APPEND_COLUMNS.  Returns the
 * stored row (the one stored first, for a taken idempotency key) as a
 * headlessly.events datum, or 0 if want_row is false.
 */
Datum
hl_append_event(Datum *values, char *nulls, bool want_row)
{
	Oid			argtypes[A_NCOLUMNS];
	Datum		result = (Datum) 0;
	bool		stored = false;
	bool		isnull;
	int			rc;

	if (insert_directly(values, nulls, want_row, &stored, &result))
	{
		if (stored || !want_row)
			return result;
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		result = SPI_datumTransfer(stored_duplicate(values, nulls), false, -1);
		SPI_finish();
		return result;
	}

	/* the SQL path */
	for (int i = 0; i < A_NCOLUMNS; i++)
		argtypes[i] = column_types[i];
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!want_row)
	{
		hl_prepare_cached(&insert_one_plan, INSERT_ONE_QUERY, A_NCOLUMNS, argtypes);
		rc = SPI_execute_plan(insert_one_plan, values, nulls, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT, INSERT_ONE_QUERY);
	}
	else
	{
		hl_prepare_cached(&insert_one_returning_plan, INSERT_ONE_RETURNING_QUERY,
						  A_NCOLUMNS, argtypes);
		rc = SPI_execute_plan(insert_one_returning_plan, values, nulls, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_ONE_RETURNING_QUERY);

		if (SPI_processed == 1)
			result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		else
			result = stored_duplicate(values, nulls);
		result = SPI_datumTransfer(result, false, -1);
	}
	SPI_finish();
	return result;
}

Datum
headlessly_events_append(PG_FUNCTION_ARGS)
{
	/* argument number of each column in the SQL signature, -1 if none */
	static const int argno[A_NCOLUMNS] = {-1, 4, 0, 1, -1, 3, 5, 6, 7, 8, 2, 10, 11};
	Datum		values[A_NCOLUMNS];
	char		nulls[A_NCOLUMNS];

	for (int i = 0; i < A_NCOLUMNS; i++)
	{
		if (argno[i] >= 0 && !PG_ARGISNULL(argno[i]))
		{
			values[i] = PG_GETARG_DATUM(argno[i]);
			nulls[i] = ' ';
		}
		else
		{
			values[i] = (Datum) 0;
			nulls[i] = 'n';
		}
	}
	if (nulls[A_TENANT] == 'n')
	{
		values[A_TENANT] = CStringGetTextDatum(hl_current_tenant());
		nulls[A_TENANT] = ' ';
	}
	if (!PG_ARGISNULL(9))
	{
		values[A_VERSION] = Int64GetDatum(version_for_expected(PG_GETARG_INT64(9)));
		nulls[A_VERSION] = ' ';
	}

	PG_RETURN_DATUM(hl_append_event(values, nulls, true));
}

/* Batch input --------------------------------------------------------------- */

typedef enum BatchValueKind
{
	BV_TEXT,
	BV_JSON,
	BV_TIMESTAMPTZ,
	BV_EXPECTED_VERSION
} BatchValueKind;

typedef struct BatchKey
{
	const char *name;
	HlAppendColumn column;
	BatchValueKind kind;
} BatchKey;

static const BatchKey batch_keys[] = {
	{"type", A_TYPE, BV_TEXT},
	{"target", A_TARGET, BV_TEXT},
	{"data", A_DATA, BV_JSON},
	{"actor", A_ACTOR, BV_TEXT},
	{"tenant", A_TENANT, BV_TEXT},
	{"source", A_SOURCE, BV_TEXT},
	{"source_type", A_SOURCE_TYPE, BV_TEXT},
	{"external_event_id", A_KEY, BV_TEXT},
	{"occurred_at", A_OCCURRED_AT, BV_TIMESTAMPTZ},
	{"expected_version", A_VERSION, BV_EXPECTED_VERSION},
	{"metadata", A_METADATA, BV_JSON},
	{"raw_payload", A_RAW_PAYLOAD, BV_TEXT},
};

typedef struct BatchColumns
{
	Datum	   *values[A_NCOLUMNS];
	bool	   *nulls[A_NCOLUMNS];
} BatchColumns;

static const BatchKey *
find_batch_key(const JsonbValue *key)
{
	for (int i = 0; i < lengthof(batch_keys); i++)
	{
		if (strlen(batch_keys[i].name) == (size_t) key->val.string.len &&
			memcmp(batch_keys[i].name, key->val.string.val, key->val.string.len) == 0)
			return &batch_keys[i];
	}
	return NULL;
}

static void
wrong_json_type(int element, const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_HL_INVALID_EVENT),
			 errmsg("batch element %d: \"%s\" must be %s", element, key, expected)));
}

static Datum
batch_value(int element, const BatchKey *bk, JsonbValue *v, bool *isnull)
{
	*isnull = false;

	/* JSON null means SQL NULL, except in data, which must be an object */
	if (v->type == jbvNull && !(bk->kind == BV_JSON && bk->column == A_DATA))
	{
		*isnull = true;
		return (Datum) 0;
	}

	switch (bk->kind)
	{
		case BV_TEXT:
			if (v->type != jbvString)
				wrong_json_type(element, bk->name, "a string");
			return PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
															v->val.string.len));
		case BV_JSON:
			return JsonbPGetDatum(JsonbValueToJsonb(v));
		case BV_TIMESTAMPTZ:
			if (v->type != jbvString)
				wrong_json_type(element, bk->name, "a timestamp string");
			return DirectFunctionCall3(timestamptz_in,
									   CStringGetDatum(pnstrdup(v->val.string.val,
																v->val.string.len)),
									   ObjectIdGetDatum(InvalidOid),
									   Int32GetDatum(-1));
		case BV_EXPECTED_VERSION:
			if (v->type != jbvNumeric)
				wrong_json_type(element, bk->name, "a number");
			return Int64GetDatum(version_for_expected(
													  DatumGetInt64(DirectFunctionCall1(numeric_int8,
																						NumericGetDatum(v->val.numeric)))));
	}
	pg_unreachable();
}

static void
parse_batch_element(BatchColumns *bc, int i, JsonbValue *elem)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	int			element = i + 1;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("batch element %d is not a JSON object", element),
				 errhint("Pass an array of objects with the arguments of events_append as keys.")));

	for (int c = 0; c < A_NCOLUMNS; c++)
		bc->nulls[c][i] = true;

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		const BatchKey *bk;
		char	   *keyname;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		keyname = pnstrdup(key.val.string.val, key.val.string.len);
		bk = find_batch_key(&key);
		if (bk == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("batch element %d has unknown key \"%s\"", element, keyname),
					 errhint("Keys are the argument names of events_append: type, target, data, actor, tenant, source, source_type, external_event_id, occurred_at, expected_version, metadata, raw_payload.")));
		bc->values[bk->column][i] = batch_value(element, bk, &val,
												&bc->nulls[bk->column][i]);
	}

	if (bc->nulls[A_DATA][i])
	{
		bc->values[A_DATA][i] = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		bc->nulls[A_DATA][i] = false;
	}
	if (bc->nulls[A_TENANT][i])
	{
		bc->values[A_TENANT][i] = CStringGetTextDatum(hl_current_tenant());
		bc->nulls[A_TENANT][i] = false;
	}
	/* our own id, to tell stored rows from skipped duplicates afterwards */
	bc->values[A_ID][i] = PointerGetDatum(hl_generate_event_id());
	bc->nulls[A_ID][i] = false;
}

static ArrayType *
column_array(BatchColumns *bc, HlAppendColumn col, int n)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(column_types[col], &typlen, &typbyval, &typalign);
	return construct_md_array(bc->values[col], bc->nulls[col], 1, dims, lbs,
							  column_types[col], typlen, typbyval, typalign);
}

static void
put_event(Tuplestorestate *store, Datum event)
{
	HeapTupleHeader td = DatumGetHeapTupleHeader(event);
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	tuplestore_puttuple(store, &tuple);
}

Datum
headlessly_events_append_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	Jsonb	   *events;
	BatchColumns bc;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	int			n;
	int			i;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("events_append_batch must be called in a context that accepts a set")));

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("events must be a JSON array, not NULL")));
	events = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("events must be a JSON array of event objects"),
				 errhint("Wrap a single event in [ ].")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type of events_append_batch must be a row type");

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;

	n = JB_ROOT_COUNT(events);
	if (n == 0)
		PG_RETURN_NULL();

	for (int c = 0; c < A_NCOLUMNS; c++)
	{
		bc.values[c] = palloc(n * sizeof(Datum));
		bc.nulls[c] = palloc(n * sizeof(bool));
	}

	i = 0;
	it = JsonbIteratorInit(&events->root);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok == WJB_ELEM)
			parse_batch_element(&bc, i++, &elem);
	}
	Assert(i == n);

	{
		Datum		arrays[A_NCOLUMNS];
		Oid			argtypes[A_NCOLUMNS];
		SPITupleTable *inserted;
		uint64		ninserted;
		uint64		next = 0;
		int			rc;

		for (int c = 0; c < A_NCOLUMNS; c++)
		{
			arrays[c] = PointerGetDatum(column_array(&bc, c, n));
			argtypes[c] = get_array_type(column_types[c]);
		}

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		hl_prepare_cached(&insert_many_plan, INSERT_MANY_QUERY, A_NCOLUMNS, argtypes);
		rc = SPI_execute_plan(insert_many_plan, arrays, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_MANY_QUERY);
		inserted = SPI_tuptable;
		ninserted = SPI_processed;

		/* stored rows come back in input order; the gaps are duplicates */
		for (i = 0; i < n; i++)
		{
			Datum		event;
			bool		isnull;

			if (next < ninserted &&
				hl_text_equal(DatumGetTextPP(bc.values[A_ID][i]),
							  DatumGetTextPP(SPI_getbinval(inserted->vals[next],
														   inserted->tupdesc, 2, &isnull))))
				event = SPI_getbinval(inserted->vals[next++], inserted->tupdesc, 1, &isnull);
			else
			{
				Datum		values[A_NCOLUMNS];
				char		nulls[A_NCOLUMNS];

				for (int c = 0; c < A_NCOLUMNS; c++)
				{
					values[c] = bc.values[c][i];
					nulls[c] = bc.nulls[c][i] ? 'n' : ' ';
				}
				event = stored_duplicate(values, nulls);
			}
			put_event(store, event);
		}
		if (next != ninserted)
			elog(ERROR, "events_append_batch stored rows it cannot match to its input");

		SPI_finish();
	}

	PG_RETURN_NULL();
}
