/*-------------------------------------------------------------------------
 *
 * seal.c
 *	  Checkpoints: headlessly.checkpoint() and hl_tamper_checkpoint_all().
 *
 * A checkpoint seals, per tenant, every event committed before it that no
 * earlier checkpoint sealed.  "Committed before it": the event's xact_id is
 * below the xmin of a snapshot taken once checkpoints are locked, so the
 * appending transaction has ended, and any transaction still running, or
 * started later, has an id at least that high and lands in a later
 * checkpoint.  So sealing reads what has committed and never waits for an
 * append: it locks only headlessly.checkpoints (two checkpoint() calls
 * serialize there; appends never touch it).
 *
 * headlessly.checkpoint_horizon remembers that xmin: events since then are
 * found on events_xact_idx.  Without it (a fresh install, an update from
 * 0.1, a restored dump, whose events all carry the restoring transaction's
 * id) the unsealed events are found by seq, against the checkpoints' seqs.
 *
 * A checkpoint's seqs holds exactly its events among its tenant's, and is
 * kept small by running over other tenants' events: a range is broken only
 * by the tenant's own events it does not seal and by seqs with no visible
 * event, which may be an append still in progress.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

/* backend only: test/tamper/run.sh compiles src/tamper/ for a frontend too */
#ifndef FRONTEND

#include "log/log.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_checkpoint);

char	   *hl_signing_key_file = NULL;

static bool
check_signing_key_file(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0' && !is_absolute_path(*newval))
	{
		GUC_check_errdetail("headlessly.signing_key_file must be an absolute path.");
		return false;
	}
	return true;
}

void
hl_tamper_init(void)
{
	DefineCustomStringVariable("headlessly.signing_key_file",
							   "Ed25519 private key (PEM) that signs checkpoints.",
							   "An absolute path outside the data directory, readable only by the server's user; empty: checkpoints are not signed.",
							   &hl_signing_key_file,
							   NULL,
							   PGC_SUSET,
							   /* like ssl_key_file: where the key is, is not everyone's business */
							   GUC_SUPERUSER_ONLY,
							   check_signing_key_file, NULL, NULL);
}

/* A transaction id of a current snapshot, with its epoch. */
FullTransactionId
hl_widen_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/* One tenant's checkpoint in the making. */
typedef struct Sealing
{
	char	   *tenant;			/* as stored, NUL-terminated */
	int			tenant_len;
	HlMerkleBuilder tree;
	int64		count;
	int64		first_seq;
	int64		last_seq;
	int64		broken_at;		/* the last seq that breaks this tenant's range */
	/* the ranges of seqs: [lower[i], upper[i]) */
	int64	   *lower;
	int64	   *upper;
	int			nranges;
	int			maxranges;
	struct Sealing *next;
} Sealing;

typedef struct SealState
{
	HTAB	   *tenants;		/* tenant -> Sealing * */
	Sealing    *first;			/* in order of first sealed event */
	Sealing   **last;
	HlHasher   *hasher;
	int64		prev_seq;		/* the previous row's seq */
	int64		global_break;	/* the last seq with no visible event */
	Sealing    *last_sealing;	/* rows come in runs of one tenant */
} SealState;

typedef struct TenantKey
{
	char		name[HL_MAX_NAME_BYTES + 1];
} TenantKey;

typedef struct TenantEntry
{
	TenantKey	key;
	Sealing    *sealing;
} TenantEntry;

/* keys are hashed up to their NUL (HASH_STRINGS), not over all their bytes */
static inline void
tenant_key(TenantKey *key, const char *tenant, int len)
{
	len = Min(len, HL_MAX_NAME_BYTES);
	memcpy(key->name, tenant, len);
	key->name[len] = '\0';
}

static Sealing *
sealing_for(SealState *st, const char *tenant, int len)
{
	TenantKey	key;
	TenantEntry *e;
	bool		found;

	if (st->last_sealing != NULL && st->last_sealing->tenant_len == len &&
		memcmp(st->last_sealing->tenant, tenant, len) == 0)
		return st->last_sealing;
	tenant_key(&key, tenant, len);
	e = hash_search(st->tenants, &key, HASH_ENTER, &found);
	if (!found)
	{
		Sealing    *s = palloc0(sizeof(Sealing));

		s->tenant = pnstrdup(tenant, len);
		s->tenant_len = len;
		hl_merkle_init(&s->tree, st->hasher);
		s->broken_at = -1;
		s->maxranges = 16;
		s->lower = palloc(s->maxranges * sizeof(int64));
		s->upper = palloc(s->maxranges * sizeof(int64));
		*st->last = s;
		st->last = &s->next;
		e->sealing = s;
	}
	st->last_sealing = e->sealing;
	return e->sealing;
}

/* One row of the seq span, in seq order: sealed now, or not. */
static void
seal_row(SealState *st, int64 seq, const char *tenant, int tenant_len, bool seal,
		 const HlHash *hash)
{
	Sealing    *s;

	if (st->prev_seq >= 0 && seq > st->prev_seq + 1)
		st->global_break = seq - 1;
	st->prev_seq = seq;

	if (!seal)
	{
		/* an event of the tenant sealed before breaks its range */
		TenantKey	key;
		TenantEntry *e;

		tenant_key(&key, tenant, tenant_len);
		e = hash_search(st->tenants, &key, HASH_FIND, NULL);
		if (e != NULL)
			e->sealing->broken_at = seq;
		return;
	}

	s = sealing_for(st, tenant, tenant_len);
	hl_merkle_add(&s->tree, hash->bytes, HL_HASH_LEN);

	if (s->count > 0 && s->broken_at < s->last_seq && st->global_break < s->last_seq)
		s->upper[s->nranges - 1] = seq + 1;
	else
	{
		if (s->nranges == s->maxranges)
		{
			s->maxranges *= 2;
			s->lower = repalloc(s->lower, s->maxranges * sizeof(int64));
			s->upper = repalloc(s->upper, s->maxranges * sizeof(int64));
		}
		s->lower[s->nranges] = seq;
		s->upper[s->nranges] = seq + 1;
		s->nranges++;
	}
	if (s->count == 0)
		s->first_seq = seq;
	s->last_seq = seq;
	s->count++;
}

static Datum
int8_array(const int64 *values, int n)
{
	Datum	   *elems = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
bytea_datum(const uint8 *bytes, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), bytes, len);
	return PointerGetDatum(b);
}

#define ROWS_SINCE_QUERY \
	"SELECT seq, tenant, hash," \
	"       xact_id OPERATOR(pg_catalog.>=) $1 AND xact_id OPERATOR(pg_catalog.<) $2" \
	"  FROM " HL_SCHEMA ".events" \
	" WHERE seq OPERATOR(pg_catalog.>=) $3 AND seq OPERATOR(pg_catalog.<=) $4" \
	" ORDER BY seq"

/* without a horizon: every committed event that no checkpoint holds */
#define ROWS_UNSEALED_QUERY \
	"SELECT e.seq, e.tenant, e.hash," \
	"       e.xact_id OPERATOR(pg_catalog.<) $2 AND NOT EXISTS (" \
	"         SELECT FROM " HL_SCHEMA ".checkpoints c" \
	"          WHERE c.tenant OPERATOR(pg_catalog.=) e.tenant" \
	"            AND e.seq OPERATOR(pg_catalog.>=) c.first_seq" \
	"            AND e.seq OPERATOR(pg_catalog.<=) c.last_seq" \
	"            AND c.seqs OPERATOR(pg_catalog.@>) e.seq)" \
	"  FROM " HL_SCHEMA ".events e" \
	" ORDER BY e.seq"

#define LATEST_QUERY \
	"SELECT number, hash FROM " HL_SCHEMA ".checkpoints" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1 ORDER BY number DESC LIMIT 1"

#define INSERT_QUERY \
	"INSERT INTO " HL_SCHEMA ".checkpoints" \
	" (tenant, number, prev_hash, root, count, first_seq, last_seq, seqs, created_at," \
	"  hash, signature, public_key)" \
	" SELECT $1, $2, $3, $4, $5, $6, $7," \
	"        (SELECT pg_catalog.range_agg(pg_catalog.int8range(r.l, r.u))" \
	"           FROM ROWS FROM (pg_catalog.unnest($8::pg_catalog.int8[])," \
	"                           pg_catalog.unnest($9::pg_catalog.int8[])) AS r(l, u))," \
	"        pg_catalog.now(), $10, $11, $12"

/*
 * The lowest and highest seq of the events appended by transactions in
 * [from, below), or false if there is none: read from events_xact_idx
 * alone, without visiting the heap, which for 100,000 new rows was a third
 * of a checkpoint.  Entries of rows that are not visible (an aborted
 * append) can only widen the span; read_span() reads each row in it as
 * sealed or not by its xact_id and visibility, as for any other row.  No
 * transaction below `below` (the snapshot's xmin) is still running.
 */
static bool
span_since(Snapshot snapshot, FullTransactionId from, FullTransactionId below,
		   int64 *min_seq, int64 *max_seq)
{
	Oid			nsp = get_namespace_oid(HL_SCHEMA, false);
	Oid			indexid = get_relname_relid("events_xact_idx", nsp);
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	bool		found = false;
	uint32		n = 0;

	*min_seq = *max_seq = 0;
	if (!OidIsValid(indexid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s.events_xact_idx\" is missing", HL_SCHEMA),
				 errdetail("Checkpoints read the span of each transaction's events from it."),
				 errhint("Create it as the extension does: CREATE INDEX events_xact_idx ON %s.events (xact_id, seq).",
						 HL_SCHEMA)));
	rel = table_open(hl_log_relid(), AccessShareLock);
	idx = index_open(indexid, AccessShareLock);

	/*
	 * The owner may drop it and make another of that name: only a valid
	 * btree on the columns themselves, of every row, gives every seq.
	 */
	if (idx->rd_index->indrelid != RelationGetRelid(rel) || idx->rd_index->indnatts != 2 ||
		idx->rd_rel->relam != BTREE_AM_OID || !idx->rd_index->indisvalid ||
		idx->rd_index->indkey.values[0] != get_attnum(RelationGetRelid(rel), "xact_id") ||
		idx->rd_index->indkey.values[1] != get_attnum(RelationGetRelid(rel), "seq") ||
		!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) ||
		TupleDescAttr(RelationGetDescr(idx), 0)->atttypid != XID8OID ||
		TupleDescAttr(RelationGetDescr(idx), 1)->atttypid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s.events_xact_idx\" is not a btree index on the log's (xact_id, seq)",
						HL_SCHEMA),
				 errdetail("Checkpoints read the span of each transaction's events from it; one with expressions, a predicate or other columns would leave events out."),
				 errhint("Drop it and create it as the extension does: CREATE INDEX events_xact_idx ON %s.events (xact_id, seq).",
						 HL_SCHEMA)));

	ScanKeyInit(&keys[0], 1, BTGreaterEqualStrategyNumber, F_XID8GE,
				FullTransactionIdGetDatum(from));
	ScanKeyInit(&keys[1], 1, BTLessStrategyNumber, F_XID8LT,
				FullTransactionIdGetDatum(below));
	scan = hl_index_beginscan(rel, idx, snapshot, 2, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		int64		seq = DatumGetInt64(index_getattr(scan->xs_itup, 2, scan->xs_itupdesc,
													  &isnull));

		if ((++n & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		if (!found || seq < *min_seq)
			*min_seq = seq;
		if (!found || seq > *max_seq)
			*max_seq = seq;
		found = true;
	}
	index_endscan(scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/* Read the rows of the span in seq order into the sealing state. */
static void
read_span(SealState *st, const char *query, int nargs, Oid *types, Datum *args)
{
	Portal		portal = hl_spi_open_cursor(query, nargs, types, args, NULL);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly seal rows",
												  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		seq = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
			text	   *tenant;
			Datum		hash_d;
			bool		seal;
			HlHash		hash = hl_zero_hash;
			MemoryContext old = MemoryContextSwitchTo(row_cxt);

			tenant = DatumGetTextPP(SPI_getbinval(row, desc, 2, &isnull));
			hash_d = SPI_getbinval(row, desc, 3, &isnull);
			/* a row without its hash (the log altered) is sealed as zeros */
			if (!isnull)
				(void) hl_hash_from_datum(hash_d, &hash);
			seal = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull)) && !isnull;
			MemoryContextSwitchTo(old);
			seal_row(st, seq, VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), seal, &hash);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(row_cxt);
}

/* Make and store one tenant's checkpoint. */
static void
store_checkpoint(Sealing *s, HlHasher *hasher, Snapshot snapshot)
{
	Oid			latest_types[1] = {TEXTOID};
	Datum		latest_args[1];
	Oid			types[12] = {TEXTOID, INT8OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID,
	INT8OID, INT8ARRAYOID, INT8ARRAYOID, BYTEAOID, BYTEAOID, BYTEAOID};
	Datum		args[12];
	char		nulls[13] = "            ";
	HlCheckpoint cp;
	HlHash		hash;
	const char *utf8;
	int			utf8_len;
	int			rc;

	memset(&cp, 0, sizeof(cp));
	latest_args[0] = PointerGetDatum(cstring_to_text_with_len(s->tenant, s->tenant_len));

	/* the tenant's previous checkpoint, as of the snapshot taken under the lock */
	PushActiveSnapshot(snapshot);
	rc = SPI_execute_with_args(LATEST_QUERY, 1, latest_types, latest_args, NULL, true, 1);
	PopActiveSnapshot();
	hl_spi_check(rc, SPI_OK_SELECT, LATEST_QUERY);
	cp.number = 1;
	cp.prev = hl_zero_hash;
	if (SPI_processed == 1)
	{
		bool		isnull;

		cp.number = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												1, &isnull)) + 1;
		if (!hl_hash_from_datum(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											  2, &isnull), &cp.prev))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("checkpoint " INT64_FORMAT " of tenant \"%s\" has no valid hash",
							cp.number - 1, s->tenant),
					 errhint("Run headlessly.verify() to see what was changed.")));
	}

	utf8 = hl_server_to_utf8(s->tenant, s->tenant_len, &utf8_len);
	cp.tenant = utf8;
	cp.tenant_len = utf8_len;
	hl_merkle_root(&s->tree, &cp.root);
	cp.count = s->count;
	cp.first_seq = s->first_seq;
	cp.last_seq = s->last_seq;
	hl_checkpoint_hash(hasher, &cp, &hash);

	args[0] = latest_args[0];
	args[1] = Int64GetDatum(cp.number);
	args[2] = bytea_datum(cp.prev.bytes, HL_HASH_LEN);
	args[3] = bytea_datum(cp.root.bytes, HL_HASH_LEN);
	args[4] = Int64GetDatum(cp.count);
	args[5] = Int64GetDatum(cp.first_seq);
	args[6] = Int64GetDatum(cp.last_seq);
	args[7] = int8_array(s->lower, s->nranges);
	args[8] = int8_array(s->upper, s->nranges);
	args[9] = bytea_datum(hash.bytes, HL_HASH_LEN);
	args[10] = args[11] = (Datum) 0;
	nulls[10] = nulls[11] = 'n';
	if (hl_signing_key_file != NULL && hl_signing_key_file[0] != '\0')
	{
		HlSignature sig;

		hl_sign_checkpoint_hash(hl_signing_key_file, &hash, &sig);
		args[10] = bytea_datum(sig.signature, HL_ED25519_SIGNATURE_LEN);
		args[11] = bytea_datum(sig.public_key, HL_ED25519_PUBLIC_KEY_LEN);
		nulls[10] = nulls[11] = ' ';
	}
	rc = SPI_execute_with_args(INSERT_QUERY, 12, types, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT, INSERT_QUERY);
}

/*
 * Seal what has committed, for every tenant; returns the number of
 * checkpoints made.  The background worker calls this every
 * headlessly.checkpoint_interval, in a transaction of its own; in a
 * database whose extension predates checkpoints it does nothing.
 */
int64
hl_tamper_checkpoint_all(void)
{
	Oid			nsp = get_namespace_oid(HL_SCHEMA, true);
	Oid			checkpoints;
	HlSavedUser saved;
	Snapshot	snapshot;
	FullTransactionId below;
	SealState	st;
	HASHCTL		ctl;
	MemoryContext cxt;
	MemoryContext old;
	Oid			types[4] = {XID8OID, XID8OID, INT8OID, INT8OID};
	Datum		args[4];
	bool		have_horizon = false;
	int64		made = 0;
	int			rc;

	/* a standby seals nothing: its primary does, and the checkpoints arrive by WAL */
	if (RecoveryInProgress() ||
		!OidIsValid(nsp) ||
		!OidIsValid(checkpoints = get_relname_relid("checkpoints", nsp)) ||
		!OidIsValid(get_relname_relid("checkpoint_horizon", nsp)))
		return 0;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly checkpoint",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	hl_become_log_owner(&saved);

	/* one sealer at a time; appends never take this lock */
	LockRelationOid(checkpoints, ShareRowExclusiveLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	below = hl_widen_xid(snapshot->xmin);

	memset(&st, 0, sizeof(st));
	ctl.keysize = sizeof(TenantKey);
	ctl.entrysize = sizeof(TenantEntry);
	ctl.hcxt = cxt;
	st.tenants = hash_create("headlessly sealing tenants", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	st.last = &st.first;
	st.hasher = hl_hasher_create();
	st.prev_seq = -1;
	st.global_break = -1;

	hl_spi_connect();
	PushActiveSnapshot(snapshot);
	rc = SPI_execute("SELECT sealed_below FROM " HL_SCHEMA ".checkpoint_horizon", true, 0);
	hl_spi_check(rc, SPI_OK_SELECT, "checkpoint_horizon");
	if (SPI_processed >= 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			args[0] = d;
			have_horizon = true;
		}
	}
	args[1] = FullTransactionIdGetDatum(below);

	if (have_horizon)
	{
		int64		min_seq;
		int64		max_seq;

		if (span_since(snapshot, DatumGetFullTransactionId(args[0]), below,
					   &min_seq, &max_seq))
		{
			args[2] = Int64GetDatum(min_seq);
			args[3] = Int64GetDatum(max_seq);
			read_span(&st, ROWS_SINCE_QUERY, 4, types, args);
		}
	}
	else
	{
		args[0] = FullTransactionIdGetDatum(FullTransactionIdFromEpochAndXid(0, 0));
		read_span(&st, ROWS_UNSEALED_QUERY, 2, types, args);
	}
	PopActiveSnapshot();

	for (Sealing *s = st.first; s != NULL; s = s->next)
	{
		if (s->count == 0)
			continue;
		store_checkpoint(s, st.hasher, snapshot);
		made++;
		CHECK_FOR_INTERRUPTS();
	}

	/* from here on, look only at what commits later */
	{
		Oid			htypes[1] = {XID8OID};
		Datum		hargs[1] = {FullTransactionIdGetDatum(below)};

		rc = SPI_execute_with_args("UPDATE " HL_SCHEMA ".checkpoint_horizon SET sealed_below = $1",
								   1, htypes, hargs, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_UPDATE, "checkpoint_horizon");
		if (SPI_processed == 0)
		{
			rc = SPI_execute_with_args("INSERT INTO " HL_SCHEMA ".checkpoint_horizon (sealed_below) VALUES ($1)",
									   1, htypes, hargs, NULL, false, 0);
			hl_spi_check(rc, SPI_OK_INSERT, "checkpoint_horizon");
		}
	}

	SPI_finish();
	UnregisterSnapshot(snapshot);
	hl_restore_user(&saved);
	hl_hasher_free(st.hasher);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return made;
}

/* checkpoint() RETURNS bigint */
Datum
headlessly_checkpoint(PG_FUNCTION_ARGS)
{
	PreventCommandIfReadOnly("headlessly.checkpoint()");
	PG_RETURN_INT64(hl_tamper_checkpoint_all());
}

#endif							/* !FRONTEND */
