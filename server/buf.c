#include "thou/buf.h"
#include "thou/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void thou_buf_init(struct thou_buf *buf)
{
    *buf = (struct thou_buf){0};
}

void thou_buf_init_failable(struct thou_buf *buf)
{
    *buf = (struct thou_buf){.may_fail = true};
}

bool thou_buf_failed(const struct thou_buf *buf)
{
    return buf->failed;
}

void thou_buf_release(struct thou_buf *buf)
{
    free(buf->data);
    *buf = (struct thou_buf){.may_fail = buf->may_fail};
}

void thou_buf_reset(struct thou_buf *buf)
{
    buf->len = 0;
    buf->failed = false;
    if (buf->data)
        buf->data[0] = '\0';
}

/* Room for extra more bytes; false (only for a failable buffer, then marked
 * failed) when there is none. */
static bool reserve(struct thou_buf *buf, size_t extra)
{
    /* A size that wraps around can only come from a bug: abort like an
     * allocation failure rather than write out of bounds. */
    if (extra > SIZE_MAX - buf->len - 1)
        abort();
    if (buf->failed)
        return false;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = buf->may_fail ? thou_realloc(buf->data, cap) : thou_xrealloc(buf->data, cap);
    if (!data) {
        buf->failed = true;
        return false;
    }
    buf->data = data;
    buf->cap = cap;
    return true;
}

void thou_buf_reserve(struct thou_buf *buf, size_t extra)
{
    reserve(buf, extra);
}

void thou_buf_append(struct thou_buf *buf, const void *data, size_t len)
{
    if (!reserve(buf, len))
        return;
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
    if (n < 0 || !reserve(buf, (size_t)n))
        return;
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
    if (buf->failed || (!buf->data && !reserve(buf, 0))) {
        thou_buf_release(buf);
        return NULL;
    }
    if (!buf->len)
        buf->data[0] = '\0';
    char *data = buf->data;
    if (len)
        *len = buf->len;
    *buf = (struct thou_buf){.may_fail = buf->may_fail};
    return data;
}
