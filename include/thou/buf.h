#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * A growable, length-carrying, always NUL-terminated byte buffer for building
 * text (responses, SSE frames, metrics). Embedded by value: thou_buf_init()
 * then thou_buf_release(). Growth aborts on out-of-memory like thou_xmalloc,
 * except in a buffer made with thou_buf_init_failable (request paths): there
 * a failed growth marks the buffer failed, and it ignores appends until
 * reset; its owner checks thou_buf_failed() and refuses or ends what it was
 * building.
 */
struct thou_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    bool may_fail; /* made by thou_buf_init_failable; kept by release and reset */
    bool failed;   /* a growth failed: the contents are incomplete */
};

/** Make an empty buffer; no allocation happens until the first append. */
void thou_buf_init(struct thou_buf *buf);

/** Make an empty buffer whose growth may fail (see above) instead of aborting. */
void thou_buf_init_failable(struct thou_buf *buf);

/** True when a growth of a failable buffer failed since it was made, released or reset. */
bool thou_buf_failed(const struct thou_buf *buf);

/** Make room for extra more bytes, so the appends that follow do not reallocate
 *  (a failable buffer that cannot grow is marked failed). */
void thou_buf_reserve(struct thou_buf *buf, size_t extra);

/** Free the buffer's memory and reset it to empty (and not failed). */
void thou_buf_release(struct thou_buf *buf);

/** Forget the contents (and a failure) but keep the memory for reuse. */
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
 * Returns an empty heap string for an empty buffer; NULL only for a failable
 * buffer that failed (or cannot allocate even that).
 */
char *thou_buf_steal(struct thou_buf *buf, size_t *len);
