/*
 * The request-head parser on arbitrary bytes, under a few limits. Whatever
 * it accepts must keep its promises: a head inside the input and the limit,
 * every string it returns inside the head and ended there, an origin-form
 * path, and a path that percent-decoding cannot turn into control bytes.
 */
#include "thou/http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A returned string lies inside the head and ends with a NUL there. */
static void check_string(const char *s, const char *buf, size_t head_len)
{
    if (!s)
        return;
    if (s < buf || s >= buf + head_len)
        __builtin_trap();
    if (!memchr(s, '\0', (size_t)(buf + head_len - s)))
        __builtin_trap();
}

static void check_unescape(const char *path)
{
    size_t len = strlen(path);
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, path, len + 1);
    thou_http1_unescape(copy);
    /* The parser lets only visible ASCII into the path, and decoding must
     * never produce a control byte or DEL: only '%XX' may change, and only
     * into a byte from 0x20 up, 0x7f excluded. */
    size_t out = strlen(copy);
    if (out > len)
        __builtin_trap();
    for (size_t i = 0; i < out; i++) {
        unsigned char c = (unsigned char)copy[i];
        if (c < 0x20 || c == 0x7f)
            __builtin_trap();
    }
    free(copy);
}

static void parse_with_limit(const uint8_t *data, size_t size, size_t max)
{
    /* Exactly size + 1 bytes: the parser may use the byte after the data,
     * which is no NUL, so any read that relies on one shows under ASan. */
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    if (size)
        memcpy(buf, data, size);
    buf[size] = 'X';

    struct thou_http1_head head;
    enum thou_http1_error rc = thou_http1_parse_head(buf, size, max, &head);
    if (rc == THOU_HTTP1_OK) {
        if (head.head_len < 4 || head.head_len > size || head.head_len > max)
            __builtin_trap();
        if (!head.method || !head.path || head.minor > 1)
            __builtin_trap();
        check_string(head.method, buf, head.head_len);
        check_string(head.path, buf, head.head_len);
        check_string(head.content_type, buf, head.head_len);
        check_string(head.authorization, buf, head.head_len);
        check_string(head.last_event_id, buf, head.head_len);
        check_string(head.if_none_match, buf, head.head_len);
        if (head.path[0] != '/')
            __builtin_trap();
        if (head.chunked && head.has_length)
            __builtin_trap();
        check_unescape(head.path);
    } else if (rc == THOU_HTTP1_TOO_LARGE && size < max) {
        __builtin_trap();
    } else if (rc == THOU_HTTP1_INCOMPLETE && size >= max) {
        __builtin_trap();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[] = {64, 4096};
    parse_with_limit(data, size, size);
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        parse_with_limit(data, size, limits[i]);
    return 0;
}
