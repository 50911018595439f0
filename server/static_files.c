#include "thou/static_files.h"
#include "thou/mem.h"

#include <ctype.h>
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

/* Walk path (a writable copy, checked already) down to the directory that
 * holds its last segment; *base then points at that segment inside path. */
static enum thou_status open_parent(const struct thou_static *st, char *path, int *dir_out,
                                    const char **base)
{
    int dir_fd = dup(st->root_fd);
    if (dir_fd < 0)
        return THOU_EIO;
    char *segment = path;
    for (char *slash = strchr(segment, '/'); slash; slash = strchr(segment, '/')) {
        *slash = '\0';
        if (segment[0] == '.') {
            close(dir_fd);
            return THOU_ENOTFOUND;
        }
        int next = open_segment(dir_fd, segment, false);
        close(dir_fd);
        if (next < 0)
            return THOU_ENOTFOUND;
        dir_fd = next;
        segment = slash + 1;
    }
    if (segment[0] == '.') {
        close(dir_fd);
        return THOU_ENOTFOUND;
    }
    *dir_out = dir_fd;
    *base = segment;
    return THOU_OK;
}

/* Open the regular file name below dir_fd; THOU_ENOTFOUND for anything else. */
static enum thou_status open_regular(int dir_fd, const char *name, int *fd, struct stat *sb)
{
    int file_fd = open_segment(dir_fd, name, true);
    if (file_fd < 0)
        return THOU_ENOTFOUND;
    if (fstat(file_fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(file_fd);
        return THOU_ENOTFOUND;
    }
    *fd = file_fd;
    return THOU_OK;
}

/* An ETag from what changes whenever the file is replaced or rewritten;
 * suffix tells precompressed copies apart at a glance. */
static void make_etag(const struct stat *sb, const char *suffix, char *etag, size_t etag_len)
{
    snprintf(etag, etag_len, "\"%llx-%llx-%llx%s\"", (unsigned long long)sb->st_ino,
             (unsigned long long)sb->st_size,
             (unsigned long long)sb->st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)sb->st_mtim.tv_nsec,
             suffix);
}

/* Check rel and open the directory holding it; "" means index.html. */
static enum thou_status locate(const struct thou_static *st, const char *rel, char **copy,
                               int *dir_fd, const char **base)
{
    if (rel[0] == '\0')
        rel = "index.html";
    if (has_forbidden_byte(rel) || has_bad_segment(rel))
        return THOU_EINVAL;
    *copy = thou_strdup(rel);
    if (!*copy)
        return THOU_ENOMEM;
    enum thou_status rc = open_parent(st, *copy, dir_fd, base);
    if (rc) {
        free(*copy);
        *copy = NULL;
    }
    return rc;
}

enum thou_status thou_static_resolve(const struct thou_static *st, const char *rel, int *fd,
                                     uint64_t *size, char *etag, size_t etag_len)
{
    char *copy = NULL;
    int dir_fd = -1;
    const char *base = NULL;
    enum thou_status rc = locate(st, rel, &copy, &dir_fd, &base);
    if (rc)
        return rc;
    struct stat sb;
    rc = open_regular(dir_fd, base, fd, &sb);
    if (!rc) {
        make_etag(&sb, "", etag, etag_len);
        *size = (uint64_t)sb.st_size;
    }
    close(dir_fd);
    free(copy);
    return rc;
}

/* ---- content negotiation ------------------------------------------------------------ */

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool is_token_char(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A qvalue (RFC 9110 §12.4.2) in thousandths: "0" ["." 0*3DIGIT] or
 * "1" ["." 0*3"0"]. Returns the characters used, 0 when malformed. */
static size_t parse_qvalue(const char *p, unsigned *q)
{
    if (p[0] != '0' && p[0] != '1')
        return 0;
    unsigned value = (unsigned)(p[0] - '0') * 1000, scale = 100;
    size_t n = 1;
    if (p[1] == '.') {
        for (n = 2; n < 5 && isdigit((unsigned char)p[n]); n++, scale /= 10)
            value += (unsigned)(p[n] - '0') * scale;
    }
    if (value > 1000)
        return 0;
    *q = value;
    return n;
}

struct weights {
    int gzip, br, identity, any; /* thousandths; -1 where the header names no such coding */
};

/* Record one "coding;q=x" element [p, end); malformed elements change nothing. */
static void weigh_element(const char *p, const char *end, struct weights *w)
{
    const char *name = p;
    while (p < end && is_token_char((unsigned char)*p))
        p++;
    size_t name_len = (size_t)(p - name);
    unsigned q = 1000;
    p = skip_ows(p);
    while (p < end && *p == ';') {
        p = skip_ows(p + 1);
        if (end - p < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
            return; /* Accept-Encoding defines no parameter but the weight */
        size_t used = parse_qvalue(p + 2, &q);
        if (used == 0)
            return;
        p = skip_ows(p + 2 + used);
    }
    if (name_len == 0 || p != end)
        return;
    int *slot = NULL;
    if (name_len == 4 && strncasecmp(name, "gzip", 4) == 0)
        slot = &w->gzip;
    else if (name_len == 6 && strncasecmp(name, "x-gzip", 6) == 0)
        slot = &w->gzip; /* RFC 9110 §8.4.1.3: an alias */
    else if (name_len == 2 && strncasecmp(name, "br", 2) == 0)
        slot = &w->br;
    else if (name_len == 8 && strncasecmp(name, "identity", 8) == 0)
        slot = &w->identity;
    else if (name_len == 1 && name[0] == '*')
        slot = &w->any;
    if (slot && *slot < 0)
        *slot = (int)q; /* the first mention of a coding counts */
}

int thou_static_negotiate(const char *accept_encoding, unsigned available)
{
    if (!accept_encoding)
        return THOU_CODING_IDENTITY; /* nothing said: the form every client can read */
    struct weights w = {-1, -1, -1, -1};
    for (const char *p = accept_encoding; *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        /* OWS never runs past end: it stops at the comma or the NUL there. */
        const char *first = skip_ows(p);
        if (first < end)
            weigh_element(first, end, &w);
        p = comma ? comma + 1 : end;
    }
    /* A coding the header does not name takes the weight of "*", if any. */
    int gzip = w.gzip >= 0 ? w.gzip : (w.any >= 0 ? w.any : 0);
    int br = w.br >= 0 ? w.br : (w.any >= 0 ? w.any : 0);
    int best = THOU_CODING_IDENTITY, best_q = 0;
    if ((available & THOU_CODING_BR) && br > best_q) {
        best = THOU_CODING_BR;
        best_q = br;
    }
    if ((available & THOU_CODING_GZIP) && gzip > best_q) {
        best = THOU_CODING_GZIP;
        best_q = gzip;
    }
    /* Identity is acceptable unless refused (§12.5.3); it wins only when
     * the client weighs it above every compressed form it accepts. */
    int identity = w.identity >= 0 ? w.identity : (w.any == 0 ? 0 : 1000);
    if (best != THOU_CODING_IDENTITY && !(w.identity >= 0 && identity > best_q))
        return best;
    return identity > 0 ? THOU_CODING_IDENTITY : THOU_CODING_NONE;
}

bool thou_static_is_hashed(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    const char *last_dot = strrchr(base, '.');
    if (!last_dot || last_dot == base)
        return false;
    /* "stem.<hash>.ext": the hash sits between the last two dots ... */
    const char *dot = last_dot;
    while (dot > base && dot[-1] != '.')
        dot--;
    const char *hash = dot;
    size_t len = (size_t)(last_dot - hash);
    /* ... or, without an extension, after the last one. */
    if (dot == base || len != THOU_STATIC_HASH_LEN) {
        hash = last_dot + 1;
        len = strlen(hash);
        if (len != THOU_STATIC_HASH_LEN || last_dot == base)
            return false;
    } else if (dot - 1 == base) {
        return false; /* ".<hash>.ext": no stem */
    }
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)hash[i]) && !(hash[i] >= 'a' && hash[i] <= 'f'))
            return false;
    return true;
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

static const struct {
    enum thou_coding coding;
    const char *suffix; /* of the sibling file, and of its ETag */
    const char *name;   /* in Content-Encoding */
} codings[] = {
    {THOU_CODING_BR, ".br", "br"},
    {THOU_CODING_GZIP, ".gz", "gzip"},
};
enum { N_CODINGS = sizeof(codings) / sizeof(codings[0]) };

/* Open the precompressed siblings of base that exist; fds[i] stays -1 for the others. */
static unsigned open_siblings(int dir_fd, const char *base, int fds[N_CODINGS],
                              struct stat sbs[N_CODINGS])
{
    unsigned available = 0;
    size_t base_len = strlen(base);
    char *name = thou_malloc(base_len + 4);
    if (!name) /* the plain file is served instead: a refusal would help nobody */
        return 0;
    for (size_t i = 0; i < N_CODINGS; i++) {
        memcpy(name, base, base_len);
        memcpy(name + base_len, codings[i].suffix, 4);
        if (open_regular(dir_fd, name, &fds[i], &sbs[i]) == THOU_OK)
            available |= (unsigned)codings[i].coding;
    }
    free(name);
    return available;
}

void thou_static_serve(const struct thou_static *st, const char *rel, const char *if_none_match,
                       const char *accept_encoding, struct thou_response *res)
{
    char *copy = NULL;
    int dir_fd = -1, plain_fd = -1, sibling_fds[N_CODINGS] = {-1, -1};
    struct stat plain_sb, sibling_sbs[N_CODINGS];
    const char *base = NULL;
    const char *name = rel[0] ? rel : "index.html";

    enum thou_status rc = locate(st, rel, &copy, &dir_fd, &base);
    if (!rc)
        rc = open_regular(dir_fd, base, &plain_fd, &plain_sb);
    if (rc == THOU_EINVAL) {
        thou_response_error(res, 400, "bad_path", "the path is not allowed");
        goto out;
    }
    if (rc == THOU_ENOMEM) {
        thou_response_status(res, rc);
        goto out;
    }
    if (rc) {
        thou_response_error(res, 404, "not_found", "no such file");
        goto out;
    }
    unsigned available = open_siblings(dir_fd, base, sibling_fds, sibling_sbs);
    int coding = thou_static_negotiate(accept_encoding, available);
    if (coding == THOU_CODING_NONE) {
        thou_response_error(res, 406, "not_acceptable",
                            "the file exists only in codings the request refuses");
        res->vary = "Accept-Encoding";
        goto out;
    }
    /* Caches must keep one copy per Accept-Encoding only where copies differ. */
    res->vary = available ? "Accept-Encoding" : NULL;
    int fd = plain_fd;
    const struct stat *sb = &plain_sb;
    const char *suffix = "";
    for (size_t i = 0; i < N_CODINGS; i++) {
        if (coding == (int)codings[i].coding) {
            fd = sibling_fds[i];
            sb = &sibling_sbs[i];
            suffix = codings[i].suffix;
            res->content_encoding = codings[i].name;
        }
    }
    make_etag(sb, suffix, res->etag, sizeof(res->etag));
    /* A hashed name never changes content; anything else is revalidated
     * every time, since the page doing the crypto must never be stale. */
    res->cache_control =
        thou_static_is_hashed(name) ? "public, max-age=31536000, immutable" : "no-cache";
    if (etag_matches(if_none_match, res->etag)) {
        res->status = 304;
        res->content_encoding = NULL;
        goto out;
    }
    res->status = 200;
    res->content_type = thou_static_mime_type(name);
    res->file_fd = fd;
    res->file_size = (uint64_t)sb->st_size;
    if (fd == plain_fd)
        plain_fd = -1;
    for (size_t i = 0; i < N_CODINGS; i++)
        if (fd == sibling_fds[i])
            sibling_fds[i] = -1;
out:
    for (size_t i = 0; i < N_CODINGS; i++)
        if (sibling_fds[i] >= 0)
            close(sibling_fds[i]);
    if (plain_fd >= 0)
        close(plain_fd);
    if (dir_fd >= 0)
        close(dir_fd);
    free(copy);
}
