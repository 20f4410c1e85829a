/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  events_append_batch(): a JSON array of events, all or nothing.
 *
 * The array is parsed whole first (an error names the element), then
 * inserted in one statement, so that the log's trigger handles every row
 * under the same rules as a single append.  Rows come back in input order;
 * a duplicate of a stored idempotency key gives back the stored row, and a
 * row that a BEFORE INSERT trigger of the owner's skipped a row of NULLs.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(headlessly_events_append_batch);

#define INSERT_MANY_QUERY \
	"INSERT INTO " HL_SCHEMA ".events AS e (" HL_APPEND_COLUMNS ")" \
	" SELECT u.id, u.tenant, u.type, u.target, u.version, u.actor, u.source," \
	"        u.source_type, u.external_event_id, u.occurred_at, u.data," \
	"        u.metadata, u.raw_payload" \
	"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)," \
	"        pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)," \
	"        pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8)," \
	"        pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)," \
	"        pg_catalog.unnest($12), pg_catalog.unnest($13))" \
	"        WITH ORDINALITY AS u(" HL_APPEND_COLUMNS ", n)" \
	"  ORDER BY u.n" \
	" RETURNING e, e.id"

static SPIPlanPtr insert_many_plan = NULL;

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

/*
 * A timestamp; a malformed one keeps its datetime SQLSTATE and message,
 * which then name the element and the key.  Only data exceptions are
 * caught: anything else, a cancel included, goes on as it was.
 */
static Datum
batch_timestamptz(int element, const char *key, char *input)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		result = DirectFunctionCall3(timestamptz_in, CStringGetDatum(input),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("batch element %d: \"%s\" is not a valid timestamp: %s",
						element, key, edata->message),
				 errhint("Pass an ISO 8601 timestamp such as \"2026-01-15T10:00:00Z\".")));
	}
	PG_END_TRY();
	return result;
}

/*
 * The version a row must get for an element's expected_version: a whole
 * number from 0 up (jsonb would otherwise round 0.4 down to 0 silently).
 */
static int64
batch_expected_version(int element, const char *key, Numeric n)
{
	Datum		d = NumericGetDatum(n);
	Datum		whole = DirectFunctionCall2(numeric_trunc, d, Int32GetDatum(0));

	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, d, whole)))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("batch element %d: \"%s\" must be a whole number, not %s",
						element, key, numeric_normalize(n)),
				 errhint("Pass the version the target is at now, or 0 for a target without events.")));
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, d,
										 NumericGetDatum(int64_to_numeric(0)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_ge, d,
										 NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("batch element %d: \"%s\" %s is out of range",
						element, key, numeric_normalize(n)),
				 errhint("Pass the version the target is at now, or 0 for a target without events.")));
	return hl_version_for_expected(DatumGetInt64(DirectFunctionCall1(numeric_int8, d)));
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
			return batch_timestamptz(element, bk->name,
									 pnstrdup(v->val.string.val, v->val.string.len));
		case BV_EXPECTED_VERSION:
			if (v->type != jbvNumeric)
				wrong_json_type(element, bk->name, "a number");
			return Int64GetDatum(batch_expected_version(element, bk->name, v->val.numeric));
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
		bc->values[A_DATA][i] = JsonbPGetDatum(hl_empty_object());
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

	get_typlenbyvalalign(hl_append_column_types[col], &typlen, &typbyval, &typalign);
	return construct_md_array(bc->values[col], bc->nulls[col], 1, dims, lbs,
							  hl_append_column_types[col], typlen, typbyval, typalign);
}

/* An error while the batch's rows are inserted names the element. */
typedef struct BatchErrorContext
{
	BatchColumns *bc;
	int			n;
} BatchErrorContext;

static void
batch_error_context(void *arg)
{
	BatchErrorContext *ctx = arg;
	text	   *id = hl_current_event_id();

	if (id == NULL)
		return;
	for (int i = 0; i < ctx->n; i++)
	{
		if (hl_text_equal(id, DatumGetTextPP(ctx->bc->values[A_ID][i])))
		{
			errcontext("batch element %d", i + 1);
			return;
		}
	}
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
		bool		expecting = false;
		BatchErrorContext errctx;
		ErrorContextCallback errcallback;
		int			rc;

		/*
		 * The version column is the log's: each expected_version goes to the
		 * trigger by the element's id instead.
		 */
		for (i = 0; i < n; i++)
		{
			if (!bc.nulls[A_VERSION][i])
			{
				hl_expect_version(DatumGetTextPP(bc.values[A_ID][i]),
								  DatumGetInt64(bc.values[A_VERSION][i]));
				bc.nulls[A_VERSION][i] = true;
				expecting = true;
			}
		}

		for (int c = 0; c < A_NCOLUMNS; c++)
		{
			arrays[c] = PointerGetDatum(column_array(&bc, c, n));
			argtypes[c] = get_array_type(hl_append_column_types[c]);
		}

		hl_spi_connect();

		hl_prepare_cached(&insert_many_plan, INSERT_MANY_QUERY, A_NCOLUMNS, argtypes);
		errctx.bc = &bc;
		errctx.n = n;
		errcallback.callback = batch_error_context;
		errcallback.arg = &errctx;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		rc = SPI_execute_plan(insert_many_plan, arrays, NULL, false, 0);
		error_context_stack = errcallback.previous;
		hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_MANY_QUERY);
		inserted = SPI_tuptable;
		ninserted = SPI_processed;

		/* the rows are in: nothing of their appends stays behind */
		for (i = 0; expecting && i < n; i++)
			hl_forget_expected_version(DatumGetTextPP(bc.values[A_ID][i]));
		hl_release_key_locks(hl_trigger_nesting() + 1);

		/* stored rows come back in input order; the gaps are duplicates or skipped */
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
				event = hl_stored_duplicate(values, nulls);
			}
			if (event == (Datum) 0)
			{
				/* skipped by a trigger of the owner's: a row of NULLs keeps the order */
				Datum	   *novalues = palloc0(tupdesc->natts * sizeof(Datum));
				bool	   *allnull = palloc(tupdesc->natts * sizeof(bool));

				memset(allnull, true, tupdesc->natts * sizeof(bool));
				tuplestore_putvalues(store, tupdesc, novalues, allnull);
			}
			else
				put_event(store, event);
		}
		if (next != ninserted)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("events_append_batch cannot match the events it stored to its input"),
					 errdetail("A BEFORE INSERT trigger on headlessly.events that fires before the log's own changed the id of an event."),
					 errhint("Leave the ids of appended events as the append functions make them.")));

		SPI_finish();
	}

	PG_RETURN_NULL();
}
