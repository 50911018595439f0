#pragma once

#include <stdbool.h>

#include "thou/http.h"

/*
 * The validator of posted events (server/rooms.c), exposed on its own so
 * that tests/fuzz/fuzz_event_check.c can reach it without a server: the very
 * code POST /api/rooms/{room}/events runs before anything is stored.
 */

struct thou_app;

/**
 * Read req's body as an event and validate it against its type, as
 * POST /events does (only app->config is used). The event's type name
 * (static) when valid; NULL with res filled (a 4xx and a stable code) when
 * not. flat_reader false skips the fast flat reader and reads with jansson
 * only; *flat_read (may be NULL) says which reader read the body.
 */
const char *thou_event_check(const struct thou_app *app, const struct thou_request *req,
                             struct thou_response *res, bool flat_reader, bool *flat_read);
