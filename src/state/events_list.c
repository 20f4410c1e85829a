/*-------------------------------------------------------------------------
 *
 * events_list.c
 *	  events_list(): the log filtered by target, type pattern, actor and
 *	  time, in seq order.
 *
 * Each combination of filters has its own cached plan that names only the
 * filters given, so every filter can use its index: (tenant, target,
 * version) for a target, (tenant, type, recorded_at) for types,
 * (tenant, actor, recorded_at) for an actor, (tenant, recorded_at) for a
 * time range.  A type pattern ("Deal.*", "*.Created") is first turned into
 * the tenant's types that match it, found by walking the distinct types of
 * the type index (one index probe per distinct type), so that it too is an
 * index condition: type = ANY (the matching types).
 *
 * Reading one stream (a target and no other filter) is what readers of an
 * entity do most, so it skips SQL: the stream index (tenant, target,
 * version) is scanned directly and its rows go into the result as stored.
 * Along a stream seq order is version order for every event appended since
 * 0.2, but not necessarily for events appended by 0.1 or restored from
 * elsewhere, so the scan checks it on every row of the stream and hands
 * the call to SQL on the first row out of order.  Whatever the direct
 * scan cannot do as SQL would - row-level security, column-level grants -
 * also goes through SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(headlessly_events_list);

typedef enum TypeFilter
{
	TF_NONE,					/* NULL or "*" */
	TF_EXACT,					/* a type without "*" */
	TF_ANY						/* "Prefix.*" or "*.Suffix" */
} TypeFilter;

#define F_TARGET	0x01
#define F_ACTOR		0x02
#define F_AFTER		0x04
#define F_BEFORE	0x08
#define F_TYPE_SHIFT 4			/* then TypeFilter * 16 */
#define N_PLANS		(3 << F_TYPE_SHIFT)

/* parameters of every list query, used or not */
#define N_LIST_ARGS 8
static const Oid list_types[N_LIST_ARGS] = {
	TEXTOID,					/* $1 tenant */
	TEXTOID,					/* $2 target */
	TEXTOID,					/* $3 exact type */
	TEXTARRAYOID,				/* $4 matching types */
	TEXTOID,					/* $5 actor */
	TIMESTAMPTZOID,				/* $6 after */
	TIMESTAMPTZOID,				/* $7 before */
	INT8OID						/* $8 max_rows, NULL = all */
};

static SPIPlanPtr list_plans[N_PLANS];

/* the tenant's distinct types with a prefix ($2) or a suffix ($3) */
#define MATCHING_TYPES_QUERY \
	"WITH RECURSIVE t(type) AS (" \
	"  (SELECT e.type FROM " HL_SCHEMA ".events e" \
	"    WHERE e.tenant OPERATOR(pg_catalog.=) $1 ORDER BY e.type LIMIT 1)" \
	"  UNION ALL" \
	"  SELECT (SELECT e.type FROM " HL_SCHEMA ".events e" \
	"           WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"             AND e.type OPERATOR(pg_catalog.>) t.type ORDER BY e.type LIMIT 1)" \
	"    FROM t WHERE t.type IS NOT NULL)" \
	" SELECT COALESCE(pg_catalog.array_agg(t.type), '{}'::pg_catalog.text[]) FROM t" \
	"  WHERE t.type IS NOT NULL" \
	"    AND ($2 IS NULL OR pg_catalog.starts_with(t.type, $2))" \
	"    AND ($3 IS NULL OR pg_catalog.right(t.type, pg_catalog.length($3)) OPERATOR(pg_catalog.=) $3)"

static SPIPlanPtr matching_types_plan = NULL;

static Datum
matching_types(text *tenant, const HlTypePattern *pattern)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int			rc;

	hl_prepare_cached(&matching_types_plan, MATCHING_TYPES_QUERY, 3, types);
	args[0] = PointerGetDatum(tenant);
	nulls[pattern->kind == HL_PATTERN_PREFIX ? 2 : 1] = 'n';
	args[pattern->kind == HL_PATTERN_PREFIX ? 1 : 2] =
		PointerGetDatum(cstring_to_text_with_len(pattern->text, pattern->len));
	rc = SPI_execute_plan(matching_types_plan, args, nulls, true, 1);
	hl_spi_check(rc, SPI_OK_SELECT, MATCHING_TYPES_QUERY);
	return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							 false, -1);
}

/*
 * The log and its stream index, as the direct scan needs them: found once,
 * forgotten on a relcache invalidation of either.
 */
typedef struct StreamScanInfo
{
	Oid			relid;
	Oid			indexid;
	AttrNumber	seq;
	AttrNumber	tenant;
	AttrNumber	target;
} StreamScanInfo;

static StreamScanInfo scan_info;
static bool scan_info_callback_registered = false;

static void
scan_info_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == scan_info.relid || relid == scan_info.indexid)
		scan_info.relid = InvalidOid;
}

/*
 * Whether rel's index indexid is what the direct scan relies on: a valid
 * btree whose first two columns are tenant and target with the columns'
 * own collations, so that equality on them is the SQL path's.
 */
static bool
stream_index_usable(Relation rel, Oid indexid, AttrNumber tenant, AttrNumber target)
{
	Relation	idx = index_open(indexid, AccessShareLock);
	bool		ok;

	ok = idx->rd_rel->relam == BTREE_AM_OID &&
		idx->rd_index->indisvalid && idx->rd_index->indisready &&
		idx->rd_index->indnkeyatts >= 2 &&
		idx->rd_index->indkey.values[0] == tenant &&
		idx->rd_index->indkey.values[1] == target &&
		idx->rd_indcollation[0] == TupleDescAttr(RelationGetDescr(rel), tenant - 1)->attcollation &&
		idx->rd_indcollation[1] == TupleDescAttr(RelationGetDescr(rel), target - 1)->attcollation;
	index_close(idx, AccessShareLock);
	return ok;
}

/* Fill scan_info for rel; false if the log has no usable stream index. */
static bool
resolve_scan_info(Relation rel)
{
	StreamScanInfo found;
	TupleDesc	tupdesc = RelationGetDescr(rel);

	if (scan_info.relid == RelationGetRelid(rel))
		return OidIsValid(scan_info.indexid);
	if (!scan_info_callback_registered)
	{
		hl_register_relcache_callback(scan_info_relcache_callback, (Datum) 0);
		scan_info_callback_registered = true;
	}

	found.relid = RelationGetRelid(rel);
	found.seq = SPI_fnumber(tupdesc, "seq");
	found.tenant = SPI_fnumber(tupdesc, "tenant");
	found.target = SPI_fnumber(tupdesc, "target");
	found.indexid = get_relname_relid("events_stream_idx", RelationGetNamespace(rel));
	if (found.seq <= 0 || found.tenant <= 0 || found.target <= 0 ||
		TupleDescAttr(tupdesc, found.seq - 1)->atttypid != INT8OID ||
		(OidIsValid(found.indexid) &&
		 !stream_index_usable(rel, found.indexid, found.tenant, found.target)))
		found.indexid = InvalidOid;

	/* set only now: an invalidation processed above must not leave it half-set */
	scan_info = found;
	return OidIsValid(found.indexid);
}

/*
 * The stream of (tenant, target) into the result, in seq order, at most
 * max_rows rows (-1: all).  Returns false, with the result left empty, if
 * the direct scan does not apply or the stream is not in seq order along
 * its versions: then SQL must answer.
 */
static bool
list_stream_directly(HlResultSet *rs, text *tenant, text *target, int64 max_rows)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	MemoryContext cxt;
	MemoryContext old;
	int64		nrows = 0;
	int64		last_seq = 0;
	bool		in_order = true;

	if (max_rows == 0)
		return true;
	rel = table_open(hl_log_relid(), AccessShareLock);
	if (!resolve_scan_info(rel) ||
		RelationGetDescr(rel)->natts != rs->tupdesc->natts ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
	{
		table_close(rel, AccessShareLock);
		return false;
	}

	idx = index_open(scan_info.indexid, AccessShareLock);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(tenant));
	keys[0].sk_collation = idx->rd_indcollation[0];
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(target));
	keys[1].sk_collation = idx->rd_indcollation[1];

	/* per-row garbage (deformed rows of an older row layout) */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly events_list",
								ALLOCSET_SMALL_SIZES);
	slot = table_slot_create(rel, NULL);
	scan = hl_index_beginscan(rel, idx, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		bool		should_free;
		HeapTuple	tuple;
		int64		seq = DatumGetInt64(slot_getattr(slot, scan_info.seq, &isnull));

		CHECK_FOR_INTERRUPTS();
		if (nrows > 0 && seq <= last_seq)
		{
			in_order = false;
			break;
		}
		last_seq = seq;
		nrows++;
		/* past max_rows, rows are only read to check the order */
		if (max_rows >= 0 && nrows > max_rows)
			continue;

		old = MemoryContextSwitchTo(cxt);
		tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
		if (HeapTupleHeaderGetNatts(tuple->t_data) == rs->tupdesc->natts)
			tuplestore_puttuple(rs->store, tuple);
		else
		{
			/* a row older than a column: the column's default, as SQL gives it */
			slot_getallattrs(slot);
			tuplestore_putvalues(rs->store, rs->tupdesc, slot->tts_values, slot->tts_isnull);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(cxt);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (!in_order)
		tuplestore_clear(rs->store);
	return in_order;
}

static char *
list_query(int filters)
{
	StringInfoData q;
	TypeFilter	tf = filters >> F_TYPE_SHIFT;

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT e.* FROM " HL_SCHEMA ".events e"
						   " WHERE e.tenant OPERATOR(pg_catalog.=) $1");
	if (filters & F_TARGET)
		appendStringInfoString(&q, " AND e.target OPERATOR(pg_catalog.=) $2");
	if (tf == TF_EXACT)
		appendStringInfoString(&q, " AND e.type OPERATOR(pg_catalog.=) $3");
	else if (tf == TF_ANY)
		appendStringInfoString(&q, " AND e.type OPERATOR(pg_catalog.=) ANY ($4)");
	if (filters & F_ACTOR)
		appendStringInfoString(&q, " AND e.actor OPERATOR(pg_catalog.=) $5");
	if (filters & F_AFTER)
		appendStringInfoString(&q, " AND e.recorded_at OPERATOR(pg_catalog.>) $6");
	if (filters & F_BEFORE)
		appendStringInfoString(&q, " AND e.recorded_at OPERATOR(pg_catalog.<) $7");
	appendStringInfoString(&q, " ORDER BY e.seq LIMIT $8");
	return q.data;
}

/*
 * events_list(target, type, actor, after, before, max_rows int DEFAULT 100,
 *             tenant) RETURNS SETOF headlessly.events
 */
Datum
headlessly_events_list(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	Datum		args[N_LIST_ARGS];
	char		nulls[N_LIST_ARGS];
	int			filters = 0;
	TypeFilter	tf = TF_NONE;
	char	   *query;
	text	   *tenant;
	bool		connected = false;

	hl_result_set_init(fcinfo, "events_list", &rs);
	memset(nulls, 'n', sizeof(nulls));
	memset(args, 0, sizeof(args));

	tenant = hl_tenant_arg(fcinfo, 6);
	args[0] = PointerGetDatum(tenant);
	nulls[0] = ' ';

	if (!PG_ARGISNULL(5))
	{
		int32		max_rows = PG_GETARG_INT32(5);

		if (max_rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_rows must not be negative, not %d", max_rows),
					 errhint("Pass NULL for no limit.")));
		args[7] = Int64GetDatum(max_rows);
		nulls[7] = ' ';
	}

	if (!PG_ARGISNULL(0))
	{
		filters |= F_TARGET;
		args[1] = PG_GETARG_DATUM(0);
		nulls[1] = ' ';
	}
	if (!PG_ARGISNULL(1))
	{
		text	   *pattern_text = PG_GETARG_TEXT_PP(1);
		HlTypePattern pattern;

		hl_parse_type_pattern(VARDATA_ANY(pattern_text), VARSIZE_ANY_EXHDR(pattern_text),
							  &pattern);
		switch (pattern.kind)
		{
			case HL_PATTERN_ALL:
				break;
			case HL_PATTERN_EXACT:
				tf = TF_EXACT;
				args[2] = PointerGetDatum(pattern_text);
				nulls[2] = ' ';
				break;
			case HL_PATTERN_PREFIX:
			case HL_PATTERN_SUFFIX:
				tf = TF_ANY;
				hl_spi_connect();
				connected = true;
				args[3] = matching_types(tenant, &pattern);
				nulls[3] = ' ';
				break;
		}
	}
	if (!PG_ARGISNULL(2))
	{
		filters |= F_ACTOR;
		args[4] = PG_GETARG_DATUM(2);
		nulls[4] = ' ';
	}
	if (!PG_ARGISNULL(3))
	{
		filters |= F_AFTER;
		args[5] = PG_GETARG_DATUM(3);
		nulls[5] = ' ';
	}
	if (!PG_ARGISNULL(4))
	{
		filters |= F_BEFORE;
		args[6] = PG_GETARG_DATUM(4);
		nulls[6] = ' ';
	}
	filters |= tf << F_TYPE_SHIFT;

	if (filters == F_TARGET &&
		list_stream_directly(&rs, tenant, PG_GETARG_TEXT_PP(0),
							 nulls[7] == 'n' ? -1 : DatumGetInt64(args[7])))
		PG_RETURN_NULL();

	if (!connected)
		hl_spi_connect();
	query = list_query(filters);
	hl_prepare_cached(&list_plans[filters], query, N_LIST_ARGS, (Oid *) list_types);
	hl_spi_into_result_set(list_plans[filters], query, N_LIST_ARGS, (Oid *) list_types,
						   args, nulls, &rs);

	SPI_finish();
	PG_RETURN_NULL();
}
