/*-------------------------------------------------------------------------
 *
 * row_json.c
 *	  Table rows as JSON objects, as to_jsonb(row) makes them.
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"

/*
 * to_jsonb() learns its argument's type from the call expression, so it is
 * given one, built for the row type last converted.  Everything it keeps
 * lives in one memory context, emptied when the row type changes.
 */
Jsonb *
hl_row_to_jsonb(TupleDesc tupdesc, HeapTuple row)
{
	static MemoryContext cxt = NULL;
	static FmgrInfo flinfo;
	static Oid	rowtype = InvalidOid;
	Datum		rowdatum;

	if (rowtype != tupdesc->tdtypeid)
	{
		MemoryContext old;

		if (cxt == NULL)
			cxt = AllocSetContextCreate(TopMemoryContext, "headlessly row_to_jsonb",
										ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(cxt);
		rowtype = InvalidOid;

		old = MemoryContextSwitchTo(cxt);
		fmgr_info_cxt(F_TO_JSONB, &flinfo, cxt);
		flinfo.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
											   list_make1(makeNullConst(tupdesc->tdtypeid, -1, InvalidOid)),
											   InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		MemoryContextSwitchTo(old);
		rowtype = tupdesc->tdtypeid;
	}

	rowdatum = heap_copy_tuple_as_datum(row, tupdesc);
	return DatumGetJsonbP(FunctionCall1(&flinfo, rowdatum));
}
