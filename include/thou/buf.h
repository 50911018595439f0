#pragma once

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable, length-carrying, always NUL-terminated byte buffer for building
 * text (responses, SSE frames, metrics). Embedded by value: thou_buf_init()
 * then thou_buf_release(). Growth aborts on out-of-memory like thou_xmalloc.
 */
struct thou_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
};

/** Make an empty buffer; no allocation happens until the first append. */
void thou_buf_init(struct thou_buf *buf);

/** Make room for extra more bytes, so the appends that follow do not reallocate. */
void thou_buf_reserve(struct thou_buf *buf, size_t extra);

/** Free the buffer's memory and reset it to empty. */
void thou_buf_release(struct thou_buf *buf);

/** Forget the contents but keep the memory for reuse. */
void thou_buf_reset(struct thou_buf *buf);

/** Append len bytes. */
void thou_buf_append(struct thou_buf *buf, const void *data, size_t len);

/** Append a NUL-terminated string. */
void thou_buf_puts(struct thou_buf *buf, const char *s);

/** Append printf-formatted text. */
void thou_buf_printf(struct thou_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Append vprintf-formatted text. */
void thou_buf_vprintf(struct thou_buf *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/**
 * Hand the contents to the caller (free() them) and reset the buffer.
 * Returns an empty heap string for an empty buffer, never NULL.
 */
char *thou_buf_steal(struct thou_buf *buf, size_t *len);
