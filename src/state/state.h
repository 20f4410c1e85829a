/*-------------------------------------------------------------------------
 *
 * state.h
 *	  State and time travel: replaying a stream, snapshots, and the state
 *	  of an entity at any point of its history.
 *
 * The present state is the stream head the log keeps (log.h); the past is
 * replayed from the nearest snapshot and the log's events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_STATE_H
#define HL_STATE_H

#include "log/log.h"

/* settings (snapshot.c) */
extern int	hl_snapshot_interval;

extern void hl_state_init(void);

/*
 * An entity's state while its stream is replayed (replay.c).  Merge patches
 * since the last Created (or the snapshot replay started from) are kept in
 * "pending" and folded into "base" once, when the state is asked for.
 */
typedef struct HlReplay
{
	int64		version;		/* last version applied, 0 for none */
	bool		has_last_recorded_at;
	TimestampTz last_recorded_at;
	bool		alive;
	Jsonb	   *base;			/* state at the last Created or snapshot */
	Jsonb	  **pending;		/* patches to apply to base, oldest first */
	int			npending;
	int			maxpending;
	bool		has_created_at;
	TimestampTz created_at;
	bool		has_updated_at;
	TimestampTz updated_at;
} HlReplay;

extern void hl_replay_init(HlReplay *r);
extern void hl_replay_apply(HlReplay *r, int64 version, text *type, Jsonb *data,
							TimestampTz recorded_at);
extern Jsonb *hl_replay_state(HlReplay *r);
extern Jsonb *hl_fold_patches(Jsonb *base, Jsonb **patches, int npatches);
extern void hl_replay_start_from_row(HlReplay *r, int64 version, HeapTuple tup,
									 TupleDesc desc, int recorded_at_column);
extern void hl_replay_keep(HlReplay *r);

/*
 * Walking the rows of a query stream by stream (replay.c): the query
 * returns each stream's rows together, and the walk calls start() on a
 * stream's first row (with its key copied into the stream's own memory),
 * row() on every row, and finish() after its last.  Rows are fetched in
 * batches; keep() is called before a batch's rows go away, for the open
 * stream to copy what it still needs.  The callbacks run in a memory
 * context that is emptied at every new stream.
 */
typedef struct HlStreamWalk
{
	int			tenant_column;	/* 0: the rows are of one tenant */
	int			target_column;
	void		(*start) (void *arg, text *tenant, text *target, HeapTuple tup,
						  TupleDesc desc);
	void		(*row) (void *arg, HeapTuple tup, TupleDesc desc);
	void		(*keep) (void *arg);
	void		(*finish) (void *arg);
} HlStreamWalk;

extern void hl_walk_streams(SPIPlanPtr plan, Datum *args, const char *nulls,
							bool read_only, const HlStreamWalk *walk, void *arg);

/* snapshots (snapshot.c) */
extern void hl_snapshot_maybe_write(text *tenant, text *target, const HlStreamHead *head);
extern void hl_snapshot_write(text *tenant, text *target, const HlReplay *r,
							  Jsonb *state);

/* a point in a stream's history */
typedef struct HlPoint
{
	bool		present;		/* the head, including this transaction's appends */
	bool		by_version;
	TimestampTz at;				/* unless by_version: events with recorded_at <= at */
	int64		version;		/* if by_version: events with version <= version */
} HlPoint;

extern bool hl_snapshot_find(text *tenant, text *target, const HlPoint *point,
							 bool read_only, HlReplay *r, int64 *upper);

/* as_of and friends (time_travel.c) */
extern bool hl_write_pending_heads(void);
extern bool hl_entity_at(text *tenant, text *target, const HlPoint *point,
						 bool read_only, HlReplay *r, char **noun);

#endif							/* HL_STATE_H */
