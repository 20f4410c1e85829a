/*-------------------------------------------------------------------------
 *
 * guard_ddl.c
 *	  Keep append-only tables append-only: refuse, for every role, the DDL
 *	  that would change, hide or forge their rows, or switch the guard off.
 *
 * Owning a table is enough to disable its triggers, add rules, rename its
 * columns, hang it under a parent whose UPDATE reaches its rows, and so on.
 * Two things run the same checks: a ddl_command_start event trigger (always
 * present, enabled ALWAYS), and, when the library is loaded, a ProcessUtility
 * hook, which also sees what event triggers do not: ALTER and DROP EVENT
 * TRIGGER (so it protects the event trigger itself) and the statements of
 * CREATE SCHEMA (which the event trigger reads from the CREATE SCHEMA).
 *
 * The extension's objects are found by what they are -- the extension's
 * members, its functions by the C symbol they run, guarded tables by their
 * triggers' function -- never by a name that a rename could change.  The
 * extension's own scripts (CREATE and ALTER EXTENSION ... UPDATE) and
 * pg_upgrade's restore are exempt; DROP EXTENSION is the way out.
 *
 * What a superuser can still do -- edit the catalogs, disable the event
 * trigger in a session that has not loaded the library, write the data
 * files -- is left to tamper evidence.
 *
 *-------------------------------------------------------------------------
 */
#include "log/guard_internal.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_event_trigger.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_guard_ddl);

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Refusals -------------------------------------------------------------------- */

#define DEFAULT_DETAIL "The table's guard stays in force for every role, the owner and superusers included."

static void
refuse_with(const char *message, const char *detail, Oid relid)
{
	bool		is_log = getExtensionOfObject(RelationRelationId, relid) ==
		hl_guard_catalog()->extension;

	ereport(ERROR,
			(errcode(ERRCODE_HL_IMMUTABLE),
			 errmsg("%s", message),
			 errdetail("%s", detail ? detail : DEFAULT_DETAIL),
			 is_log ?
			 errhint("For the event log, DROP EXTENSION %s is the only way out.", HL_EXTENSION) :
			 errhint("An append-only table keeps its rows as they were written; it can only be dropped.")));
}

/* cannot <what> on append-only table "schema.table" */
static void
refuse(Oid relid, const char *what, const char *detail)
{
	refuse_with(psprintf("cannot %s on append-only table \"%s\"", what,
						 hl_guard_table_name(relid)),
				detail, relid);
}

/* cannot <verb> append-only table "schema.table"<rest> */
static void
refuse_table(Oid relid, const char *verb, const char *rest, const char *detail)
{
	refuse_with(psprintf("cannot %s append-only table \"%s\"%s", verb,
						 hl_guard_table_name(relid), rest),
				detail, relid);
}

static bool
is_guarded(Oid relid)
{
	HlGuardedTable table;

	hl_guard_describe_table(relid, &table);
	return table.guarded;
}

/* cannot <verb> <member of the extension><rest> */
static void
check_member(Oid classid, Oid objid, const char *verb, const char *rest)
{
	ObjectAddress address;

	if (!OidIsValid(objid) || getExtensionOfObject(classid, objid) != hl_guard_catalog()->extension)
		return;
	ObjectAddressSet(address, classid, objid);
	ereport(ERROR,
			(errcode(ERRCODE_HL_IMMUTABLE),
			 errmsg("cannot %s %s%s", verb, getObjectDescription(&address, false), rest),
			 errdetail("It belongs to extension %s, whose guards rely on its objects as the extension made them.",
					   HL_EXTENSION),
			 errhint("ALTER EXTENSION %s UPDATE changes them; DROP EXTENSION %s removes them.",
					 HL_EXTENSION, HL_EXTENSION)));
}

/*
 * The tables a statement on relid reaches: relid, and its inheritance
 * children and partitions unless ONLY was written.
 */
static List *
reached_tables(Oid relid, bool inh)
{
	if (inh && has_subclass(relid))
		return find_all_inheritors(relid, NoLock, NULL);
	return list_make1_oid(relid);
}

/* A unique index of the log: its rules rely on it. */
static bool
is_log_unique_index(Oid indexid, Oid *tableid)
{
	HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
	bool		unique;
	HlGuardedTable table;

	if (!HeapTupleIsValid(tup))
		return false;
	unique = ((Form_pg_index) GETSTRUCT(tup))->indisunique;
	*tableid = ((Form_pg_index) GETSTRUCT(tup))->indrelid;
	ReleaseSysCache(tup);
	if (!unique)
		return false;
	hl_guard_describe_table(*tableid, &table);
	return table.is_log;
}

#define LOG_INDEX_DETAIL "The log's unique indexes keep its sequence numbers, ids, stream versions and idempotency keys unique."

/* cannot <verb> index "name"<rest> on append-only table ... */
static void
check_log_unique_index(Oid indexid, const char *verb, const char *rest)
{
	Oid			tableid;

	if (OidIsValid(indexid) && is_log_unique_index(indexid, &tableid))
		refuse(tableid, psprintf("%s index \"%s\"%s", verb, get_rel_name(indexid), rest),
			   LOG_INDEX_DETAIL);
}

/* A sequence that numbers a guarded table's column (identity or serial). */
static void
check_owned_sequence(Oid seqid, const char *what)
{
	Oid			tableid;
	int32		column;

	if (!OidIsValid(seqid))
		return;
	if ((sequenceIsOwned(seqid, DEPENDENCY_INTERNAL, &tableid, &column) ||
		 sequenceIsOwned(seqid, DEPENDENCY_AUTO, &tableid, &column)) &&
		is_guarded(tableid))
		refuse(tableid, psprintf("%s \"%s\" of column \"%s\"", what, get_rel_name(seqid),
								 get_attname(tableid, column, false)),
			   "The sequence numbers the table's rows: changed, it could number new rows out of order.");
}

/* Would a BEFORE INSERT row trigger named name fire after the log's own? */
static void
check_fires_before_append(Oid relid, const HlGuardedTable *table, const char *name,
						  const char *what)
{
	const char *append = NameStr(table->append_trigger);

	if (!table->has_append_trigger || strcmp(name, append) <= 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_HL_IMMUTABLE),
			 errmsg("cannot %s on append-only table \"%s\"", what, hl_guard_table_name(relid)),
			 errdetail("It would fire after the log's own BEFORE INSERT trigger \"%s\" and could change a row the log has already checked.",
					   append),
			 errhint("BEFORE triggers fire in name order: give it a name that sorts before \"%s\".",
					 append)));
}

/* CREATE TABLE ... INHERITS and ALTER TABLE ... INHERIT: the parent's side. */
static void
check_new_parent(const char *child, RangeVar *parent)
{
	Oid			parentid = RangeVarGetRelid(parent, NoLock, true);

	if (OidIsValid(parentid) && is_guarded(parentid))
		refuse_with(psprintf("cannot make \"%s\" a child of append-only table \"%s\"", child,
							 hl_guard_table_name(parentid)),
					"The child's rows, which no guard protects, would show in every read of the table.",
					parentid);
}

/* Types whose values guarded rows hold ---------------------------------------- */

/*
 * Does a value of type typid hold a value of type target: is it target, or
 * an array, domain, range or composite that contains one?
 */
static bool
type_holds(Oid typid, Oid target)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		holds = false;

	check_stack_depth();
	if (typid == target)
		return true;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		return false;
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (typ->typtype == TYPTYPE_DOMAIN)
		holds = type_holds(typ->typbasetype, target);
	else if (IsTrueArrayType(typ))
		holds = type_holds(typ->typelem, target);
	else if (typ->typtype == TYPTYPE_RANGE)
		holds = type_holds(get_range_subtype(typid), target);
	else if (typ->typtype == TYPTYPE_MULTIRANGE)
		holds = type_holds(get_multirange_range(typid), target);
	else if (typ->typtype == TYPTYPE_COMPOSITE && OidIsValid(typ->typrelid))
	{
		Relation	rel = relation_open(typ->typrelid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts && !holds; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped)
				holds = type_holds(att->atttypid, target);
		}
		relation_close(rel, AccessShareLock);
	}
	ReleaseSysCache(tup);
	return holds;
}

/*
 * Renaming an enum label or an attribute of a composite type changes what
 * every stored value of the type says, without touching a row: refused for
 * a type that a guarded table's columns hold.
 */
static void
check_type_in_guarded_rows(Oid target, const char *what)
{
	const HlGuardCatalog *cat = hl_guard_catalog();
	Relation	tgrel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *guarded = NIL;
	ListCell   *lc;

	if (!OidIsValid(target) || !OidIsValid(cat->guard_fn))
		return;
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	scan = systable_beginscan(tgrel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(tup);

		if (trigger->tgfoid == cat->guard_fn)
			guarded = list_append_unique_oid(guarded, trigger->tgrelid);
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);

	foreach(lc, guarded)
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel = relation_open(relid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && type_holds(att->atttypid, target))
				refuse_with(psprintf("cannot %s of type %s: column \"%s\" of append-only table \"%s\" holds its values",
									 what, format_type_be(target), NameStr(att->attname),
									 hl_guard_table_name(relid)),
							"Every stored value of the type would read differently, though no row changed.",
							relid);
		}
		relation_close(rel, AccessShareLock);
	}
}

static void
check_alter_enum(Node *parsetree)
{
	AlterEnumStmt *stmt = (AlterEnumStmt *) parsetree;

	/* adding a label changes no stored value; renaming one changes them all */
	if (stmt->oldVal == NULL)
		return;
	check_type_in_guarded_rows(LookupTypeNameOid(NULL, makeTypeNameFromNameList(stmt->typeName), true),
							   psprintf("rename label \"%s\"", stmt->oldVal));
}

/* ALTER TABLE ---------------------------------------------------------------- */

#ifdef CONSTRAINT_NOTNULL
static char
constraint_type(Oid conid)
{
	HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conid));
	char		contype;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for constraint %u", conid);
	contype = ((Form_pg_constraint) GETSTRUCT(tup))->contype;
	ReleaseSysCache(tup);
	return contype;
}
#endif

#define NAMES_DETAIL "Readers, and the extension, find the table and its columns by name: another could take the name."
#define COLUMN_DETAIL "A column's default, identity, generation and NOT NULL decide what new rows hold; they stay as they were when the table was guarded."

/*
 * One subcommand on a guarded table.  An allow-list: every AlterTableType is
 * refused unless it is known to leave rows and the guard alone, so values
 * added by later PostgreSQL versions (AT_SetExpression in 17, which rewrites
 * a generated column, ...) are refused until they have been looked at.  The
 * internal values (AT_*Recurse, AT_ReAdd*, AT_CheckNotNull,
 * AT_CookedColumnDefault, AT_AddColumnToView) never come from the parser.
 *
 * Allowed, as they change neither what the rows hold nor the guard: storage
 * and statistics of columns (SET STATISTICS, SET (...), RESET (...), SET
 * STORAGE, SET COMPRESSION: new values only), indexes and constraints added,
 * validated or altered, constraints dropped (except the log's unique ones
 * and, from PostgreSQL 18, NOT NULL constraints), OWNER TO, CLUSTER ON, SET
 * WITHOUT CLUSTER, SET LOGGED, SET WITHOUT OIDS, SET TABLESPACE (rows moved,
 * not changed), storage parameters, ENABLE ALWAYS TRIGGER, ENABLE/DISABLE
 * TRIGGER on triggers that are not the guard's or the log's, DISABLE RULE,
 * NOT OF, REPLICA IDENTITY, row security (who may read which rows is the
 * owner's to decide), and ADD COLUMN, except on the log, whose columns are
 * the extension's.
 *
 * Refused: DROP COLUMN, ALTER COLUMN ... TYPE, SET/DROP DEFAULT, SET/DROP
 * NOT NULL, DROP EXPRESSION, ADD/SET/DROP IDENTITY, SET UNLOGGED, SET ACCESS
 * METHOD, ENABLE [ALWAYS | REPLICA] RULE, INHERIT, NO INHERIT, OF, ENABLE or
 * DISABLE TRIGGER ALL / USER, ENABLE [REPLICA] / DISABLE TRIGGER on the
 * guard's and the log's triggers, and whatever else the parser may produce:
 * OPTIONS (foreign tables only), ATTACH / DETACH PARTITION (a guarded table
 * is never partitioned).
 */
static void
check_alter_table_cmd(const AlterTableCmd *cmd, Oid relid, const HlGuardedTable *table)
{
	HlTriggerInfo trigger;
	Oid			conid;
	Oid			tableid;

	switch (cmd->subtype)
	{
		case AT_SetStatistics:
		case AT_SetOptions:
		case AT_ResetOptions:
		case AT_SetStorage:
		case AT_SetCompression:
		case AT_AddIndex:
		case AT_AddConstraint:
		case AT_AlterConstraint:
		case AT_ValidateConstraint:
		case AT_AddIndexConstraint:
		case AT_ChangeOwner:
		case AT_ClusterOn:
		case AT_DropCluster:
		case AT_SetLogged:
		case AT_DropOids:
		case AT_SetTableSpace:
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
		case AT_ReplaceRelOptions:
		case AT_EnableAlwaysTrig:
		case AT_DisableRule:
		case AT_DropOf:
		case AT_ReplicaIdentity:
		case AT_EnableRowSecurity:
		case AT_DisableRowSecurity:
		case AT_ForceRowSecurity:
		case AT_NoForceRowSecurity:
			break;

		case AT_AddColumn:
			if (table->is_log)
				refuse(relid, "add a column",
					   "The log's columns are the extension's: a new one would give every stored event a value it was never appended with.");
			break;
		case AT_DropConstraint:
			conid = get_relation_constraint_oid(relid, cmd->name, true);
			if (!OidIsValid(conid))
				break;
#ifdef CONSTRAINT_NOTNULL
			/* PostgreSQL 18 keeps NOT NULL as constraints: the same as DROP NOT NULL */
			if (constraint_type(conid) == CONSTRAINT_NOTNULL)
				refuse(relid, psprintf("drop NOT NULL constraint \"%s\"", cmd->name), COLUMN_DETAIL);
#endif
			if (table->is_log && is_log_unique_index(get_constraint_index(conid), &tableid))
				refuse(relid, psprintf("drop constraint \"%s\"", cmd->name), LOG_INDEX_DETAIL);
			break;

		case AT_EnableTrig:
		case AT_EnableReplicaTrig:
		case AT_DisableTrig:
			/* only ALWAYS keeps a trigger firing under every replication role */
			trigger = hl_guard_find_trigger(relid, cmd->name);
			if (trigger.found && hl_guard_is_protected_function(trigger.tgfoid))
				refuse(relid, psprintf("change how trigger \"%s\" fires", cmd->name), NULL);
			break;
		case AT_EnableTrigAll:
		case AT_DisableTrigAll:
		case AT_EnableTrigUser:
		case AT_DisableTrigUser:
			refuse(relid, "change how all triggers fire", NULL);
			break;

		case AT_EnableRule:
		case AT_EnableAlwaysRule:
		case AT_EnableReplicaRule:
			refuse(relid, psprintf("enable rule \"%s\"", cmd->name),
				   "A rule rewrites statements on the table before its guard sees them.");
			break;

		case AT_DropColumn:
			refuse(relid, psprintf("drop column \"%s\"", cmd->name), NULL);
			break;
		case AT_AlterColumnType:
			refuse(relid, psprintf("change the type of column \"%s\"", cmd->name), NULL);
			break;
		case AT_ColumnDefault:
			refuse(relid, psprintf("change the default of column \"%s\"", cmd->name), COLUMN_DETAIL);
			break;
		case AT_DropNotNull:
		case AT_SetNotNull:
			refuse(relid, psprintf("change NOT NULL on column \"%s\"", cmd->name), COLUMN_DETAIL);
			break;
		case AT_DropExpression:
			refuse(relid, psprintf("drop the generation expression of column \"%s\"", cmd->name),
				   COLUMN_DETAIL);
			break;
		case AT_AddIdentity:
		case AT_SetIdentity:
		case AT_DropIdentity:
			refuse(relid, psprintf("change the identity of column \"%s\"", cmd->name), COLUMN_DETAIL);
			break;

		case AT_SetUnLogged:
			refuse_table(relid, "make", " unlogged", "A crash empties an unlogged table.");
			break;
		case AT_SetAccessMethod:
			refuse_table(relid, "change the access method of", "",
						 "Its rows would be rewritten into storage the guard knows nothing of.");
			break;
		case AT_AddInherit:
			refuse_table(relid, "make", " a child of another table",
						 "UPDATE and DELETE on the parent would reach its rows.");
			break;
		case AT_DropInherit:
			refuse_table(relid, "detach", " from its parent",
						 "Its rows would vanish from every read of the parent.");
			break;
		case AT_AddOf:
			refuse_table(relid, "make", " a typed table",
						 "ALTER TYPE ... CASCADE would then change its columns.");
			break;

		default:
			refuse(relid, "use this ALTER TABLE action", NULL);
			break;
	}
}

/*
 * Does ALTER TABLE parent pass this subcommand on to the parent's children
 * and partitions (unless ONLY)?  Those that act on the table itself do not;
 * the rest -- columns, constraints, triggers -- do, or are taken to.
 */
static bool
subcommand_recurses(AlterTableType type)
{
	switch (type)
	{
		case AT_AttachPartition:
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
		case AT_AddInherit:
		case AT_DropInherit:
		case AT_AddOf:
		case AT_DropOf:
		case AT_ChangeOwner:
		case AT_ClusterOn:
		case AT_DropCluster:
		case AT_SetLogged:
		case AT_SetUnLogged:
		case AT_DropOids:
		case AT_SetAccessMethod:
		case AT_SetTableSpace:
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
		case AT_ReplaceRelOptions:
		case AT_EnableRule:
		case AT_EnableAlwaysRule:
		case AT_EnableReplicaRule:
		case AT_DisableRule:
		case AT_ReplicaIdentity:
		case AT_EnableRowSecurity:
		case AT_DisableRowSecurity:
		case AT_ForceRowSecurity:
		case AT_NoForceRowSecurity:
			return false;
		default:
			return true;
	}
}

/* What puts a guarded table under a parent, or takes it out. */
static void
check_hierarchy_change(Oid relid, const AlterTableCmd *cmd)
{
	Oid			partition;

	switch (cmd->subtype)
	{
		case AT_AddInherit:
			check_new_parent(hl_guard_table_name(relid), (RangeVar *) cmd->def);
			break;
		case AT_AttachPartition:
			partition = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
			if (OidIsValid(partition) && is_guarded(partition))
				refuse_table(partition, "attach",
							 psprintf(" as a partition of \"%s\"", hl_guard_table_name(relid)),
							 "UPDATE and DELETE on the partitioned table would reach its rows.");
			break;
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
			partition = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
			if (OidIsValid(partition) && is_guarded(partition))
				refuse_table(partition, "detach",
							 psprintf(" from \"%s\"", hl_guard_table_name(relid)),
							 "Its rows would vanish from every read of the partitioned table.");
			break;
		default:
			break;
	}
}

static void
check_alter_table(Node *parsetree)
{
	AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	List	   *reached = NIL;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		ListCell   *lc2;

		check_hierarchy_change(relid, cmd);

		/* the extension's tables keep the keys it looks its rows up by (the log's: below) */
		if (cmd->subtype == AT_DropConstraint)
		{
			Oid			conid = get_relation_constraint_oid(relid, cmd->name, true);

			if (OidIsValid(conid) && OidIsValid(get_constraint_index(conid)) && !is_guarded(relid))
				check_member(RelationRelationId, relid,
							 psprintf("drop constraint \"%s\" of", cmd->name), "");
		}

		/* ALTER TABLE parent ... may reach guarded children */
		if (reached == NIL)
			reached = reached_tables(relid, stmt->relation->inh);
		foreach(lc2, subcommand_recurses(cmd->subtype) ? reached : list_make1_oid(relid))
		{
			HlGuardedTable table;

			hl_guard_describe_table(lfirst_oid(lc2), &table);
			if (table.guarded)
				check_alter_table_cmd(cmd, lfirst_oid(lc2), &table);
		}
	}
}

/* Triggers and rules ---------------------------------------------------------- */

static void
check_create_trigger(Node *parsetree)
{
	CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	HlGuardedTable table;

	if (!OidIsValid(relid))
		return;
	if (stmt->replace)
	{
		HlTriggerInfo old = hl_guard_find_trigger(relid, stmt->trigname);

		if (old.found && hl_guard_is_protected_function(old.tgfoid))
			refuse(relid, psprintf("replace trigger \"%s\"", stmt->trigname), NULL);
	}
	if (stmt->row && stmt->timing == TRIGGER_TYPE_BEFORE && (stmt->events & TRIGGER_TYPE_INSERT))
	{
		hl_guard_describe_table(relid, &table);
		check_fires_before_append(relid, &table, stmt->trigname,
								  psprintf("create trigger \"%s\"", stmt->trigname));
	}
}

static void
check_rename_trigger(RenameStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	HlTriggerInfo trigger = hl_guard_find_trigger(relid, stmt->subname);
	HlGuardedTable table;

	if (!trigger.found)
		return;
	if (hl_guard_is_protected_function(trigger.tgfoid))
		refuse(relid, psprintf("rename trigger \"%s\"", stmt->subname), NULL);
	if (HL_TRIGGER_SHAPES_INSERTED_ROW(trigger.tgtype))
	{
		hl_guard_describe_table(relid, &table);
		check_fires_before_append(relid, &table, stmt->newname,
								  psprintf("rename trigger \"%s\" to \"%s\"",
										   stmt->subname, stmt->newname));
	}
}

static void
check_drop_triggers(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);
		const char *trigname;
		Oid			relid;
		HlTriggerInfo trigger;

		/* the trigger's name is last, the table's qualified name before it */
		if (list_length(names) < 2)
			continue;
		trigname = strVal(llast(names));
		relid = RangeVarGetRelid(makeRangeVarFromNameList(list_copy_head(names, list_length(names) - 1)),
								 NoLock, true);
		trigger = hl_guard_find_trigger(relid, trigname);
		if (!trigger.found || !hl_guard_is_protected_function(trigger.tgfoid))
			continue;
		refuse(relid, psprintf("drop trigger \"%s\"", trigname), NULL);
	}
}

static void
check_create_rule(Node *parsetree)
{
	RuleStmt   *stmt = (RuleStmt *) parsetree;
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

	if (OidIsValid(relid) && is_guarded(relid))
		refuse(relid, psprintf("create rule \"%s\"", stmt->rulename),
			   "A rule rewrites statements on the table before its guard sees them: it could drop appends, or answer UPDATE and DELETE without an error.");
}

/* CREATE TABLE, CREATE SCHEMA -------------------------------------------------- */

static void check_statement(Node *parsetree);

static void
check_create_table(Node *parsetree)
{
	/* CreateForeignTableStmt starts with a CreateStmt */
	CreateStmt *stmt = (CreateStmt *) parsetree;
	ListCell   *lc;

	foreach(lc, stmt->inhRelations)
		check_new_parent(stmt->relation->relname, lfirst_node(RangeVar, lc));
}

/* Event triggers see CREATE SCHEMA, not the statements it holds. */
static void
check_create_schema(Node *parsetree)
{
	ListCell   *lc;

	foreach(lc, ((CreateSchemaStmt *) parsetree)->schemaElts)
		check_statement(lfirst(lc));
}

/* Names and schemas ------------------------------------------------------------ */

static bool
is_relation_type(ObjectType type)
{
	return type == OBJECT_TABLE || type == OBJECT_VIEW || type == OBJECT_MATVIEW ||
		type == OBJECT_INDEX || type == OBJECT_SEQUENCE || type == OBJECT_FOREIGN_TABLE;
}

static bool
is_function_type(ObjectType type)
{
	return type == OBJECT_FUNCTION || type == OBJECT_PROCEDURE ||
		type == OBJECT_ROUTINE || type == OBJECT_AGGREGATE;
}

/*
 * Renaming an index of a guarded table or of one of the extension's: the
 * extension finds the indexes it relies on by name (events_xact_idx,
 * streams_pkey, ...), and an index of the owner's could take the name.
 */
static void
check_index_change(Oid indexid, const char *verb, const char *rest)
{
	Oid			tableid;
	char	   *what;

	if (!OidIsValid(indexid))
		return;
	tableid = IndexGetRelation(indexid, true);
	if (!OidIsValid(tableid))
		return;
	what = psprintf("%s index \"%s\"%s", verb, get_rel_name(indexid), rest);
	if (is_guarded(tableid))
		refuse(tableid, what, NAMES_DETAIL);
	check_member(RelationRelationId, tableid, psprintf("%s of", what), "");
}

/* Renaming or moving a guarded table, a member of the extension, or an index of either. */
static void
check_relation_change(RangeVar *relation, const char *verb, const char *rest)
{
	Oid			relid = RangeVarGetRelid(relation, NoLock, true);
	char		relkind;

	if (!OidIsValid(relid))
		return;
	relkind = get_rel_relkind(relid);
	if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
		check_index_change(relid, verb, rest);
	if (is_guarded(relid))
		refuse_table(relid, verb, rest, NAMES_DETAIL);
	check_member(RelationRelationId, relid, verb, rest);
}

/* A constraint with an index renames the index too. */
static void
check_rename_constraint(RenameStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	Oid			conid;

	if (!OidIsValid(relid))
		return;
	conid = get_relation_constraint_oid(relid, stmt->subname, true);
	if (OidIsValid(conid))
		check_index_change(get_constraint_index(conid), "rename",
						   psprintf(" (constraint \"%s\")", stmt->subname));
}

static void
check_function_change(ObjectType type, ObjectWithArgs *func, const char *verb, const char *rest)
{
	check_member(ProcedureRelationId, LookupFuncWithArgs(type, func, true), verb, rest);
}

/*
 * A function named like one of the extension's, in the same schema, would
 * replace it (CREATE OR REPLACE) or, overloading it, take calls meant for it
 * or make them ambiguous.
 */
static void
check_function_name(Oid nspid, const char *name)
{
	const HlGuardCatalog *cat = hl_guard_catalog();
	CatCList   *candidates;
	ObjectAddress member = {ProcedureRelationId, InvalidOid, 0};

	if (!OidIsValid(nspid))
		return;
	candidates = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
	for (int i = 0; i < candidates->n_members && !OidIsValid(member.objectId); i++)
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&candidates->members[i]->tuple);

		if (proc->pronamespace == nspid &&
			getExtensionOfObject(ProcedureRelationId, proc->oid) == cat->extension)
			member.objectId = proc->oid;
	}
	ReleaseSysCacheList(candidates);
	if (OidIsValid(member.objectId))
		ereport(ERROR,
				(errcode(ERRCODE_HL_IMMUTABLE),
				 errmsg("function name \"%s.%s\" belongs to extension %s",
						get_namespace_name(nspid), name, HL_EXTENSION),
				 errdetail("Its %s has that name: another function would replace it, or take calls meant for it or make them ambiguous.",
						   getObjectDescription(&member, false)),
				 errhint("ALTER EXTENSION %s UPDATE changes the extension's functions; DROP EXTENSION %s removes them.",
						 HL_EXTENSION, HL_EXTENSION)));
}

static bool
is_guard_event_trigger(const char *name)
{
	Oid			evtid = get_event_trigger_oid(name, true);
	HeapTuple	tup;
	Oid			fn;

	if (!OidIsValid(evtid))
		return false;
	tup = SearchSysCache1(EVENTTRIGGEROID, ObjectIdGetDatum(evtid));
	if (!HeapTupleIsValid(tup))
		return false;
	fn = ((Form_pg_event_trigger) GETSTRUCT(tup))->evtfoid;
	ReleaseSysCache(tup);
	return fn == hl_guard_catalog()->guard_ddl_fn;
}

static void
check_event_trigger(const char *name, const char *what)
{
	if (is_guard_event_trigger(name))
		ereport(ERROR,
				(errcode(ERRCODE_HL_IMMUTABLE),
				 errmsg("cannot %s event trigger \"%s\"", what, name),
				 errdetail("It keeps the guards of append-only tables in place."),
				 errhint("DROP EXTENSION %s removes it with the log.", HL_EXTENSION)));
}

/*
 * A guarded table in this schema, or InvalidOid: the oldest (lowest OID),
 * so that the message naming it does not depend on where pg_trigger keeps
 * its rows.
 */
static Oid
guarded_table_in(Oid nspid)
{
	const HlGuardCatalog *cat = hl_guard_catalog();
	Relation	tgrel;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			found = InvalidOid;

	tgrel = table_open(TriggerRelationId, AccessShareLock);
	scan = systable_beginscan(tgrel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(tup);

		if (trigger->tgfoid == cat->guard_fn &&
			(!OidIsValid(found) || trigger->tgrelid < found) &&
			get_rel_namespace(trigger->tgrelid) == nspid)
			found = trigger->tgrelid;
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return found;
}

static void
check_rename(Node *parsetree)
{
	RenameStmt *stmt = (RenameStmt *) parsetree;
	Oid			relid;
	ListCell   *lc;

	if (is_relation_type(stmt->renameType))
	{
		check_relation_change(stmt->relation, "rename", "");
		return;
	}
	switch (stmt->renameType)
	{
		case OBJECT_COLUMN:
			/* RENAME COLUMN recurses into children */
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (!OidIsValid(relid))
				break;
			foreach(lc, reached_tables(relid, stmt->relation->inh))
			{
				if (is_guarded(lfirst_oid(lc)))
					refuse(lfirst_oid(lc), psprintf("rename column \"%s\"", stmt->subname),
						   NAMES_DETAIL);
			}
			check_member(RelationRelationId, relid, "rename a column of", "");
			/* a table's row type may be the type of a guarded column */
			check_type_in_guarded_rows(get_rel_type_id(relid),
									   psprintf("rename column \"%s\"", stmt->subname));
			break;
		case OBJECT_ATTRIBUTE:
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (OidIsValid(relid))
				check_type_in_guarded_rows(get_rel_type_id(relid),
										   psprintf("rename attribute \"%s\"", stmt->subname));
			break;
		case OBJECT_TRIGGER:
			check_rename_trigger(stmt);
			break;
		case OBJECT_TABCONSTRAINT:
			check_rename_constraint(stmt);
			break;
		case OBJECT_SCHEMA:
			{
				Oid			nspid = get_namespace_oid(stmt->subname, true);
				Oid			guarded;

				if (!OidIsValid(nspid))
					break;
				check_member(NamespaceRelationId, nspid, "rename", "");
				guarded = guarded_table_in(nspid);
				if (OidIsValid(guarded))
					refuse_table(guarded, "rename the schema of", "", NAMES_DETAIL);
				break;
			}
		case OBJECT_EVENT_TRIGGER:
			check_event_trigger(strVal(stmt->object), "rename");
			break;
		default:
			if (is_function_type(stmt->renameType))
			{
				Oid			fn = LookupFuncWithArgs(stmt->renameType,
													castNode(ObjectWithArgs, stmt->object), true);

				check_member(ProcedureRelationId, fn, "rename", "");
				if (OidIsValid(fn))
					check_function_name(get_func_namespace(fn), stmt->newname);
			}
			break;
	}
}

static void
check_set_schema(Node *parsetree)
{
	AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;

	if (is_relation_type(stmt->objectType))
		check_relation_change(stmt->relation, "move", " to another schema");
	else if (is_function_type(stmt->objectType))
	{
		Oid			fn = LookupFuncWithArgs(stmt->objectType,
											castNode(ObjectWithArgs, stmt->object), true);

		check_member(ProcedureRelationId, fn, "move", " to another schema");
		if (OidIsValid(fn))
			check_function_name(get_namespace_oid(stmt->newschema, true), get_func_name(fn));
	}
}

/*
 * ALTER ... DEPENDS ON EXTENSION: dropping that other extension would then
 * drop the object too.
 */
static void
check_depends_on_extension(Node *parsetree)
{
	AlterObjectDependsStmt *stmt = (AlterObjectDependsStmt *) parsetree;
	Oid			relid;
	const char *name;
	HlTriggerInfo trigger;

	if (stmt->remove)
		return;
	if (is_function_type(stmt->objectType))
		check_function_change(stmt->objectType, castNode(ObjectWithArgs, stmt->object),
							  "make", " depend on an extension");
	else if (stmt->objectType == OBJECT_TRIGGER)
	{
		relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		name = strVal(llast(castNode(List, stmt->object)));
		trigger = hl_guard_find_trigger(relid, name);
		if (trigger.found && hl_guard_is_protected_function(trigger.tgfoid))
			refuse(relid, psprintf("make trigger \"%s\" depend on an extension", name), NULL);
	}
	else if (stmt->objectType == OBJECT_INDEX)
		check_log_unique_index(RangeVarGetRelid(stmt->relation, NoLock, true),
							   "make", " depend on an extension");
}

/* Functions and views ----------------------------------------------------------- */

static void
check_create_function(Node *parsetree)
{
	CreateFunctionStmt *stmt = (CreateFunctionStmt *) parsetree;
	char	   *schema;
	char	   *name;

	DeconstructQualifiedName(stmt->funcname, &schema, &name);
	check_function_name(schema ? get_namespace_oid(schema, true) :
						QualifiedNameGetCreationNamespace(stmt->funcname, &name),
						name);
}

static void
check_alter_function(Node *parsetree)
{
	AlterFunctionStmt *stmt = (AlterFunctionStmt *) parsetree;

	check_function_change(stmt->objtype, stmt->func, "alter", "");
}

static void
check_create_view(Node *parsetree)
{
	ViewStmt   *stmt = (ViewStmt *) parsetree;
	RangeVar   *view = stmt->view;
	Oid			nspid;

	if (!stmt->replace || view->relpersistence == RELPERSISTENCE_TEMP)
		return;
	nspid = view->schemaname ? get_namespace_oid(view->schemaname, true) :
		RangeVarGetCreationNamespace(view);
	if (OidIsValid(nspid))
		check_member(RelationRelationId, get_relname_relid(view->relname, nspid), "replace", "");
}

/* The extension, sequences, drops, event triggers ------------------------------ */

/* Removed from the extension, an object could be replaced or dropped. */
static void
check_extension_contents(Node *parsetree)
{
	AlterExtensionContentsStmt *stmt = (AlterExtensionContentsStmt *) parsetree;
	ObjectAddress address;
	Relation	rel = NULL;

	if (stmt->action >= 0 || strcmp(stmt->extname, HL_EXTENSION) != 0)
		return;
	address = get_object_address(stmt->objtype, stmt->object, &rel, AccessShareLock, true);
	if (rel)
		relation_close(rel, NoLock);
	if (OidIsValid(address.objectId))
		check_member(address.classId, address.objectId, "remove",
					 psprintf(" from extension %s", HL_EXTENSION));
}

static void
check_alter_sequence(Node *parsetree)
{
	AlterSeqStmt *stmt = (AlterSeqStmt *) parsetree;

	check_owned_sequence(RangeVarGetRelid(stmt->sequence, NoLock, true), "change sequence");
}

static void
check_drop(Node *parsetree)
{
	DropStmt   *stmt = (DropStmt *) parsetree;
	ListCell   *lc;

	switch (stmt->removeType)
	{
		case OBJECT_TRIGGER:
			check_drop_triggers(stmt);
			break;
		case OBJECT_EVENT_TRIGGER:
			foreach(lc, stmt->objects)
				check_event_trigger(strVal(lfirst(lc)), "drop");
			break;
		case OBJECT_INDEX:
			foreach(lc, stmt->objects)
				check_log_unique_index(RangeVarGetRelid(makeRangeVarFromNameList(lfirst(lc)),
														NoLock, true),
									   "drop", "");
			break;
		case OBJECT_SEQUENCE:
			foreach(lc, stmt->objects)
				check_owned_sequence(RangeVarGetRelid(makeRangeVarFromNameList(lfirst(lc)),
													  NoLock, true),
									 "drop sequence");
			break;
		default:
			break;
	}
}

static void
check_alter_event_trigger(Node *parsetree)
{
	AlterEventTrigStmt *stmt = (AlterEventTrigStmt *) parsetree;

	/* only ALWAYS fires under every session_replication_role */
	if (stmt->tgenabled != TRIGGER_FIRES_ALWAYS)
		check_event_trigger(stmt->trigname, "disable");
}

/* Entry points ----------------------------------------------------------------- */

typedef void (*StatementCheck) (Node *parsetree);

/* every statement that can touch a guard, and its check */
static const struct
{
	NodeTag		tag;
	StatementCheck check;
}			statement_checks[] =
{
	{T_AlterTableStmt, check_alter_table},
	{T_DropStmt, check_drop},
	{T_CreateTrigStmt, check_create_trigger},
	{T_RuleStmt, check_create_rule},
	{T_CreateStmt, check_create_table},
	{T_CreateForeignTableStmt, check_create_table},
	{T_CreateSchemaStmt, check_create_schema},
	{T_RenameStmt, check_rename},
	{T_AlterObjectSchemaStmt, check_set_schema},
	{T_AlterObjectDependsStmt, check_depends_on_extension},
	{T_CreateFunctionStmt, check_create_function},
	{T_AlterFunctionStmt, check_alter_function},
	{T_ViewStmt, check_create_view},
	{T_AlterExtensionContentsStmt, check_extension_contents},
	{T_AlterSeqStmt, check_alter_sequence},
	{T_AlterEnumStmt, check_alter_enum},
	{T_AlterEventTrigStmt, check_alter_event_trigger},
};

/* Not where the extension is missing, nor in its own scripts or pg_upgrade. */
static bool
guard_in_force(void)
{
	const HlGuardCatalog *cat = hl_guard_catalog();

	if (!OidIsValid(cat->extension) || IsBinaryUpgrade)
		return false;
	return !(creating_extension && CurrentExtensionObject == cat->extension);
}

static void
check_statement(Node *parsetree)
{
	if (parsetree == NULL)
		return;
	/* the tag first: no catalog access for other statements (ROLLBACK ...) */
	for (int i = 0; i < lengthof(statement_checks); i++)
	{
		if (nodeTag(parsetree) == statement_checks[i].tag)
		{
			if (guard_in_force())
				statement_checks[i].check(parsetree);
			return;
		}
	}
}

Datum
headlessly_guard_ddl(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the event trigger manager",
						"headlessly.guard_ddl()")));
	check_statement(((EventTriggerData *) fcinfo->context)->parsetree);
	PG_RETURN_NULL();
}

static void
guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	check_statement(pstmt->utilityStmt);
	hl_next_ProcessUtility(prev_ProcessUtility, pstmt, queryString, readOnlyTree,
						   context, params, queryEnv, dest, qc);
}

void
hl_guard_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = guard_ProcessUtility;
}
