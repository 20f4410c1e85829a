/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  One database's worker: finds out whether the extension is installed,
 *	  and if so runs delivery rounds until it is stopped.
 *
 * Woken by commits that appended (shmem.c) and every headlessly.worker_naptime.
 * A round manages its own short transactions; between them, and while it
 * waits for the network or on its latch, the worker holds no transaction,
 * so it keeps back no vacuum horizon and no consumer.
 *
 * SIGTERM (shutdown, pg_terminate_backend, DDL on the database) ends it at
 * the next CHECK_FOR_INTERRUPTS, which the sender also reaches at least
 * every 100 ms; what it had claimed becomes due again when its lease ends.
 *
 *-------------------------------------------------------------------------
 */
#include "worker/worker.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void hl_worker_main(Datum arg);

static int	my_slot = -1;

static void
worker_detach(int code, Datum arg)
{
	HlDbSlot   *slot = &hl_worker_shared->slots[my_slot];

	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->latch = NULL;
		/* the launcher starts it again, unless the extension is not there */
		if (slot->state != HL_SLOT_ABSENT)
			slot->state = HL_SLOT_PROBE;
	}
	LWLockRelease(hl_worker_shared->lock);
	/* the launcher, if it did not start us, learns it here */
	hl_wake_launcher();
}

static bool
extension_installed(void)
{
	bool		installed;

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid(HL_EXTENSION_NAME, true));
	CommitTransactionCommand();
	return installed;
}

static void
set_state(HlSlotState state)
{
	HlDbSlot   *slot = &hl_worker_shared->slots[my_slot];

	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	slot->state = state;
	slot->latch = state == HL_SLOT_SERVING ? MyLatch : NULL;
	LWLockRelease(hl_worker_shared->lock);
}

void
hl_worker_main(Datum arg)
{
	Oid			dboid;
	HlDbSlot   *slot;

	my_slot = DatumGetInt32(arg);
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* not for us any more, or DDL wants the database: leave before connecting */
	if (my_slot < 0 || my_slot >= hl_worker_shared->nslots)
		proc_exit(0);
	slot = &hl_worker_shared->slots[my_slot];
	LWLockAcquire(hl_worker_shared->lock, LW_EXCLUSIVE);
	if (slot->dboid != dboid || slot->blocked_by != 0 || slot->pid != 0)
	{
		if (slot->dboid == dboid && slot->state == HL_SLOT_STARTING)
			slot->state = HL_SLOT_PROBE;
		LWLockRelease(hl_worker_shared->lock);
		proc_exit(0);
	}
	slot->pid = MyProcPid;
	LWLockRelease(hl_worker_shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("headlessly_events worker");

	if (!extension_installed())
	{
		set_state(HL_SLOT_ABSENT);
		proc_exit(0);
	}
	set_state(HL_SLOT_SERVING);
	ereport(DEBUG1, (errmsg("headlessly_events worker serving database %u", dboid)));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		pgstat_report_activity(STATE_RUNNING, "delivery round");
		if (!extension_installed())
		{
			ereport(LOG,
					(errmsg("headlessly_events worker leaving database %u: the extension was dropped",
							dboid)));
			set_state(HL_SLOT_ABSENT);
			proc_exit(0);
		}
		pgstat_report_activity(STATE_IDLE, NULL);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 hl_worker_naptime_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
