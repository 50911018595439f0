#pragma once

#include <stddef.h>

#include "thou/http.h"

/*
 * Method + path pattern → handler. Patterns are '/'-separated segments:
 * a literal ("rooms"), a capture ("{room}", one non-empty segment), or a
 * final "*" that matches the rest of the path (one or more segments).
 * Routes are tried in the order they were added.
 */

typedef void (*thou_handler_fn)(void *ctx, struct thou_request *req, struct thou_response *res);

struct thou_router;

enum thou_route_result {
    THOU_ROUTE_FOUND = 0,
    THOU_ROUTE_NOT_FOUND,
    THOU_ROUTE_BAD_METHOD, /* the path matched, but not for this method */
};

struct thou_route_match {
    thou_handler_fn handler;
    void *ctx;
    const char *pattern; /* the matched route's pattern (static storage of the router) */
    unsigned allowed;    /* on THOU_ROUTE_BAD_METHOD: methods the path accepts */
    const char *params[THOU_ROUTE_MAX_PARAMS];
    size_t n_params;
    const char *rest;  /* what "*" matched, without the leading '/'; NULL if none */
    char storage[256]; /* backing store of params */
};

/** New empty router; aborts on out-of-memory. Free with thou_router_free(). */
struct thou_router *thou_router_new(void);

/** Free a router; NULL is a no-op. */
void thou_router_free(struct thou_router *router);

/**
 * Add a route for a set of methods (THOU_METHOD_* or-ed). GET routes also
 * answer HEAD. Returns THOU_EINVAL for a malformed pattern.
 */
enum thou_status thou_router_add(struct thou_router *router, unsigned methods, const char *pattern,
                                 thou_handler_fn handler, void *ctx);

/**
 * Find the route for method and path. Captured segments longer than the
 * match storage make the route not match.
 */
enum thou_route_result thou_router_match(const struct thou_router *router, enum thou_method method,
                                         const char *path, struct thou_route_match *match);

/** Format an Allow header value for a method set into buf ("GET, HEAD, POST"). */
void thou_router_allow_header(unsigned methods, char *buf, size_t len);
