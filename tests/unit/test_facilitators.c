#include "thou/crypto.h"
#include "thou/facilitators.h"
#include "thou/store.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static struct thou_store *store;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    char errbuf[256];
    ck_assert_int_eq(thou_crypto_init(), THOU_OK);
    snprintf(dir, sizeof(dir), "/tmp/thou-fac-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(thou_store_open(dir, &store, errbuf, sizeof(errbuf)), THOU_OK);
}

static void teardown(void)
{
    thou_store_close(store);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

START_TEST(test_names_and_passwords)
{
    ck_assert(thou_facilitator_name_valid("ada"));
    ck_assert(thou_facilitator_name_valid("A.b_c-9"));
    ck_assert(!thou_facilitator_name_valid(""));
    ck_assert(!thou_facilitator_name_valid("a b"));
    ck_assert(!thou_facilitator_name_valid("ä"));
    ck_assert(!thou_facilitator_name_valid("a/b"));
    char name[80];
    memset(name, 'n', 64);
    name[64] = '\0';
    ck_assert(thou_facilitator_name_valid(name));
    name[64] = 'n';
    name[65] = '\0';
    ck_assert(!thou_facilitator_name_valid(name));
    ck_assert(!thou_facilitator_password_valid(0));
    ck_assert(thou_facilitator_password_valid(1));
    ck_assert(thou_facilitator_password_valid(1024));
    ck_assert(!thou_facilitator_password_valid(1025));
    ck_assert_int_eq(thou_facilitators_add(store, "a b", "pw", 2, 1), THOU_EINVAL);
    ck_assert_int_eq(thou_facilitators_add(store, "ada", "", 0, 1), THOU_EINVAL);
}
END_TEST

static void count(void *ctx, const char *name)
{
    (void)name;
    (*(int *)ctx)++;
}

START_TEST(test_accounts)
{
    ck_assert_int_eq(thou_facilitators_add(store, "ada", "pw one", 6, 1), THOU_OK);
    ck_assert_int_eq(thou_facilitators_add(store, "ada", "other", 5, 1), THOU_EEXIST);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw one", 6), THOU_OK);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw onE", 6), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw on", 5), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_verify(store, "bob", "pw one", 6), THOU_EAUTH);
    int n = 0;
    ck_assert_int_eq(thou_facilitators_list(store, count, &n), THOU_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(thou_facilitators_set_password(store, "bob", "x", 1), THOU_ENOTFOUND);
    ck_assert_int_eq(thou_facilitators_set_password(store, "ada", "pw two", 6), THOU_OK);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw one", 6), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw two", 6), THOU_OK);
    ck_assert_int_eq(thou_facilitators_remove(store, "bob"), THOU_ENOTFOUND);
    ck_assert_int_eq(thou_facilitators_remove(store, "ada"), THOU_OK);
    ck_assert_int_eq(thou_facilitators_verify(store, "ada", "pw two", 6), THOU_EAUTH);
}
END_TEST

START_TEST(test_sessions)
{
    ck_assert_int_eq(thou_facilitators_add(store, "ada", "pw", 2, 1), THOU_OK);
    char token[THOU_TOKEN_B64_LEN + 1], token2[THOU_TOKEN_B64_LEN + 1];
    struct thou_facilitator_session s, got;
    ck_assert_int_eq(thou_facilitators_session_new(store, "ada", 1000, 500, token, &s), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_new(store, "ada", 1000, 5000, token2, &got),
                     THOU_OK);
    ck_assert_str_ne(token, token2);
    ck_assert_str_ne(s.csrf, got.csrf);
    ck_assert_int_eq(s.expires_ms, 1500);
    ck_assert_int_eq(thou_facilitators_session_get(store, token, 1499, &got), THOU_OK);
    ck_assert_str_eq(got.name, "ada");
    ck_assert_str_eq(got.csrf, s.csrf);
    /* expired at its expiry, malformed, unknown */
    ck_assert_int_eq(thou_facilitators_session_get(store, token, 1500, &got), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_session_get(store, "short", 1000, &got), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_session_get(store, NULL, 1000, &got), THOU_EAUTH);
    char other[THOU_TOKEN_B64_LEN + 1];
    uint8_t hash[THOU_DIGEST_BYTES];
    thou_crypto_new_token(other, hash);
    ck_assert_int_eq(thou_facilitators_session_get(store, other, 1000, &got), THOU_EAUTH);
    /* revoked */
    ck_assert_int_eq(thou_facilitators_session_get(store, token2, 1000, &got), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_revoke(store, token2, 1000), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_get(store, token2, 1000, &got), THOU_EAUTH);
    /* a new password ends every session of the account */
    ck_assert_int_eq(thou_facilitators_session_new(store, "ada", 1000, 5000, token, &s), THOU_OK);
    ck_assert_int_eq(thou_facilitators_set_password(store, "ada", "new", 3), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_get(store, token, 1000, &got), THOU_EAUTH);
    /* no session for an account that is not there */
    ck_assert_int_eq(thou_facilitators_session_new(store, "bob", 1000, 5000, token, &s),
                     THOU_EAUTH);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("facilitators");
    TCase *tc = tcase_create("facilitators");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_names_and_passwords);
    tcase_add_test(tc, test_accounts);
    tcase_add_test(tc, test_sessions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
