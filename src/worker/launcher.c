/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one static background worker that starts a worker for
 *	  every database where the extension is installed.
 *
 * It reads pg_database (a shared catalog: it connects to no database) and
 * gives each connectable database a slot.  Whether the extension is there
 * only a process connected to that database can tell, so a new database
 * gets a worker that finds out: it stays to serve, or reports the extension
 * absent and leaves.  An absent database is probed again when some
 * transaction installs the extension (headlessly.worker_wake() at commit).
 *
 * Workers are dynamic and never restarted by the postmaster: the launcher
 * restarts them, unless their database is blocked by DDL or gone; one that
 * exited on its own (an error, pg_terminate_backend) no sooner than
 * HL_RESTART_DELAY_MS after its last start, so that a failing one does not
 * spin.  A crash of any of them restarts the server, and
 * the launcher with it; delivery continues from the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "worker/worker.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* how often pg_database is read again, in case a database came from a template */
#define HL_RESCAN_MS 5000
/* shortest time between two starts of one database's worker */
#define HL_RESTART_DELAY_MS 5000

PGDLLEXPORT void hl_launcher_main(Datum arg);
PGDLLEXPORT void hl_worker_main(Datum arg);

/* per slot, in the launcher only */
typedef struct LauncherSlot
{
	BackgroundWorkerHandle *handle;
	TimestampTz last_start;
} LauncherSlot;

static LauncherSlot *local;
static bool warned_no_room = false;

void
hl_launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, HL_EXTENSION_NAME);
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "hl_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "headlessly_events launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "headlessly_events launcher");
	RegisterBackgroundWorker(&bgw);
}

static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	if (hl_worker_shared->launcher_pid == MyProcPid)
	{
		hl_worker_shared->launcher_pid = 0;
		hl_worker_shared->launcher_latch = NULL;
	}
	LWLockRelease(hl_worker_shared->lock);
}

static bool
database_servable(Form_pg_database db)
{
#ifdef DATCONNLIMIT_INVALID_DB
	/* a DROP DATABASE that was interrupted */
	if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
		return false;
#endif
	/* a worker connected to a template would stop CREATE DATABASE from it */
	return db->datallowconn && !db->datistemplate;
}

/*
 * Gives every servable database a slot (to probe), frees the slots of
 * databases that are gone, and re-probes absent ones if asked.
 */
static void
scan_databases(bool probe_absent)
{
	MemoryContext cxt = CurrentMemoryContext;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid		   *oids;
	int			noids = 0;
	int			maxoids = 16;
	int			i;
	int			j;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	oids = MemoryContextAlloc(cxt, sizeof(Oid) * maxoids);
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (!database_servable(db))
			continue;
		if (noids == maxoids)
		{
			maxoids *= 2;
			oids = repalloc(oids, sizeof(Oid) * maxoids);
		}
		oids[noids++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	/* gone, or no longer servable: forget it once its worker has left */
	for (i = 0; i < hl_worker_shared->nslots; i++)
	{
		HlDbSlot   *slot = &hl_worker_shared->slots[i];
		bool		listed = false;

		if (slot->state == HL_SLOT_FREE || slot->blocked_by != 0 ||
			slot->pid != 0 || local[i].handle != NULL)
			continue;
		for (j = 0; j < noids && !listed; j++)
			listed = oids[j] == slot->dboid;
		if (!listed)
			slot->state = HL_SLOT_FREE;
		else if (probe_absent && slot->state == HL_SLOT_ABSENT)
		{
			slot->state = HL_SLOT_PROBE;
			slot->start_now = true;
		}
	}
	/* new */
	for (j = 0; j < noids; j++)
	{
		if (hl_find_slot(oids[j]) != NULL)
			continue;
		for (i = 0; i < hl_worker_shared->nslots; i++)
			if (hl_worker_shared->slots[i].state == HL_SLOT_FREE)
				break;
		if (i == hl_worker_shared->nslots)
		{
			if (!warned_no_room)
				ereport(WARNING,
						(errmsg("headlessly_events launcher: more databases than max_worker_processes (%d); some are not served",
								hl_worker_shared->nslots),
						 errhint("Raise max_worker_processes.")));
			warned_no_room = true;
			break;
		}
		memset(&hl_worker_shared->slots[i], 0, sizeof(HlDbSlot));
		hl_worker_shared->slots[i].dboid = oids[j];
		hl_worker_shared->slots[i].state = HL_SLOT_PROBE;
		local[i].handle = NULL;
		local[i].last_start = 0;
	}
	LWLockRelease(hl_worker_shared->lock);
	pfree(oids);
}

static bool
start_worker(int slotno, Oid dboid)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, HL_EXTENSION_NAME);
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "hl_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "headlessly_events worker for database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "headlessly_events worker");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(bgw.bgw_extra, &dboid, sizeof(Oid));
	bgw.bgw_notify_pid = MyProcPid;

	return RegisterDynamicBackgroundWorker(&bgw, &local[slotno].handle);
}

/*
 * Notices workers that have stopped, lifts blocks whose backend is gone,
 * and starts the workers that are due.  Returns how long until a restart
 * is due (-1: none waits).
 */
static long
reconcile(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next_ms = -1;
	int			i;

	for (i = 0; i < hl_worker_shared->nslots; i++)
	{
		HlDbSlot   *slot = &hl_worker_shared->slots[i];
		pid_t		pid;
		Oid			dboid;
		TimestampTz due;

		if (local[i].handle != NULL &&
			GetBackgroundWorkerPid(local[i].handle, &pid) == BGWH_STOPPED)
		{
			pfree(local[i].handle);
			local[i].handle = NULL;
			LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
			/* never reported, or died without cleaning up: start it again */
			if (slot->state == HL_SLOT_STARTING || slot->state == HL_SLOT_SERVING)
				slot->state = HL_SLOT_PROBE;
			slot->pid = 0;
			slot->latch = NULL;
			LWLockRelease(hl_worker_shared->lock);
		}

		LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
		if (slot->blocked_by != 0 && BackendPidGetProc(slot->blocked_by) == NULL)
		{
			slot->blocked_by = 0;
			if (slot->state == HL_SLOT_FREE)
				slot->state = HL_SLOT_PROBE;
		}
		if (slot->state != HL_SLOT_PROBE || slot->blocked_by != 0 ||
			local[i].handle != NULL)
		{
			LWLockRelease(hl_worker_shared->lock);
			continue;
		}
		dboid = slot->dboid;
		due = TimestampTzPlusMilliseconds(local[i].last_start, HL_RESTART_DELAY_MS);
		if (!slot->start_now && local[i].last_start != 0 && now < due)
		{
			long		wait = TimestampDifferenceMilliseconds(now, due);

			LWLockRelease(hl_worker_shared->lock);
			if (next_ms < 0 || wait < next_ms)
				next_ms = wait;
			continue;
		}
		slot->state = HL_SLOT_STARTING;
		slot->start_now = false;
		LWLockRelease(hl_worker_shared->lock);

		local[i].last_start = now;
		if (!start_worker(i, dboid))
		{
			LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
			slot->state = HL_SLOT_PROBE;
			LWLockRelease(hl_worker_shared->lock);
			local[i].handle = NULL;
			if (!warned_no_room)
				ereport(WARNING,
						(errmsg("headlessly_events launcher: could not start a worker for database %u", dboid),
						 errhint("Raise max_worker_processes.")));
			warned_no_room = true;
			if (next_ms < 0 || next_ms > HL_RESTART_DELAY_MS)
				next_ms = HL_RESTART_DELAY_MS;
		}
	}
	return next_ms;
}

void
hl_launcher_main(Datum arg)
{
	TimestampTz next_scan = 0;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* shared catalogs only */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("headlessly_events launcher");

	local = MemoryContextAllocZero(TopMemoryContext,
								   sizeof(LauncherSlot) * hl_worker_shared->nslots);

	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	if (hl_worker_shared->launcher_pid != 0 &&
		BackendPidGetProc(hl_worker_shared->launcher_pid) != NULL)
	{
		LWLockRelease(hl_worker_shared->lock);
		ereport(LOG, (errmsg("headlessly_events launcher already running")));
		proc_exit(0);
	}
	hl_worker_shared->launcher_pid = MyProcPid;
	hl_worker_shared->launcher_latch = MyLatch;
	/* a launcher restarted alone: its workers' handles are gone, the workers not */
	LWLockRelease(hl_worker_shared->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);

	ereport(LOG, (errmsg("headlessly_events launcher started")));

	for (;;)
	{
		bool		scan;
		bool		probe_absent;
		long		timeout;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
		scan = hl_worker_shared->rescan;
		probe_absent = hl_worker_shared->probe_absent;
		hl_worker_shared->rescan = false;
		hl_worker_shared->probe_absent = false;
		LWLockRelease(hl_worker_shared->lock);

		now = GetCurrentTimestamp();
		if (scan || probe_absent || now >= next_scan)
		{
			scan_databases(probe_absent);
			next_scan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HL_RESCAN_MS);
		}

		timeout = reconcile();
		{
			long		to_scan = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_scan);

			if (timeout < 0 || to_scan < timeout)
				timeout = to_scan;
		}

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
