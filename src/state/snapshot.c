/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Snapshots of entity state every headlessly.snapshot_interval versions.
 *
 * A snapshot is the state of a stream right after one version: state (NULL
 * when the entity was not alive), created_at, updated_at, and the version's
 * recorded_at.  Reading the past starts from the nearest snapshot at or
 * before the point asked for and replays at most the events up to the next
 * snapshot, so its cost does not grow with the length of the stream.
 *
 * Snapshots are derived data: written by the append that reaches a multiple
 * of the interval, in the same transaction, and rebuilt from the log by
 * headlessly.rebuild_state().  Replay never trusts them to exist: with none,
 * it starts from the stream's first event.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"

int			hl_snapshot_interval = 100;

void
hl_state_init(void)
{
	DefineCustomIntVariable("headlessly.snapshot_interval",
							"Versions between two snapshots of an entity's state.",
							"as_of and entities_as_of replay at most this many events "
							"from the nearest snapshot; 0 writes no snapshots.",
							&hl_snapshot_interval,
							100, 0, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

#define WRITE_QUERY \
	"INSERT INTO " HL_SCHEMA ".snapshots" \
	" (tenant, target, version, recorded_at, state, created_at, updated_at)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7)" \
	" ON CONFLICT (tenant, target, version) DO NOTHING"

/*
 * The nearest snapshot at or before the point, and the version of the first
 * snapshot after it (every version from there on is after the point too).
 * recorded_at never decreases along a stream, so ordering by (recorded_at,
 * version) is ordering by version, and the index serves both.
 */
#define FIND_BY_TIME_QUERY \
	"(SELECT true, version, recorded_at, state, created_at, updated_at" \
	"   FROM " HL_SCHEMA ".snapshots" \
	"  WHERE tenant OPERATOR(pg_catalog.=) $1 AND target OPERATOR(pg_catalog.=) $2" \
	"    AND recorded_at OPERATOR(pg_catalog.<=) $3" \
	"  ORDER BY recorded_at DESC, version DESC LIMIT 1)" \
	" UNION ALL " \
	"(SELECT false, version, NULL, NULL, NULL, NULL" \
	"   FROM " HL_SCHEMA ".snapshots" \
	"  WHERE tenant OPERATOR(pg_catalog.=) $1 AND target OPERATOR(pg_catalog.=) $2" \
	"    AND recorded_at OPERATOR(pg_catalog.>) $3" \
	"  ORDER BY recorded_at, version LIMIT 1)"

#define FIND_BY_VERSION_QUERY \
	"SELECT true, version, recorded_at, state, created_at, updated_at" \
	"  FROM " HL_SCHEMA ".snapshots" \
	" WHERE tenant OPERATOR(pg_catalog.=) $1 AND target OPERATOR(pg_catalog.=) $2" \
	"   AND version OPERATOR(pg_catalog.<=) $3" \
	" ORDER BY version DESC LIMIT 1"

static SPIPlanPtr write_plan = NULL;
static SPIPlanPtr find_by_time_plan = NULL;
static SPIPlanPtr find_by_version_plan = NULL;

/*
 * Called by the append trigger with the stream's new head: write a snapshot
 * when the version is a multiple of the interval.  Streams that never had
 * an entity (page views on a target, say) get none: they have no state.
 */
void
hl_snapshot_maybe_write(text *tenant, text *target, const HlStreamHead *head)
{
	HlReplay	r;

	if (hl_snapshot_interval <= 0 || head->version % hl_snapshot_interval != 0 ||
		head->noun == NULL)
		return;

	hl_replay_init(&r);
	r.version = head->version;
	r.last_recorded_at = head->last_recorded_at;
	r.has_last_recorded_at = head->has_last_recorded_at;
	r.created_at = head->created_at;
	r.has_created_at = head->has_created_at;
	r.updated_at = head->updated_at;
	r.has_updated_at = head->has_updated_at;
	hl_snapshot_write(tenant, target, &r, head->state);
}

/*
 * Write one snapshot; an existing one for the version stays.  Snapshots are
 * the extension's derived data, written as the log's owner.
 */
void
hl_snapshot_write(text *tenant, text *target, const HlReplay *r, Jsonb *state)
{
	Oid			argtypes[7] = {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[7];
	char		nulls[7];
	HlSavedUser saved;
	int			rc;

	if (!r->has_last_recorded_at)
		elog(ERROR, "snapshot of version " INT64_FORMAT " has no recorded_at", r->version);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = PointerGetDatum(tenant);
	args[1] = PointerGetDatum(target);
	args[2] = Int64GetDatum(r->version);
	args[3] = TimestampTzGetDatum(r->last_recorded_at);
	args[4] = state ? JsonbPGetDatum(state) : (Datum) 0;
	if (state == NULL)
		nulls[4] = 'n';
	args[5] = TimestampTzGetDatum(r->created_at);
	if (!r->has_created_at)
		nulls[5] = 'n';
	args[6] = TimestampTzGetDatum(r->updated_at);
	if (!r->has_updated_at)
		nulls[6] = 'n';

	hl_spi_connect();
	hl_prepare_cached(&write_plan, WRITE_QUERY, 7, argtypes);
	hl_become_log_owner(&saved);
	rc = SPI_execute_plan(write_plan, args, nulls, false, 0);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_INSERT, WRITE_QUERY);
	SPI_finish();
}

/*
 * Start *r from the nearest snapshot at or before the point (left as a
 * stream without events if there is none), and set *upper to the last
 * version a replay from there may need.  Returns whether a snapshot was
 * found.  Must run inside SPI; *r lives in the caller's memory context
 * except its state, which is in SPI memory.
 */
bool
hl_snapshot_find(text *tenant, text *target, const HlPoint *point,
				 bool read_only, HlReplay *r, int64 *upper)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, point->by_version ? INT8OID : TIMESTAMPTZOID};
	Datum		args[3];
	SPIPlanPtr	plan;
	const char *query;
	bool		found = false;
	int			rc;

	Assert(!point->present);
	args[0] = PointerGetDatum(tenant);
	args[1] = PointerGetDatum(target);
	if (point->by_version)
	{
		query = FIND_BY_VERSION_QUERY;
		plan = hl_prepare_cached(&find_by_version_plan, query, 3, argtypes);
		args[2] = Int64GetDatum(point->version);
		*upper = point->version;
	}
	else
	{
		query = FIND_BY_TIME_QUERY;
		plan = hl_prepare_cached(&find_by_time_plan, query, 3, argtypes);
		args[2] = TimestampTzGetDatum(point->at);
		*upper = PG_INT64_MAX;
	}

	hl_replay_init(r);
	rc = SPI_execute_plan(plan, args, NULL, read_only, 0);
	hl_spi_check(rc, SPI_OK_SELECT, query);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		at_or_before = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		int64		version = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));

		if (!at_or_before)
		{
			*upper = version - 1;
			continue;
		}
		found = true;
		hl_replay_start_from_row(r, version, tup, desc, 3);
	}
	return found;
}
