#include "thou/mem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "thou: out of memory allocating %zu bytes\n", size);
    abort();
}

void *thou_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *thou_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *thou_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *thou_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return thou_xstrndup(s, strlen(s));
}

char *thou_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = thou_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- failable allocation, for request paths ------------------------------ */

/* Allocations left before the injected failure; -1 when none is armed. */
static _Atomic long fail_countdown = -1;

void thou_mem_fail_at(long after)
{
    atomic_store(&fail_countdown, after);
}

bool thou_mem_fail_pending(void)
{
    return atomic_load(&fail_countdown) >= 0;
}

/* Parsing JSON on this thread: injected failures skip it (see mem.h). */
static _Thread_local int parsing;

void thou_mem_parsing(bool on)
{
    parsing += on ? 1 : -1;
}

/* True when this allocation is the one a test asked to fail. */
static bool injected_failure(void)
{
    if (parsing || atomic_load_explicit(&fail_countdown, memory_order_relaxed) < 0)
        return false;
    return atomic_fetch_sub(&fail_countdown, 1) == 0;
}

void *thou_malloc(size_t size)
{
    return injected_failure() ? NULL : malloc(size ? size : 1);
}

void *thou_calloc(size_t count, size_t size)
{
    return injected_failure() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *thou_realloc(void *ptr, size_t size)
{
    return injected_failure() ? NULL : realloc(ptr, size ? size : 1);
}

char *thou_strdup(const char *s)
{
    size_t len = strlen(s);
    char *p = thou_malloc(len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

void thou_mem_use_for_json(void)
{
    json_set_alloc_funcs(thou_malloc, free);
}
