#include "thou/pairing.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT 20000
#define NOW     1000000

/* A participant that joined at t (ms before NOW: t) and is connected or not. */
static struct thou_pairing_entry entry(int64_t label, int64_t queued_ms, bool connected,
                                       int64_t last_seen_ms, bool left_behind)
{
    return (struct thou_pairing_entry){label, queued_ms, last_seen_ms, connected, left_behind};
}

struct outcome {
    struct thou_pairing_pair pairs[16];
    size_t n_pairs;
    size_t leave[32];
    size_t n_leave;
};

static void decide(const struct thou_pairing_entry *q, size_t n, struct outcome *out)
{
    memset(out, 0xa5, sizeof(*out));
    thou_pairing_decide(q, n, NOW, TIMEOUT, out->pairs, &out->n_pairs, out->leave, &out->n_leave);
}

/* ---- presence ------------------------------------------------------------ */

START_TEST(test_presence)
{
    struct thou_pairing_entry e = entry(1, 0, false, NOW - TIMEOUT + 1, false);
    ck_assert(thou_pairing_present(&e, NOW, TIMEOUT));
    e.last_seen_ms = NOW - TIMEOUT; /* gone for exactly the timeout: gone */
    ck_assert(!thou_pairing_present(&e, NOW, TIMEOUT));
    e.connected = true; /* connected: present however long ago it was last seen */
    ck_assert(thou_pairing_present(&e, NOW, TIMEOUT));
    e.last_seen_ms = 0;
    ck_assert(thou_pairing_present(&e, NOW, TIMEOUT));
    e = entry(1, 0, false, NOW, false); /* just joined, no stream yet */
    ck_assert(thou_pairing_present(&e, NOW, TIMEOUT));
}
END_TEST

/* ---- scenarios ----------------------------------------------------------- */

START_TEST(test_empty_and_one)
{
    struct outcome o;
    decide(NULL, 0, &o);
    ck_assert_uint_eq(o.n_pairs, 0);
    ck_assert_uint_eq(o.n_leave, 0);
    struct thou_pairing_entry one = entry(1, 5, true, 5, false);
    decide(&one, 1, &o);
    ck_assert_uint_eq(o.n_pairs, 0); /* the odd one out waits */
    ck_assert_uint_eq(o.n_leave, 0);
}
END_TEST

START_TEST(test_first_come_first_served)
{
    /* Given out of order: labels 3, 1, 4, 2, 5 arrived at 30, 10, 40, 20, 50. */
    struct thou_pairing_entry q[] = {
        entry(3, 30, true, 30, false), entry(1, 10, true, 10, false),
        entry(4, 40, true, 40, false), entry(2, 20, false, NOW, false),
        entry(5, 50, true, 50, false),
    };
    struct outcome o;
    decide(q, 5, &o);
    ck_assert_uint_eq(o.n_leave, 0);
    ck_assert_uint_eq(o.n_pairs, 2);
    ck_assert_int_eq(q[o.pairs[0].a].label, 1); /* the first to arrive is A */
    ck_assert_int_eq(q[o.pairs[0].b].label, 2);
    ck_assert_int_eq(q[o.pairs[1].a].label, 3);
    ck_assert_int_eq(q[o.pairs[1].b].label, 4);
    /* 5 waits */
}
END_TEST

START_TEST(test_same_time_by_label)
{
    struct thou_pairing_entry q[] = {entry(9, 7, true, 7, false), entry(8, 7, true, 7, false)};
    struct outcome o;
    decide(q, 2, &o);
    ck_assert_uint_eq(o.n_pairs, 1);
    ck_assert_int_eq(q[o.pairs[0].a].label, 8);
    ck_assert_int_eq(q[o.pairs[0].b].label, 9);
}
END_TEST

START_TEST(test_gone_leave_and_are_skipped)
{
    struct thou_pairing_entry q[] = {
        entry(1, 10, false, NOW - TIMEOUT, false),     /* gone: leaves */
        entry(2, 20, true, 0, false),                  /* connected since long ago */
        entry(3, 30, false, NOW - TIMEOUT + 1, false), /* closed its tab a moment ago */
        entry(4, 40, false, 0, true),                  /* left behind, then gone too */
    };
    struct outcome o;
    decide(q, 4, &o);
    ck_assert_uint_eq(o.n_leave, 2);
    ck_assert_int_eq(q[o.leave[0]].label, 1);
    ck_assert_int_eq(q[o.leave[1]].label, 4);
    ck_assert_uint_eq(o.n_pairs, 1);
    ck_assert_int_eq(q[o.pairs[0].a].label, 2);
    ck_assert_int_eq(q[o.pairs[0].b].label, 3);
}
END_TEST

START_TEST(test_left_behind_first)
{
    struct thou_pairing_entry q[] = {
        entry(1, 10, true, 10, false),  entry(2, 20, true, 20, false),
        entry(7, 500, true, 500, true), entry(6, 400, true, 400, true),
        entry(3, 30, true, 30, false),
    };
    struct outcome o;
    decide(q, 5, &o);
    ck_assert_uint_eq(o.n_pairs, 2);
    /* The two left behind pair with each other, in the order they came back. */
    ck_assert_int_eq(q[o.pairs[0].a].label, 6);
    ck_assert_int_eq(q[o.pairs[0].b].label, 7);
    ck_assert_int_eq(q[o.pairs[1].a].label, 1);
    ck_assert_int_eq(q[o.pairs[1].b].label, 2);
}
END_TEST

START_TEST(test_lone_left_behind_takes_next_newcomer)
{
    struct thou_pairing_entry q[] = {
        entry(1, 10, true, 10, false),
        entry(5, 900, true, 900, true),
        entry(2, 20, true, 20, false),
    };
    struct outcome o;
    decide(q, 3, &o);
    ck_assert_uint_eq(o.n_pairs, 1);
    ck_assert_int_eq(q[o.pairs[0].a].label, 5);
    ck_assert_int_eq(q[o.pairs[0].b].label, 1);
}
END_TEST

/* ---- every small queue ---------------------------------------------------- */

/*
 * Every queue of up to 6 participants, each in one of four conditions
 * (connected / absent a moment / gone / left behind and connected), in two
 * input orders: the decision must satisfy every rule.
 */
enum condition { C_CONNECTED, C_MOMENT, C_GONE, C_LEFT_BEHIND, N_CONDITIONS };

static struct thou_pairing_entry make(int64_t label, enum condition c)
{
    int64_t queued = 100 * label;
    switch (c) {
    case C_CONNECTED:
        return entry(label, queued, true, queued, false);
    case C_MOMENT:
        return entry(label, queued, false, NOW - 1000, false);
    case C_GONE:
        return entry(label, queued, false, NOW - TIMEOUT - 1, false);
    case C_LEFT_BEHIND:
    default:
        return entry(label, 10000 - queued, true, queued, true);
    }
}

/* Position in queue order, computed independently of the module. */
static int64_t rank(const struct thou_pairing_entry *e)
{
    return (e->left_behind ? 0 : INT64_C(1) << 40) + e->queued_ms * 1000 + e->label;
}

static void check_decision(const struct thou_pairing_entry *q, size_t n, const struct outcome *o)
{
    int seen[8] = {0};
    size_t present = 0, left_behind_present = 0;
    for (size_t i = 0; i < n; i++) {
        bool p = thou_pairing_present(&q[i], NOW, TIMEOUT);
        present += p;
        left_behind_present += p && q[i].left_behind;
    }
    ck_assert_uint_eq(o->n_leave, n - present);
    for (size_t i = 0; i < o->n_leave; i++) {
        ck_assert_uint_lt(o->leave[i], n);
        ck_assert(!thou_pairing_present(&q[o->leave[i]], NOW, TIMEOUT));
        seen[o->leave[i]]++;
    }
    ck_assert_uint_eq(o->n_pairs, present / 2);
    int64_t last = -1;
    for (size_t i = 0; i < o->n_pairs; i++) {
        const struct thou_pairing_pair *p = &o->pairs[i];
        ck_assert_uint_lt(p->a, n);
        ck_assert_uint_lt(p->b, n);
        ck_assert_uint_ne(p->a, p->b);
        seen[p->a]++;
        seen[p->b]++;
        ck_assert(thou_pairing_present(&q[p->a], NOW, TIMEOUT));
        ck_assert(thou_pairing_present(&q[p->b], NOW, TIMEOUT));
        /* A comes first, and pairs come in queue order */
        ck_assert(rank(&q[p->a]) < rank(&q[p->b]));
        ck_assert(rank(&q[p->a]) > last);
        last = rank(&q[p->b]);
        /* Two left behind pair with each other before anyone else. */
        if (i < left_behind_present / 2) {
            ck_assert(q[p->a].left_behind);
            ck_assert(q[p->b].left_behind);
        }
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_int_le(seen[i], 1); /* nobody twice */
    /* The one left waiting, if any, is present and last in queue order. */
    for (size_t i = 0; i < n; i++) {
        if (seen[i])
            continue;
        ck_assert(present % 2 == 1);
        for (size_t j = 0; j < n; j++)
            if (j != i && thou_pairing_present(&q[j], NOW, TIMEOUT))
                ck_assert(rank(&q[j]) < rank(&q[i]));
    }
}

START_TEST(test_every_small_queue)
{
    size_t checked = 0;
    for (size_t n = 0; n <= 6; n++) {
        size_t combos = 1;
        for (size_t i = 0; i < n; i++)
            combos *= N_CONDITIONS;
        for (size_t code = 0; code < combos; code++) {
            struct thou_pairing_entry q[6], reversed[6];
            size_t c = code;
            for (size_t i = 0; i < n; i++) {
                q[i] = make((int64_t)i + 1, (enum condition)(c % N_CONDITIONS));
                c /= N_CONDITIONS;
            }
            for (size_t i = 0; i < n; i++)
                reversed[i] = q[n - 1 - i];
            struct outcome o, r;
            decide(q, n, &o);
            check_decision(q, n, &o);
            decide(reversed, n, &r);
            check_decision(reversed, n, &r);
            /* The same people pair the same way whatever order they were given in. */
            ck_assert_uint_eq(o.n_pairs, r.n_pairs);
            for (size_t i = 0; i < o.n_pairs; i++) {
                ck_assert_int_eq(q[o.pairs[i].a].label, reversed[r.pairs[i].a].label);
                ck_assert_int_eq(q[o.pairs[i].b].label, reversed[r.pairs[i].b].label);
            }
            checked++;
        }
    }
    ck_assert_uint_eq(checked, 1 + 4 + 16 + 64 + 256 + 1024 + 4096);
}
END_TEST

/* ---- by hand -------------------------------------------------------------- */

START_TEST(test_by_hand)
{
    struct thou_pairing_entry q[] = {
        entry(1, 10, true, 10, false),
        entry(2, 20, false, 0, false), /* absent: the facilitator may still pair them */
        entry(3, 30, true, 30, true),
    };
    struct thou_pairing_pair p = {99, 99};
    ck_assert_int_eq(thou_pairing_by_hand(q, 3, 2, 1, &p), THOU_PAIRING_OK);
    ck_assert_uint_eq(p.a, 0); /* the earlier arrival is A, whatever order they were named in */
    ck_assert_uint_eq(p.b, 1);
    ck_assert_int_eq(thou_pairing_by_hand(q, 3, 1, 3, &p), THOU_PAIRING_OK);
    ck_assert_uint_eq(p.a, 2); /* left behind comes first */
    ck_assert_uint_eq(p.b, 0);
    p = (struct thou_pairing_pair){99, 99};
    ck_assert_int_eq(thou_pairing_by_hand(q, 3, 1, 1, &p), THOU_PAIRING_SAME);
    ck_assert_int_eq(thou_pairing_by_hand(q, 3, 1, 4, &p), THOU_PAIRING_NOT_WAITING);
    ck_assert_int_eq(thou_pairing_by_hand(q, 3, 5, 1, &p), THOU_PAIRING_NOT_WAITING);
    ck_assert_int_eq(thou_pairing_by_hand(q, 0, 1, 2, &p), THOU_PAIRING_NOT_WAITING);
    ck_assert_uint_eq(p.a, 99); /* untouched on refusal */
}
END_TEST

static Suite *pairing_suite(void)
{
    Suite *s = suite_create("pairing");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_presence);
    tcase_add_test(tc, test_empty_and_one);
    tcase_add_test(tc, test_first_come_first_served);
    tcase_add_test(tc, test_same_time_by_label);
    tcase_add_test(tc, test_gone_leave_and_are_skipped);
    tcase_add_test(tc, test_left_behind_first);
    tcase_add_test(tc, test_lone_left_behind_takes_next_newcomer);
    tcase_add_test(tc, test_every_small_queue);
    tcase_add_test(tc, test_by_hand);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pairing_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
