/*-------------------------------------------------------------------------
 *
 * headlessly.c
 *	  Module entry point: each capability defines its settings and hooks.
 *
 * Nothing here requires shared_preload_libraries: the library is loaded by
 * the first call of any of its functions, or by the DDL event trigger.
 * Preloaded, it also starts the background worker (src/worker/).
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery.h"
#include "hooks/hooks.h"
#include "log/log.h"
#include "state/state.h"
#include "tenancy/tenancy.h"
#include "tamper/tamper.h"
#include "worker/worker.h"

#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	hl_log_init();
	hl_state_init();
	hl_hooks_init();
	hl_tenancy_init();
	hl_tamper_init();
	hl_delivery_init();
	hl_worker_init();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("headlessly");
#else
	EmitWarningsOnPlaceholders("headlessly");
#endif

	hl_guard_install_hooks();
}
