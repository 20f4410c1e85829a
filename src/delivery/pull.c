/*-------------------------------------------------------------------------
 *
 * pull.c
 *	  Pull consumers: read(), ack(), nack(), redeliver(), replay(), and the
 *	  positions every subscription keeps.
 *
 * Events are handed out in (xact_id, seq) order, below the horizon, after
 * the member's position (position.c: why this never skips, across a
 * restore too).
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"
#include "tenancy/tenancy.h"

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
PG_FUNCTION_INFO_V1(headlessly_delivery_horizon);

#define EVENTS_WHERE \
	"   AND e.xact_id OPERATOR(pg_catalog.<) " HL_HORIZON "" \
	"   AND ($3::pg_catalog.text IS NULL OR e.tenant OPERATOR(pg_catalog.=) $3)" \
	"   AND ($4::pg_catalog.text IS NULL OR e.target OPERATOR(pg_catalog.=) $4)" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $5)" \
	"   AND ($6 OPERATOR(pg_catalog.=) 1 OR " HL_SCHEMA ".group_member(e.tenant," \
	"        COALESCE(e.target, e.id), $6) OPERATOR(pg_catalog.=) $7)"
#define EVENTS_FILTER EVENTS_WHERE " ORDER BY e.xact_id, e.seq LIMIT $8"

#define NEW_EVENTS_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	EVENTS_FILTER

#define NEW_EVENTS_RESTORED_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE e.seq OPERATOR(pg_catalog.>) $2 AND $1::pg_catalog.xid8 IS NULL" \
	EVENTS_FILTER

/*
 * Held and retried events of the member that may go out now: a retry once
 * due, unless an older event of its target still awaits a retry; a held
 * event once no event of its target awaits one.  A dead letter holds
 * nothing back.  The targets awaiting a retry are found once (materialised:
 * never rescanned per row, whatever the statistics say), not probed for
 * each held row: a target's held backlog can be long.
 */
#define DUE_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries d SET last_attempt_at = pg_catalog.clock_timestamp()" \
	" WHERE (d.subscription, d.event_id) OPERATOR(pg_catalog.=) ANY (" \
	"   WITH f AS MATERIALIZED (SELECT y.tenant, y.target, pg_catalog.min(y.seq) AS seq" \
	"                             FROM " HL_SCHEMA ".deliveries y" \
	"                            WHERE y.subscription OPERATOR(pg_catalog.=) $1" \
	"                              AND y.status OPERATOR(pg_catalog.=) 'failed'" \
	"                            GROUP BY y.tenant, y.target)" \
	"   SELECT x.subscription, x.event_id FROM " HL_SCHEMA ".deliveries x" \
	"     LEFT JOIN f ON f.tenant OPERATOR(pg_catalog.=) x.tenant AND f.target OPERATOR(pg_catalog.=) x.target" \
	"    WHERE x.subscription OPERATOR(pg_catalog.=) $1 AND x.member OPERATOR(pg_catalog.=) $2" \
	"      AND (x.status OPERATOR(pg_catalog.=) 'pending'" \
	"           OR (x.status OPERATOR(pg_catalog.=) 'failed'" \
	"               AND x.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()))" \
	"      AND (f.seq IS NULL OR (x.status OPERATOR(pg_catalog.=) 'failed'" \
	"                             AND f.seq OPERATOR(pg_catalog.>=) x.seq))" \
	"    ORDER BY x.seq LIMIT $3)" \
	" RETURNING d.seq"

/* whether any event of the subscription awaits a retry or is held: usually none */
#define ANY_HELD_QUERY \
	"SELECT FROM " HL_SCHEMA ".deliveries d WHERE d.subscription OPERATOR(pg_catalog.=) $1" \
	"   AND d.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}') LIMIT 1"

/* which of these (tenant, target) pairs have an event awaiting a retry, or held */
#define HELD_QUERY \
	"SELECT u.i::pg_catalog.int4" \
	"  FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[]))" \
	"       WITH ORDINALITY AS u(tenant, target, i)" \
	" WHERE EXISTS (SELECT FROM " HL_SCHEMA ".deliveries d" \
	"                WHERE d.subscription OPERATOR(pg_catalog.=) $1" \
	"                  AND d.tenant OPERATOR(pg_catalog.=) u.tenant AND d.target OPERATOR(pg_catalog.=) u.target" \
	"                  AND d.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}'))"

#define HOLD_QUERY \
	"INSERT INTO " HL_SCHEMA ".deliveries (subscription, event_id, seq, tenant, target, member, members, status)" \
	" SELECT $1, u.id, u.seq, u.tenant, u.target, $2, $3, 'pending'" \
	"   FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.int8[])," \
	"                   pg_catalog.unnest($6::pg_catalog.text[]), pg_catalog.unnest($7::pg_catalog.text[]))" \
	"        AS u(id, seq, tenant, target)" \
	" ON CONFLICT (subscription, event_id) DO NOTHING"

#define EVENTS_BY_SEQ_QUERY \
	"SELECT e.* FROM " HL_SCHEMA ".events e" \
	" WHERE e.seq OPERATOR(pg_catalog.=) ANY ($1) ORDER BY e.seq"

#define EVENT_QUERY \
	"SELECT xact_id, id, tenant, target, version FROM " HL_SCHEMA ".events WHERE seq OPERATOR(pg_catalog.=) $1"

/*
 * The later events of a nacked event's target that the member has not
 * acked, a page at a time: a target's backlog can be long.
 */
#define TARGET_LATER_QUERY \
	"SELECT e.id, e.seq, e.tenant, e.target, e.version FROM " HL_SCHEMA ".events e" \
	" WHERE e.tenant OPERATOR(pg_catalog.=) $1 AND e.target OPERATOR(pg_catalog.=) $2" \
	"   AND e.version OPERATOR(pg_catalog.>) $3" \
	"   AND (CASE WHEN $4::pg_catalog.xid8 IS NULL THEN e.seq OPERATOR(pg_catalog.>) $5" \
	"        ELSE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($4, $5) END)" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $6)" \
	" ORDER BY e.version LIMIT $7"

#define HOLD_PAGE 1000

/*
 * After a nack, the events just after the position that the member's open
 * deliveries hold (the nacked target's backlog, held just now): the first
 * event after the position that none holds, and the last held one before
 * it (or below the horizon).  Read as the log's owner, who reads every
 * event ($8: the subscription).
 */
/* one probe of the primary key per event, never a join: see skip_held_prefix() */
#define HL_OPEN_DELIVERY(e) \
	"COALESCE((SELECT d.member OPERATOR(pg_catalog.=) $7" \
	"                 AND d.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}')" \
	"            FROM " HL_SCHEMA ".deliveries d" \
	"           WHERE d.subscription OPERATOR(pg_catalog.=) $8" \
	"             AND d.event_id OPERATOR(pg_catalog.=) " e ".id), false)"
#define FIRST_UNHELD_QUERY \
	"SELECT e.xact_id, e.seq FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	EVENTS_WHERE " AND NOT " HL_OPEN_DELIVERY("e") \
	" ORDER BY e.xact_id, e.seq LIMIT 1"
#define LAST_HELD_BEFORE_QUERY \
	"SELECT e.xact_id, e.seq FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	"   AND ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.<) ROW($9::pg_catalog.xid8, $10::pg_catalog.int8)" \
	EVENTS_WHERE " AND " HL_OPEN_DELIVERY("e") \
	" ORDER BY e.xact_id DESC, e.seq DESC LIMIT 1"
#define LAST_HELD_QUERY \
	"SELECT e.xact_id, e.seq FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	EVENTS_WHERE " AND " HL_OPEN_DELIVERY("e") \
	" ORDER BY e.xact_id DESC, e.seq DESC LIMIT 1"

/* retried and held events handed out since they became due are done */
#define ACK_RETRIES_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries" \
	"   SET status = 'delivered', next_attempt_at = NULL" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $2" \
	"   AND seq OPERATOR(pg_catalog.<=) $3" \
	"   AND ((status OPERATOR(pg_catalog.=) 'failed'" \
	"         AND last_attempt_at OPERATOR(pg_catalog.>=) next_attempt_at)" \
	"        OR (status OPERATOR(pg_catalog.=) 'pending' AND last_attempt_at IS NOT NULL))"

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

/*
 * Where replay(name, from_time) moves the positions: before the first
 * event recorded from from_time on (else to now), and safe_seq before the
 * lowest seq recorded since.  Read as the subscription's owner: events of
 * tenants it may not read are not its to replay, and the position (which
 * subscription_status() shows) told a tenant role when they were recorded.
 */
#define REPLAY_FROM_QUERY \
	"SELECT p.xact_id, p.seq, (SELECT pg_catalog.min(e.seq) OPERATOR(pg_catalog.-) 1" \
	"                            FROM " HL_SCHEMA ".events e" \
	"                           WHERE e.recorded_at OPERATOR(pg_catalog.>=) $1)" \
	"  FROM (SELECT e.xact_id, e.seq OPERATOR(pg_catalog.-) 1 AS seq FROM " HL_SCHEMA ".events e" \
	"         WHERE e.recorded_at OPERATOR(pg_catalog.>=) $1" \
	"         UNION ALL SELECT LEAST(" HL_HORIZON ", $2), 0" \
	"         ORDER BY 1, 2 LIMIT 1) p"

/* events from then on come again, after a restore too; the fence starts anew */
#define REPLAY_QUERY \
	"UPDATE " HL_SCHEMA ".subscription_positions SET xact_id = $2, seq = $3," \
	"       safe_seq = LEAST(safe_seq, $3, $4), fence_seq = NULL, fence_xact = NULL" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1"

static SPIPlanPtr new_events_plan = NULL;
static SPIPlanPtr new_events_restored_plan = NULL;
static SPIPlanPtr due_plan = NULL;
static SPIPlanPtr any_held_plan = NULL;
static SPIPlanPtr held_plan = NULL;
static SPIPlanPtr hold_plan = NULL;
static SPIPlanPtr events_by_seq_plan = NULL;
static SPIPlanPtr event_plan = NULL;
static SPIPlanPtr target_later_plan = NULL;
static SPIPlanPtr first_unheld_plan = NULL;
static SPIPlanPtr last_held_before_plan = NULL;
static SPIPlanPtr last_held_plan = NULL;
static SPIPlanPtr ack_retries_plan = NULL;
static SPIPlanPtr nack_plan = NULL;
static SPIPlanPtr redeliver_plan = NULL;
static SPIPlanPtr replay_from_plan = NULL;
static SPIPlanPtr replay_plan = NULL;

/* The horizon --------------------------------------------------------------------- */

/* set by a delivery round around its query of new events (round.c) */
bool		hl_horizon_stops_at_own_xact = false;

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
	/*
	 * For a delivery round, the caller's own events are not committed
	 * either: once a later transaction has ended, xmax passes the caller's
	 * xid, and a round run by deliver() in the appending transaction handed
	 * out its own events (and later ones) before it committed, to hooks and
	 * webhooks.  Not for read(): what it returns goes back with its
	 * caller, and a waiting read() (whose claims give it an xid) must see
	 * what later transactions commit.
	 */
	if (hl_horizon_stops_at_own_xact &&
		TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
		TransactionIdPrecedes(GetTopTransactionIdIfAny(), horizon))
		horizon = GetTopTransactionIdIfAny();
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

/* Reading ------------------------------------------------------------------------ */

static HlSubscription *
pull_subscription(const char *name, bool for_update)
{
	HlSubscription *sub = palloc(sizeof(HlSubscription));

	hl_subscription_get(name, for_update, sub);
	hl_subscription_check_access(sub);
	hl_subscription_check_owner_reads(sub);
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
	ParamListInfo params = hl_param_list(nargs, types, args, nulls);
	SPIExecuteOptions options;
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

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

/* Run a plan whose rows are events as the given role: the batch stays until freed. */
static SPITupleTable *
events_batch(SPIPlanPtr plan, Datum *args, const char *nulls, Oid role, uint64 *n)
{
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	hl_become_role(role, &saved);
	/* not read-only: each try takes a fresh snapshot, and so a fresh horizon */
	rc = SPI_execute_plan(plan, args, nulls, false, 0);
	hl_restore_user(&saved);
	MemoryContextSwitchTo(caller);
	hl_spi_check(rc, SPI_OK_SELECT, "reading events");
	*n = SPI_processed;
	return SPI_tuptable;
}

static Datum
text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Make events of a batch (those marked in held, or all if held is NULL)
 * pending deliveries of the member: handed out once their target has no
 * event awaiting a retry.
 */
static void
hold_events(const HlSubscription *sub, int member, int members,
			SPITupleTable *batch, uint64 n, const bool *held)
{
	Oid			types[7] = {TEXTOID, INT4OID, INT4OID, TEXTARRAYOID, INT8ARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[7];
	TupleDesc	desc = batch->tupdesc;
	int			atts[4];
	Datum	   *cols[4];
	int			k = 0;
	bool		isnull;
	int			rc;

	atts[0] = SPI_fnumber(desc, "id");
	atts[1] = SPI_fnumber(desc, "seq");
	atts[2] = SPI_fnumber(desc, "tenant");
	atts[3] = SPI_fnumber(desc, "target");
	for (int c = 0; c < 4; c++)
		cols[c] = palloc(Max(n, 1) * sizeof(Datum));
	for (uint64 i = 0; i < n; i++)
	{
		if (held != NULL && !held[i])
			continue;
		for (int c = 0; c < 4; c++)
			cols[c][k] = SPI_getbinval(batch->vals[i], desc, atts[c], &isnull);
		k++;
	}
	if (k == 0)
		return;
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = Int32GetDatum(Max(members, 1));
	args[3] = text_array(cols[0], k);
	args[4] = PointerGetDatum(construct_array(cols[1], k, INT8OID, 8, FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	args[5] = text_array(cols[2], k);
	args[6] = text_array(cols[3], k);
	hl_prepare_cached(&hold_plan, HOLD_QUERY, 7, types);
	rc = hl_run_as_log_owner(hold_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT, HOLD_QUERY);
}

/*
 * Hand out a batch of new events, in order, but hold those whose target has
 * an earlier event awaiting a retry (or held itself): they become pending
 * deliveries, handed out in version order once that target's retries are
 * done or dead.  Events without a target are never held, and none are
 * unless any_held (some event of the subscription awaits a retry or is
 * held).  Returns how many went into the result; *last_xact, *last_seq is
 * the batch's last event, and *prefix how many of the batch's first events
 * were held.
 */
static uint64
hold_or_return(const HlSubscription *sub, int member, int members, bool any_held,
			   SPITupleTable *batch, uint64 n, HlResultSet *rs,
			   Datum *last_xact, int64 *last_seq, uint64 *prefix)
{
	TupleDesc	desc = batch->tupdesc;
	int			att_xact = SPI_fnumber(desc, "xact_id");
	int			att_seq = SPI_fnumber(desc, "seq");
	int			att_tenant = SPI_fnumber(desc, "tenant");
	int			att_target = SPI_fnumber(desc, "target");
	bool	   *held = palloc0(n * sizeof(bool));
	Datum	   *tenants = palloc(n * sizeof(Datum));
	Datum	   *targets = palloc(n * sizeof(Datum));
	int		   *which = palloc(n * sizeof(int));
	int			nt = 0;
	int			nheld = 0;
	bool		isnull;
	uint64		returned = 0;
	int			rc;

	for (uint64 i = 0; any_held && i < n; i++)
	{
		Datum		target = SPI_getbinval(batch->vals[i], desc, att_target, &isnull);

		if (isnull)
			continue;
		tenants[nt] = SPI_getbinval(batch->vals[i], desc, att_tenant, &isnull);
		targets[nt] = target;
		which[nt++] = (int) i;
	}
	if (nt > 0)
	{
		Oid			types[3] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID};
		Datum		args[3];

		args[0] = CStringGetTextDatum(sub->name);
		args[1] = text_array(tenants, nt);
		args[2] = text_array(targets, nt);
		hl_prepare_cached(&held_plan, HELD_QUERY, 3, types);
		rc = hl_run_as_log_owner(held_plan, args, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_SELECT, HELD_QUERY);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			int			i = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1, &isnull));

			held[which[i - 1]] = true;
			nheld++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	if (nheld > 0)
		hold_events(sub, member, members, batch, n, held);
	*prefix = 0;
	while (*prefix < n && held[*prefix])
		(*prefix)++;
	for (uint64 i = 0; i < n; i++)
	{
		if (held[i])
			continue;
		tuplestore_puttuple(rs->store, batch->vals[i]);
		returned++;
	}
	if (n > 0)
	{
		*last_xact = SPI_getbinval(batch->vals[n - 1], desc, att_xact, &isnull);
		*last_seq = DatumGetInt64(SPI_getbinval(batch->vals[n - 1], desc, att_seq, &isnull));
	}
	return returned;
}

/* One try of read(): due retries and released events of this member first, then new events. */
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
	HlPosition	pos;
	bool		restored;
	int64		seq;
	bool		any_held;
	bool		none_returned = true;
	Datum		held_xact = (Datum) 0;
	int64		held_seq = -1;
	SPIPlanPtr	plan;
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

	hl_position_of(sub, member, members, &pos);
	restored = hl_position_resume(&pos, &args[0], &nulls[0], &seq);
	args[1] = Int64GetDatum(seq);
	args[2] = PointerGetDatum(sub->tenant);
	nulls[2] = sub->tenant ? ' ' : 'n';
	args[3] = PointerGetDatum(sub->target);
	nulls[3] = sub->target ? ' ' : 'n';
	args[4] = CStringGetTextDatum(sub->pattern);
	args[5] = Int32GetDatum(members);
	args[6] = Int32GetDatum(member);
	args[7] = Int64GetDatum(max_events - (int) got);
	{
		Oid			any_types[1] = {TEXTOID};

		hl_prepare_cached(&any_held_plan, ANY_HELD_QUERY, 1, any_types);
		rc = hl_run_as_log_owner(any_held_plan, due_args, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, ANY_HELD_QUERY);
		any_held = SPI_processed > 0;
	}
	nestlevel = hl_ordered_scan_begin();
	if (restored)
		plan = hl_prepare_cached(&new_events_restored_plan, NEW_EVENTS_RESTORED_QUERY, 8, types);
	else
		plan = hl_prepare_cached(&new_events_plan, NEW_EVENTS_QUERY, 8, types);
	for (;;)
	{
		int64		want = max_events - (int64) got;
		SPITupleTable *batch;
		uint64		n;
		uint64		returned;
		uint64		prefix;
		int64		last_seq = 0;

		args[7] = Int64GetDatum(want);
		batch = events_batch(plan, args, nulls, sub->owner, &n);
		returned = hold_or_return(sub, member, members, any_held, batch, n, rs,
								  &args[0], &last_seq, &prefix);
		/*
		 * Held events before the first one handed out are pending deliveries
		 * now: the position moves past them, so that no later read goes
		 * through a held target's backlog again.
		 */
		if (none_returned && prefix > 0)
		{
			bool		isnull;
			TupleDesc	desc = batch->tupdesc;

			held_xact = SPI_getbinval(batch->vals[prefix - 1], desc,
									  SPI_fnumber(desc, "xact_id"), &isnull);
			held_seq = DatumGetInt64(SPI_getbinval(batch->vals[prefix - 1], desc,
												   SPI_fnumber(desc, "seq"), &isnull));
		}
		none_returned = none_returned && returned == 0;
		SPI_freetuptable(batch);
		got += returned;
		/* held events took room: what follows them may go out now */
		if ((int64) n < want || returned == n)
			break;
		nulls[0] = ' ';
		args[1] = Int64GetDatum(last_seq);
		plan = hl_prepare_cached(&new_events_plan, NEW_EVENTS_QUERY, 8, types);
	}
	hl_ordered_scan_end(nestlevel);
	if (held_seq >= 0)
		hl_position_move(sub, member, held_xact, held_seq);
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
	int64		version;		/* with a target */
} AckedEvent;

/*
 * The event with that seq, as the subscription may know it: one of a tenant
 * its owner may not read is none (it could not have been read, and acking
 * or nacking it would tell the caller that it exists, and leave a delivery
 * row naming it, in a tenant not the caller's).
 */
static void
find_event(const HlSubscription *sub, int64 seq, AckedEvent *ev)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	bool		found;
	int			rc;

	args[0] = Int64GetDatum(seq);
	hl_prepare_cached(&event_plan, EVENT_QUERY, 1, argtypes);
	rc = hl_run_as_log_owner(event_plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, EVENT_QUERY);
	found = SPI_processed > 0;
	if (found)
	{
		ev->xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		ev->id = DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		ev->tenant = DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		ev->target = NULL;
		{
			Datum		t = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);

			if (!isnull)
				ev->target = DatumGetTextPCopy(t);
		}
		ev->version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
		found = hl_tenant_role_permits(sub->owner, VARDATA_ANY(ev->tenant),
									   VARSIZE_ANY_EXHDR(ev->tenant), HL_TENANT_READ);
	}
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("there is no event with seq " INT64_FORMAT, seq),
				 errhint("Ack the seq of an event that read() returned.")));
}

/*
 * A nack holds the later events of the event's target that the member has
 * not acked: a consumer that skips them in the batch it holds and acks the
 * batch gets them after the retry, in version order.
 */
static void
hold_later_events(const HlSubscription *sub, int member, int members,
				  const AckedEvent *ev, Datum xact, int64 pos, bool restored)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT8OID, XID8OID, INT8OID, TEXTOID, INT8OID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	SPITupleTable *later;
	uint64		n;
	bool		isnull;

	args[0] = PointerGetDatum(ev->tenant);
	args[1] = PointerGetDatum(ev->target);
	args[2] = Int64GetDatum(ev->version);
	args[3] = xact;
	nulls[3] = restored ? 'n' : ' ';
	args[4] = Int64GetDatum(pos);
	args[5] = CStringGetTextDatum(sub->pattern);
	args[6] = Int64GetDatum(HOLD_PAGE);
	hl_prepare_cached(&target_later_plan, TARGET_LATER_QUERY, 7, types);
	do
	{
		CHECK_FOR_INTERRUPTS();
		later = events_batch(target_later_plan, args, nulls, sub->owner, &n);
		if (n > 0)
			args[2] = SPI_getbinval(later->vals[n - 1], later->tupdesc,
									SPI_fnumber(later->tupdesc, "version"), &isnull);
		hold_events(sub, member, members, later, n, NULL);
		SPI_freetuptable(later);
	} while (n == HOLD_PAGE);
}

/*
 * Move the member's position past the held events right after it, so that
 * no read goes through them: a nacked target's backlog can be long, and
 * each read would otherwise walk it page by page until it found an event
 * to hand out (read() moves the position past them only then).  Two index
 * probes, whatever the backlog.  Not for a restored position: which events
 * below its seq are still to come is known up to safe_seq only.
 */
static void
skip_held_prefix(const HlSubscription *sub, int member)
{
	Oid			types[10] = {XID8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
		TEXTOID, XID8OID, INT8OID};
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	HlPosition	pos;
	const char *query = LAST_HELD_QUERY;
	SPIPlanPtr	plan;
	bool		isnull;
	int			nestlevel;
	int			rc;

	hl_position_of(sub, member, 0, &pos);
	if (pos.restored)
		return;
	args[0] = pos.xact;
	args[1] = Int64GetDatum(pos.seq);
	args[2] = PointerGetDatum(sub->tenant);
	nulls[2] = sub->tenant ? ' ' : 'n';
	args[3] = PointerGetDatum(sub->target);
	nulls[3] = sub->target ? ' ' : 'n';
	args[4] = CStringGetTextDatum(sub->pattern);
	args[5] = Int32GetDatum(pos.members);
	args[6] = Int32GetDatum(member);
	args[7] = CStringGetTextDatum(sub->name);
	/*
	 * The nack has just filled deliveries: a plan that takes it for empty
	 * joins it to each event as a whole (quadratic), hence a subquery that
	 * probes its primary key per event, and index scans of the log.
	 */
	nestlevel = hl_ordered_scan_begin();
	hl_prepare_cached(&first_unheld_plan, FIRST_UNHELD_QUERY, 8, types);
	rc = hl_run_as_log_owner(first_unheld_plan, args, nulls, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, FIRST_UNHELD_QUERY);
	if (SPI_processed > 0)
	{
		args[8] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		args[9] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		query = LAST_HELD_BEFORE_QUERY;
		plan = hl_prepare_cached(&last_held_before_plan, query, 10, types);
	}
	else
		plan = hl_prepare_cached(&last_held_plan, query, 8, types);
	rc = hl_run_as_log_owner(plan, args, nulls, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, query);
	hl_ordered_scan_end(nestlevel);
	if (SPI_processed > 0)
		hl_position_move(sub, member,
						 SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
						 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)));
}

/* Move the member's position through the acked event, and settle its retries. */
static void
advance(const HlSubscription *sub, int member, int64 seq, const AckedEvent *ev)
{
	Oid			rtypes[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		args[3];
	HlPosition	pos;
	int			rc;

	/* made first if the member has none yet */
	hl_position_of(sub, member, 0, &pos);
	hl_position_move(sub, member, ev->xact, seq);
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = Int64GetDatum(seq);
	hl_prepare_cached(&ack_retries_plan, ACK_RETRIES_QUERY, 3, rtypes);
	rc = hl_run_as_log_owner(ack_retries_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, ACK_RETRIES_QUERY);
}

/*
 * What ack() and nack() share: their arguments (name, seq, and member as
 * argument member_arg), the subscription, and the event with that seq.
 * Connects to SPI.
 */
static HlSubscription *
ack_begin(FunctionCallInfo fcinfo, const char *what, int member_arg,
		  int64 *seq, int *member, AckedEvent *ev)
{
	HlSubscription *sub;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and seq of %s must not be NULL", what)));
	*seq = PG_GETARG_INT64(1);
	*member = PG_ARGISNULL(member_arg) ? 0 : PG_GETARG_INT32(member_arg);
	check_member(*member, *member + 1);

	hl_spi_connect();
	sub = pull_subscription(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	find_event(sub, *seq, ev);
	return sub;
}

Datum
headlessly_ack(PG_FUNCTION_ARGS)
{
	int64		seq;
	int			member;
	AckedEvent	ev;
	HlSubscription *sub = ack_begin(fcinfo, "an ack", 2, &seq, &member, &ev);

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
	int64		seq;
	int			member;
	Oid			argtypes[11] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT4OID,
		INT4OID, INT4OID, TEXTOID, INTERVALOID, INTERVALOID};
	Datum		args[11];
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	AckedEvent	ev;
	HlSubscription *sub = ack_begin(fcinfo, "a nack", 3, &seq, &member, &ev);
	HlPosition	pos;
	Datum		xact;
	char		xact_null;
	int64		resume;
	bool		restored;
	int			rc;

	hl_position_of(sub, member, 0, &pos);
	restored = hl_position_resume(&pos, &xact, &xact_null, &resume);

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(ev.id);
	args[2] = Int64GetDatum(seq);
	args[3] = PointerGetDatum(ev.tenant);
	args[4] = PointerGetDatum(ev.target);
	nulls[4] = ev.target ? ' ' : 'n';
	args[5] = Int32GetDatum(member);
	/* the group size the member reads with */
	args[6] = Int32GetDatum(pos.members);
	args[7] = Int32GetDatum(sub->max_attempts);
	args[8] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[8] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[9] = retry_delay(hl_retry_base_delay, true);
	args[10] = retry_delay(hl_retry_max_delay, false);
	hl_prepare_cached(&nack_plan, NACK_QUERY, 11, argtypes);
	rc = hl_run_as_log_owner(nack_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_INSERT, NACK_QUERY);
	if (ev.target != NULL)
		hold_later_events(sub, member, pos.members, &ev, xact, resume, restored);

	/* the event is acked through, its retry aside */
	advance(sub, member, seq, &ev);
	if (ev.target != NULL)
		skip_held_prefix(sub, member);
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
	Oid			from_types[2] = {TIMESTAMPTZOID, XID8OID};
	Oid			argtypes[4] = {TEXTOID, XID8OID, INT8OID, INT8OID};
	Datum		from_args[2];
	char		from_nulls[2] = {' ', ' '};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	HlSubscription sub;
	HlPosition	pos;
	SPITupleTable *from;
	uint64		n;
	bool		isnull;
	int			rc;

	hl_spi_connect();
	hl_subscription_get(text_to_cstring(PG_GETARG_TEXT_PP(0)), true, &sub);
	hl_subscription_check_access(&sub);
	hl_subscription_check_owner_reads(&sub);
	/* a subscription never read from gets its member 0 moved too */
	hl_position_of(&sub, 0, 0, &pos);
	from_args[0] = PG_GETARG_DATUM(1);
	hl_own_xact(&from_args[1], &from_nulls[1]);
	hl_prepare_cached(&replay_from_plan, REPLAY_FROM_QUERY, 2, from_types);
	from = events_batch(replay_from_plan, from_args, from_nulls, sub.owner, &n);
	if (n != 1)
		elog(ERROR, "replay found %d start positions, not 1", (int) n);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = SPI_getbinval(from->vals[0], from->tupdesc, 1, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	args[2] = SPI_getbinval(from->vals[0], from->tupdesc, 2, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	args[3] = SPI_getbinval(from->vals[0], from->tupdesc, 3, &isnull);
	nulls[3] = isnull ? 'n' : ' ';
	hl_prepare_cached(&replay_plan, REPLAY_QUERY, 4, argtypes);
	rc = hl_run_as_log_owner(replay_plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, REPLAY_QUERY);
	SPI_finish();
	PG_RETURN_VOID();
}
