#pragma once

#include "thou/http.h"

/* Handlers of the question-set endpoints; ctx is the struct thou_app. */

/** GET /api/sets: {"sets": [summary, ...]} in id order. */
void thou_sets_list(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /api/sets/{id}: the whole set, or 404 no_such_set. */
void thou_sets_get(void *ctx, struct thou_request *req, struct thou_response *res);
