/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The log's settings, and the tenant an append or read uses.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

char	   *hl_tenant_setting = NULL;
int			hl_max_event_bytes = 1024 * 1024;

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
	return true;
}

void
hl_log_init(void)
{
	DefineCustomStringVariable("headlessly.tenant",
							   "Tenant of appends and reads that name none.",
							   "When unset, the tenant is \"default\".",
							   &hl_tenant_setting,
							   NULL,
							   PGC_USERSET,
							   0,
							   check_tenant_setting, NULL, NULL);

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
 * The tenant an append or read uses when the caller names none.
 */
const char *
hl_current_tenant(void)
{
	if (hl_tenant_setting != NULL && hl_tenant_setting[0] != '\0')
		return hl_tenant_setting;
	return "default";
}

/* The tenant argument at argno, else the session's tenant. */
text *
hl_tenant_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() > argno && !PG_ARGISNULL(argno))
		return PG_GETARG_TEXT_PP(argno);
	return cstring_to_text(hl_current_tenant());
}
