/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  One database's worker: finds out whether the extension is installed,
 *	  and if so runs delivery rounds until it is stopped.
 *
 * Woken by commits that appended (shmem.c) and every headlessly.worker_naptime.
 * Every headlessly.checkpoint_interval it also seals what has committed
 * (tamper evidence, hl_tamper_checkpoint_all()).
 * A round manages its own short transactions; between them, and while it
 * waits for the network or on its latch, the worker holds no transaction,
 * so it keeps back no vacuum horizon and no consumer.
 *
 * SIGTERM (shutdown, pg_terminate_backend, DDL on the database) ends it at
 * the next CHECK_FOR_INTERRUPTS, which the sender also reaches at least
 * every 100 ms; what it had claimed is due again at once for the next
 * round, its own successor's: the rows name a sender that is gone
 * (round.c).
 *
 *-------------------------------------------------------------------------
 */
#include "worker/worker.h"
#include "delivery/delivery.h"
#include "tamper/tamper.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "catalog/namespace.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void hl_worker_main(Datum arg);

/* events one round may attempt before the worker looks at its latch again */
#define HL_ROUND_EVENTS 1000

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

typedef enum DatabaseState
{
	DB_NO_EXTENSION,
	DB_OLD_SCHEMA,				/* still at 0.1: nothing to deliver until updated */
	DB_READY
} DatabaseState;

static DatabaseState
database_state(void)
{
	DatabaseState state = DB_NO_EXTENSION;
	Oid			nsp;

	StartTransactionCommand();
	if (OidIsValid(get_extension_oid(HL_EXTENSION_NAME, true)))
	{
		nsp = get_namespace_oid(HL_SCHEMA, true);
		state = OidIsValid(nsp) && OidIsValid(get_relname_relid("subscriptions", nsp)) ?
			DB_READY : DB_OLD_SCHEMA;
	}
	CommitTransactionCommand();
	return state;
}

/*
 * Runs one step of the worker's work; an error is logged and the step given
 * up (it is tried again after the naptime), as autovacuum does with a
 * failed table.  Shutdown (FATAL) is not an error that comes here.
 */
static int
guarded(int (*step) (void))
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int result = 0;

	PG_TRY();
	{
		result = step();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		result = 0;
	}
	PG_END_TRY();
	return result;
}

/* a round manages its own transactions */
static int
delivery_round(void)
{
	return hl_delivery_round(HL_ROUND_EVENTS, true);
}

/* seals what has committed, in a transaction of its own */
static int
checkpoint(void)
{
	int64		made;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	made = hl_tamper_checkpoint_all();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return (int) Min(made, (int64) INT_MAX);
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
	TimestampTz next_checkpoint = 0;

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

	if (database_state() == DB_NO_EXTENSION)
	{
		set_state(HL_SLOT_ABSENT);
		proc_exit(0);
	}
	set_state(HL_SLOT_SERVING);
	ereport(DEBUG1, (errmsg("headlessly_events worker serving database %u", dboid)));

	for (;;)
	{
		DatabaseState state;
		int			attempted = 0;
		long		timeout = hl_worker_naptime_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* what a commit woke us for is in the tables: reset first, then look */
		ResetLatch(MyLatch);

		pgstat_report_activity(STATE_RUNNING, "delivery round");
		state = database_state();
		if (state == DB_NO_EXTENSION)
		{
			ereport(LOG,
					(errmsg("headlessly_events worker leaving database %u: the extension was dropped",
							dboid)));
			set_state(HL_SLOT_ABSENT);
			proc_exit(0);
		}
		if (state == DB_READY)
		{
			attempted = guarded(delivery_round);
			if (hl_checkpoint_interval_ms > 0 &&
				GetCurrentTimestamp() >= next_checkpoint)
			{
				pgstat_report_activity(STATE_RUNNING, "checkpoint");
				(void) guarded(checkpoint);
				next_checkpoint = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															  hl_checkpoint_interval_ms);
			}
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		pgstat_report_stat(true);

		/* a full round leaves more to do: go on at once */
		if (attempted >= HL_ROUND_EVENTS)
			continue;
		/* the next checkpoint may be due before the naptime ends */
		if (hl_checkpoint_interval_ms > 0 && next_checkpoint != 0)
			timeout = Min(timeout, Max(1, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																		  next_checkpoint)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
}
