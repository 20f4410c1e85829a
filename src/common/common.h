/*-------------------------------------------------------------------------
 *
 * common.h
 *	  What every part of headlessly_events may use: our SQLSTATEs, limits,
 *	  SPI helpers, set-returning results, JSON object utilities, the
 *	  trigger protocol and the chain of ProcessUtility hooks.
 *
 * Nothing here knows about events; the capabilities (log/, state/,
 * hooks/) build on it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_COMMON_H
#define HL_COMMON_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "common/compat.h"

/* Our SQLSTATEs: class ZE, "headlessly events" */
#define ERRCODE_HL_IMMUTABLE			MAKE_SQLSTATE('Z','E','0','0','1')
#define ERRCODE_HL_VERSION_CONFLICT		MAKE_SQLSTATE('Z','E','0','0','2')
#define ERRCODE_HL_INVALID_EVENT		MAKE_SQLSTATE('Z','E','0','0','3')
#define ERRCODE_HL_ENTITY_STATE			MAKE_SQLSTATE('Z','E','0','0','4')
#define ERRCODE_HL_HOOK_DEPTH			MAKE_SQLSTATE('Z','E','0','0','6')
#define ERRCODE_HL_SUBSCRIPTION			MAKE_SQLSTATE('Z','E','0','0','7')
#define ERRCODE_HL_TENANT				MAKE_SQLSTATE('Z','E','0','0','8')

#define HL_SCHEMA "headlessly"

/* Longest tenant, target, type, actor, source or key we accept, in bytes. */
#define HL_MAX_NAME_BYTES 512

/* Byte equality of two texts, as identifiers compare (COLLATE "C"). */
static inline bool
hl_text_equal(const text *a, const text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* SPI (spi.c) */
extern void hl_spi_connect(void);
extern SPIPlanPtr hl_prepare_cached(SPIPlanPtr *slot, const char *query,
									int nargs, Oid *argtypes);
extern void hl_spi_check(int rc, int expected, const char *query);
extern Portal hl_spi_open_cursor(const char *query, int nargs, Oid *types,
								 Datum *args, const char *nulls);

/* set-returning functions that fill a tuplestore (result_set.c) */
typedef struct HlResultSet
{
	MemoryContext cxt;			/* where the tuplestore lives */
	Tuplestorestate *store;
	TupleDesc	tupdesc;
} HlResultSet;

extern void hl_result_set_init(FunctionCallInfo fcinfo, const char *fname,
							   HlResultSet *rs);
extern ParamListInfo hl_param_list(int nargs, Oid *types, Datum *args,
								   const char *nulls);
extern void hl_spi_into_result_set(SPIPlanPtr plan, const char *query, int nargs,
								   Oid *types, Datum *args, const char *nulls,
								   HlResultSet *rs);

/*
 * How a trigger function must be fired (trigger.c): at most one of each
 * pair (BEFORE/AFTER, ROW/STATEMENT); INSERT, UPDATE or both.
 */
#define HL_FIRED_BEFORE		0x01
#define HL_FIRED_AFTER		0x02
#define HL_FIRED_ROW		0x04
#define HL_FIRED_STATEMENT	0x08
#define HL_FIRED_INSERT		0x10
#define HL_FIRED_UPDATE		0x20

extern TriggerData *hl_trigger_data(FunctionCallInfo fcinfo, const char *funcname,
									int firing);

/* our ProcessUtility hooks pass the statement on (utility.c) */
extern void hl_next_ProcessUtility(ProcessUtility_hook_type prev, PlannedStmt *pstmt,
								   const char *queryString, bool readOnlyTree,
								   ProcessUtilityContext context, ParamListInfo params,
								   QueryEnvironment *queryEnv, DestReceiver *dest,
								   QueryCompletion *qc);

/* table rows as JSON objects (row_json.c) */
extern Jsonb *hl_row_to_jsonb(TupleDesc tupdesc, HeapTuple row);

/* JSON objects and the top-level merge patch (jsonb_object.c) */
extern Jsonb *hl_empty_object(void);
extern Jsonb *hl_merge_patch(Jsonb *state, Jsonb *patch, Jsonb **before);
extern Jsonb *hl_strip_top_level_nulls(Jsonb *object);
extern Jsonb *hl_changed_keys(Jsonb *old, Jsonb *new);
extern void hl_push_string(JsonbParseState **ps, JsonbIteratorToken token,
						   const char *value);
extern Jsonb *hl_with_state(Jsonb *doc, Jsonb *state);

/* the extension's relcache callbacks, behind one server slot (relcache.c) */
extern void hl_register_relcache_callback(RelcacheCallbackFunction function,
										  Datum arg);

#endif							/* HL_COMMON_H */
