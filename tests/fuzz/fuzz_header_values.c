/*
 * Header values thou reads itself, the first byte choosing which:
 * Last-Event-ID (thou_text_parse_seq): accepted only as 1-18 digits, and
 *   the number printed again is the text (no leading zeros) or equal to it;
 * Accept-Encoding (thou_static_negotiate), against every set of available
 *   copies: the choice is one of them, identity, or the refusal.
 */
#include "thou/static_files.h"
#include "thou/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *value = malloc(size);
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';
    if (data[0] & 1) {
        int64_t seq = -1;
        if (thou_text_parse_seq(value, &seq)) {
            size_t len = strlen(value);
            if (len == 0 || len > 18 || strspn(value, "0123456789") != len || seq < 0)
                __builtin_trap();
            /* Printed again, the number is the text less its leading zeros. */
            char again[32];
            snprintf(again, sizeof(again), "%lld", (long long)seq);
            const char *digits = value + strspn(value, "0");
            if (strcmp(again, *digits ? digits : "0") != 0)
                __builtin_trap();
        }
    } else {
        for (unsigned available = 0; available < 4; available++) {
            int chosen = thou_static_negotiate(value, available);
            if (chosen != THOU_CODING_NONE && chosen != THOU_CODING_IDENTITY &&
                !(chosen & (int)available))
                __builtin_trap();
        }
    }
    free(value);
    return 0;
}
