/*-------------------------------------------------------------------------
 *
 * event_type.c
 *	  What an event's fields may look like, and what its type means.
 *
 * "Noun.Verbed" types (Contact.Created, Deal.Closed) are entity events when
 * they have a target; anything else well-formed is a free-standing type
 * (page_view, invoice.payment_succeeded, "Order Completed").  Type patterns
 * ("Contact.*", "*.Created", "*") select types for hooks, events_list and
 * subscriptions.
 *
 *-------------------------------------------------------------------------
 */
#include "log/log.h"

#include "catalog/pg_conversion.h"
#include "catalog/pg_namespace.h"
#include "mb/pg_wchar.h"

static inline bool
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static inline bool
is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char *
quoted_prefix(const char *value, int len)
{
	/* enough of a long value to recognise it in a message */
	int			shown = pg_mbcliplen(value, len, Min(len, 64));
	char	   *out = pnstrdup(value, shown);

	if (shown < len)
	{
		char	   *withdots = psprintf("%s...", out);

		pfree(out);
		return withdots;
	}
	return out;
}

/* Characters that cannot be seen --------------------------------------------- */

/*
 * Unicode's White_Space characters beyond ASCII, its Default_Ignorable_Code_Point
 * characters (zero width, joiners, bidirectional controls, fillers, variation
 * selectors, tags) and the C1 controls.  In a name they make values that look
 * the same and are not.  Sorted, for a binary search.
 */
static const struct
{
	pg_wchar	first;
	pg_wchar	last;
}			unseen_ranges[] =
{
	{0x0080, 0x00A0},			/* C1 controls (NEL U+0085), no-break space */
	{0x00AD, 0x00AD},			/* soft hyphen */
	{0x034F, 0x034F},			/* combining grapheme joiner */
	{0x061C, 0x061C},			/* Arabic letter mark */
	{0x115F, 0x1160},			/* Hangul fillers */
	{0x1680, 0x1680},			/* Ogham space mark */
	{0x17B4, 0x17B5},			/* Khmer inherent vowels */
	{0x180B, 0x180F},			/* Mongolian variation selectors, vowel separator */
	{0x2000, 0x200F},			/* en quad .. hair space, zero width space and joiners, LRM, RLM */
	{0x2028, 0x202F},			/* line and paragraph separators, bidi embeddings, narrow no-break space */
	{0x205F, 0x206F},			/* medium mathematical space, word joiner, invisible operators, bidi isolates */
	{0x3000, 0x3000},			/* ideographic space */
	{0x3164, 0x3164},			/* Hangul filler */
	{0xFE00, 0xFE0F},			/* variation selectors */
	{0xFEFF, 0xFEFF},			/* zero width no-break space (byte order mark) */
	{0xFFA0, 0xFFA0},			/* halfwidth Hangul filler */
	{0xFFF0, 0xFFF8},			/* reserved, default ignorable */
	{0x1BCA0, 0x1BCA3},			/* shorthand format controls */
	{0x1D173, 0x1D17A},			/* musical symbol format controls */
	{0xE0000, 0xE0FFF},			/* tags, variation selectors supplement */
};

static bool
is_unseen(pg_wchar c)
{
	int			lo = 0;
	int			hi = lengthof(unseen_ranges) - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (c < unseen_ranges[mid].first)
			hi = mid - 1;
		else if (c > unseen_ranges[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* The blocks of combining diacritical marks: accents that sit on a letter. */
static bool
is_combining_mark(pg_wchar c)
{
	return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
		(c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
		(c >= 0xFE20 && c <= 0xFE2F);
}

/*
 * The value as UTF-8, whatever the database encoding, or NULL when its
 * characters cannot be known: in a SQL_ASCII database, bytes that are not
 * UTF-8 have no declared meaning.  A character Unicode lacks becomes U+FFFD,
 * which is visible.
 */
static const unsigned char *
as_utf8(const char *value, int len, int *utf8_len)
{
	static bool looked_up = false;
	static Oid	to_utf8 = InvalidOid;
	int			encoding = GetDatabaseEncoding();
	StringInfoData buf;

	if (encoding == PG_UTF8 ||
		(encoding == PG_SQL_ASCII && pg_verify_mbstr(PG_UTF8, value, len, true)))
	{
		*utf8_len = len;
		return (const unsigned char *) value;
	}
	if (encoding == PG_SQL_ASCII)
		return NULL;

	if (!looked_up)
	{
		/* pg_catalog's own conversion, never one that search_path finds first */
		to_utf8 = FindDefaultConversion(PG_CATALOG_NAMESPACE, encoding, PG_UTF8);
		looked_up = true;
	}
	if (!OidIsValid(to_utf8))
		return NULL;

	initStringInfo(&buf);
	while (len > 0)
	{
		int			done;

		enlargeStringInfo(&buf, len * MAX_CONVERSION_GROWTH + 1);
		done = pg_do_encoding_conversion_buf(to_utf8, encoding, PG_UTF8,
											 (unsigned char *) value, len,
											 (unsigned char *) buf.data + buf.len,
											 buf.maxlen - buf.len, true);
		buf.len += strlen(buf.data + buf.len);
		value += done;
		len -= done;
		if (len > 0)
		{
			int			skip = pg_mblen(value);

			appendBinaryStringInfo(&buf, "\xEF\xBF\xBD", 3);
			value += skip;
			len -= skip;
		}
	}
	*utf8_len = buf.len;
	return (const unsigned char *) buf.data;
}

/*
 * The first character of value that cannot be seen: one of unseen_ranges,
 * or a combining mark with no letter to sit on (at the start, or after an
 * ASCII space or punctuation such as the dot).  0 if there is none.
 */
static pg_wchar
first_unseen_character(const char *value, int len)
{
	int			utf8_len;
	const unsigned char *p = as_utf8(value, len, &utf8_len);
	const unsigned char *end;
	pg_wchar	previous = ' ';

	if (p == NULL)
		return 0;
	for (end = p + utf8_len; p < end; p += pg_utf_mblen(p))
	{
		pg_wchar	c = IS_HIGHBIT_SET(*p) ? utf8_to_unicode(p) : *p;

		if (is_unseen(c) ||
			(is_combining_mark(c) && previous < 0x80 && !is_alnum((char) previous)))
			return c;
		previous = c;
	}
	return 0;
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
is_visible_ascii(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Nothing to see: only white space, controls and invisible characters. */
static bool
is_blank(const char *value, int len)
{
	int			utf8_len;
	const unsigned char *p;
	const unsigned char *end;

	/* the usual name starts with something visible */
	if (is_visible_ascii(value[0]))
		return false;

	p = as_utf8(value, len, &utf8_len);
	if (p == NULL)
	{
		/* undecodable bytes count as visible */
		for (int i = 0; i < len; i++)
			if (IS_HIGHBIT_SET(value[i]) || is_visible_ascii(value[i]))
				return false;
		return true;
	}
	for (end = p + utf8_len; p < end; p += pg_utf_mblen(p))
	{
		if (IS_HIGHBIT_SET(*p) ? !is_unseen(utf8_to_unicode(p)) : is_visible_ascii(*p))
			return false;
	}
	return true;
}

/* Types and names ------------------------------------------------------------ */

void
hl_check_event_type(const char *type, int len)
{
	bool		ascii = true;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event type must not be empty"),
				 errhint("Name the event, for example \"Contact.Created\" or \"page_view\".")));

	if (len > HL_MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event type \"%s\" is too long", quoted_prefix(type, len)),
				 errdetail("An event type may have at most %d bytes; this one has %d.",
						   HL_MAX_NAME_BYTES, len)));

	if (is_space(type[0]) || is_space(type[len - 1]))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("event type \"%s\" has leading or trailing white space",
						quoted_prefix(type, len)),
				 errhint("Trim the type before appending.")));

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) type[i];

		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("event type \"%s\" contains a control character",
							quoted_prefix(type, len))));
		if (c == '*')
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("event type \"%s\" contains \"*\"", quoted_prefix(type, len)),
					 errdetail("\"*\" is reserved for hook patterns such as \"Contact.*\".")));
		if (IS_HIGHBIT_SET(c))
			ascii = false;
	}

	/* not ASCII: look at the characters themselves */
	if (!ascii)
	{
		pg_wchar	bad = first_unseen_character(type, len);

		if (bad != 0 && is_combining_mark(bad))
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("event type \"%s\" contains the combining mark U+%04X with no letter to combine with",
							quoted_prefix(type, len), bad),
					 errhint("Put the mark after the letter it belongs to, or remove it.")));
		if (bad != 0)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("event type \"%s\" contains the invisible or white-space character U+%04X",
							quoted_prefix(type, len), bad),
					 errdetail("Such characters make types that look alike but differ; only the ASCII space may separate words in a type."),
					 errhint("Remove the character, or replace it with an ASCII space.")));
	}
}

/*
 * Classify a type already accepted by hl_check_event_type.  The entity shape
 * is ^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$.
 */
HlEventType
hl_parse_event_type(const char *type, int len)
{
	HlEventType result = {HL_NOT_ENTITY, 0};
	int			dot = -1;

	if (len < 3 || !is_upper(type[0]))
		return result;

	for (int i = 1; i < len; i++)
	{
		if (type[i] == '.')
		{
			if (dot >= 0)
				return result;
			dot = i;
		}
		else if (!is_alnum(type[i]))
			return result;
	}
	if (dot < 0 || dot == len - 1 || !is_upper(type[dot + 1]))
		return result;

	result.noun_len = dot;
	if (len - dot - 1 == 7 && memcmp(type + dot + 1, "Created", 7) == 0)
		result.kind = HL_VERB_CREATED;
	else if (len - dot - 1 == 7 && memcmp(type + dot + 1, "Deleted", 7) == 0)
		result.kind = HL_VERB_DELETED;
	else
		result.kind = HL_VERB_OTHER;
	return result;
}

/*
 * A tenant or a target names a thing: one that has nothing to see (white
 * space and invisible characters only) would be one no one could tell
 * apart from another.  NULL is for the caller to judge (a target: an event
 * about no entity).
 */
void
hl_check_not_blank(const char *what, const text *name, const char *hint)
{
	const char *value;
	int			len;

	if (name == NULL)
		return;
	value = VARDATA_ANY(name);
	len = VARSIZE_ANY_EXHDR(name);
	if (len > 0 && is_blank(value, len))
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("%s \"%s\" is blank", what, quoted_prefix(value, len)),
				 errdetail("It has only white space or invisible characters."),
				 errhint("%s", hint)));
}

/*
 * Tenants, targets, actors, sources and keys: non-empty, and short enough to
 * live in a btree index.
 */
void
hl_check_name(const char *what, const char *value, int len)
{
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("%s must not be an empty string", what),
				 errhint("Pass NULL to leave it unset.")));
	if (len > HL_MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("%s \"%s\" is too long", what, quoted_prefix(value, len)),
				 errdetail("It may have at most %d bytes; this one has %d.",
						   HL_MAX_NAME_BYTES, len)));
}

void
hl_check_source_type(const char *value, int len)
{
	if ((len == 8 && memcmp(value, "external", 8) == 0) ||
		(len == 8 && memcmp(value, "internal", 8) == 0) ||
		(len == 6 && memcmp(value, "direct", 6) == 0))
		return;

	ereport(ERROR,
			(errcode(ERRCODE_HL_INVALID_EVENT),
			 errmsg("unknown source_type \"%s\"", quoted_prefix(value, len)),
			 errhint("Use \"external\", \"internal\", \"direct\" or NULL.")));
}

void
hl_check_json_object(const char *what, Jsonb *value)
{
	const char *kind;

	if (JB_ROOT_IS_OBJECT(value))
		return;

	if (JB_ROOT_IS_SCALAR(value))
	{
		JsonbIterator *it = JsonbIteratorInit(&value->root);
		JsonbValue	v;

		/* a scalar is wrapped in a one-element array: find the element */
		while (JsonbIteratorNext(&it, &v, true) != WJB_ELEM)
			;
		switch (v.type)
		{
			case jbvNull:
				kind = "null";
				break;
			case jbvString:
				kind = "a string";
				break;
			case jbvNumeric:
				kind = "a number";
				break;
			case jbvBool:
				kind = "a boolean";
				break;
			default:
				kind = "a scalar";
				break;
		}
	}
	else
		kind = "an array";

	ereport(ERROR,
			(errcode(ERRCODE_HL_INVALID_EVENT),
			 errmsg("event %s must be a JSON object, not %s", what, kind),
			 errhint("Wrap the value in an object, for example {\"value\": ...}.")));
}

/* Type patterns ------------------------------------------------------------ */

static void
bad_pattern(const char *pattern, int len, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid type pattern \"%s\"", quoted_prefix(pattern, len)),
			 errdetail("%s", detail),
			 errhint("Use an exact type (\"Contact.Created\"), \"Noun.*\", \"*.Verbed\" or \"*\".")));
}

/*
 * Parse a pattern: "*", "Prefix.*", "*.Suffix" or an exact type.  The part
 * that is not "*" must be a valid type itself.  result->text points into
 * pattern, which must outlive it.
 */
void
hl_parse_type_pattern(const char *pattern, int len, HlTypePattern *result)
{
	const char *star = memchr(pattern, '*', len);

	if (len == 0)
		bad_pattern(pattern, len, "The pattern is empty.");
	if (star == NULL)
	{
		hl_check_event_type(pattern, len);
		result->kind = HL_PATTERN_EXACT;
		result->text = pattern;
		result->len = len;
		return;
	}
	if (len == 1)
	{
		result->kind = HL_PATTERN_ALL;
		result->text = "";
		result->len = 0;
		return;
	}
	if (memchr(star + 1, '*', len - (star + 1 - pattern)) != NULL)
		bad_pattern(pattern, len, "A pattern may contain \"*\" once.");
	if (star == pattern + len - 1 && len >= 3 && pattern[len - 2] == '.')
	{
		/* keep the dot: "Contact." */
		hl_check_event_type(pattern, len - 2);
		result->kind = HL_PATTERN_PREFIX;
		result->text = pattern;
		result->len = len - 1;
		return;
	}
	if (star == pattern && len >= 3 && pattern[1] == '.')
	{
		/* keep the dot: ".Created" */
		hl_check_event_type(pattern + 2, len - 2);
		result->kind = HL_PATTERN_SUFFIX;
		result->text = pattern + 1;
		result->len = len - 1;
		return;
	}
	bad_pattern(pattern, len,
				"\"*\" may only stand for a whole noun or verb, or for every type.");
}

bool
hl_type_pattern_matches(const HlTypePattern *pattern, const char *type, int len)
{
	switch (pattern->kind)
	{
		case HL_PATTERN_ALL:
			return true;
		case HL_PATTERN_EXACT:
			return len == pattern->len && memcmp(type, pattern->text, len) == 0;
		case HL_PATTERN_PREFIX:
			return len > pattern->len && memcmp(type, pattern->text, pattern->len) == 0;
		case HL_PATTERN_SUFFIX:
			return len > pattern->len &&
				memcmp(type + len - pattern->len, pattern->text, pattern->len) == 0;
	}
	return false;
}
