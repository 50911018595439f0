#include "thou/http.h"
#include "thou/json.h"
#include "thou/mem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void thou_response_init(struct thou_response *res)
{
    memset(res, 0, sizeof(*res));
    res->file_fd = -1;
}

void thou_response_release(struct thou_response *res)
{
    free(res->body);
    if (res->file_fd >= 0)
        close(res->file_fd);
    if (res->stream)
        res->stream->free(res->stream);
    if (res->deferred)
        res->deferred->free(res->deferred);
    thou_response_init(res);
}

void thou_response_set_body(struct thou_response *res, unsigned status, const char *content_type,
                            char *body, size_t len)
{
    free(res->body);
    res->status = status;
    res->content_type = content_type;
    res->body = body;
    res->body_len = len;
}

/* A heap copy of s with every non-ASCII byte replaced by '?'. */
static char *ascii_copy(const char *s)
{
    char *copy = thou_strdup(s);
    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    return copy;
}

void thou_response_error(struct thou_response *res, unsigned status, const char *code,
                         const char *message)
{
    json_t *error = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (!error && code && message) {
        /* Text that is not valid UTF-8 (a message cut mid-character by a
         * bounded snprintf, say) must not turn the answer into a 500. */
        char *safe_code = ascii_copy(code);
        char *safe_message = ascii_copy(message);
        error = json_pack("{s:{s:s,s:s}}", "error", "code", safe_code, "message", safe_message);
        free(safe_code);
        free(safe_message);
    }
    thou_json_respond(res, status, error);
}

void thou_response_status(struct thou_response *res, enum thou_status status)
{
    switch (status) {
    case THOU_OK:
        res->status = 200;
        return;
    case THOU_ENOMEM:
        thou_response_error(res, 503, "out_of_memory", "the server is out of memory");
        return;
    case THOU_EINVAL:
        thou_response_error(res, 400, "invalid_request", "the request is not valid");
        return;
    case THOU_ETOOBIG:
        thou_response_error(res, 413, "too_large", "the request is larger than allowed");
        return;
    case THOU_ENOTFOUND:
        thou_response_error(res, 404, "not_found", "no such resource");
        return;
    case THOU_EEXIST:
        thou_response_error(res, 409, "already_exists", "the resource already exists");
        return;
    case THOU_EFULL:
        thou_response_error(res, 409, "room_full", "this conversation already has two people");
        return;
    case THOU_EGONE:
        thou_response_error(res, 410, "room_gone", "this conversation has ended or was erased");
        return;
    case THOU_EAUTH:
        thou_response_error(res, 401, "bad_token", "missing or invalid bearer token");
        return;
    case THOU_EFORBIDDEN:
        thou_response_error(res, 403, "forbidden", "not allowed");
        return;
    case THOU_ERATE:
        thou_response_error(res, 429, "rate_limited", "too many requests; slow down");
        return;
    case THOU_ECONFLICT:
        thou_response_error(res, 409, "conflict", "the request conflicts with the current state");
        return;
    case THOU_EIO:
    case THOU_ESCHEMA:
        thou_response_error(res, 500, "storage_error", "the server could not store the data");
        return;
    case THOU_EUNAVAIL:
        thou_response_error(res, 503, "unavailable", "the server is not available right now");
        return;
    case THOU_ELIMIT:
        thou_response_error(res, 409, "room_at_limit",
                            "this conversation has reached its size limit; nothing more can be "
                            "stored in it");
        return;
    }
    thou_response_error(res, 500, "internal_error", "unexpected server error");
}

static const struct {
    enum thou_method method;
    const char *name;
} method_names[] = {
    {THOU_METHOD_GET, "GET"}, {THOU_METHOD_HEAD, "HEAD"},     {THOU_METHOD_POST, "POST"},
    {THOU_METHOD_PUT, "PUT"}, {THOU_METHOD_DELETE, "DELETE"}, {THOU_METHOD_OPTIONS, "OPTIONS"},
};

const char *thou_method_name(enum thou_method method)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (method_names[i].method == method)
            return method_names[i].name;
    return "OTHER";
}

enum thou_method thou_method_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (strcmp(method_names[i].name, name) == 0)
            return method_names[i].method;
    return THOU_METHOD_OTHER;
}
