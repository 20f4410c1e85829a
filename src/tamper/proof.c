/*-------------------------------------------------------------------------
 *
 * proof.c
 *	  RFC 6962 audit paths for headlessly.proof().
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

/* backend only: test/tamper/run.sh compiles src/tamper/ for a frontend too */
#ifndef FRONTEND

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(headlessly_merkle_audit_path);

/*
 * merkle_audit_path(leaves bytea[], leaf_index bigint) RETURNS bytea[]:
 * the sibling hashes from the leaf up (RFC 6962 2.1.1) in the tree whose
 * leaves are the given event hashes, in order.
 */
Datum
headlessly_merkle_audit_path(PG_FUNCTION_ARGS)
{
	ArrayType  *leaves = PG_GETARG_ARRAYTYPE_P(0);
	int64		index = PG_GETARG_INT64(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	HlHasher   *hasher;
	HlMerklePathBuilder pb;
	HlHash		leaf;
	HlHash		root;
	HlHash		path[HL_MERKLE_MAX_HEIGHT];
	Datum		out[HL_MERKLE_MAX_HEIGHT];
	int			len;

	if (ARR_NDIM(leaves) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("leaves must be a one-dimensional array")));
	deconstruct_array(leaves, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (index < 0 || index >= n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("leaf index " INT64_FORMAT " is outside a tree of %d leaves", index, n)));

	hasher = hl_hasher_create();
	hl_merkle_path_init(&pb, hasher, (uint64) index, (uint64) n);
	for (int i = 0; i < n; i++)
	{
		bytea	   *b;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("leaf %d of the tree is NULL", i)));
		b = DatumGetByteaPP(elems[i]);
		hl_merkle_path_add(&pb, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	}
	len = hl_merkle_path_finish(&pb, &leaf, path, &root);
	for (int i = 0; i < len; i++)
		out[i] = PointerGetDatum(hl_hash_to_bytea(&path[i]));
	hl_hasher_free(hasher);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, len, BYTEAOID, -1, false, TYPALIGN_INT));
}

#endif							/* !FRONTEND */
