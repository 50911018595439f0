#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A strict, allocation-free reader for the common request body: one flat
 * JSON object whose member values are plain strings or integers. Members
 * are views into the body, never copies.
 *
 * It handles only what jansson (json_loadb with JSON_REJECT_DUPLICATES)
 * would read with exactly the same meaning, and answers "not handled" for
 * everything else: nested values, true/false/null, reals, exponents, any
 * escape, a byte below 0x20 or from 0x80 in a string, duplicate keys, an
 * integer outside int64 or with a leading zero, "-0", trailing garbage, or
 * more than THOU_JSONFLAT_MAX_MEMBERS members. The caller then parses with
 * jansson, which gives the real answer (and the error message) for those.
 * Since a handled string holds no escape, no control byte and no non-ASCII
 * byte, it can be written back between quotes verbatim.
 */

#define THOU_JSONFLAT_MAX_MEMBERS 16

enum thou_jsonflat_kind {
    THOU_JSONFLAT_STRING = 1,
    THOU_JSONFLAT_INTEGER = 2,
};

struct thou_jsonflat_member {
    const char *key; /* the key's bytes in the body, without quotes; not NUL-terminated */
    size_t key_len;
    enum thou_jsonflat_kind kind;
    const char *text; /* a string's bytes without quotes, or an integer's digits and sign */
    size_t text_len;
    int64_t integer; /* the integer's value; 0 for a string */
};

struct thou_jsonflat {
    struct thou_jsonflat_member members[THOU_JSONFLAT_MAX_MEMBERS]; /* in body order */
    size_t n_members;
};

/**
 * Read body (len bytes; need not be NUL-terminated) as one flat object into
 * *object. Returns true when handled: every member is then in
 * object->members, pointing into body, which must outlive them. Returns
 * false when not handled (see above); *object is then unspecified.
 */
bool thou_jsonflat_parse(struct thou_jsonflat *object, const char *body, size_t len);

/** The member whose key is exactly key (a NUL-terminated name), or NULL. */
const struct thou_jsonflat_member *thou_jsonflat_get(const struct thou_jsonflat *object,
                                                     const char *key);
