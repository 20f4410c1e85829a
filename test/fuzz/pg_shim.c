/*-------------------------------------------------------------------------
 *
 * pg_shim.c
 *	  What the fuzz harnesses need from the backend to run src/log/'s pure
 *	  checks outside a server: ereport(ERROR) returns to the harness through
 *	  longjmp, and palloc allocates in an arena the harness frees after each
 *	  input, as a memory context reset would.
 *
 *	  The files under test are compiled as they are, against the server's
 *	  headers; -ffunction-sections and --gc-sections drop the functions that
 *	  need a running server, so nothing here pretends to be one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>

#include "mb/pg_wchar.h"
#include "pg_shim.h"

sigjmp_buf *hl_fuzz_on_error;
int			hl_fuzz_sqlstate;

static char message[1024];

/* ereport -------------------------------------------------------------------- */

bool
errstart(int elevel, const char *domain)
{
	return elevel >= ERROR;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (hl_fuzz_on_error == NULL)
	{
		fprintf(stderr, "ereport(ERROR) outside a harness's try: %s\n", message);
		abort();
	}
	siglongjmp(*hl_fuzz_on_error, 1);
}

int
errcode(int sqlerrcode)
{
	hl_fuzz_sqlstate = sqlerrcode;
	return 0;
}

/* format every message, so that a bad argument shows under the sanitizers */
#define FORMAT_INTO_MESSAGE(fmt) \
	do { \
		va_list		ap; \
		va_start(ap, fmt); \
		vsnprintf(message, sizeof(message), fmt, ap); \
		va_end(ap); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	FORMAT_INTO_MESSAGE(fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	FORMAT_INTO_MESSAGE(fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	FORMAT_INTO_MESSAGE(fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	FORMAT_INTO_MESSAGE(fmt);
	return 0;
}

/* the server clips in its database encoding: UTF-8 here */
int
pg_mbcliplen(const char *mbstr, int len, int limit)
{
	int			clen = 0;

	while (clen < len && mbstr[clen])
	{
		int			l = pg_utf_mblen((const unsigned char *) mbstr + clen);

		if (clen + l > limit)
			break;
		clen += l;
	}
	return Min(clen, len);
}

/* palloc in an arena ------------------------------------------------------------ */

typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	size_t		size;
	max_align_t align[];
} Chunk;

static Chunk arena = {&arena, &arena, 0};

void *
palloc(Size size)
{
	Chunk	   *c = malloc(sizeof(Chunk) + size);

	if (c == NULL)
		abort();
	c->size = size;
	c->next = arena.next;
	c->prev = &arena;
	arena.next->prev = c;
	arena.next = c;
	return c->align;
}

void *
palloc0(Size size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

void
pfree(void *pointer)
{
	Chunk	   *c = (Chunk *) ((char *) pointer - offsetof(Chunk, align));

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

void *
repalloc(void *pointer, Size size)
{
	Chunk	   *c = (Chunk *) ((char *) pointer - offsetof(Chunk, align));
	void	   *p = palloc(size);

	memcpy(p, pointer, Min(size, c->size));
	pfree(pointer);
	return p;
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void
hl_fuzz_arena_reset(void)
{
	while (arena.next != &arena)
		pfree(arena.next->align);
}
