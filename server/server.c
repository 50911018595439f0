#include "thou/server.h"
#include "thou/buf.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/proxy.h"
#include "thou/text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The libmicrohttpd adapter. One daemon per loop thread, all sharing one
 * listen socket, each run by its own loop: epoll_wait() on {the daemon's
 * epoll fd, an eventfd}, then MHD_run(). libmicrohttpd's internal thread is
 * not used: its MHD_epoll() can go back to sleep holding a full batch of
 * ready events (daemon.c, 0.9.75), while MHD_run() never blocks. Without an
 * internal thread there is no inter-thread channel either, so a resume from
 * another thread (the hub, the store's writer) only sets two flags inside
 * libmicrohttpd: the adapter wakes the owning loop itself, once per batch
 * (docs/api.md, "The HTTP layer"; shared notes on libmicrohttpd 0.9.75).
 */

#define MAX_LOOP_WAIT_MS 1000
#define STREAM_BLOCK     1024 /* an idle stream keeps this buffer for hours */
#define IP_SLOTS         1024
#define MAX_HELD_WAKES   256

/* DESIGN §2: the page that does the crypto must load nothing from elsewhere
 * and run no inline script; libsodium.js needs 'wasm-unsafe-eval'. */
static const char content_security_policy[] =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; "
    "img-src 'self'; style-src 'self'; font-src 'self'; manifest-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* Two years, as browsers' preload lists ask; no includeSubDomains: thou
 * cannot speak for other hosts under its domain. */
static const char strict_transport_security[] = "max-age=63072000";

/* A deadline's phase: what the client must finish sending by then. */
enum phase { PHASE_NONE, PHASE_HEAD, PHASE_BODY, PHASE_COUNT };

struct conn;

/* Connections whose deadline of one phase is running, oldest first: every
 * deadline of a phase is as long as any other, so appending keeps order. */
struct deadline_list {
    struct conn *first, *last;
};

struct loop {
    struct thou_server *server;
    struct deadline_list deadlines[PHASE_COUNT]; /* [PHASE_NONE] unused */
    struct MHD_Daemon *daemon;
    pthread_t thread;
    int epoll_fd;
    int wake_fd;
    atomic_bool woken;   /* a wake is written and not yet taken by the loop */
    bool resume_pending; /* this loop's own thread resumed one of its connections */
    bool quiesced;
    bool started;
};

struct ip_count {
    struct sockaddr_storage addr;
    unsigned count;
    struct ip_count *next;
};

/*
 * Per connection (libmicrohttpd's socket context), from its start to its
 * close: what it counts against the limits, and the watch on its socket.
 */
struct conn {
    struct ip_count *ip; /* NULL for a trusted proxy: no per-address limit */
    struct loop *loop;
    int fd;
    struct sockaddr_storage peer;
    struct request *stream; /* the event stream it carries, if any */
    enum phase phase;       /* the deadline running, if any */
    int64_t deadline_ms;
    struct conn *prev, *next; /* in loop->deadlines[phase] */
};

struct thou_server {
    struct thou_router *router;
    struct thou_metrics *metrics;
    size_t max_body_bytes;
    int64_t phase_ms[PHASE_COUNT]; /* how long each deadline is */
    int64_t keep_alive_ms;         /* connection_timeout_s, before a next request's head */
    unsigned max_connections;
    unsigned max_per_ip;
    struct thou_proxies proxies;
    bool tls;
    unsigned port;
    int listen_fd;
    atomic_bool stopping;
    atomic_bool quiescing;
    atomic_uint to_quiesce; /* loops that have not yet quiesced their daemon */
    atomic_int in_flight;   /* requests that are not streams */
    atomic_uint connections;
    unsigned n_loops;
    struct loop *loops;
    pthread_mutex_t ip_lock;
    struct ip_count *ips[IP_SLOTS];
};

/*
 * Per-request state, on libmicrohttpd's *req_cls: made on the first call of
 * the access handler, released in the request-completed callback. A stream
 * or a deferred answer points at it as its "conn" (see thou_server_resume),
 * and libmicrohttpd destroys a response only after the completed callback
 * (connection.c), so a stream holds a second reference, dropped when the
 * stream is freed: the hub may resume it until then.
 */
struct request {
    atomic_int refs;
    struct MHD_Connection *connection;
    struct loop *loop;
    struct timespec start;
    struct thou_buf body;
    enum thou_method method;
    const char *route;
    unsigned status;
    bool too_big;
    bool streaming;
    struct conn *conn;              /* the connection it arrived on */
    atomic_bool suspended;          /* suspended through thou_server_suspend() */
    atomic_bool peer_gone;          /* the stream's peer hung up */
    struct thou_deferred *deferred; /* an answer being prepared elsewhere */
    struct thou_stream *stream;     /* owned by the MHD response once created */
    /* Request headers, pointing into libmicrohttpd's connection pool. */
    const char *content_type;
    const char *authorization;
    const char *last_event_id;
    const char *if_none_match;
    const char *accept_encoding;
    const char *host, *cookie, *csrf_token; /* the facilitator's pages (workshops.c) */
    unsigned n_host, n_length, n_transfer_encoding;
    const char *content_length;
    const char *forwarded, *x_forwarded_for; /* the last of each */
    struct sockaddr_storage client;
    const char *transfer_encoding;
    bool bad_header_value;
};

static _Thread_local struct loop *current_loop;

/* Wake-ups held back by thou_server_hold_wakes(), one per loop. */
static _Thread_local struct {
    bool holding;
    size_t n;
    struct loop *loops[MAX_HELD_WAKES];
} held_wakes;

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- deadlines ----------------------------------------------------------------- */

/*
 * libmicrohttpd's connection timeout is an inactivity timeout: a client
 * that sends one byte now and then never runs into it, and holds its
 * connection slot for as long as it likes. thou gives the whole request
 * head and the whole body a deadline each (nginx's client_header_timeout
 * and client_body_timeout); past it the socket is shut down, libmicrohttpd
 * reads the end of the stream and closes the connection. Everything here
 * runs on the connection's own loop thread.
 */
static void deadline_unlink(struct conn *conn)
{
    if (conn->phase == PHASE_NONE)
        return;
    struct deadline_list *list = &conn->loop->deadlines[conn->phase];
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        list->first = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        list->last = conn->prev;
    conn->prev = conn->next = NULL;
    conn->phase = PHASE_NONE;
}

/* Start the deadline of phase, extra_ms later than usual; PHASE_NONE stops it. */
static void deadline_start(struct conn *conn, enum phase phase, int64_t extra_ms)
{
    deadline_unlink(conn);
    if (phase == PHASE_NONE)
        return;
    struct deadline_list *list = &conn->loop->deadlines[phase];
    conn->phase = phase;
    conn->deadline_ms = monotonic_ms() + conn->loop->server->phase_ms[phase] + extra_ms;
    conn->prev = list->last;
    if (list->last)
        list->last->next = conn;
    else
        list->first = conn;
    list->last = conn;
}

static void expire_deadlines(struct loop *loop)
{
    int64_t now = monotonic_ms();
    for (enum phase phase = PHASE_HEAD; phase < PHASE_COUNT; phase++) {
        struct deadline_list *list = &loop->deadlines[phase];
        while (list->first && list->first->deadline_ms <= now) {
            struct conn *conn = list->first;
            deadline_unlink(conn);
            shutdown(conn->fd, SHUT_RDWR);
            thou_metrics_refusal(loop->server->metrics, phase == PHASE_HEAD
                                                            ? THOU_REFUSAL_HEAD_DEADLINE
                                                            : THOU_REFUSAL_BODY_DEADLINE);
        }
    }
}

/* Milliseconds until the loop's next deadline, at most max_ms. */
static int next_deadline_ms(const struct loop *loop, int max_ms)
{
    int64_t now = monotonic_ms(), wait = max_ms;
    for (enum phase phase = PHASE_HEAD; phase < PHASE_COUNT; phase++) {
        const struct conn *first = loop->deadlines[phase].first;
        if (first && first->deadline_ms - now < wait)
            wait = first->deadline_ms - now;
    }
    return wait < 0 ? 0 : (int)wait;
}

/* ---- waking loops ----------------------------------------------------------- */

static void wake_loop(struct loop *loop)
{
    /* The loop takes 'woken' back with an exchange after it has read the
     * eventfd and before it runs libmicrohttpd: a resume whose exchange sees
     * true is seen by that run, one that sees false writes a new wake. */
    if (atomic_exchange(&loop->woken, true))
        return;
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter already means "wake up" */
}

/* Make sure loop runs its daemon again soon after a resume. */
static void schedule_loop(struct loop *loop)
{
    if (current_loop == loop) {
        loop->resume_pending = true; /* the loop is running: no sleep before the next run */
        return;
    }
    if (held_wakes.holding) {
        for (size_t i = 0; i < held_wakes.n; i++)
            if (held_wakes.loops[i] == loop)
                return;
        if (held_wakes.n < MAX_HELD_WAKES) {
            held_wakes.loops[held_wakes.n++] = loop;
            return;
        }
    }
    wake_loop(loop);
}

void thou_server_hold_wakes(void *unused)
{
    (void)unused;
    held_wakes.holding = true;
}

void thou_server_flush_wakes(void *unused)
{
    (void)unused;
    for (size_t i = 0; i < held_wakes.n; i++)
        wake_loop(held_wakes.loops[i]);
    held_wakes.n = 0;
    held_wakes.holding = false;
}

void thou_server_suspend(void *conn)
{
    struct request *req = conn;
    atomic_store(&req->suspended, true);
    MHD_suspend_connection(req->connection);
}

/* Resume once per suspension: the hub or a deferred answer's producer, and
 * the loop that saw a stream's peer leave, may both try. */
void thou_server_resume(void *conn)
{
    struct request *req = conn;
    /* Read the loop first: once resumed, the request may end at any time
     * (the caller's own lock is what keeps req itself alive). */
    struct loop *loop = req->loop;
    if (!atomic_exchange(&req->suspended, false))
        return;
    MHD_resume_connection(req->connection);
    schedule_loop(loop);
}

/* ---- requests ---------------------------------------------------------------- */

/* NULL when out of memory. */
static struct request *request_new(struct MHD_Connection *connection, const char *method)
{
    struct request *req = thou_calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    atomic_init(&req->refs, 1);
    req->connection = connection;
    req->loop = current_loop;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    req->conn = info ? info->socket_context : NULL;
    thou_buf_init_failable(&req->body); /* a body it cannot keep is refused (503) */
    req->method = thou_method_parse(method);
    return req;
}

static void request_unref(struct request *req)
{
    if (atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    thou_buf_release(&req->body);
    free(req);
}

void thou_deferred_init(struct thou_deferred *deferred,
                        void (*finish)(struct thou_deferred *, struct thou_response *),
                        void (*free_fn)(struct thou_deferred *))
{
    deferred->finish = finish;
    deferred->free = free_fn;
    pthread_mutex_init(&deferred->lock, NULL);
    deferred->done = false;
    deferred->suspended = false;
    deferred->conn = NULL;
}

void thou_deferred_complete(struct thou_deferred *deferred)
{
    /* Resume under the lock: the request thread suspends under it too, so
     * the wake-up can neither come before the suspension nor be lost. */
    pthread_mutex_lock(&deferred->lock);
    deferred->done = true;
    if (deferred->suspended) {
        deferred->suspended = false;
        thou_server_resume(deferred->conn);
    }
    pthread_mutex_unlock(&deferred->lock);
}

static void deferred_free(struct thou_deferred *deferred)
{
    /* Wait out a complete() still holding the lock before the memory goes. */
    pthread_mutex_lock(&deferred->lock);
    pthread_mutex_unlock(&deferred->lock);
    pthread_mutex_destroy(&deferred->lock);
    deferred->free(deferred);
}

/* ---- responses ----------------------------------------------------------------- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct request *req = cls;
    (void)pos;
    if (atomic_load(&req->peer_gone))
        return MHD_CONTENT_READER_END_OF_STREAM;
    ssize_t n = req->stream->read(req->stream, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void stream_free(void *cls)
{
    struct request *req = cls;
    if (req->conn && req->conn->stream == req)
        req->conn->stream = NULL;
    req->stream->free(req->stream); /* the hub never resumes it after this */
    req->stream = NULL;
    request_unref(req);
}

static bool is_document(const struct thou_response *res)
{
    return res->content_type && strncmp(res->content_type, "text/html", 9) == 0;
}

/* Documents get the whole set of security headers (DESIGN §2); the API's
 * JSON, event streams and scripts only what applies to them: each header
 * costs libmicrohttpd three allocations per response. */
static bool add_headers(struct thou_server *server, struct MHD_Response *response,
                        const struct thou_response *res, bool stream)
{
    bool ok = true;
    if (is_document(res)) {
        ok &= MHD_add_response_header(response, "Content-Security-Policy",
                                      content_security_policy) == MHD_YES;
        ok &= MHD_add_response_header(response, "Referrer-Policy", "no-referrer") == MHD_YES;
        ok &= MHD_add_response_header(response, "X-Frame-Options", "DENY") == MHD_YES;
        ok &= MHD_add_response_header(response, "Cross-Origin-Opener-Policy", "same-origin") ==
              MHD_YES;
        ok &= MHD_add_response_header(response, "Cross-Origin-Resource-Policy", "same-origin") ==
              MHD_YES;
        ok &= MHD_add_response_header(
                  response, "Permissions-Policy",
                  "camera=(), microphone=(), geolocation=(), interest-cohort=()") == MHD_YES;
    }
    ok &= MHD_add_response_header(response, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (server->tls)
        ok &= MHD_add_response_header(response, "Strict-Transport-Security",
                                      strict_transport_security) == MHD_YES;
    if (res->content_type)
        ok &= MHD_add_response_header(response, "Content-Type", res->content_type) == MHD_YES;
    if (res->etag[0])
        ok &= MHD_add_response_header(response, "ETag", res->etag) == MHD_YES;
    ok &= MHD_add_response_header(response, "Cache-Control",
                                  res->cache_control ? res->cache_control : "no-store") == MHD_YES;
    if (res->retry_after_s) {
        char value[16];
        snprintf(value, sizeof(value), "%u", res->retry_after_s);
        ok &= MHD_add_response_header(response, "Retry-After", value) == MHD_YES;
    }
    if (res->allow)
        ok &= MHD_add_response_header(response, "Allow", res->allow) == MHD_YES;
    if (res->content_encoding)
        ok &=
            MHD_add_response_header(response, "Content-Encoding", res->content_encoding) == MHD_YES;
    if (res->vary)
        ok &= MHD_add_response_header(response, "Vary", res->vary) == MHD_YES;
    if (res->set_cookie[0])
        ok &= MHD_add_response_header(response, "Set-Cookie", res->set_cookie) == MHD_YES;
    if (stream) /* a buffering proxy in front would hold the events back */
        ok &= MHD_add_response_header(response, "X-Accel-Buffering", "no") == MHD_YES;
    return ok;
}

/* Turn a filled thou_response into an MHD response; takes what it owns. */
static struct MHD_Response *make_mhd_response(struct thou_server *server, struct request *req,
                                              struct thou_response *res)
{
    struct MHD_Response *response;
    bool stream = res->stream != NULL;
    if (stream) {
        res->stream->conn = req;
        req->stream = res->stream;
        atomic_fetch_add(&req->refs, 1); /* dropped by stream_free */
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_reader,
                                                     req, stream_free);
        if (!response) {
            req->stream = NULL;
            atomic_fetch_sub(&req->refs, 1);
        } else {
            res->stream = NULL;
        }
    } else if (res->file_fd >= 0) {
        response = MHD_create_response_from_fd64(res->file_size, res->file_fd);
        if (response)
            res->file_fd = -1;
    } else {
        static char empty[1];
        response = MHD_create_response_from_buffer(res->body_len, res->body ? res->body : empty,
                                                   res->body ? MHD_RESPMEM_MUST_FREE
                                                             : MHD_RESPMEM_PERSISTENT);
        if (response)
            res->body = NULL;
    }
    if (response && !add_headers(server, response, res, stream)) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return response;
}

static enum MHD_Result send_response(struct thou_server *server, struct request *req,
                                     struct thou_response *res)
{
    if (res->status == 0)
        res->status = 500;
    req->status = res->status;
    if (res->stream && req->method == THOU_METHOD_HEAD) {
        /* libmicrohttpd 0.9.75 ends a chunked answer to HEAD with "0\r\n\r\n"
         * all the same, which the client would read as its next answer. */
        res->stream->free(res->stream);
        res->stream = NULL;
    }
    bool stream = res->stream != NULL;
    struct MHD_Response *response = make_mhd_response(server, req, res);
    thou_response_release(res);
    if (!response)
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    enum MHD_Result ret = MHD_queue_response(req->connection, req->status, response);
    MHD_destroy_response(response);
    if (ret == MHD_YES && stream) {
        /* A stream is no request in flight: shutdown does not wait for it. */
        req->streaming = true;
        atomic_fetch_sub(&server->in_flight, 1);
        if (req->conn)
            req->conn->stream = req; /* its peer's hang-up ends it (peer_left) */
    }
    return ret;
}

static enum MHD_Result send_error(struct thou_server *server, struct request *req, unsigned status,
                                  const char *code, const char *message)
{
    struct thou_response res;
    thou_response_init(&res);
    thou_response_error(&res, status, code, message);
    return send_response(server, req, &res);
}

/* Send the deferred answer if it is ready, else suspend until it is. */
static enum MHD_Result finish_deferred(struct thou_server *server, struct request *req)
{
    struct thou_deferred *deferred = req->deferred;
    pthread_mutex_lock(&deferred->lock);
    if (!deferred->done) {
        deferred->conn = req;
        deferred->suspended = true;
        thou_server_suspend(req);
        pthread_mutex_unlock(&deferred->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&deferred->lock);
    struct thou_response res;
    thou_response_init(&res);
    deferred->finish(deferred, &res);
    return send_response(server, req, &res);
}

static enum MHD_Result dispatch(struct thou_server *server, struct request *req, const char *url)
{
    struct thou_response res;
    thou_response_init(&res);
    char allow[64];

    if (req->too_big)
        return send_error(server, req, 413, "too_large", "the request body is larger than allowed");
    /* On the stack: captures are needed only while the handler runs, and a
     * stream's request state lives as long as the stream. */
    struct thou_route_match match;
    enum thou_route_result found = thou_router_match(server->router, req->method, url, &match);
    if (found == THOU_ROUTE_NOT_FOUND)
        return send_error(server, req, 404, "not_found", "no such resource");
    if (found == THOU_ROUTE_BAD_METHOD) {
        thou_router_allow_header(match.allowed, allow, sizeof(allow));
        res.allow = allow;
        thou_response_error(&res, 405, "method_not_allowed",
                            "this method is not allowed on this resource");
        return send_response(server, req, &res);
    }
    req->route = match.pattern;
    if (req->conn)
        thou_proxies_client(&server->proxies, (const struct sockaddr *)&req->conn->peer,
                            req->forwarded, req->x_forwarded_for, &req->client);

    struct thou_request request = {
        .method = req->method,
        .path = url,
        .route = match.pattern,
        .n_params = match.n_params,
        .content_type = req->content_type,
        .authorization = req->authorization,
        .last_event_id = req->last_event_id,
        .if_none_match = req->if_none_match,
        .accept_encoding = req->accept_encoding,
        .host = req->host,
        .cookie = req->cookie,
        .csrf_token = req->csrf_token,
        .body = req->body.len ? req->body.data : NULL,
        .body_len = req->body.len,
        .secure = server->tls,
        .client_addr = req->conn ? (const struct sockaddr *)&req->client : NULL,
        .conn = req,
    };
    memcpy(request.params, match.params, sizeof(request.params));
    match.handler(match.ctx, &request, &res);
    if (!res.deferred)
        return send_response(server, req, &res);
    req->deferred = res.deferred;
    res.deferred = NULL;
    thou_response_release(&res);
    return finish_deferred(server, req);
}

/* ---- checks on the request head ------------------------------------------------ */

static bool header_is(const char *key, size_t key_len, const char *name, size_t name_len)
{
    return key_len == name_len && strncasecmp(key, name, name_len) == 0;
}

#define HEADER_IS(name) header_is(key, key_size, name, sizeof(name) - 1)

/* One pass over the request's header fields: the values handlers need, and
 * the counts behind the framing checks libmicrohttpd leaves to us. */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct request *req = cls;
    (void)kind;
    for (size_t i = 0; i < value_size; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            req->bad_header_value = true; /* NUL, a bare CR, another control byte */
    }
    if (HEADER_IS("Host")) {
        req->n_host++;
        req->host = value;
    } else if (HEADER_IS("Cookie"))
        req->cookie = value;
    else if (HEADER_IS("X-CSRF-Token"))
        req->csrf_token = value;
    else if (HEADER_IS("Content-Length")) {
        req->n_length++;
        req->content_length = value;
    } else if (HEADER_IS("Transfer-Encoding")) {
        req->n_transfer_encoding++;
        req->transfer_encoding = value;
    } else if (HEADER_IS("Content-Type"))
        req->content_type = value;
    else if (HEADER_IS("Authorization"))
        req->authorization = value;
    else if (HEADER_IS("Last-Event-ID"))
        req->last_event_id = value;
    else if (HEADER_IS("If-None-Match"))
        req->if_none_match = value;
    else if (HEADER_IS("Accept-Encoding"))
        req->accept_encoding = value;
    else if (HEADER_IS("Forwarded"))
        req->forwarded = value;
    else if (HEADER_IS("X-Forwarded-For"))
        req->x_forwarded_for = value;
    return MHD_YES;
}

static bool has_control_byte(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* A declared body over the limit is refused before a byte of it is read. */
static bool declared_too_big(const char *length, size_t limit)
{
    if (!length)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(length, &end, 10);
    return errno != 0 || end == length || n > limit;
}

/*
 * What libmicrohttpd 0.9.75 accepts but thou refuses, checked on the first
 * call, before any body is read: an answer queued then also closes the
 * connection, since the input can no longer be trusted to frame requests.
 * Returns MHD_YES with nothing queued when the head is fine.
 */
static enum MHD_Result check_head(struct thou_server *server, struct request *req, const char *url,
                                  const char *version)
{
    bool http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    /* libmicrohttpd serves HTTP/1.2 and the like as 1.1 (RFC 9110 allows
     * it); thou speaks exactly 1.0 and 1.1, as before. */
    if (!http11 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
        return send_error(server, req, 505, "bad_version",
                          "only HTTP/1.0 and HTTP/1.1 are spoken here");
    MHD_get_connection_values_n(req->connection, MHD_HEADER_KIND, collect_header, req);
    if (req->bad_header_value || url[0] != '/' || has_control_byte(url))
        return send_error(server, req, 400, "bad_request", "the request is not valid HTTP/1.1");
    if ((http11 && req->n_host != 1) || req->n_host > 1)
        return send_error(server, req, 400, "bad_request", "one Host header field is required");
    if (req->n_length > 1 || (req->n_length && req->n_transfer_encoding))
        return send_error(server, req, 400, "bad_request", "the body's length is ambiguous");
    if (req->n_transfer_encoding > 1 ||
        (req->transfer_encoding && strcasecmp(req->transfer_encoding, "chunked") != 0))
        return send_error(server, req, 501, "not_implemented",
                          "only the chunked transfer coding is supported");
    if (declared_too_big(req->content_length, server->max_body_bytes)) {
        req->too_big = true;
        return dispatch(server, req, url);
    }
    /* The head is in: a body, if one comes, has its own deadline. */
    bool has_body =
        req->transfer_encoding ||
        (req->content_length && strspn(req->content_length, "0") != strlen(req->content_length));
    if (req->conn)
        deadline_start(req->conn, has_body ? PHASE_BODY : PHASE_NONE, 0);
    return MHD_YES;
}

/* ---- libmicrohttpd callbacks ----------------------------------------------------- */

/*
 * No record for this request (out of memory): it is answered 503 from
 * static memory, which closes the connection (an answer queued on the first
 * call does); if libmicrohttpd cannot even make that, MHD_NO closes it
 * unanswered. Either way only this connection is affected.
 */
static enum MHD_Result refuse_unallocated(struct thou_server *server,
                                          struct MHD_Connection *connection)
{
    static char body[] =
        "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory\"}}";
    thou_metrics_refusal(server->metrics, THOU_REFUSAL_OUT_OF_MEMORY);
    thou_log_warn("out of memory: a request refused (503)");
    struct MHD_Response *response =
        MHD_create_response_from_buffer(sizeof(body) - 1, body, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(response, "Content-Type", "application/json") == MHD_YES &&
        MHD_add_response_header(response, "Cache-Control", "no-store") == MHD_YES &&
        MHD_add_response_header(response, "X-Content-Type-Options", "nosniff") == MHD_YES)
        ret = MHD_queue_response(connection, 503, response);
    MHD_destroy_response(response);
    return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    struct thou_server *server = cls;
    struct request *req = *req_cls;

    if (!req) {
        req = request_new(connection, method);
        if (!req)
            return refuse_unallocated(server, connection);
        *req_cls = req;
        atomic_fetch_add(&server->in_flight, 1);
        /* Nothing is queued on the first call unless refused: an answer
         * queued now makes libmicrohttpd close the connection after it. */
        return check_head(server, req, url, version);
    }
    if (*upload_data_size) {
        if (!req->too_big && req->body.len + *upload_data_size <= server->max_body_bytes)
            thou_buf_append(&req->body, upload_data, *upload_data_size);
        else
            req->too_big = true;
        *upload_data_size = 0;
        /* A chunked body that grows past the limit is read to its end but
         * never kept (libmicrohttpd cannot answer mid-upload); the 413 goes
         * out on the final call. */
        return MHD_YES;
    }
    if (req->deferred)
        return finish_deferred(server, req); /* resumed: the answer is ready */
    if (req->conn)
        deadline_start(req->conn, PHASE_NONE, 0); /* the whole body is in */
    if (thou_buf_failed(&req->body)) {
        thou_metrics_refusal(server->metrics, THOU_REFUSAL_OUT_OF_MEMORY);
        return send_error(server, req, 503, "out_of_memory", "the server is out of memory");
    }
    return dispatch(server, req, url);
}

static void request_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct thou_server *server = cls;
    struct request *req = *req_cls;
    (void)connection;
    (void)toe;
    if (!req)
        return;
    double seconds = seconds_since(&req->start);
    unsigned status = req->status ? req->status : 499; /* client went away before an answer */
    thou_metrics_request(server->metrics, req->route, req->method, status, seconds);
    thou_log_info("request method=%s route=%s status=%u ms=%.3f%s", thou_method_name(req->method),
                  req->route ? req->route : "unmatched", status, seconds * 1000.0,
                  req->streaming ? " stream=1" : "");
    if (!req->streaming)
        atomic_fetch_sub(&server->in_flight, 1);
    if (req->deferred)
        deferred_free(req->deferred);
    req->deferred = NULL;
    /* A kept-alive connection may idle before its next request: its head's
     * deadline starts after the idle time allowed. */
    if (req->conn && !req->streaming)
        deadline_start(req->conn, PHASE_HEAD, server->keep_alive_ms);
    *req_cls = NULL;
    request_unref(req);
}

/* ---- connections per address ------------------------------------------------------ */

/*
 * What an address is counted as: an IPv4 address as itself, an IPv6 address
 * by its /64 prefix (one household or phone is given a whole /64, and can
 * pick any address in it), an IPv4-mapped IPv6 address as the IPv4 one.
 */
static size_t addr_key(const struct sockaddr_storage *addr, const void **bytes)
{
    if (addr->ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            *bytes = &in6->s6_addr[12];
            return 4;
        }
        *bytes = in6->s6_addr;
        return 8;
    }
    *bytes = &((const struct sockaddr_in *)addr)->sin_addr;
    return 4;
}

static size_t ip_slot(const struct sockaddr_storage *addr)
{
    const void *bytes;
    size_t n = addr_key(addr, &bytes);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)bytes)[i]) * 16777619u;
    return h % IP_SLOTS;
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    const void *x, *y;
    size_t n = addr_key(a, &x);
    return a->ss_family == b->ss_family && n == addr_key(b, &y) && memcmp(x, y, n) == 0;
}

/*
 * Count a new connection from addr: against max_connections, and, unless
 * it comes from a trusted proxy (whose clients are many), against its
 * address's share. False when over a limit (counted as a refusal); *ip is
 * the address's count, NULL for a proxy.
 */
static bool conn_take(struct thou_server *server, const struct sockaddr_storage *addr,
                      bool per_address, struct ip_count **ip_out)
{
    enum thou_refusal refusal = THOU_REFUSAL_CONNECTION_LIMIT;
    struct ip_count *ip = NULL;
    bool ok = false;
    pthread_mutex_lock(&server->ip_lock);
    if (atomic_load(&server->connections) >= server->max_connections)
        goto out;
    if (per_address) {
        size_t slot = ip_slot(addr);
        ip = server->ips[slot];
        while (ip && !same_ip(&ip->addr, addr))
            ip = ip->next;
        if (!ip) {
            ip = thou_calloc(1, sizeof(*ip));
            if (!ip) { /* out of memory: this connection is refused */
                refusal = THOU_REFUSAL_OUT_OF_MEMORY;
                thou_log_warn("out of memory: a connection refused (its address's record)");
                goto out;
            }
            ip->addr = *addr;
            ip->next = server->ips[slot];
            server->ips[slot] = ip;
        }
        if (ip->count >= server->max_per_ip) {
            refusal = THOU_REFUSAL_ADDRESS_LIMIT;
            ip = NULL;
            goto out;
        }
        ip->count++;
    }
    atomic_fetch_add(&server->connections, 1);
    ok = true;
out:
    pthread_mutex_unlock(&server->ip_lock);
    if (!ok)
        thou_metrics_refusal(server->metrics, refusal);
    *ip_out = ip;
    return ok;
}

static void conn_release(struct thou_server *server, struct ip_count *ip)
{
    pthread_mutex_lock(&server->ip_lock);
    atomic_fetch_sub(&server->connections, 1);
    if (ip && --ip->count == 0) {
        struct ip_count **link = &server->ips[ip_slot(&ip->addr)];
        while (*link != ip)
            link = &(*link)->next;
        *link = ip->next;
        free(ip);
    }
    pthread_mutex_unlock(&server->ip_lock);
}

/*
 * libmicrohttpd's own limits are per daemon; thou's are for the whole
 * server, so they are counted here. A connection over a limit is shut down
 * at once: libmicrohttpd then reads the end of the stream and closes it.
 *
 * Each counted connection's socket is also in its loop's own epoll set,
 * for the peer's hang-up alone (EPOLLRDHUP): libmicrohttpd never notices
 * that the peer of a suspended connection left (an idle stream is
 * suspended for hours), nor a FIN that came with the last request of a
 * keep-alive connection (see peer_left).
 */
static void connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct thou_server *server = cls;
    struct conn *conn = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!conn)
            return;
        /* The socket is closed after this call, and the stream's response
         * destroyed (MHD_cleanup_connections). */
        if (conn->stream)
            conn->stream->conn = NULL;
        deadline_unlink(conn);
        epoll_ctl(conn->loop->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
        conn_release(server, conn->ip);
        thou_metrics_connections(server->metrics, -1);
        free(conn);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *addr =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!fd || !addr)
        return;
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof(peer));
    memcpy(&peer, addr->client_addr,
           addr->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                    : sizeof(struct sockaddr_in));
    struct ip_count *ip;
    bool proxy = thou_proxies_trust(&server->proxies, addr->client_addr);
    if (!conn_take(server, &peer, !proxy, &ip)) {
        shutdown(fd->connect_fd, SHUT_RDWR);
        return;
    }
    conn = thou_calloc(1, sizeof(*conn));
    if (!conn) { /* out of memory: this connection is refused, the others go on */
        conn_release(server, ip);
        thou_metrics_refusal(server->metrics, THOU_REFUSAL_OUT_OF_MEMORY);
        thou_log_warn("out of memory: a connection refused (its record)");
        shutdown(fd->connect_fd, SHUT_RDWR);
        return;
    }
    conn->ip = ip;
    conn->loop = current_loop;
    conn->fd = fd->connect_fd;
    conn->peer = peer;
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = conn};
    epoll_ctl(conn->loop->epoll_fd, EPOLL_CTL_ADD, conn->fd, &ev);
    deadline_start(conn, PHASE_HEAD, 0);
    *socket_context = conn;
    thou_metrics_connections(server->metrics, 1);
}

/*
 * The peer shut down its side. A stream ends (resumed if it sleeps). Any
 * other connection gets its own read side shut down: that wakes
 * libmicrohttpd's epoll again, so it reads the end of the input and closes
 * the connection once its answer is out, instead of waiting for the idle
 * timeout with a FIN it has not seen.
 */
static void peer_left(struct conn *conn)
{
    if (!conn->stream) {
        shutdown(conn->fd, SHUT_RD);
        return;
    }
    atomic_store(&conn->stream->peer_gone, true);
    thou_server_resume(conn->stream); /* a no-op unless the stream is suspended */
}

/* Percent-decode in place. An escape that would produce a control byte
 * (%00 above all) is left encoded, so it can neither truncate the path nor
 * reach a file name; static files refuse any '%' that remains. */
static size_t unescape(void *cls, struct MHD_Connection *connection, char *s)
{
    (void)cls;
    (void)connection;
    char *out = s;
    for (const char *in = s; *in; in++) {
        int hi = in[0] == '%' ? thou_hex_value(in[1]) : -1;
        int lo = hi >= 0 ? thou_hex_value(in[2]) : -1;
        if (lo >= 0) {
            unsigned char c = (unsigned char)(hi * 16 + lo);
            if (c >= 0x20 && c != 0x7f) {
                *out++ = (char)c;
                in += 2;
                continue;
            }
        }
        *out++ = *in;
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* libmicrohttpd's own messages: most are about one connection (a stream
 * whose client went away) and name its URL, which holds a room id, so
 * they are debug-level and the URL is cut out. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    char *url = strchr(line, '/');
    if (url && strcspn(url, " '\"`\n") >= 3) {
        char *end = url + strcspn(url, " '\"`\n");
        memmove(url + 3, end, strlen(end) + 1);
        memcpy(url, "...", 3);
    }
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    thou_log_debug("http: %s", line);
}

/* ---- the loops -------------------------------------------------------------------- */

static void quiesce_own_daemon(struct loop *loop)
{
    if (loop->quiesced)
        return;
    MHD_quiesce_daemon(loop->daemon); /* the shared socket is closed once, by stop */
    loop->quiesced = true;
    atomic_fetch_sub(&loop->server->to_quiesce, 1);
}

static int wait_ms(struct loop *loop)
{
    if (loop->resume_pending)
        return 0;
    int wait = next_deadline_ms(loop, MAX_LOOP_WAIT_MS);
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout(loop->daemon, &timeout) == MHD_YES && timeout < (unsigned)wait)
        return (int)timeout;
    return wait;
}

static void *loop_main(void *arg)
{
    struct loop *loop = arg;
    struct thou_server *server = loop->server;
    current_loop = loop;
    pthread_setname_np(pthread_self(), "thou-http"); /* for top -H and profiles */
    while (!atomic_load(&server->stopping)) {
        if (atomic_load(&server->quiescing))
            quiesce_own_daemon(loop);
        struct epoll_event events[64];
        int n = epoll_wait(loop->epoll_fd, events, 64, wait_ms(loop));
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == loop) {
                uint64_t count;
                ssize_t r = read(loop->wake_fd, &count, sizeof(count));
                (void)r;
            } else if (ptr) {
                peer_left(ptr); /* before MHD_run(), which may free it */
            }
        }
        atomic_exchange(&loop->woken, false);
        loop->resume_pending = false;
        expire_deadlines(loop);
        MHD_run(loop->daemon);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------- */

/* Each connection (an open event stream above all) is a file descriptor:
 * raise the soft limit towards max_connections, within the hard limit. */
static void raise_fd_limit(unsigned max_connections)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    rlim_t wanted = (rlim_t)max_connections + 64; /* database, listener, logs */
    if (limit.rlim_cur >= wanted)
        return;
    limit.rlim_cur =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= wanted ? wanted : limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted)
        thou_log_warn("open file limit %llu is below max_connections %u; raise 'ulimit -n'",
                      (unsigned long long)limit.rlim_cur, max_connections);
}

/* Bind and listen ourselves so a port in use is reported plainly, and so
 * that every daemon shares the one socket. */
static int open_listener(const struct thou_config *config, char *errbuf, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    memset(&addr, 0, sizeof(addr));
    const char *host = config->listen_address;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)config->port);
        addr_len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)config->port);
        addr_len = sizeof(*in6);
    } else {
        snprintf(errbuf, errlen, "listen_address '%s' is not an IPv4 or IPv6 address",
                 config->listen_address);
        return -1;
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot create socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 4096) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%u: %s", config->listen_address, config->port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        return 0;
    if (addr.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
}

/* The certificate and key as libmicrohttpd wants them: PEM text in memory. */
struct tls_files {
    char *cert;
    char *key;
};

static enum thou_status read_pem(const char *setting, const char *path, char **out, char *errbuf,
                                 size_t errlen)
{
    enum thou_status status = THOU_EINVAL;
    struct thou_buf text;
    thou_buf_init(&text);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot read %s '%s': %s", setting, path, strerror(errno));
        goto out;
    }
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            snprintf(errbuf, errlen, "cannot read %s '%s': %s", setting, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (text.len + (size_t)n > 1024 * 1024) {
            snprintf(errbuf, errlen, "%s '%s' is larger than 1 MiB", setting, path);
            goto out;
        }
        thou_buf_append(&text, chunk, (size_t)n);
    }
    if (!text.len || !memmem(text.data, text.len, "-----BEGIN ", 11)) {
        snprintf(errbuf, errlen, "%s '%s' holds no PEM data", setting, path);
        goto out;
    }
    *out = thou_buf_steal(&text, NULL);
    status = THOU_OK;
out:
    if (fd >= 0)
        close(fd);
    thou_buf_release(&text);
    return status;
}

static void tls_files_release(struct tls_files *tls)
{
    if (tls->key) {
        explicit_bzero(tls->key, strlen(tls->key));
        free(tls->key);
    }
    free(tls->cert);
    tls->cert = tls->key = NULL;
}

static struct MHD_Daemon *start_daemon(struct thou_server *server, const struct thou_config *config,
                                       const struct tls_files *tls)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (tls->cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL},
        {MHD_OPTION_LISTEN_SOCKET, server->listen_fd, NULL},
        /* thou counts connections itself, server-wide (connection_notify). */
        {MHD_OPTION_CONNECTION_LIMIT, config->max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, config->connection_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)config->connection_memory_bytes, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, server},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify, server},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        /* Without TLS the list ends here. */
        {tls->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, tls->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, access_handler, server, MHD_OPTION_ARRAY, options,
                            MHD_OPTION_END);
}

static enum thou_status loop_init(struct loop *loop, struct thou_server *server,
                                  const struct thou_config *config, const struct tls_files *tls)
{
    loop->server = server;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epoll_fd < 0 || loop->wake_fd < 0)
        return THOU_EIO;
    loop->daemon = start_daemon(server, config, tls);
    if (!loop->daemon)
        return tls->cert ? THOU_EINVAL : THOU_EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(loop->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        return THOU_EIO;
    struct epoll_event wake = {.events = EPOLLIN, .data.ptr = loop};
    struct epoll_event daemon = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &wake) != 0 ||
        epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, info->epoll_fd, &daemon) != 0)
        return THOU_EIO;
    return THOU_OK;
}

static void loop_release(struct loop *loop)
{
    if (loop->daemon) {
        /* Every daemon shares the listen socket: a quiesced daemon leaves
         * it open, and stop closes it once. */
        if (!loop->quiesced)
            MHD_quiesce_daemon(loop->daemon);
        MHD_stop_daemon(loop->daemon);
    }
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
}

static void server_free(struct thou_server *server)
{
    for (unsigned i = 0; i < server->n_loops; i++)
        loop_release(&server->loops[i]);
    if (server->listen_fd >= 0)
        close(server->listen_fd);
    for (size_t i = 0; i < IP_SLOTS; i++) {
        while (server->ips[i]) {
            struct ip_count *next = server->ips[i]->next;
            free(server->ips[i]);
            server->ips[i] = next;
        }
    }
    pthread_mutex_destroy(&server->ip_lock);
    free(server->loops);
    free(server);
}

enum thou_status thou_server_start(const struct thou_config *config, struct thou_router *router,
                                   struct thou_metrics *metrics, struct thou_server **out,
                                   char *errbuf, size_t errlen)
{
    enum thou_status status = THOU_EIO;
    struct tls_files tls = {0};
    struct thou_server *server = NULL;
    if (config->tls_cert && config->tls_cert[0]) {
        status = read_pem("tls_cert", config->tls_cert, &tls.cert, errbuf, errlen);
        if (!status)
            status = read_pem("tls_key", config->tls_key, &tls.key, errbuf, errlen);
        if (status)
            goto out;
        status = THOU_EIO;
    }
    raise_fd_limit(config->max_connections);
    int fd = open_listener(config, errbuf, errlen);
    if (fd < 0)
        goto out;
    server = thou_xcalloc(1, sizeof(*server));
    server->router = router;
    server->metrics = metrics;
    server->max_body_bytes = config->max_body_bytes;
    server->phase_ms[PHASE_HEAD] = (int64_t)config->header_timeout_s * 1000;
    server->phase_ms[PHASE_BODY] = (int64_t)config->body_timeout_s * 1000;
    server->keep_alive_ms = (int64_t)config->connection_timeout_s * 1000;
    server->max_connections = config->max_connections;
    server->max_per_ip = config->max_connections_per_ip;
    server->tls = tls.cert != NULL;
    server->listen_fd = fd;
    server->port = bound_port(fd);
    pthread_mutex_init(&server->ip_lock, NULL);
    if (thou_proxies_parse(config->trusted_proxies, &server->proxies, errbuf, errlen)) {
        status = THOU_EINVAL; /* the configuration was checked: this does not happen */
        goto out;
    }

    unsigned threads = config->threads;
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (unsigned)cores : 1;
    }
    server->loops = thou_xcalloc(threads, sizeof(*server->loops));
    for (unsigned i = 0; i < threads; i++) {
        server->loops[i].epoll_fd = server->loops[i].wake_fd = -1;
        server->n_loops = i + 1;
        status = loop_init(&server->loops[i], server, config, &tls);
        if (status == THOU_EINVAL) {
            snprintf(errbuf, errlen,
                     "cannot serve HTTPS with tls_cert '%s' and tls_key '%s': they are not a "
                     "valid certificate and the private key that matches it",
                     config->tls_cert, config->tls_key);
            goto out;
        }
        if (status) {
            snprintf(errbuf, errlen, "cannot start the HTTP server: %s", strerror(errno));
            goto out;
        }
    }
    atomic_init(&server->to_quiesce, threads);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&server->loops[i].thread, NULL, loop_main, &server->loops[i]) != 0) {
            snprintf(errbuf, errlen, "cannot start the HTTP server's threads");
            status = THOU_EIO;
            goto out;
        }
        server->loops[i].started = true;
    }
    *out = server;
    server = NULL;
    status = THOU_OK;
out:
    if (server) {
        atomic_store(&server->stopping, true);
        for (unsigned i = 0; i < server->n_loops; i++) {
            if (server->loops[i].started) {
                wake_loop(&server->loops[i]);
                pthread_join(server->loops[i].thread, NULL);
            }
        }
        server_free(server);
    }
    tls_files_release(&tls);
    return status;
}

unsigned thou_server_port(const struct thou_server *server)
{
    return server->port;
}

static void pause_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&pause, NULL);
}

void thou_server_quiesce(struct thou_server *server)
{
    /* Each daemon is quiesced by its own loop: libmicrohttpd's epoll set
     * belongs to the thread that runs it. */
    if (atomic_exchange(&server->quiescing, true))
        return;
    for (unsigned i = 0; i < server->n_loops; i++)
        wake_loop(&server->loops[i]);
    for (unsigned waited = 0; atomic_load(&server->to_quiesce) > 0 && waited < 5000; waited++)
        pause_ms(1);
}

void thou_server_stop(struct thou_server *server, unsigned timeout_ms)
{
    if (!server)
        return;
    thou_server_quiesce(server);
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(&server->in_flight) <= 0)
            break;
        pause_ms(10);
    }
    atomic_store(&server->stopping, true);
    for (unsigned i = 0; i < server->n_loops; i++)
        wake_loop(&server->loops[i]);
    for (unsigned i = 0; i < server->n_loops; i++)
        pthread_join(server->loops[i].thread, NULL);
    if (atomic_load(&server->in_flight) > 0) {
        /* A deferred answer still being made keeps its connection
         * suspended, and libmicrohttpd aborts when a daemon with suspended
         * connections stops: leave the daemons to the process's exit. */
        thou_log_warn("%d requests still in flight at shutdown",
                      (int)atomic_load(&server->in_flight));
        return;
    }
    server_free(server);
}
