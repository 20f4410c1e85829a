/*-------------------------------------------------------------------------
 *
 * canonical.c
 *	  The canonical form of an event, version 1: the exact bytes its hash
 *	  covers.
 *
 *	  "hl-event-v1\n", then the 16 covered columns in table order, each as
 *	  0x00 (NULL) or 0x01, a 4-byte big-endian length and the UTF-8 bytes of
 *	  its text form:
 *		bigint		decimal, "-" for negatives, no leading zeros
 *		text		the text itself
 *		timestamptz	YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC, always six fraction
 *					digits; "infinity" / "-infinity"
 *		jsonb		what jsonb's output function prints (data::text)
 *
 *	  The form depends on nothing a session or the server can set (DateStyle,
 *	  TimeZone, extra_float_digits, lc_*, the database encoding) and is built
 *	  without going through the types' output functions, except numeric_out
 *	  for numbers inside jsonb.  The length prefixes make the encoding
 *	  unambiguous: no two different rows have the same canonical form.
 *
 *	  The pure part (everything above the backend section) also compiles in
 *	  frontend programs, for the test driver and the fuzz harnesses;
 *	  hl_canonical_parse() checks a byte string against every rule, so that
 *	  parse(encode(row)) accepts and encode(parse(bytes)) == bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include "common/int.h"
#include "mb/pg_wchar.h"

#ifndef FRONTEND
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#endif

const HlFieldInfo hl_event_fields[HL_EVENT_NFIELDS] = {
	[HL_FIELD_SEQ] = {"seq", HL_KIND_INT8, true},
	[HL_FIELD_ID] = {"id", HL_KIND_TEXT, true},
	[HL_FIELD_TENANT] = {"tenant", HL_KIND_TEXT, true},
	[HL_FIELD_TYPE] = {"type", HL_KIND_TEXT, true},
	[HL_FIELD_TARGET] = {"target", HL_KIND_TEXT, false},
	[HL_FIELD_VERSION] = {"version", HL_KIND_INT8, false},
	[HL_FIELD_ACTOR] = {"actor", HL_KIND_TEXT, false},
	[HL_FIELD_SOURCE] = {"source", HL_KIND_TEXT, false},
	[HL_FIELD_SOURCE_TYPE] = {"source_type", HL_KIND_TEXT, false},
	[HL_FIELD_EXTERNAL_EVENT_ID] = {"external_event_id", HL_KIND_TEXT, false},
	[HL_FIELD_OCCURRED_AT] = {"occurred_at", HL_KIND_TIMESTAMPTZ, true},
	[HL_FIELD_RECORDED_AT] = {"recorded_at", HL_KIND_TIMESTAMPTZ, true},
	[HL_FIELD_DATA] = {"data", HL_KIND_JSONB, true},
	[HL_FIELD_BEFORE] = {"before", HL_KIND_JSONB, false},
	[HL_FIELD_METADATA] = {"metadata", HL_KIND_JSONB, false},
	[HL_FIELD_RAW_PAYLOAD] = {"raw_payload", HL_KIND_TEXT, false},
};

#define TAG_NULL	0x00
#define TAG_VALUE	0x01

/* PostgreSQL's timestamps count from 2000-01-01; civil dates from 1970-01-01 */
#define USECS_PER_DAY_I64	INT64CONST(86400000000)
#define DAYS_1970_TO_2000	10957

/* Writing ------------------------------------------------------------------ */

/*
 * Where n more bytes (and the terminating NUL) go in buf.  Inline, so that
 * the many short pieces of a canonical form cost a compare each, not a call
 * of enlargeStringInfo or appendBinaryStringInfo.
 */
static inline char *
reserve(StringInfo buf, int n)
{
	if (unlikely(buf->maxlen - buf->len <= n))
		enlargeStringInfo(buf, n);
	return buf->data + buf->len;
}

/* n bytes that reserve() made room for were written at buf->data + buf->len */
static inline void
advance(StringInfo buf, int n)
{
	buf->len += n;
	buf->data[buf->len] = '\0';
}

static inline void
put_short(StringInfo buf, const char *data, int n)
{
	memcpy(reserve(buf, n), data, n);
	advance(buf, n);
}

void
hl_canonical_begin(StringInfo buf)
{
	put_short(buf, HL_CANONICAL_MAGIC, HL_CANONICAL_MAGIC_LEN);
}

void
hl_canonical_put_null(StringInfo buf)
{
	*reserve(buf, 1) = TAG_NULL;
	advance(buf, 1);
}

static inline void
put_be32(char *at, uint32 value)
{
	at[0] = (char) (value >> 24);
	at[1] = (char) (value >> 16);
	at[2] = (char) (value >> 8);
	at[3] = (char) value;
}

/* a value's tag, length and bytes; len < 1 GB */
static inline void
put_value(StringInfo buf, const char *data, int len)
{
	char	   *p = reserve(buf, len + 5);

	p[0] = TAG_VALUE;
	put_be32(p + 1, (uint32) len);
	memcpy(p + 5, data, len);
	advance(buf, len + 5);
}

int
hl_canonical_open_value(StringInfo buf)
{
	int			length_at;

	*reserve(buf, 5) = TAG_VALUE;
	buf->len++;
	length_at = buf->len;
	buf->len += 4;
	buf->data[buf->len] = '\0';
	return length_at;
}

void
hl_canonical_close_value(StringInfo buf, int length_at)
{
	put_be32(buf->data + length_at, (uint32) (buf->len - length_at - 4));
}

void
hl_canonical_put_bytes(StringInfo buf, const char *data, size_t len)
{
	/* a StringInfo holds less than 1 GB: the 4-byte length always fits */
	if (len > (size_t) PG_INT32_MAX - 5)
		hl_tamper_failure("canonical form", "a value is longer than 2 GB");
	put_value(buf, data, (int) len);
}

void
hl_canonical_put_int64(StringInfo buf, int64 value)
{
	char		text[HL_INT64_TEXT_MAX];

	put_value(buf, text, hl_format_int64(value, text));
}

void
hl_canonical_put_timestamp(StringInfo buf, int64 timestamp)
{
	char		text[HL_TIMESTAMP_TEXT_MAX];

	put_value(buf, text, hl_format_timestamp(timestamp, text));
}

/* Integers ----------------------------------------------------------------- */

/* "00" to "99": two digits per division when printing numbers */
static const char digit_pairs[201] =
"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
"8081828384858687888990919293949596979899";

int
hl_format_int64(int64 value, char *out)
{
	char		digits[HL_INT64_TEXT_MAX];
	char	   *start = digits + sizeof(digits);	/* written backwards */
	int			len = 0;
	uint64		magnitude;

	if (value < 0)
	{
		out[len++] = '-';
		magnitude = (uint64) (-(value + 1)) + 1;	/* no overflow at INT64_MIN */
	}
	else
		magnitude = (uint64) value;

	while (magnitude >= 100)
	{
		start -= 2;
		memcpy(start, &digit_pairs[2 * (magnitude % 100)], 2);
		magnitude /= 100;
	}
	if (magnitude >= 10)
	{
		start -= 2;
		memcpy(start, &digit_pairs[2 * magnitude], 2);
	}
	else
		*--start = (char) ('0' + magnitude);

	memcpy(out + len, start, digits + sizeof(digits) - start);
	len += digits + sizeof(digits) - start;
	out[len] = '\0';
	return len;
}

/* Only the text hl_format_int64() writes: no "+", no leading zeros, no "-0". */
bool
hl_parse_int64(const char *text, size_t len, int64 *value)
{
	size_t		i = 0;
	bool		negative = false;
	uint64		magnitude = 0;
	uint64		limit;

	if (len > 0 && text[0] == '-')
	{
		negative = true;
		i = 1;
	}
	if (i == len || (text[i] == '0' && (len - i > 1 || negative)))
		return false;

	limit = negative ? (uint64) PG_INT64_MAX + 1 : (uint64) PG_INT64_MAX;
	for (; i < len; i++)
	{
		unsigned	digit;

		if (text[i] < '0' || text[i] > '9')
			return false;
		digit = text[i] - '0';
		if (magnitude > (limit - digit) / 10)
			return false;
		magnitude = magnitude * 10 + digit;
	}

	if (negative)
		*value = magnitude == (uint64) PG_INT64_MAX + 1 ? PG_INT64_MIN : -(int64) magnitude;
	else
		*value = (int64) magnitude;
	return true;
}

/* Timestamps --------------------------------------------------------------- */

/*
 * Proleptic Gregorian calendar arithmetic on days since 1970-01-01 (Howard
 * Hinnant's algorithms), exact over the whole int64 range of microseconds.
 */
static void
civil_from_days(int64 days, int64 *year, int *month, int *day)
{
	int64		z = days + 719468;
	int64		era = (z >= 0 ? z : z - 146096) / 146097;
	int64		doe = z - era * 146097;
	int64		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64		mp = (5 * doy + 2) / 153;

	*day = (int) (doy - (153 * mp + 2) / 5 + 1);
	*month = (int) (mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

static int64
days_from_civil(int64 year, int month, int day)
{
	int64		y = year - (month <= 2);
	int64		era = (y >= 0 ? y : y - 399) / 400;
	int64		yoe = y - era * 400;
	int64		doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
	int64		doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static bool
is_leap(int64 year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
days_in_month(int64 year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

static char *
put_digits(char *out, int64 value, int width)
{
	int			i = width;

	for (; i >= 2; i -= 2)
	{
		memcpy(out + i - 2, &digit_pairs[2 * (value % 100)], 2);
		value /= 100;
	}
	if (i == 1)
		out[0] = (char) ('0' + value % 10);
	return out + width;
}

/*
 * Years are astronomical (1 BC is 0000, 2 BC is -0001), at least four
 * digits, more only when needed.
 */
int
hl_format_timestamp(int64 timestamp, char *out)
{
	/* the date part of the last day formatted: most timestamps share it */
	static int64 cached_days = PG_INT64_MIN;	/* no timestamp's day */
	static char cached_date[HL_TIMESTAMP_TEXT_MAX];
	static int	cached_len;
	int64		days;
	int64		usecs;
	char	   *p = out;

	/* TimestampTz's DT_NOBEGIN and DT_NOEND */
	if (timestamp == PG_INT64_MIN)
	{
		strcpy(out, "-infinity");
		return 9;
	}
	if (timestamp == PG_INT64_MAX)
	{
		strcpy(out, "infinity");
		return 8;
	}

	days = timestamp / USECS_PER_DAY_I64;
	usecs = timestamp % USECS_PER_DAY_I64;
	if (usecs < 0)
	{
		days--;
		usecs += USECS_PER_DAY_I64;
	}
	if (days != cached_days)
	{
		int64		year;
		int64		abs_year;
		int			month;
		int			day;
		int			year_digits = 4;
		char	   *d = cached_date;

		civil_from_days(days + DAYS_1970_TO_2000, &year, &month, &day);
		abs_year = year < 0 ? -year : year;
		for (int64 y = abs_year / 10000; y > 0; y /= 10)
			year_digits++;
		if (year < 0)
			*d++ = '-';
		d = put_digits(d, abs_year, year_digits);
		*d++ = '-';
		d = put_digits(d, month, 2);
		*d++ = '-';
		d = put_digits(d, day, 2);
		*d++ = 'T';
		cached_len = (int) (d - cached_date);
		cached_days = days;
	}
	memcpy(p, cached_date, cached_len);
	p += cached_len;
	p = put_digits(p, usecs / INT64CONST(3600000000), 2);
	*p++ = ':';
	p = put_digits(p, usecs / 60000000 % 60, 2);
	*p++ = ':';
	p = put_digits(p, usecs / 1000000 % 60, 2);
	*p++ = '.';
	p = put_digits(p, usecs % 1000000, 6);
	*p++ = 'Z';
	*p = '\0';
	return (int) (p - out);
}

static bool
read_digits(const char **p, const char *end, int width, int64 *value)
{
	*value = 0;
	if (end - *p < width)
		return false;
	for (int i = 0; i < width; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		*value = *value * 10 + (c - '0');
	}
	*p += width;
	return true;
}

static bool
read_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* Only the text hl_format_timestamp() writes. */
bool
hl_parse_timestamp(const char *text, size_t len, int64 *timestamp)
{
	const char *p = text;
	const char *end = text + len;
	bool		negative = false;
	int			year_digits = 0;
	int64		year,
				month,
				day,
				hour,
				minute,
				second,
				fraction;
	int64		days;

	if (len == 8 && memcmp(text, "infinity", 8) == 0)
	{
		*timestamp = PG_INT64_MAX;
		return true;
	}
	if (len == 9 && memcmp(text, "-infinity", 9) == 0)
	{
		*timestamp = PG_INT64_MIN;
		return true;
	}

	if (p < end && *p == '-')
	{
		negative = true;
		p++;
	}
	while (p + year_digits < end && p[year_digits] >= '0' && p[year_digits] <= '9')
		year_digits++;
	/* four digits, or more without a leading zero; the int64 range needs six */
	if (year_digits < 4 || year_digits > 6 || (year_digits > 4 && *p == '0'))
		return false;
	if (!read_digits(&p, end, year_digits, &year))
		return false;
	if (negative)
	{
		if (year == 0)
			return false;		/* year zero is "0000" */
		year = -year;
	}

	if (!read_char(&p, end, '-') || !read_digits(&p, end, 2, &month) ||
		!read_char(&p, end, '-') || !read_digits(&p, end, 2, &day) ||
		!read_char(&p, end, 'T') || !read_digits(&p, end, 2, &hour) ||
		!read_char(&p, end, ':') || !read_digits(&p, end, 2, &minute) ||
		!read_char(&p, end, ':') || !read_digits(&p, end, 2, &second) ||
		!read_char(&p, end, '.') || !read_digits(&p, end, 6, &fraction) ||
		!read_char(&p, end, 'Z') || p != end)
		return false;

	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, (int) month) ||
		hour > 23 || minute > 59 || second > 59)
		return false;

	days = days_from_civil(year, (int) month, (int) day) - DAYS_1970_TO_2000;

	/*
	 * days * USECS_PER_DAY + time of day must stay strictly inside int64.
	 * Before 2000 the product alone can overflow where the sum does not:
	 * count one day less and a negative time of day.
	 */
	{
		int64		time_of_day = ((hour * 60 + minute) * 60 + second) * 1000000 + fraction;
		int64		result;

		if (days < 0)
		{
			days++;
			time_of_day -= USECS_PER_DAY_I64;
		}
		if (pg_mul_s64_overflow(days, USECS_PER_DAY_I64, &result) ||
			pg_add_s64_overflow(result, time_of_day, &result))
			return false;
		/* those two values are the infinities */
		if (result == PG_INT64_MIN || result == PG_INT64_MAX)
			return false;
		*timestamp = result;
	}
	return true;
}

/* jsonb's output text ------------------------------------------------------- */

/*
 * What jsonb_out prints, checked byte by byte: no white space but ", "
 * between elements and members and ": " after keys; object keys unique and
 * in jsonb's order (shorter first, then bytewise); strings escaped exactly
 * as escape_json does (\" \\ \b \f \n \r \t, \u00xx for the other control
 * characters, nothing else); numbers as numeric_out prints them.
 */

typedef struct JsonLevel
{
	bool		is_object;
	bool		has_key;
	StringInfoData last_key;	/* unescaped, for the order of keys */
} JsonLevel;

static bool
json_hex_digit(char c, int *value)
{
	if (c >= '0' && c <= '9')
		*value = c - '0';
	else if (c >= 'a' && c <= 'f')
		*value = c - 'a' + 10;
	else
		return false;			/* escape_json writes lowercase */
	return true;
}

/* a string at *p; its unescaped bytes go to `unescaped` if not NULL */
static bool
json_read_string(const char **p, const char *end, StringInfo unescaped,
				 const char **problem)
{
	const char *s = *p;

	if (s >= end || *s != '"')
	{
		*problem = "a string was expected";
		return false;
	}
	s++;
	for (;;)
	{
		unsigned char c;

		if (s >= end)
		{
			*problem = "a string is not terminated";
			return false;
		}
		c = (unsigned char) *s;
		if (c == '"')
		{
			*p = s + 1;
			return true;
		}
		if (c == '\\')
		{
			char		decoded;

			if (s + 1 >= end)
			{
				*problem = "a string is not terminated";
				return false;
			}
			switch (s[1])
			{
				case '"':
					decoded = '"';
					break;
				case '\\':
					decoded = '\\';
					break;
				case 'b':
					decoded = '\b';
					break;
				case 'f':
					decoded = '\f';
					break;
				case 'n':
					decoded = '\n';
					break;
				case 'r':
					decoded = '\r';
					break;
				case 't':
					decoded = '\t';
					break;
				case 'u':
					{
						int			hi,
									lo;

						if (end - s < 6 || s[2] != '0' || s[3] != '0' ||
							!json_hex_digit(s[4], &hi) || !json_hex_digit(s[5], &lo) ||
							hi > 1)
						{
							*problem = "\\u is used for other than a control character";
							return false;
						}
						decoded = (char) (hi * 16 + lo);
						if (decoded == '\0' || decoded == '\b' || decoded == '\f' ||
							decoded == '\n' || decoded == '\r' || decoded == '\t')
						{
							*problem = "a control character has the wrong escape";
							return false;
						}
						if (unescaped)
							appendStringInfoCharMacro(unescaped, decoded);
						s += 6;
						continue;
					}
				default:
					*problem = "a string has an unknown escape";
					return false;
			}
			if (unescaped)
				appendStringInfoCharMacro(unescaped, decoded);
			s += 2;
			continue;
		}
		if (c < 0x20)
		{
			*problem = "a control character is not escaped";
			return false;
		}
		if (c < 0x80)
		{
			if (unescaped)
				appendStringInfoCharMacro(unescaped, (char) c);
			s++;
		}
		else
		{
			int			l = pg_utf_mblen((const unsigned char *) s);

			if (l > end - s || !pg_utf8_islegal((const unsigned char *) s, l))
			{
				*problem = "a string is not valid UTF-8";
				return false;
			}
			if (unescaped)
				appendBinaryStringInfo(unescaped, s, l);
			s += l;
		}
	}
}

static bool
json_read_number(const char **p, const char *end, const char **problem)
{
	const char *s = *p;
	bool		negative = false;
	bool		nonzero = false;

	if (s < end && *s == '-')
	{
		negative = true;
		s++;
	}
	if (s >= end || *s < '0' || *s > '9')
	{
		*problem = "a value was expected";
		return false;
	}
	if (*s == '0')
	{
		s++;
		if (s < end && *s >= '0' && *s <= '9')
		{
			*problem = "a number has a leading zero";
			return false;
		}
	}
	else
	{
		nonzero = true;
		while (s < end && *s >= '0' && *s <= '9')
			s++;
	}
	if (s < end && *s == '.')
	{
		s++;
		if (s >= end || *s < '0' || *s > '9')
		{
			*problem = "a number has no digit after its point";
			return false;
		}
		while (s < end && *s >= '0' && *s <= '9')
		{
			if (*s != '0')
				nonzero = true;
			s++;
		}
	}
	if (negative && !nonzero)
	{
		*problem = "numeric_out never writes a negative zero";
		return false;
	}
	*p = s;
	return true;
}

static bool
json_read_literal(const char **p, const char *end, const char *literal)
{
	size_t		len = strlen(literal);

	if ((size_t) (end - *p) < len || memcmp(*p, literal, len) != 0)
		return false;
	*p += len;
	return true;
}

/* a key, its order after the previous one, and ": " */
static bool
json_read_key(const char **p, const char *end, JsonLevel *level, StringInfo key,
			  const char **problem)
{
	resetStringInfo(key);
	if (!json_read_string(p, end, key, problem))
		return false;
	if (level->has_key)
	{
		StringInfo	last = &level->last_key;
		int			cmp;

		if (key->len != last->len)
			cmp = key->len > last->len ? 1 : -1;
		else
			cmp = memcmp(key->data, last->data, key->len);
		if (cmp <= 0)
		{
			*problem = cmp == 0 ? "an object has a key twice" :
				"object keys are not in jsonb's order";
			return false;
		}
	}
	resetStringInfo(&level->last_key);
	appendBinaryStringInfo(&level->last_key, key->data, key->len);
	level->has_key = true;
	if (end - *p < 2 || (*p)[0] != ':' || (*p)[1] != ' ')
	{
		*problem = "a key is not followed by \": \"";
		return false;
	}
	*p += 2;
	return true;
}

bool
hl_json_text_is_canonical(const char *text, size_t len, const char **problem)
{
	const char *p = text;
	const char *end = text + len;
	JsonLevel  *levels = NULL;
	int			depth = 0;
	int			allocated = 0;
	bool		need_value = true;
	bool		ok = false;
	StringInfoData key;

	initStringInfo(&key);
	*problem = NULL;

	for (;;)
	{
		if (need_value)
		{
			if (p >= end)
			{
				*problem = "a value was expected";
				break;
			}
			if (*p == '{' || *p == '[')
			{
				bool		is_object = (*p == '{');

				p++;
				if (p < end && *p == (is_object ? '}' : ']'))
				{
					p++;
					need_value = false;
					continue;
				}
				if (depth == allocated)
				{
					allocated = allocated == 0 ? 8 : allocated * 2;
					levels = levels == NULL ? palloc(allocated * sizeof(JsonLevel)) :
						repalloc(levels, allocated * sizeof(JsonLevel));
				}
				levels[depth].is_object = is_object;
				levels[depth].has_key = false;
				initStringInfo(&levels[depth].last_key);
				depth++;
				if (is_object && !json_read_key(&p, end, &levels[depth - 1], &key, problem))
					break;
				continue;
			}
			if (*p == '"')
			{
				if (!json_read_string(&p, end, NULL, problem))
					break;
			}
			else if (*p == '-' || (*p >= '0' && *p <= '9'))
			{
				if (!json_read_number(&p, end, problem))
					break;
			}
			else if (!json_read_literal(&p, end, "true") &&
					 !json_read_literal(&p, end, "false") &&
					 !json_read_literal(&p, end, "null"))
			{
				*problem = "a value was expected";
				break;
			}
			need_value = false;
		}
		else if (depth == 0)
		{
			if (p != end)
				*problem = "there are bytes after the value";
			else
				ok = true;
			break;
		}
		else
		{
			JsonLevel  *level = &levels[depth - 1];

			if (end - p >= 2 && p[0] == ',' && p[1] == ' ')
			{
				p += 2;
				if (level->is_object && !json_read_key(&p, end, level, &key, problem))
					break;
				need_value = true;
			}
			else if (p < end && *p == (level->is_object ? '}' : ']'))
			{
				p++;
				pfree(level->last_key.data);
				depth--;
			}
			else
			{
				*problem = level->is_object ? "\", \" or \"}\" was expected" :
					"\", \" or \"]\" was expected";
				break;
			}
		}
	}

	for (int i = 0; i < depth; i++)
		pfree(levels[i].last_key.data);
	if (levels)
		pfree(levels);
	pfree(key.data);
	return ok;
}

/* Reading ------------------------------------------------------------------ */

static bool
text_is_valid(const char *s, uint32 len)
{
	uint32		i = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == 0)
			return false;
		if (c < 0x80)
			i++;
		else
		{
			int			l = pg_utf_mblen((const unsigned char *) s + i);

			if (l > (int) (len - i) || !pg_utf8_islegal((const unsigned char *) s + i, l))
				return false;
			i += l;
		}
	}
	return true;
}

bool
hl_canonical_parse(const char *buf, size_t len, HlCanonicalEvent *event,
				   const char **problem)
{
	const char *p = buf;
	const char *end = buf + len;

	*problem = NULL;
	if (len < HL_CANONICAL_MAGIC_LEN ||
		memcmp(buf, HL_CANONICAL_MAGIC, HL_CANONICAL_MAGIC_LEN) != 0)
	{
		*problem = "it does not start with \"hl-event-v1\\n\"";
		return false;
	}
	p += HL_CANONICAL_MAGIC_LEN;

	for (int i = 0; i < HL_EVENT_NFIELDS; i++)
	{
		const HlFieldInfo *info = &hl_event_fields[i];
		HlCanonicalValue *value = &event->fields[i];
		const unsigned char *u;
		int64		ignored;

		if (p >= end)
		{
			*problem = "it ends before its last field";
			return false;
		}
		if (*p == TAG_NULL)
		{
			p++;
			if (info->not_null)
			{
				*problem = "a field that cannot be NULL is NULL";
				return false;
			}
			value->isnull = true;
			value->data = NULL;
			value->len = 0;
			continue;
		}
		if (*p != TAG_VALUE)
		{
			*problem = "a field starts with neither 0x00 nor 0x01";
			return false;
		}
		if (end - p < 5)
		{
			*problem = "it ends inside a length";
			return false;
		}
		u = (const unsigned char *) p + 1;
		value->len = ((uint32) u[0] << 24) | ((uint32) u[1] << 16) |
			((uint32) u[2] << 8) | (uint32) u[3];
		p += 5;
		if ((size_t) (end - p) < value->len)
		{
			*problem = "a length goes past the end";
			return false;
		}
		value->data = p;
		value->isnull = false;
		p += value->len;

		switch (info->kind)
		{
			case HL_KIND_INT8:
				if (!hl_parse_int64(value->data, value->len, &ignored))
				{
					*problem = "an integer is not in its canonical text form";
					return false;
				}
				break;
			case HL_KIND_TEXT:
				if (!text_is_valid(value->data, value->len))
				{
					*problem = "a text is not valid UTF-8 or contains a zero byte";
					return false;
				}
				break;
			case HL_KIND_TIMESTAMPTZ:
				if (!hl_parse_timestamp(value->data, value->len, &ignored))
				{
					*problem = "a timestamp is not in its canonical text form";
					return false;
				}
				break;
			case HL_KIND_JSONB:
				if (!hl_json_text_is_canonical(value->data, value->len, problem))
					return false;
				break;
		}
	}
	if (p != end)
	{
		*problem = "there are bytes after the last field";
		return false;
	}
	return true;
}

#ifndef FRONTEND

/* Backend: from a row of the log ------------------------------------------- */

static Oid
kind_type(HlFieldKind kind)
{
	switch (kind)
	{
		case HL_KIND_INT8:
			return INT8OID;
		case HL_KIND_TEXT:
			return TEXTOID;
		case HL_KIND_TIMESTAMPTZ:
			return TIMESTAMPTZOID;
		case HL_KIND_JSONB:
			return JSONBOID;
	}
	return InvalidOid;
}

/*
 * Find the covered columns in a tuple descriptor of the log.  The workspace
 * lives in the current memory context.
 */
void
hl_canonical_map_init(TupleDesc tupdesc, HlCanonicalMap *map)
{
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		const HlFieldInfo *info = &hl_event_fields[f];

		map->attnum[f] = InvalidAttrNumber;
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), info->name) == 0)
			{
				if (att->atttypid != kind_type(info->kind))
					elog(ERROR, "column \"%s\" of the log has type %u, not %u",
						 info->name, att->atttypid, kind_type(info->kind));
				map->attnum[f] = att->attnum;
				break;
			}
		}
		if (map->attnum[f] == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" is missing from the log", info->name);
	}
	map->natts = tupdesc->natts;
	map->values = palloc(tupdesc->natts * sizeof(Datum));
	map->isnull = palloc(tupdesc->natts * sizeof(bool));
}

void
hl_canonical_map_free(HlCanonicalMap *map)
{
	pfree(map->values);
	pfree(map->isnull);
	map->values = NULL;
	map->isnull = NULL;
}

void
hl_canonical_from_tuple(HeapTuple tuple, TupleDesc tupdesc, HlCanonicalMap *map,
						StringInfo buf)
{
	Assert(tupdesc->natts == map->natts);
	heap_deform_tuple(tuple, tupdesc, map->values, map->isnull);
	hl_canonical_from_row(map->values, map->isnull, map, buf);
}

/* values and isnull: a whole row of the descriptor the map was made for */
void
hl_canonical_from_row(const Datum *values, const bool *isnull, const HlCanonicalMap *map,
					  StringInfo buf)
{
	Datum		fields[HL_EVENT_NFIELDS];
	bool		nulls[HL_EVENT_NFIELDS];

	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		fields[f] = values[map->attnum[f] - 1];
		nulls[f] = isnull[map->attnum[f] - 1];
	}
	hl_canonical_from_datums(fields, nulls, buf);
}

/* values and isnull in HlEventField order */
void
hl_canonical_from_datums(const Datum *values, const bool *isnull, StringInfo buf)
{
	int			encoding = GetDatabaseEncoding();
	bool		utf8 = encoding == PG_UTF8 || encoding == PG_SQL_ASCII;

	hl_canonical_begin(buf);
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		if (isnull[f])
		{
			hl_canonical_put_null(buf);
			continue;
		}
		switch (hl_event_fields[f].kind)
		{
			case HL_KIND_INT8:
				hl_canonical_put_int64(buf, DatumGetInt64(values[f]));
				break;
			case HL_KIND_TEXT:
				{
					struct varlena *t = (struct varlena *) DatumGetPointer(values[f]);

					/*
					 * Most text is UTF-8 in the row itself: its bytes as they
					 * are.  (One put_value() for both headers: given the short
					 * header's bound of 127 bytes, gcc copies with rep movsq,
					 * whose start-up costs more than a call of memcpy.)
					 */
					if (utf8 && (!VARATT_IS_EXTENDED(t) || VARATT_IS_SHORT(t)))
						put_value(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
					else
						hl_canonical_put_text_datum(buf, values[f]);
				}
				break;
			case HL_KIND_TIMESTAMPTZ:
				hl_canonical_put_timestamp(buf, DatumGetTimestampTz(values[f]));
				break;
			case HL_KIND_JSONB:
				{
					Jsonb	   *jsonb = DatumGetJsonbP(values[f]);

					hl_canonical_put_jsonb(buf, jsonb);
					if ((Pointer) jsonb != DatumGetPointer(values[f]))
						pfree(jsonb);
				}
				break;
		}
	}
}

/*
 * Text in the database encoding, as UTF-8: the same pointer when no
 * conversion is needed.  SQL_ASCII defines no conversion: its bytes are
 * taken as they are.
 */
const char *
hl_server_to_utf8(const char *s, int len, int *utf8_len)
{
	int			encoding = GetDatabaseEncoding();
	char	   *converted;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
	{
		*utf8_len = len;
		return s;
	}
	converted = pg_server_to_any(s, len, PG_UTF8);
	*utf8_len = converted == s ? len : (int) strlen(converted);
	return converted;
}

void
hl_canonical_put_text_datum(StringInfo buf, Datum value)
{
	text	   *t = DatumGetTextPP(value);
	const char *utf8;
	int			len;

	utf8 = hl_server_to_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &len);
	hl_canonical_put_bytes(buf, utf8, len);
	if (utf8 != VARDATA_ANY(t))
		pfree((char *) utf8);
	if ((Pointer) t != DatumGetPointer(value))
		pfree(t);
}

void
hl_canonical_put_jsonb(StringInfo buf, Jsonb *jsonb)
{
	int			encoding = GetDatabaseEncoding();

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
	{
		int			length_at = hl_canonical_open_value(buf);

		hl_append_jsonb_text(buf, jsonb);
		hl_canonical_close_value(buf, length_at);
	}
	else
	{
		StringInfoData text;
		const char *utf8;
		int			len;

		initStringInfo(&text);
		hl_append_jsonb_text(&text, jsonb);
		utf8 = hl_server_to_utf8(text.data, text.len, &len);
		hl_canonical_put_bytes(buf, utf8, len);
		if (utf8 != text.data)
			pfree((char *) utf8);
		pfree(text.data);
	}
}

/* the bytes escape_json escapes: control characters, '"' and '\\' */
static const bool json_escaped[256] = {
	[0x00] = true, [0x01] = true, [0x02] = true, [0x03] = true, [0x04] = true,
	[0x05] = true, [0x06] = true, [0x07] = true, [0x08] = true, [0x09] = true,
	[0x0a] = true, [0x0b] = true, [0x0c] = true, [0x0d] = true, [0x0e] = true,
	[0x0f] = true, [0x10] = true, [0x11] = true, [0x12] = true, [0x13] = true,
	[0x14] = true, [0x15] = true, [0x16] = true, [0x17] = true, [0x18] = true,
	[0x19] = true, [0x1a] = true, [0x1b] = true, [0x1c] = true, [0x1d] = true,
	[0x1e] = true, [0x1f] = true, ['"'] = true, ['\\'] = true,
};

/* escape_json's escapes, written straight into buf, a block at a time */
static void
append_json_string(StringInfo out, const char *s, int len)
{
	static const char hex[] = "0123456789abcdef";
	const char *end = s + len;
	bool		first = true;

	do
	{
		int			block = Min(end - s, 4096);
		char	   *p;

		/* at worst every byte becomes \u00xx; and the quotes */
		p = reserve(out, block * 6 + 2);
		if (first)
			*p++ = '"';
		first = false;
		for (const char *stop = s + block; s < stop; s++)
		{
			unsigned char c;
			const char *run = s;

			/* copy the run of bytes that need no escape at once */
			while (s < stop && !json_escaped[(unsigned char) *s])
				s++;
			memcpy(p, run, s - run);
			p += s - run;
			if (s == stop)
				break;
			c = (unsigned char) *s;
			*p++ = '\\';
			switch (c)
			{
				case '"':
				case '\\':
					*p++ = (char) c;
					break;
				case '\b':
					*p++ = 'b';
					break;
				case '\f':
					*p++ = 'f';
					break;
				case '\n':
					*p++ = 'n';
					break;
				case '\r':
					*p++ = 'r';
					break;
				case '\t':
					*p++ = 't';
					break;
				default:
					*p++ = 'u';
					*p++ = '0';
					*p++ = '0';
					*p++ = hex[c >> 4];
					*p++ = hex[c & 15];
					break;
			}
		}
		if (s == end)
			*p++ = '"';
		out->len = p - out->data;
		*p = '\0';
	} while (s < end);
}

/*
 * numeric's on-disk short format (utils/adt/numeric.c; on disk, so it does
 * not change): a 16-bit header, then base-10000 digits, most significant
 * first, trailing zero digits left out.
 */
#define NUMERIC_FORMAT_MASK		0xC000
#define NUMERIC_FORMAT_SHORT	0x8000
#define NUMERIC_SHORT_NEGATIVE	0x2000
#define NUMERIC_SHORT_DSCALE	0x1F80
#define NUMERIC_SHORT_WEIGHT_NEGATIVE 0x0040
#define NUMERIC_SHORT_WEIGHT	0x003F

/*
 * What numeric_out prints for an integer below 10^16 (no fraction digits
 * to show), without its palloc'd text; false for any other number.
 */
static bool
append_small_integer(StringInfo out, Numeric n)
{
	const uint16 *words = (const uint16 *) VARDATA_ANY(n);
	int			ndigits = (int) (VARSIZE_ANY_EXHDR(n) / sizeof(uint16)) - 1;
	uint16		header;
	int			weight;
	uint64		value = 0;
	char	   *p;

	if (ndigits < 0)
		return false;
	header = words[0];
	if ((header & NUMERIC_FORMAT_MASK) != NUMERIC_FORMAT_SHORT ||
		(header & NUMERIC_SHORT_DSCALE) != 0 ||
		(header & NUMERIC_SHORT_WEIGHT_NEGATIVE) != 0)
		return false;
	weight = header & NUMERIC_SHORT_WEIGHT;
	if (weight > 3 || ndigits > weight + 1 ||
		(ndigits == 0 && (header & NUMERIC_SHORT_NEGATIVE) != 0))
		return false;
	for (int i = 0; i <= weight; i++)
	{
		uint16		digit = i < ndigits ? words[1 + i] : 0;

		if (digit > 9999)
			return false;
		value = value * 10000 + digit;
	}
	p = reserve(out, HL_INT64_TEXT_MAX);
	advance(out, hl_format_int64((header & NUMERIC_SHORT_NEGATIVE) ? -(int64) value : (int64) value, p));
	return true;
}

static void
append_numeric(StringInfo out, Numeric n)
{
	char	   *digits;

	if (append_small_integer(out, n))
		return;
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));

	appendStringInfoString(out, digits);
	pfree(digits);
}

/* the next element of a container: where its data is, from its JEntry */
typedef struct JEntryCursor
{
	const JEntry *entry;
	uint32		offset;			/* where the next element's data starts */
} JEntryCursor;

static inline uint32
cursor_next(JEntryCursor *cur, uint32 *start)
{
	JEntry		e = *cur->entry++;

	*start = cur->offset;
	/* every JB_OFFSET_STRIDE-th entry holds its end offset, the others a length */
	cur->offset = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : cur->offset + JBE_OFFLENFLD(e);
	return e;
}

static void append_container(StringInfo out, const JsonbContainer *container);

static void
append_element(StringInfo out, JEntry e, const char *base, uint32 start, uint32 end)
{
	if (JBE_ISSTRING(e))
		append_json_string(out, base + start, end - start);
	else if (JBE_ISNUMERIC(e))
		append_numeric(out, (Numeric) (base + INTALIGN(start)));
	else if (JBE_ISBOOL_TRUE(e))
		put_short(out, "true", 4);
	else if (JBE_ISBOOL_FALSE(e))
		put_short(out, "false", 5);
	else if (JBE_ISNULL(e))
		put_short(out, "null", 4);
	else if (JBE_ISCONTAINER(e))
		append_container(out, (const JsonbContainer *) (base + INTALIGN(start)));
	else
		elog(ERROR, "unexpected jsonb entry type %u", (unsigned) (e & JENTRY_TYPEMASK));
}

/*
 * jsonb_out's text for one container, read straight from jsonb's on-disk
 * format (utils/jsonb.h): no iterator, no JsonbValue, no allocation but
 * numeric_out's.  Object keys are stored in jsonb's order, keys first, then
 * the values in the same order.
 */
static void
append_container(StringInfo out, const JsonbContainer *container)
{
	uint32		count = container->header & JB_CMASK;
	bool		is_object = (container->header & JB_FOBJECT) != 0;
	uint32		nentries = is_object ? count * 2 : count;
	const char *base = (const char *) &container->children[nentries];
	JEntryCursor keys = {container->children, 0};

	check_stack_depth();

	if (container->header & JB_FSCALAR)
	{
		uint32		start;
		JEntry		e = cursor_next(&keys, &start);

		append_element(out, e, base, start, keys.offset);
		return;
	}

	if (is_object)
	{
		JEntryCursor values = {container->children, 0};

		/* the values' data starts where the last key's ends */
		for (uint32 i = 0; i < count; i++)
		{
			uint32		start;

			(void) cursor_next(&values, &start);
		}

		put_short(out, "{", 1);
		for (uint32 i = 0; i < count; i++)
		{
			uint32		kstart;
			uint32		vstart;
			JEntry		v;

			if (i > 0)
				put_short(out, ", ", 2);
			(void) cursor_next(&keys, &kstart);
			append_json_string(out, base + kstart, keys.offset - kstart);
			put_short(out, ": ", 2);
			v = cursor_next(&values, &vstart);
			append_element(out, v, base, vstart, values.offset);
		}
		put_short(out, "}", 1);
	}
	else
	{
		put_short(out, "[", 1);
		for (uint32 i = 0; i < count; i++)
		{
			uint32		start;
			JEntry		e;

			if (i > 0)
				put_short(out, ", ", 2);
			e = cursor_next(&keys, &start);
			append_element(out, e, base, start, keys.offset);
		}
		put_short(out, "]", 1);
	}
}

/* The text jsonb_out prints (JsonbToCString), appended to buf. */
void
hl_append_jsonb_text(StringInfo buf, Jsonb *jsonb)
{
	append_container(buf, &jsonb->root);
}

/* A string as jsonb_out prints it (escape_json), from len bytes, appended to buf. */
void
hl_append_json_string(StringInfo buf, const char *s, int len)
{
	append_json_string(buf, s, len);
}

#endif							/* !FRONTEND */
