/*
 * The crypto adapter (server/crypto.c): strict unpadded base64url, random
 * ids and tokens, token hashes, bearer headers and constant-time digest
 * comparison.
 */
#include "thou/crypto.h"

#include <check.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    ck_assert_int_eq(thou_crypto_init(), THOU_OK);
}

/* ---- base64url ------------------------------------------------------------- */

static const struct decode_case {
    const char *in;
    size_t max;
    enum thou_status status;
    size_t out_len;
    const char *out; /* expected bytes when THOU_OK */
} decode_cases[] = {
    /* Valid, unpadded, every length mod 4 that can be. */
    {"", 8, THOU_OK, 0, ""},
    {"Zg", 8, THOU_OK, 1, "f"},
    {"Zm8", 8, THOU_OK, 2, "fo"},
    {"Zm9v", 8, THOU_OK, 3, "foo"},
    {"Zm9vYg", 8, THOU_OK, 4, "foob"},
    {"Zm9vYmE", 8, THOU_OK, 5, "fooba"},
    {"Zm9vYmFy", 8, THOU_OK, 6, "foobar"},
    {"AAAA", 3, THOU_OK, 3, "\0\0\0"},
    {"-_8", 2, THOU_OK, 2, "\xfb\xff"}, /* the URL-safe alphabet's two specials */
    {"____", 3, THOU_OK, 3, "\xff\xff\xff"},
    /* Padding refused, wherever it is. */
    {"Zg==", 8, THOU_EINVAL, 0, NULL},
    {"Zm8=", 8, THOU_EINVAL, 0, NULL},
    {"Zm9vYg==", 8, THOU_EINVAL, 0, NULL},
    {"Zg=", 8, THOU_EINVAL, 0, NULL},
    {"=", 8, THOU_EINVAL, 0, NULL},
    {"Zm=v", 8, THOU_EINVAL, 0, NULL},
    /* The standard alphabet's '+' and '/' are not base64url. */
    {"+_8", 8, THOU_EINVAL, 0, NULL},
    {"-/8", 8, THOU_EINVAL, 0, NULL},
    {"ab+/", 8, THOU_EINVAL, 0, NULL},
    {"Zm9v+A", 8, THOU_EINVAL, 0, NULL},
    /* Other characters. */
    {"Zm 9v", 8, THOU_EINVAL, 0, NULL},
    {"Zm9v\n", 8, THOU_EINVAL, 0, NULL},
    {"Zm.v", 8, THOU_EINVAL, 0, NULL},
    {"Zm\xc3\xa9", 8, THOU_EINVAL, 0, NULL}, /* UTF-8 "é": libsodium 1.0.18 reads 0x80+ as '_' */
    {"\x80\x80\x80\x80", 8, THOU_EINVAL, 0, NULL},
    {"Zm9\xff", 8, THOU_EINVAL, 0, NULL},
    /* Non-zero trailing bits: a second spelling of the same bytes is refused. */
    {"Zh", 8, THOU_EINVAL, 0, NULL},
    {"Zm9", 8, THOU_EINVAL, 0, NULL},
    {"Zm-", 8, THOU_EINVAL, 0, NULL},
    {"Zm9vYh", 8, THOU_EINVAL, 0, NULL},
    {"__", 8, THOU_EINVAL, 0, NULL},
    /* Lengths of 1 mod 4 are never base64. */
    {"A", 8, THOU_EINVAL, 0, NULL},
    {"Z", 8, THOU_EINVAL, 0, NULL},
    {"AAAAA", 8, THOU_EINVAL, 0, NULL},
    {"Zm9vYmFyZ", 16, THOU_EINVAL, 0, NULL},
    /* Too big for the buffer. */
    {"AAAA", 2, THOU_ETOOBIG, 0, NULL},
    {"AAA", 1, THOU_ETOOBIG, 0, NULL},
    {"AA", 0, THOU_ETOOBIG, 0, NULL},
    {"Zm9vYmFy", 5, THOU_ETOOBIG, 0, NULL},
};
#define N_DECODE_CASES (sizeof(decode_cases) / sizeof(decode_cases[0]))

/* text with bytes outside printable ASCII as \xNN, for failure messages. */
static const char *escaped(const char *text, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (const unsigned char *p = (const unsigned char *)text; *p && used + 5 < len; p++) {
        int n = *p >= 0x20 && *p < 0x7f ? snprintf(out + used, len - used, "%c", *p)
                                        : snprintf(out + used, len - used, "\\x%02x", *p);
        used += (size_t)n;
    }
    return out;
}

START_TEST(b64_decode_table)
{
    const struct decode_case *c = &decode_cases[_i];
    uint8_t out[32];
    memset(out, 0xA5, sizeof(out));
    size_t out_len = 12345;
    ck_assert_uint_le(c->max, sizeof(out));
    enum thou_status rc = thou_crypto_b64_decode(c->in, strlen(c->in), out, c->max, &out_len);
    char shown[64];
    ck_assert_msg(rc == c->status, "'%s' (max %zu): status %s, expected %s",
                  escaped(c->in, shown, sizeof(shown)), c->max, thou_status_name(rc),
                  thou_status_name(c->status));
    if (c->status == THOU_OK) {
        ck_assert_uint_eq(out_len, c->out_len);
        ck_assert_mem_eq(out, c->out, c->out_len);
    }
    /* Never a byte past the buffer. */
    for (size_t i = c->max; i < sizeof(out); i++)
        ck_assert_msg(out[i] == 0xA5, "'%s': byte %zu written past max %zu", c->in, i, c->max);
}
END_TEST

START_TEST(b64_decode_uses_only_in_len)
{
    uint8_t out[8];
    size_t out_len = 0;
    /* in_len bounds the input: what follows is not read. */
    ck_assert_int_eq(thou_crypto_b64_decode("Zm9v!!!", 4, out, sizeof(out), &out_len), THOU_OK);
    ck_assert_uint_eq(out_len, 3);
    ck_assert_mem_eq(out, "foo", 3);
    /* An embedded NUL inside in_len is a bad character, not an end. */
    ck_assert_int_eq(thou_crypto_b64_decode("Zm\0v", 4, out, sizeof(out), &out_len), THOU_EINVAL);
}
END_TEST

START_TEST(b64_round_trip_of_every_size)
{
    uint8_t bytes[64], decoded[64];
    char text[128];
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        randombytes_buf(bytes, n);
        sodium_bin2base64(text, sizeof(text), bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        size_t len = strlen(text), out_len = 0;
        ck_assert_uint_eq(thou_crypto_b64_decoded_max(len), n);
        ck_assert_int_eq(thou_crypto_b64_decode(text, len, decoded, n, &out_len), THOU_OK);
        ck_assert_uint_eq(out_len, n);
        ck_assert_mem_eq(decoded, bytes, n);
        if (n > 0)
            ck_assert_int_eq(thou_crypto_b64_decode(text, len, decoded, n - 1, &out_len),
                             THOU_ETOOBIG);
    }
}
END_TEST

/* Every byte value in every position of a group: accepted exactly when in
 * the alphabet, and then decoded to the value the alphabet gives it. */
START_TEST(b64_check_every_byte)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (unsigned byte = 0; byte < 256; byte++) {
        const char *found = byte ? memchr(alphabet, (int)byte, 64) : NULL;
        for (size_t at = 0; at < 8; at++) {
            char text[8];
            memset(text, 'A', sizeof(text));
            text[at] = (char)byte;
            size_t n = 0;
            enum thou_status rc = thou_crypto_b64_check(text, sizeof(text), &n);
            ck_assert_msg((rc == THOU_OK) == (found != NULL), "byte 0x%02x at %zu: %s", byte, at,
                          thou_status_name(rc));
            if (!found)
                continue;
            ck_assert_uint_eq(n, 6);
            uint8_t out[6];
            ck_assert_int_eq(thou_crypto_b64_decode(text, sizeof(text), out, sizeof(out), &n),
                             THOU_OK);
            /* Only the character at 'at' is not 'A' (0): its 6 bits land here. */
            unsigned value = (unsigned)(found - alphabet);
            size_t bit = at * 6;
            unsigned got =
                ((unsigned)out[bit / 8] << 8 | (bit / 8 + 1 < 6 ? out[bit / 8 + 1] : 0)) >>
                    (10 - bit % 8) &
                0x3f;
            ck_assert_msg(got == value, "byte '%c' decoded as %u, expected %u", byte, got, value);
        }
    }
}
END_TEST

static const struct {
    size_t in_len, decoded;
} decoded_max_cases[] = {
    {0, 0}, {1, 0}, {2, 1},   {3, 2},   {4, 3},   {5, 3},       {6, 4},
    {7, 5}, {8, 6}, {22, 16}, {43, 32}, {44, 33}, {2667, 2000},
};

START_TEST(b64_decoded_max_table)
{
    for (size_t i = 0; i < sizeof(decoded_max_cases) / sizeof(decoded_max_cases[0]); i++)
        ck_assert_msg(thou_crypto_b64_decoded_max(decoded_max_cases[i].in_len) ==
                          decoded_max_cases[i].decoded,
                      "decoded_max(%zu) = %zu, expected %zu", decoded_max_cases[i].in_len,
                      thou_crypto_b64_decoded_max(decoded_max_cases[i].in_len),
                      decoded_max_cases[i].decoded);
}
END_TEST

/* ---- ids, tokens, digests ------------------------------------------------------ */

static bool is_b64url(const char *text)
{
    return text[strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")] ==
           '\0';
}

START_TEST(new_ids_are_22_chars_and_differ)
{
    char ids[64][THOU_ID_B64_LEN + 1];
    for (size_t i = 0; i < 64; i++) {
        memset(ids[i], 'x', sizeof(ids[i]));
        thou_crypto_new_id(ids[i]);
        ck_assert_uint_eq(strlen(ids[i]), THOU_ID_B64_LEN);
        ck_assert(is_b64url(ids[i]));
        uint8_t bytes[THOU_ID_BYTES];
        size_t len = 0;
        ck_assert_int_eq(
            thou_crypto_b64_decode(ids[i], THOU_ID_B64_LEN, bytes, sizeof(bytes), &len), THOU_OK);
        ck_assert_uint_eq(len, THOU_ID_BYTES);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(ids[i], ids[j]);
    }
}
END_TEST

START_TEST(new_token_hash_matches)
{
    char token[THOU_TOKEN_B64_LEN + 1], other[THOU_TOKEN_B64_LEN + 1];
    uint8_t hash[THOU_DIGEST_BYTES], again[THOU_DIGEST_BYTES], other_hash[THOU_DIGEST_BYTES];
    thou_crypto_new_token(token, hash);
    thou_crypto_new_token(other, other_hash);
    ck_assert_uint_eq(strlen(token), THOU_TOKEN_B64_LEN);
    ck_assert(is_b64url(token));
    ck_assert_str_ne(token, other);
    ck_assert(!thou_crypto_digest_equal(hash, other_hash));

    ck_assert_int_eq(thou_crypto_token_hash(token, again), THOU_OK);
    ck_assert(thou_crypto_digest_equal(hash, again));
    ck_assert_mem_eq(hash, again, THOU_DIGEST_BYTES);

    /* The hash is BLAKE2b-256 of the token's 32 bytes, as thou_crypto_digest makes it. */
    uint8_t bytes[THOU_TOKEN_BYTES], expected[THOU_DIGEST_BYTES];
    size_t len = 0;
    ck_assert_int_eq(thou_crypto_b64_decode(token, strlen(token), bytes, sizeof(bytes), &len),
                     THOU_OK);
    ck_assert_uint_eq(len, THOU_TOKEN_BYTES);
    crypto_generichash(expected, sizeof(expected), bytes, sizeof(bytes), NULL, 0);
    ck_assert_mem_eq(hash, expected, THOU_DIGEST_BYTES);
    thou_crypto_digest(bytes, sizeof(bytes), again);
    ck_assert_mem_eq(again, expected, THOU_DIGEST_BYTES);
    /* The hash is not the token itself. */
    ck_assert(memcmp(hash, bytes, THOU_DIGEST_BYTES) != 0);
}
END_TEST

START_TEST(malformed_tokens_are_refused)
{
    char token[THOU_TOKEN_B64_LEN + 1];
    uint8_t hash[THOU_DIGEST_BYTES];
    thou_crypto_new_token(token, hash);
    char longer[THOU_TOKEN_B64_LEN + 2], shorter[THOU_TOKEN_B64_LEN], plus[THOU_TOKEN_B64_LEN + 1],
        padded[THOU_TOKEN_B64_LEN + 2];
    snprintf(longer, sizeof(longer), "%sA", token);
    memcpy(shorter, token, THOU_TOKEN_B64_LEN - 1); /* one character short */
    shorter[THOU_TOKEN_B64_LEN - 1] = '\0';
    snprintf(plus, sizeof(plus), "%s", token);
    plus[5] = '+';
    snprintf(padded, sizeof(padded), "%s=", token);
    const char *const bad[] = {"", "abc", longer, shorter, plus, padded};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(thou_crypto_token_hash(bad[i], hash) == THOU_EAUTH, "'%s' accepted", bad[i]);
    /* 43 characters whose last one carries non-zero trailing bits. */
    char trailing[THOU_TOKEN_B64_LEN + 1];
    memset(trailing, 'A', THOU_TOKEN_B64_LEN);
    trailing[THOU_TOKEN_B64_LEN - 1] = 'B';
    trailing[THOU_TOKEN_B64_LEN] = '\0';
    ck_assert_int_eq(thou_crypto_token_hash(trailing, hash), THOU_EAUTH);
}
END_TEST

/* A token that contains '_' must not also be accepted spelled with a byte >= 0x80 there. */
START_TEST(non_ascii_token_spelling_is_refused)
{
    char token[THOU_TOKEN_B64_LEN + 1];
    memset(token, 'A', THOU_TOKEN_B64_LEN);
    token[0] = '_';
    token[THOU_TOKEN_B64_LEN] = '\0';
    uint8_t hash[THOU_DIGEST_BYTES];
    ck_assert_int_eq(thou_crypto_token_hash(token, hash), THOU_OK);
    token[0] = (char)0x80;
    ck_assert_int_eq(thou_crypto_token_hash(token, hash), THOU_EAUTH);
    char header[64];
    snprintf(header, sizeof(header), "Bearer %s", token);
    ck_assert_int_eq(thou_crypto_bearer_hash(header, hash), THOU_EAUTH);
}
END_TEST

START_TEST(bearer_header_parsing)
{
    char token[THOU_TOKEN_B64_LEN + 1];
    uint8_t hash[THOU_DIGEST_BYTES], got[THOU_DIGEST_BYTES];
    thou_crypto_new_token(token, hash);
    char header[128];

    /* The scheme is case-insensitive (RFC 9110 §11.1). */
    static const char *const schemes[] = {"Bearer", "bearer", "BEARER", "bEaReR"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        snprintf(header, sizeof(header), "%s %s", schemes[i], token);
        memset(got, 0, sizeof(got));
        ck_assert_msg(thou_crypto_bearer_hash(header, got) == THOU_OK, "'%s' refused", schemes[i]);
        ck_assert(thou_crypto_digest_equal(got, hash));
    }

    ck_assert_int_eq(thou_crypto_bearer_hash(NULL, got), THOU_EAUTH);
    static const char *const bad_schemes[] = {"",       "Bearer", "Bearer ",     "Bearer  ",
                                              "Basic ", "Token ", "Bearertoken", "Bearer:"};
    for (size_t i = 0; i < sizeof(bad_schemes) / sizeof(bad_schemes[0]); i++)
        ck_assert_msg(thou_crypto_bearer_hash(bad_schemes[i], got) == THOU_EAUTH, "'%s' accepted",
                      bad_schemes[i]);
    snprintf(header, sizeof(header), "Basic %s", token);
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
    snprintf(header, sizeof(header), "Bearer%s", token);
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
    snprintf(header, sizeof(header), "Bearer %.20s", token); /* short token */
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
    snprintf(header, sizeof(header), "Bearer %.42s", token); /* one character short */
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
    snprintf(header, sizeof(header), "Bearer %sAAAA", token); /* too long */
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
    snprintf(header, sizeof(header), "Bearer %s", "not a token at all, really not one!!!!!!!");
    ck_assert_int_eq(thou_crypto_bearer_hash(header, got), THOU_EAUTH);
}
END_TEST

START_TEST(digest_equal_is_exact)
{
    uint8_t a[THOU_DIGEST_BYTES], b[THOU_DIGEST_BYTES];
    thou_crypto_digest((const uint8_t *)"abc", 3, a);
    thou_crypto_digest((const uint8_t *)"abc", 3, b);
    ck_assert(thou_crypto_digest_equal(a, b));
    for (size_t i = 0; i < THOU_DIGEST_BYTES; i++) {
        memcpy(b, a, sizeof(b));
        b[i] ^= 0x01;
        ck_assert_msg(!thou_crypto_digest_equal(a, b), "difference at byte %zu unnoticed", i);
        b[i] ^= 0x81;
        ck_assert(!thou_crypto_digest_equal(a, b));
    }
    thou_crypto_digest((const uint8_t *)"abd", 3, b);
    ck_assert(!thou_crypto_digest_equal(a, b));

    /* The join verifier: BLAKE2b-256, unkeyed, as libsodium's generichash. */
    uint8_t expected[THOU_DIGEST_BYTES];
    crypto_generichash(expected, sizeof(expected), (const uint8_t *)"abc", 3, NULL, 0);
    ck_assert_mem_eq(a, expected, THOU_DIGEST_BYTES);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("crypto");
    TCase *tc = tcase_create("b64");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, b64_decode_table, 0, (int)N_DECODE_CASES);
    tcase_add_test(tc, b64_decode_uses_only_in_len);
    tcase_add_test(tc, b64_round_trip_of_every_size);
    tcase_add_test(tc, b64_check_every_byte);
    tcase_add_test(tc, b64_decoded_max_table);
    suite_add_tcase(suite, tc);

    tc = tcase_create("secrets");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, new_ids_are_22_chars_and_differ);
    tcase_add_test(tc, new_token_hash_matches);
    tcase_add_test(tc, malformed_tokens_are_refused);
    tcase_add_test(tc, non_ascii_token_spelling_is_refused);
    tcase_add_test(tc, bearer_header_parsing);
    tcase_add_test(tc, digest_equal_is_exact);
    suite_add_tcase(suite, tc);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
