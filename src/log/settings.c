/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The log's settings, and the tenant an append or read uses.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"
#include "tenancy/tenancy.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

char	   *hl_tenant_setting = NULL;
int			hl_max_event_bytes = 1024 * 1024;

/* while the library defines its settings: values set before it loaded come back */
static bool defining_settings = false;

static bool
check_tenant_setting(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The tenant must not be an empty string.");
		GUC_check_errhint("RESET headlessly.tenant to use the tenant \"default\".");
		return false;
	}
	if (*newval != NULL && strlen(*newval) > HL_MAX_NAME_BYTES)
	{
		GUC_check_errdetail("The tenant is longer than %d bytes.", HL_MAX_NAME_BYTES);
		return false;
	}

	/*
	 * A tenant role may choose only among its tenants.  Checked here for SET,
	 * SET LOCAL, set_config() and function SET clauses, when the grants can
	 * be read; values from elsewhere (startup options, ALTER ROLE/DATABASE
	 * SET, a parallel worker's copy) meet the same check at their use.
	 */
	if (*newval != NULL && source == PGC_S_SESSION && !defining_settings &&
		hl_tenancy_can_check_now() &&
		!hl_tenant_permits(*newval, strlen(*newval), HL_TENANT_READ))
	{
		GUC_check_errcode(ERRCODE_HL_TENANT);
		GUC_check_errmsg("tenant \"%s\" is not permitted for role \"%s\"",
						 *newval, GetUserNameFromId(GetUserId(), false));
		GUC_check_errdetail("The role is bound to tenants by headlessly.grant_tenant(), and not to this one.");
		GUC_check_errhint("Set one of the role's tenants.");
		return false;
	}
	return true;
}

void
hl_log_init(void)
{
	defining_settings = true;
	DefineCustomStringVariable("headlessly.tenant",
							   "Tenant of appends and reads that name none.",
							   "When unset, the tenant is \"default\".",
							   &hl_tenant_setting,
							   NULL,
							   PGC_USERSET,
							   0,
							   check_tenant_setting, NULL, NULL);
	defining_settings = false;

	DefineCustomIntVariable("headlessly.max_event_bytes",
							"Largest accepted data + metadata + raw_payload of one event.",
							NULL,
							&hl_max_event_bytes,
							1024 * 1024, 1, MaxAllocSize / 2,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

/*
 * The tenant an append or read uses when the caller names none: the
 * setting, else a tenant role's one tenant, else "default".  Whether the
 * role may use it is checked where it is used (hl_tenant_check()).
 */
const char *
hl_current_tenant(void)
{
	const char *own;

	if (hl_tenant_setting != NULL && hl_tenant_setting[0] != '\0')
		return hl_tenant_setting;
	own = hl_tenant_role_default();
	if (own != NULL)
		return own;
	return "default";
}

/*
 * The tenant a reading function uses: its tenant argument at argno, else
 * the session's tenant; ZE008 unless the current role may read it.
 */
text *
hl_tenant_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *tenant;

	if (PG_NARGS() > argno && !PG_ARGISNULL(argno))
		tenant = PG_GETARG_TEXT_PP(argno);
	else
		tenant = cstring_to_text(hl_current_tenant());
	hl_tenant_check(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), HL_TENANT_READ);
	return tenant;
}
