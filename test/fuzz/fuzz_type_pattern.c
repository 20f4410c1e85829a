/*
 * libFuzzer harness: type patterns (src/log/event_type.c).
 *
 * The input is a pattern, a zero byte, and a type.  hl_parse_type_pattern
 * must accept exactly "*", "Noun.*", "*.Verbed" and exact types (the part
 * that is not "*" being a valid type), refusing the rest with 22023 (or
 * ZE003 for an invalid exact type); and hl_type_pattern_matches must say
 * what the pattern means for every valid type.
 */
#include "log/log.h"

#include "pg_shim.h"

static bool
valid_type(const char *s, size_t n)
{
	bool		ok = false;

	HL_FUZZ_TRY(ok, hl_check_event_type(s, (int) n));
	return ok;
}

/* the meaning of a pattern, from the contract: kind 0 all, 1 exact, 2 prefix, 3 suffix */
static int
ref_kind(const char *p, size_t n)
{
	const char *star = memchr(p, '*', n);

	if (n == 0)
		return -1;
	if (star == NULL)
		return valid_type(p, n) ? 1 : -1;
	if (n == 1)
		return 0;
	if (memchr(star + 1, '*', n - (star + 1 - p)))
		return -1;
	if (star == p + n - 1 && n >= 3 && p[n - 2] == '.')
		return valid_type(p, n - 2) ? 2 : -1;
	if (star == p && n >= 3 && p[1] == '.')
		return valid_type(p + 2, n - 2) ? 3 : -1;
	return -1;
}

static bool
ref_matches(int kind, const char *p, size_t pn, const char *t, size_t tn)
{
	switch (kind)
	{
		case 0:
			return true;
		case 1:
			return tn == pn && memcmp(t, p, tn) == 0;
		case 2:					/* "Noun.*": starts with "Noun." and has more */
			return tn > pn - 1 && memcmp(t, p, pn - 1) == 0;
		case 3:					/* "*.Verb": ends with ".Verb" and has more */
			return tn > pn - 1 && memcmp(t + tn - (pn - 1), p + 1, pn - 1) == 0;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *zero = memchr(data, 0, size);
	size_t		pn = zero ? (size_t) (zero - data) : size;
	size_t		tn = zero ? size - pn - 1 : 0;
	char	   *p = malloc(pn ? pn : 1);
	char	   *t = malloc(tn ? tn : 1);
	HlTypePattern pattern;
	bool		accepted = false;
	int			kind;

	memcpy(p, data, pn);
	if (tn)
		memcpy(t, zero + 1, tn);
	kind = ref_kind(p, pn);
	HL_FUZZ_TRY(accepted, hl_parse_type_pattern(p, (int) pn, &pattern));
	if (accepted != (kind >= 0))
		abort();
	if (!accepted && hl_fuzz_sqlstate != ERRCODE_INVALID_PARAMETER_VALUE &&
		hl_fuzz_sqlstate != ERRCODE_HL_INVALID_EVENT)
		abort();
	if (accepted && valid_type(t, tn) &&
		hl_type_pattern_matches(&pattern, t, (int) tn) != ref_matches(kind, p, pn, t, tn))
		abort();
	hl_fuzz_arena_reset();
	free(p);
	free(t);
	return 0;
}
