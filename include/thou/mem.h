#pragma once

#include <stddef.h>

#include <stdbool.h>

/*
 * Two kinds of allocation. thou_x* abort the process on failure: for
 * start-up (the router, the registries, the store, the server) only, where
 * a server that cannot allocate cannot start either. Request paths use
 * thou_malloc and friends (and jansson, through thou_mem_use_for_json),
 * which return NULL: the request is refused with 503 out_of_memory (the
 * HTTP adapter closes a connection it cannot make a record for) and the
 * process goes on; a background thread skips that round and tries again.
 * Anything sized by a client must be checked against a configured cap
 * before it reaches either.
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

/** malloc() for request paths: NULL on failure (or when a test injected one). */
void *thou_malloc(size_t size);

/** calloc() for request paths: NULL on failure. */
void *thou_calloc(size_t count, size_t size);

/** realloc() for request paths: NULL on failure, and ptr is left as it was. */
void *thou_realloc(void *ptr, size_t size);

/** strdup() for request paths: NULL on failure; s must not be NULL. */
char *thou_strdup(const char *s);

/** Have jansson allocate through thou_malloc (call once at start-up, before any JSON). */
void thou_mem_use_for_json(void);

/**
 * Fault injection for tests: the allocation through thou_malloc/thou_calloc
 * (and so jansson) `after` allocations from now fails (0: the next), once;
 * -1 disarms. Process-wide.
 */
void thou_mem_fail_at(long after);

/**
 * Mark this thread as parsing JSON (on) or done (off): injected failures skip
 * allocations made meanwhile. jansson 2.14's parser does not survive a
 * failed allocation (it reports a syntax error, or corrupts the heap), so
 * no test can make it fail without testing jansson's bug instead of thou.
 * A real shortage there is the library's; thou_json_parse says 503 where it
 * can tell.
 */
void thou_mem_parsing(bool on);

/** True while an injected failure has not happened yet. */
bool thou_mem_fail_pending(void);
