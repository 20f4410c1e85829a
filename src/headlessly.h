/*-------------------------------------------------------------------------
 *
 * headlessly.h
 *	  Declarations shared by the parts of headlessly_events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HEADLESSLY_H
#define HEADLESSLY_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "executor/spi.h"
#include "storage/itemptr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* Our SQLSTATEs: class ZE, "headlessly events" */
#define ERRCODE_HL_IMMUTABLE			MAKE_SQLSTATE('Z','E','0','0','1')
#define ERRCODE_HL_VERSION_CONFLICT		MAKE_SQLSTATE('Z','E','0','0','2')
#define ERRCODE_HL_INVALID_EVENT		MAKE_SQLSTATE('Z','E','0','0','3')
#define ERRCODE_HL_ENTITY_STATE			MAKE_SQLSTATE('Z','E','0','0','4')
#define ERRCODE_HL_HOOK_DEPTH			MAKE_SQLSTATE('Z','E','0','0','6')

#define HL_SCHEMA "headlessly"

/* Longest tenant, target, type, actor, source or key we accept, in bytes. */
#define HL_MAX_NAME_BYTES 512

/* Byte equality of two texts, as identifiers compare (COLLATE "C"). */
static inline bool
hl_text_equal(const text *a, const text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* settings (headlessly.c) */
extern char *hl_tenant_setting;
extern char *hl_actor_setting;
extern int	hl_max_hook_depth;
extern int	hl_max_event_bytes;

extern const char *hl_current_tenant(void);

/* event ids (event_id.c) */
extern text *hl_generate_event_id(void);
extern bool hl_event_id_is_valid(const char *id, int len);

/* what an event type means (event_type.c) */
typedef enum HlVerbKind
{
	HL_NOT_ENTITY,				/* no Noun.Verbed shape: a free-standing type */
	HL_VERB_CREATED,
	HL_VERB_DELETED,
	HL_VERB_OTHER				/* any other verb: a merge patch */
} HlVerbKind;

typedef struct HlEventType
{
	HlVerbKind	kind;
	int			noun_len;		/* bytes of the noun, for entity types */
} HlEventType;

extern void hl_check_event_type(const char *type, int len);
extern HlEventType hl_parse_event_type(const char *type, int len);
extern void hl_check_name(const char *what, const char *value, int len);
extern void hl_check_source_type(const char *value, int len);
extern void hl_check_json_object(const char *what, Jsonb *value);

/* entity state transitions (entity.c) */
extern Jsonb *hl_merge_patch(Jsonb *state, Jsonb *patch, Jsonb **before);
extern Jsonb *hl_strip_top_level_nulls(Jsonb *object);
extern Jsonb *hl_changed_keys(Jsonb *old, Jsonb *new);

/* rows as JSON (row_json.c) */
extern Jsonb *hl_row_to_jsonb(TupleDesc tupdesc, HeapTuple row);

/* stream heads (stream.c) */
typedef struct HlStreamHead
{
	bool		is_new;			/* no head row yet: store() inserts one */
	ItemPointerData tid;		/* the locked head row, unless is_new */
	int64		version;		/* 0 for a stream without events */
	bool		has_last_recorded_at;
	TimestampTz last_recorded_at;
	char	   *noun;			/* NULL until the first Created */
	Jsonb	   *state;			/* NULL unless the entity is alive */
	bool		has_created_at;
	TimestampTz created_at;
	bool		has_updated_at;
	TimestampTz updated_at;
} HlStreamHead;

extern void hl_stream_lock(text *tenant, text *target, bool create, HlStreamHead *head);
extern bool hl_stream_store(text *tenant, text *target, const HlStreamHead *head);

/* the columns an append supplies, in this order (append.c) */
typedef enum HlAppendColumn
{
	A_ID,
	A_TENANT,
	A_TYPE,
	A_TARGET,
	A_VERSION,
	A_ACTOR,
	A_SOURCE,
	A_SOURCE_TYPE,
	A_KEY,
	A_OCCURRED_AT,
	A_DATA,
	A_METADATA,
	A_RAW_PAYLOAD,
	A_NCOLUMNS
} HlAppendColumn;

extern Datum hl_append_event(Datum *values, char *nulls, bool want_row);

/* idempotency keys (idempotency.c) */
extern bool hl_claim_idempotency_key(text *tenant, text *source, text *key,
									 int64 seq);
extern Datum hl_stored_event_by_key(text *tenant, text *source, text *key);

/* hooks (hooks.c) */
typedef enum HlHookPhase
{
	HL_HOOK_BEFORE = 0,
	HL_HOOK_AFTER = 1
} HlHookPhase;

extern bool hl_hooks_match(HlHookPhase phase, const char *type, int len);
extern void hl_check_hook_depth(void);
extern bool hl_run_before_hooks(TupleDesc tupdesc, Datum *values, bool *nulls,
								int type_attno, int data_attno, Jsonb *state);
extern void hl_keep_state_after(int64 seq, Jsonb *state);
extern Jsonb *hl_take_state_after(int64 seq);

/* guards (guard.c) */
extern void hl_guard_install_hooks(void);
extern void hl_guard_allow_internal_ddl(bool allow);

/* SPI helpers (spi_util.c) */
extern SPIPlanPtr hl_prepare_cached(SPIPlanPtr *slot, const char *query,
									int nargs, Oid *argtypes);
extern void hl_spi_check(int rc, int expected, const char *query);

typedef struct HlSavedUser
{
	Oid			userid;
	int			sec_context;
} HlSavedUser;

extern Oid	hl_log_relid(void);
extern void hl_become_log_owner(HlSavedUser *saved);
extern void hl_restore_user(const HlSavedUser *saved);

/* ---- Time travel ------------------------------------------------------- */

#include "fmgr.h"

/* settings (headlessly.c) */
extern int	hl_snapshot_interval;

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
extern bool hl_entity_at(text *tenant, text *target, const HlPoint *point,
						 bool read_only, HlReplay *r, char **noun);
extern text *hl_tenant_arg(FunctionCallInfo fcinfo, int argno);

/* set-returning functions that fill a tuplestore (result_set.c) */
#include "utils/tuplestore.h"

typedef struct HlResultSet
{
	MemoryContext cxt;			/* where the tuplestore lives */
	Tuplestorestate *store;
	TupleDesc	tupdesc;
} HlResultSet;

extern void hl_result_set_init(FunctionCallInfo fcinfo, const char *fname,
							   HlResultSet *rs);
extern void hl_spi_into_result_set(SPIPlanPtr plan, const char *query, int nargs,
								   Oid *types, Datum *args, const char *nulls,
								   HlResultSet *rs);

#endif							/* HEADLESSLY_H */
