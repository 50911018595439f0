#pragma once

#include <stdint.h>

/* Small text helpers shared by parsers and tables. */

/** Value of one hexadecimal digit (either case), or -1. */
int thou_hex_value(char c);

/** FNV-1a hash of a NUL-terminated string, for hash-table slots (not for secrets). */
uint32_t thou_text_hash(const char *s);
