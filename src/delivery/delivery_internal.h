/*-------------------------------------------------------------------------
 *
 * delivery_internal.h
 *	  Shared by the files of delivery/ only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_DELIVERY_INTERNAL_H
#define HL_DELIVERY_INTERNAL_H

#include "delivery/delivery.h"

/*
 * Events of transactions below this have all ended (delivery_horizon(),
 * pull.c): the xmin of the statement's snapshot, leaving out the calling
 * transaction itself, which would otherwise hold back its own reads.
 */
#define HL_HORIZON HL_SCHEMA ".delivery_horizon()"

/* whether the horizon also stops at the caller's own transaction (pull.c) */
extern bool hl_horizon_stops_at_own_xact;

typedef enum HlSubscriptionKind
{
	HL_SUB_PULL,
	HL_SUB_WEBHOOK,
	HL_SUB_HOOK
} HlSubscriptionKind;

/* One row of headlessly.subscriptions, as the functions need it. */
typedef struct HlSubscription
{
	char	   *name;
	HlSubscriptionKind kind;
	char	   *pattern;
	text	   *target;			/* NULL: every target */
	text	   *tenant;			/* NULL: every tenant */
	char	   *url;
	Jsonb	   *headers;
	char	   *secret;
	char	   *format;
	bool		notify;
	int			max_attempts;
	char	   *state;
	int64		hook_id;		/* 0 unless kind is hook */
	Oid			owner;
	Datum		start_xact;		/* xid8 */
	int64		start_seq;
} HlSubscription;

/* subscription.c */
extern bool hl_subscription_fetch(const char *name, bool for_update, HlSubscription *sub);
extern void hl_subscription_get(const char *name, bool for_update, HlSubscription *sub);
extern void hl_subscription_check_access(const HlSubscription *sub);
extern bool hl_subscription_owner_can_read(Oid owner);
extern void hl_subscription_check_owner_reads(const HlSubscription *sub);
extern bool hl_subscription_owner_may_send(Oid owner);

/* running a saved plan as the log's owner, or as a subscription's owner */
extern int	hl_run_as_log_owner(SPIPlanPtr plan, Datum *args, const char *nulls,
								bool read_only, long count);
extern void hl_become_role(Oid role, HlSavedUser *saved);
extern int	hl_ordered_scan_begin(void);
extern void hl_ordered_scan_end(int nestlevel);

/* One member's position (position.c). */
typedef struct HlPosition
{
	Datum		xact;			/* xid8; NULL (restored) in a position from a dump */
	bool		restored;
	int64		seq;
	int64		safe_seq;		/* every event through it has been passed */
	int			members;		/* the size of the member's group */
} HlPosition;

/* position.c */
extern int	hl_run_writing_positions(SPIPlanPtr plan, Datum *args, const char *nulls);
extern void hl_own_xact(Datum *xact, char *null);
extern void hl_position_of(const HlSubscription *sub, int member, int members,
						   HlPosition *pos);
extern bool hl_position_resume(const HlPosition *pos, Datum *xact, char *xact_null,
							   int64 *seq);
extern void hl_position_move(const HlSubscription *sub, int member, Datum xact, int64 seq);

#define HL_KIND_NAME(k) ((k) == HL_SUB_PULL ? "pull" : (k) == HL_SUB_WEBHOOK ? "webhook" : "hook")

#endif							/* HL_DELIVERY_INTERNAL_H */
