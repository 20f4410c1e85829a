/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  The current role's tenant grants, cached per backend, and the checks
 *	  made with them: the row security predicates and hl_tenant_check().
 *
 * Row security calls the predicates once per row, so the grants of each
 * role met are kept in a small hash in CacheMemoryContext.  Any change of
 * headlessly.tenant_grants sends a relcache invalidation of that table
 * (grant.c, and the table's statement trigger for direct changes), which
 * marks the whole cache stale; it is rebuilt at the next lookup, never
 * inside the callback, so no caller is left holding freed memory.  The
 * invalidation is transactional: a grant counts for its own transaction
 * from its next command, for others once it commits (from their next
 * statement, also inside an open transaction: see accept_grant_changes()),
 * and a rolled-back one is forgotten.
 *
 * The grants are read with a fresh MVCC snapshot, as catalogs are, and
 * without privilege checks: the table is the owner's, and the answer is
 * about the current role only.
 *
 *-------------------------------------------------------------------------
 */
#include "tenancy/tenancy.h"
#include "log/log.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(headlessly_tenant_readable);
PG_FUNCTION_INFO_V1(headlessly_tenant_writable);

#define GRANTS_TABLE "tenant_grants"

typedef struct TenantGrant
{
	char	   *tenant;			/* not terminated: len bytes */
	int			len;
	HlTenantRight rights;
} TenantGrant;

typedef struct RoleGrants
{
	Oid			role;			/* hash key */
	bool		tenant_role;	/* has at least one row, revoked ones included */
	int			ngrants;		/* grants with rights above none */
	TenantGrant *grants;
} RoleGrants;

static MemoryContext cache_cxt = NULL;
static HTAB *role_cache = NULL;
/* bumped by every invalidation; the cache is valid for one value */
static uint64 inval_count = 0;
static uint64 cache_built_at = 0;
static Oid	grants_relid = InvalidOid;
/* the statement that last took in other sessions' committed changes */
static TimestampTz accepted_statement = 0;
static LocalTransactionId accepted_lxid = InvalidLocalTransactionId;
static CommandId accepted_command = InvalidCommandId;

static void
grants_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == grants_relid)
	{
		inval_count++;
		grants_relid = InvalidOid;
	}
}

void
hl_tenancy_init(void)
{
	hl_register_relcache_callback(grants_relcache_callback, (Datum) 0);
}

/* headlessly.tenant_grants, or InvalidOid while the schema is at 0.1 */
static Oid
grants_relation(void)
{
	Oid			nsp;

	if (OidIsValid(grants_relid))
		return grants_relid;
	nsp = get_namespace_oid(HL_SCHEMA, true);
	if (OidIsValid(nsp))
		grants_relid = get_relname_relid(GRANTS_TABLE, nsp);
	return grants_relid;
}

const char *
hl_tenant_right_name(HlTenantRight right)
{
	switch (right)
	{
		case HL_TENANT_NONE:
			return "none";
		case HL_TENANT_READ:
			return "read";
		case HL_TENANT_WRITE:
			return "write";
		case HL_TENANT_ADMIN:
			return "admin";
	}
	elog(ERROR, "unknown tenant right %d", (int) right);
	return NULL;				/* keep compiler quiet */
}

static HlTenantRight
parse_right(const char *value, int len)
{
	for (HlTenantRight r = HL_TENANT_NONE; r <= HL_TENANT_ADMIN; r++)
	{
		const char *name = hl_tenant_right_name(r);

		if ((int) strlen(name) == len && memcmp(name, value, len) == 0)
			return r;
	}
	/* the table's CHECK constraint keeps others out; a tampered row grants nothing */
	return HL_TENANT_NONE;
}

/*
 * Read one role's rows into *entry (memory in CurrentMemoryContext).
 * Returns false if the grants table does not exist.
 */
static bool
read_role_grants(Oid role, RoleGrants *entry)
{
	Oid			relid = grants_relation();
	Relation	rel;
	TupleDesc	desc;
	int			role_attno,
				tenant_attno,
				rights_attno;
	ScanKeyData key;
	SysScanDesc scan;
	Snapshot	snapshot;
	HeapTuple	tup;
	int			allocated = 4;

	if (!OidIsValid(relid))
		return false;

	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	role_attno = SPI_fnumber(desc, "role");
	tenant_attno = SPI_fnumber(desc, "tenant");
	rights_attno = SPI_fnumber(desc, "rights");
	if (role_attno <= 0 || tenant_attno <= 0 || rights_attno <= 0)
		elog(ERROR, "table %s.%s lacks a column role, tenant or rights",
			 HL_SCHEMA, GRANTS_TABLE);

	entry->tenant_role = false;
	entry->ngrants = 0;
	entry->grants = palloc(allocated * sizeof(TenantGrant));

	ScanKeyInit(&key, role_attno, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(role));
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		text	   *tenant;
		text	   *rights;
		HlTenantRight r;

		entry->tenant_role = true;
		tenant = DatumGetTextPP(heap_getattr(tup, tenant_attno, desc, &isnull));
		if (isnull)
			continue;
		rights = DatumGetTextPP(heap_getattr(tup, rights_attno, desc, &isnull));
		if (isnull)
			continue;
		r = parse_right(VARDATA_ANY(rights), VARSIZE_ANY_EXHDR(rights));
		if (r == HL_TENANT_NONE)
			continue;
		if (entry->ngrants == allocated)
		{
			allocated *= 2;
			entry->grants = repalloc(entry->grants, allocated * sizeof(TenantGrant));
		}
		entry->grants[entry->ngrants].len = VARSIZE_ANY_EXHDR(tenant);
		entry->grants[entry->ngrants].tenant = pnstrdup(VARDATA_ANY(tenant),
														VARSIZE_ANY_EXHDR(tenant));
		entry->grants[entry->ngrants].rights = r;
		entry->ngrants++;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * Take in the invalidations other sessions' commits have sent, once per
 * statement, and after each command that wrote inside a function or DO
 * block (they share their top-level statement's start).  A backend
 * otherwise takes them in at the start of a transaction and when it first
 * locks a relation in it; a statement of an open transaction that locks
 * nothing new (a prepared plan run again) would go on with grants revoked
 * meanwhile.
 */
static void
accept_grant_changes(void)
{
	TimestampTz statement;
	LocalTransactionId lxid;
	CommandId	command;

	if (!IsTransactionState())
		return;
	statement = GetCurrentStatementStartTimestamp();
	lxid = hl_local_xid();
	command = GetCurrentCommandId(false);
	if (statement == accepted_statement && lxid == accepted_lxid &&
		command == accepted_command)
		return;
	AcceptInvalidationMessages();
	accepted_statement = statement;
	accepted_lxid = lxid;
	accepted_command = command;
}

/* The cached grants of a role; NULL while the grants table does not exist. */
static RoleGrants *
role_grants(Oid role)
{
	RoleGrants	loaded;
	RoleGrants *entry;
	bool		found;
	uint64		before;

	accept_grant_changes();
	if (role_cache != NULL && cache_built_at == inval_count)
	{
		entry = hash_search(role_cache, &role, HASH_FIND, NULL);
		if (entry != NULL)
			return entry;
	}

	/* read until no invalidation arrived meanwhile (opening the table accepts them) */
	do
	{
		before = inval_count;
		if (!read_role_grants(role, &loaded))
			return NULL;
	} while (before != inval_count);

	if (role_cache == NULL || cache_built_at != inval_count)
	{
		HASHCTL		ctl;

		if (cache_cxt == NULL)
			cache_cxt = AllocSetContextCreate(CacheMemoryContext,
											  "headlessly tenant grants",
											  ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(cache_cxt);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RoleGrants);
		ctl.hcxt = cache_cxt;
		role_cache = hash_create("headlessly tenant grants", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		cache_built_at = inval_count;
	}

	entry = hash_search(role_cache, &role, HASH_ENTER, &found);
	entry->tenant_role = loaded.tenant_role;
	entry->ngrants = loaded.ngrants;
	entry->grants = MemoryContextAlloc(cache_cxt, Max(loaded.ngrants, 1) * sizeof(TenantGrant));
	for (int i = 0; i < loaded.ngrants; i++)
	{
		entry->grants[i].len = loaded.grants[i].len;
		entry->grants[i].rights = loaded.grants[i].rights;
		entry->grants[i].tenant = MemoryContextAlloc(cache_cxt, Max(loaded.grants[i].len, 1));
		memcpy(entry->grants[i].tenant, loaded.grants[i].tenant, loaded.grants[i].len);
	}
	return entry;
}

static HlTenantRight
rights_on(const RoleGrants *entry, const char *tenant, int len)
{
	for (int i = 0; i < entry->ngrants; i++)
	{
		const TenantGrant *g = &entry->grants[i];

		if (g->len == len && memcmp(g->tenant, tenant, len) == 0)
			return g->rights;
	}
	return HL_TENANT_NONE;
}

/*
 * The rights a role holds on a tenant; *tenant_role says whether the role
 * is a tenant role at all (if not, the answer is HL_TENANT_NONE).
 */
HlTenantRight
hl_tenant_rights_of(Oid role, const char *tenant, int len, bool *tenant_role)
{
	RoleGrants *entry = role_grants(role);

	*tenant_role = entry != NULL && entry->tenant_role;
	if (!*tenant_role)
		return HL_TENANT_NONE;
	return rights_on(entry, tenant, len);
}

bool
hl_tenant_role_permits(Oid role, const char *tenant, int len, HlTenantRight needed)
{
	RoleGrants *entry = role_grants(role);

	if (entry == NULL || !entry->tenant_role)
		return true;
	return rights_on(entry, tenant, len) >= needed;
}

bool
hl_tenant_permits(const char *tenant, int len, HlTenantRight needed)
{
	return hl_tenant_role_permits(GetUserId(), tenant, len, needed);
}

static char *
role_name(void)
{
	char	   *name = GetUserNameFromId(GetUserId(), true);

	return name ? name : psprintf("%u", GetUserId());
}

void
hl_tenant_check(const char *tenant, int len, HlTenantRight needed)
{
	RoleGrants *entry = role_grants(GetUserId());
	HlTenantRight held;

	if (entry == NULL || !entry->tenant_role)
		return;
	held = rights_on(entry, tenant, len);
	if (held >= needed)
		return;

	if (held == HL_TENANT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_HL_TENANT),
				 errmsg("tenant \"%s\" is not permitted for role \"%s\"",
						pnstrdup(tenant, len), role_name()),
				 errdetail("The role is bound to tenants by headlessly.grant_tenant(), and not to this one."),
				 errhint("Use one of the role's tenants, or have an administrator of the tenant grant it.")));
	ereport(ERROR,
			(errcode(ERRCODE_HL_TENANT),
			 errmsg("role \"%s\" has only %s rights on tenant \"%s\"",
					role_name(), hl_tenant_right_name(held), pnstrdup(tenant, len)),
			 errdetail("This needs %s rights on the tenant.", hl_tenant_right_name(needed)),
			 errhint("Have an administrator of the tenant grant them with headlessly.grant_tenant().")));
}

char *
hl_tenant_role_default(void)
{
	RoleGrants *entry = role_grants(GetUserId());

	if (entry == NULL || !entry->tenant_role)
		return NULL;
	if (entry->ngrants == 1)
		return pnstrdup(entry->grants[0].tenant, entry->grants[0].len);
	if (entry->ngrants == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HL_TENANT),
				 errmsg("role \"%s\" may use no tenant", role_name()),
				 errdetail("Every tenant the role was bound to has been revoked.")));
	ereport(ERROR,
			(errcode(ERRCODE_HL_TENANT),
			 errmsg("role \"%s\" is bound to %d tenants and names none",
					role_name(), entry->ngrants),
			 errhint("Pass tenant => or set headlessly.tenant to one of them.")));
	return NULL;				/* keep compiler quiet */
}

bool
hl_tenancy_can_check_now(void)
{
	return IsNormalProcessingMode() && IsTransactionState() &&
		!IsParallelWorker() && !IsAbortedTransactionBlockState();
}

/*
 * tenant_readable(tenant text) / tenant_writable(tenant text): the row
 * security predicates.  STRICT: a NULL tenant is no row of any tenant.
 */
Datum
headlessly_tenant_readable(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(hl_tenant_permits(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant),
									 HL_TENANT_READ));
}

Datum
headlessly_tenant_writable(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(hl_tenant_permits(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant),
									 HL_TENANT_WRITE));
}
