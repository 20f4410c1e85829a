/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  Passing a utility statement on along the chain of ProcessUtility
 *	  hooks, for each of our hooks (the DDL guard's, the worker's).
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "tcop/utility.h"

/*
 * Runs the statement through prev, the hook that was installed before
 * ours, or PostgreSQL's own processing when there was none.
 */
void
hl_next_ProcessUtility(ProcessUtility_hook_type prev, PlannedStmt *pstmt,
					   const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest,
					   QueryCompletion *qc)
{
	if (prev)
		prev(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}
