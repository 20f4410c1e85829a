/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  NOTIFY at commit, and the per-backend cache of subscriptions that the
 *	  append path consults.
 *
 * Every append asks whether a subscription wants a NOTIFY for its row.
 * The answer comes from a cache of the notify subscriptions, loaded once
 * and emptied by the relcache invalidation that any change of
 * headlessly.subscriptions sends (its statement trigger): an append with
 * no such subscription pays one flag test.  Async_Notify() is
 * transactional: the notification is sent when the appending transaction
 * commits and dropped if it (or the subtransaction) rolls back.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery_internal.h"

#include "catalog/namespace.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* PostgreSQL's limit on a NOTIFY payload (commands/async.c) */
#define NOTIFY_PAYLOAD_MAX 8000

#define LOAD_QUERY \
	"SELECT name, kind, pattern, target, tenant, notify, owner::pg_catalog.oid" \
	"  FROM " HL_SCHEMA ".subscriptions" \
	" WHERE state OPERATOR(pg_catalog.=) 'active'" \
	"   AND (notify OR kind OPERATOR(pg_catalog.<>) 'pull')" \
	" ORDER BY name"

typedef struct NotifySub
{
	char	   *name;
	HlTypePattern pattern;
	char	   *target;
	char	   *tenant;
	Oid			owner;
} NotifySub;

static SPIPlanPtr load_plan = NULL;
static MemoryContext cache_cxt = NULL;
static NotifySub *subs = NULL;
static int	nsubs = 0;
static bool any_delivery = false;
static bool cache_valid = false;
static Oid	subscriptions_relid = InvalidOid;
static bool callback_registered = false;

static void
subscriptions_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == subscriptions_relid)
		cache_valid = false;
}

static void
load_cache(void)
{
	Oid			nsp = get_namespace_oid(HL_SCHEMA, true);
	MemoryContext old;
	int			rc;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(subscriptions_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "headlessly subscriptions",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);
	subs = NULL;
	nsubs = 0;
	any_delivery = false;

	/* a database still at 0.1 has no subscriptions */
	subscriptions_relid = OidIsValid(nsp) ? get_relname_relid("subscriptions", nsp) : InvalidOid;
	cache_valid = true;
	if (!OidIsValid(subscriptions_relid))
		return;

	PG_TRY();
	{
		HlSavedUser saved;

		hl_spi_connect();
		hl_prepare_cached(&load_plan, LOAD_QUERY, 0, NULL);
		hl_become_log_owner(&saved);
		/* what is committed now: a later change has already invalidated us */
		rc = SPI_execute_snapshot(load_plan, NULL, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, true, false, 0);
		hl_restore_user(&saved);
		hl_spi_check(rc, SPI_OK_SELECT, LOAD_QUERY);

		old = MemoryContextSwitchTo(cache_cxt);
		subs = palloc0((SPI_processed + 1) * sizeof(NotifySub));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *kind = SPI_getvalue(tup, desc, 2);
			NotifySub  *s;

			if (strcmp(kind, "pull") != 0)
				any_delivery = true;
			if (!DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull)))
				continue;
			s = &subs[nsubs++];
			s->name = SPI_getvalue(tup, desc, 1);
			/* the pattern text must outlive the parse, which points into it */
			hl_parse_type_pattern(SPI_getvalue(tup, desc, 3),
								  strlen(SPI_getvalue(tup, desc, 3)), &s->pattern);
			s->target = SPI_getvalue(tup, desc, 4);
			s->tenant = SPI_getvalue(tup, desc, 5);
			s->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
		}
		MemoryContextSwitchTo(old);
		SPI_finish();
	}
	PG_CATCH();
	{
		cache_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

bool
hl_delivery_wanted(void)
{
	if (!cache_valid)
		load_cache();
	return any_delivery;
}

static bool
text_is(Datum value, bool isnull, const char *want)
{
	text	   *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(value);
	return VARSIZE_ANY_EXHDR(t) == strlen(want) &&
		memcmp(VARDATA_ANY(t), want, VARSIZE_ANY_EXHDR(t)) == 0;
}

static void
push_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

static void
push_text(JsonbParseState **ps, const char *key, Datum value, bool isnull)
{
	JsonbValue	v;

	push_key(ps, key);
	if (isnull)
		v.type = jbvNull;
	else
	{
		text	   *t = DatumGetTextPP(value);

		v.type = jbvString;
		v.val.string.val = VARDATA_ANY(t);
		v.val.string.len = VARSIZE_ANY_EXHDR(t);
	}
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
push_int8(JsonbParseState **ps, const char *key, Datum value, bool isnull)
{
	JsonbValue	v;

	push_key(ps, key);
	if (isnull)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, value));
	}
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/*
 * The payload: id, seq, tenant, type, target, version, actor, recorded_at,
 * and data unless that makes it longer than NOTIFY allows (then
 * "truncated": true instead).
 */
static char *
payload(TupleDesc tupdesc, Datum *values, bool *nulls, bool with_data)
{
	static const char *const text_cols[] = {"id", "tenant", "type", "target", "actor"};
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	JsonbValue	v;
	int			attno;
	Jsonb	   *doc;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < lengthof(text_cols); i++)
	{
		attno = SPI_fnumber(tupdesc, text_cols[i]) - 1;
		push_text(&ps, text_cols[i], values[attno], nulls[attno]);
	}
	attno = SPI_fnumber(tupdesc, "seq") - 1;
	push_int8(&ps, "seq", values[attno], nulls[attno]);
	attno = SPI_fnumber(tupdesc, "version") - 1;
	push_int8(&ps, "version", values[attno], nulls[attno]);
	attno = SPI_fnumber(tupdesc, "recorded_at") - 1;
	push_key(&ps, "recorded_at");
	v.type = jbvDatetime;
	v.val.datetime.value = values[attno];
	v.val.datetime.typid = TIMESTAMPTZOID;
	v.val.datetime.typmod = -1;
	v.val.datetime.tz = 0;
	pushJsonbValue(&ps, WJB_VALUE, &v);
	if (with_data)
	{
		Jsonb	   *data;

		attno = SPI_fnumber(tupdesc, "data") - 1;
		data = DatumGetJsonbP(values[attno]);
		push_key(&ps, "data");
		v.type = jbvBinary;
		v.val.binary.data = &data->root;
		v.val.binary.len = VARSIZE(data) - VARHDRSZ;
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	else
	{
		push_key(&ps, "truncated");
		v.type = jbvBool;
		v.val.boolean = true;
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	doc = JsonbValueToJsonb(res);
	return JsonbToCString(NULL, &doc->root, VARSIZE(doc));
}

/*
 * Called by the log's trigger for each appended row (not restored ones),
 * with the 0-based numbers of its type, tenant and target columns, which
 * the trigger has resolved already:
 * NOTIFY every active notify subscription whose pattern, tenant and target
 * match and whose owner may read the log.
 */
void
hl_notify_event(TupleDesc tupdesc, Datum *values, bool *nulls,
				int type_att, int tenant_att, int target_att)
{
	char	   *msg = NULL;
	text	   *type;

	if (!cache_valid)
		load_cache();
	if (nsubs == 0)
		return;

	type = DatumGetTextPP(values[type_att]);
	for (int i = 0; i < nsubs; i++)
	{
		NotifySub  *s = &subs[i];

		if (!hl_type_pattern_matches(&s->pattern, VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type)))
			continue;
		if (s->tenant && !text_is(values[tenant_att], nulls[tenant_att], s->tenant))
			continue;
		if (s->target && !text_is(values[target_att], nulls[target_att], s->target))
			continue;
		if (pg_class_aclcheck(hl_log_relid(), s->owner, ACL_SELECT) != ACLCHECK_OK)
			continue;
		if (msg == NULL)
		{
			msg = payload(tupdesc, values, nulls, true);
			if (strlen(msg) >= NOTIFY_PAYLOAD_MAX)
				msg = payload(tupdesc, values, nulls, false);
		}
		Async_Notify(s->name, msg);
	}
}
