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
 * elsewhere, so the scan checks it on every row it returns and hands the
 * call to SQL on the first row out of order.  With a limit, the rows
 * returned are the lowest seqs only if no later version has a lower seq
 * than the last of them: checked by the shorter of two scans, the rest of
 * the stream (every seq higher) or the log by seq below that seq (no later
 * version of the stream there), so that a long stream early in the log is
 * not read to its end.  Whatever the direct
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
	Oid			seq_indexid;	/* seq's btree, or InvalidOid */
	AttrNumber	seq;
	AttrNumber	tenant;
	AttrNumber	target;
	AttrNumber	version;
} StreamScanInfo;

static StreamScanInfo scan_info;
static bool scan_info_callback_registered = false;

static void
scan_info_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == scan_info.relid || relid == scan_info.indexid ||
		relid == scan_info.seq_indexid)
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

/* Whether indexid is a valid btree whose first column is seq. */
static bool
seq_index_usable(Oid indexid, AttrNumber seq)
{
	Relation	idx = index_open(indexid, AccessShareLock);
	bool		ok;

	ok = idx->rd_rel->relam == BTREE_AM_OID &&
		idx->rd_index->indisvalid && idx->rd_index->indisready &&
		idx->rd_index->indkey.values[0] == seq;
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
	found.version = SPI_fnumber(tupdesc, "version");
	found.indexid = get_relname_relid("events_stream_idx", RelationGetNamespace(rel));
	found.seq_indexid = hl_relation_primary_key(rel);
	if (found.seq <= 0 || found.tenant <= 0 || found.target <= 0 ||
		TupleDescAttr(tupdesc, found.seq - 1)->atttypid != INT8OID ||
		(OidIsValid(found.indexid) &&
		 !stream_index_usable(rel, found.indexid, found.tenant, found.target)))
		found.indexid = InvalidOid;
	if (found.version <= 0 || TupleDescAttr(tupdesc, found.version - 1)->atttypid != INT8OID ||
		(OidIsValid(found.seq_indexid) && !seq_index_usable(found.seq_indexid, found.seq)))
		found.seq_indexid = InvalidOid;

	/* set only now: an invalidation processed above must not leave it half-set */
	scan_info = found;
	return OidIsValid(found.indexid);
}

/* The seq of the first row scan returns going in dir; -1 if none. */
static int64
first_seq(IndexScanDesc scan, ScanDirection dir, TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;

	if (!index_getnext_slot(scan, dir, slot))
		return -1;
	return DatumGetInt64(slot_getattr(slot, attnum, &isnull));
}

/*
 * Having returned the stream's versions up to last_version, whose seqs rose
 * to last_seq: whether no later version has a lower seq, so that they are
 * the lowest seqs of the stream.  Two scans can tell, and the shorter one
 * is taken: the rest of the stream (stream_scan, where it stopped), every
 * seq above last_seq; or the log by seq below last_seq, no later version of
 * the stream among it.  The stream's last version says how long the first
 * is (versions have no gaps), the log's lowest seq how long the second is
 * at most (seqs have gaps only where appends rolled back).
 */
static bool
rest_of_stream_is_later(Relation rel, Relation idx, IndexScanDesc stream_scan,
						ScanKey stream_keys, TupleTableSlot *slot, MemoryContext cxt,
						text *tenant, text *target, int64 last_version, int64 last_seq)
{
	Relation	seq_idx = NULL;
	IndexScanDesc scan;
	bool		isnull;
	bool		later = true;

	if (OidIsValid(scan_info.seq_indexid))
	{
		int64		rest;
		int64		lowest;

		/* the stream's last version: the stream index backwards */
		scan = hl_index_beginscan(rel, idx, GetActiveSnapshot(), 2, 0);
		index_rescan(scan, stream_keys, 2, NULL, 0);
		rest = index_getnext_slot(scan, BackwardScanDirection, slot) ?
			DatumGetInt64(slot_getattr(slot, scan_info.version, &isnull)) - last_version : 0;
		index_endscan(scan);

		seq_idx = index_open(scan_info.seq_indexid, AccessShareLock);
		scan = hl_index_beginscan(rel, seq_idx, GetActiveSnapshot(), 0, 0);
		index_rescan(scan, NULL, 0, NULL, 0);
		lowest = first_seq(scan, ForwardScanDirection, slot, scan_info.seq);
		if (lowest < 0 || last_seq - lowest >= rest)
		{
			index_endscan(scan);
			index_close(seq_idx, AccessShareLock);
			seq_idx = NULL;
		}
	}

	if (seq_idx == NULL)
	{
		/* the rest of the stream */
		int64		seq;

		while ((seq = first_seq(stream_scan, ForwardScanDirection, slot, scan_info.seq)) >= 0)
		{
			CHECK_FOR_INTERRUPTS();
			if (seq < last_seq)
				return false;
		}
		return true;
	}

	/* the log by seq, from its lowest (the row scan is on) to last_seq */
	do
	{
		MemoryContext old;
		Datum		t;

		CHECK_FOR_INTERRUPTS();
		if (DatumGetInt64(slot_getattr(slot, scan_info.seq, &isnull)) >= last_seq)
			break;
		old = MemoryContextSwitchTo(cxt);
		if (hl_text_equal(DatumGetTextPP(slot_getattr(slot, scan_info.tenant, &isnull)), tenant) &&
			(t = slot_getattr(slot, scan_info.target, &isnull), !isnull) &&
			hl_text_equal(DatumGetTextPP(t), target))
		{
			Datum		v = slot_getattr(slot, scan_info.version, &isnull);

			later = !isnull && DatumGetInt64(v) <= last_version;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	} while (later && index_getnext_slot(scan, ForwardScanDirection, slot));

	index_endscan(scan);
	index_close(seq_idx, AccessShareLock);
	return later;
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
	int64		last_version = 0;
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
		last_version = DatumGetInt64(slot_getattr(slot, scan_info.version, &isnull));
		nrows++;

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

		if (max_rows >= 0 && nrows == max_rows)
		{
			in_order = rest_of_stream_is_later(rel, idx, scan, keys, slot, cxt, tenant, target,
											   last_version, last_seq);
			break;
		}
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
