/*-------------------------------------------------------------------------
 *
 * hooks_internal.h
 *	  Shared by the files of hooks/ only: the per-backend hook cache.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_HOOKS_INTERNAL_H
#define HL_HOOKS_INTERNAL_H

#include "hooks/hooks.h"

/* One registered hook with its resolved handler. */
typedef struct HlHook
{
	int64		id;
	HlHookPhase phase;
	HlTypePattern pattern;
	Oid			handler;
	uint32		handler_hash;	/* of handler in the pg_proc syscache */
	uint32		namespace_hash; /* of its schema in the pg_namespace one */
	char	   *handler_problem;	/* why it cannot be called, or NULL */
	bool		handler_missing;	/* dropped since registration */
	bool		busy;			/* flinfo is in use by a running call */
	bool		failed;			/* the last call raised: flinfo needs a fresh start */
	MemoryContext fn_cxt;		/* flinfo's fn_mcxt: the handler's own state */
	FmgrInfo	flinfo;
} HlHook;

/*
 * The registered hooks, in registration order, as one load of the registry
 * found them.  A set stays valid while anyone holds it: the cache holds the
 * current one, and every dispatch holds the set whose handlers it runs, so
 * that a handler that changes the registry (and so replaces the current
 * set) does not free the FmgrInfo it is running from.
 */
typedef struct HlHookSet
{
	MemoryContext cxt;			/* the set, its hooks and their handlers' state */
	int			refcount;
	HlHook	   *hooks;
	int			nhooks;
	bool		any_phase[HL_HOOK_PHASES];
} HlHookSet;

/* the cache (cache.c) */
extern const HlHookSet *hl_hook_cache(void);
extern HlHookSet *hl_hook_set_acquire(void);
extern void hl_hook_set_release(HlHookSet *set);


/* the log's AFTER INSERT trigger, present while after hooks are (after_trigger.c) */
#define HL_AFTER_TRIGGER_NAME "events_after_append"

#endif							/* HL_HOOKS_INTERNAL_H */
