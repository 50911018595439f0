#include "thou/router.h"
#include "thou/mem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum segment_kind { SEG_LITERAL, SEG_CAPTURE, SEG_REST };

struct segment {
    enum segment_kind kind;
    char *text; /* literal text; NULL for captures and rest */
};

struct route {
    unsigned methods;
    char *pattern;
    struct segment *segments;
    size_t n_segments;
    thou_handler_fn handler;
    void *ctx;
};

struct thou_router {
    struct route *routes;
    size_t n_routes;
};

struct thou_router *thou_router_new(void)
{
    return thou_xcalloc(1, sizeof(struct thou_router));
}

static void route_release(struct route *route)
{
    for (size_t i = 0; i < route->n_segments; i++)
        free(route->segments[i].text);
    free(route->segments);
    free(route->pattern);
}

void thou_router_free(struct thou_router *router)
{
    if (!router)
        return;
    for (size_t i = 0; i < router->n_routes; i++)
        route_release(&router->routes[i]);
    free(router->routes);
    free(router);
}

/* True for a well-formed capture segment: "{name}", name non-empty and
 * without braces. */
static bool is_capture(const char *p, size_t len)
{
    if (len < 3 || p[0] != '{' || p[len - 1] != '}')
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (p[i] == '{' || p[i] == '}')
            return false;
    return true;
}

/* Split a pattern into segments; refuses empty segments, a "*" that is not
 * last, too many captures, and braces anywhere but around a whole capture
 * (a typo like "{room" must not silently become a literal). */
static enum thou_status parse_pattern(const char *pattern, struct route *route)
{
    if (pattern[0] != '/')
        return THOU_EINVAL;
    size_t n_captures = 0;
    const char *p = pattern + 1;
    if (*p == '\0')
        return THOU_OK; /* "/" has no segments */
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return THOU_EINVAL;
        struct segment seg = {SEG_LITERAL, NULL};
        if (len == 1 && p[0] == '*') {
            if (end)
                return THOU_EINVAL;
            seg.kind = SEG_REST;
        } else if (is_capture(p, len)) {
            if (++n_captures > THOU_ROUTE_MAX_PARAMS)
                return THOU_EINVAL;
            seg.kind = SEG_CAPTURE;
        } else if (memchr(p, '{', len) || memchr(p, '}', len)) {
            return THOU_EINVAL;
        } else {
            seg.text = thou_xstrndup(p, len);
        }
        route->segments =
            thou_xrealloc(route->segments, (route->n_segments + 1) * sizeof(*route->segments));
        route->segments[route->n_segments++] = seg;
        if (!end)
            return THOU_OK;
        p = end + 1;
    }
}

enum thou_status thou_router_add(struct thou_router *router, unsigned methods, const char *pattern,
                                 thou_handler_fn handler, void *ctx)
{
    struct route route = {0};
    if (methods & THOU_METHOD_GET)
        methods |= THOU_METHOD_HEAD;
    route.methods = methods;
    route.handler = handler;
    route.ctx = ctx;
    enum thou_status rc = parse_pattern(pattern, &route);
    if (rc) {
        route_release(&route);
        return rc;
    }
    route.pattern = thou_xstrdup(pattern);
    router->routes = thou_xrealloc(router->routes, (router->n_routes + 1) * sizeof(struct route));
    router->routes[router->n_routes++] = route;
    return THOU_OK;
}

/* Match one route against path; captures are copied into match->storage. */
static bool route_matches(const struct route *route, const char *path,
                          struct thou_route_match *match)
{
    size_t used = 0;
    match->n_params = 0;
    match->rest = NULL;
    if (path[0] != '/')
        return false;
    const char *p = path + 1;
    if (route->n_segments == 0)
        return *p == '\0';
    for (size_t i = 0; i < route->n_segments; i++) {
        const struct segment *seg = &route->segments[i];
        if (seg->kind == SEG_REST) {
            if (*p == '\0')
                return false;
            match->rest = p;
            return true;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return false;
        if (seg->kind == SEG_LITERAL) {
            if (strlen(seg->text) != len || memcmp(seg->text, p, len) != 0)
                return false;
        } else {
            if (used + len + 1 > sizeof(match->storage))
                return false;
            memcpy(match->storage + used, p, len);
            match->storage[used + len] = '\0';
            match->params[match->n_params++] = match->storage + used;
            used += len + 1;
        }
        bool last = i + 1 == route->n_segments;
        if (last)
            return end == NULL;
        if (!end)
            return false;
        p = end + 1;
    }
    return false;
}

enum thou_route_result thou_router_match(const struct thou_router *router, enum thou_method method,
                                         const char *path, struct thou_route_match *match)
{
    unsigned allowed = 0;
    for (size_t i = 0; i < router->n_routes; i++) {
        const struct route *route = &router->routes[i];
        if (!route_matches(route, path, match))
            continue;
        if (route->methods & method) {
            match->handler = route->handler;
            match->ctx = route->ctx;
            match->pattern = route->pattern;
            return THOU_ROUTE_FOUND;
        }
        allowed |= route->methods;
    }
    match->n_params = 0;
    match->rest = NULL;
    match->allowed = allowed;
    return allowed ? THOU_ROUTE_BAD_METHOD : THOU_ROUTE_NOT_FOUND;
}

void thou_router_allow_header(unsigned methods, char *buf, size_t len)
{
    static const enum thou_method order[] = {THOU_METHOD_GET,    THOU_METHOD_HEAD,
                                             THOU_METHOD_POST,   THOU_METHOD_PUT,
                                             THOU_METHOD_DELETE, THOU_METHOD_OPTIONS};
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(methods & order[i]))
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", thou_method_name(order[i]));
        if (n < 0 || (size_t)n >= len - off) {
            buf[off] = '\0'; /* whole method names only */
            return;
        }
        off += (size_t)n;
    }
}
