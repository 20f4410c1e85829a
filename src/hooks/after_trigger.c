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
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks_internal.h"

#include "commands/trigger.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(headlessly_hook_registry_changed);

#define AFTER_HOOKS_QUERY \
	"SELECT 1 FROM " HL_SCHEMA ".hook_registry WHERE phase OPERATOR(pg_catalog.=) 'after' LIMIT 1"

/*
 * The registry's statement trigger: every backend reloads its hooks, and the
 * log has its AFTER INSERT trigger exactly while after hooks exist.
 */
Datum
headlessly_hook_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			events_relid;
	bool		want;
	bool		have;
	HlSavedUser saved;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired AFTER ... FOR EACH STATEMENT",
						"headlessly.hook_registry_changed()")));

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));

	events_relid = get_relname_relid("events", RelationGetNamespace(trigdata->tg_relation));
	have = OidIsValid(get_trigger_oid(events_relid, HL_AFTER_TRIGGER_NAME, true));

	hl_spi_connect();
	hl_become_log_owner(&saved);
	rc = SPI_execute(AFTER_HOOKS_QUERY, false, 1);
	hl_spi_check(rc, SPI_OK_SELECT, AFTER_HOOKS_QUERY);
	want = SPI_processed > 0;

	if (want && !have)
	{
		rc = SPI_execute("CREATE TRIGGER " HL_AFTER_TRIGGER_NAME
						 " AFTER INSERT ON " HL_SCHEMA ".events"
						 " FOR EACH ROW EXECUTE FUNCTION " HL_SCHEMA ".events_after_insert()",
						 false, 0);
		hl_spi_check(rc, SPI_OK_UTILITY, "CREATE TRIGGER");
		rc = SPI_execute("ALTER TABLE " HL_SCHEMA ".events"
						 " ENABLE ALWAYS TRIGGER " HL_AFTER_TRIGGER_NAME, false, 0);
		hl_spi_check(rc, SPI_OK_UTILITY, "ALTER TABLE");
	}
	else if (!want && have)
	{
		hl_guard_allow_internal_ddl(true);
		rc = SPI_execute("DROP TRIGGER " HL_AFTER_TRIGGER_NAME " ON " HL_SCHEMA ".events",
						 false, 0);
		hl_guard_allow_internal_ddl(false);
		hl_spi_check(rc, SPI_OK_UTILITY, "DROP TRIGGER");
	}
	hl_restore_user(&saved);
	SPI_finish();

	return PointerGetDatum(NULL);
}
