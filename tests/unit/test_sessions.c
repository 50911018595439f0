#include "thou/sessions.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static struct thou_session session_of(const char *room_id, char role)
{
    struct thou_session s;
    memset(&s, 0, sizeof(s));
    snprintf(s.room_id, sizeof(s.room_id), "%s", room_id);
    s.role = role;
    snprintf(s.set_id, sizeof(s.set_id), "couples-short");
    s.set_version = 1;
    s.expires_ms = 1234;
    return s;
}

START_TEST(test_put_then_get)
{
    struct thou_sessions *sessions = thou_sessions_new();
    uint8_t token[THOU_HASH_LEN];
    memset(token, 7, sizeof(token));
    struct thou_session in = session_of("roomAAAAAAAAAAAAAAAAAA", 'B'), out;
    ck_assert(!thou_sessions_get(sessions, token, in.room_id, &out));
    thou_sessions_put(sessions, token, &in);
    ck_assert(thou_sessions_get(sessions, token, in.room_id, &out));
    ck_assert_str_eq(out.room_id, in.room_id);
    ck_assert_int_eq(out.role, 'B');
    ck_assert_str_eq(out.set_id, "couples-short");
    ck_assert_int_eq(out.set_version, 1);
    ck_assert_int_eq(out.expires_ms, 1234);
    thou_sessions_free(sessions);
}
END_TEST

/* A token is only ever good for its own room. */
START_TEST(test_other_room_misses)
{
    struct thou_sessions *sessions = thou_sessions_new();
    uint8_t token[THOU_HASH_LEN];
    memset(token, 7, sizeof(token));
    struct thou_session in = session_of("roomAAAAAAAAAAAAAAAAAA", 'A'), out;
    thou_sessions_put(sessions, token, &in);
    ck_assert(!thou_sessions_get(sessions, token, "roomBBBBBBBBBBBBBBBBBB", &out));
    thou_sessions_free(sessions);
}
END_TEST

/* Another token in the same set (same first bytes) is not mistaken for it. */
START_TEST(test_same_slot_other_token_misses)
{
    struct thou_sessions *sessions = thou_sessions_new();
    uint8_t token[THOU_HASH_LEN], other[THOU_HASH_LEN];
    memset(token, 7, sizeof(token));
    memcpy(other, token, sizeof(other));
    other[THOU_HASH_LEN - 1] ^= 1;
    struct thou_session in = session_of("roomAAAAAAAAAAAAAAAAAA", 'A'), out;
    thou_sessions_put(sessions, token, &in);
    ck_assert(!thou_sessions_get(sessions, other, in.room_id, &out));
    /* ...and each keeps its own session once both are in. */
    struct thou_session second = session_of("roomCCCCCCCCCCCCCCCCCC", 'B');
    thou_sessions_put(sessions, other, &second);
    ck_assert(thou_sessions_get(sessions, token, in.room_id, &out));
    ck_assert_int_eq(out.role, 'A');
    ck_assert(!thou_sessions_get(sessions, token, second.room_id, &out));
    ck_assert(thou_sessions_get(sessions, other, second.room_id, &out));
    ck_assert_int_eq(out.role, 'B');
    thou_sessions_free(sessions);
}
END_TEST

/* Tokens whose hashes share a set all stay: a set holds several, so two
 * participants never evict each other on every request. */
START_TEST(test_colliding_tokens_all_stay)
{
    struct thou_sessions *sessions = thou_sessions_new();
    enum { N = 8 };
    uint8_t tokens[N][THOU_HASH_LEN];
    for (int i = 0; i < N; i++) {
        memset(tokens[i], 0, THOU_HASH_LEN);
        tokens[i][31] = (uint8_t)(i + 1); /* same first bytes: the same set */
        struct thou_session in = session_of("roomAAAAAAAAAAAAAAAAAA", i % 2 ? 'A' : 'B');
        thou_sessions_put(sessions, tokens[i], &in);
    }
    for (int i = 0; i < N; i++) {
        struct thou_session out;
        ck_assert_msg(thou_sessions_get(sessions, tokens[i], "roomAAAAAAAAAAAAAAAAAA", &out),
                      "token %d was evicted", i);
        ck_assert_int_eq(out.role, i % 2 ? 'A' : 'B');
    }
    /* One more in the full set evicts one of them, not a wrong answer. */
    uint8_t extra[THOU_HASH_LEN] = {0};
    extra[31] = 0xff;
    struct thou_session in = session_of("roomBBBBBBBBBBBBBBBBBB", 'A'), out;
    thou_sessions_put(sessions, extra, &in);
    ck_assert(thou_sessions_get(sessions, extra, in.room_id, &out));
    int kept = 0;
    for (int i = 0; i < N; i++)
        kept += thou_sessions_get(sessions, tokens[i], "roomAAAAAAAAAAAAAAAAAA", &out);
    ck_assert_int_eq(kept, N - 1);
    thou_sessions_free(sessions);
}
END_TEST

/* A seat moved on another instance: that seat's tokens go, no other. */
START_TEST(test_forget_seat_and_all)
{
    struct thou_sessions *sessions = thou_sessions_new();
    uint8_t tokens[3][THOU_HASH_LEN];
    struct thou_session in[3] = {session_of("roomXAAAAAAAAAAAAAAAAA", 'A'),
                                 session_of("roomXAAAAAAAAAAAAAAAAA", 'B'),
                                 session_of("roomYAAAAAAAAAAAAAAAAA", 'A')};
    for (int i = 0; i < 3; i++) {
        memset(tokens[i], 0x10 * (i + 1), THOU_HASH_LEN);
        thou_sessions_put(sessions, tokens[i], &in[i]);
    }
    unsigned long epoch = thou_sessions_epoch(sessions);
    thou_sessions_forget_seat(sessions, "roomXAAAAAAAAAAAAAAAAA", 'A');
    ck_assert_uint_ne(thou_sessions_epoch(sessions), epoch);
    struct thou_session out;
    ck_assert(!thou_sessions_get(sessions, tokens[0], in[0].room_id, &out));
    ck_assert(thou_sessions_get(sessions, tokens[1], in[1].room_id, &out));
    ck_assert(thou_sessions_get(sessions, tokens[2], in[2].room_id, &out));
    /* A store answer read before the forgetting is not kept after it. */
    thou_sessions_put_since(sessions, tokens[0], &in[0], epoch);
    ck_assert(!thou_sessions_get(sessions, tokens[0], in[0].room_id, &out));
    thou_sessions_forget_all(sessions);
    for (int i = 0; i < 3; i++)
        ck_assert(!thou_sessions_get(sessions, tokens[i], in[i].room_id, &out));
    thou_sessions_free(sessions);
}
END_TEST

START_TEST(test_free_null)
{
    thou_sessions_free(NULL);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("sessions");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_put_then_get);
    tcase_add_test(tc, test_other_room_misses);
    tcase_add_test(tc, test_same_slot_other_token_misses);
    tcase_add_test(tc, test_colliding_tokens_all_stay);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_forget_seat_and_all);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
