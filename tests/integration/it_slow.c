/*
 * Slow senders: a client that trickles its request head or body one byte
 * at a time never trips an inactivity timeout, so without a deadline for
 * the whole head and the whole body a few addresses could hold every
 * connection slot. Here a thousand such connections trickle while an
 * honest couple creates, joins and talks; every slow connection is cut off
 * at its deadline, and the couple never waits.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOW_CONNECTIONS 1000
#define TRICKLE_MS       400

static struct thou_proc proc;
static bool proc_running;

/* Under valgrind every request is tens of times slower: what is "normal
 * latency" there is looser. */
static long long normal_latency_ms(void)
{
    const char *valgrind = getenv("THOU_VALGRIND");
    return valgrind && strcmp(valgrind, "1") == 0 ? 15000 : 1000;
}

static void setup(void)
{
    /* A thousand sockets, and the server's own: more than the usual 1024. */
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096 && limit.rlim_max >= 4096) {
        limit.rlim_cur = 4096;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    proc_running = false;
}

static void teardown(void)
{
    if (proc_running)
        proc_cleanup(&proc);
}

/* Connect from 127.0.0.<host>, so that no one address holds them all. */
static int connect_from(unsigned port, unsigned host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl((127u << 24) | host);
    ck_assert_msg(bind(fd, (struct sockaddr *)&from, sizeof(from)) == 0, "bind: %s",
                  strerror(errno));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&to, sizeof(to));
    ck_assert_msg(rc == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    return fd;
}

/* True once the server has closed fd (end of stream or reset). */
static bool closed_by_server(int fd)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

struct slow {
    int fds[SLOW_CONNECTIONS];
    bool closed[SLOW_CONNECTIONS];
    size_t sent[SLOW_CONNECTIONS];
    const char *text; /* what each trickles, a byte at a time */
    size_t open;
};

static void slow_open(struct slow *slow, unsigned port, const char *prefix, const char *text)
{
    slow->text = text;
    slow->open = SLOW_CONNECTIONS;
    for (size_t i = 0; i < SLOW_CONNECTIONS; i++) {
        slow->fds[i] = connect_from(port, 2 + (unsigned)(i % 9)); /* nine addresses */
        slow->closed[i] = false;
        slow->sent[i] = 0;
    }
    /* Let the handshakes finish, then send what comes before the trickle. */
    usleep(200 * 1000);
    for (size_t i = 0; i < SLOW_CONNECTIONS; i++) {
        struct pollfd pfd = {slow->fds[i], POLLOUT, 0};
        ck_assert_msg(poll(&pfd, 1, 5000) == 1, "connection %zu did not open", i);
        ssize_t n = send(slow->fds[i], prefix, strlen(prefix), MSG_NOSIGNAL);
        ck_assert_msg(n == (ssize_t)strlen(prefix), "connection %zu: prefix not sent", i);
    }
}

/* One more byte on every connection still open; note the ones closed. */
static void slow_trickle(struct slow *slow)
{
    for (size_t i = 0; i < SLOW_CONNECTIONS; i++) {
        if (slow->closed[i])
            continue;
        if (closed_by_server(slow->fds[i])) {
            slow->closed[i] = true;
            slow->open--;
            continue;
        }
        const char *byte = slow->text + slow->sent[i] % strlen(slow->text);
        if (send(slow->fds[i], byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
            slow->sent[i]++;
    }
}

static void slow_close(struct slow *slow)
{
    for (size_t i = 0; i < SLOW_CONNECTIONS; i++)
        close(slow->fds[i]);
}

/* ---- the honest couple -------------------------------------------------------- */

struct couple {
    char room[64], token_a[128], token_b[128], secret[64], verifier[64];
    int step;
    long long worst_ms;
};

static void couple_init(struct couple *c)
{
    memset(c, 0, sizeof(*c));
    unsigned char secret[32], verifier[32];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    b64url32(secret, c->secret, sizeof(c->secret));
    b64url32(verifier, c->verifier, sizeof(c->verifier));
}

/* One request of the couple's evening, timed: create, join, both keys, then
 * reading the room over and over. */
static void couple_step(struct couple *c, unsigned port)
{
    char body[512], path[160];
    unsigned char key[32];
    char key_b64[64];
    struct http_reply reply;
    long long start = now_ms();
    long expected = 200;
    switch (c->step) {
    case 0:
        snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
                 c->verifier);
        ck_assert(http_json(port, "POST", "/api/rooms", NULL, body, &reply));
        expected = 201;
        if (reply.status == 201) {
            snprintf(c->room, sizeof(c->room), "%s",
                     json_string_value(json_object_get(reply.json, "room")));
            snprintf(c->token_a, sizeof(c->token_a), "%s",
                     json_string_value(json_object_get(reply.json, "token")));
        }
        break;
    case 1:
        snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", c->secret);
        snprintf(path, sizeof(path), "/api/rooms/%s/join", c->room);
        ck_assert(http_json(port, "POST", path, NULL, body, &reply));
        if (reply.status == 200)
            snprintf(c->token_b, sizeof(c->token_b), "%s",
                     json_string_value(json_object_get(reply.json, "token")));
        break;
    case 2:
    case 3:
        randombytes_buf(key, sizeof(key));
        b64url32(key, key_b64, sizeof(key_b64));
        snprintf(body, sizeof(body), "{\"type\":\"key\",\"public_key\":\"%s\",\"mac\":\"%s\"}",
                 key_b64, key_b64);
        snprintf(path, sizeof(path), "/api/rooms/%s/events", c->room);
        ck_assert(
            http_json(port, "POST", path, c->step == 2 ? c->token_a : c->token_b, body, &reply));
        expected = 201;
        break;
    default:
        snprintf(path, sizeof(path), "/api/rooms/%s", c->room);
        ck_assert(
            http_json(port, "GET", path, c->step % 2 ? c->token_a : c->token_b, NULL, &reply));
        break;
    }
    long long took = now_ms() - start;
    ck_assert_msg(reply.status == expected, "step %d: status %ld: %s", c->step, reply.status,
                  reply.body);
    http_reply_free(&reply);
    if (took > c->worst_ms)
        c->worst_ms = took;
    c->step++;
}

/*
 * The trickle runs past the deadline plus a margin; every slow connection
 * must be closed by then, and the couple's every request must have been
 * answered in normal time meanwhile.
 */
static void run_attack(const char *timeout_flag, const char *prefix, const char *text,
                       const char *reason)
{
    const char *extra[] = {timeout_flag, "2", "--connection-timeout-s", "60", NULL};
    proc_start(&proc, extra);
    proc_running = true;
    unsigned port = proc.port;

    static struct slow slow;
    slow_open(&slow, port, prefix, text);
    struct couple couple;
    couple_init(&couple);
    long long started = now_ms();
    /* Past the deadline and through the couple's first steps (slower under
     * valgrind), within a minute at most. */
    while ((now_ms() - started < 4500 || couple.step < 8) && now_ms() - started < 60000) {
        slow_trickle(&slow);
        couple_step(&couple, port);
        usleep(TRICKLE_MS * 1000);
    }
    slow_trickle(&slow);
    size_t still_open = slow.open;
    slow_close(&slow);
    ck_assert_msg(still_open == 0,
                  "%zu of %d slow connections still open 4.5 s into a 2 s deadline", still_open,
                  SLOW_CONNECTIONS);
    ck_assert_int_ge(couple.step, 8);
    ck_assert_msg(couple.worst_ms < normal_latency_ms(),
                  "the couple waited %lld ms for one request during the attack", couple.worst_ms);
    ck_assert_int_ge(refusals_metric(port, reason), SLOW_CONNECTIONS);
}

START_TEST(test_slow_heads_are_cut_off)
{
    run_attack("--header-timeout-s",
               "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", "abcdefgh", "head_deadline");
}
END_TEST

START_TEST(test_slow_bodies_are_cut_off)
{
    run_attack("--body-timeout-s",
               "POST /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Content-Length: 60000\r\n\r\n{\"set\":\"",
               "aaaaaaaa", "body_deadline");
}
END_TEST

/* A request that is merely slow, not hostile, is answered if it ends within
 * its deadline: the head's deadline does not count the idle time before a
 * kept-alive connection's next request. */
START_TEST(test_deadline_spares_honest_clients)
{
    const char *extra[] = {"--header-timeout-s", "2", "--connection-timeout-s", "60", NULL};
    proc_start(&proc, extra);
    proc_running = true;
    int fd = connect_from(proc.port, 1);
    struct pollfd pfd = {fd, POLLOUT, 0};
    ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
    static const char request[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[4096];
    for (int round = 0; round < 2; round++) {
        /* Half the request, a pause under the deadline, the rest. */
        ck_assert_int_eq(send(fd, request, 10, MSG_NOSIGNAL), 10);
        usleep(1000 * 1000);
        ck_assert_int_eq(send(fd, request + 10, sizeof(request) - 11, MSG_NOSIGNAL),
                         (ssize_t)sizeof(request) - 11);
        pfd.events = POLLIN;
        ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "round %d: %s", round, buf);
        /* Idle longer than the head's deadline before the next request. */
        usleep(2500 * 1000);
    }
    close(fd);
}
END_TEST

static Suite *slow_suite(void)
{
    Suite *suite = suite_create("slow");
    TCase *tc = tcase_create("deadlines");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slow_heads_are_cut_off);
    tcase_add_test(tc, test_slow_bodies_are_cut_off);
    tcase_add_test(tc, test_deadline_spares_honest_clients);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return run_suite(slow_suite());
}
