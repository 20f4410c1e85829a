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
 * of planning and starting two executors per append.  Each backend also
 * remembers where it last found each head (the primary key's TID for it, the
 * root of its HOT chain) and looks there first in later transactions,
 * taking what it finds only if it is a visible head of that very key; else
 * the index is asked, as always.
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
 * Heads a transaction changes more than once.  Once a transaction holds a
 * head, nobody else can change it until the transaction ends, so the
 * transaction may keep the head in memory.  The first append to a stream
 * in a transaction writes the head as above; the next one finds that the
 * row version is the transaction's own, and from then on a per-transaction
 * cache maps (tenant, target) to that row version (no index lookup) and to
 * the head as the appends leave it, written once when the transaction
 * commits (XACT_EVENT_PRE_COMMIT).  So N appends to one stream in one
 * transaction cost N small in-memory changes and at most two new row
 * versions, not N versions that every later reader of the head walks until
 * VACUUM removes them, and a transaction that appends once to each stream
 * costs the cache nothing.  The cache follows subtransactions: what a
 * subtransaction changed is put back when it aborts (a savepoint rolled
 * back, a failed after hook, an EXCEPTION block), and it is forgotten when
 * the transaction ends.
 *
 * Readers see those heads: headlessly.entities overlays them
 * (pending_heads()), as_of reads them here (hl_stream_pending_head), and
 * functions that read heads with SQL first write them (hl_streams_flush).
 * A direct INSERT, UPDATE, DELETE or TRUNCATE of headlessly.streams in such
 * a transaction is refused (it would act on an outdated row); one in any
 * other transaction makes the cache look its rows up again.  Databases
 * whose schema predates this (no trigger on headlessly.streams) keep
 * writing every change at once.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"
#include "tenancy/tenancy.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_pending_heads);
PG_FUNCTION_INFO_V1(headlessly_streams_changed);

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
	S_NCOLUMNS = S_UPDATED_AT,
	S_HASH,						/* since 0.2: optional, the last event's hash */
	S_XACT_ID					/* since 0.2: optional, the last event's xact_id */
};

static const char *const column_names[S_NCOLUMNS] = {
	"tenant", "target", "version", "last_recorded_at", "noun", "state",
	"created_at", "updated_at"
};
static const Oid column_types[S_NCOLUMNS] = {
	TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, JSONBOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID
};

/* field4 of the advisory lock tags we use; SQL's own advisory locks use 1 and 2 */
#define HL_LOCKTAG_STREAM_CREATE 0x484c

/* the trigger that tells the cache about direct changes of the table */
#define DIRECT_CHANGE_TRIGGER "streams_direct_change"

/*
 * A transaction keeps at most this many heads (or this much memory) in its
 * cache; beyond, the cache's unwritten heads are written and it starts
 * afresh (at the top level of the transaction, where nothing needs undoing).
 */
#define HEAD_CACHE_MAX_ENTRIES 16384
#define HEAD_CACHE_MAX_BYTES (64 * 1024 * 1024)

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
	bool		cache_ok;		/* the schema overlays unwritten heads */
} StreamsRelids;

static StreamsRelids cached_relids;
static bool callback_registered = false;

/* the per-transaction head cache (below) must check the table's file */
static bool head_cache_check_file = false;

static Oid	head_cache_relid(void);

/*
 * Where each head was last found, across transactions: (tenant, target)'s
 * hash -> the TID the primary key has for it, the root of the head's HOT
 * chain, which stays put while its updates are HOT.  A hint only: what is
 * found there must be a visible head of that very key, or the index is
 * asked.  Forgotten on any relcache invalidation of the table (VACUUM,
 * rewrites), which bumps head_tids_generation.
 */
typedef struct HeadTid
{
	uint64		hash;			/* hash key: must be first */
	ItemPointerData root;
} HeadTid;

/* a few hundred kB at most; beyond, it starts afresh */
#define HEAD_TIDS_MAX 8192

static HTAB *head_tids = NULL;
static Oid	head_tids_relid = InvalidOid;	/* the table whose TIDs they are */
static uint64 head_tids_generation = 0;
static uint64 head_tids_built_at = 0;

static void
streams_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == head_tids_relid)
		head_tids_generation++;
	if (relid == InvalidOid || relid == cached_relids.rel || relid == cached_relids.pkey)
		cached_relids.rel = cached_relids.pkey = InvalidOid;
	if (relid == InvalidOid || relid == head_cache_relid())
		head_cache_check_file = true;
}

/*
 * Where a column that 0.2 added is in rows of tupdesc, or InvalidAttrNumber
 * if there is none (a 0.1 schema).  Found by name: a database upgraded
 * from 0.1 whose owner had added a column has it after that one.
 */
static AttrNumber
streams_column(TupleDesc tupdesc, AttrNumber usual, const char *name, Oid type)
{
	/* from its usual place on, round to the first column */
	for (int i = usual - 1; i < tupdesc->natts + usual - 1; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i % tupdesc->natts);

		if (!att->attisdropped && att->atttypid == type &&
			strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/* the last event's hash */
static inline AttrNumber
hash_column(TupleDesc tupdesc)
{
	return streams_column(tupdesc, S_HASH, "hash", BYTEAOID);
}

/* the last event's xact_id */
static inline AttrNumber
xact_id_column(TupleDesc tupdesc)
{
	return streams_column(tupdesc, S_XACT_ID, "xact_id", XID8OID);
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
		/* heads are built as Datums of these types: another would be misread */
		if (TupleDescAttr(tupdesc, i)->atttypid != column_types[i])
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of %s.streams is of type %s, not %s",
							column_names[i], HL_SCHEMA,
							format_type_be(TupleDescAttr(tupdesc, i)->atttypid),
							format_type_be(column_types[i])),
					 errhint("ALTER TABLE %s.streams ALTER COLUMN %s TYPE %s.",
							 HL_SCHEMA, column_names[i], format_type_be(column_types[i]))));
	}
}

/*
 * Heads are written with the table AM and ExecInsertIndexTuples, which
 * checks unique and exclusion constraints at once but leaves deferred ones
 * to triggers that only the executor queues: an index of the owner's that
 * is checked at commit would never be checked at all.
 */
static void
check_streams_indexes(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		bool		immediate = idx->rd_index->indimmediate;

		index_close(idx, AccessShareLock);
		if (!immediate)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("index \"%s\" of %s.streams is checked only at commit",
							get_rel_name(lfirst_oid(lc)), HL_SCHEMA),
					 errdetail("Appends write the stream heads without deferred checks, so its constraint would not be enforced."),
					 errhint("Drop the constraint, or add it without DEFERRABLE.")));
	}
	list_free(indexes);
}

/* whether name is one of the columns the extension gives headlessly.streams */
static bool
is_streams_column(const char *name)
{
	/* these two first: every append asks about the columns after the eighth */
	if (strcmp(name, "hash") == 0 || strcmp(name, "xact_id") == 0)
		return true;
	for (int i = 0; i < S_NCOLUMNS; i++)
		if (strcmp(name, column_names[i]) == 0)
			return true;
	return false;
}

/* a column the owner added to headlessly.streams */
static inline bool
is_owner_column(Form_pg_attribute att)
{
	return !att->attisdropped && !is_streams_column(NameStr(att->attname));
}

/*
 * Nor do they go through CHECK, NOT NULL and foreign key constraints, column
 * defaults or row triggers: what the owner adds of those would silently not
 * hold, so appends refuse it.  A nullable column of the owner's without a
 * default gets what an INSERT would give it, NULL.  Columns are known by
 * name: a database upgraded from 0.1 may have its later columns elsewhere.
 */
static void
check_streams_constraints(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TriggerDesc *trigdesc = rel->trigdesc;
	List	   *fkeys;
	ListCell   *lc;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			continue;
		if (is_owner_column(att) &&
			(att->atthasdef || att->attidentity || att->attgenerated || att->attnotnull))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of %s.streams has a default, an identity, a generation expression or NOT NULL",
							name, HL_SCHEMA),
					 errdetail("Appends write the stream heads themselves and would leave the column NULL."),
					 errhint("Drop the column; keep what you derive from the heads in a table of your own.")));
		if (att->attnotnull && i + 1 != S_TENANT && i + 1 != S_TARGET && i + 1 != S_VERSION &&
			!is_owner_column(att))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of %s.streams is NOT NULL", name, HL_SCHEMA),
					 errdetail("Appends write the stream heads without checking constraints, and a stream's head can leave it NULL."),
					 errhint("ALTER TABLE %s.streams ALTER COLUMN %s DROP NOT NULL.",
							 HL_SCHEMA, quote_identifier(name))));
	}
	for (int i = 0; tupdesc->constr != NULL && i < tupdesc->constr->num_check; i++)
	{
#if PG_VERSION_NUM >= 180000
		/* NOT ENFORCED: the executor does not check it either */
		if (!tupdesc->constr->check[i].ccenforced)
			continue;
#endif
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s.streams has check constraint \"%s\"",
						HL_SCHEMA, tupdesc->constr->check[i].ccname),
				 errdetail("Appends write the stream heads without checking constraints, so it would not be enforced."),
				 errhint("Drop the constraint.")));
	}
	fkeys = RelationGetFKeyList(rel);
	foreach(lc, fkeys)
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);

#if PG_VERSION_NUM >= 180000
		if (!fk->conenforced)
			continue;
#endif
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s.streams has foreign key constraint \"%s\"", HL_SCHEMA,
						get_constraint_name(fk->conoid)),
				 errdetail("Appends write the stream heads without checking constraints, so it would not be enforced."),
				 errhint("Drop the constraint.")));
	}
	for (int i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *t = &trigdesc->triggers[i];

		/*
		 * Internal ones enforce foreign keys: those on streams are refused
		 * above, those of tables referencing it need no write of ours.
		 */
		if (!t->tgisinternal && TRIGGER_FOR_ROW(t->tgtype) && t->tgenabled != TRIGGER_DISABLED &&
			(TRIGGER_FOR_INSERT(t->tgtype) || TRIGGER_FOR_UPDATE(t->tgtype)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s.streams has row trigger \"%s\"", HL_SCHEMA, t->tgname),
					 errdetail("Appends write the stream heads without firing row triggers, so it would not run."),
					 errhint("Drop the trigger; an after_commit hook or a subscription sees every append.")));
	}
}

/* whether the table has the trigger of schema versions that overlay heads */
static bool
has_direct_change_trigger(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;

	for (int i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		if (strcmp(trigdesc->triggers[i].tgname, DIRECT_CHANGE_TRIGGER) == 0)
			return true;
	}
	return false;
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
		hl_register_relcache_callback(streams_relcache_callback, (Datum) 0);
		callback_registered = true;
	}

	nsp = get_namespace_oid(HL_SCHEMA, false);
	found.rel = get_relname_relid("streams", nsp);
	found.pkey = get_relname_relid("streams_pkey", nsp);
	if (!OidIsValid(found.rel) || !OidIsValid(found.pkey))
		elog(ERROR, "table %s.streams or its primary key is missing", HL_SCHEMA);

	rel = table_open(found.rel, AccessShareLock);
	check_streams_columns(rel);
	check_streams_indexes(rel);
	check_streams_constraints(rel);
	found.cache_ok = has_direct_change_trigger(rel);
	table_close(rel, AccessShareLock);

	/* cached only now: an invalidation processed above must not clear it half-set */
	cached_relids = found;
	return found;
}

/* Rows and heads ------------------------------------------------------------ */


static void
read_head(TupleTableSlot *slot, HlStreamHead *head)
{
	bool		isnull;
	Datum		d;
	AttrNumber	attno;

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
	head->has_hash = false;
	attno = hash_column(slot->tts_tupleDescriptor);
	if (attno != InvalidAttrNumber)
	{
		d = slot_getattr(slot, attno, &isnull);
		if (!isnull && VARSIZE_ANY_EXHDR(DatumGetPointer(d)) == HL_HEAD_HASH_LEN)
		{
			memcpy(head->hash, VARDATA_ANY(DatumGetPointer(d)), HL_HEAD_HASH_LEN);
			head->has_hash = true;
		}
	}
	head->xact_id = InvalidFullTransactionId;
	attno = xact_id_column(slot->tts_tupleDescriptor);
	if (attno != InvalidAttrNumber)
	{
		d = slot_getattr(slot, attno, &isnull);
		if (!isnull)
			head->xact_id = DatumGetFullTransactionId(d);
	}
}

/*
 * The head as a row of the table: values and nulls for tupdesc's columns
 * (columns added by later versions are NULL).
 */
static void
head_values(TupleDesc tupdesc, text *tenant, text *target, const HlStreamHead *head,
			Datum *values, bool *nulls)
{
	AttrNumber	attno;

	memset(values, 0, tupdesc->natts * sizeof(Datum));
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
	attno = hash_column(tupdesc);
	if (head->has_hash && attno != InvalidAttrNumber)
	{
		bytea	   *hash = palloc(VARHDRSZ + HL_HEAD_HASH_LEN);

		SET_VARSIZE(hash, VARHDRSZ + HL_HEAD_HASH_LEN);
		memcpy(VARDATA(hash), head->hash, HL_HEAD_HASH_LEN);
		values[attno - 1] = PointerGetDatum(hash);
		nulls[attno - 1] = false;
	}
	attno = xact_id_column(tupdesc);
	if (FullTransactionIdIsValid(head->xact_id) && attno != InvalidAttrNumber)
	{
		values[attno - 1] = FullTransactionIdGetDatum(head->xact_id);
		nulls[attno - 1] = false;
	}
}

/* whether the owner added columns of its own (nullable, without defaults) */
static bool
has_owner_columns(TupleDesc tupdesc)
{
	for (int i = S_NCOLUMNS; i < tupdesc->natts; i++)
		if (is_owner_column(TupleDescAttr(tupdesc, i)))
			return true;
	return false;
}

/*
 * The head as a new row version.  The owner's columns are NULL in a new
 * head, as an INSERT leaves them, and in the next version of the one at
 * otid what they are there, as an UPDATE keeps them.
 */
static HeapTuple
form_head_tuple(Relation rel, ItemPointer otid, text *tenant, text *target,
				const HlStreamHead *head)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Datum	   *values = palloc(tupdesc->natts * sizeof(Datum));
	bool	   *nulls = palloc(tupdesc->natts * sizeof(bool));
	Datum	   *old_values;
	bool	   *old_nulls;
	HeapTupleData old;
	Buffer		buf;
	HeapTuple	tuple;

	head_values(tupdesc, tenant, target, head, values, nulls);
	if (otid == NULL || !has_owner_columns(tupdesc))
		return heap_form_tuple(tupdesc, values, nulls);

	old.t_self = *otid;
	if (!heap_fetch(rel, SnapshotAny, &old, &buf, false))
		elog(ERROR, "could not read the head of stream \"%s\" at (%u,%u)",
			 text_to_cstring(target), ItemPointerGetBlockNumber(otid),
			 ItemPointerGetOffsetNumber(otid));
	old_values = palloc(tupdesc->natts * sizeof(Datum));
	old_nulls = palloc(tupdesc->natts * sizeof(bool));
	heap_deform_tuple(&old, tupdesc, old_values, old_nulls);
	for (int i = S_NCOLUMNS; i < tupdesc->natts; i++)
	{
		if (is_owner_column(TupleDescAttr(tupdesc, i)))
		{
			values[i] = old_values[i];
			nulls[i] = old_nulls[i];
		}
	}
	/* the values point into the buffer: form the tuple before letting go */
	tuple = heap_form_tuple(tupdesc, values, nulls);
	ReleaseBuffer(buf);
	return tuple;
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
 * The version of the head at tid (the root of its HOT chain) that snapshot
 * sees, into slot; false if none, as an index fetch would.
 *
 * An index fetch would prune the page first whenever it is short of
 * fillfactor's free space, which once heads have filled their pages is on
 * every append, each time for the one dead version the last update left,
 * at the cost of a pass over the whole page.  Here the page is pruned only
 * when the head's next version may not fit on it: it then clears several
 * dead versions at once, and the update still stays on the page (HOT).
 */
static bool
fetch_head_version(Relation rel, ItemPointer root, Snapshot snapshot,
				   TupleTableSlot *slot)
{
	ItemPointerData tid = *root;
	Buffer		buf;
	/* the slot keeps a pointer to the tuple header: use its own, as heapam does */
	HeapTuple	tuple = &((BufferHeapTupleTableSlot *) slot)->base.tupdata;
	bool		all_dead = false;
	bool		found;

	Assert(TTS_IS_BUFFERTUPLE(slot));

	buf = ReadBuffer(rel, ItemPointerGetBlockNumber(&tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(&tid, rel, buf, snapshot, tuple, &all_dead, true);
	/* room for the next version, and for its state to grow by half */
	if (found &&
		PageGetHeapFreeSpace(BufferGetPage(buf)) < MAXALIGN(tuple->t_len + tuple->t_len / 2))
	{
		/* pruning needs our pin alone and no lock; it keeps line pointers */
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		heap_page_prune_opt(rel, buf);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		tid = *root;
		found = heap_hot_search_buffer(&tid, rel, buf, snapshot, tuple, &all_dead, true);
	}
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	/* the slot pins the page, which keeps the tuple where it is */
	if (found)
		ExecStoreBufferHeapTuple(tuple, slot, buf);
	ReleaseBuffer(buf);
	return found;
}

/*
 * Find the head of (tenant, target) with the snapshot; the row goes into
 * slot, and the TID the index has for it (its HOT chain's root) into
 * *root if given.  False if there is none.
 */
static bool
find_head(Relation rel, Relation idx, Snapshot snapshot, text *tenant, text *target,
		  TupleTableSlot *slot, ItemPointer root)
{
	IndexScanDesc scan;
	ScanKeyData keys[2];
	bool		found;

	set_scan_keys(keys, idx, tenant, target);
	scan = hl_index_beginscan(rel, idx, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	if (root == NULL)
		found = index_getnext_slot(scan, ForwardScanDirection, slot);
	else
	{
		/* index_getnext_slot(), keeping the index's TID (an MVCC snapshot) */
		Assert(IsMVCCSnapshot(snapshot));
		found = false;
		while (!found && index_getnext_tid(scan, ForwardScanDirection) != NULL)
		{
			*root = scan->xs_heaptid;
			found = fetch_head_version(rel, root, snapshot, slot);
		}
	}
	index_endscan(scan);
	return found;
}

static uint64
head_key_hash64(text *tenant, text *target)
{
	return hash_bytes_extended((const unsigned char *) VARDATA_ANY(target),
							   VARSIZE_ANY_EXHDR(target),
							   hash_bytes_extended((const unsigned char *) VARDATA_ANY(tenant),
												   VARSIZE_ANY_EXHDR(tenant), 0));
}

/*
 * Whether blkno is inside rel, without a system call when it can be known:
 * the size smgr remembered from its last lseek or extension.  The relation
 * only shrinks by a truncation, which sets this backend's remembered size,
 * or in another backend sends, before it truncates, the invalidation that
 * makes ours forget it; this transaction processed it when it first locked
 * rel, a lock no truncation can share.  So a block below it exists.  The
 * same test as freespace.c's fsm_does_block_exist(), which is static.
 */
static bool
block_in_relation(Relation rel, BlockNumber blkno)
{
	BlockNumber known = RelationGetSmgr(rel)->smgr_cached_nblocks[MAIN_FORKNUM];

	if (known != InvalidBlockNumber && blkno < known)
		return true;
	return blkno < RelationGetNumberOfBlocks(rel);
}

/*
 * The head of (tenant, target) where it was found last, as an index scan
 * would find it from the index's TID (following its HOT chain, with the
 * snapshot); false if it is not there any more.  Comparing the key bytes
 * is stricter than the index's equality, which can only mean a miss.
 */
static bool
find_head_at_hint(Relation rel, Snapshot snapshot, text *tenant, text *target,
				  uint64 hash, TupleTableSlot *slot, ItemPointer root)
{
	HeadTid    *hint;
	ItemPointerData tid;
	bool		isnull;

	if (head_tids == NULL || head_tids_relid != RelationGetRelid(rel))
		return false;
	hint = hash_search(head_tids, &hash, HASH_FIND, NULL);
	if (hint == NULL)
		return false;
	tid = hint->root;
	/*
	 * VACUUM truncates the table and lets go of it before the relcache
	 * invalidation that makes us forget hints: the hint may be past its end
	 */
	if (!block_in_relation(rel, ItemPointerGetBlockNumber(&tid)))
		return false;

	if (!fetch_head_version(rel, &tid, snapshot, slot))
		return false;
	if (!hl_text_equal(DatumGetTextPP(slot_getattr(slot, S_TENANT, &isnull)), tenant) ||
		!hl_text_equal(DatumGetTextPP(slot_getattr(slot, S_TARGET, &isnull)), target))
	{
		ExecClearTuple(slot);
		return false;
	}
	*root = tid;
	return true;
}

/* Remember where the head of hash was found, if the table is still that one. */
static void
remember_head_tid(Oid relid, uint64 hash, ItemPointer root, uint64 generation)
{
	HeadTid    *entry;

	if (generation != head_tids_generation)
		return;
	if (head_tids == NULL || head_tids_relid != relid ||
		hash_get_num_entries(head_tids) >= HEAD_TIDS_MAX)
	{
		HASHCTL		ctl;

		if (head_tids != NULL)
			hash_destroy(head_tids);
		head_tids = NULL;
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(HeadTid);
		ctl.hcxt = CacheMemoryContext;
		head_tids = hash_create("headlessly head TIDs", 1024, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		head_tids_relid = relid;
		head_tids_built_at = generation;
	}
	entry = hash_search(head_tids, &hash, HASH_ENTER, NULL);
	entry->root = *root;
}

/* whether this transaction wrote the row version in slot */
static bool
written_by_us(TupleTableSlot *slot)
{
	bool		should_free;
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
	bool		ours = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));

	if (should_free)
		heap_freetuple(tuple);
	return ours;
}

/*
 * Find the head of (tenant, target) and lock it; false if there is none.
 * *own says whether this transaction wrote the row version found (then it
 * needs no lock: nobody else can change it).
 */
static bool
lock_existing_head(StreamsRelids relids, text *tenant, text *target, HlStreamHead *head,
				   bool *own)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	ItemPointerData tid;
	TM_FailureData tmfd;
	TM_Result	result;
	bool		found;
	uint64		hash = head_key_hash64(tenant, target);
	uint64		generation;
	ItemPointerData root;

	rel = table_open(relids.rel, RowExclusiveLock);

	/*
	 * The newest committed head, and our own changes (hence the command
	 * counter increment); the lock below then waits for any transaction
	 * still holding it and follows its update to the newest version.
	 */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);

	/* TIDs remembered before the table last changed mean nothing now */
	generation = head_tids_generation;
	if (head_tids != NULL && head_tids_built_at != generation)
	{
		hash_destroy(head_tids);
		head_tids = NULL;
	}
	found = find_head_at_hint(rel, snapshot, tenant, target, hash, slot, &root);
	if (!found)
	{
		idx = index_open(relids.pkey, RowExclusiveLock);
		found = find_head(rel, idx, snapshot, tenant, target, slot, &root);
		index_close(idx, NoLock);
		if (found)
			remember_head_tid(RelationGetRelid(rel), hash, &root, generation);
	}
	*own = found && written_by_us(slot);
	if (found && *own)
		read_head(slot, head);
	else if (found)
	{
		tid = slot->tts_tid;
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
	table_close(rel, NoLock);
	return found;
}

/* The head at tid, a row version this transaction holds. */
static void
read_head_at(Oid relid, ItemPointer tid, HlStreamHead *head)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	if (!table_tuple_fetch_row_version(rel, tid, SnapshotAny, slot))
		elog(ERROR, "stream head at (%u,%u) is missing",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
	read_head(slot, head);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
}

/* Index entries for a head that moved off its page (non-HOT update). */
static void
insert_index_entries(Relation rel, HeapTuple tuple, HlIndexUpdate which)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	/* update = false: the hint it enables needs a range table we do not have */
	hl_insert_index_tuples(rri, slot, estate, which);
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
	TupleTableSlot *slot;
	LOCKTAG		tag;
	uint64		hash;
	bool		found;
	TransactionId xwait = InvalidTransactionId;

	hash = head_key_hash64(tenant, target);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32), (uint32) hash,
						 HL_LOCKTAG_STREAM_CREATE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	InitDirtySnapshot(dirty);
	slot = table_slot_create(rel, NULL);
	found = find_head(rel, idx, &dirty, tenant, target, slot, NULL);
	if (found)
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
	ExecDropSingleTupleTableSlot(slot);

	if (!found)
	{
		simple_heap_insert(rel, tuple);
		insert_index_entries(rel, tuple, HL_INDEX_UPDATE_ALL);
	}
	LockRelease(&tag, ExclusiveLock, false);
	index_close(idx, NoLock);

	if (found && TransactionIdIsValid(xwait))
		XactLockTableWait(xwait, NULL, NULL, XLTW_None);
	return !found;
}

/* Write the head over the row version at otid; returns the new version's TID. */
static ItemPointerData
update_head(Relation rel, ItemPointer otid, text *tenant, text *target,
			const HlStreamHead *head)
{
	HeapTuple	tuple = form_head_tuple(rel, otid, tenant, target, head);
	ItemPointerData tid;
	HlIndexUpdate which;

	/* we hold the row, so this cannot meet a concurrent update */
	which = hl_simple_heap_update(rel, otid, tuple);
	if (which != HL_INDEX_UPDATE_NONE)
		insert_index_entries(rel, tuple, which);

	tid = tuple->t_self;
	heap_freetuple(tuple);
	return tid;
}

/* The per-transaction head cache ----------------------------------------------- */

typedef struct HeadKey
{
	const char *tenant;
	const char *target;
	int			tenant_len;
	int			target_len;
} HeadKey;

/* what a subtransaction's abort puts back */
typedef struct HeadValue
{
	ItemPointerData tid;		/* the row version this transaction holds */
	bool		own_version;	/* written by this transaction: change it in memory */
	bool		dirty;			/* head has changes the row has not */
	uint32		generation;		/* head_cache.generation when tid was found */
	HlStreamHead head;			/* if dirty; noun and state in cache memory */
} HeadValue;

typedef struct HeadSave
{
	HeadValue	value;
	SubTransactionId changed_subid; /* who had changed it before */
	struct HeadSave *prev;
} HeadSave;

typedef struct HeadEntry
{
	HeadKey		key;			/* hash key: must be first */
	HeadValue	value;
	SubTransactionId created_subid; /* abort of it removes the entry */
	SubTransactionId changed_subid; /* abort of it restores saved */
	HeadSave   *saved;			/* the value before changed_subid changed it */
} HeadEntry;

/* an entry a subtransaction created or first changed */
typedef struct HeadUndo
{
	HeadEntry  *entry;
	SubTransactionId subid;
} HeadUndo;

static struct
{
	MemoryContext cxt;			/* child of TopTransactionContext */
	HTAB	   *entries;
	Oid			relid;			/* the table whose rows the TIDs are */
	Oid			relfilenode;	/* its file when they were found */
	uint32		generation;		/* changed by direct changes of the table */
	int			ndirty;			/* entries with unwritten heads */
	HeadUndo   *undo;			/* oldest first; only for subtransactions */
	int			nundo;
	int			maxundo;
}			head_cache;

static bool xact_callbacks_registered = false;

static uint32
head_key_hash(const void *key, Size keysize)
{
	const HeadKey *k = key;

	return hash_combine(hash_bytes((const unsigned char *) k->tenant, k->tenant_len),
						hash_bytes((const unsigned char *) k->target, k->target_len));
}

static int
head_key_match(const void *key1, const void *key2, Size keysize)
{
	const HeadKey *a = key1;
	const HeadKey *b = key2;

	if (a->tenant_len != b->tenant_len || a->target_len != b->target_len ||
		memcmp(a->target, b->target, a->target_len) != 0 ||
		memcmp(a->tenant, b->tenant, a->tenant_len) != 0)
		return 1;
	return 0;
}

/* entries keep their key's bytes in cache memory */
static void *
head_key_copy(void *dest, const void *src, Size keysize)
{
	const HeadKey *s = src;
	HeadKey    *d = dest;
	char	   *bytes = MemoryContextAlloc(head_cache.cxt, s->tenant_len + s->target_len);

	memcpy(bytes, s->tenant, s->tenant_len);
	memcpy(bytes + s->tenant_len, s->target, s->target_len);
	d->tenant = bytes;
	d->target = bytes + s->tenant_len;
	d->tenant_len = s->tenant_len;
	d->target_len = s->target_len;
	return dest;
}

static HeadKey
make_key(text *tenant, text *target)
{
	HeadKey		key;

	key.tenant = VARDATA_ANY(tenant);
	key.tenant_len = VARSIZE_ANY_EXHDR(tenant);
	key.target = VARDATA_ANY(target);
	key.target_len = VARSIZE_ANY_EXHDR(target);
	return key;
}

static void head_cache_xact_callback(XactEvent event, void *arg);
static void head_cache_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
										SubTransactionId parentSubid, void *arg);

static void
head_cache_create(Oid relid, Oid relfilenode)
{
	HASHCTL		ctl;

	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(head_cache_xact_callback, NULL);
		RegisterSubXactCallback(head_cache_subxact_callback, NULL);
		xact_callbacks_registered = true;
	}

	memset(&head_cache, 0, sizeof(head_cache));
	head_cache.cxt = AllocSetContextCreate(TopTransactionContext, "headlessly stream heads",
										   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(HeadKey);
	ctl.entrysize = sizeof(HeadEntry);
	ctl.hash = head_key_hash;
	ctl.match = head_key_match;
	ctl.keycopy = head_key_copy;
	ctl.hcxt = head_cache.cxt;
	head_cache.entries = hash_create("headlessly stream heads", 256, &ctl,
									 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
									 HASH_KEYCOPY | HASH_CONTEXT);
	head_cache.relid = relid;
	head_cache.relfilenode = relfilenode;
}

/* the table whose rows the cache's TIDs are, if there is a cache */
static Oid
head_cache_relid(void)
{
	return head_cache.entries != NULL ? head_cache.relid : InvalidOid;
}

/* At transaction end: the memory goes with the transaction's. */
static void
head_cache_forget(void)
{
	memset(&head_cache, 0, sizeof(head_cache));
}

static void
value_free(HeadValue *v)
{
	if (v->dirty)
	{
		if (v->head.noun)
			pfree(v->head.noun);
		if (v->head.state)
			pfree(v->head.state);
	}
}

/* Room for one more undo record: allocated before anything changes. */
static void
undo_reserve(void)
{
	if (head_cache.nundo < head_cache.maxundo)
		return;
	if (head_cache.undo == NULL)
	{
		head_cache.undo = MemoryContextAlloc(head_cache.cxt, 64 * sizeof(HeadUndo));
		head_cache.maxundo = 64;
	}
	else
	{
		head_cache.undo = repalloc(head_cache.undo, 2 * head_cache.maxundo * sizeof(HeadUndo));
		head_cache.maxundo *= 2;
	}
}

static void
undo_push(HeadEntry *e, SubTransactionId subid)
{
	Assert(head_cache.nundo < head_cache.maxundo);
	head_cache.undo[head_cache.nundo].entry = e;
	head_cache.undo[head_cache.nundo].subid = subid;
	head_cache.nundo++;
}

/*
 * Replace the entry's value in the current subtransaction, keeping the old
 * one if an abort of this subtransaction must put it back.  The new head, if
 * dirty, is copied into cache memory.
 */
static void
entry_set(HeadEntry *e, ItemPointer tid, bool own_version, const HlStreamHead *dirty_head)
{
	SubTransactionId cur = GetCurrentSubTransactionId();
	HeadValue	v;

	memset(&v, 0, sizeof(v));
	v.tid = *tid;
	v.own_version = own_version;
	v.generation = head_cache.generation;
	if (dirty_head != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(head_cache.cxt);

		v.dirty = true;
		v.head = *dirty_head;
		v.head.noun = dirty_head->noun ? pstrdup(dirty_head->noun) : NULL;
		v.head.state = dirty_head->state ?
			DatumGetJsonbP(datumCopy(JsonbPGetDatum(dirty_head->state), false, -1)) : NULL;
		MemoryContextSwitchTo(old);
	}

	if (e->changed_subid != cur && e->created_subid != cur && cur != TopSubTransactionId)
	{
		HeadSave   *save = MemoryContextAlloc(head_cache.cxt, sizeof(HeadSave));

		/* nothing may fail once the entry starts to change */
		undo_reserve();
		save->value = e->value;
		save->changed_subid = e->changed_subid;
		save->prev = e->saved;
		e->saved = save;
		undo_push(e, cur);
	}
	else
		value_free(&e->value);
	e->changed_subid = cur;

	head_cache.ndirty += (int) v.dirty - (int) e->value.dirty;
	e->value = v;
}

static void
entry_remove(HeadEntry *e)
{
	char	   *key_bytes = (char *) e->key.tenant;

	if (e->value.dirty)
		head_cache.ndirty--;
	value_free(&e->value);
	while (e->saved != NULL)
	{
		HeadSave   *save = e->saved;

		e->saved = save->prev;
		value_free(&save->value);
		pfree(save);
	}
	hash_search(head_cache.entries, &e->key, HASH_REMOVE, NULL);
	pfree(key_bytes);
}

/*
 * A rewrite of the table in this transaction (CLUSTER, ALTER TABLE) moves
 * every row: the TIDs the cache has are then looked up again by key.
 */
static void
check_table_file(Relation rel)
{
	if (RelationGetForm(rel)->relfilenode != head_cache.relfilenode)
	{
		head_cache.relfilenode = RelationGetForm(rel)->relfilenode;
		head_cache.generation++;
	}
	head_cache_check_file = false;
}

/*
 * The cache entry of (tenant, target), made if create; NULL if there is
 * none or the cache cannot be used for this table.
 */
static HeadEntry *
head_cache_entry(StreamsRelids relids, text *tenant, text *target, bool create)
{
	HeadKey		key = make_key(tenant, target);
	HeadEntry  *e;
	bool		found;

	if (!relids.cache_ok)
		return NULL;

	if (head_cache.entries != NULL && head_cache_check_file)
	{
		Relation	rel = RelationIdGetRelation(head_cache.relid);

		if (RelationIsValid(rel))
		{
			check_table_file(rel);
			RelationClose(rel);
		}
	}

	if (head_cache.entries == NULL)
	{
		Relation	rel;

		if (!create)
			return NULL;
		rel = table_open(relids.rel, RowExclusiveLock);
		head_cache_create(relids.rel, RelationGetForm(rel)->relfilenode);
		table_close(rel, NoLock);
	}
	/* the extension dropped and created again in this transaction */
	if (head_cache.relid != relids.rel)
		return NULL;

	if (!create)
		return hash_search(head_cache.entries, &key, HASH_FIND, NULL);

	/* a full cache is written and emptied where no subtransaction needs it */
	if (GetCurrentTransactionNestLevel() == 1 &&
		(hash_get_num_entries(head_cache.entries) >= HEAD_CACHE_MAX_ENTRIES ||
		 MemoryContextMemAllocated(head_cache.cxt, true) >= HEAD_CACHE_MAX_BYTES))
	{
		Relation	rel = table_open(relids.rel, RowExclusiveLock);
		Oid			relfilenode = RelationGetForm(rel)->relfilenode;

		hl_streams_flush();
		MemoryContextDelete(head_cache.cxt);
		head_cache_create(relids.rel, relfilenode);
		table_close(rel, NoLock);
	}

	if (GetCurrentTransactionNestLevel() > 1)
		undo_reserve();
	e = hash_search(head_cache.entries, &key, HASH_ENTER, &found);
	if (!found)
	{
		SubTransactionId cur = GetCurrentSubTransactionId();

		/* a miss until the caller sets it */
		memset(&e->value, 0, sizeof(e->value));
		e->value.generation = head_cache.generation - 1;
		e->created_subid = e->changed_subid = cur;
		e->saved = NULL;
		if (cur != TopSubTransactionId)
			undo_push(e, cur);
	}
	return e;
}

/*
 * Remember the row version of (tenant, target) this transaction holds.  An
 * entry the cache has is brought up to date; a new one is made only if
 * make (for a row this transaction wrote: its next change stays in
 * memory), so a stream appended to once in a transaction costs nothing here.
 */
static void
remember_head(StreamsRelids relids, text *tenant, text *target, ItemPointer tid,
			  bool own_version, bool make)
{
	HeadEntry  *e = head_cache_entry(relids, tenant, target, make);

	if (e != NULL)
		entry_set(e, tid, own_version, NULL);
}

static void
copy_head_out(const HlStreamHead *from, HlStreamHead *to)
{
	*to = *from;
	to->noun = from->noun ? pstrdup(from->noun) : NULL;
	to->state = from->state ?
		DatumGetJsonbP(datumCopy(JsonbPGetDatum(from->state), false, -1)) : NULL;
}

/*
 * The row version of an entry whose TID is out of date (the table was
 * rewritten): found again by its key.
 */
static void
entry_relocate(HeadEntry *e, Relation rel, Oid pkey)
{
	Relation	idx = index_open(pkey, RowExclusiveLock);
	text	   *tenant = cstring_to_text_with_len(e->key.tenant, e->key.tenant_len);
	text	   *target = cstring_to_text_with_len(e->key.target, e->key.target_len);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot;
	HlStreamHead head;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (!find_head(rel, idx, snapshot, tenant, target, slot, NULL))
		elog(ERROR, "the head of stream \"%s\" is missing", text_to_cstring(target));
	head = e->value.head;
	entry_set(e, &slot->tts_tid, written_by_us(slot), e->value.dirty ? &head : NULL);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
}

/*
 * Write every head this transaction keeps unwritten.  Returns whether
 * there were any.
 */
bool
hl_streams_flush(void)
{
	HASH_SEQ_STATUS status;
	HeadEntry  *e;
	Relation	rel;
	Oid			pkey;
	MemoryContext cxt;
	MemoryContext old;
	bool		pushed_snapshot = false;

	if (head_cache.entries == NULL || head_cache.ndirty == 0)
		return false;

	/* gone with DROP EXTENSION in this transaction: nothing to write to */
	rel = try_table_open(head_cache.relid, RowExclusiveLock);
	if (rel == NULL)
		return false;
	/* the transaction may have altered the table since its appends */
	(void) resolve_streams();

	/*
	 * At commit no statement's snapshot is active, and heap_update needs one
	 * (TOAST reads the old row's out-of-line values with it).
	 */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed_snapshot = true;
	}
	check_table_file(rel);
	pkey = hl_relation_primary_key(rel);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly head flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	hash_seq_init(&status, head_cache.entries);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		text	   *tenant;
		text	   *target;
		ItemPointerData tid;

		if (!e->value.dirty)
			continue;
		if (e->value.generation != head_cache.generation)
			entry_relocate(e, rel, pkey);
		tenant = cstring_to_text_with_len(e->key.tenant, e->key.tenant_len);
		target = cstring_to_text_with_len(e->key.target, e->key.target_len);
		tid = update_head(rel, &e->value.tid, tenant, target, &e->value.head);
		entry_set(e, &tid, true, NULL);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (pushed_snapshot)
		PopActiveSnapshot();
	table_close(rel, NoLock);
	return true;
}

/*
 * This transaction's unwritten head of (tenant, target), copied into *head;
 * false if it has none (then the table's row is the head).
 */
bool
hl_stream_pending_head(text *tenant, text *target, HlStreamHead *head)
{
	HeadKey		key;
	HeadEntry  *e;

	if (head_cache.entries == NULL || head_cache.ndirty == 0)
		return false;
	key = make_key(tenant, target);
	e = hash_search(head_cache.entries, &key, HASH_FIND, NULL);
	if (e == NULL || !e->value.dirty)
		return false;
	copy_head_out(&e->value.head, head);
	head->tid = e->value.tid;
	head->is_new = false;
	return true;
}

/* A subtransaction ends: put back what an abort undoes, pass the rest up. */
static void
head_cache_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	int			first;
	int			kept;

	if (head_cache.entries == NULL ||
		(event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;

	/* the records of this subtransaction are the last ones */
	first = head_cache.nundo;
	while (first > 0 && head_cache.undo[first - 1].subid == mySubid)
		first--;

	kept = first;
	for (int i = first; i < head_cache.nundo; i++)
	{
		HeadEntry  *e = head_cache.undo[i].entry;
		bool		keep = false;

		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			if (e->created_subid == mySubid)
				entry_remove(e);
			else
			{
				HeadSave   *save = e->saved;

				Assert(e->changed_subid == mySubid && save != NULL);
				head_cache.ndirty += (int) save->value.dirty - (int) e->value.dirty;
				value_free(&e->value);
				e->value = save->value;
				e->changed_subid = save->changed_subid;
				e->saved = save->prev;
				pfree(save);
			}
			continue;
		}

		if (e->created_subid == mySubid)
		{
			e->created_subid = parentSubid;
			keep = true;
		}
		if (e->changed_subid == mySubid)
		{
			HeadSave   *save = e->saved;

			e->changed_subid = parentSubid;
			if (save != NULL &&
				(save->changed_subid == parentSubid || parentSubid == TopSubTransactionId))
			{
				/* the parent's own saved value, if it needs one, is older */
				e->saved = save->prev;
				value_free(&save->value);
				pfree(save);
			}
			else if (save != NULL)
				keep = true;
		}
		/* the top level needs no undoing */
		if (keep && parentSubid != TopSubTransactionId)
		{
			head_cache.undo[kept].entry = e;
			head_cache.undo[kept].subid = parentSubid;
			kept++;
		}
	}
	head_cache.nundo = kept;
}

static void
head_cache_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			hl_streams_flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			head_cache_forget();
			break;
		default:
			break;
	}
}

/* Locking and storing heads -------------------------------------------------- */

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
		HeadEntry  *e = head_cache_entry(relids, tenant, target, false);
		bool		own;

		if (e != NULL && e->value.dirty && e->value.generation != head_cache.generation)
		{
			/* its row moved; the head is still the one in memory */
			Relation	rel = table_open(relids.rel, RowExclusiveLock);

			entry_relocate(e, rel, relids.pkey);
			table_close(rel, NoLock);
		}
		if (e != NULL && e->value.generation == head_cache.generation)
		{
			/* held by this transaction already */
			if (e->value.dirty)
				copy_head_out(&e->value.head, head);
			else
				read_head_at(relids.rel, &e->value.tid, head);
			head->tid = e->value.tid;
			head->is_new = false;
			return;
		}
		if (lock_existing_head(relids, tenant, target, head, &own))
		{
			head->is_new = false;
			remember_head(relids, tenant, target, &head->tid, own, own);
			return;
		}
		memset(head, 0, sizeof(*head));
		head->is_new = true;
		if (!create)
			return;
		/* a concurrent creator makes this a no-op: then lock its head */
		(void) hl_stream_store(tenant, target, head);
	}
}

/*
 * Write back a head locked by hl_stream_lock in this transaction, or insert
 * a new stream's head.  False only for a new stream whose head another
 * transaction inserted (and committed) meanwhile: the caller starts over.
 *
 * A head whose row this transaction has written already is kept in memory
 * and written when the transaction commits (see the top of this file).
 */
bool
hl_stream_store(text *tenant, text *target, const HlStreamHead *head)
{
	StreamsRelids relids = resolve_streams();
	HeadEntry  *e;
	Relation	rel;
	ItemPointerData tid;

	if (!head->is_new)
	{
		e = head_cache_entry(relids, tenant, target, false);
		if (e != NULL && e->value.generation == head_cache.generation &&
			e->value.own_version && ItemPointerEquals(&e->value.tid, (ItemPointer) &head->tid))
		{
			entry_set(e, &e->value.tid, true, head);
			return true;
		}
	}

	rel = table_open(relids.rel, RowExclusiveLock);
	/* an ALTER we waited for, or ran, may have added what heads cannot keep */
	(void) resolve_streams();
	if (head->is_new)
	{
		HeapTuple	tuple = form_head_tuple(rel, NULL, tenant, target, head);
		bool		created = create_head(rel, relids.pkey, tenant, target, tuple);

		tid = tuple->t_self;
		heap_freetuple(tuple);
		table_close(rel, NoLock);
		if (created)
			remember_head(relids, tenant, target, &tid, true, false);
		return created;
	}

	tid = update_head(rel, (ItemPointer) &head->tid, tenant, target, head);
	table_close(rel, NoLock);
	remember_head(relids, tenant, target, &tid, true, false);
	return true;
}

/* SQL: the unwritten heads, and direct changes of the table -------------------- */

/*
 * pending_heads() RETURNS SETOF headlessly.streams: the heads this
 * transaction changed after writing them, as they are now; they replace
 * the table's rows in headlessly.heads (and so headlessly.entities).
 * Only those of tenants the current role may read, as row security on the
 * table would show them: a tenant role's transaction can hold other
 * tenants' heads, appended for it by a function running as another role.
 */
Datum
headlessly_pending_heads(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	HASH_SEQ_STATUS status;
	HeadEntry  *e;
	Datum	   *values;
	bool	   *nulls;

	hl_result_set_init(fcinfo, "pending_heads", &rs);
	if (head_cache.entries == NULL || head_cache.ndirty == 0)
		PG_RETURN_NULL();

	if (rs.tupdesc->natts < S_NCOLUMNS)
		elog(ERROR, "pending_heads() must return rows of %s.streams", HL_SCHEMA);
	values = palloc(rs.tupdesc->natts * sizeof(Datum));
	nulls = palloc(rs.tupdesc->natts * sizeof(bool));
	hash_seq_init(&status, head_cache.entries);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!e->value.dirty ||
			!hl_tenant_permits(e->key.tenant, e->key.tenant_len, HL_TENANT_READ))
			continue;
		head_values(rs.tupdesc,
					cstring_to_text_with_len(e->key.tenant, e->key.tenant_len),
					cstring_to_text_with_len(e->key.target, e->key.target_len),
					&e->value.head, values, nulls);
		tuplestore_putvalues(rs.store, rs.tupdesc, values, nulls);
	}
	PG_RETURN_NULL();
}

/*
 * Trigger BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ... FOR EACH
 * STATEMENT on headlessly.streams: a direct change may move any row, so
 * the cache looks its heads up again; while this transaction keeps heads
 * unwritten, the change would act on outdated rows, so it is refused.
 */
Datum
headlessly_streams_changed(PG_FUNCTION_ARGS)
{
	(void) hl_trigger_data(fcinfo, "headlessly.streams_changed()",
						   HL_FIRED_BEFORE | HL_FIRED_STATEMENT);

	if (head_cache.entries == NULL)
		return PointerGetDatum(NULL);
	if (head_cache.ndirty > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change %s.streams directly in this transaction", HL_SCHEMA),
				 errdetail("This transaction appended more than once to %d stream(s); "
						   "their heads are written when it commits.",
						   head_cache.ndirty),
				 errhint("Change %s.streams in a transaction of its own.", HL_SCHEMA)));
	head_cache.generation++;
	return PointerGetDatum(NULL);
}
