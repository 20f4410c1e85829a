/*-------------------------------------------------------------------------
 *
 * spi_util.c
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
#include "headlessly.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

SPIPlanPtr
hl_prepare_cached(SPIPlanPtr *slot, const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (*slot != NULL)
		return *slot;

	plan = SPI_prepare(query, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for \"%s\"", query);
	*slot = plan;
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
 * The log's derived tables (stream heads, idempotency claims, the hook
 * registry and its failures) are the extension's business, not the
 * appending role's: their statements run as the owner of headlessly.events,
 * as PostgreSQL's own RI triggers run as the table owner.  No user code runs
 * meanwhile, and the restricted-operation flag keeps it that way.  An error
 * needs no cleanup: transaction abort restores the user.
 */
void
hl_become_log_owner(HlSavedUser *saved)
{
	Oid			relid = get_relname_relid("events", get_namespace_oid(HL_SCHEMA, false));
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "table %s.events is missing", HL_SCHEMA);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

void
hl_restore_user(const HlSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}
