#pragma once

#include "thou/http.h"
#include "thou/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Static files of the browser client, served from one directory that no
 * request can leave: every path segment is opened relative to its parent
 * with O_NOFOLLOW, so "..", encoded dots and symlinks cannot escape.
 */

struct thou_static;

/** Open the static root. THOU_ENOTFOUND/THOU_EIO when it is not a readable directory. */
enum thou_status thou_static_open(const char *dir, struct thou_static **out);

/** Close the root; NULL is a no-op. */
void thou_static_free(struct thou_static *st);

/**
 * Open the file at relative path rel (no leading '/'; "" means index.html)
 * for reading. Returns THOU_OK with *fd and the file's size and ETag,
 * THOU_EINVAL for a path that tries to leave the root or holds forbidden
 * bytes ("..", ".", empty segments, '\\', '%', control characters),
 * THOU_ENOTFOUND for anything missing, hidden (a segment starting with '.'),
 * a symlink or not a regular file.
 */
enum thou_status thou_static_resolve(const struct thou_static *st, const char *rel, int *fd,
                                     uint64_t *size, char *etag, size_t etag_len);

/** MIME type for a file name by its extension; "application/octet-stream" if unknown. */
const char *thou_static_mime_type(const char *name);

/*
 * Precompressed copies: a file "name" may have siblings "name.br" and
 * "name.gz" (made at build time by script/build-static.mjs, never per
 * request), sent in its place by content negotiation on Accept-Encoding.
 */
enum thou_coding {
    THOU_CODING_IDENTITY = 0,
    THOU_CODING_GZIP = 1 << 0,
    THOU_CODING_BR = 1 << 1,
};

/** The refusal of thou_static_negotiate(): the client accepts nothing the file has. */
#define THOU_CODING_NONE (-1)

/**
 * Choose the coding of a file that exists plain and in the codings of
 * available (THOU_CODING_* flags) for a request whose Accept-Encoding value
 * is accept_encoding (NULL when absent: the plain file). The best-weighted
 * available coding wins, brotli over gzip on a tie, a compressed one over
 * identity unless identity is weighted higher; unknown codings and
 * malformed elements are ignored. Returns THOU_CODING_NONE only when the
 * header refuses identity ("identity;q=0", or "*;q=0" without identity) and
 * accepts none of available: the caller answers 406 (RFC 9110 §12.5.3).
 */
int thou_static_negotiate(const char *accept_encoding, unsigned available);

/* Hex digits of the content hash in a generated file name. */
#define THOU_STATIC_HASH_LEN 16

/**
 * True when the last segment of rel carries a content hash as
 * script/build-static.mjs writes it: "stem.<16 lowercase hex>.ext" (or
 * "name.<hash>" without an extension). Such a file never changes under its
 * name, so browsers may keep it for a year.
 */
bool thou_static_is_hashed(const char *rel);

/**
 * Fill res for a GET or HEAD of rel: 200 with the file or its best
 * precompressed copy for accept_encoding (Content-Encoding, and Vary when
 * copies exist, each copy with its own ETag), 304 when if_none_match names
 * the chosen copy's ETag, 406 when accept_encoding refuses every copy the
 * file has, or an error response. Hashed names get a year-long immutable
 * Cache-Control, every other file no-cache.
 */
void thou_static_serve(const struct thou_static *st, const char *rel, const char *if_none_match,
                       const char *accept_encoding, struct thou_response *res);
