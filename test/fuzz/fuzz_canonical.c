/*
 * libFuzzer harness: the canonical form (src/tamper/canonical.c, built as
 * frontend code).
 *
 * 1. hl_canonical_parse on any bytes: when it accepts, writing the parsed
 *    fields again gives back exactly the input (the encoding is one-to-one).
 * 2. The writer against a slow reference written here: the input is cut
 *    into 16 fields; integers and timestamps are taken from 8 of its bytes,
 *    the reference formats them with its own calendar (whole 400-year cycles,
 *    then year by year and month by month), and both encodings must be equal
 *    and parse back.
 * 3. The text forms read back: hl_parse_timestamp / hl_parse_int64 accept
 *    only what the formatters write, also one edit away from it.
 */
#include "tamper/tamper.h"

#include <stdint.h>

static void
ref_put(StringInfo buf, const char *s, size_t n)
{
	appendStringInfoChar(buf, 1);
	appendStringInfoChar(buf, (char) (n >> 24));
	appendStringInfoChar(buf, (char) (n >> 16));
	appendStringInfoChar(buf, (char) (n >> 8));
	appendStringInfoChar(buf, (char) n);
	appendBinaryStringInfo(buf, s, (int) n);
}

static int
ref_days_in_month(int64 y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool		leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

static void
ref_timestamp(int64 ts, char *out)
{
	int64		days,
				usecs,
				year = 2000;
	int			month = 1;

	if (ts == INT64_MIN)
	{
		strcpy(out, "-infinity");
		return;
	}
	if (ts == INT64_MAX)
	{
		strcpy(out, "infinity");
		return;
	}
	days = ts / INT64CONST(86400000000);
	usecs = ts % INT64CONST(86400000000);
	if (usecs < 0)
	{
		usecs += INT64CONST(86400000000);
		days--;
	}
	/* whole 400-year cycles of 146097 days, then year by year from 2000 */
	year += 400 * (days / 146097);
	days %= 146097;
	if (days < 0)
	{
		days += 146097;
		year -= 400;
	}
	for (;;)
	{
		int			len = ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0) ? 366 : 365;

		if (days < len)
			break;
		days -= len;
		year++;
	}
	while (days >= ref_days_in_month(year, month))
		days -= ref_days_in_month(year, month++);
	sprintf(out, "%s%04lld-%02d-%02lldT%02lld:%02lld:%02lld.%06lldZ",
			year < 0 ? "-" : "", (long long) (year < 0 ? -year : year), month,
			(long long) days + 1, (long long) (usecs / INT64CONST(3600000000)),
			(long long) (usecs / 60000000 % 60), (long long) (usecs / 1000000 % 60),
			(long long) (usecs % 1000000));
}

static int64
take_int64(const uint8_t *p, size_t n)
{
	uint64		v = 0;

	for (size_t i = 0; i < 8; i++)
		v = v << 8 | (i < n ? p[i] : 0);
	return (int64) v;
}

static void
check_parse_reencode(const uint8_t *data, size_t size)
{
	char	   *copy = malloc(size ? size : 1);
	HlCanonicalEvent ev;
	const char *problem;
	StringInfoData again;

	memcpy(copy, data, size);
	if (hl_canonical_parse(copy, size, &ev, &problem))
	{
		initStringInfo(&again);
		hl_canonical_begin(&again);
		for (int f = 0; f < HL_EVENT_NFIELDS; f++)
		{
			if (ev.fields[f].isnull)
				hl_canonical_put_null(&again);
			else
				hl_canonical_put_bytes(&again, ev.fields[f].data, ev.fields[f].len);
		}
		if ((size_t) again.len != size || memcmp(again.data, data, size) != 0)
			abort();
		pfree(again.data);
	}
	else if (problem == NULL)
		abort();
	free(copy);
}

static void
check_writer(const uint8_t *data, size_t size)
{
	StringInfoData fast;
	StringInfoData slow;
	size_t		pos = 0;
	HlCanonicalEvent ev;
	const char *problem;
	bool		ascii_texts = true;

	initStringInfo(&fast);
	initStringInfo(&slow);
	hl_canonical_begin(&fast);
	appendBinaryStringInfo(&slow, "hl-event-v1\n", 12);
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		/* a field: one length byte (0xff: NULL), then that many bytes */
		uint8_t		n = pos < size ? data[pos++] : 0;
		const uint8_t *p = data + pos;
		size_t		avail = size - pos;

		if (n == 0xff && !hl_event_fields[f].not_null)
		{
			hl_canonical_put_null(&fast);
			appendStringInfoChar(&slow, 0);
			continue;
		}
		if (n > avail)
			n = (uint8_t) avail;
		pos += n;
		switch (hl_event_fields[f].kind)
		{
			case HL_KIND_INT8:
				{
					int64		v = take_int64(p, n);
					char		text[32];

					hl_canonical_put_int64(&fast, v);
					snprintf(text, sizeof(text), "%lld", (long long) v);
					ref_put(&slow, text, strlen(text));
				}
				break;
			case HL_KIND_TIMESTAMPTZ:
				{
					int64		v = take_int64(p, n);
					char		text[64];

					hl_canonical_put_timestamp(&fast, v);
					ref_timestamp(v, text);
					ref_put(&slow, text, strlen(text));
				}
				break;
			case HL_KIND_TEXT:
				hl_canonical_put_bytes(&fast, (const char *) p, n);
				ref_put(&slow, (const char *) p, n);
				for (size_t i = 0; i < n; i++)
					if (p[i] == 0 || p[i] >= 0x80)
						ascii_texts = false;
				break;
			case HL_KIND_JSONB:
				{
					/* the bytes if they are jsonb's text, else an empty object */
					const char *json = (const char *) p;
					size_t		len = n;
					const char *why;

					if (!hl_json_text_is_canonical(json, len, &why))
					{
						json = "{}";
						len = 2;
					}
					hl_canonical_put_bytes(&fast, json, len);
					ref_put(&slow, json, len);
				}
				break;
		}
	}
	if (fast.len != slow.len || memcmp(fast.data, slow.data, fast.len) != 0)
		abort();
	/* what the writer writes from valid values always parses */
	if (ascii_texts && !hl_canonical_parse(fast.data, fast.len, &ev, &problem))
		abort();
	pfree(fast.data);
	pfree(slow.data);
}

static void
check_text_forms(const uint8_t *data, size_t size)
{
	char	   *copy = malloc(size ? size : 1);
	char		text[HL_TIMESTAMP_TEXT_MAX];
	int64		v;
	int64		back;
	int			len;

	memcpy(copy, data, size);
	if (hl_parse_timestamp(copy, size, &v))
	{
		len = hl_format_timestamp(v, text);
		if ((size_t) len != size || memcmp(text, data, size) != 0)
			abort();
	}
	if (hl_parse_int64(copy, size, &v))
	{
		len = hl_format_int64(v, text);
		if ((size_t) len != size || memcmp(text, data, size) != 0)
			abort();
	}
	v = take_int64(data, size);
	len = hl_format_timestamp(v, text);
	if (!hl_parse_timestamp(text, len, &back) || back != v)
		abort();
	free(copy);
}

/*
 * Texts one edit away from a canonical one, where a lax parser would slip:
 * 8 bytes of value, then an edit (insert, delete or replace a byte at a
 * position).  The parser must refuse the edited text or read it as a value
 * whose canonical text it is.
 */
static void
check_near_misses(const uint8_t *data, size_t size)
{
	char		text[HL_TIMESTAMP_TEXT_MAX + 2];
	char		out[HL_TIMESTAMP_TEXT_MAX];
	int64		v = take_int64(data, size);
	uint8_t		op = size > 8 ? data[8] % 3 : 0;
	uint8_t		c = size > 10 ? data[10] : '0';
	int			len;
	int			pos;
	int64		back;
	bool		timestamp = size > 11 && (data[11] & 1);

	len = timestamp ? hl_format_timestamp(v, text) : hl_format_int64(v, text);
	pos = size > 9 ? data[9] % (len + 1) : 0;
	if (op == 0)
	{
		memmove(text + pos + 1, text + pos, len - pos);
		text[pos] = (char) c;
		len++;
	}
	else if (op == 1 && pos < len)
	{
		memmove(text + pos, text + pos + 1, len - pos - 1);
		len--;
	}
	else if (pos < len)
		text[pos] = (char) c;

	if (timestamp ? hl_parse_timestamp(text, len, &back) : hl_parse_int64(text, len, &back))
	{
		int			olen = timestamp ? hl_format_timestamp(back, out) : hl_format_int64(back, out);

		if (olen != len || memcmp(out, text, len) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *problem;
	char	   *copy = malloc(size ? size : 1);

	check_parse_reencode(data, size);
	check_writer(data, size);
	check_text_forms(data, size);
	check_near_misses(data, size);
	memcpy(copy, data, size);
	(void) hl_json_text_is_canonical(copy, size, &problem);
	free(copy);
	return 0;
}
