/*-------------------------------------------------------------------------
 *
 * events_list.c
 *	  events_list(): the log filtered by target, type pattern, actor and
 *	  time, in seq order.
 *
 * Each combination of filters has its own cached plan that names only the
 * filters given, so every filter can use its index: (tenant, target,
 * version) for a target, (tenant, type, recorded_at) for types,
 * (tenant, actor, recorded_at) for an actor, (tenant, recorded_at) for a
 * time range.  A type pattern ("Deal.*", "*.Created") is first turned into
 * the tenant's types that match it, found by walking the distinct types of
 * the type index (one index probe per distinct type), so that it too is an
 * index condition: type = ANY (the matching types).
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(headlessly_events_list);

typedef enum TypeFilter
{
	TF_NONE,					/* NULL or "*" */
	TF_EXACT,					/* a type without "*" */
	TF_ANY						/* "Prefix.*" or "*.Suffix" */
} TypeFilter;

#define F_TARGET	0x01
#define F_ACTOR		0x02
#define F_AFTER		0x04
#define F_BEFORE	0x08
#define F_TYPE_SHIFT 4			/* then TypeFilter * 16 */
#define N_PLANS		(3 << F_TYPE_SHIFT)

/* parameters of every list query, used or not */
#define N_LIST_ARGS 8
static const Oid list_types[N_LIST_ARGS] = {
	TEXTOID,					/* $1 tenant */
	TEXTOID,					/* $2 target */
	TEXTOID,					/* $3 exact type */
	TEXTARRAYOID,				/* $4 matching types */
	TEXTOID,					/* $5 actor */
	TIMESTAMPTZOID,				/* $6 after */
	TIMESTAMPTZOID,				/* $7 before */
	INT8OID						/* $8 max_rows, NULL = all */
};

static SPIPlanPtr list_plans[N_PLANS];

/* the tenant's distinct types with a prefix ($2) or a suffix ($3) */
#define MATCHING_TYPES_QUERY \
	"WITH RECURSIVE t(type) AS (" \
	"  (SELECT e.type FROM " HL_SCHEMA ".events e" \
	"    WHERE e.tenant OPERATOR(pg_catalog.=) $1 ORDER BY e.type LIMIT 1)" \
	"  UNION ALL" \
	"  SELECT (SELECT e.type FROM " HL_SCHEMA ".events e" \
	"           WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"             AND e.type OPERATOR(pg_catalog.>) t.type ORDER BY e.type LIMIT 1)" \
	"    FROM t WHERE t.type IS NOT NULL)" \
	" SELECT COALESCE(pg_catalog.array_agg(t.type), '{}'::pg_catalog.text[]) FROM t" \
	"  WHERE t.type IS NOT NULL" \
	"    AND ($2 IS NULL OR pg_catalog.starts_with(t.type, $2))" \
	"    AND ($3 IS NULL OR pg_catalog.right(t.type, pg_catalog.length($3)) OPERATOR(pg_catalog.=) $3)"

static SPIPlanPtr matching_types_plan = NULL;

static Datum
matching_types(text *tenant, const HlTypePattern *pattern)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int			rc;

	hl_prepare_cached(&matching_types_plan, MATCHING_TYPES_QUERY, 3, types);
	args[0] = PointerGetDatum(tenant);
	nulls[pattern->kind == HL_PATTERN_PREFIX ? 2 : 1] = 'n';
	args[pattern->kind == HL_PATTERN_PREFIX ? 1 : 2] =
		PointerGetDatum(cstring_to_text_with_len(pattern->text, pattern->len));
	rc = SPI_execute_plan(matching_types_plan, args, nulls, true, 1);
	hl_spi_check(rc, SPI_OK_SELECT, MATCHING_TYPES_QUERY);
	return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							 false, -1);
}

static char *
list_query(int filters)
{
	StringInfoData q;
	TypeFilter	tf = filters >> F_TYPE_SHIFT;

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT e.* FROM " HL_SCHEMA ".events e"
						   " WHERE e.tenant OPERATOR(pg_catalog.=) $1");
	if (filters & F_TARGET)
		appendStringInfoString(&q, " AND e.target OPERATOR(pg_catalog.=) $2");
	if (tf == TF_EXACT)
		appendStringInfoString(&q, " AND e.type OPERATOR(pg_catalog.=) $3");
	else if (tf == TF_ANY)
		appendStringInfoString(&q, " AND e.type OPERATOR(pg_catalog.=) ANY ($4)");
	if (filters & F_ACTOR)
		appendStringInfoString(&q, " AND e.actor OPERATOR(pg_catalog.=) $5");
	if (filters & F_AFTER)
		appendStringInfoString(&q, " AND e.recorded_at OPERATOR(pg_catalog.>) $6");
	if (filters & F_BEFORE)
		appendStringInfoString(&q, " AND e.recorded_at OPERATOR(pg_catalog.<) $7");
	appendStringInfoString(&q, " ORDER BY e.seq LIMIT $8");
	return q.data;
}

/*
 * events_list(target, type, actor, after, before, max_rows int DEFAULT 100,
 *             tenant) RETURNS SETOF headlessly.events
 */
Datum
headlessly_events_list(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	Datum		args[N_LIST_ARGS];
	char		nulls[N_LIST_ARGS];
	int			filters = 0;
	TypeFilter	tf = TF_NONE;
	char	   *query;
	text	   *tenant;

	hl_result_set_init(fcinfo, "events_list", &rs);
	memset(nulls, 'n', sizeof(nulls));
	memset(args, 0, sizeof(args));

	tenant = hl_tenant_arg(fcinfo, 6);
	args[0] = PointerGetDatum(tenant);
	nulls[0] = ' ';

	if (!PG_ARGISNULL(5))
	{
		int32		max_rows = PG_GETARG_INT32(5);

		if (max_rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_rows must not be negative, not %d", max_rows),
					 errhint("Pass NULL for no limit.")));
		args[7] = Int64GetDatum(max_rows);
		nulls[7] = ' ';
	}

	hl_spi_connect();

	if (!PG_ARGISNULL(0))
	{
		filters |= F_TARGET;
		args[1] = PG_GETARG_DATUM(0);
		nulls[1] = ' ';
	}
	if (!PG_ARGISNULL(1))
	{
		text	   *pattern_text = PG_GETARG_TEXT_PP(1);
		HlTypePattern pattern;

		hl_parse_type_pattern(VARDATA_ANY(pattern_text), VARSIZE_ANY_EXHDR(pattern_text),
							  &pattern);
		switch (pattern.kind)
		{
			case HL_PATTERN_ALL:
				break;
			case HL_PATTERN_EXACT:
				tf = TF_EXACT;
				args[2] = PointerGetDatum(pattern_text);
				nulls[2] = ' ';
				break;
			case HL_PATTERN_PREFIX:
			case HL_PATTERN_SUFFIX:
				tf = TF_ANY;
				args[3] = matching_types(tenant, &pattern);
				nulls[3] = ' ';
				break;
		}
	}
	if (!PG_ARGISNULL(2))
	{
		filters |= F_ACTOR;
		args[4] = PG_GETARG_DATUM(2);
		nulls[4] = ' ';
	}
	if (!PG_ARGISNULL(3))
	{
		filters |= F_AFTER;
		args[5] = PG_GETARG_DATUM(3);
		nulls[5] = ' ';
	}
	if (!PG_ARGISNULL(4))
	{
		filters |= F_BEFORE;
		args[6] = PG_GETARG_DATUM(4);
		nulls[6] = ' ';
	}
	filters |= tf << F_TYPE_SHIFT;

	query = list_query(filters);
	hl_prepare_cached(&list_plans[filters], query, N_LIST_ARGS, (Oid *) list_types);
	hl_spi_into_result_set(list_plans[filters], query, N_LIST_ARGS, (Oid *) list_types,
						   args, nulls, &rs);

	SPI_finish();
	PG_RETURN_NULL();
}
