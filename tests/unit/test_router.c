#include "thou/router.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every handler is the same function; which route matched is told by ctx. */
static void handler(void *ctx, struct thou_request *req, struct thou_response *res)
{
    (void)ctx;
    (void)req;
    (void)res;
}

static void other_handler(void *ctx, struct thou_request *req, struct thou_response *res)
{
    (void)ctx;
    (void)req;
    (void)res;
}

/* The table of routes every match case runs against; ctx is the route's index. */
static const struct {
    unsigned methods;
    const char *pattern;
} table_routes[] = {
    {THOU_METHOD_GET, "/"},                                       /* 0 */
    {THOU_METHOD_GET, "/healthz"},                                /* 1 */
    {THOU_METHOD_POST, "/api/rooms"},                             /* 2 */
    {THOU_METHOD_GET, "/api/rooms/{room}"},                       /* 3 */
    {THOU_METHOD_POST | THOU_METHOD_DELETE, "/api/rooms/{room}"}, /* 4 */
    {THOU_METHOD_POST, "/api/rooms/{room}/events"},               /* 5 */
    {THOU_METHOD_GET, "/api/rooms/{room}/events/{seq}"},          /* 6 */
    {THOU_METHOD_PUT, "/api/rooms/new"},                          /* 7: after the captures above */
    {THOU_METHOD_GET, "/files/*"},                                /* 8 */
    {THOU_METHOD_GET, "/a/{b}/c/{d}"},                            /* 9 */
    {THOU_METHOD_OPTIONS, "/options-only"},                       /* 10 */
    {THOU_METHOD_GET | THOU_METHOD_POST | THOU_METHOD_PUT, "/many"}, /* 11 */
};
#define N_TABLE_ROUTES (sizeof(table_routes) / sizeof(table_routes[0]))

static struct thou_router *router;
static intptr_t route_ids[N_TABLE_ROUTES];

static void setup(void)
{
    router = thou_router_new();
    ck_assert_ptr_nonnull(router);
    for (size_t i = 0; i < N_TABLE_ROUTES; i++) {
        route_ids[i] = (intptr_t)i;
        ck_assert_int_eq(thou_router_add(router, table_routes[i].methods, table_routes[i].pattern,
                                         handler, &route_ids[i]),
                         THOU_OK);
    }
}

static void teardown(void)
{
    thou_router_free(router);
    router = NULL;
}

#define NO_ROUTE (-1)

static const struct match_case {
    enum thou_method method;
    const char *path;
    enum thou_route_result result;
    int route;                                     /* index into table_routes when found */
    const char *params[THOU_ROUTE_MAX_PARAMS + 1]; /* NULL-terminated expected captures */
    const char *rest;                              /* expected "*" match, NULL if none */
    unsigned allowed;                              /* on BAD_METHOD */
} match_cases[] = {
    /* Literals. */
    {THOU_METHOD_GET, "/", THOU_ROUTE_FOUND, 0, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/healthz", THOU_ROUTE_FOUND, 1, {NULL}, NULL, 0},
    {THOU_METHOD_POST, "/api/rooms", THOU_ROUTE_FOUND, 2, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/healthzz", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/health", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/HEALTHZ", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "healthz", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    /* Trailing slashes are a different path. */
    {THOU_METHOD_GET, "/healthz/", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_POST, "/api/rooms/", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/api/rooms/abc/", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    /* Empty segments never match a literal or a capture. */
    {THOU_METHOD_GET, "//healthz", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/api//rooms", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/api/rooms//events", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "//", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    /* Captures. */
    {THOU_METHOD_GET, "/api/rooms/abc", THOU_ROUTE_FOUND, 3, {"abc", NULL}, NULL, 0},
    {THOU_METHOD_POST, "/api/rooms/abc", THOU_ROUTE_FOUND, 4, {"abc", NULL}, NULL, 0},
    {THOU_METHOD_DELETE, "/api/rooms/x-y_z", THOU_ROUTE_FOUND, 4, {"x-y_z", NULL}, NULL, 0},
    {THOU_METHOD_POST, "/api/rooms/r1/events", THOU_ROUTE_FOUND, 5, {"r1", NULL}, NULL, 0},
    {THOU_METHOD_GET, "/api/rooms/r1/events/42", THOU_ROUTE_FOUND, 6, {"r1", "42", NULL}, NULL, 0},
    {THOU_METHOD_GET, "/a/1/c/2", THOU_ROUTE_FOUND, 9, {"1", "2", NULL}, NULL, 0},
    {THOU_METHOD_GET, "/a/1/x/2", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/a/1/c", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/a/1/c/2/3", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    /* Registration order: the literal "new" is a capture of route 3/4 first. */
    {THOU_METHOD_GET, "/api/rooms/new", THOU_ROUTE_FOUND, 3, {"new", NULL}, NULL, 0},
    {THOU_METHOD_PUT, "/api/rooms/new", THOU_ROUTE_FOUND, 7, {NULL}, NULL, 0},
    /* "*" matches one or more remaining segments, verbatim. */
    {THOU_METHOD_GET, "/files/a", THOU_ROUTE_FOUND, 8, {NULL}, "a", 0},
    {THOU_METHOD_GET, "/files/a/b/c.js", THOU_ROUTE_FOUND, 8, {NULL}, "a/b/c.js", 0},
    {THOU_METHOD_GET, "/files/a//b/", THOU_ROUTE_FOUND, 8, {NULL}, "a//b/", 0},
    {THOU_METHOD_GET, "/files/", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    {THOU_METHOD_GET, "/files", THOU_ROUTE_NOT_FOUND, NO_ROUTE, {NULL}, NULL, 0},
    /* HEAD is answered by GET routes. */
    {THOU_METHOD_HEAD, "/", THOU_ROUTE_FOUND, 0, {NULL}, NULL, 0},
    {THOU_METHOD_HEAD, "/healthz", THOU_ROUTE_FOUND, 1, {NULL}, NULL, 0},
    {THOU_METHOD_HEAD, "/files/x", THOU_ROUTE_FOUND, 8, {NULL}, "x", 0},
    {THOU_METHOD_HEAD, "/api/rooms/abc", THOU_ROUTE_FOUND, 3, {"abc", NULL}, NULL, 0},
    /* ... but not by POST-only routes. */
    {THOU_METHOD_HEAD,
     "/api/rooms",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_POST},
    /* 405 carries every method the path accepts, across routes. */
    {THOU_METHOD_POST,
     "/healthz",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_GET | THOU_METHOD_HEAD},
    {THOU_METHOD_GET,
     "/api/rooms",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_POST},
    {THOU_METHOD_PUT,
     "/api/rooms/abc",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST | THOU_METHOD_DELETE},
    {THOU_METHOD_OPTIONS,
     "/api/rooms/new",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST | THOU_METHOD_DELETE | THOU_METHOD_PUT},
    {THOU_METHOD_OTHER,
     "/healthz",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_GET | THOU_METHOD_HEAD},
    {THOU_METHOD_GET,
     "/options-only",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_OPTIONS},
    {THOU_METHOD_OPTIONS, "/options-only", THOU_ROUTE_FOUND, 10, {NULL}, NULL, 0},
    {THOU_METHOD_DELETE,
     "/many",
     THOU_ROUTE_BAD_METHOD,
     NO_ROUTE,
     {NULL},
     NULL,
     THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST | THOU_METHOD_PUT},
    {THOU_METHOD_PUT, "/many", THOU_ROUTE_FOUND, 11, {NULL}, NULL, 0},
};

START_TEST(test_match_table)
{
    const struct match_case *c = &match_cases[_i];
    struct thou_route_match match;
    memset(&match, 0xa5, sizeof(match));
    enum thou_route_result result = thou_router_match(router, c->method, c->path, &match);
    ck_assert_msg(result == c->result, "%s '%s': result %d, expected %d",
                  thou_method_name(c->method), c->path, (int)result, (int)c->result);
    if (result == THOU_ROUTE_BAD_METHOD)
        ck_assert_msg(match.allowed == c->allowed, "%s '%s': allowed %#x, expected %#x",
                      thou_method_name(c->method), c->path, match.allowed, c->allowed);
    if (result != THOU_ROUTE_FOUND)
        return;
    ck_assert_ptr_eq(match.handler, handler);
    ck_assert_ptr_eq(match.ctx, &route_ids[c->route]);
    ck_assert_str_eq(match.pattern, table_routes[c->route].pattern);
    size_t n_expected = 0;
    while (c->params[n_expected])
        n_expected++;
    ck_assert_uint_eq(match.n_params, n_expected);
    for (size_t i = 0; i < n_expected; i++)
        ck_assert_str_eq(match.params[i], c->params[i]);
    if (c->rest)
        ck_assert_str_eq(match.rest, c->rest);
    else
        ck_assert_ptr_null(match.rest);
}
END_TEST

/* The pattern handed back outlives the string the caller registered. */
START_TEST(test_pattern_is_copied)
{
    struct thou_router *r = thou_router_new();
    char pattern[32];
    snprintf(pattern, sizeof(pattern), "/copy/{id}");
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, pattern, handler, NULL), THOU_OK);
    memset(pattern, 'x', sizeof(pattern) - 1);
    struct thou_route_match match;
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/copy/7", &match), THOU_ROUTE_FOUND);
    ck_assert_str_eq(match.pattern, "/copy/{id}");
    ck_assert_str_eq(match.params[0], "7");
    thou_router_free(r);
}
END_TEST

/* The first route added wins when two match the same method and path. */
START_TEST(test_registration_order)
{
    struct thou_router *r = thou_router_new();
    int first = 1, second = 2;
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/x/{id}", handler, &first), THOU_OK);
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/x/fixed", other_handler, &second),
                     THOU_OK);
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/*", other_handler, &second), THOU_OK);
    struct thou_route_match match;
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/x/fixed", &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &first);
    ck_assert_ptr_eq(match.handler, handler);
    ck_assert_str_eq(match.pattern, "/x/{id}");
    ck_assert_uint_eq(match.n_params, 1);
    ck_assert_str_eq(match.params[0], "fixed");
    /* A catch-all after the specific routes takes the rest. */
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/y", &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &second);
    ck_assert_str_eq(match.rest, "y");
    ck_assert_uint_eq(match.n_params, 0);
    /* The catch-all for GET makes POST elsewhere a 405, not a 404. */
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_POST, "/y", &match), THOU_ROUTE_BAD_METHOD);
    ck_assert_uint_eq(match.allowed, THOU_METHOD_GET | THOU_METHOD_HEAD);
    /* "/" is not matched by the catch-all: the rest must be non-empty. */
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/", &match), THOU_ROUTE_NOT_FOUND);
    thou_router_free(r);
}
END_TEST

/* A route whose methods do not fit falls through to a later route that does. */
START_TEST(test_method_falls_through)
{
    struct thou_router *r = thou_router_new();
    int post = 1, get = 2;
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_POST, "/thing", handler, &post), THOU_OK);
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/thing", other_handler, &get), THOU_OK);
    struct thou_route_match match;
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/thing", &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &get);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_POST, "/thing", &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &post);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_DELETE, "/thing", &match),
                     THOU_ROUTE_BAD_METHOD);
    ck_assert_uint_eq(match.allowed, THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST);
    thou_router_free(r);
}
END_TEST

/* Captures are copied into match->storage; those that do not fit make the route miss. */
START_TEST(test_capture_length)
{
    struct thou_router *r = thou_router_new();
    int one = 1, fallback = 2;
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/c/{id}", handler, &one), THOU_OK);
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/c/*", other_handler, &fallback),
                     THOU_OK);
    struct thou_route_match match;
    size_t storage = sizeof(match.storage);
    char path[1400];
    char segment[600];

    /* The longest capture that fits: storage - 1 bytes plus its NUL. */
    memset(segment, 'a', storage - 1);
    segment[storage - 1] = '\0';
    snprintf(path, sizeof(path), "/c/%s", segment);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, path, &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &one);
    ck_assert_uint_eq(strlen(match.params[0]), storage - 1);

    /* One byte more does not match the capture route; the catch-all takes it. */
    memset(segment, 'a', storage);
    segment[storage] = '\0';
    snprintf(path, sizeof(path), "/c/%s", segment);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, path, &match), THOU_ROUTE_FOUND);
    ck_assert_ptr_eq(match.ctx, &fallback);
    ck_assert_uint_eq(match.n_params, 0);
    ck_assert_str_eq(match.rest, segment);

    /* Several captures share the storage. */
    ck_assert_int_eq(thou_router_add(r, THOU_METHOD_GET, "/m/{a}/{b}", handler, &one), THOU_OK);
    memset(segment, 'b', 200);
    segment[200] = '\0';
    snprintf(path, sizeof(path), "/m/%s/%s", segment, segment);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, path, &match), THOU_ROUTE_NOT_FOUND);
    snprintf(path, sizeof(path), "/m/%.100s/%.100s", segment, segment);
    ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, path, &match), THOU_ROUTE_FOUND);
    ck_assert_uint_eq(match.n_params, 2);
    ck_assert_uint_eq(strlen(match.params[0]), 100);
    ck_assert_uint_eq(strlen(match.params[1]), 100);
    thou_router_free(r);
}
END_TEST

static const struct pattern_case {
    const char *pattern;
    enum thou_status expected;
} pattern_cases[] = {
    {"/", THOU_OK},
    {"/a", THOU_OK},
    {"/a/b/c", THOU_OK},
    {"/{a}", THOU_OK},
    {"/x/{a}/y/{b}", THOU_OK},
    {"/*", THOU_OK},
    {"/a/*", THOU_OK},
    {"/{a}/*", THOU_OK},
    {"/{a}/{b}/{c}/{d}", THOU_OK},
    {"", THOU_EINVAL},
    {"a", THOU_EINVAL},
    {"a/b", THOU_EINVAL},
    {"//", THOU_EINVAL},
    {"/a/", THOU_EINVAL},
    {"/a//b", THOU_EINVAL},
    {"//a", THOU_EINVAL},
    {"/*/a", THOU_EINVAL},
    {"/*/", THOU_EINVAL},
    {"/*/*", THOU_EINVAL},
    {"/{a}/{b}/{c}/{d}/{e}", THOU_EINVAL},
    {"/{}", THOU_EINVAL},
    {"/{a", THOU_EINVAL},
    {"/a}", THOU_EINVAL},
    {"/{a}b", THOU_EINVAL},
    {"/x{a}", THOU_EINVAL},
    {"/{a{b}}", THOU_EINVAL},
    {"/{a/b}", THOU_EINVAL},
};

START_TEST(test_pattern_validation)
{
    const struct pattern_case *c = &pattern_cases[_i];
    struct thou_router *r = thou_router_new();
    enum thou_status rc = thou_router_add(r, THOU_METHOD_GET, c->pattern, handler, NULL);
    ck_assert_msg(rc == c->expected, "pattern '%s': %s, expected %s", c->pattern,
                  thou_status_name(rc), thou_status_name(c->expected));
    /* A refused pattern leaves no route behind. */
    if (rc) {
        struct thou_route_match match;
        ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/a", &match), THOU_ROUTE_NOT_FOUND);
        ck_assert_int_eq(thou_router_match(r, THOU_METHOD_GET, "/", &match), THOU_ROUTE_NOT_FOUND);
    }
    thou_router_free(r);
}
END_TEST

static const struct allow_case {
    unsigned methods;
    const char *expected;
} allow_cases[] = {
    {0, ""},
    {THOU_METHOD_GET, "GET"},
    {THOU_METHOD_GET | THOU_METHOD_HEAD, "GET, HEAD"},
    {THOU_METHOD_POST, "POST"},
    {THOU_METHOD_DELETE | THOU_METHOD_POST, "POST, DELETE"},
    {THOU_METHOD_OPTIONS | THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST | THOU_METHOD_PUT |
         THOU_METHOD_DELETE,
     "GET, HEAD, POST, PUT, DELETE, OPTIONS"},
    {THOU_METHOD_PUT | THOU_METHOD_OPTIONS, "PUT, OPTIONS"},
};

START_TEST(test_allow_header)
{
    const struct allow_case *c = &allow_cases[_i];
    char buf[64];
    memset(buf, 'x', sizeof(buf));
    thou_router_allow_header(c->methods, buf, sizeof(buf));
    ck_assert_str_eq(buf, c->expected);
}
END_TEST

/* A buffer too small for every method holds only whole method names. */
START_TEST(test_allow_header_truncation)
{
    unsigned all = THOU_METHOD_GET | THOU_METHOD_HEAD | THOU_METHOD_POST | THOU_METHOD_PUT |
                   THOU_METHOD_DELETE | THOU_METHOD_OPTIONS;
    static const char full[] = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
    for (size_t len = 1; len <= sizeof(full); len++) {
        char buf[sizeof(full) + 8];
        memset(buf, 'x', sizeof(buf));
        thou_router_allow_header(all, buf, len);
        size_t n = strnlen(buf, len);
        ck_assert_msg(n < len, "len %zu: not NUL-terminated", len);
        ck_assert_msg(buf[len] == 'x', "len %zu: wrote past the buffer", len);
        ck_assert_msg(strncmp(buf, full, n) == 0, "len %zu: '%s' is not a prefix", len, buf);
        /* What is there ends at a method boundary. */
        ck_assert_msg(n == 0 || full[n] == ',' || full[n] == '\0',
                      "len %zu: '%s' ends inside a method name", len, buf);
    }
    char buf[sizeof(full)];
    thou_router_allow_header(all, buf, sizeof(buf));
    ck_assert_str_eq(buf, full);
}
END_TEST

START_TEST(test_free_null)
{
    thou_router_free(NULL);
}
END_TEST

static Suite *router_suite(void)
{
    Suite *suite = suite_create("router");

    TCase *match = tcase_create("match");
    tcase_add_checked_fixture(match, setup, teardown);
    tcase_add_loop_test(match, test_match_table, 0,
                        (int)(sizeof(match_cases) / sizeof(match_cases[0])));
    suite_add_tcase(suite, match);

    TCase *routes = tcase_create("routes");
    tcase_add_test(routes, test_pattern_is_copied);
    tcase_add_test(routes, test_registration_order);
    tcase_add_test(routes, test_method_falls_through);
    tcase_add_test(routes, test_capture_length);
    tcase_add_loop_test(routes, test_pattern_validation, 0,
                        (int)(sizeof(pattern_cases) / sizeof(pattern_cases[0])));
    tcase_add_test(routes, test_free_null);
    suite_add_tcase(suite, routes);

    TCase *allow = tcase_create("allow");
    tcase_add_loop_test(allow, test_allow_header, 0,
                        (int)(sizeof(allow_cases) / sizeof(allow_cases[0])));
    tcase_add_test(allow, test_allow_header_truncation);
    suite_add_tcase(suite, allow);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(router_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
