/*-------------------------------------------------------------------------
 *
 * tamper.h
 *	  The building blocks of tamper evidence: the canonical form of an
 *	  event, event hashes chained along a stream, RFC 6962 Merkle trees,
 *	  checkpoint hashes and Ed25519 signatures.
 *
 * Everything declared outside the "#ifndef FRONTEND" sections is pure C over
 * byte strings and compiles both into the extension (postgres.h) and into
 * frontend programs built with -DFRONTEND (postgres_fe.h): the test driver,
 * the fuzz harnesses.  Those parts raise no ereport(): they return false or
 * a status, or, for a failure of the hash library itself, report through
 * hl_tamper_failure() (an ereport in the backend, exit in a frontend).
 *
 * Every byte that goes into a hash is documented in the README; the outside
 * verifier test/tools/hl_verify.py is written from that text alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_TAMPER_H
#define HL_TAMPER_H

#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "lib/stringinfo.h"

#ifndef FRONTEND
#include "access/htup.h"
#include "access/transam.h"
#include "access/tupdesc.h"
#include "utils/jsonb.h"
#endif

/* SHA-256 digests ---------------------------------------------------------- */

#define HL_HASH_LEN 32
#define HL_HASH_HEX_LEN (2 * HL_HASH_LEN)

typedef struct HlHash
{
	uint8		bytes[HL_HASH_LEN];
} HlHash;

extern const HlHash hl_zero_hash;

/*
 * A reusable SHA-256 context (hash.c): create one per task and hash with it
 * as often as needed, one hash at a time.  Plain palloc'd memory: it lives
 * as long as the memory context current at its creation, or until
 * hl_hasher_free().
 */
typedef struct HlHasher HlHasher;

extern HlHasher *hl_hasher_create(void);
extern void hl_hasher_free(HlHasher *hasher);
extern void hl_hash_begin(HlHasher *hasher);
extern void hl_hash_update(HlHasher *hasher, const void *data, size_t len);
extern void hl_hash_end(HlHasher *hasher, HlHash *result);
extern void hl_sha256(HlHasher *hasher, const void *data, size_t len, HlHash *result);

extern void hl_hash_to_hex(const HlHash *hash, char *hex);	/* HL_HASH_HEX_LEN + 1 */
extern bool hl_hash_from_hex(const char *hex, size_t len, HlHash *hash);

/* Canonical form, version 1 (canonical.c) ---------------------------------- */

#define HL_CANONICAL_MAGIC "hl-event-v1\n"
#define HL_CANONICAL_MAGIC_LEN 12

/* The covered columns of headlessly.events, in canonical order. */
typedef enum HlEventField
{
	HL_FIELD_SEQ,
	HL_FIELD_ID,
	HL_FIELD_TENANT,
	HL_FIELD_TYPE,
	HL_FIELD_TARGET,
	HL_FIELD_VERSION,
	HL_FIELD_ACTOR,
	HL_FIELD_SOURCE,
	HL_FIELD_SOURCE_TYPE,
	HL_FIELD_EXTERNAL_EVENT_ID,
	HL_FIELD_OCCURRED_AT,
	HL_FIELD_RECORDED_AT,
	HL_FIELD_DATA,
	HL_FIELD_BEFORE,
	HL_FIELD_METADATA,
	HL_FIELD_RAW_PAYLOAD,
	HL_EVENT_NFIELDS
} HlEventField;

/* How a field's value is written as text. */
typedef enum HlFieldKind
{
	HL_KIND_INT8,				/* decimal */
	HL_KIND_TEXT,				/* the text itself */
	HL_KIND_TIMESTAMPTZ,		/* YYYY-MM-DDTHH:MM:SS.ffffffZ */
	HL_KIND_JSONB				/* jsonb's output text */
} HlFieldKind;

typedef struct HlFieldInfo
{
	const char *name;			/* the column's name */
	HlFieldKind kind;
	bool		not_null;
} HlFieldInfo;

extern const HlFieldInfo hl_event_fields[HL_EVENT_NFIELDS];

/*
 * Writing a canonical form: begin, then exactly HL_EVENT_NFIELDS values in
 * HlEventField order.  Values are UTF-8 bytes.
 */
extern void hl_canonical_begin(StringInfo buf);
extern void hl_canonical_put_null(StringInfo buf);
extern void hl_canonical_put_bytes(StringInfo buf, const char *data, size_t len);
extern void hl_canonical_put_int64(StringInfo buf, int64 value);
extern void hl_canonical_put_timestamp(StringInfo buf, int64 timestamp);
/* for values written in place: open returns where the length goes */
extern int	hl_canonical_open_value(StringInfo buf);
extern void hl_canonical_close_value(StringInfo buf, int length_at);

/* Text forms of integers and timestamps (TimestampTz: microseconds since 2000-01-01 UTC) */
#define HL_INT64_TEXT_MAX 21
#define HL_TIMESTAMP_TEXT_MAX 32
extern int	hl_format_int64(int64 value, char *out);
extern bool hl_parse_int64(const char *text, size_t len, int64 *value);
extern int	hl_format_timestamp(int64 timestamp, char *out);
extern bool hl_parse_timestamp(const char *text, size_t len, int64 *timestamp);

/* jsonb's output text: is this exactly what jsonb_out would print? */
extern bool hl_json_text_is_canonical(const char *text, size_t len, const char **problem);

/* Reading a canonical form back, with every rule checked. */
typedef struct HlCanonicalValue
{
	const char *data;			/* points into the parsed buffer */
	uint32		len;
	bool		isnull;
} HlCanonicalValue;

typedef struct HlCanonicalEvent
{
	HlCanonicalValue fields[HL_EVENT_NFIELDS];
} HlCanonicalEvent;

extern bool hl_canonical_parse(const char *buf, size_t len, HlCanonicalEvent *event,
							   const char **problem);

#ifndef FRONTEND

/*
 * Where each covered column is in a tuple of the log, found by name and type
 * checked.  A caller that hashes many rows makes one per relation and keeps
 * it (its workspace in a long-lived context, e.g. CacheMemoryContext, made
 * again when the relation's descriptor changes); the workspace makes one map
 * usable by one caller at a time.  Columns other than the 16 covered ones
 * (session_id, a stored hash ...) are ignored, and rows written before a
 * column was added deform as usual.
 */
typedef struct HlCanonicalMap
{
	AttrNumber	attnum[HL_EVENT_NFIELDS];
	int			natts;			/* of the tuple descriptor it was made for */
	Datum	   *values;			/* workspace for deforming tuples */
	bool	   *isnull;
} HlCanonicalMap;

extern void hl_canonical_map_init(TupleDesc tupdesc, HlCanonicalMap *map);
extern void hl_canonical_map_free(HlCanonicalMap *map);
extern void hl_canonical_from_tuple(HeapTuple tuple, TupleDesc tupdesc,
									HlCanonicalMap *map, StringInfo buf);
extern void hl_canonical_from_row(const Datum *values, const bool *isnull,
								  const HlCanonicalMap *map, StringInfo buf);
extern void hl_canonical_from_datums(const Datum *values, const bool *isnull,
									 StringInfo buf);
extern void hl_canonical_put_text_datum(StringInfo buf, Datum value);
extern void hl_canonical_put_jsonb(StringInfo buf, Jsonb *jsonb);
extern void hl_append_jsonb_text(StringInfo buf, Jsonb *jsonb);
extern void hl_append_json_string(StringInfo buf, const char *s, int len);
extern const char *hl_server_to_utf8(const char *s, int len, int *utf8_len);

#endif							/* !FRONTEND */

/* Event hashes and stream chains (hash.c) ----------------------------------- */

/*
 * event_hash = SHA-256(prev || canonical form); prev is the previous event's
 * hash in the same stream, or 32 zero bytes (NULL here) for version 1 and
 * for events without a target.
 */
extern void hl_event_hash(HlHasher *hasher, const HlHash *prev,
						  const char *canonical, size_t len, HlHash *result);

#ifndef FRONTEND
/* the append path's hash of a row (append_hash.c); values in HlEventField order */
extern void hl_event_hash_of_datums(const Datum *values, const bool *isnull,
									const HlHash *prev, HlHash *result);
extern bytea *hl_hash_to_bytea(const HlHash *hash);
extern bool hl_hash_from_datum(Datum value, HlHash *hash);

/* settings and checkpoints (seal.c) */
extern char *hl_signing_key_file;
extern void hl_tamper_init(void);
extern FullTransactionId hl_widen_xid(TransactionId xid);

/*
 * Seal what has committed, for every tenant, in the caller's transaction;
 * returns the number of checkpoints made (0 in a database whose extension
 * predates checkpoints).  For the background worker.
 */
extern int64 hl_tamper_checkpoint_all(void);
#endif

/* RFC 6962 Merkle trees (merkle.c) ------------------------------------------ */

#define HL_MERKLE_MAX_HEIGHT 64

extern void hl_merkle_leaf_hash(HlHasher *hasher, const void *data, size_t len,
								HlHash *result);
extern void hl_merkle_node_hash(HlHasher *hasher, const HlHash *left,
								const HlHash *right, HlHash *result);
extern void hl_merkle_empty_root(HlHasher *hasher, HlHash *result);

/*
 * The root over leaves given one at a time, in O(log n) memory: the stack
 * holds the roots of the perfect subtrees that n's binary digits describe.
 */
typedef struct HlMerkleBuilder
{
	HlHasher   *hasher;
	uint64		count;
	int			depth;
	HlHash		stack[HL_MERKLE_MAX_HEIGHT];
} HlMerkleBuilder;

extern void hl_merkle_init(HlMerkleBuilder *builder, HlHasher *hasher);
extern void hl_merkle_add(HlMerkleBuilder *builder, const void *data, size_t len);
extern void hl_merkle_add_leaf_hash(HlMerkleBuilder *builder, const HlHash *leaf);
extern void hl_merkle_root(const HlMerkleBuilder *builder, HlHash *root);

/*
 * The audit path of leaf `index` in a tree of `size` leaves (RFC 6962
 * 2.1.1), also computed from the leaves given one at a time in order.
 */
typedef struct HlMerkleRange
{
	uint64		start;
	uint64		end;			/* exclusive */
	int			slot;			/* its place in the path, deepest first */
} HlMerkleRange;

typedef struct HlMerklePathBuilder
{
	HlHasher   *hasher;
	uint64		index;
	uint64		size;
	uint64		seen;
	int			nranges;
	int			current;		/* range being built */
	HlMerkleRange ranges[HL_MERKLE_MAX_HEIGHT];	/* by start */
	HlHash		path[HL_MERKLE_MAX_HEIGHT];
	HlHash		leaf;			/* leaf hash of `index` */
	HlMerkleBuilder range_builder;
} HlMerklePathBuilder;

extern void hl_merkle_path_init(HlMerklePathBuilder *pb, HlHasher *hasher,
								uint64 index, uint64 size);
extern void hl_merkle_path_add(HlMerklePathBuilder *pb, const void *data, size_t len);
extern void hl_merkle_path_add_leaf_hash(HlMerklePathBuilder *pb, const HlHash *leaf);
extern int	hl_merkle_path_finish(HlMerklePathBuilder *pb, HlHash *leaf,
								  HlHash *path, HlHash *root);
extern bool hl_merkle_root_from_path(HlHasher *hasher, uint64 index, uint64 size,
									 const HlHash *leaf, const HlHash *path,
									 int path_len, HlHash *root);
extern bool hl_merkle_verify_path(HlHasher *hasher, uint64 index, uint64 size,
								  const HlHash *leaf, const HlHash *path,
								  int path_len, const HlHash *root);

/* Checkpoint hashes (checkpoint.c) ----------------------------------------- */

#define HL_CHECKPOINT_MAGIC "hl-checkpoint-v1\n"
#define HL_CHECKPOINT_MAGIC_LEN 17

typedef struct HlCheckpoint
{
	const char *tenant;			/* UTF-8 */
	uint32		tenant_len;
	int64		number;
	HlHash		prev;			/* the tenant's previous checkpoint, or zeros */
	HlHash		root;			/* Merkle root over the sealed event hashes */
	int64		count;			/* events sealed */
	int64		first_seq;		/* lowest and highest seq sealed; 0 when count = 0 */
	int64		last_seq;
} HlCheckpoint;

extern void hl_checkpoint_preimage(const HlCheckpoint *checkpoint, StringInfo buf);
extern void hl_checkpoint_hash(HlHasher *hasher, const HlCheckpoint *checkpoint,
							   HlHash *result);

/* Ed25519 signatures over checkpoint hashes (sign.c) ------------------------ */

#define HL_ED25519_SIGNATURE_LEN 64
#define HL_ED25519_PUBLIC_KEY_LEN 32

typedef enum HlKeyStatus
{
	HL_KEY_OK,
	HL_KEY_FILE_MISSING,		/* no such file */
	HL_KEY_FILE_UNREADABLE,		/* could not open or read it (errno) */
	HL_KEY_NOT_A_FILE,			/* a directory, a device ... */
	HL_KEY_IN_DATA_DIRECTORY,	/* inside the data directory */
	HL_KEY_BAD_OWNER,			/* owned by neither us nor root */
	HL_KEY_BAD_PERMISSIONS,		/* readable by group or others */
	HL_KEY_NOT_PRIVATE_KEY,		/* no unencrypted PEM private key in it */
	HL_KEY_NOT_ED25519,			/* a private key of another type */
	HL_KEY_SIGN_FAILED			/* the library refused to sign */
} HlKeyStatus;

typedef struct HlSignature
{
	uint8		signature[HL_ED25519_SIGNATURE_LEN];
	uint8		public_key[HL_ED25519_PUBLIC_KEY_LEN];
} HlSignature;

typedef struct HlKeyError
{
	int			saved_errno;	/* for HL_KEY_FILE_UNREADABLE */
	char		detail[256];	/* the key type, the library's message ... */
} HlKeyError;

extern HlKeyStatus hl_sign_with_key_file(const char *path, const char *data_directory,
										 const void *message, size_t len,
										 HlSignature *result, HlKeyError *error);
extern bool hl_signature_verify(const uint8 *public_key, const void *message,
								size_t len, const uint8 *signature);
extern char *hl_base64(const uint8 *data, int len);

#ifndef FRONTEND
/* hl_sign_with_key_file() against DataDir, with a proper ereport */
extern void hl_sign_checkpoint_hash(const char *path, const HlHash *hash,
									HlSignature *result);
#endif

/* failures of the hash library: ereport in the backend, exit in a frontend */
#ifdef pg_noreturn
extern pg_noreturn void hl_tamper_failure(const char *what, const char *detail);
#else
extern void hl_tamper_failure(const char *what, const char *detail) pg_attribute_noreturn();
#endif

#endif							/* HL_TAMPER_H */
