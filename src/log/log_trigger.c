/*-------------------------------------------------------------------------
 *
 * log_trigger.c
 *	  The BEFORE INSERT trigger of headlessly.events.
 *
 * Every way into the log (events_append, the batch, a plain INSERT, COPY)
 * goes through this trigger, so the rules live here once: defaults, checks,
 * idempotency, the stream's version, seq and recorded_at, and entity state.
 *
 * The log assigns seq, recorded_at, version and before.  A row that arrives
 * with recorded_at is a stored event coming back (a restore): only the
 * log's owner or a superuser may insert one, and it is validated as an
 * append is -- well-formed, continuing its stream by one version, not going
 * back in time along it, its before what the stream gives -- and keeps the
 * stream heads in step, but runs no hooks (they ran when it was first
 * appended).  Any other row that names an assigned column is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"
#include "delivery/delivery.h"
#include "hooks/hooks.h"
#include "state/state.h"
#include "tenancy/tenancy.h"
#include "tamper/tamper.h"
#include "worker/worker.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/xid8.h"

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
	int			xact_id;		/* -1 in a log still at version 0.1 */
	int			hash;			/* -1 in a log still at version 0.1 */
	int			covered[HL_EVENT_NFIELDS];	/* the hashed columns, in canonical order */
	bool		seq_is_identity;	/* a log still at version 0.1 */
	Oid			seq_relid;		/* the sequence seq is drawn from */
	Oid			key_index;		/* the unique index on the idempotency key */
} EventColumns;

static EventColumns cols;
static bool cols_callback_registered = false;

/* how many of our triggers are running in this backend, innermost included */
static int	trigger_nesting = 0;

/* the id of the row the innermost of them is appending, if it came with one */
static text *current_event_id = NULL;

/* restored rows of this transaction, whose after hooks must not run */
static HTAB *restored_seqs = NULL;
static LocalTransactionId restored_seqs_lxid = InvalidLocalTransactionId;

/* in this transaction, the sequence is known to have reached this value */
static int64 seq_known_high = 0;
static LocalTransactionId seq_known_lxid = InvalidLocalTransactionId;

int
hl_trigger_nesting(void)
{
	return trigger_nesting;
}

/* For error context: the id of the row being appended, or NULL. */
text *
hl_current_event_id(void)
{
	return current_event_id;
}

static void
cols_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cols.relid)
		cols.relid = InvalidOid;
}

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
	if (!cols_callback_registered)
	{
		hl_register_relcache_callback(cols_relcache_callback, (Datum) 0);
		cols_callback_registered = true;
	}
	cols.relid = InvalidOid;

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
	cols.xact_id = SPI_fnumber(RelationGetDescr(rel), "xact_id");
	cols.xact_id = cols.xact_id > 0 ? cols.xact_id - 1 : -1;
	cols.hash = SPI_fnumber(RelationGetDescr(rel), "hash");
	cols.hash = cols.hash > 0 ? cols.hash - 1 : -1;
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
		cols.covered[f] = column_number(rel, hl_event_fields[f].name);

	/* 0.1 filled seq from an identity; 0.2 draws it here, from a sequence */
	cols.seq_is_identity = TupleDescAttr(RelationGetDescr(rel), cols.seq)->attidentity != '\0';
	if (cols.seq_is_identity)
		cols.seq_relid = hl_identity_sequence(rel, cols.seq + 1);
	else
		cols.seq_relid = get_relname_relid("events_seq_seq", RelationGetNamespace(rel));
	if (!OidIsValid(cols.seq_relid))
		elog(ERROR, "sequence %s.events_seq_seq is missing", HL_SCHEMA);

	/* a change to the log's indexes invalidates the log too */
	cols.key_index = get_relname_relid("events_idempotency_idx", RelationGetNamespace(rel));
	if (!OidIsValid(cols.key_index))
		elog(ERROR, "index %s.events_idempotency_idx is missing", HL_SCHEMA);
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
 * Validate the row and fill in the defaults.  A restored row keeps its id
 * and is not held to headlessly.max_event_bytes: that limit is about what
 * may be appended now, and the event was accepted when it was appended.
 */
static void
prepare_event(Datum *values, bool *nulls, bool restoring)
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
	hl_check_not_blank("tenant", DatumGetTextPP(values[cols.tenant]),
					   "Name the tenant, or pass NULL for the one headlessly.tenant names.");
	/* a tenant role appends only to its tenants, whichever way it inserts */
	hl_tenant_check(VARDATA_ANY(DatumGetTextPP(values[cols.tenant])),
					VARSIZE_ANY_EXHDR(DatumGetTextPP(values[cols.tenant])),
					HL_TENANT_WRITE);

	hl_check_not_blank("target", checked_name(values, nulls, cols.target, "target"),
					   "Pass the id of the entity the event is about, or NULL for an event about no entity.");
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

	if (!restoring)
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
}

/* A column the log assigns came with a row that is not a restored event. */
static void
refuse_assigned_column(const char *column, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_HL_INVALID_EVENT),
			 errmsg("%s is assigned by the log", column),
			 errdetail("seq, recorded_at, version, before, xact_id and hash come from the log; only the log's owner restores stored events with them, recorded_at included."),
			 errhint("%s", hint)));
}

static void
refuse_assigned_columns(Datum *values, bool *nulls)
{
	/* a log still at 0.1 fills seq from its identity before we see the row */
	if (!nulls[cols.seq] && !cols.seq_is_identity)
		refuse_assigned_column("seq", "Leave seq out of the INSERT or COPY.");
	if (!nulls[cols.version])
		refuse_assigned_column("version",
							   "Leave version out; to make an append conditional, pass expected_version to headlessly.events_append().");
	if (!nulls[cols.before])
		refuse_assigned_column("before",
							   "Leave before out; the log fills it in from the entity's state.");
	if (cols.xact_id >= 0 && !nulls[cols.xact_id])
		refuse_assigned_column("xact_id",
							   "Leave xact_id out; the log records the appending transaction.");
	if (cols.hash >= 0 && !nulls[cols.hash])
		refuse_assigned_column("hash",
							   "Leave hash out; the log computes it from the event.");
}

/*
 * The stored hash of a version of a stream whose head does not carry it
 * (a head rebuilt from the log by an older release): read from the log.
 */
static bool
stored_stream_hash(Datum tenant, Datum target, int64 version, HlHash *hash)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		args[3] = {tenant, target, Int64GetDatum(version)};
	bool		found = false;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT hash FROM " HL_SCHEMA ".events"
							   " WHERE tenant OPERATOR(pg_catalog.=) $1"
							   "   AND target OPERATOR(pg_catalog.=) $2"
							   "   AND version OPERATOR(pg_catalog.=) $3",
							   3, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		found = !isnull && hl_hash_from_datum(d, hash);
	}
	SPI_finish();
	return found;
}

/*
 * The event's hash, over its final columns: chained to the stream's
 * previous event for events with a target (head is the stream's head
 * after this event, whose hash becomes this one), unchained otherwise.
 * Does nothing on a log still at version 0.1.
 */
static void
hash_event(Datum *values, bool *nulls, HlStreamHead *head)
{
	Datum		fields[HL_EVENT_NFIELDS];
	bool		isnull[HL_EVENT_NFIELDS];
	HlHash		prev = hl_zero_hash;
	HlHash		hash;

	if (cols.hash < 0)
		return;
	if (head != NULL && head->version > 1)
	{
		if (head->has_hash)
			memcpy(prev.bytes, head->hash, HL_HASH_LEN);
		else if (!stored_stream_hash(values[cols.tenant], values[cols.target],
									 head->version - 1, &prev))
			prev = hl_zero_hash;
	}
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		fields[f] = values[cols.covered[f]];
		isnull[f] = nulls[cols.covered[f]];
	}
	hl_event_hash_of_datums(fields, isnull, &prev, &hash);
	values[cols.hash] = PointerGetDatum(hl_hash_to_bytea(&hash));
	nulls[cols.hash] = false;
	if (head != NULL)
	{
		memcpy(head->hash, hash.bytes, HL_HASH_LEN);
		head->has_hash = true;
	}
}

/* A restored event's stored hash carries its stream on, as it is. */
static void
keep_restored_hash(Datum *values, bool *nulls, HlStreamHead *head)
{
	HlHash		hash;

	if (hl_hash_from_datum(values[cols.hash], &hash))
	{
		memcpy(head->hash, hash.bytes, HL_HASH_LEN);
		head->has_hash = true;
	}
	else
		head->has_hash = false;
}

/*
 * The appending top-level transaction, by which consumers and checkpoints
 * tell what has committed; an event about a target may be ordered later
 * (order_after_stream).  A restored event gets the restoring transaction's:
 * another cluster's transaction ids mean nothing here.
 */
static void
assign_xact_id(Datum *values, bool *nulls)
{
	if (cols.xact_id < 0)
		return;
	values[cols.xact_id] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	nulls[cols.xact_id] = false;
}

/*
 * An event about a target is ordered by the higher of its own transaction's
 * id and the xact_id of its stream's previous version, kept in the locked
 * head: then (xact_id, seq) order is version order along every stream (seq
 * already is), although a transaction that took its id early may append a
 * version after a newer transaction committed the one before.
 *
 * Consumers and checkpoints still never skip an event.  They take what lies
 * below a horizon, the oldest transaction running at their read, and go on
 * from there; an event committed after such a read had its transaction
 * running then, so its own id, and so its xact_id, is at least that horizon.
 * And an event is handed out only once its xact_id is below the horizon,
 * when its own transaction, whose id is no higher, has ended.  It may wait
 * until the transactions below the previous version's have ended too: a long
 * transaction delays consumers, it never makes one skip.
 *
 * xact_id is still the id of a transaction that had it before the event's
 * seq was drawn (the previous version committed before the stream was
 * locked, and seq is drawn after that), which the pull consumers' fence
 * relies on (delivery/pull.c).  A restored event keeps the restoring
 * transaction's own id: its seq may come from the dump, before the lock.
 */
static void
order_after_stream(Datum *values, const HlStreamHead *head)
{
	FullTransactionId own;

	if (cols.xact_id < 0 || !FullTransactionIdIsValid(head->xact_id))
		return;
	own = DatumGetFullTransactionId(values[cols.xact_id]);
	/*
	 * An id no transaction has had yet is not a previous version's (an
	 * owner's edit of the head): taken, it would hold the stream's events
	 * back from every consumer until the counter passed it.
	 */
	if (FullTransactionIdPrecedes(own, head->xact_id) &&
		FullTransactionIdPrecedes(head->xact_id, ReadNextFullTransactionId()))
		values[cols.xact_id] = FullTransactionIdGetDatum(head->xact_id);
}

/* Draw the event's seq: once its stream is locked, for events with a target. */
static void
assign_seq(Datum *values, bool *nulls)
{
	if (cols.seq_is_identity)
		return;
	values[cols.seq] = Int64GetDatum(nextval_internal(cols.seq_relid, false));
	nulls[cols.seq] = false;
}

/*
 * A restored seq: the sequence must go on past it, or later appends would
 * draw it again.  The sequence is locked against nextval meanwhile: an
 * append running during a restore waits for it instead of drawing a
 * number the restore is bringing back.
 */
static void
advance_sequence_past(int64 seq)
{
	HlSavedUser saved;
	int64		last;

	if (seq_known_lxid != hl_local_xid())
	{
		seq_known_lxid = hl_local_xid();
		seq_known_high = 0;
	}
	if (seq <= seq_known_high)
		return;

	LockRelationOid(cols.seq_relid, AccessExclusiveLock);
	hl_become_log_owner(&saved);
	{
		LOCAL_FCINFO(fcinfo, 1);
		Datum		d;

		InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = ObjectIdGetDatum(cols.seq_relid);
		fcinfo->args[0].isnull = false;
		d = pg_sequence_last_value(fcinfo);
		last = fcinfo->isnull ? 0 : DatumGetInt64(d);
	}
	if (last < seq)
	{
		(void) DirectFunctionCall2(setval_oid, ObjectIdGetDatum(cols.seq_relid),
								   Int64GetDatum(seq));
		last = seq;
	}
	hl_restore_user(&saved);
	seq_known_high = last;
}

/* Remember a restored row, so that the after hooks leave it alone. */
static void
remember_restored(int64 seq)
{
	bool		found;

	if (restored_seqs_lxid != hl_local_xid() || restored_seqs == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(int64);
		ctl.hcxt = TopTransactionContext;
		restored_seqs = hash_create("headlessly restored events", 256, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		restored_seqs_lxid = hl_local_xid();
	}
	(void) hash_search(restored_seqs, &seq, HASH_ENTER, &found);
}

/*
 * Was the row with this seq restored by this transaction?  The log's after
 * trigger asks, since hooks ran when the event was first appended.
 */
bool
hl_event_is_restored(int64 seq)
{
	bool		found;

	if (restored_seqs == NULL || restored_seqs_lxid != hl_local_xid())
		return false;
	(void) hash_search(restored_seqs, &seq, HASH_FIND, &found);
	return found;
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
 * its next version and recorded_at.  expected is the version the row must
 * get, or 0 for none.
 */
static void
lock_stream(Datum *values, bool *nulls, int64 expected, bool create,
			HlStreamHead *head)
{
	text	   *tenant = DatumGetTextPP(values[cols.tenant]);
	text	   *target = DatumGetTextPP(values[cols.target]);

	hl_stream_lock(tenant, target, create, head);

	if (expected > 0 && expected != head->version + 1)
		ereport(ERROR,
				(errcode(ERRCODE_HL_VERSION_CONFLICT),
				 errmsg("target \"%s\" is at version " INT64_FORMAT ", not the expected version " INT64_FORMAT,
						text_to_cstring(target), head->version, expected - 1),
				 errdetail("expected_version makes an append conditional on the version the target is at."),
				 errhint("Read the target's current state and retry with expected_version " INT64_FORMAT ".",
						 head->version)));
	values[cols.version] = Int64GetDatum(head->version + 1);
	nulls[cols.version] = false;

	/* from the transaction's own id each time: the head may have moved on */
	assign_xact_id(values, nulls);
	order_after_stream(values, head);

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
	if (cols.xact_id >= 0)
		head->xact_id = DatumGetFullTransactionId(values[cols.xact_id]);
	return before;
}

/*
 * Append the row to its target's stream: lock the stream, run the before
 * hooks, apply the event and write the head back.  seq is drawn once the
 * stream's head is final, so that along a stream seq order is version
 * order: again if a hook or a concurrent first append moved the stream on.
 */
static void
append_to_stream(TupleDesc tupdesc, Datum *values, bool *nulls, int64 expected)
{
	text	   *tenant = DatumGetTextPP(values[cols.tenant]);
	text	   *target = DatumGetTextPP(values[cols.target]);
	text	   *typetext = DatumGetTextPP(values[cols.type]);
	const char *type = VARDATA_ANY(typetext);
	int			typelen = VARSIZE_ANY_EXHDR(typetext);
	HlEventType et = hl_parse_event_type(type, typelen);
	bool		hooks = hl_hooks_match(HL_HOOK_BEFORE, type, typelen);
	bool		occurred_given = !nulls[cols.occurred_at];
	int64		seq_drawn_at = -1;
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
		lock_stream(values, nulls, expected, hooks, &head);
		if (seq_drawn_at != head.version)
		{
			assign_seq(values, nulls);
			seq_drawn_at = head.version;
		}
		if (hooks &&
			run_before_hooks(tupdesc, values, nulls,
							 et.kind == HL_NOT_ENTITY ? NULL : head.state))
		{
			/* a hook may have appended to this very stream: read it again */
			lock_stream(values, nulls, expected, hooks, &head);
			if (seq_drawn_at != head.version)
			{
				assign_seq(values, nulls);
				seq_drawn_at = head.version;
			}
		}
		before = apply_event(&head, et, type, target, values);

		/* the row is final now: hash it, and the head carries the hash on */
		values[cols.before] = before ? JsonbPGetDatum(before) : (Datum) 0;
		nulls[cols.before] = before == NULL;
		if (!occurred_given)
		{
			values[cols.occurred_at] = values[cols.recorded_at];
			nulls[cols.occurred_at] = false;
		}
		hash_event(values, nulls, &head);
	} while (!hl_stream_store(tenant, target, &head));

	/* a snapshot every headlessly.snapshot_interval versions */
	hl_snapshot_maybe_write(tenant, target, &head);

	/* after hooks see the state this event left */
	if (et.kind != HL_NOT_ENTITY && hl_hooks_match(HL_HOOK_AFTER, type, typelen))
		hl_keep_state_after(DatumGetInt64(values[cols.seq]), head.state);
}

/*
 * Put a restored event back on its stream: it must be the stream's next
 * version, not earlier than the stream's last event, follow the entity
 * rules, and carry the before they give.
 */
static void
restore_to_stream(Datum *values, bool *nulls, const char *id)
{
	text	   *tenant = DatumGetTextPP(values[cols.tenant]);
	text	   *target = DatumGetTextPP(values[cols.target]);
	text	   *typetext = DatumGetTextPP(values[cols.type]);
	const char *type = VARDATA_ANY(typetext);
	HlEventType et = hl_parse_event_type(type, VARSIZE_ANY_EXHDR(typetext));
	int64		version = DatumGetInt64(values[cols.version]);
	TimestampTz recorded_at = DatumGetTimestampTz(values[cols.recorded_at]);
	Jsonb	   *before;
	HlStreamHead head;

	do
	{
		hl_stream_lock(tenant, target, false, &head);
		if (version != head.version + 1)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("restored event \"%s\" is version " INT64_FORMAT " of target \"%s\", whose stream is at version " INT64_FORMAT,
							id, version, text_to_cstring(target), head.version),
					 errdetail("Each restored event must continue its stream by one version."),
					 errhint("Restore each stream's events in version order, none missing.")));
		if (head.has_last_recorded_at && head.last_recorded_at > recorded_at)
		{
			/* timestamptz_to_str() returns a static buffer */
			char	   *at = pstrdup(timestamptz_to_str(recorded_at));
			char	   *last = pstrdup(timestamptz_to_str(head.last_recorded_at));

			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("restored event \"%s\" was recorded at %s, before the last event of target \"%s\" at %s",
							id, at, text_to_cstring(target), last),
					 errdetail("recorded_at never goes back along a stream.")));
		}
		before = apply_event(&head, et, type, target, values);
		if (cols.hash >= 0 && !nulls[cols.hash])
			keep_restored_hash(values, nulls, &head);
		else
			hash_event(values, nulls, &head);
	} while (!hl_stream_store(tenant, target, &head));

	hl_snapshot_maybe_write(tenant, target, &head);

	if (nulls[cols.before] != (before == NULL) ||
		(before != NULL &&
		 !DatumGetBool(DirectFunctionCall2(jsonb_eq, values[cols.before],
										   JsonbPGetDatum(before)))))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("before of restored event \"%s\" does not match its stream", id),
				 errdetail("The stream gives %s.",
						   before ? JsonbToCString(NULL, &before->root, VARSIZE(before)) : "NULL"),
				 errhint("before holds the prior values of the keys the event changed; restore the events unchanged.")));
}

/* Claim the row's idempotency key; false if it is taken. */
static bool
claim_key(Relation rel, Datum *values, bool *nulls)
{
	text	   *source = nulls[cols.source] ? NULL : DatumGetTextPP(values[cols.source]);

	return hl_claim_idempotency_key(rel, cols.key_index,
									DatumGetTextPP(values[cols.tenant]), source,
									DatumGetTextPP(values[cols.external_event_id]),
									trigger_nesting);
}

/* A new event, by any path: the log assigns what it assigns. */
static HeapTuple
append_row(Relation rel, Datum *values, bool *nulls)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int64		expected = 0;

	refuse_assigned_columns(values, nulls);

	/* expected_version, left by our own append functions for this id */
	if (!nulls[cols.id] &&
		hl_take_expected_version(DatumGetTextPP(values[cols.id]), &expected) &&
		nulls[cols.target])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("expected_version requires a target"),
				 errdetail("Only events about a target have versions.")));

	hl_check_hook_depth();
	prepare_event(values, nulls, false);

	values[cols.recorded_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	nulls[cols.recorded_at] = false;
	assign_xact_id(values, nulls);

	/* the key is taken: store nothing, run nothing */
	if (!nulls[cols.external_event_id] && !claim_key(rel, values, nulls))
		return NULL;

	if (!nulls[cols.target])
		append_to_stream(tupdesc, values, nulls, expected);
	else
	{
		assign_seq(values, nulls);
		run_before_hooks(tupdesc, values, nulls, NULL);
		if (nulls[cols.occurred_at])
		{
			values[cols.occurred_at] = values[cols.recorded_at];
			nulls[cols.occurred_at] = false;
		}
		hash_event(values, nulls, NULL);
	}

	/* realtime subscribers hear of it, and the worker is woken, at commit */
	hl_notify_event(tupdesc, values, nulls, cols.type, cols.tenant, cols.target);
	return heap_form_tuple(tupdesc, values, nulls);
}

/* A stored event coming back, as pg_restore brings it. */
static HeapTuple
restore_row(Relation rel, Datum *values, bool *nulls)
{
	char	   *id;

	if (!hl_relation_ownercheck(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("recorded_at is assigned by the log"),
				 errdetail("Only the owner of the log may insert stored events as they are, as a restore does."),
				 errhint("Leave recorded_at NULL; pass occurred_at for when the event happened.")));

	prepare_event(values, nulls, true);
	id = TextDatumGetCString(values[cols.id]);
	assign_xact_id(values, nulls);
	/* at commit, the database's delivery worker is woken (appended rows: hl_notify_event) */
	hl_worker_note_append();

	if (nulls[cols.target] != nulls[cols.version])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("restored event \"%s\" has %s", id,
						nulls[cols.target] ? "a version but no target" : "a target but no version"),
				 errdetail("Events about a target have a version, other events none.")));
	if (nulls[cols.target] && !nulls[cols.before])
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("restored event \"%s\" has before but no target", id),
				 errdetail("Only entity events about a target have before.")));
	if (!nulls[cols.seq] && DatumGetInt64(values[cols.seq]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("restored event \"%s\" has seq " INT64_FORMAT, id,
						DatumGetInt64(values[cols.seq])),
				 errdetail("seq starts at 1.")));

	if (!nulls[cols.external_event_id] && !claim_key(rel, values, nulls))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("idempotency key \"%s\" of restored event \"%s\" is stored already",
						TextDatumGetCString(values[cols.external_event_id]), id),
				 errdetail("Each idempotency key belongs to one event.")));

	if (nulls[cols.seq])
		assign_seq(values, nulls);
	else
		advance_sequence_past(DatumGetInt64(values[cols.seq]));

	if (nulls[cols.occurred_at])
	{
		values[cols.occurred_at] = values[cols.recorded_at];
		nulls[cols.occurred_at] = false;
	}

	/*
	 * A restored event keeps the hash it was dumped with, unchecked: an
	 * edited dump is then what headlessly.verify() names.  One without
	 * (dumped from a log at 0.1) gets it computed.
	 */
	if (!nulls[cols.target])
		restore_to_stream(values, nulls, id);
	else if (cols.hash < 0 || nulls[cols.hash])
		hash_event(values, nulls, NULL);

	if (rel->trigdesc && rel->trigdesc->trig_insert_after_row)
		remember_restored(DatumGetInt64(values[cols.seq]));
	return heap_form_tuple(RelationGetDescr(rel), values, nulls);
}

Datum
headlessly_events_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	Relation	rel;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	newtuple;
	text	   *saved_event_id;

	trigdata = hl_trigger_data(fcinfo, "headlessly.events_before_insert()",
							   HL_FIRED_BEFORE | HL_FIRED_ROW | HL_FIRED_INSERT);

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	resolve_columns(rel);

	values = palloc(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	heap_deform_tuple(trigdata->tg_trigtuple, tupdesc, values, nulls);

	/* the idempotency key locks count how deep appends nest */
	trigger_nesting++;
	saved_event_id = current_event_id;
	current_event_id = nulls[cols.id] ? NULL : DatumGetTextPP(values[cols.id]);
	PG_TRY();
	{
		if (!nulls[cols.recorded_at])
			newtuple = restore_row(rel, values, nulls);
		else
			newtuple = append_row(rel, values, nulls);
	}
	PG_FINALLY();
	{
		trigger_nesting--;
		current_event_id = saved_event_id;
	}
	PG_END_TRY();

	return PointerGetDatum(newtuple);
}
