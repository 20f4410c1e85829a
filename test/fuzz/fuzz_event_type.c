/*
 * libFuzzer harness: event type names (src/log/event_type.c).
 *
 * hl_check_event_type must accept exactly the names the contract allows
 * (non-empty, at most HL_MAX_NAME_BYTES bytes, no leading or trailing white
 * space, no control character, no "*"), refusing the rest with ZE003, and
 * hl_parse_event_type must classify them as ^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$
 * does, with the verb's kind.  Both are checked against the reference below,
 * written from the contract.
 */
#include "log/log.h"

#include "pg_shim.h"

static bool
ref_accepts(const uint8_t *s, size_t n)
{
	if (n == 0 || n > HL_MAX_NAME_BYTES)
		return false;
	if (strchr(" \t\n\r\f\v", s[0]) || strchr(" \t\n\r\f\v", s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '*')
			return false;
	return true;
}

static bool
ref_part(const uint8_t *s, size_t n)
{
	if (n == 0 || !(s[0] >= 'A' && s[0] <= 'Z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			  (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static HlEventType
ref_parse(const uint8_t *s, size_t n)
{
	HlEventType r = {HL_NOT_ENTITY, 0};
	const uint8_t *dot = memchr(s, '.', n);
	size_t		noun;

	if (dot == NULL)
		return r;
	noun = dot - s;
	if (!ref_part(s, noun) || !ref_part(dot + 1, n - noun - 1))
		return r;
	r.noun_len = (int) noun;
	if (n - noun - 1 == 7 && memcmp(dot + 1, "Created", 7) == 0)
		r.kind = HL_VERB_CREATED;
	else if (n - noun - 1 == 7 && memcmp(dot + 1, "Deleted", 7) == 0)
		r.kind = HL_VERB_DELETED;
	else
		r.kind = HL_VERB_OTHER;
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy exactly as long as the input, so that ASan sees any overread */
	char	   *type = malloc(size ? size : 1);
	bool		accepted = false;
	bool		expected = ref_accepts(data, size);

	memcpy(type, data, size);
	HL_FUZZ_TRY(accepted, hl_check_event_type(type, (int) size));
	if (accepted != expected)
		abort();
	if (!accepted && hl_fuzz_sqlstate != ERRCODE_HL_INVALID_EVENT)
		abort();
	if (accepted)
	{
		HlEventType got = hl_parse_event_type(type, (int) size);
		HlEventType want = ref_parse(data, size);

		if (got.kind != want.kind || (got.kind != HL_NOT_ENTITY && got.noun_len != want.noun_len))
			abort();
	}
	hl_fuzz_arena_reset();
	free(type);
	return 0;
}
