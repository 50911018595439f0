/*
 * The foundation of the real binary over real HTTP: health, security
 * headers, static files and their caching, errors, path escapes, metrics,
 * the body cap, logs, shutdown and start-up failures.
 */
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE   THOU_SOURCE_DIR "/config/thou.json"
#define STATIC_DIR    THOU_SOURCE_DIR "/static"
#define QUESTIONS_DIR THOU_SOURCE_DIR "/config/questions"

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

/* Everything a test starts or makes, released by the teardown even when an
 * assertion failed (the runner does not fork, so the teardown always runs). */
#define MAX_PROCS 2
static struct thou_proc procs[MAX_PROCS];
static bool proc_used[MAX_PROCS];
static char scratch[64];        /* a temp dir for files a test makes */
static struct http_reply reply; /* the last reply; freed again by the teardown */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    memset(proc_used, 0, sizeof(proc_used));
    memset(&reply, 0, sizeof(reply));
    snprintf(scratch, sizeof(scratch), "/tmp/thou-it-foundation-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void teardown(void)
{
    http_reply_free(&reply);
    for (int i = 0; i < MAX_PROCS; i++) {
        if (proc_used[i])
            proc_cleanup(&procs[i]);
        proc_used[i] = false;
    }
    if (scratch[0])
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    scratch[0] = '\0';
}

static struct thou_proc *start(const char *const *extra)
{
    for (int i = 0; i < MAX_PROCS; i++) {
        if (!proc_used[i]) {
            proc_used[i] = true;
            proc_start(&procs[i], extra);
            return &procs[i];
        }
    }
    ck_abort_msg("too many servers in one test");
    return NULL;
}

static void scratch_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", scratch, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create '%s': %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void get(unsigned port, const char *path, struct http_reply *r)
{
    ck_assert_msg(http_do(port, "GET", path, NULL, NULL, 0, r), "GET %s: transport failure", path);
}

static void header(const struct http_reply *r, const char *name, char *out, size_t len)
{
    ck_assert_msg(http_header(r, name, out, len), "no %s header in:\n%s", name, r->headers);
}

/*
 * Every response says nosniff and how to cache it; a document (HTML) also
 * carries the whole set of security headers (DESIGN §2). The API's JSON and
 * streams stay lean: a browser applies CSP and the rest to documents only.
 */
static void assert_security_headers(const struct http_reply *r)
{
    char value[1024], type[128] = "";
    header(r, "X-Content-Type-Options", value, sizeof(value));
    ck_assert_str_eq(value, "nosniff");
    header(r, "Cache-Control", value, sizeof(value));
    http_header(r, "Content-Type", type, sizeof(type));
    if (strncmp(type, "text/html", 9) != 0) {
        ck_assert_msg(!http_header(r, "Content-Security-Policy", value, sizeof(value)),
                      "a CSP on a '%s' response:\n%s", type, r->headers);
        return;
    }
    header(r, "Content-Security-Policy", value, sizeof(value));
    ck_assert_contains(value, "frame-ancestors 'none'");
    ck_assert_contains(value, "default-src 'none'");
    ck_assert_msg(strstr(value, "unsafe-inline") == NULL, "CSP allows inline code: %s", value);
    ck_assert_msg(strstr(value, "'unsafe-eval'") == NULL, "CSP allows eval: %s", value);
    header(r, "Referrer-Policy", value, sizeof(value));
    ck_assert_str_eq(value, "no-referrer");
    header(r, "X-Frame-Options", value, sizeof(value));
    ck_assert_str_eq(value, "DENY");
}

static void assert_error(const struct http_reply *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "status %ld, expected %ld (body %s)", r->status, status,
                  r->body);
    ck_assert_msg(r->json != NULL, "error body is not JSON: %s", r->body);
    ck_assert_str_eq(http_error_code(r), code);
    char type[128];
    header(r, "Content-Type", type, sizeof(type));
    ck_assert_contains(type, "application/json");
}

/* ---- serving ---------------------------------------------------------------- */

START_TEST(test_healthz)
{
    struct thou_proc *p = start(NULL);
    get(p->port, "/healthz", &reply);
    ck_assert_int_eq(reply.status, 200);
    ck_assert_ptr_nonnull(reply.json);
    ck_assert_str_eq(json_string_value(json_object_get(reply.json, "status")), "ok");
    ck_assert_uint_eq(json_object_size(reply.json), 1);
    char type[128];
    header(&reply, "Content-Type", type, sizeof(type));
    ck_assert_contains(type, "application/json");
    assert_security_headers(&reply);
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_security_headers_everywhere)
{
    struct thou_proc *p = start(NULL);
    static const struct {
        const char *method;
        const char *path;
    } requests[] = {
        {"GET", "/"},           {"GET", "/healthz"},          {"GET", "/metrics"},
        {"GET", "/no-such"},    {"POST", "/healthz"},         {"GET", "/../CMakeLists.txt"},
        {"HEAD", "/"},          {"GET", "/api/rooms/nope00"}, {"DELETE", "/"},
        {"GET", "/index.html"},
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        ck_assert(http_do(p->port, requests[i].method, requests[i].path, NULL, NULL, 0, &reply));
        ck_assert_msg(reply.status > 0, "%s %s: no answer", requests[i].method, requests[i].path);
        assert_security_headers(&reply);
        http_reply_free(&reply);
    }
}
END_TEST

START_TEST(test_index_and_etag)
{
    struct thou_proc *p = start(NULL);
    get(p->port, "/", &reply);
    ck_assert_int_eq(reply.status, 200);
    char type[128], etag[128], cache[128];
    header(&reply, "Content-Type", type, sizeof(type));
    ck_assert_msg(strncmp(type, "text/html", 9) == 0, "Content-Type '%s'", type);
    header(&reply, "ETag", etag, sizeof(etag));
    ck_assert_msg(etag[0] == '"' && etag[strlen(etag) - 1] == '"', "ETag '%s' is not quoted", etag);
    header(&reply, "Cache-Control", cache, sizeof(cache));
    ck_assert_uint_gt(strlen(cache), 0);
    ck_assert_uint_gt(reply.len, 0);
    ck_assert_contains(reply.body, "<");
    size_t index_len = reply.len;
    http_reply_free(&reply);

    /* /index.html is the same file with the same tag. */
    get(p->port, "/index.html", &reply);
    ck_assert_int_eq(reply.status, 200);
    char again[128];
    header(&reply, "ETag", again, sizeof(again));
    ck_assert_str_eq(again, etag);
    ck_assert_uint_eq(reply.len, index_len);
    http_reply_free(&reply);

    /* Revalidation: matching tags answer 304 without a body. */
    const char *matching[] = {etag, "*", NULL, NULL};
    char weak[140], listed[200];
    snprintf(weak, sizeof(weak), "W/%s", etag);
    snprintf(listed, sizeof(listed), "\"nope\", %s", etag);
    matching[2] = weak;
    matching[3] = listed;
    for (size_t i = 0; i < 4; i++) {
        char inm[256];
        snprintf(inm, sizeof(inm), "If-None-Match: %s", matching[i]);
        const char *headers[] = {inm, NULL};
        ck_assert(http_do(p->port, "GET", "/", headers, NULL, 0, &reply));
        ck_assert_msg(reply.status == 304, "%s: status %ld", inm, reply.status);
        ck_assert_uint_eq(reply.len, 0);
        header(&reply, "ETag", again, sizeof(again));
        ck_assert_str_eq(again, etag);
        assert_security_headers(&reply);
        http_reply_free(&reply);
    }
    /* A stale tag gets the file. */
    const char *stale[] = {"If-None-Match: \"stale\"", NULL};
    ck_assert(http_do(p->port, "GET", "/", stale, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_uint_eq(reply.len, index_len);
    http_reply_free(&reply);

    /* HEAD: the headers of GET, no body. */
    ck_assert(http_do(p->port, "HEAD", "/", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_uint_eq(reply.len, 0);
    header(&reply, "ETag", again, sizeof(again));
    ck_assert_str_eq(again, etag);
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_not_found_and_bad_method)
{
    struct thou_proc *p = start(NULL);
    get(p->port, "/no/such/thing", &reply);
    assert_error(&reply, 404, "not_found");
    http_reply_free(&reply);
    get(p->port, "/no-such-file.js", &reply);
    assert_error(&reply, 404, "not_found");
    http_reply_free(&reply);

    ck_assert(http_do(p->port, "POST", "/healthz", NULL, "{}", 2, &reply));
    assert_error(&reply, 405, "method_not_allowed");
    char allow[128];
    header(&reply, "Allow", allow, sizeof(allow));
    ck_assert_contains(allow, "GET");
    ck_assert_contains(allow, "HEAD");
    ck_assert_msg(strstr(allow, "POST") == NULL, "Allow '%s' lists POST", allow);
    http_reply_free(&reply);

    /* A method thou does not know at all. */
    ck_assert(http_do(p->port, "PATCH", "/healthz", NULL, NULL, 0, &reply));
    assert_error(&reply, 405, "method_not_allowed");
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_path_escapes)
{
    struct thou_proc *p = start(NULL);
    static const char *const paths[] = {
        "/../CMakeLists.txt",
        "/%2e%2e/CMakeLists.txt",
        "/%2E%2E/CMakeLists.txt",
        "/..%2fCMakeLists.txt",
        "/%2e%2e%2fCMakeLists.txt",
        "/.%2e/CMakeLists.txt",
        "/static/..%2f..%2fetc/passwd",
        "/js/..%2f..%2fCMakeLists.txt",
        "/js/..%5c..%5cCMakeLists.txt",
        "/js/../../CMakeLists.txt",
        "/index.html%00.png",
        "/index.html%00",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/./index.html",
        "/%252e%252e/CMakeLists.txt",
        "/..",
        "/.git/config",
        "/%2e",
        "/%c0%ae%c0%ae/CMakeLists.txt", /* overlong UTF-8 dots */
        "/%e0%80%ae%e0%80%ae/CMakeLists.txt",
        "/%u002e%u002e/CMakeLists.txt", /* IIS-style escapes */
        "/..\\CMakeLists.txt",
        "/js/..;/..;/CMakeLists.txt",
        "/js/%2e%2e%5c%2e%2e%5cCMakeLists.txt",
        "/.%00./CMakeLists.txt",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get(p->port, paths[i], &reply);
        ck_assert_msg(reply.status == 400 || reply.status == 404, "%s: status %ld", paths[i],
                      reply.status);
        ck_assert_msg(strstr(reply.body, "cmake_minimum_required") == NULL &&
                          strstr(reply.body, "root:") == NULL,
                      "%s leaked a file outside the static directory", paths[i]);
        assert_security_headers(&reply);
        http_reply_free(&reply);
    }
}
END_TEST

START_TEST(test_symlink_out_of_static)
{
    char dir[128], path[256];
    scratch_path(dir, sizeof(dir), "static");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/index.html", dir);
    static const char index[] = "<!doctype html><title>test static</title>\n";
    write_file(path, index, strlen(index));
    snprintf(path, sizeof(path), "%s/passwd", dir);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/inside.html", dir);
    ck_assert_int_eq(symlink("index.html", path), 0);
    snprintf(path, sizeof(path), "%s/up", dir);
    ck_assert_int_eq(symlink("/etc", path), 0);

    const char *extra[] = {"--static-dir", dir, NULL};
    struct thou_proc *p = start(extra);
    get(p->port, "/", &reply);
    ck_assert_int_eq(reply.status, 200);
    ck_assert_str_eq(reply.body, index);
    http_reply_free(&reply);
    static const char *const refused[] = {"/passwd", "/inside.html", "/up/passwd"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        get(p->port, refused[i], &reply);
        assert_error(&reply, 404, "not_found");
        ck_assert_msg(strstr(reply.body, "root:") == NULL, "%s leaked /etc/passwd", refused[i]);
        http_reply_free(&reply);
    }
}
END_TEST

/* ---- operations ------------------------------------------------------------- */

START_TEST(test_metrics)
{
    struct thou_proc *p = start(NULL);
    get(p->port, "/healthz", &reply);
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
    /* A request is counted when it completes, which may be just after the
     * client saw its answer: poll briefly. */
    bool counted = false;
    for (long long deadline = now_ms() + 5000; !counted && now_ms() < deadline;) {
        get(p->port, "/metrics", &reply);
        ck_assert_int_eq(reply.status, 200);
        counted = strstr(reply.body, "thou_http_requests_total{route=\"/healthz\",method=\"GET\","
                                     "status=\"200\"}") != NULL;
        if (!counted) {
            http_reply_free(&reply);
            usleep(50 * 1000);
        }
    }
    ck_assert_msg(counted, "healthz not counted in:\n%s", reply.body);
    char type[128];
    header(&reply, "Content-Type", type, sizeof(type));
    ck_assert_contains(type, "text/plain");
    ck_assert_contains(reply.body, "# TYPE thou_http_requests_total counter");
    ck_assert_contains(reply.body, "# TYPE thou_open_connections gauge");
    ck_assert_contains(reply.body, "\nthou_open_connections ");
    ck_assert_contains(reply.body, "thou_http_request_duration_seconds_bucket{route=\"/healthz\"");
    assert_security_headers(&reply);
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_body_limit)
{
    /* A small body cap needs a small ciphertext cap (thou_config_check). */
    const char *extra[] = {"--max-body-bytes", "2048", "--max-ciphertext-bytes", "256", NULL};
    struct thou_proc *p = start(extra);
    char body[4096];
    memset(body, 'x', sizeof(body));
    /* The cap applies before routing: POST /healthz would otherwise be a 405. */
    http_do(p->port, "POST", "/healthz", NULL, body, sizeof(body), &reply);
    assert_error(&reply, 413, "too_large");
    assert_security_headers(&reply);
    http_reply_free(&reply);

    /* Under the cap, routing decides. */
    ck_assert(http_do(p->port, "POST", "/healthz", NULL, body, 1000, &reply));
    assert_error(&reply, 405, "method_not_allowed");
    http_reply_free(&reply);

    /* The server is still fine. */
    get(p->port, "/healthz", &reply);
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
}
END_TEST

/* A body without a declared length is answered 413 as it grows past the cap. */
START_TEST(test_body_limit_chunked)
{
    const char *extra[] = {"--max-body-bytes", "2048", "--max-ciphertext-bytes", "256", NULL};
    struct thou_proc *p = start(extra);
    char body[4096];
    memset(body, 'x', sizeof(body));
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    http_do(p->port, "POST", "/healthz", chunked, body, sizeof(body), &reply);
    assert_error(&reply, 413, "too_large");
    http_reply_free(&reply);
    /* Under the cap, routing decides. */
    ck_assert(http_do(p->port, "POST", "/healthz", chunked, body, 1000, &reply));
    assert_error(&reply, 405, "method_not_allowed");
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_logs_and_sigterm)
{
    struct thou_proc *p = start(NULL);
    static const char id[] = "Zq3xY7wV9uT1sR5pO2nM4k";
    static const char *const paths[] = {
        "/r/Zq3xY7wV9uT1sR5pO2nM4k",
        "/js/Zq3xY7wV9uT1sR5pO2nM4k.js",
        "/Zq3xY7wV9uT1sR5pO2nM4k/index.html",
        "/api/rooms/Zq3xY7wV9uT1sR5pO2nM4k",
        "/healthz?token=Zq3xY7wV9uT1sR5pO2nM4k",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get(p->port, paths[i], &reply);
        ck_assert_msg(reply.status > 0, "%s: no answer", paths[i]);
        http_reply_free(&reply);
    }
    ck_assert_int_eq(proc_stop(p), 0);
    size_t len = 0;
    char *log = proc_log(p, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_contains(log, "route=");
    ck_assert_contains(log, "status=");
    ck_assert_contains(log, "route=/*");
    ck_assert_contains(log, "stopped cleanly");
    ck_assert_msg(strstr(log, id) == NULL, "the log holds a request path:\n%s", log);
    ck_assert_msg(strstr(log, "/js/") == NULL, "the log holds a request path:\n%s", log);
    /* Every request line names its route and status. */
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        char copy[1024];
        snprintf(copy, sizeof(copy), "%.*s", (int)line_len, line);
        if (strstr(copy, " request "))
            ck_assert_msg(strstr(copy, "route=") && strstr(copy, "status="),
                          "request line without route or status: %s", copy);
        line = end ? end + 1 : line + line_len;
    }
    free(log);
}
END_TEST

/* ---- start-up failures --------------------------------------------------------- */

static int run(const char *const *args, char *out, size_t len)
{
    out[0] = '\0';
    return proc_run(args, out, len);
}

START_TEST(test_version_and_usage)
{
    char out[4096];
    const char *version[] = {"--version", NULL};
    ck_assert_int_eq(run(version, out, sizeof(out)), 0);
    ck_assert_contains(out, "thou ");
    const char *bogus[] = {"bogus", NULL};
    ck_assert_int_eq(run(bogus, out, sizeof(out)), 2);
    ck_assert_contains(out, "bogus");
    const char *none[] = {NULL};
    ck_assert_int_eq(run(none, out, sizeof(out)), 2);
}
END_TEST

START_TEST(test_unknown_config_key)
{
    char path[128];
    scratch_path(path, sizeof(path), "thou.json");
    static const char config[] = "{\n  \"port\": 0,\n  \"no_such_setting\": 1\n}\n";
    write_file(path, config, strlen(config));
    char out[4096];
    const char *args[] = {"serve", "--config", path, NULL};
    ck_assert_int_eq(run(args, out, sizeof(out)), 2);
    ck_assert_contains(out, "no_such_setting");
}
END_TEST

START_TEST(test_bad_flag_value)
{
    char out[4096];
    const char *args[] = {"serve", "--config", CONFIG_FILE, "--port", "abc", NULL};
    ck_assert_int_eq(run(args, out, sizeof(out)), 2);
    ck_assert_contains(out, "port");
    const char *unknown[] = {"serve", "--config", CONFIG_FILE, "--no-such-flag", "1", NULL};
    ck_assert_int_eq(run(unknown, out, sizeof(out)), 2);
    ck_assert_contains(out, "no-such-flag");
}
END_TEST

START_TEST(test_data_dir_under_file)
{
    char file[128], data[192];
    scratch_path(file, sizeof(file), "plain-file");
    write_file(file, "x", 1);
    snprintf(data, sizeof(data), "%s/data", file);
    char out[4096];
    const char *args[] = {"serve",    "--config",        CONFIG_FILE,   "--port",
                          "0",        "--data-dir",      data,          "--static-dir",
                          STATIC_DIR, "--questions-dir", QUESTIONS_DIR, NULL};
    ck_assert_int_eq(run(args, out, sizeof(out)), 1);
    ck_assert_contains(out, data);
}
END_TEST

START_TEST(test_port_in_use)
{
    struct thou_proc *p = start(NULL);
    char port[16], data[128];
    snprintf(port, sizeof(port), "%u", p->port);
    scratch_path(data, sizeof(data), "data");
    char out[4096];
    const char *args[] = {"serve",    "--config",        CONFIG_FILE,   "--port",
                          port,       "--data-dir",      data,          "--static-dir",
                          STATIC_DIR, "--questions-dir", QUESTIONS_DIR, NULL};
    ck_assert_int_eq(run(args, out, sizeof(out)), 1);
    ck_assert_contains(out, "cannot listen");
    ck_assert_contains(out, port);
    /* The first instance is unharmed. */
    get(p->port, "/healthz", &reply);
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
}
END_TEST

/* Set the user_version field of a SQLite file's header (offset 60, big-endian). */
static void set_user_version(const char *db_path, unsigned version)
{
    int fd = open(db_path, O_RDWR);
    ck_assert_msg(fd >= 0, "open '%s': %s", db_path, strerror(errno));
    char magic[16];
    ck_assert_int_eq(pread(fd, magic, sizeof(magic), 0), (ssize_t)sizeof(magic));
    ck_assert_mem_eq(magic, "SQLite format 3", 16);
    unsigned char be[4] = {(unsigned char)(version >> 24), (unsigned char)(version >> 16),
                           (unsigned char)(version >> 8), (unsigned char)version};
    ck_assert_int_eq(pwrite(fd, be, sizeof(be), 60), (ssize_t)sizeof(be));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

START_TEST(test_newer_schema)
{
    /* A database made by this thou, then stamped with a future version. */
    struct thou_proc *p = start(NULL);
    ck_assert_int_eq(proc_stop(p), 0);
    char db[400], side[420];
    snprintf(db, sizeof(db), "%s/thou.db", p->data_dir);
    /* A clean stop checkpointed the WAL; what is left of it is not needed. */
    snprintf(side, sizeof(side), "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db);
    unlink(side);
    set_user_version(db, 99);

    char out[4096];
    const char *args[] = {"serve",    "--config",        CONFIG_FILE,   "--port",
                          "0",        "--data-dir",      p->data_dir,   "--static-dir",
                          STATIC_DIR, "--questions-dir", QUESTIONS_DIR, NULL};
    ck_assert_int_eq(run(args, out, sizeof(out)), 1);
    ck_assert_contains(out, "newer");
    ck_assert_contains(out, "99");
}
END_TEST

static Suite *foundation_suite(void)
{
    Suite *suite = suite_create("foundation");

    TCase *serving = tcase_create("serving");
    tcase_add_checked_fixture(serving, setup, teardown);
    tcase_set_timeout(serving, 60);
    tcase_add_test(serving, test_healthz);
    tcase_add_test(serving, test_security_headers_everywhere);
    tcase_add_test(serving, test_index_and_etag);
    tcase_add_test(serving, test_not_found_and_bad_method);
    tcase_add_test(serving, test_path_escapes);
    tcase_add_test(serving, test_symlink_out_of_static);
    suite_add_tcase(suite, serving);

    TCase *ops = tcase_create("operations");
    tcase_add_checked_fixture(ops, setup, teardown);
    tcase_set_timeout(ops, 60);
    tcase_add_test(ops, test_metrics);
    tcase_add_test(ops, test_body_limit);
    tcase_add_test(ops, test_body_limit_chunked);
    tcase_add_test(ops, test_logs_and_sigterm);
    suite_add_tcase(suite, ops);

    TCase *startup = tcase_create("startup");
    tcase_add_checked_fixture(startup, setup, teardown);
    tcase_set_timeout(startup, 60);
    tcase_add_test(startup, test_version_and_usage);
    tcase_add_test(startup, test_unknown_config_key);
    tcase_add_test(startup, test_bad_flag_value);
    tcase_add_test(startup, test_data_dir_under_file);
    tcase_add_test(startup, test_port_in_use);
    tcase_add_test(startup, test_newer_schema);
    suite_add_tcase(suite, startup);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(foundation_suite());
    /* No fork: a failed assertion still runs the teardown, which stops
     * every server the test started instead of leaving it running. */
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
