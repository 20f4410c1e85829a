/*-------------------------------------------------------------------------
 *
 * result_set.c
 *	  Set-returning functions in materialize mode, filled from SPI queries.
 *
 * A query whose rows already have the function's row type goes straight
 * into the result's tuplestore through a DestReceiver (as PL/pgSQL's
 * RETURN QUERY does), with no copy through SPI's own tuple table.
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"

void
hl_result_set_init(FunctionCallInfo fcinfo, const char *fname, HlResultSet *rs)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must be called in a context that accepts a set", fname)));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type of %s must be a row type", fname);

	rs->cxt = rsinfo->econtext->ecxt_per_query_memory;
	oldcxt = MemoryContextSwitchTo(rs->cxt);
	rs->tupdesc = CreateTupleDescCopy(tupdesc);
	rs->store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = rs->store;
	rsinfo->setDesc = rs->tupdesc;
}

/*
 * SPI parameters in the form SPI_execute_plan_extended takes, from the
 * arrays SPI_execute_plan takes (nulls: 'n' for NULL; NULL for none).
 */
ParamListInfo
hl_param_list(int nargs, Oid *types, Datum *args, const char *nulls)
{
	ParamListInfo params = makeParamList(nargs);

	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = args[i];
		params->params[i].isnull = nulls != NULL && nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	params->numParams = nargs;
	return params;
}

/*
 * Run a read-only plan whose rows have the result's row type, appending
 * them to the result.  nulls as for SPI_execute_plan ('n' = NULL), or NULL.
 */
void
hl_spi_into_result_set(SPIPlanPtr plan, const char *query, int nargs,
					   Oid *types, Datum *args, const char *nulls, HlResultSet *rs)
{
	DestReceiver *dest = CreateTuplestoreDestReceiver();
	ParamListInfo params = hl_param_list(nargs, types, args, nulls);
	SPIExecuteOptions options;
	int			rc;

	SetTuplestoreDestReceiverParams(dest, rs->store, rs->cxt, false, NULL, NULL);

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = dest;
	rc = SPI_execute_plan_extended(plan, &options);
	hl_spi_check(rc, SPI_OK_SELECT, query);
	dest->rDestroy(dest);
}
