/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  Rebuilding an entity's state from its events.
 *
 * The same rules as the append trigger: Created sets the state, Deleted
 * ends the entity, any other verb is a top-level merge patch (a JSON null
 * removes the key), and events that are not entity events only take a
 * version.  Replay is lazy about merge patches: it keeps the patches since
 * the last Created (or the snapshot it started from) and folds them into
 * the state in one pass when the state is asked for, so a replay of N
 * patches builds one jsonb, not N.
 *
 *-------------------------------------------------------------------------
 */
#include "state/state.h"

#include "lib/qunique.h"
#include "utils/datum.h"
#include "utils/memutils.h"

typedef struct PatchEntry
{
	JsonbValue	key;
	JsonbValue	value;
	int			order;			/* position among all patches' keys */
} PatchEntry;

void
hl_replay_init(HlReplay *r)
{
	memset(r, 0, sizeof(*r));
}

static void
clear_pending(HlReplay *r)
{
	r->npending = 0;
}

void
hl_replay_apply(HlReplay *r, int64 version, text *type, Jsonb *data,
				TimestampTz recorded_at)
{
	HlEventType et = hl_parse_event_type(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));

	switch (et.kind)
	{
		case HL_NOT_ENTITY:
			break;

		case HL_VERB_CREATED:
			r->alive = true;
			r->base = data;
			clear_pending(r);
			r->created_at = recorded_at;
			r->has_created_at = true;
			break;

		case HL_VERB_DELETED:
			r->alive = false;
			r->base = NULL;
			clear_pending(r);
			r->has_created_at = false;
			break;

		case HL_VERB_OTHER:
			/* the trigger refuses these on an absent entity; ignore if seen */
			if (!r->alive)
				break;
			if (r->npending == r->maxpending)
			{
				r->maxpending = Max(16, r->maxpending * 2);
				if (r->pending == NULL)
					r->pending = palloc(r->maxpending * sizeof(Jsonb *));
				else
					r->pending = repalloc(r->pending, r->maxpending * sizeof(Jsonb *));
			}
			r->pending[r->npending++] = data;
			break;
	}

	if (et.kind != HL_NOT_ENTITY)
	{
		r->updated_at = recorded_at;
		r->has_updated_at = true;
	}
	r->version = version;
	r->last_recorded_at = recorded_at;
	r->has_last_recorded_at = true;
}

/*
 * The state after everything applied so far: NULL if the entity is not
 * alive.  Folds the pending patches, so asking twice is cheap.
 */
Jsonb *
hl_replay_state(HlReplay *r)
{
	if (!r->alive)
		return NULL;
	if (r->npending > 0)
	{
		r->base = hl_fold_patches(r->base, r->pending, r->npending);
		clear_pending(r);
	}
	return r->base;
}

/* jsonb's own key order: shorter first, then bytewise */
static int
compare_keys(const JsonbValue *a, const JsonbValue *b)
{
	if (a->val.string.len != b->val.string.len)
		return a->val.string.len > b->val.string.len ? 1 : -1;
	return memcmp(a->val.string.val, b->val.string.val, a->val.string.len);
}

/* by key, the latest patch first */
static int
compare_entries(const void *a, const void *b)
{
	const PatchEntry *pa = a;
	const PatchEntry *pb = b;
	int			c = compare_keys(&pa->key, &pb->key);

	if (c != 0)
		return c;
	return pa->order > pb->order ? -1 : (pa->order < pb->order ? 1 : 0);
}

static int
compare_keys_only(const void *a, const void *b)
{
	return compare_keys(&((const PatchEntry *) a)->key, &((const PatchEntry *) b)->key);
}

/*
 * Apply merge patches to base, oldest first, as if one by one: for every
 * key the latest patch that names it decides (null: removed); keys no patch
 * names keep base's value.
 */
Jsonb *
hl_fold_patches(Jsonb *base, Jsonb **patches, int npatches)
{
	PatchEntry *entries;
	int			nentries = 0;
	int			maxentries = 0;
	JsonbParseState *ps = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	if (npatches == 0)
		return base;
	if (npatches == 1)
	{
		Jsonb	   *discard;

		return hl_merge_patch(base, patches[0], &discard);
	}

	for (int i = 0; i < npatches; i++)
		maxentries += JB_ROOT_COUNT(patches[i]);
	entries = palloc(Max(maxentries, 1) * sizeof(PatchEntry));

	for (int i = 0; i < npatches; i++)
	{
		it = JsonbIteratorInit(&patches[i]->root);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &val, true);
			Assert(tok == WJB_VALUE);
			entries[nentries].key = key;
			entries[nentries].value = val;
			entries[nentries].order = nentries;
			nentries++;
		}
	}

	/* one entry per key, the latest patch's */
	qsort(entries, nentries, sizeof(PatchEntry), compare_entries);
	nentries = qunique(entries, nentries, sizeof(PatchEntry), compare_keys_only);

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);

	it = JsonbIteratorInit(&base->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		PatchEntry	probe;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		probe.key = key;
		if (bsearch(&probe, entries, nentries, sizeof(PatchEntry), compare_keys_only))
			continue;
		pushJsonbValue(&ps, WJB_KEY, &key);
		pushJsonbValue(&ps, WJB_VALUE, &val);
	}

	for (int i = 0; i < nentries; i++)
	{
		if (entries[i].value.type == jbvNull)
			continue;
		pushJsonbValue(&ps, WJB_KEY, &entries[i].key);
		pushJsonbValue(&ps, WJB_VALUE, &entries[i].value);
	}

	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

/*
 * Start *r from a stored row: a stream head or a snapshot.  Both keep the
 * state, created_at and updated_at in columns 4 to 6; where the recorded
 * time is varies, so the caller names it.
 */
void
hl_replay_start_from_row(HlReplay *r, int64 version, HeapTuple tup, TupleDesc desc,
						 int recorded_at_column)
{
	bool		isnull;
	Datum		d;

	r->version = version;
	r->last_recorded_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, recorded_at_column, &isnull));
	r->has_last_recorded_at = !isnull;
	d = SPI_getbinval(tup, desc, 4, &isnull);
	r->alive = !isnull;
	r->base = isnull ? NULL : DatumGetJsonbP(d);
	r->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
	r->has_created_at = !isnull;
	r->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
	r->has_updated_at = !isnull;
}

/*
 * Fold the pending patches and copy the state into the current memory
 * context: the rows it points into are about to go away.
 */
void
hl_replay_keep(HlReplay *r)
{
	Jsonb	   *state = hl_replay_state(r);

	if (state != NULL)
		r->base = DatumGetJsonbP(datumCopy(JsonbPGetDatum(state), false, -1));
}

static bool
same_stream(const HlStreamWalk *walk, text *tenant, text *target, HeapTuple tup,
			TupleDesc desc)
{
	bool		isnull;

	if (walk->tenant_column > 0 &&
		!hl_text_equal(tenant, DatumGetTextPP(SPI_getbinval(tup, desc, walk->tenant_column,
															&isnull))))
		return false;
	return hl_text_equal(target, DatumGetTextPP(SPI_getbinval(tup, desc, walk->target_column,
															  &isnull)));
}

static text *
copy_key(HeapTuple tup, TupleDesc desc, int column)
{
	bool		isnull;

	if (column <= 0)
		return NULL;
	return DatumGetTextPP(datumCopy(SPI_getbinval(tup, desc, column, &isnull), false, -1));
}

/*
 * Run the plan as a cursor and walk its rows stream by stream (see
 * HlStreamWalk), passing arg to the callbacks.  Must run inside SPI.
 */
void
hl_walk_streams(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
				const HlStreamWalk *walk, void *arg)
{
	MemoryContext spi_cxt = CurrentMemoryContext;
	MemoryContext stream_cxt;
	Portal		portal;
	text	   *tenant = NULL;
	text	   *target = NULL;

	portal = SPI_cursor_open(NULL, plan, args, nulls, read_only);
	stream_cxt = AllocSetContextCreate(spi_cxt, "headlessly stream walk",
									   ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SPITupleTable *tuptable;
		uint64		n;

		SPI_cursor_fetch(portal, true, 1000);
		tuptable = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;

		MemoryContextSwitchTo(stream_cxt);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tuptable->vals[i];
			TupleDesc	desc = tuptable->tupdesc;

			if (target == NULL || !same_stream(walk, tenant, target, tup, desc))
			{
				if (target != NULL)
					walk->finish(arg);
				MemoryContextReset(stream_cxt);
				tenant = copy_key(tup, desc, walk->tenant_column);
				target = copy_key(tup, desc, walk->target_column);
				walk->start(arg, tenant, target, tup, desc);
			}
			walk->row(arg, tup, desc);
		}

		if (target != NULL)
			walk->keep(arg);
		MemoryContextSwitchTo(spi_cxt);
		SPI_freetuptable(tuptable);
	}

	if (target != NULL)
	{
		MemoryContextSwitchTo(stream_cxt);
		walk->finish(arg);
		MemoryContextSwitchTo(spi_cxt);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(stream_cxt);
}
