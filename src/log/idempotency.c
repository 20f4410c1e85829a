/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  Idempotency keys: (tenant, source, external_event_id).
 *
 * An append claims its key by inserting it into headlessly.event_keys with
 * ON CONFLICT DO NOTHING.  That is PostgreSQL's own speculative insertion:
 * an append that meets a key claimed by a transaction still in progress
 * waits for it, then either finds the key taken (the other committed) or
 * claims it (the other rolled back).  So concurrent duplicates end with
 * exactly one stored event and no unique-violation error, and the claim is
 * made before anything else of the append happens, so a duplicate runs no
 * hook and takes no version.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#define CLAIM_QUERY \
	"INSERT INTO " HL_SCHEMA ".event_keys (tenant, source, external_event_id, seq)" \
	" VALUES ($1, $2, $3, $4)" \
	" ON CONFLICT DO NOTHING"

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

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr stored_plan = NULL;
static SPIPlanPtr stored_null_source_plan = NULL;

/*
 * Claim the key for the event numbered seq.  Returns false if an event with
 * that key is already stored.  Must run inside SPI.
 */
bool
hl_claim_idempotency_key(text *tenant, text *source, text *key, int64 seq)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	HlSavedUser saved;
	int			rc;

	hl_prepare_cached(&claim_plan, CLAIM_QUERY, 4, argtypes);

	args[0] = PointerGetDatum(tenant);
	args[1] = PointerGetDatum(source);
	if (source == NULL)
		nulls[1] = 'n';
	args[2] = PointerGetDatum(key);
	args[3] = Int64GetDatum(seq);

	hl_become_log_owner(&saved);
	rc = SPI_execute_plan(claim_plan, args, nulls, false, 0);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_INSERT, CLAIM_QUERY);
	return SPI_processed == 1;
}

/*
 * The stored event holding a key, as a headlessly.events composite datum in
 * SPI memory.  Must run inside SPI, after the claim failed.
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
	if (SPI_processed != 1)
		elog(ERROR, "event with idempotency key \"%s\" is claimed but not stored",
			 text_to_cstring(key));

	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}
