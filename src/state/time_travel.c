/*-------------------------------------------------------------------------
 *
 * time_travel.c
 *	  as_of() and as_of_version(): one entity's state in the past.
 *
 * The present is read from the stream heads (headlessly.streams), which
 * every append maintains.  A point in the past starts from the stream head
 * when nothing changed after it, else from the nearest snapshot at or
 * before it (snapshot.c), and replays the events after that snapshot up to
 * the point (replay.c): never more than the events between two snapshots.
 *
 * These functions are STABLE and read with the calling query's snapshot
 * (SPI read-only), so one call never mixes two states of the log, and a
 * transaction sees its own appends.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(headlessly_as_of);
PG_FUNCTION_INFO_V1(headlessly_as_of_version);

#define HEAD_QUERY \
	"SELECT version, last_recorded_at, noun, state, created_at, updated_at" \
	"  FROM " HL_SCHEMA ".streams" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND target OPERATOR(pg_catalog.=) $2"

/* recorded_at is checked too: by version, $5 is infinity */
#define REPLAY_QUERY \
	"SELECT version, type, data, recorded_at" \
	"  FROM " HL_SCHEMA ".events" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1" \
	"   AND target OPERATOR(pg_catalog.=) $2" \
	"   AND version OPERATOR(pg_catalog.>) $3" \
	"   AND version OPERATOR(pg_catalog.<=) $4" \
	"   AND recorded_at OPERATOR(pg_catalog.<=) $5" \
	" ORDER BY version"

static SPIPlanPtr head_plan = NULL;
static SPIPlanPtr replay_plan = NULL;

/* the head as the replay right after its last version */
static void
replay_from_pending(HlReplay *r, const HlStreamHead *head)
{
	hl_replay_init(r);
	r->version = head->version;
	r->has_last_recorded_at = head->has_last_recorded_at;
	r->last_recorded_at = head->last_recorded_at;
	r->alive = head->state != NULL;
	r->base = head->state;
	r->has_created_at = head->has_created_at;
	r->created_at = head->created_at;
	r->has_updated_at = head->has_updated_at;
	r->updated_at = head->updated_at;
}

/*
 * The stream's head into *head (a replay right after its last version),
 * and its noun; false if the stream does not exist.  A head this
 * transaction has not written yet is read from memory.
 */
static bool
read_head(text *tenant, text *target, bool read_only, HlReplay *head, char **noun)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {PointerGetDatum(tenant), PointerGetDatum(target)};
	HlStreamHead pending;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int			rc;

	if (hl_stream_pending_head(tenant, target, &pending))
	{
		replay_from_pending(head, &pending);
		*noun = pending.noun;
		return true;
	}

	hl_prepare_cached(&head_plan, HEAD_QUERY, 2, types);
	rc = SPI_execute_plan(head_plan, args, NULL, read_only, 1);
	hl_spi_check(rc, SPI_OK_SELECT, HEAD_QUERY);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	hl_replay_init(head);
	hl_replay_start_from_row(head, DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)),
							 tup, desc, 2);
	d = SPI_getbinval(tup, desc, 3, &isnull);
	*noun = isnull ? NULL : TextDatumGetCString(d);
	return true;
}

/*
 * The entity (tenant, target) at a point: *r holds the replay right after
 * the last event at or before it (hl_replay_state gives the state).  Returns
 * false, leaving *r empty, if the stream does not exist.  *noun (if asked
 * for) gets the stream's noun, NULL if it never was an entity.  Must run
 * inside SPI; results live in SPI memory.
 */
bool
hl_entity_at(text *tenant, text *target, const HlPoint *point, bool read_only,
			 HlReplay *r, char **noun)
{
	Oid			replay_types[5] = {TEXTOID, TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID};
	Datum		args[5];
	HlReplay	head;
	char	   *head_noun;
	int64		upper;
	int			rc;
	bool		isnull;
	SPITupleTable *tuptable;

	hl_prepare_cached(&replay_plan, REPLAY_QUERY, 5, replay_types);

	if (!read_head(tenant, target, read_only, &head, &head_noun))
	{
		hl_replay_init(r);
		if (noun)
			*noun = NULL;
		return false;
	}
	if (noun)
		*noun = head_noun;
	args[0] = PointerGetDatum(tenant);
	args[1] = PointerGetDatum(target);

	/* nothing changed since the point: the head is the answer */
	if (point->present ||
		(point->by_version && point->version >= head.version) ||
		(!point->by_version && head.has_last_recorded_at &&
		 head.last_recorded_at <= point->at))
	{
		*r = head;
		return true;
	}

	hl_snapshot_find(tenant, target, point, read_only, r, &upper);
	upper = Min(upper, head.version);
	if (upper <= r->version)
		return true;

	args[2] = Int64GetDatum(r->version);
	args[3] = Int64GetDatum(upper);
	args[4] = TimestampTzGetDatum(point->by_version ? DT_NOEND : point->at);
	rc = SPI_execute_plan(replay_plan, args, NULL, read_only, 0);
	hl_spi_check(rc, SPI_OK_SELECT, REPLAY_QUERY);

	tuptable = SPI_tuptable;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;

		hl_replay_apply(r,
						DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)),
						DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
						DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)),
						DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull)));
	}
	return true;
}

/*
 * Before a STABLE function reads stream heads with SQL: write the heads
 * this transaction keeps in memory (stream.c).  Its queries see the calling
 * statement's snapshot, taken before that write, so the snapshot is moved
 * past it: a copy with the new command id is pushed.  Returns whether one
 * was; the caller pops it (PopActiveSnapshot) when its queries are done.
 */
bool
hl_write_pending_heads(void)
{
	if (!hl_streams_flush())
		return false;
	CommandCounterIncrement();
	PushCopiedSnapshot(GetActiveSnapshot());
	UpdateActiveSnapshotCommandId();
	return true;
}

/* The state at a point, copied out of SPI memory; NULL if none. */
static Jsonb *
state_at(text *tenant, text *target, const HlPoint *point)
{
	HlReplay	r;
	Jsonb	   *state;
	Jsonb	   *result = NULL;

	hl_spi_connect();

	hl_entity_at(tenant, target, point, true, &r, NULL);
	state = hl_replay_state(&r);
	if (state != NULL)
		result = DatumGetJsonbP(SPI_datumTransfer(JsonbPGetDatum(state), false, -1));

	SPI_finish();
	return result;
}

/*
 * as_of(target text, at timestamptz DEFAULT NULL, tenant text DEFAULT NULL)
 */
Datum
headlessly_as_of(PG_FUNCTION_ARGS)
{
	HlPoint		point = {0};
	Jsonb	   *state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	if (PG_ARGISNULL(1))
		point.present = true;
	else
	{
		point.at = PG_GETARG_TIMESTAMPTZ(1);
		/* -infinity: before everything */
		if (TIMESTAMP_IS_NOBEGIN(point.at))
			PG_RETURN_NULL();
	}

	state = state_at(hl_tenant_arg(fcinfo, 2), PG_GETARG_TEXT_PP(0), &point);
	if (state == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(state);
}

/*
 * as_of_version(target text, version bigint, tenant text DEFAULT NULL)
 */
Datum
headlessly_as_of_version(PG_FUNCTION_ARGS)
{
	HlPoint		point = {0};
	Jsonb	   *state;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();

	point.by_version = true;
	point.version = PG_GETARG_INT64(1);
	if (point.version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version " INT64_FORMAT " is negative", point.version),
				 errdetail("Versions start at 1; version 0 is the stream before its first event."),
				 errhint("Pass a version from the events' version column.")));
	if (point.version == 0)
		PG_RETURN_NULL();

	state = state_at(hl_tenant_arg(fcinfo, 2), PG_GETARG_TEXT_PP(0), &point);
	if (state == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(state);
}
