/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  The hash that seals one tenant's checkpoint.
 *
 *	  checkpoint_hash = SHA-256(
 *		  "hl-checkpoint-v1\n"			17 bytes
 *		  tenant length					4 bytes, big-endian
 *		  tenant						UTF-8
 *		  checkpoint number				8 bytes, big-endian two's complement
 *		  previous checkpoint hash		32 bytes; zeros for the tenant's first
 *		  Merkle root					32 bytes, over the sealed event hashes
 *										in seq order
 *		  leaf count					8 bytes
 *		  first seq sealed				8 bytes; 0 when nothing was sealed
 *		  last seq sealed				8 bytes; 0 when nothing was sealed)
 *
 *	  The count and the seq bounds are implied by the tree, but sealing them
 *	  lets a verifier tell a removed or inserted event from an altered one
 *	  before it has recomputed anything.  Every field has a fixed size except
 *	  the length-prefixed tenant, so the preimage reads back one way only.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

static void
append_be64(StringInfo buf, int64 value)
{
	char		bytes[8];
	uint64		v = (uint64) value;

	for (int i = 7; i >= 0; i--)
	{
		bytes[i] = (char) (v & 0xff);
		v >>= 8;
	}
	appendBinaryStringInfo(buf, bytes, 8);
}

void
hl_checkpoint_preimage(const HlCheckpoint *checkpoint, StringInfo buf)
{
	char		len[4];
	uint32		n = checkpoint->tenant_len;

	appendBinaryStringInfo(buf, HL_CHECKPOINT_MAGIC, HL_CHECKPOINT_MAGIC_LEN);
	len[0] = (char) (n >> 24);
	len[1] = (char) (n >> 16);
	len[2] = (char) (n >> 8);
	len[3] = (char) n;
	appendBinaryStringInfo(buf, len, 4);
	appendBinaryStringInfo(buf, checkpoint->tenant, (int) n);
	append_be64(buf, checkpoint->number);
	appendBinaryStringInfo(buf, (const char *) checkpoint->prev.bytes, HL_HASH_LEN);
	appendBinaryStringInfo(buf, (const char *) checkpoint->root.bytes, HL_HASH_LEN);
	append_be64(buf, checkpoint->count);
	append_be64(buf, checkpoint->first_seq);
	append_be64(buf, checkpoint->last_seq);
}

void
hl_checkpoint_hash(HlHasher *hasher, const HlCheckpoint *checkpoint, HlHash *result)
{
	StringInfoData buf;

	initStringInfo(&buf);
	hl_checkpoint_preimage(checkpoint, &buf);
	hl_sha256(hasher, buf.data, buf.len, result);
	pfree(buf.data);
}
