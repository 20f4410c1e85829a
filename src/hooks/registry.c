/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  hook() and unhook(): registering hook functions, and the checks every
 *	  row of headlessly.hook_registry passes.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"
#include "delivery/delivery.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_hook);
PG_FUNCTION_INFO_V1(headlessly_unhook);
PG_FUNCTION_INFO_V1(headlessly_hook_registry_check);

#define REGISTER_QUERY \
	"INSERT INTO " HL_SCHEMA ".hook_registry (pattern, phase, handler)" \
	" VALUES ($1, $2, $3) RETURNING id"

#define UNREGISTER_QUERY \
	"DELETE FROM " HL_SCHEMA ".hook_registry WHERE id OPERATOR(pg_catalog.=) $1"

static SPIPlanPtr register_plan = NULL;
static SPIPlanPtr unregister_plan = NULL;

/* A type's name for a message; never raises, even for a type since dropped. */
static char *
type_name(Oid type)
{
	return format_type_extended(type, -1, FORMAT_TYPE_ALLOW_INVALID);
}

/*
 * Why a function cannot be a hook handler, as a sentence for errdetail, or
 * NULL if it can: a handler is a plain function f(event jsonb) RETURNS
 * jsonb.  *missing says whether there is no such function at all.  Raises
 * nothing, so that the cache can check the rows it loads.
 */
char *
hl_hook_handler_problem(Oid handler, bool *missing)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
	Form_pg_proc proc;
	char	   *problem = NULL;

	*missing = !HeapTupleIsValid(tup);
	if (*missing)
		return psprintf("There is no function with OID %u.", handler);

	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prokind != PROKIND_FUNCTION)
		problem = psprintf("It is %s.",
						   proc->prokind == PROKIND_PROCEDURE ? "a procedure" :
						   proc->prokind == PROKIND_AGGREGATE ? "an aggregate function" :
						   "a window function");
	else if (proc->proretset)
		problem = psprintf("It returns SETOF %s.", type_name(proc->prorettype));
	else if (proc->pronargs == 0)
		problem = pstrdup("It takes no arguments.");
	else if (proc->pronargs != 1 || proc->proargtypes.values[0] != JSONBOID)
	{
		StringInfoData args;

		initStringInfo(&args);
		for (int i = 0; i < proc->pronargs; i++)
			appendStringInfo(&args, "%s%s", i > 0 ? ", " : "",
							 type_name(proc->proargtypes.values[i]));
		problem = psprintf("It takes (%s).", args.data);
	}
	else if (proc->prorettype != JSONBOID)
		problem = psprintf("It returns %s.", type_name(proc->prorettype));
	/* dropped when its session ends, and every matching append fails from then on */
	else if (isAnyTempNamespace(proc->pronamespace))
		problem = pstrdup("It is a temporary function: it is dropped when the session that created it ends.");
	ReleaseSysCache(tup);
	return problem;
}

/*
 * What every registry row must be, however it is written (hook(), an
 * INSERT or UPDATE of the registry, a restore): a valid pattern, a known
 * phase and a handler of the right shape.
 */
static void
check_registration(const char *pattern, const char *phase, Oid handler)
{
	HlTypePattern parsed;
	bool		missing;
	char	   *problem;

	hl_parse_type_pattern(pattern, strlen(pattern), &parsed);
	if (strcmp(phase, "before") != 0 && strcmp(phase, "after") != 0 &&
		strcmp(phase, "after_commit") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid hook phase \"%s\"", phase),
				 errhint("Use \"before\", \"after\" or \"after_commit\".")));

	problem = hl_hook_handler_problem(handler, &missing);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s cannot be a hook handler",
						missing ? psprintf("%u", handler) : format_procedure(handler)),
				 errdetail("%s", problem),
				 errhint("A handler is a function f(event jsonb) RETURNS jsonb.")));
}

/*
 * The owner a registration is bound to.  A function that later takes the
 * handler's name is the handler only if the same role owns it: anyone with
 * CREATE on the handler's schema could otherwise become the handler, run as
 * every appending role.
 */
static Oid
function_owner(Oid function)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", function);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return owner;
}

/* the role an after_commit hook's handler runs as: its subscription's owner */
#define HOOK_RUNS_AS_QUERY \
	"SELECT owner::pg_catalog.oid FROM " HL_SCHEMA ".subscriptions" \
	" WHERE hook_id OPERATOR(pg_catalog.=) $1"

static SPIPlanPtr hook_runs_as_plan = NULL;

/*
 * An after_commit hook's handler runs as the role that registered it (its
 * subscription's owner).  Changing its row (the handler, above all) is
 * acting for that role: a role with UPDATE on the registry pointed a
 * superuser's hook at a function of its own, which the next round ran as
 * the superuser.  Only roles with the rights of the registering role may.
 */
static void
check_may_change_hook(HeapTuple oldrow, HeapTuple newrow, TupleDesc desc)
{
	int			phase_attnum = SPI_fnumber(desc, "phase");
	Datum		args[1];
	Oid			argtypes[1] = {INT8OID};
	HlSavedUser saved;
	bool		isnull;
	bool		after_commit = false;
	Oid			runs_as = InvalidOid;
	int			rc;

	for (int i = 0; i < 2; i++)
	{
		Datum		phase = heap_getattr(i == 0 ? oldrow : newrow, phase_attnum, desc, &isnull);

		if (!isnull && strcmp(TextDatumGetCString(phase), "after_commit") == 0)
			after_commit = true;
	}
	if (!after_commit)
		return;

	args[0] = heap_getattr(oldrow, SPI_fnumber(desc, "id"), desc, &isnull);
	if (isnull)
		return;
	hl_spi_connect();
	hl_prepare_cached(&hook_runs_as_plan, HOOK_RUNS_AS_QUERY, 1, argtypes);
	hl_become_log_owner(&saved);
	rc = SPI_execute_plan(hook_runs_as_plan, args, NULL, true, 1);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_SELECT, HOOK_RUNS_AS_QUERY);
	if (SPI_processed > 0)
		runs_as = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												 1, &isnull));
	SPI_finish();

	if (OidIsValid(runs_as) && !has_privs_of_role(GetUserId(), runs_as))
	{
		char	   *name = GetUserNameFromId(runs_as, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change after_commit hook " INT64_FORMAT,
						DatumGetInt64(args[0])),
				 errdetail("Its handler runs as role \"%s\", which registered it.",
						   name ? name : "(dropped)"),
				 errhint("Have that role change it, or register a hook of your own with headlessly.hook().")));
	}
}

/*
 * The registry's row trigger: rows written without hook() get its checks,
 * so that no malformed row reaches the hook cache.
 *
 * The handler is stored as text, not regprocedure: pg_upgrade refuses a
 * table with a regprocedure column, since it keeps no function's OID.  The
 * name written is resolved here, under the writer's search_path as a
 * regprocedure column would have done, and stored schema-qualified with
 * its argument types, so that reading it back depends on no search_path,
 * with the function's owner in handler_owner (whatever the writer put
 * there): what reads the name back takes only a function of that owner.
 * (A database still at 0.1 has neither this trigger nor these columns.)
 */
Datum
headlessly_hook_registry_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TupleDesc	desc;
	HeapTuple	row;
	Datum		pattern;
	Datum		phase;
	Datum		handler;
	bool		pattern_null;
	bool		phase_null;
	bool		handler_null;
	int			handler_attnum;
	Oid			handler_oid;

	trigdata = hl_trigger_data(fcinfo, "headlessly.hook_registry_check()",
							   HL_FIRED_BEFORE | HL_FIRED_ROW |
							   HL_FIRED_INSERT | HL_FIRED_UPDATE);

	desc = RelationGetDescr(trigdata->tg_relation);
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	handler_attnum = SPI_fnumber(desc, "handler");
	pattern = heap_getattr(row, SPI_fnumber(desc, "pattern"), desc, &pattern_null);
	phase = heap_getattr(row, SPI_fnumber(desc, "phase"), desc, &phase_null);
	handler = heap_getattr(row, handler_attnum, desc, &handler_null);

	/* NULLs are for the columns' NOT NULL constraints to refuse */
	if (pattern_null || phase_null || handler_null)
		return PointerGetDatum(row);

	if (TupleDescAttr(desc, handler_attnum - 1)->atttypid == TEXTOID)
		handler_oid = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
														   CStringGetDatum(TextDatumGetCString(handler))));
	else
		handler_oid = DatumGetObjectId(handler);	/* regprocedure, while the 0.1--0.2 script runs */
	check_registration(TextDatumGetCString(pattern), TextDatumGetCString(phase), handler_oid);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && !creating_extension)
		check_may_change_hook(trigdata->tg_trigtuple, row, desc);

	/*
	 * As hook() and CREATE TRIGGER: the writer must be allowed to call the
	 * handler, which appends then call without checking (a SECURITY DEFINER
	 * function revoked from PUBLIC would otherwise run on any data the
	 * writer appends).  Not while the 0.1--0.2 script rewrites the rows.
	 */
	if (!creating_extension)
	{
		AclResult	aclresult = hl_function_aclcheck(handler_oid, GetUserId(), ACL_EXECUTE);

		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(handler_oid));
	}

	if (TupleDescAttr(desc, handler_attnum - 1)->atttypid == TEXTOID)
	{
		int			attnums[2] = {handler_attnum, SPI_fnumber(desc, "handler_owner")};
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(format_procedure_qualified(handler_oid));
		values[1] = ObjectIdGetDatum(function_owner(handler_oid));
		/* the owner column comes later in the 0.1--0.2 script than the text one */
		row = heap_modify_tuple_by_cols(row, desc, attnums[1] > 0 ? 2 : 1,
										attnums, values, nulls);
	}
	return PointerGetDatum(row);
}

/*
 * The lock that orders registry changes against delivery rounds.  A round
 * locks a hook subscription's row and then reads the log; unhook() deletes
 * such rows (its subscription, by cascade) and, for the last after hook,
 * drops the log's after trigger (ACCESS EXCLUSIVE on the log).  One
 * transaction doing both while a round sat between the two deadlocked with
 * it.  So each step of a round over a hook subscription takes ROW SHARE on
 * the registry before anything else, and hook() and unhook() EXCLUSIVE
 * before they change anything: a round waits for such a transaction to
 * end, or it for the round's step, never both.  Appends load the registry
 * with ACCESS SHARE, which neither blocks; webhook rounds do not take it.
 */
void
hl_hook_registry_lock(LOCKMODE mode)
{
	Oid			relid = get_relname_relid("hook_registry", get_namespace_oid(HL_SCHEMA, false));

	if (OidIsValid(relid))
		LockRelationOid(relid, mode);
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
	AclResult	aclresult;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pattern, phase and handler of a hook must not be NULL")));
	pattern = text_to_cstring(PG_GETARG_TEXT_PP(0));
	phase = text_to_cstring(PG_GETARG_TEXT_PP(1));
	handler = PG_GETARG_OID(2);

	/* the registry's row trigger checks again: a database still at 0.1 has none */
	check_registration(pattern, phase, handler);
	aclresult = hl_function_aclcheck(handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(handler));

	hl_hook_registry_lock(ExclusiveLock);
	hl_spi_connect();
	hl_prepare_cached(&register_plan, REGISTER_QUERY, 3, argtypes);
	args[0] = PointerGetDatum(cstring_to_text(pattern));
	args[1] = PointerGetDatum(cstring_to_text(phase));
	args[2] = ObjectIdGetDatum(handler);
	/* no row limit: a limited INSERT never reaches its statement triggers */
	rc = SPI_execute_plan(register_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT_RETURNING, REGISTER_QUERY);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/*
	 * An after_commit hook is delivered by delivery rounds, through a
	 * subscription of its own (which unhook() removes with the hook).
	 * max_attempts is new in 0.2: a 3-argument hook() has no such argument.
	 */
	if (strcmp(phase, "after_commit") == 0)
		hl_create_hook_subscription(id, pattern,
									PG_NARGS() > 3 && !PG_ARGISNULL(3) ? PG_GETARG_INT32(3) : 10);
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
	hl_hook_registry_lock(ExclusiveLock);
	hl_spi_connect();
	hl_prepare_cached(&unregister_plan, UNREGISTER_QUERY, 1, argtypes);
	rc = SPI_execute_plan(unregister_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, UNREGISTER_QUERY);
	found = SPI_processed > 0;
	SPI_finish();

	PG_RETURN_BOOL(found);
}
