#include "thou/static_files.h"
#include "thou/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct thou_static {
    int root_fd;
};

enum thou_status thou_static_open(const char *dir, struct thou_static **out)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? THOU_ENOTFOUND : THOU_EIO;
    struct thou_static *st = thou_xmalloc(sizeof(*st));
    st->root_fd = fd;
    *out = st;
    return THOU_OK;
}

void thou_static_free(struct thou_static *st)
{
    if (!st)
        return;
    close(st->root_fd);
    free(st);
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"txt", "text/plain; charset=utf-8"},
    {"webmanifest", "application/manifest+json"},
    {"woff2", "font/woff2"},
};

const char *thou_static_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {
        for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
            if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
                return mime_types[i].type;
    }
    return "application/octet-stream";
}

/* Bytes a path may never carry: control characters, backslashes and '%'
 * (the URL decoder leaves '%' only where decoding would have produced a
 * control character, or where the client encoded '%' itself). */
static bool has_forbidden_byte(const char *path)
{
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\' || *p == '%')
            return true;
    return false;
}

/* True when any segment is empty, "." or "..": checked on the whole path
 * before anything is opened, so the answer does not depend on which
 * directories happen to exist. */
static bool has_bad_segment(const char *path)
{
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return true;
        if (!slash)
            return false;
        p = slash + 1;
    }
}

/* Open one segment below dir_fd without following a symlink. O_NONBLOCK
 * keeps a FIFO from blocking the thread in open(); fstat() refuses it
 * afterwards, and the flag has no effect on reading a regular file. */
static int open_segment(int dir_fd, const char *name, bool last)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last ? O_NONBLOCK : O_DIRECTORY);
    return openat(dir_fd, name, flags);
}

enum thou_status thou_static_resolve(const struct thou_static *st, const char *rel, int *fd,
                                     uint64_t *size, char *etag, size_t etag_len)
{
    enum thou_status rc = THOU_OK;
    char *copy = NULL;
    int dir_fd = -1, file_fd = -1;

    if (rel[0] == '\0')
        rel = "index.html";
    if (has_forbidden_byte(rel) || has_bad_segment(rel))
        return THOU_EINVAL;
    copy = thou_xstrdup(rel);
    dir_fd = dup(st->root_fd);
    if (dir_fd < 0) {
        rc = THOU_EIO;
        goto out;
    }
    char *segment = copy;
    for (;;) {
        char *slash = strchr(segment, '/');
        if (slash)
            *slash = '\0';
        if (segment[0] == '\0' || strcmp(segment, ".") == 0 || strcmp(segment, "..") == 0) {
            rc = THOU_EINVAL;
            goto out;
        }
        if (segment[0] == '.') {
            rc = THOU_ENOTFOUND;
            goto out;
        }
        int next = open_segment(dir_fd, segment, slash == NULL);
        if (next < 0) {
            rc = THOU_ENOTFOUND;
            goto out;
        }
        close(dir_fd);
        dir_fd = -1;
        if (!slash) {
            file_fd = next;
            break;
        }
        dir_fd = next;
        segment = slash + 1;
    }

    struct stat sb;
    if (fstat(file_fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = THOU_ENOTFOUND;
        goto out;
    }
    snprintf(etag, etag_len, "\"%llx-%llx-%llx\"", (unsigned long long)sb.st_ino,
             (unsigned long long)sb.st_size,
             (unsigned long long)sb.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)sb.st_mtim.tv_nsec);
    *size = (uint64_t)sb.st_size;
    *fd = file_fd;
    file_fd = -1;
out:
    if (dir_fd >= 0)
        close(dir_fd);
    if (file_fd >= 0)
        close(file_fd);
    free(copy);
    return rc;
}

/* True when an If-None-Match header value lists etag (or is "*"). */
static bool etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match)
        return false;
    size_t etag_len = strlen(etag);
    const char *p = if_none_match;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, etag_len) == 0 &&
            (p[etag_len] == '\0' || p[etag_len] == ',' || p[etag_len] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

void thou_static_serve(const struct thou_static *st, const char *rel, const char *if_none_match,
                       struct thou_response *res)
{
    int fd = -1;
    uint64_t size = 0;
    char etag[sizeof(res->etag)];
    enum thou_status rc = thou_static_resolve(st, rel, &fd, &size, etag, sizeof(etag));
    if (rc == THOU_EINVAL) {
        thou_response_error(res, 400, "bad_path", "the path is not allowed");
        return;
    }
    if (rc) {
        thou_response_error(res, 404, "not_found", "no such file");
        return;
    }
    memcpy(res->etag, etag, sizeof(etag));
    /* Revalidate every time: the page doing the crypto must never be a stale copy. */
    res->cache_control = "no-cache";
    if (etag_matches(if_none_match, etag)) {
        close(fd);
        res->status = 304;
        return;
    }
    res->status = 200;
    res->content_type = thou_static_mime_type(rel[0] ? rel : "index.html");
    res->file_fd = fd;
    res->file_size = size;
}
