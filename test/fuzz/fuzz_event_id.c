/*
 * libFuzzer harness: event ids given by a caller (src/log/event_id.c).
 * hl_event_id_is_valid must accept exactly ^evt_[A-Za-z0-9_-]{1,64}$.
 */
#include "log/log.h"

#include "pg_shim.h"

static bool
ref_valid(const uint8_t *s, size_t n)
{
	if (n < 5 || n > 4 + 64 || memcmp(s, "evt_", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			  (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *id = malloc(size ? size : 1);

	memcpy(id, data, size);
	if (hl_event_id_is_valid(id, (int) size) != ref_valid(data, size))
		abort();
	free(id);
	return 0;
}
