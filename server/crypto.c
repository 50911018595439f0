#include "thou/crypto.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

enum thou_status thou_crypto_init(void)
{
    return sodium_init() < 0 ? THOU_EUNAVAIL : THOU_OK;
}

static void encode(char *out, size_t out_len, const uint8_t *bytes, size_t n)
{
    sodium_bin2base64(out, out_len, bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void thou_crypto_new_id(char out[THOU_ID_B64_LEN + 1])
{
    uint8_t bytes[THOU_ID_BYTES];
    randombytes_buf(bytes, sizeof(bytes));
    encode(out, THOU_ID_B64_LEN + 1, bytes, sizeof(bytes));
}

void thou_crypto_digest(const uint8_t *data, size_t len, uint8_t out[THOU_DIGEST_BYTES])
{
    crypto_generichash(out, THOU_DIGEST_BYTES, data, len, NULL, 0);
}

void thou_crypto_new_token(char token[THOU_TOKEN_B64_LEN + 1], uint8_t hash[THOU_DIGEST_BYTES])
{
    uint8_t bytes[THOU_TOKEN_BYTES];
    randombytes_buf(bytes, sizeof(bytes));
    encode(token, THOU_TOKEN_B64_LEN + 1, bytes, sizeof(bytes));
    thou_crypto_digest(bytes, sizeof(bytes), hash);
    sodium_memzero(bytes, sizeof(bytes));
}

#define X 0x80 /* outside the alphabet */

/* Each byte's base64url value, or X. A table, not comparisons: every posted
 * event has hundreds of these characters to check. libsodium 1.0.18 reads
 * bytes above 0x7f as '_', so only the alphabet itself may reach it, or one
 * value would have many spellings. */
/* clang-format off */
static const uint8_t b64_values[256] = {
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, 62,  X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61,  X,  X,  X,  X,  X,  X,
     X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,  X,  X,  X,  X, 63,
     X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
/* clang-format on */

enum thou_status thou_crypto_b64_check(const char *in, size_t in_len, size_t *decoded_len)
{
    /* A length of 1 mod 4 can never be valid base64. */
    if (in_len % 4 == 1)
        return THOU_EINVAL;
    const unsigned char *bytes = (const unsigned char *)in;
    unsigned seen = 0; /* no branch per byte: one test at the end */
    for (size_t i = 0; i < in_len; i++)
        seen |= b64_values[bytes[i]];
    if (seen & X)
        return THOU_EINVAL;
    /* The bits of the last character beyond the data must be zero, so each
     * value has exactly one spelling. */
    if (in_len % 4) {
        unsigned last = b64_values[bytes[in_len - 1]];
        unsigned unused_mask = in_len % 4 == 2 ? 0x0f : 0x03;
        if (last & unused_mask)
            return THOU_EINVAL;
    }
    *decoded_len = thou_crypto_b64_decoded_max(in_len);
    return THOU_OK;
}

#undef X

enum thou_status thou_crypto_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t max,
                                        size_t *out_len)
{
    size_t expected = 0;
    if (thou_crypto_b64_check(in, in_len, &expected))
        return THOU_EINVAL;
    if (expected > max)
        return THOU_ETOOBIG;
    const char *end = NULL;
    size_t len = 0;
    if (sodium_base642bin(out, max, in, in_len, NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != in + in_len || len != expected)
        return THOU_EINVAL;
    *out_len = len;
    return THOU_OK;
}

size_t thou_crypto_b64_decoded_max(size_t in_len)
{
    return in_len / 4 * 3 + (in_len % 4 ? in_len % 4 - 1 : 0);
}

enum thou_status thou_crypto_token_hash(const char *token, uint8_t hash[THOU_DIGEST_BYTES])
{
    uint8_t bytes[THOU_TOKEN_BYTES];
    size_t len = 0;
    size_t token_len = strnlen(token, THOU_TOKEN_B64_LEN + 1);
    if (token_len != THOU_TOKEN_B64_LEN ||
        thou_crypto_b64_decode(token, token_len, bytes, sizeof(bytes), &len) ||
        len != THOU_TOKEN_BYTES)
        return THOU_EAUTH;
    thou_crypto_digest(bytes, sizeof(bytes), hash);
    sodium_memzero(bytes, sizeof(bytes));
    return THOU_OK;
}

bool thou_crypto_digest_equal(const uint8_t a[THOU_DIGEST_BYTES],
                              const uint8_t b[THOU_DIGEST_BYTES])
{
    return sodium_memcmp(a, b, THOU_DIGEST_BYTES) == 0;
}

enum thou_status thou_crypto_bearer_hash(const char *authorization, uint8_t hash[THOU_DIGEST_BYTES])
{
    static const char scheme[] = "Bearer ";
    if (!authorization || strncasecmp(authorization, scheme, sizeof(scheme) - 1) != 0)
        return THOU_EAUTH;
    const char *token = authorization + sizeof(scheme) - 1;
    while (*token == ' ')
        token++;
    return thou_crypto_token_hash(token, hash);
}
