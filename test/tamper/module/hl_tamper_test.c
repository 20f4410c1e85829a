/*-------------------------------------------------------------------------
 *
 * hl_tamper_test.c
 *	  A test-only module that makes src/tamper/ callable from SQL before the
 *	  extension has a tamper-evidence API, so that the backend code runs on
 *	  real rows of headlessly.events (test/tamper/backend.sh).
 *
 *	  It is built from the same sources as the extension and is never
 *	  installed: backend.sh creates its functions from the .so's path.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

PG_MODULE_MAGIC;

static bytea *
to_bytea(const void *data, int len)
{
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), data, len);
	return result;
}

static HlHash
hash_arg(bytea *b, const char *what)
{
	HlHash		h;

	if (VARSIZE_ANY_EXHDR(b) != HL_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have %d bytes, not %d", what, HL_HASH_LEN,
						(int) VARSIZE_ANY_EXHDR(b))));
	memcpy(h.bytes, VARDATA_ANY(b), HL_HASH_LEN);
	return h;
}

/* canonical(e headlessly.events) RETURNS bytea */
PG_FUNCTION_INFO_V1(tamper_test_canonical);
Datum
tamper_test_canonical(PG_FUNCTION_ARGS)
{
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc	tupdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(row),
												 HeapTupleHeaderGetTypMod(row));
	HeapTupleData tuple;
	HlCanonicalMap map;
	StringInfoData buf;

	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;

	hl_canonical_map_init(tupdesc, &map);
	initStringInfo(&buf);
	hl_canonical_from_tuple(&tuple, tupdesc, &map, &buf);
	hl_canonical_map_free(&map);
	ReleaseTupleDesc(tupdesc);
	PG_RETURN_BYTEA_P(to_bytea(buf.data, buf.len));
}

/* canonical_of(the 16 covered columns, in order) RETURNS bytea */
PG_FUNCTION_INFO_V1(tamper_test_canonical_of);
Datum
tamper_test_canonical_of(PG_FUNCTION_ARGS)
{
	Datum		values[HL_EVENT_NFIELDS];
	bool		isnull[HL_EVENT_NFIELDS];
	StringInfoData buf;

	for (int i = 0; i < HL_EVENT_NFIELDS; i++)
	{
		isnull[i] = PG_ARGISNULL(i);
		values[i] = isnull[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	initStringInfo(&buf);
	hl_canonical_from_datums(values, isnull, &buf);
	PG_RETURN_BYTEA_P(to_bytea(buf.data, buf.len));
}

/* jsonb_text(jsonb) RETURNS text: what the canonical form writes for it */
PG_FUNCTION_INFO_V1(tamper_test_jsonb_text);
Datum
tamper_test_jsonb_text(PG_FUNCTION_ARGS)
{
	Jsonb	   *jsonb = PG_GETARG_JSONB_P(0);
	StringInfoData buf;

	initStringInfo(&buf);
	hl_append_jsonb_text(&buf, jsonb);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* Walking the log in seq order, with each stream's chain ---------------------- */

typedef struct StreamKey
{
	const char *data;			/* tenant, a zero byte, target */
	uint32		len;
} StreamKey;

typedef struct StreamEntry
{
	StreamKey	key;
	int64		version;
	HlHash		hash;
} StreamEntry;

static uint32
stream_key_hash(const void *key, Size keysize)
{
	const StreamKey *k = key;

	return hash_bytes((const unsigned char *) k->data, (int) k->len);
}

static int
stream_key_match(const void *a, const void *b, Size keysize)
{
	const StreamKey *x = a;
	const StreamKey *y = b;

	return x->len == y->len && memcmp(x->data, y->data, x->len) == 0 ? 0 : 1;
}

typedef enum WalkMode
{
	WALK_SCAN,					/* fetch and deform rows only */
	WALK_CANONICAL,				/* and build each canonical form */
	WALK_HASH					/* and hash, chain and add to a Merkle tree */
} WalkMode;

typedef struct Walk
{
	WalkMode	mode;
	HlHasher   *hasher;
	HTAB	   *streams;
	MemoryContext cxt;			/* the stream table's keys */
	MemoryContext row_cxt;		/* reset for each event */
	HlMerkleBuilder tree;
	int64		events;
	Tuplestorestate *out;		/* event_hashes() only */
	TupleDesc	out_desc;
} Walk;

static void
walk_event(Walk *walk, HeapTuple tuple, TupleDesc tupdesc, HlCanonicalMap *map)
{
	StringInfoData buf;
	HlHash		prev = hl_zero_hash;
	HlHash		hash;
	bool		isnull;
	Datum		target;
	int64		version = 0;
	StreamEntry *entry = NULL;

	walk->events++;
	if (walk->mode == WALK_SCAN)
	{
		heap_deform_tuple(tuple, tupdesc, map->values, map->isnull);
		return;
	}
	initStringInfo(&buf);
	hl_canonical_from_tuple(tuple, tupdesc, map, &buf);
	if (walk->mode == WALK_CANONICAL)
		return;

	/* map->values holds the deformed row now */
	target = map->values[map->attnum[HL_FIELD_TARGET] - 1];
	isnull = map->isnull[map->attnum[HL_FIELD_TARGET] - 1];
	if (!isnull)
	{
		text	   *tenant = DatumGetTextPP(map->values[map->attnum[HL_FIELD_TENANT] - 1]);
		text	   *t = DatumGetTextPP(target);
		int			tlen = VARSIZE_ANY_EXHDR(tenant);
		int			glen = VARSIZE_ANY_EXHDR(t);
		char	   *key_data = palloc(tlen + 1 + glen);
		StreamKey	key;
		bool		found;

		memcpy(key_data, VARDATA_ANY(tenant), tlen);
		key_data[tlen] = '\0';
		memcpy(key_data + tlen + 1, VARDATA_ANY(t), glen);
		key.data = key_data;
		key.len = tlen + 1 + glen;
		version = DatumGetInt64(map->values[map->attnum[HL_FIELD_VERSION] - 1]);
		entry = hash_search(walk->streams, &key, HASH_ENTER, &found);
		if (!found)
			entry->key.data = memcpy(MemoryContextAlloc(walk->cxt, key.len), key_data, key.len);
		else if (version != 1)
			prev = entry->hash;
	}
	hl_event_hash(walk->hasher, &prev, buf.data, buf.len, &hash);
	if (entry)
	{
		entry->version = version;
		entry->hash = hash;
	}
	hl_merkle_add(&walk->tree, hash.bytes, HL_HASH_LEN);

	if (walk->out)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = map->values[map->attnum[HL_FIELD_SEQ] - 1];
		values[1] = map->values[map->attnum[HL_FIELD_ID] - 1];
		values[2] = PointerGetDatum(to_bytea(prev.bytes, HL_HASH_LEN));
		values[3] = PointerGetDatum(to_bytea(hash.bytes, HL_HASH_LEN));
		values[4] = PointerGetDatum(to_bytea(buf.data, buf.len));
		tuplestore_putvalues(walk->out, walk->out_desc, values, nulls);
	}
}

static void
walk_log(Oid relid, text *tenant, Walk *walk)
{
	char	   *relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													 get_rel_name(relid));
	StringInfoData query;
	Portal		portal;
	SPIPlanPtr	plan;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	HlCanonicalMap map;
	bool		have_map = false;
	HASHCTL		ctl;

	walk->cxt = AllocSetContextCreate(CurrentMemoryContext, "tamper_test streams",
									  ALLOCSET_DEFAULT_SIZES);
	walk->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "tamper_test row",
										  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(StreamKey);
	ctl.entrysize = sizeof(StreamEntry);
	ctl.hash = stream_key_hash;
	ctl.match = stream_key_match;
	ctl.hcxt = walk->cxt;
	walk->streams = hash_create("tamper_test streams", 1024, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	walk->hasher = hl_hasher_create();
	hl_merkle_init(&walk->tree, walk->hasher);
	walk->events = 0;

	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
		appendStringInfo(&query, "%s%s", f ? ", " : "", quote_identifier(hl_event_fields[f].name));
	appendStringInfo(&query, " FROM %s", relname);
	if (tenant)
		appendStringInfoString(&query, " WHERE tenant OPERATOR(pg_catalog.=) $1");
	appendStringInfoString(&query, " ORDER BY seq");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(query.data, tenant ? 1 : 0, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", query.data,
			 SPI_result_code_string(SPI_result));
	args[0] = PointerGetDatum(tenant);
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		if (!have_map)
		{
			MemoryContext old = MemoryContextSwitchTo(walk->cxt);

			hl_canonical_map_init(SPI_tuptable->tupdesc, &map);
			MemoryContextSwitchTo(old);
			have_map = true;
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(walk->row_cxt);

			walk_event(walk, SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &map);
			MemoryContextSwitchTo(old);
			MemoryContextReset(walk->row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

static void
walk_done(Walk *walk)
{
	hl_hasher_free(walk->hasher);
	MemoryContextDelete(walk->cxt);
	MemoryContextDelete(walk->row_cxt);
}

/*
 * event_hashes(log regclass, tenant text DEFAULT NULL)
 *	 RETURNS TABLE (seq bigint, id text, prev bytea, hash bytea, canonical bytea)
 */
PG_FUNCTION_INFO_V1(tamper_test_event_hashes);
Datum
tamper_test_event_hashes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Walk		walk;

	InitMaterializedSRF(fcinfo, 0);
	memset(&walk, 0, sizeof(walk));
	walk.mode = WALK_HASH;
	walk.out = rsinfo->setResult;
	walk.out_desc = rsinfo->setDesc;
	walk_log(PG_GETARG_OID(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1), &walk);
	walk_done(&walk);
	return (Datum) 0;
}

/* scan(log regclass, mode text) RETURNS TABLE (events bigint, root bytea) */
PG_FUNCTION_INFO_V1(tamper_test_scan);
Datum
tamper_test_scan(PG_FUNCTION_ARGS)
{
	char	   *mode = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Walk		walk;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	HlHash		root;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&walk, 0, sizeof(walk));
	if (strcmp(mode, "scan") == 0)
		walk.mode = WALK_SCAN;
	else if (strcmp(mode, "canonical") == 0)
		walk.mode = WALK_CANONICAL;
	else if (strcmp(mode, "hash") == 0)
		walk.mode = WALK_HASH;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mode \"%s\"", mode),
				 errhint("Use \"scan\", \"canonical\" or \"hash\".")));
	walk_log(PG_GETARG_OID(0), NULL, &walk);
	hl_merkle_root(&walk.tree, &root);
	values[0] = Int64GetDatum(walk.events);
	values[1] = PointerGetDatum(to_bytea(root.bytes, HL_HASH_LEN));
	walk_done(&walk);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* Merkle trees and checkpoints ---------------------------------------------------- */

static HlHash *
hashes_from_array(ArrayType *array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	HlHash	   *hashes;

	deconstruct_array(array, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	hashes = palloc(Max(*n, 1) * sizeof(HlHash));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("hash %d is NULL", i + 1)));
		hashes[i] = hash_arg(DatumGetByteaPP(elems[i]), "an event hash");
	}
	return hashes;
}

/* merkle_root(event_hashes bytea[]) RETURNS bytea */
PG_FUNCTION_INFO_V1(tamper_test_merkle_root);
Datum
tamper_test_merkle_root(PG_FUNCTION_ARGS)
{
	int			n;
	HlHash	   *hashes = hashes_from_array(PG_GETARG_ARRAYTYPE_P(0), &n);
	HlHasher   *hasher = hl_hasher_create();
	HlMerkleBuilder tree;
	HlHash		root;

	hl_merkle_init(&tree, hasher);
	for (int i = 0; i < n; i++)
		hl_merkle_add(&tree, hashes[i].bytes, HL_HASH_LEN);
	hl_merkle_root(&tree, &root);
	hl_hasher_free(hasher);
	PG_RETURN_BYTEA_P(to_bytea(root.bytes, HL_HASH_LEN));
}

/* audit_path(event_hashes bytea[], leaf_index bigint) RETURNS bytea[] */
PG_FUNCTION_INFO_V1(tamper_test_audit_path);
Datum
tamper_test_audit_path(PG_FUNCTION_ARGS)
{
	int			n;
	HlHash	   *hashes = hashes_from_array(PG_GETARG_ARRAYTYPE_P(0), &n);
	int64		index = PG_GETARG_INT64(1);
	HlHasher   *hasher;
	HlMerklePathBuilder pb;
	HlHash		path[HL_MERKLE_MAX_HEIGHT];
	HlHash		leaf;
	HlHash		root;
	Datum		elems[HL_MERKLE_MAX_HEIGHT];
	int			len;

	if (index < 0 || index >= n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("leaf index " INT64_FORMAT " is not in a tree of %d leaves", index, n)));
	hasher = hl_hasher_create();
	hl_merkle_path_init(&pb, hasher, (uint64) index, (uint64) n);
	for (int i = 0; i < n; i++)
		hl_merkle_path_add(&pb, hashes[i].bytes, HL_HASH_LEN);
	len = hl_merkle_path_finish(&pb, &leaf, path, &root);
	hl_hasher_free(hasher);
	for (int i = 0; i < len; i++)
		elems[i] = PointerGetDatum(to_bytea(path[i].bytes, HL_HASH_LEN));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, len, BYTEAOID, -1, false, TYPALIGN_INT));
}

/*
 * checkpoint_hash(tenant text, number bigint, prev bytea, root bytea,
 *				   count bigint, first_seq bigint, last_seq bigint) RETURNS bytea
 */
PG_FUNCTION_INFO_V1(tamper_test_checkpoint_hash);
Datum
tamper_test_checkpoint_hash(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_GETARG_TEXT_PP(0);
	HlCheckpoint cp;
	HlHasher   *hasher;
	HlHash		hash;
	int			len;

	cp.tenant = hl_server_to_utf8(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), &len);
	cp.tenant_len = len;
	cp.number = PG_GETARG_INT64(1);
	cp.prev = hash_arg(PG_GETARG_BYTEA_PP(2), "prev");
	cp.root = hash_arg(PG_GETARG_BYTEA_PP(3), "root");
	cp.count = PG_GETARG_INT64(4);
	cp.first_seq = PG_GETARG_INT64(5);
	cp.last_seq = PG_GETARG_INT64(6);
	hasher = hl_hasher_create();
	hl_checkpoint_hash(hasher, &cp, &hash);
	hl_hasher_free(hasher);
	PG_RETURN_BYTEA_P(to_bytea(hash.bytes, HL_HASH_LEN));
}

/* sign(key_file text, hash bytea) RETURNS TABLE (signature text, public_key text) */
PG_FUNCTION_INFO_V1(tamper_test_sign);
Datum
tamper_test_sign(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	HlHash		hash = hash_arg(PG_GETARG_BYTEA_PP(1), "a checkpoint hash");
	HlSignature sig;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	hl_sign_checkpoint_hash(path, &hash, &sig);
	values[0] = CStringGetTextDatum(hl_base64(sig.signature, HL_ED25519_SIGNATURE_LEN));
	values[1] = CStringGetTextDatum(hl_base64(sig.public_key, HL_ED25519_PUBLIC_KEY_LEN));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
