/*-------------------------------------------------------------------------
 *
 * position.c
 *	  Where each member of a subscription is: read by read() and by the
 *	  delivery rounds' claims, moved by ack(), nack() and the claims'
 *	  enqueueing, and forgotten in part by a restore.
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
 * A position is (xact_id, seq) per (subscription, member): a pull
 * consumer's member acks through it, a hook's or webhook's round has made
 * pending deliveries of everything through it.  One restored from a dump
 * has no xact_id (another cluster's transaction ids mean nothing here, and
 * restored events all carry the restoring transaction's), so (xact_id,
 * seq) order cannot tell which events below its seq it had not passed
 * yet: a late-committing transaction's event can lie there.  The position
 * therefore also keeps safe_seq, a seq through which every event has been
 * passed, and a restored position resumes after safe_seq: what lies
 * between is delivered again (at least once, across a restore too).
 *
 * safe_seq moves by a fence, taken when the position moves: fence_seq, the
 * sequence's value, read before fence_xact, the next transaction id.  seq
 * is drawn after the appending transaction has its id (log_trigger.c), so
 * a transaction with an id at or past fence_xact draws seqs past fence_seq:
 * every event through fence_seq is one of a transaction below fence_xact.
 * Once the horizon has passed fence_xact, those have all ended and their
 * events are visible, and safe_seq can move to just before the first of
 * them the position has not passed: all of them when the position's own
 * transaction is at or past fence_xact, else found walking seq upwards from
 * safe_seq (through what was passed since); then a new fence is taken.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(headlessly_restored_position_check);

#define POSITION_QUERY \
	"SELECT xact_id, seq, members, safe_seq FROM " HL_SCHEMA ".subscription_positions" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $2"

/* a new member starts where the slowest member of the subscription is */
#define NEW_POSITION_QUERY \
	"INSERT INTO " HL_SCHEMA ".subscription_positions" \
	" (subscription, member, members, xact_id, seq, safe_seq, fence_seq, fence_xact)" \
	" SELECT $1, $2, $3, p.xact_id, p.seq, p.safe_seq, $4, $5 FROM (" \
	"   SELECT x.xact_id, x.seq, x.safe_seq FROM " HL_SCHEMA ".subscription_positions x" \
	"    WHERE x.subscription OPERATOR(pg_catalog.=) $1" \
	"   UNION ALL SELECT s.start_xact, s.start_seq, s.start_seq FROM " HL_SCHEMA ".subscriptions s" \
	"    WHERE s.name OPERATOR(pg_catalog.=) $1" \
	"   ORDER BY 1 NULLS FIRST, 2 LIMIT 1) p" \
	" ON CONFLICT DO NOTHING"

/* the last seq drawn: seq's sequence is CACHE 1 (log.sql) */
#define FENCE_QUERY \
	"SELECT CASE WHEN is_called THEN last_value ELSE last_value OPERATOR(pg_catalog.-) 1 END" \
	"  FROM " HL_SCHEMA ".events_seq_seq"

/* the position and, when the horizon has passed the fence, safe_seq (see the top) */
#define FENCE_PASSED "p.fence_xact OPERATOR(pg_catalog.<=) " HL_HORIZON
#define ADVANCE_QUERY \
	"UPDATE " HL_SCHEMA ".subscription_positions p" \
	"   SET xact_id = $3, seq = $4, acked_at = pg_catalog.clock_timestamp()," \
	"       safe_seq = CASE WHEN " FENCE_PASSED " THEN GREATEST(p.safe_seq," \
	"           CASE WHEN $3 OPERATOR(pg_catalog.>=) p.fence_xact THEN p.fence_seq ELSE" \
	"           COALESCE((SELECT e.seq OPERATOR(pg_catalog.-) 1 FROM " HL_SCHEMA ".events e" \
	"                      WHERE e.seq OPERATOR(pg_catalog.>) p.safe_seq" \
	"                        AND e.seq OPERATOR(pg_catalog.<=) p.fence_seq" \
	"                        AND ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($3, $4)" \
	"                      ORDER BY e.seq LIMIT 1), p.fence_seq) END) ELSE p.safe_seq END," \
	"       fence_seq = CASE WHEN p.fence_xact IS NULL OR " FENCE_PASSED " THEN $5 ELSE p.fence_seq END," \
	"       fence_xact = CASE WHEN p.fence_xact IS NULL OR " FENCE_PASSED " THEN $6 ELSE p.fence_xact END" \
	" WHERE p.subscription OPERATOR(pg_catalog.=) $1 AND p.member OPERATOR(pg_catalog.=) $2" \
	"   AND (p.xact_id IS NULL OR ROW(p.xact_id, p.seq) OPERATOR(pg_catalog.<) ROW($3, $4))"

static SPIPlanPtr position_plan = NULL;
static SPIPlanPtr new_position_plan = NULL;
static SPIPlanPtr fence_plan = NULL;
static SPIPlanPtr advance_plan = NULL;

/* set while our own functions write positions: others are restores */
static bool writing_positions = false;

/*
 * Run a plan that writes positions (subscribe()'s, a member's first), as
 * the log's owner, marked as our own writing: the positions' trigger
 * checks every other write as a restore.
 */
int
hl_run_writing_positions(SPIPlanPtr plan, Datum *args, const char *nulls)
{
	int			rc;

	writing_positions = true;
	PG_TRY();
	{
		rc = hl_run_as_log_owner(plan, args, nulls, false, 0);
	}
	PG_FINALLY();
	{
		writing_positions = false;
	}
	PG_END_TRY();
	return rc;
}

/*
 * The calling transaction's id as an xid8 parameter, NULL ('n') if it has
 * none yet.  Events it writes carry it: a position made for "now" must not
 * start past them.
 */
void
hl_own_xact(Datum *xact, char *null)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();

	*xact = FullTransactionIdGetDatum(own);
	*null = FullTransactionIdIsValid(own) ? ' ' : 'n';
}

/* A new fence for safe_seq: the sequence first, then the next transaction id. */
static void
take_fence(Datum *fence_seq, Datum *fence_xact)
{
	bool		isnull;
	int			rc;

	hl_prepare_cached(&fence_plan, FENCE_QUERY, 0, NULL);
	rc = hl_run_as_log_owner(fence_plan, NULL, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, FENCE_QUERY);
	*fence_seq = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*fence_xact = FullTransactionIdGetDatum(ReadNextFullTransactionId());
}

/*
 * The position of one member, made if it has none.  With members = 0 the
 * member's group size is not checked.
 */
void
hl_position_of(const HlSubscription *sub, int member, int members, HlPosition *pos)
{
	Oid			argtypes[5] = {TEXTOID, INT4OID, INT4OID, INT8OID, XID8OID};
	Datum		args[5];
	bool		isnull;
	int			rc;

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = Int32GetDatum(Max(members, 1));
	hl_prepare_cached(&position_plan, POSITION_QUERY, 2, argtypes);
	rc = hl_run_as_log_owner(position_plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, POSITION_QUERY);
	if (SPI_processed == 0)
	{
		take_fence(&args[3], &args[4]);
		hl_prepare_cached(&new_position_plan, NEW_POSITION_QUERY, 5, argtypes);
		rc = hl_run_writing_positions(new_position_plan, args, NULL);
		hl_spi_check(rc, SPI_OK_INSERT, NEW_POSITION_QUERY);
		rc = hl_run_as_log_owner(position_plan, args, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, POSITION_QUERY);
		if (SPI_processed == 0)
			elog(ERROR, "position of member %d of subscription \"%s\" vanished",
				 member, sub->name);
	}
	pos->xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &pos->restored);
	pos->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	pos->members = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	pos->safe_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (members > 0 && pos->members != members)
		ereport(ERROR,
				(errcode(ERRCODE_HL_SUBSCRIPTION),
				 errmsg("subscription \"%s\" is read by a group of %d members, not %d",
						sub->name, pos->members, members),
				 errdetail("Each member's position belongs to the group it was made in."),
				 errhint("Read with members => %d, or make a new subscription for the new group.",
						 pos->members)));
}

/*
 * Where reading new events resumes, as the (xid8, int8) parameters of an
 * "after (xact_id, seq)" query: the position itself, or for one restored
 * from a dump, a NULL xact_id and its safe_seq (which events below its seq
 * were still to come is known up to safe_seq only).  Returns whether it was
 * restored.
 */
bool
hl_position_resume(const HlPosition *pos, Datum *xact, char *xact_null, int64 *seq)
{
	*xact = pos->restored ? (Datum) 0 : pos->xact;
	*xact_null = pos->restored ? 'n' : ' ';
	*seq = pos->restored ? pos->safe_seq : pos->seq;
	return pos->restored;
}

/* Move the member's position through the event (xact, seq); never back. */
void
hl_position_move(const HlSubscription *sub, int member, Datum xact, int64 seq)
{
	Oid			argtypes[6] = {TEXTOID, INT4OID, XID8OID, INT8OID, INT8OID, XID8OID};
	Datum		args[6];
	int			rc;

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(member);
	args[2] = xact;
	args[3] = Int64GetDatum(seq);
	take_fence(&args[4], &args[5]);
	hl_prepare_cached(&advance_plan, ADVANCE_QUERY, 6, argtypes);
	rc = hl_run_as_log_owner(advance_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, ADVANCE_QUERY);
}

/*
 * A position written by anything but our functions is a restore: the
 * transaction ids in it (each column named in the trigger's arguments) came
 * from another cluster.  It resumes after its safe_seq.
 */
Datum
headlessly_restored_position_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TupleDesc	desc;
	HeapTuple	row;
	int			ncols;
	int		   *attnos;
	Datum	   *values;
	bool	   *isnull;

	trigdata = hl_trigger_data(fcinfo, "headlessly.restored_position_check()",
							   HL_FIRED_BEFORE | HL_FIRED_ROW | HL_FIRED_INSERT);
	row = trigdata->tg_trigtuple;
	if (writing_positions)
		return PointerGetDatum(row);

	desc = RelationGetDescr(trigdata->tg_relation);
	ncols = trigdata->tg_trigger->tgnargs;
	if (ncols < 1)
		elog(ERROR, "%s takes the names of the columns to clear", "headlessly.restored_position_check()");
	attnos = palloc(ncols * sizeof(int));
	values = palloc0(ncols * sizeof(Datum));
	isnull = palloc(ncols * sizeof(bool));
	for (int i = 0; i < ncols; i++)
	{
		attnos[i] = SPI_fnumber(desc, trigdata->tg_trigger->tgargs[i]);
		if (attnos[i] <= 0)
			elog(ERROR, "column \"%s\" is missing from %s", trigdata->tg_trigger->tgargs[i],
				 RelationGetRelationName(trigdata->tg_relation));
		isnull[i] = true;
	}
	row = heap_modify_tuple_by_cols(row, desc, ncols, attnos, values, isnull);
	return PointerGetDatum(row);
}
