/*
 * A seat follows its owner to another device (POST /api/rooms/{room}/seat,
 * docs/api.md): the new token works at once and the old one stops at once,
 * on every route and on an open stream, even where the server had cached
 * it; the same move again is answered again, any other use of the old
 * token is refused, an erased or unknown room says so, and the room still
 * has exactly two seats.
 */
#include "harness.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct thou_proc server;
static unsigned port;

static void setup(void)
{
    proc_start(&server, NULL);
    port = server.port;
}

static void teardown(void)
{
    int status = proc_stop(&server);
    char *log = proc_log(&server, NULL);
    const char *report = sanitizer_report(log);
    if (status != 0 || report)
        fprintf(stderr, "it_seats: server exited with %d; its log:\n%s\n", status,
                log ? log : "(none)");
    free(log);
    proc_cleanup(&server);
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_null(report);
}

/* A token a browser draws, and its hash as the server keeps it. */
static void new_token(char token[64], char hash[64])
{
    unsigned char bytes[32], digest[32];
    randombytes_buf(bytes, sizeof(bytes));
    crypto_generichash(digest, sizeof(digest), bytes, sizeof(bytes), NULL, 0);
    b64url32(bytes, token, 64);
    b64url32(digest, hash, 64);
}

static long call(const char *method, const char *path, const char *token, const char *body,
                 char code[64])
{
    struct http_reply reply;
    ck_assert_msg(http_json(port, method, path, token, body, &reply), "%s %s: no reply", method,
                  path);
    long status = reply.status;
    if (code)
        snprintf(code, 64, "%s", http_error_code(&reply));
    http_reply_free(&reply);
    return status;
}

static long move_seat(const struct test_pair *pair, const char *token, const char *hash,
                      char code[64])
{
    char path[128], body[200];
    snprintf(path, sizeof(path), "/api/rooms/%s/seat", pair->room);
    snprintf(body, sizeof(body), "{\"token_hash\":\"%s\"}", hash);
    return call("POST", path, token, body, code);
}

static long post_note(const struct test_pair *pair, const char *token, int counter)
{
    char path[128], body[300], text[80];
    random_b64(48, text, sizeof(text));
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair->room);
    snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%d}", text,
             counter);
    return call("POST", path, token, body, NULL);
}

static long get_room(const struct test_pair *pair, const char *token, char code[64])
{
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s", pair->room);
    return call("GET", path, token, NULL, code);
}

#define expect(status, code_text, got, code)                                                       \
    do {                                                                                           \
        long got_ = (got);                                                                         \
        ck_assert_msg(got_ == (status) && strcmp(code, code_text) == 0,                            \
                      "expected %d %s, got %ld %s", (int)(status), code_text, got_, code);         \
    } while (0)

START_TEST(seat_moves_once_and_the_old_token_stops)
{
    struct test_pair pair;
    ck_assert_int_eq(test_pair_create(port, &pair), 201);
    char code[64];
    /* B writes from the first device: the server now caches B's token. */
    ck_assert_int_eq(post_note(&pair, pair.token_b, 1), 201);
    struct sse_client old_stream;
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair.room);
    ck_assert(sse_open(&old_stream, port, path, pair.token_b, NULL));

    char token[64], hash[64];
    new_token(token, hash);
    ck_assert_int_eq(move_seat(&pair, pair.token_b, hash, code), 200);

    /* The first device's stream ends, and it cannot come back with its token. */
    long long deadline = now_ms() + 5000;
    struct sse_event ev;
    while (!old_stream.eof && now_ms() < deadline)
        if (sse_next(&old_stream, 200, &ev))
            sse_event_release(&ev);
    ck_assert_msg(old_stream.eof, "the old device's stream stayed open after the move");
    sse_close(&old_stream);
    struct sse_client again;
    ck_assert(!sse_open(&again, port, path, pair.token_b, NULL));
    ck_assert_int_eq(again.status, 401);
    sse_close(&again);
    expect(401, "bad_token", get_room(&pair, pair.token_b, code), code);
    ck_assert_int_eq(post_note(&pair, pair.token_b, 2), 401);

    /* The new device is B, and goes on above B's last counter. */
    ck_assert_int_eq(get_room(&pair, token, code), 200);
    ck_assert_int_eq(post_note(&pair, token, 2), 201);

    /* The link opened a second time: refused, the seat stays where it went. */
    char token2[64], hash2[64];
    new_token(token2, hash2);
    expect(401, "bad_token", move_seat(&pair, pair.token_b, hash2, code), code);
    expect(401, "bad_token", get_room(&pair, token2, code), code);
    ck_assert_int_eq(get_room(&pair, token, code), 200);
    /* The same move again (its answer was lost) is answered again. */
    ck_assert_int_eq(move_seat(&pair, pair.token_b, hash, code), 200);
    ck_assert_int_eq(get_room(&pair, token, code), 200);

    /* Still two seats: the link does not admit a third person. */
    char join_path[128], body[300], hash3[64], token3[64];
    new_token(token3, hash3);
    snprintf(join_path, sizeof(join_path), "/api/rooms/%s/join", pair.room);
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\",\"token_hash\":\"%s\"}", pair.secret,
             hash3);
    expect(409, "room_full", call("POST", join_path, NULL, body, code), code);
    /* A cannot take B's new token hash. */
    expect(409, "token_in_use", move_seat(&pair, pair.token_a, hash, code), code);
    ck_assert_int_eq(get_room(&pair, pair.token_a, code), 200);
}
END_TEST

START_TEST(wrong_token_and_bad_bodies_are_refused)
{
    struct test_pair pair;
    ck_assert_int_eq(test_pair_create(port, &pair), 201);
    char code[64], token[64], hash[64], stranger[64], unused[64];
    new_token(token, hash);
    new_token(stranger, unused);
    expect(401, "bad_token", move_seat(&pair, stranger, hash, code), code);
    expect(401, "bad_token", move_seat(&pair, NULL, hash, code), code);
    /* Another room's token holds no seat here. */
    struct test_pair other;
    ck_assert_int_eq(test_pair_create(port, &other), 201);
    expect(401, "bad_token", move_seat(&pair, other.token_a, hash, code), code);

    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/seat", pair.room);
    expect(400, "invalid_request", move_seat(&pair, pair.token_a, "AAAA", code), code);
    expect(400, "invalid_request", call("POST", path, pair.token_a, "{\"token_hash\":7}", code),
           code);
    expect(400, "invalid_request", call("POST", path, pair.token_a, "{}", code), code);
    char body[200];
    snprintf(body, sizeof(body), "{\"token_hash\":\"%s\",\"role\":\"B\"}", hash);
    expect(400, "invalid_request", call("POST", path, pair.token_a, body, code), code);
    /* Nothing moved: both tokens still work. */
    ck_assert_int_eq(get_room(&pair, pair.token_a, code), 200);
    ck_assert_int_eq(get_room(&pair, pair.token_b, code), 200);
    expect(401, "bad_token", get_room(&pair, token, code), code);
}
END_TEST

START_TEST(erased_or_unknown_room_is_gone)
{
    struct test_pair pair;
    ck_assert_int_eq(test_pair_create(port, &pair), 201);
    char code[64], token[64], hash[64], path[128];
    new_token(token, hash);
    snprintf(path, sizeof(path), "/api/rooms/%s", pair.room);
    ck_assert_int_eq(call("DELETE", path, pair.token_a, NULL, code), 204);
    expect(410, "room_gone", move_seat(&pair, pair.token_b, hash, code), code);
    snprintf(pair.room, sizeof(pair.room), "AAAAAAAAAAAAAAAAAAAAAA");
    expect(404, "no_such_room", move_seat(&pair, pair.token_b, hash, code), code);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("seats");
    TCase *tc = tcase_create("seat");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, seat_moves_once_and_the_old_token_stops);
    tcase_add_test(tc, wrong_token_and_bad_bodies_are_refused);
    tcase_add_test(tc, erased_or_unknown_room_is_gone);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
