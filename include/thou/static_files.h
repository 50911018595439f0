#pragma once

#include "thou/http.h"
#include "thou/status.h"

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

/**
 * Fill res for a GET of rel: 200 with the file, 304 when if_none_match
 * names its ETag, or an error response.
 */
void thou_static_serve(const struct thou_static *st, const char *rel, const char *if_none_match,
                       struct thou_response *res);
