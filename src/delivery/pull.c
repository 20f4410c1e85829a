/*-------------------------------------------------------------------------
 *
 * pull.c
 *	  Pull consumers: read(), ack(), nack(), redeliver(), replay(), and the
 *	  positions every subscription keeps.
 *
 * Never skip.  seq is drawn before commit, so a transaction that commits
 * late can put an event below what a consumer has already acked.  Events
 * are therefore handed out in (xact_id, seq) order and only below the
 * horizon, the xmin of a fresh snapshot: every transaction below it has
 * ended, and every transaction still to write gets an id at or above it.
 * So nothing can ever appear below a position once it has been handed out.
 * A long (or prepared) transaction anywhere in the cluster holds consumers
 * back; it never makes one skip.
 *
 * A position is (xact_id, seq) per (subscription, member).  One restored
 * from a dump (xact_id NULL: another cluster's transaction ids mean
 * nothing here) resumes after its seq until it is acked again.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "commands/trigger.h"
#include "executor/tstoreReceiver.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_read);
PG_FUNCTION_INFO_V1(headlessly_ack);
PG_FUNCTION_INFO_V1(headlessly_nack);
PG_FUNCTION_INFO_V1(headlessly_redeliver);
PG_FUNCTION_INFO_V1(headlessly_replay);
PG_FUNCTION_INFO_V1(headlessly_restored_position_check);
PG_FUNCTION_INFO_V1(headlessly_delivery_horizon);

#define POSITION_QUERY \
	"SELECT xact_id, seq, members FROM " HL_SCHEMA ".subscription_positions" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $2"

/* a new member starts where the slowest member of the subscription is */
#define NEW_POSITION_QUERY \
	"INSERT INTO " HL_SCHEMA ".subscription_positions (subscription, member, members, xact_id, seq)" \
	" SELECT $1, $2, $3, p.xact_id, p.seq FROM (" \
	"   SELECT x.xact_id, x.seq FROM " HL_SCHEMA ".subscription_positions x" \
	"    WHERE x.subscription OPERATOR(pg_catalog.=) $1" \
	"   UNION ALL SELECT s.start_xact, s.start_seq FROM " HL_SCHEMA ".subscriptions s" \
	"    WHERE s.name OPERATOR(pg_catalog.=) $1" \
	"   ORDER BY 1 NULLS FIRST, 2 LIMIT 1) p" \
	" ON CONFLICT DO NOTHING"

#define EVENTS_FILTER \
	"   AND e.xact_id OPERATOR(pg_catalog.<) " HL_HORIZON "" \
	"   AND ($3::pg_catalog.text IS NULL OR e.tenant OPERATOR(pg_catalog.=) $3)" \
	"   AND ($4::pg_catalog.text IS NULL OR e.target OPERATOR(pg_catalog.=) $4)" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $5)" \
	"   AND ($6 OPERATOR(pg_catalog.=) 1 OR " HL_SCHEMA ".group_member(e.tenant," \
	"        COALESCE(e.target, e.id), $6) OPERATOR(pg_catalog.=) $7)" \
	" ORDER BY e.xact_id, e.seq LIMIT $8"

#define NEW_EVENTS_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	EVENTS_FILTER

#define NEW_EVENTS_RESTORED_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE e.seq OPERATOR(pg_catalog.>) $2 AND $1::pg_catalog.xid8 IS NULL" \
	EVENTS_FILTER

#define DUE_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries d SET last_attempt_at = pg_catalog.clock_timestamp()" \
	" WHERE (d.subscription, d.event_id) IN (" \
	"   SELECT x.subscription, x.event_id FROM " HL_SCHEMA ".deliveries x" \
	"    WHERE x.subscription OPERATOR(pg_catalog.=) $1 AND x.member OPERATOR(pg_catalog.=) $2" \
	"      AND x.status OPERATOR(pg_catalog.=) 'failed'" \
	"      AND x.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()" \
	"    ORDER BY x.seq LIMIT $3)" \
	" RETURNING d.seq"

#define EVENTS_BY_SEQ_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE e.seq OPERATOR(pg_catalog.=) ANY ($1) ORDER BY e.seq"

#define EVENT_QUERY \
	"SELECT xact_id, id, tenant, target FROM " HL_SCHEMA ".events WHERE seq OPERATOR(pg_catalog.=) $1"

#define ADVANCE_QUERY \
	"UPDATE " HL_SCHEMA ".subscription_positions" \
	"   SET xact_id = $3, seq = $4, acked_at = pg_catalog.clock_timestamp()" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $2" \
	"   AND (xact_id IS NULL OR ROW(xact_id, seq) OPERATOR(pg_catalog.<) ROW($3, $4))"

/* retried events handed out since they became due are done */
#define ACK_RETRIES_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries" \
	"   SET status = 'delivered', next_attempt_at = NULL" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $2" \
	"   AND status OPERATOR(pg_catalog.=) 'failed' AND seq OPERATOR(pg_catalog.<=) $3" \
	"   AND last_attempt_at OPERATOR(pg_catalog.>=) next_attempt_at"

#define NACK_QUERY \
	"INSERT INTO " HL_SCHEMA ".deliveries AS d" \
	" (subscription, event_id, seq, tenant, target, member, members, attempts, status," \
	"  error, last_attempt_at, next_attempt_at)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, 1," \
	"  CASE WHEN $8 OPERATOR(pg_catalog.<=) 1 THEN 'dead' ELSE 'failed' END, $9," \
	"  pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $10)" \
	" ON CONFLICT (subscription, event_id) DO UPDATE" \
	"   SET attempts = d.attempts OPERATOR(pg_catalog.+) 1," \
	"       status = CASE WHEN d.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) $8" \
	"                     THEN 'dead' ELSE 'failed' END," \
	"       error = $9, last_attempt_at = pg_catalog.clock_timestamp()," \
	"       next_attempt_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)" \
	"           LEAST($10 OPERATOR(pg_catalog.*) pg_catalog.power(2, d.attempts)::pg_catalog.float8, $11)" \
	"   WHERE d.status OPERATOR(pg_catalog.<>) 'dead'"

#define REDELIVER_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries" \
	"   SET status = 'failed', attempts = 0, error = NULL, next_attempt_at = pg_catalog.clock_timestamp()" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'dead'" \
	"   AND ($2::pg_catalog.text IS NULL OR event_id OPERATOR(pg_catalog.=) $2)"

#define REPLAY_QUERY \
	"UPDATE " HL_SCHEMA ".subscription_positions SET xact_id = p.xact_id, seq = p.seq" \
	"  FROM (SELECT e.xact_id, e.seq OPERATOR(pg_catalog.-) 1 AS seq FROM " HL_SCHEMA ".events e" \
	"         WHERE e.recorded_at OPERATOR(pg_catalog.>=) $2" \
	"         UNION ALL SELECT " HL_HORIZON ", 0" \
	"         ORDER BY 1, 2 LIMIT 1) p" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1"

static SPIPlanPtr position_plan = NULL;
static SPIPlanPtr new_position_plan = NULL;
static SPIPlanPtr new_events_plan = NULL;
static SPIPlanPtr new_events_restored_plan = NULL;
static SPIPlanPtr due_plan = NULL;
static SPIPlanPtr events_by_seq_plan = NULL;
static SPIPlanPtr event_plan = NULL;
static SPIPlanPtr advance_plan = NULL;
static SPIPlanPtr ack_retries_plan = NULL;
static SPIPlanPtr nack_plan = NULL;
static SPIPlanPtr redeliver_plan = NULL;
static SPIPlanPtr replay_plan = NULL;

/* set while our own functions write positions: others are restores */
bool		hl_writing_positions = false;

/* The horizon --------------------------------------------------------------------- */

/*
 * The oldest transaction still running as the active snapshot sees it,
 * other than our own: every transaction below it has ended, and every
 * transaction that has yet to write gets an id at or above it.  The
 * snapshot's own xmin counts the calling transaction, whose reads would
 * then never see what later transactions commit while it waits.
 */
Datum
headlessly_delivery_horizon(PG_FUNCTION_ARGS)
{
	Snapshot	snap = GetActiveSnapshot();
	TransactionId horizon;
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (snap == NULL)
		elog(ERROR, "headlessly.delivery_horizon() needs an active snapshot");
	horizon = snap->xmax;
	for (uint32 i = 0; i < snap->xcnt; i++)
	{
		if (TransactionIdPrecedes(snap->xip[i], horizon))
			horizon = snap->xip[i];
	}
	/* widen to 64 bits, relative to the next xid as pg_current_snapshot() does */
	if (horizon > XidFromFullTransactionId(next))
		epoch--;
	PG_RETURN_FULLTRANSACTIONID(FullTransactionIdFromEpochAndXid(epoch, horizon));
}

/* Positions ---------------------------------------------------------------------- */

static void
check_member(int member, int members)
{
	if (members < 1 || member < 0 || member >= members)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member %d of %d is out of range", member, members),
				 errdetail("Members of a group of n are numbered 0 to n - 1.")));
}

/*
 * The position of one member, made if it has none.  With members = 0 the
 * member's group size is not checked.  *xact is NULL (*restored) for a
 * position restored from a dump.
 */
void
hl_position_of(const HlSubscription *sub, int member, int members,
			   Datum *xact, int64 *seq, bool *restored)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, INT4OID};
	Datum		args[3];
	bool		isnull;
	int			known;
	int			rc;

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = Int32GetDatum(Max(members, 1));
	hl_prepare_cached(&position_plan, POSITION_QUERY, 2, argtypes);
	rc = hl_run_as_log_owner(position_plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, POSITION_QUERY);
	if (SPI_processed == 0)
	{
		hl_prepare_cached(&new_position_plan, NEW_POSITION_QUERY, 3, argtypes);
		hl_writing_positions = true;
		PG_TRY();
		{
			rc = hl_run_as_log_owner(new_position_plan, args, NULL, false, 0);
		}
		PG_FINALLY();
		{
			hl_writing_positions = false;
		}
		PG_END_TRY();
		hl_spi_check(rc, SPI_OK_INSERT, NEW_POSITION_QUERY);
		rc = hl_run_as_log_owner(position_plan, args, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, POSITION_QUERY);
		if (SPI_processed == 0)
			elog(ERROR, "position of member %d of subscription \"%s\" vanished",
				 member, sub->name);
	}
	*xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, restored);
	*seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	known = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (members > 0 && known != members)
		ereport(ERROR,
				(errcode(ERRCODE_HL_SUBSCRIPTION),
				 errmsg("subscription \"%s\" is read by a group of %d members, not %d",
						sub->name, known, members),
				 errdetail("Each member's position belongs to the group it was made in."),
				 errhint("Read with members => %d, or make a new subscription for the new group.",
						 known)));
}

/*
 * A position written by anything but our functions is a restore: its
 * transaction id came from another cluster.  It resumes after its seq.
 */
Datum
headlessly_restored_position_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TupleDesc	desc;
	HeapTuple	row;
	int			attno;
	Datum		value = (Datum) 0;
	bool		isnull = true;

	trigdata = hl_trigger_data(fcinfo, "headlessly.restored_position_check()",
							   HL_FIRED_BEFORE | HL_FIRED_ROW | HL_FIRED_INSERT);
	row = trigdata->tg_trigtuple;
	if (hl_writing_positions)
		return PointerGetDatum(row);

	desc = RelationGetDescr(trigdata->tg_relation);
	if (trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "%s takes the name of the column to clear", "headlessly.restored_position_check()");
	attno = SPI_fnumber(desc, trigdata->tg_trigger->tgargs[0]);
	if (attno <= 0)
		elog(ERROR, "column \"%s\" is missing from %s", trigdata->tg_trigger->tgargs[0],
			 RelationGetRelationName(trigdata->tg_relation));
	row = heap_modify_tuple_by_cols(row, desc, 1, &attno, &value, &isnull);
	return PointerGetDatum(row);
}

/* Reading ------------------------------------------------------------------------ */

static HlSubscription *
pull_subscription(const char *name, bool for_update)
{
	HlSubscription *sub = palloc(sizeof(HlSubscription));

	hl_subscription_get(name, for_update, sub);
	hl_subscription_check_access(sub);
	if (sub->kind != HL_SUB_PULL)
		ereport(ERROR,
				(errcode(ERRCODE_HL_SUBSCRIPTION),
				 errmsg("subscription \"%s\" is a %s subscription, not a pull consumer",
						name, HL_KIND_NAME(sub->kind)),
				 errdetail("Its events are delivered for it; read, ack and nack are for subscriptions without url."),
				 errhint("headlessly.subscription_status() shows how its deliveries went.")));
	return sub;
}

/* Run a plan whose rows are events into the result, as the given role. */
static uint64
events_into_result(SPIPlanPtr plan, int nargs, Oid *types, Datum *args, const char *nulls,
				   Oid role, HlResultSet *rs)
{
	DestReceiver *dest = CreateTuplestoreDestReceiver();
	ParamListInfo params = makeParamList(nargs);
	SPIExecuteOptions options;
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = args[i];
		params->params[i].isnull = nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	params->numParams = nargs;
	SetTuplestoreDestReceiverParams(dest, rs->store, rs->cxt, false, NULL, NULL);

	memset(&options, 0, sizeof(options));
	options.params = params;
	/* not read-only: each try takes a fresh snapshot, and so a fresh horizon */
	options.read_only = false;
	options.dest = dest;
	hl_become_role(role, &saved);
	rc = SPI_execute_plan_extended(plan, &options);
	hl_restore_user(&saved);
	MemoryContextSwitchTo(caller);
	hl_spi_check(rc, SPI_OK_SELECT, "reading events");
	dest->rDestroy(dest);
	return SPI_processed;
}

/* One try of read(): due retries of this member first, then new events. */
static uint64
read_once(const HlSubscription *sub, int max_events, int member, int members,
		  HlResultSet *rs)
{
	Oid			due_types[3] = {TEXTOID, INT4OID, INT4OID};
	Datum		due_args[3];
	Oid			types[8] = {XID8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID};
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	uint64		got = 0;
	bool		restored;
	int64		seq;
	int			nestlevel;
	int			rc;

	if (strcmp(sub->state, "active") != 0)
		return 0;

	due_args[0] = CStringGetTextDatum(sub->name);
	due_args[1] = Int32GetDatum(member);
	due_args[2] = Int32GetDatum(max_events);
	hl_prepare_cached(&due_plan, DUE_QUERY, 3, due_types);
	rc = hl_run_as_log_owner(due_plan, due_args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE_RETURNING, DUE_QUERY);
	if (SPI_processed > 0)
	{
		Datum	   *seqs = palloc(SPI_processed * sizeof(Datum));
		int			n = (int) SPI_processed;
		Oid			seq_types[1] = {INT8ARRAYOID};
		Datum		seq_args[1];
		bool		isnull;

		for (int i = 0; i < n; i++)
			seqs[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		seq_args[0] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL,
													  TYPALIGN_DOUBLE));
		hl_prepare_cached(&events_by_seq_plan, EVENTS_BY_SEQ_QUERY, 1, seq_types);
		got += events_into_result(events_by_seq_plan, 1, seq_types, seq_args, "  ",
								  sub->owner, rs);
	}
	if ((int) got >= max_events)
		return got;

	hl_position_of(sub, member, members, &args[0], &seq, &restored);
	if (restored)
	{
		nulls[0] = 'n';
		args[0] = (Datum) 0;
	}
	args[1] = Int64GetDatum(seq);
	args[2] = PointerGetDatum(sub->tenant);
	nulls[2] = sub->tenant ? ' ' : 'n';
	args[3] = PointerGetDatum(sub->target);
	nulls[3] = sub->target ? ' ' : 'n';
	args[4] = CStringGetTextDatum(sub->pattern);
	args[5] = Int32GetDatum(members);
	args[6] = Int32GetDatum(member);
	args[7] = Int64GetDatum(max_events - (int) got);
	nestlevel = hl_ordered_scan_begin();
	if (restored)
	{
		hl_prepare_cached(&new_events_restored_plan, NEW_EVENTS_RESTORED_QUERY, 8, types);
		got += events_into_result(new_events_restored_plan, 8, types, args, nulls, sub->owner, rs);
	}
	else
	{
		hl_prepare_cached(&new_events_plan, NEW_EVENTS_QUERY, 8, types);
		got += events_into_result(new_events_plan, 8, types, args, nulls, sub->owner, rs);
	}
	hl_ordered_scan_end(nestlevel);
	return got;
}

Datum
headlessly_read(PG_FUNCTION_ARGS)
{
	char	   *name;
	int			max_events = PG_ARGISNULL(1) ? 100 : PG_GETARG_INT32(1);
	int			member = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	int			members = PG_ARGISNULL(3) ? 1 : PG_GETARG_INT32(3);
	Interval   *wait = PG_ARGISNULL(4) ? NULL : PG_GETARG_INTERVAL_P(4);
	TimestampTz deadline = 0;
	long		nap_ms = 5;
	HlSubscription *sub;
	HlResultSet rs;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subscription name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (max_events < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be at least 1, not %d", max_events)));
	check_member(member, members);
	if (wait != NULL)
	{
		int64		usecs = wait->time + (wait->day * USECS_PER_DAY) +
			(int64) wait->month * DAYS_PER_MONTH * USECS_PER_DAY;

		if (usecs < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("wait must not be negative")));
		if (usecs > 0)
		{
			/* a snapshot fixed for the transaction would never see new events */
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
						 errmsg("read() with wait needs READ COMMITTED"),
						 errdetail("In REPEATABLE READ or SERIALIZABLE the transaction's snapshot never shows events committed after it began."),
						 errhint("Read with wait => '0', or in a READ COMMITTED transaction.")));
			deadline = GetCurrentTimestamp() + usecs;
		}
	}

	hl_result_set_init(fcinfo, "headlessly.read()", &rs);
	hl_spi_connect();
	sub = pull_subscription(name, false);
	for (;;)
	{
		long		remaining;

		if (read_once(sub, max_events, member, members, &rs) > 0 || deadline == 0)
			break;
		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining <= 0)
			break;
		/* poll: appends in other sessions have no way to wake us without preloading */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(nap_ms, remaining), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		nap_ms = Min(nap_ms * 2, 100);
	}
	SPI_finish();
	return (Datum) 0;
}

/* Acking ------------------------------------------------------------------------- */

typedef struct AckedEvent
{
	Datum		xact;
	text	   *id;
	text	   *tenant;
	text	   *target;
} AckedEvent;

static void
find_event(int64 seq, AckedEvent *ev)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	int			rc;

	args[0] = Int64GetDatum(seq);
	hl_prepare_cached(&event_plan, EVENT_QUERY, 1, argtypes);
	rc = hl_run_as_log_owner(event_plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, EVENT_QUERY);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("there is no event with seq " INT64_FORMAT, seq),
				 errhint("Ack the seq of an event that read() returned.")));
	ev->xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	ev->id = DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	ev->tenant = DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	ev->target = NULL;
	{
		Datum		t = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);

		if (!isnull)
			ev->target = DatumGetTextPCopy(t);
	}
}

/* Move the member's position through the event; never back. */
static void
advance(const HlSubscription *sub, int member, int64 seq, const AckedEvent *ev)
{
	Oid			argtypes[4] = {TEXTOID, INT4OID, XID8OID, INT8OID};
	Datum		args[4];
	Datum		xact;
	int64		pos;
	bool		restored;
	int			rc;

	hl_position_of(sub, member, 0, &xact, &pos, &restored);
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = ev->xact;
	args[3] = Int64GetDatum(seq);
	hl_prepare_cached(&advance_plan, ADVANCE_QUERY, 4, argtypes);
	rc = hl_run_as_log_owner(advance_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, ADVANCE_QUERY);

	args[2] = Int64GetDatum(seq);
	{
		Oid			rtypes[3] = {TEXTOID, INT4OID, INT8OID};

		hl_prepare_cached(&ack_retries_plan, ACK_RETRIES_QUERY, 3, rtypes);
	}
	rc = hl_run_as_log_owner(ack_retries_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, ACK_RETRIES_QUERY);
}

Datum
headlessly_ack(PG_FUNCTION_ARGS)
{
	char	   *name;
	int64		seq;
	int			member = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	HlSubscription *sub;
	AckedEvent	ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and seq of an ack must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	seq = PG_GETARG_INT64(1);
	check_member(member, member + 1);

	hl_spi_connect();
	sub = pull_subscription(name, false);
	find_event(seq, &ev);
	advance(sub, member, seq, &ev);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * A delay of ms milliseconds as an interval, +-20 % with jitter: the n-th
 * retry waits base * 2^(n - 1), capped at the maximum.
 */
static Datum
retry_delay(int ms_setting, bool jitter)
{
	double		ms = ms_setting;

	if (jitter)
		ms *= 0.8 + 0.4 * pg_prng_double(&pg_global_prng_state);
	return DirectFunctionCall2(interval_mul,
							   DirectFunctionCall3(interval_in, CStringGetDatum("1 ms"),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
							   Float8GetDatum(ms));
}

Datum
headlessly_nack(PG_FUNCTION_ARGS)
{
	char	   *name;
	int64		seq;
	int			member = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3);
	Oid			argtypes[11] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT4OID,
		INT4OID, INT4OID, TEXTOID, INTERVALOID, INTERVALOID};
	Datum		args[11];
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	HlSubscription *sub;
	AckedEvent	ev;
	Datum		xact;
	int64		pos;
	bool		restored;
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and seq of a nack must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	seq = PG_GETARG_INT64(1);
	check_member(member, member + 1);

	hl_spi_connect();
	sub = pull_subscription(name, false);
	find_event(seq, &ev);
	hl_position_of(sub, member, 0, &xact, &pos, &restored);

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(ev.id);
	args[2] = Int64GetDatum(seq);
	args[3] = PointerGetDatum(ev.tenant);
	args[4] = PointerGetDatum(ev.target);
	nulls[4] = ev.target ? ' ' : 'n';
	args[5] = Int32GetDatum(member);
	{
		/* the group size the member reads with */
		Oid			t[2] = {TEXTOID, INT4OID};
		Datum		a[2];
		bool		isnull;

		a[0] = args[0];
		a[1] = args[5];
		hl_prepare_cached(&position_plan, POSITION_QUERY, 2, t);
		rc = hl_run_as_log_owner(position_plan, a, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, POSITION_QUERY);
		args[6] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	}
	args[7] = Int32GetDatum(sub->max_attempts);
	args[8] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[8] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[9] = retry_delay(hl_retry_base_delay, true);
	args[10] = retry_delay(hl_retry_max_delay, false);
	hl_prepare_cached(&nack_plan, NACK_QUERY, 11, argtypes);
	rc = hl_run_as_log_owner(nack_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT, NACK_QUERY);

	/* the event is acked through, its retry aside */
	advance(sub, member, seq, &ev);
	SPI_finish();
	PG_RETURN_VOID();
}

Datum
headlessly_redeliver(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	HlSubscription sub;
	int			rc;
	uint64		n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subscription name must not be NULL")));
	hl_spi_connect();
	hl_subscription_get(text_to_cstring(PG_GETARG_TEXT_PP(0)), true, &sub);
	hl_subscription_check_access(&sub);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	hl_prepare_cached(&redeliver_plan, REDELIVER_QUERY, 2, argtypes);
	rc = hl_run_as_log_owner(redeliver_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, REDELIVER_QUERY);
	n = SPI_processed;
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

Datum
headlessly_replay(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		args[2];
	HlSubscription sub;
	Datum		xact;
	int64		pos;
	bool		restored;
	int			rc;

	hl_spi_connect();
	hl_subscription_get(text_to_cstring(PG_GETARG_TEXT_PP(0)), true, &sub);
	hl_subscription_check_access(&sub);
	/* a subscription never read from gets its member 0 moved too */
	hl_position_of(&sub, 0, 0, &xact, &pos, &restored);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	hl_prepare_cached(&replay_plan, REPLAY_QUERY, 2, argtypes);
	rc = hl_run_as_log_owner(replay_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, REPLAY_QUERY);
	SPI_finish();
	PG_RETURN_VOID();
}
