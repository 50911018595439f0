#include "thou/json.h"
#include "thou/mem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_json_content_type(const char *content_type)
{
    if (!content_type)
        return false;
    static const char expected[] = "application/json";
    size_t n = sizeof(expected) - 1;
    if (strncasecmp(content_type, expected, n) != 0)
        return false;
    /* Parameters such as "; charset=utf-8" are fine; "application/jsonx" is not. */
    return content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ';
}

bool thou_json_check_body(const struct thou_request *req, struct thou_response *res)
{
    if (!is_json_content_type(req->content_type)) {
        thou_response_error(res, 415, "unsupported_media_type",
                            "the request body must be application/json");
        return false;
    }
    if (!req->body || req->body_len == 0) {
        thou_response_error(res, 400, "invalid_json", "the request body is empty");
        return false;
    }
    return true;
}

json_t *thou_json_body(const struct thou_request *req, struct thou_response *res)
{
    if (!thou_json_check_body(req, res))
        return NULL;
    json_error_t err;
    json_t *value = thou_json_parse(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!value && thou_json_out_of_memory(&err)) {
        thou_response_status(res, THOU_ENOMEM);
        return NULL;
    }
    if (!value) {
        char message[256];
        snprintf(message, sizeof(message), "malformed JSON at line %d column %d: %s", err.line,
                 err.column, err.text);
        thou_response_error(res, 400, "invalid_json", message);
        return NULL;
    }
    if (!json_is_object(value)) {
        json_decref(value);
        thou_response_error(res, 400, "invalid_json", "the request body must be a JSON object");
        return NULL;
    }
    return value;
}

json_t *thou_json_parse(const char *text, size_t len, size_t flags, json_error_t *error)
{
    thou_mem_parsing(true);
    json_t *value = json_loadb(text, len, flags, error);
    thou_mem_parsing(false);
    return value;
}

bool thou_json_out_of_memory(const json_error_t *error)
{
    /* jansson 2.14 leaves some allocation failures as "unknown" with no text. */
    enum json_error_code code = json_error_code(error);
    return code == json_error_out_of_memory || (code == json_error_unknown && !error->text[0]);
}

char *thou_json_dumps(const json_t *value, size_t flags)
{
    size_t size = value ? json_dumpb(value, NULL, 0, flags) : 0;
    char *text = size ? thou_malloc(size + 1) : NULL;
    if (!text)
        return NULL;
    if (json_dumpb(value, text, size, flags) != size) {
        free(text);
        return NULL;
    }
    text[size] = '\0';
    return text;
}

void thou_json_respond(struct thou_response *res, unsigned status, json_t *value)
{
    char *text = value ? thou_json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    if (!text) {
        /* Only reachable on allocation failure (of the value or of its text):
         * this request is refused, the process goes on. */
        static const char fallback[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory\"}}";
        text = strdup(fallback);
        status = 503;
        if (!text) { /* not even that: the status alone, with an empty body */
            thou_response_set_body(res, status, "application/json", NULL, 0);
            return;
        }
    }
    thou_response_set_body(res, status, "application/json", text, strlen(text));
}

const char *thou_json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

const char *thou_json_string(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

const char *thou_json_unknown_key(const json_t *object, const char *const *allowed)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)(uintptr_t)object, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                known = true;
                break;
            }
        }
        if (!known)
            return key;
    }
    return NULL;
}
