/*-------------------------------------------------------------------------
 *
 * log_trigger.c
 *	  The BEFORE INSERT trigger of headlessly.events.
 *
 * Every way into the log (events_append, the batch, a plain INSERT, COPY)
 * goes through this trigger, so the rules live here once: defaults, checks,
 * idempotency, the stream's version and recorded_at, and entity state.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"
#include "hooks/hooks.h"
#include "state/state.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(headlessly_events_before_insert);

/* attribute numbers of the log's columns, found by name once per relation */
typedef struct EventColumns
{
	Oid			relid;
	int			seq;
	int			id;
	int			tenant;
	int			type;
	int			target;
	int			version;
	int			actor;
	int			source;
	int			source_type;
	int			external_event_id;
	int			occurred_at;
	int			recorded_at;
	int			data;
	int			before;
	int			metadata;
	int			raw_payload;
	int			session_id;
} EventColumns;

static EventColumns cols;

static int
column_number(Relation rel, const char *name)
{
	int			attno = SPI_fnumber(RelationGetDescr(rel), name);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" is missing from %s", name,
			 RelationGetRelationName(rel));
	return attno - 1;
}

static void
resolve_columns(Relation rel)
{
	if (cols.relid == RelationGetRelid(rel))
		return;

	cols.seq = column_number(rel, "seq");
	cols.id = column_number(rel, "id");
	cols.tenant = column_number(rel, "tenant");
	cols.type = column_number(rel, "type");
	cols.target = column_number(rel, "target");
	cols.version = column_number(rel, "version");
	cols.actor = column_number(rel, "actor");
	cols.source = column_number(rel, "source");
	cols.source_type = column_number(rel, "source_type");
	cols.external_event_id = column_number(rel, "external_event_id");
	cols.occurred_at = column_number(rel, "occurred_at");
	cols.recorded_at = column_number(rel, "recorded_at");
	cols.data = column_number(rel, "data");
	cols.before = column_number(rel, "before");
	cols.metadata = column_number(rel, "metadata");
	cols.raw_payload = column_number(rel, "raw_payload");
	cols.session_id = column_number(rel, "session_id");
	cols.relid = RelationGetRelid(rel);
}

/* Check an optional short text column; returns it detoasted, or NULL. */
static text *
checked_name(Datum *values, bool *nulls, int attno, const char *what)
{
	text	   *t;

	if (nulls[attno])
		return NULL;
	t = DatumGetTextPP(values[attno]);
	hl_check_name(what, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	values[attno] = PointerGetDatum(t);
	return t;
}

static Size
payload_size(Datum *values, bool *nulls, int attno)
{
	return nulls[attno] ? 0 : toast_raw_datum_size(values[attno]) - VARHDRSZ;
}

static void
check_payload_size(Datum *values, bool *nulls)
{
	Size		size;

	size = payload_size(values, nulls, cols.data) +
		payload_size(values, nulls, cols.metadata) +
		payload_size(values, nulls, cols.raw_payload);
	if (size > (Size) hl_max_event_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event payload of %zu bytes exceeds headlessly.max_event_bytes (%d bytes)",
						size, hl_max_event_bytes),
				 errdetail("data, metadata and raw_payload together may have at most %d bytes.",
						   hl_max_event_bytes),
				 errhint("Store large documents elsewhere and reference them from the event.")));
}

/*
 * Validate the row and fill in what the log assigns (except version and
 * before, which need the stream).
 */
static void
prepare_event(Datum *values, bool *nulls)
{
	text	   *type;
	Jsonb	   *data;

	if (nulls[cols.type])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event type must not be NULL"),
				 errhint("Name the event, for example \"Contact.Created\" or \"page_view\".")));
	type = DatumGetTextPP(values[cols.type]);
	hl_check_event_type(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));
	values[cols.type] = PointerGetDatum(type);

	if (nulls[cols.tenant])
	{
		values[cols.tenant] = CStringGetTextDatum(hl_current_tenant());
		nulls[cols.tenant] = false;
	}
	else
		checked_name(values, nulls, cols.tenant, "tenant");

	hl_check_target(checked_name(values, nulls, cols.target, "target"));
	checked_name(values, nulls, cols.actor, "actor");
	checked_name(values, nulls, cols.source, "source");
	checked_name(values, nulls, cols.external_event_id, "external_event_id");

	if (!nulls[cols.source_type])
	{
		text	   *st = DatumGetTextPP(values[cols.source_type]);

		hl_check_source_type(VARDATA_ANY(st), VARSIZE_ANY_EXHDR(st));
	}

	if (nulls[cols.data])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event data must not be NULL"),
				 errhint("Pass an empty object '{}' for an event without data.")));
	data = DatumGetJsonbP(values[cols.data]);
	hl_check_json_object("data", data);
	values[cols.data] = JsonbPGetDatum(data);

	/*
	 * session_id mirrors metadata->>'sessionId'.  A trigger-filled column
	 * rather than a generated one: generation expressions are re-read from
	 * the catalog by every INSERT statement, which showed in profiles.
	 */
	nulls[cols.session_id] = true;
	if (!nulls[cols.metadata])
	{
		Jsonb	   *metadata = DatumGetJsonbP(values[cols.metadata]);
		JsonbValue *sid;

		hl_check_json_object("metadata", metadata);
		values[cols.metadata] = JsonbPGetDatum(metadata);

		sid = getKeyJsonValueFromContainer(&metadata->root, "sessionId", 9, NULL);
		if (sid != NULL && sid->type != jbvNull)
		{
			char	   *session;

			/* what metadata->>'sessionId' gives: strings bare, the rest as JSON */
			if (sid->type == jbvString)
				session = pnstrdup(sid->val.string.val, sid->val.string.len);
			else
			{
				Jsonb	   *j = JsonbValueToJsonb(sid);

				session = JsonbToCString(NULL, &j->root, VARSIZE(j));
			}
			hl_check_name("metadata sessionId", session, strlen(session));
			values[cols.session_id] = CStringGetTextDatum(session);
			nulls[cols.session_id] = false;
		}
	}

	check_payload_size(values, nulls);

	if (nulls[cols.id])
	{
		values[cols.id] = PointerGetDatum(hl_generate_event_id());
		nulls[cols.id] = false;
	}
	else
	{
		text	   *id = DatumGetTextPP(values[cols.id]);

		if (!hl_event_id_is_valid(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id)))
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("invalid event id \"%s\"", text_to_cstring(id)),
					 errdetail("An event id is \"evt_\" followed by 1 to 64 characters from A-Z, a-z, 0-9, \"_\" and \"-\"."),
					 errhint("Leave id NULL to have one generated.")));
		values[cols.id] = PointerGetDatum(id);
	}

	if (nulls[cols.target] && !nulls[cols.version])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("expected_version requires a target"),
				 errdetail("Only events about a target have versions.")));

	if (!nulls[cols.version] && DatumGetInt64(values[cols.version]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("expected_version must not be negative")));

	/* "before" is the log's to fill in */
	nulls[cols.before] = true;
}

static void
check_noun(text *target, const HlStreamHead *head, const char *type, int noun_len)
{
	if (head->noun != NULL &&
		((int) strlen(head->noun) != noun_len || memcmp(head->noun, type, noun_len) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_HL_ENTITY_STATE),
				 errmsg("target \"%s\" is a %s, not a %.*s",
						text_to_cstring(target), head->noun, noun_len, type),
				 errdetail("An entity's noun is fixed by its first Created event."),
				 errhint("Use a %s.* event type for this target, or another target.",
						 head->noun)));
}

/*
 * Lock the target's stream, check expected_version against it, and take
 * its next version and recorded_at.
 */
static void
lock_stream(Datum *values, bool *nulls, bool expected_given, bool create,
			HlStreamHead *head)
{
	text	   *tenant = DatumGetTextPP(values[cols.tenant]);
	text	   *target = DatumGetTextPP(values[cols.target]);

	hl_stream_lock(tenant, target, create, head);

	if (expected_given && DatumGetInt64(values[cols.version]) != head->version + 1)
		ereport(ERROR,
				(errcode(ERRCODE_HL_VERSION_CONFLICT),
				 errmsg("target \"%s\" is at version " INT64_FORMAT ", not the expected version " INT64_FORMAT,
						text_to_cstring(target), head->version,
						DatumGetInt64(values[cols.version]) - 1),
				 errdetail("expected_version makes an append conditional on the version the target is at."),
				 errhint("Read the target's current state and retry with expected_version " INT64_FORMAT ".",
						 head->version)));
	values[cols.version] = Int64GetDatum(head->version + 1);
	nulls[cols.version] = false;

	/* never let recorded_at go backwards along a stream */
	if (head->has_last_recorded_at &&
		head->last_recorded_at > DatumGetTimestampTz(values[cols.recorded_at]))
		values[cols.recorded_at] = TimestampTzGetDatum(head->last_recorded_at);
}

/*
 * Run the before hooks; true if any ran.  What they merged into data gets
 * the same checks as the caller's data.
 */
static bool
run_before_hooks(TupleDesc tupdesc, Datum *values, bool *nulls, Jsonb *state)
{
	if (!hl_run_before_hooks(tupdesc, values, nulls, cols.type, cols.data, state))
		return false;
	check_payload_size(values, nulls);
	return true;
}

/*
 * Apply the entity semantics of the event to the locked head: the state it
 * leaves, its version and times.  Returns the "before" to store, or NULL.
 */
static Jsonb *
apply_event(HlStreamHead *head, HlEventType et, const char *type, text *target,
			Datum *values)
{
	TimestampTz recorded_at = DatumGetTimestampTz(values[cols.recorded_at]);
	Jsonb	   *data = DatumGetJsonbP(values[cols.data]);
	Jsonb	   *before = NULL;

	switch (et.kind)
	{
		case HL_NOT_ENTITY:
			break;

		case HL_VERB_CREATED:
			if (head->state != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_HL_ENTITY_STATE),
						 errmsg("%s \"%s\" already exists", head->noun, text_to_cstring(target)),
						 errdetail("A Created event needs a target that does not exist or was deleted."),
						 errhint("Append a %s.Updated event to change it.", head->noun)));
			check_noun(target, head, type, et.noun_len);
			if (head->noun == NULL)
				head->noun = pnstrdup(type, et.noun_len);
			head->state = data;
			head->created_at = recorded_at;
			head->has_created_at = true;
			break;

		case HL_VERB_DELETED:
		case HL_VERB_OTHER:
			check_noun(target, head, type, et.noun_len);
			if (head->state == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_HL_ENTITY_STATE),
						 errmsg("%.*s \"%s\" does not exist", et.noun_len, type,
								text_to_cstring(target)),
						 errdetail(head->noun ? "The entity was deleted." :
								   "No Created event has been appended for this target."),
						 errhint("Append a %.*s.Created event first.", et.noun_len, type)));
			if (et.kind == HL_VERB_DELETED)
			{
				before = head->state;
				head->state = NULL;
				head->has_created_at = false;
			}
			else
				head->state = hl_merge_patch(head->state, data, &before);
			break;
	}

	if (et.kind != HL_NOT_ENTITY)
	{
		head->updated_at = recorded_at;
		head->has_updated_at = true;
	}
	head->version++;
	head->last_recorded_at = recorded_at;
	head->has_last_recorded_at = true;
	return before;
}

/*
 * Append the row to its target's stream: lock the stream, run the before
 * hooks, apply the event and write the head back.
 */
static void
append_to_stream(TupleDesc tupdesc, Datum *values, bool *nulls)
{
	text	   *tenant = DatumGetTextPP(values[cols.tenant]);
	text	   *target = DatumGetTextPP(values[cols.target]);
	text	   *typetext = DatumGetTextPP(values[cols.type]);
	const char *type = VARDATA_ANY(typetext);
	int			typelen = VARSIZE_ANY_EXHDR(typetext);
	HlEventType et = hl_parse_event_type(type, typelen);
	bool		expected_given = !nulls[cols.version];
	bool		hooks = hl_hooks_match(HL_HOOK_BEFORE, type, typelen);
	Jsonb	   *before;
	HlStreamHead head;

	/*
	 * Without hooks, a new stream's head is inserted by the store, which
	 * fails only if a concurrent first append made it meanwhile: then this
	 * append goes after that one.  Hooks run between reading the stream and
	 * writing it, and must not run twice, so with hooks a new stream's head
	 * is made first and held.
	 */
	do
	{
		lock_stream(values, nulls, expected_given, hooks, &head);
		if (hooks &&
			run_before_hooks(tupdesc, values, nulls,
							 et.kind == HL_NOT_ENTITY ? NULL : head.state))
		{
			/* a hook may have appended to this very stream: read it again */
			lock_stream(values, nulls, expected_given, hooks, &head);
		}
		before = apply_event(&head, et, type, target, values);
	} while (!hl_stream_store(tenant, target, &head));

	/* a snapshot every headlessly.snapshot_interval versions */
	hl_snapshot_maybe_write(tenant, target, &head);

	if (before != NULL)
	{
		values[cols.before] = JsonbPGetDatum(before);
		nulls[cols.before] = false;
	}

	/* after hooks see the state this event left */
	if (et.kind != HL_NOT_ENTITY && hl_hooks_match(HL_HOOK_AFTER, type, typelen))
		hl_keep_state_after(DatumGetInt64(values[cols.seq]), head.state);
}

Datum
headlessly_events_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	MemoryContext rowcxt = CurrentMemoryContext;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	Datum	   *values;
	bool	   *nulls;
	bool		use_spi;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the trigger manager",
						"headlessly.events_before_insert()")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired BEFORE INSERT FOR EACH ROW",
						"headlessly.events_before_insert()")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	resolve_columns(rel);

	values = palloc(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	heap_deform_tuple(trigdata->tg_trigtuple, tupdesc, values, nulls);

	/*
	 * A row that arrives with recorded_at already set is a stored event
	 * coming back: pg_restore reloading the log.  Only the log's owner may do
	 * that, and the row is kept exactly as it was.
	 */
	if (!nulls[cols.recorded_at])
	{
		if (!hl_relation_ownercheck(RelationGetRelid(rel), GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("recorded_at is assigned by the log"),
					 errdetail("Only the owner of the log may insert stored events as they are, as a restore does."),
					 errhint("Leave recorded_at NULL; pass occurred_at for when the event happened.")));
		return PointerGetDatum(trigdata->tg_trigtuple);
	}

	hl_check_hook_depth();
	prepare_event(values, nulls);

	values[cols.recorded_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	nulls[cols.recorded_at] = false;

	/* only the idempotency claim needs SPI of ours */
	use_spi = !nulls[cols.external_event_id];
	if (use_spi && SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (!nulls[cols.external_event_id])
	{
		text	   *source = nulls[cols.source] ? NULL : DatumGetTextPP(values[cols.source]);

		if (!hl_claim_idempotency_key(DatumGetTextPP(values[cols.tenant]), source,
									  DatumGetTextPP(values[cols.external_event_id]),
									  DatumGetInt64(values[cols.seq])))
		{
			/* the key is taken: store nothing, run nothing */
			SPI_finish();
			return PointerGetDatum(NULL);
		}
	}

	if (!nulls[cols.target])
		append_to_stream(tupdesc, values, nulls);
	else
		run_before_hooks(tupdesc, values, nulls, NULL);

	if (nulls[cols.occurred_at])
	{
		values[cols.occurred_at] = values[cols.recorded_at];
		nulls[cols.occurred_at] = false;
	}

	/* the returned row must outlive SPI's memory */
	MemoryContextSwitchTo(rowcxt);
	newtuple = heap_form_tuple(tupdesc, values, nulls);
	if (use_spi)
		SPI_finish();

	return PointerGetDatum(newtuple);
}
