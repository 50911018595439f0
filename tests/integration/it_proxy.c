/*
 * Behind a reverse proxy every connection comes from the proxy: without
 * trusted_proxies one client could use up the per-address limits of
 * everyone. Here 127.0.0.1 plays the proxy (curl adds X-Forwarded-For or
 * Forwarded as the proxy would) and 127.0.0.2 a client that connects
 * directly. The per-address limit under test is room creation.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct thou_proc proc;
static bool proc_running;

static void setup(void)
{
    proc_running = false;
}

static void teardown(void)
{
    if (proc_running)
        proc_cleanup(&proc);
}

static void start(const char *const *extra)
{
    proc_start(&proc, extra);
    proc_running = true;
}

/* POST /api/rooms with one extra header (NULL: none); the status. */
static long create_with(const char *header)
{
    unsigned char verifier[32];
    char verifier_b64[64], body[256];
    randombytes_buf(verifier, sizeof(verifier));
    b64url32(verifier, verifier_b64, sizeof(verifier_b64));
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
             verifier_b64);
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    struct http_reply reply;
    ck_assert(http_do(proc.port, "POST", "/api/rooms", headers, body, strlen(body), &reply));
    long status = reply.status;
    if (status == 429) {
        ck_assert_str_eq(http_error_code(&reply), "rate_limited");
        char retry[32];
        ck_assert(http_header(&reply, "Retry-After", retry, sizeof(retry)));
        ck_assert_int_ge(atoi(retry), 1);
    }
    http_reply_free(&reply);
    return status;
}

#define LIMIT_FLAGS "--room-creations-per-min", "2"

/* A trusted proxy's clients each have their own allowance; what a client
 * wrote into the header itself (left of the proxy's entry) is not believed. */
START_TEST(test_trusted_proxy_forwards_the_client)
{
    const char *extra[] = {LIMIT_FLAGS, "--trusted-proxies", "127.0.0.0/30", NULL};
    start(extra);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.1"), 201);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.1"), 201);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.1"), 429);
    /* Another client behind the same proxy. */
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.2"), 201);
    /* The client's own X-Forwarded-For, with the proxy's entry appended. */
    ck_assert_int_eq(create_with("X-Forwarded-For: 203.0.113.77, 198.51.100.1"), 429);
    /* A second proxy hop, itself trusted, is skipped. */
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.1, 127.0.0.2"), 429);
    /* Forwarded (RFC 7239) is read too, and an IPv6 client by its /64. */
    ck_assert_int_eq(create_with("Forwarded: for=\"[2001:db8:1:2::1]:4711\""), 201);
    ck_assert_int_eq(create_with("Forwarded: for=\"[2001:db8:1:2::99]\""), 201);
    ck_assert_int_eq(create_with("Forwarded: for=\"[2001:db8:1:2:ffff::1]\""), 429);
    ck_assert_int_eq(create_with("Forwarded: for=\"[2001:db8:1:3::1]\""), 201);
    /* The proxy itself, with nothing forwarded. */
    ck_assert_int_eq(create_with(NULL), 201);
}
END_TEST

/* Without trusted_proxies the headers count for nothing: changing them does
 * not buy a fresh allowance. */
START_TEST(test_forwarded_headers_ignored_by_default)
{
    const char *extra[] = {LIMIT_FLAGS, NULL};
    start(extra);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.1"), 201);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.2"), 201);
    ck_assert_int_eq(create_with("X-Forwarded-For: 198.51.100.3"), 429);
    ck_assert_int_eq(create_with("Forwarded: for=198.51.100.4"), 429);
    ck_assert_int_eq(create_with(NULL), 429);
}
END_TEST

/* POST path with body as the client at forwarded_for (behind the proxy). */
static long post_as(const char *forwarded_for, const char *path, const char *body,
                    struct http_reply *reply)
{
    char header[128];
    snprintf(header, sizeof(header), "X-Forwarded-For: %s", forwarded_for);
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    ck_assert(http_do(proc.port, "POST", path, headers, body, strlen(body), reply));
    return reply->status;
}

/* Wrong join secrets are throttled per address and counted per room, but
 * the partner who holds the secret is admitted however many strangers
 * guessed at the room before (a lock-out would itself be the attack). */
START_TEST(test_guessing_never_locks_out_the_partner)
{
    const char *extra[] = {"--join-failures-per-min", "3", "--trusted-proxies", "127.0.0.1", NULL};
    start(extra);
    unsigned char secret[32], verifier[32], wrong_secret[32];
    randombytes_buf(secret, sizeof(secret));
    randombytes_buf(wrong_secret, sizeof(wrong_secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    char secret_b64[64], verifier_b64[64], wrong_b64[64], body[256], path[128];
    b64url32(secret, secret_b64, sizeof(secret_b64));
    b64url32(verifier, verifier_b64, sizeof(verifier_b64));
    b64url32(wrong_secret, wrong_b64, sizeof(wrong_b64));
    struct http_reply reply;
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
             verifier_b64);
    ck_assert_int_eq(post_as("198.51.100.1", "/api/rooms", body, &reply), 201);
    snprintf(path, sizeof(path), "/api/rooms/%s/join",
             json_string_value(json_object_get(reply.json, "room")));
    http_reply_free(&reply);

    char wrong[128], right[128];
    snprintf(wrong, sizeof(wrong), "{\"join_secret\":\"%s\"}", wrong_b64);
    snprintf(right, sizeof(right), "{\"join_secret\":\"%s\"}", secret_b64);
    /* One guesser: three wrong answers, then it waits. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(post_as("203.0.113.1", path, wrong, &reply), 403);
        ck_assert_str_eq(http_error_code(&reply), "bad_secret");
        http_reply_free(&reply);
    }
    ck_assert_int_eq(post_as("203.0.113.1", path, wrong, &reply), 429);
    http_reply_free(&reply);
    /* Guessers from other addresses: the room's count is spent too. */
    for (int i = 2; i < 6; i++) {
        char guesser[32];
        snprintf(guesser, sizeof(guesser), "203.0.113.%d", i);
        long status = post_as(guesser, path, wrong, &reply);
        ck_assert_msg(status == 429, "guesser %d: %ld", i, status);
        http_reply_free(&reply);
    }
    /* The partner, from elsewhere, with the secret: admitted. */
    ck_assert_int_eq(post_as("198.51.100.7", path, right, &reply), 200);
    ck_assert_str_eq(json_string_value(json_object_get(reply.json, "role")), "B");
    http_reply_free(&reply);
}
END_TEST

/* Connect from 127.0.0.<host> and ask for /healthz; true when answered. */
static int open_from(unsigned host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl((127u << 24) | host);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)proc.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

static bool answered(int fd)
{
    static const char request[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(request) - 1)
        return false;
    struct pollfd pfd = {fd, POLLIN, 0};
    char buf[512];
    if (poll(&pfd, 1, 5000) != 1)
        return false;
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    return n > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

/* A trusted proxy carries many clients' connections: the per-address
 * connection limit is not for it, while a direct client keeps its own. */
START_TEST(test_proxy_exempt_from_address_limit)
{
    const char *extra[] = {"--max-connections-per-ip", "3", "--trusted-proxies", "127.0.0.1", NULL};
    start(extra);
    int proxy[6], client[4];
    for (int i = 0; i < 6; i++)
        proxy[i] = open_from(1);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(answered(proxy[i]), "the proxy's connection %d was refused", i);
    /* One after another: with several server threads, connections opened
     * together may be counted in any order, and which of four is the
     * fourth would be a guess. Each answered one stays open (keep-alive). */
    for (int i = 0; i < 3; i++) {
        client[i] = open_from(2);
        ck_assert_msg(answered(client[i]), "the client's connection %d was refused", i);
    }
    client[3] = open_from(2);
    ck_assert_msg(!answered(client[3]), "a fourth connection from one client was served");
    for (int i = 0; i < 6; i++)
        close(proxy[i]);
    for (int i = 0; i < 4; i++)
        close(client[i]);
}
END_TEST

/* A list that does not parse stops start-up plainly. */
START_TEST(test_bad_list_refused_at_start)
{
    char err[1024];
    const char *args[] = {
        "serve", "--config",          THOU_SOURCE_DIR "/config/thou.json", "--port",
        "0",     "--trusted-proxies", "10.0.0.0/8,proxy.example",          NULL};
    ck_assert_int_eq(proc_run(args, err, sizeof(err)), 2);
    ck_assert_msg(strstr(err, "'proxy.example' is not an IP address") != NULL, "%s", err);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *suite = suite_create("proxy");
    TCase *tc = tcase_create("trusted proxies");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_trusted_proxy_forwards_the_client);
    tcase_add_test(tc, test_forwarded_headers_ignored_by_default);
    tcase_add_test(tc, test_proxy_exempt_from_address_limit);
    tcase_add_test(tc, test_bad_list_refused_at_start);
    tcase_add_test(tc, test_guessing_never_locks_out_the_partner);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return run_suite(proxy_suite());
}
