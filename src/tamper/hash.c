/*-------------------------------------------------------------------------
 *
 * hash.c
 *	  SHA-256 through PostgreSQL's cryptohash API, and event hashes.
 *
 *	  event_hash = SHA-256(prev || canonical form), where prev is the hash
 *	  of the previous event of the same stream (tenant, target), or 32 zero
 *	  bytes for version 1 of a stream and for an event without a target.
 *	  Each stream is thus a hash chain: changing, removing, inserting or
 *	  reordering an event changes the hash of every later one.
 *
 *	  One context is created per task and reused for every hash: with
 *	  OpenSSL 3 creating one costs more than hashing a small event.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include "common/cryptohash.h"

struct HlHasher
{
	pg_cryptohash_ctx *ctx;
};

const HlHash hl_zero_hash = {{0}};

void
hl_tamper_failure(const char *what, const char *detail)
{
#ifndef FRONTEND
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute %s", what),
			 detail ? errdetail_internal("%s", detail) : 0));
#else
	fprintf(stderr, "could not compute %s: %s\n", what, detail ? detail : "");
	exit(1);
#endif
}

HlHasher *
hl_hasher_create(void)
{
	HlHasher   *hasher = palloc(sizeof(HlHasher));

	hasher->ctx = pg_cryptohash_create(PG_SHA256);
	if (hasher->ctx == NULL)
	{
#ifndef FRONTEND
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a SHA-256 context.")));
#else
		hl_tamper_failure("SHA-256", "out of memory");
#endif
	}
	return hasher;
}

void
hl_hasher_free(HlHasher *hasher)
{
	pg_cryptohash_free(hasher->ctx);
	pfree(hasher);
}

void
hl_hash_begin(HlHasher *hasher)
{
	if (pg_cryptohash_init(hasher->ctx) < 0)
		hl_tamper_failure("SHA-256", pg_cryptohash_error(hasher->ctx));
}

void
hl_hash_update(HlHasher *hasher, const void *data, size_t len)
{
	if (pg_cryptohash_update(hasher->ctx, (const uint8 *) data, len) < 0)
		hl_tamper_failure("SHA-256", pg_cryptohash_error(hasher->ctx));
}

void
hl_hash_end(HlHasher *hasher, HlHash *result)
{
	if (pg_cryptohash_final(hasher->ctx, result->bytes, HL_HASH_LEN) < 0)
		hl_tamper_failure("SHA-256", pg_cryptohash_error(hasher->ctx));
}

void
hl_sha256(HlHasher *hasher, const void *data, size_t len, HlHash *result)
{
	hl_hash_begin(hasher);
	hl_hash_update(hasher, data, len);
	hl_hash_end(hasher, result);
}

void
hl_event_hash(HlHasher *hasher, const HlHash *prev, const char *canonical,
			  size_t len, HlHash *result)
{
	hl_hash_begin(hasher);
	hl_hash_update(hasher, (prev ? prev : &hl_zero_hash)->bytes, HL_HASH_LEN);
	hl_hash_update(hasher, canonical, len);
	hl_hash_end(hasher, result);
}

void
hl_hash_to_hex(const HlHash *hash, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < HL_HASH_LEN; i++)
	{
		hex[2 * i] = digits[hash->bytes[i] >> 4];
		hex[2 * i + 1] = digits[hash->bytes[i] & 15];
	}
	hex[HL_HASH_HEX_LEN] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
hl_hash_from_hex(const char *hex, size_t len, HlHash *hash)
{
	if (len != HL_HASH_HEX_LEN)
		return false;
	for (int i = 0; i < HL_HASH_LEN; i++)
	{
		int			hi = hex_value(hex[2 * i]);
		int			lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		hash->bytes[i] = (uint8) (hi << 4 | lo);
	}
	return true;
}
