/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  User hook functions run before and after each append.
 *
 * hook() and unhook() write headlessly.hook_registry.  A statement trigger
 * on the registry then sends a relcache invalidation for it, which reaches
 * every backend at commit; each backend keeps the registered hooks, with
 * their resolved handlers, in a cache that the invalidation empties.  An
 * append with no hooks registered therefore costs one flag test, and no
 * catalog query is made per append.
 *
 * "before" hooks run in the log's BEFORE INSERT trigger, after the stream is
 * locked, and may change the event's data or reject it.  "after" hooks run
 * in an AFTER INSERT trigger on the log, which exists only while after hooks
 * are registered: the same registry trigger creates and drops it (also when
 * a restore loads the registry), because even an idle AFTER trigger costs
 * every append a queued trigger event.  Each after hook runs in a
 * subtransaction whose failure is recorded in headlessly.hook_failures.
 *
 *-------------------------------------------------------------------------
 */
#include "headlessly.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_hook);
PG_FUNCTION_INFO_V1(headlessly_unhook);
PG_FUNCTION_INFO_V1(headlessly_hook_registry_changed);
PG_FUNCTION_INFO_V1(headlessly_events_after_insert);

typedef enum HookPatternKind
{
	PATTERN_ALL,				/* * */
	PATTERN_EXACT,				/* Contact.Created, page_view */
	PATTERN_NOUN,				/* Contact.* : the type starts with "Contact." */
	PATTERN_VERB				/* *.Created : the type ends with ".Created" */
} HookPatternKind;

typedef struct Hook
{
	int64		id;
	HlHookPhase phase;
	HookPatternKind kind;
	char	   *text;			/* what to compare, per kind */
	int			len;
	Oid			handler;
	bool		handler_missing;	/* dropped since registration */
	FmgrInfo	flinfo;
} Hook;

static MemoryContext hook_cxt = NULL;
static Hook *hooks = NULL;
static int	nhooks = 0;
static bool hooks_valid = false;
static bool any_phase[2] = {false, false};
static Oid	registry_relid = InvalidOid;
static bool callback_registered = false;

/* how many hook handlers are running now, innermost last */
static int	hook_depth = 0;

#define LOAD_QUERY \
	"SELECT id, pattern, phase, handler::pg_catalog.oid" \
	"  FROM " HL_SCHEMA ".hook_registry ORDER BY id"

#define REGISTER_QUERY \
	"INSERT INTO " HL_SCHEMA ".hook_registry (pattern, phase, handler)" \
	" VALUES ($1, $2, $3) RETURNING id"

#define UNREGISTER_QUERY \
	"DELETE FROM " HL_SCHEMA ".hook_registry WHERE id OPERATOR(pg_catalog.=) $1"

#define AFTER_HOOKS_QUERY \
	"SELECT 1 FROM " HL_SCHEMA ".hook_registry WHERE phase OPERATOR(pg_catalog.=) 'after' LIMIT 1"

#define AFTER_TRIGGER_NAME "events_after_append"

#define FAILURE_QUERY \
	"INSERT INTO " HL_SCHEMA ".hook_failures" \
	" (event_id, hook_id, handler, sqlstate, message, detail, hint)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7)"

static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr register_plan = NULL;
static SPIPlanPtr unregister_plan = NULL;
static SPIPlanPtr failure_plan = NULL;

/* Cache -------------------------------------------------------------------- */

static void
registry_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == registry_relid)
		hooks_valid = false;
}

static Oid
lookup_registry_relid(void)
{
	Oid			nsp = get_namespace_oid(HL_SCHEMA, false);
	Oid			relid = get_relname_relid("hook_registry", nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.hook_registry is missing", HL_SCHEMA);
	return relid;
}

static void
parse_pattern(const char *pattern, Hook *hook)
{
	int			len = strlen(pattern);

	if (len == 1 && pattern[0] == '*')
	{
		hook->kind = PATTERN_ALL;
		hook->text = "";
	}
	else if (len > 2 && pattern[len - 1] == '*' && pattern[len - 2] == '.')
	{
		hook->kind = PATTERN_NOUN;	/* keep the dot: "Contact." */
		hook->text = pnstrdup(pattern, len - 1);
	}
	else if (len > 2 && pattern[0] == '*' && pattern[1] == '.')
	{
		hook->kind = PATTERN_VERB;	/* keep the dot: ".Created" */
		hook->text = pstrdup(pattern + 1);
	}
	else
	{
		hook->kind = PATTERN_EXACT;
		hook->text = pstrdup(pattern);
	}
	hook->len = strlen(hook->text);
}

static void
load_hooks(void)
{
	int			rc;
	HlSavedUser saved;

	if (hooks_valid)
		return;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(registry_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (hook_cxt == NULL)
		hook_cxt = AllocSetContextCreate(CacheMemoryContext, "headlessly hooks",
										 ALLOCSET_SMALL_SIZES);

	/*
	 * Mark valid before reading: an invalidation that arrives while we read
	 * clears the flag again, and the next append reads afresh.
	 */
	hooks_valid = true;
	MemoryContextReset(hook_cxt);
	hooks = NULL;
	nhooks = 0;
	any_phase[HL_HOOK_BEFORE] = any_phase[HL_HOOK_AFTER] = false;

	PG_TRY();
	{
		registry_relid = lookup_registry_relid();

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		hl_prepare_cached(&load_plan, LOAD_QUERY, 0, NULL);
		hl_become_log_owner(&saved);
		rc = SPI_execute_plan(load_plan, NULL, NULL, true, 0);
		hl_restore_user(&saved);
		hl_spi_check(rc, SPI_OK_SELECT, LOAD_QUERY);

		if (SPI_processed > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(hook_cxt);

			hooks = palloc0(SPI_processed * sizeof(Hook));
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				HeapTuple	tup = SPI_tuptable->vals[i];
				TupleDesc	desc = SPI_tuptable->tupdesc;
				Hook	   *hook = &hooks[nhooks];
				bool		isnull;
				char	   *phase;

				hook->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
				parse_pattern(SPI_getvalue(tup, desc, 2), hook);
				phase = SPI_getvalue(tup, desc, 3);
				hook->phase = strcmp(phase, "before") == 0 ? HL_HOOK_BEFORE : HL_HOOK_AFTER;
				hook->handler = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
				/* a dropped handler fails the appends it matches, not all */
				hook->handler_missing =
					!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(hook->handler));
				if (!hook->handler_missing)
					fmgr_info_cxt(hook->handler, &hook->flinfo, hook_cxt);
				any_phase[hook->phase] = true;
				nhooks++;
			}
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		/* abort cleans up SPI and the user; just read again next time */
		hooks_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static bool
hook_matches(const Hook *hook, const char *type, int len)
{
	switch (hook->kind)
	{
		case PATTERN_ALL:
			return true;
		case PATTERN_EXACT:
			return len == hook->len && memcmp(type, hook->text, len) == 0;
		case PATTERN_NOUN:
			return len > hook->len && memcmp(type, hook->text, hook->len) == 0;
		case PATTERN_VERB:
			return len > hook->len &&
				memcmp(type + len - hook->len, hook->text, hook->len) == 0;
	}
	return false;
}

bool
hl_hooks_match(HlHookPhase phase, const char *type, int len)
{
	load_hooks();
	if (!any_phase[phase])
		return false;
	for (int i = 0; i < nhooks; i++)
	{
		if (hooks[i].phase == phase && hook_matches(&hooks[i], type, len))
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

/* Call one handler with the event; returns NULL for an SQL NULL result. */
static Jsonb *
call_handler(Hook *hook, Jsonb *event)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	if (hook->handler_missing)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("handler of hook " INT64_FORMAT " no longer exists", hook->id),
				 errdetail("The function was dropped after the hook was registered."),
				 errhint("Remove the hook with headlessly.unhook(" INT64_FORMAT ").", hook->id)));

	InitFunctionCallInfoData(*fcinfo, &hook->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(event);
	fcinfo->args[0].isnull = false;

	hook_depth++;
	PG_TRY();
	{
		result = FunctionCallInvoke(fcinfo);
	}
	PG_FINALLY();
	{
		hook_depth--;
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
	Datum		doc = JsonbPGetDatum(hl_row_to_jsonb(tupdesc, row));
	JsonbParseState *ps = NULL;
	JsonbValue	key;
	JsonbValue	val;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	key.type = jbvString;
	key.val.string.val = "state";
	key.val.string.len = 5;
	pushJsonbValue(&ps, WJB_KEY, &key);
	if (state)
	{
		val.type = jbvBinary;
		val.val.binary.data = &state->root;
		val.val.binary.len = VARSIZE(state) - VARHDRSZ;
	}
	else
		val.type = jbvNull;
	pushJsonbValue(&ps, WJB_VALUE, &val);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, doc,
											  JsonbPGetDatum(JsonbValueToJsonb(res))));
}

/* Before hooks ----------------------------------------------------------------- */

/*
 * Run the before hooks matching the row's type, in registration order.
 * Each sees the event with the data as the hooks before it left it; a
 * returned object is merged into values[data_attno].  Returns whether any
 * hook ran.  A handler's error propagates and aborts the append.
 */
bool
hl_run_before_hooks(TupleDesc tupdesc, Datum *values, bool *nulls,
					int type_attno, int data_attno, Jsonb *state)
{
	text	   *type = DatumGetTextPP(values[type_attno]);
	const char *typestr = VARDATA_ANY(type);
	int			typelen = VARSIZE_ANY_EXHDR(type);
	bool		ran = false;

	load_hooks();
	if (!any_phase[HL_HOOK_BEFORE])
		return false;

	for (int i = 0; i < nhooks; i++)
	{
		Hook	   *hook = &hooks[i];
		HeapTuple	row;
		Jsonb	   *result;

		if (hook->phase != HL_HOOK_BEFORE || !hook_matches(hook, typestr, typelen))
			continue;

		row = heap_form_tuple(tupdesc, values, nulls);
		result = call_handler(hook, event_document(tupdesc, row, state));
		heap_freetuple(row);
		ran = true;

		/* the registry may have changed under us: a handler can unhook */
		if (!hooks_valid)
			load_hooks();

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

/* After hooks ------------------------------------------------------------------ */

static void
record_failure(const char *event_id, Hook *hook, ErrorData *edata)
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
 * Run one after hook in a subtransaction: on error its work is undone, the
 * failure is recorded, and the caller goes on with the next hook.
 */
static void
run_after_hook(Hook *hook, Jsonb *event, const char *event_id)
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

		record_failure(event_id, hook, edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

Datum
headlessly_events_after_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	row;
	bool		isnull;
	text	   *type;
	const char *typestr;
	int			typelen;
	Jsonb	   *state = NULL;
	Jsonb	   *event = NULL;
	char	   *event_id;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the trigger manager",
						"headlessly.events_after_insert()")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired AFTER INSERT FOR EACH ROW",
						"headlessly.events_after_insert()")));

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	row = trigdata->tg_trigtuple;
	type = DatumGetTextPP(heap_getattr(row, SPI_fnumber(tupdesc, "type"), tupdesc, &isnull));
	typestr = VARDATA_ANY(type);
	typelen = VARSIZE_ANY_EXHDR(type);
	event_id = TextDatumGetCString(heap_getattr(row, SPI_fnumber(tupdesc, "id"), tupdesc, &isnull));

	load_hooks();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the state right after this event, kept aside by the append trigger */
	state = hl_take_state_after(DatumGetInt64(heap_getattr(row, SPI_fnumber(tupdesc, "seq"),
														   tupdesc, &isnull)));

	for (int i = 0; i < nhooks; i++)
	{
		Hook		hook;

		if (hooks[i].phase != HL_HOOK_AFTER || !hook_matches(&hooks[i], typestr, typelen))
			continue;
		if (event == NULL)
			event = event_document(tupdesc, row, state);

		/* a copy: a handler may change the registry and so the cache */
		hook = hooks[i];
		run_after_hook(&hook, event, event_id);
		if (!hooks_valid)
			load_hooks();
	}

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

Jsonb *
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

/*
 * The registry's statement trigger: every backend reloads its hooks, and the
 * log has its AFTER INSERT trigger exactly while after hooks exist.
 */
Datum
headlessly_hook_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			events_relid;
	bool		want;
	bool		have;
	HlSavedUser saved;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired AFTER ... FOR EACH STATEMENT",
						"headlessly.hook_registry_changed()")));

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));

	events_relid = get_relname_relid("events", RelationGetNamespace(trigdata->tg_relation));
	have = OidIsValid(get_trigger_oid(events_relid, AFTER_TRIGGER_NAME, true));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hl_become_log_owner(&saved);
	rc = SPI_execute(AFTER_HOOKS_QUERY, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, AFTER_HOOKS_QUERY);
	want = SPI_processed > 0;

	if (want && !have)
	{
		rc = SPI_execute("CREATE TRIGGER " AFTER_TRIGGER_NAME
						 " AFTER INSERT ON " HL_SCHEMA ".events"
						 " FOR EACH ROW EXECUTE FUNCTION " HL_SCHEMA ".events_after_insert()",
						 false, 0);
		hl_spi_check(rc, SPI_OK_UTILITY, "CREATE TRIGGER");
		rc = SPI_execute("ALTER TABLE " HL_SCHEMA ".events"
						 " ENABLE ALWAYS TRIGGER " AFTER_TRIGGER_NAME, false, 0);
		hl_spi_check(rc, SPI_OK_UTILITY, "ALTER TABLE");
	}
	else if (!want && have)
	{
		hl_guard_allow_internal_ddl(true);
		rc = SPI_execute("DROP TRIGGER " AFTER_TRIGGER_NAME " ON " HL_SCHEMA ".events",
						 false, 0);
		hl_guard_allow_internal_ddl(false);
		hl_spi_check(rc, SPI_OK_UTILITY, "DROP TRIGGER");
	}
	hl_restore_user(&saved);
	SPI_finish();

	return PointerGetDatum(NULL);
}

/* Registration ------------------------------------------------------------- */

static void
check_pattern(const char *pattern)
{
	int			len = strlen(pattern);
	const char *body = pattern;
	int			bodylen = len;

	if (len == 1 && pattern[0] == '*')
		return;
	if (len > 2 && pattern[len - 1] == '*' && pattern[len - 2] == '.')
		bodylen = len - 2;
	else if (len > 2 && pattern[0] == '*' && pattern[1] == '.')
	{
		body = pattern + 2;
		bodylen = len - 2;
	}
	if (bodylen == 0 || memchr(body, '*', bodylen) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid hook pattern \"%s\"", pattern),
				 errhint("Use an exact type (\"Contact.Created\"), \"Noun.*\", \"*.Verbed\" or \"*\".")));
	hl_check_event_type(body, bodylen);
}

static void
check_handler(Oid handler)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
	Form_pg_proc proc;
	AclResult	aclresult;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", handler)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prokind != PROKIND_FUNCTION || proc->proretset ||
		proc->pronargs != 1 || proc->proargtypes.values[0] != JSONBOID ||
		proc->prorettype != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s cannot be a hook handler", format_procedure(handler)),
				 errdetail("A handler is a function f(event jsonb) RETURNS jsonb.")));
	ReleaseSysCache(tup);

	aclresult = pg_proc_aclcheck(handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(handler));
}

Datum
headlessly_hook(PG_FUNCTION_ARGS)
{
	char	   *pattern;
	char	   *phase;
	Oid			handler;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, REGPROCEDUREOID};
	Datum		args[3];
	int64		id;
	bool		isnull;
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pattern, phase and handler of a hook must not be NULL")));
	pattern = text_to_cstring(PG_GETARG_TEXT_PP(0));
	phase = text_to_cstring(PG_GETARG_TEXT_PP(1));
	handler = PG_GETARG_OID(2);

	check_pattern(pattern);
	if (strcmp(phase, "before") != 0 && strcmp(phase, "after") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid hook phase \"%s\"", phase),
				 errhint("Use \"before\" or \"after\".")));
	check_handler(handler);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hl_prepare_cached(&register_plan, REGISTER_QUERY, 3, argtypes);
	args[0] = PointerGetDatum(cstring_to_text(pattern));
	args[1] = PointerGetDatum(cstring_to_text(phase));
	args[2] = ObjectIdGetDatum(handler);
	/* no row limit: a limited INSERT never reaches its statement triggers */
	rc = SPI_execute_plan(register_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT_RETURNING, REGISTER_QUERY);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	PG_RETURN_INT64(id);
}

Datum
headlessly_unhook(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		found;
	int			rc;

	args[0] = PG_GETARG_DATUM(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hl_prepare_cached(&unregister_plan, UNREGISTER_QUERY, 1, argtypes);
	rc = SPI_execute_plan(unregister_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, UNREGISTER_QUERY);
	found = SPI_processed > 0;
	SPI_finish();

	PG_RETURN_BOOL(found);
}
