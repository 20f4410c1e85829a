/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Append-only tables: the guard trigger, make_append_only(), and how
 *	  the guard recognises its own functions and the tables it guards.
 *
 * A guarded table has two triggers running headlessly.append_only_guard(),
 * both BEFORE and enabled ALWAYS, so that session_replication_role = replica
 * does not skip them:
 *
 * - BEFORE UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT: fires even when
 *   no row matches, and is the only trigger TRUNCATE fires;
 * - BEFORE UPDATE OR DELETE FOR EACH ROW: fires for rows reached through an
 *   inheritance parent or a partitioned table, whose statements do not fire
 *   the child's statement triggers, and for rows changed by logical
 *   replication's apply worker, which fires row triggers only.
 *
 * The DDL that could get around them is refused by guard_ddl.c.
 *
 *-------------------------------------------------------------------------
 */
#include "log/guard_internal.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_append_only_guard);
PG_FUNCTION_INFO_V1(headlessly_make_append_only);

/* The trigger itself -------------------------------------------------------- */

Datum
headlessly_append_only_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	const char *command;
	Relation	rel;

	trigdata = hl_trigger_data(fcinfo, "headlessly.append_only_guard()", HL_FIRED_BEFORE);

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

/* The extension's functions ------------------------------------------------- */

static HlGuardCatalog catalog;
static bool catalog_valid = false;
static uint32 catalog_invalidations = 0;

/* our functions' pg_proc hash values: most function changes are not ours */
static uint32 catalog_hashes[4];
static int	catalog_nhashes = 0;

static void
catalog_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	/* until all of them are known, any new function may be one of ours */
	bool		ours = hashvalue == 0 || catalog_nhashes < lengthof(catalog_hashes);

	for (int i = 0; !ours && i < catalog_nhashes; i++)
		ours = (hashvalue == catalog_hashes[i]);
	if (ours)
	{
		catalog_valid = false;
		catalog_invalidations++;
	}
}

/* The C symbol a function runs, or NULL if it is not a C function. */
static char *
c_symbol(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	char	   *symbol = NULL;

	if (!HeapTupleIsValid(tup))
		return NULL;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		bool		isnull;
		Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		if (!isnull)
			symbol = TextDatumGetCString(src);
	}
	ReleaseSysCache(tup);
	return symbol;
}

static void
find_member_functions(HlGuardCatalog *found)
{
	static const struct
	{
		const char *symbol;
		size_t		offset;
	}			wanted[] =
	{
		{"headlessly_append_only_guard", offsetof(HlGuardCatalog, guard_fn)},
		{"headlessly_guard_ddl", offsetof(HlGuardCatalog, guard_ddl_fn)},
		{"headlessly_events_before_insert", offsetof(HlGuardCatalog, append_fn)},
		{"headlessly_events_after_insert", offsetof(HlGuardCatalog, after_append_fn)},
	};
	Relation	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(found->extension));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		char	   *symbol;

		if (dep->deptype != DEPENDENCY_EXTENSION || dep->classid != ProcedureRelationId)
			continue;
		symbol = c_symbol(dep->objid);
		for (int i = 0; symbol && i < lengthof(wanted); i++)
		{
			Oid		   *slot = (Oid *) ((char *) found + wanted[i].offset);

			if (strcmp(symbol, wanted[i].symbol) == 0 && !OidIsValid(*slot))
				*slot = dep->objid;
		}
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
}

/*
 * Looked up once and kept until one of these functions changes (dropping the
 * extension drops them; until all are found -- the extension is not
 * installed, or its script is still running -- any new function could be one
 * of them).
 */
const HlGuardCatalog *
hl_guard_catalog(void)
{
	static bool callback_registered = false;
	HlGuardCatalog found = {0};
	Oid			fns[lengthof(catalog_hashes)];
	uint32		seen = catalog_invalidations;

	if (catalog_valid)
		return &catalog;
	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, catalog_invalidate, (Datum) 0);
		callback_registered = true;
	}

	found.extension = get_extension_oid(HL_EXTENSION, true);
	if (OidIsValid(found.extension))
		find_member_functions(&found);
	fns[0] = found.guard_fn;
	fns[1] = found.guard_ddl_fn;
	fns[2] = found.append_fn;
	fns[3] = found.after_append_fn;

	/* use what was found, but look again if it changed meanwhile */
	catalog = found;
	catalog_nhashes = 0;
	for (int i = 0; i < lengthof(fns); i++)
	{
		if (OidIsValid(fns[i]))
			catalog_hashes[catalog_nhashes++] =
				GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(fns[i]));
	}
	catalog_valid = (seen == catalog_invalidations);
	return &catalog;
}

bool
hl_guard_is_protected_function(Oid fn)
{
	const HlGuardCatalog *cat = hl_guard_catalog();

	return OidIsValid(fn) &&
		(fn == cat->guard_fn || fn == cat->append_fn || fn == cat->after_append_fn);
}

/* Guarded tables ------------------------------------------------------------ */

static SysScanDesc
begin_trigger_scan(Relation tgrel, Oid relid, const char *name, ScanKeyData *key)
{
	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	if (name)
		ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
					CStringGetDatum(name));
	return systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL,
							  name ? 2 : 1, key);
}

void
hl_guard_describe_table(Oid relid, HlGuardedTable *table)
{
	const HlGuardCatalog *cat = hl_guard_catalog();
	Relation	tgrel;
	SysScanDesc scan;
	ScanKeyData key[2];
	HeapTuple	tup;

	memset(table, 0, sizeof(HlGuardedTable));
	if (!OidIsValid(relid) || !OidIsValid(cat->guard_fn))
		return;

	/* in name order: the order BEFORE triggers fire in */
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	scan = begin_trigger_scan(tgrel, relid, NULL, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(tup);

		if (trigger->tgfoid == cat->guard_fn)
		{
			table->guarded = true;
			if (TRIGGER_FOR_ROW(trigger->tgtype))
				table->row_guard = true;
			else
				table->statement_guard = true;
		}
		if (trigger->tgfoid == cat->append_fn && !table->has_append_trigger &&
			HL_TRIGGER_SHAPES_INSERTED_ROW(trigger->tgtype))
		{
			table->has_append_trigger = true;
			table->append_trigger = trigger->tgname;
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);

	table->is_log = table->guarded &&
		getExtensionOfObject(RelationRelationId, relid) == cat->extension;
}

/* "schema.table", as messages name a table */
char *
hl_guard_table_name(Oid relid)
{
	return psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

HlTriggerInfo
hl_guard_find_trigger(Oid relid, const char *name)
{
	HlTriggerInfo info = {0};
	Relation	tgrel;
	SysScanDesc scan;
	ScanKeyData key[2];
	HeapTuple	tup;

	if (!OidIsValid(relid) || name == NULL)
		return info;
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	scan = begin_trigger_scan(tgrel, relid, name, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(tup);

		info.found = true;
		info.tgfoid = trigger->tgfoid;
		info.tgtype = trigger->tgtype;
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return info;
}

/* make_append_only() ---------------------------------------------------- */

/*
 * What a table must not have before it is guarded: each would let rows be
 * changed or forged around the guard, and is refused on a guarded table.
 */
static void
check_can_guard(Relation rel)
{
	char	   *name = hl_guard_table_name(RelationGetRelid(rel));

	if (rel->rd_rules != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has rules", name),
				 errdetail("A rule can turn UPDATE or DELETE into something the guard does not see, or drop inserted rows."),
				 errhint("Drop the table's rules (DROP RULE) before making it append-only.")));
	if (OidIsValid(rel->rd_rel->reloftype))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is a typed table", name),
				 errdetail("ALTER TYPE ... CASCADE would change the columns of its rows."),
				 errhint("Make it an ordinary table (ALTER TABLE ... NOT OF) first.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is unlogged", name),
				 errdetail("A crash empties an unlogged table."),
				 errhint("Make it logged (ALTER TABLE ... SET LOGGED) first.")));

	/*
	 * The extension's scripts guard the log and the checkpoints; its other
	 * tables it updates itself (delivery state, positions, heads, grants).
	 * Guarded, they would stop it, and no guard can be removed.
	 */
	if (!creating_extension &&
		RelationGetNamespace(rel) == get_namespace_oid(HL_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the tables of the %s schema cannot be made append-only", HL_SCHEMA),
				 errdetail("The extension changes the rows of its other tables itself; guarded, they would stop it for good."),
				 errhint("%s.events and %s.checkpoints are append-only already.", HL_SCHEMA, HL_SCHEMA)));
	if (find_inheritance_children(RelationGetRelid(rel), NoLock) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has inheritance children", name),
				 errdetail("The children's rows, which the guard would not cover, show in every read of the table."),
				 errhint("Make each child append-only instead, or detach them (ALTER TABLE ... NO INHERIT).")));
}

static void
create_guard_trigger(const char *trigger, const char *events, const char *level,
					 const char *table, const char *function)
{
	char	   *query;
	int			rc;

	query = psprintf("CREATE TRIGGER %s BEFORE %s ON %s FOR EACH %s EXECUTE FUNCTION %s",
					 quote_identifier(trigger), events, table, level, function);
	rc = SPI_execute(query, false, 0);
	hl_spi_check(rc, SPI_OK_UTILITY, query);

	/* only ALWAYS fires under every session_replication_role */
	query = psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", table, quote_identifier(trigger));
	rc = SPI_execute(query, false, 0);
	hl_spi_check(rc, SPI_OK_UTILITY, query);
}

Datum
headlessly_make_append_only(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char		relkind = get_rel_relkind(relid);
	const HlGuardCatalog *cat = hl_guard_catalog();
	HlGuardedTable table;
	Relation	rel;
	char	   *qualified;
	char	   *function;

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
	if (!OidIsValid(cat->guard_fn))
		elog(ERROR, "function %s.append_only_guard() of extension %s is missing",
			 HL_SCHEMA, HL_EXTENSION);

	/* CREATE TRIGGER's own check, before taking its lock */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind), get_rel_name(relid));

	/* the lock CREATE TRIGGER takes: two calls at once guard the table once */
	rel = table_open(relid, ShareRowExclusiveLock);
	hl_guard_describe_table(relid, &table);
	if (table.statement_guard && table.row_guard)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is already append-only, skipping", get_rel_name(relid))));
		table_close(rel, NoLock);
		PG_RETURN_VOID();
	}
	/* a table guarded by an earlier version only gets what it lacks */
	if (!table.guarded)
		check_can_guard(rel);
	table_close(rel, NoLock);

	qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid));

	function = format_procedure_qualified(cat->guard_fn);
	hl_spi_connect();
	if (!table.statement_guard)
		create_guard_trigger(HL_GUARD_TRIGGER_NAME, "UPDATE OR DELETE OR TRUNCATE", "STATEMENT",
							 qualified, function);
	if (!table.row_guard)
		create_guard_trigger(HL_GUARD_ROW_TRIGGER_NAME, "UPDATE OR DELETE", "ROW",
							 qualified, function);
	SPI_finish();
	PG_RETURN_VOID();
}
