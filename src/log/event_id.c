/*-------------------------------------------------------------------------
 *
 * event_id.c
 *	  Event ids: "evt_" followed by 18 URL-safe characters.
 *
 * The first 8 characters encode the time in milliseconds and the last 10 are
 * random, so ids sort roughly by creation time.  That keeps inserts into the
 * unique index on id at the right edge of the btree instead of scattering
 * them over every leaf page.  The random part comes from the backend's
 * PRNG, seeded from a strong source when the backend starts: ids need to be
 * unique, not secret, and pg_strong_random() cost 6% of an append.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "fmgr.h"
#include "port.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include <sys/time.h>
#include "utils/builtins.h"

#define EVENT_ID_PREFIX "evt_"
#define EVENT_ID_PREFIX_LEN 4
#define EVENT_ID_TIME_CHARS 8
#define EVENT_ID_RANDOM_CHARS 10
#define EVENT_ID_MAX_SUFFIX 64

static const char base62[] =
"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void
encode_base62(uint64 value, char *out, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		out[i] = base62[value % 62];
		value /= 62;
	}
}

text *
hl_generate_event_id(void)
{
	char		buf[EVENT_ID_PREFIX_LEN + EVENT_ID_TIME_CHARS + EVENT_ID_RANDOM_CHARS];
	uint64		random_bits;
	uint64		millis;
	struct timeval tv;

#if PG_VERSION_NUM >= 150000
	random_bits = pg_prng_uint64(&pg_global_prng_state);
#else
	if (!pg_strong_random(&random_bits, sizeof(random_bits)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random event id")));
#endif

	gettimeofday(&tv, NULL);
	millis = (uint64) tv.tv_sec * 1000 + tv.tv_usec / 1000;

	memcpy(buf, EVENT_ID_PREFIX, EVENT_ID_PREFIX_LEN);
	encode_base62(millis, buf + EVENT_ID_PREFIX_LEN, EVENT_ID_TIME_CHARS);
	encode_base62(random_bits, buf + EVENT_ID_PREFIX_LEN + EVENT_ID_TIME_CHARS,
				  EVENT_ID_RANDOM_CHARS);

	return cstring_to_text_with_len(buf, sizeof(buf));
}

/*
 * Ids given by the caller (imports) must look like ours: evt_ and up to 64
 * URL-safe characters.
 */
bool
hl_event_id_is_valid(const char *id, int len)
{
	if (len <= EVENT_ID_PREFIX_LEN ||
		len > EVENT_ID_PREFIX_LEN + EVENT_ID_MAX_SUFFIX ||
		memcmp(id, EVENT_ID_PREFIX, EVENT_ID_PREFIX_LEN) != 0)
		return false;

	for (int i = EVENT_ID_PREFIX_LEN; i < len; i++)
	{
		char		c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
			  (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(headlessly_new_event_id);

Datum
headlessly_new_event_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(hl_generate_event_id());
}
