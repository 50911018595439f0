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

/* Another token in the same slot (same first bytes) is not mistaken for it. */
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
    /* ...and replacing the slot forgets the first one: a miss, never a wrong hit. */
    struct thou_session second = session_of("roomCCCCCCCCCCCCCCCCCC", 'B');
    thou_sessions_put(sessions, other, &second);
    ck_assert(!thou_sessions_get(sessions, token, in.room_id, &out));
    ck_assert(thou_sessions_get(sessions, other, second.room_id, &out));
    ck_assert_int_eq(out.role, 'B');
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
    tcase_add_test(tc, test_free_null);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
