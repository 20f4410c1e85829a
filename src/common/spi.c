/*-------------------------------------------------------------------------
 *
 * spi.c
 *	  Prepared SPI plans kept for the life of the backend.
 *
 * Saved plans are plancache entries: they are re-planned by PostgreSQL when
 * a relation they use changes, and re-analysed from their text when it is
 * dropped and created again (DROP and CREATE EXTENSION in one session).
 * Every query names its schema and operators, so search_path cannot change
 * what a plan means.
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/inval.h"
#include "utils/syscache.h"

void
hl_spi_connect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
}

SPIPlanPtr
hl_prepare_cached(SPIPlanPtr *slot, const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;
	MemoryContext caller = CurrentMemoryContext;

	if (*slot != NULL)
		return *slot;

	plan = SPI_prepare(query, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for \"%s\"", query);
	*slot = plan;
	/* SPI_prepare() leaves us in SPI's procedure context: the first call must not differ from later ones */
	MemoryContextSwitchTo(caller);
	return plan;
}

void
hl_spi_check(int rc, int expected, const char *query)
{
	if (rc != expected)
		elog(ERROR, "SPI_execute_plan returned %s for \"%s\"",
			 SPI_result_code_string(rc), query);
}

/*
 * A read-only cursor over a query's rows, for a caller that fetches them in
 * batches (SPI_cursor_fetch) rather than all at once.
 */
Portal
hl_spi_open_cursor(const char *query, int nargs, Oid *types, Datum *args,
				   const char *nulls)
{
	SPIPlanPtr	plan = SPI_prepare(query, nargs, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", query,
			 SPI_result_code_string(SPI_result));
	return SPI_cursor_open(NULL, plan, args, nulls, true);
}
