/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *	  Running the hooks that match an appended event.
 *
 * "before" hooks run in the log's BEFORE INSERT trigger, after the stream is
 * locked, and may change the event's data or reject it.  "after" hooks run
 * in an AFTER INSERT trigger on the log (after_trigger.c keeps it there
 * while after hooks exist), each in a subtransaction whose failure is
 * recorded in headlessly.hook_failures.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"

PG_FUNCTION_INFO_V1(headlessly_events_after_insert);

#define FAILURE_QUERY \
	"INSERT INTO " HL_SCHEMA ".hook_failures" \
	" (event_id, hook_id, handler, sqlstate, message, detail, hint)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7)"

static SPIPlanPtr failure_plan = NULL;

/* how many hook handlers are running now, innermost last */
static int	hook_depth = 0;

static Jsonb *hl_take_state_after(int64 seq);

static inline bool
hook_matches(const HlHook *hook, const char *type, int len)
{
	return hl_type_pattern_matches(&hook->pattern, type, len);
}

bool
hl_hooks_match(HlHookPhase phase, const char *type, int len)
{
	const HlHookSet *set = hl_hook_cache();

	if (!set->any_phase[phase])
		return false;
	for (int i = 0; i < set->nhooks; i++)
	{
		if (set->hooks[i].phase == phase && hook_matches(&set->hooks[i], type, len))
			return true;
	}
	return false;
}

/* Nesting -------------------------------------------------------------------- */

/* Called by every append: refuse appends nested deeper than the setting. */
void
hl_check_hook_depth(void)
{
	if (hook_depth > hl_max_hook_depth)
		ereport(ERROR,
				(errcode(ERRCODE_HL_HOOK_DEPTH),
				 errmsg("hooks nested %d deep, deeper than headlessly.max_hook_depth (%d)",
						hook_depth, hl_max_hook_depth),
				 errdetail("A hook appended an event whose hooks appended an event, and so on."),
				 errhint("Look for hooks that trigger each other, or raise headlessly.max_hook_depth.")));
}

/*
 * Call one handler with the event; returns NULL for an SQL NULL result.
 * The caller holds the set the hook belongs to.
 */
static Jsonb *
call_handler(HlHook *hook, Jsonb *event)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo   *flinfo = &hook->flinfo;
	MemoryContext nested_cxt = NULL;
	bool		was_busy = hook->busy;
	volatile bool returned = false;
	Datum		result;

	if (hook->handler_missing)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("handler of hook " INT64_FORMAT " no longer exists", hook->id),
				 errdetail("The function was dropped, renamed, or replaced by another owner's function of the same name after the hook was registered."),
				 errhint("Register the handler again with headlessly.hook(), or remove the hook with headlessly.unhook(" INT64_FORMAT ").", hook->id)));
	if (hook->handler_problem)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("handler %s of hook " INT64_FORMAT " is not a function (jsonb) RETURNS jsonb",
						format_procedure(hook->handler), hook->id),
				 errdetail("%s", hook->handler_problem),
				 errhint("Remove the hook with headlessly.unhook(" INT64_FORMAT ").", hook->id)));

	/*
	 * A call that raised leaves the handler's execution state (SQL functions
	 * keep it in fn_extra) halfway; when its error was caught the next call
	 * would resume it, so it starts afresh.
	 */
	if (hook->failed && !was_busy)
	{
		MemoryContextReset(hook->fn_cxt);
		fmgr_info_cxt(hook->handler, &hook->flinfo, hook->fn_cxt);
		hook->failed = false;
	}

	/*
	 * A handler that appends can reach its own hook again: a nested call
	 * gets an FmgrInfo of its own, for the same reason.
	 */
	if (was_busy)
	{
		nested_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly nested hook call",
										   ALLOCSET_SMALL_SIZES);
		flinfo = MemoryContextAlloc(nested_cxt, sizeof(FmgrInfo));
		fmgr_info_cxt(hook->handler, flinfo, nested_cxt);
	}

	InitFunctionCallInfoData(*fcinfo, flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(event);
	fcinfo->args[0].isnull = false;

	hook->busy = true;
	hook_depth++;
	PG_TRY();
	{
		result = FunctionCallInvoke(fcinfo);
		returned = true;
	}
	PG_FINALLY();
	{
		hook_depth--;
		hook->busy = was_busy;
		if (nested_cxt != NULL)
			MemoryContextDelete(nested_cxt);
		else if (!returned)
			hook->failed = true;
	}
	PG_END_TRY();

	if (fcinfo->isnull)
		return NULL;
	return DatumGetJsonbP(result);
}

/* The event as handlers see it: every column of the row, plus "state". */
static Jsonb *
event_document(TupleDesc tupdesc, HeapTuple row, Jsonb *state)
{
	return hl_with_state(hl_row_to_jsonb(tupdesc, row), state);
}

/* Before hooks ----------------------------------------------------------------- */

/*
 * Run the before hooks of set matching the row's type, in registration
 * order.  Each sees the event with the data as the hooks before it left it;
 * a returned object is merged into values[data_attno].  Returns whether any
 * hook ran.  A handler's error propagates and aborts the append.
 */
static bool
run_before_hooks_of(HlHookSet *set, TupleDesc tupdesc, Datum *values, bool *nulls,
					int type_attno, int data_attno, Jsonb *state)
{
	text	   *type = DatumGetTextPP(values[type_attno]);
	const char *typestr = VARDATA_ANY(type);
	int			typelen = VARSIZE_ANY_EXHDR(type);
	bool		ran = false;

	for (int i = 0; i < set->nhooks; i++)
	{
		HlHook	   *hook = &set->hooks[i];
		HeapTuple	row;
		Jsonb	   *result;

		if (hook->phase != HL_HOOK_BEFORE || !hook_matches(hook, typestr, typelen))
			continue;

		row = heap_form_tuple(tupdesc, values, nulls);
		result = call_handler(hook, event_document(tupdesc, row, state));
		heap_freetuple(row);
		ran = true;

		if (result == NULL)
			continue;
		if (!JB_ROOT_IS_OBJECT(result))
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("before hook " INT64_FORMAT " (%s) returned %s, not a JSON object",
							hook->id, format_procedure(hook->handler),
							JB_ROOT_IS_SCALAR(result) ? "a scalar" : "an array"),
					 errhint("Return an object of keys to merge into the event's data, or NULL.")));

		values[data_attno] = DirectFunctionCall2(jsonb_concat, values[data_attno],
												 JsonbPGetDatum(result));
	}
	return ran;
}

/*
 * Run the before hooks matching the row's type.  The hooks registered when
 * the event's hooks start are the ones that run for it: what a handler
 * registers or removes applies from the next event on.
 */
bool
hl_run_before_hooks(TupleDesc tupdesc, Datum *values, bool *nulls,
					int type_attno, int data_attno, Jsonb *state)
{
	HlHookSet  *set;
	bool		ran;

	if (!hl_hook_cache()->any_phase[HL_HOOK_BEFORE])
		return false;

	set = hl_hook_set_acquire();
	PG_TRY();
	{
		ran = run_before_hooks_of(set, tupdesc, values, nulls, type_attno, data_attno, state);
	}
	PG_FINALLY();
	{
		hl_hook_set_release(set);
	}
	PG_END_TRY();
	return ran;
}

/* After hooks ------------------------------------------------------------------ */

static void
record_failure(const char *event_id, HlHook *hook, ErrorData *edata)
{
	Oid			argtypes[7] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	HlSavedUser saved;
	int			rc;

	hl_prepare_cached(&failure_plan, FAILURE_QUERY, 7, argtypes);
	args[0] = CStringGetTextDatum(event_id);
	args[1] = Int64GetDatum(hook->id);
	args[2] = CStringGetTextDatum(format_procedure(hook->handler));
	args[3] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[4] = CStringGetTextDatum(edata->message ? edata->message : "");
	if (edata->detail)
		args[5] = CStringGetTextDatum(edata->detail);
	else
		nulls[5] = 'n';
	if (edata->hint)
		args[6] = CStringGetTextDatum(edata->hint);
	else
		nulls[6] = 'n';

	hl_become_log_owner(&saved);
	rc = SPI_execute_plan(failure_plan, args, nulls, false, 0);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_INSERT, FAILURE_QUERY);
}

/*
 * Errors no after hook may swallow: a cancel or statement_timeout, and the
 * rest of class 57 (operator intervention); an ASSERT failure, which
 * PL/pgSQL's WHEN OTHERS does not catch either; and the server's own
 * troubles, which recording a failure would not survive or would hide:
 * class 58 (I/O), out of memory, disk full, corruption.
 */
bool
hl_error_must_propagate(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_OPERATOR_INTERVENTION:
		case ERRCODE_SYSTEM_ERROR:
			return true;
		default:
			break;
	}
	return sqlerrcode == ERRCODE_ASSERT_FAILURE ||
		sqlerrcode == ERRCODE_OUT_OF_MEMORY ||
		sqlerrcode == ERRCODE_DISK_FULL ||
		sqlerrcode == ERRCODE_DATA_CORRUPTED ||
		sqlerrcode == ERRCODE_INDEX_CORRUPTED;
}

/*
 * Run one after hook in a subtransaction: on error its work is undone, the
 * failure is recorded, and the caller goes on with the next hook.  Errors
 * that must not be caught are raised again once the hook's work is undone.
 */
static void
run_after_hook(HlHook *hook, Jsonb *event, const char *event_id)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		(void) call_handler(hook, event);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		if (hl_error_must_propagate(edata->sqlerrcode))
			ReThrowError(edata);
		record_failure(event_id, hook, edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Run the after hooks of set matching the stored row, in registration order. */
static void
run_after_hooks_of(HlHookSet *set, TupleDesc tupdesc, HeapTuple row, Jsonb *state)
{
	bool		isnull;
	text	   *type;
	const char *typestr;
	int			typelen;
	char	   *event_id = NULL;
	Jsonb	   *event = NULL;

	type = DatumGetTextPP(heap_getattr(row, SPI_fnumber(tupdesc, "type"), tupdesc, &isnull));
	typestr = VARDATA_ANY(type);
	typelen = VARSIZE_ANY_EXHDR(type);

	for (int i = 0; i < set->nhooks; i++)
	{
		HlHook	   *hook = &set->hooks[i];

		if (hook->phase != HL_HOOK_AFTER || !hook_matches(hook, typestr, typelen))
			continue;
		if (event == NULL)
		{
			event = event_document(tupdesc, row, state);
			event_id = TextDatumGetCString(heap_getattr(row, SPI_fnumber(tupdesc, "id"),
														tupdesc, &isnull));
		}
		run_after_hook(hook, event, event_id);
	}
}

Datum
headlessly_events_after_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TupleDesc	tupdesc;
	HeapTuple	row;
	bool		isnull;
	Jsonb	   *state;
	HlHookSet  *set;

	trigdata = hl_trigger_data(fcinfo, "headlessly.events_after_insert()",
							   HL_FIRED_AFTER | HL_FIRED_ROW | HL_FIRED_INSERT);

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	row = trigdata->tg_trigtuple;

	/* a restored event had its hooks run when it was first appended */
	if (hl_event_is_restored(DatumGetInt64(heap_getattr(row, SPI_fnumber(tupdesc, "seq"),
														tupdesc, &isnull))))
		return PointerGetDatum(NULL);

	/* the state right after this event, kept aside by the append trigger */
	state = hl_take_state_after(DatumGetInt64(heap_getattr(row, SPI_fnumber(tupdesc, "seq"),
														   tupdesc, &isnull)));
	if (!hl_hook_cache()->any_phase[HL_HOOK_AFTER])
		return PointerGetDatum(NULL);

	hl_spi_connect();
	set = hl_hook_set_acquire();
	PG_TRY();
	{
		run_after_hooks_of(set, tupdesc, row, state);
	}
	PG_FINALLY();
	{
		hl_hook_set_release(set);
	}
	PG_END_TRY();
	SPI_finish();

	return PointerGetDatum(NULL);
}

/*
 * The state an entity event left, kept by the append trigger for the after
 * hooks (which fire at the end of the statement, when later rows of the
 * same statement may have moved the state on).  Transaction memory; the
 * list is forgotten when the transaction ends.
 */
typedef struct StateAfter
{
	int64		seq;
	Jsonb	   *state;
} StateAfter;

static List *states_after = NIL;
static bool xact_callback_registered = false;

static void
states_after_xact_callback(XactEvent event, void *arg)
{
	states_after = NIL;
}

void
hl_keep_state_after(int64 seq, Jsonb *state)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	StateAfter *entry = palloc(sizeof(StateAfter));

	if (!xact_callback_registered)
	{
		RegisterXactCallback(states_after_xact_callback, NULL);
		xact_callback_registered = true;
	}
	entry->seq = seq;
	entry->state = NULL;
	if (state)
	{
		entry->state = palloc(VARSIZE(state));
		memcpy(entry->state, state, VARSIZE(state));
	}
	states_after = lappend(states_after, entry);
	MemoryContextSwitchTo(old);
}

static Jsonb *
hl_take_state_after(int64 seq)
{
	ListCell   *lc;

	foreach(lc, states_after)
	{
		StateAfter *entry = lfirst(lc);

		if (entry->seq == seq)
		{
			Jsonb	   *state = entry->state;

			states_after = foreach_delete_current(states_after, lc);
			return state;
		}
	}
	return NULL;
}
