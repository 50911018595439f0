/*
 * Studies and research copies on the C side (docs/research.md, docs/crypto.md
 * §8): the export opens a consent copy and a step copy made by the browser
 * module (tests/js/research-vectors.json) and refuses a changed, misplaced
 * or forged one;
 * the pair tag and the fingerprint come out as the browser computes them;
 * block randomisation is balanced in every block; key files round-trip and
 * a damaged one is refused.
 */
#include "thou/export.h"
#include "thou/studies.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *vectors;

static const char *vec(const char *section, const char *name)
{
    const json_t *value = json_object_get(json_object_get(vectors, section), name);
    ck_assert_msg(json_is_string(value), "research-vectors.json lacks %s.%s", section, name);
    return json_string_value(value);
}

static void hex_bytes(const char *hex, uint8_t *out, size_t n)
{
    size_t len = 0;
    ck_assert_int_eq(sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL), 0);
    ck_assert_uint_eq(len, n);
}

static void setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    json_error_t error;
    vectors = json_load_file(THOU_SOURCE_DIR "/tests/js/research-vectors.json", 0, &error);
    ck_assert_msg(vectors, "cannot read research-vectors.json: %s", error.text);
}

static void teardown(void)
{
    json_decref(vectors);
}

START_TEST(test_browser_copy_opens)
{
    uint8_t pk[32], sk[32];
    hex_bytes(vec("study", "public_key"), pk, 32);
    hex_bytes(vec("study", "secret_key"), sk, 32);
    const char *room = vec("copy", "room"), *step = vec("copy", "step");
    const char *boxed = vec("copy", "boxed_b64url");

    /* The consent copy opens (sealed box) and announces the copy key. */
    json_t *consent =
        thou_export_open_copy(room, 'A', "consent", vec("consent", "sealed_b64url"), pk, sk);
    ck_assert_ptr_nonnull(consent);
    json_t *expected = json_loads(vec("consent", "plaintext"), 0, NULL);
    ck_assert(json_equal(consent, expected));
    json_decref(expected);
    ck_assert_str_eq(json_string_value(json_object_get(consent, "pair")), vec("pair", "tag"));

    /* The step copy opens with the copy key the consent copy announced. */
    json_t *plain = thou_export_open_boxed(room, 'A', step, boxed, consent, sk);
    ck_assert_ptr_nonnull(plain);
    expected = json_loads(vec("copy", "plaintext"), 0, NULL);
    ck_assert(json_equal(plain, expected));
    ck_assert_str_eq(json_string_value(json_object_get(plain, "text")),
                     "Ich höre dich, \"wirklich\".\nI hear you — 💛");
    json_decref(expected);
    json_decref(plain);

    /* Stored under another row, role or step: refused. */
    ck_assert_ptr_null(thou_export_open_boxed("another-room", 'A', step, boxed, consent, sk));
    ck_assert_ptr_null(thou_export_open_boxed(room, 'B', step, boxed, consent, sk));
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', "c13", boxed, consent, sk));
    ck_assert_ptr_null(
        thou_export_open_copy(room, 'B', "consent", vec("consent", "sealed_b64url"), pk, sk));

    /* One character changed, cut short, or not base64url: it does not open. */
    char *tampered = strdup(boxed);
    size_t at = strlen(tampered) / 2;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', step, tampered, consent, sk));
    tampered[60] = '\0';
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', step, tampered, consent, sk));
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', step, "!!!", consent, sk));
    free(tampered);

    /* Another copy key (a consent copy the server made up) or another study key: no. */
    uint8_t other_pk[32], other_sk[32];
    crypto_box_keypair(other_pk, other_sk);
    char other_b64[64];
    sodium_bin2base64(other_b64, sizeof(other_b64), other_pk, 32,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    json_t *forged = json_pack("{s:s}", "copy_key", other_b64);
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', step, boxed, forged, sk));
    json_decref(forged);
    ck_assert_ptr_null(thou_export_open_boxed(room, 'A', step, boxed, consent, other_sk));
    ck_assert_ptr_null(thou_export_open_copy(room, 'A', "consent", vec("consent", "sealed_b64url"),
                                             other_pk, other_sk));
    json_decref(consent);
}
END_TEST

START_TEST(test_pair_tag_and_fingerprint)
{
    uint8_t key[64], tag[16];
    hex_bytes(vec("pair", "a_tx"), key, 32);
    hex_bytes(vec("pair", "a_rx"), key + 32, 32);
    const char *input = vec("pair", "tag_input");
    crypto_generichash(tag, sizeof(tag), (const uint8_t *)input, strlen(input), key, sizeof(key));
    char hex[33];
    sodium_bin2hex(hex, sizeof(hex), tag, sizeof(tag));
    ck_assert_str_eq(hex, vec("pair", "tag"));

    uint8_t pk[32];
    hex_bytes(vec("study", "public_key"), pk, 32);
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(pk, fingerprint);
    ck_assert_str_eq(fingerprint, vec("study", "fingerprint"));
    ck_assert_str_eq(fingerprint, "da14 d030 2227 f8d4 87a5 98f9 4a84 7cb1"); /* crypto.md §8 */
}
END_TEST

START_TEST(test_blocks_balanced)
{
    uint8_t seed[THOU_STUDY_SEED_BYTES];
    for (size_t n = 1; n <= THOU_STUDY_MAX_CONDITIONS; n++) {
        randombytes_buf(seed, sizeof(seed));
        size_t counts[THOU_STUDY_MAX_CONDITIONS] = {0};
        bool orders_differ = n < 3;
        size_t first_block[THOU_STUDY_MAX_CONDITIONS];
        for (int64_t i = 0; i < (int64_t)n * 50; i++) {
            size_t c = thou_studies_condition(seed, n, i);
            ck_assert_uint_lt(c, n);
            counts[c]++;
            if (i < (int64_t)n)
                first_block[i] = c;
            else if (thou_studies_condition(seed, n, i) != first_block[i % (int64_t)n])
                orders_differ = true;
            /* After every whole block, each condition has the same count. */
            if ((i + 1) % (int64_t)n == 0)
                for (size_t k = 0; k < n; k++)
                    ck_assert_uint_eq(counts[k], (size_t)((i + 1) / (int64_t)n));
        }
        ck_assert_msg(orders_differ, "blocks of %zu conditions are all in the same order", n);
    }
    /* The same seed gives the same sequence: a restart does not reshuffle. */
    for (int64_t i = 0; i < 40; i++)
        ck_assert_uint_eq(thou_studies_condition(seed, 2, i), thou_studies_condition(seed, 2, i));
}
END_TEST

START_TEST(test_key_files)
{
    char dir[] = "/tmp/thou-keys-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/study.key", dir);
    uint8_t pk[32], sk[32], pk2[32];
    ck_assert_int_eq(thou_studies_keygen(path, pk, err, sizeof(err)), THOU_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(thou_studies_keygen(path, pk2, err, sizeof(err)), THOU_EEXIST);
    ck_assert_int_eq(thou_studies_key_read(path, sk, pk2, err, sizeof(err)), THOU_OK);
    ck_assert_mem_eq(pk, pk2, 32);

    FILE *f = fopen(path, "w");
    fputs("thou study secret key v1\nAAAA\n", f);
    fclose(f);
    ck_assert_int_eq(thou_studies_key_read(path, sk, pk2, err, sizeof(err)), THOU_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "damaged"));
    f = fopen(path, "w");
    fputs("something else entirely\n", f);
    fclose(f);
    ck_assert_int_eq(thou_studies_key_read(path, sk, pk2, err, sizeof(err)), THOU_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a study key file"));
    unlink(path);
    ck_assert_int_eq(thou_studies_key_read(path, sk, pk2, err, sizeof(err)), THOU_EIO);
    rmdir(dir);

    ck_assert(thou_studies_name_valid("pilot-2027_a"));
    ck_assert(!thou_studies_name_valid(""));
    ck_assert(!thou_studies_name_valid("-x"));
    ck_assert(!thou_studies_name_valid("Caps"));
    ck_assert(!thou_studies_name_valid("a/b"));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("research");
    TCase *tc = tcase_create("research");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_browser_copy_opens);
    tcase_add_test(tc, test_pair_tag_and_fingerprint);
    tcase_add_test(tc, test_blocks_balanced);
    tcase_add_test(tc, test_key_files);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
