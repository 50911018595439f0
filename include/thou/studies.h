#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/status.h"

/*
 * Research studies (docs/research.md): the pure parts shared by the CLI, the
 * server and the export. A study is a name, an X25519 public key (the
 * researcher keeps the secret key offline) and the question sets its pairs
 * are assigned to at random, balanced in blocks.
 */

#define THOU_STUDY_NAME_MAX        64
#define THOU_STUDY_KEY_BYTES       32
#define THOU_STUDY_KEY_B64_LEN     43
#define THOU_STUDY_FINGERPRINT_LEN 39 /* 8 groups of 4 hex digits, 7 spaces */
#define THOU_STUDY_MAX_CONDITIONS  8
#define THOU_STUDY_SEED_BYTES      32

/** A study name: 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit. */
bool thou_studies_name_valid(const char *name);

/**
 * The fingerprint people compare (docs/crypto.md §8): BLAKE2b-128 of the
 * public key, lowercase hex in 8 groups of 4 separated by spaces.
 */
void thou_studies_fingerprint(const uint8_t public_key[THOU_STUDY_KEY_BYTES],
                              char out[THOU_STUDY_FINGERPRINT_LEN + 1]);

/**
 * The condition of the index-th pair assigned to a study with n conditions
 * (block randomisation): pairs come in blocks of n, each block a fresh
 * permutation of the conditions drawn from the study's secret seed, so after
 * every k·n pairs each condition has k of them, and within a block the next
 * condition cannot be guessed from the earlier ones without the seed.
 */
size_t thou_studies_condition(const uint8_t seed[THOU_STUDY_SEED_BYTES], size_t n, int64_t index);

/**
 * Write a new secret key file at path (mode 0600; THOU_EEXIST when path
 * exists: a key is never overwritten). pk receives the public key.
 */
enum thou_status thou_studies_keygen(const char *path, uint8_t pk[THOU_STUDY_KEY_BYTES],
                                     char *errbuf, size_t errlen);

/**
 * Read a secret key file; pk receives its public key. THOU_EINVAL with a
 * message for a file that is not a study key, THOU_EIO when it cannot be read.
 */
enum thou_status thou_studies_key_read(const char *path, uint8_t sk[THOU_STUDY_KEY_BYTES],
                                       uint8_t pk[THOU_STUDY_KEY_BYTES], char *errbuf,
                                       size_t errlen);

/**
 * Parse "SET,SET,..." into conditions (at most THOU_STUDY_MAX_CONDITIONS,
 * no repeats, each a plausible set id). THOU_EINVAL with a message.
 */
enum thou_status thou_studies_parse_conditions(const char *list,
                                               char conditions[][THOU_STUDY_NAME_MAX + 1],
                                               size_t *n, char *errbuf, size_t errlen);
