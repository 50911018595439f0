#include "thou/text.h"

#include <stddef.h>

int thou_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint32_t thou_text_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

bool thou_text_parse_seq(const char *text, int64_t *seq)
{
    int64_t value = 0;
    size_t len = 0;
    for (; text[len]; len++) {
        if (len == 18 || text[len] < '0' || text[len] > '9')
            return false;
        value = value * 10 + (text[len] - '0');
    }
    if (len == 0)
        return false;
    *seq = value;
    return true;
}
