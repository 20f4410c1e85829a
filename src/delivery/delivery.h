/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  Delivery after commit: subscriptions, pull consumers, after_commit
 *	  hooks, webhooks and NOTIFY.
 *
 * The background worker (delivery-worker) calls hl_delivery_round() for
 * its database and asks hl_delivery_wanted() whether a commit should wake
 * it; the log's trigger calls hl_notify_event() for every appended row.
 * delivery/delivery_internal.h is for this folder alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_DELIVERY_H
#define HL_DELIVERY_H

#include "log/log.h"

/* settings (settings.c) */
extern int	hl_retry_base_delay;	/* milliseconds */
extern int	hl_retry_max_delay;		/* milliseconds */
extern int	hl_http_timeout;		/* milliseconds */
extern int	hl_hook_timeout;		/* milliseconds; 0: none */
extern int	hl_delivery_retention;	/* seconds */

extern void hl_delivery_init(void);

/*
 * One delivery round for the current database: claim due work, run the
 * after_commit hook handlers (each in its own transaction as the role that
 * registered it when in_worker; in subtransactions of the caller's
 * transaction otherwise), send webhooks, record the results.  Returns the
 * deliveries attempted.
 */
extern int	hl_delivery_round(int max_events, bool in_worker);

/* hook(pattern, 'after_commit', handler): its subscription (subscription.c) */
extern void hl_create_hook_subscription(int64 hook_id, const char *pattern, int max_attempts);

/* Whether this database has any hook or webhook subscription (cached). */
extern bool hl_delivery_wanted(void);

/*
 * The log's trigger, for each appended row: NOTIFY the subscriptions that
 * want it, and note a wake of the worker if one it delivers matches (notify.c).
 */
extern void hl_notify_event(TupleDesc tupdesc, Datum *values, bool *nulls,
							int type_att, int tenant_att, int target_att);

#endif							/* HL_DELIVERY_H */
