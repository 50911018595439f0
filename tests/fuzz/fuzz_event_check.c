/*
 * The event validator of POST /api/rooms/{room}/events (thou_event_check,
 * server/rooms.c) over arbitrary bodies. Besides not crashing: every body
 * gets a verdict, a valid event names one of the known types and leaves the
 * response empty, a refused one is a 4xx with a JSON error code; and the two
 * readers agree: a body the fast flat reader took gets the same verdict
 * (type, or status and code) when only jansson reads it.
 */
#include "thou/app.h"
#include "thou/config.h"
#include "thou/event_check.h"
#include "thou/http.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct verdict {
    const char *type;
    unsigned status;
    char code[64];
};

static struct verdict check(const struct thou_app *app, const struct thou_request *req,
                            bool flat_reader, bool *flat_read)
{
    struct thou_response res;
    thou_response_init(&res);
    struct verdict v = {.type = thou_event_check(app, req, &res, flat_reader, flat_read)};
    v.status = res.status;
    if (v.type) {
        if (res.status != 0 || res.body)
            __builtin_trap();
    } else {
        if (res.status < 400 || res.status > 415 || !res.body)
            __builtin_trap();
        json_t *body = json_loadb(res.body, res.body_len, 0, NULL);
        const char *code =
            json_string_value(json_object_get(json_object_get(body, "error"), "code"));
        if (!code || strlen(code) >= sizeof(v.code))
            __builtin_trap();
        strcpy(v.code, code);
        json_decref(body);
    }
    thou_response_release(&res);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct thou_config config;
    static struct thou_app app;
    if (!app.config) {
        thou_config_init(&config);
        config.max_ciphertext_bytes = 512; /* small, so the size refusal is reached too */
        app.config = &config;
    }
    /* The adapter hands handlers a NUL-terminated body of exactly this size. */
    char *body = malloc(size + 1);
    if (!body)
        abort();
    memcpy(body, data, size);
    body[size] = '\0';
    struct thou_request req = {.method = THOU_METHOD_POST,
                               .content_type = "application/json",
                               .body = body,
                               .body_len = size};

    bool flat_read = false;
    struct verdict fast = check(&app, &req, true, &flat_read);
    if (flat_read) {
        struct verdict slow = check(&app, &req, false, NULL);
        if ((fast.type == NULL) != (slow.type == NULL))
            __builtin_trap();
        if (fast.type && strcmp(fast.type, slow.type) != 0)
            __builtin_trap();
        if (!fast.type && (fast.status != slow.status || strcmp(fast.code, slow.code) != 0))
            __builtin_trap();
    }
    free(body);
    return 0;
}
