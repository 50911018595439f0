#include "thou/buf.h"
#include "thou/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void thou_buf_init(struct thou_buf *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void thou_buf_release(struct thou_buf *buf)
{
    free(buf->data);
    thou_buf_init(buf);
}

void thou_buf_reset(struct thou_buf *buf)
{
    buf->len = 0;
    if (buf->data)
        buf->data[0] = '\0';
}

static void reserve(struct thou_buf *buf, size_t extra)
{
    /* A size that wraps around can only come from a bug: abort like an
     * allocation failure rather than write out of bounds. */
    if (extra > SIZE_MAX - buf->len - 1)
        abort();
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    buf->data = thou_xrealloc(buf->data, cap);
    buf->cap = cap;
}

void thou_buf_reserve(struct thou_buf *buf, size_t extra)
{
    reserve(buf, extra);
}

void thou_buf_append(struct thou_buf *buf, const void *data, size_t len)
{
    reserve(buf, len);
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void thou_buf_puts(struct thou_buf *buf, const char *s)
{
    thou_buf_append(buf, s, strlen(s));
}

void thou_buf_vprintf(struct thou_buf *buf, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    reserve(buf, (size_t)n);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    buf->len += (size_t)n;
}

void thou_buf_printf(struct thou_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    thou_buf_vprintf(buf, fmt, ap);
    va_end(ap);
}

char *thou_buf_steal(struct thou_buf *buf, size_t *len)
{
    if (!buf->data) {
        reserve(buf, 0);
        buf->data[0] = '\0';
    }
    char *data = buf->data;
    if (len)
        *len = buf->len;
    thou_buf_init(buf);
    return data;
}
