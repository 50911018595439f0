/*
 * An allocation failure refuses one request; it never takes the process
 * down (issue 11), shown on the real binary: with THOU_TEST_FAULTS set,
 * SIGUSR2 makes the next allocation of a request path fail. The request it
 * lands in is refused with 503 out_of_memory, the next one is served, and
 * the server still shuts down cleanly. tests/unit/test_oom.c fails every
 * allocation of each request in turn; this checks the same end to end.
 */
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

START_TEST(one_request_refused_the_next_served)
{
    setenv("THOU_TEST_FAULTS", "1", 1);
    proc_start(&server, NULL);
    unsetenv("THOU_TEST_FAULTS");
    char code[64];
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
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
