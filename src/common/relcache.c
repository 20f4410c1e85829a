/*-------------------------------------------------------------------------
 *
 * relcache.c
 *	  One relcache invalidation callback for all of the extension's caches.
 *
 * A backend has room for only a few relcache callbacks (10 in PostgreSQL
 * 15), shared with the server's own caches and every other loaded library,
 * and running out of them is FATAL.  The extension's caches register here
 * instead: one server callback calls them all, in registration order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/inval.h"

#include "common/common.h"

#define HL_MAX_RELCACHE_CALLBACKS 16

typedef struct HlRelcacheCallback
{
	RelcacheCallbackFunction function;
	Datum		arg;
} HlRelcacheCallback;

static HlRelcacheCallback callbacks[HL_MAX_RELCACHE_CALLBACKS];
static int	n_callbacks = 0;

static void
relcache_dispatch(Datum arg, Oid relid)
{
	for (int i = 0; i < n_callbacks; i++)
		callbacks[i].function(callbacks[i].arg, relid);
}

/*
 * Callers register once per backend (each keeps its own flag), so the
 * table's size is the number of caches in the extension, not a runtime count.
 */
void
hl_register_relcache_callback(RelcacheCallbackFunction function, Datum arg)
{
	if (n_callbacks >= HL_MAX_RELCACHE_CALLBACKS)
		elog(ERROR, "out of headlessly_events relcache callback slots");
	if (n_callbacks == 0)
		CacheRegisterRelcacheCallback(relcache_dispatch, (Datum) 0);
	callbacks[n_callbacks].function = function;
	callbacks[n_callbacks].arg = arg;
	n_callbacks++;
}
