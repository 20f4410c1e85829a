/*-------------------------------------------------------------------------
 *
 * database_ddl.c
 *	  DDL that needs a database to itself stops that database's worker
 *	  first: DROP DATABASE, ALTER DATABASE ... RENAME TO / SET TABLESPACE,
 *	  and CREATE DATABASE ... TEMPLATE of a served database.
 *
 * PostgreSQL refuses those while any process is connected to the database
 * (after waiting 5 s), and before 18 it does not ask background workers to
 * leave.  So the ProcessUtility hook blocks the database's slot (the
 * launcher starts no worker for a blocked database), stops its worker and
 * waits for it to go, then runs the command.  The block ends with the
 * transaction: dropped, the database's slot is freed; otherwise (renamed,
 * moved, copied, or the command failed) the launcher serves it again.
 *
 *-------------------------------------------------------------------------
 */
#include "worker/worker.h"
#include "common/common.h"

#include <signal.h>

#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

/* how long DDL waits for a worker to leave; then PostgreSQL's own check decides */
#define STOP_WAIT_MS 10000

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* the databases this transaction blocked (DDL runs outside transaction blocks: few) */
#define MAX_BLOCKED 4
static Oid	blocked[MAX_BLOCKED];
static bool blocked_dropped[MAX_BLOCKED];
static int	nblocked = 0;

/* The database a statement needs to itself, or InvalidOid. */
static Oid
database_needed_alone(Node *stmt, bool *dropping)
{
	const char *name = NULL;
	ListCell   *lc;

	*dropping = false;
	switch (nodeTag(stmt))
	{
		case T_DropdbStmt:
			name = ((DropdbStmt *) stmt)->dbname;
			*dropping = true;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
				name = ((RenameStmt *) stmt)->subname;
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					name = ((AlterDatabaseStmt *) stmt)->dbname;
			break;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) stmt)->options)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
					name = defGetString(opt);
			}
			break;
		default:
			break;
	}
	return name != NULL ? get_database_oid(name, true) : InvalidOid;
}

/*
 * Blocks the database's slot and stops its worker; returns once no worker
 * of it runs, or after STOP_WAIT_MS.
 */
static void
stop_database_worker(Oid dboid, bool dropping)
{
	HlDbSlot   *slot;
	TimestampTz deadline;
	int			i;

	if (nblocked == MAX_BLOCKED)
		return;

	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	slot = hl_find_slot(dboid);
	if (slot == NULL)
	{
		/* an unknown database: a slot keeps the launcher from probing it now */
		for (i = 0; i < hl_worker_shared->nslots; i++)
			if (hl_worker_shared->slots[i].state == HL_SLOT_FREE)
			{
				slot = &hl_worker_shared->slots[i];
				memset(slot, 0, sizeof(*slot));
				slot->dboid = dboid;
				slot->state = HL_SLOT_PROBE;
				break;
			}
	}
	if (slot == NULL)
	{
		LWLockRelease(hl_worker_shared->lock);
		return;
	}
	slot->blocked_by = MyProcPid;
	blocked[nblocked] = dboid;
	blocked_dropped[nblocked] = dropping;
	nblocked++;
	if (slot->pid != 0)
		kill(slot->pid, SIGTERM);
	LWLockRelease(hl_worker_shared->lock);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), STOP_WAIT_MS);
	for (;;)
	{
		bool		gone;

		LWLockAcquire(hl_worker_shared->lock, LW_SHARED);
		slot = hl_find_slot(dboid);
		gone = slot == NULL || (slot->pid == 0 && slot->state != HL_SLOT_STARTING);
		LWLockRelease(hl_worker_shared->lock);
		if (gone || GetCurrentTimestamp() >= deadline)
			break;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* At the end of the transaction that ran the DDL: lift its blocks. */
void
hl_database_ddl_xact_end(bool commit)
{
	int			i;

	if (nblocked == 0)
		return;
	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < nblocked; i++)
	{
		HlDbSlot   *slot = hl_find_slot(blocked[i]);

		if (slot == NULL || slot->blocked_by != MyProcPid)
			continue;
		slot->blocked_by = 0;
		slot->start_now = true;
		if (commit && blocked_dropped[i] && slot->pid == 0)
			slot->state = HL_SLOT_FREE;
		else if (slot->state != HL_SLOT_ABSENT)
			slot->state = slot->pid != 0 ? slot->state : HL_SLOT_PROBE;
	}
	hl_worker_shared->rescan = true;
	LWLockRelease(hl_worker_shared->lock);
	nblocked = 0;
	hl_wake_launcher();
}

static void
database_ddl_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							bool readOnlyTree, ProcessUtilityContext context,
							ParamListInfo params, QueryEnvironment *queryEnv,
							DestReceiver *dest, QueryCompletion *qc)
{
	bool		dropping;
	Oid			dboid = database_needed_alone(pstmt->utilityStmt, &dropping);

	if (OidIsValid(dboid) && hl_worker_shared != NULL)
		stop_database_worker(dboid, dropping);
	hl_next_ProcessUtility(prev_ProcessUtility, pstmt, queryString, readOnlyTree,
						   context, params, queryEnv, dest, qc);
}

void
hl_database_ddl_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = database_ddl_ProcessUtility;
}
