/*-------------------------------------------------------------------------
 *
 * rollback.c
 *	  events_rollback(): one new event that brings an entity back to a past
 *	  state.
 *
 * The log is never rewritten: rolling back appends the event that turns the
 * current state into as_of(target, to_time) -- Noun.Updated with a merge
 * patch (JSON null for keys to remove), Noun.Created if the entity is gone
 * now, or Noun.Deleted if it was gone then -- through an ordinary INSERT,
 * so the log's trigger applies every usual rule.  The event's metadata
 * records the point rolled back to.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "catalog/pg_type.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(headlessly_events_rollback);

#define INSERT_QUERY \
	"INSERT INTO " HL_SCHEMA ".events AS e (tenant, type, target, id, actor, data, metadata)" \
	" VALUES ($1, $2, $3, $4, $5, $6," \
	"         pg_catalog.jsonb_build_object('rollbackTo', $7::pg_catalog.timestamptz," \
	"                                       'rollbackToVersion', $8::pg_catalog.int8))" \
	" RETURNING e"

static SPIPlanPtr insert_plan = NULL;

static char *
timestamp_text(TimestampTz t)
{
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)));
}

/*
 * events_rollback(target text, to_time timestamptz, actor text DEFAULT NULL,
 *                 tenant text DEFAULT NULL) RETURNS headlessly.events
 */
Datum
headlessly_events_rollback(PG_FUNCTION_ARGS)
{
	Oid			insert_types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	JSONBOID, TIMESTAMPTZOID, INT8OID};
	Datum		args[8];
	char		nulls[8];
	text	   *tenant;
	text	   *target;
	char	   *target_str;
	TimestampTz to_time;
	HlPoint		point = {0};
	HlReplay	then;
	HlStreamHead head;
	Jsonb	   *then_state;
	const char *verb;
	Jsonb	   *data;
	bool		isnull;
	Datum		result;
	int			rc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("target must not be NULL"),
				 errhint("Name the entity to roll back.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("to_time must not be NULL"),
				 errhint("Pass the time whose state the entity should get back, as in as_of(target, to_time).")));

	/*
	 * Before the stream lock, which takes a transaction id: on a standby
	 * that would be an internal error rather than this one.
	 */
	PreventCommandIfReadOnly("headlessly.events_rollback()");

	target = PG_GETARG_TEXT_PP(0);
	target_str = text_to_cstring(target);
	to_time = PG_GETARG_TIMESTAMPTZ(1);
	tenant = hl_tenant_arg(fcinfo, 3);
	if (TIMESTAMP_NOT_FINITE(to_time))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("to_time must be finite, not %s", timestamp_text(to_time))));

	/* lock the stream as an append would, so that nothing moves meanwhile */
	hl_stream_lock(tenant, target, false, &head);
	if (head.is_new)
		ereport(ERROR,
				(errcode(ERRCODE_HL_ENTITY_STATE),
				 errmsg("target \"%s\" has no events", target_str),
				 errdetail("Tenant \"%s\" has never had an event about this target.",
						   text_to_cstring(tenant)),
				 errhint("Check the target and the tenant (argument or headlessly.tenant).")));
	if (head.noun == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HL_ENTITY_STATE),
				 errmsg("target \"%s\" is not an entity", target_str),
				 errdetail("Its stream has no Created event, so it has no state to roll back.")));

	hl_spi_connect();

	/* the stream is locked: read the past as of now, past our own lock */
	point.at = to_time;
	hl_entity_at(tenant, target, &point, false, &then, NULL);
	then_state = hl_replay_state(&then);

	if (then_state == NULL && !then.has_updated_at)
		ereport(ERROR,
				(errcode(ERRCODE_HL_ENTITY_STATE),
				 errmsg("%s \"%s\" did not exist yet at %s", head.noun, target_str, timestamp_text(to_time)),
				 errdetail("Its first Created event was recorded after that time."),
				 errhint("Roll back to a time at or after the entity's creation; as_of(target, to_time) shows the state a rollback would restore.")));

	if (then_state != NULL && head.state == NULL)
	{
		verb = "Created";
		data = then_state;
	}
	else if (then_state != NULL)
	{
		verb = "Updated";
		data = hl_changed_keys(head.state, then_state);
		if (data == NULL)
			data = hl_empty_object();
	}
	else if (head.state != NULL)
	{
		verb = "Deleted";
		data = hl_empty_object();
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_HL_ENTITY_STATE),
				 errmsg("%s \"%s\" was deleted at %s and is deleted now", head.noun, target_str,
						timestamp_text(to_time)),
				 errdetail("Its state then and now is the same: it does not exist."),
				 errhint("Roll back to a time when it existed to bring it back.")));

	hl_prepare_cached(&insert_plan, INSERT_QUERY, 8, insert_types);
	memset(nulls, ' ', sizeof(nulls));
	args[0] = PointerGetDatum(tenant);
	args[1] = CStringGetTextDatum(psprintf("%s.%s", head.noun, verb));
	args[2] = PointerGetDatum(target);
	/* nothing comes in between, we hold the lock; yet a hook might */
	args[3] = PointerGetDatum(hl_generate_event_id());
	hl_expect_version(DatumGetTextPP(args[3]), head.version + 1);
	if (PG_ARGISNULL(2))
		nulls[4] = 'n';
	else
		args[4] = PG_GETARG_DATUM(2);
	args[5] = JsonbPGetDatum(data);
	args[6] = TimestampTzGetDatum(to_time);
	args[7] = Int64GetDatum(then.version);

	rc = SPI_execute_plan(insert_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_QUERY);
	if (hl_forget_expected_version(DatumGetTextPP(args[3])) && SPI_processed > 0)
		hl_expectation_not_checked(DatumGetTextPP(args[3]));
	/* a BEFORE INSERT trigger of the owner's, firing before the log's own, skipped it */
	if (SPI_processed == 0)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();

	PG_RETURN_DATUM(result);
}
