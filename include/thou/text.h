#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Small text helpers shared by parsers and tables. */

/** Value of one hexadecimal digit (either case), or -1. */
int thou_hex_value(char c);

/** FNV-1a hash of a NUL-terminated string, for hash-table slots (not for secrets). */
uint32_t thou_text_hash(const char *s);

/**
 * Parse an event number as a client sends it (Last-Event-ID): 1 to 18
 * decimal digits, nothing else (no sign, no space). False otherwise.
 */
bool thou_text_parse_seq(const char *text, int64_t *seq);
