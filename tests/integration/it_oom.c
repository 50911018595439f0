/*
 * An allocation failure refuses one request; it never takes the process
 * down (issue 11), shown on the real binary: with THOU_TEST_FAULTS set,
 * SIGUSR2 makes the next allocation of a request path fail. The request it
 * lands in is refused with 503 out_of_memory, the next one is served, and
 * the server still shuts down cleanly. tests/unit/test_oom.c fails every
 * allocation of each request in turn; this checks the same end to end.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct thou_proc server;

/* Arm the failure and wait until the server says it is armed. */
static void arm(int times_before)
{
    ck_assert_int_eq(kill(server.pid, SIGUSR2), 0);
    long long deadline = now_ms() + 5000;
    for (;;) {
        char *log = proc_log(&server, NULL);
        int seen = 0;
        for (const char *at = log; at && (at = strstr(at, "fault injection:")); at++)
            seen++;
        free(log);
        if (seen > times_before)
            return;
        ck_assert_msg(now_ms() < deadline, "the server never armed the fault");
        usleep(10000);
    }
}

static int connect_from(unsigned host);
static size_t healthz(int fd, char *out, size_t len);

static long create(char code[64])
{
    char secret[64], body[200];
    random_b64(32, secret, sizeof(secret));
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}", secret);
    struct http_reply reply;
    ck_assert(http_json(server.port, "POST", "/api/rooms", NULL, body, &reply));
    long status = reply.status;
    snprintf(code, 64, "%s", http_error_code(&reply));
    http_reply_free(&reply);
    return status;
}

static long note(const struct test_pair *pair, int counter, char code[64])
{
    char path[128], body[300], text[80];
    random_b64(48, text, sizeof(text));
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair->room);
    snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%d}", text,
             counter);
    struct http_reply reply;
    ck_assert(http_json(server.port, "POST", path, pair->token_b, body, &reply));
    long status = reply.status;
    snprintf(code, 64, "%s", http_error_code(&reply));
    http_reply_free(&reply);
    return status;
}

/*
 * The failure lands in the handler: THOU_TEST_FAULTS=4 arms the fourth
 * allocation from SIGUSR2 on, past the adapter's own for a new connection
 * (its record, the request's record, the body's buffer), while a connection
 * held open keeps the address's record from being made again.
 */
START_TEST(one_request_refused_the_next_served)
{
    setenv("THOU_TEST_FAULTS", "4", 1);
    proc_start(&server, NULL);
    unsetenv("THOU_TEST_FAULTS");
    char code[64], answer[2048];
    int holder = connect_from(1);
    ck_assert(healthz(holder, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"));
    ck_assert_int_eq(create(code), 201);

    arm(0);
    long status = create(code);
    ck_assert_msg(status == 503 && strcmp(code, "out_of_memory") == 0, "create: %ld %s", status,
                  code);
    ck_assert_int_eq(create(code), 201);

    struct test_pair pair;
    ck_assert_int_eq(test_pair_create(server.port, &pair), 201);
    ck_assert_int_eq(note(&pair, 1, code), 201);
    arm(1);
    status = note(&pair, 2, code);
    ck_assert_msg(status == 503 && strcmp(code, "out_of_memory") == 0, "note: %ld %s", status,
                  code);
    ck_assert_int_eq(note(&pair, 3, code), 201);

    struct http_reply reply;
    ck_assert(http_do(server.port, "GET", "/healthz", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
    close(holder);
    /* Refused by the handlers: none of the adapter's records ever failed. */
    ck_assert_int_eq(refusals_metric(server.port, "out_of_memory"), 0);
    int exit_status = proc_stop(&server);
    char *log = proc_log(&server, NULL);
    const char *report = sanitizer_report(log);
    if (exit_status != 0 || report)
        fprintf(stderr, "it_oom: server exited with %d; its log:\n%s\n", exit_status, log);
    free(log);
    proc_cleanup(&server);
    ck_assert_int_eq(exit_status, 0);
    ck_assert_ptr_null(report);
}
END_TEST

/* ---- the HTTP adapter's own records (server/server.c) ---------------------------- */

/* A blocking connection from 127.0.0.<host>, with a 5 s receive timeout. */
static int connect_from(unsigned host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl((127u << 24) | host);
    ck_assert_msg(bind(fd, (struct sockaddr *)&from, sizeof(from)) == 0, "bind: %s",
                  strerror(errno));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0, "connect: %s",
                  strerror(errno));
    struct timeval timeout = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
}

/* Send GET /healthz (kept alive) and read one answer into out: its length,
 * 0 when the server closed the connection without one. */
static size_t healthz(int fd, char *out, size_t len)
{
    static const char request[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL); /* may fail: the server may be gone */
    size_t got = 0;
    out[0] = '\0';
    for (;;) {
        ssize_t n = recv(fd, out + got, len - got - 1, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return got;
        ck_assert_msg(n > 0, "no answer within 5 s: %s", strerror(errno));
        got += (size_t)n;
        out[got] = '\0';
        const char *head_end = strstr(out, "\r\n\r\n");
        const char *length = strcasestr(out, "\r\nContent-Length: ");
        if (head_end && length && length < head_end &&
            got >= (size_t)(head_end + 4 - out) + strtoul(length + 18, NULL, 10))
            return got;
    }
}

static int log_count(const char *what)
{
    char *log = proc_log(&server, NULL);
    int seen = 0;
    for (const char *at = log; at && (at = strstr(at, what)); at++)
        seen++;
    free(log);
    return seen;
}

/*
 * SIGUSR2 arms the next allocation of a request path, whichever thread
 * makes it; an idle server makes none, so the next connection or request
 * takes it. Which of the adapter's records it lands in is chosen by what
 * exists already: a connection from a new address needs its address's
 * record first; one from an address with a connection open, only its own
 * record; a request on an open connection, only the request's.
 */
START_TEST(adapter_records_refuse_one_connection)
{
    char answer[2048];
    setenv("THOU_TEST_FAULTS", "1", 1);
    proc_start(&server, NULL);
    unsetenv("THOU_TEST_FAULTS");
    int armed = 0;

    /* The request record: a second request on an open connection. */
    int kept = connect_from(1);
    ck_assert_msg(healthz(kept, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"), "%s",
                  answer);
    arm(armed++);
    ck_assert_msg(healthz(kept, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 503") &&
                      strstr(answer, "\"code\":\"out_of_memory\""),
                  "the request whose record could not be made: %s", answer);
    close(kept);
    ck_assert_int_eq(log_count("out of memory: a request refused"), 1);

    /* The connection record: from an address with a connection open. */
    int holder = connect_from(1);
    ck_assert(healthz(holder, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"));
    arm(armed++);
    int refused = connect_from(1);
    ck_assert_msg(healthz(refused, answer, sizeof(answer)) == 0,
                  "a connection without a record was served: %s", answer);
    close(refused);
    ck_assert_int_eq(log_count("out of memory: a connection refused (its record)"), 1);
    int next = connect_from(1);
    ck_assert(healthz(next, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"));
    close(next);
    ck_assert(healthz(holder, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"));
    close(holder);

    /* The address's record: the first connection from 127.0.0.7. */
    arm(armed++);
    refused = connect_from(7);
    ck_assert_msg(healthz(refused, answer, sizeof(answer)) == 0,
                  "a connection without its address's record was served: %s", answer);
    close(refused);
    ck_assert_int_eq(log_count("out of memory: a connection refused (its address's record)"), 1);
    next = connect_from(7);
    ck_assert(healthz(next, answer, sizeof(answer)) && strstr(answer, "HTTP/1.1 200"));
    close(next);

    /* Each counted, and the server still shuts down cleanly. */
    ck_assert_int_eq(refusals_metric(server.port, "out_of_memory"), 3);
    int exit_status = proc_stop(&server);
    char *log = proc_log(&server, NULL);
    const char *report = sanitizer_report(log);
    if (exit_status != 0 || report)
        fprintf(stderr, "it_oom: server exited with %d; its log:\n%s\n", exit_status, log);
    free(log);
    proc_cleanup(&server);
    ck_assert_int_eq(exit_status, 0);
    ck_assert_ptr_null(report);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("oom");
    TCase *tc = tcase_create("real binary");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_request_refused_the_next_served);
    tcase_add_test(tc, adapter_records_refuse_one_connection);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
