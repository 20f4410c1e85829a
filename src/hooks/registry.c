/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  hook() and unhook(): registering hook functions.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_hook);
PG_FUNCTION_INFO_V1(headlessly_unhook);

#define REGISTER_QUERY \
	"INSERT INTO " HL_SCHEMA ".hook_registry (pattern, phase, handler)" \
	" VALUES ($1, $2, $3) RETURNING id"

#define UNREGISTER_QUERY \
	"DELETE FROM " HL_SCHEMA ".hook_registry WHERE id OPERATOR(pg_catalog.=) $1"

static SPIPlanPtr register_plan = NULL;
static SPIPlanPtr unregister_plan = NULL;

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

	aclresult = hl_function_aclcheck(handler, GetUserId(), ACL_EXECUTE);
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

	{
		HlTypePattern parsed;

		hl_parse_type_pattern(pattern, strlen(pattern), &parsed);
	}
	if (strcmp(phase, "before") != 0 && strcmp(phase, "after") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid hook phase \"%s\"", phase),
				 errhint("Use \"before\" or \"after\".")));
	check_handler(handler);

	hl_spi_connect();
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
	hl_spi_connect();
	hl_prepare_cached(&unregister_plan, UNREGISTER_QUERY, 1, argtypes);
	rc = SPI_execute_plan(unregister_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, UNREGISTER_QUERY);
	found = SPI_processed > 0;
	SPI_finish();

	PG_RETURN_BOOL(found);
}
