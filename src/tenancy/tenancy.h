/*-------------------------------------------------------------------------
 *
 * tenancy.h
 *	  Tenant isolation: which tenants the current role may read and write.
 *
 * A role with at least one row in headlessly.tenant_grants is a tenant
 * role (also once every one of its grants is revoked: then it may use no
 * tenant at all).  Any other role - owners, migration roles - is not
 * restricted by this capability.  The rights are checked against the role
 * the code runs as (GetUserId()), never against headlessly.tenant alone:
 * the setting only chooses among the tenants the role holds.
 *
 * Row security on the extension's tables calls tenant_readable() and
 * tenant_writable() (tenancy.c); the C paths that reach rows without row
 * security (or as the log's owner) call hl_tenant_check().
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_TENANCY_H
#define HL_TENANCY_H

#include "common/common.h"

/* what a grant allows, in increasing order (each includes the ones before) */
typedef enum HlTenantRight
{
	HL_TENANT_NONE = 0,			/* revoked: the role stays a tenant role */
	HL_TENANT_READ,
	HL_TENANT_WRITE,
	HL_TENANT_ADMIN
} HlTenantRight;

extern void hl_tenancy_init(void);

/* May the current role use the tenant with these rights?  True for non-tenant roles. */
extern bool hl_tenant_permits(const char *tenant, int len, HlTenantRight needed);

/* The same for a given role (a subscription's owner, say). */
extern bool hl_tenant_role_permits(Oid role, const char *tenant, int len,
								   HlTenantRight needed);

/* The rights a given role holds; *tenant_role: is it a tenant role at all. */
extern HlTenantRight hl_tenant_rights_of(Oid role, const char *tenant, int len,
										 bool *tenant_role);

/* The same, as an error (ZE008) when not. */
extern void hl_tenant_check(const char *tenant, int len, HlTenantRight needed);

/*
 * The tenant a tenant role uses when it names none: its one tenant; ZE008
 * when it holds none or several.  NULL for other roles.
 */
extern char *hl_tenant_role_default(void);

/*
 * Can a check be made now, from a GUC check hook?  Only inside a healthy
 * transaction of a normal backend, outside library loading.
 */
extern bool hl_tenancy_can_check_now(void);

extern const char *hl_tenant_right_name(HlTenantRight right);

/* the log's owner and superusers manage every tenant (grant.c) */
extern bool hl_tenancy_is_manager(Oid roleid);

#endif							/* HL_TENANCY_H */
