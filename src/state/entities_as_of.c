/*-------------------------------------------------------------------------
 *
 * entities_as_of.c
 *	  entities_as_of(): every entity of a noun as it was at a point in time.
 *
 * Entities unchanged since the point answer from their stream head.  Those
 * changed since are undone from the head where the events' "before" values
 * make that exact, and replayed from their nearest snapshot otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(headlessly_entities_as_of);

#define ENTITY_COLUMNS "target, version, state, created_at, updated_at"

#define CURRENT_QUERY \
	"SELECT " ENTITY_COLUMNS \
	"  FROM " HL_SCHEMA ".streams" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND noun OPERATOR(pg_catalog.=) $2" \
	"   AND state IS NOT NULL" \
	"   AND state OPERATOR(pg_catalog.@>) $3"

/* streams with no change after $3 answer from their head */
#define UNCHANGED_QUERY \
	"SELECT " ENTITY_COLUMNS \
	"  FROM " HL_SCHEMA ".streams" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND noun OPERATOR(pg_catalog.=) $2" \
	"   AND state IS NOT NULL" \
	"   AND state OPERATOR(pg_catalog.@>) $3" \
	"   AND last_recorded_at OPERATOR(pg_catalog.<=) $4"

/*
 * Streams changed after $3: for each, the nearest snapshot at or before $3,
 * and the events from there up to $3 (never past the next snapshot).  The
 * lateral subqueries make this a nested loop driven by the streams, so each
 * stream's rows come together, in version order.
 */
#define CHANGED_QUERY \
	"SELECT s.target, b.version, b.recorded_at, b.state, b.created_at, b.updated_at," \
	"       ev.version, ev.type, ev.data, ev.recorded_at" \
	"  FROM " HL_SCHEMA ".streams s" \
	"  LEFT JOIN LATERAL (" \
	"       SELECT sn.version, sn.recorded_at, sn.state, sn.created_at, sn.updated_at" \
	"         FROM " HL_SCHEMA ".snapshots sn" \
	"        WHERE sn.tenant OPERATOR(pg_catalog.=) $1" \
	"          AND sn.target OPERATOR(pg_catalog.=) s.target" \
	"          AND sn.recorded_at OPERATOR(pg_catalog.<=) $3" \
	"        ORDER BY sn.recorded_at DESC, sn.version DESC LIMIT 1) b ON true" \
	"  LEFT JOIN LATERAL (" \
	"       SELECT sn.version" \
	"         FROM " HL_SCHEMA ".snapshots sn" \
	"        WHERE sn.tenant OPERATOR(pg_catalog.=) $1" \
	"          AND sn.target OPERATOR(pg_catalog.=) s.target" \
	"          AND sn.recorded_at OPERATOR(pg_catalog.>) $3" \
	"        ORDER BY sn.recorded_at, sn.version LIMIT 1) nx ON true" \
	"  LEFT JOIN LATERAL (" \
	"       SELECT e.version, e.type, e.data, e.recorded_at" \
	"         FROM " HL_SCHEMA ".events e" \
	"        WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"          AND e.target OPERATOR(pg_catalog.=) s.target" \
	"          AND e.version OPERATOR(pg_catalog.>) COALESCE(b.version, 0)" \
	"          AND e.version OPERATOR(pg_catalog.<)" \
	"              COALESCE(nx.version, s.version OPERATOR(pg_catalog.+) 1)" \
	"          AND e.recorded_at OPERATOR(pg_catalog.<=) $3" \
	"        ORDER BY e.version) ev ON true" \
	" WHERE s.tenant OPERATOR(pg_catalog.=) $1" \
	"   AND s.target OPERATOR(pg_catalog.=) ANY ($4)"

/*
 * Streams changed after $3, each with its head and its last few events,
 * newest first: most streams changed after a recent point have only one or
 * two events after it, and are answered by undoing those from the head.
 * Only the head's first row carries the head's state.  They are found from
 * the events after $3 (the log's (tenant, recorded_at) index): the heads
 * keep no index on when they changed, so that updating them stays HOT.
 */
#define UNDO_DEPTH 4
#define UNDO_QUERY \
	"SELECT s.target, s.version, s.created_at," \
	"       CASE WHEN t.version OPERATOR(pg_catalog.=) s.version THEN s.state END," \
	"       t.version, t.type, t.before, t.recorded_at" \
	"  FROM (SELECT DISTINCT c.target FROM " HL_SCHEMA ".events c" \
	"         WHERE c.tenant OPERATOR(pg_catalog.=) $1" \
	"           AND c.recorded_at OPERATOR(pg_catalog.>) $3" \
	"           AND c.target IS NOT NULL) changed" \
	"  JOIN " HL_SCHEMA ".streams s" \
	"    ON s.tenant OPERATOR(pg_catalog.=) $1 AND s.target OPERATOR(pg_catalog.=) changed.target" \
	"  CROSS JOIN LATERAL (" \
	"       SELECT e.version, e.type, e.before, e.recorded_at" \
	"         FROM " HL_SCHEMA ".events e" \
	"        WHERE e.tenant OPERATOR(pg_catalog.=) $1" \
	"          AND e.target OPERATOR(pg_catalog.=) s.target" \
	"        ORDER BY e.version DESC LIMIT " CppAsString2(UNDO_DEPTH) ") t" \
	" WHERE s.noun OPERATOR(pg_catalog.=) $2"

static SPIPlanPtr undo_plan = NULL;
static SPIPlanPtr current_plan = NULL;
static SPIPlanPtr unchanged_plan = NULL;
static SPIPlanPtr changed_plan = NULL;

typedef struct EntitiesOutput
{
	HlResultSet rs;
	Jsonb	   *filter;
} EntitiesOutput;

/* Emit one reconstructed entity if it was alive and matches the filter. */
static void
emit_replayed(EntitiesOutput *out, text *target, HlReplay *r)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Jsonb	   *state = hl_replay_state(r);

	if (state == NULL)
		return;
	if (!DatumGetBool(DirectFunctionCall2(jsonb_contains, JsonbPGetDatum(state),
										  JsonbPGetDatum(out->filter))))
		return;

	values[0] = PointerGetDatum(target);
	values[1] = Int64GetDatum(r->version);
	values[2] = JsonbPGetDatum(state);
	values[3] = TimestampTzGetDatum(r->created_at);
	nulls[3] = !r->has_created_at;
	values[4] = TimestampTzGetDatum(r->updated_at);
	nulls[4] = !r->has_updated_at;
	tuplestore_putvalues(out->rs.store, out->rs.tupdesc, values, nulls);
}

/* One stream being replayed forwards from its nearest snapshot. */
typedef struct ReplayStream
{
	EntitiesOutput *out;
	text	   *target;
	HlReplay	r;
	int64		last_event;
} ReplayStream;

static void
replay_start(void *arg, text *tenant, text *target, HeapTuple tup, TupleDesc desc)
{
	ReplayStream *rs = arg;
	bool		isnull;
	Datum		version = SPI_getbinval(tup, desc, 2, &isnull);

	rs->target = target;
	rs->last_event = 0;
	hl_replay_init(&rs->r);
	if (!isnull)
		hl_replay_start_from_row(&rs->r, DatumGetInt64(version), tup, desc, 3);
}

static void
replay_row(void *arg, HeapTuple tup, TupleDesc desc)
{
	ReplayStream *rs = arg;
	bool		isnull;
	Datum		version = SPI_getbinval(tup, desc, 7, &isnull);

	if (isnull)
		return;					/* no events to replay after the snapshot */
	if (DatumGetInt64(version) <= rs->last_event)
		elog(ERROR, "entities_as_of: events of \"%s\" out of order",
			 text_to_cstring(rs->target));
	rs->last_event = DatumGetInt64(version);
	hl_replay_apply(&rs->r, rs->last_event,
					DatumGetTextPP(SPI_getbinval(tup, desc, 8, &isnull)),
					DatumGetJsonbP(SPI_getbinval(tup, desc, 9, &isnull)),
					DatumGetTimestampTz(SPI_getbinval(tup, desc, 10, &isnull)));
}

static void
replay_keep(void *arg)
{
	hl_replay_keep(&((ReplayStream *) arg)->r);
}

static void
replay_finish(void *arg)
{
	ReplayStream *rs = arg;

	emit_replayed(rs->out, rs->target, &rs->r);
}

/*
 * Streams changed after at that undoing could not answer: replay each
 * from its nearest snapshot.  args: tenant, noun, at, text[] of targets.
 */
static void
replay_changed(Datum *args, EntitiesOutput *out)
{
	static const HlStreamWalk walk = {.target_column = 1,
		.start = replay_start, .row = replay_row, .keep = replay_keep, .finish = replay_finish};
	Oid			types[4] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID};
	ReplayStream rs = {.out = out};

	hl_prepare_cached(&changed_plan, CHANGED_QUERY, 4, types);
	hl_walk_streams(changed_plan, args, NULL, true, &walk, &rs);
}

/*
 * Undoing: the state before an event is known from the state after it and
 * the event's "before" (the prior values of the keys it patched) -- except
 * where "before" says null, which means both "the key was absent" and "the
 * key held a JSON null" (a Created event's data may hold nulls), and except
 * across a Deleted event, whose life's created_at is not in the event.
 * Streams that meet either case, or whose last UNDO_DEPTH events do not
 * reach back to `at`, are replayed forwards instead.
 */
typedef struct UndoStream
{
	text	   *target;
	int64		version;		/* version at `at` once found */
	bool		alive;
	Jsonb	   *state;			/* head's state, then undone */
	Jsonb	  **befores;		/* to undo, newest first */
	int			nbefores;
	bool		has_created_at;
	TimestampTz created_at;
	bool		has_updated_at;
	TimestampTz updated_at;
	int			rows;			/* events seen */
	bool		reached;		/* an event at or before `at` seen */
	bool		done;			/* answered, or sent to replay */
	bool		fallback;
} UndoStream;

typedef struct UndoWalk
{
	UndoStream	u;
	EntitiesOutput *out;
	TimestampTz at;
	ArrayBuildState *fallbacks; /* targets to replay instead */
	MemoryContext keep_cxt;		/* where those are kept */
} UndoWalk;

static bool
has_null_value(Jsonb *obj)
{
	JsonbIterator *it = JsonbIteratorInit(&obj->root);
	JsonbIteratorToken tok;
	JsonbValue	v;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_VALUE && v.type == jbvNull)
			return true;
	}
	return false;
}

/* fold the pending undos into the state (merge patches without nulls) */
static void
undo_fold(UndoStream *u)
{
	if (u->nbefores > 0 && u->state != NULL)
	{
		/* hl_fold_patches lets the last patch win: the oldest event */
		u->state = hl_fold_patches(u->state, u->befores, u->nbefores);
	}
	u->nbefores = 0;
}

/* One event of the stream, newest first. */
static void
undo_step(UndoStream *u, TimestampTz at, int64 version, text *type, Jsonb *before,
		  TimestampTz recorded_at)
{
	HlEventType et = hl_parse_event_type(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));

	if (u->done)
		return;
	u->rows++;

	if (recorded_at <= at)
	{
		/* the first event at or before `at` gives the version, the first
		 * entity event among them updated_at */
		if (!u->reached)
		{
			u->reached = true;
			u->version = version;
		}
		if (!u->alive)
			u->done = true;
		else if (et.kind != HL_NOT_ENTITY)
		{
			u->updated_at = recorded_at;
			u->has_updated_at = true;
			u->done = true;
		}
		return;
	}

	switch (et.kind)
	{
		case HL_NOT_ENTITY:
			break;
		case HL_VERB_CREATED:
			/* before its Created, this life did not exist */
			u->alive = false;
			u->state = NULL;
			u->nbefores = 0;
			u->has_created_at = false;
			break;
		case HL_VERB_DELETED:
			u->fallback = u->done = true;
			break;
		case HL_VERB_OTHER:
			if (!u->alive || before == NULL || has_null_value(before))
			{
				u->fallback = u->done = true;
				break;
			}
			u->befores[u->nbefores++] = before;
			break;
	}
}

static void
undo_finish(void *arg)
{
	UndoWalk   *w = arg;
	UndoStream *u = &w->u;

	if (!u->done && !u->reached && u->rows < UNDO_DEPTH)
	{
		/* every event of the stream is after `at`: it did not exist yet */
		u->done = true;
		return;
	}
	if (!u->done || u->fallback)
	{
		w->fallbacks = accumArrayResult(w->fallbacks, PointerGetDatum(u->target), false,
										TEXTOID, w->keep_cxt);
		return;
	}
	if (u->alive)
	{
		HlReplay	r;

		undo_fold(u);
		hl_replay_init(&r);
		r.version = u->version;
		r.alive = true;
		r.base = u->state;
		r.has_created_at = u->has_created_at;
		r.created_at = u->created_at;
		r.has_updated_at = u->has_updated_at;
		r.updated_at = u->updated_at;
		emit_replayed(w->out, u->target, &r);
	}
}

/* A stream's first row: its head. */
static void
undo_start(void *arg, text *tenant, text *target, HeapTuple tup, TupleDesc desc)
{
	UndoStream *u = &((UndoWalk *) arg)->u;
	bool		isnull;
	Datum		d;

	memset(u, 0, sizeof(*u));
	u->target = target;
	u->befores = palloc(UNDO_DEPTH * sizeof(Jsonb *));
	u->version = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	u->has_created_at = !isnull;
	u->created_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, 4, &isnull);
	u->alive = !isnull;
	u->state = isnull ? NULL : DatumGetJsonbP(d);
}

static void
undo_row(void *arg, HeapTuple tup, TupleDesc desc)
{
	UndoWalk   *w = arg;
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, 7, &isnull);
	Jsonb	   *before = isnull ? NULL : DatumGetJsonbP(d);

	undo_step(&w->u, w->at,
			  DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull)),
			  DatumGetTextPP(SPI_getbinval(tup, desc, 6, &isnull)),
			  before,
			  DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull)));
}

static void
undo_keep(void *arg)
{
	UndoStream *u = &((UndoWalk *) arg)->u;

	undo_fold(u);
	if (u->state != NULL)
		u->state = DatumGetJsonbP(datumCopy(JsonbPGetDatum(u->state), false, -1));
}

/*
 * Entities of the noun whose streams changed after at: undo the few events
 * after at from the head where that is exact, replay the rest.
 * args: tenant, noun, at.
 */
static void
undo_changed(Datum *args, EntitiesOutput *out)
{
	static const HlStreamWalk walk = {.target_column = 1,
		.start = undo_start, .row = undo_row, .keep = undo_keep, .finish = undo_finish};
	Oid			types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
	UndoWalk	w = {.out = out, .at = DatumGetTimestampTz(args[2]),
		.keep_cxt = CurrentMemoryContext};

	hl_prepare_cached(&undo_plan, UNDO_QUERY, 3, types);
	hl_walk_streams(undo_plan, args, NULL, true, &walk, &w);

	if (w.fallbacks != NULL)
	{
		Datum		replay_args[4];

		replay_args[0] = args[0];
		replay_args[1] = args[1];
		replay_args[2] = args[2];
		replay_args[3] = makeArrayResult(w.fallbacks, w.keep_cxt);
		replay_changed(replay_args, out);
	}
}

/*
 * entities_as_of(noun text, at timestamptz DEFAULT NULL, filter jsonb DEFAULT '{}',
 *                tenant text DEFAULT NULL)
 *   RETURNS TABLE (target, version, state, created_at, updated_at)
 */
Datum
headlessly_entities_as_of(PG_FUNCTION_ARGS)
{
	EntitiesOutput out;
	bool		pushed;
	Datum		args[4];
	Oid			types[4] = {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};

	hl_result_set_init(fcinfo, "entities_as_of", &out.rs);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("noun must not be NULL"),
				 errhint("Name the entities' noun, for example 'Contact'.")));
	if (PG_ARGISNULL(2))
		out.filter = hl_empty_object();
	else
	{
		out.filter = PG_GETARG_JSONB_P(2);
		if (!JB_ROOT_IS_OBJECT(out.filter))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("filter must be a JSON object"),
					 errdetail("The filter is matched with state @> filter against each entity's state."),
					 errhint("Pass '{}' to match every entity, or an object such as '{\"stage\": \"won\"}'.")));
	}

	args[0] = PointerGetDatum(hl_tenant_arg(fcinfo, 3));
	args[1] = PG_GETARG_DATUM(0);
	args[2] = JsonbPGetDatum(out.filter);

	pushed = hl_write_pending_heads();
	hl_spi_connect();

	if (PG_ARGISNULL(1))
	{
		hl_prepare_cached(&current_plan, CURRENT_QUERY, 3, types);
		hl_spi_into_result_set(current_plan, CURRENT_QUERY, 3, types, args, NULL, &out.rs);
	}
	else
	{
		Datum		changed_args[3];

		args[3] = PG_GETARG_DATUM(1);
		hl_prepare_cached(&unchanged_plan, UNCHANGED_QUERY, 4, types);
		hl_spi_into_result_set(unchanged_plan, UNCHANGED_QUERY, 4, types, args, NULL, &out.rs);

		changed_args[0] = args[0];
		changed_args[1] = args[1];
		changed_args[2] = args[3];
		undo_changed(changed_args, &out);
	}

	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	PG_RETURN_NULL();
}
