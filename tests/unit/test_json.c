#include "thou/http.h"
#include "thou/json.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct thou_response res;

static void setup(void)
{
    thou_response_init(&res);
}

static void teardown(void)
{
    thou_response_release(&res);
    ck_assert_ptr_null(res.body);
    ck_assert_int_eq(res.file_fd, -1);
}

/* res holds exactly {"error":{"code":code,"message":<non-empty string>}}. */
static void assert_error_body(const struct thou_response *r, unsigned status, const char *code)
{
    ck_assert_msg(r->status == status, "status %u, expected %u (body %s)", r->status, status,
                  r->body ? r->body : "(none)");
    ck_assert_str_eq(r->content_type, "application/json");
    ck_assert_ptr_nonnull(r->body);
    ck_assert_uint_eq(r->body_len, strlen(r->body));
    json_error_t err;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(doc != NULL, "body is not JSON: %s (%s)", err.text, r->body);
    ck_assert(json_is_object(doc));
    ck_assert_uint_eq(json_object_size(doc), 1);
    json_t *error = json_object_get(doc, "error");
    ck_assert(json_is_object(error));
    ck_assert_uint_eq(json_object_size(error), 2);
    ck_assert(json_is_string(json_object_get(error, "code")));
    ck_assert_str_eq(json_string_value(json_object_get(error, "code")), code);
    json_t *message = json_object_get(error, "message");
    ck_assert(json_is_string(message));
    ck_assert_uint_gt(strlen(json_string_value(message)), 0);
    json_decref(doc);
}

static struct thou_request json_request(const char *content_type, const char *body, size_t len)
{
    struct thou_request req = {
        .method = THOU_METHOD_POST,
        .path = "/api/test",
        .content_type = content_type,
        .body = body,
        .body_len = len,
    };
    return req;
}

static const struct body_case {
    const char *content_type;
    const char *body; /* NULL: no body */
    size_t len;       /* 0: strlen(body) */
    unsigned status;  /* 0: accepted */
    const char *code;
} body_cases[] = {
    /* Content type. */
    {NULL, "{}", 0, 415, "unsupported_media_type"},
    {"", "{}", 0, 415, "unsupported_media_type"},
    {"text/plain", "{}", 0, 415, "unsupported_media_type"},
    {"application/x-www-form-urlencoded", "{}", 0, 415, "unsupported_media_type"},
    {"application/jsonx", "{}", 0, 415, "unsupported_media_type"},
    {"application/json-patch+json", "{}", 0, 415, "unsupported_media_type"},
    {"application/jso", "{}", 0, 415, "unsupported_media_type"},
    {"application/", "{}", 0, 415, "unsupported_media_type"},
    {"json", "{}", 0, 415, "unsupported_media_type"},
    {"text/json", "{}", 0, 415, "unsupported_media_type"},
    {NULL, NULL, 0, 415, "unsupported_media_type"},
    {"text/plain", "", 0, 415, "unsupported_media_type"},
    {"application/json", "{}", 0, 0, NULL},
    {"application/json; charset=utf-8", "{}", 0, 0, NULL},
    {"application/json;charset=UTF-8", "{}", 0, 0, NULL},
    {"Application/JSON", "{}", 0, 0, NULL},
    /* Empty. */
    {"application/json", NULL, 0, 400, "invalid_json"},
    {"application/json", "", 0, 400, "invalid_json"},
    /* Malformed. */
    {"application/json", "{", 0, 400, "invalid_json"},
    {"application/json", "}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":1,}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":1} x", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":1}{}", 0, 400, "invalid_json"},
    {"application/json", "{a:1}", 0, 400, "invalid_json"},
    {"application/json", "{'a':1}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":01}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":NaN}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":\"\\q\"}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":\"\\u0000\"}", 0, 400, "invalid_json"},
    {"application/json", "{}\0trailing", 11, 400, "invalid_json"},
    {"application/json", "{\"a\":\"x\0y\"}", 11, 400, "invalid_json"},
    {"application/json", "{\"a\":\"caf\xc3\"}", 0, 400, "invalid_json"},
    {"application/json", "{\"\xff\":1}", 0, 400, "invalid_json"},
    {"application/json", "\xef\xbb\xbf{}", 0, 400, "invalid_json"},
    /* Duplicate keys, at any depth. */
    {"application/json", "{\"a\":1,\"a\":2}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":1,\"b\":{\"k\":1,\"k\":1}}", 0, 400, "invalid_json"},
    {"application/json", "{\"a\":[{\"k\":1,\"k\":2}]}", 0, 400, "invalid_json"},
    /* Not an object. */
    {"application/json", "[]", 0, 400, "invalid_json"},
    {"application/json", "[{}]", 0, 400, "invalid_json"},
    {"application/json", "1", 0, 400, "invalid_json"},
    {"application/json", "\"s\"", 0, 400, "invalid_json"},
    {"application/json", "null", 0, 400, "invalid_json"},
    {"application/json", "true", 0, 400, "invalid_json"},
    /* Accepted objects. */
    {"application/json", " \n{ \"a\" : [1, 2, {\"b\": null}] }\n ", 0, 0, NULL},
    {"application/json", "{\"a\":{\"k\":1},\"b\":{\"k\":2}}", 0, 0, NULL},
    {"application/json", "{\"caf\xc3\xa9\":\"\xe2\x9c\x93\"}", 0, 0, NULL},
};

START_TEST(test_json_body)
{
    const struct body_case *c = &body_cases[_i];
    size_t len = c->len ? c->len : c->body ? strlen(c->body) : 0;
    struct thou_request req = json_request(c->content_type, c->body, len);
    json_t *value = thou_json_body(&req, &res);
    if (c->status == 0) {
        ck_assert_msg(value != NULL, "'%s' refused: %s", c->body, res.body ? res.body : "");
        ck_assert(json_is_object(value));
        /* An accepted body leaves the response alone. */
        ck_assert_uint_eq(res.status, 0);
        ck_assert_ptr_null(res.body);
        json_decref(value);
        return;
    }
    ck_assert_msg(value == NULL, "case %d accepted", _i);
    assert_error_body(&res, c->status, c->code);
}
END_TEST

/* Nesting deeper than the parser allows is an error, not a crash. */
START_TEST(test_json_body_deep)
{
    size_t depth = 100000;
    char *body = malloc(depth * 2 + 16);
    ck_assert_ptr_nonnull(body);
    size_t n = 0;
    n += (size_t)snprintf(body, 16, "{\"a\":");
    for (size_t i = 0; i < depth; i++)
        body[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    struct thou_request req = json_request("application/json", body, n);
    ck_assert_ptr_null(thou_json_body(&req, &res));
    assert_error_body(&res, 400, "invalid_json");
    free(body);
}
END_TEST

START_TEST(test_json_body_returns_values)
{
    static const char body[] = "{\"name\":\"x\",\"n\":3,\"list\":[1,2]}";
    struct thou_request req = json_request("application/json", body, strlen(body));
    json_t *value = thou_json_body(&req, &res);
    ck_assert_ptr_nonnull(value);
    ck_assert_str_eq(thou_json_string(value, "name"), "x");
    ck_assert_ptr_null(thou_json_string(value, "n"));
    ck_assert_ptr_null(thou_json_string(value, "list"));
    ck_assert_ptr_null(thou_json_string(value, "missing"));
    ck_assert_ptr_null(thou_json_string(NULL, "name"));
    json_decref(value);
}
END_TEST

START_TEST(test_error_shape)
{
    thou_response_error(&res, 418, "some_code", "a message");
    ck_assert_uint_eq(res.status, 418);
    ck_assert_str_eq(res.content_type, "application/json");
    ck_assert_str_eq(res.body, "{\"error\":{\"code\":\"some_code\",\"message\":\"a message\"}}");
    ck_assert_uint_eq(res.body_len, strlen(res.body));

    /* A second error replaces the first (and frees it). */
    thou_response_error(&res, 400, "bad", "say \"why\"\n\tcaf\xc3\xa9");
    ck_assert_uint_eq(res.status, 400);
    ck_assert_str_eq(
        res.body,
        "{\"error\":{\"code\":\"bad\",\"message\":\"say \\\"why\\\"\\n\\tcaf\xc3\xa9\"}}");
}
END_TEST

/* A message that is not valid UTF-8 (say, truncated in the middle of a
 * character by a bounded snprintf) must not turn a 400 into a 500. */
START_TEST(test_error_invalid_utf8_message)
{
    thou_response_error(&res, 400, "unknown_field", "unknown field 'caf\xc3");
    assert_error_body(&res, 400, "unknown_field");
    thou_response_error(&res, 404, "not_found", "\xff\xfe");
    assert_error_body(&res, 404, "not_found");
}
END_TEST

static const struct status_case {
    enum thou_status status;
    unsigned http;
    const char *code; /* NULL: no body */
} status_cases[] = {
    {THOU_OK, 200, NULL},
    {THOU_ENOMEM, 503, "out_of_memory"},
    {THOU_EINVAL, 400, "invalid_request"},
    {THOU_ETOOBIG, 413, "too_large"},
    {THOU_ENOTFOUND, 404, "not_found"},
    {THOU_EEXIST, 409, "already_exists"},
    {THOU_EFULL, 409, "room_full"},
    {THOU_EGONE, 410, "room_gone"},
    {THOU_EAUTH, 401, "bad_token"},
    {THOU_EFORBIDDEN, 403, "forbidden"},
    {THOU_ERATE, 429, "rate_limited"},
    {THOU_ECONFLICT, 409, "conflict"},
    {THOU_EIO, 500, "storage_error"},
    {THOU_EUNAVAIL, 503, "unavailable"},
    {THOU_ESCHEMA, 500, "storage_error"},
};

_Static_assert(sizeof(status_cases) / sizeof(status_cases[0]) == THOU_ESCHEMA + 1,
               "one case per enum thou_status value");

START_TEST(test_response_status)
{
    const struct status_case *c = &status_cases[_i];
    ck_assert_int_eq(c->status, _i); /* the table follows the enum */
    thou_response_status(&res, c->status);
    if (!c->code) {
        ck_assert_uint_eq(res.status, c->http);
        ck_assert_ptr_null(res.body);
        return;
    }
    assert_error_body(&res, c->http, c->code);
    /* Every status also has a name. */
    ck_assert_ptr_nonnull(thou_status_name(c->status));
    ck_assert_str_ne(thou_status_name(c->status), "unknown status");
}
END_TEST

START_TEST(test_response_status_unknown)
{
    thou_response_status(&res, (enum thou_status)(THOU_ESCHEMA + 7));
    assert_error_body(&res, 500, "internal_error");
    ck_assert_str_eq(thou_status_name((enum thou_status)(THOU_ESCHEMA + 7)), "unknown status");
}
END_TEST

START_TEST(test_json_respond)
{
    thou_json_respond(&res, 201, json_pack("{s:i,s:s}", "seq", 7, "type", "answer"));
    ck_assert_uint_eq(res.status, 201);
    ck_assert_str_eq(res.content_type, "application/json");
    ck_assert_str_eq(res.body, "{\"seq\":7,\"type\":\"answer\"}");
    ck_assert_uint_eq(res.body_len, strlen(res.body));
    /* NULL (a json_pack that could not allocate) refuses this request with a
     * fixed 503, the code an allocation failure has everywhere (test_oom.c). */
    thou_json_respond(&res, 200, NULL);
    assert_error_body(&res, 503, "out_of_memory");
}
END_TEST

START_TEST(test_set_body_and_release)
{
    char *body = strdup("hello");
    thou_response_set_body(&res, 200, "text/plain", body, 5);
    ck_assert_ptr_eq(res.body, body);
    /* Replacing the body frees the old one (ASan would tell). */
    thou_response_set_body(&res, 202, "text/plain", strdup("x"), 1);
    ck_assert_uint_eq(res.status, 202);
    ck_assert_str_eq(res.body, "x");
    thou_response_release(&res);
    ck_assert_uint_eq(res.status, 0);
    ck_assert_ptr_null(res.body);
    ck_assert_int_eq(res.file_fd, -1);
    ck_assert_ptr_null(res.stream);
    /* Release of an empty response is harmless. */
    thou_response_release(&res);
}
END_TEST

static const struct unknown_case {
    const char *object;
    const char *allowed[4];
    const char *expected; /* NULL: all known */
} unknown_cases[] = {
    {"{}", {NULL}, NULL},
    {"{}", {"a", NULL}, NULL},
    {"{\"a\":1}", {"a", "b", NULL}, NULL},
    {"{\"a\":1,\"b\":2}", {"a", "b", NULL}, NULL},
    {"{\"b\":1,\"a\":2}", {"a", "b", NULL}, NULL},
    {"{\"a\":1,\"c\":2}", {"a", "b", NULL}, "c"},
    {"{\"x\":1,\"y\":2}", {NULL}, "x"},
    {"{\"a\":1,\"A\":2}", {"a", NULL}, "A"},
    {"{\"ab\":1}", {"a", NULL}, "ab"},
    {"{\"a\":1}", {"ab", NULL}, "a"},
    {"{\"\":1}", {"a", NULL}, ""},
};

START_TEST(test_unknown_key)
{
    const struct unknown_case *c = &unknown_cases[_i];
    json_t *object = json_loads(c->object, 0, NULL);
    ck_assert_ptr_nonnull(object);
    const char *key = thou_json_unknown_key(object, c->allowed);
    if (c->expected)
        ck_assert_msg(key && strcmp(key, c->expected) == 0, "%s: '%s', expected '%s'", c->object,
                      key ? key : "(null)", c->expected);
    else
        ck_assert_msg(key == NULL, "%s: unexpected '%s'", c->object, key);
    json_decref(object);
}
END_TEST

static const struct method_case {
    const char *name;
    enum thou_method method;
} method_cases[] = {
    {"GET", THOU_METHOD_GET},   {"HEAD", THOU_METHOD_HEAD},     {"POST", THOU_METHOD_POST},
    {"PUT", THOU_METHOD_PUT},   {"DELETE", THOU_METHOD_DELETE}, {"OPTIONS", THOU_METHOD_OPTIONS},
    {"get", THOU_METHOD_OTHER}, {"PATCH", THOU_METHOD_OTHER},   {"GETX", THOU_METHOD_OTHER},
    {"", THOU_METHOD_OTHER},    {"CONNECT", THOU_METHOD_OTHER}, {"TRACE", THOU_METHOD_OTHER},
};

START_TEST(test_methods)
{
    const struct method_case *c = &method_cases[_i];
    ck_assert_int_eq(thou_method_parse(c->name), c->method);
    if (c->method != THOU_METHOD_OTHER)
        ck_assert_str_eq(thou_method_name(c->method), c->name);
    else
        ck_assert_str_eq(thou_method_name(c->method), "OTHER");
}
END_TEST

static Suite *json_suite(void)
{
    Suite *suite = suite_create("json");

    TCase *body = tcase_create("body");
    tcase_add_checked_fixture(body, setup, teardown);
    tcase_add_loop_test(body, test_json_body, 0, (int)(sizeof(body_cases) / sizeof(body_cases[0])));
    tcase_add_test(body, test_json_body_deep);
    tcase_add_test(body, test_json_body_returns_values);
    suite_add_tcase(suite, body);

    TCase *response = tcase_create("response");
    tcase_add_checked_fixture(response, setup, teardown);
    tcase_add_test(response, test_error_shape);
    tcase_add_test(response, test_error_invalid_utf8_message);
    tcase_add_loop_test(response, test_response_status, 0,
                        (int)(sizeof(status_cases) / sizeof(status_cases[0])));
    tcase_add_test(response, test_response_status_unknown);
    tcase_add_test(response, test_json_respond);
    tcase_add_test(response, test_set_body_and_release);
    suite_add_tcase(suite, response);

    TCase *keys = tcase_create("keys");
    tcase_add_loop_test(keys, test_unknown_key, 0,
                        (int)(sizeof(unknown_cases) / sizeof(unknown_cases[0])));
    tcase_add_loop_test(keys, test_methods, 0,
                        (int)(sizeof(method_cases) / sizeof(method_cases[0])));
    suite_add_tcase(suite, keys);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(json_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
