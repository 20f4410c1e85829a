/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of hooks and capture.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks.h"

#include "utils/guc.h"

char	   *hl_actor_setting = NULL;
int			hl_max_hook_depth = 8;

void
hl_hooks_init(void)
{
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
}
