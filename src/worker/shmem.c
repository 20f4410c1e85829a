/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The worker's settings and shared memory, and the commit-time wakes:
 *	  a transaction that appended wakes its database's worker, one that
 *	  installed the extension wakes the launcher.
 *
 * Wakes happen at commit (XACT_EVENT_COMMIT), never before: a worker woken
 * earlier would not see the events, nor the launcher's probe the extension.
 * A transaction wakes its database's worker only if it appended an event
 * that a hook or webhook subscription matches (the delivery code tells,
 * from its subscription cache) or restored events while the database has
 * such a subscription (hl_delivery_wanted(), a cache that may need a
 * query, asked just before commit while the transaction can still run one).
 *
 *-------------------------------------------------------------------------
 */
#include "worker/worker.h"
#include "delivery/delivery.h"
#include "delivery/webhook.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

int			hl_worker_naptime_ms = 1000;
int			hl_checkpoint_interval_ms = 60 * 1000;

HlWorkerShared *hl_worker_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this transaction's wakes */
static bool appended = false;
static bool wake_worker = false;
static bool installed = false;

static int
slot_count(void)
{
	/* at most one worker per database, and every worker is a bgworker */
	return Max(max_worker_processes, 1);
}

static Size
shared_size(void)
{
	return add_size(offsetof(HlWorkerShared, slots),
					mul_size(sizeof(HlDbSlot), slot_count()));
}

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche(HL_EXTENSION_NAME, 1);
}

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hl_worker_shared = ShmemInitStruct("headlessly_events worker", shared_size(), &found);
	if (!found)
	{
		memset(hl_worker_shared, 0, shared_size());
		hl_worker_shared->lock = &(GetNamedLWLockTranche(HL_EXTENSION_NAME))->lock;
		hl_worker_shared->nslots = slot_count();
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The slot of a database, or NULL; the caller holds the lock. */
HlDbSlot *
hl_find_slot(Oid dboid)
{
	int			i;

	for (i = 0; i < hl_worker_shared->nslots; i++)
		if (hl_worker_shared->slots[i].state != HL_SLOT_FREE &&
			hl_worker_shared->slots[i].dboid == dboid)
			return &hl_worker_shared->slots[i];
	return NULL;
}

void
hl_wake_launcher(void)
{
	Latch	   *latch;

	LWLockAcquire(hl_worker_shared->lock, LW_SHARED);
	latch = hl_worker_shared->launcher_latch;
	LWLockRelease(hl_worker_shared->lock);
	/* a latch is PGPROC memory: setting one whose owner left is harmless */
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Every committing writer comes here, so without the lock: a slot read
 * while it changes can at worst set a latch that did not need it (a latch
 * is PGPROC memory, never freed) or miss a worker that is just starting,
 * which runs a round first anyway; the naptime bounds the rest.
 */
static void
wake_database_worker(Oid dboid)
{
	for (int i = 0; i < hl_worker_shared->nslots; i++)
	{
		volatile HlDbSlot *slot = &hl_worker_shared->slots[i];

		if (slot->dboid == dboid && slot->state == HL_SLOT_SERVING)
		{
			Latch	   *latch = slot->latch;

			if (latch != NULL)
				SetLatch(latch);
			return;
		}
	}
}

void
hl_worker_note_append(void)
{
	appended = true;
}

static void
worker_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* still in the transaction: the subscriptions cache may load */
			wake_worker = appended && hl_delivery_wanted();
			return;
		case XACT_EVENT_COMMIT:
			if (wake_worker)
				wake_database_worker(MyDatabaseId);
			if (installed)
			{
				LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
				hl_worker_shared->probe_absent = true;
				hl_worker_shared->rescan = true;
				LWLockRelease(hl_worker_shared->lock);
				hl_wake_launcher();
			}
			hl_database_ddl_xact_end(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			hl_database_ddl_xact_end(false);
			break;
		case XACT_EVENT_PREPARE:
			/* COMMIT PREPARED may come from anywhere: the naptime finds it */
			hl_database_ddl_xact_end(false);
			break;
		default:
			return;
	}
	appended = false;
	wake_worker = false;
	installed = false;
}

void
hl_worker_init(void)
{
	hl_webhook_init();

	DefineCustomIntVariable("headlessly.worker_naptime",
							"Longest sleep of the delivery worker between rounds.",
							"Commits that append wake it at once; the naptime bounds how late retries and prepared transactions are seen.",
							&hl_worker_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.checkpoint_interval",
							"How often the background worker seals new events with a checkpoint.",
							"0 turns the worker's checkpoints off; headlessly.checkpoint() still makes one.",
							&hl_checkpoint_interval_ms,
							60 * 1000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;

	RegisterXactCallback(worker_xact_callback, NULL);
	hl_database_ddl_init();

	/*
	 * Not under pg_upgrade (both its servers run with -b): a worker would
	 * deliver and checkpoint in the old cluster while its schema is dumped,
	 * and in the new one write into databases being restored, whose files
	 * the old cluster's then replace (pglogical and TimescaleDB do the same).
	 */
	if (IsBinaryUpgrade)
		return;
	hl_launcher_register();
}

PG_FUNCTION_INFO_V1(hl_worker_wake_sql);

/*
 * headlessly.worker_wake(): called by the install and upgrade scripts, so
 * that the launcher looks for the extension in this database once the
 * transaction commits.  False when no worker runs (library not preloaded).
 */
Datum
hl_worker_wake_sql(PG_FUNCTION_ARGS)
{
	if (hl_worker_shared == NULL)
		PG_RETURN_BOOL(false);
	installed = true;
	PG_RETURN_BOOL(true);
}
