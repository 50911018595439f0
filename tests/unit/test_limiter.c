/*
 * Token-bucket rate limits (server/limiter.c). Time is simulated: every
 * call names its own now_ms, so refills are exact and the tests never sleep.
 */
#include "thou/limiter.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define T0 1000000 /* an arbitrary start, far from zero */

static struct thou_limiter *limiter;

/* 5 tokens a second, bursts of 20: the relay's --events-per-s 5 --events-burst 20. */
static void setup(void)
{
    limiter = thou_limiter_new(5.0, 20);
    ck_assert_ptr_nonnull(limiter);
}

/* Run under ASan, freeing proves nothing leaked, however many keys were made. */
static void teardown(void)
{
    thou_limiter_free(limiter);
    limiter = NULL;
}

/* Take until refused at now; returns how many were allowed (at most limit). */
static unsigned drain(const char *key, int64_t now, unsigned limit)
{
    unsigned taken = 0, retry = 0;
    while (taken < limit && thou_limiter_take(limiter, key, now, &retry))
        taken++;
    return taken;
}

START_TEST(burst_then_refusal)
{
    unsigned retry = 0;
    for (unsigned i = 0; i < 20; i++)
        ck_assert_msg(thou_limiter_take(limiter, "room", T0, &retry), "take %u refused", i);
    retry = 0;
    ck_assert(!thou_limiter_take(limiter, "room", T0, &retry));
    ck_assert_uint_ge(retry, 1);
    ck_assert_uint_eq(retry, 1); /* 5 a second: the next token is 200 ms away */
    /* Refusals do not dig a hole: still refused, still due in a second. */
    for (unsigned i = 0; i < 100; i++) {
        retry = 0;
        ck_assert(!thou_limiter_take(limiter, "room", T0, &retry));
        ck_assert_uint_eq(retry, 1);
    }
    /* A NULL retry_after is allowed. */
    ck_assert(!thou_limiter_take(limiter, "room", T0, NULL));
}
END_TEST

static const struct retry_case {
    double per_second;
    unsigned burst;
    int64_t wait_ms; /* after draining, time passed before the refused take */
    unsigned retry_after;
} retry_cases[] = {
    {5.0, 20, 0, 1},         /* 200 ms away: rounded up to a whole second */
    {1.0, 1, 0, 1},          /* exactly a second */
    {0.5, 1, 0, 2},          /* two seconds */
    {0.5, 1, 1000, 1},       /* half refilled: one second left */
    {0.5, 1, 1001, 1},       /* just under a second left */
    {0.1, 3, 0, 10},         /* ten seconds */
    {10.0 / 60.0, 10, 0, 6}, /* --join-failures-per-min 10 */
    {3.0 / 60.0, 3, 0, 20},  /* --join-failures-per-min 3 */
    {3.0 / 60.0, 3, 19500, 1},
    {1000.0, 5, 0, 1}, /* a millisecond away is still "at least 1" */
};

START_TEST(retry_after_table)
{
    const struct retry_case *c = &retry_cases[_i];
    struct thou_limiter *l = thou_limiter_new(c->per_second, c->burst);
    unsigned retry = 0;
    for (unsigned i = 0; i < c->burst; i++)
        ck_assert(thou_limiter_take(l, "k", T0, &retry));
    retry = 0;
    ck_assert(!thou_limiter_take(l, "k", T0 + c->wait_ms, &retry));
    ck_assert_msg(retry == c->retry_after, "%g/s burst %u after %lld ms: retry %u, expected %u",
                  c->per_second, c->burst, (long long)c->wait_ms, retry, c->retry_after);
    thou_limiter_free(l);
}
END_TEST

START_TEST(refill_over_time)
{
    ck_assert_uint_eq(drain("k", T0, 100), 20);
    /* 5 a second: one token every 200 ms, not before. */
    ck_assert(!thou_limiter_take(limiter, "k", T0 + 199, NULL));
    ck_assert(thou_limiter_take(limiter, "k", T0 + 201, NULL));
    ck_assert(!thou_limiter_take(limiter, "k", T0 + 201, NULL));
    ck_assert_uint_eq(drain("k", T0 + 1200, 100), 5);
    /* A long pause refills only up to the burst. */
    ck_assert_uint_eq(drain("k", T0 + 3600000, 100), 20);
    /* Time that seems to go backwards refills nothing and breaks nothing. */
    ck_assert(!thou_limiter_take(limiter, "k", T0, NULL));
    ck_assert_uint_eq(drain("k", T0 + 3600000 + 1000, 100), 5);
}
END_TEST

START_TEST(sustained_rate_is_the_configured_one)
{
    /* Asking every 10 ms for 60 s: the burst plus 5 a second, no more. */
    unsigned allowed = 0;
    for (int64_t t = 0; t <= 60000; t += 10)
        allowed += thou_limiter_take(limiter, "k", T0 + t, NULL);
    ck_assert_uint_eq(allowed, 20 + 5 * 60);
}
END_TEST

START_TEST(keys_are_independent)
{
    ck_assert_uint_eq(drain("alice", T0, 100), 20);
    ck_assert(!thou_limiter_take(limiter, "alice", T0, NULL));
    ck_assert_uint_eq(drain("bob", T0, 100), 20);
    /* Many other keys, some of which share hash slots with these. */
    char key[32];
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%u", i);
        ck_assert_msg(thou_limiter_take(limiter, key, T0, NULL), "fresh key %s refused", key);
    }
    ck_assert(!thou_limiter_take(limiter, "alice", T0, NULL));
    ck_assert(!thou_limiter_take(limiter, "bob", T0, NULL));
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%u", i);
        ck_assert_uint_eq(drain(key, T0, 100), 19);
    }
    /* Keys that share a prefix are different keys. */
    ck_assert_uint_eq(drain("alice2", T0, 100), 20);
    ck_assert_uint_eq(drain("alic", T0, 100), 20);
    ck_assert_uint_eq(drain("", T0, 100), 20);
}
END_TEST

START_TEST(token_hash_keys_are_independent)
{
    /* The relay keys on 32 hex characters of a token hash; room ids are 22. */
    const char *a = "0123456789abcdef0123456789abcdef";
    const char *b = "0123456789abcdef0123456789abcdee";
    ck_assert_uint_eq(drain(a, T0, 100), 20);
    ck_assert_uint_eq(drain(b, T0, 100), 20);
    ck_assert_uint_eq(drain("Dx54C6t8k-wlH2f_drz_Qw", T0, 100), 20);
    ck_assert_uint_eq(drain("Dx54C6t8k-wlH2f_drz_Qx", T0, 100), 20);
}
END_TEST

START_TEST(peek_does_not_consume)
{
    unsigned retry = 0;
    for (unsigned i = 0; i < 100; i++)
        ck_assert(thou_limiter_peek(limiter, "k", T0, &retry));
    ck_assert_uint_eq(drain("k", T0, 100), 20);
    retry = 0;
    ck_assert(!thou_limiter_peek(limiter, "k", T0, &retry));
    ck_assert_uint_ge(retry, 1);
    /* Peeking at a refused key does not push its refill back. */
    for (unsigned i = 0; i < 100; i++)
        ck_assert(!thou_limiter_peek(limiter, "k", T0 + i, NULL));
    ck_assert(thou_limiter_peek(limiter, "k", T0 + 201, NULL));
    ck_assert(thou_limiter_peek(limiter, "k", T0 + 201, NULL));
    ck_assert(thou_limiter_take(limiter, "k", T0 + 201, NULL));
    ck_assert(!thou_limiter_peek(limiter, "k", T0 + 201, NULL));
    /* The way the join handler uses it: peek, then take only on a failure. */
    struct thou_limiter *joins = thou_limiter_new(3.0 / 60.0, 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(thou_limiter_peek(joins, "room", T0, NULL));
        thou_limiter_take(joins, "room", T0, NULL);
    }
    retry = 0;
    ck_assert(!thou_limiter_peek(joins, "room", T0, &retry));
    ck_assert_uint_eq(retry, 20);
    ck_assert(thou_limiter_peek(joins, "other-room", T0, NULL));
    thou_limiter_free(joins);
}
END_TEST

START_TEST(prune_forgets_full_buckets_only)
{
    /* "drained": empty; "partial": 19.5 tokens at prune time; "full": refilled. */
    ck_assert_uint_eq(drain("drained", T0, 100), 20);
    ck_assert(thou_limiter_take(limiter, "partial", T0, NULL));
    ck_assert(thou_limiter_take(limiter, "partial", T0, NULL));
    ck_assert(thou_limiter_take(limiter, "full", T0 - 1000, NULL));
    ck_assert(thou_limiter_take(limiter, "untouched", T0, NULL));

    thou_limiter_prune(limiter, T0 + 300); /* partial: 18 + 1.5 = 19.5 < 20 */

    /* Kept buckets keep their debt: forgetting them would hand out a new burst. */
    ck_assert_uint_eq(drain("drained", T0 + 300, 100), 1);
    ck_assert_uint_eq(drain("partial", T0 + 300, 100), 19);
    /* Full buckets may be forgotten: they behave exactly like new ones. */
    ck_assert_uint_eq(drain("full", T0 + 300, 100), 20);

    /* Prune twice, with nothing and with everything to forget. */
    thou_limiter_prune(limiter, T0 + 300);
    thou_limiter_prune(limiter, T0 + 3600000);
    ck_assert_uint_eq(drain("drained", T0 + 3600000, 100), 20);
    ck_assert_uint_eq(drain("partial", T0 + 3600000, 100), 20);
    thou_limiter_prune(limiter, T0 + 3600000); /* all empty now: nothing forgotten */
    ck_assert(!thou_limiter_take(limiter, "drained", T0 + 3600000, NULL));
    ck_assert(!thou_limiter_take(limiter, "partial", T0 + 3600000, NULL));
}
END_TEST

START_TEST(prune_many_keys)
{
    char key[32];
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        unsigned want = i % 3 == 0 ? 20 : 1; /* a third drained, the rest barely used */
        ck_assert_uint_eq(drain(key, T0, want), want);
    }
    thou_limiter_prune(limiter, T0 + 1000); /* the barely used ones are full again */
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        if (i % 3 == 0)
            ck_assert_uint_eq(drain(key, T0 + 1000, 100), 5);
        else
            ck_assert_uint_eq(drain(key, T0 + 1000, 100), 20);
    }
}
END_TEST

START_TEST(free_null_is_a_no_op)
{
    thou_limiter_free(NULL);
}
END_TEST

/* A shared bucket that answers what verdict says, and records the call. */
static int verdict;
static char shared_name[32], shared_key[64];
static bool shared_consume;

static int fake_shared(void *ctx, const char *name, const char *key, double per_second,
                       unsigned burst, bool consume, int64_t now_ms, unsigned *retry_after_s)
{
    (void)ctx;
    ck_assert(per_second == 5.0);
    ck_assert_uint_eq(burst, 20);
    ck_assert_int_eq(now_ms, T0);
    snprintf(shared_name, sizeof(shared_name), "%s", name);
    snprintf(shared_key, sizeof(shared_key), "%s", key);
    shared_consume = consume;
    *retry_after_s = 7;
    return verdict;
}

START_TEST(shared_bucket_decides_when_it_answers)
{
    thou_limiter_share(limiter, "events", fake_shared, NULL);
    unsigned retry = 0;
    verdict = 0; /* the shared bucket is empty: refused, whatever the local one holds */
    ck_assert(!thou_limiter_take(limiter, "k", T0, &retry));
    ck_assert_uint_eq(retry, 7);
    ck_assert_str_eq(shared_name, "events");
    ck_assert_str_eq(shared_key, "k");
    ck_assert(shared_consume);
    ck_assert(!thou_limiter_peek(limiter, "k", T0, &retry));
    ck_assert(!shared_consume);
    verdict = 1;
    for (int i = 0; i < 100; i++) /* more than the local burst of 20 */
        ck_assert(thou_limiter_take(limiter, "k", T0, &retry));
    /* It cannot answer: the local bucket decides, full at first. */
    verdict = -1;
    ck_assert_uint_eq(drain("k", T0, 100), 20);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("limiter");
    TCase *tc = tcase_create("buckets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, burst_then_refusal);
    tcase_add_loop_test(tc, retry_after_table, 0,
                        (int)(sizeof(retry_cases) / sizeof(retry_cases[0])));
    tcase_add_test(tc, refill_over_time);
    tcase_add_test(tc, sustained_rate_is_the_configured_one);
    tcase_add_test(tc, keys_are_independent);
    tcase_add_test(tc, token_hash_keys_are_independent);
    tcase_add_test(tc, peek_does_not_consume);
    tcase_add_test(tc, prune_forgets_full_buckets_only);
    tcase_add_test(tc, prune_many_keys);
    tcase_add_test(tc, free_null_is_a_no_op);
    tcase_add_test(tc, shared_bucket_decides_when_it_answers);
    suite_add_tcase(suite, tc);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
