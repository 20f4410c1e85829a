/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Webhooks: the bodies a subscription's format asks for, and sending
 *	  many signed POST requests at once (libcurl's multi interface).
 *
 * The sender opens no transaction and reads no table: the delivery round
 * (delivery.c) claims events and records results in short transactions of
 * its own, and calls hl_webhook_send_all() between them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HL_WEBHOOK_H
#define HL_WEBHOOK_H

#include "common/common.h"

/* One POST; the caller fills the first part, the sender the second. */
typedef struct HlWebhookRequest
{
	const char *url;			/* http:// or https:// */
	const char *event_id;		/* webhook-id */
	const char *body;			/* hl_webhook_body() */
	size_t		body_len;
	const char *secret;			/* "whsec_" + base64 of a 24 to 64-byte key; NULL: unsigned */
	Jsonb	   *headers;		/* extra headers, an object of strings; or NULL */
	int			timeout_ms;		/* <= 0: 10 s */
	/*
	 * Sent only once this one (of the same call) has succeeded, NULL: at
	 * once.  One target's events go one after another this way, each
	 * request waiting for the answer to the one before; a request waits
	 * for at most one other, and at most one waits for it.
	 */
	struct HlWebhookRequest *after;

	bool		not_sent;		/* after did not succeed: this one was not sent */
	int			http_status;	/* 0 when no response came */
	char	   *error;			/* NULL on 2xx; else why, in the caller's context */
	int			duration_ms;
	int			retry_after_s;	/* Retry-After of the response, else -1 */
} HlWebhookRequest;

/* settings (webhook.c) */
extern int	hl_webhook_max_in_flight;

extern void hl_webhook_init(void);

/*
 * Sends all requests, at most headlessly.webhook_max_in_flight at once, each
 * after the one it waits for (after) has succeeded.
 */
extern void hl_webhook_send_all(HlWebhookRequest *reqs, int n);

/* A request succeeded: 2xx. */
static inline bool
hl_webhook_succeeded(const HlWebhookRequest *req)
{
	return req->http_status >= 200 && req->http_status < 300;
}

/*
 * The body of one event in format 'event', 'posthog' or 'ga4'; event is the
 * event as JSON (its columns, plus state for entity events).
 */
extern char *hl_webhook_body(const char *format, Jsonb *event, Jsonb *headers,
							 size_t *len);

/*
 * The one check of what subscribe() stores and webhook_send() sends
 * (22023 otherwise); the sender still refuses a request whose secret or
 * headers break them.
 */
extern void hl_webhook_check_url(const char *url);
extern void hl_webhook_check_headers(Jsonb *headers);
extern void hl_webhook_check_format(const char *format);
extern void hl_webhook_check_secret(const char *secret);

/* A new secret: "whsec_" + base64 of 32 random bytes (palloc'd). */
extern char *hl_webhook_generate_secret(void);

#endif							/* HL_WEBHOOK_H */
