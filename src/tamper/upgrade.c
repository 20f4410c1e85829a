/*-------------------------------------------------------------------------
 *
 * upgrade.c
 *	  The hashes of events appended before tamper evidence existed, for the
 *	  update from 0.1 (which creates, uses and drops the SQL function).
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

/* backend only: test/tamper/run.sh compiles src/tamper/ for a frontend too */
#ifndef FRONTEND

#include "log/log.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(headlessly_tamper_upgrade_hashes);

/* each stream in version order, so that every hash chains on the previous one */
#define UPGRADE_QUERY \
	"SELECT seq, id, tenant, type, target, version, actor, source, source_type," \
	"       external_event_id, occurred_at, recorded_at, data, before, metadata, raw_payload" \
	"  FROM " HL_SCHEMA ".events" \
	" ORDER BY tenant, target, version, seq"

/* tamper_upgrade_hashes() RETURNS TABLE (seq bigint, hash bytea) */
Datum
headlessly_tamper_upgrade_hashes(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	Portal		portal;
	HlCanonicalMap map;
	bool		have_map = false;
	StringInfoData buf;
	HlHasher   *hasher;
	HlHash		prev = hl_zero_hash;
	text	   *prev_tenant = NULL;
	text	   *prev_target = NULL;
	MemoryContext keep_cxt;
	MemoryContext row_cxt;

	hl_result_set_init(fcinfo, "tamper_upgrade_hashes", &rs);
	keep_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly upgrade stream",
									 ALLOCSET_SMALL_SIZES);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly upgrade row",
									ALLOCSET_DEFAULT_SIZES);
	hasher = hl_hasher_create();
	initStringInfo(&buf);

	hl_spi_connect();
	portal = hl_spi_open_cursor(UPGRADE_QUERY, 0, NULL, NULL, NULL);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		if (!have_map)
		{
			MemoryContext old = MemoryContextSwitchTo(keep_cxt);

			hl_canonical_map_init(SPI_tuptable->tupdesc, &map);
			MemoryContextSwitchTo(old);
			have_map = true;
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			HlHash		hash;
			HlHash		chain = hl_zero_hash;
			Datum		out[2];
			bool		nulls[2] = {false, false};
			bool		has_target;

			resetStringInfo(&buf);
			hl_canonical_from_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &map, &buf);
			has_target = !map.isnull[HL_FIELD_TARGET];
			if (has_target && prev_target != NULL &&
				DatumGetInt64(map.values[HL_FIELD_VERSION]) != 1 &&
				hl_text_equal(prev_tenant, DatumGetTextPP(map.values[HL_FIELD_TENANT])) &&
				hl_text_equal(prev_target, DatumGetTextPP(map.values[HL_FIELD_TARGET])))
				chain = prev;
			hl_event_hash(hasher, &chain, buf.data, buf.len, &hash);

			out[0] = map.values[HL_FIELD_SEQ];
			out[1] = PointerGetDatum(hl_hash_to_bytea(&hash));
			tuplestore_putvalues(rs.store, rs.tupdesc, out, nulls);

			MemoryContextSwitchTo(keep_cxt);
			if (has_target)
			{
				if (prev_tenant)
					pfree(prev_tenant);
				if (prev_target)
					pfree(prev_target);
				prev_tenant = DatumGetTextPCopy(map.values[HL_FIELD_TENANT]);
				prev_target = DatumGetTextPCopy(map.values[HL_FIELD_TARGET]);
				prev = hash;
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	hl_hasher_free(hasher);
	MemoryContextDelete(row_cxt);
	MemoryContextDelete(keep_cxt);
	PG_RETURN_NULL();
}

#endif							/* !FRONTEND */
