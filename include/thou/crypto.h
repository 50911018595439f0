#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/status.h"

/*
 * The server's few uses of libsodium (DESIGN §2): random ids and bearer
 * tokens, token hashes, strict unpadded base64url, and constant-time
 * comparison of secrets. The server never holds a key that opens an answer.
 */

#define THOU_TOKEN_BYTES   32 /* 256-bit bearer tokens */
#define THOU_TOKEN_B64_LEN 43
#define THOU_ID_BYTES      16 /* 128-bit room ids */
#define THOU_ID_B64_LEN    22
#define THOU_DIGEST_BYTES  32

/** Initialise libsodium; THOU_EUNAVAIL when it cannot be (no entropy source). */
enum thou_status thou_crypto_init(void);

/** A new random id: 16 random bytes as base64url (22 chars + NUL). */
void thou_crypto_new_id(char out[THOU_ID_B64_LEN + 1]);

/** A new bearer token (43 chars + NUL) and the hash the store keeps of it. */
void thou_crypto_new_token(char token[THOU_TOKEN_B64_LEN + 1], uint8_t hash[THOU_DIGEST_BYTES]);

/**
 * Hash a presented bearer token. THOU_EAUTH when it is not a well-formed
 * token, so malformed tokens never reach the store.
 */
enum thou_status thou_crypto_token_hash(const char *token, uint8_t hash[THOU_DIGEST_BYTES]);

/**
 * Decode strict unpadded base64url into out (capacity max). THOU_EINVAL for
 * bad characters, padding or trailing bits; THOU_ETOOBIG when it would not
 * fit in max bytes.
 */
enum thou_status thou_crypto_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t max,
                                        size_t *out_len);

/**
 * Check strict unpadded base64url without decoding it (the alphabet, the
 * length, zero trailing bits), as thou_crypto_b64_decode would judge it.
 * THOU_OK with the decoded size in *decoded_len, or THOU_EINVAL.
 */
enum thou_status thou_crypto_b64_check(const char *in, size_t in_len, size_t *decoded_len);

/** Decoded size of a base64url string of in_len characters (an upper bound). */
size_t thou_crypto_b64_decoded_max(size_t in_len);

/** BLAKE2b-256 of data (unkeyed), as the join verifier is computed. */
void thou_crypto_digest(const uint8_t *data, size_t len, uint8_t out[THOU_DIGEST_BYTES]);

/** Constant-time equality of two digests. */
bool thou_crypto_digest_equal(const uint8_t a[THOU_DIGEST_BYTES],
                              const uint8_t b[THOU_DIGEST_BYTES]);

/**
 * "Authorization: Bearer <token>" → the token's hash. THOU_EAUTH when the
 * header is missing or malformed.
 */
enum thou_status thou_crypto_bearer_hash(const char *authorization,
                                         uint8_t hash[THOU_DIGEST_BYTES]);
