/*-------------------------------------------------------------------------
 *
 * after_trigger.c
 *	  The log's AFTER INSERT trigger, there exactly while after hooks are.
 *
 * Even an idle AFTER trigger costs every append a queued trigger event, so
 * the log has one only while after hooks are registered.  The registry's
 * statement trigger creates and drops it (also when a restore loads the
 * registry) and tells every backend to reload its hooks.
 *
 * Sessions changing the registry at the same time must not leave the
 * trigger out of step with what they commit (one drops it for the last
 * after hook while another registers a new one; two both create it).  So
 * each decides under a lock on the log that only deciders conflict on, held
 * until commit, and decides from the registry as committed by then (not as
 * of its transaction's snapshot) plus its own changes.
 *
 * The trigger is created and dropped through the catalog routines, not as
 * SQL: the commands would have to pass the log's DDL guard, which refuses
 * them to everyone else.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(headlessly_hook_registry_changed);

#define AFTER_HOOKS_QUERY \
	"SELECT 1 FROM " HL_SCHEMA ".hook_registry WHERE phase OPERATOR(pg_catalog.=) 'after' LIMIT 1"

static SPIPlanPtr after_hooks_plan = NULL;

/* Are after hooks registered, as committed now or changed by this transaction? */
static bool
after_hooks_registered(void)
{
	int			rc;
	bool		found;

	hl_spi_connect();
	hl_prepare_cached(&after_hooks_plan, AFTER_HOOKS_QUERY, 0, NULL);
	rc = SPI_execute_snapshot(after_hooks_plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, false, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, AFTER_HOOKS_QUERY);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

static void
create_after_trigger(Oid events_relid)
{
	CreateTrigStmt *stmt = makeNode(CreateTrigStmt);

	stmt->trigname = HL_AFTER_TRIGGER_NAME;
	stmt->relation = makeRangeVar(HL_SCHEMA, "events", -1);
	stmt->funcname = list_make2(makeString(HL_SCHEMA), makeString("events_after_insert"));
	stmt->row = true;
	stmt->timing = TRIGGER_TYPE_AFTER;
	stmt->events = TRIGGER_TYPE_INSERT;

	/* ALWAYS: session_replication_role = replica must not skip after hooks */
	CreateTriggerFiringOn(stmt, NULL, events_relid, InvalidOid, InvalidOid, InvalidOid,
						  InvalidOid, InvalidOid, NULL, false, false, TRIGGER_FIRES_ALWAYS);
	CommandCounterIncrement();
}

static void
drop_after_trigger(Oid trigger)
{
	ObjectAddress address;

	ObjectAddressSet(address, TriggerRelationId, trigger);
	performDeletion(&address, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
	CommandCounterIncrement();
}

/*
 * The registry's statement trigger: every backend reloads its hooks, and the
 * log has its AFTER INSERT trigger exactly while after hooks exist.
 */
Datum
headlessly_hook_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	Oid			events_relid;
	Oid			trigger;
	bool		want;
	HlSavedUser saved;

	trigdata = hl_trigger_data(fcinfo, "headlessly.hook_registry_changed()",
							   HL_FIRED_AFTER | HL_FIRED_STATEMENT);

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));

	/*
	 * SHARE UPDATE EXCLUSIVE conflicts with itself but not with appends.
	 * Acquiring it also brings in the catalog changes of those who held it.
	 */
	events_relid = hl_log_relid();
	LockRelationOid(events_relid, ShareUpdateExclusiveLock);

	hl_become_log_owner(&saved);
	want = after_hooks_registered();
	trigger = get_trigger_oid(events_relid, HL_AFTER_TRIGGER_NAME, true);
	if (want && !OidIsValid(trigger))
		create_after_trigger(events_relid);
	else if (!want && OidIsValid(trigger))
		drop_after_trigger(trigger);
	hl_restore_user(&saved);

	return PointerGetDatum(NULL);
}
