/*
 * The flat-object reader against jansson, as tests/unit/test_jsonflat.c does
 * over generated bodies: whatever jsonflat handles, jansson (rejecting
 * duplicate keys) must accept as the same object, with the same members in
 * the same order, the same types and the same values, and writing the
 * members back verbatim must give that object again.
 */
#include "thou/jsonflat.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void append(char **at, const char *bytes, size_t len)
{
    memcpy(*at, bytes, len);
    *at += len;
}

/* The members as the rooms module stores them: strings verbatim between
 * quotes, integers as their digits. */
static char *write_back(const struct thou_jsonflat *flat, size_t *len)
{
    size_t cap = 2;
    for (size_t i = 0; i < flat->n_members; i++)
        cap += flat->members[i].key_len + flat->members[i].text_len + 6;
    char *out = malloc(cap);
    if (!out)
        abort();
    char *at = out;
    append(&at, "{", 1);
    for (size_t i = 0; i < flat->n_members; i++) {
        const struct thou_jsonflat_member *m = &flat->members[i];
        bool quoted = m->kind == THOU_JSONFLAT_STRING;
        append(&at, i ? ",\"" : "\"", i ? 2 : 1);
        append(&at, m->key, m->key_len);
        append(&at, quoted ? "\":\"" : "\":", quoted ? 3 : 2);
        append(&at, m->text, m->text_len);
        if (quoted)
            append(&at, "\"", 1);
    }
    append(&at, "}", 1);
    *len = (size_t)(at - out);
    return out;
}

static void check_member(const struct thou_jsonflat *flat, size_t i, const char *key, json_t *value,
                         const char *body, size_t len)
{
    const struct thou_jsonflat_member *m = &flat->members[i];
    if (strlen(key) != m->key_len || memcmp(key, m->key, m->key_len) != 0)
        __builtin_trap();
    if (thou_jsonflat_get(flat, key) != m)
        __builtin_trap();
    if (m->key < body || m->key + m->key_len > body + len)
        __builtin_trap();
    if (m->text < body || m->text + m->text_len > body + len)
        __builtin_trap();
    if (m->kind == THOU_JSONFLAT_STRING) {
        if (!json_is_string(value) || json_string_length(value) != m->text_len)
            __builtin_trap();
        if (memcmp(json_string_value(value), m->text, m->text_len) != 0 || m->integer != 0)
            __builtin_trap();
    } else {
        if (m->kind != THOU_JSONFLAT_INTEGER || !json_is_integer(value))
            __builtin_trap();
        if (json_integer_value(value) != m->integer)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a NUL, so ASan sees any read past size. */
    char *body = malloc(size ? size : 1);
    if (!body)
        abort();
    if (size)
        memcpy(body, data, size);

    struct thou_jsonflat flat;
    if (!thou_jsonflat_parse(&flat, body, size)) {
        free(body);
        return 0;
    }
    if (flat.n_members > THOU_JSONFLAT_MAX_MEMBERS)
        __builtin_trap();

    json_error_t err;
    json_t *doc = json_loadb(body, size, JSON_REJECT_DUPLICATES, &err);
    if (!doc || !json_is_object(doc) || json_object_size(doc) != flat.n_members)
        __builtin_trap();
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(doc, key, value)
    {
        check_member(&flat, i++, key, value, body, size);
    }

    size_t again_len;
    char *again = write_back(&flat, &again_len);
    json_t *reread = json_loadb(again, again_len, JSON_REJECT_DUPLICATES, &err);
    if (!reread || !json_equal(reread, doc))
        __builtin_trap();
    json_decref(reread);
    free(again);
    json_decref(doc);
    free(body);
    return 0;
}
