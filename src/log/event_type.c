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

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
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

void
hl_check_event_type(const char *type, int len)
{
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
