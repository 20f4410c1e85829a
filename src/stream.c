/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Stream heads: the last version of a (tenant, target) and its state.
 *
 * The row lock on a stream's head row is the stream's lock: it is taken
 * before the version is read and held until the appending transaction ends,
 * so versions have no gaps or duplicates whatever the concurrency, and
 * appends to different streams never wait for each other.  A stream's first
 * append inserts its head row; a concurrent first append waits on that row
 * through ON CONFLICT and then locks it like any other.  Row locks, unlike
 * heavyweight locks, take no room in the shared lock table, so a transaction
 * may append to any number of streams.
 *
 *-------------------------------------------------------------------------
 */
#include "headlessly.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#define LOCK_QUERY \
	"SELECT version, last_recorded_at, noun, state, created_at, updated_at" \
	"  FROM " HL_SCHEMA ".streams" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND target OPERATOR(pg_catalog.=) $2" \
	"   FOR UPDATE"

#define CREATE_QUERY \
	"INSERT INTO " HL_SCHEMA ".streams (tenant, target, version)" \
	" VALUES ($1, $2, 0)" \
	" ON CONFLICT (tenant, target) DO NOTHING"

#define STORE_QUERY \
	"UPDATE " HL_SCHEMA ".streams" \
	"   SET version = $3, last_recorded_at = $4, noun = $5, state = $6," \
	"       created_at = $7, updated_at = $8" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND target OPERATOR(pg_catalog.=) $2"

static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr create_plan = NULL;
static SPIPlanPtr store_plan = NULL;

static Datum
column_or_null(int attno, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, attno, isnull);
}

/*
 * Lock the head of (tenant, target), creating it if the stream is new, and
 * read it into *head.  Must run inside SPI; results live in SPI memory.
 */
void
hl_stream_lock(text *tenant, text *target, HlStreamHead *head)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {PointerGetDatum(tenant), PointerGetDatum(target)};

	hl_prepare_cached(&lock_plan, LOCK_QUERY, 2, argtypes);
	hl_prepare_cached(&create_plan, CREATE_QUERY, 2, argtypes);

	for (;;)
	{
		int			rc;
		bool		isnull;
		Datum		d;

		rc = SPI_execute_plan(lock_plan, args, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, LOCK_QUERY);

		if (SPI_processed == 1)
		{
			head->version = DatumGetInt64(column_or_null(1, &isnull));
			head->last_recorded_at = DatumGetTimestampTz(column_or_null(2, &isnull));
			head->has_last_recorded_at = !isnull;
			d = column_or_null(3, &isnull);
			head->noun = isnull ? NULL : TextDatumGetCString(d);
			d = column_or_null(4, &isnull);
			head->state = isnull ? NULL : DatumGetJsonbP(d);
			head->created_at = DatumGetTimestampTz(column_or_null(5, &isnull));
			head->has_created_at = !isnull;
			head->updated_at = DatumGetTimestampTz(column_or_null(6, &isnull));
			head->has_updated_at = !isnull;
			return;
		}

		rc = SPI_execute_plan(create_plan, args, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT, CREATE_QUERY);
		if (SPI_processed == 1)
		{
			/* our own new row: nobody else can lock it before we commit */
			memset(head, 0, sizeof(*head));
			return;
		}
		/* another transaction created it and committed: lock theirs */
	}
}

/*
 * Write back a head locked by hl_stream_lock.
 */
void
hl_stream_store(text *tenant, text *target, const HlStreamHead *head)
{
	Oid			argtypes[8] = {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[8];
	char		nulls[8];
	int			rc;

	hl_prepare_cached(&store_plan, STORE_QUERY, 8, argtypes);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = PointerGetDatum(tenant);
	args[1] = PointerGetDatum(target);
	args[2] = Int64GetDatum(head->version);
	args[3] = TimestampTzGetDatum(head->last_recorded_at);
	if (!head->has_last_recorded_at)
		nulls[3] = 'n';
	if (head->noun)
		args[4] = CStringGetTextDatum(head->noun);
	else
		nulls[4] = 'n';
	if (head->state)
		args[5] = JsonbPGetDatum(head->state);
	else
		nulls[5] = 'n';
	args[6] = TimestampTzGetDatum(head->created_at);
	if (!head->has_created_at)
		nulls[6] = 'n';
	args[7] = TimestampTzGetDatum(head->updated_at);
	if (!head->has_updated_at)
		nulls[7] = 'n';

	rc = SPI_execute_plan(store_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, STORE_QUERY);
	if (SPI_processed != 1)
		elog(ERROR, "stream head vanished while locked");
}
