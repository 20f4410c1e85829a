/*-------------------------------------------------------------------------
 *
 * append.c
 *	  events_append(), and hl_append_event() for the rest of the extension.
 *
 * Appending is thin: they turn their arguments into an INSERT into the log, and
 * the log's trigger (log_trigger.c) does the rest.  What is left here is
 * resolving the tenant, handing expected_version to the trigger (by the
 * event's id, expectation.c), and giving back the stored row when the
 * idempotency key was already taken (the trigger then skips the row and
 * nothing is returned).
 *
 * A single append inserts its row the way logical replication's apply
 * worker does (ExecSimpleRelationInsert: row triggers, constraints, heap
 * and index entries), which skips planning and executor start-up, a third
 * of an append's cost.  Whatever that path does not do - statement
 * triggers, row security, column privileges - sends the append through SQL
 * instead, so the two paths store the same rows under the same rules.
 *
 * What ExecOpenIndices would build for every append - each index's
 * IndexInfo, and the planned and compiled predicate of each partial index
 * (four of the log's nine) - is built once per backend and kept across
 * transactions (LogIndexes), until a relcache invalidation of the log or
 * of one of its indexes, or a change of the log's index list.  The indexes
 * are still opened and locked by every append, as the executor does.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(headlessly_events_append);

const Oid	hl_append_column_types[A_NCOLUMNS] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID
};

#define INSERT_ONE_QUERY \
	"INSERT INTO " HL_SCHEMA ".events AS e (" HL_APPEND_COLUMNS ")" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"

#define INSERT_ONE_RETURNING_QUERY INSERT_ONE_QUERY " RETURNING e"

static SPIPlanPtr insert_one_plan = NULL;
static SPIPlanPtr insert_one_returning_plan = NULL;

static const char *const column_names[A_NCOLUMNS] = {
	"id", "tenant", "type", "target", "version", "actor", "source", "source_type",
	"external_event_id", "occurred_at", "data", "metadata", "raw_payload"
};

/* where the append's columns are in the log, found once per relation */
typedef struct LogLayout
{
	Oid			relid;
	Oid			seq_relid;		/* a 0.1 log's identity sequence of seq, else invalid */
	int			seq_attno;
	int			attnos[A_NCOLUMNS];
} LogLayout;

static LogLayout layout;
static bool layout_callback_registered = false;

/*
 * The log's indexes as ExecOpenIndices finds them, kept across
 * transactions.  Each generation has a memory context of its own and a
 * count of the appends using it: an invalidation only marks it stale, and a
 * stale generation is freed once no append uses it (an append may nest in
 * another's trigger, through a hook, and rebuild the cache meanwhile).
 */
typedef struct LogIndexes
{
	MemoryContext cxt;
	Oid			relid;
	int			nindexes;
	Oid		   *oids;			/* in RelationGetIndexList() order */
	IndexInfo **infos;			/* predicates planned and compiled */
	bool		valid;
	int			users;
} LogIndexes;

static LogIndexes *log_indexes = NULL;

/*
 * The generation being built: building it can take catalog locks and so
 * process invalidations (a CREATE INDEX CONCURRENTLY's flip to ready, say),
 * which must not be lost, or a stale description would be kept as current.
 */
static Oid	building_relid = InvalidOid;
static List *building_oids = NIL;
static bool building_invalidated = false;

static Datum insert_event(Datum *values, char *nulls, bool want_row, bool *stored);

static void
log_indexes_invalidate(Oid relid)
{
	LogIndexes *li = log_indexes;

	if (OidIsValid(building_relid) &&
		(relid == InvalidOid || relid == building_relid || list_member_oid(building_oids, relid)))
		building_invalidated = true;
	if (li == NULL || !li->valid)
		return;
	if (relid == InvalidOid || relid == li->relid)
		li->valid = false;
	for (int i = 0; li->valid && i < li->nindexes; i++)
	{
		if (li->oids[i] == relid)
			li->valid = false;
	}
}

/*
 * One callback for both caches: a backend has only ten relcache callback
 * slots (PostgreSQL 15), shared by every library it loads.
 */
static void
layout_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == layout.relid)
		layout.relid = InvalidOid;
	log_indexes_invalidate(relid);
}

static void
register_relcache_callback(void)
{
	if (!layout_callback_registered)
	{
		hl_register_relcache_callback(layout_relcache_callback, (Datum) 0);
		layout_callback_registered = true;
	}
}

static void
log_indexes_release(LogIndexes *li)
{
	li->users--;
	if (li->users == 0 && li != log_indexes)
		MemoryContextDelete(li->cxt);
}

/* whether li describes rel's indexes as they are now */
static bool
log_indexes_current(LogIndexes *li, Relation rel, List *oids)
{
	int			i = 0;
	ListCell   *lc;

	if (li == NULL || !li->valid || li->relid != RelationGetRelid(rel) ||
		li->nindexes != list_length(oids))
		return false;
	foreach(lc, oids)
	{
		if (li->oids[i++] != lfirst_oid(lc))
			return false;
	}
	return true;
}

/*
 * The log's cached index descriptions, built anew if stale; the caller
 * holds the indexes open and returns the generation with
 * log_indexes_release().
 */
static LogIndexes *
log_indexes_acquire(Relation rel, Relation *indexes, List *oids)
{
	LogIndexes *li;
	MemoryContext cxt;
	MemoryContext old;
	int			i;

	if (log_indexes_current(log_indexes, rel, oids))
	{
		log_indexes->users++;
		return log_indexes;
	}
	register_relcache_callback();

	cxt = AllocSetContextCreate(CacheMemoryContext, "headlessly log indexes",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	building_relid = RelationGetRelid(rel);
	building_oids = oids;
	building_invalidated = false;
	PG_TRY();
	{
		li = palloc0(sizeof(LogIndexes));
		li->cxt = cxt;
		li->relid = RelationGetRelid(rel);
		li->nindexes = list_length(oids);
		li->oids = palloc(li->nindexes * sizeof(Oid));
		li->infos = palloc(li->nindexes * sizeof(IndexInfo *));
		for (i = 0; i < li->nindexes; i++)
		{
			IndexInfo  *ii = BuildIndexInfo(indexes[i]);

			li->oids[i] = RelationGetRelid(indexes[i]);
			/* as ExecPrepareQual does, but kept: no executor state */
			if (ii->ii_Predicate != NIL)
				ii->ii_PredicateState =
					ExecInitQual((List *) expression_planner((Expr *) ii->ii_Predicate), NULL);
			li->infos[i] = ii;
		}
	}
	PG_CATCH();
	{
		building_relid = InvalidOid;
		building_oids = NIL;
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	building_relid = InvalidOid;
	building_oids = NIL;

	/*
	 * Invalidated while being built: good for this append, whose indexes
	 * are open and locked (as the executor's would be for its statement),
	 * but built anew by the next.
	 */
	li->valid = !building_invalidated;
	if (log_indexes != NULL && log_indexes->users == 0)
		MemoryContextDelete(log_indexes->cxt);
	log_indexes = li;
	li->users = 1;
	return li;
}

/*
 * ExecOpenIndices(rri, false) for the log, from the cache.  Each append
 * gets its own copy of each IndexInfo: what the executor fills in lazily
 * (expression state, an access method's cache) belongs to this append's
 * executor state and memory.
 */
static LogIndexes *
open_log_indexes(ResultRelInfo *rri)
{
	Relation	rel = rri->ri_RelationDesc;
	List	   *oids;
	Relation   *descs;
	IndexInfo **infos;
	IndexInfo  *copies;
	LogIndexes *li;
	int			n;
	int			i = 0;
	ListCell   *lc;

	rri->ri_NumIndices = 0;
	if (!RelationGetForm(rel)->relhasindex)
		return NULL;
	oids = RelationGetIndexList(rel);
	n = list_length(oids);
	if (n == 0)
		return NULL;

	descs = palloc(n * sizeof(Relation));
	infos = palloc(n * sizeof(IndexInfo *));
	copies = palloc(n * sizeof(IndexInfo));
	foreach(lc, oids)
		descs[i++] = index_open(lfirst_oid(lc), RowExclusiveLock);
	rri->ri_NumIndices = n;
	rri->ri_IndexRelationDescs = descs;
	rri->ri_IndexRelationInfo = infos;

	/* nothing that can fail between acquiring and handing back */
	li = log_indexes_acquire(rel, descs, oids);
	for (i = 0; i < n; i++)
	{
		IndexInfo  *ii = &copies[i];

		memcpy(ii, li->infos[i], sizeof(IndexInfo));
		ii->ii_ExpressionsState = NIL;
		ii->ii_AmCache = NULL;
		ii->ii_Context = CurrentMemoryContext;
		infos[i] = ii;
	}
	list_free(oids);
	return li;
}

/*
 * ExecCloseIndices() without its early unlock: the indexes stay locked, as
 * the log does, until the transaction ends.  Releasing nine locks per
 * append cost more than letting the transaction's end release them, and
 * the transaction's next append finds them already held.
 */
static void
close_log_indexes(ResultRelInfo *rri)
{
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		hl_index_insert_cleanup(rri->ri_IndexRelationDescs[i], rri->ri_IndexRelationInfo[i]);
		index_close(rri->ri_IndexRelationDescs[i], NoLock);
	}
	rri->ri_NumIndices = 0;
}

/* The version a row must get for the caller's expected_version. */
int64
hl_version_for_expected(int64 expected)
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
 * idempotency key was taken.  (Datum) 0 if there is none: a BEFORE INSERT
 * trigger of the owner's, firing before the log's own, skipped the row.
 */
Datum
hl_stored_duplicate(Datum *values, char *nulls)
{
	if (nulls[A_KEY] == 'n')
		return (Datum) 0;
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
	register_relcache_callback();
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
	/* a log still at 0.1 fills seq from an identity, which this path must do */
	layout.seq_relid = InvalidOid;
	if (TupleDescAttr(tupdesc, layout.seq_attno - 1)->attidentity != '\0')
		layout.seq_relid = hl_identity_sequence(rel, layout.seq_attno);
	layout.relid = RelationGetRelid(rel);
}

/* Can this append skip SQL?  Only where the direct path does all SQL would. */
static bool
direct_insert_allowed(Relation rel, bool want_row)
{
	TriggerDesc *td = rel->trigdesc;
	Oid			relid = RelationGetRelid(rel);

	/*
	 * The executor refuses an INSERT in a read-only transaction (and on a
	 * standby) before any trigger; the log's trigger would lock the stream
	 * first, which takes a transaction id: an internal error on a standby.
	 */
	if (XactReadOnly)
		return false;
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
	LogIndexes *volatile indexes = NULL;

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
	hl_init_range_table(estate, rte);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);

	/*
	 * A heap tuple slot: the trigger's row is stored in it as it is and
	 * copied once for the heap, where a virtual slot deformed it and formed
	 * it again.
	 */
	slot = ExecInitExtraTupleSlot(estate, tupdesc, &TTSOpsHeapTuple);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, tupdesc->natts * sizeof(bool));
	for (int i = 0; i < A_NCOLUMNS; i++)
	{
		slot->tts_values[layout.attnos[i] - 1] = values[i];
		slot->tts_isnull[layout.attnos[i] - 1] = nulls[i] == 'n';
	}
	/* seq is the trigger's to draw, except from a 0.1 log's identity */
	if (OidIsValid(layout.seq_relid))
	{
		slot->tts_values[layout.seq_attno - 1] =
			Int64GetDatum(nextval_internal(layout.seq_relid, false));
		slot->tts_isnull[layout.seq_attno - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
	ItemPointerSetInvalid(&slot->tts_tid);

	PG_TRY();
	{
		indexes = open_log_indexes(rri);
		AfterTriggerBeginQuery();
		ExecSimpleRelationInsert(rri, estate, slot);
	}
	PG_FINALLY();
	{
		if (indexes != NULL)
			log_indexes_release(indexes);
	}
	PG_END_TRY();
	/* the append trigger skips a row whose key is taken: then no TID */
	*stored = ItemPointerIsValid(&slot->tts_tid);
	if (*stored && want_row)
		*row = heap_copy_tuple_as_datum(ExecFetchSlotHeapTuple(slot, false, NULL), tupdesc);
	close_log_indexes(rri);
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
 * Append one event given as the columns of HL_APPEND_COLUMNS; A_VERSION,
 * if given, is the version the row must get (expected_version + 1).
 * Returns the stored row (the one stored first, for a taken idempotency
 * key) as a headlessly.events datum; (Datum) 0 if want_row is false, or if
 * nothing was stored and no stored row holds the key (a BEFORE INSERT
 * trigger of the owner's skipped the row, as it may: it fires before the
 * log's own).
 */
Datum
hl_append_event(Datum *values, char *nulls, bool want_row)
{
	Datum		result;
	text	   *expecting = NULL;
	bool		stored;

	/* the version column is the log's: the expectation goes by the event's id */
	if (nulls[A_VERSION] != 'n')
	{
		if (nulls[A_ID] == 'n')
		{
			values[A_ID] = PointerGetDatum(hl_generate_event_id());
			nulls[A_ID] = ' ';
		}
		expecting = DatumGetTextPP(values[A_ID]);
		hl_expect_version(expecting, DatumGetInt64(values[A_VERSION]));
		nulls[A_VERSION] = 'n';
	}

	result = insert_event(values, nulls, want_row, &stored);

	/* the row is in: nothing of its append stays behind */
	if (expecting && hl_forget_expected_version(expecting) && stored)
		hl_expectation_not_checked(expecting);
	hl_release_key_locks(hl_trigger_nesting() + 1);
	return result;
}

static Datum
insert_event(Datum *values, char *nulls, bool want_row, bool *stored)
{
	Oid			argtypes[A_NCOLUMNS];
	Datum		result = (Datum) 0;
	bool		isnull;
	int			rc;

	*stored = false;
	if (insert_directly(values, nulls, want_row, stored, &result))
	{
		if (*stored || !want_row)
			return result;
		hl_spi_connect();
		result = hl_stored_duplicate(values, nulls);
		if (result != (Datum) 0)
			result = SPI_datumTransfer(result, false, -1);
		SPI_finish();
		return result;
	}

	/* the SQL path */
	for (int i = 0; i < A_NCOLUMNS; i++)
		argtypes[i] = hl_append_column_types[i];
	hl_spi_connect();
	if (!want_row)
	{
		hl_prepare_cached(&insert_one_plan, INSERT_ONE_QUERY, A_NCOLUMNS, argtypes);
		rc = SPI_execute_plan(insert_one_plan, values, nulls, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT, INSERT_ONE_QUERY);
		*stored = SPI_processed > 0;
	}
	else
	{
		hl_prepare_cached(&insert_one_returning_plan, INSERT_ONE_RETURNING_QUERY,
						  A_NCOLUMNS, argtypes);
		rc = SPI_execute_plan(insert_one_returning_plan, values, nulls, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_ONE_RETURNING_QUERY);

		*stored = SPI_processed > 0;
		if (SPI_processed == 1)
			result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		else
			result = hl_stored_duplicate(values, nulls);
		if (result != (Datum) 0)
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
	Datum		result;

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
		values[A_VERSION] = Int64GetDatum(hl_version_for_expected(PG_GETARG_INT64(9)));
		nulls[A_VERSION] = ' ';
	}

	result = hl_append_event(values, nulls, true);
	if (result == (Datum) 0)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
