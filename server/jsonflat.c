/*
 * The flat-object fast reader (jsonflat.h). Posted events are flat objects
 * whose biggest member is a long base64url string; jansson reads such a
 * string one byte at a time through its UTF-8 checks, this reader scans it
 * eight bytes at a time and copies nothing.
 */
#include "thou/jsonflat.h"

#include <string.h>

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static bool is_space(char c)
{
    /* Exactly JSON's whitespace, as jansson skips it. */
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether a byte may stand for itself inside a handled string. */
static bool is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * Whether any of the eight bytes in word is not plain: from 0x80, below
 * 0x20, '"' or '\\'. Each test is the exact "has a byte less than n" bit
 * trick: it never misses, and the caller finds the byte one at a time.
 */
static bool has_special(uint64_t word)
{
    uint64_t quote = word ^ (ONES * '"');
    uint64_t backslash = word ^ (ONES * '\\');
    uint64_t control = (word - ONES * 0x20) & ~word;
    uint64_t is_quote = (quote - ONES) & ~quote;
    uint64_t is_backslash = (backslash - ONES) & ~backslash;
    return ((word | control | is_quote | is_backslash) & HIGHS) != 0;
}

/* The number of plain bytes at the start of text. */
static size_t plain_run(const char *text, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, text + i, sizeof(word));
        if (has_special(word))
            break;
    }
    while (i < len && is_plain((unsigned char)text[i]))
        i++;
    return i;
}

/* A string without escapes at *p; moves *p past its closing quote. */
static bool read_string(const char **p, const char *end, const char **text, size_t *len)
{
    if (*p >= end || **p != '"')
        return false;
    const char *start = *p + 1;
    size_t run = plain_run(start, (size_t)(end - start));
    if (start + run >= end || start[run] != '"')
        return false; /* an escape, a byte jansson must judge, or the end */
    *text = start;
    *len = run;
    *p = start + run + 1;
    return true;
}

/* An integer at *p, spelled as JSON allows and inside int64, as jansson
 * reads it; "-0" is left to jansson too. Moves *p past its last digit. */
static bool read_integer(const char **p, const char *end, struct thou_jsonflat_member *member)
{
    const char *q = *p;
    bool negative = q < end && *q == '-';
    if (negative)
        q++;
    if (q >= end || !is_digit(*q))
        return false;
    uint64_t magnitude = 0;
    if (*q == '0') {
        q++;
        if (negative || (q < end && is_digit(*q)))
            return false;
    } else {
        /* 19 digits always fit in 64 unsigned bits; 20 never fit in int64. */
        size_t digits = 0;
        for (; q < end && is_digit(*q); q++) {
            if (++digits > 19)
                return false;
            magnitude = magnitude * 10 + (uint64_t)(*q - '0');
        }
    }
    if (magnitude > (uint64_t)INT64_MAX + negative)
        return false;
    member->kind = THOU_JSONFLAT_INTEGER;
    member->integer = negative ? -(int64_t)(magnitude - 1) - 1 : (int64_t)magnitude;
    member->text = *p;
    member->text_len = (size_t)(q - *p);
    *p = q;
    return true;
}

static bool is_duplicate(const struct thou_jsonflat *object, const struct thou_jsonflat_member *m)
{
    for (size_t i = 0; i < object->n_members; i++) {
        const struct thou_jsonflat_member *other = &object->members[i];
        if (other->key_len == m->key_len && memcmp(other->key, m->key, m->key_len) == 0)
            return true;
    }
    return false;
}

bool thou_jsonflat_parse(struct thou_jsonflat *object, const char *body, size_t len)
{
    const char *end = body + len;
    const char *p = skip_space(body, end);
    object->n_members = 0;
    if (p >= end || *p != '{')
        return false;
    p = skip_space(p + 1, end);
    if (p < end && *p == '}')
        return skip_space(p + 1, end) == end;
    for (;;) {
        if (object->n_members == THOU_JSONFLAT_MAX_MEMBERS)
            return false;
        struct thou_jsonflat_member *member = &object->members[object->n_members];
        if (!read_string(&p, end, &member->key, &member->key_len))
            return false;
        p = skip_space(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_space(p + 1, end);
        if (p < end && *p == '"') {
            if (!read_string(&p, end, &member->text, &member->text_len))
                return false;
            member->kind = THOU_JSONFLAT_STRING;
            member->integer = 0;
        } else if (!read_integer(&p, end, member)) {
            return false;
        }
        if (is_duplicate(object, member))
            return false;
        object->n_members++;
        p = skip_space(p, end);
        if (p >= end)
            return false;
        if (*p == '}')
            return skip_space(p + 1, end) == end;
        if (*p != ',')
            return false;
        p = skip_space(p + 1, end);
    }
}

const struct thou_jsonflat_member *thou_jsonflat_get(const struct thou_jsonflat *object,
                                                     const char *key)
{
    size_t key_len = strlen(key);
    for (size_t i = 0; i < object->n_members; i++) {
        const struct thou_jsonflat_member *member = &object->members[i];
        if (member->key_len == key_len && memcmp(member->key, key, key_len) == 0)
            return member;
    }
    return NULL;
}
