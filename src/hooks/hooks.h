/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  Hooks and capture: user functions run before and after each append,
 *	  and tables whose changes become events.
 *
 * The log's trigger calls in here for every append (hl_hooks_match,
 * hl_run_before_hooks, ...); hooks/hooks_internal.h is for this folder
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_HOOKS_H
#define HL_HOOKS_H

#include "log/log.h"

#include "storage/lockdefs.h"

/* settings (settings.c) */
extern char *hl_actor_setting;
extern int	hl_max_hook_depth;

extern void hl_hooks_init(void);

typedef enum HlHookPhase
{
	HL_HOOK_BEFORE = 0,
	HL_HOOK_AFTER = 1,
	HL_HOOK_AFTER_COMMIT = 2	/* run by delivery rounds (delivery/), not here */
} HlHookPhase;

#define HL_HOOK_PHASES 3

/*
 * The function a registry row r's handler names, as p: its schema-qualified
 * signature resolved now, and only if the role it was registered with owns
 * it (anyone with CREATE on the schema could otherwise take the name).  A
 * LEFT JOIN: no row, a missing handler.  For the cache and delivery rounds.
 */
#define HL_HOOK_HANDLER_JOIN \
	"  LEFT JOIN pg_catalog.pg_proc p" \
	"    ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(r.handler)::pg_catalog.oid" \
	"   AND p.proowner OPERATOR(pg_catalog.=) r.handler_owner::pg_catalog.oid"

/* registering (registry.c); delivery rounds check handlers, and lock, too */
extern char *hl_hook_handler_problem(Oid handler, bool *missing);
extern void hl_hook_registry_lock(LOCKMODE mode);

/*
 * Counts the changes to functions and schemas this backend has seen (cache.c):
 * a handler's name resolved before the count last moved may now name another
 * function, or none.  Delivery rounds resolve their handlers again then.
 */
extern uint64 hl_hook_handler_names_changed(void);

/* errors no hook may swallow (dispatch.c) */
extern bool hl_error_must_propagate(int sqlerrcode);

/* dispatch (dispatch.c) */
extern bool hl_hooks_match(HlHookPhase phase, const char *type, int len);
extern void hl_check_hook_depth(void);
extern bool hl_run_before_hooks(TupleDesc tupdesc, Datum *values, bool *nulls,
								int type_attno, int data_attno, Jsonb *state);
extern void hl_keep_state_after(int64 seq, Jsonb *state);

#endif							/* HL_HOOKS_H */
