/*
 * Delivery of the browser client as the build generates it (<build>/static,
 * made by script/build-static.mjs): content negotiation on Accept-Encoding
 * with the real binary, bytes identical after decoding, an ETag per coding,
 * 304 and HEAD per coding, hostile Accept-Encoding values, hashed names
 * cached for a year, pages that refer to them, and an API never compressed.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define GENERATED_DIR THOU_BINARY_DIR "/static"
#define SOURCE_DIR    THOU_SOURCE_DIR "/static"
#define IMMUTABLE     "public, max-age=31536000, immutable"

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

static struct thou_proc proc;
static bool proc_running;
static json_t *manifest; /* plain name -> hashed name, as the generator wrote them */

static void start_with(const char *static_dir, const char *memory)
{
    const char *extra[] = {"--static-dir", static_dir, "--connection-memory-bytes", memory, NULL};
    proc_start(&proc, extra);
    proc_running = true;
}

static void setup(void)
{
    json_error_t error;
    manifest = json_load_file(GENERATED_DIR "/.manifest.json", 0, &error);
    ck_assert_msg(manifest != NULL, "no manifest in %s (is the thou_static target built?): %s",
                  GENERATED_DIR, error.text);
    start_with(GENERATED_DIR, "65536");
}

static void teardown(void)
{
    if (proc_running)
        proc_cleanup(&proc);
    proc_running = false;
    json_decref(manifest);
    manifest = NULL;
}

/* ---- a client that can decode, or look at the raw bytes -------------------------- */

struct reply {
    long status;
    char *body;
    size_t len;
    char headers[8192];
    size_t headers_len;
};

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;
    r->body = realloc(r->body, r->len + n + 1);
    ck_assert_ptr_nonnull(r->body);
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t collect_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;
    if (n > 5 && strncmp(ptr, "HTTP/", 5) == 0)
        r->headers_len = 0; /* only the final response's headers */
    if (r->headers_len + n < sizeof(r->headers)) {
        memcpy(r->headers + r->headers_len, ptr, n);
        r->headers_len += n;
        r->headers[r->headers_len] = '\0';
    }
    return n;
}

/*
 * One request. decode: a coding libcurl asks for and decodes ("gzip", "br"),
 * or NULL to send raw_accept verbatim (NULL: no Accept-Encoding at all) and
 * keep the bytes as they came.
 */
static void request(const char *method, const char *path, const char *decode,
                    const char *raw_accept, const char *if_none_match, struct reply *r)
{
    memset(r, 0, sizeof(*r));
    CURL *curl = curl_easy_init();
    ck_assert_ptr_nonnull(curl);
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", proc.port, path);
    struct curl_slist *list = NULL;
    char *accept = NULL, inm[256];
    if (raw_accept) {
        size_t len = strlen(raw_accept) + sizeof("Accept-Encoding: ");
        accept = malloc(len);
        ck_assert_ptr_nonnull(accept);
        snprintf(accept, len, "Accept-Encoding: %s", raw_accept);
        list = curl_slist_append(list, accept);
    }
    if (if_none_match) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
        list = curl_slist_append(list, inm);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (decode)
        curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, decode);
    else
        curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    free(accept);
    ck_assert_msg(rc == CURLE_OK, "%s %s (%s): %s", method, path, decode ? decode : "raw",
                  curl_easy_strerror(rc));
}

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* A header's value, or NULL when absent (copied into out). */
static const char *header(const struct reply *r, const char *name, char *out, size_t len)
{
    size_t name_len = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        if (line_len > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            snprintf(out, len, "%.*s", (int)(line + line_len - value), value);
            return out;
        }
        line = end ? end + 2 : line + line_len;
    }
    return NULL;
}

static void assert_header(const struct reply *r, const char *name, const char *expected)
{
    char value[512];
    const char *got = header(r, name, value, sizeof(value));
    if (!expected) {
        ck_assert_msg(got == NULL, "unexpected %s: %s", name, got);
        return;
    }
    ck_assert_msg(got != NULL, "no %s header in:\n%s", name, r->headers);
    ck_assert_str_eq(got, expected);
}

static char *file_bytes(const char *dir, const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    char *data = read_file(path, len);
    ck_assert_msg(data != NULL, "cannot read '%s'", path);
    return data;
}

static long long file_size(const char *rel)
{
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", GENERATED_DIR, rel);
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static const char *hashed(const char *plain)
{
    json_t *name = json_object_get(manifest, plain);
    ck_assert_msg(json_is_string(name), "'%s' has no hashed name in the manifest", plain);
    return json_string_value(name);
}

/* The shape the generator gives hashed names: "/dir/stem.<16 lowercase hex>.ext". */
static bool looks_hashed(const char *path)
{
    const char *ext = strrchr(path, '.');
    if (!ext || ext - path < 17 || ext[-17] != '.')
        return false;
    for (const char *p = ext - 16; p < ext; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* ---- negotiation ------------------------------------------------------------------ */

/* One file in each form: plain, gzip and brotli. Decoded bytes equal the
 * file on disk, lengths are those of the copies, each form has its own
 * ETag that validates only itself, and HEAD says what GET would send. */
static void check_file(const char *url, const char *rel)
{
    size_t plain_len;
    char *plain = file_bytes(GENERATED_DIR, rel, &plain_len);
    static const struct {
        const char *decode;
        const char *encoding; /* Content-Encoding expected; NULL: none */
        const char *suffix;   /* of the copy on disk */
    } forms[] = {{NULL, NULL, ""}, {"gzip", "gzip", ".gz"}, {"br", "br", ".br"}};
    char etags[3][128];
    for (size_t i = 0; i < 3; i++) {
        struct reply r;
        request("GET", url, forms[i].decode, NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "GET %s (%s): %ld", url, forms[i].encoding, r.status);
        assert_header(&r, "Content-Encoding", forms[i].encoding);
        assert_header(&r, "Vary", "Accept-Encoding");
        ck_assert_msg(r.len == plain_len && memcmp(r.body, plain, plain_len) == 0,
                      "%s as %s: decoded bytes differ from %s (%zu vs %zu bytes)", url,
                      forms[i].encoding ? forms[i].encoding : "identity", rel, r.len, plain_len);
        char length[32], copy[512];
        snprintf(copy, sizeof(copy), "%s%s", rel, forms[i].suffix);
        snprintf(length, sizeof(length), "%lld", file_size(copy));
        assert_header(&r, "Content-Length", length);
        if (forms[i].encoding)
            ck_assert_msg(file_size(copy) < (long long)plain_len, "%s is not smaller", copy);
        ck_assert_ptr_nonnull(header(&r, "ETag", etags[i], sizeof(etags[i])));
        if (strstr(rel, ".html")) {
            /* A page keeps its CSP in every coding. */
            char csp[1024];
            ck_assert_msg(header(&r, "Content-Security-Policy", csp, sizeof(csp)) != NULL,
                          "%s as %s without a CSP", url, forms[i].encoding);
            ck_assert_contains(csp, "default-src 'none'");
            ck_assert_contains(csp, "script-src 'self'");
        }
        char cache[128];
        ck_assert_ptr_nonnull(header(&r, "Cache-Control", cache, sizeof(cache)));
        reply_free(&r);

        /* HEAD: the same headers, no body. */
        request("HEAD", url, forms[i].decode, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        assert_header(&r, "Content-Encoding", forms[i].encoding);
        assert_header(&r, "Content-Length", length);
        assert_header(&r, "ETag", etags[i]);
        assert_header(&r, "Vary", "Accept-Encoding");
        assert_header(&r, "Cache-Control", cache);
        ck_assert_uint_eq(r.len, 0);
        reply_free(&r);

        /* 304 for the form's own tag, under GET and HEAD. */
        for (int head = 0; head < 2; head++) {
            request(head ? "HEAD" : "GET", url, forms[i].decode, NULL, etags[i], &r);
            ck_assert_msg(r.status == 304, "%s %s (%s) with its ETag: %ld", head ? "HEAD" : "GET",
                          url, forms[i].encoding, r.status);
            assert_header(&r, "ETag", etags[i]);
            assert_header(&r, "Vary", "Accept-Encoding");
            assert_header(&r, "Cache-Control", cache);
            ck_assert_uint_eq(r.len, 0);
            reply_free(&r);
        }
    }
    ck_assert_str_ne(etags[0], etags[1]);
    ck_assert_str_ne(etags[0], etags[2]);
    ck_assert_str_ne(etags[1], etags[2]);
    /* Another form's tag does not validate this one. */
    for (size_t i = 0; i < 3; i++) {
        struct reply r;
        request("GET", url, forms[i].decode, NULL, etags[(i + 1) % 3], &r);
        ck_assert_msg(r.status == 200, "%s as %s validated by another coding's tag", url,
                      forms[i].encoding);
        reply_free(&r);
    }
    free(plain);
}

START_TEST(test_negotiation_every_page_and_module)
{
    check_file("/", "index.html");
    check_file("/index.html", "index.html");
    check_file("/room.html", "room.html");
    check_file("/r/Zq3xY7wV9uT1sR5pO2nM4k", "room.html");
    check_file("/js/start.js", "js/start.js");
    const char *key;
    json_t *value;
    json_object_foreach(manifest, key, value)
    {
        const char *rel = json_string_value(value);
        if (strstr(rel, ".js") || strstr(rel, ".mjs") || strstr(rel, ".css")) {
            char url[512];
            snprintf(url, sizeof(url), "/%s", rel);
            check_file(url, rel);
        }
    }
}
END_TEST

/* Accept-Encoding values as browsers, tools and attackers send them. */
static const struct hostile_case {
    const char *accept;
    long status;
    const char *encoding; /* NULL: the plain file (or the 406 error) */
} hostile_cases[] = {
    {"", 200, NULL},
    {"gzip, deflate, br, zstd", 200, "br"},
    {"gzip, deflate", 200, "gzip"},
    {"br;q=0.2, gzip;q=0.9", 200, "gzip"},
    {"identity", 200, NULL},
    {"identity, gzip;q=0.5", 200, NULL},
    {"compress, zstd, snappy, x-unknown", 200, NULL},
    {"gzip;q=7", 200, NULL},
    {"gzip;q=0.12345", 200, NULL},
    {"gzip;q=", 200, NULL},
    {"gzip;foo=bar", 200, NULL},
    {";;;,,,;q=1", 200, NULL},
    {"gzip;q=0, br;q=0", 200, NULL},
    {"*", 200, "br"},
    {"*;q=0.5, br;q=0", 200, "gzip"},
    {"identity;q=0, gzip", 200, "gzip"},
    {"identity;q=0", 406, NULL},
    {"*;q=0", 406, NULL},
    {"identity;q=0, compress", 406, NULL},
    {"*;q=0, identity", 200, NULL},
};

START_TEST(test_hostile_accept_encoding)
{
    const struct hostile_case *c = &hostile_cases[_i];
    const char *url = "/js/start.js";
    struct reply r;
    request("GET", url, NULL, c->accept, NULL, &r);
    ck_assert_msg(r.status == c->status, "Accept-Encoding '%s': %ld, expected %ld", c->accept,
                  r.status, c->status);
    assert_header(&r, "Content-Encoding", c->encoding);
    assert_header(&r, "Vary", "Accept-Encoding");
    if (c->status == 406) {
        ck_assert_contains(r.body, "\"not_acceptable\"");
        char type[128];
        ck_assert_ptr_nonnull(header(&r, "Content-Type", type, sizeof(type)));
        ck_assert_contains(type, "application/json");
    } else if (!c->encoding) {
        size_t plain_len;
        char *plain = file_bytes(GENERATED_DIR, "js/start.js", &plain_len);
        ck_assert(r.len == plain_len && memcmp(r.body, plain, plain_len) == 0);
        free(plain);
    }
    reply_free(&r);
}
END_TEST

/* Headers far larger than any browser sends: refused by the HTTP layer when
 * over the head limit, answered from their valid elements when under it. */
START_TEST(test_huge_accept_encoding)
{
    enum { BIG = 200000 };
    char *accept = malloc(BIG + 64);
    ck_assert_ptr_nonnull(accept);
    size_t len = 0;
    while (len < BIG) {
        memcpy(accept + len, "x-junk;q=0.5;;, ", 16);
        len += 16;
    }
    memcpy(accept + len, "gzip;q=0.4", sizeof("gzip;q=0.4"));

    struct reply r;
    request("GET", "/js/start.js", NULL, accept, NULL, &r);
    ck_assert_msg(r.status == 431, "a %zu-byte head over the limit: %ld", len, r.status);
    reply_free(&r);

    proc_cleanup(&proc);
    proc_running = false;
    start_with(GENERATED_DIR, "1048576");
    request("GET", "/js/start.js", NULL, accept, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Encoding", "gzip");
    reply_free(&r);
    /* A comma storm and a single giant token: the plain file. */
    memset(accept, ',', BIG);
    accept[BIG] = '\0';
    request("GET", "/js/start.js", NULL, accept, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Encoding", NULL);
    reply_free(&r);
    memset(accept, 'g', BIG);
    request("GET", "/js/start.js", NULL, accept, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Encoding", NULL);
    reply_free(&r);
    free(accept);
}
END_TEST

/* ---- caching and names ------------------------------------------------------------- */

/* Every src and href in a page that names a file of the tree, as "/path". */
static size_t page_refs(const char *html, char refs[][256], size_t max)
{
    size_t n = 0;
    for (const char *p = html; (p = strstr(p, "=\"/")) != NULL && n < max; p += 3) {
        if (!(p >= html + 4 && (strncmp(p - 3, "src", 3) == 0 || strncmp(p - 4, "href", 4) == 0)))
            continue;
        const char *end = strchr(p + 2, '"');
        ck_assert_ptr_nonnull(end);
        snprintf(refs[n++], sizeof(refs[0]), "%.*s", (int)(end - (p + 2)), p + 2);
    }
    return n;
}

START_TEST(test_hashed_names_and_pages)
{
    static const struct {
        const char *url;
        const char *entry; /* the page's own module */
    } pages[] = {{"/", "js/start.js"}, {"/r/Zq3xY7wV9uT1sR5pO2nM4k", "js/room.js"}};
    for (size_t p = 0; p < sizeof(pages) / sizeof(pages[0]); p++) {
        struct reply r;
        request("GET", pages[p].url, "gzip", NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        assert_header(&r, "Cache-Control", "no-cache");
        /* The stylesheet and the entry module by their hashed names, never the plain ones. */
        const char *named[] = {"css/thou.css", pages[p].entry};
        for (size_t i = 0; i < 2; i++) {
            char ref[512], plain_ref[512];
            snprintf(ref, sizeof(ref), "\"/%s\"", hashed(named[i]));
            snprintf(plain_ref, sizeof(plain_ref), "\"/%s\"", named[i]);
            ck_assert_msg(strstr(r.body, ref) != NULL, "%s does not refer to %s:\n%s", pages[p].url,
                          ref, r.body);
            ck_assert_msg(strstr(r.body, plain_ref) == NULL, "%s still refers to %s", pages[p].url,
                          plain_ref);
        }
        /* Everything it refers to has a hashed name and is cached for a year. */
        char refs[64][256];
        size_t n = page_refs(r.body, refs, 64);
        ck_assert_uint_ge(n, 3);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(looks_hashed(refs[i]), "%s refers to %s", pages[p].url, refs[i]);
            struct reply file;
            request("GET", refs[i], "gzip", NULL, NULL, &file);
            ck_assert_int_eq(file.status, 200);
            assert_header(&file, "Cache-Control", IMMUTABLE);
            reply_free(&file);
        }
        /* The modules the page imports are listed for preloading. */
        ck_assert_contains(r.body, "rel=\"modulepreload\"");
        reply_free(&r);
    }
    /* A hashed module imports hashed modules only. */
    size_t len;
    char *start = file_bytes(GENERATED_DIR, hashed("js/start.js"), &len);
    ck_assert_msg(strstr(start, "'./dom.js'") == NULL, "start imports a plain name");
    char import[256];
    snprintf(import, sizeof(import), "'./%s'", strrchr(hashed("js/dom.js"), '/') + 1);
    ck_assert_contains(start, import);
    free(start);
    /* The plain names still work, revalidated every time. */
    struct reply r;
    request("GET", "/js/start.js", "gzip", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Cache-Control", "no-cache");
    reply_free(&r);
    /* The manifest is the build's, not the browser's. */
    request("GET", "/.manifest.json", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    reply_free(&r);
}
END_TEST

/* The source tree has no copies: the same server code sends it as it is,
 * without Vary, whatever the client accepts. */
START_TEST(test_source_tree_uncompressed)
{
    proc_cleanup(&proc);
    proc_running = false;
    start_with(SOURCE_DIR, "65536");
    struct reply r;
    request("GET", "/js/start.js", NULL, "gzip, deflate, br", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Encoding", NULL);
    assert_header(&r, "Vary", NULL);
    assert_header(&r, "Cache-Control", "no-cache");
    size_t len;
    char *plain = file_bytes(SOURCE_DIR, "js/start.js", &len);
    ck_assert(r.len == len && memcmp(r.body, plain, len) == 0);
    free(plain);
    reply_free(&r);
}
END_TEST

/* Responses that may carry a secret next to text a client chose are never
 * compressed (compression would leak the secret's bytes through lengths). */
START_TEST(test_api_never_compressed)
{
    struct reply r;
    static const char *const paths[] = {"/api/sets", "/api/sets/couples-short", "/healthz",
                                        "/metrics", "/api/rooms/nope"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        request("GET", paths[i], NULL, "gzip, deflate, br, zstd", NULL, &r);
        assert_header(&r, "Content-Encoding", NULL);
        reply_free(&r);
    }
    request("POST", "/api/rooms", NULL, "gzip, br", NULL, &r);
    assert_header(&r, "Content-Encoding", NULL);
    reply_free(&r);
}
END_TEST

static Suite *static_suite(void)
{
    Suite *suite = suite_create("static delivery");
    TCase *tc = tcase_create("negotiation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_negotiation_every_page_and_module);
    tcase_add_loop_test(tc, test_hostile_accept_encoding, 0,
                        (int)(sizeof(hostile_cases) / sizeof(hostile_cases[0])));
    tcase_add_test(tc, test_huge_accept_encoding);
    tcase_add_test(tc, test_hashed_names_and_pages);
    tcase_add_test(tc, test_source_tree_uncompressed);
    tcase_add_test(tc, test_api_never_compressed);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *runner = srunner_create(static_suite());
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
