/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  headlessly.verify(): recompute hashes, chains and checkpoints.
 *
 * One pass over the log in seq order.  Each event's hash is recomputed
 * from its canonical form and the recomputed hash of its stream's previous
 * version and compared with the stored one.  Chains follow version order.
 * Seq order is the same since seq is drawn under the stream's lock, but not
 * always in a log written by 0.1 (which drew seq first) or restored by its
 * owner: an event that comes before a lower version of its stream is held
 * until that version has come (hold_event()).  A held event whose chain
 * then does not verify is named as reordered; one whose lower version never
 * comes, as the event after a removed one; a version coming back, as an
 * insertion.  Each
 * event is also a leaf of the checkpoint whose seqs hold it: the trees are
 * built as the leaves come, in seq order, and their roots, hashes, chain
 * and signatures checked at the end, with the stream heads (a stream whose
 * events are gone, or that has more than its head knows, or no head; a head
 * for a target without events) and the digest.
 *
 * Of all problems of a tenant the one reported is, in this order: the
 * first bad event in seq order; a stream whose last events are missing
 * (named by target and the first missing version: the head still knows
 * them), or that has more than its head knows, the first such target by
 * its bytes; a checkpoint whose events differ from what it sealed (named by
 * seq when its first or last event is missing, else not at all: a root
 * does not tell which leaf differs); a digest that is not in the log.
 *
 * Tenants are independent, so parallel workers (ParallelContext, the
 * leader's snapshot and transaction) share them out: every participant
 * scans the whole log, deals each tenant to one participant in the order
 * the scan first meets it (the same order for all), reads no more than the
 * tenant of the others' rows, and checks its own tenants wholly.  Workers
 * send back each tenant's count and problem (shm_mq); the leader merges
 * them, then checks the digest.  How many: max_parallel_workers_per_gather,
 * at most the tenants less one; none for one tenant, a caller under row
 * security, a log below min_parallel_table_scan_size, or in parallel mode.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

/* backend only: test/tamper/run.sh compiles src/tamper/ for a frontend too */
#ifndef FRONTEND

#include "log/log.h"
#include "tenancy/tenancy.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_verify);

typedef enum ProblemRank
{
	RANK_EVENT,					/* a stored event: ordered by seq */
	RANK_STREAM,				/* a stream's head against its events */
	RANK_CHECKPOINT,			/* a checkpoint against its events */
	RANK_DIGEST					/* the digest kept outside */
} ProblemRank;

typedef struct Problem
{
	ProblemRank rank;
	int64		order;			/* seq, for RANK_EVENT */
	const char *problem;
	char	   *target;			/* NULL: unknown */
	bool		has_version;
	int64		version;
	char	   *event_id;
	bool		has_seq;
	int64		seq;
} Problem;

typedef struct Range
{
	int64		lower;
	int64		upper;			/* exclusive */
} Range;

typedef struct Checkpoint
{
	int64		number;
	HlHash		prev;
	HlHash		root;
	int64		count;
	int64		first_seq;
	int64		last_seq;
	HlHash		hash;
	bool		hash_ok;		/* the stored hashes were 32 bytes */
	bool		has_signature;
	uint8		signature[HL_ED25519_SIGNATURE_LEN];
	uint8		public_key[HL_ED25519_PUBLIC_KEY_LEN];
	bool		signature_ok;	/* well-formed */
	Range	   *ranges;
	int			nranges;
	int			cursor;			/* first range not wholly below the current seq */
	HlMerkleBuilder tree;
	int64		members;
	int64		min_member;
	int64		max_member;
} Checkpoint;

typedef struct Tenant
{
	char	   *name;			/* hash key: the tenant's bytes, NUL-terminated */
	int64		checked;
	Problem    *best;
	Checkpoint *checkpoints;	/* by number */
	int			ncheckpoints;
	int			maxcheckpoints;
	int			open;			/* checkpoints before this one end below the current seq */
	int			owner;			/* the participant that checks it; -1: not met by the scan */
} Tenant;

/* the tenants' hash entries: the name, NUL-terminated, then the tenant */
typedef struct TenantEntry
{
	char		key[HL_MAX_NAME_BYTES + 1];
	Tenant		tenant;
} TenantEntry;

typedef struct StreamKey
{
	const char *data;			/* tenant NUL target */
	int			len;
} StreamKey;

/* An event that came, in seq order, before a lower version of its stream. */
typedef struct HeldEvent
{
	int64		version;
	int64		seq;
	char	   *canonical;
	int			len;
	bool		stored_ok;		/* a 32-byte hash is stored */
	HlHash		stored;
	char	   *event_id;
} HeldEvent;

/* at most this many held events per stream; then the gap counts as removed */
#define MAX_HELD_EVENTS 1024

typedef struct Stream
{
	Tenant	   *tenant;
	int64		version;		/* the last version chained, in version order */
	int64		last_seq;
	HlHash		hash;			/* its recomputed hash */
	bool		last_ok;		/* and whether it is the stored one */
	bool		has_head;		/* check_heads() met its head */
	HeldEvent  *held;			/* in the order they came */
	int			nheld;
	int			maxheld;
	int			key_len;
	char		key[FLEXIBLE_ARRAY_MEMBER]; /* its StreamKey's bytes */
} Stream;

/*
 * The streams seen so far, in an open-addressing table (lib/simplehash.h)
 * whose slots keep the key's hash: a lookup, made for most events, costs
 * a slot and the stream itself, which holds its key's bytes.  (dynahash
 * took a bucket, an element and the key apart: a sixth of verify's time
 * over 100,000 streams.)
 */
static inline uint32
stream_key_hash(StreamKey key)
{
	return hash_bytes((const unsigned char *) key.data, key.len);
}

typedef struct StreamSlot
{
	StreamKey	key;			/* its data: the stream's key */
	Stream	   *stream;
	uint32		hash;
	char		status;
} StreamSlot;

#define SH_PREFIX streamtab
#define SH_ELEMENT_TYPE StreamSlot
#define SH_KEY_TYPE StreamKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) stream_key_hash(k)
#define SH_EQUAL(tb, a, b) ((a).len == (b).len && memcmp((a).data, (b).data, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct Verify
{
	MemoryContext cxt;
	HTAB	   *tenants;
	streamtab_hash *streams;
	HlHasher   *hasher;
	bool		have_horizon;
	FullTransactionId sealed_below;
	Tenant	   *last_tenant;	/* most rows come in runs of one tenant */
	/* where the events' rows have what is not hashed */
	HlCanonicalMap map;
	AttrNumber	hash_att;
	AttrNumber	xact_att;

	/*
	 * Parallel verify: the tenants are dealt out round-robin in the order the
	 * scan meets them, which every participant sees the same; each checks its
	 * own and skips the others' rows.  Serial: one participant, owning all.
	 */
	int			participant;	/* 0: the leader */
	int			nparticipants;
	bool	   *mine;			/* by participant: whose tenants this one checks */
	int			dealt;			/* tenants the scan has met */
} Verify;

#if defined(__GNUC__) || defined(__clang__)
#define prefetch_for_read(addr) __builtin_prefetch((addr), 0, 3)
#else
#define prefetch_for_read(addr) ((void) (addr))
#endif

/* key->data: tenant NUL target, in room for len bytes (or palloc'd) */
static void
stream_key(StreamKey *key, char *room, int len, const text *tenant, const text *target)
{
	int			tlen = VARSIZE_ANY_EXHDR(tenant);
	int			glen = VARSIZE_ANY_EXHDR(target);
	char	   *data = tlen + 1 + glen <= len ? room : palloc(tlen + 1 + glen);

	memcpy(data, VARDATA_ANY(tenant), tlen);
	data[tlen] = '\0';
	memcpy(data + tlen + 1, VARDATA_ANY(target), glen);
	key->data = data;
	key->len = tlen + 1 + glen;
}

static Tenant *
tenant_for(Verify *v, const char *name, int len)
{
	char		key[HL_MAX_NAME_BYTES + 1];
	TenantEntry *e;
	Tenant	   *t;
	bool		found;

	if (v->last_tenant != NULL && (int) strlen(v->last_tenant->name) == len &&
		memcmp(v->last_tenant->name, name, len) == 0)
		return v->last_tenant;

	memcpy(key, name, Min(len, HL_MAX_NAME_BYTES));
	key[Min(len, HL_MAX_NAME_BYTES)] = '\0';
	e = hash_search(v->tenants, key, HASH_ENTER, &found);
	t = &e->tenant;
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(v->cxt);

		t->name = pnstrdup(name, len);
		t->checked = 0;
		t->best = NULL;
		t->ncheckpoints = 0;
		t->maxcheckpoints = 8;
		t->checkpoints = palloc(t->maxcheckpoints * sizeof(Checkpoint));
		t->open = 0;
		t->owner = -1;
		MemoryContextSwitchTo(old);
	}
	v->last_tenant = t;
	return t;
}

/* Whether this participant checks t: a tenant the scan never met is the leader's. */
static inline bool
tenant_is_mine(const Verify *v, const Tenant *t)
{
	return t->owner < 0 ? v->participant == 0 : v->mine[t->owner];
}

/* A row of this tenant's: deal the tenant out when the scan first meets it. */
static inline bool
row_is_mine(Verify *v, const text *tenant)
{
	Tenant	   *t = tenant_for(v, VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant));

	if (t->owner < 0)
		t->owner = v->dealt++ % v->nparticipants;
	return v->mine[t->owner];
}

static bool
better(const Problem *a, const Problem *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->order != b->order)
		return a->order < b->order;
	/* stream heads come in no fixed order: the first target by its bytes */
	if (a->rank == RANK_STREAM && a->target != NULL && b->target != NULL)
		return strcmp(a->target, b->target) < 0;
	return false;
}

static Problem *
report(Verify *v, Tenant *t, ProblemRank rank, int64 order, const char *problem,
	   const char *target, int target_len, bool has_version, int64 version,
	   const char *event_id, int id_len, bool has_seq, int64 seq)
{
	MemoryContext old = MemoryContextSwitchTo(v->cxt);
	Problem    *p = palloc0(sizeof(Problem));

	p->rank = rank;
	p->order = order;
	p->problem = problem;
	p->target = target ? pnstrdup(target, target_len) : NULL;
	p->has_version = has_version;
	p->version = version;
	p->event_id = event_id ? pnstrdup(event_id, id_len) : NULL;
	p->has_seq = has_seq;
	p->seq = seq;
	if (t->best == NULL || better(p, t->best))
		t->best = p;
	MemoryContextSwitchTo(old);
	return p;
}

/* Checkpoints ----------------------------------------------------------------- */

#define CHECKPOINTS_QUERY \
	"SELECT c.tenant, c.number, c.prev_hash, c.root, c.count, c.first_seq, c.last_seq," \
	"       c.hash, c.signature, c.public_key," \
	"       (SELECT pg_catalog.array_agg(pg_catalog.lower(r) ORDER BY r)" \
	"          FROM pg_catalog.unnest(c.seqs) AS r)," \
	"       (SELECT pg_catalog.array_agg(pg_catalog.upper(r) ORDER BY r)" \
	"          FROM pg_catalog.unnest(c.seqs) AS r)" \
	"  FROM " HL_SCHEMA ".checkpoints c" \
	" WHERE $1 IS NULL OR c.tenant OPERATOR(pg_catalog.=) $1" \
	" ORDER BY c.tenant, c.number"

/* inline: len is a constant where it is called for every event */
static inline bool
bytes_of(Datum d, bool isnull, uint8 *out, int len)
{
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != len)
		return false;
	memcpy(out, VARDATA_ANY(b), len);
	return true;
}

static void
int8_array_values(Datum d, bool isnull, int64 **values, int *n)
{
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;

	*values = NULL;
	*n = 0;
	if (isnull)
		return;
	a = DatumGetArrayTypeP(d);
	deconstruct_array(a, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, n);
	*values = palloc(Max(*n, 1) * sizeof(int64));
	for (int i = 0; i < *n; i++)
		(*values)[i] = nulls[i] ? PG_INT64_MAX : DatumGetInt64(elems[i]);
}

static void
load_checkpoints(Verify *v, text *tenant)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(tenant)};
	char		nulls[1] = {tenant ? ' ' : 'n'};
	int			rc;

	rc = SPI_execute_with_args(CHECKPOINTS_QUERY, 1, types, args, nulls, true, 0);
	hl_spi_check(rc, SPI_OK_SELECT, CHECKPOINTS_QUERY);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		d[12];
		bool		n[12];
		text	   *name;
		Tenant	   *t;
		Checkpoint *cp;
		int64	   *lower;
		int64	   *upper;
		int			nlower;
		int			nupper;
		MemoryContext old;

		for (int c = 0; c < 12; c++)
			d[c] = SPI_getbinval(row, desc, c + 1, &n[c]);
		name = DatumGetTextPP(d[0]);
		t = tenant_for(v, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));

		old = MemoryContextSwitchTo(v->cxt);
		if (t->ncheckpoints == t->maxcheckpoints)
		{
			t->maxcheckpoints *= 2;
			t->checkpoints = repalloc(t->checkpoints, t->maxcheckpoints * sizeof(Checkpoint));
		}
		cp = &t->checkpoints[t->ncheckpoints++];
		memset(cp, 0, sizeof(*cp));
		cp->number = DatumGetInt64(d[1]);
		cp->hash_ok = bytes_of(d[2], n[2], cp->prev.bytes, HL_HASH_LEN) &&
			bytes_of(d[3], n[3], cp->root.bytes, HL_HASH_LEN) &&
			bytes_of(d[7], n[7], cp->hash.bytes, HL_HASH_LEN);
		cp->count = DatumGetInt64(d[4]);
		cp->first_seq = DatumGetInt64(d[5]);
		cp->last_seq = DatumGetInt64(d[6]);
		cp->has_signature = !n[8] || !n[9];
		cp->signature_ok = bytes_of(d[8], n[8], cp->signature, HL_ED25519_SIGNATURE_LEN) &&
			bytes_of(d[9], n[9], cp->public_key, HL_ED25519_PUBLIC_KEY_LEN);
		int8_array_values(d[10], n[10], &lower, &nlower);
		int8_array_values(d[11], n[11], &upper, &nupper);
		cp->nranges = Min(nlower, nupper);
		cp->ranges = palloc(Max(cp->nranges, 1) * sizeof(Range));
		for (int r = 0; r < cp->nranges; r++)
		{
			cp->ranges[r].lower = lower[r];
			cp->ranges[r].upper = upper[r];
		}
		hl_merkle_init(&cp->tree, v->hasher);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The checkpoint of the tenant whose seqs hold seq, or NULL. */
static Checkpoint *
checkpoint_of(Tenant *t, int64 seq)
{
	/*
	 * Events come in seq order, so each checkpoint's ranges are walked once;
	 * the ones wholly below seq are done with (late commits make several
	 * overlap in seq, so more than one may be open).
	 */
	for (int i = t->open; i < t->ncheckpoints; i++)
	{
		Checkpoint *cp = &t->checkpoints[i];

		while (cp->cursor < cp->nranges && cp->ranges[cp->cursor].upper <= seq)
			cp->cursor++;
		if (cp->cursor < cp->nranges && cp->ranges[cp->cursor].lower <= seq)
			return cp;
		/* done with the prefix of checkpoints that lie wholly below seq */
		if (i == t->open && cp->cursor == cp->nranges)
			t->open++;
	}
	return NULL;
}

/* Events ---------------------------------------------------------------------- */

/*
 * Keep an event that came before a lower version of its stream, to chain
 * it once that version has come.  Its stored hash stands in for its leaf
 * in the checkpoint until then: if the two differ, the event is reported.
 */
static void
hold_event(Verify *v, Stream *stream, int64 version, int64 seq, StringInfo canonical,
		   Datum stored, bool stored_null, const char *id, int id_len)
{
	MemoryContext old = MemoryContextSwitchTo(v->cxt);
	HeldEvent  *h;

	if (stream->held == NULL)
	{
		stream->maxheld = 4;
		stream->held = palloc(stream->maxheld * sizeof(HeldEvent));
	}
	else if (stream->nheld == stream->maxheld)
	{
		stream->maxheld *= 2;
		stream->held = repalloc(stream->held, stream->maxheld * sizeof(HeldEvent));
	}
	h = &stream->held[stream->nheld++];
	h->version = version;
	h->seq = seq;
	h->len = canonical->len;
	h->canonical = palloc(Max(canonical->len, 1));
	memcpy(h->canonical, canonical->data, canonical->len);
	h->stored_ok = bytes_of(stored, stored_null, h->stored.bytes, HL_HASH_LEN);
	h->event_id = pnstrdup(id, id_len);
	MemoryContextSwitchTo(old);
}

/* Chain one held event on the stream's last version; it leaves the held ones. */
static void
chain_held(Verify *v, Stream *stream, int i, const char *problem)
{
	HeldEvent  *h = &stream->held[i];
	const char *target = stream->key + strlen(stream->key) + 1;
	int			target_len = stream->key_len - (target - stream->key);
	HlHash		hash;
	bool		ok;

	hl_event_hash(v->hasher, &stream->hash, h->canonical, h->len, &hash);
	ok = h->stored_ok && memcmp(h->stored.bytes, hash.bytes, HL_HASH_LEN) == 0;
	if (!ok)
		report(v, stream->tenant, RANK_EVENT, h->seq, problem, target, target_len,
			   true, h->version, h->event_id, strlen(h->event_id), true, h->seq);
	if (h->version > stream->version)
	{
		stream->version = h->version;
		stream->hash = hash;
		stream->last_ok = ok;
	}
	pfree(h->canonical);
	pfree(h->event_id);
	stream->held[i] = stream->held[--stream->nheld];
}

/*
 * The stream has just chained a version: chain the held events that now
 * follow it.  One whose hash does not verify in version order, after a
 * version that did not verify either, is what two swapped events look like;
 * after one that did, it is itself altered.  A held version that has come
 * meanwhile is an insertion.
 */
static void
release_held(Verify *v, Stream *stream)
{
	bool		progress = true;

	while (progress && stream->nheld > 0)
	{
		progress = false;
		for (int i = 0; i < stream->nheld; i++)
		{
			if (stream->held[i].version == stream->version + 1)
			{
				chain_held(v, stream, i, stream->last_ok ? "altered" : "reordered");
				progress = true;
				break;
			}
			if (stream->held[i].version <= stream->version)
			{
				HeldEvent  *h = &stream->held[i];
				const char *target = stream->key + strlen(stream->key) + 1;

				report(v, stream->tenant, RANK_EVENT, h->seq, "inserted", target,
					   stream->key_len - (target - stream->key),
					   true, h->version, h->event_id, strlen(h->event_id), true, h->seq);
				pfree(h->canonical);
				pfree(h->event_id);
				stream->held[i] = stream->held[--stream->nheld];
				progress = true;
				break;
			}
		}
	}
}

/*
 * The version the held events wait for never came: the lowest of them is
 * the event after a removed one.  The rest chain on, in version order.
 */
static void
give_up_held(Verify *v, Stream *stream)
{
	bool		first = true;

	while (stream->nheld > 0)
	{
		int			lowest = 0;

		for (int i = 1; i < stream->nheld; i++)
			if (stream->held[i].version < stream->held[lowest].version)
				lowest = i;
		if (first)
		{
			HeldEvent  *h = &stream->held[lowest];
			const char *target = stream->key + strlen(stream->key) + 1;

			report(v, stream->tenant, RANK_EVENT, h->seq, "removed", target,
				   stream->key_len - (target - stream->key),
				   true, h->version, h->event_id, strlen(h->event_id), true, h->seq);
			first = false;
		}
		chain_held(v, stream, lowest, "altered");
	}
}

static void
give_up_all_held(Verify *v)
{
	streamtab_iterator it;
	StreamSlot *slot;

	streamtab_start_iterate(v->streams, &it);
	while ((slot = streamtab_iterate(v->streams, &it)) != NULL)
	{
		if (slot->stream->nheld > 0)
			give_up_held(v, slot->stream);
	}
}

/*
 * The rows of the log, whole, as SPI reads them for a caller under row
 * security: the 16 covered columns first, in table order (hl_event_fields).
 */
#define EVENTS_QUERY \
	"SELECT seq, id, tenant, type, target, version, actor, source, source_type," \
	"       external_event_id, occurred_at, recorded_at, data, before, metadata," \
	"       raw_payload, hash, xact_id" \
	"  FROM " HL_SCHEMA ".events" \
	" WHERE $1 IS NULL OR tenant OPERATOR(pg_catalog.=) $1" \
	" ORDER BY seq"

static AttrNumber
attnum_of(TupleDesc desc, const char *name, Oid type)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
		{
			if (att->atttypid != type)
				elog(ERROR, "column \"%s\" of the log has type %u, not %u",
					 name, att->atttypid, type);
			return att->attnum;
		}
	}
	elog(ERROR, "column \"%s\" is missing from the log", name);
	return InvalidAttrNumber;	/* keep the compiler quiet */
}

/* Where the columns are in rows of desc: once per verify(). */
static void
map_columns(Verify *v, TupleDesc desc)
{
	MemoryContext old = MemoryContextSwitchTo(v->cxt);

	hl_canonical_map_init(desc, &v->map);
	v->hash_att = attnum_of(desc, "hash", BYTEAOID);
	v->xact_att = attnum_of(desc, "xact_id", XID8OID);
	MemoryContextSwitchTo(old);
}

/* One row of the log, deformed whole (values and isnull in column order). */
static void
check_event(Verify *v, const Datum *values, const bool *isnull, StringInfo buf)
{
	const HlCanonicalMap *map = &v->map;
	text	   *tenant_t;
	text	   *id_t;
	Tenant	   *t;
	int64		seq;
	HlHash		prev = hl_zero_hash;
	HlHash		hash;
	HlHash		stored;
	Stream	   *stream = NULL;
	const char *target = NULL;
	int			target_len = 0;
	int64		version = 0;
	bool		has_version;
	bool		hash_ok;
	bool		found = false;	/* the stream was seen before */
	Checkpoint *cp;
	text	   *target_t = NULL;
	char		room[256];
	StreamKey	key;
	uint32		key_hash = 0;

#define FIELD(f) values[map->attnum[f] - 1]
#define FIELD_ISNULL(f) isnull[map->attnum[f] - 1]

	seq = DatumGetInt64(FIELD(HL_FIELD_SEQ));
	tenant_t = DatumGetTextPP(FIELD(HL_FIELD_TENANT));
	id_t = DatumGetTextPP(FIELD(HL_FIELD_ID));
	if (!FIELD_ISNULL(HL_FIELD_TARGET))
	{
		target_t = DatumGetTextPP(FIELD(HL_FIELD_TARGET));
		stream_key(&key, room, sizeof(room), tenant_t, target_t);
		key_hash = stream_key_hash(key);

		/*
		 * Among many streams the slot is rarely in cache: fetch it while the
		 * canonical form is built (over 100,000 streams, waiting for it was
		 * about 6% of verify's time).
		 */
		prefetch_for_read(&v->streams->data[key_hash & v->streams->sizemask]);
	}

	resetStringInfo(buf);
	hl_canonical_from_row(values, isnull, map, buf);
	has_version = !FIELD_ISNULL(HL_FIELD_VERSION);
	if (has_version)
		version = DatumGetInt64(FIELD(HL_FIELD_VERSION));

#define REPORT_EVENT(problem) \
	report(v, t, RANK_EVENT, seq, (problem), target, target_len, has_version, version, \
		   VARDATA_ANY(id_t), VARSIZE_ANY_EXHDR(id_t), true, seq)

	if (target_t != NULL)
	{
		StreamSlot *slot;

		target = VARDATA_ANY(target_t);
		target_len = VARSIZE_ANY_EXHDR(target_t);
		slot = streamtab_insert_hash(v->streams, key, key_hash, &found);
		if (!found)
		{
			stream = MemoryContextAlloc(v->cxt, offsetof(Stream, key) + key.len);
			memcpy(stream->key, key.data, key.len);
			stream->tenant = tenant_for(v, VARDATA_ANY(tenant_t), VARSIZE_ANY_EXHDR(tenant_t));
			stream->version = 0;
			stream->last_ok = true;
			stream->has_head = false;
			stream->held = NULL;
			stream->nheld = 0;
			stream->maxheld = 0;
			stream->key_len = key.len;
			slot->key.data = stream->key;
			slot->stream = stream;
		}
		stream = slot->stream;
	}

	/* rows of tenants interleave: a known stream knows its tenant */
	t = stream != NULL ? stream->tenant :
		tenant_for(v, VARDATA_ANY(tenant_t), VARSIZE_ANY_EXHDR(tenant_t));
	t->checked++;

	if (stream != NULL)
	{
		int64		expected = stream->version + 1;

		if (has_version && version > expected)
		{
			/* the missing version may still come, later in seq order */
			if (stream->nheld < MAX_HELD_EVENTS)
			{
				hold_event(v, stream, version, seq, buf, values[v->hash_att - 1],
						   isnull[v->hash_att - 1], VARDATA_ANY(id_t), VARSIZE_ANY_EXHDR(id_t));
				stream->last_seq = seq;
				if (!bytes_of(values[v->hash_att - 1], isnull[v->hash_att - 1], hash.bytes, HL_HASH_LEN))
					hash = hl_zero_hash;
				goto sealed;
			}
			give_up_held(v, stream);
			expected = stream->version + 1;
		}
		if (!has_version || version > expected)
			REPORT_EVENT("removed");
		else if (version < expected)
			REPORT_EVENT("inserted");
		if (found && version != 1)
			prev = stream->hash;
	}

	hl_event_hash(v->hasher, &prev, buf->data, buf->len, &hash);
	hash_ok = bytes_of(values[v->hash_att - 1], isnull[v->hash_att - 1], stored.bytes, HL_HASH_LEN) &&
		memcmp(stored.bytes, hash.bytes, HL_HASH_LEN) == 0;
	if (!hash_ok)
		REPORT_EVENT("altered");

	if (stream != NULL)
	{
		if (!has_version || version > stream->version)
			stream->version = has_version ? version : stream->version + 1;
		stream->last_seq = seq;
		stream->hash = hash;
		stream->last_ok = hash_ok;
		if (stream->nheld > 0)
			release_held(v, stream);
	}

sealed:
	cp = checkpoint_of(t, seq);
	if (cp != NULL)
	{
		hl_merkle_add(&cp->tree, hash.bytes, HL_HASH_LEN);
		if (cp->members == 0)
			cp->min_member = seq;
		cp->members++;
		cp->max_member = seq;
	}
	else if (v->have_horizon && !isnull[v->xact_att - 1] &&
			 FullTransactionIdPrecedes(DatumGetFullTransactionId(values[v->xact_att - 1]),
									   v->sealed_below))
	{
		/* committed before the last checkpoint, yet sealed by none */
		REPORT_EVENT("inserted");
	}
#undef REPORT_EVENT
#undef FIELD
#undef FIELD_ISNULL
}

/* Nothing stands between the caller and the log's rows (and it has its key). */
static bool
log_readable_directly(Relation rel)
{
	Oid			pkey = hl_relation_primary_key(rel);

	return OidIsValid(pkey) &&
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(RelationGetRelid(rel), InvalidOid, false) != RLS_ENABLED;
}

/*
 * The log read straight from its heap, in seq order on its primary key,
 * when nothing stands between the caller and the rows: SELECT on the table
 * and no row security for them.  Otherwise (a tenant role) false, and SPI
 * reads the rows, the policies applied, as a query of the caller's would.
 * The snapshot is the active one, the same as the other queries'.
 */
static bool
scan_events_directly(Verify *v, text *tenant, StringInfo buf)
{
	Relation	rel;
	Relation	idx;
	Oid			pkey;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	tenant_att;
	MemoryContext row_cxt;
	uint32		n = 0;

	rel = table_open(hl_log_relid(), AccessShareLock);
	if (!log_readable_directly(rel))
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	pkey = hl_relation_primary_key(rel);
	idx = index_open(pkey, AccessShareLock);
	if (idx->rd_index->indnatts != 1 ||
		idx->rd_index->indkey.values[0] != attnum_of(RelationGetDescr(rel), "seq", INT8OID))
		elog(ERROR, "the primary key of the log is not (seq)");

	map_columns(v, RelationGetDescr(rel));
	tenant_att = v->map.attnum[HL_FIELD_TENANT];
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly verify row",
									ALLOCSET_DEFAULT_SIZES);
	slot = table_slot_create(rel, NULL);
	scan = hl_index_beginscan(rel, idx, GetActiveSnapshot(), 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old;

		if ((++n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(row_cxt);
		if (tenant != NULL || v->nparticipants > 1)
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, tenant_att, &isnull);

			/* the column's collation is "C": equal is the same bytes */
			if (isnull ||
				(tenant != NULL ? !hl_text_equal(DatumGetTextPP(d), tenant) :
				 !row_is_mine(v, DatumGetTextPP(d))))
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(row_cxt);
				continue;
			}
		}
		slot_getallattrs(slot);
		check_event(v, slot->tts_values, slot->tts_isnull, buf);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(row_cxt);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return true;
}

static void
scan_events(Verify *v, text *tenant)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(tenant)};
	char		nulls[1] = {tenant ? ' ' : 'n'};
	Portal		portal;
	bool		have_map = false;
	StringInfoData buf;
	MemoryContext row_cxt;

	initStringInfo(&buf);
	if (scan_events_directly(v, tenant, &buf))
		return;

	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly verify row",
									ALLOCSET_DEFAULT_SIZES);
	portal = hl_spi_open_cursor(EVENTS_QUERY, 1, types, args, nulls);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		if (!have_map)
		{
			map_columns(v, SPI_tuptable->tupdesc);
			have_map = true;
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
							  v->map.values, v->map.isnull);
			check_event(v, v->map.values, v->map.isnull, &buf);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(row_cxt);
}

/* Stream heads ---------------------------------------------------------------- */

/*
 * Every head, whatever its version: one at 0 or below, or for a target
 * without events, is as wrong as one that knows too many versions.  xmin
 * tells the one legitimate head at 0: the one an append of this very
 * transaction inserts before its before hooks run (hl_stream_lock()), seen
 * by a hook that calls verify() before the event is stored.
 */
#define HEADS_QUERY \
	"SELECT tenant, target, version, xmin FROM " HL_SCHEMA ".streams" \
	" WHERE ($1 IS NULL OR tenant OPERATOR(pg_catalog.=) $1)"

/* A head against the events of its stream (NULL: none). */
static void
check_head(Verify *v, Tenant *t, Stream *stream, const char *target, int target_len,
		   int64 head_version)
{
	if (stream == NULL && head_version <= 0)
		/* a head that no event put there: no version to name */
		report(v, t, RANK_STREAM, 0, "inserted", target, target_len,
			   false, 0, NULL, 0, false, 0);
	else if (stream == NULL || stream->version < head_version)
		report(v, t, RANK_STREAM, 0, "removed", target, target_len,
			   true, stream ? stream->version + 1 : 1, NULL, 0, false, 0);
	else if (stream->version > head_version)
		/* the first version the head does not know */
		report(v, t, RANK_STREAM, 0, "inserted", target, target_len,
			   true, Max(head_version, 0) + 1, NULL, 0, false, 0);
}

static void
check_heads(Verify *v, text *tenant)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(tenant)};
	char		nulls[1] = {tenant ? ' ' : 'n'};
	Portal		portal;
	streamtab_iterator it;
	StreamSlot *slot;

	/* in batches: every stream has a head, and all of them at once weigh */
	portal = hl_spi_open_cursor(HEADS_QUERY, 1, types, args, nulls);
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
			text	   *tenant_t = DatumGetTextPP(SPI_getbinval(row, desc, 1, &isnull));
			text	   *target_t = DatumGetTextPP(SPI_getbinval(row, desc, 2, &isnull));
			int64		head_version = DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
			TransactionId xmin = DatumGetTransactionId(SPI_getbinval(row, desc, 4, &isnull));
			char		room[256];
			StreamKey	key;
			Stream	   *stream;
			Tenant	   *t = tenant_for(v, VARDATA_ANY(tenant_t), VARSIZE_ANY_EXHDR(tenant_t));

			if (!tenant_is_mine(v, t))
				continue;
			stream_key(&key, room, sizeof(room), tenant_t, target_t);
			slot = streamtab_lookup(v->streams, key);
			stream = slot ? slot->stream : NULL;
			if (stream != NULL)
				stream->has_head = true;
			if (!(stream == NULL && head_version == 0 && TransactionIdIsCurrentTransactionId(xmin)))
				check_head(v, t, stream, VARDATA_ANY(target_t), VARSIZE_ANY_EXHDR(target_t),
						   head_version);
			if (key.data != room)
				pfree((char *) key.data);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);

	/* streams with events and no head: the head knows none of them */
	streamtab_start_iterate(v->streams, &it);
	while ((slot = streamtab_iterate(v->streams, &it)) != NULL)
	{
		Stream	   *stream = slot->stream;
		const char *target = (const char *) memchr(stream->key, '\0', stream->key_len) + 1;

		if (!stream->has_head && tenant_is_mine(v, stream->tenant))
			check_head(v, stream->tenant, stream, target,
					   stream->key_len - (target - stream->key), 0);
	}
}

/* The end: checkpoints and digest --------------------------------------------- */

static void
check_checkpoints(Verify *v, Tenant *t)
{
	HlHash		prev = hl_zero_hash;

	for (int i = 0; i < t->ncheckpoints; i++)
	{
		Checkpoint *cp = &t->checkpoints[i];
		HlCheckpoint c;
		HlHash		hash;
		HlHash		root;
		const char *problem = NULL;
		bool		has_seq = false;
		int64		seq = 0;
		int			utf8_len;

		c.tenant = hl_server_to_utf8(t->name, strlen(t->name), &utf8_len);
		c.tenant_len = utf8_len;
		c.number = cp->number;
		c.prev = cp->prev;
		c.root = cp->root;
		c.count = cp->count;
		c.first_seq = cp->first_seq;
		c.last_seq = cp->last_seq;
		hl_checkpoint_hash(v->hasher, &c, &hash);
		hl_merkle_root(&cp->tree, &root);

		if (!cp->hash_ok || cp->number != i + 1 ||
			memcmp(cp->prev.bytes, prev.bytes, HL_HASH_LEN) != 0 ||
			memcmp(hash.bytes, cp->hash.bytes, HL_HASH_LEN) != 0 ||
			(cp->has_signature &&
			 (!cp->signature_ok ||
			  !hl_signature_verify(cp->public_key, cp->hash.bytes, HL_HASH_LEN, cp->signature))))
			problem = "altered";
		else if (memcmp(root.bytes, cp->root.bytes, HL_HASH_LEN) != 0 ||
				 cp->members != cp->count ||
				 (cp->members > 0 && (cp->min_member != cp->first_seq ||
									  cp->max_member != cp->last_seq)))
		{
			problem = cp->members < cp->count ? "removed" :
				cp->members > cp->count ? "inserted" : "altered";
			/* a removed first or last event is known by its seq */
			if (cp->members < cp->count && (cp->members == 0 || cp->max_member < cp->last_seq))
			{
				has_seq = true;
				seq = cp->last_seq;
			}
			else if (cp->members < cp->count && cp->min_member > cp->first_seq)
			{
				has_seq = true;
				seq = cp->first_seq;
			}
		}
		/* which of its events is wrong the root cannot tell, except a missing end */
		if (problem != NULL)
			report(v, t, RANK_CHECKPOINT, cp->number, problem, NULL, 0, false, 0,
				   NULL, 0, has_seq, seq);
		prev = cp->hash;
	}
}

static char *
jsonb_string(Jsonb *j, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&j->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static bool
jsonb_get_int8(Jsonb *j, const char *key, int64 *value)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&j->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	*value = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	return true;
}

/*
 * The digest: {"tenants": [{"tenant", "number", "hash", ...}, ...]}.  Each
 * kept checkpoint must be in the log as it was.  A digest that is not of
 * this shape is refused before anything is read.
 */
static void
check_digest(Verify *v, Jsonb *digest, text *only)
{
	JsonbValue *tenants;
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;

	if (digest == NULL)
		return;
	tenants = JB_ROOT_IS_OBJECT(digest) ?
		getKeyJsonValueFromContainer(&digest->root, "tenants", 7, NULL) : NULL;
	if (tenants == NULL || tenants->type != jbvBinary ||
		!JsonContainerIsArray(tenants->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("digest must be a JSON object with a \"tenants\" array"),
				 errhint("Pass what headlessly.digest() returned.")));

	it = JsonbIteratorInit(tenants->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		Jsonb	   *kept;
		char	   *name;
		char	   *hex;
		int64		number;
		HlHash		hash;
		Tenant	   *t;
		bool		match = false;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvBinary || !JsonContainerIsObject(elem.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each element of the digest's \"tenants\" must be a checkpoint object")));
		kept = JsonbValueToJsonb(&elem);
		name = jsonb_string(kept, "tenant");
		hex = jsonb_string(kept, "hash");
		if (name == NULL || hex == NULL || !jsonb_get_int8(kept, "number", &number) ||
			!hl_hash_from_hex(hex, strlen(hex), &hash))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a checkpoint of the digest lacks \"tenant\", \"number\" or a valid \"hash\""),
					 errhint("Pass what headlessly.digest() returned.")));
		if (only != NULL && (strlen(name) != VARSIZE_ANY_EXHDR(only) ||
							 memcmp(name, VARDATA_ANY(only), strlen(name)) != 0))
			continue;
		t = tenant_for(v, name, strlen(name));
		for (int i = 0; i < t->ncheckpoints; i++)
		{
			Checkpoint *cp = &t->checkpoints[i];

			if (cp->number == number)
				match = memcmp(cp->hash.bytes, hash.bytes, HL_HASH_LEN) == 0;
		}
		if (!match)
			report(v, t, RANK_DIGEST, number, "digest mismatch", NULL, 0, false, 0,
				   NULL, 0, false, 0);
	}
}

/* Setting up ----------------------------------------------------------------- */

static void
verify_init(Verify *v, int participant, int nparticipants)
{
	HASHCTL		ctl;

	memset(v, 0, sizeof(*v));
	v->cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly verify",
								   ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = HL_MAX_NAME_BYTES + 1;
	ctl.entrysize = sizeof(TenantEntry);
	ctl.hcxt = v->cxt;
	/* hashed up to the NUL, not over all HL_MAX_NAME_BYTES */
	v->tenants = hash_create("headlessly verify tenants", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	v->streams = streamtab_create(v->cxt, 1024, NULL);
	v->hasher = hl_hasher_create();
	v->participant = participant;
	v->nparticipants = nparticipants;
	v->mine = MemoryContextAllocZero(v->cxt, nparticipants * sizeof(bool));
	v->mine[participant] = true;
}

static void
verify_free(Verify *v)
{
	hl_hasher_free(v->hasher);
	MemoryContextDelete(v->cxt);
}

static int
tenant_name_cmp(const void *a, const void *b)
{
	return strcmp((*(Tenant *const *) a)->name, (*(Tenant *const *) b)->name);
}

/* The tenants, by name (strcmp: the names' bytes, as the column's "C" collation). */
static Tenant **
sorted_tenants(Verify *v, int *n)
{
	HASH_SEQ_STATUS status;
	TenantEntry *e;
	Tenant	  **sorted;

	sorted = palloc(Max(hash_get_num_entries(v->tenants), 1) * sizeof(Tenant *));
	*n = 0;
	hash_seq_init(&status, v->tenants);
	while ((e = hash_seq_search(&status)) != NULL)
		sorted[(*n)++] = &e->tenant;
	/* a SaaS log may have many thousands of tenants: not an insertion sort */
	qsort(sorted, *n, sizeof(Tenant *), tenant_name_cmp);
	return sorted;
}

/*
 * What one participant checks, in the active snapshot: the checkpoints,
 * the events of its tenants, their stream heads and, at the end, their
 * checkpoints' trees.
 */
static void
verify_part(Verify *v, text *tenant)
{
	Tenant	  **sorted;
	int			n;

	load_checkpoints(v, tenant);
	scan_events(v, tenant);
	give_up_all_held(v);
	check_heads(v, tenant);

	sorted = sorted_tenants(v, &n);
	for (int i = 0; i < n; i++)
		if (tenant_is_mine(v, sorted[i]))
			check_checkpoints(v, sorted[i]);
	pfree(sorted);
}

/* Parallel verify -------------------------------------------------------------- */

/*
 * A worker scans the whole log too, skipping the rows of the tenants that
 * are not its own (reading their tenant only), and sends back, for each
 * of its tenants, the count of events checked and the problem to report.
 */
#define VERIFY_KEY_SHARED	UINT64CONST(0xE000000000000001)
#define VERIFY_KEY_QUEUES	UINT64CONST(0xE000000000000002)
#define VERIFY_QUEUE_SIZE	((Size) 65536)

typedef struct VerifyShared
{
	int			nparticipants;	/* the leader and the workers asked for */
	bool		have_horizon;
	FullTransactionId sealed_below;
} VerifyShared;

PGDLLEXPORT void hl_verify_worker_main(dsm_segment *seg, shm_toc *toc);

static void
send_counted(StringInfo buf, const char *s)
{
	if (s == NULL)
		pq_sendint32(buf, -1);
	else
	{
		pq_sendint32(buf, strlen(s));
		pq_sendbytes(buf, s, strlen(s));
	}
}

/* NULL for -1; else the bytes, which stay in msg */
static const char *
get_counted(StringInfo msg, int *len)
{
	*len = (int) pq_getmsgint(msg, 4);
	if (*len < 0)
		return NULL;
	return pq_getmsgbytes(msg, *len);
}

/* One message per tenant of this participant's. */
static void
send_results(Verify *v, shm_mq_handle *mqh)
{
	Tenant	  **sorted;
	int			n;
	StringInfoData buf;

	initStringInfo(&buf);
	sorted = sorted_tenants(v, &n);
	for (int i = 0; i < n; i++)
	{
		Tenant	   *t = sorted[i];
		Problem    *p = t->best;
		shm_mq_result res;

		if (!tenant_is_mine(v, t))
			continue;
		resetStringInfo(&buf);
		send_counted(&buf, t->name);
		pq_sendint64(&buf, t->checked);
		pq_sendbyte(&buf, p != NULL);
		if (p != NULL)
		{
			pq_sendint32(&buf, p->rank);
			pq_sendint64(&buf, p->order);
			send_counted(&buf, p->problem);
			send_counted(&buf, p->target);
			pq_sendbyte(&buf, p->has_version);
			pq_sendint64(&buf, p->version);
			send_counted(&buf, p->event_id);
			pq_sendbyte(&buf, p->has_seq);
			pq_sendint64(&buf, p->seq);
		}
		/* the leader waits for every worker's results: it is gone */
		res = shm_mq_send(mqh, buf.len, buf.data, false, true);
		if (res != SHM_MQ_SUCCESS)
			elog(ERROR, "parallel verify: the leader left before the results came");
	}
	pfree(sorted);
	pfree(buf.data);
}

/* A worker's results: its tenants' counts and problems, as if checked here. */
static void
receive_results(Verify *v, shm_mq_handle *mqh)
{
	for (;;)
	{
		Size		nbytes;
		void	   *data;
		StringInfoData msg;
		const char *name;
		const char *problem;
		const char *target;
		const char *event_id;
		int			name_len;
		int			problem_len;
		int			target_len;
		int			id_len;
		Tenant	   *t;
		ProblemRank rank;
		int64		order;
		bool		has_version;
		int64		version;
		bool		has_seq;
		int64		seq;
		MemoryContext old;

		if (shm_mq_receive(mqh, &nbytes, &data, false) != SHM_MQ_SUCCESS)
			break;				/* detached: done, or its error follows */
		msg.data = data;
		msg.len = nbytes;
		msg.maxlen = nbytes;
		msg.cursor = 0;
		name = get_counted(&msg, &name_len);
		if (name == NULL)
			elog(ERROR, "parallel verify: a result without a tenant");
		t = tenant_for(v, name, name_len);
		t->checked = pq_getmsgint64(&msg);
		if (pq_getmsgbyte(&msg))
		{
			rank = (ProblemRank) pq_getmsgint(&msg, 4);
			order = pq_getmsgint64(&msg);
			problem = get_counted(&msg, &problem_len);
			target = get_counted(&msg, &target_len);
			has_version = pq_getmsgbyte(&msg);
			version = pq_getmsgint64(&msg);
			event_id = get_counted(&msg, &id_len);
			has_seq = pq_getmsgbyte(&msg);
			seq = pq_getmsgint64(&msg);
			if (problem == NULL)
				elog(ERROR, "parallel verify: a problem without a name");
			old = MemoryContextSwitchTo(v->cxt);
			problem = pnstrdup(problem, problem_len);
			MemoryContextSwitchTo(old);
			report(v, t, rank, order, problem, target, target_len, has_version, version,
				   event_id, id_len, has_seq, seq);
		}
		pq_getmsgend(&msg);
	}
}

void
hl_verify_worker_main(dsm_segment *seg, shm_toc *toc)
{
	VerifyShared *shared = shm_toc_lookup(toc, VERIFY_KEY_SHARED, false);
	char	   *queues = shm_toc_lookup(toc, VERIFY_KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + ParallelWorkerNumber * VERIFY_QUEUE_SIZE);
	shm_mq_handle *mqh;
	Verify		v;

	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);

	verify_init(&v, ParallelWorkerNumber + 1, shared->nparticipants);
	v.have_horizon = shared->have_horizon;
	v.sealed_below = shared->sealed_below;
	hl_spi_connect();
	verify_part(&v, NULL);
	SPI_finish();
	send_results(&v, mqh);
	shm_mq_detach(mqh);
	verify_free(&v);
}

/* How many tenants have a stream, up to $1: one probe of streams_pkey each. */
#define TENANTS_QUERY \
	"WITH RECURSIVE t(tenant, n) AS (" \
	"    SELECT pg_catalog.min(tenant), 1 FROM " HL_SCHEMA ".streams" \
	"  UNION ALL" \
	"    SELECT (SELECT pg_catalog.min(s.tenant) FROM " HL_SCHEMA ".streams s" \
	"             WHERE s.tenant OPERATOR(pg_catalog.>) t.tenant)," \
	"           t.n OPERATOR(pg_catalog.+) 1" \
	"      FROM t WHERE t.tenant IS NOT NULL AND t.n OPERATOR(pg_catalog.<) $1)" \
	"SELECT pg_catalog.count(tenant)::pg_catalog.int4 FROM t"

/*
 * How many workers to verify the log with: max_parallel_workers_per_gather,
 * no more than the tenants less one.  None for one tenant, a backend
 * already in parallel mode, a caller under row security (SPI reads its
 * rows), or a log smaller than min_parallel_table_scan_size.
 */
static int
verify_workers(text *tenant)
{
	Relation	rel;
	bool		direct;
	BlockNumber blocks;
	Oid			types[1] = {INT4OID};
	Datum		args[1];
	bool		isnull;
	int			tenants;
	int			rc;

	if (tenant != NULL || max_parallel_workers_per_gather <= 0 || IsInParallelMode())
		return 0;
	rel = table_open(hl_log_relid(), AccessShareLock);
	direct = log_readable_directly(rel);
	blocks = RelationGetNumberOfBlocks(rel);
	table_close(rel, AccessShareLock);
	if (!direct || blocks < (BlockNumber) min_parallel_table_scan_size)
		return 0;

	args[0] = Int32GetDatum(max_parallel_workers_per_gather + 1);
	rc = SPI_execute_with_args(TENANTS_QUERY, 1, types, args, NULL, true, 1);
	hl_spi_check(rc, SPI_OK_SELECT, TENANTS_QUERY);
	tenants = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return Min(max_parallel_workers_per_gather, tenants - 1);
}

/*
 * Launch the workers, and make the leader one participant of them, owning
 * too the share of those that could not be launched.  NULL, the leader
 * alone: nothing was launched.
 */
static ParallelContext *
verify_launch(Verify *v, int nworkers, shm_mq_handle ***mqhs)
{
	ParallelContext *pcxt;
	VerifyShared *shared;
	char	   *queues;

	EnterParallelMode();
	pcxt = CreateParallelContext("headlessly_events", "hl_verify_worker_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(VerifyShared));
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(VERIFY_QUEUE_SIZE, nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 2);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory: the leader alone */
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return NULL;
	}

	shared = shm_toc_allocate(pcxt->toc, sizeof(VerifyShared));
	shared->nparticipants = nworkers + 1;
	shared->have_horizon = v->have_horizon;
	shared->sealed_below = v->sealed_below;
	shm_toc_insert(pcxt->toc, VERIFY_KEY_SHARED, shared);
	queues = shm_toc_allocate(pcxt->toc, mul_size(VERIFY_QUEUE_SIZE, nworkers));
	shm_toc_insert(pcxt->toc, VERIFY_KEY_QUEUES, queues);
	for (int i = 0; i < nworkers; i++)
	{
		shm_mq	   *mq = shm_mq_create(queues + i * VERIFY_QUEUE_SIZE, VERIFY_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
	}

	LaunchParallelWorkers(pcxt);
	ereport(DEBUG1,
			(errmsg_internal("headlessly.verify(): %d of %d parallel workers launched",
							 pcxt->nworkers_launched, nworkers)));
	if (pcxt->nworkers_launched == 0)
	{
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return NULL;
	}

	v->nparticipants = nworkers + 1;
	v->mine = MemoryContextAllocZero(v->cxt, v->nparticipants * sizeof(bool));
	v->mine[0] = true;
	/* the workers that did not start: their tenants are the leader's */
	for (int i = pcxt->nworkers_launched; i < nworkers; i++)
		v->mine[i + 1] = true;
	*mqhs = palloc(pcxt->nworkers_launched * sizeof(shm_mq_handle *));
	for (int i = 0; i < pcxt->nworkers_launched; i++)
	{
		(*mqhs)[i] = shm_mq_attach((shm_mq *) (queues + i * VERIFY_QUEUE_SIZE), pcxt->seg, NULL);
		/* a worker that dies before it attaches detaches its queue */
		shm_mq_set_handle((*mqhs)[i], pcxt->worker[i].bgwhandle);
	}
	return pcxt;
}

/* The workers' results, merged; a worker's error is raised here. */
static void
verify_gather(Verify *v, ParallelContext *pcxt, shm_mq_handle **mqhs)
{
	for (int i = 0; i < pcxt->nworkers_launched; i++)
	{
		receive_results(v, mqhs[i]);
		shm_mq_detach(mqhs[i]);
	}
	WaitForParallelWorkersToFinish(pcxt);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
}

/* verify(tenant text, digest jsonb) RETURNS TABLE (...) */
Datum
headlessly_verify(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	Jsonb	   *digest = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	HlResultSet rs;
	Verify		v;
	Tenant	  **sorted;
	ParallelContext *pcxt = NULL;
	shm_mq_handle **mqhs = NULL;
	int			nworkers;
	int			n;
	int			rc;

	/* naming a tenant the role may not read is an error, as everywhere */
	if (tenant != NULL)
		hl_tenant_check(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), HL_TENANT_READ);

	hl_result_set_init(fcinfo, "verify", &rs);

	/*
	 * This transaction's unwritten stream heads, so that they can be
	 * compared; then a new command, or this statement's snapshot would not
	 * see them.
	 */
	if (hl_streams_flush())
		CommandCounterIncrement();

	verify_init(&v, 0, 1);
	hl_spi_connect();

	/* the horizon, checkpoints, events and heads, all in one snapshot */
	PushActiveSnapshot(GetTransactionSnapshot());
	rc = SPI_execute("SELECT sealed_below FROM " HL_SCHEMA ".checkpoint_horizon", true, 1);
	hl_spi_check(rc, SPI_OK_SELECT, "checkpoint_horizon");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			v.have_horizon = true;
			v.sealed_below = DatumGetFullTransactionId(d);
		}
	}
	nworkers = verify_workers(tenant);
	if (nworkers > 0)
		pcxt = verify_launch(&v, nworkers, &mqhs);
	verify_part(&v, tenant);
	/* before SPI_finish(), which frees the queues' handles */
	if (pcxt != NULL)
		verify_gather(&v, pcxt, mqhs);
	PopActiveSnapshot();
	SPI_finish();

	check_digest(&v, digest, tenant);

	/* one row per tenant, by name */
	sorted = sorted_tenants(&v, &n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, true, true, true, true, true};
		Tenant	   *t = sorted[i];
		Problem    *p;

		if (tenant != NULL && (strlen(t->name) != VARSIZE_ANY_EXHDR(tenant) ||
							   memcmp(t->name, VARDATA_ANY(tenant), strlen(t->name)) != 0))
			continue;
		p = t->best;
		values[0] = CStringGetTextDatum(t->name);
		values[1] = BoolGetDatum(p == NULL);
		values[2] = Int64GetDatum(t->checked);
		if (p != NULL)
		{
			if (p->target)
			{
				values[3] = CStringGetTextDatum(p->target);
				nulls[3] = false;
			}
			if (p->has_version)
			{
				values[4] = Int64GetDatum(p->version);
				nulls[4] = false;
			}
			if (p->event_id)
			{
				values[5] = CStringGetTextDatum(p->event_id);
				nulls[5] = false;
			}
			if (p->has_seq)
			{
				values[6] = Int64GetDatum(p->seq);
				nulls[6] = false;
			}
			values[7] = CStringGetTextDatum(p->problem);
			nulls[7] = false;
		}
		tuplestore_putvalues(rs.store, rs.tupdesc, values, nulls);
	}

	verify_free(&v);
	PG_RETURN_NULL();
}

/*
 * digest(tenant text) RETURNS jsonb: the latest checkpoint of each tenant
 * the caller may read (row security), or of the one it names (ZE008 if it
 * may not read that one).
 */
#define DIGEST_QUERY \
	"SELECT pg_catalog.jsonb_build_object('tenants', COALESCE(" \
	"         pg_catalog.jsonb_agg(" HL_SCHEMA ".checkpoint_json(c) ORDER BY c.tenant)," \
	"         '[]'::pg_catalog.jsonb))" \
	"  FROM (SELECT DISTINCT ON (x.tenant) x.* FROM " HL_SCHEMA ".checkpoints x" \
	"         WHERE $1 IS NULL OR x.tenant OPERATOR(pg_catalog.=) $1" \
	"         ORDER BY x.tenant, x.number DESC) c"

PG_FUNCTION_INFO_V1(headlessly_digest);

Datum
headlessly_digest(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	bool		isnull;
	Datum		digest;
	int			rc;

	if (PG_ARGISNULL(0))
		nulls[0] = 'n';
	else
	{
		text	   *tenant = PG_GETARG_TEXT_PP(0);

		hl_tenant_check(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), HL_TENANT_READ);
		args[0] = PointerGetDatum(tenant);
	}

	hl_spi_connect();
	hl_prepare_cached(&plan, DIGEST_QUERY, 1, types);
	rc = SPI_execute_plan(plan, args, nulls, true, 1);
	hl_spi_check(rc, SPI_OK_SELECT, "digest");
	digest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	digest = SPI_datumTransfer(digest, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(digest);
}

#endif							/* !FRONTEND */
