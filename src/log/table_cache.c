/*-------------------------------------------------------------------------
 *
 * table_cache.c
 *	  Per-backend caches of rows of the extension's own tables.
 *
 * The hook registry and the subscriptions are read on the append path, so
 * each backend keeps what it read and reads again only after a change:
 * the tables' statement triggers send a relcache invalidation for them,
 * which reaches every backend at commit.  One relcache callback serves all
 * such caches (PostgreSQL has room for only a few), and the rows are read
 * the same way for each: as the log's owner, as committed now.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "catalog/namespace.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

static HlTableCache *watched = NULL;

static void
table_cache_relcache_callback(Datum arg, Oid relid)
{
	/*
	 * A cache of a table that was not there (an extension older than the
	 * table) is read again after any relcache invalidation: ALTER
	 * EXTENSION UPDATE, which creates the table, sends many, and a session
	 * older than the update must then find it.
	 */
	for (HlTableCache *cache = watched; cache != NULL; cache = cache->next)
		if (relid == InvalidOid || relid == cache->relid || !OidIsValid(cache->relid))
			cache->valid = false;
}

/*
 * Begin (re)loading a cache: watch its table, and mark the cache valid, so
 * that an invalidation arriving while the caller reads clears the flag
 * again and the next use reads afresh.  False if the table does not exist
 * (a database whose extension is older than the table).
 */
bool
hl_table_cache_begin_load(HlTableCache *cache)
{
	static bool callback_registered = false;
	Oid			nsp;

	if (!callback_registered)
	{
		hl_register_relcache_callback(table_cache_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!cache->watched)
	{
		cache->next = watched;
		watched = cache;
		cache->watched = true;
	}
	/* before the lookups, which may process invalidations */
	cache->valid = true;
	nsp = get_namespace_oid(HL_SCHEMA, true);
	cache->relid = OidIsValid(nsp) ? get_relname_relid(cache->relname, nsp) : InvalidOid;
	return OidIsValid(cache->relid);
}

/*
 * Run a cache's load query, prepared once into *plan, as the log's owner.
 * It reads what is committed now, not what the statement's snapshot shows:
 * a change committed after that snapshot was taken has already
 * invalidated the cache when we get here, and no further invalidation
 * would bring it in.  The caller is connected to SPI and reads
 * SPI_tuptable; on error, abort restores the user.
 */
void
hl_table_cache_read(SPIPlanPtr *plan, const char *query)
{
	HlSavedUser saved;
	int			rc;

	hl_prepare_cached(plan, query, 0, NULL);
	hl_become_log_owner(&saved);
	rc = SPI_execute_snapshot(*plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_SELECT, query);
}
