/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Append-only tables: the guard trigger, make_append_only(), and the
 *	  checks that keep the guard in place.
 *
 * The guard is a BEFORE UPDATE OR DELETE OR TRUNCATE statement trigger,
 * enabled ALWAYS so that session_replication_role = replica does not skip
 * it, and statement-level so that it fires even when no row matches.
 *
 * Ownership of a table is enough to disable or drop its triggers, so those
 * commands are refused on guarded tables by a ddl_command_start event trigger
 * (always present, also enabled ALWAYS) and, when the library is loaded, by
 * a ProcessUtility hook, which also protects the event trigger itself.  A
 * superuser can still get around both (editing pg_trigger directly, or
 * disabling the event trigger in a session that has not loaded the library);
 * the README says so.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(headlessly_append_only_guard);
PG_FUNCTION_INFO_V1(headlessly_make_append_only);
PG_FUNCTION_INFO_V1(headlessly_guard_ddl);

#define GUARD_TRIGGER_NAME "headlessly_append_only"
#define GUARD_EVENT_TRIGGER_NAME "headlessly_guard_ddl"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * Set while the extension itself changes the log's triggers (after_trigger.c):
 * the transaction nesting level that set it, 0 when unset.  A failed
 * statement never gets to unset it, so the abort of that (sub)transaction
 * does: the permission must not outlive the command it was given for.
 */
static int	internal_ddl_level = 0;

void
hl_guard_allow_internal_ddl(bool allow)
{
	internal_ddl_level = allow ? GetCurrentTransactionNestLevel() : 0;
}

static void
guard_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			internal_ddl_level = 0;
			break;
		default:
			break;
	}
}

static void
guard_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/* the aborting subtransaction is still the current one here */
	if (event == SUBXACT_EVENT_ABORT_SUB &&
		internal_ddl_level >= GetCurrentTransactionNestLevel())
		internal_ddl_level = 0;
}

/* The trigger itself -------------------------------------------------------- */

Datum
headlessly_append_only_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *command;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the trigger manager",
						"headlessly.append_only_guard()")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired BEFORE", "headlessly.append_only_guard()")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		command = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		command = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		command = "TRUNCATE";
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired for UPDATE, DELETE or TRUNCATE",
						"headlessly.append_only_guard()")));

	rel = trigdata->tg_relation;
	ereport(ERROR,
			(errcode(ERRCODE_HL_IMMUTABLE),
			 errmsg("%s on append-only table \"%s.%s\" is not allowed", command,
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel)),
			 errdetail("Rows of an append-only table are never changed or removed, whatever the role."),
			 errhint("Append a new row that records the change.")));
	PG_RETURN_NULL();
}

/* Which tables and triggers are protected ----------------------------------- */

static Oid
extension_function(const char *name)
{
	List	   *qualified = list_make2(makeString(HL_SCHEMA), makeString((char *) name));

	return LookupFuncName(qualified, 0, NULL, true);
}

/*
 * Is this trigger one the guard keeps: the guard itself, or one of the log's
 * append triggers (disabling them would let rows in without the log's rules
 * or its hooks)?
 */
static bool
is_protected_trigger(Form_pg_trigger trigger, Oid guard_fn, const Oid *log_fns, int nlog_fns)
{
	if (trigger->tgfoid == guard_fn)
		return true;
	for (int i = 0; i < nlog_fns; i++)
	{
		if (OidIsValid(log_fns[i]) && trigger->tgfoid == log_fns[i])
			return true;
	}
	return false;
}

/*
 * Scan the triggers of relid.  Returns whether the table is guarded; if
 * trigname is given, *named_protected says whether that trigger is one the
 * guard keeps.
 */
static bool
table_is_guarded(Oid relid, const char *trigname, bool *named_protected)
{
	Oid			guard_fn = extension_function("append_only_guard");
	Oid			log_fns[2];
	bool		guarded = false;
	Relation	tgrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (named_protected)
		*named_protected = false;
	if (!OidIsValid(guard_fn) || !OidIsValid(relid))
		return false;
	log_fns[0] = extension_function("events_before_insert");
	log_fns[1] = extension_function("events_after_insert");

	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(tup);

		if (trigger->tgfoid == guard_fn)
			guarded = true;
		if (trigname && named_protected &&
			strcmp(NameStr(trigger->tgname), trigname) == 0 &&
			is_protected_trigger(trigger, guard_fn, log_fns, lengthof(log_fns)))
			*named_protected = true;
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);

	return guarded;
}

static void
refuse(const char *what, Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_HL_IMMUTABLE),
			 errmsg("cannot %s on append-only table \"%s.%s\"", what,
					get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
			 errdetail("The table's guard stays in force for every role, the owner and superusers included."),
			 errhint("For the event log, DROP EXTENSION headlessly_events is the only way out.")));
}

static void
check_alter_table(AlterTableStmt *stmt)
{
	Oid			relid;
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!table_is_guarded(relid, NULL, NULL))
		return;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		bool		named_protected;

		switch (cmd->subtype)
		{
			case AT_EnableTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
				/* only ALWAYS keeps a trigger firing under every replication role */
				table_is_guarded(relid, cmd->name, &named_protected);
				if (named_protected)
					refuse(psprintf("change how trigger \"%s\" fires", cmd->name), relid);
				break;
			case AT_EnableTrigAll:
			case AT_DisableTrigAll:
			case AT_EnableTrigUser:
			case AT_DisableTrigUser:
				refuse("change how all triggers fire", relid);
				break;
			case AT_DropColumn:
				refuse(psprintf("drop column \"%s\"", cmd->name), relid);
				break;
			case AT_AlterColumnType:
				refuse(psprintf("change the type of column \"%s\"", cmd->name), relid);
				break;
			default:
				break;
		}
	}
}

static void
check_drop_trigger(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);
		List	   *relname;
		const char *trigname;
		Oid			relid;
		bool		named_protected;

		/* the trigger's name is last, the table's qualified name before it */
		if (list_length(names) < 2)
			continue;
		trigname = strVal(llast(names));
		relname = list_copy_head(names, list_length(names) - 1);
		relid = RangeVarGetRelid(makeRangeVarFromNameList(relname), NoLock, true);
		if (table_is_guarded(relid, trigname, &named_protected) && named_protected)
			refuse(psprintf("drop trigger \"%s\"", trigname), relid);
	}
}

static void
check_event_trigger_name(const char *name, const char *what)
{
	if (strcmp(name, GUARD_EVENT_TRIGGER_NAME) == 0 &&
		OidIsValid(extension_function("guard_ddl")))
		ereport(ERROR,
				(errcode(ERRCODE_HL_IMMUTABLE),
				 errmsg("cannot %s event trigger \"%s\"", what, name),
				 errdetail("It keeps the guards of append-only tables in place."),
				 errhint("DROP EXTENSION headlessly_events removes it with the log.")));
}

/*
 * Refuse utility commands that would weaken a guard.  Extension scripts
 * (our own upgrades) may do anything.
 */
static void
check_utility(Node *parsetree)
{
	if (parsetree == NULL || creating_extension || internal_ddl_level > 0)
		return;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			check_alter_table((AlterTableStmt *) parsetree);
			break;
		case T_DropStmt:
			{
				DropStmt   *stmt = (DropStmt *) parsetree;

				if (stmt->removeType == OBJECT_TRIGGER)
					check_drop_trigger(stmt);
				else if (stmt->removeType == OBJECT_EVENT_TRIGGER)
				{
					ListCell   *lc;

					foreach(lc, stmt->objects)
						check_event_trigger_name(strVal(lfirst(lc)), "drop");
				}
				break;
			}
		case T_AlterEventTrigStmt:
			{
				AlterEventTrigStmt *stmt = (AlterEventTrigStmt *) parsetree;

				if (stmt->tgenabled != TRIGGER_FIRES_ALWAYS)
					check_event_trigger_name(stmt->trigname, "disable");
				break;
			}
		default:
			break;
	}
}

Datum
headlessly_guard_ddl(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the event trigger manager",
						"headlessly.guard_ddl()")));
	trigdata = (EventTriggerData *) fcinfo->context;
	check_utility(trigdata->parsetree);
	PG_RETURN_NULL();
}

static void
guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	/* only these can touch a guard; skip the catalog lookups for the rest */
	if (IsA(parsetree, AlterTableStmt) || IsA(parsetree, DropStmt) ||
		IsA(parsetree, AlterEventTrigStmt))
		check_utility(parsetree);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

void
hl_guard_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = guard_ProcessUtility;
	RegisterXactCallback(guard_xact_callback, NULL);
	RegisterSubXactCallback(guard_subxact_callback, NULL);
}

/* make_append_only() ---------------------------------------------------- */

Datum
headlessly_make_append_only(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char		relkind = get_rel_relkind(relid);
	char	   *qualified;
	char	   *query;
	int			rc;

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ordinary table", get_rel_name(relid)),
				 errdetail("Only ordinary tables can be made append-only; for a partitioned table, guard each partition."),
				 errhint("Call headlessly.make_append_only() on each partition.")));

	if (table_is_guarded(relid, NULL, NULL))
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is already append-only, skipping", get_rel_name(relid))));
		PG_RETURN_VOID();
	}

	qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid));

	hl_spi_connect();

	query = psprintf("CREATE TRIGGER " GUARD_TRIGGER_NAME
					 " BEFORE UPDATE OR DELETE OR TRUNCATE ON %s"
					 " FOR EACH STATEMENT EXECUTE FUNCTION " HL_SCHEMA ".append_only_guard()",
					 qualified);
	rc = SPI_execute(query, false, 0);
	hl_spi_check(rc, SPI_OK_UTILITY, query);

	query = psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER " GUARD_TRIGGER_NAME, qualified);
	rc = SPI_execute(query, false, 0);
	hl_spi_check(rc, SPI_OK_UTILITY, query);

	SPI_finish();
	PG_RETURN_VOID();
}
