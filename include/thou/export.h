#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The research export (docs/research.md): open a study's sealed research
 * copies with its secret key and write them in long format, one row per
 * step, with pseudonymous ids and a codebook. Reads the database through a
 * read-only connection, so it runs beside a serving thou and never changes
 * the store.
 */

enum thou_export_format { THOU_EXPORT_CSV, THOU_EXPORT_JSONL };

struct thou_export_options {
    const char *db_path;  /* the thou.db to read */
    const char *study;    /* the study's name */
    const char *key_path; /* its secret key file */
    enum thou_export_format format;
    const char *out_path;      /* the data file */
    const char *codebook_path; /* the codebook */
    bool force;                /* replace existing output files */
    FILE *progress;            /* a progress bar goes here; NULL: none */
};

struct thou_export_result {
    size_t conversations; /* exported (both consented, something released) */
    size_t rows;
    size_t tampered; /* copies that did not open or did not match their row: skipped */
};

/** Exit-code classes: 0 done, 1 a runtime failure, 2 bad input; errbuf says which. */
int thou_export_run(const struct thou_export_options *options, struct thou_export_result *result,
                    char *errbuf, size_t errlen);

/**
 * Open one partner's consent copy (crypto_box_seal) with the study's key pair and check that
 * it names the row it was stored under (room, sender role, step). NULL when
 * it does not open, is badly padded, is not a JSON object or names another
 * row; the caller decrefs the object otherwise.
 */
json_t *thou_export_open_copy(const char *room, char role, const char *step, const char *sealed,
                              const uint8_t pk[32], const uint8_t sk[32]);

/**
 * Open one of a partner's other copies (crypto_box from the copy key the
 * partner's opened consent copy announces, to the study key), with the same
 * row check. NULL when it does not open or names another row.
 */
json_t *thou_export_open_boxed(const char *room, char role, const char *step, const char *boxed,
                               const json_t *consent, const uint8_t sk[32]);
