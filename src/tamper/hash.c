/*-------------------------------------------------------------------------
 *
 * hash.c
 *	  SHA-256, and event hashes.
 *
 *	  event_hash = SHA-256(prev || canonical form), where prev is the hash
 *	  of the previous event of the same stream (tenant, target), or 32 zero
 *	  bytes for version 1 of a stream and for an event without a target.
 *	  Each stream is thus a hash chain: changing, removing, inserting or
 *	  reordering an event changes the hash of every later one.
 *
 *	  SHA-256 comes from OpenSSL, which PostgreSQL links on every platform
 *	  this extension supports (and which signing needs anyway), through its
 *	  SHA256_Init/Update/Final functions on a context of our own.  OpenSSL
 *	  3 deprecates them in favour of EVP, but keeps them, and they run the
 *	  same block function (SHA-NI where the CPU has it) without EVP's
 *	  provider dispatch: measured on the benchmark machine, EVP with a
 *	  reused context costs 1.5 to 2.3 times as much for the 33- and 65-byte
 *	  hashes of a Merkle tree and 1.3 to 1.6 times for a 500-byte event.
 *	  PostgreSQL's common/cryptohash.h is slower still: with OpenSSL 3 it
 *	  fetches the algorithm again on every pg_cryptohash_init().
 *
 *	  The context is plain memory, allocated with the hasher: nothing of
 *	  OpenSSL's to free when an error unwinds.
 *
 *-------------------------------------------------------------------------
 */
/* SHA256_*: deprecated in OpenSSL 3, see above; before any OpenSSL header */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "tamper/tamper.h"

#include <openssl/sha.h>

struct HlHasher
{
	SHA256_CTX	ctx;
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
	return palloc0(sizeof(HlHasher));
}

void
hl_hasher_free(HlHasher *hasher)
{
	pfree(hasher);
}

/* the SHA256_* functions cannot fail on a context of ours: they return 1 */
void
hl_hash_begin(HlHasher *hasher)
{
	SHA256_Init(&hasher->ctx);
}

void
hl_hash_update(HlHasher *hasher, const void *data, size_t len)
{
	SHA256_Update(&hasher->ctx, data, len);
}

void
hl_hash_end(HlHasher *hasher, HlHash *result)
{
	SHA256_Final(result->bytes, &hasher->ctx);
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
