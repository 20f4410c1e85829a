/*-------------------------------------------------------------------------
 *
 * guard_internal.h
 *	  Shared by the append-only guard (guard.c) and its DDL checks
 *	  (guard_ddl.c): how they recognise the extension's objects and the
 *	  tables they guard.  Nothing outside these two files needs it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_GUARD_INTERNAL_H
#define HL_GUARD_INTERNAL_H

#include "log/log.h"

#include "catalog/pg_trigger.h"

#define HL_EXTENSION "headlessly_events"

/* the triggers make_append_only() creates */
#define HL_GUARD_TRIGGER_NAME "headlessly_append_only"
#define HL_GUARD_ROW_TRIGGER_NAME "headlessly_append_only_row"

/*
 * The extension's functions the guards depend on, found among the
 * extension's members by the C symbol they run: renaming one (were it
 * allowed) would not hide it.  All InvalidOid where the extension is not
 * installed.
 */
typedef struct HlGuardCatalog
{
	Oid			extension;
	Oid			guard_fn;		/* append_only_guard(): the guard trigger */
	Oid			guard_ddl_fn;	/* guard_ddl(): the DDL event trigger */
	Oid			append_fn;		/* events_before_insert(): the log's append */
	Oid			after_append_fn;	/* events_after_insert(): after hooks */
} HlGuardCatalog;

extern const HlGuardCatalog *hl_guard_catalog(void);

/* What the guard knows of a table, from its triggers. */
typedef struct HlGuardedTable
{
	bool		guarded;		/* some trigger runs the guard */
	bool		statement_guard;	/* ... FOR EACH STATEMENT */
	bool		row_guard;		/* ... FOR EACH ROW */
	bool		is_log;			/* guarded, and a member of the extension */
	bool		has_append_trigger;
	NameData	append_trigger; /* the first of the log's BEFORE INSERT
								 * triggers to fire */
} HlGuardedTable;

extern void hl_guard_describe_table(Oid relid, HlGuardedTable *table);

/* One trigger of a table, by name. */
typedef struct HlTriggerInfo
{
	bool		found;
	Oid			tgfoid;
	int16		tgtype;
} HlTriggerInfo;

extern char *hl_guard_table_name(Oid relid);
extern HlTriggerInfo hl_guard_find_trigger(Oid relid, const char *name);
extern bool hl_guard_is_protected_function(Oid fn);

/* Would a trigger of this type run for an INSERT before the row is stored? */
#define HL_TRIGGER_SHAPES_INSERTED_ROW(tgtype) \
	(TRIGGER_FOR_ROW(tgtype) && TRIGGER_FOR_BEFORE(tgtype) && TRIGGER_FOR_INSERT(tgtype))

#endif							/* HL_GUARD_INTERNAL_H */
