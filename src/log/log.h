/*-------------------------------------------------------------------------
 *
 * log.h
 *	  The log and its guards: what an event may look like, appending it to
 *	  its stream, idempotency keys, and the append-only guard.
 *
 * Everything that writes to headlessly.events goes through the log's
 * BEFORE INSERT trigger (log_trigger.c); the rest of the extension reads
 * the log and its stream heads, and appends through hl_append_event().
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_LOG_H
#define HL_LOG_H

#include "common/common.h"

#include "access/transam.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

/* settings (settings.c) */
extern char *hl_tenant_setting;
extern int	hl_max_event_bytes;

extern void hl_log_init(void);
extern const char *hl_current_tenant(void);
extern text *hl_tenant_arg(FunctionCallInfo fcinfo, int argno);

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
extern void hl_check_not_blank(const char *what, const text *name, const char *hint);
extern void hl_check_source_type(const char *value, int len);
extern void hl_check_json_object(const char *what, Jsonb *value);

/*
 * Type patterns, as hooks, events_list and subscriptions take them: an
 * exact type, "Noun.*", "*.Verbed" or "*" (event_type.c).
 */
typedef enum HlPatternKind
{
	HL_PATTERN_ALL,				/* * */
	HL_PATTERN_EXACT,			/* Contact.Created, page_view */
	HL_PATTERN_PREFIX,			/* Contact.* : the type starts with "Contact." */
	HL_PATTERN_SUFFIX			/* *.Created : the type ends with ".Created" */
} HlPatternKind;

typedef struct HlTypePattern
{
	HlPatternKind kind;
	const char *text;			/* what to compare, per kind (points into the pattern) */
	int			len;
} HlTypePattern;

extern void hl_parse_type_pattern(const char *pattern, int len, HlTypePattern *result);
extern bool hl_type_pattern_matches(const HlTypePattern *pattern, const char *type, int len);

/* stream heads (stream.c) */
#define HL_HEAD_HASH_LEN 32		/* HL_HASH_LEN of tamper/tamper.h */

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
	bool		has_hash;		/* false in a schema without streams.hash */
	uint8		hash[HL_HEAD_HASH_LEN];	/* the last event's hash (tamper evidence) */
	FullTransactionId xact_id;	/* the last event's xact_id; invalid if unknown
								 * (0.1 schema or event, NULL in the row) */
} HlStreamHead;

extern void hl_stream_lock(text *tenant, text *target, bool create, HlStreamHead *head);
extern bool hl_stream_store(text *tenant, text *target, const HlStreamHead *head);

/*
 * A head changed again after this transaction wrote it is kept in memory
 * until commit (stream.c): readers that use SQL on headlessly.streams write
 * such heads first, others read them here.
 */
extern bool hl_streams_flush(void);
extern bool hl_stream_pending_head(text *tenant, text *target, HlStreamHead *head);

/* the columns an append supplies, in this order (append.c, batch.c) */
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

/* the same columns, for SQL */
#define HL_APPEND_COLUMNS \
	"id, tenant, type, target, version, actor, source, source_type," \
	" external_event_id, occurred_at, data, metadata, raw_payload"

extern const Oid hl_append_column_types[A_NCOLUMNS];
extern int64 hl_version_for_expected(int64 expected);
extern Datum hl_append_event(Datum *values, char *nulls, bool want_row);
extern Datum hl_stored_duplicate(Datum *values, char *nulls);

/* idempotency keys (idempotency.c) */
extern bool hl_claim_idempotency_key(Relation log, Oid key_index, text *tenant,
									 text *source, text *key, int trigger_level);
extern void hl_release_key_locks(int trigger_level);
extern Datum hl_stored_event_by_key(text *tenant, text *source, text *key);

/* expected_version on its way to the trigger (expectation.c) */
extern void hl_expect_version(text *id, int64 version);
extern bool hl_take_expected_version(text *id, int64 *version);
extern bool hl_forget_expected_version(text *id);
extern void hl_expectation_not_checked(text *id);

/* the log's trigger (log_trigger.c) */
extern int	hl_trigger_nesting(void);
extern text *hl_current_event_id(void);
extern bool hl_event_is_restored(int64 seq);

/* the log's relation, and acting as its owner (log_relation.c) */
typedef struct HlSavedUser
{
	Oid			userid;
	int			sec_context;
} HlSavedUser;

extern Oid	hl_log_relid(void);
extern void hl_become_log_owner(HlSavedUser *saved);
extern void hl_restore_user(const HlSavedUser *saved);

/*
 * A backend's cache of rows of one of the extension's tables, emptied by
 * the relcache invalidation a change of the table sends (table_cache.c).
 * Declare one with HL_TABLE_CACHE("relname"); reload it when !valid.
 */
typedef struct HlTableCache
{
	const char *relname;		/* a table in the extension's schema */
	bool		valid;			/* false: read it again before use */
	Oid			relid;			/* as of the last load; InvalidOid if missing */
	bool		watched;		/* linked into the callback's list */
	struct HlTableCache *next;
} HlTableCache;

#define HL_TABLE_CACHE(relname) {(relname), false, InvalidOid, false, NULL}

extern bool hl_table_cache_begin_load(HlTableCache *cache);
extern void hl_table_cache_read(SPIPlanPtr *plan, const char *query);

/*
 * append-only guards (guard.c, guard_ddl.c); the extension's own trigger
 * changes (hooks/after_trigger.c) bypass ProcessUtility and so the guard
 */
extern void hl_guard_install_hooks(void);

#endif							/* HL_LOG_H */
