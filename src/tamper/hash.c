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
 *	  EVP interface, with the digest fetched once per process and each
 *	  context reinitialised in place.  PostgreSQL's common/cryptohash.h does
 *	  the same hashing but, with OpenSSL 3, fetches the algorithm again on
 *	  every pg_cryptohash_init(): measured here, 3.8 times slower for the
 *	  small hashes of a Merkle tree and 2 times slower for an event, which
 *	  decides whether verify() reaches its throughput.
 *
 *	  A context is created per task and reused for every hash.  In the
 *	  backend it is freed by a callback of the memory context the hasher was
 *	  created in, so an error never leaks it; hl_hasher_free() frees it
 *	  sooner.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#ifndef FRONTEND
#include "utils/memutils.h"
#endif

struct HlHasher
{
	EVP_MD_CTX *ctx;			/* NULL once freed */
#ifndef FRONTEND
	MemoryContextCallback free_on_reset;
#endif
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

static void
openssl_failure(const char *what)
{
	const char *reason = ERR_reason_error_string(ERR_get_error());

	ERR_clear_error();
	hl_tamper_failure(what, reason ? reason : "the library gave no reason");
}

/* fetched once: with OpenSSL 3, looking the algorithm up is what costs */
static const EVP_MD *
sha256_md(void)
{
	static const EVP_MD *md = NULL;

	if (md == NULL)
	{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
		md = EVP_sha256();
#endif
		if (md == NULL)
			openssl_failure("SHA-256");
	}
	return md;
}

static void
free_context(void *arg)
{
	HlHasher   *hasher = (HlHasher *) arg;

	EVP_MD_CTX_free(hasher->ctx);
	hasher->ctx = NULL;
}

HlHasher *
hl_hasher_create(void)
{
	HlHasher   *hasher = palloc0(sizeof(HlHasher));
	const EVP_MD *md = sha256_md();

	hasher->ctx = EVP_MD_CTX_new();
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
#ifndef FRONTEND
	hasher->free_on_reset.func = free_context;
	hasher->free_on_reset.arg = hasher;
	MemoryContextRegisterResetCallback(GetMemoryChunkContext(hasher),
									   &hasher->free_on_reset);
#endif
	if (EVP_DigestInit_ex(hasher->ctx, md, NULL) != 1)
		openssl_failure("SHA-256");
	return hasher;
}

/*
 * The context goes now; in the backend the small struct stays until its
 * memory context goes, since a reset callback cannot be unregistered.
 */
void
hl_hasher_free(HlHasher *hasher)
{
	free_context(hasher);
#ifdef FRONTEND
	pfree(hasher);
#endif
}

void
hl_hash_begin(HlHasher *hasher)
{
	/* the same digest again, without looking it up */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (EVP_DigestInit_ex2(hasher->ctx, NULL, NULL) != 1)
#else
	if (EVP_DigestInit_ex(hasher->ctx, NULL, NULL) != 1)
#endif
		openssl_failure("SHA-256");
}

void
hl_hash_update(HlHasher *hasher, const void *data, size_t len)
{
	if (EVP_DigestUpdate(hasher->ctx, data, len) != 1)
		openssl_failure("SHA-256");
}

void
hl_hash_end(HlHasher *hasher, HlHash *result)
{
	unsigned int len;

	if (EVP_DigestFinal_ex(hasher->ctx, result->bytes, &len) != 1 || len != HL_HASH_LEN)
		openssl_failure("SHA-256");
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
