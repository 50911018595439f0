#include "thou/static_files.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[64];
static char outside[64]; /* a second temp dir the static root must never reach */
static struct thou_static *st;
static int fds_before;

static int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    while (readdir(dir))
        n++;
    closedir(dir);
    return n;
}

static void write_at(const char *base, const char *rel, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    FILE *file = fopen(path, "w");
    ck_assert_msg(file != NULL, "cannot create '%s': %s", path, strerror(errno));
    ck_assert_int_ge(fputs(content, file), 0);
    ck_assert_int_eq(fclose(file), 0);
}

static void mkdir_at(const char *base, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    ck_assert_msg(mkdir(path, 0700) == 0, "mkdir '%s': %s", path, strerror(errno));
}

static void symlink_at(const char *target, const char *base, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    ck_assert_msg(symlink(target, path) == 0, "symlink '%s': %s", path, strerror(errno));
}

static void unlink_at(const char *base, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    ck_assert_msg(unlink(path) == 0, "unlink '%s': %s", path, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    if (path[0])
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/thou_static_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(outside, sizeof(outside), "/tmp/thou_outside_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(outside));
    write_at(outside, "secret.txt", "outside secret\n");
    write_at(outside, "index.html", "outside index\n");

    write_at(root, "index.html", "<!doctype html><title>thou</title>\n");
    write_at(root, "app.js", "export const app = 1;\n");
    write_at(root, "STYLE.CSS", "body{}\n");
    write_at(root, "noext", "plain\n");
    write_at(root, ".hidden", "hidden\n");
    write_at(root, ".git", "gitdir\n");
    write_at(root, "name with space.txt", "space\n");
    mkdir_at(root, "js");
    write_at(root, "js/crypto.js", "export const crypto = 1;\n");
    write_at(root, "js/.env", "SECRET=1\n");
    mkdir_at(root, "js/deep");
    write_at(root, "js/deep/x.mjs", "export default 2;\n");
    mkdir_at(root, ".private");
    write_at(root, ".private/key.txt", "key\n");
    mkdir_at(root, "a");
    mkdir_at(root, "b");
    write_at(root, "b/file.txt", "b file\n");

    char target[256];
    snprintf(target, sizeof(target), "%s/secret.txt", outside);
    symlink_at(target, root, "link-out.txt");
    symlink_at("/etc/passwd", root, "passwd");
    symlink_at(outside, root, "outdir");
    symlink_at("index.html", root, "link-in.html");
    symlink_at("js", root, "jslink");
    symlink_at("../b/file.txt", root, "a/up.txt");
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/fifo", root);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);

    fds_before = count_open_fds();
    ck_assert_int_eq(thou_static_open(root, &st), THOU_OK);
    ck_assert_ptr_nonnull(st);
}

static void teardown(void)
{
    thou_static_free(st);
    st = NULL;
    int fds_after = count_open_fds();
    remove_tree(root);
    remove_tree(outside);
    ck_assert_msg(fds_after == fds_before, "file descriptors leaked: %d before, %d after",
                  fds_before, fds_after);
}

/* Read what fd holds (at most size bytes) into a heap string. */
static char *read_fd(int fd, uint64_t size)
{
    char *data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, data + got, (size_t)size - got, (off_t)got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
    data[got] = '\0';
    return data;
}

static const struct resolve_case {
    const char *rel;
    enum thou_status expected;
    const char *content; /* when THOU_OK */
} resolve_cases[] = {
    /* Files that are there. */
    {"index.html", THOU_OK, "<!doctype html><title>thou</title>\n"},
    {"", THOU_OK, "<!doctype html><title>thou</title>\n"},
    {"app.js", THOU_OK, "export const app = 1;\n"},
    {"js/crypto.js", THOU_OK, "export const crypto = 1;\n"},
    {"js/deep/x.mjs", THOU_OK, "export default 2;\n"},
    {"b/file.txt", THOU_OK, "b file\n"},
    {"name with space.txt", THOU_OK, "space\n"},
    /* Paths that try to leave the root, or hold forbidden bytes. */
    {"..", THOU_EINVAL, NULL},
    {".", THOU_EINVAL, NULL},
    {"../index.html", THOU_EINVAL, NULL},
    {"./index.html", THOU_EINVAL, NULL},
    {"a/../b/file.txt", THOU_EINVAL, NULL},
    {"a/./../index.html", THOU_EINVAL, NULL},
    {"js/..", THOU_EINVAL, NULL},
    {"js/.", THOU_EINVAL, NULL},
    {"/index.html", THOU_EINVAL, NULL},
    {"//index.html", THOU_EINVAL, NULL},
    {"js//crypto.js", THOU_EINVAL, NULL},
    {"js/", THOU_EINVAL, NULL},
    {"index.html/", THOU_EINVAL, NULL},
    /* Malformed whatever exists: the answer does not depend on the tree. */
    {"missing/../index.html", THOU_EINVAL, NULL},
    {"nodir//x.js", THOU_EINVAL, NULL},
    {"index.html/..", THOU_EINVAL, NULL},
    {".hidden/..", THOU_EINVAL, NULL},
    {"/", THOU_EINVAL, NULL},
    {"js\\crypto.js", THOU_EINVAL, NULL},
    {"..\\index.html", THOU_EINVAL, NULL},
    {"%2e%2e/index.html", THOU_EINVAL, NULL},
    {"index.html%00.png", THOU_EINVAL, NULL},
    {"index%2ehtml", THOU_EINVAL, NULL},
    {"%", THOU_EINVAL, NULL},
    {"index.html\x01", THOU_EINVAL, NULL},
    {"js/\x1f"
     "crypto.js",
     THOU_EINVAL, NULL},
    {"index.html\x7f", THOU_EINVAL, NULL},
    {"index.html\n", THOU_EINVAL, NULL},
    {"js\tcrypto.js", THOU_EINVAL, NULL},
    /* Missing, hidden, symlinked or not a regular file. */
    {"missing.html", THOU_ENOTFOUND, NULL},
    {"js/missing.js", THOU_ENOTFOUND, NULL},
    {"nodir/x.js", THOU_ENOTFOUND, NULL},
    {"index.html/x", THOU_ENOTFOUND, NULL},
    {".hidden", THOU_ENOTFOUND, NULL},
    {".git", THOU_ENOTFOUND, NULL},
    {"js/.env", THOU_ENOTFOUND, NULL},
    {".private/key.txt", THOU_ENOTFOUND, NULL},
    {"..hidden", THOU_ENOTFOUND, NULL},
    {"...", THOU_ENOTFOUND, NULL},
    {"link-out.txt", THOU_ENOTFOUND, NULL},
    {"passwd", THOU_ENOTFOUND, NULL},
    {"outdir/secret.txt", THOU_ENOTFOUND, NULL},
    {"outdir/index.html", THOU_ENOTFOUND, NULL},
    {"link-in.html", THOU_ENOTFOUND, NULL},
    {"jslink/crypto.js", THOU_ENOTFOUND, NULL},
    {"a/up.txt", THOU_ENOTFOUND, NULL},
    {"js", THOU_ENOTFOUND, NULL},
    {"js/deep", THOU_ENOTFOUND, NULL},
    {"a", THOU_ENOTFOUND, NULL},
    {"fifo", THOU_ENOTFOUND, NULL},
};

START_TEST(test_resolve_table)
{
    const struct resolve_case *c = &resolve_cases[_i];
    int fd = -1;
    uint64_t size = 0;
    char etag[40] = "";
    enum thou_status rc = thou_static_resolve(st, c->rel, &fd, &size, etag, sizeof(etag));
    ck_assert_msg(rc == c->expected, "'%s': %s, expected %s", c->rel, thou_status_name(rc),
                  thou_status_name(c->expected));
    if (rc != THOU_OK) {
        ck_assert_msg(fd == -1, "'%s': fd set on failure", c->rel);
        return;
    }
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(size, strlen(c->content));
    char *data = read_fd(fd, size);
    ck_assert_str_eq(data, c->content);
    free(data);
    close(fd);
    /* The ETag is a quoted string that fits with room to spare. */
    size_t len = strlen(etag);
    ck_assert_uint_ge(len, 3);
    ck_assert_uint_lt(len, sizeof(etag) - 1);
    ck_assert_int_eq(etag[0], '"');
    ck_assert_int_eq(etag[len - 1], '"');
    ck_assert_ptr_eq(strchr(etag + 1, '"'), etag + len - 1);
}
END_TEST

START_TEST(test_open_refuses)
{
    struct thou_static *other = NULL;
    char path[256];
    snprintf(path, sizeof(path), "%s/missing", root);
    ck_assert_int_eq(thou_static_open(path, &other), THOU_ENOTFOUND);
    ck_assert_ptr_null(other);
    snprintf(path, sizeof(path), "%s/index.html", root);
    ck_assert_int_eq(thou_static_open(path, &other), THOU_ENOTFOUND);
    ck_assert_ptr_null(other);
    thou_static_free(NULL);
}
END_TEST

static enum thou_status resolve_etag(const char *rel, char *etag, size_t len)
{
    int fd = -1;
    uint64_t size = 0;
    enum thou_status rc = thou_static_resolve(st, rel, &fd, &size, etag, len);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

START_TEST(test_etag_stable_and_changes)
{
    char first[40], again[40], other[40], changed[40], same_size[40], replaced[40];
    ck_assert_int_eq(resolve_etag("app.js", first, sizeof(first)), THOU_OK);
    ck_assert_int_eq(resolve_etag("app.js", again, sizeof(again)), THOU_OK);
    ck_assert_str_eq(first, again);
    /* Another file has another tag. */
    ck_assert_int_eq(resolve_etag("js/crypto.js", other, sizeof(other)), THOU_OK);
    ck_assert_str_ne(first, other);

    /* New content of another size. */
    sleep_ms(30);
    write_at(root, "app.js", "export const app = 12345;\n");
    ck_assert_int_eq(resolve_etag("app.js", changed, sizeof(changed)), THOU_OK);
    ck_assert_str_ne(changed, first);

    /* New content of the same size, written in place. */
    sleep_ms(30);
    write_at(root, "app.js", "export const app = 54321;\n");
    ck_assert_int_eq(resolve_etag("app.js", same_size, sizeof(same_size)), THOU_OK);
    ck_assert_str_ne(same_size, changed);

    /* A new file renamed over the old one, same size and mtime: the inode differs. */
    char path[256], tmp[256];
    snprintf(path, sizeof(path), "%s/app.js", root);
    snprintf(tmp, sizeof(tmp), "%s/app.js.new", root);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    write_at(root, "app.js.new", "export const app = 99999;\n");
    struct timespec times[2] = {sb.st_atim, sb.st_mtim};
    ck_assert_int_eq(utimensat(AT_FDCWD, tmp, times, 0), 0);
    /* Keep the old inode alive so the new file cannot reuse its number. */
    int keep = open(path, O_RDONLY);
    ck_assert_int_ge(keep, 0);
    ck_assert_int_eq(rename(tmp, path), 0);
    ck_assert_int_eq(resolve_etag("app.js", replaced, sizeof(replaced)), THOU_OK);
    close(keep);
    ck_assert_str_ne(replaced, same_size);

    /* Unchanged again: stable. */
    ck_assert_int_eq(resolve_etag("app.js", again, sizeof(again)), THOU_OK);
    ck_assert_str_eq(again, replaced);
}
END_TEST

static const struct mime_case {
    const char *name;
    const char *type;
} mime_cases[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"INDEX.HTML", "text/html; charset=utf-8"},
    {"a/b/page.Html", "text/html; charset=utf-8"},
    {"app.js", "text/javascript; charset=utf-8"},
    {"app.JS", "text/javascript; charset=utf-8"},
    {"lib.min.js", "text/javascript; charset=utf-8"},
    {"vendor/libsodium.mjs", "text/javascript; charset=utf-8"},
    {"style.css", "text/css; charset=utf-8"},
    {"STYLE.CSS", "text/css; charset=utf-8"},
    {"data.json", "application/json"},
    {"icon.svg", "image/svg+xml"},
    {"icon.PNG", "image/png"},
    {"favicon.ico", "image/x-icon"},
    {"sodium.wasm", "application/wasm"},
    {"readme.txt", "text/plain; charset=utf-8"},
    {"site.webmanifest", "application/manifest+json"},
    {"font.woff2", "font/woff2"},
    {"noext", "application/octet-stream"},
    {"archive.tar.gz", "application/octet-stream"},
    {"page.htm", "application/octet-stream"},
    {"page.html.bak", "application/octet-stream"},
    {"trailing.", "application/octet-stream"},
    {".html", "application/octet-stream"},
    {"dir.js/file", "application/octet-stream"},
    {"dir.js/", "application/octet-stream"},
    {"", "application/octet-stream"},
};

START_TEST(test_mime_types)
{
    const struct mime_case *c = &mime_cases[_i];
    ck_assert_str_eq(thou_static_mime_type(c->name), c->type);
}
END_TEST

static void serve(const char *rel, const char *if_none_match, struct thou_response *res)
{
    thou_response_init(res);
    thou_static_serve(st, rel, if_none_match, NULL, res);
}

START_TEST(test_serve_200)
{
    struct thou_response res;
    serve("", NULL, &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "text/html; charset=utf-8");
    ck_assert_int_ge(res.file_fd, 0);
    ck_assert_uint_eq(res.file_size, strlen("<!doctype html><title>thou</title>\n"));
    ck_assert_str_eq(res.cache_control, "no-cache");
    ck_assert_int_eq(res.etag[0], '"');
    ck_assert_ptr_null(res.body);
    thou_response_release(&res);

    serve("js/crypto.js", NULL, &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "text/javascript; charset=utf-8");
    ck_assert_int_ge(res.file_fd, 0);
    thou_response_release(&res);

    serve("STYLE.CSS", NULL, &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "text/css; charset=utf-8");
    thou_response_release(&res);

    serve("noext", NULL, &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/octet-stream");
    thou_response_release(&res);
}
END_TEST

static void assert_error(const struct thou_response *res, unsigned status, const char *code)
{
    ck_assert_uint_eq(res->status, status);
    ck_assert_int_eq(res->file_fd, -1);
    ck_assert_ptr_nonnull(res->body);
    ck_assert_str_eq(res->content_type, "application/json");
    char expected[128];
    snprintf(expected, sizeof(expected), "{\"error\":{\"code\":\"%s\"", code);
    ck_assert_msg(strncmp(res->body, expected, strlen(expected)) == 0, "body '%s' is not '%s...'",
                  res->body, expected);
}

START_TEST(test_serve_errors)
{
    struct thou_response res;
    serve("../index.html", NULL, &res);
    assert_error(&res, 400, "bad_path");
    thou_response_release(&res);
    serve("index.html%00.png", NULL, &res);
    assert_error(&res, 400, "bad_path");
    thou_response_release(&res);
    serve("missing.html", NULL, &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
    serve("passwd", NULL, &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
    serve(".hidden", NULL, &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
    serve("js", NULL, &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
    /* An error never answers 304, whatever the client sends. */
    serve("missing.html", "*", &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
}
END_TEST

/* If-None-Match values: before + index.html's ETag + after (or before alone). */
static const struct inm_case {
    const char *before;
    bool with_etag;
    const char *after;
    unsigned status;
} inm_cases[] = {
    {"", true, "", 304},
    {"W/", true, "", 304},
    {"*", false, "", 304},
    {"\"nope\", ", true, "", 304},
    {"\"nope\",", true, "", 304},
    {"", true, ", \"nope\"", 304},
    {"\"a\", W/", true, ", \"b\"", 304},
    {"  ", true, "  ", 304},
    {"\"nope\"", false, "", 200},
    {"\"nope\", \"other\"", false, "", 200},
    {"", false, "", 200},
    {",", false, "", 200},
    {"x", true, "", 200},
    {"", true, "x", 200},
    {"w/", true, "", 200},
    {"\"\"", false, "", 200},
};

START_TEST(test_serve_if_none_match)
{
    const struct inm_case *c = &inm_cases[_i];
    char etag[40];
    ck_assert_int_eq(resolve_etag("index.html", etag, sizeof(etag)), THOU_OK);
    char header[160];
    snprintf(header, sizeof(header), "%s%s%s", c->before, c->with_etag ? etag : "", c->after);
    struct thou_response res;
    serve("index.html", header, &res);
    ck_assert_msg(res.status == c->status, "If-None-Match '%s': %u, expected %u", header,
                  res.status, c->status);
    /* Both answers carry the ETag and the revalidation policy. */
    ck_assert_str_eq(res.etag, etag);
    ck_assert_str_eq(res.cache_control, "no-cache");
    if (c->status == 304) {
        ck_assert_int_eq(res.file_fd, -1);
        ck_assert_ptr_null(res.body);
    } else {
        ck_assert_int_ge(res.file_fd, 0);
    }
    thou_response_release(&res);
}
END_TEST

/* A tag missing its closing quote, or a prefix of the real one, is not a match. */
START_TEST(test_serve_if_none_match_partial)
{
    char etag[40];
    ck_assert_int_eq(resolve_etag("index.html", etag, sizeof(etag)), THOU_OK);
    size_t len = strlen(etag);
    char partial[40];
    snprintf(partial, sizeof(partial), "%.*s", (int)(len - 1), etag);
    struct thou_response res;
    serve("index.html", partial, &res);
    ck_assert_uint_eq(res.status, 200);
    thou_response_release(&res);
    /* The tag of one file does not validate another. */
    serve("app.js", etag, &res);
    ck_assert_uint_eq(res.status, 200);
    thou_response_release(&res);
    /* After the file changes, the old tag no longer matches. */
    sleep_ms(30);
    write_at(root, "index.html", "<!doctype html><title>changed</title>\n");
    serve("index.html", etag, &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_ne(res.etag, etag);
    thou_response_release(&res);
}
END_TEST

/* ---- content negotiation ------------------------------------------------------------ */

#define BOTH (THOU_CODING_GZIP | THOU_CODING_BR)
#define GZ   THOU_CODING_GZIP
#define BR   THOU_CODING_BR
#define ID   THOU_CODING_IDENTITY
#define NONE THOU_CODING_NONE

static const struct negotiate_case {
    const char *accept_encoding; /* NULL: no header */
    unsigned available;
    int chosen;
} negotiate_cases[] = {
    /* No header, or an empty one: the plain file. */
    {NULL, BOTH, ID},
    {"", BOTH, ID},
    {"   ", BOTH, ID},
    /* What browsers send. */
    {"gzip, deflate, br, zstd", BOTH, BR},
    {"gzip, deflate, br", GZ, GZ},
    {"gzip, deflate", BOTH, GZ},
    {"gzip, deflate", BR, ID},
    {"gzip", 0, ID},
    /* Weights. */
    {"br;q=0.5, gzip;q=0.8", BOTH, GZ},
    {"br;q=0.8, gzip;q=0.5", BOTH, BR},
    {"br;q=0.5, gzip;q=0.5", BOTH, BR},
    {"gzip;q=0", BOTH, ID},
    {"gzip;q=0.000, br;q=0.001", BOTH, BR},
    {"gzip;q=1.000", BOTH, GZ},
    {"identity, gzip;q=0.5", BOTH, ID},
    {"identity;q=0.5, gzip", BOTH, GZ},
    {"gzip, identity", BOTH, GZ},
    {"identity;q=1, gzip;q=1", BOTH, GZ},
    /* Case, spacing, aliases, empty elements. */
    {"GZIP", BOTH, GZ},
    {"Br", BOTH, BR},
    {"x-gzip", BOTH, GZ},
    {"GZIP ; Q=0.5", BOTH, GZ},
    {"\tgzip\t;\tq=0.5\t", BOTH, GZ},
    {",,, ,gzip,,", BOTH, GZ},
    /* "*" covers the codings not named. */
    {"*", BOTH, BR},
    {"*;q=0.5, br;q=0.1", BOTH, GZ},
    {"*;q=0.1, gzip;q=0", BOTH, BR},
    {"*;q=0.5", 0, ID},
    /* Malformed weights and unknown parameters: the element is ignored. */
    {"gzip;q=1.5", BOTH, ID},
    {"gzip;q=2", BOTH, ID},
    {"gzip;q=0.0001", BOTH, ID},
    {"gzip;q=.5", BOTH, ID},
    {"gzip;q=", BOTH, ID},
    {"gzip;q=-1", BOTH, ID},
    {"gzip;q=1.001", BOTH, ID},
    {"gzip;level=9", BOTH, ID},
    {"gzip;q=0.5;q=0.7", BOTH, GZ},
    {"gzip q=0.5", BOTH, ID},
    {"gz\"ip", BOTH, ID},
    {"gzip;q=0.5x, br", BOTH, BR},
    {"identity;q=bad, gzip", BOTH, GZ},
    /* Unknown codings only: the plain file. */
    {"compress, deflate, zstd, snappy", BOTH, ID},
    {"gzipx, xbr, brotli", BOTH, ID},
    /* The first mention counts. */
    {"gzip;q=0, gzip", BOTH, ID},
    {"gzip, gzip;q=0", BOTH, GZ},
    /* Identity refused: a compressed copy if one is acceptable, else 406. */
    {"identity;q=0", BOTH, NONE},
    {"identity;q=0", 0, NONE},
    {"identity;q=0, gzip", BOTH, GZ},
    {"identity;q=0, gzip", BR, NONE},
    {"identity;q=0, br;q=0.1", BOTH, BR},
    {"*;q=0", BOTH, NONE},
    {"*;q=0", 0, NONE},
    {"*;q=0, identity", BOTH, ID},
    {"*;q=0, gzip", BOTH, GZ},
    {"compress, identity;q=0", BOTH, NONE},
    {"identity;q=0, *", BOTH, BR},
};

START_TEST(test_negotiate)
{
    const struct negotiate_case *c = &negotiate_cases[_i];
    int chosen = thou_static_negotiate(c->accept_encoding, c->available);
    ck_assert_msg(chosen == c->chosen, "Accept-Encoding '%s' with copies %u: %d, expected %d",
                  c->accept_encoding ? c->accept_encoding : "(none)", c->available, chosen,
                  c->chosen);
}
END_TEST

/* A header as large as any request head may carry, many elements of it
 * malformed: answered from the valid ones, in linear time. */
START_TEST(test_negotiate_huge)
{
    enum { SIZE = 1 << 20 };
    char *header = malloc(SIZE + 1);
    ck_assert_ptr_nonnull(header);
    size_t len = 0;
    static const char junk[] = "x-unknown;q=0.5;q=;foo=bar, ;;;, ";
    while (len + sizeof(junk) < SIZE - 64) {
        memcpy(header + len, junk, sizeof(junk) - 1);
        len += sizeof(junk) - 1;
    }
    memcpy(header + len, "gzip;q=0.3", sizeof("gzip;q=0.3"));
    ck_assert_int_eq(thou_static_negotiate(header, BOTH), GZ);
    memset(header, ',', SIZE);
    header[SIZE] = '\0';
    ck_assert_int_eq(thou_static_negotiate(header, BOTH), ID);
    memset(header, 'g', SIZE);
    ck_assert_int_eq(thou_static_negotiate(header, BOTH), ID);
    free(header);
}
END_TEST

static const struct hashed_case {
    const char *rel;
    bool hashed;
} hashed_cases[] = {
    {"js/start.0123456789abcdef.js", true},
    {"start.0123456789abcdef.js", true},
    {"vendor/libsodium-wrappers.fedcba9876543210.mjs", true},
    {"a.b.0123456789abcdef.css", true},
    {"favicon.0123456789abcdef", true},
    {"js/start.js", false},
    {"index.html", false},
    {"", false},
    {"js/start.0123456789ABCDEF.js", false}, /* the generator writes lowercase */
    {"js/start.0123456789abcde.js", false},
    {"js/start.0123456789abcdef0.js", false},
    {"js/start.0123456789abcdeg.js", false},
    {".0123456789abcdef.js", false},
    {"0123456789abcdef.js", false},
    {"js.0123456789abcdef/start.js", false},
    {"start..js", false},
};

START_TEST(test_is_hashed)
{
    const struct hashed_case *c = &hashed_cases[_i];
    ck_assert_msg(thou_static_is_hashed(c->rel) == c->hashed, "'%s' hashed: expected %d", c->rel,
                  c->hashed);
}
END_TEST

static void serve_encoded(const char *rel, const char *if_none_match, const char *accept_encoding,
                          struct thou_response *res)
{
    thou_response_init(res);
    thou_static_serve(st, rel, if_none_match, accept_encoding, res);
}

/* Read what a response would send, to compare copies by content. */
static void assert_body(const struct thou_response *res, const char *expected)
{
    char buf[256];
    ck_assert_int_ge(res->file_fd, 0);
    ssize_t n = pread(res->file_fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, expected);
    ck_assert_uint_eq(res->file_size, strlen(expected));
}

START_TEST(test_serve_codings)
{
    /* Stand-ins for the generator's copies: the server trusts the names. */
    write_at(root, "js/crypto.js.gz", "GZ-BYTES");
    write_at(root, "js/crypto.js.br", "BR");
    write_at(root, "app.js.gz", "GZ-APP");
    struct thou_response res;
    char plain_etag[64], gz_etag[64], br_etag[64];

    serve_encoded("js/crypto.js", NULL, NULL, &res);
    ck_assert_uint_eq(res.status, 200);
    assert_body(&res, "export const crypto = 1;\n");
    ck_assert_ptr_null(res.content_encoding);
    ck_assert_str_eq(res.vary, "Accept-Encoding");
    ck_assert_str_eq(res.content_type, "text/javascript; charset=utf-8");
    snprintf(plain_etag, sizeof(plain_etag), "%s", res.etag);
    thou_response_release(&res);

    serve_encoded("js/crypto.js", NULL, "gzip", &res);
    ck_assert_uint_eq(res.status, 200);
    assert_body(&res, "GZ-BYTES");
    ck_assert_str_eq(res.content_encoding, "gzip");
    ck_assert_str_eq(res.vary, "Accept-Encoding");
    ck_assert_str_eq(res.content_type, "text/javascript; charset=utf-8");
    snprintf(gz_etag, sizeof(gz_etag), "%s", res.etag);
    thou_response_release(&res);

    serve_encoded("js/crypto.js", NULL, "gzip, deflate, br", &res);
    ck_assert_uint_eq(res.status, 200);
    assert_body(&res, "BR");
    ck_assert_str_eq(res.content_encoding, "br");
    snprintf(br_etag, sizeof(br_etag), "%s", res.etag);
    thou_response_release(&res);

    /* Each copy has its own tag, and only its own tag validates it. */
    ck_assert_str_ne(plain_etag, gz_etag);
    ck_assert_str_ne(plain_etag, br_etag);
    ck_assert_str_ne(gz_etag, br_etag);
    serve_encoded("js/crypto.js", gz_etag, "gzip", &res);
    ck_assert_uint_eq(res.status, 304);
    ck_assert_int_eq(res.file_fd, -1);
    ck_assert_str_eq(res.etag, gz_etag);
    ck_assert_str_eq(res.vary, "Accept-Encoding");
    thou_response_release(&res);
    serve_encoded("js/crypto.js", gz_etag, "br", &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.content_encoding, "br");
    thou_response_release(&res);
    serve_encoded("js/crypto.js", plain_etag, "gzip", &res);
    ck_assert_uint_eq(res.status, 200);
    thou_response_release(&res);
    serve_encoded("js/crypto.js", plain_etag, NULL, &res);
    ck_assert_uint_eq(res.status, 304);
    thou_response_release(&res);

    /* Only a gzip copy: a brotli-only client gets the plain file. */
    serve_encoded("app.js", NULL, "br", &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_ptr_null(res.content_encoding);
    ck_assert_str_eq(res.vary, "Accept-Encoding");
    thou_response_release(&res);

    /* No copies: no Vary, and identity;q=0 cannot be met. */
    serve_encoded("STYLE.CSS", NULL, "gzip, br", &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_ptr_null(res.content_encoding);
    ck_assert_ptr_null(res.vary);
    thou_response_release(&res);
    serve_encoded("STYLE.CSS", NULL, "identity;q=0", &res);
    assert_error(&res, 406, "not_acceptable");
    thou_response_release(&res);
    serve_encoded("js/crypto.js", NULL, "identity;q=0, compress", &res);
    assert_error(&res, 406, "not_acceptable");
    ck_assert_str_eq(res.vary, "Accept-Encoding");
    thou_response_release(&res);

    /* A copy never stands in for a missing plain file. */
    unlink_at(root, "app.js");
    serve_encoded("app.js", NULL, "gzip", &res);
    assert_error(&res, 404, "not_found");
    thou_response_release(&res);
}
END_TEST

/* Copies that are not regular files, or hide behind a symlink, are not used. */
START_TEST(test_serve_codings_refuses_links)
{
    char target[256];
    snprintf(target, sizeof(target), "%s/secret.txt", outside);
    symlink_at(target, root, "app.js.gz");
    mkdir_at(root, "app.js.br");
    struct thou_response res;
    serve_encoded("app.js", NULL, "gzip, br", &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_ptr_null(res.content_encoding);
    ck_assert_ptr_null(res.vary);
    assert_body(&res, "export const app = 1;\n");
    thou_response_release(&res);
}
END_TEST

START_TEST(test_serve_cache_control)
{
    write_at(root, "js/start.0123456789abcdef.js", "export const s = 1;\n");
    write_at(root, "js/start.0123456789abcdef.js.gz", "GZ");
    struct thou_response res;
    serve_encoded("js/start.0123456789abcdef.js", NULL, "gzip", &res);
    ck_assert_uint_eq(res.status, 200);
    ck_assert_str_eq(res.cache_control, "public, max-age=31536000, immutable");
    ck_assert_str_eq(res.content_encoding, "gzip");
    char etag[64];
    snprintf(etag, sizeof(etag), "%s", res.etag);
    thou_response_release(&res);
    serve_encoded("js/start.0123456789abcdef.js", etag, "gzip", &res);
    ck_assert_uint_eq(res.status, 304);
    ck_assert_str_eq(res.cache_control, "public, max-age=31536000, immutable");
    thou_response_release(&res);
    serve_encoded("js/crypto.js", NULL, "gzip", &res);
    ck_assert_str_eq(res.cache_control, "no-cache");
    thou_response_release(&res);
    serve_encoded("", NULL, "gzip", &res);
    ck_assert_str_eq(res.cache_control, "no-cache");
    thou_response_release(&res);
}
END_TEST

static Suite *static_suite(void)
{
    Suite *suite = suite_create("static_files");

    TCase *resolve = tcase_create("resolve");
    tcase_add_checked_fixture(resolve, setup, teardown);
    tcase_set_timeout(resolve, 10);
    tcase_add_loop_test(resolve, test_resolve_table, 0,
                        (int)(sizeof(resolve_cases) / sizeof(resolve_cases[0])));
    tcase_add_test(resolve, test_open_refuses);
    tcase_add_test(resolve, test_etag_stable_and_changes);
    suite_add_tcase(suite, resolve);

    TCase *mime = tcase_create("mime");
    tcase_add_loop_test(mime, test_mime_types, 0,
                        (int)(sizeof(mime_cases) / sizeof(mime_cases[0])));
    suite_add_tcase(suite, mime);

    TCase *serving = tcase_create("serve");
    tcase_add_checked_fixture(serving, setup, teardown);
    tcase_set_timeout(serving, 10);
    tcase_add_test(serving, test_serve_200);
    tcase_add_test(serving, test_serve_errors);
    tcase_add_loop_test(serving, test_serve_if_none_match, 0,
                        (int)(sizeof(inm_cases) / sizeof(inm_cases[0])));
    tcase_add_test(serving, test_serve_if_none_match_partial);
    tcase_add_test(serving, test_serve_codings);
    tcase_add_test(serving, test_serve_codings_refuses_links);
    tcase_add_test(serving, test_serve_cache_control);
    suite_add_tcase(suite, serving);

    TCase *negotiate = tcase_create("negotiate");
    tcase_add_loop_test(negotiate, test_negotiate, 0,
                        (int)(sizeof(negotiate_cases) / sizeof(negotiate_cases[0])));
    tcase_add_test(negotiate, test_negotiate_huge);
    tcase_add_loop_test(negotiate, test_is_hashed, 0,
                        (int)(sizeof(hashed_cases) / sizeof(hashed_cases[0])));
    suite_add_tcase(suite, negotiate);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(static_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
