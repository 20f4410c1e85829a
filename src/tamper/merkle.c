/*-------------------------------------------------------------------------
 *
 * merkle.c
 *	  Merkle trees as RFC 6962 (Certificate Transparency) defines them.
 *
 *	  leaf hash	 = SHA-256(0x00 || leaf data)	(our leaf data: an event hash)
 *	  node hash	 = SHA-256(0x01 || left || right)
 *	  MTH({})	 = SHA-256(""), the empty string
 *	  MTH(D[n])	 = node(MTH(D[0:k]), MTH(D[k:n])) for n > 1, k the largest
 *				   power of two smaller than n
 *
 *	  The 0x00/0x01 prefixes keep a leaf from passing for a node.  Roots and
 *	  audit paths are computed from leaves given one at a time, in O(log n)
 *	  memory, so a checkpoint or a proof over millions of events never holds
 *	  them all.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

void
hl_merkle_leaf_hash(HlHasher *hasher, const void *data, size_t len, HlHash *result)
{
	static const uint8 prefix = 0x00;

	hl_hash_begin(hasher);
	hl_hash_update(hasher, &prefix, 1);
	hl_hash_update(hasher, data, len);
	hl_hash_end(hasher, result);
}

void
hl_merkle_node_hash(HlHasher *hasher, const HlHash *left, const HlHash *right,
					HlHash *result)
{
	static const uint8 prefix = 0x01;

	hl_hash_begin(hasher);
	hl_hash_update(hasher, &prefix, 1);
	hl_hash_update(hasher, left->bytes, HL_HASH_LEN);
	hl_hash_update(hasher, right->bytes, HL_HASH_LEN);
	hl_hash_end(hasher, result);
}

void
hl_merkle_empty_root(HlHasher *hasher, HlHash *result)
{
	hl_sha256(hasher, "", 0, result);
}

/* Roots -------------------------------------------------------------------- */

void
hl_merkle_init(HlMerkleBuilder *builder, HlHasher *hasher)
{
	builder->hasher = hasher;
	builder->count = 0;
	builder->depth = 0;
}

/*
 * stack[0 .. depth-1] are the roots of perfect subtrees whose sizes are the
 * binary digits of count, largest first: a new leaf merges with the subtrees
 * of its own size, as a carry ripples through a binary counter.
 */
void
hl_merkle_add_leaf_hash(HlMerkleBuilder *builder, const HlHash *leaf)
{
	HlHash		carry = *leaf;

	if (builder->count == PG_UINT64_MAX)
		hl_tamper_failure("a Merkle tree", "it has 2^64 - 1 leaves already");

	for (uint64 c = builder->count; c & 1; c >>= 1)
		hl_merkle_node_hash(builder->hasher, &builder->stack[--builder->depth],
							&carry, &carry);
	builder->stack[builder->depth++] = carry;
	builder->count++;
}

void
hl_merkle_add(HlMerkleBuilder *builder, const void *data, size_t len)
{
	HlHash		leaf;

	hl_merkle_leaf_hash(builder->hasher, data, len, &leaf);
	hl_merkle_add_leaf_hash(builder, &leaf);
}

/* The root of the leaves so far; more may be added afterwards. */
void
hl_merkle_root(const HlMerkleBuilder *builder, HlHash *root)
{
	HlHash		acc;

	if (builder->count == 0)
	{
		hl_merkle_empty_root(builder->hasher, root);
		return;
	}
	/* the largest subtree is the left child at each level: fold from the right */
	acc = builder->stack[builder->depth - 1];
	for (int i = builder->depth - 2; i >= 0; i--)
		hl_merkle_node_hash(builder->hasher, &builder->stack[i], &acc, &acc);
	*root = acc;
}

/* Audit paths -------------------------------------------------------------- */

static uint64
largest_power_of_two_below(uint64 n)
{
	uint64		k = 1;

	Assert(n > 1);
	while (k < n - k)
		k <<= 1;
	return k;
}

/*
 * PATH(m, D[n]) lists the roots of the subtrees that are siblings of m's
 * ancestors, deepest first.  Those subtrees and leaf m cover the tree without
 * overlap, so one pass over the leaves in order builds each in turn.
 */
void
hl_merkle_path_init(HlMerklePathBuilder *pb, HlHasher *hasher, uint64 index, uint64 size)
{
	uint64		lo = 0;
	uint64		hi = size;
	HlMerkleRange top_down[HL_MERKLE_MAX_HEIGHT];
	int			n = 0;

	if (index >= size)
		hl_tamper_failure("an audit path", "the leaf index is not below the tree size");

	pb->hasher = hasher;
	pb->index = index;
	pb->size = size;
	pb->seen = 0;
	pb->current = 0;

	while (hi - lo > 1)
	{
		uint64		k = largest_power_of_two_below(hi - lo);

		if (index < lo + k)
		{
			top_down[n].start = lo + k;
			top_down[n].end = hi;
			hi = lo + k;
		}
		else
		{
			top_down[n].start = lo;
			top_down[n].end = lo + k;
			lo = lo + k;
		}
		n++;
	}
	pb->nranges = n;

	/* in leaf order, each knowing its place in the path (deepest first) */
	for (int i = 0; i < n; i++)
	{
		HlMerkleRange r = top_down[i];
		int			j = i;

		r.slot = n - 1 - i;
		while (j > 0 && pb->ranges[j - 1].start > r.start)
		{
			pb->ranges[j] = pb->ranges[j - 1];
			j--;
		}
		pb->ranges[j] = r;
	}
}

void
hl_merkle_path_add_leaf_hash(HlMerklePathBuilder *pb, const HlHash *leaf)
{
	uint64		i = pb->seen;
	HlMerkleRange *r;

	if (i >= pb->size)
		hl_tamper_failure("an audit path", "more leaves were given than the tree size");
	pb->seen++;

	if (i == pb->index)
	{
		pb->leaf = *leaf;
		return;
	}

	r = &pb->ranges[pb->current];
	Assert(i >= r->start && i < r->end);
	if (i == r->start)
		hl_merkle_init(&pb->range_builder, pb->hasher);
	hl_merkle_add_leaf_hash(&pb->range_builder, leaf);
	if (i + 1 == r->end)
	{
		hl_merkle_root(&pb->range_builder, &pb->path[r->slot]);
		pb->current++;
	}
}

void
hl_merkle_path_add(HlMerklePathBuilder *pb, const void *data, size_t len)
{
	HlHash		leaf;

	hl_merkle_leaf_hash(pb->hasher, data, len, &leaf);
	hl_merkle_path_add_leaf_hash(pb, &leaf);
}

/*
 * Once all `size` leaves were given: the leaf hash of `index`, its audit path
 * (path has room for HL_MERKLE_MAX_HEIGHT hashes) and the tree's root.
 * Returns the length of the path.
 */
int
hl_merkle_path_finish(HlMerklePathBuilder *pb, HlHash *leaf, HlHash *path, HlHash *root)
{
	if (pb->seen != pb->size)
		hl_tamper_failure("an audit path", "fewer leaves were given than the tree size");

	memcpy(path, pb->path, pb->nranges * sizeof(HlHash));
	*leaf = pb->leaf;
	if (!hl_merkle_root_from_path(pb->hasher, pb->index, pb->size, leaf, path,
								  pb->nranges, root))
		hl_tamper_failure("an audit path", "the path does not fit the tree");
	return pb->nranges;
}

/*
 * The root that an audit path leads to (RFC 9162 2.1.3.2), or false if the
 * path cannot belong to leaf `index` of a tree of `size` leaves.
 */
bool
hl_merkle_root_from_path(HlHasher *hasher, uint64 index, uint64 size,
						 const HlHash *leaf, const HlHash *path, int path_len,
						 HlHash *root)
{
	uint64		fn = index;
	uint64		sn;
	HlHash		r = *leaf;

	if (index >= size)
		return false;
	sn = size - 1;

	for (int i = 0; i < path_len; i++)
	{
		if (sn == 0)
			return false;		/* the path is too long */
		if ((fn & 1) || fn == sn)
		{
			hl_merkle_node_hash(hasher, &path[i], &r, &r);
			if (!(fn & 1))
			{
				while (!(fn & 1) && fn != 0)
				{
					fn >>= 1;
					sn >>= 1;
				}
			}
		}
		else
			hl_merkle_node_hash(hasher, &r, &path[i], &r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return false;			/* the path is too short */
	*root = r;
	return true;
}

bool
hl_merkle_verify_path(HlHasher *hasher, uint64 index, uint64 size,
					  const HlHash *leaf, const HlHash *path, int path_len,
					  const HlHash *root)
{
	HlHash		computed;

	return hl_merkle_root_from_path(hasher, index, size, leaf, path, path_len, &computed) &&
		memcmp(computed.bytes, root->bytes, HL_HASH_LEN) == 0;
}
