/*
 * HTTPS served by thou itself (libmicrohttpd with GnuTLS): a certificate
 * made here with openssl, requests and an event stream over TLS, the
 * headers TLS adds, and every way a bad certificate or key refuses to
 * start (exit 2), never falling back to plain HTTP.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[256];
static char cert_path[320], key_path[320], other_key_path[320];
static struct thou_proc proc;
static bool proc_running;

static void sh(const char *command)
{
    int rc = system(command);
    ck_assert_msg(rc == 0, "'%s' failed: %d", command, rc);
}

/* A self-signed certificate for 127.0.0.1 and its key, and a second key. */
static void make_credentials(void)
{
    char command[2048];
    snprintf(command, sizeof(command),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
             ">/dev/null 2>&1 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out '%s' >/dev/null 2>&1",
             key_path, cert_path, other_key_path);
    sh(command);
}

static void setup(void)
{
    snprintf(scratch, sizeof(scratch), "/tmp/thou-tls-XXXXXX");
    ck_assert(mkdtemp(scratch) != NULL);
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", scratch);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", scratch);
    snprintf(other_key_path, sizeof(other_key_path), "%s/other-key.pem", scratch);
    make_credentials();
    proc_running = false;
}

static void teardown(void)
{
    http_use_tls(NULL);
    if (proc_running)
        proc_cleanup(&proc);
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", scratch);
    sh(command);
}

static unsigned start_tls(void)
{
    const char *extra[] = {"--tls-cert", cert_path, "--tls-key", key_path, NULL};
    proc_start(&proc, extra);
    proc_running = true;
    http_use_tls(cert_path);
    return proc.port;
}

/* ---- serving --------------------------------------------------------------- */

START_TEST(test_https_serves_with_hsts)
{
    unsigned port = start_tls();
    struct http_reply reply;
    char value[256];
    static const char *const paths[] = {"/healthz", "/", "/no/such/thing"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        ck_assert_msg(http_do(port, "GET", paths[i], NULL, NULL, 0, &reply), "GET %s over TLS",
                      paths[i]);
        ck_assert_int_gt(reply.status, 0);
        ck_assert_msg(http_header(&reply, "Strict-Transport-Security", value, sizeof(value)),
                      "no HSTS on %s:\n%s", paths[i], reply.headers);
        ck_assert_str_eq(value, "max-age=63072000");
        http_reply_free(&reply);
    }
    ck_assert(http_do(port, "GET", "/healthz", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_ptr_nonnull(strstr(reply.body, "\"ok\""));
    http_reply_free(&reply);

    /* Plain HTTP to the HTTPS port is never answered in plain text. */
    http_use_tls(NULL);
    bool ok = http_do(port, "GET", "/healthz", NULL, NULL, 0, &reply);
    ck_assert_msg(!ok || reply.status != 200, "plain HTTP answered 200 on the HTTPS port");
    http_reply_free(&reply);
}
END_TEST

START_TEST(test_plain_http_has_no_hsts)
{
    proc_start(&proc, NULL);
    proc_running = true;
    struct http_reply reply;
    char value[256];
    ck_assert(http_do(proc.port, "GET", "/", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_msg(!http_header(&reply, "Strict-Transport-Security", value, sizeof(value)),
                  "HSTS over plain HTTP");
    http_reply_free(&reply);
    size_t len;
    char *log = proc_log(&proc, &len);
    ck_assert_ptr_nonnull(strstr(log, "listening on http://"));
    free(log);
}
END_TEST

/* ---- an event stream over TLS ------------------------------------------------ */

struct stream_reader {
    unsigned port;
    char url[256];
    char auth[300];
    char buf[65536];
    size_t len;
    bool saw_event;
};

static size_t stream_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct stream_reader *r = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof(r->buf) - 1 - r->len;
    memcpy(r->buf + r->len, ptr, n < room ? n : room);
    r->len += n < room ? n : room;
    r->buf[r->len] = '\0';
    if (strstr(r->buf, "event: key")) {
        r->saw_event = true;
        return 0; /* enough: end the transfer */
    }
    return n;
}

static void *read_stream(void *arg)
{
    struct stream_reader *r = arg;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, r->auth);
    curl_easy_setopt(curl, CURLOPT_URL, r->url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, cert_path);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, stream_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return NULL;
}

/* A stream opened over TLS sleeps (suspended) until an event is posted,
 * then wakes and delivers it: resume works through GnuTLS too. */
START_TEST(test_event_stream_over_tls)
{
    unsigned port = start_tls();
    struct test_pair pair;
    ck_assert_int_eq(test_pair_create(port, &pair), 201);
    unsigned char key[32];
    char key_b64[64], body[512], path[160];
    randombytes_buf(key, sizeof(key));
    b64url32(key, key_b64, sizeof(key_b64));
    struct http_reply reply;

    static struct stream_reader reader;
    memset(&reader, 0, sizeof(reader));
    snprintf(reader.url, sizeof(reader.url), "https://127.0.0.1:%u/api/rooms/%s/events", port,
             pair.room);
    snprintf(reader.auth, sizeof(reader.auth), "Authorization: Bearer %s", pair.token_b);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, read_stream, &reader), 0);
    usleep(500 * 1000); /* the stream is open and asleep by now */

    snprintf(body, sizeof(body), "{\"type\":\"key\",\"public_key\":\"%s\",\"mac\":\"%s\"}", key_b64,
             key_b64);
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair.room);
    ck_assert(http_json(port, "POST", path, pair.token_a, body, &reply));
    ck_assert_msg(reply.status == 201, "post over TLS: %ld %s", reply.status, reply.body);
    http_reply_free(&reply);
    pthread_join(thread, NULL);
    ck_assert_msg(reader.saw_event, "the stream over TLS never delivered the key event: '%s'",
                  reader.buf);
    ck_assert_ptr_nonnull(strstr(reader.buf, key_b64));
}
END_TEST

/* ---- refusals at start ------------------------------------------------------------ */

/* thou serve with the given TLS files exits 2 and says why. */
static void expect_start_refused(const char *cert, const char *key, const char *message)
{
    char data_dir[320], err[4096];
    snprintf(data_dir, sizeof(data_dir), "%s/data", scratch);
    const char *args[] = {"serve",     "--config",   THOU_SOURCE_DIR "/config/thou.json",
                          "--port",    "0",          "--data-dir",
                          data_dir,    "--tls-cert", cert,
                          "--tls-key", key,          NULL};
    int rc = proc_run(args, err, sizeof(err));
    ck_assert_msg(rc == 2, "exit %d, expected 2, for cert '%s' key '%s': %s", rc, cert, key, err);
    ck_assert_msg(strstr(err, message) != NULL, "'%s' not in: %s", message, err);
    ck_assert_msg(strstr(err, "listening") == NULL, "it listened: %s", err);
}

START_TEST(test_bad_credentials_refuse_to_start)
{
    char missing[400], garbage[400], unreadable[400];
    snprintf(missing, sizeof(missing), "%s/missing.pem", scratch);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", scratch);
    snprintf(unreadable, sizeof(unreadable), "%s/unreadable.pem", scratch);
    FILE *f = fopen(garbage, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", f);
    fclose(f);

    expect_start_refused(missing, key_path, "cannot read tls_cert");
    expect_start_refused(cert_path, missing, "cannot read tls_key");
    expect_start_refused(cert_path, other_key_path, "not a valid certificate and the private key");
    expect_start_refused(garbage, key_path, "not a valid certificate and the private key");
    expect_start_refused(cert_path, "/dev/null", "holds no PEM data");
    if (geteuid() != 0) { /* root reads a file whatever its mode */
        char command[1400];
        snprintf(command, sizeof(command), "cp '%s' '%s' && chmod 000 '%s'", key_path, unreadable,
                 unreadable);
        sh(command);
        expect_start_refused(cert_path, unreadable, "cannot read tls_key");
    }
    expect_start_refused(cert_path, "", "'tls_cert' and 'tls_key' go together");
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *suite = suite_create("tls");
    TCase *tc = tcase_create("https");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_https_serves_with_hsts);
    tcase_add_test(tc, test_plain_http_has_no_hsts);
    tcase_add_test(tc, test_event_stream_over_tls);
    tcase_add_test(tc, test_bad_credentials_refuse_to_start);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return run_suite(tls_suite());
}
