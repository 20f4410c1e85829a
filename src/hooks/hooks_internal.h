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
	bool		handler_missing;	/* dropped since registration */
	FmgrInfo	flinfo;
} HlHook;

/* The registered hooks, in registration order. */
typedef struct HlHookSet
{
	HlHook	   *hooks;
	int			nhooks;
	bool		any_phase[2];
} HlHookSet;

/* the cache (cache.c) */
extern const HlHookSet *hl_hook_cache(void);
extern bool hl_hook_cache_is_valid(void);

/* the log's AFTER INSERT trigger, present while after hooks are (after_trigger.c) */
#define HL_AFTER_TRIGGER_NAME "events_after_append"

#endif							/* HL_HOOKS_INTERNAL_H */
