#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * HTTP/1.1 message syntax (RFC 9112), the parts thou's server needs: the
 * request head and chunked request bodies. Pure functions over caller-owned
 * bytes, no I/O and no allocation, so the event loop in server.c stays about
 * connections and this stays testable byte by byte.
 */

/* What a head can be refused for; each maps to one HTTP status. */
enum thou_http1_error {
    THOU_HTTP1_OK = 0,
    THOU_HTTP1_INCOMPLETE,     /* no end of head yet: read more */
    THOU_HTTP1_BAD_REQUEST,    /* 400 */
    THOU_HTTP1_TOO_LARGE,      /* 431: the head does not fit the limit */
    THOU_HTTP1_BAD_VERSION,    /* 505 */
    THOU_HTTP1_NOT_IMPLEMENTED /* 501: a transfer coding other than chunked */
};

struct thou_http1_head {
    const char *method; /* NUL-terminated, inside the parsed buffer */
    char *path;         /* the target before '?', still percent-encoded */
    unsigned minor;     /* HTTP/1.<minor> */
    const char *content_type;
    const char *authorization;
    const char *last_event_id;
    const char *if_none_match;
    const char *accept_encoding;
    bool has_length;
    uint64_t content_length;
    bool chunked;
    bool keep_alive;      /* the connection may carry another request */
    bool expect_continue; /* "Expect: 100-continue" */
    size_t head_len;      /* bytes of the head, including the blank line */
};

/**
 * Parse the request head at the start of buf (len bytes; the caller keeps
 * one writable byte after them). Writes NULs into buf to end the strings
 * it returns. INCOMPLETE while no blank line is in the first max bytes,
 * TOO_LARGE once len reaches max without one.
 */
enum thou_http1_error thou_http1_parse_head(char *buf, size_t len, size_t max,
                                            struct thou_http1_head *head);

/** Decode %XX escapes in place, except those giving a control byte (%00). */
void thou_http1_unescape(char *s);

/* Incremental decoder of a chunked body (RFC 9112 §7.1); trailers are read
 * and dropped. */
struct thou_http1_chunked {
    int state;
    uint64_t left; /* bytes left in the current chunk */
    unsigned digits;
};

/** Start decoding a new body. */
void thou_http1_chunked_init(struct thou_http1_chunked *chunked);

/**
 * Decode the len bytes of buf in place: the data bytes among them are moved
 * to the front (*data_len of them) and *used input bytes are consumed.
 * Returns 1 at the end of the body (bytes after it are not consumed), 0 when
 * it needs more input, -1 on a malformed body.
 */
int thou_http1_chunked_decode(struct thou_http1_chunked *chunked, char *buf, size_t len,
                              size_t *used, size_t *data_len);
