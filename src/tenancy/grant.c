/*-------------------------------------------------------------------------
 *
 * grant.c
 *	  grant_tenant() and revoke_tenant(), and turning row security on.
 *
 * The grants live in headlessly.tenant_grants, which only its owner may
 * change; these functions check who is asking (the log's owner and
 * superusers for any tenant, a tenant's admins for read and write grants
 * of their tenant) and then write it as the log's owner, as the log's own
 * derived tables are written (log_relation.c).
 *
 * Row security is turned on (ENABLE and FORCE) for every table of the
 * extension that has a tenant_isolation policy when the first tenant role
 * is made (by the grants table's trigger), not before: until then COPY FROM keeps working for every role
 * with INSERT, and appends keep their direct path (append.c).  It is never
 * turned off again by the extension: revoking fails closed.
 *
 *-------------------------------------------------------------------------
 */
#include "tenancy/tenancy.h"
#include "log/log.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_grant_tenant);
PG_FUNCTION_INFO_V1(headlessly_revoke_tenant);
PG_FUNCTION_INFO_V1(headlessly_tenant_isolation_enforce);
PG_FUNCTION_INFO_V1(headlessly_tenant_grants_changed);

#define UPSERT_QUERY \
	"INSERT INTO " HL_SCHEMA ".tenant_grants AS g (role, tenant, rights, granted_by)" \
	" VALUES ($1, $2, $3, $4)" \
	" ON CONFLICT (role, tenant) DO UPDATE" \
	" SET rights = EXCLUDED.rights, granted_by = EXCLUDED.granted_by," \
	"     granted_at = pg_catalog.now()"

#define CURRENT_QUERY \
	"SELECT rights FROM " HL_SCHEMA ".tenant_grants" \
	" WHERE role OPERATOR(pg_catalog.=) $1 AND tenant OPERATOR(pg_catalog.=) $2" \
	" FOR UPDATE"

#define REVOKE_QUERY \
	"UPDATE " HL_SCHEMA ".tenant_grants" \
	" SET rights = 'none', granted_by = $3, granted_at = pg_catalog.now()" \
	" WHERE role OPERATOR(pg_catalog.=) $1 AND tenant OPERATOR(pg_catalog.=) $2" \
	"   AND rights OPERATOR(pg_catalog.<>) 'none'"

#define UNPROTECTED_QUERY \
	"SELECT c.oid, c.relname FROM pg_catalog.pg_class c" \
	" WHERE c.relnamespace OPERATOR(pg_catalog.=) $1" \
	"   AND NOT (c.relrowsecurity AND c.relforcerowsecurity)" \
	"   AND EXISTS (SELECT FROM pg_catalog.pg_policy p" \
	"                WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid" \
	"                  AND p.polname OPERATOR(pg_catalog.=) 'tenant_isolation')" \
	" ORDER BY c.relname"

#define ANY_GRANT_QUERY \
	"SELECT FROM " HL_SCHEMA ".tenant_grants LIMIT 1"

static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr current_plan = NULL;
static SPIPlanPtr revoke_plan = NULL;
static SPIPlanPtr unprotected_plan = NULL;

bool
hl_tenancy_is_manager(Oid roleid)
{
	return superuser_arg(roleid) || hl_relation_ownercheck(hl_log_relid(), roleid);
}

static Oid
role_arg(FunctionCallInfo fcinfo)
{
	Oid			role;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be NULL")));
	role = PG_GETARG_OID(0);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	return role;
}

static text *
tenant_arg(FunctionCallInfo fcinfo)
{
	text	   *tenant;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant must not be NULL")));
	tenant = PG_GETARG_TEXT_PP(1);
	hl_check_name("tenant", VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant));
	return tenant;
}

static char *
name_of(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name ? name : psprintf("%u", role);
}

/*
 * May the current role change grants of this tenant?  Managers may change
 * any; a tenant's admins may change read and write grants of roles that
 * are already tenant roles or that they administer in PostgreSQL (binding
 * a role makes it a tenant role: it then sees no other tenant).
 * "changing" is the higher of the old and the new rights.
 */
static void
check_may_change(Oid role, text *tenant, HlTenantRight changing)
{
	Oid			me = GetUserId();
	bool		me_tenant_role;
	bool		role_tenant_role;
	HlTenantRight mine;
	const char *t = VARDATA_ANY(tenant);
	int			len = VARSIZE_ANY_EXHDR(tenant);

	if (hl_tenancy_is_manager(me))
		return;

	mine = hl_tenant_rights_of(me, t, len, &me_tenant_role);
	if (mine < HL_TENANT_ADMIN)
		ereport(ERROR,
				(errcode(me_tenant_role ? ERRCODE_HL_TENANT : ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not grant or revoke rights on tenant \"%s\"",
						name_of(me), text_to_cstring(tenant)),
				 errdetail("The owner of headlessly.events, superusers and the tenant's admins may."),
				 errhint("Have one of them run it.")));
	if (changing >= HL_TENANT_ADMIN)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not grant or revoke admin rights on tenant \"%s\"",
						name_of(me), text_to_cstring(tenant)),
				 errdetail("A tenant's admins grant and revoke read and write rights only."),
				 errhint("Have the owner of headlessly.events or a superuser do it.")));
	(void) hl_tenant_rights_of(role, t, len, &role_tenant_role);
	if (!role_tenant_role && !is_admin_of_role(me, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not bind role \"%s\" to a tenant",
						name_of(me), name_of(role)),
				 errdetail("Role \"%s\" is not a tenant role yet; binding it would restrict it to the tenant.",
						   name_of(role)),
				 errhint("Have the owner of headlessly.events bind it first, or use a role you administer.")));
}

/*
 * Roles that row security does not restrict cannot be tenant roles:
 * their reads would not be filtered.
 */
static void
check_can_be_tenant_role(Oid role)
{
	HeapTuple	tup;
	bool		bypassrls;

	if (superuser_arg(role))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("superuser \"%s\" cannot be bound to a tenant", name_of(role)),
				 errdetail("Row security does not apply to superusers.")));
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for role %u", role);
	bypassrls = ((Form_pg_authid) GETSTRUCT(tup))->rolbypassrls;
	ReleaseSysCache(tup);
	if (bypassrls)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" has BYPASSRLS and cannot be bound to a tenant", name_of(role)),
				 errdetail("Row security does not apply to roles with BYPASSRLS."),
				 errhint("ALTER ROLE %s NOBYPASSRLS first.", quote_identifier(name_of(role)))));
	if (hl_relation_ownercheck(hl_log_relid(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" owns headlessly.events and cannot be bound to a tenant",
						name_of(role)),
				 errdetail("The log's owner maintains every tenant's derived state."),
				 errhint("Bind a role that is not the owner and does not have its privileges.")));
}

/*
 * Lock every one of relids in AccessExclusiveLock, or wait holding none of
 * them.  ALTER TABLE takes them one at a time, and waiting for the second
 * while holding the first deadlocked with a delivery round, which reads the
 * same tables in another order.  A lock this transaction already held stays
 * held: UnlockRelationOid only undoes the acquisition made here.  Under
 * steady appends some table may be taken again each time it was waited
 * for; after LOCK_ALL_TRIES rounds the locks are taken in order, waiting,
 * and the deadlock detector settles a rare cycle.
 */
#define LOCK_ALL_TRIES 100

static void
lock_all_or_wait(List *relids)
{
	for (int tries = 0;; tries++)
	{
		ListCell   *lc;
		List	   *held = NIL;
		Oid			busy = InvalidOid;

		foreach(lc, relids)
		{
			if (!ConditionalLockRelationOid(lfirst_oid(lc), AccessExclusiveLock))
			{
				busy = lfirst_oid(lc);
				break;
			}
			held = lappend_oid(held, lfirst_oid(lc));
		}
		if (!OidIsValid(busy))
		{
			list_free(held);
			return;
		}
		if (tries >= LOCK_ALL_TRIES)
		{
			/* keep what is held, wait for the rest in order */
			for (ListCell *rest = lc; rest != NULL; rest = lnext(relids, rest))
				LockRelationOid(lfirst_oid(rest), AccessExclusiveLock);
			list_free(held);
			return;
		}
		foreach(lc, held)
			UnlockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
		list_free(held);
		/* wait until it is free, then try them all again */
		LockRelationOid(busy, AccessExclusiveLock);
		UnlockRelationOid(busy, AccessExclusiveLock);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * ENABLE and FORCE row security on every table with a tenant_isolation
 * policy that lacks it.  Runs as the log's owner, in SPI.
 */
static void
enforce_isolation(void)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	int			rc;
	uint64		n;
	SPITupleTable *tuptable;
	List	   *relids = NIL;

	args[0] = ObjectIdGetDatum(get_namespace_oid(HL_SCHEMA, false));
	hl_prepare_cached(&unprotected_plan, UNPROTECTED_QUERY, 1, argtypes);
	rc = SPI_execute_plan(unprotected_plan, args, NULL, true, 0);
	hl_spi_check(rc, SPI_OK_SELECT, UNPROTECTED_QUERY);
	n = SPI_processed;
	tuptable = SPI_tuptable;
	if (n == 0)
		return;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		relids = lappend_oid(relids,
							 DatumGetObjectId(SPI_getbinval(tuptable->vals[i],
															tuptable->tupdesc, 1, &isnull)));
	}
	lock_all_or_wait(relids);
	list_free(relids);
	for (uint64 i = 0; i < n; i++)
	{
		char	   *relname = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 2);
		char	   *sql;

		sql = psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
					   quote_qualified_identifier(HL_SCHEMA, relname));
		rc = SPI_execute(sql, false, 0);
		hl_spi_check(rc, SPI_OK_UTILITY, sql);
	}
}

/*
 * grant_tenant(role regrole, tenant text, rights text DEFAULT 'write')
 */
Datum
headlessly_grant_tenant(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);
	text	   *tenant = tenant_arg(fcinfo);
	text	   *rights_text;
	HlTenantRight rights = HL_TENANT_NONE;
	HlTenantRight held;
	bool		tenant_role;
	Oid			argtypes[4] = {REGROLEOID, TEXTOID, TEXTOID, NAMEOID};
	Datum		args[4];
	HlSavedUser saved;
	int			rc;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rights must not be NULL"),
				 errhint("Use 'read', 'write' or 'admin'.")));
	rights_text = PG_GETARG_TEXT_PP(2);
	for (HlTenantRight r = HL_TENANT_READ; r <= HL_TENANT_ADMIN; r++)
		if (strcmp(text_to_cstring(rights_text), hl_tenant_right_name(r)) == 0)
			rights = r;
	if (rights == HL_TENANT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown tenant rights \"%s\"", text_to_cstring(rights_text)),
				 errhint("Use 'read', 'write' or 'admin'; revoke with headlessly.revoke_tenant().")));

	check_can_be_tenant_role(role);
	held = hl_tenant_rights_of(role, VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant),
							   &tenant_role);
	check_may_change(role, tenant, Max(rights, held));

	args[0] = ObjectIdGetDatum(role);
	args[1] = PointerGetDatum(tenant);
	args[2] = PointerGetDatum(rights_text);
	args[3] = DirectFunctionCall1(namein, CStringGetDatum(name_of(GetUserId())));

	hl_become_log_owner(&saved);
	hl_spi_connect();
	hl_prepare_cached(&upsert_plan, UPSERT_QUERY, 4, argtypes);
	rc = SPI_execute_plan(upsert_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT, UPSERT_QUERY);
	SPI_finish();
	hl_restore_user(&saved);
	PG_RETURN_VOID();
}

/*
 * revoke_tenant(role regrole, tenant text): false if the role held no
 * rights on the tenant.  The row stays, with rights 'none': the role
 * stays a tenant role, and fails closed.
 */
Datum
headlessly_revoke_tenant(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);
	text	   *tenant = tenant_arg(fcinfo);
	Oid			argtypes[3] = {REGROLEOID, TEXTOID, NAMEOID};
	Datum		args[3];
	HlSavedUser saved;
	HlTenantRight held = HL_TENANT_NONE;
	bool		revoked;
	int			rc;

	args[0] = ObjectIdGetDatum(role);
	args[1] = PointerGetDatum(tenant);
	args[2] = DirectFunctionCall1(namein, CStringGetDatum(name_of(GetUserId())));

	/* the rights being taken away decide who may, read under a row lock */
	hl_become_log_owner(&saved);
	hl_spi_connect();
	hl_prepare_cached(&current_plan, CURRENT_QUERY, 2, argtypes);
	rc = SPI_execute_plan(current_plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, CURRENT_QUERY);
	if (SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		for (HlTenantRight r = HL_TENANT_READ; r <= HL_TENANT_ADMIN; r++)
			if (strcmp(value, hl_tenant_right_name(r)) == 0)
				held = r;
	}
	hl_restore_user(&saved);

	check_may_change(role, tenant, held);

	hl_become_log_owner(&saved);
	hl_prepare_cached(&revoke_plan, REVOKE_QUERY, 3, argtypes);
	rc = SPI_execute_plan(revoke_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, REVOKE_QUERY);
	revoked = SPI_processed > 0;
	SPI_finish();
	hl_restore_user(&saved);
	PG_RETURN_BOOL(revoked);
}

/*
 * Turn row security on if any tenant role exists, as the log's owner.
 * Called whenever the grants change, however they change: a restore that
 * brings grants back also brings back their protection (pg_dump keeps no
 * row security settings of an extension's tables).
 */
static void
enforce_if_bound(void)
{
	HlSavedUser saved;
	int			rc;

	hl_become_log_owner(&saved);
	hl_spi_connect();
	/* not read-only: a fresh snapshot that sees the statement's own rows */
	rc = SPI_execute(ANY_GRANT_QUERY, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, ANY_GRANT_QUERY);
	if (SPI_processed > 0)
		enforce_isolation();
	SPI_finish();
	hl_restore_user(&saved);
}

/*
 * tenant_isolation_enforce(): the same, for upgrade scripts that add a
 * table with a tenant_isolation policy, and after a restore made with
 * --disable-triggers.
 */
Datum
headlessly_tenant_isolation_enforce(PG_FUNCTION_ARGS)
{
	if (!hl_tenancy_is_manager(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the owner of headlessly.events or a superuser may turn on tenant isolation")));
	enforce_if_bound();
	PG_RETURN_VOID();
}

/*
 * Statement trigger of headlessly.tenant_grants: every change, also one
 * made without grant_tenant() (a restore, the owner's own DML), reaches
 * every backend's cache and turns row security on.
 */
Datum
headlessly_tenant_grants_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = hl_trigger_data(fcinfo, "headlessly.tenant_grants_changed()", 0);

	CacheInvalidateRelcache(trigdata->tg_relation);
	enforce_if_bound();
	return PointerGetDatum(NULL);
}
