/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Stream heads: the last version of a (tenant, target) and its state.
 *
 * The row lock on a stream's head row is the stream's lock: it is taken
 * before the version is read and held until the appending transaction ends,
 * so versions have no gaps or duplicates whatever the concurrency, and
 * appends to different streams never wait for each other.  Row locks, unlike
 * heavyweight locks, take no room in the shared lock table, so a transaction
 * may append to any number of streams.
 *
 * This is the hottest path of an entity append, so the head is found,
 * locked and rewritten with the table AM directly (index lookup,
 * table_tuple_lock, simple_heap_update; index entries only when the update
 * is not HOT), as SELECT ... FOR UPDATE and UPDATE would do without the cost
 * of planning and starting two executors per append.
 *
 * A stream's first append inserts its head, already holding the first
 * event's version and state.  Two first appends are kept apart the way a
 * unique index keeps apart two inserts of one key: under a short lock on the
 * stream's key, each looks for a head with a dirty snapshot, which also
 * shows heads of transactions still in progress; finding one, it waits for
 * that transaction to end and starts over (and then locks the committed
 * head, or finds none if it rolled back); finding none, it inserts, and
 * releases the short lock, since from then on its own uncommitted head is
 * what the others find.  The lock is held for microseconds, so a
 * transaction that creates many streams does not fill the lock table.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* columns of headlessly.streams, in table order */
enum
{
	S_TENANT = 1,
	S_TARGET,
	S_VERSION,
	S_LAST_RECORDED_AT,
	S_NOUN,
	S_STATE,
	S_CREATED_AT,
	S_UPDATED_AT,
	S_NCOLUMNS = S_UPDATED_AT
};

static const char *const column_names[S_NCOLUMNS] = {
	"tenant", "target", "version", "last_recorded_at", "noun", "state",
	"created_at", "updated_at"
};

/* field4 of the advisory lock tags we use; SQL's own advisory locks use 1 and 2 */
#define HL_LOCKTAG_STREAM_CREATE 0x484c

/*
 * OIDs of the table and its primary key, looked up once and forgotten on a
 * relcache invalidation of either.  VACUUM and ANALYZE send those all the
 * time, and any lock or catalog lookup may process one, so callers take a
 * copy (StreamsRelids) and never read the cache again in between.
 */
typedef struct StreamsRelids
{
	Oid			rel;
	Oid			pkey;
} StreamsRelids;

static StreamsRelids cached_relids;
static bool callback_registered = false;

static void
streams_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cached_relids.rel || relid == cached_relids.pkey)
		cached_relids.rel = cached_relids.pkey = InvalidOid;
}

static void
check_streams_columns(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < S_NCOLUMNS; i++)
	{
		if (tupdesc->natts <= i ||
			TupleDescAttr(tupdesc, i)->attisdropped ||
			strcmp(NameStr(TupleDescAttr(tupdesc, i)->attname), column_names[i]) != 0)
			elog(ERROR, "column %d of %s.streams is not \"%s\"",
				 i + 1, HL_SCHEMA, column_names[i]);
	}
}

static StreamsRelids
resolve_streams(void)
{
	StreamsRelids found;
	Oid			nsp;
	Relation	rel;

	if (OidIsValid(cached_relids.rel))
		return cached_relids;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(streams_relcache_callback, (Datum) 0);
		callback_registered = true;
	}

	nsp = get_namespace_oid(HL_SCHEMA, false);
	found.rel = get_relname_relid("streams", nsp);
	found.pkey = get_relname_relid("streams_pkey", nsp);
	if (!OidIsValid(found.rel) || !OidIsValid(found.pkey))
		elog(ERROR, "table %s.streams or its primary key is missing", HL_SCHEMA);

	rel = table_open(found.rel, AccessShareLock);
	check_streams_columns(rel);
	table_close(rel, AccessShareLock);

	/* cached only now: an invalidation processed above must not clear it half-set */
	cached_relids = found;
	return found;
}

static void
read_head(TupleTableSlot *slot, HlStreamHead *head)
{
	bool		isnull;
	Datum		d;

	slot_getallattrs(slot);
	head->tid = slot->tts_tid;
	head->version = DatumGetInt64(slot_getattr(slot, S_VERSION, &isnull));
	head->last_recorded_at = DatumGetTimestampTz(slot_getattr(slot, S_LAST_RECORDED_AT, &isnull));
	head->has_last_recorded_at = !isnull;
	d = slot_getattr(slot, S_NOUN, &isnull);
	head->noun = isnull ? NULL : TextDatumGetCString(d);
	d = slot_getattr(slot, S_STATE, &isnull);
	head->state = isnull ? NULL : DatumGetJsonbPCopy(d);
	head->created_at = DatumGetTimestampTz(slot_getattr(slot, S_CREATED_AT, &isnull));
	head->has_created_at = !isnull;
	head->updated_at = DatumGetTimestampTz(slot_getattr(slot, S_UPDATED_AT, &isnull));
	head->has_updated_at = !isnull;
}

static void
set_scan_keys(ScanKeyData *keys, Relation idx, text *tenant, text *target)
{
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(tenant));
	keys[0].sk_collation = idx->rd_indcollation[0];
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(target));
	keys[1].sk_collation = idx->rd_indcollation[1];
}

/*
 * Find the head of (tenant, target) and lock it; false if there is none.
 */
static bool
lock_existing_head(StreamsRelids relids, text *tenant, text *target, HlStreamHead *head)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	ItemPointerData tid;
	TM_FailureData tmfd;
	TM_Result	result;
	bool		found;

	rel = table_open(relids.rel, RowExclusiveLock);
	idx = index_open(relids.pkey, RowExclusiveLock);

	set_scan_keys(keys, idx, tenant, target);

	/*
	 * The newest committed head, and our own changes (hence the command
	 * counter increment); the lock below then waits for any transaction
	 * still holding it and follows its update to the newest version.
	 */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);

	scan = index_beginscan(rel, idx, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		tid = slot->tts_tid;
	index_endscan(scan);

	if (found)
	{
		result = table_tuple_lock(rel, &tid, snapshot, slot,
								  GetCurrentCommandId(false),
								  LockTupleExclusive, LockWaitBlock,
								  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		switch (result)
		{
			case TM_Ok:
				read_head(slot, head);
				break;
			case TM_Deleted:
				/* a rebuild removed it; start the stream's head anew */
				found = false;
				break;
			default:
				elog(ERROR, "could not lock the head of stream \"%s\": result %d",
					 text_to_cstring(target), (int) result);
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return found;
}

/*
 * Lock the head of (tenant, target) and read it into *head.  A stream
 * without a head comes back with is_new set and nothing locked, unless
 * create is given: then a head at version 0 is inserted first, so that the
 * stream is held from here on (needed when hooks run before the store).
 */
void
hl_stream_lock(text *tenant, text *target, bool create, HlStreamHead *head)
{
	StreamsRelids relids = resolve_streams();

	for (;;)
	{
		if (lock_existing_head(relids, tenant, target, head))
		{
			head->is_new = false;
			return;
		}
		memset(head, 0, sizeof(*head));
		head->is_new = true;
		if (!create)
			return;
		/* a concurrent creator makes this a no-op: then lock its head */
		if (hl_stream_store(tenant, target, head))
			head->is_new = false;
	}
}

/* Index entries for a head that moved off its page (non-HOT update). */
static void
insert_index_entries(Relation rel, HeapTuple tuple)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	/* update = false: the hint it enables needs a range table we do not have */
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * Insert a new stream's head; false if another transaction's head is there
 * (after waiting for that transaction to end): then the caller starts over.
 */
static bool
create_head(Relation rel, Oid pkey, text *tenant, text *target, HeapTuple tuple)
{
	Relation	idx = index_open(pkey, RowExclusiveLock);
	SnapshotData dirty;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	LOCKTAG		tag;
	uint64		hash;
	bool		found;
	TransactionId xwait = InvalidTransactionId;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(target),
							   VARSIZE_ANY_EXHDR(target),
							   hash_bytes_extended((const unsigned char *) VARDATA_ANY(tenant),
												   VARSIZE_ANY_EXHDR(tenant), 0));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32), (uint32) hash,
						 HL_LOCKTAG_STREAM_CREATE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	InitDirtySnapshot(dirty);
	set_scan_keys(keys, idx, tenant, target);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, &dirty, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	if (!found)
	{
		simple_heap_insert(rel, tuple);
		insert_index_entries(rel, tuple);
	}
	LockRelease(&tag, ExclusiveLock, false);
	index_close(idx, NoLock);

	if (found && TransactionIdIsValid(xwait))
		XactLockTableWait(xwait, rel, NULL, XLTW_InsertIndex);
	return !found;
}

/*
 * Write back a head locked by hl_stream_lock in this transaction, or insert
 * a new stream's head.  False only for a new stream whose head another
 * transaction inserted (and committed) meanwhile: the caller starts over.
 */
bool
hl_stream_store(text *tenant, text *target, const HlStreamHead *head)
{
	Relation	rel;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tuple;
	ItemPointerData otid = head->tid;
	StreamsRelids relids = resolve_streams();

	rel = table_open(relids.rel, RowExclusiveLock);
	tupdesc = RelationGetDescr(rel);

	/* columns added by later versions keep their defaults: none yet */
	values = palloc0(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	memset(nulls, true, tupdesc->natts * sizeof(bool));

	values[S_TENANT - 1] = PointerGetDatum(tenant);
	nulls[S_TENANT - 1] = false;
	values[S_TARGET - 1] = PointerGetDatum(target);
	nulls[S_TARGET - 1] = false;
	values[S_VERSION - 1] = Int64GetDatum(head->version);
	nulls[S_VERSION - 1] = false;
	values[S_LAST_RECORDED_AT - 1] = TimestampTzGetDatum(head->last_recorded_at);
	nulls[S_LAST_RECORDED_AT - 1] = !head->has_last_recorded_at;
	if (head->noun)
	{
		values[S_NOUN - 1] = CStringGetTextDatum(head->noun);
		nulls[S_NOUN - 1] = false;
	}
	if (head->state)
	{
		values[S_STATE - 1] = JsonbPGetDatum(head->state);
		nulls[S_STATE - 1] = false;
	}
	values[S_CREATED_AT - 1] = TimestampTzGetDatum(head->created_at);
	nulls[S_CREATED_AT - 1] = !head->has_created_at;
	values[S_UPDATED_AT - 1] = TimestampTzGetDatum(head->updated_at);
	nulls[S_UPDATED_AT - 1] = !head->has_updated_at;

	tuple = heap_form_tuple(tupdesc, values, nulls);
	if (head->is_new)
	{
		bool		created = create_head(rel, relids.pkey, tenant, target, tuple);

		heap_freetuple(tuple);
		table_close(rel, NoLock);
		return created;
	}

	/* we hold the row lock, so this cannot meet a concurrent update */
#if PG_VERSION_NUM >= 160000
	{
		TU_UpdateIndexes update_indexes;

		simple_heap_update(rel, &otid, tuple, &update_indexes);
		if (update_indexes != TU_None)
			insert_index_entries(rel, tuple);
	}
#else
	simple_heap_update(rel, &otid, tuple);
	if (!HeapTupleIsHeapOnly(tuple))
		insert_index_entries(rel, tuple);
#endif

	heap_freetuple(tuple);
	table_close(rel, NoLock);
	return true;
}
