/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Webhook bodies and the sender: many POST requests in flight through
 *	  libcurl's multi interface, signed as Standard Webhooks specify.
 *
 * Signature: webhook-signature is "v1," + base64(HMAC-SHA256(key,
 * id "." timestamp "." body)), key being the base64-decoded part of the
 * secret after "whsec_" (https://www.standardwebhooks.com/).  HMAC and
 * base64 are PostgreSQL's own (common/hmac.h, common/base64.h).
 *
 * libcurl allocates with malloc, outside PostgreSQL's memory contexts: every
 * easy handle and header list is freed when its request finishes, and on
 * error (PG_CATCH) before the error goes on.  The multi handle stays for the
 * life of the process, so its connection cache keeps connections to a
 * receiver open from one batch to the next (HTTP keep-alive).
 *
 *-------------------------------------------------------------------------
 */
#include "delivery/webhook.h"
#include "log/log.h"

#include <curl/curl.h>
#include <time.h>

#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "datatype/timestamp.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"

int			hl_webhook_max_in_flight = 64;

#define SECRET_PREFIX "whsec_"
/* Standard Webhooks: keys of 24 to 64 bytes; we generate 32 */
#define SECRET_RANDOM_BYTES 32
#define MIN_KEY_BYTES 24
#define MAX_KEY_BYTES 64
/* room to decode a little more, to tell a key that is too long */
#define KEY_BUFFER_BYTES (MAX_KEY_BYTES + 2)
#define MAX_URL_BYTES 2048
/* a request's time limit when its caller gives none */
#define DEFAULT_TIMEOUT_MS 10000
/* how much of a failed response's body the error keeps */
#define RESPONSE_EXCERPT 200
/* longest wait between two looks at query cancel and shutdown */
#define POLL_MS 100

void
hl_webhook_init(void)
{
	DefineCustomIntVariable("headlessly.webhook_max_in_flight",
							"Most webhook requests one process has in flight at once.",
							NULL,
							&hl_webhook_max_in_flight,
							64, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Checks, for subscribe() and before each send
 * ---------------------------------------------------------------------
 */

static bool
url_scheme_allowed(const char *url)
{
	return pg_strncasecmp(url, "http://", 7) == 0 ||
		pg_strncasecmp(url, "https://", 8) == 0;
}

/*
 * subscribe() stores and the sender sends only what passes here: an http or
 * https URL that names a host, without spaces or control characters (which
 * would have to be percent-encoded), of at most 2048 bytes.
 */
void
hl_webhook_check_url(const char *url)
{
	size_t		len = strlen(url);
	size_t		host_at = pg_strncasecmp(url, "https://", 8) == 0 ? 8 : 7;

	if (!url_scheme_allowed(url))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook URL \"%s\" is not an http or https URL", url),
				 errhint("Give a URL that starts with http:// or https://; a pull consumer has no url.")));
	if (len > MAX_URL_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook URL of %zu bytes is too long", len),
				 errdetail("A webhook URL has at most %d bytes.", MAX_URL_BYTES)));
	if (len == host_at || url[host_at] == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook URL \"%s\" names no host", url)));
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) url[i];

		/* not echoed: a control character would reach the log as it is */
		if (c <= ' ' || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook URL has a space or a control character at byte %zu", i + 1),
					 errhint("Percent-encode spaces and control characters.")));
	}
}

/* RFC 9110 token characters, of which header names are made */
static bool
is_token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Headers the sender sets itself, or that would confuse the framing. */
static const char *const reserved_headers[] = {
	"webhook-id", "webhook-timestamp", "webhook-signature",
	"content-length", "transfer-encoding", "host", "connection", "expect",
	NULL
};

/*
 * Why header name: value cannot be sent, or NULL if it can.  CR and LF
 * would let a value start a header (or a request) of its own; no other
 * control character but tab may appear in a field value (RFC 9110 5.5).
 */
static const char *
header_problem(const char *name, int name_len, const JsonbValue *value)
{
	int			i;

	if (name_len == 0)
		return "its name is empty";
	for (i = 0; i < name_len; i++)
		if (!is_token_char((unsigned char) name[i]))
			return "its name has a character that header names cannot have";
	for (i = 0; reserved_headers[i] != NULL; i++)
		if (strlen(reserved_headers[i]) == name_len &&
			pg_strncasecmp(name, reserved_headers[i], name_len) == 0)
			return "the sender sets this header itself";
	if (value->type != jbvString)
		return "its value is not a JSON string";
	for (i = 0; i < value->val.string.len; i++)
	{
		unsigned char c = (unsigned char) value->val.string.val[i];

		if (c == '\r' || c == '\n' || c == '\0')
			return "its value has a line break or a NUL";
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "its value has a control character";
	}
	return NULL;
}

void
hl_webhook_check_headers(Jsonb *headers)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	if (headers == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook headers must be a JSON object"),
				 errhint("Give an object of header names and string values, e.g. {\"Authorization\": \"Bearer ...\"}.")));

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		const char *problem;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		problem = header_problem(key.val.string.val, key.val.string.len, &val);
		if (problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook header \"%.*s\" cannot be sent: %s",
							key.val.string.len, key.val.string.val, problem),
					 errhint("Header names are HTTP tokens; values are strings without line breaks or other control characters but tab; webhook-*, Host, Content-Length, Transfer-Encoding, Connection and Expect are set by the sender.")));
	}
}

void
hl_webhook_check_format(const char *format)
{
	if (strcmp(format, "event") != 0 && strcmp(format, "posthog") != 0 &&
		strcmp(format, "ga4") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown webhook format \"%s\"", format),
				 errhint("The formats are 'event', 'posthog' and 'ga4'.")));
}

/*
 * The signing key of a secret, or -1 if it is not "whsec_" and the base64
 * of 24 to 64 bytes: the one rule for stored and given secrets.
 */
static int
secret_key(const char *secret, uint8 *key)
{
	const char *b64 = secret + strlen(SECRET_PREFIX);
	int			len;
	int			keylen;

	if (strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX)) != 0)
		return -1;
	len = strlen(b64);
	if (len == 0 || pg_b64_dec_len(len) > KEY_BUFFER_BYTES)
		return -1;
	keylen = hl_b64_decode(b64, len, key, KEY_BUFFER_BYTES);
	if (keylen < MIN_KEY_BYTES || keylen > MAX_KEY_BYTES)
		return -1;
	return keylen;
}

void
hl_webhook_check_secret(const char *secret)
{
	uint8		key[KEY_BUFFER_BYTES];

	if (secret_key(secret, key) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook secret"),
				 errdetail("A secret is \"whsec_\" followed by the base64 of a key of %d to %d bytes.",
						   MIN_KEY_BYTES, MAX_KEY_BYTES),
				 errhint("Leave the secret out to have one generated.")));
	explicit_bzero(key, sizeof(key));
}

char *
hl_webhook_generate_secret(void)
{
	uint8		bytes[SECRET_RANDOM_BYTES];
	int			prefix = strlen(SECRET_PREFIX);
	int			b64len = pg_b64_enc_len(SECRET_RANDOM_BYTES);
	char	   *secret = palloc(prefix + b64len + 1);
	int			n;

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random webhook secret")));
	memcpy(secret, SECRET_PREFIX, prefix);
	n = hl_b64_encode(bytes, sizeof(bytes), secret + prefix, b64len);
	explicit_bzero(bytes, sizeof(bytes));
	if (n < 0)
		elog(ERROR, "could not encode a webhook secret");
	secret[prefix + n] = '\0';
	return secret;
}

/* ---------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------
 */

/* The value of key in an object, or NULL. */
static JsonbValue *
object_field(Jsonb *object, const char *key)
{
	if (object == NULL || !JB_ROOT_IS_OBJECT(object))
		return NULL;
	return getKeyJsonValueFromContainer(&object->root, key, strlen(key), NULL);
}

/* A non-empty string field as a JsonbValue, or NULL. */
static JsonbValue *
string_field(Jsonb *object, const char *key)
{
	JsonbValue *v = object_field(object, key);

	return (v != NULL && v->type == jbvString && v->val.string.len > 0) ? v : NULL;
}

/* An object field as a Jsonb of its own, or NULL. */
static Jsonb *
object_subfield(Jsonb *object, const char *key)
{
	JsonbValue *v = object_field(object, key);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return JsonbValueToJsonb(v);
}

static void
push_field(JsonbParseState **ps, const char *key, JsonbValue *value)
{
	if (value == NULL)
		return;
	hl_push_string(ps, WJB_KEY, key);
	pushJsonbValue(ps, WJB_VALUE, value);
}

/* The first of metadata's keys, then the event's, that is a non-empty string. */
static JsonbValue *
first_string(Jsonb *event, Jsonb *metadata, const char *const *meta_keys,
			 const char *const *event_keys)
{
	JsonbValue *v;

	for (; meta_keys != NULL && *meta_keys != NULL; meta_keys++)
		if ((v = string_field(metadata, *meta_keys)) != NULL)
			return v;
	for (; *event_keys != NULL; event_keys++)
		if ((v = string_field(event, *event_keys)) != NULL)
			return v;
	return NULL;
}

/* Every top-level member of object, pushed into an object being built. */
static void
push_members(JsonbParseState **ps, Jsonb *object, bool (*keep) (JsonbValue *key, JsonbValue *value))
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	if (object == NULL)
		return;
	it = JsonbIteratorInit(&object->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &val, true);
		if (keep != NULL && !keep(&key, &val))
			continue;
		pushJsonbValue(ps, WJB_KEY, &key);
		pushJsonbValue(ps, WJB_VALUE, &val);
	}
}

/*
 * PostHog's capture API (POST /i/v0/e/ or /capture/): the data's keys and
 * the event's context become properties; distinct_id is the user as the
 * metadata knows them, else the actor, else the entity.
 */
static Jsonb *
posthog_body(Jsonb *event, Jsonb *headers)
{
	static const char *const user_keys[] = {"userId", "anonymousId", "distinctId", NULL};
	static const char *const fallback_keys[] = {"actor", "target", "id", NULL};
	Jsonb	   *metadata = object_subfield(event, "metadata");
	JsonbParseState *ps = NULL;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_field(&ps, "api_key", string_field(headers, "api_key"));
	push_field(&ps, "event", object_field(event, "type"));
	push_field(&ps, "distinct_id", first_string(event, metadata, user_keys, fallback_keys));
	push_field(&ps, "timestamp", object_field(event, "occurred_at"));

	hl_push_string(&ps, WJB_KEY, "properties");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_members(&ps, object_subfield(event, "data"), NULL);
	push_field(&ps, "$insert_id", object_field(event, "id"));
	push_field(&ps, "$current_url", string_field(metadata, "url"));
	push_field(&ps, "$referrer", string_field(metadata, "referrer"));
	push_field(&ps, "$ip", string_field(metadata, "ip"));
	push_field(&ps, "$session_id", string_field(metadata, "sessionId"));
	push_field(&ps, "$raw_user_agent", string_field(metadata, "userAgent"));
	push_field(&ps, "tenant", object_field(event, "tenant"));
	push_field(&ps, "target", string_field(event, "target"));
	push_field(&ps, "version", object_field(event, "version"));
	push_field(&ps, "source", string_field(event, "source"));
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

/* GA4 names: a letter, then letters, digits and underscores; 40 at most. */
#define GA4_NAME_MAX 40
#define GA4_VALUE_MAX 100
#define GA4_MAX_PARAMS 25

static void
ga4_name(const char *in, int len, char *out)
{
	int			o = 0;
	int			i;

	if (len == 0 || !((in[0] >= 'a' && in[0] <= 'z') || (in[0] >= 'A' && in[0] <= 'Z')))
	{
		out[o++] = 'e';
		out[o++] = '_';
	}
	for (i = 0; i < len && o < GA4_NAME_MAX; i++)
	{
		unsigned char c = (unsigned char) in[i];

		if (c >= 'A' && c <= 'Z')
			out[o++] = c - 'A' + 'a';
		else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[o++] = c;
		else
			out[o++] = '_';
	}
	out[o] = '\0';
}

/* GA4 reserves these prefixes for its own parameters. */
static bool
ga4_reserved(const char *name)
{
	return strncmp(name, "google_", 7) == 0 || strncmp(name, "ga_", 3) == 0 ||
		strncmp(name, "firebase_", 9) == 0;
}

/* Pushes one parameter as GA4 takes them: a number or a short string. */
static void
push_ga4_param(JsonbParseState **ps, const char *name, int name_len,
			   JsonbValue *value, int *count)
{
	char		key[GA4_NAME_MAX + 3];
	JsonbValue	v;

	if (value == NULL || value->type == jbvNull || *count >= GA4_MAX_PARAMS)
		return;
	ga4_name(name, name_len, key);
	if (ga4_reserved(key))
		return;

	if (strcmp(key, "items") == 0 && value->type == jbvBinary &&
		JsonContainerIsArray(value->val.binary.data))
		v = *value;				/* ecommerce items go as they are */
	else if (value->type == jbvNumeric)
		v = *value;
	else
	{
		char	   *s;
		int			len;

		if (value->type == jbvString)
		{
			s = value->val.string.val;
			len = value->val.string.len;
		}
		else if (value->type == jbvBool)
		{
			s = value->val.boolean ? "true" : "false";
			len = strlen(s);
		}
		else
		{
			s = JsonbToCString(NULL, value->val.binary.data, value->val.binary.len);
			len = strlen(s);
		}
		/* cut at a character boundary */
		if (len > GA4_VALUE_MAX)
			len = pg_mbcliplen(s, len, GA4_VALUE_MAX);
		v.type = jbvString;
		v.val.string.val = s;
		v.val.string.len = len;
	}
	/* the parse state keeps pointers to key strings until the end */
	hl_push_string(ps, WJB_KEY, pstrdup(key));
	pushJsonbValue(ps, WJB_VALUE, &v);
	(*count)++;
}

static void
push_ga4_field(JsonbParseState **ps, const char *name, JsonbValue *value, int *count)
{
	push_ga4_param(ps, name, strlen(name), value, count);
}

/*
 * The GA4 Measurement Protocol (POST /mp/collect?measurement_id=&api_secret=):
 * one event named after the type, the data's keys as its parameters.
 */
static Jsonb *
ga4_body(Jsonb *event)
{
	static const char *const client_keys[] = {"clientId", "anonymousId", "sessionId", NULL};
	static const char *const fallback_keys[] = {"actor", "target", "id", NULL};
	Jsonb	   *metadata = object_subfield(event, "metadata");
	Jsonb	   *data = object_subfield(event, "data");
	JsonbValue *type = string_field(event, "type");
	JsonbValue *occurred = string_field(event, "occurred_at");
	JsonbParseState *ps = NULL;
	char		name[GA4_NAME_MAX + 3];
	JsonbValue	v;
	int			count = 0;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_field(&ps, "client_id", first_string(event, metadata, client_keys, fallback_keys));
	push_field(&ps, "user_id", string_field(metadata, "userId"));
	if (occurred != NULL)
	{
		char	   *s = pnstrdup(occurred->val.string.val, occurred->val.string.len);
		TimestampTz ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																 CStringGetDatum(s),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)));
		int64		unix_us = ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(unix_us);
		push_field(&ps, "timestamp_micros", &v);
	}

	hl_push_string(&ps, WJB_KEY, "events");
	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	if (type != NULL)
		ga4_name(type->val.string.val, type->val.string.len, name);
	else
		strcpy(name, "event");
	v.type = jbvString;
	v.val.string.val = name;
	v.val.string.len = strlen(name);
	push_field(&ps, "name", &v);

	hl_push_string(&ps, WJB_KEY, "params");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_ga4_field(&ps, "event_id", object_field(event, "id"), &count);
	push_ga4_field(&ps, "page_location", string_field(metadata, "url"), &count);
	push_ga4_field(&ps, "page_referrer", string_field(metadata, "referrer"), &count);
	push_ga4_field(&ps, "page_title", string_field(metadata, "title"), &count);
	push_ga4_field(&ps, "session_id", string_field(metadata, "sessionId"), &count);
	if (data != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&data->root);
		JsonbIteratorToken tok;
		JsonbValue	key;
		JsonbValue	val;

		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &val, true);
			push_ga4_param(&ps, key.val.string.val, key.val.string.len, &val, &count);
		}
	}
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);	/* params */
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);	/* the event */
	pushJsonbValue(&ps, WJB_END_ARRAY, NULL);

	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

char *
hl_webhook_body(const char *format, Jsonb *event, Jsonb *headers, size_t *len)
{
	Jsonb	   *body;
	char	   *text;

	if (strcmp(format, "event") == 0)
		body = event;
	else if (strcmp(format, "posthog") == 0)
		body = posthog_body(event, headers);
	else if (strcmp(format, "ga4") == 0)
		body = ga4_body(event);
	else
	{
		hl_webhook_check_format(format);
		pg_unreachable();
	}
	text = JsonbToCString(NULL, &body->root, VARSIZE(body));
	*len = strlen(text);
	return text;
}

/* ---------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------
 */

/* One request on its way. */
typedef struct Transfer
{
	HlWebhookRequest *req;
	CURL	   *easy;
	struct curl_slist *headers;
	char		errbuf[CURL_ERROR_SIZE];
	char		excerpt[RESPONSE_EXCERPT + 1];
	size_t		excerpt_len;
} Transfer;

static CURLM *multi = NULL;

static void
curl_setup(void)
{
	if (multi != NULL)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
}

/* Keeps the start of the response body, for the error; drops the rest. */
static size_t
keep_excerpt(char *data, size_t size, size_t nmemb, void *arg)
{
	Transfer   *t = (Transfer *) arg;
	size_t		n = size * nmemb;
	size_t		room = RESPONSE_EXCERPT - t->excerpt_len;
	size_t		i;

	for (i = 0; i < n && i < room; i++)
	{
		unsigned char c = (unsigned char) data[i];

		/* stored in a text column: only printable ASCII is surely valid */
		t->excerpt[t->excerpt_len++] = (c >= 0x20 && c < 0x7f) ? c : ' ';
	}
	t->excerpt[t->excerpt_len] = '\0';
	return n;
}

static void
transfer_free(Transfer *t)
{
	if (t->easy != NULL)
	{
		curl_multi_remove_handle(multi, t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	if (t->headers != NULL)
	{
		curl_slist_free_all(t->headers);
		t->headers = NULL;
	}
}

static bool
add_header(Transfer *t, const char *line)
{
	struct curl_slist *l = curl_slist_append(t->headers, line);

	if (l == NULL)
		return false;
	t->headers = l;
	return true;
}

/* "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)), or NULL. */
static char *
signature(const HlWebhookRequest *req, const char *timestamp)
{
	uint8		key[KEY_BUFFER_BYTES];
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	int			keylen = secret_key(req->secret, key);
	pg_hmac_ctx *ctx;
	char	   *out;
	int			n;
	bool		ok;

	if (keylen <= 0)
		return NULL;
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		return NULL;
	ok = pg_hmac_init(ctx, key, keylen) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) req->event_id, strlen(req->event_id)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) ".", 1) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) timestamp, strlen(timestamp)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) ".", 1) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) req->body, req->body_len) == 0 &&
		pg_hmac_final(ctx, mac, sizeof(mac)) == 0;
	pg_hmac_free(ctx);
	explicit_bzero(key, sizeof(key));
	if (!ok)
		return NULL;

	out = palloc(3 + pg_b64_enc_len(sizeof(mac)) + 1);
	memcpy(out, "v1,", 3);
	n = hl_b64_encode(mac, sizeof(mac), out + 3, pg_b64_enc_len(sizeof(mac)));
	if (n < 0)
		return NULL;
	out[3 + n] = '\0';
	return out;
}

/*
 * Sets up one transfer and hands it to the multi handle; false, with the
 * request's error set, when the request cannot be sent at all.
 */
static bool
transfer_start(Transfer *t, MemoryContext result_cxt)
{
	HlWebhookRequest *req = t->req;
	char		timestamp[32];
	char	   *sig = NULL;
	const char *problem = NULL;
	int			timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	CURL	   *easy;

	if (req->url == NULL || !url_scheme_allowed(req->url))
		problem = "the URL is not an http or https URL";
	else if (req->event_id == NULL)
		problem = "the request has no event id";
	else if (req->body == NULL)
		problem = "the request has no body";

	snprintf(timestamp, sizeof(timestamp), "%lld", (long long) time(NULL));
	if (problem == NULL && req->secret != NULL &&
		(sig = signature(req, timestamp)) == NULL)
		problem = "the secret is not \"whsec_\" followed by base64";

	/* headers first: a bad one means no request at all */
	if (problem == NULL && req->headers != NULL && JB_ROOT_IS_OBJECT(req->headers))
	{
		JsonbIterator *it = JsonbIteratorInit(&req->headers->root);
		JsonbIteratorToken tok;
		JsonbValue	key;
		JsonbValue	val;

		while (problem == NULL && (tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			const char *why;

			if (tok != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &val, true);
			why = header_problem(key.val.string.val, key.val.string.len, &val);
			if (why != NULL)
				problem = psprintf("header \"%.*s\" cannot be sent: %s",
								   key.val.string.len, key.val.string.val, why);
			/* "Name;" is how libcurl sends a header with an empty value */
			else if (!add_header(t, val.val.string.len == 0 ?
								 psprintf("%.*s;", key.val.string.len, key.val.string.val) :
								 psprintf("%.*s: %.*s", key.val.string.len, key.val.string.val,
										  val.val.string.len, val.val.string.val)))
				problem = "out of memory";
		}
	}
	else if (problem == NULL && req->headers != NULL)
		problem = "the headers are not a JSON object";

	if (problem == NULL &&
		!(add_header(t, "Content-Type: application/json") &&
		  add_header(t, "Expect:") &&
		  add_header(t, psprintf("webhook-id: %s", req->event_id)) &&
		  add_header(t, psprintf("webhook-timestamp: %s", timestamp)) &&
		  (sig == NULL || add_header(t, psprintf("webhook-signature: %s", sig)))))
		problem = "out of memory";

	if (problem == NULL && (easy = curl_easy_init()) == NULL)
		problem = "could not create a libcurl handle";

	if (problem != NULL)
	{
		transfer_free(t);
		req->error = MemoryContextStrdup(result_cxt, problem);
		return false;
	}

	t->easy = easy;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500		/* 7.85 */
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* a redirect is an answer, not a new destination */
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "headlessly_events");
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_excerpt);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
	{
		curl_easy_cleanup(easy);
		t->easy = NULL;
		req->error = MemoryContextStrdup(result_cxt, "could not start the request");
		return false;
	}
	return true;
}

static void
transfer_done(Transfer *t, CURLcode result, MemoryContext result_cxt)
{
	HlWebhookRequest *req = t->req;
	long		status = 0;
	curl_off_t	total_us = 0;
	curl_off_t	retry_after = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);

	req->http_status = (int) status;
	req->duration_ms = (int) (total_us / 1000);
	req->retry_after_s = retry_after > 0 ? (int) Min(retry_after, (curl_off_t) INT_MAX) : -1;

	if (result != CURLE_OK)
	{
		const char *what = result == CURLE_OPERATION_TIMEDOUT ? "timed out" : curl_easy_strerror(result);

		req->http_status = 0;
		req->error = MemoryContextStrdup(result_cxt,
										 t->errbuf[0] != '\0' ?
										 psprintf("%s: %s", what, t->errbuf) : what);
	}
	else if (!hl_webhook_succeeded(req))
	{
		while (t->excerpt_len > 0 && t->excerpt[t->excerpt_len - 1] == ' ')
			t->excerpt[--t->excerpt_len] = '\0';
		req->error = MemoryContextStrdup(result_cxt,
										 t->excerpt_len > 0 ?
										 psprintf("HTTP %ld: %s", status, t->excerpt) :
										 psprintf("HTTP %ld", status));
	}
	transfer_free(t);
}

/*
 * PostgreSQL's HMAC (with OpenSSL) registers its context with the current
 * resource owner; the worker sends between transactions, where there is
 * none, so the sender brings its own for the call.
 */
static void
release_owner(ResourceOwner owner, bool commit)
{
	CurrentResourceOwner = NULL;
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, commit, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, commit, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, commit, true);
	ResourceOwnerDelete(owner);
}

/*
 * A request has finished (sent and answered, or not sent at all): the one
 * waiting for it may go now if it succeeded; otherwise it and those behind
 * it are not sent.
 */
static void
release_waiter(HlWebhookRequest *reqs, int i, const int *waiter, int *ready, int *nready)
{
	int			w = waiter[i];

	if (w < 0)
		return;
	if (hl_webhook_succeeded(&reqs[i]))
	{
		ready[(*nready)++] = w;
		return;
	}
	for (; w >= 0; w = waiter[w])
	{
		reqs[w].not_sent = true;
		reqs[w].error = NULL;
	}
}

void
hl_webhook_send_all(HlWebhookRequest *reqs, int n)
{
	ResourceOwner own_owner = NULL;
	MemoryContext result_cxt = CurrentMemoryContext;
	MemoryContext work_cxt;
	MemoryContext old;
	Transfer   *transfers;
	int		   *waiter;
	int		   *ready;
	int			nready = 0;
	/* read in PG_CATCH after a longjmp: kept in memory, not a register */
	volatile int next = 0;
	int			active = 0;
	int			i;

	if (n <= 0)
		return;
	curl_setup();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) hl_webhook_max_in_flight);

	work_cxt = AllocSetContextCreate(CurrentMemoryContext, "headlessly webhooks",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work_cxt);
	transfers = palloc0(sizeof(Transfer) * n);
	waiter = palloc(sizeof(int) * n);
	/* each request is ready once at most: n entries are enough */
	ready = palloc(sizeof(int) * n);

	for (i = 0; i < n; i++)
		waiter[i] = -1;
	for (i = 0; i < n; i++)
	{
		reqs[i].http_status = 0;
		reqs[i].error = NULL;
		reqs[i].duration_ms = 0;
		reqs[i].retry_after_s = -1;
		reqs[i].not_sent = false;
		transfers[i].req = &reqs[i];
		if (reqs[i].after == NULL)
			ready[nready++] = i;
		else
		{
			int			a = (int) (reqs[i].after - reqs);

			if (a < 0 || a >= n || a == i || waiter[a] >= 0)
				elog(ERROR, "webhook request %d waits for request %d, which cannot be waited for", i, a);
			waiter[a] = i;
		}
	}

	if (CurrentResourceOwner == NULL)
		CurrentResourceOwner = own_owner = ResourceOwnerCreate(NULL, "headlessly webhooks");

	PG_TRY();
	{
		while (next < nready || active > 0)
		{
			int			running;
			int			left;
			CURLMsg    *msg;
			CURLMcode	mc;

			while (next < nready && active < hl_webhook_max_in_flight)
			{
				int			r = ready[next++];

				if (transfer_start(&transfers[r], result_cxt))
					active++;
				else
					release_waiter(reqs, r, waiter, ready, &nready);
			}

			mc = curl_multi_perform(multi, &running);
			if (mc != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_SYSTEM_ERROR),
						 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));
			while ((msg = curl_multi_info_read(multi, &left)) != NULL)
			{
				Transfer   *t;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
				transfer_done(t, msg->data.result, result_cxt);
				active--;
				release_waiter(reqs, (int) (t->req - reqs), waiter, ready, &nready);
			}

			/* query cancel, statement_timeout, shutdown */
			CHECK_FOR_INTERRUPTS();
			/* a request that became ready starts without waiting */
			if (active > 0 && !(next < nready && active < hl_webhook_max_in_flight) &&
				(mc = curl_multi_poll(multi, NULL, 0, POLL_MS, NULL)) != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_SYSTEM_ERROR),
						 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));
		}
	}
	PG_CATCH();
	{
		for (i = 0; i < n; i++)
			transfer_free(&transfers[i]);
		if (own_owner != NULL)
			release_owner(own_owner, false);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (own_owner != NULL)
		release_owner(own_owner, true);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work_cxt);
}

/* ---------------------------------------------------------------------
 * headlessly.webhook_send(url, events, secret, headers, format)
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(hl_webhook_send_sql);

/*
 * Sends events to a URL as a webhook subscription would, and waits for the
 * answers: for checking a receiver before subscribing it.  One row per
 * event, in order.  Internal: it makes the server open connections.
 */
Datum
hl_webhook_send_sql(PG_FUNCTION_ARGS)
{
	HlResultSet rs;
	char	   *url;
	Jsonb	   *events;
	char	   *secret = NULL;
	Jsonb	   *headers = NULL;
	char	   *format = "event";
	HlWebhookRequest *reqs;
	const char *timeout_s;
	int			timeout_ms;
	int			n;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("url and events must not be NULL")));
	url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	events = PG_GETARG_JSONB_P(1);
	if (!PG_ARGISNULL(2))
		secret = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
		headers = PG_GETARG_JSONB_P(3);
	if (!PG_ARGISNULL(4))
		format = text_to_cstring(PG_GETARG_TEXT_PP(4));

	hl_webhook_check_url(url);
	hl_webhook_check_headers(headers);
	hl_webhook_check_format(format);
	if (secret != NULL)
		hl_webhook_check_secret(secret);
	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array of event objects")));

	hl_result_set_init(fcinfo, "webhook_send", &rs);

	/* headlessly.http_timeout, as deliveries use it (delivery/settings.c) */
	timeout_s = GetConfigOption("headlessly.http_timeout", true, false);
	if (timeout_s == NULL || !parse_int(timeout_s, &timeout_ms, GUC_UNIT_MS, NULL))
		timeout_ms = 0;

	n = JB_ROOT_COUNT(events);
	reqs = palloc0(sizeof(HlWebhookRequest) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		JsonbValue *ev = getIthJsonbValueFromContainer(&events->root, i);
		Jsonb	   *event;
		JsonbValue *id;

		if (ev == NULL || ev->type != jbvBinary || !JsonContainerIsObject(ev->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("element %d of events is not a JSON object", i)));
		event = JsonbValueToJsonb(ev);
		id = string_field(event, "id");
		reqs[i].url = url;
		reqs[i].event_id = id != NULL ? pnstrdup(id->val.string.val, id->val.string.len) :
			text_to_cstring(hl_generate_event_id());
		reqs[i].body = hl_webhook_body(format, event, headers, &reqs[i].body_len);
		reqs[i].secret = secret;
		reqs[i].headers = headers;
		reqs[i].timeout_ms = timeout_ms;
	}

	hl_webhook_send_all(reqs, n);

	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(reqs[i].http_status);
		nulls[0] = reqs[i].http_status == 0;
		values[1] = reqs[i].error != NULL ? CStringGetTextDatum(reqs[i].error) : (Datum) 0;
		nulls[1] = reqs[i].error == NULL;
		values[2] = Int32GetDatum(reqs[i].duration_ms);
		values[3] = Int32GetDatum(reqs[i].retry_after_s);
		nulls[3] = reqs[i].retry_after_s < 0;
		tuplestore_putvalues(rs.store, rs.tupdesc, values, nulls);
	}
	return (Datum) 0;
}
