/*
 * Question-set files (server/qset.c) from any bytes: thou_qset_parse never
 * crashes or leaks, and a set it accepts is one the flow can run: its plan
 * passes the flow module's own check, and every question it lists is found
 * again by its id.
 */
#include "thou/flow.h"
#include "thou/qset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct thou_qset *set = NULL;
    char err[512];
    enum thou_status rc =
        thou_qset_parse("fuzz.json", (const char *)data, size, &set, err, sizeof(err));
    if (rc != THOU_OK) {
        if (set || !memchr(err, '\0', sizeof(err)))
            __builtin_trap();
        return 0;
    }
    if (!set || thou_flow_plan_check(thou_qset_plan(set)) != THOU_OK)
        __builtin_trap();
    for (size_t s = 0; s < set->n_stages; s++)
        for (size_t q = 0; q < set->stages[s].n_questions; q++) {
            const char *id = set->stages[s].questions[q].id;
            size_t stage = SIZE_MAX, index = SIZE_MAX;
            if (thou_qset_find_question(set, id, &stage, &index) != &set->stages[s].questions[q] ||
                stage != s || index != q)
                __builtin_trap();
        }
    thou_qset_free(set);
    return 0;
}
