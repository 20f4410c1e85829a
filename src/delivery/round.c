/*-------------------------------------------------------------------------
 *
 * round.c
 *	  Delivery rounds: after_commit hooks (and, with the worker's sender,
 *	  webhooks), driven by the background worker or by deliver().
 *
 * A round takes each active hook subscription in registration order and
 *   1. claims work under a lock on the subscription's row: the events
 *      after its position below the horizon (read as the subscription's
 *      owner) become 'pending' rows of headlessly.deliveries and the
 *      position moves past them, as a pull consumer's ack moves it (so a
 *      restored position resumes after its safe_seq, position.c; in the
 *      worker this is committed before the next step); then the due rows
 *      -- the first undelivered row of each target, and for webhooks the
 *      target's next ones, which the sender sends each after the one before
 *      it succeeded, so that one target's events go in version order -- are
 *      claimed: attempts + 1, status pending, and the sender recorded in the
 *      row (sender_pid, claimed at last_attempt_at).  A claim takes a row in
 *      flight only once its sender is gone (exited, crashed, or its round
 *      ended without recording the outcome): due again at once, never lost,
 *      and never sent by two live senders at once.  Each sender records
 *      outcomes, and gives back the rows it did not send, only for the rows
 *      it still holds;
 *   2. runs each handler as the role that registered the hook, with
 *      headlessly.tenant set to the event's tenant, for at most
 *      headlessly.hook_timeout, and marks the row delivered in the same
 *      transaction (so a success is never repeated);
 *   3. on failure undoes the handler's work and records the failure in a
 *      new transaction: a retry after base * 2^(attempts - 1) (capped,
 *      +-20 %), or a dead letter after max_attempts, which no longer holds
 *      back the target's later events.
 * In the worker each step is a transaction of its own; deliver() runs in
 * its caller's transaction, each handler in a subtransaction.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"
#include "delivery/webhook.h"
#include "hooks/hooks.h"
#include "state/state.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(headlessly_deliver);
PG_FUNCTION_INFO_V1(headlessly_delivery_sender_alive);

/*
 * Hooks in registration order, then webhooks; a handler whose name now
 * belongs to another owner's function is missing (OID 0), as in cache.c.
 */
#define HOOK_SUBSCRIPTIONS_QUERY \
	"SELECT s.name, COALESCE(p.oid, 0::pg_catalog.oid) FROM " HL_SCHEMA ".subscriptions s" \
	"  LEFT JOIN " HL_SCHEMA ".hook_registry r ON r.id OPERATOR(pg_catalog.=) s.hook_id" \
	HL_HOOK_HANDLER_JOIN \
	" WHERE s.kind OPERATOR(pg_catalog.=) ANY ('{hook,webhook}') AND s.state OPERATOR(pg_catalog.=) 'active'" \
	"   AND (s.kind OPERATOR(pg_catalog.=) 'webhook' OR r.id IS NOT NULL)" \
	" ORDER BY s.hook_id NULLS LAST, s.name"

/* one hook's handler, resolved as above */
#define HOOK_HANDLER_QUERY \
	"SELECT COALESCE(p.oid, 0::pg_catalog.oid) FROM " HL_SCHEMA ".hook_registry r" \
	HL_HOOK_HANDLER_JOIN \
	" WHERE r.id OPERATOR(pg_catalog.=) $1"

#define NEW_EVENTS_QUERY \
	"SELECT e.id, e.seq, e.tenant, e.target, e.xact_id FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	"   AND e.xact_id OPERATOR(pg_catalog.<) " HL_HORIZON "" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $3)" \
	"   AND ($5::pg_catalog.text IS NULL OR e.tenant OPERATOR(pg_catalog.=) $5)" \
	"   AND ($6::pg_catalog.text IS NULL OR e.target OPERATOR(pg_catalog.=) $6)" \
	" ORDER BY e.xact_id, e.seq LIMIT $4"

#define NEW_EVENTS_RESTORED_QUERY \
	"SELECT e.id, e.seq, e.tenant, e.target, e.xact_id FROM " HL_SCHEMA ".events e" \
	" WHERE e.seq OPERATOR(pg_catalog.>) $2 AND $1::pg_catalog.xid8 IS NULL" \
	"   AND e.xact_id OPERATOR(pg_catalog.<) " HL_HORIZON "" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $3)" \
	"   AND ($5::pg_catalog.text IS NULL OR e.tenant OPERATOR(pg_catalog.=) $5)" \
	"   AND ($6::pg_catalog.text IS NULL OR e.target OPERATOR(pg_catalog.=) $6)" \
	" ORDER BY e.xact_id, e.seq LIMIT $4"

#define ENQUEUE_QUERY \
	"INSERT INTO " HL_SCHEMA ".deliveries (subscription, event_id, seq, tenant, target, status)" \
	" SELECT $1, u.id, u.seq, u.tenant, u.target, 'pending'" \
	"   FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int8[])," \
	"                   pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.text[]))" \
	"        AS u (id, seq, tenant, target)" \
	" ON CONFLICT DO NOTHING"

/*
 * The claim: the first undelivered row of each target (its head) if it is
 * due, with the open rows of its target after it up to $8 in all (a chain,
 * which a webhook sender sends one after another, each once the one before
 * it succeeded: after_commit hooks take $8 = 1), and due rows without a
 * target, at most $2; marked pending with its sender ($7) while in flight.
 * The rows sent at once (each target's first, rows without a target) count
 * an attempt now, so that one whose sending ends the sender (a crash) still
 * counts; the rest of a chain, sent only after the row before it succeeded,
 * counts each attempt with its outcome, so that a crash before it was sent
 * costs it none.  A row that already counts max_attempts ($9) is exhausted:
 * every attempt ended with its sender (crashes while it was in flight), and
 * none was recorded.  It is claimed without counting one more, never sent
 * or run, and recorded as a dead letter.
 * It returns the rows' status and times from before the claim, so that a
 * row whose chain stopped before it is given back as it was
 * (RELEASE_QUERY).  A row is due when it is pending and not in flight
 * (never tried, or claimed by a sender that is gone) or failed and its
 * retry time has come; and not attempted yet in this round ($4).
 *
 * Heads are found by skipping through deliveries_target_idx from one
 * (tenant, target) to the next, one index probe per target, starting after
 * the target claimed last ($5, $6) and wrapping around, so that every
 * target gets its turn and the cost follows the targets visited, not the
 * backlog.  Rows without a target are not ordered: up to half of a batch
 * is taken from them, oldest first, tenant by tenant.
 */
#define HL_SENDER_ALIVE(x) \
	HL_SCHEMA ".delivery_sender_alive(" x ".sender_pid, " x ".last_attempt_at)"
#define HL_DUE_ROW(x) \
	"(" x ".status OPERATOR(pg_catalog.=) 'pending'" \
	"   AND (" x ".sender_pid IS NULL OR NOT " HL_SENDER_ALIVE(x) ")" \
	"  OR " x ".status OPERATOR(pg_catalog.=) 'failed'" \
	"   AND COALESCE(" x ".next_attempt_at, '-infinity') OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())" \
	" AND (" x ".last_attempt_at IS NULL OR " x ".last_attempt_at OPERATOR(pg_catalog.<) $4)"
#define HL_OPEN_ROWS \
	"x.subscription OPERATOR(pg_catalog.=) $1 AND x.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}')"
#define HL_HEAD_COLUMNS \
	"x.tenant, x.target, x.seq, x.event_id, x.status, x.next_attempt_at, x.last_attempt_at, x.sender_pid"
/*
 * A due head and the open rows of its target after it, at most $8 in all,
 * up to the first that a live sender holds (after a redeliver() the head
 * can be a row before one in flight): a row is never in two live chains.
 */
#define HL_CHAIN(h) \
	" CROSS JOIN LATERAL (" \
	"  SELECT w.event_id, w.status, w.last_attempt_at, w.next_attempt_at," \
	"         w.seq OPERATOR(pg_catalog.=) " h ".seq AS sent_at_once," \
	"         w.attempts OPERATOR(pg_catalog.>=) $9 AS exhausted FROM (" \
	"   SELECT v.*, pg_catalog.bool_or(v.held) OVER (ORDER BY v.seq) AS stopped FROM (" \
	"    SELECT x.seq, x.event_id, x.status, x.last_attempt_at, x.next_attempt_at, x.attempts," \
	"           CASE WHEN x.status OPERATOR(pg_catalog.=) 'pending' AND x.sender_pid IS NOT NULL" \
	"                THEN " HL_SENDER_ALIVE("x") " ELSE false END AS held" \
	"      FROM " HL_SCHEMA ".deliveries x" \
	"     WHERE " HL_OPEN_ROWS " AND x.tenant OPERATOR(pg_catalog.=) " h ".tenant" \
	"       AND x.target OPERATOR(pg_catalog.=) " h ".target AND x.seq OPERATOR(pg_catalog.>=) " h ".seq" \
	"     ORDER BY x.seq LIMIT $8) v) w" \
	"   WHERE NOT w.stopped) c"
#define HL_NEXT_HEAD(after) \
	"SELECT " HL_HEAD_COLUMNS " FROM " HL_SCHEMA ".deliveries x" \
	" WHERE " HL_OPEN_ROWS " AND x.target IS NOT NULL" \
	"   AND ROW(x.tenant, x.target) OPERATOR(pg_catalog.>) " after \
	" ORDER BY x.tenant, x.target, x.seq LIMIT 1"

#define CLAIM_QUERY \
	"WITH RECURSIVE after_cursor AS (" \
	"  (" HL_NEXT_HEAD("ROW($5::pg_catalog.text, $6::pg_catalog.text)") ")" \
	"  UNION ALL" \
	"  SELECT n.* FROM after_cursor h CROSS JOIN LATERAL (" HL_NEXT_HEAD("ROW(h.tenant, h.target)") ") n)," \
	" from_start AS (" \
	"  (SELECT " HL_HEAD_COLUMNS " FROM " HL_SCHEMA ".deliveries x" \
	"    WHERE " HL_OPEN_ROWS " AND x.target IS NOT NULL ORDER BY x.tenant, x.target, x.seq LIMIT 1)" \
	"  UNION ALL" \
	"  SELECT n.* FROM from_start h CROSS JOIN LATERAL (" HL_NEXT_HEAD("ROW(h.tenant, h.target)") ") n" \
	"   WHERE ROW(h.tenant, h.target) OPERATOR(pg_catalog.<) ROW($5::pg_catalog.text, $6::pg_catalog.text))," \
	" tenants AS (" \
	"  (SELECT x.tenant FROM " HL_SCHEMA ".deliveries x WHERE " HL_OPEN_ROWS " ORDER BY x.tenant LIMIT 1)" \
	"  UNION ALL" \
	"  SELECT n.tenant FROM tenants t CROSS JOIN LATERAL (" \
	"    SELECT x.tenant FROM " HL_SCHEMA ".deliveries x" \
	"     WHERE " HL_OPEN_ROWS " AND x.tenant OPERATOR(pg_catalog.>) t.tenant ORDER BY x.tenant LIMIT 1) n)," \
	" picked AS (" \
	"  (SELECT u.* FROM tenants t CROSS JOIN LATERAL (" \
	"     SELECT x.event_id, x.status, x.last_attempt_at, x.next_attempt_at, true AS sent_at_once," \
	"            x.attempts OPERATOR(pg_catalog.>=) $9 AS exhausted" \
	"       FROM " HL_SCHEMA ".deliveries x" \
	"      WHERE " HL_OPEN_ROWS " AND x.tenant OPERATOR(pg_catalog.=) t.tenant AND x.target IS NULL" \
	"        AND " HL_DUE_ROW("x") \
	"      ORDER BY x.seq LIMIT $2) u" \
	"    LIMIT ($2 OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog./) 2)" \
	"  UNION ALL" \
	"  SELECT c.* FROM after_cursor h" HL_CHAIN("h") " WHERE " HL_DUE_ROW("h") \
	"  UNION ALL" \
	"  SELECT c.* FROM from_start h" HL_CHAIN("h") \
	"   WHERE ROW(h.tenant, h.target) OPERATOR(pg_catalog.<=) ROW($5::pg_catalog.text, $6::pg_catalog.text)" \
	"     AND " HL_DUE_ROW("h") \
	"  LIMIT $2)" \
	"UPDATE " HL_SCHEMA ".deliveries d" \
	"   SET attempts = d.attempts OPERATOR(pg_catalog.+)" \
	"                  CASE WHEN p.sent_at_once AND NOT p.exhausted THEN 1 ELSE 0 END," \
	"       status = 'pending', sender_pid = $7," \
	"       last_attempt_at = pg_catalog.clock_timestamp()," \
	"       next_attempt_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $3" \
	"  FROM picked p" \
	" WHERE d.subscription OPERATOR(pg_catalog.=) $1 AND d.event_id OPERATOR(pg_catalog.=) p.event_id" \
	" RETURNING d.event_id, d.seq, d.tenant, d.attempts, d.target," \
	"           p.status, p.last_attempt_at, p.next_attempt_at, p.sent_at_once, p.exhausted"

#define EVENT_DOC_QUERY \
	"SELECT pg_catalog.to_jsonb(e), e.target, e.version, e.tenant" \
	"  FROM " HL_SCHEMA ".events e WHERE e.seq OPERATOR(pg_catalog.=) $1"

/* the entity's state after the event: derived tables are the log owner's */
#define STATE_QUERY \
	"SELECT " HL_SCHEMA ".as_of_version($1, $2, $3)"

/* outcomes are recorded only in rows this backend still holds ($5: its pid) */
#define HL_HELD_ROW(x) \
	x "status OPERATOR(pg_catalog.=) 'pending' AND " x "sender_pid OPERATOR(pg_catalog.=) $5"

#define DONE_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries" \
	"   SET status = 'delivered', error = NULL, next_attempt_at = NULL, duration_ms = $3," \
	"       http_status = $4, sender_pid = NULL" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND event_id OPERATOR(pg_catalog.=) $2" \
	"   AND " HL_HELD_ROW("")

#define FAILED_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries" \
	"   SET attempts = attempts OPERATOR(pg_catalog.+) $9," \
	"       status = CASE WHEN attempts OPERATOR(pg_catalog.+) $9 OPERATOR(pg_catalog.>=) $3 THEN 'dead' ELSE 'failed' END," \
	"       error = $4, duration_ms = $8, http_status = $7, sender_pid = NULL," \
	"       next_attempt_at = CASE WHEN attempts OPERATOR(pg_catalog.+) $9 OPERATOR(pg_catalog.>=) $3 THEN NULL" \
	"           ELSE pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $6 END" \
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND event_id OPERATOR(pg_catalog.=) $2" \
	"   AND " HL_HELD_ROW("")

/* a batch's events and the states after them: two queries, not two per event */
#define EVENT_DOCS_QUERY \
	"SELECT e.seq, pg_catalog.to_jsonb(e), e.target, e.version, e.tenant, e.type, e.data, e.recorded_at" \
	"  FROM " HL_SCHEMA ".events e WHERE e.seq OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])"

/* a batch's successes, in one statement */
#define DONE_ALL_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries d" \
	"   SET status = 'delivered', error = NULL, next_attempt_at = NULL," \
	"       http_status = u.http_status, duration_ms = u.duration_ms, sender_pid = NULL," \
	"       attempts = d.attempts OPERATOR(pg_catalog.+) u.uncounted" \
	"  FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int4[])," \
	"                  pg_catalog.unnest($4::pg_catalog.int4[]), pg_catalog.unnest($6::pg_catalog.int4[]))" \
	"       AS u (event_id, http_status, duration_ms, uncounted)" \
	" WHERE d.subscription OPERATOR(pg_catalog.=) $1 AND d.event_id OPERATOR(pg_catalog.=) u.event_id" \
	"   AND " HL_HELD_ROW("d.")

/*
 * Rows claimed but not sent (their chain stopped before them): as they
 * were, held by no sender (a pending row held by none is due, as one whose
 * sender is gone was).  Their attempts were not counted: only a chain's
 * first row, which is always sent, counts one at the claim.
 */
#define RELEASE_QUERY \
	"UPDATE " HL_SCHEMA ".deliveries d" \
	"   SET status = u.status, sender_pid = NULL," \
	"       last_attempt_at = u.last_attempt_at, next_attempt_at = u.next_attempt_at" \
	"  FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])," \
	"                  pg_catalog.unnest($4::pg_catalog.timestamptz[])," \
	"                  pg_catalog.unnest($6::pg_catalog.timestamptz[]))" \
	"       AS u (event_id, status, last_attempt_at, next_attempt_at)" \
	" WHERE d.subscription OPERATOR(pg_catalog.=) $1 AND d.event_id OPERATOR(pg_catalog.=) u.event_id" \
	"   AND " HL_HELD_ROW("d.")

/* HTTP 410 Gone: the receiver asks for no more */
#define GONE_QUERY \
	"UPDATE " HL_SCHEMA ".subscriptions SET state = 'paused' WHERE name OPERATOR(pg_catalog.=) $1"

#define RETENTION_QUERY \
	"DELETE FROM " HL_SCHEMA ".deliveries" \
	" WHERE status OPERATOR(pg_catalog.=) 'delivered'" \
	"   AND last_attempt_at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $1)"

/* how often a backend deletes delivered rows past the retention, at most */
#define HL_HOUSEKEEPING_MS 60000
static TimestampTz last_housekeeping = 0;

static SPIPlanPtr hook_subscriptions_plan = NULL;
static SPIPlanPtr hook_handler_plan = NULL;
static SPIPlanPtr new_events_plan = NULL;
static SPIPlanPtr new_events_restored_plan = NULL;
static SPIPlanPtr enqueue_plan = NULL;
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr event_doc_plan = NULL;
static SPIPlanPtr state_plan = NULL;
static SPIPlanPtr done_plan = NULL;
static SPIPlanPtr event_docs_plan = NULL;
static SPIPlanPtr done_all_plan = NULL;
static SPIPlanPtr failed_plan = NULL;
static SPIPlanPtr retention_plan = NULL;
static SPIPlanPtr gone_plan = NULL;
static SPIPlanPtr release_plan = NULL;

/* One claimed delivery. */
typedef struct Claimed
{
	char	   *event_id;
	int64		seq;
	char	   *tenant;
	char	   *target;			/* NULL: none */
	int			attempts;		/* this one's included once it is counted */
	bool		counted;		/* this attempt counted at the claim */
	bool		exhausted;		/* max_attempts made already: not attempted again */
	/* as the row was before the claim */
	char	   *old_status;
	Datum		old_last_attempt_at;
	bool		old_last_null;
	Datum		old_next_attempt_at;
	bool		old_next_null;
	HlWebhookRequest req;		/* webhooks: the request, built at claim time */
} Claimed;

static int
claimed_cmp(const ListCell *a, const ListCell *b)
{
	int64		sa = ((const Claimed *) lfirst(a))->seq;
	int64		sb = ((const Claimed *) lfirst(b))->seq;

	return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/*
 * Where the last claim of a subscription stopped among its targets, so
 * that the next one goes on from there: one entry per subscription this
 * backend delivers to, kept for the backend's life (a few bytes each).
 */
typedef struct SenderCursor
{
	char	   *subscription;
	char	   *tenant;
	char	   *target;
} SenderCursor;

static List *sender_cursors = NIL;

static SenderCursor *
sender_cursor(const char *subscription)
{
	ListCell   *lc;
	SenderCursor *cursor;
	MemoryContext old;

	foreach(lc, sender_cursors)
	{
		cursor = lfirst(lc);
		if (strcmp(cursor->subscription, subscription) == 0)
			return cursor;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	cursor = palloc(sizeof(SenderCursor));
	cursor->subscription = pstrdup(subscription);
	cursor->tenant = pstrdup("");
	cursor->target = pstrdup("");
	sender_cursors = lappend(sender_cursors, cursor);
	MemoryContextSwitchTo(old);
	return cursor;
}

/* (tenant, target) order of deliveries_target_idx: both columns are COLLATE "C" */
static int
target_key_cmp(const char *tenant_a, const char *target_a, const char *tenant_b, const char *target_b)
{
	int			c = strcmp(tenant_a, tenant_b);

	return c != 0 ? c : strcmp(target_a, target_b);
}

/*
 * The claim visited the targets after the cursor, then (wrapping around)
 * those up to it: the cursor moves to the last target it took.
 */
static void
advance_cursor(const char *subscription, List *claimed)
{
	SenderCursor *cursor = sender_cursor(subscription);
	Claimed    *after = NULL;
	Claimed    *upto = NULL;
	ListCell   *lc;

	foreach(lc, claimed)
	{
		Claimed    *c = lfirst(lc);
		Claimed   **best;

		if (c->target == NULL)
			continue;
		best = target_key_cmp(c->tenant, c->target, cursor->tenant, cursor->target) > 0 ?
			&after : &upto;
		if (*best == NULL ||
			target_key_cmp(c->tenant, c->target, (*best)->tenant, (*best)->target) > 0)
			*best = c;
	}
	if (after == NULL)
		after = upto;
	if (after != NULL)
	{
		char	   *tenant = MemoryContextStrdup(TopMemoryContext, after->tenant);
		char	   *target = MemoryContextStrdup(TopMemoryContext, after->target);

		pfree(cursor->tenant);
		pfree(cursor->target);
		cursor->tenant = tenant;
		cursor->target = target;
	}
}

/*
 * The rounds running in this backend: the outermost one's start.  A row
 * this backend claimed since then is in flight (an outer round delivers it
 * while a handler calls deliver()); one it claimed before is left over from
 * a round that ended without recording its outcome (an error in the
 * worker), and is due again.
 */
static int	round_depth = 0;
static TimestampTz round_began = 0;

/*
 * Whether the sender that claimed a delivery at claimed_at still holds it:
 * the backend with that pid, if it is still running and is the one that
 * claimed it (a backend that started after the claim has the pid of one
 * that is gone).  The backends' statuses are the transaction's copy: one
 * started since then, or one it shows from before the claim, counts as the
 * sender -- never taking a live sender's row is what matters.
 */
Datum
headlessly_delivery_sender_alive(PG_FUNCTION_ARGS)
{
	int32		pid = PG_GETARG_INT32(0);
	TimestampTz claimed_at = PG_GETARG_TIMESTAMPTZ(1);
	int			n;

	if (pid == MyProcPid)
		PG_RETURN_BOOL(round_depth > 0 && claimed_at >= round_began);
	/* claimed before this server started (or in another cluster, restored) */
	if (claimed_at < PgStartTime || BackendPidGetProc(pid) == NULL)
		PG_RETURN_BOOL(false);
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = hl_local_backend_status(i);

		if (local != NULL && local->backendStatus.st_procpid == pid)
			PG_RETURN_BOOL(local->backendStatus.st_proc_start_timestamp <= claimed_at);
	}
	PG_RETURN_BOOL(true);
}

/* whether this transaction holds any lock on the log */
static bool
holds_log_lock(void)
{
	Relation	log = RelationIdGetRelation(hl_log_relid());
	bool		held;

	if (!RelationIsValid(log))
		return false;
	held = CheckRelationLockedByMe(log, AccessShareLock, true);
	RelationClose(log);
	return held;
}

/*
 * Steps: a transaction of their own in the worker, nothing in deliver().
 * A step of a hook subscription first takes the registry's lock, before the
 * subscription's row and the log (see hl_hook_registry_lock()); webhooks
 * and the round's first step lock nothing unhook() does.  Not in a
 * transaction that already holds a lock on the log (deliver() after an
 * append): there the log comes first, and a hook() or unhook() waiting
 * for the log behind it while holding the registry would deadlock with
 * it; and while it holds the log, unhook() cannot take the log's lock that
 * the registry's lock is there to order.
 */
static void
step_begin(bool in_worker, bool hook)
{
	if (in_worker)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	if (hook && !holds_log_lock())
		hl_hook_registry_lock(RowShareLock);
	hl_spi_connect();
}

static void
step_end(bool in_worker)
{
	SPI_finish();
	if (in_worker)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
}

static Datum
ms_interval(double ms)
{
	return DirectFunctionCall2(interval_mul,
							   DirectFunctionCall3(interval_in, CStringGetDatum("1 ms"),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
							   Float8GetDatum(ms));
}

/* base * 2^(attempts - 1), capped at the maximum, +-20 % */
static Datum
backoff(int attempts)
{
	double		ms = hl_retry_base_delay;

	for (int i = 1; i < attempts && ms < hl_retry_max_delay; i++)
		ms *= 2;
	ms = Min(ms, (double) hl_retry_max_delay);
	ms *= 0.8 + 0.4 * pg_prng_double(&pg_global_prng_state);
	return ms_interval(ms);
}

/* Hook subscriptions, in registration order: names and handlers. */
static List *
hook_subscriptions(Oid **handlers)
{
	List	   *names = NIL;
	int			rc;

	hl_prepare_cached(&hook_subscriptions_plan, HOOK_SUBSCRIPTIONS_QUERY, 0, NULL);
	rc = hl_run_as_log_owner(hook_subscriptions_plan, NULL, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_SELECT, HOOK_SUBSCRIPTIONS_QUERY);
	*handlers = palloc((SPI_processed + 1) * sizeof(Oid));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		(*handlers)[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 2, &isnull));
	}
	return names;
}

/*
 * A hook's handler, resolved again if a function or schema has changed
 * since *resolved_at (hl_hook_handler_names_changed()): a round takes many
 * transactions in the worker, and a handler renamed or dropped in the
 * meantime must fail as it would in a round started now, not run on by OID.
 * A hook removed in the meantime keeps its handler: its subscription goes
 * with it.  SPI is connected.
 */
static Oid
current_handler(const HlSubscription *sub, Oid handler, uint64 *resolved_at)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1];
	int			rc;

	if (*resolved_at == hl_hook_handler_names_changed())
		return handler;
	/* a change seen while this runs makes the next call resolve again */
	*resolved_at = hl_hook_handler_names_changed();
	args[0] = Int64GetDatum(sub->hook_id);
	hl_prepare_cached(&hook_handler_plan, HOOK_HANDLER_QUERY, 1, types);
	rc = hl_run_as_log_owner(hook_handler_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_SELECT, HOOK_HANDLER_QUERY);
	if (SPI_processed == 1)
	{
		bool		isnull;

		handler = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
	}
	return handler;
}

/*
 * A claim's first part: new events become pending rows and the position
 * moves past them; returns how many.  The subscription's row lock keeps two
 * deliverers from claiming at once.
 */
static int
enqueue_new(HlSubscription *sub, int max_events)
{
	Oid			types[6] = {XID8OID, INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	HlPosition	pos;
	bool		restored;
	int64		seq;
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int			nestlevel;
	int			enqueued;
	int			rc;

	hl_position_of(sub, 0, 1, &pos);
	restored = hl_position_resume(&pos, &args[0], &nulls[0], &seq);
	args[1] = Int64GetDatum(seq);
	args[2] = CStringGetTextDatum(sub->pattern);
	args[3] = Int64GetDatum(max_events);
	args[4] = PointerGetDatum(sub->tenant);
	nulls[4] = sub->tenant ? ' ' : 'n';
	args[5] = PointerGetDatum(sub->target);
	nulls[5] = sub->target ? ' ' : 'n';
	nestlevel = hl_ordered_scan_begin();
	hl_become_role(sub->owner, &saved);
	if (restored)
		hl_prepare_cached(&new_events_restored_plan, NEW_EVENTS_RESTORED_QUERY, 6, types);
	else
		hl_prepare_cached(&new_events_plan, NEW_EVENTS_QUERY, 6, types);
	/* a round hands out nothing of its caller's own, uncommitted (pull.c) */
	hl_horizon_stops_at_own_xact = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(restored ? new_events_restored_plan : new_events_plan,
							  args, nulls, false, 0);
	}
	PG_FINALLY();
	{
		hl_horizon_stops_at_own_xact = false;
	}
	PG_END_TRY();
	hl_restore_user(&saved);
	hl_ordered_scan_end(nestlevel);
	MemoryContextSwitchTo(caller);
	hl_spi_check(rc, SPI_OK_SELECT, NEW_EVENTS_QUERY);

	enqueued = (int) SPI_processed;
	if (enqueued > 0)
	{
		int			n = (int) SPI_processed;
		SPITupleTable *tt = SPI_tuptable;
		Datum	   *ids = palloc(n * sizeof(Datum));
		Datum	   *seqs = palloc(n * sizeof(Datum));
		Datum	   *tenants = palloc(n * sizeof(Datum));
		Datum	   *targets = palloc(n * sizeof(Datum));
		bool	   *target_nulls = palloc(n * sizeof(bool));
		int			dims[1] = {n};
		int			lbs[1] = {1};
		Oid			etypes[5] = {TEXTOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
		Datum		eargs[5];
		Datum		last_xact;
		bool		isnull;

		for (int i = 0; i < n; i++)
		{
			ids[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
			seqs[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);
			tenants[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull);
			targets[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &target_nulls[i]);
		}
		last_xact = SPI_getbinval(tt->vals[n - 1], tt->tupdesc, 5, &isnull);

		eargs[0] = CStringGetTextDatum(sub->name);
		eargs[1] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
		eargs[2] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		eargs[3] = PointerGetDatum(construct_array(tenants, n, TEXTOID, -1, false, TYPALIGN_INT));
		eargs[4] = PointerGetDatum(construct_md_array(targets, target_nulls, 1, dims, lbs,
													  TEXTOID, -1, false, TYPALIGN_INT));
		hl_prepare_cached(&enqueue_plan, ENQUEUE_QUERY, 5, etypes);
		rc = hl_run_as_log_owner(enqueue_plan, eargs, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_INSERT, ENQUEUE_QUERY);
		/* with its fence: a restored position resumes after safe_seq (position.c) */
		hl_position_move(sub, 0, last_xact, DatumGetInt64(seqs[n - 1]));
	}
	return enqueued;
}

/* A claim's second part: the due rows, held by this sender, in seq order. */
static List *
claim_due(HlSubscription *sub, int max_events, int chain, TimestampTz round_start)
{
	List	   *claimed = NIL;
	int			rc;

	{
		Oid			ctypes[9] = {TEXTOID, INT4OID, INTERVALOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
		INT4OID};
		Datum		cargs[9];
		SenderCursor *cursor = sender_cursor(sub->name);

		cargs[0] = CStringGetTextDatum(sub->name);
		cargs[1] = Int32GetDatum(max_events);
		/* how long the row shows as in flight; sender_pid, not this, guards it */
		cargs[2] = ms_interval((double) hl_http_timeout + 60000.0);
		/* one attempt per row and round */
		cargs[3] = TimestampTzGetDatum(round_start);
		/* ('', ''): before every (tenant, target) */
		cargs[4] = CStringGetTextDatum(cursor->tenant);
		cargs[5] = CStringGetTextDatum(cursor->target);
		cargs[6] = Int32GetDatum(MyProcPid);
		cargs[7] = Int32GetDatum(chain);
		cargs[8] = Int32GetDatum(sub->max_attempts);
		hl_prepare_cached(&claim_plan, CLAIM_QUERY, 9, ctypes);
		rc = hl_run_as_log_owner(claim_plan, cargs, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_UPDATE_RETURNING, CLAIM_QUERY);
	}
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		Claimed    *c = palloc(sizeof(Claimed));
		bool		isnull;

		c->event_id = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
		c->seq = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		c->tenant = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
		c->attempts = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull));
		c->target = SPI_getvalue(tup, SPI_tuptable->tupdesc, 5);
		c->old_status = SPI_getvalue(tup, SPI_tuptable->tupdesc, 6);
		c->old_last_attempt_at = SPI_getbinval(tup, SPI_tuptable->tupdesc, 7, &c->old_last_null);
		c->old_next_attempt_at = SPI_getbinval(tup, SPI_tuptable->tupdesc, 8, &c->old_next_null);
		c->counted = DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 9, &isnull));
		c->exhausted = DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 10, &isnull));
		claimed = lappend(claimed, c);
	}
	advance_cursor(sub->name, claimed);
	/* UPDATE ... RETURNING gives no order: deliver in seq order */
	list_sort(claimed, claimed_cmp);
	return claimed;
}

/*
 * The event as the handler sees it, read as the subscription's owner:
 * every column, plus "state" after it (NULL for events without a target).
 * NULL if the owner may not read it (any more).
 */
static Jsonb *
event_document(const HlSubscription *sub, int64 seq)
{
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		args[3];
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	bool		no_target;
	Jsonb	   *doc;
	Datum		state = (Datum) 0;
	bool		state_null = true;
	int			rc;

	args[0] = Int64GetDatum(seq);
	hl_prepare_cached(&event_doc_plan, EVENT_DOC_QUERY, 1, types + 1);
	hl_become_role(sub->owner, &saved);
	rc = SPI_execute_plan(event_doc_plan, args, NULL, false, 1);
	hl_restore_user(&saved);
	MemoryContextSwitchTo(caller);
	hl_spi_check(rc, SPI_OK_SELECT, EVENT_DOC_QUERY);
	if (SPI_processed == 0)
		return NULL;
	doc = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &no_target);
	if (!no_target)
	{
		args[0] = PointerGetDatum(DatumGetTextPCopy(args[0]));
		args[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		args[2] = PointerGetDatum(DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0],
																  SPI_tuptable->tupdesc, 4, &isnull)));
		hl_prepare_cached(&state_plan, STATE_QUERY, 3, types);
		rc = hl_run_as_log_owner(state_plan, args, NULL, false, 1);
		hl_spi_check(rc, SPI_OK_SELECT, STATE_QUERY);
		state = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &state_null);
	}

	return hl_with_state(doc, state_null ? NULL : DatumGetJsonbP(state));
}

/*
 * The state after each event a backend sends, per (subscription, tenant,
 * target): one target's events go in version order, so the state after the
 * next one is this one with that event applied -- the same fold as a
 * replay, instead of a replay from the nearest snapshot for every event
 * (up to snapshot_interval events read each time).  Events never change,
 * so an entry stays right while the log it was read from exists (a new
 * headlessly.events, after DROP EXTENSION and CREATE, starts it afresh).
 */
typedef struct StateEntry
{
	uint64		hash;			/* of key */
	char	   *key;			/* subscription, tenant, target, NUL-separated */
	int			keylen;
	int64		version;		/* r is the replay right after it */
	HlReplay	r;				/* base in state_cxt; no pending patches */
} StateEntry;

/* beyond this the cache starts again empty */
#define HL_STATE_CACHE_BYTES (32 * 1024 * 1024)

static MemoryContext state_cxt = NULL;
static HTAB *state_cache = NULL;
static Oid	state_cache_log = InvalidOid;	/* headlessly.events it was read from */

static void
state_cache_check(void)
{
	Oid			log = hl_log_relid();

	if (state_cxt == NULL)
		state_cxt = AllocSetContextCreate(TopMemoryContext, "headlessly delivery states",
										  ALLOCSET_DEFAULT_SIZES);
	if (state_cache != NULL &&
		(log != state_cache_log ||
		 MemoryContextMemAllocated(state_cxt, true) > HL_STATE_CACHE_BYTES))
	{
		MemoryContextReset(state_cxt);
		state_cache = NULL;
	}
	if (state_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(StateEntry);
		ctl.hcxt = state_cxt;
		state_cache = hash_create("headlessly delivery states", 1024, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		state_cache_log = log;
	}
}

/*
 * The entity's state right after one of its events (NULL if it is not
 * alive then), from the cache when the backend sent the one before;
 * otherwise replayed, as the log's owner (derived tables are its).
 */
static Jsonb *
state_after(const char *subscription, text *tenant, text *target, int64 version,
			text *type, Jsonb *data, TimestampTz recorded_at)
{
	StringInfoData key;
	uint64		hash;
	bool		found;
	StateEntry *entry;
	HlReplay	r;
	Jsonb	   *state;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext old;

	initStringInfo(&key);
	appendBinaryStringInfo(&key, subscription, strlen(subscription) + 1);
	appendBinaryStringInfo(&key, VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant));
	appendStringInfoChar(&key, '\0');
	appendBinaryStringInfo(&key, VARDATA_ANY(target), VARSIZE_ANY_EXHDR(target));
	hash = hash_bytes_extended((const unsigned char *) key.data, key.len, 0);
	entry = hash_search(state_cache, &hash, HASH_ENTER, &found);
	if (found && (entry->keylen != key.len || memcmp(entry->key, key.data, key.len) != 0))
	{
		/* another stream with the same hash: it gives way */
		pfree(entry->key);
		if (entry->r.base != NULL)
			pfree(entry->r.base);
		found = false;
	}
	if (!found)
	{
		entry->key = MemoryContextAlloc(state_cxt, key.len);
		memcpy(entry->key, key.data, key.len);
		entry->keylen = key.len;
		entry->version = -1;
		hl_replay_init(&entry->r);
	}

	if (entry->version == version)
		return entry->r.base;
	if (entry->version == version - 1)
	{
		r = entry->r;
		hl_replay_apply(&r, version, type, data, recorded_at);
	}
	else
	{
		HlPoint		point = {0};
		HlSavedUser saved;

		point.by_version = true;
		point.version = version;
		hl_become_log_owner(&saved);
		hl_entity_at(tenant, target, &point, false, &r, NULL);
		hl_restore_user(&saved);
		/* SPI returns in its procedure context; r stays valid until SPI_finish() */
		MemoryContextSwitchTo(caller);
	}
	state = hl_replay_state(&r);

	/* keep it: the base copied into the cache, the old one freed */
	old = MemoryContextSwitchTo(state_cxt);
	hl_replay_keep(&r);
	MemoryContextSwitchTo(old);
	if (entry->r.base != NULL && entry->r.base != r.base)
		pfree(entry->r.base);
	r.pending = NULL;
	r.npending = 0;
	r.maxpending = 0;
	entry->r = r;
	entry->version = version;
	return state != NULL ? entry->r.base : NULL;
}

/* one row of the batch's documents query */
typedef struct DocRow
{
	int			index;			/* in claimed; -1: none */
	Jsonb	   *doc;
	text	   *tenant;
	text	   *target;			/* NULL: no state */
	int64		version;
	text	   *type;
	Jsonb	   *data;
	TimestampTz recorded_at;
} DocRow;

/*
 * The events of a batch as event_document() makes them (every column, plus
 * "state" after it), in one query for the batch instead of two per event:
 * docs[i] for the i-th of claimed, NULL where the subscription's owner may
 * not read the event.
 */
static void
event_documents(const HlSubscription *sub, List *claimed, Jsonb **docs)
{
	int			n = list_length(claimed);
	Datum	   *seqs = palloc(n * sizeof(Datum));
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1];
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	SPITupleTable *tuptable;
	uint64		nrows;
	DocRow	   *rows;
	ListCell   *lc;
	int			i = 0;
	int			rc;

	foreach(lc, claimed)
	{
		seqs[i] = Int64GetDatum(((Claimed *) lfirst(lc))->seq);
		docs[i++] = NULL;
	}
	state_cache_check();
	args[0] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	hl_prepare_cached(&event_docs_plan, EVENT_DOCS_QUERY, 1, types);
	hl_become_role(sub->owner, &saved);
	rc = SPI_execute_plan(event_docs_plan, args, NULL, false, 0);
	hl_restore_user(&saved);
	MemoryContextSwitchTo(caller);
	hl_spi_check(rc, SPI_OK_SELECT, EVENT_DOCS_QUERY);

	/* copied out first: state_after() runs queries of its own */
	tuptable = SPI_tuptable;
	nrows = SPI_processed;
	rows = palloc0(Max(nrows, 1) * sizeof(DocRow));
	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = tuptable->vals[row];
		TupleDesc	desc = tuptable->tupdesc;
		DocRow	   *d = &rows[row];
		bool		isnull;
		bool		no_target;
		int64		seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		Datum		target;
		int			lo = 0;
		int			hi = n - 1;

		/* claimed is in seq order */
		d->index = -1;
		while (lo <= hi)
		{
			int			mid = (lo + hi) / 2;
			int64		s = DatumGetInt64(seqs[mid]);

			if (s == seq)
			{
				d->index = mid;
				break;
			}
			if (s < seq)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		if (d->index < 0)
			continue;
		d->doc = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		target = SPI_getbinval(tup, desc, 3, &no_target);
		if (no_target)
			continue;
		d->target = DatumGetTextPCopy(target);
		d->version = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		d->tenant = DatumGetTextPCopy(SPI_getbinval(tup, desc, 5, &isnull));
		d->type = DatumGetTextPCopy(SPI_getbinval(tup, desc, 6, &isnull));
		d->data = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull));
		d->recorded_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
	}
	for (uint64 row = 0; row < nrows; row++)
	{
		DocRow	   *d = &rows[row];
		Jsonb	   *state = NULL;

		if (d->index < 0)
			continue;
		if (d->target != NULL)
			state = state_after(sub->name, d->tenant, d->target, d->version, d->type, d->data,
								d->recorded_at);
		docs[d->index] = hl_with_state(d->doc, state);
	}
}

/* Runs an outcome's UPDATE as the log's owner. */
static void
record(SPIPlanPtr *plan, const char *query, int nargs, Oid *types, Datum *args, char *nulls)
{
	int			rc;

	hl_prepare_cached(plan, query, nargs, types);
	rc = hl_run_as_log_owner(*plan, args, nulls, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, query);
}

/*
 * Run the handler for one claimed event as the subscription's owner with
 * headlessly.tenant set to the event's tenant, and mark the row delivered.
 * Raises whatever the handler raised.
 */
/*
 * headlessly.hook_timeout: a handler that does not return would hold the
 * round, and every delivery of the database after it.  A timer of our own
 * cancels it as a statement timeout would, and again every second while it
 * has not returned (a handler may catch one cancel, not every one); in the
 * worker, a handler still running HANDLER_GRACE_CANCELS seconds later ends
 * the worker (its attempt then counts against max_attempts, and the
 * launcher starts a new worker).  The cancel is the handler's failed
 * attempt, not the caller's: the caller's own cancel and statement_timeout
 * still end the round (only a cancel while this timer had fired is taken;
 * one of the caller's arriving in that same moment is taken with it).
 * A handler that calls deliver() runs inner handlers: each runs at most
 * until the earlier of its own limit and the outer one's, and the outer's
 * timer is restored after it.
 */
#define HANDLER_RECANCEL_MS 1000
#define HANDLER_GRACE_CANCELS 3

static TimeoutId handler_timeout_id = MAX_TIMEOUTS;
static TimestampTz handler_deadline = 0;	/* of the running handler; 0: none */
static volatile sig_atomic_t handler_timed_out = false;
static volatile sig_atomic_t handler_cancels = 0;

static void
handler_timeout_handler(void)
{
	handler_timed_out = true;
	if (++handler_cancels > HANDLER_GRACE_CANCELS && hl_am_background_worker())
		ProcDiePending = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/* Start a handler's limit; returns the limit of the handler it runs in. */
static TimestampTz
handler_timeout_begin(void)
{
	TimestampTz outer = handler_deadline;
	TimestampTz deadline = outer;

	if (hl_hook_timeout > 0)
	{
		TimestampTz own = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), hl_hook_timeout);

		if (deadline == 0 || own < deadline)
			deadline = own;
	}
	handler_timed_out = false;
	handler_cancels = 0;
	handler_deadline = deadline;
	if (deadline != 0)
	{
		if (handler_timeout_id == MAX_TIMEOUTS)
			handler_timeout_id = RegisterTimeout(USER_TIMEOUT, handler_timeout_handler);
		enable_timeout_every(handler_timeout_id, deadline, HANDLER_RECANCEL_MS);
	}
	return outer;
}

/*
 * End a handler's limit and go back to the outer handler's (whose timer
 * fires at once if its time has passed meanwhile).  True if this one's
 * time ran out; a cancel the timer left pending is dropped.
 */
static bool
handler_timeout_end(TimestampTz outer)
{
	bool		fired;

	if (handler_timeout_id != MAX_TIMEOUTS)
		disable_timeout(handler_timeout_id, false);
	fired = handler_timed_out;
	if (fired)
		QueryCancelPending = false;
	handler_timed_out = false;
	handler_cancels = 0;
	handler_deadline = outer;
	if (outer != 0)
		enable_timeout_every(handler_timeout_id, outer, HANDLER_RECANCEL_MS);
	return fired;
}

static void
run_handler(HlSubscription *sub, Oid handler, Claimed *c)
{
	Jsonb	   *event;
	HlSavedUser saved;
	int			nestlevel;
	TimestampTz start = GetCurrentTimestamp();
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', 'n', ' '};
	bool		missing;
	char	   *problem = hl_hook_handler_problem(handler, &missing);

	/* worded as the before and after hooks word it (dispatch.c) */
	if (missing)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("handler of after_commit hook " INT64_FORMAT " no longer exists", sub->hook_id),
				 errdetail("The function was dropped, renamed, or replaced by another owner's function of the same name after the hook was registered."),
				 errhint("Register the handler again with headlessly.hook(), or remove the hook with headlessly.unhook(" INT64_FORMAT ").", sub->hook_id)));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("handler of after_commit hook " INT64_FORMAT " cannot be called", sub->hook_id),
				 errdetail("%s", problem),
				 errhint("Remove the hook with headlessly.unhook(" INT64_FORMAT ").", sub->hook_id)));

	event = event_document(sub, c->seq);
	if (event != NULL)
	{
		/* as a SECURITY DEFINER function of the owner with SET headlessly.tenant */
		GetUserIdAndSecContext(&saved.userid, &saved.sec_context);
		SetUserIdAndSecContext(sub->owner, saved.sec_context | SECURITY_LOCAL_USERID_CHANGE);
		nestlevel = NewGUCNestLevel();
		(void) set_config_option("headlessly.tenant", c->tenant, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);

		/*
		 * pg_temp last, as for a SECURITY DEFINER function: this backend
		 * keeps the temp tables other owners' handlers created, which would
		 * otherwise come first for the names this handler's code leaves
		 * unqualified.
		 */
		(void) set_config_option("search_path",
								 namespace_search_path[0] == '\0' ? "pg_temp" :
								 psprintf("%s, pg_temp", namespace_search_path),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		{
			LOCAL_FCINFO(fcinfo, 1);
			FmgrInfo	flinfo;

			/* a handler may return NULL: it changes nothing here */
			fmgr_info(handler, &flinfo);
			InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
			fcinfo->args[0].value = JsonbPGetDatum(event);
			fcinfo->args[0].isnull = false;
			(void) FunctionCallInvoke(fcinfo);
		}

		/*
		 * Undo every setting the handler made, SET and set_config(..., false)
		 * too, as at a subtransaction's abort: the round runs other owners'
		 * handlers next in this backend, and a search_path left behind would
		 * make the next owner's handler run this one's functions.
		 */
		AtEOXact_GUC(false, nestlevel);
		hl_restore_user(&saved);
	}

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = CStringGetTextDatum(c->event_id);
	args[2] = Int32GetDatum((int) ((GetCurrentTimestamp() - start) / 1000));
	args[3] = (Datum) 0;
	args[4] = Int32GetDatum(MyProcPid);
	record(&done_plan, DONE_QUERY, 5, types, args, nulls);
}

/* A failed attempt: a retry after delay, or a dead letter after max_attempts. */
static void
record_failed(HlSubscription *sub, Claimed *c, const char *error, int duration_ms,
			  int http_status, Datum delay)
{
	Oid			types[9] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INTERVALOID, INT4OID, INT4OID,
	INT4OID};
	Datum		args[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = CStringGetTextDatum(c->event_id);
	args[2] = Int32GetDatum(sub->max_attempts);
	args[3] = CStringGetTextDatum(error);
	args[4] = Int32GetDatum(MyProcPid);
	args[5] = delay;
	args[6] = Int32GetDatum(http_status);
	nulls[6] = http_status > 0 ? ' ' : 'n';
	args[7] = Int32GetDatum(duration_ms);
	/*
	 * an attempt the claim did not count (a chain's later row) counts now;
	 * an exhausted row was not attempted
	 */
	args[8] = Int32GetDatum(c->counted || c->exhausted ? 0 : 1);
	record(&failed_plan, FAILED_QUERY, 9, types, args, nulls);
}

static void
record_failure(HlSubscription *sub, Claimed *c, ErrorData *edata, int duration_ms)
{
	record_failed(sub, c, psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
								   edata->message ? edata->message : ""),
				  duration_ms, 0, backoff(c->attempts));
}

/* An exhausted row (claimed after max_attempts attempts): a dead letter. */
static void
record_exhausted(HlSubscription *sub, Claimed *c)
{
	Assert(c->exhausted);
	record_failed(sub, c, "max_attempts reached without a recorded outcome (the sender ended during the last attempt, or max_attempts was lowered)",
				  0, 0, ms_interval(0));
}

/*
 * Webhooks: the requests are built while the claim's transaction is open
 * (the event is read as the subscription's owner), sent with none open in
 * the worker, and their results recorded in a transaction of their own.
 */
static void
build_requests(HlSubscription *sub, List *claimed)
{
	Jsonb	  **docs;
	ListCell   *lc;
	int			i = 0;

	if (claimed == NIL)
		return;
	docs = palloc(list_length(claimed) * sizeof(Jsonb *));
	event_documents(sub, claimed, docs);
	foreach(lc, claimed)
	{
		Claimed    *c = lfirst(lc);
		Jsonb	   *event = docs[i++];

		memset(&c->req, 0, sizeof(c->req));
		c->req.url = sub->url;
		c->req.event_id = c->event_id;
		c->req.secret = sub->secret;
		c->req.headers = sub->headers;
		c->req.timeout_ms = hl_http_timeout;
		c->req.retry_after_s = -1;
		/*
		 * an event its owner may no longer read is not sent: a failure; nor
		 * is an exhausted one, which holds back the rest of its chain as a
		 * failure does (they go back unchanged, behind a dead letter now)
		 */
		if (event != NULL && !c->exhausted)
			c->req.body = hl_webhook_body(sub->format, event, sub->headers, &c->req.body_len);
	}
}

/* Marks every successful request of a batch delivered, in one statement. */
static void
record_webhooks_done(HlSubscription *sub, Claimed **rows, int n)
{
	Datum	   *ids = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *statuses = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *durations = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *uncounted = palloc(Max(n, 1) * sizeof(Datum));
	int			ndone = 0;
	Oid			types[6] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT4OID, INT4ARRAYOID};
	Datum		args[6];

	for (int i = 0; i < n; i++)
	{
		HlWebhookRequest *r = &rows[i]->req;

		if (!hl_webhook_succeeded(r))
			continue;
		ids[ndone] = CStringGetTextDatum(r->event_id);
		statuses[ndone] = Int32GetDatum(r->http_status);
		durations[ndone] = Int32GetDatum(r->duration_ms);
		uncounted[ndone] = Int32GetDatum(rows[i]->counted ? 0 : 1);
		ndone++;
	}
	if (ndone == 0)
		return;
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(construct_array(ids, ndone, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(statuses, ndone, INT4OID, 4, true, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(durations, ndone, INT4OID, 4, true, TYPALIGN_INT));
	args[4] = Int32GetDatum(MyProcPid);
	args[5] = PointerGetDatum(construct_array(uncounted, ndone, INT4OID, 4, true, TYPALIGN_INT));
	/* a row no longer held (taken over, or removed) is not marked: no count */
	record(&done_all_plan, DONE_ALL_QUERY, 6, types, args, NULL);
}

/*
 * How many events of one target a webhook claim takes: enough that a full
 * batch still has webhook_max_in_flight targets to send to at once, the
 * events of each target going one after another.
 */
static int
webhook_chain(int max_events)
{
	return Max(1, (max_events + hl_webhook_max_in_flight - 1) / hl_webhook_max_in_flight);
}

/* (tenant, target, seq) order, rows without a target last */
static int
chain_order_cmp(const void *a, const void *b)
{
	const Claimed *ca = *(Claimed *const *) a;
	const Claimed *cb = *(Claimed *const *) b;
	int			c;

	if (ca->target == NULL || cb->target == NULL)
		return (ca->target == NULL) - (cb->target == NULL);
	c = target_key_cmp(ca->tenant, ca->target, cb->tenant, cb->target);
	if (c != 0)
		return c;
	return ca->seq < cb->seq ? -1 : ca->seq > cb->seq ? 1 : 0;
}

/*
 * The requests of a batch, each event of a target after the one before it
 * (which the claim took in the same batch, or none); order[i] is the
 * claimed row of reqs[i].  One without a body (its event the subscription's
 * owner may not read) fails without being sent, and holds back the rest of
 * its target as any failure does.
 */
static HlWebhookRequest *
chained_requests(List *claimed, Claimed ***order)
{
	int			n = list_length(claimed);
	HlWebhookRequest *reqs = palloc0(sizeof(HlWebhookRequest) * Max(n, 1));
	Claimed   **rows = palloc(sizeof(Claimed *) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, claimed)
		rows[i++] = lfirst(lc);
	qsort(rows, n, sizeof(Claimed *), chain_order_cmp);
	for (i = 0; i < n; i++)
	{
		reqs[i] = rows[i]->req;
		if (i > 0 && rows[i]->target != NULL && rows[i - 1]->target != NULL &&
			target_key_cmp(rows[i]->tenant, rows[i]->target,
						   rows[i - 1]->tenant, rows[i - 1]->target) == 0)
			reqs[i].after = &reqs[i - 1];
	}
	*order = rows;
	return reqs;
}

/*
 * Whether an error is a real interrupt of this backend (a cancel, the
 * caller's statement_timeout, ...), raised where PostgreSQL processes
 * interrupts, rather than one a handler raised with such a SQLSTATE.  A
 * round stops only for the first: whatever a handler raises (a cancel's
 * SQLSTATE, an ASSERT, running out of memory) is that handler's failure,
 * recorded and retried, or one owner's handler would stop every other
 * owner's handlers and webhooks of the database, at every round.
 */
static bool
raised_by_interrupt(const ErrorData *edata)
{
	return ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION &&
		edata->filename != NULL && strcmp(edata->filename, "postgres.c") == 0;
}

/* Gives the rows that were not sent back as they were before the claim. */
static void
release_unsent(HlSubscription *sub, List *claimed)
{
	int			n = list_length(claimed);
	Datum	   *ids = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *statuses = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *lasts = palloc(Max(n, 1) * sizeof(Datum));
	Datum	   *nexts = palloc(Max(n, 1) * sizeof(Datum));
	bool	   *last_nulls = palloc(Max(n, 1) * sizeof(bool));
	bool	   *next_nulls = palloc(Max(n, 1) * sizeof(bool));
	int			nrel = 0;
	int			dims[1];
	int			lbs[1] = {1};
	Oid			types[6] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
							INT4OID, TIMESTAMPTZARRAYOID};
	Datum		args[6];
	ListCell   *lc;

	foreach(lc, claimed)
	{
		Claimed    *c = lfirst(lc);

		if (!c->req.not_sent)
			continue;
		ids[nrel] = CStringGetTextDatum(c->event_id);
		statuses[nrel] = CStringGetTextDatum(c->old_status);
		lasts[nrel] = c->old_last_attempt_at;
		last_nulls[nrel] = c->old_last_null;
		nexts[nrel] = c->old_next_attempt_at;
		next_nulls[nrel] = c->old_next_null;
		nrel++;
	}
	if (nrel == 0)
		return;
	dims[0] = nrel;
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(construct_array(ids, nrel, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(statuses, nrel, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_md_array(lasts, last_nulls, 1, dims, lbs, TIMESTAMPTZOID,
												 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/* $5: HL_HELD_ROW's; only rows this sender still holds are given back */
	args[4] = Int32GetDatum(MyProcPid);
	args[5] = PointerGetDatum(construct_md_array(nexts, next_nulls, 1, dims, lbs, TIMESTAMPTZOID,
												 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	record(&release_plan, RELEASE_QUERY, 6, types, args, NULL);
}

/*
 * Sends a batch with no transaction open (in the worker), then records the
 * outcomes in one: the successes in one statement, each failure, and the
 * rows not sent given back.  Returns the number of events attempted.
 */
static int
send_webhooks(HlSubscription *sub, List *claimed, bool in_worker)
{
	int			n = list_length(claimed);
	Claimed   **order;
	HlWebhookRequest *reqs = chained_requests(claimed, &order);
	ListCell   *lc;
	bool		gone = false;
	int			attempted = 0;

	hl_webhook_send_all(reqs, n);
	for (int i = 0; i < n; i++)
	{
		order[i]->req = reqs[i];
		order[i]->req.after = NULL;
	}

	step_begin(in_worker, false);
	record_webhooks_done(sub, order, n);
	release_unsent(sub, claimed);
	foreach(lc, claimed)
	{
		Claimed    *c = lfirst(lc);
		HlWebhookRequest *r = &c->req;

		if (r->not_sent)
			continue;
		if (c->exhausted)
		{
			record_exhausted(sub, c);
			continue;
		}
		attempted++;
		/* made now, and counted with its outcome: the backoff's attempt */
		if (!c->counted)
			c->attempts++;
		if (r->body == NULL)
		{
			record_failed(sub, c, "the subscription's owner may not read this event", 0, 0,
						  backoff(c->attempts));
			continue;
		}
		if (!hl_webhook_succeeded(r))
		{
			/*
			 * Retry-After on 429 and 503 is the receiver's own backoff, up to
			 * retry_max_delay: a receiver's "Retry-After: 2147483647" (or a
			 * date decades ahead) would hold the event and its target's later
			 * ones back for as long, never a dead letter.
			 */
			Datum		delay = (r->retry_after_s >= 0 &&
								 (r->http_status == 429 || r->http_status == 503)) ?
				ms_interval(Min(r->retry_after_s * 1000.0, (double) hl_retry_max_delay)) :
				backoff(c->attempts);

			record_failed(sub, c, r->error ? r->error : psprintf("HTTP %d", r->http_status),
						  r->duration_ms, r->http_status, delay);
			if (r->http_status == 410)
				gone = true;
		}
	}
	if (gone)
	{
		Oid			types[1] = {TEXTOID};
		Datum		args[1];

		args[0] = CStringGetTextDatum(sub->name);
		record(&gone_plan, GONE_QUERY, 1, types, args, NULL);
	}
	step_end(in_worker);
	return attempted;
}

/*
 * Deliver one claimed event: in the worker, a transaction of its own; in
 * deliver(), a subtransaction.  A failure is recorded in a new one.
 */
pg_noinline static void
deliver_one(HlSubscription *sub, Oid *handler, uint64 *resolved_at, Claimed *c,
			bool in_worker)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz start = GetCurrentTimestamp();
	ErrorData  *edata = NULL;
	TimestampTz outer_deadline;
	volatile bool late = false;

	/*
	 * Claimed after max_attempts attempts: each ended with its sender (a
	 * crash, a kill, or a handler that outlived hook_timeout by so much that
	 * it ended the worker), so none was recorded.  It is a dead letter now,
	 * not one more run.
	 */
	if (c->exhausted)
	{
		if (in_worker)
			step_begin(true, true);
		else
			hl_spi_connect();
		record_exhausted(sub, c);
		if (in_worker)
			step_end(true);
		else
			SPI_finish();
		return;
	}

	if (in_worker)
		step_begin(true, true);
	else
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		hl_spi_connect();
	}

	outer_deadline = handler_timeout_begin();
	PG_TRY();
	{
		*handler = current_handler(sub, *handler, resolved_at);
		run_handler(sub, *handler, c);

		/*
		 * Time ran out as the handler returned: this attempt failed all
		 * the same.
		 */
		if (handler_timeout_end(outer_deadline))
		{
			late = true;
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("after_commit handler ran longer than headlessly.hook_timeout (%d ms)",
							hl_hook_timeout)));
		}
		if (in_worker)
			step_end(true);
		else
		{
			SPI_finish();
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
	}
	PG_CATCH();
	{
		bool		timed_out = late || handler_timeout_end(outer_deadline);

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (in_worker)
			AbortCurrentTransaction();
		else
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		if (timed_out && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			edata->message = psprintf("after_commit handler ran longer than headlessly.hook_timeout (%d ms)",
									  hl_hook_timeout);
		else if (hl_error_must_propagate(edata->sqlerrcode))
		{
			if (raised_by_interrupt(edata))
				ReThrowError(edata);

			/*
			 * The server's trouble (disk full, corruption, out of memory)
			 * met inside the handler, or the handler's raise of its code:
			 * the round goes on, and the server log keeps it.
			 */
			ereport(LOG,
					(errmsg("after_commit handler of hook " INT64_FORMAT " failed with SQLSTATE %s: %s",
							sub->hook_id, unpack_sql_state(edata->sqlerrcode),
							edata->message ? edata->message : ""),
					 errdetail("It is recorded as the handler's failure of event %s and retried; the round goes on.",
							   c->event_id)));
		}
	}
	PG_END_TRY();

	if (edata != NULL)
	{
		int			ms = (int) ((GetCurrentTimestamp() - start) / 1000);

		if (in_worker)
			step_begin(true, true);
		else
			hl_spi_connect();
		record_failure(sub, c, edata, ms);
		if (in_worker)
			step_end(true);
		else
			SPI_finish();
		FreeErrorData(edata);
	}
}

/*
 * Fetches the subscription under its row lock, which keeps two claims
 * apart; whether it is one to deliver.  An owner that was dropped (DROP ROLE
 * does not see subscriptions), that no longer has SELECT on the log (how
 * its subscriptions are stopped), or USAGE on its schema (its claim is
 * planned as the owner), may read nothing: its claim would fail and end
 * the round for every subscription after it.  A webhook's owner must also
 * still have EXECUTE on webhook_send(): revoking it stops its webhooks.
 */
static bool
deliverable(const char *name, HlSubscription *sub)
{
	memset(sub, 0, sizeof(*sub));
	return hl_subscription_fetch(name, true, sub) && strcmp(sub->state, "active") == 0 &&
		hl_subscription_owner_can_read(sub->owner) &&
		(sub->kind != HL_SUB_WEBHOOK || hl_subscription_owner_may_send(sub->owner));
}

/*
 * Claims and delivers batches of one subscription until nothing is due or
 * max_events were attempted; returns the number attempted.  Rows another
 * live sender holds are left to it.
 */
static int
deliver_subscription(const char *name, Oid handler, uint64 resolved_at,
					 MemoryContext round_cxt, int max_events, TimestampTz round_start,
					 bool in_worker)
{
	int			attempted = 0;
	List	   *claimed;

	/* claim again after each batch: a delivered event releases the next of its target */
	do
	{
		HlSubscription sub;
		ListCell   *lc;
		bool		active;

		/* a hook's handler may be missing (0): lock unless it is a webhook's */
		step_begin(in_worker, true);
		MemoryContextSwitchTo(round_cxt);
		claimed = NIL;
		active = deliverable(name, &sub);
		if (active && enqueue_new(&sub, max_events - attempted) > 0 && in_worker)
		{
			/*
			 * The new rows are committed before they are claimed: an UPDATE
			 * of a row that its own transaction inserted checks the row's
			 * foreign key again, one query per row.
			 */
			step_end(true);
			step_begin(true, sub.kind != HL_SUB_WEBHOOK);
			MemoryContextSwitchTo(round_cxt);
			active = deliverable(name, &sub);
		}
		if (active)
			claimed = claim_due(&sub, max_events - attempted,
								sub.kind == HL_SUB_WEBHOOK ? webhook_chain(max_events - attempted) : 1,
								round_start);
		if (sub.kind == HL_SUB_WEBHOOK)
			build_requests(&sub, claimed);
		step_end(in_worker);
		MemoryContextSwitchTo(round_cxt);

		if (sub.kind == HL_SUB_WEBHOOK)
		{
			if (claimed != NIL)
				attempted += send_webhooks(&sub, claimed, in_worker);
			MemoryContextSwitchTo(round_cxt);
			continue;
		}
		foreach(lc, claimed)
		{
			deliver_one(&sub, &handler, &resolved_at, lfirst(lc), in_worker);
			MemoryContextSwitchTo(round_cxt);
			attempted++;
		}
	} while (claimed != NIL && attempted < max_events);
	return attempted;
}

/* One round over every hook subscription, in registration order. */
static int
round_of_hooks(MemoryContext round_cxt, int max_events, bool in_worker)
{
	List	   *names;
	Oid		   *handlers;
	ListCell   *lc;
	int			attempted = 0;
	int			i = 0;
	TimestampTz round_start = GetCurrentTimestamp();
	uint64		resolved_at;

	step_begin(in_worker, false);
	MemoryContextSwitchTo(round_cxt);
	resolved_at = hl_hook_handler_names_changed();
	names = hook_subscriptions(&handlers);

	/*
	 * Housekeeping: delivered rows older than the retention.  It reads the
	 * whole table, so a backend does it at most once a minute (or as often
	 * as a shorter retention asks), not in every round.
	 */
	if (TimestampDifferenceExceeds(last_housekeeping, round_start,
								   (int) Min((int64) hl_delivery_retention * 1000, (int64) HL_HOUSEKEEPING_MS)))
	{
		Oid			types[1] = {INTERVALOID};
		Datum		args[1];
		int			rc;

		args[0] = ms_interval((double) hl_delivery_retention * 1000.0);
		hl_prepare_cached(&retention_plan, RETENTION_QUERY, 1, types);
		rc = hl_run_as_log_owner(retention_plan, args, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_DELETE, RETENTION_QUERY);
		last_housekeeping = round_start;
	}
	step_end(in_worker);
	MemoryContextSwitchTo(round_cxt);

	foreach(lc, names)
	{
		if (attempted >= max_events)
			break;
		attempted += deliver_subscription(lfirst(lc), handlers[i++], resolved_at, round_cxt,
										  max_events - attempted, round_start, in_worker);
	}
	return attempted;
}

int
hl_delivery_round(int max_events, bool in_worker)
{
	/*
	 * The round's memory: in deliver(), the caller's, freed with it even on
	 * error; the worker's transactions come and go, so it keeps its own.
	 */
	MemoryContext round_cxt = AllocSetContextCreate(in_worker ? TopMemoryContext : CurrentMemoryContext,
													"headlessly delivery round",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = CurrentMemoryContext;
	int			attempted;

	/* what this backend claims from now on is in flight until the round ends */
	if (round_depth == 0)
		round_began = GetCurrentTimestamp();
	round_depth++;
	PG_TRY();
	{
		attempted = round_of_hooks(round_cxt, max_events, in_worker);
	}
	PG_FINALLY();
	{
		round_depth--;
		/* in deliver(), an error frees the round's memory with the caller's */
		if (in_worker)
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(round_cxt);
		}
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (!in_worker)
		MemoryContextDelete(round_cxt);
	return attempted;
}

Datum
headlessly_deliver(PG_FUNCTION_ARGS)
{
	int			max_events = PG_ARGISNULL(0) ? 1000 : PG_GETARG_INT32(0);

	if (max_events < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be at least 1, not %d", max_events)));
	PG_RETURN_INT32(hl_delivery_round(max_events, false));
}
