/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  Idempotency keys: (tenant, source, external_event_id).
 *
 * The log's partial unique index on the key is the keys' only store.  The
 * trigger claims a key before anything else of the append happens, so a
 * duplicate runs no hook and takes no version: it looks the key up in the
 * index with a dirty snapshot, which also shows rows of transactions still
 * in progress.  A committed (or our own) row means the key is taken; a row
 * of a transaction in progress means waiting for that transaction and
 * looking again, as a unique index check does.
 *
 * Between that look-up and the row's own index entry (made by the executor
 * once the trigger has returned) another append of the key would find
 * nothing too; a short lock on the key's hash keeps such appends apart.  It
 * is held until this backend's next row at the same trigger nesting level
 * starts (the row before is in the index by then) or the append function
 * returns, so a transaction or a batch holds at most one per nesting level,
 * however many keys it appends: the lock table never fills.  Someone
 * waiting on it then finds our row in progress and waits for our
 * transaction, as above: waiting for the key lock is waiting for the
 * transaction that will hold the key, which a unique index check does too.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* field4 of our advisory lock tags (stream.c uses 0x484c) */
#define HL_LOCKTAG_KEY 0x484b

/* two plans, because "source = $2" can never match a NULL source */
#define STORED_QUERY \
	"SELECT e FROM " HL_SCHEMA ".events e" \
	" WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"   AND e.source OPERATOR(pg_catalog.=) $2" \
	"   AND e.external_event_id OPERATOR(pg_catalog.=) $3"

#define STORED_NULL_SOURCE_QUERY \
	"SELECT e FROM " HL_SCHEMA ".events e" \
	" WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"   AND e.source IS NULL" \
	"   AND e.external_event_id OPERATOR(pg_catalog.=) $2"

static SPIPlanPtr stored_plan = NULL;
static SPIPlanPtr stored_null_source_plan = NULL;

/*
 * Key locks held, with the trigger nesting level they were taken at.  They
 * belong to the top transaction's resource owner: a statement's own owner
 * is gone when the next statement releases its predecessor's lock, and a
 * subtransaction that aborts leaves them to be released as usual.
 */
typedef struct KeyLock
{
	LOCKTAG		tag;
	int			trigger_level;	/* hl_trigger_nesting() when taken */
} KeyLock;

/* a stack, deepest level last: one entry per nesting level at most */
static KeyLock *key_locks = NULL;
static int	nkey_locks = 0;
static int	max_key_locks = 0;
static bool xact_callback_registered = false;

static void
key_locks_xact_callback(XactEvent event, void *arg)
{
	/* the lock manager releases them at transaction end */
	nkey_locks = 0;
}

static void
key_lock(const LOCKTAG *tag, bool acquire)
{
	ResourceOwner owner = CurrentResourceOwner;

	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		if (acquire)
			(void) LockAcquire(tag, ExclusiveLock, false, false);
		else
			LockRelease(tag, ExclusiveLock, false);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
}

/*
 * Release the key locks taken at this trigger nesting level or deeper: the
 * rows they were taken for are in the index by now.
 */
void
hl_release_key_locks(int trigger_level)
{
	while (nkey_locks > 0 && key_locks[nkey_locks - 1].trigger_level >= trigger_level)
	{
		nkey_locks--;
		key_lock(&key_locks[nkey_locks].tag, false);
	}
}

static void
key_lock_tag(LOCKTAG *tag, text *tenant, text *source, text *key)
{
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(tenant),
							   VARSIZE_ANY_EXHDR(tenant), 0);
	if (source != NULL)
		hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(source),
								   VARSIZE_ANY_EXHDR(source), hash);
	else
		hash = hash_combine64(hash, UINT64CONST(0x9e3779b97f4a7c15));
	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(key),
							   VARSIZE_ANY_EXHDR(key), hash);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (hash >> 32), (uint32) hash,
						 HL_LOCKTAG_KEY);
}

/*
 * Look the key up in the index.  Returns true if a row holds it; *xwait is
 * then the transaction still inserting it, or invalid if the row is
 * committed or ours.
 */
static bool
find_key(Relation log, Relation idx, text *tenant, text *source, text *key,
		 TransactionId *xwait)
{
	SnapshotData dirty;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[3];
	bool		found;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(tenant));
	keys[0].sk_collation = idx->rd_indcollation[0];
	if (source != NULL)
	{
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(source));
		keys[1].sk_collation = idx->rd_indcollation[1];
	}
	else
		ScanKeyEntryInitialize(&keys[1], SK_ISNULL | SK_SEARCHNULL, 2,
							   InvalidStrategy, InvalidOid, InvalidOid,
							   InvalidOid, (Datum) 0);
	ScanKeyInit(&keys[2], 3, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(key));
	keys[2].sk_collation = idx->rd_indcollation[2];

	InitDirtySnapshot(dirty);
	slot = table_slot_create(log, NULL);
	scan = hl_index_beginscan(log, idx, &dirty, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	*xwait = InvalidTransactionId;
	if (found)
	{
		*xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;

		/*
		 * A transaction snapshot that cannot see the stored row cannot give
		 * it back: fail as INSERT ... ON CONFLICT DO NOTHING does.
		 */
		if (!TransactionIdIsValid(*xwait) && IsolationUsesXactSnapshot())
		{
			bool		should_free;
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);

			if (!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)) &&
				!table_tuple_satisfies_snapshot(log, slot, GetTransactionSnapshot()))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent append of idempotency key \"%s\"",
								text_to_cstring(key)),
						 errhint("Retry the transaction: the event it appends is stored already.")));
			if (should_free)
				heap_freetuple(tuple);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * Claim the key for the row the trigger is appending at trigger nesting
 * level trigger_level; key_index is the log's unique index on the key.
 * Returns false if an event with that key is already stored (committed, or
 * appended earlier by this transaction).
 */
bool
hl_claim_idempotency_key(Relation log, Oid key_index, text *tenant, text *source,
						 text *key, int trigger_level)
{
	Relation	idx;
	LOCKTAG		tag;
	TransactionId xwait;
	bool		found;

	if (!xact_callback_registered)
	{
		RegisterXactCallback(key_locks_xact_callback, NULL);
		xact_callback_registered = true;
	}

	/* the rows of the locks held at this level and deeper are in the index */
	hl_release_key_locks(trigger_level);

	key_lock_tag(&tag, tenant, source, key);
	idx = index_open(key_index, RowExclusiveLock);
	for (;;)
	{
		key_lock(&tag, true);
		found = find_key(log, idx, tenant, source, key, &xwait);
		if (found && TransactionIdIsValid(xwait))
		{
			/* another append of the key is in progress: its outcome decides */
			key_lock(&tag, false);
			XactLockTableWait(xwait, log, NULL, XLTW_InsertIndex);
			continue;
		}
		break;
	}
	index_close(idx, NoLock);

	if (found)
	{
		key_lock(&tag, false);
		return false;
	}

	if (nkey_locks == max_key_locks)
	{
		max_key_locks = Max(8, max_key_locks * 2);
		key_locks = key_locks == NULL ?
			MemoryContextAlloc(TopMemoryContext, max_key_locks * sizeof(KeyLock)) :
			repalloc(key_locks, max_key_locks * sizeof(KeyLock));
	}
	key_locks[nkey_locks].tag = tag;
	key_locks[nkey_locks].trigger_level = trigger_level;
	nkey_locks++;
	return true;
}

/*
 * The stored event holding a key, as a headlessly.events composite datum in
 * SPI memory, or (Datum) 0 if none does: a BEFORE INSERT trigger of the
 * owner's that fires before the log's own skipped the row, so the key was
 * never claimed.  Must run inside SPI.
 */
Datum
hl_stored_event_by_key(text *tenant, text *source, text *key)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];
	SPIPlanPtr	plan;
	int			rc;
	bool		isnull;

	args[0] = PointerGetDatum(tenant);
	if (source != NULL)
	{
		plan = hl_prepare_cached(&stored_plan, STORED_QUERY, 3, argtypes);
		args[1] = PointerGetDatum(source);
		args[2] = PointerGetDatum(key);
	}
	else
	{
		plan = hl_prepare_cached(&stored_null_source_plan,
								 STORED_NULL_SOURCE_QUERY, 2, argtypes);
		args[1] = PointerGetDatum(key);
	}

	rc = SPI_execute_plan(plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, STORED_QUERY);
	if (SPI_processed == 0)
		return (Datum) 0;

	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}
