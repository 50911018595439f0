#pragma once

#include <stddef.h>

/*
 * Allocation wrappers for small, internally sized objects: they abort the
 * process on failure, because a server that cannot allocate a few hundred
 * bytes cannot do anything useful. Anything sized by a client must be checked
 * against a configured cap before it reaches these.
 */

/** malloc() that aborts on failure. */
void *thou_xmalloc(size_t size);

/** calloc() that aborts on failure. */
void *thou_xcalloc(size_t count, size_t size);

/** realloc() that aborts on failure. */
void *thou_xrealloc(void *ptr, size_t size);

/** strdup() that aborts on failure; thou_xstrdup(NULL) returns NULL. */
char *thou_xstrdup(const char *s);

/** Copy at most n bytes of s into a new NUL-terminated string; aborts on failure. */
char *thou_xstrndup(const char *s, size_t n);
