/*-------------------------------------------------------------------------
 *
 * expectation.c
 *	  expected_version, passed from our own append functions to the log's
 *	  trigger past the version column.
 *
 * The version column is the log's to fill in: a row that arrives with one
 * is refused, since the trigger cannot tell an appending function's
 * expected_version from a version an INSERT chose.  So events_append, the
 * batch and rollback generate the event's id themselves and leave here,
 * keyed by that id, the version the row must get; the trigger takes it
 * when the row with that id arrives.  Nothing but this backend's own C
 * code can put an expectation here, and an INSERT that copies such an id
 * can only make its own append stricter.
 *
 * Expectations live for one statement; whatever an error leaves behind is
 * forgotten when its (sub)transaction aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* "evt_" and at most 64 characters, as hl_event_id_is_valid() allows */
#define ID_KEY_BYTES 72

typedef struct Expectation
{
	char		id[ID_KEY_BYTES];	/* hash key: the id, zero-padded */
	int64		version;		/* the version the row must get */
	int			nest_level;		/* transaction nesting level that made it */
} Expectation;

static HTAB *expectations = NULL;
static bool callbacks_registered = false;

static void
forget_all(void)
{
	if (expectations != NULL)
		hash_destroy(expectations);
	expectations = NULL;
}

static void
expectation_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_all();
			break;
		default:
			break;
	}
}

static void
expectation_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS status;
	Expectation *e;
	int			level;

	if (event != SUBXACT_EVENT_ABORT_SUB || expectations == NULL)
		return;
	level = GetCurrentTransactionNestLevel();
	hash_seq_init(&status, expectations);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->nest_level >= level)
			hash_search(expectations, e->id, HASH_REMOVE, NULL);
	}
}

static bool
id_key(text *id, char *key)
{
	int			len = VARSIZE_ANY_EXHDR(id);

	if (len >= ID_KEY_BYTES)
		return false;
	memset(key, 0, ID_KEY_BYTES);
	memcpy(key, VARDATA_ANY(id), len);
	return true;
}

/*
 * The row with this id, appended next by this backend, must get this
 * version (expected_version + 1).
 */
void
hl_expect_version(text *id, int64 version)
{
	char		key[ID_KEY_BYTES];
	Expectation *e;

	if (!id_key(id, key))
		elog(ERROR, "event id of %d bytes is too long for an expectation",
			 (int) VARSIZE_ANY_EXHDR(id));

	if (!callbacks_registered)
	{
		RegisterXactCallback(expectation_xact_callback, NULL);
		RegisterSubXactCallback(expectation_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (expectations == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = ID_KEY_BYTES;
		ctl.entrysize = sizeof(Expectation);
		ctl.hcxt = TopMemoryContext;
		expectations = hash_create("headlessly expected versions", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	e = hash_search(expectations, key, HASH_ENTER, NULL);
	e->version = version;
	e->nest_level = GetCurrentTransactionNestLevel();
}

/*
 * Take (and forget) the expectation for the row with this id; false if
 * there is none.
 */
bool
hl_take_expected_version(text *id, int64 *version)
{
	char		key[ID_KEY_BYTES];
	Expectation *e;

	if (expectations == NULL || hash_get_num_entries(expectations) == 0 ||
		!id_key(id, key))
		return false;
	e = hash_search(expectations, key, HASH_FIND, NULL);
	if (e == NULL)
		return false;
	*version = e->version;
	hash_search(expectations, key, HASH_REMOVE, NULL);
	return true;
}

/*
 * Forget an expectation the trigger did not take (its row never came);
 * true if there was one.
 */
bool
hl_forget_expected_version(text *id)
{
	int64		unused;

	return hl_take_expected_version(id, &unused);
}

/*
 * A row stored with an expectation the log's trigger never took: a BEFORE
 * INSERT trigger that fires before the log's own changed the row's id, so
 * its version was not checked.  The caller's statement fails, and with it
 * the row.
 */
void
hl_expectation_not_checked(text *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("expected_version could not be checked: a trigger changed the event's id"),
			 errdetail("A BEFORE INSERT trigger on headlessly.events that fires before the log's own gave the event another id than \"%s\", which the append function made.",
					   text_to_cstring(id)),
			 errhint("Leave the id of events appended with expected_version as the append function made it.")));
}
