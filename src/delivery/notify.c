/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  NOTIFY at commit, and the per-backend cache of subscriptions that the
 *	  append path consults.
 *
 * Every append asks whether a subscription wants a NOTIFY for its row, and
 * whether one the worker delivers (webhook, after_commit hook) matches it:
 * then its transaction wakes the worker at commit.  The answers come from
 * a cache of those subscriptions, loaded once and emptied by the relcache
 * invalidation that any change of headlessly.subscriptions sends (its
 * statement trigger): an append with no such subscription pays one flag
 * test.  The notifications are queued here and handed to Async_Notify()
 * as the appending transaction commits (XACT_EVENT_PRE_COMMIT, before
 * PostgreSQL queues its NOTIFYs), dropped with a subtransaction that rolls
 * back.  Not earlier: PostgreSQL refuses to PREPARE a transaction that has
 * called NOTIFY, so anyone's notify subscription would make every
 * two-phase commit that appends fail.  A prepared transaction's events
 * are not NOTIFYed (COMMIT PREPARED runs no code of ours); every other
 * kind of subscription still gets them.
 *
 * An append that does match pays no catalog lookup either: whether each
 * subscription's owner may read the log is remembered until the log's
 * privileges or the roles change, and the log's column numbers until the
 * log changes.  The tenant check uses the tenancy's own cache.  The payload
 * is written once per event, whatever the number of subscriptions, as text
 * straight from the row: no jsonb is built only to be printed.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"
#include "tamper/tamper.h"
#include "tenancy/tenancy.h"
#include "worker/worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* PostgreSQL's limit on a NOTIFY payload (commands/async.c) */
#define NOTIFY_PAYLOAD_MAX 8000

#define LOAD_QUERY \
	"SELECT name, kind, pattern, target, tenant, notify, owner::pg_catalog.oid" \
	"  FROM " HL_SCHEMA ".subscriptions" \
	" WHERE state OPERATOR(pg_catalog.=) 'active'" \
	"   AND (notify OR kind OPERATOR(pg_catalog.<>) 'pull')" \
	" ORDER BY name"

typedef enum OwnerReads
{
	OWNER_READS_UNKNOWN = 0,
	OWNER_READS_YES,
	OWNER_READS_NO
} OwnerReads;

typedef struct NotifySub
{
	char	   *name;
	HlTypePattern pattern;
	char	   *target;			/* NULL: every target */
	int			target_len;
	char	   *tenant;			/* NULL: every tenant the owner may read */
	int			tenant_len;
	Oid			owner;
	bool		notify;			/* NOTIFY on channel name */
	bool		delivers;		/* the worker delivers it (not pull) */
	OwnerReads	owner_reads;	/* SELECT on the log, as of log_state */
} NotifySub;

/* the payload's columns other than type, tenant and target */
typedef struct PayloadCols
{
	int			id;
	int			seq;
	int			data;
	int			actor;
	int			version;
	int			recorded_at;
} PayloadCols;

static SPIPlanPtr load_plan = NULL;
static HlTableCache subscriptions = HL_TABLE_CACHE("subscriptions");
static MemoryContext cache_cxt = NULL;
static NotifySub *subs = NULL;
static int	nsubs = 0;
static bool any_delivery = false;

/*
 * What is known of the log: its payload columns, and (in subs) whose owner
 * may read it.  Forgotten when the log changes (GRANT, REVOKE, ALTER) or
 * any role or role membership does (an owner's rights may come from one).
 */
static HlTableCache log_state = HL_TABLE_CACHE("events");
static PayloadCols payload_cols;
static bool role_callbacks_registered = false;

/*
 * The NOTIFYs of this transaction, in TopTransactionContext, in append
 * order: each with the (sub)transaction nesting level that made it.
 */
typedef struct PendingNotify
{
	const char *channel;
	const char *payload;		/* shared by the subscriptions of one event */
	int			level;
} PendingNotify;

static PendingNotify *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;
static bool notify_callbacks_registered = false;

static void
pending_forget(void)
{
	pending = NULL;				/* freed with TopTransactionContext */
	npending = 0;
	maxpending = 0;
}

static void
pending_add(const char *channel, const char *payload)
{
	if (npending == maxpending)
	{
		maxpending = maxpending == 0 ? 16 : maxpending * 2;
		pending = pending == NULL ?
			MemoryContextAlloc(TopTransactionContext, maxpending * sizeof(PendingNotify)) :
			repalloc(pending, maxpending * sizeof(PendingNotify));
	}
	pending[npending].channel = MemoryContextStrdup(TopTransactionContext, channel);
	pending[npending].payload = payload;
	pending[npending].level = GetCurrentTransactionNestLevel();
	npending++;
}

static void
notify_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			for (int i = 0; i < npending; i++)
				Async_Notify(pending[i].channel, pending[i].payload);
			pending_forget();
			break;
		case XACT_EVENT_PRE_PREPARE:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			pending_forget();
			break;
		default:
			break;
	}
}

static void
notify_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			/* what it and its children queued: at the end, in append order */
			while (npending > 0 && pending[npending - 1].level >= level)
				npending--;
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			for (int i = npending - 1; i >= 0 && pending[i].level >= level; i--)
				pending[i].level = level - 1;
			break;
		default:
			break;
	}
}

static void
roles_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	log_state.valid = false;
}

static void
load_cache(void)
{
	MemoryContext old;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "headlessly subscriptions",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);
	subs = NULL;
	nsubs = 0;
	any_delivery = false;

	/* a database still at 0.1 has no subscriptions */
	if (!hl_table_cache_begin_load(&subscriptions))
		return;

	PG_TRY();
	{
		hl_spi_connect();
		hl_table_cache_read(&load_plan, LOAD_QUERY);

		old = MemoryContextSwitchTo(cache_cxt);
		subs = palloc0((SPI_processed + 1) * sizeof(NotifySub));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *kind = SPI_getvalue(tup, desc, 2);
			char	   *pattern;
			NotifySub  *s = &subs[nsubs++];

			s->delivers = strcmp(kind, "pull") != 0;
			any_delivery |= s->delivers;
			s->notify = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
			s->name = SPI_getvalue(tup, desc, 1);
			/* the pattern text must outlive the parse, which points into it */
			pattern = SPI_getvalue(tup, desc, 3);
			hl_parse_type_pattern(pattern, strlen(pattern), &s->pattern);
			s->target = SPI_getvalue(tup, desc, 4);
			s->target_len = s->target ? strlen(s->target) : 0;
			s->tenant = SPI_getvalue(tup, desc, 5);
			s->tenant_len = s->tenant ? strlen(s->tenant) : 0;
			s->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
			s->owner_reads = OWNER_READS_UNKNOWN;
		}
		MemoryContextSwitchTo(old);
		SPI_finish();
	}
	PG_CATCH();
	{
		subscriptions.valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

bool
hl_delivery_wanted(void)
{
	if (!subscriptions.valid)
		load_cache();
	return any_delivery;
}

/* The log's payload columns, and every owner's rights to be checked again. */
static void
load_log_state(TupleDesc tupdesc)
{
	if (!role_callbacks_registered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, roles_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, roles_syscache_callback, (Datum) 0);
		role_callbacks_registered = true;
	}
	(void) hl_table_cache_begin_load(&log_state);
	payload_cols.id = SPI_fnumber(tupdesc, "id") - 1;
	payload_cols.seq = SPI_fnumber(tupdesc, "seq") - 1;
	payload_cols.data = SPI_fnumber(tupdesc, "data") - 1;
	payload_cols.actor = SPI_fnumber(tupdesc, "actor") - 1;
	payload_cols.version = SPI_fnumber(tupdesc, "version") - 1;
	payload_cols.recorded_at = SPI_fnumber(tupdesc, "recorded_at") - 1;
	for (int i = 0; i < nsubs; i++)
		subs[i].owner_reads = OWNER_READS_UNKNOWN;
}

static bool
text_is(Datum value, bool isnull, const char *want, int want_len)
{
	text	   *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(value);
	return VARSIZE_ANY_EXHDR(t) == want_len &&
		memcmp(VARDATA_ANY(t), want, want_len) == 0;
}

/*
 * May the subscription's owner read this event: SELECT on the log, and,
 * for a tenant role, read rights on the event's tenant (a subscription
 * without a tenant means every tenant its owner may read).
 */
static bool
owner_may_read(NotifySub *s, Datum tenant, bool tenant_isnull)
{
	text	   *t;

	if (s->owner_reads == OWNER_READS_UNKNOWN)
		s->owner_reads = pg_class_aclcheck(hl_log_relid(), s->owner, ACL_SELECT) == ACLCHECK_OK ?
			OWNER_READS_YES : OWNER_READS_NO;
	if (s->owner_reads != OWNER_READS_YES)
		return false;

	if (tenant_isnull)
		return false;			/* the log's trigger allows none: fail closed */
	t = DatumGetTextPP(tenant);
	return hl_tenant_role_permits(s->owner, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), HL_TENANT_READ);
}

/* a literal's bytes, without its NUL */
#define APPEND_LITERAL(buf, lit) appendBinaryStringInfo((buf), (lit), sizeof(lit) - 1)

static void
put_text(StringInfo buf, Datum value, bool isnull)
{
	text	   *t;

	if (isnull)
	{
		APPEND_LITERAL(buf, "null");
		return;
	}
	t = DatumGetTextPP(value);
	hl_append_json_string(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

static void
put_int8(StringInfo buf, Datum value, bool isnull)
{
	char		digits[MAXINT8LEN + 1];

	if (isnull)
		APPEND_LITERAL(buf, "null");
	else
		appendBinaryStringInfo(buf, digits, pg_lltoa(DatumGetInt64(value), digits));
}

/*
 * recorded_at as jsonb prints a timestamptz in UTC.  Every event of a
 * transaction has the same one, so the last text is kept.
 */
static void
put_recorded_at(StringInfo buf, Datum value)
{
	static char stamp[MAXDATELEN + 1];
	static TimestampTz stamp_of;
	static bool stamp_valid = false;
	const int	utc = 0;

	if (!stamp_valid || DatumGetTimestampTz(value) != stamp_of)
	{
		stamp_valid = false;
		JsonEncodeDateTime(stamp, value, TIMESTAMPTZOID, &utc);
		stamp_of = DatumGetTimestampTz(value);
		stamp_valid = true;
	}
	appendStringInfoCharMacro(buf, '"');
	appendStringInfoString(buf, stamp);
	appendStringInfoCharMacro(buf, '"');
}

/* How much of the event a payload carries: less until it fits. */
typedef enum PayloadFields
{
	PAYLOAD_WHOLE,				/* every field */
	PAYLOAD_NO_DATA,			/* without data, "truncated": true */
	PAYLOAD_ID_ONLY				/* id, seq and "truncated": true */
} PayloadFields;

/*
 * The payload, written into buf: id, seq, tenant, type, target, version,
 * actor, recorded_at, and data unless that makes it longer than NOTIFY
 * allows (then "truncated": true instead; and if target, actor and tenant,
 * up to 512 bytes each but 6 bytes a control character once escaped,
 * still make it too long, only id and seq).  It is the text jsonb_out
 * gives for the object of those fields (keys shorter first, then
 * bytewise; recorded_at in UTC), written straight from the row: TAP 023
 * compares the two.
 */
static void
payload(StringInfo buf, Datum *values, bool *nulls,
		int type_att, int tenant_att, int target_att, PayloadFields fields)
{
	const PayloadCols *c = &payload_cols;

	resetStringInfo(buf);
	APPEND_LITERAL(buf, "{\"id\": ");
	put_text(buf, values[c->id], nulls[c->id]);
	APPEND_LITERAL(buf, ", \"seq\": ");
	put_int8(buf, values[c->seq], nulls[c->seq]);
	if (fields == PAYLOAD_ID_ONLY)
	{
		APPEND_LITERAL(buf, ", \"truncated\": true}");
		return;
	}
	if (fields == PAYLOAD_WHOLE)
	{
		APPEND_LITERAL(buf, ", \"data\": ");
		if (nulls[c->data])
			APPEND_LITERAL(buf, "null");
		else
			hl_append_jsonb_text(buf, DatumGetJsonbP(values[c->data]));
	}
	APPEND_LITERAL(buf, ", \"type\": ");
	put_text(buf, values[type_att], nulls[type_att]);
	APPEND_LITERAL(buf, ", \"actor\": ");
	put_text(buf, values[c->actor], nulls[c->actor]);
	APPEND_LITERAL(buf, ", \"target\": ");
	put_text(buf, values[target_att], nulls[target_att]);
	APPEND_LITERAL(buf, ", \"tenant\": ");
	put_text(buf, values[tenant_att], nulls[tenant_att]);
	APPEND_LITERAL(buf, ", \"version\": ");
	put_int8(buf, values[c->version], nulls[c->version]);
	if (fields != PAYLOAD_WHOLE)
		APPEND_LITERAL(buf, ", \"truncated\": true");
	APPEND_LITERAL(buf, ", \"recorded_at\": ");
	put_recorded_at(buf, values[c->recorded_at]);
	appendStringInfoCharMacro(buf, '}');
}

/*
 * Called by the log's trigger for each appended row (not restored ones),
 * with the 0-based numbers of its type, tenant and target columns, which
 * the trigger has resolved already.  Of the active subscriptions whose
 * pattern, tenant and target match: NOTIFY those with notify whose owner
 * may read the event, and if the worker delivers one, have the
 * transaction wake it at commit.
 */
void
hl_notify_event(TupleDesc tupdesc, Datum *values, bool *nulls,
				int type_att, int tenant_att, int target_att)
{
	StringInfoData msg;
	text	   *type;

	if (!subscriptions.valid)
		load_cache();
	if (nsubs == 0)
		return;
	if (!log_state.valid)
		load_log_state(tupdesc);

	if (!notify_callbacks_registered)
	{
		RegisterXactCallback(notify_xact_callback, NULL);
		RegisterSubXactCallback(notify_subxact_callback, NULL);
		notify_callbacks_registered = true;
	}

	msg.data = NULL;
	type = DatumGetTextPP(values[type_att]);
	for (int i = 0; i < nsubs; i++)
	{
		NotifySub  *s = &subs[i];

		if (!hl_type_pattern_matches(&s->pattern, VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type)))
			continue;
		if (s->tenant &&
			!text_is(values[tenant_att], nulls[tenant_att], s->tenant, s->tenant_len))
			continue;
		if (s->target &&
			!text_is(values[target_att], nulls[target_att], s->target, s->target_len))
			continue;
		if (s->delivers)
			hl_worker_note_append();
		if (!s->notify || !owner_may_read(s, values[tenant_att], nulls[tenant_att]))
			continue;
		if (msg.data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			initStringInfo(&msg);
			MemoryContextSwitchTo(old);
			payload(&msg, values, nulls, type_att, tenant_att, target_att, PAYLOAD_WHOLE);
			if (msg.len >= NOTIFY_PAYLOAD_MAX)
				payload(&msg, values, nulls, type_att, tenant_att, target_att, PAYLOAD_NO_DATA);
			if (msg.len >= NOTIFY_PAYLOAD_MAX)
				payload(&msg, values, nulls, type_att, tenant_att, target_att, PAYLOAD_ID_ONLY);
		}
		pending_add(s->name, msg.data);
	}
}
