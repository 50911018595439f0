#include "thou/mem.h"

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
