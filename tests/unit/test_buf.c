#include "thou/buf.h"
#include "thou/mem.h"

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct thou_buf buf;

static void setup(void)
{
    thou_buf_init(&buf);
}

static void teardown(void)
{
    thou_buf_release(&buf);
    ck_assert_ptr_null(buf.data);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_uint_eq(buf.cap, 0);
}

/* The invariants every operation keeps. */
static void assert_sane(const struct thou_buf *b)
{
    if (!b->data) {
        ck_assert_uint_eq(b->len, 0);
        ck_assert_uint_eq(b->cap, 0);
        return;
    }
    ck_assert_uint_gt(b->cap, b->len);
    ck_assert_int_eq(b->data[b->len], '\0');
}

START_TEST(test_init)
{
    ck_assert_ptr_null(buf.data);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_uint_eq(buf.cap, 0);
    /* Release and reset of an untouched buffer are harmless. */
    thou_buf_reset(&buf);
    assert_sane(&buf);
    thou_buf_release(&buf);
    thou_buf_release(&buf);
    assert_sane(&buf);
}
END_TEST

START_TEST(test_append)
{
    thou_buf_append(&buf, "abc", 3);
    assert_sane(&buf);
    ck_assert_uint_eq(buf.len, 3);
    ck_assert_str_eq(buf.data, "abc");
    /* Bytes, NULs included, are kept as given. */
    thou_buf_append(&buf, "d\0e", 3);
    assert_sane(&buf);
    ck_assert_uint_eq(buf.len, 6);
    ck_assert_mem_eq(buf.data, "abcd\0e", 7);
    /* A zero-length append changes nothing but keeps the terminator. */
    thou_buf_append(&buf, "zzz", 0);
    ck_assert_uint_eq(buf.len, 6);
    assert_sane(&buf);
    thou_buf_puts(&buf, "fgh");
    ck_assert_uint_eq(buf.len, 9);
    ck_assert_mem_eq(buf.data, "abcd\0efgh", 10);
    thou_buf_puts(&buf, "");
    ck_assert_uint_eq(buf.len, 9);
}
END_TEST

/* An empty append still makes a valid empty string. */
START_TEST(test_append_empty_first)
{
    thou_buf_append(&buf, NULL, 0);
    assert_sane(&buf);
    ck_assert_ptr_nonnull(buf.data);
    ck_assert_str_eq(buf.data, "");
}
END_TEST

START_TEST(test_growth)
{
    /* Many small appends: every byte kept, capacity grows geometrically. */
    size_t reallocs = 0, last_cap = 0;
    for (int i = 0; i < 10000; i++) {
        char piece[8];
        int n = snprintf(piece, sizeof(piece), "%04d|", i);
        thou_buf_append(&buf, piece, (size_t)n);
        assert_sane(&buf);
        if (buf.cap != last_cap) {
            reallocs++;
            last_cap = buf.cap;
        }
    }
    ck_assert_uint_eq(buf.len, 50000);
    ck_assert_uint_lt(reallocs, 20);
    for (int i = 0; i < 10000; i++) {
        char piece[8];
        snprintf(piece, sizeof(piece), "%04d|", i);
        ck_assert_mem_eq(buf.data + i * 5, piece, 5);
    }
    /* One append much larger than the capacity. */
    size_t big = buf.cap * 3 + 17;
    char *block = malloc(big);
    ck_assert_ptr_nonnull(block);
    memset(block, 'x', big);
    thou_buf_append(&buf, block, big);
    assert_sane(&buf);
    ck_assert_uint_eq(buf.len, 50000 + big);
    ck_assert_mem_eq(buf.data + 50000, block, big);
    free(block);
}
END_TEST

/* Appends that land exactly on the capacity boundary. */
START_TEST(test_growth_boundaries)
{
    for (size_t n = 0; n < 300; n++) {
        thou_buf_reset(&buf);
        for (size_t i = 0; i < n; i++)
            thou_buf_append(&buf, "y", 1);
        assert_sane(&buf);
        ck_assert_uint_eq(buf.len, n);
        ck_assert_uint_eq(strspn(buf.data ? buf.data : "", "y"), n);
    }
}
END_TEST

static void vprintf_wrapper(struct thou_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vprintf_wrapper(struct thou_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    thou_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

START_TEST(test_printf)
{
    thou_buf_printf(&buf, "%s=%d", "n", 42);
    assert_sane(&buf);
    ck_assert_str_eq(buf.data, "n=42");
    ck_assert_uint_eq(buf.len, 4);
    thou_buf_printf(&buf, " %llu %.2f %c", 18446744073709551615ULL, 1.5, 'z');
    ck_assert_str_eq(buf.data, "n=42 18446744073709551615 1.50 z");
    ck_assert_uint_eq(buf.len, strlen(buf.data));
    vprintf_wrapper(&buf, "|%05u|", 7u);
    ck_assert_str_eq(buf.data, "n=42 18446744073709551615 1.50 z|00007|");
    /* Formatting nothing appends nothing. */
    size_t len = buf.len;
    thou_buf_printf(&buf, "%s", "");
    ck_assert_uint_eq(buf.len, len);
    assert_sane(&buf);
}
END_TEST

/* printf output longer than the capacity (and than any first guess). */
START_TEST(test_printf_growth)
{
    char *long_text = malloc(10001);
    ck_assert_ptr_nonnull(long_text);
    memset(long_text, 'q', 10000);
    long_text[10000] = '\0';
    thou_buf_puts(&buf, "head:");
    thou_buf_printf(&buf, "[%s]", long_text);
    assert_sane(&buf);
    ck_assert_uint_eq(buf.len, 5 + 10002);
    ck_assert_mem_eq(buf.data, "head:[", 6);
    ck_assert_mem_eq(buf.data + 6, long_text, 10000);
    ck_assert_str_eq(buf.data + 10006, "]");
    /* Many printfs, each crossing capacity at some point. */
    thou_buf_reset(&buf);
    for (int i = 0; i < 2000; i++)
        thou_buf_printf(&buf, "%d,", i % 10);
    ck_assert_uint_eq(buf.len, 4000);
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(buf.data[i * 2], '0' + i % 10);
    free(long_text);
}
END_TEST

START_TEST(test_reset_keeps_memory)
{
    thou_buf_puts(&buf, "some text that needs memory");
    char *data = buf.data;
    size_t cap = buf.cap;
    thou_buf_reset(&buf);
    assert_sane(&buf);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_ptr_eq(buf.data, data);
    ck_assert_uint_eq(buf.cap, cap);
    ck_assert_str_eq(buf.data, "");
    thou_buf_puts(&buf, "new");
    ck_assert_ptr_eq(buf.data, data);
    ck_assert_str_eq(buf.data, "new");
    ck_assert_uint_eq(buf.len, 3);
}
END_TEST

START_TEST(test_steal)
{
    thou_buf_puts(&buf, "stolen");
    size_t len = 0;
    char *text = thou_buf_steal(&buf, &len);
    ck_assert_str_eq(text, "stolen");
    ck_assert_uint_eq(len, 6);
    /* The buffer is empty again and usable. */
    ck_assert_ptr_null(buf.data);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_uint_eq(buf.cap, 0);
    thou_buf_puts(&buf, "again");
    ck_assert_str_eq(buf.data, "again");
    ck_assert_ptr_ne(buf.data, text);
    free(text);

    /* len may be NULL. */
    text = thou_buf_steal(&buf, NULL);
    ck_assert_str_eq(text, "again");
    free(text);

    /* An empty buffer yields an empty heap string, never NULL. */
    text = thou_buf_steal(&buf, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "");
    ck_assert_uint_eq(len, 0);
    free(text);
    ck_assert_ptr_null(buf.data);

    /* After a reset, too. */
    thou_buf_puts(&buf, "x");
    thou_buf_reset(&buf);
    text = thou_buf_steal(&buf, &len);
    ck_assert_str_eq(text, "");
    ck_assert_uint_eq(len, 0);
    free(text);
}
END_TEST

START_TEST(test_release)
{
    thou_buf_puts(&buf, "to be freed");
    thou_buf_release(&buf);
    ck_assert_ptr_null(buf.data);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_uint_eq(buf.cap, 0);
    thou_buf_puts(&buf, "reused");
    ck_assert_str_eq(buf.data, "reused");
}
END_TEST

/* A length that cannot be added to the buffer aborts like an allocation
 * failure instead of wrapping around and writing out of bounds. */
START_TEST(test_append_overflow_aborts)
{
    static const char byte = 'x';
    thou_buf_puts(&buf, "abc");
    thou_buf_append(&buf, &byte, SIZE_MAX - 1);
}
END_TEST

START_TEST(test_append_overflow_aborts_empty)
{
    static const char byte = 'x';
    thou_buf_append(&buf, &byte, SIZE_MAX);
}
END_TEST

/* A failable buffer that cannot grow is marked failed, ignores appends until
 * reset and is not stolen; an ordinary one is not failed by the injection. */
START_TEST(test_failable_growth)
{
    char block[200];
    memset(block, 'x', sizeof(block));
    struct thou_buf fb;
    thou_buf_init_failable(&fb);
    thou_buf_puts(&fb, "kept");
    thou_mem_fail_at(0);
    thou_buf_append(&fb, block, sizeof(block)); /* needs a larger block: the growth fails */
    thou_mem_fail_at(-1);
    ck_assert(thou_buf_failed(&fb));
    ck_assert_str_eq(fb.data, "kept");
    thou_buf_puts(&fb, "more"); /* ignored: the contents are already incomplete */
    ck_assert_uint_eq(fb.len, 4);
    ck_assert_ptr_null(thou_buf_steal(&fb, NULL));
    ck_assert(!thou_buf_failed(&fb) && fb.may_fail && fb.len == 0);
    thou_buf_puts(&fb, "again");
    ck_assert_str_eq(fb.data, "again");
    thou_buf_release(&fb);
    ck_assert(fb.may_fail);

    struct thou_buf plain;
    thou_buf_init(&plain);
    thou_mem_fail_at(0);
    thou_buf_append(&plain, block, sizeof(block)); /* start-up buffers never fail: they abort */
    ck_assert(thou_mem_fail_pending());
    thou_mem_fail_at(-1);
    ck_assert(!thou_buf_failed(&plain) && plain.len == 200);
    thou_buf_release(&plain);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *suite = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_append);
    tcase_add_test(tc, test_append_empty_first);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_growth_boundaries);
    tcase_add_test(tc, test_printf);
    tcase_add_test(tc, test_printf_growth);
    tcase_add_test(tc, test_reset_keeps_memory);
    tcase_add_test(tc, test_steal);
    tcase_add_test(tc, test_release);
    tcase_add_test(tc, test_failable_growth);
    suite_add_tcase(suite, tc);

    TCase *limits = tcase_create("limits");
    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_add_test_raise_signal(limits, test_append_overflow_aborts, SIGABRT);
    tcase_add_test_raise_signal(limits, test_append_overflow_aborts_empty, SIGABRT);
    suite_add_tcase(suite, limits);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(buf_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
