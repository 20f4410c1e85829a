/*-------------------------------------------------------------------------
 *
 * headlessly.c
 *	  Module entry point and settings.
 *
 * Nothing here requires shared_preload_libraries: the library is loaded by
 * the first call of any of its functions, or by the DDL event trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "headlessly.h"

#include "fmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

char	   *hl_tenant_setting = NULL;
char	   *hl_actor_setting = NULL;
int			hl_max_hook_depth = 8;
int			hl_max_event_bytes = 1024 * 1024;

void		_PG_init(void);

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
_PG_init(void)
{
	DefineCustomStringVariable("headlessly.tenant",
							   "Tenant of appends and reads that name none.",
							   "When unset, the tenant is \"default\".",
							   &hl_tenant_setting,
							   NULL,
							   PGC_USERSET,
							   0,
							   check_tenant_setting, NULL, NULL);

	DefineCustomStringVariable("headlessly.actor",
							   "Actor of events appended by table capture.",
							   "When unset, the current role is the actor.",
							   &hl_actor_setting,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.max_hook_depth",
							"Deepest nesting of appends made by hooks.",
							NULL,
							&hl_max_hook_depth,
							8, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.max_event_bytes",
							"Largest accepted data + metadata + raw_payload of one event.",
							NULL,
							&hl_max_event_bytes,
							1024 * 1024, 1, MaxAllocSize / 2,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.snapshot_interval",
							"Versions between two snapshots of an entity's state.",
							"as_of and entities_as_of replay at most this many events "
							"from the nearest snapshot; 0 writes no snapshots.",
							&hl_snapshot_interval,
							100, 0, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("headlessly");
#else
	EmitWarningsOnPlaceholders("headlessly");
#endif

	hl_guard_install_hooks();
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
