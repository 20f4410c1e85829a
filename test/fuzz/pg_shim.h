/* pg_shim.h: see pg_shim.c */
#ifndef HL_FUZZ_PG_SHIM_H
#define HL_FUZZ_PG_SHIM_H

#include <setjmp.h>

extern sigjmp_buf *hl_fuzz_on_error;
extern int	hl_fuzz_sqlstate;
extern void hl_fuzz_arena_reset(void);

/*
 * Run stmt; true if it returned, false if it raised an ERROR.  The arena is
 * left for the caller to reset once it no longer needs what stmt allocated.
 */
#define HL_FUZZ_TRY(ok, stmt) \
	do { \
		sigjmp_buf	jump_; \
		hl_fuzz_sqlstate = 0; \
		if (sigsetjmp(jump_, 0) == 0) \
		{ \
			hl_fuzz_on_error = &jump_; \
			stmt; \
			(ok) = true; \
		} \
		else \
			(ok) = false; \
		hl_fuzz_on_error = NULL; \
	} while (0)

#endif
