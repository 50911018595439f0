/*
 * The flat-object reader: what it handles it must read exactly as jansson
 * does, and everything else it must leave to jansson. Table cases for each
 * rule, then a differential run against jansson over generated and mutated
 * bodies (a fixed seed, so a failure repeats).
 */
#include "thou/buf.h"
#include "thou/jsonflat.h"

#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- comparing with jansson --------------------------------------------- */

struct tally {
    size_t inputs;
    size_t jansson_accepts;
    size_t handled;
};

/* Text for a failure message: bytes outside printable ASCII as \xNN. */
static const char *printable(const char *text, size_t len)
{
    static char out[600];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof(out); i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f)
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\\x%02x", c);
    }
    out[n] = '\0';
    return out;
}

/* The members written back as the rooms module stores them: strings
 * verbatim between quotes, integers as their digits. */
static char *write_back(const struct thou_jsonflat *flat)
{
    struct thou_buf out;
    thou_buf_init(&out);
    thou_buf_puts(&out, "{");
    for (size_t i = 0; i < flat->n_members; i++) {
        const struct thou_jsonflat_member *m = &flat->members[i];
        bool quoted = m->kind == THOU_JSONFLAT_STRING;
        thou_buf_puts(&out, i ? ",\"" : "\"");
        thou_buf_append(&out, m->key, m->key_len);
        thou_buf_puts(&out, quoted ? "\":\"" : "\":");
        thou_buf_append(&out, m->text, m->text_len);
        if (quoted)
            thou_buf_puts(&out, "\"");
    }
    thou_buf_puts(&out, "}");
    return thou_buf_steal(&out, NULL);
}

/*
 * Read text with both. When jsonflat handles it, jansson must accept it and
 * read the same members, in the same order, with the same types and values,
 * and the verbatim write-back must mean the same object. Returns whether
 * jsonflat handled it.
 */
static bool compare_with_jansson(const char *text, size_t len, struct tally *tally)
{
    /* An exact-size copy without a NUL, so ASan sees any read past len. */
    char *body = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(body);
    if (len)
        memcpy(body, text, len);
    struct thou_jsonflat flat;
    bool handled = thou_jsonflat_parse(&flat, body, len);
    json_error_t err;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    tally->inputs++;
    tally->jansson_accepts += doc != NULL;
    tally->handled += handled;
    if (!handled) {
        json_decref(doc);
        free(body);
        return false;
    }
    ck_assert_msg(doc != NULL, "handled what jansson refuses (%s): %s", err.text,
                  printable(text, len));
    ck_assert_msg(json_is_object(doc), "handled a non-object: %s", printable(text, len));
    ck_assert_msg(json_object_size(doc) == flat.n_members, "%zu members, jansson %zu: %s",
                  flat.n_members, json_object_size(doc), printable(text, len));
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(doc, key, value)
    {
        const struct thou_jsonflat_member *m = &flat.members[i++];
        ck_assert_msg(strlen(key) == m->key_len && memcmp(key, m->key, m->key_len) == 0,
                      "member %zu: key differs: %s", i - 1, printable(text, len));
        ck_assert_ptr_eq(thou_jsonflat_get(&flat, key), m);
        if (m->kind == THOU_JSONFLAT_STRING) {
            ck_assert_msg(json_is_string(value), "'%s' is a string only here: %s", key,
                          printable(text, len));
            ck_assert_msg(json_string_length(value) == m->text_len &&
                              memcmp(json_string_value(value), m->text, m->text_len) == 0,
                          "'%s' differs: %s", key, printable(text, len));
            ck_assert_int_eq(m->integer, 0);
        } else {
            ck_assert_int_eq(m->kind, THOU_JSONFLAT_INTEGER);
            ck_assert_msg(json_is_integer(value), "'%s' is an integer only here: %s", key,
                          printable(text, len));
            ck_assert_msg(json_integer_value(value) == m->integer,
                          "'%s': %" PRId64 ", jansson %" JSON_INTEGER_FORMAT ": %s", key,
                          m->integer, json_integer_value(value), printable(text, len));
        }
        /* The view lies inside the body. */
        ck_assert(m->key >= body && m->key + m->key_len <= body + len);
        ck_assert(m->text >= body && m->text + m->text_len <= body + len);
    }
    char *again = write_back(&flat);
    json_t *reread = json_loads(again, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(reread && json_equal(reread, doc), "written back as %s: %s", again,
                  printable(text, len));
    json_decref(reread);
    free(again);
    json_decref(doc);
    free(body);
    return true;
}

static bool handled(const char *text)
{
    struct tally tally = {0};
    return compare_with_jansson(text, strlen(text), &tally);
}

/* ---- table cases --------------------------------------------------------- */

static const char *const handled_cases[] = {
    "{}",
    " \t\r\n{ \t\r\n} \t\r\n",
    "{\"a\":\"b\"}",
    "{\"\":\"\"}",
    "{\"type\":\"note\",\"ciphertext\":\"AAAA\",\"counter\":1}",
    "{ \"type\" : \"note\" , \"counter\" : 42 }\n",
    "{\"n\":0}",
    "{\"n\":-1}",
    "{\"n\":9223372036854775807}",
    "{\"n\":-9223372036854775808}",
    "{\"n\":1234567890123456789}",
    "{\"s\":\" !#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}~\x7f\"}",
    "{\"del\":\"\x7f\"}",
    "{\"k\":\"{ nested: [1] }\"}", /* braces inside a string are just bytes */
    "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
    "\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16}",
    "{\"a\":\"x\",\"A\":\"y\",\"aa\":\"z\"}",
    "{\"long\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_\"}",
};

START_TEST(test_handled)
{
    const char *text = handled_cases[_i];
    ck_assert_msg(handled(text), "not handled: %s", text);
}
END_TEST

/* Not handled, with whether jansson itself accepts the body. */
static const struct refused_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    bool jansson_accepts;
} refused_cases[] = {
    /* Not an object, or nothing. */
    {"", 0, false},
    {"   ", 0, false},
    {"[]", 0, true},
    {"\"s\"", 0, false},
    {"1", 0, false},
    {"null", 0, false},
    {"\xef\xbb\xbf{}", 0, false},
    /* Values that are not plain strings or integers. */
    {"{\"a\":{}}", 0, true},
    {"{\"a\":[]}", 0, true},
    {"{\"a\":{\"b\":1}}", 0, true},
    {"{\"a\":[1,2]}", 0, true},
    {"{\"a\":true}", 0, true},
    {"{\"a\":false}", 0, true},
    {"{\"a\":null}", 0, true},
    {"{\"a\":1.5}", 0, true},
    {"{\"a\":1.0}", 0, true},
    {"{\"a\":1e5}", 0, true},
    {"{\"a\":1E5}", 0, true},
    {"{\"a\":-1e-5}", 0, true},
    {"{\"a\":1.}", 0, false},
    {"{\"a\":.5}", 0, false},
    {"{\"a\":+1}", 0, false},
    {"{\"a\":0x10}", 0, false},
    {"{\"a\":NaN}", 0, false},
    {"{\"a\":'s'}", 0, false},
    {"{\"a\":}", 0, false},
    {"{\"a\"}", 0, false},
    {"{\"a\" 1}", 0, false},
    /* Integers: leading zeros, "-0", outside int64. */
    {"{\"a\":01}", 0, false},
    {"{\"a\":00}", 0, false},
    {"{\"a\":-01}", 0, false},
    {"{\"a\":-0}", 0, true},
    {"{\"a\":-}", 0, false},
    {"{\"a\":9223372036854775808}", 0, false},
    {"{\"a\":-9223372036854775809}", 0, false},
    {"{\"a\":18446744073709551616}", 0, false},
    {"{\"a\":99999999999999999999}", 0, false},
    {"{\"a\":1a}", 0, false},
    /* Escapes, in values and keys, valid or not. */
    {"{\"a\":\"\\\"\"}", 0, true},
    {"{\"a\":\"\\\\\"}", 0, true},
    {"{\"a\":\"\\/\"}", 0, true},
    {"{\"a\":\"\\n\"}", 0, true},
    {"{\"a\":\"\\u0041\"}", 0, true},
    {"{\"a\":\"\\u0000\"}", 0, false},
    {"{\"a\":\"\\q\"}", 0, false},
    {"{\"\\u0061\":1}", 0, true},
    {"{\"a\\/b\":1}", 0, true},
    /* Bytes below 0x20 or from 0x80 in a string. */
    {"{\"a\":\"x\ty\"}", 0, false},
    {"{\"a\":\"x\ny\"}", 0, false},
    {"{\"a\":\"x\x1fy\"}", 0, false},
    {"{\"a\":\"x\0y\"}", 11, false},
    {"{\"a\":\"caf\xc3\xa9\"}", 0, true},
    {"{\"caf\xc3\xa9\":1}", 0, true},
    {"{\"a\":\"\xe2\x9c\x93\"}", 0, true},
    {"{\"a\":\"\xf0\x9f\x98\x80\"}", 0, true},
    {"{\"a\":\"caf\xc3\"}", 0, false},
    {"{\"a\":\"\xff\"}", 0, false},
    {"{\"a\":\"\xc0\xaf\"}", 0, false},
    /* Duplicate keys. */
    {"{\"a\":1,\"a\":2}", 0, false},
    {"{\"a\":\"x\",\"b\":1,\"a\":\"x\"}", 0, false},
    {"{\"\":1,\"\":1}", 0, false},
    /* Structure. */
    {"{", 0, false},
    {"{\"a\":1", 0, false},
    {"{\"a\":1,", 0, false},
    {"{\"a\":1,}", 0, false},
    {"{,\"a\":1}", 0, false},
    {"{\"a\":1 \"b\":2}", 0, false},
    {"{\"a\":1;\"b\":2}", 0, false},
    {"{\"a\":\"x}", 0, false},
    {"{\"a\":\"x", 0, false},
    {"{\"a", 0, false},
    {"{a:1}", 0, false},
    {"{'a':1}", 0, false},
    {"{1:1}", 0, false},
    {"}", 0, false},
    /* Trailing garbage and whitespace JSON does not know. */
    {"{} x", 0, false},
    {"{}{}", 0, false},
    {"{}}", 0, false},
    {"{}\0", 3, false},
    {"{\"a\":1}\0trailing", 16, false},
    {"\f{}", 0, false},
    {"{}\v", 0, false},
    {"{\"a\":\xc2\xa0"
     "1}",
     0, false},
    /* More members than the cap, all fine for jansson. */
    {"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
     "\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17}",
     0, true},
};

START_TEST(test_refused)
{
    const struct refused_case *c = &refused_cases[_i];
    size_t len = c->len ? c->len : strlen(c->text);
    struct tally tally = {0};
    ck_assert_msg(!compare_with_jansson(c->text, len, &tally), "handled: %s",
                  printable(c->text, len));
    ck_assert_msg((tally.jansson_accepts == 1) == c->jansson_accepts, "case %d: jansson %s it: %s",
                  _i, tally.jansson_accepts ? "accepts" : "refuses", printable(c->text, len));
}
END_TEST

START_TEST(test_members)
{
    static const char body[] =
        " { \"type\" : \"note\", \"counter\":-12,\"ciphertext\":\"QUJD\", \"empty\":\"\" } ";
    struct thou_jsonflat flat;
    ck_assert(thou_jsonflat_parse(&flat, body, sizeof(body) - 1));
    ck_assert_uint_eq(flat.n_members, 4);

    const struct thou_jsonflat_member *type = thou_jsonflat_get(&flat, "type");
    ck_assert_ptr_eq(type, &flat.members[0]);
    ck_assert_int_eq(type->kind, THOU_JSONFLAT_STRING);
    ck_assert_uint_eq(type->text_len, 4);
    ck_assert_int_eq(memcmp(type->text, "note", 4), 0);
    ck_assert_ptr_eq(type->key, body + 4); /* views, not copies */

    const struct thou_jsonflat_member *counter = thou_jsonflat_get(&flat, "counter");
    ck_assert_ptr_eq(counter, &flat.members[1]);
    ck_assert_int_eq(counter->kind, THOU_JSONFLAT_INTEGER);
    ck_assert_int_eq(counter->integer, -12);
    ck_assert_uint_eq(counter->text_len, 3);
    ck_assert_int_eq(memcmp(counter->text, "-12", 3), 0);

    const struct thou_jsonflat_member *empty = thou_jsonflat_get(&flat, "empty");
    ck_assert_ptr_nonnull(empty);
    ck_assert_uint_eq(empty->text_len, 0);

    ck_assert_ptr_null(thou_jsonflat_get(&flat, "typ"));
    ck_assert_ptr_null(thou_jsonflat_get(&flat, "types"));
    ck_assert_ptr_null(thou_jsonflat_get(&flat, ""));

    /* Only len bytes count: the same text cut short is not an object. */
    ck_assert(!thou_jsonflat_parse(&flat, body, sizeof(body) - 4));
    ck_assert(!thou_jsonflat_parse(&flat, body, 0));
}
END_TEST

/* A byte at every offset of a long string, around each 8-byte word edge
 * the scanner reads: handled exactly when the byte is plain. */
START_TEST(test_string_scan_edges)
{
    static const unsigned char bytes[] = {'"',  '\\', 0x00, 0x01, 0x1f, 0x20, 0x21,
                                          0x7e, 0x7f, 0x80, 0xc3, 0xfe, 0xff, 'A'};
    char text[64];
    for (size_t b = 0; b < sizeof(bytes); b++) {
        bool plain = bytes[b] >= 0x20 && bytes[b] < 0x80 && bytes[b] != '"' && bytes[b] != '\\';
        for (size_t at = 0; at < 40; at++) {
            size_t n = 0;
            memcpy(text, "{\"k\":\"", 6);
            n = 6;
            for (size_t i = 0; i < 40; i++)
                text[n++] = i == at ? (char)bytes[b] : 'x';
            memcpy(text + n, "\"}", 2);
            n += 2;
            struct tally tally = {0};
            bool got = compare_with_jansson(text, n, &tally);
            ck_assert_msg(got == plain, "byte 0x%02x at %zu: %s", bytes[b], at,
                          got ? "handled" : "not handled");
            /* And the same string ending right at the byte: the run must stop there. */
            tally = (struct tally){0};
            compare_with_jansson(text, 6 + at + 1, &tally);
        }
    }
}
END_TEST

/* ---- the differential run ------------------------------------------------- */

static uint64_t rng_state;

static uint64_t next_random(void)
{
    /* splitmix64: tiny, and the same sequence everywhere */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t pick(size_t n)
{
    return (size_t)(next_random() % n);
}

static bool chance(unsigned percent)
{
    return pick(100) < percent;
}

#define PICK(list) (list)[pick(sizeof(list) / sizeof((list)[0]))]

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void gen_space(struct thou_buf *out, bool clean)
{
    static const char *const spaces[] = {" ", "\t", "\n", "\r", "  ", "\r\n", " \t "};
    static const char *const odd[] = {"\f", "\v", "\xc2\xa0", "\x0b", "/**/"};
    if (!clean && chance(2))
        thou_buf_puts(out, PICK(odd));
    else if (chance(30))
        thou_buf_puts(out, PICK(spaces));
}

/* The inside of a string, quotes not included. */
static void gen_string_body(struct thou_buf *out, bool clean)
{
    static const char *const specials[] = {
        "\\\"",    "\\\\", "\\/",     "\\b",      "\\f",          "\\n",
        "\\r",     "\\t",  "\\u0041", "\\u00e9",  "\\u0000",      "\\ud83d\\ude00",
        "\\ud83d", "\\x",  "\\u12",   "\\",       "\x01",         "\x1f",
        "\t",      "\n",   "\x7f",    "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80",
        "\x80",    "\xc3", "\xff",    "\xc0\xaf", "\xed\xa0\x80", "\"",
    };
    size_t len = chance(10) ? 100 + pick(900) : pick(24);
    for (size_t i = 0; i < len; i++) {
        if (!clean && chance(3)) {
            thou_buf_puts(out, PICK(specials));
        } else if (chance(85)) {
            thou_buf_append(out, &b64_alphabet[pick(sizeof(b64_alphabet) - 1)], 1);
        } else {
            char c = (char)(0x20 + pick(0x7f - 0x20 + 1)); /* printable ASCII and DEL */
            if (c == '"' || c == '\\')
                c = '.';
            thou_buf_append(out, &c, 1);
        }
    }
}

static void gen_integer(struct thou_buf *out, bool clean)
{
    static const char *const edges[] = {
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "9007199254740991",
        "9007199254740992",
        "1000000000000000000",
        "-1000000000000000000",
    };
    static const char *const odd[] = {
        "-0",
        "01",
        "00",
        "-01",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "123456789012345678901234567890",
        "1.5",
        "1e5",
        "1E+2",
        "-0.0",
        "1.",
        ".5",
        "+1",
        "0x10",
        "-",
        "1a",
        "NaN",
        "Infinity",
    };
    if (!clean && chance(15)) {
        thou_buf_puts(out, PICK(odd));
    } else if (chance(20)) {
        thou_buf_puts(out, PICK(edges));
    } else {
        /* A random magnitude of a random number of bits, either sign. */
        uint64_t value = next_random() >> pick(64);
        bool negative = chance(30);
        if (negative)
            thou_buf_printf(out, "-%" PRIu64, value > (uint64_t)INT64_MAX ? 1 : value + !value);
        else
            thou_buf_printf(out, "%" PRIu64, value & (uint64_t)INT64_MAX);
    }
}

static void gen_value(struct thou_buf *out, bool clean)
{
    static const char *const others[] = {
        "true",
        "false",
        "null",
        "{}",
        "[]",
        "[1,\"a\"]",
        "{\"k\":1}",
        "{\"k\":1,\"k\":2}",
        "[{\"k\":1,\"k\":2}]",
        "{\"a\":{\"b\":[]}}",
        "nul",
        "True",
        "'s'",
        "",
    };
    size_t kind = clean ? pick(2) : pick(10);
    if (kind == 0 || kind >= 5) {
        thou_buf_puts(out, "\"");
        gen_string_body(out, clean);
        thou_buf_puts(out, "\"");
    } else if (kind == 1 || kind == 2 || kind == 3) {
        gen_integer(out, clean);
    } else {
        thou_buf_puts(out, PICK(others));
    }
}

static void gen_key(struct thou_buf *out, bool clean, size_t index)
{
    static const char *const names[] = {"type",       "ciphertext", "counter", "question",
                                        "public_key", "mac",        "a",       "",
                                        "x y",        "\x7f",       "{}",      ":"};
    static const char *const odd[] = {"caf\xc3\xa9", "k\\u0041", "t\\\"q", "\\/", "a\tb", "\xff"};
    thou_buf_puts(out, "\"");
    if (clean)
        thou_buf_printf(out, "%s%zu", PICK(names), index); /* distinct */
    else if (chance(5))
        thou_buf_puts(out, PICK(odd));
    else if (chance(70))
        thou_buf_puts(out, PICK(names)); /* duplicates happen */
    else
        gen_string_body(out, true);
    thou_buf_puts(out, "\"");
}

/* An object, usually well formed; clean ones stay within what jsonflat handles. */
static void gen_object(struct thou_buf *out, bool clean)
{
    static const char *const separators[] = {",,", ";", " ", ":", ""};
    static const char *const trailers[] = {"x", "{}", "}", ",", "\"", "0"};
    size_t n = chance(5) ? pick(THOU_JSONFLAT_MAX_MEMBERS + 4) : pick(7);
    if (clean && n > THOU_JSONFLAT_MAX_MEMBERS)
        n = THOU_JSONFLAT_MAX_MEMBERS;
    gen_space(out, clean);
    thou_buf_puts(out, "{");
    for (size_t i = 0; i < n; i++) {
        gen_space(out, clean);
        gen_key(out, clean, i);
        gen_space(out, clean);
        thou_buf_puts(out, !clean && chance(1) ? "=" : ":");
        gen_space(out, clean);
        gen_value(out, clean);
        gen_space(out, clean);
        if (i + 1 < n)
            thou_buf_puts(out, !clean && chance(1) ? PICK(separators) : ",");
        else if (!clean && chance(1))
            thou_buf_puts(out, ",");
    }
    thou_buf_puts(out, "}");
    gen_space(out, clean);
    if (!clean && chance(2))
        thou_buf_puts(out, PICK(trailers));
}

/* One byte-level change of text into out. */
static void mutate(const char *text, size_t len, struct thou_buf *out)
{
    static const char interesting[] = {'"',  '\\',   '{',    '}',    '[',   ']', ',',
                                       ':',  ' ',    '0',    '-',    '.',   'e', 'a',
                                       '\0', '\x1f', '\x7f', '\x80', '\xff'};
    size_t at = len ? pick(len) : 0;
    char byte = chance(70) ? PICK(interesting) : (char)pick(256);
    thou_buf_reset(out);
    switch (pick(4)) {
    case 0: /* truncate */
        thou_buf_append(out, text, at);
        break;
    case 1: /* replace */
        thou_buf_append(out, text, len);
        if (len)
            out->data[at] = byte;
        break;
    case 2: /* insert */
        thou_buf_append(out, text, at);
        thou_buf_append(out, &byte, 1);
        thou_buf_append(out, text + at, len - at);
        break;
    default: /* delete */
        thou_buf_append(out, text, at);
        if (len)
            thou_buf_append(out, text + at + 1, len - at - 1);
        break;
    }
}

#define DIFFERENTIAL_OBJECTS 20000
#define MUTATIONS_EACH       6

START_TEST(test_differential)
{
    rng_state = 0x7468u; /* fixed: a failure repeats */
    struct tally clean = {0}, messy = {0}, mutated = {0};
    struct thou_buf text, variant;
    thou_buf_init(&text);
    thou_buf_init(&variant);
    for (size_t i = 0; i < DIFFERENTIAL_OBJECTS; i++) {
        bool is_clean = chance(40);
        thou_buf_reset(&text);
        gen_object(&text, is_clean);
        bool got = compare_with_jansson(text.data, text.len, is_clean ? &clean : &messy);
        /* A clean object is always handled: the fast path is not vacuous. */
        ck_assert_msg(!is_clean || got, "clean object not handled: %s",
                      printable(text.data, text.len));
        for (size_t m = 0; m < MUTATIONS_EACH; m++) {
            mutate(text.data, text.len, &variant);
            compare_with_jansson(variant.data, variant.len, &mutated);
        }
    }
    thou_buf_release(&text);
    thou_buf_release(&variant);
    /* Each group exercised both answers. */
    ck_assert_uint_gt(clean.handled, DIFFERENTIAL_OBJECTS / 4);
    ck_assert_uint_gt(messy.handled, 100);
    ck_assert_uint_lt(messy.handled, messy.jansson_accepts);
    ck_assert_uint_lt(messy.jansson_accepts, messy.inputs);
    ck_assert_uint_gt(mutated.handled, 100);
    ck_assert_uint_lt(mutated.jansson_accepts, mutated.inputs);
}
END_TEST

static Suite *jsonflat_suite(void)
{
    Suite *suite = suite_create("jsonflat");

    TCase *cases = tcase_create("cases");
    tcase_add_loop_test(cases, test_handled, 0,
                        (int)(sizeof(handled_cases) / sizeof(handled_cases[0])));
    tcase_add_loop_test(cases, test_refused, 0,
                        (int)(sizeof(refused_cases) / sizeof(refused_cases[0])));
    tcase_add_test(cases, test_members);
    tcase_add_test(cases, test_string_scan_edges);
    suite_add_tcase(suite, cases);

    TCase *differential = tcase_create("differential");
    tcase_set_timeout(differential, 120);
    tcase_add_test(differential, test_differential);
    suite_add_tcase(suite, differential);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(jsonflat_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
