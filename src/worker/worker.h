/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker that delivers after commit: a launcher that
 *	  starts one worker per database where the extension is installed.
 *
 * All of it needs shared_preload_libraries = 'headlessly_events'; without
 * it hl_worker_init() only defines the settings, and every other function
 * here does nothing.  The log works the same either way.
 *
 * Shared memory holds one slot per served (or probed) database; the
 * launcher allocates slots and starts workers, each worker reports in its
 * slot, and backends use the slots to wake a database's worker at commit
 * and to stop it before DDL that needs the database to themselves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_WORKER_H
#define HL_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

/* settings */
extern int	hl_worker_naptime_ms;
extern int	hl_checkpoint_interval_ms;	/* 0: the worker makes no checkpoints */

/* from _PG_init */
extern void hl_worker_init(void);

/*
 * This transaction appended an event a hook or webhook subscription matches,
 * or restored one: wake the worker at commit if the database has such a
 * subscription.
 */
extern void hl_worker_note_append(void);

/* ---------------------------------------------------------------------
 * Inside src/worker/ only
 * ---------------------------------------------------------------------
 */

typedef enum HlSlotState
{
	HL_SLOT_FREE = 0,
	HL_SLOT_PROBE,				/* start a worker: to serve the database, or
								 * find the extension missing */
	HL_SLOT_STARTING,			/* started; the worker has not reported yet */
	HL_SLOT_SERVING,			/* the extension is there and served */
	HL_SLOT_ABSENT				/* no extension; probe again when installed */
} HlSlotState;

typedef struct HlDbSlot
{
	Oid			dboid;
	HlSlotState state;
	pid_t		pid;			/* the worker, while it runs */
	Latch	   *latch;			/* its latch, while it serves */
	pid_t		blocked_by;		/* a backend running DDL on the database */
	bool		start_now;		/* not a crash: no restart delay */
} HlDbSlot;

typedef struct HlWorkerShared
{
	LWLock	   *lock;			/* everything below */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		probe_absent;	/* an extension was installed somewhere */
	bool		rescan;			/* a database may have appeared */
	int			nslots;
	HlDbSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} HlWorkerShared;

/* NULL unless preloaded (shmem.c) */
extern HlWorkerShared *hl_worker_shared;

extern HlDbSlot *hl_find_slot(Oid dboid);
extern void hl_wake_launcher(void);

/* DROP / ALTER DATABASE stop the database's worker first (database_ddl.c) */
extern void hl_database_ddl_init(void);
extern void hl_database_ddl_xact_end(bool commit);

/* the processes (launcher.c, worker.c) */
extern void hl_launcher_register(void);

#define HL_EXTENSION_NAME "headlessly_events"

#endif							/* HL_WORKER_H */
