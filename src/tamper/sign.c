/*-------------------------------------------------------------------------
 *
 * sign.c
 *	  Ed25519 signatures over checkpoint hashes, with OpenSSL's EVP API.
 *
 *	  The signed message is the 32 bytes of the checkpoint hash.  The key is
 *	  an unencrypted PEM private key ("openssl genpkey -algorithm ed25519")
 *	  named by a superuser setting.  It must live outside the data directory
 *	  (whoever can rewrite the data could otherwise read or replace the key,
 *	  and every base backup would carry it), and, like ssl_key_file, be owned
 *	  by the database user with no group or world access, or by root with at
 *	  most group read.
 *
 *	  The key is read for each signature and every OpenSSL object is freed
 *	  before any error is raised, so an error never leaks one.
 *
 *-------------------------------------------------------------------------
 */
#include "tamper/tamper.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "common/base64.h"

#ifndef FRONTEND
#include "miscadmin.h"
#endif

/* never ask for a passphrase (the default callback would read a terminal) */
static int
no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	return 0;
}

static void
openssl_detail(HlKeyError *error, const char *fallback)
{
	unsigned long code = ERR_get_error();

	if (code != 0)
		ERR_error_string_n(code, error->detail, sizeof(error->detail));
	else
		strlcpy(error->detail, fallback, sizeof(error->detail));
	ERR_clear_error();
}

static bool
path_is_inside(const char *path, const char *directory)
{
	size_t		len = strlen(directory);

	if (len == 1 && directory[0] == '/')
		return true;
	return strncmp(path, directory, len) == 0 &&
		(path[len] == '/' || path[len] == '\0');
}

/* checks the file, then opens it; on success *fd is open */
static HlKeyStatus
open_key_file(const char *path, const char *data_directory, int *fd, HlKeyError *error)
{
	char		real_key[PATH_MAX];
	char		real_data[PATH_MAX];
	struct stat st;

	/* symbolic links and ".." resolved, so that neither hides the data directory */
	if (realpath(path, real_key) == NULL)
	{
		error->saved_errno = errno;
		return errno == ENOENT ? HL_KEY_FILE_MISSING : HL_KEY_FILE_UNREADABLE;
	}
	if (data_directory != NULL)
	{
		if (realpath(data_directory, real_data) == NULL)
			strlcpy(real_data, data_directory, sizeof(real_data));
		if (path_is_inside(real_key, real_data))
		{
			strlcpy(error->detail, real_key, sizeof(error->detail));
			return HL_KEY_IN_DATA_DIRECTORY;
		}
	}

	*fd = open(real_key, O_RDONLY | O_CLOEXEC, 0);
	if (*fd < 0)
	{
		error->saved_errno = errno;
		return errno == ENOENT ? HL_KEY_FILE_MISSING : HL_KEY_FILE_UNREADABLE;
	}
	if (fstat(*fd, &st) < 0)
	{
		error->saved_errno = errno;
		close(*fd);
		return HL_KEY_FILE_UNREADABLE;
	}
	if (!S_ISREG(st.st_mode))
	{
		close(*fd);
		return HL_KEY_NOT_A_FILE;
	}
	/* the rules PostgreSQL applies to ssl_key_file */
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(*fd);
		return HL_KEY_BAD_OWNER;
	}
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
		(st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
	{
		close(*fd);
		return HL_KEY_BAD_PERMISSIONS;
	}
	return HL_KEY_OK;
}

/*
 * Sign `message` with the Ed25519 key in the PEM file at `path`, refusing a
 * file inside `data_directory` (NULL: no such check).  On HL_KEY_OK,
 * *result holds the signature and the raw public key.
 */
HlKeyStatus
hl_sign_with_key_file(const char *path, const char *data_directory,
					  const void *message, size_t len,
					  HlSignature *result, HlKeyError *error)
{
	HlKeyStatus status;
	int			fd;
	FILE	   *file;
	EVP_PKEY   *key;
	EVP_MD_CTX *ctx;
	size_t		signature_len = HL_ED25519_SIGNATURE_LEN;
	size_t		public_key_len = HL_ED25519_PUBLIC_KEY_LEN;

	memset(error, 0, sizeof(*error));
	status = open_key_file(path, data_directory, &fd, error);
	if (status != HL_KEY_OK)
		return status;

	file = fdopen(fd, "r");
	if (file == NULL)
	{
		error->saved_errno = errno;
		close(fd);
		return HL_KEY_FILE_UNREADABLE;
	}

	ERR_clear_error();
	key = PEM_read_PrivateKey(file, NULL, no_passphrase, NULL);
	fclose(file);
	if (key == NULL)
	{
		openssl_detail(error, "no PEM private key found");
		return HL_KEY_NOT_PRIVATE_KEY;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_ED25519)
	{
		const char *name = OBJ_nid2sn(EVP_PKEY_base_id(key));

		strlcpy(error->detail, name ? name : "unknown", sizeof(error->detail));
		EVP_PKEY_free(key);
		return HL_KEY_NOT_ED25519;
	}

	status = HL_KEY_OK;
	ctx = EVP_MD_CTX_new();
	/* Ed25519 signs in one shot, with no separate digest */
	if (ctx == NULL ||
		EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
		EVP_DigestSign(ctx, result->signature, &signature_len,
					   (const unsigned char *) message, len) != 1 ||
		signature_len != HL_ED25519_SIGNATURE_LEN ||
		EVP_PKEY_get_raw_public_key(key, result->public_key, &public_key_len) != 1 ||
		public_key_len != HL_ED25519_PUBLIC_KEY_LEN)
	{
		openssl_detail(error, "the signature has an unexpected length");
		status = HL_KEY_SIGN_FAILED;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return status;
}

bool
hl_signature_verify(const uint8 *public_key, const void *message, size_t len,
					const uint8 *signature)
{
	EVP_PKEY   *key;
	EVP_MD_CTX *ctx;
	bool		ok;

	key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key,
									  HL_ED25519_PUBLIC_KEY_LEN);
	if (key == NULL)
	{
		ERR_clear_error();
		return false;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
		EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		EVP_DigestVerify(ctx, signature, HL_ED25519_SIGNATURE_LEN,
						 (const unsigned char *) message, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return ok;
}

/* standard base64 with padding, palloc'd and NUL-terminated */
char *
hl_base64(const uint8 *data, int len)
{
	int			room = pg_b64_enc_len(len) + 1;
	char	   *out = palloc(room);
	int			written = pg_b64_encode((const void *) data, len, out, room);

	if (written < 0)
		hl_tamper_failure("base64", "the output does not fit");
	out[written] = '\0';
	return out;
}

#ifndef FRONTEND

#define KEY_HINT "Create a key with \"openssl genpkey -algorithm ed25519 -out FILE\" outside the data directory, owned by the database user with mode 0600, and set headlessly.signing_key_file to its path."

void
hl_sign_checkpoint_hash(const char *path, const HlHash *hash, HlSignature *result)
{
	HlKeyError	error;

	switch (hl_sign_with_key_file(path, DataDir, hash->bytes, HL_HASH_LEN, result, &error))
	{
		case HL_KEY_OK:
			return;
		case HL_KEY_FILE_MISSING:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("signing key file \"%s\" does not exist", path),
					 errhint(KEY_HINT)));
			break;
		case HL_KEY_FILE_UNREADABLE:
			errno = error.saved_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read signing key file \"%s\": %m", path)));
			break;
		case HL_KEY_NOT_A_FILE:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" is not a regular file", path),
					 errhint(KEY_HINT)));
			break;
		case HL_KEY_IN_DATA_DIRECTORY:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" is inside the data directory", path),
					 errdetail("It resolves to \"%s\". Whoever can change the data could read or replace a key kept with it, and every base backup would carry it.",
							   error.detail),
					 errhint(KEY_HINT)));
			break;
		case HL_KEY_BAD_OWNER:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" must be owned by the database user or root",
							path)));
			break;
		case HL_KEY_BAD_PERMISSIONS:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" has group or world access", path),
					 errdetail("File must have permissions u=rw (0600) or less if owned by the database user, or permissions u=rw,g=r (0640) or less if owned by root.")));
			break;
		case HL_KEY_NOT_PRIVATE_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" holds no unencrypted private key in PEM form",
							path),
					 errdetail("OpenSSL: %s", error.detail),
					 errhint(KEY_HINT)));
			break;
		case HL_KEY_NOT_ED25519:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("signing key file \"%s\" holds a %s key, not an Ed25519 key",
							path, error.detail),
					 errhint(KEY_HINT)));
			break;
		case HL_KEY_SIGN_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not sign with the key in \"%s\"", path),
					 errdetail("OpenSSL: %s", error.detail)));
			break;
	}
	elog(ERROR, "unexpected signing key status");
}

#endif							/* !FRONTEND */
