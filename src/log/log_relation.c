/*-------------------------------------------------------------------------
 *
 * log_relation.c
 *	  The log's relation: its OID and owner, and acting as that owner.
 *
 * The log's derived tables (stream heads, idempotency claims, the hook
 * registry and its failures) are the extension's business, not the
 * appending role's: their statements run as the owner of headlessly.events,
 * as PostgreSQL's own RI triggers run as the table owner.  No user code runs
 * meanwhile, and the restricted-operation flag keeps it that way.  An error
 * needs no cleanup: transaction abort restores the user.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/*
 * The log's OID and owner, looked up once per backend and forgotten when
 * the relation changes (ALTER ... OWNER, DROP/CREATE EXTENSION).
 */
static Oid	log_relid = InvalidOid;
static Oid	log_owner = InvalidOid;

static void
log_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == log_relid)
		log_relid = log_owner = InvalidOid;
}

Oid
hl_log_relid(void)
{
	static bool callback_registered = false;
	HeapTuple	tup;
	Oid			relid;

	if (OidIsValid(log_relid))
		return log_relid;
	if (!callback_registered)
	{
		hl_register_relcache_callback(log_relcache_callback, (Datum) 0);
		callback_registered = true;
	}

	relid = get_relname_relid("events", get_namespace_oid(HL_SCHEMA, false));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "table %s.events is missing", HL_SCHEMA);
	log_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	log_relid = relid;
	return log_relid;
}

void
hl_become_log_owner(HlSavedUser *saved)
{
	(void) hl_log_relid();
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(log_owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

void
hl_restore_user(const HlSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}
