/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of delivery: retry backoff, webhook and handler timeouts,
 *	  retention.
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/delivery.h"

#include "utils/guc.h"

int			hl_retry_base_delay = 1000;
int			hl_retry_max_delay = 3600 * 1000;
int			hl_http_timeout = 10 * 1000;
int			hl_hook_timeout = 30 * 1000;
int			hl_delivery_retention = 7 * 24 * 3600;

void
hl_delivery_init(void)
{
	DefineCustomIntVariable("headlessly.retry_base_delay",
							"First retry delay of a failed delivery.",
							"The n-th retry waits retry_base_delay * 2^(n-1), up to retry_max_delay, +-20 %.",
							&hl_retry_base_delay,
							1000, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.retry_max_delay",
							"Longest retry delay of a failed delivery.",
							NULL,
							&hl_retry_max_delay,
							3600 * 1000, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.http_timeout",
							"Timeout of one webhook request.",
							NULL,
							&hl_http_timeout,
							10 * 1000, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.hook_timeout",
							"Longest run of one after_commit hook handler.",
							"A handler still running then fails its attempt, which is retried like any failure. 0 disables the limit.",
							&hl_hook_timeout,
							30 * 1000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("headlessly.delivery_retention",
							"How long delivered rows stay in headlessly.deliveries.",
							NULL,
							&hl_delivery_retention,
							7 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}
