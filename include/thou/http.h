#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "thou/status.h"

/*
 * The HTTP vocabulary handlers speak: a plain request struct in, a plain
 * response struct out. Handlers never see a socket; the server module
 * (server.c, the libmicrohttpd adapter) is the only place that does, so
 * handlers are testable alone.
 */

enum thou_method {
    THOU_METHOD_OTHER = 0,
    THOU_METHOD_GET = 1 << 0,
    THOU_METHOD_HEAD = 1 << 1,
    THOU_METHOD_POST = 1 << 2,
    THOU_METHOD_PUT = 1 << 3,
    THOU_METHOD_DELETE = 1 << 4,
    THOU_METHOD_OPTIONS = 1 << 5,
};

#define THOU_ROUTE_MAX_PARAMS 4

struct thou_request {
    enum thou_method method;
    const char *path;                          /* percent-decoded URL path */
    const char *route;                         /* matched route pattern, for logs */
    const char *params[THOU_ROUTE_MAX_PARAMS]; /* {name} captures, in order */
    size_t n_params;
    const char *content_type;    /* NULL if absent */
    const char *authorization;   /* NULL if absent */
    const char *last_event_id;   /* NULL if absent */
    const char *if_none_match;   /* NULL if absent */
    const char *accept_encoding; /* NULL if absent */
    const char *host;            /* NULL if absent */
    const char *cookie;          /* NULL if absent */
    const char *csrf_token;      /* X-CSRF-Token; NULL if absent */
    const char *body;            /* NUL-terminated; NULL if none */
    size_t body_len;
    bool secure; /* arrived over TLS: cookies must be Secure */
    /* The client's address: the peer's, or the one a trusted proxy
     * forwarded (proxy.h). Key per-address limits with thou_address_key(). */
    const struct sockaddr *client_addr;
    void *conn; /* adapter-private */
};

/*
 * A long-lived streamed body (server-sent events). The adapter pulls bytes
 * with read(); when read() returns 0 the adapter has already been told to
 * suspend through the stream's own logic (see thou_server_suspend), and
 * resumes when the stream's producer wakes it. free() runs once when the
 * connection is gone.
 */
struct thou_stream {
    /* Fill at most max bytes; return the count, 0 when nothing is ready, -1 to end. */
    ssize_t (*read)(struct thou_stream *stream, char *buf, size_t max);
    void (*free)(struct thou_stream *stream);
    void *conn; /* set by the adapter before the first read */
};

/*
 * A response that completes later, without holding a request thread: the
 * handler sets res->deferred and starts the work; the adapter suspends the
 * connection; the worker calls thou_deferred_complete() from any thread;
 * the adapter then calls finish() on a request thread to fill the response.
 * free() runs once when the request is over, finished or not.
 */
struct thou_response;

struct thou_deferred {
    void (*finish)(struct thou_deferred *deferred, struct thou_response *res);
    void (*free)(struct thou_deferred *deferred);
    pthread_mutex_t lock; /* guards the fields below */
    bool done;
    bool suspended;
    void *conn;
};

/** Prepare a deferred response with its callbacks. */
void thou_deferred_init(struct thou_deferred *deferred,
                        void (*finish)(struct thou_deferred *, struct thou_response *),
                        void (*free)(struct thou_deferred *));

/** Mark the work done and wake the request; callable from any thread, once. */
void thou_deferred_complete(struct thou_deferred *deferred);

struct thou_response {
    unsigned status;
    const char *content_type; /* static string */
    char *body;               /* heap; owned by the response */
    size_t body_len;
    int file_fd; /* >= 0: serve this file; owned by the response */
    uint64_t file_size;
    char etag[64]; /* empty if none */
    const char *cache_control;
    unsigned retry_after_s;         /* 0: no Retry-After header */
    const char *allow;              /* Allow header for 405 */
    const char *content_encoding;   /* static string; NULL: the body is sent as it is */
    const char *vary;               /* static string; NULL: no Vary header */
    char set_cookie[192];           /* a Set-Cookie value; empty: none */
    struct thou_stream *stream;     /* non-NULL: stream the body */
    struct thou_deferred *deferred; /* non-NULL: the answer comes later */
};

/** Make an empty response: status 0, no body, file_fd -1. */
void thou_response_init(struct thou_response *res);

/** Free the body, close the file, free the stream; leaves the response initialized. */
void thou_response_release(struct thou_response *res);

/** Take ownership of a heap body of len bytes with the given status and content type. */
void thou_response_set_body(struct thou_response *res, unsigned status, const char *content_type,
                            char *body, size_t len);

/**
 * Set an error response: {"error": {"code": code, "message": message}}.
 * The code is a stable snake_case string clients may test.
 */
void thou_response_error(struct thou_response *res, unsigned status, const char *code,
                         const char *message);

/** Map a status to an HTTP status and stable error code, for generic failures. */
void thou_response_status(struct thou_response *res, enum thou_status status);

/** Name of a method ("GET"), or "OTHER". */
const char *thou_method_name(enum thou_method method);

/** Parse a method name; THOU_METHOD_OTHER for anything unknown. */
enum thou_method thou_method_parse(const char *name);
