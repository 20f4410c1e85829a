/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The per-backend cache of registered hooks.
 *
 * hook() and unhook() write headlessly.hook_registry.  A statement trigger
 * on the registry then sends a relcache invalidation for it, which reaches
 * every backend at commit; each backend keeps the registered hooks, with
 * their resolved handlers, in a cache that the invalidation empties.  An
 * append with no hooks registered therefore costs one flag test, and no
 * catalog query is made per append.  A change to a handler's pg_proc row
 * (dropped, replaced, altered, renamed, moved) or to its schema's
 * pg_namespace row (renamed) empties it too, as does any new or renamed
 * function or schema while a handler's name resolves to nothing: that is
 * what can change the function a handler's qualified name resolves to, and
 * every session must resolve it as a session loading its hooks now would.
 * Every load checks each handler again: a row that is malformed however it
 * came to be fails the appends its hook matches with a clear error.
 *
 * Handlers may change the registry, and an append they make then loads a
 * new set of hooks while the old one is still running.  So each load makes
 * a new HlHookSet, counted by reference: the cache holds the current one,
 * each dispatch holds the set it runs, and a set is freed when the last
 * holder lets go.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"

#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/*
 * The handler is a schema-qualified signature, bound to the owner of the
 * function it named when registered: a name that no longer resolves, or
 * that now belongs to another owner's function, reads as OID 0, a missing
 * handler.  At 0.1 the column is a regprocedure, bound to the function
 * itself; a dropped one reads as its OID, which names no function.
 */
#define LOAD_QUERY \
	"SELECT r.id, r.pattern, r.phase, COALESCE(p.oid, 0::pg_catalog.oid)" \
	"  FROM " HL_SCHEMA ".hook_registry r" \
	HL_HOOK_HANDLER_JOIN \
	" ORDER BY r.id"

#define LOAD_QUERY_0_1 \
	"SELECT id, pattern, phase, handler::pg_catalog.oid" \
	"  FROM " HL_SCHEMA ".hook_registry ORDER BY id"

static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr load_plan_0_1 = NULL;

static HlTableCache registry = HL_TABLE_CACHE("hook_registry");
static HlHookSet *current_set = NULL;
static bool loading = false;
static bool callback_registered = false;
static uint64 handler_names_changed = 0;

/*
 * A pg_proc or pg_namespace row changed (cacheid PROCOID or NAMESPACEOID).
 * Only marks the cache for a reload: a running dispatch holds its own set.
 */
static void
handler_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	handler_names_changed++;

	/* while loading, the handlers being resolved are not in current_set yet */
	if (!registry.valid || loading || hashvalue == 0 || current_set == NULL)
	{
		registry.valid = false;
		return;
	}
	/* a missing handler is a name that a new or renamed function or schema may take */
	for (int i = 0; i < current_set->nhooks; i++)
	{
		const HlHook *hook = &current_set->hooks[i];

		if (hook->handler_missing ||
			(cacheid == PROCOID ? hook->handler_hash : hook->namespace_hash) == hashvalue)
		{
			registry.valid = false;
			return;
		}
	}
}

static void
registry_row_context(void *arg)
{
	errcontext("loading hook " INT64_FORMAT " from %s.hook_registry", *(int64 *) arg, HL_SCHEMA);
}

/* One registry row into *hook, in the set's memory. */
static void
load_hook(HlHookSet *set, HlHook *hook, HeapTuple tup, TupleDesc desc)
{
	ErrorContextCallback errcallback;
	bool		isnull;
	char	   *pattern;
	char	   *phase;

	hook->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	errcallback.callback = registry_row_context;
	errcallback.arg = &hook->id;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/*
	 * The registry's row trigger keeps malformed patterns and phases out; one
	 * that got in anyway (a restore with triggers disabled) stops every
	 * append, since what it was meant to match is unknown.
	 */
	pattern = SPI_getvalue(tup, desc, 2);
	hl_parse_type_pattern(pattern, strlen(pattern), &hook->pattern);
	phase = SPI_getvalue(tup, desc, 3);
	if (strcmp(phase, "before") == 0)
		hook->phase = HL_HOOK_BEFORE;
	else if (strcmp(phase, "after") == 0)
		hook->phase = HL_HOOK_AFTER;
	else if (strcmp(phase, "after_commit") == 0)
		hook->phase = HL_HOOK_AFTER_COMMIT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid hook phase \"%s\"", phase),
				 errhint("Remove the hook with headlessly.unhook(" INT64_FORMAT ").", hook->id)));

	/* an unusable handler fails the appends it matches, not all */
	hook->handler = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
	hook->handler_hash = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(hook->handler));
	hook->handler_problem = hl_hook_handler_problem(hook->handler, &hook->handler_missing);
	if (!hook->handler_missing)
		hook->namespace_hash = GetSysCacheHashValue1(NAMESPACEOID,
													 ObjectIdGetDatum(get_func_namespace(hook->handler)));
	if (hook->handler_problem == NULL)
	{
		hook->fn_cxt = AllocSetContextCreate(set->cxt, "headlessly hook handler",
											 ALLOCSET_SMALL_SIZES);
		fmgr_info_cxt(hook->handler, &hook->flinfo, hook->fn_cxt);
	}

	error_context_stack = errcallback.previous;
}

/* Fill set from the registry, in registration order. */
static void
read_registry(HlHookSet *set)
{
	/* valid from here on: an invalidation while we read clears it again */
	if (!hl_table_cache_begin_load(&registry))
		elog(ERROR, "table %s.hook_registry is missing", HL_SCHEMA);

	hl_spi_connect();
	if (get_attnum(registry.relid, "handler_owner") != InvalidAttrNumber)
		hl_table_cache_read(&load_plan, LOAD_QUERY);
	else
		hl_table_cache_read(&load_plan_0_1, LOAD_QUERY_0_1);

	if (SPI_processed > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(set->cxt);

		set->hooks = palloc0(SPI_processed * sizeof(HlHook));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HlHook	   *hook = &set->hooks[set->nhooks];

			load_hook(set, hook, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
			set->any_phase[hook->phase] = true;
			set->nhooks++;
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

static void
register_callbacks(void)
{
	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, handler_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, handler_syscache_callback, (Datum) 0);
		callback_registered = true;
	}
}

static void
load_hooks(void)
{
	MemoryContext cxt;
	HlHookSet  *set;

	register_callbacks();

	cxt = AllocSetContextCreate(CacheMemoryContext, "headlessly hooks",
								ALLOCSET_SMALL_SIZES);
	set = MemoryContextAllocZero(cxt, sizeof(HlHookSet));
	set->cxt = cxt;
	set->refcount = 1;			/* the cache's own */

	loading = true;
	PG_TRY();
	{
		read_registry(set);
	}
	PG_CATCH();
	{
		/* abort cleans up SPI and the user; just read again next time */
		loading = false;
		registry.valid = false;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	loading = false;

	if (current_set != NULL)
		hl_hook_set_release(current_set);
	current_set = set;
}

/*
 * The registered hooks, loaded if the cache was emptied.  Valid until the
 * next call; to run handlers, hold a set with hl_hook_set_acquire().
 */
const HlHookSet *
hl_hook_cache(void)
{
	if (!registry.valid)
		load_hooks();
	return current_set;
}

/* The current set, held until hl_hook_set_release(). */
HlHookSet *
hl_hook_set_acquire(void)
{
	(void) hl_hook_cache();
	current_set->refcount++;
	return current_set;
}

void
hl_hook_set_release(HlHookSet *set)
{
	Assert(set->refcount > 0);
	if (--set->refcount == 0)
		MemoryContextDelete(set->cxt);
}

/*
 * How many changes to pg_proc and pg_namespace rows this backend has seen
 * since it first asked (sinval resets included): compare two answers to
 * learn whether a qualified name resolved in between may resolve otherwise
 * now.
 */
uint64
hl_hook_handler_names_changed(void)
{
	register_callbacks();
	return handler_names_changed;
}
