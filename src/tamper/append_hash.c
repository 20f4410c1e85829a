/*-------------------------------------------------------------------------
 *
 * append_hash.c
 *	  The event hash on the append path: the log's trigger hands over a
 *	  row's covered columns and its stream's previous hash.
 *
 * One SHA-256 context and one buffer serve every append of the backend, so
 * an append allocates nothing here; a buffer grown by a large event is
 * given back once it is done with.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

/* backend only: test/tamper/run.sh compiles src/tamper/ for a frontend too */
#ifndef FRONTEND

#include "common/common.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

/* a buffer larger than this is freed after use */
#define KEEP_BUFFER_BYTES (64 * 1024)

static HlHasher *append_hasher = NULL;
static StringInfoData append_buf;

/*
 * A SQL_ASCII database converts nothing: its text is whatever bytes the
 * client sent, and the canonical form takes them as they are.  The form is
 * UTF-8 (FORMAT.md), and an export (test/tools/export.sql) cannot even
 * print other bytes as UTF-8, so an event hashed over them could be
 * verified by nobody outside.  Such an event is refused; read back, the
 * canonical form must be one hl_canonical_parse() accepts.
 */
static void
check_sql_ascii_text(const StringInfo canonical)
{
	HlCanonicalEvent parsed;
	const char *problem;

	if (GetDatabaseEncoding() != PG_SQL_ASCII)
		return;
	if (!hl_canonical_parse(canonical->data, canonical->len, &parsed, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event text is not valid UTF-8"),
				 errdetail("The database encoding is SQL_ASCII, which stores bytes unconverted, and the event's hash covers its text as UTF-8: %s.",
						   problem),
				 errhint("Send the event's text as UTF-8, or keep the log in a UTF8 database.")));
}

void
hl_event_hash_of_datums(const Datum *values, const bool *isnull, const HlHash *prev,
						HlHash *result)
{
	if (append_hasher == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		append_hasher = hl_hasher_create();
		MemoryContextSwitchTo(old);
	}
	if (append_buf.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&append_buf);
		MemoryContextSwitchTo(old);
	}

	resetStringInfo(&append_buf);
	PG_TRY();
	{
		/* jsonb and text values are converted in the caller's context */
		hl_canonical_from_datums(values, isnull, &append_buf);
		check_sql_ascii_text(&append_buf);
		hl_event_hash(append_hasher, prev, append_buf.data, append_buf.len, result);
	}
	PG_FINALLY();
	{
		if (append_buf.maxlen > KEEP_BUFFER_BYTES)
		{
			pfree(append_buf.data);
			append_buf.data = NULL;
		}
	}
	PG_END_TRY();
}

/* A hash as a bytea, in the current memory context. */
bytea *
hl_hash_to_bytea(const HlHash *hash)
{
	bytea	   *result = palloc(VARHDRSZ + HL_HASH_LEN);

	SET_VARSIZE(result, VARHDRSZ + HL_HASH_LEN);
	memcpy(VARDATA(result), hash->bytes, HL_HASH_LEN);
	return result;
}

/* A stored hash; false unless it is a bytea of exactly 32 bytes. */
bool
hl_hash_from_datum(Datum value, HlHash *hash)
{
	bytea	   *b = DatumGetByteaPP(value);
	bool		ok = VARSIZE_ANY_EXHDR(b) == HL_HASH_LEN;

	if (ok)
		memcpy(hash->bytes, VARDATA_ANY(b), HL_HASH_LEN);
	if ((Pointer) b != DatumGetPointer(value))
		pfree(b);
	return ok;
}

#endif							/* !FRONTEND */
