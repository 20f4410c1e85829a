/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  subscribe(), unsubscribe(), pause(), resume(), subscription_status(),
 *	  and reading headlessly.subscriptions for the rest of delivery/.
 *
 * headlessly.subscriptions and its companions are the extension's tables:
 * the functions here write them as the log's owner, after checking that
 * the caller may act for the subscription (has the rights of the role that
 * created it).  A subscription reads events as that role, never as the
 * caller or the owner of the log, so it never hands out an event its
 * creator could not read.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"
#include "delivery/webhook.h"
#include "tenancy/tenancy.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_subscribe);
PG_FUNCTION_INFO_V1(headlessly_unsubscribe);
PG_FUNCTION_INFO_V1(headlessly_pause);
PG_FUNCTION_INFO_V1(headlessly_resume);
PG_FUNCTION_INFO_V1(headlessly_subscription_status);
PG_FUNCTION_INFO_V1(headlessly_subscriptions_changed);
PG_FUNCTION_INFO_V1(headlessly_type_matches);
PG_FUNCTION_INFO_V1(headlessly_group_member);

#define FETCH_QUERY \
	"SELECT name, kind, pattern, target, tenant, url, headers, secret, format, notify," \
	" max_attempts, state, hook_id, owner::pg_catalog.oid, start_xact, start_seq" \
	"  FROM " HL_SCHEMA ".subscriptions WHERE name OPERATOR(pg_catalog.=) $1"

#define INSERT_QUERY \
	"INSERT INTO " HL_SCHEMA ".subscriptions" \
	" (name, kind, pattern, target, tenant, url, headers, secret, format, notify," \
	"  max_attempts, hook_id, owner, start_xact, start_seq)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)" \
	" RETURNING *"

/*
 * The horizon leaves the calling transaction out, and the snapshot's xmax
 * is past it as soon as a newer transaction has ended: a transaction that
 * has written already starts its subscriptions at itself.
 */
#define START_NOW_QUERY \
	"SELECT LEAST(" HL_HORIZON ", $1)"

#define START_TIME_QUERY \
	"SELECT e.xact_id, e.seq OPERATOR(pg_catalog.-) 1 FROM " HL_SCHEMA ".events e" \
	" WHERE e.recorded_at OPERATOR(pg_catalog.>=) $1" \
	" ORDER BY e.xact_id, e.seq LIMIT 1"

#define DELETE_QUERY \
	"DELETE FROM " HL_SCHEMA ".subscriptions WHERE name OPERATOR(pg_catalog.=) $1"

#define SET_STATE_QUERY \
	"UPDATE " HL_SCHEMA ".subscriptions SET state = $2 WHERE name OPERATOR(pg_catalog.=) $1"

/*
 * Status of every subscription: the lag counts every committed event past
 * the slowest member's position, also those an older transaction still
 * running holds back (above the horizon): a long or forgotten prepared
 * transaction shows as a lag that does not shrink, not as no lag at all.
 * The caller's own appends, not committed yet, are left out.
 */
#define STATUS_QUERY \
	"SELECT s.name::pg_catalog.text, s.kind, s.state, p.seq, lag.n," \
	"       pg_catalog.now() OPERATOR(pg_catalog.-) d.oldest, d.pending, d.dead, d.delivered," \
	"       d.last_error, d.last_delivered_at, s.owner::pg_catalog.oid," \
	"       COALESCE(p.xact_id, s.start_xact), COALESCE(p.seq, s.start_seq)," \
	"       s.pattern, s.tenant, s.target" \
	"  FROM " HL_SCHEMA ".subscriptions s" \
	"  LEFT JOIN LATERAL (SELECT x.xact_id, x.seq FROM " HL_SCHEMA ".subscription_positions x" \
	"                      WHERE x.subscription OPERATOR(pg_catalog.=) s.name" \
	"                      ORDER BY x.xact_id NULLS FIRST, x.seq LIMIT 1) p ON true" \
	"  LEFT JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM " HL_SCHEMA ".events e" \
	"                      WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>)" \
	"                            ROW(COALESCE(p.xact_id, s.start_xact), COALESCE(p.seq, s.start_seq))" \
	"                        AND (pg_catalog.pg_current_xact_id_if_assigned() IS NULL" \
	"                             OR e.xact_id OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id_if_assigned())" \
	"                        AND " HL_SCHEMA ".type_matches(e.type, s.pattern)" \
	"                        AND (s.tenant IS NULL OR e.tenant OPERATOR(pg_catalog.=) s.tenant)" \
	"                        AND (s.target IS NULL OR e.target OPERATOR(pg_catalog.=) s.target)) lag ON true" \
	"  LEFT JOIN LATERAL (SELECT" \
	"        pg_catalog.min(y.last_attempt_at) FILTER (WHERE y.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}')) AS oldest," \
	"        pg_catalog.count(*) FILTER (WHERE y.status OPERATOR(pg_catalog.=) ANY ('{pending,failed}')) AS pending," \
	"        pg_catalog.count(*) FILTER (WHERE y.status OPERATOR(pg_catalog.=) 'dead') AS dead," \
	"        pg_catalog.count(*) FILTER (WHERE y.status OPERATOR(pg_catalog.=) 'delivered') AS delivered," \
	"        (pg_catalog.array_agg(y.error ORDER BY y.last_attempt_at DESC)" \
	"           FILTER (WHERE y.error IS NOT NULL))[1] AS last_error," \
	"        pg_catalog.max(y.last_attempt_at) FILTER (WHERE y.status OPERATOR(pg_catalog.=) 'delivered') AS last_delivered_at" \
	"      FROM " HL_SCHEMA ".deliveries y WHERE y.subscription OPERATOR(pg_catalog.=) s.name) d ON true" \
	" ORDER BY s.name"

/* the columns of STATUS_QUERY's rows: those returned, then what the lag is counted from */
enum
{
	STATUS_LAG = 5,
	STATUS_NRETURNED = 11,
	STATUS_OWNER,
	STATUS_FROM_XACT,
	STATUS_FROM_SEQ,
	STATUS_PATTERN,
	STATUS_TENANT,
	STATUS_TARGET,
	STATUS_NCOLUMNS = STATUS_TARGET
};

/*
 * The lag of a subscription whose owner is a tenant role, counted as that
 * owner: row security leaves out the tenants it may not read, whose events
 * the subscription never hands out (STATUS_QUERY, which reads as the log's
 * owner, counted them: a tenant role learnt how many events another tenant
 * had appended to a target or of a type).
 */
#define OWNER_LAG_QUERY \
	"SELECT pg_catalog.count(*) FROM " HL_SCHEMA ".events e" \
	" WHERE ROW(e.xact_id, e.seq) OPERATOR(pg_catalog.>) ROW($1::pg_catalog.xid8, $2::pg_catalog.int8)" \
	"   AND (pg_catalog.pg_current_xact_id_if_assigned() IS NULL" \
	"        OR e.xact_id OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id_if_assigned())" \
	"   AND " HL_SCHEMA ".type_matches(e.type, $3)" \
	"   AND ($4::pg_catalog.text IS NULL OR e.tenant OPERATOR(pg_catalog.=) $4)" \
	"   AND ($5::pg_catalog.text IS NULL OR e.target OPERATOR(pg_catalog.=) $5)"

static SPIPlanPtr fetch_plan = NULL;
static SPIPlanPtr fetch_lock_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr start_now_plan = NULL;
static SPIPlanPtr start_time_plan = NULL;
static SPIPlanPtr delete_plan = NULL;
static SPIPlanPtr set_state_plan = NULL;
static SPIPlanPtr status_plan = NULL;
static SPIPlanPtr owner_lag_plan = NULL;

/* Running as other roles ------------------------------------------------------ */

/*
 * Run a saved plan as the log's owner: the extension's tables are not the
 * caller's.  No user code runs meanwhile (restricted operation).
 */
int
hl_run_as_log_owner(SPIPlanPtr plan, Datum *args, const char *nulls,
					bool read_only, long count)
{
	HlSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	hl_become_log_owner(&saved);
	rc = SPI_execute_plan(plan, args, nulls, read_only, count);
	hl_restore_user(&saved);
	/* SPI returns in its procedure context, which SPI_finish() frees */
	MemoryContextSwitchTo(caller);
	return rc;
}

/*
 * Walking the log after a position must be an index scan in (xact_id, seq)
 * order that stops after max_events rows.  The rows past a position are
 * the newest, beyond what the statistics know, so the planner underrates
 * them and may sort every remaining event instead (seen: a bitmap scan and
 * a sort per batch, quadratic in the backlog).  Around these statements
 * the alternatives are switched off, as a function's SET clause would.
 * Returns the GUC nest level for hl_ordered_scan_end().
 */
int
hl_ordered_scan_begin(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
hl_ordered_scan_end(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/* Act as role: a subscription reads events with its creator's rights. */
void
hl_become_role(Oid role, HlSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(role, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

/* Reading subscriptions ------------------------------------------------------- */

static text *
nullable_text(HeapTuple tup, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);

	return isnull ? NULL : DatumGetTextPCopy(d);
}

static char *
nullable_cstring(HeapTuple tup, TupleDesc desc, int attno)
{
	text	   *t = nullable_text(tup, desc, attno);

	return t ? text_to_cstring(t) : NULL;
}

/*
 * Read the subscription called name into *sub, in the caller's memory
 * context; false if there is none.  for_update locks its row until the
 * transaction ends.  The caller is connected to SPI.
 */
bool
hl_subscription_fetch(const char *name, bool for_update, HlSubscription *sub)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	HeapTuple	tup;
	TupleDesc	desc;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext old;
	bool		isnull;
	char	   *kind;
	int			rc;

	plan = for_update ?
		hl_prepare_cached(&fetch_lock_plan, FETCH_QUERY " FOR NO KEY UPDATE", 1, argtypes) :
		hl_prepare_cached(&fetch_plan, FETCH_QUERY, 1, argtypes);
	args[0] = CStringGetTextDatum(name);
	rc = hl_run_as_log_owner(plan, args, NULL, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, FETCH_QUERY);
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(caller);
	Assert(old == caller);
	memset(sub, 0, sizeof(*sub));
	sub->name = pstrdup(name);
	kind = nullable_cstring(tup, desc, 2);
	sub->kind = strcmp(kind, "webhook") == 0 ? HL_SUB_WEBHOOK :
		strcmp(kind, "hook") == 0 ? HL_SUB_HOOK : HL_SUB_PULL;
	sub->pattern = nullable_cstring(tup, desc, 3);
	sub->target = nullable_text(tup, desc, 4);
	sub->tenant = nullable_text(tup, desc, 5);
	sub->url = nullable_cstring(tup, desc, 6);
	sub->headers = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull));
	sub->secret = nullable_cstring(tup, desc, 8);
	sub->format = nullable_cstring(tup, desc, 9);
	sub->notify = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));
	sub->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
	sub->state = nullable_cstring(tup, desc, 12);
	sub->hook_id = DatumGetInt64(SPI_getbinval(tup, desc, 13, &isnull));
	if (isnull)
		sub->hook_id = 0;
	sub->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 14, &isnull));
	sub->start_xact = SPI_getbinval(tup, desc, 15, &isnull);
	sub->start_seq = DatumGetInt64(SPI_getbinval(tup, desc, 16, &isnull));
	MemoryContextSwitchTo(old);
	return true;
}

/* As hl_subscription_fetch(), but an unknown name is an error (ZE007). */
void
hl_subscription_get(const char *name, bool for_update, HlSubscription *sub)
{
	if (!hl_subscription_fetch(name, for_update, sub))
		ereport(ERROR,
				(errcode(ERRCODE_HL_SUBSCRIPTION),
				 errmsg("subscription \"%s\" does not exist", name),
				 errhint("headlessly.subscription_status() lists the subscriptions.")));
}

/* The caller must have the rights of the role that made the subscription. */
void
hl_subscription_check_access(const HlSubscription *sub)
{
	if (!has_privs_of_role(GetUserId(), sub->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for subscription \"%s\"", sub->name),
				 errdetail("Only roles with the rights of its owner %s may use it.",
						   GetUserNameFromId(sub->owner, true) ?
						   GetUserNameFromId(sub->owner, true) : "(dropped)")));
}

/*
 * Whether a subscription's owner can read the log at all.  Revoking SELECT
 * on the log or USAGE on its schema is how a subscription is stopped, and a
 * dropped owner reads nothing: what runs as such an owner would fail.
 */
bool
hl_subscription_owner_can_read(Oid owner)
{
	Oid			log = hl_log_relid();

	return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)) &&
		pg_class_aclcheck(log, owner, ACL_SELECT) == ACLCHECK_OK &&
		hl_namespace_aclcheck(get_rel_namespace(log), owner, ACL_USAGE) == ACLCHECK_OK;
}

/* The same, as an error naming the subscription, before reading as its owner. */
void
hl_subscription_check_owner_reads(const HlSubscription *sub)
{
	char	   *owner;

	if (hl_subscription_owner_can_read(sub->owner))
		return;
	owner = GetUserNameFromId(sub->owner, true);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("owner of subscription \"%s\" may not read the log", sub->name),
			 errdetail("A subscription reads the log as its owner %s, who needs SELECT on %s.events and USAGE on schema %s.",
					   owner ? owner : "(dropped)", HL_SCHEMA, HL_SCHEMA),
			 errhint("Grant them again, or remove the subscription with headlessly.unsubscribe().")));
}

/*
 * Whether a role may have the server send webhooks.  A webhook
 * subscription opens connections to its url as webhook_send() does by
 * hand, so its owner needs EXECUTE on that function (revoked from PUBLIC):
 * otherwise any role that may subscribe would have the server reach every
 * address it can (the loopback, a cloud's metadata service) and read each
 * outcome in subscription_status().  Checked when a webhook is subscribed
 * and at each round, so that revoking it stops the owner's webhooks.
 */
bool
hl_subscription_owner_may_send(Oid owner)
{
	Oid			argtypes[5] = {TEXTOID, JSONBOID, TEXTOID, JSONBOID, TEXTOID};
	Oid			nsp = get_namespace_oid(HL_SCHEMA, true);
	Oid			send;

	if (!OidIsValid(nsp))
		return false;
	send = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						   CStringGetDatum("webhook_send"),
						   PointerGetDatum(buildoidvector(argtypes, lengthof(argtypes))),
						   ObjectIdGetDatum(nsp));
	return OidIsValid(send) &&
		SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)) &&
		hl_function_aclcheck(send, owner, ACL_EXECUTE) == ACLCHECK_OK;
}

/* Checks ---------------------------------------------------------------------- */

static void
check_subscription_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > NAMEDATALEN - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid subscription name \"%s\"", name),
				 errdetail("A subscription name has 1 to %d bytes: it is also its NOTIFY channel.",
						   NAMEDATALEN - 1)));
	for (const char *p = name; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid subscription name \"%s\"", name),
					 errdetail("A subscription name consists of ASCII letters, digits, \"_\", \"-\" and \".\"."),
					 errhint("after_commit hooks have subscriptions named \"hook:\" and their id.")));
	}
}

static void
check_caller_reads_log(void)
{
	if (pg_class_aclcheck(hl_log_relid(), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to subscribe to %s.events", HL_SCHEMA),
				 errdetail("A subscription reads the log with the rights of the role that makes it."),
				 errhint("GRANT SELECT ON %s.events to the role.", HL_SCHEMA)));
}

/*
 * The position before the first event a new subscription gets: 'now' (the
 * events of transactions still running and later ones), 'beginning', or a
 * time (the events recorded from then on, in (xact_id, seq) order).
 */
static void
start_position(const char *start_at, Datum *xact, int64 *seq)
{
	int			rc;
	bool		isnull;

	if (strcmp(start_at, "beginning") == 0)
	{
		*xact = DirectFunctionCall1(xid8in, CStringGetDatum("0"));
		*seq = 0;
		return;
	}
	if (strcmp(start_at, "now") != 0)
	{
		Oid			argtypes[1] = {TIMESTAMPTZOID};
		Datum		args[1];
		MemoryContext caller = CurrentMemoryContext;

		args[0] = DirectFunctionCall3(timestamptz_in, CStringGetDatum(start_at),
									  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

		/*
		 * As the caller, who will own the subscription: the first event of
		 * a tenant it may not read is not its to start at (as the log's
		 * owner, the position told a tenant role when other tenants'
		 * events were recorded).
		 */
		hl_prepare_cached(&start_time_plan, START_TIME_QUERY, 1, argtypes);
		rc = SPI_execute_plan(start_time_plan, args, NULL, true, 1);
		MemoryContextSwitchTo(caller);
		hl_spi_check(rc, SPI_OK_SELECT, START_TIME_QUERY);
		if (SPI_processed > 0)
		{
			*xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			*seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			return;
		}
	}
	{
		Oid			argtypes[1] = {XID8OID};
		Datum		args[1];
		char		nulls[1];

		hl_own_xact(&args[0], &nulls[0]);
		hl_prepare_cached(&start_now_plan, START_NOW_QUERY, 1, argtypes);
		rc = hl_run_as_log_owner(start_now_plan, args, nulls, false, 1);
	}
	hl_spi_check(rc, SPI_OK_SELECT, START_NOW_QUERY);
	*xact = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*seq = 0;
}

/* Writing subscriptions ------------------------------------------------------- */

static HeapTuple
insert_subscription(const char *name, HlSubscriptionKind kind, const char *pattern,
					text *target, text *tenant, const char *url, Jsonb *headers,
					const char *secret, const char *format, bool notify,
					int max_attempts, int64 hook_id, const char *start_at,
					TupleDesc *desc)
{
	Oid			argtypes[15] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, TEXTOID, TEXTOID, BOOLOID, INT4OID, INT8OID, REGROLEOID, XID8OID, INT8OID};
	Datum		args[15];
	char		nulls[15];
	int64		seq;
	int			rc;

	memset(nulls, ' ', sizeof(nulls));
	start_position(start_at, &args[13], &seq);
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(HL_KIND_NAME(kind));
	args[2] = CStringGetTextDatum(pattern);
	args[3] = PointerGetDatum(target);
	nulls[3] = target ? ' ' : 'n';
	args[4] = PointerGetDatum(tenant);
	nulls[4] = tenant ? ' ' : 'n';
	args[5] = url ? CStringGetTextDatum(url) : (Datum) 0;
	nulls[5] = url ? ' ' : 'n';
	args[6] = JsonbPGetDatum(headers);
	args[7] = secret ? CStringGetTextDatum(secret) : (Datum) 0;
	nulls[7] = secret ? ' ' : 'n';
	args[8] = CStringGetTextDatum(format);
	args[9] = BoolGetDatum(notify);
	args[10] = Int32GetDatum(max_attempts);
	args[11] = Int64GetDatum(hook_id);
	nulls[11] = hook_id ? ' ' : 'n';
	args[12] = ObjectIdGetDatum(GetUserId());
	args[14] = Int64GetDatum(seq);

	hl_prepare_cached(&insert_plan, INSERT_QUERY, 15, argtypes);
	rc = hl_run_writing_positions(insert_plan, args, nulls);
	hl_spi_check(rc, SPI_OK_INSERT_RETURNING, INSERT_QUERY);
	*desc = SPI_tuptable->tupdesc;
	return SPI_tuptable->vals[0];
}

static char *
arg_cstring(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static text *
arg_name(FunctionCallInfo fcinfo, int n, const char *what)
{
	text	   *t;

	if (PG_ARGISNULL(n))
		return NULL;
	t = PG_GETARG_TEXT_PP(n);
	hl_check_name(what, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	return t;
}

Datum
headlessly_subscribe(PG_FUNCTION_ARGS)
{
	char	   *name = arg_cstring(fcinfo, 0);
	char	   *pattern = PG_ARGISNULL(1) ? "*" : arg_cstring(fcinfo, 1);
	text	   *target = arg_name(fcinfo, 2, "target");
	text	   *tenant = arg_name(fcinfo, 3, "tenant");
	char	   *url = arg_cstring(fcinfo, 4);
	Jsonb	   *headers = PG_ARGISNULL(5) ? hl_empty_object() : PG_GETARG_JSONB_P(5);
	char	   *secret = arg_cstring(fcinfo, 6);
	char	   *format = PG_ARGISNULL(7) ? "event" : arg_cstring(fcinfo, 7);
	bool		notify = PG_ARGISNULL(8) ? false : PG_GETARG_BOOL(8);
	char	   *start_at = PG_ARGISNULL(9) ? "now" : arg_cstring(fcinfo, 9);
	int			max_attempts = PG_ARGISNULL(10) ? 10 : PG_GETARG_INT32(10);
	HlTypePattern parsed;
	HlSubscription existing;
	HeapTuple	row;
	TupleDesc	desc;
	Datum		result;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subscription name must not be NULL")));
	check_subscription_name(name);
	hl_parse_type_pattern(pattern, strlen(pattern), &parsed);
	if (url != NULL)
	{
		hl_webhook_check_url(url);
		hl_webhook_check_headers(headers);
		if (secret != NULL)
			hl_webhook_check_secret(secret);
		else
			secret = hl_webhook_generate_secret();
	}
	else if (secret != NULL || !JB_ROOT_IS_OBJECT(headers) || JB_ROOT_COUNT(headers) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret and headers are for webhooks"),
				 errdetail("Subscription \"%s\" has no url: it is a pull consumer.", name),
				 errhint("Pass url => 'https://...' for a webhook.")));
	hl_webhook_check_format(format);
	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, not %d", max_attempts)));
	check_caller_reads_log();
	/* NULL is every tenant the owner may read, checked as each is delivered */
	if (tenant != NULL)
		hl_tenant_check(VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant), HL_TENANT_READ);
	if (url != NULL && !hl_subscription_owner_may_send(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to subscribe webhook \"%s\"", name),
				 errdetail("A webhook has the server send requests to its url, as %s.webhook_send() does: role %s needs EXECUTE on that function.",
						   HL_SCHEMA, GetUserNameFromId(GetUserId(), false)),
				 errhint("GRANT EXECUTE ON FUNCTION %s.webhook_send(text, jsonb, text, jsonb, text) to the role, or subscribe without url (a pull consumer).",
						 HL_SCHEMA)));

	hl_spi_connect();
	if (hl_subscription_fetch(name, false, &existing))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists", name),
				 errhint("Choose another name, or headlessly.unsubscribe() the old one first.")));
	row = insert_subscription(name, url ? HL_SUB_WEBHOOK : HL_SUB_PULL, pattern, target,
							  tenant, url, headers, secret, format, notify, max_attempts,
							  0, start_at, &desc);
	result = PointerGetDatum(SPI_returntuple(row, desc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * hook(pattern, 'after_commit', handler): the hook's subscription, named
 * "hook:<id>", delivering from now on as the registering role.  The caller
 * is connected to SPI.
 */
void
hl_create_hook_subscription(int64 hook_id, const char *pattern, int max_attempts)
{
	TupleDesc	desc;

	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, not %d", max_attempts)));
	check_caller_reads_log();
	(void) insert_subscription(psprintf("hook:" INT64_FORMAT, hook_id), HL_SUB_HOOK,
							   pattern, NULL, NULL, NULL, hl_empty_object(), NULL, "event",
							   false, max_attempts, hook_id, "now", &desc);
}

/* Look a subscription up for a change by the caller: it must be theirs. */
static void
get_for_change(const char *name, HlSubscription *sub)
{
	hl_subscription_get(name, true, sub);
	hl_subscription_check_access(sub);
	if (sub->kind == HL_SUB_HOOK)
		ereport(ERROR,
				(errcode(ERRCODE_HL_SUBSCRIPTION),
				 errmsg("subscription \"%s\" belongs to after_commit hook " INT64_FORMAT,
						name, sub->hook_id),
				 errhint("Remove the hook with headlessly.unhook(" INT64_FORMAT ").", sub->hook_id)));
}

Datum
headlessly_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	HlSubscription sub;
	int			rc;

	hl_spi_connect();
	if (!hl_subscription_fetch(name, true, &sub))
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	get_for_change(name, &sub);
	args[0] = CStringGetTextDatum(name);
	hl_prepare_cached(&delete_plan, DELETE_QUERY, 1, argtypes);
	rc = hl_run_as_log_owner(delete_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_DELETE, DELETE_QUERY);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

static void
set_state(FunctionCallInfo fcinfo, const char *state)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	HlSubscription sub;
	int			rc;

	hl_spi_connect();
	get_for_change(name, &sub);
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(state);
	hl_prepare_cached(&set_state_plan, SET_STATE_QUERY, 2, argtypes);
	rc = hl_run_as_log_owner(set_state_plan, args, NULL, false, 0);
	hl_spi_check(rc, SPI_OK_UPDATE, SET_STATE_QUERY);
	SPI_finish();
}

Datum
headlessly_pause(PG_FUNCTION_ARGS)
{
	set_state(fcinfo, "paused");
	PG_RETURN_VOID();
}

Datum
headlessly_resume(PG_FUNCTION_ARGS)
{
	set_state(fcinfo, "active");
	PG_RETURN_VOID();
}

/*
 * The lag of a status row, counted as a subscription owner that is a tenant
 * role would read the log; NULL if it may not (its rights were taken, or
 * it was dropped), since such a subscription hands out nothing.
 */
static void
owner_lag(Oid owner, Datum *values, bool *nulls)
{
	Oid			argtypes[5] = {XID8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		argnulls[5];
	HlSavedUser saved;
	bool		isnull;
	int			rc;

	values[STATUS_LAG - 1] = (Datum) 0;
	nulls[STATUS_LAG - 1] = true;
	if (!hl_subscription_owner_can_read(owner))
		return;
	for (int i = 0; i < 5; i++)
	{
		args[i] = values[STATUS_FROM_XACT - 1 + i];
		argnulls[i] = nulls[STATUS_FROM_XACT - 1 + i] ? 'n' : ' ';
	}
	hl_prepare_cached(&owner_lag_plan, OWNER_LAG_QUERY, 5, argtypes);
	hl_become_role(owner, &saved);
	rc = SPI_execute_plan(owner_lag_plan, args, argnulls, true, 0);
	hl_restore_user(&saved);
	hl_spi_check(rc, SPI_OK_SELECT, OWNER_LAG_QUERY);
	values[STATUS_LAG - 1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	nulls[STATUS_LAG - 1] = isnull;
}

Datum
headlessly_subscription_status(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	SPITupleTable *status;
	uint64		n;
	int			rc;

	hl_result_set_init(fcinfo, "headlessly.subscription_status()", &rs);
	hl_spi_connect();
	hl_prepare_cached(&status_plan, STATUS_QUERY, 0, NULL);
	rc = hl_run_as_log_owner(status_plan, NULL, NULL, true, 0);
	hl_spi_check(rc, SPI_OK_SELECT, STATUS_QUERY);
	/* owner_lag() runs queries of its own */
	status = SPI_tuptable;
	n = SPI_processed;
	if (status->tupdesc->natts != STATUS_NCOLUMNS)
		elog(ERROR, "subscription status has %d columns, not %d",
			 status->tupdesc->natts, STATUS_NCOLUMNS);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[STATUS_NCOLUMNS];
		bool		nulls[STATUS_NCOLUMNS];
		Oid			owner;
		bool		tenant_role;

		heap_deform_tuple(status->vals[i], status->tupdesc, values, nulls);
		owner = DatumGetObjectId(values[STATUS_OWNER - 1]);
		/* only the subscriptions the caller may act for */
		if (!has_privs_of_role(GetUserId(), owner))
			continue;
		(void) hl_tenant_rights_of(owner, "", 0, &tenant_role);
		if (tenant_role)
			owner_lag(owner, values, nulls);
		tuplestore_putvalues(rs.store, rs.tupdesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* The subscriptions' statement trigger: every backend forgets its NOTIFY cache. */
Datum
headlessly_subscriptions_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = hl_trigger_data(fcinfo, "headlessly.subscriptions_changed()",
											HL_FIRED_AFTER | HL_FIRED_STATEMENT);

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/* Patterns and groups in SQL ---------------------------------------------------- */

/* type_matches(type, pattern): the hooks' pattern rules; the parse is kept per call site. */
Datum
headlessly_type_matches(PG_FUNCTION_ARGS)
{
	text	   *type = PG_GETARG_TEXT_PP(0);
	text	   *pattern = PG_GETARG_TEXT_PP(1);
	typedef struct
	{
		text	   *pattern;
		HlTypePattern parsed;
	}			Cached;
	Cached	   *cached = (Cached *) fcinfo->flinfo->fn_extra;

	if (cached == NULL || !hl_text_equal(cached->pattern, pattern))
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (cached == NULL)
			cached = palloc0(sizeof(Cached));
		cached->pattern = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(pattern));
		hl_parse_type_pattern(VARDATA_ANY(cached->pattern), VARSIZE_ANY_EXHDR(cached->pattern),
							  &cached->parsed);
		fcinfo->flinfo->fn_extra = cached;
		MemoryContextSwitchTo(old);
	}
	PG_RETURN_BOOL(hl_type_pattern_matches(&cached->parsed, VARDATA_ANY(type),
										   VARSIZE_ANY_EXHDR(type)));
}

/*
 * group_member(tenant, key, members): which member of a group gets the
 * events of this (tenant, key), key being the target (or, for events
 * without one, the event id).
 */
Datum
headlessly_group_member(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_GETARG_TEXT_PP(0);
	text	   *key = PG_GETARG_TEXT_PP(1);
	int32		members = PG_GETARG_INT32(2);
	uint64		h;

	if (members < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("members must be at least 1, not %d", members)));
	/* tenant names contain no NUL byte: the pair hashes without ambiguity */
	h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(tenant),
							VARSIZE_ANY_EXHDR(tenant), 0);
	h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(key),
							VARSIZE_ANY_EXHDR(key), h);
	PG_RETURN_INT32((int32) (h % (uint64) members));
}
