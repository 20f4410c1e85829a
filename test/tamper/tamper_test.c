/*-------------------------------------------------------------------------
 *
 * tamper_test.c
 *	  Frontend test driver for src/tamper/: RFC 6962 vectors, a reference
 *	  Merkle implementation written from the RFC's recursion, the canonical
 *	  form's text forms and parser, checkpoint hashes, signing keys.
 *
 *	  tamper_test check KEYDIR		run every check (KEYDIR: see run.sh)
 *	  tamper_test vectors FILE		check vectors written by hl_verify.py
 *	  tamper_test emit DIR			write events, checkpoints and a proof for
 *									hl_verify.py to check
 *	  tamper_test bench N			hash N canonical forms of typical size
 *	  tamper_test merkle N			time a Merkle root over N event hashes
 *
 *	  Prints "ok N - ..." / "not ok N - ..." and "N passed, N failed".
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int	passed;
static int	failed;

static void
check(bool ok, const char *fmt,...) pg_attribute_printf(2, 3);

static void
check(bool ok, const char *fmt,...)
{
	va_list		ap;

	if (ok)
		passed++;
	else
		failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", passed + failed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int
finish(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

static HlHash
hex_hash(const char *hex)
{
	HlHash		h;

	if (!hl_hash_from_hex(hex, strlen(hex), &h))
	{
		fprintf(stderr, "bad hex in test: %s\n", hex);
		exit(2);
	}
	return h;
}

static bool
hash_eq(const HlHash *a, const HlHash *b)
{
	return memcmp(a->bytes, b->bytes, HL_HASH_LEN) == 0;
}

static int
unhex(const char *hex, size_t len, char *out)
{
	for (size_t i = 0; i + 1 < len; i += 2)
	{
		int			v;

		if (sscanf(hex + i, "%2x", &v) != 1)
			return -1;
		out[i / 2] = (char) v;
	}
	return (int) (len / 2);
}

/* SHA-256 ------------------------------------------------------------------- */

static void
check_sha256(HlHasher *h)
{
	HlHash		out;
	HlHash		expected;

	hl_sha256(h, "", 0, &out);
	expected = hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check(hash_eq(&out, &expected), "SHA-256 of the empty string");
	hl_sha256(h, "abc", 3, &out);
	expected = hex_hash("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check(hash_eq(&out, &expected), "SHA-256 of \"abc\" (FIPS 180-2), context reused");
	check(!hl_hash_from_hex("zz", 2, &out), "hex of the wrong length is refused");
}

/* RFC 6962 ------------------------------------------------------------------ */

/* Certificate Transparency's test vectors (transparency-dev/merkle, proof/verify_test.go) */
static const char *const ct_leaves[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f"
};
static const char *const ct_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

typedef struct CtProof
{
	uint64		index;			/* 0-based */
	uint64		size;
	int			len;
	const char *path[3];
} CtProof;

static const CtProof ct_proofs[] = {
	{0, 1, 0, {NULL}},
	{0, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			   "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
			   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1, 5, 3, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
			   "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static void
add_ct_leaf(HlMerkleBuilder *b, int i)
{
	char		data[16];
	int			len = unhex(ct_leaves[i], strlen(ct_leaves[i]), data);

	hl_merkle_add(b, data, len);
}

static void
check_rfc6962(HlHasher *h)
{
	HlHash		out;
	HlHash		expected;
	HlMerkleBuilder b;

	/* rfc6962/rfc6962_test.go */
	hl_merkle_empty_root(h, &out);
	expected = hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check(hash_eq(&out, &expected), "RFC 6962: root of the empty tree");
	hl_merkle_leaf_hash(h, "", 0, &out);
	expected = hex_hash("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	check(hash_eq(&out, &expected), "RFC 6962: hash of an empty leaf differs from the empty root");
	hl_merkle_leaf_hash(h, "L123456", 7, &out);
	expected = hex_hash("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
	check(hash_eq(&out, &expected), "RFC 6962: leaf hash of \"L123456\"");

	hl_merkle_init(&b, h);
	hl_merkle_root(&b, &out);
	expected = hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check(hash_eq(&out, &expected), "streaming root of no leaves is the empty root");
	for (int n = 1; n <= 8; n++)
	{
		add_ct_leaf(&b, n - 1);
		hl_merkle_root(&b, &out);
		expected = hex_hash(ct_roots[n - 1]);
		check(hash_eq(&out, &expected), "CT vector: root of the first %d leaves", n);
	}

	for (size_t p = 0; p < lengthof(ct_proofs); p++)
	{
		const CtProof *v = &ct_proofs[p];
		HlMerklePathBuilder pb;
		HlHash		path[HL_MERKLE_MAX_HEIGHT];
		HlHash		leaf;
		HlHash		root;
		HlHash		bad[HL_MERKLE_MAX_HEIGHT + 1];
		int			len;
		bool		same;
		char		data[16];
		int			bytes;

		hl_merkle_path_init(&pb, h, v->index, v->size);
		for (uint64 i = 0; i < v->size; i++)
		{
			bytes = unhex(ct_leaves[i], strlen(ct_leaves[i]), data);
			hl_merkle_path_add(&pb, data, bytes);
		}
		len = hl_merkle_path_finish(&pb, &leaf, path, &root);
		same = len == v->len;
		for (int i = 0; same && i < len; i++)
		{
			HlHash		e = hex_hash(v->path[i]);

			same = hash_eq(&path[i], &e);
		}
		expected = hex_hash(ct_roots[v->size - 1]);
		check(same && hash_eq(&root, &expected),
			  "CT vector: audit path of leaf %d in a tree of %d",
			  (int) v->index, (int) v->size);
		check(hl_merkle_verify_path(h, v->index, v->size, &leaf, path, len, &expected),
			  "CT vector: that path verifies");

		/* the corruptions transparency-dev/merkle tries */
		check(!hl_merkle_verify_path(h, v->index + 1, v->size, &leaf, path, len, &expected) &&
			  (v->index == 0 ||
			   !hl_merkle_verify_path(h, v->index - 1, v->size, &leaf, path, len, &expected)) &&
			  !hl_merkle_verify_path(h, v->index ^ 2, v->size, &leaf, path, len, &expected),
			  "CT vector %d/%d: a wrong leaf index fails", (int) v->index, (int) v->size);
		check(!hl_merkle_verify_path(h, v->index, v->size * 2, &leaf, path, len, &expected) &&
			  !hl_merkle_verify_path(h, v->index, v->size / 2, &leaf, path, len, &expected),
			  "CT vector %d/%d: a wrong tree size fails", (int) v->index, (int) v->size);
		memcpy(bad, path, len * sizeof(HlHash));
		bad[len] = expected;
		check(!hl_merkle_verify_path(h, v->index, v->size, &leaf, bad, len + 1, &expected),
			  "CT vector %d/%d: a path with a hash added fails", (int) v->index, (int) v->size);
		if (len > 0)
		{
			check(!hl_merkle_verify_path(h, v->index, v->size, &leaf, path, len - 1, &expected),
				  "CT vector %d/%d: a path with a hash removed fails", (int) v->index, (int) v->size);
			same = true;
			for (int i = 0; i < len; i++)
			{
				memcpy(bad, path, len * sizeof(HlHash));
				bad[i].bytes[0] ^= 8;
				same = same && !hl_merkle_verify_path(h, v->index, v->size, &leaf, bad, len, &expected);
			}
			check(same, "CT vector %d/%d: one flipped bit anywhere in the path fails",
				  (int) v->index, (int) v->size);
		}
		leaf.bytes[31] ^= 1;
		check(!hl_merkle_verify_path(h, v->index, v->size, &leaf, path, len, &expected),
			  "CT vector %d/%d: a wrong leaf fails", (int) v->index, (int) v->size);
	}
}

/* RFC 6962 2.1's recursion, word for word: the reference for the streaming code */
static void
ref_mth(HlHasher *h, const HlHash *leaves, uint64 n, HlHash *out)
{
	uint64		k = 1;
	HlHash		l,
				r;

	if (n == 0)
	{
		hl_merkle_empty_root(h, out);
		return;
	}
	if (n == 1)
	{
		*out = leaves[0];
		return;
	}
	while (k * 2 < n)
		k *= 2;
	ref_mth(h, leaves, k, &l);
	ref_mth(h, leaves + k, n - k, &r);
	hl_merkle_node_hash(h, &l, &r, out);
}

static int
ref_path(HlHasher *h, uint64 m, const HlHash *leaves, uint64 n, HlHash *path)
{
	uint64		k = 1;
	int			len;

	if (n == 1)
		return 0;
	while (k * 2 < n)
		k *= 2;
	if (m < k)
	{
		len = ref_path(h, m, leaves, k, path);
		ref_mth(h, leaves + k, n - k, &path[len]);
	}
	else
	{
		len = ref_path(h, m - k, leaves + k, n - k, path);
		ref_mth(h, leaves, k, &path[len]);
	}
	return len + 1;
}

static void
check_merkle_reference(HlHasher *h)
{
	HlHash		leaves[70];
	HlHash		events[70];
	bool		roots_ok = true;
	bool		paths_ok = true;
	bool		verify_ok = true;
	bool		wrong_ok = true;

	for (int i = 0; i < 70; i++)
	{
		char		data[16];

		snprintf(data, sizeof(data), "event %d", i);
		hl_sha256(h, data, strlen(data), &events[i]);
		hl_merkle_leaf_hash(h, events[i].bytes, HL_HASH_LEN, &leaves[i]);
	}
	for (uint64 n = 1; n <= 70; n++)
	{
		HlMerkleBuilder b;
		HlHash		root;
		HlHash		ref;

		hl_merkle_init(&b, h);
		for (uint64 i = 0; i < n; i++)
			hl_merkle_add(&b, events[i].bytes, HL_HASH_LEN);
		hl_merkle_root(&b, &root);
		ref_mth(h, leaves, n, &ref);
		roots_ok = roots_ok && hash_eq(&root, &ref);

		for (uint64 m = 0; m < n; m++)
		{
			HlMerklePathBuilder pb;
			HlHash		path[HL_MERKLE_MAX_HEIGHT];
			HlHash		expected[HL_MERKLE_MAX_HEIGHT];
			HlHash		leaf;
			HlHash		proot;
			int			len;
			int			ref_len;

			hl_merkle_path_init(&pb, h, m, n);
			for (uint64 i = 0; i < n; i++)
				hl_merkle_path_add(&pb, events[i].bytes, HL_HASH_LEN);
			len = hl_merkle_path_finish(&pb, &leaf, path, &proot);
			ref_len = ref_path(h, m, leaves, n, expected);
			paths_ok = paths_ok && len == ref_len && hash_eq(&proot, &ref) &&
				hash_eq(&leaf, &leaves[m]) &&
				memcmp(path, expected, len * sizeof(HlHash)) == 0;
			verify_ok = verify_ok && hl_merkle_verify_path(h, m, n, &leaf, path, len, &ref);
			/* another leaf's hash with this path must not verify */
			if (n > 1)
				wrong_ok = wrong_ok &&
					!hl_merkle_verify_path(h, m, n, &leaves[(m + 1) % n], path, len, &ref);
		}
	}
	check(roots_ok, "streaming roots equal RFC 6962's recursion for 1..70 leaves");
	check(paths_ok, "streaming audit paths equal RFC 6962's PATH(m, D[n]) for every m < n <= 70");
	check(verify_ok, "every one of those paths verifies");
	check(wrong_ok, "no path verifies another leaf");
}

/* Text forms ----------------------------------------------------------------- */

static uint64 rng_state = 0x9e3779b97f4a7c15;

static uint64
rng(void)
{
	/* splitmix64: reproducible, no dependency */
	uint64		z = (rng_state += UINT64CONST(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
check_timestamp(int64 ts, const char *expected)
{
	char		text[HL_TIMESTAMP_TEXT_MAX];
	int			len = hl_format_timestamp(ts, text);
	int64		back;

	check(strcmp(text, expected) == 0 && len == (int) strlen(expected) &&
		  hl_parse_timestamp(text, len, &back) && back == ts,
		  "timestamp " INT64_FORMAT " is \"%s\" (got \"%s\") and reads back", ts, expected, text);
}

static void
check_text_forms(void)
{
	static const char *const bad_timestamps[] = {
		"", "2000-01-01T00:00:00.000000", "2000-01-01 00:00:00.000000Z",
		"2000-01-01T00:00:00Z", "2000-01-01T00:00:00.00000Z", "2000-01-01T00:00:00.0000000Z",
		"2000-1-01T00:00:00.000000Z", "2000-13-01T00:00:00.000000Z", "2000-00-01T00:00:00.000000Z",
		"2001-02-29T00:00:00.000000Z", "1900-02-29T00:00:00.000000Z", "2000-04-31T00:00:00.000000Z",
		"2000-01-01T24:00:00.000000Z", "2000-01-01T00:60:00.000000Z", "2000-01-01T00:00:60.000000Z",
		"02000-01-01T00:00:00.000000Z", "-0000-01-01T00:00:00.000000Z", "+2000-01-01T00:00:00.000000Z",
		"Infinity", "infinity ", "-Infinity", "1000000-01-01T00:00:00.000000Z",
		"294278-01-01T00:00:00.000000Z", "-290279-01-01T00:00:00.000000Z",
		"294277-01-10T04:00:54.775807Z", "2000-01-01t00:00:00.000000z",
	};
	static const char *const bad_ints[] = {"", "-", "+1", "01", "-0", "00", "1 ", " 1",
	"9223372036854775808", "-9223372036854775809", "1e3", "0x10"};
	char		text[HL_INT64_TEXT_MAX];
	int64		v;
	bool		ok = true;

	check_timestamp(0, "2000-01-01T00:00:00.000000Z");
	check_timestamp(-1, "1999-12-31T23:59:59.999999Z");
	check_timestamp(INT64CONST(-946684800000000), "1970-01-01T00:00:00.000000Z");
	check_timestamp(INT64CONST(131328000000000) + 123456, "2004-02-29T00:00:00.123456Z");
	check_timestamp(INT64CONST(-31556908800000000), "1000-01-01T00:00:00.000000Z");
	/* PostgreSQL's range: 4714-11-24 BC (year -4713) to 294276-12-31 */
	check_timestamp(INT64CONST(-211813488000000000), "-4713-11-24T00:00:00.000000Z");
	check_timestamp(INT64CONST(9223371331200000000) - 1, "294276-12-31T23:59:59.999999Z");
	check_timestamp(INT64CONST(-63082281600000000), "0001-01-01T00:00:00.000000Z");
	check_timestamp(INT64CONST(-63082281600000000) - 1, "0000-12-31T23:59:59.999999Z");
	check_timestamp(INT64CONST(-63113904000000000), "0000-01-01T00:00:00.000000Z");
	check_timestamp(INT64CONST(-63145440000000000), "-0001-01-01T00:00:00.000000Z");
	check_timestamp(INT64CONST(252455616000000000), "10000-01-01T00:00:00.000000Z");
	check_timestamp(PG_INT64_MAX, "infinity");
	check_timestamp(PG_INT64_MIN, "-infinity");
	check_timestamp(PG_INT64_MIN + 1, "-290278-12-22T19:59:05.224193Z");
	check_timestamp(PG_INT64_MAX - 1, "294277-01-09T04:00:54.775806Z");

	for (int i = 0; i < 200000 && ok; i++)
	{
		int64		ts = (int64) rng();
		char		buf[HL_TIMESTAMP_TEXT_MAX];
		int			len;
		int64		back;

		if (i % 2)
			ts %= INT64CONST(400) * 366 * 86400 * 1000000;	/* near 2000 too */
		len = hl_format_timestamp(ts, buf);
		ok = hl_parse_timestamp(buf, len, &back) && back == ts;
		if (!ok)
			printf("# %s does not read back as " INT64_FORMAT "\n", buf, ts);
	}
	check(ok, "200000 random timestamps read back exactly");

	ok = true;
	for (size_t i = 0; i < lengthof(bad_timestamps); i++)
	{
		if (hl_parse_timestamp(bad_timestamps[i], strlen(bad_timestamps[i]), &v))
		{
			printf("# accepted \"%s\"\n", bad_timestamps[i]);
			ok = false;
		}
	}
	check(ok, "%d malformed or non-canonical timestamps are refused", (int) lengthof(bad_timestamps));

	ok = hl_format_int64(PG_INT64_MIN, text) == 20 && strcmp(text, "-9223372036854775808") == 0 &&
		hl_parse_int64(text, 20, &v) && v == PG_INT64_MIN &&
		hl_format_int64(0, text) == 1 && strcmp(text, "0") == 0 &&
		hl_format_int64(-42, text) == 3 && strcmp(text, "-42") == 0 &&
		hl_parse_int64("9223372036854775807", 19, &v) && v == PG_INT64_MAX;
	check(ok, "integers: extremes, zero and negatives");
	ok = true;
	for (int i = 0; i < 100000 && ok; i++)
	{
		int64		x = (int64) rng() >> (rng() % 64);
		int			len = hl_format_int64(x, text);

		ok = hl_parse_int64(text, len, &v) && v == x;
	}
	check(ok, "100000 random integers read back exactly");
	ok = true;
	for (size_t i = 0; i < lengthof(bad_ints); i++)
		ok = ok && !hl_parse_int64(bad_ints[i], strlen(bad_ints[i]), &v);
	check(ok, "%d malformed or non-canonical integers are refused", (int) lengthof(bad_ints));
}

static void
check_json_texts(void)
{
	static const char *const good[] = {
		"{}", "[]", "null", "true", "false", "0", "-1", "1.50", "0.001", "-0.5", "\"\"",
		"{\"a\": 1}", "{\"b\": 1, \"aa\": 2}", "{\"a\": {\"b\": [1, 2, {}]}, \"b\": []}",
		"[1, \"x\", null, true, [[]]]", "\"\\\" \\\\ \\b \\f \\n \\r \\t \\u0001 \\u001f\"",
		"\"caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f /\"", "{\"\": 0, \"a\": 0}",
		"{\"a\\\"\": 1, \"a\\\\\": 2}", "123456789012345678901234567890.000000000000000000001",
	};
	static const char *const bad[] = {
		"", " {}", "{} ", "{ }", "[1,2]", "[1 ,2]", "{\"a\":1}", "{\"a\" : 1}",
		"{\"aa\": 1, \"b\": 2}", "{\"b\": 1, \"a\": 2}", "{\"a\": 1, \"a\": 2}",
		"01", "-0", "-0.0", "1.", ".5", "1e3", "1E3", "+1", "NaN", "Infinity",
		"\"\\u0041\"", "\"\\u000a\"", "\"\\u0000\"", "\"\\u001F\"", "\"\\/\"", "\"\x01\"",
		"\"\xc3\"", "\"\xed\xa0\x80\"", "\"abc", "[1, 2", "{\"a\": 1", "True", "nul",
		"[1, ]", "{,}", "[,1]", "{\"a\": }", "\"\\x\"",
	};
	bool		ok = true;
	const char *problem;

	for (size_t i = 0; i < lengthof(good); i++)
	{
		if (!hl_json_text_is_canonical(good[i], strlen(good[i]), &problem))
		{
			printf("# refused %s: %s\n", good[i], problem);
			ok = false;
		}
	}
	check(ok, "%d texts jsonb_out can print are accepted", (int) lengthof(good));
	ok = true;
	for (size_t i = 0; i < lengthof(bad); i++)
	{
		if (hl_json_text_is_canonical(bad[i], strlen(bad[i]), &problem))
		{
			printf("# accepted %s\n", bad[i]);
			ok = false;
		}
	}
	check(ok, "%d texts jsonb_out never prints are refused", (int) lengthof(bad));
}

/* The canonical form ------------------------------------------------------- */

/* one event, field by field; NULL for SQL NULL */
typedef struct TestEvent
{
	const char *text[HL_EVENT_NFIELDS];
} TestEvent;

static void
encode_event(const TestEvent *e, StringInfo buf)
{
	hl_canonical_begin(buf);
	for (int f = 0; f < HL_EVENT_NFIELDS; f++)
	{
		const char *t = e->text[f];

		if (t == NULL)
			hl_canonical_put_null(buf);
		else if (hl_event_fields[f].kind == HL_KIND_INT8)
		{
			int64		v;

			if (!hl_parse_int64(t, strlen(t), &v))
				abort();
			hl_canonical_put_int64(buf, v);
		}
		else
			hl_canonical_put_bytes(buf, t, strlen(t));
	}
}

static const TestEvent sample = {{
		"42", "evt_0123456789abcdefgh", "acme", "Contact.Created", "contact_1", "1",
		"agent_7", "API", "internal", NULL, "2026-01-15T10:00:00.000000Z",
		"2026-01-15T10:00:00.123456Z", "{\"name\": \"Alice\"}", NULL, NULL, NULL
}};

static void
check_canonical(HlHasher *h)
{
	StringInfoData buf;
	HlCanonicalEvent parsed;
	const char *problem;
	HlHash		hash;
	char		hex[HL_HASH_HEX_LEN + 1];
	bool		ok;
	static const char expected_start[] =
		"hl-event-v1\n"
		"\x01\x00\x00\x00\x02" "42"
		"\x01\x00\x00\x00\x16" "evt_0123456789abcdefgh"
		"\x01\x00\x00\x00\x04" "acme";

	initStringInfo(&buf);
	encode_event(&sample, &buf);
	check(buf.len > (int) sizeof(expected_start) - 1 &&
		  memcmp(buf.data, expected_start, sizeof(expected_start) - 1) == 0,
		  "canonical form: magic, then 0x01, a big-endian length and the text of each field");
	check((unsigned char) buf.data[buf.len - 1] == 0 &&
		  (unsigned char) buf.data[buf.len - 2] == 0 &&
		  (unsigned char) buf.data[buf.len - 3] == 0,
		  "canonical form: NULL is one 0x00 byte");
	check(hl_canonical_parse(buf.data, buf.len, &parsed, &problem) &&
		  parsed.fields[HL_FIELD_TYPE].len == 15 &&
		  memcmp(parsed.fields[HL_FIELD_TYPE].data, "Contact.Created", 15) == 0 &&
		  parsed.fields[HL_FIELD_BEFORE].isnull,
		  "canonical form parses back");

	hl_event_hash(h, NULL, buf.data, buf.len, &hash);
	hl_hash_to_hex(&hash, hex);
	{
		HlHash		manual;
		StringInfoData pre;

		initStringInfo(&pre);
		appendBinaryStringInfo(&pre, (const char *) hl_zero_hash.bytes, HL_HASH_LEN);
		appendBinaryStringInfo(&pre, buf.data, buf.len);
		hl_sha256(h, pre.data, pre.len, &manual);
		check(hash_eq(&hash, &manual), "event hash of a first version is SHA-256(32 zero bytes || canonical form)");
		resetStringInfo(&pre);
		appendBinaryStringInfo(&pre, (const char *) manual.bytes, HL_HASH_LEN);
		appendBinaryStringInfo(&pre, buf.data, buf.len);
		hl_event_hash(h, &manual, buf.data, buf.len, &hash);
		hl_sha256(h, pre.data, pre.len, &manual);
		check(hash_eq(&hash, &manual), "event hash of a later version is SHA-256(previous hash || canonical form)");
		pfree(pre.data);
	}

	/* every one-byte change and every truncation is refused or parses differently */
	ok = true;
	for (int cut = 0; cut < buf.len; cut++)
		ok = ok && !hl_canonical_parse(buf.data, cut, &parsed, &problem);
	check(ok, "every truncation of a canonical form is refused");
	appendStringInfoChar(&buf, '\0');
	check(!hl_canonical_parse(buf.data, buf.len, &parsed, &problem),
		  "a canonical form with a byte after its last field is refused");
	buf.len--;

	{
		static const struct
		{
			int			field;
			const char *value;
		}			bad_fields[] = {
			{HL_FIELD_SEQ, "042"}, {HL_FIELD_VERSION, "+1"},
			{HL_FIELD_OCCURRED_AT, "2026-01-15 10:00:00+00"},
			{HL_FIELD_RECORDED_AT, "2026-01-15T10:00:00.1234567Z"},
			{HL_FIELD_DATA, "{\"name\":\"Alice\"}"}, {HL_FIELD_METADATA, "{\"b\": 1, \"a\": 2}"},
			{HL_FIELD_ACTOR, "bad \xff utf-8"}, {HL_FIELD_SEQ, NULL}, {HL_FIELD_DATA, NULL},
			{HL_FIELD_TENANT, NULL},
		};

		ok = true;
		for (size_t i = 0; i < lengthof(bad_fields); i++)
		{
			TestEvent	e = sample;
			StringInfoData b2;

			e.text[bad_fields[i].field] = bad_fields[i].value;
			initStringInfo(&b2);
			hl_canonical_begin(&b2);
			for (int f = 0; f < HL_EVENT_NFIELDS; f++)
			{
				if (e.text[f] == NULL)
					hl_canonical_put_null(&b2);
				else
					hl_canonical_put_bytes(&b2, e.text[f], strlen(e.text[f]));
			}
			if (hl_canonical_parse(b2.data, b2.len, &parsed, &problem))
			{
				printf("# accepted %s = %s\n", hl_event_fields[bad_fields[i].field].name,
					   bad_fields[i].value ? bad_fields[i].value : "NULL");
				ok = false;
			}
			pfree(b2.data);
		}
		check(ok, "%d fields that no row of the log can hold are refused by the parser",
			  (int) lengthof(bad_fields));
	}
	pfree(buf.data);
}

static void
check_checkpoint(HlHasher *h)
{
	HlCheckpoint cp;
	StringInfoData pre;
	HlHash		hash;
	HlHash		manual;

	memset(&cp, 0, sizeof(cp));
	cp.tenant = "acme";
	cp.tenant_len = 4;
	cp.number = 7;
	cp.prev = hl_zero_hash;
	hl_sha256(h, "root", 4, &cp.root);
	cp.count = 3;
	cp.first_seq = 10;
	cp.last_seq = INT64CONST(0x0102030405060708);

	initStringInfo(&pre);
	hl_checkpoint_preimage(&cp, &pre);
	check(pre.len == 17 + 4 + 4 + 8 + 32 + 32 + 8 + 8 + 8 &&
		  memcmp(pre.data, "hl-checkpoint-v1\n\0\0\0\4acme\0\0\0\0\0\0\0\7", 33) == 0 &&
		  memcmp(pre.data + pre.len - 8, "\1\2\3\4\5\6\7\10", 8) == 0,
		  "checkpoint preimage: magic, length-prefixed tenant, big-endian integers");
	hl_checkpoint_hash(h, &cp, &hash);
	hl_sha256(h, pre.data, pre.len, &manual);
	check(hash_eq(&hash, &manual), "checkpoint hash is SHA-256 of its preimage");
	cp.first_seq = 11;
	hl_checkpoint_hash(h, &cp, &manual);
	check(!hash_eq(&hash, &manual), "checkpoint hash covers the seq bounds");
	pfree(pre.data);
}

/* Signing --------------------------------------------------------------------- */

static HlKeyStatus
sign_file(const char *dir, const char *name, const char *datadir, HlSignature *sig)
{
	char		path[1024];
	HlKeyError	error;
	HlKeyStatus status;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	status = hl_sign_with_key_file(path, datadir, "message", 7, sig, &error);
	if (status != HL_KEY_OK)
		printf("# %s: status %d, %s\n", name, (int) status, error.detail);
	return status;
}

static void
check_signing(const char *keydir)
{
	HlSignature sig;
	HlSignature again;
	char		datadir[1024];
	char	   *b64;

	snprintf(datadir, sizeof(datadir), "%s/data", keydir);

	check(sign_file(keydir, "ed25519.pem", datadir, &sig) == HL_KEY_OK,
		  "an Ed25519 key outside the data directory signs");
	check(hl_signature_verify(sig.public_key, "message", 7, sig.signature),
		  "the signature verifies with the returned public key");
	check(!hl_signature_verify(sig.public_key, "messagE", 7, sig.signature),
		  "it does not verify another message");
	sig.signature[10] ^= 1;
	check(!hl_signature_verify(sig.public_key, "message", 7, sig.signature),
		  "a changed signature does not verify");
	sig.signature[10] ^= 1;
	check(sign_file(keydir, "ed25519.pem", datadir, &again) == HL_KEY_OK &&
		  memcmp(sig.signature, again.signature, HL_ED25519_SIGNATURE_LEN) == 0,
		  "Ed25519 signatures are deterministic");
	b64 = hl_base64(sig.public_key, HL_ED25519_PUBLIC_KEY_LEN);
	check(strlen(b64) == 44 && b64[43] == '=', "a public key is 44 characters of base64");
	pfree(b64);
	{
		FILE	   *f;
		char		path[1024];

		/* for run.sh to compare with openssl's own signature and public key */
		snprintf(path, sizeof(path), "%s/c-signature.b64", keydir);
		f = fopen(path, "w");
		if (f)
		{
			b64 = hl_base64(sig.signature, HL_ED25519_SIGNATURE_LEN);
			fprintf(f, "%s\n", b64);
			pfree(b64);
			b64 = hl_base64(sig.public_key, HL_ED25519_PUBLIC_KEY_LEN);
			fprintf(f, "%s\n", b64);
			pfree(b64);
			fclose(f);
		}
	}

	check(sign_file(keydir, "missing.pem", datadir, &sig) == HL_KEY_FILE_MISSING,
		  "a missing key file is reported as missing");
	check(sign_file(keydir, "data/inside.pem", datadir, &sig) == HL_KEY_IN_DATA_DIRECTORY,
		  "a key file inside the data directory is refused");
	check(sign_file(keydir, "link-inside.pem", datadir, &sig) == HL_KEY_IN_DATA_DIRECTORY,
		  "a symbolic link to a key inside the data directory is refused");
	check(sign_file(keydir, "data/../ed25519.pem", datadir, &sig) == HL_KEY_OK,
		  "a path through the data directory that leads out of it is accepted");
	check(sign_file(keydir, "rsa.pem", datadir, &sig) == HL_KEY_NOT_ED25519,
		  "an RSA key is refused as not Ed25519");
	check(sign_file(keydir, "encrypted.pem", datadir, &sig) == HL_KEY_NOT_PRIVATE_KEY,
		  "an encrypted key is refused without asking for a passphrase");
	check(sign_file(keydir, "public.pem", datadir, &sig) == HL_KEY_NOT_PRIVATE_KEY,
		  "a public key is refused");
	check(sign_file(keydir, "garbage.pem", datadir, &sig) == HL_KEY_NOT_PRIVATE_KEY,
		  "a file that is not PEM is refused");
	check(sign_file(keydir, "world-readable.pem", datadir, &sig) == HL_KEY_BAD_PERMISSIONS,
		  "a key readable by others is refused");
	check(sign_file(keydir, "dir.pem", datadir, &sig) == HL_KEY_NOT_A_FILE,
		  "a directory is refused");
	if (geteuid() == 0)
		check(sign_file(keydir, "other-owner.pem", datadir, &sig) == HL_KEY_BAD_OWNER,
			  "a key owned by another user is refused");
	else
		check(sign_file(keydir, "unreadable.pem", datadir, &sig) == HL_KEY_FILE_UNREADABLE,
			  "a key file that cannot be read is reported with its errno");
}

/* Vectors from hl_verify.py ------------------------------------------------------ */

/*
 * One line per event: 16 fields, each "-" for NULL or the hex of its UTF-8
 * text; then the canonical form in hex; then prev hash and event hash.
 */
static int
check_vectors(const char *file, HlHasher *h)
{
	FILE	   *f = fopen(file, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;
	int			lines = 0;
	int			bad = 0;

	if (f == NULL)
	{
		fprintf(stderr, "could not open %s\n", file);
		return 2;
	}
	while ((n = getline(&line, &cap, f)) > 0)
	{
		char	   *cols[HL_EVENT_NFIELDS + 3];
		int			ncols = 0;
		char	   *save = NULL;
		StringInfoData buf;
		char	   *expected;
		int			elen;
		HlHash		prev;
		HlHash		want;
		HlHash		got;
		HlCanonicalEvent parsed;
		const char *problem = NULL;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		for (char *tok = strtok_r(line, "\t", &save); tok && ncols < HL_EVENT_NFIELDS + 3;
			 tok = strtok_r(NULL, "\t", &save))
			cols[ncols++] = tok;
		if (ncols != HL_EVENT_NFIELDS + 3)
		{
			fprintf(stderr, "line %d has %d columns\n", lines + 1, ncols);
			return 2;
		}
		initStringInfo(&buf);
		hl_canonical_begin(&buf);
		for (int i = 0; i < HL_EVENT_NFIELDS; i++)
		{
			if (strcmp(cols[i], "-") == 0)
				hl_canonical_put_null(&buf);
			else
			{
				char	   *value = palloc(strlen(cols[i]) / 2 + 1);
				int			len = unhex(cols[i], strlen(cols[i]), value);

				value[len] = '\0';
				if (hl_event_fields[i].kind == HL_KIND_INT8)
				{
					int64		v;

					if (!hl_parse_int64(value, len, &v))
						bad++;
					hl_canonical_put_int64(&buf, v);
				}
				else if (hl_event_fields[i].kind == HL_KIND_TIMESTAMPTZ)
				{
					int64		ts;

					/* through the C formatter: the Python one must agree */
					if (!hl_parse_timestamp(value, len, &ts))
						bad++;
					hl_canonical_put_timestamp(&buf, ts);
				}
				else
					hl_canonical_put_bytes(&buf, value, len);
				pfree(value);
			}
		}
		expected = palloc(strlen(cols[HL_EVENT_NFIELDS]) / 2 + 1);
		elen = unhex(cols[HL_EVENT_NFIELDS], strlen(cols[HL_EVENT_NFIELDS]), expected);
		prev = hex_hash(cols[HL_EVENT_NFIELDS + 1]);
		want = hex_hash(cols[HL_EVENT_NFIELDS + 2]);
		hl_event_hash(h, &prev, buf.data, buf.len, &got);
		if (elen != buf.len || memcmp(expected, buf.data, elen) != 0 || !hash_eq(&got, &want) ||
			!hl_canonical_parse(buf.data, buf.len, &parsed, &problem))
		{
			printf("# vector %d differs%s%s\n", lines + 1, problem ? ": " : "", problem ? problem : "");
			bad++;
		}
		lines++;
		pfree(expected);
		pfree(buf.data);
	}
	fclose(f);
	free(line);
	check(lines > 0 && bad == 0, "%d canonical forms and event hashes from hl_verify.py are the C's too", lines);
	return finish();
}

/* Events, checkpoints and a proof for hl_verify.py ------------------------------- */

static void
json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/*
 * A small log of two tenants in the export format of hl_verify.py, its
 * checkpoints, and a proof.  Timestamps are given to hl_verify.py as epoch
 * seconds, as the export query writes them.
 */
static int
emit(const char *dir, HlHasher *h)
{
	char		path[1024];
	FILE	   *events;
	FILE	   *checkpoints;
	FILE	   *proof;
	const char *tenants[2] = {"acme", "t\xc3\xa9nant"};
	HlHash		cp_prev[2] = {hl_zero_hash, hl_zero_hash};
	HlHash		stream_prev[2][3];
	int64		stream_version[2][3] = {{0}};
	int64		seq = 0;
	int			number = 0;

	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	events = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/checkpoints.jsonl", dir);
	checkpoints = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/proof.json", dir);
	proof = fopen(path, "w");
	if (!events || !checkpoints || !proof)
	{
		fprintf(stderr, "could not write to %s\n", dir);
		return 2;
	}

	/* three checkpoints, each sealing 5 events per tenant */
	for (int round = 0; round < 3; round++)
	{
		HlHash		sealed[2][5];
		int64		first[2] = {0, 0};
		int64		last[2] = {0, 0};
		int			nsealed[2] = {0, 0};

		number++;
		for (int i = 0; i < 10; i++)
		{
			int			t = i % 2;
			int			stream = (int) (rng() % 4);	/* 3: no target */
			char		id[32];
			char		target[16];
			char		version[24];
			char		seqtext[24];
			char		data[128];
			char		occurred[HL_TIMESTAMP_TEXT_MAX];
			int64		ts = INT64CONST(820454400000000) + seq * 1234567;
			StringInfoData buf;
			HlHash		hash;
			const HlHash *prev = NULL;
			TestEvent	e;

			seq += 1 + (int) (rng() % 3);	/* gaps, as a sequence has */
			snprintf(seqtext, sizeof(seqtext), INT64_FORMAT, seq);
			snprintf(id, sizeof(id), "evt_%018d", (int) seq);
			snprintf(data, sizeof(data), "{\"n\": %d, \"note\": \"line\\nbreak \\\"q\\\"\"}", i);
			hl_format_timestamp(ts, occurred);
			memset(&e, 0, sizeof(e));
			e.text[HL_FIELD_SEQ] = seqtext;
			e.text[HL_FIELD_ID] = id;
			e.text[HL_FIELD_TENANT] = tenants[t];
			e.text[HL_FIELD_TYPE] = stream < 3 ? "Deal.Updated" : "page_view";
			if (stream < 3)
			{
				snprintf(target, sizeof(target), "deal_%d", stream);
				snprintf(version, sizeof(version), INT64_FORMAT, ++stream_version[t][stream]);
				e.text[HL_FIELD_TARGET] = target;
				e.text[HL_FIELD_VERSION] = version;
				if (stream_version[t][stream] > 1)
					prev = &stream_prev[t][stream];
			}
			e.text[HL_FIELD_ACTOR] = i % 3 ? "agent_7" : NULL;
			e.text[HL_FIELD_SOURCE] = "API";
			e.text[HL_FIELD_OCCURRED_AT] = occurred;
			e.text[HL_FIELD_RECORDED_AT] = occurred;
			e.text[HL_FIELD_DATA] = data;
			e.text[HL_FIELD_METADATA] = i % 4 ? NULL : "{\"url\": \"https://example.com/\"}";
			e.text[HL_FIELD_RAW_PAYLOAD] = i % 5 ? NULL : "raw\tbytes\n";

			initStringInfo(&buf);
			encode_event(&e, &buf);
			hl_event_hash(h, prev, buf.data, buf.len, &hash);
			if (stream < 3)
				stream_prev[t][stream] = hash;
			pfree(buf.data);

			sealed[t][nsealed[t]++] = hash;
			if (first[t] == 0)
				first[t] = seq;
			last[t] = seq;

			fprintf(events, "{\"seq\": " INT64_FORMAT ", \"id\": ", seq);
			json_string(events, id);
			fprintf(events, ", \"tenant\": ");
			json_string(events, tenants[t]);
			fprintf(events, ", \"type\": ");
			json_string(events, e.text[HL_FIELD_TYPE]);
			if (stream < 3)
			{
				fprintf(events, ", \"target\": ");
				json_string(events, target);
				fprintf(events, ", \"version\": %s", version);
			}
			else
				fprintf(events, ", \"target\": null, \"version\": null");
			fprintf(events, ", \"actor\": ");
			if (e.text[HL_FIELD_ACTOR])
				json_string(events, e.text[HL_FIELD_ACTOR]);
			else
				fprintf(events, "null");
			fprintf(events, ", \"source\": \"API\", \"source_type\": null, \"external_event_id\": null");
			/* as timestamptz prints in UTC with DateStyle ISO: trailing zeros dropped */
			{
				char		iso[HL_TIMESTAMP_TEXT_MAX + 8];
				int			len;

				strcpy(iso, occurred);
				iso[10] = ' ';
				len = strlen(iso) - 1;	/* without the Z */
				while (iso[len - 1] == '0')
					len--;
				if (iso[len - 1] == '.')
					len--;
				strcpy(iso + len, "+00");
				fprintf(events, ", \"occurred_at\": \"%s\", \"recorded_at\": \"%s\"", iso, iso);
			}
			fprintf(events, ", \"data\": ");
			json_string(events, data);
			fprintf(events, ", \"before\": null, \"metadata\": ");
			if (e.text[HL_FIELD_METADATA])
				json_string(events, e.text[HL_FIELD_METADATA]);
			else
				fprintf(events, "null");
			fprintf(events, ", \"raw_payload\": ");
			if (e.text[HL_FIELD_RAW_PAYLOAD])
				json_string(events, e.text[HL_FIELD_RAW_PAYLOAD]);
			else
				fprintf(events, "null");
			{
				char		hex[HL_HASH_HEX_LEN + 1];

				hl_hash_to_hex(&hash, hex);
				fprintf(events, ", \"hash\": \"%s\", \"checkpoint\": %d}\n", hex, number);
			}
		}

		for (int t = 0; t < 2; t++)
		{
			HlMerkleBuilder b;
			HlCheckpoint cp;
			HlHash		cph;
			char		hex[4][HL_HASH_HEX_LEN + 1];

			hl_merkle_init(&b, h);
			for (int i = 0; i < nsealed[t]; i++)
				hl_merkle_add(&b, sealed[t][i].bytes, HL_HASH_LEN);
			cp.tenant = tenants[t];
			cp.tenant_len = strlen(tenants[t]);
			cp.number = number;
			cp.prev = cp_prev[t];
			hl_merkle_root(&b, &cp.root);
			cp.count = nsealed[t];
			cp.first_seq = first[t];
			cp.last_seq = last[t];
			hl_checkpoint_hash(h, &cp, &cph);

			hl_hash_to_hex(&cp.prev, hex[0]);
			hl_hash_to_hex(&cp.root, hex[1]);
			hl_hash_to_hex(&cph, hex[2]);
			fprintf(checkpoints, "{\"tenant\": ");
			json_string(checkpoints, tenants[t]);
			fprintf(checkpoints, ", \"number\": %d, \"prev_hash\": \"%s\", \"root\": \"%s\", \"count\": %d, \"first_seq\": " INT64_FORMAT ", \"last_seq\": " INT64_FORMAT ", \"hash\": \"%s\"}\n",
					number, hex[0], hex[1], nsealed[t], first[t], last[t], hex[2]);

			/* a proof for the fourth event of the first tenant's second checkpoint */
			if (round == 1 && t == 0)
			{
				HlMerklePathBuilder pb;
				HlHash		p[HL_MERKLE_MAX_HEIGHT];
				HlHash		leaf;
				HlHash		root;
				int			len;

				hl_merkle_path_init(&pb, h, 3, nsealed[t]);
				for (int i = 0; i < nsealed[t]; i++)
					hl_merkle_path_add(&pb, sealed[t][i].bytes, HL_HASH_LEN);
				len = hl_merkle_path_finish(&pb, &leaf, p, &root);
				hl_hash_to_hex(&sealed[t][3], hex[3]);
				fprintf(proof, "{\"event_hash\": \"%s\", \"leaf_index\": 3, \"tree_size\": %d, \"path\": [",
						hex[3], nsealed[t]);
				for (int i = 0; i < len; i++)
				{
					char		phex[HL_HASH_HEX_LEN + 1];

					hl_hash_to_hex(&p[i], phex);
					fprintf(proof, "%s\"%s\"", i ? ", " : "", phex);
				}
				fprintf(proof, "], \"root\": \"%s\", \"checkpoint\": {\"tenant\": ", hex[1]);
				json_string(proof, tenants[t]);
				fprintf(proof, ", \"number\": %d, \"prev_hash\": \"%s\", \"root\": \"%s\", \"count\": %d, \"first_seq\": " INT64_FORMAT ", \"last_seq\": " INT64_FORMAT ", \"hash\": \"%s\"}}\n",
						number, hex[0], hex[1], nsealed[t], first[t], last[t], hex[2]);
			}
			cp_prev[t] = cph;
		}
	}
	fclose(events);
	fclose(checkpoints);
	fclose(proof);
	return 0;
}

/* Throughput of the pure part ---------------------------------------------------- */

static int
bench(long n, HlHasher *h)
{
	StringInfoData buf;
	HlHash		prev = hl_zero_hash;
	struct timespec t0,
				t1;
	double		secs;
	char		data[256];
	TestEvent	e = sample;

	/* a 200-byte data object */
	memset(data, 0, sizeof(data));
	snprintf(data, sizeof(data), "{\"name\": \"Alice Example\", \"email\": \"alice@example.com\", \"stage\": \"qualified\", \"score\": 87, \"tags\": [\"vip\", \"newsletter\"], \"address\": {\"city\": \"Lisbon\", \"zip\": \"1100-148\"}, \"owner\": \"agent_7\"}");
	e.text[HL_FIELD_DATA] = data;
	printf("# data object: %d bytes\n", (int) strlen(data));

	initStringInfo(&buf);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
	{
		resetStringInfo(&buf);
		encode_event(&e, &buf);
		hl_event_hash(h, &prev, buf.data, buf.len, &prev);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# canonical form: %d bytes\n", buf.len);
	printf("%ld events framed and hashed in %.3f s: %.0f events/s\n", n, secs, n / secs);
	return 0;
}

/* a checkpoint's tree: the root over N event hashes */
static int
bench_merkle(long n, HlHasher *h)
{
	HlMerkleBuilder b;
	HlHash		leaf = hl_zero_hash;
	HlHash		root;
	struct timespec t0,
				t1;
	double		secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	hl_merkle_init(&b, h);
	for (long i = 0; i < n; i++)
	{
		memcpy(leaf.bytes, &i, sizeof(i));
		hl_merkle_add(&b, leaf.bytes, HL_HASH_LEN);
	}
	hl_merkle_root(&b, &root);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("Merkle root over %ld event hashes in %.3f s: %.0f leaves/s\n", n, secs, n / secs);
	return 0;
}

int
main(int argc, char **argv)
{
	HlHasher   *h;
	int			rc;

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s check KEYDIR | vectors FILE | emit DIR | bench N | merkle N\n", argv[0]);
		return 2;
	}
	h = hl_hasher_create();
	if (strcmp(argv[1], "vectors") == 0)
		rc = check_vectors(argv[2], h);
	else if (strcmp(argv[1], "emit") == 0)
		rc = emit(argv[2], h);
	else if (strcmp(argv[1], "bench") == 0)
		rc = bench(atol(argv[2]), h);
	else if (strcmp(argv[1], "merkle") == 0)
		rc = bench_merkle(atol(argv[2]), h);
	else if (strcmp(argv[1], "check") == 0)
	{
		check_sha256(h);
		check_rfc6962(h);
		check_merkle_reference(h);
		check_text_forms();
		check_json_texts();
		check_canonical(h);
		check_checkpoint(h);
		check_signing(argv[2]);
		rc = finish();
	}
	else
	{
		fprintf(stderr, "unknown command \"%s\"\n", argv[1]);
		rc = 2;
	}
	hl_hasher_free(h);
	return rc;
}
