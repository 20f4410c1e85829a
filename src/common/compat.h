/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The server APIs whose signatures differ between the PostgreSQL
 *	  versions we build on (15 to 18), each behind one wrapper, so that the
 *	  rest of the code has no PG_VERSION_NUM tests.
 *
 * Each wrapper names the version that changed the API.  16 is not tested
 * (no Debian suite ships it); its branches follow the 16 headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_COMPAT_H
#define HL_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "common/base64.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/backend_status.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

#if PG_VERSION_NUM < 150000
#error "headlessly_events needs PostgreSQL 15 or later (its SQL uses NULLS NOT DISTINCT)"
#endif

/* Does roleid own relation relid?  (16: object_ownercheck) */
static inline bool
hl_relation_ownercheck(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/* roleid's rights on function funcid.  (16: object_aclcheck) */
static inline AclResult
hl_function_aclcheck(Oid funcid, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, funcid, roleid, mode);
#else
	return pg_proc_aclcheck(funcid, roleid, mode);
#endif
}

/* roleid's rights on schema nspid.  (16: object_aclcheck) */
static inline AclResult
hl_namespace_aclcheck(Oid nspid, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(NamespaceRelationId, nspid, roleid, mode);
#else
	return pg_namespace_aclcheck(nspid, roleid, mode);
#endif
}

/* The sequence of an identity column.  (17: takes the relation) */
static inline Oid
hl_identity_sequence(Relation rel, AttrNumber attnum)
{
#if PG_VERSION_NUM >= 170000
	return getIdentitySequence(rel, attnum, false);
#else
	return getIdentitySequence(RelationGetRelid(rel), attnum, false);
#endif
}

/*
 * A range table of the one relation rte names, as the executor needs it
 * to insert into that relation outside a plan (ExecSimpleRelationInsert).
 * Permissions are the caller's to check, as in logical replication's
 * apply worker.  (16: permission infos apart from the entries; 18: the
 * entries left after pruning)
 */
static inline void
hl_init_range_table(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	addRTEPermissionInfo(&perminfos, rte);
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#else
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#endif
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/* Index entries a new tuple version needs after simple_heap_update. */
typedef enum HlIndexUpdate
{
	HL_INDEX_UPDATE_NONE,		/* heap-only tuple: none */
	HL_INDEX_UPDATE_SUMMARIZING,	/* heap-only, but summarizing indexes (16+) */
	HL_INDEX_UPDATE_ALL
} HlIndexUpdate;

/* simple_heap_update.  (16: reports the index entries needed) */
static inline HlIndexUpdate
hl_simple_heap_update(Relation rel, ItemPointer otid, HeapTuple tuple)
{
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes update_indexes;

	simple_heap_update(rel, otid, tuple, &update_indexes);
	switch (update_indexes)
	{
		case TU_None:
			return HL_INDEX_UPDATE_NONE;
		case TU_Summarizing:
			return HL_INDEX_UPDATE_SUMMARIZING;
		case TU_All:
			break;
	}
	return HL_INDEX_UPDATE_ALL;
#else
	simple_heap_update(rel, otid, tuple);
	return HeapTupleIsHeapOnly(tuple) ? HL_INDEX_UPDATE_NONE : HL_INDEX_UPDATE_ALL;
#endif
}

/*
 * Insert a tuple's entries into the indexes opened in rri, without
 * conflict checks; only the summarizing ones if asked (16+).  (16: the
 * onlySummarizing argument)
 */
static inline void
hl_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
					   HlIndexUpdate which)
{
	Assert(which != HL_INDEX_UPDATE_NONE);
#if PG_VERSION_NUM >= 160000
	(void) ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 which == HL_INDEX_UPDATE_SUMMARIZING);
#else
	(void) ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

/* index_beginscan.  (18: takes instrumentation, none here) */
static inline IndexScanDesc
hl_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
				   int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/* The relation's primary key index.  (18: whether a deferrable one will do) */
static inline Oid
hl_relation_primary_key(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/*
 * This backend's local transaction id, by which state kept across statements
 * can tell that its transaction ended.  (17: moved into PGPROC.vxid)
 */
static inline LocalTransactionId
hl_local_xid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

/*
 * The i-th (from 1) entry of this transaction's copy of the backends'
 * statuses, up to pgstat_fetch_stat_numbackends().  (17: renamed)
 */
static inline LocalPgBackendStatus *
hl_local_backend_status(int i)
{
#if PG_VERSION_NUM >= 170000
	return pgstat_get_local_beentry_by_index(i);
#else
	return pgstat_fetch_stat_local_beentry(i);
#endif
}

/*
 * What the index's access method keeps between inserts of a statement, let
 * go as ExecCloseIndices() does.  (17: new, for BRIN)
 */
static inline void
hl_index_insert_cleanup(Relation index, IndexInfo *info)
{
#if PG_VERSION_NUM >= 170000
	index_insert_cleanup(index, info);
#endif
}

/* Is this process a background worker?  (17: a macro on MyBackendType) */
static inline bool
hl_am_background_worker(void)
{
#if PG_VERSION_NUM >= 170000
	return AmBackgroundWorkerProcess();
#else
	return IsBackgroundWorker;
#endif
}

/*
 * Base64 of bytes, and bytes of base64: -1 when dst is too small or src is
 * not base64.  (18: the byte side became uint8)
 */
static inline int
hl_b64_encode(const uint8 *src, int len, char *dst, int dstlen)
{
#if PG_VERSION_NUM >= 180000
	return pg_b64_encode(src, len, dst, dstlen);
#else
	return pg_b64_encode((const char *) src, len, dst, dstlen);
#endif
}

static inline int
hl_b64_decode(const char *src, int len, uint8 *dst, int dstlen)
{
#if PG_VERSION_NUM >= 180000
	return pg_b64_decode(src, len, dst, dstlen);
#else
	return pg_b64_decode(src, len, (char *) dst, dstlen);
#endif
}

#endif							/* HL_COMPAT_H */
