/*-------------------------------------------------------------------------
 *
 * jsonb_object.c
 *	  JSON objects: the empty object, and the top-level JSON merge patch
 *	  that entity events apply to an entity's state.
 *
 * Each top-level key of the patch replaces the key in the state; a JSON null
 * removes it.  Nested objects are replaced whole, not merged: what an event
 * says about a key is the key's new value.
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "utils/fmgrprotos.h"

/* '{}', built once per call: callers may modify or free what they get. */
Jsonb *
hl_empty_object(void)
{
	JsonbParseState *ps = NULL;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

/* Push a C string as a key or a string value (token WJB_KEY or WJB_VALUE). */
void
hl_push_string(JsonbParseState **ps, JsonbIteratorToken token, const char *value)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	(void) pushJsonbValue(ps, token, &v);
}

/*
 * An event's document as handlers and webhooks see it: doc (its columns)
 * with "state" after them, JSON null when state is NULL.
 */
Jsonb *
hl_with_state(Jsonb *doc, Jsonb *state)
{
	JsonbParseState *ps = NULL;
	JsonbValue	v;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	hl_push_string(&ps, WJB_KEY, "state");
	if (state)
	{
		v.type = jbvBinary;
		v.val.binary.data = &state->root;
		v.val.binary.len = VARSIZE(state) - VARHDRSZ;
	}
	else
		v.type = jbvNull;
	pushJsonbValue(&ps, WJB_VALUE, &v);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(doc),
											  JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL)))));
}

static void
push_key(JsonbParseState **ps, const JsonbValue *key)
{
	pushJsonbValue(ps, WJB_KEY, (JsonbValue *) key);
}

/*
 * Apply patch to state; *before receives the prior values of the patched keys
 * (JSON null where a key was absent).  Both inputs must be objects.
 */
Jsonb *
hl_merge_patch(Jsonb *state, Jsonb *patch, Jsonb **before)
{
	JsonbParseState *merged = NULL;
	JsonbParseState *prior = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	JsonbValue *result;
	JsonbValue	null_value;

	null_value.type = jbvNull;

	pushJsonbValue(&merged, WJB_BEGIN_OBJECT, NULL);
	pushJsonbValue(&prior, WJB_BEGIN_OBJECT, NULL);

	/* keys of the state the patch leaves alone */
	it = JsonbIteratorInit(&state->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		if (getKeyJsonValueFromContainer(&patch->root, key.val.string.val,
										 key.val.string.len, NULL) != NULL)
			continue;
		push_key(&merged, &key);
		pushJsonbValue(&merged, WJB_VALUE, &val);
	}

	/* the patch's own keys */
	it = JsonbIteratorInit(&patch->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		JsonbValue *old;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);

		old = getKeyJsonValueFromContainer(&state->root, key.val.string.val,
										   key.val.string.len, NULL);
		push_key(&prior, &key);
		pushJsonbValue(&prior, WJB_VALUE, old ? old : &null_value);

		if (val.type == jbvNull)
			continue;
		push_key(&merged, &key);
		pushJsonbValue(&merged, WJB_VALUE, &val);
	}

	result = pushJsonbValue(&prior, WJB_END_OBJECT, NULL);
	*before = JsonbValueToJsonb(result);
	result = pushJsonbValue(&merged, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/* The object without its top-level keys whose value is JSON null. */
Jsonb *
hl_strip_top_level_nulls(Jsonb *object)
{
	JsonbParseState *ps = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&object->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		if (val.type == jbvNull)
			continue;
		push_key(&ps, &key);
		pushJsonbValue(&ps, WJB_VALUE, &val);
	}
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

static bool
same_json_value(JsonbValue *a, JsonbValue *b)
{
	Jsonb	   *ja;
	Jsonb	   *jb;

	if (a->type == jbvNull || b->type == jbvNull)
		return a->type == b->type;
	ja = JsonbValueToJsonb(a);
	jb = JsonbValueToJsonb(b);
	return compareJsonbContainers(&ja->root, &jb->root) == 0;
}

/*
 * The merge patch that turns old into new: the keys whose value changed or
 * that new adds, with their new value, and JSON null for the keys new
 * removes or sets to null.  A JSON null and an absent key count as the
 * same, as they are in an entity's state.  NULL if nothing changed.
 *
 * Capture uses it on one row before and after an UPDATE, rollback on an
 * entity's state now and then.
 */
Jsonb *
hl_changed_keys(Jsonb *old, Jsonb *new)
{
	JsonbParseState *ps = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	JsonbValue	null_value;
	bool		changed = false;

	null_value.type = jbvNull;
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&new->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		JsonbValue *prior;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		prior = getKeyJsonValueFromContainer(&old->root, key.val.string.val,
											 key.val.string.len, NULL);
		if (prior != NULL && same_json_value(prior, &val))
			continue;
		if (prior == NULL && val.type == jbvNull)
			continue;
		push_key(&ps, &key);
		pushJsonbValue(&ps, WJB_VALUE, val.type == jbvNull ? &null_value : &val);
		changed = true;
	}

	/* keys that new does not have */
	it = JsonbIteratorInit(&old->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		if (val.type == jbvNull ||
			getKeyJsonValueFromContainer(&new->root, key.val.string.val,
										 key.val.string.len, NULL) != NULL)
			continue;
		push_key(&ps, &key);
		pushJsonbValue(&ps, WJB_VALUE, &null_value);
		changed = true;
	}
	if (!changed)
		return NULL;
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}
