#include "thou/server.h"
#include "thou/buf.h"
#include "thou/http1.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * An HTTP/1.1 server on a few epoll loops (one thread each). A connection
 * belongs to one loop for its life; other threads only ever hand it back to
 * its loop through the loop's ready queue (a deferred answer is ready, a
 * stream has frames), which costs one eventfd write per batch, not per
 * connection. Sockets are registered once, edge-triggered, for both
 * directions; nothing is re-armed per request.
 */

#define MAX_EVENTS        256
#define ACCEPTS_PER_WAKE  32
#define STREAM_READ_BYTES 16384
#define KEEP_OUT_BYTES    16384 /* an idle connection keeps at most this much output buffer */
#define DRAIN_BYTES       65536 /* read and dropped before closing after an early answer */
#define DRAIN_MS          2000
#define IP_SLOTS          1024

/* DESIGN §2: the page that does the crypto must load nothing from elsewhere
 * and run no inline script; libsodium.js needs 'wasm-unsafe-eval'. */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; "
    "connect-src 'self'; img-src 'self'; style-src 'self'; font-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n"
    "Permissions-Policy: camera=(), microphone=(), geolocation=(), interest-cohort=()\r\n";

enum conn_state {
    CS_READ,     /* reading a request head or body */
    CS_DEFERRED, /* waiting for a deferred answer */
    CS_WRITE,    /* writing a response (maybe a file) */
    CS_STREAM,   /* an open event stream */
    CS_DRAIN,    /* answered early; dropping input until the peer closes */
};

struct loop;

struct conn {
    int fd;
    struct loop *loop;
    enum conn_state state;
    bool readable;  /* the socket may hold unread bytes (edge-triggered) */
    bool writable;  /* the socket accepted the last write in full */
    bool peer_gone; /* hung up or reset */
    bool queued;    /* on loop->ready; guarded by loop->lock */
    bool dead;      /* closed while queued; freed when dequeued */
    bool suspended; /* a stream with nothing to send */
    bool close_after;
    bool head_only;
    bool chunked_out; /* the stream body is chunk-framed */
    bool body_done;
    bool too_big;
    bool counted;  /* counted in server->in_flight */
    bool rdhup;    /* the peer shut down its side */
    bool peer_eof; /* read the peer's FIN: what is buffered is all there will be */
    bool stream_ended;
    struct conn *next_ready;
    struct conn *prev, *next;         /* loop->idle: connections a timeout applies to */
    struct conn *all_prev, *all_next; /* loop->all: every open connection */
    uint64_t raw_body;                /* chunked body bytes read, kept or not */
    int64_t active_ms;
    struct sockaddr_storage peer;

    /* Input: raw bytes; the head of the request being read starts at 0. */
    char *in;
    size_t in_len, in_cap;
    /* The request being read or answered. */
    struct thou_http1_head head;
    struct thou_http1_chunked chunks;
    struct thou_buf body;
    struct timespec start;
    enum thou_method method;
    const char *route;
    unsigned status;
    struct thou_deferred *deferred;
    struct thou_stream *stream;
    /* Output. */
    struct thou_buf out;
    size_t out_sent;
    int file_fd;
    off_t file_off;
    uint64_t file_left;
};

struct loop {
    struct thou_server *server;
    pthread_t thread;
    int epoll_fd;
    int wake_fd;
    pthread_mutex_t lock; /* guards ready, queued and dead */
    struct conn *ready_head, *ready_tail;
    struct conn idle;     /* sentinel of the timeout list, oldest first */
    struct conn draining; /* sentinel of the drain list, oldest first */
    struct conn all;      /* sentinel of the list of open connections */
    time_t date_second;
    char date[40];
};

struct ip_count {
    struct sockaddr_storage addr;
    unsigned count;
    struct ip_count *next;
};

struct thou_server {
    struct thou_router *router;
    struct thou_metrics *metrics;
    size_t max_body_bytes;
    size_t max_head_bytes;
    unsigned max_connections;
    unsigned max_per_ip;
    int64_t timeout_ms;
    unsigned port;
    atomic_int listen_fd;
    atomic_bool stopping;
    atomic_int in_flight; /* requests that are not streams */
    atomic_uint connections;
    unsigned n_loops;
    struct loop *loops;
    pthread_mutex_t ip_lock;
    struct ip_count *ips[IP_SLOTS];
};

static _Thread_local struct loop *current_loop;

/* Wake-ups held back by thou_server_hold_wakes(), one per loop. */
#define MAX_HELD_WAKES 256
static _Thread_local struct {
    bool holding;
    size_t n;
    struct loop *loops[MAX_HELD_WAKES];
} held_wakes;

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- connections per address ----------------------------------------------- */

static size_t addr_key(const struct sockaddr_storage *addr, const void **bytes)
{
    if (addr->ss_family == AF_INET6) {
        *bytes = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        return 16;
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

/* Count a new connection from addr; false when its address is at the limit. */
static bool ip_take(struct thou_server *server, const struct sockaddr_storage *addr)
{
    size_t slot = ip_slot(addr);
    bool ok = true;
    pthread_mutex_lock(&server->ip_lock);
    struct ip_count *ip = server->ips[slot];
    while (ip && !same_ip(&ip->addr, addr))
        ip = ip->next;
    if (!ip) {
        ip = thou_xcalloc(1, sizeof(*ip));
        ip->addr = *addr;
        ip->next = server->ips[slot];
        server->ips[slot] = ip;
    }
    if (ip->count >= server->max_per_ip)
        ok = false;
    else
        ip->count++;
    pthread_mutex_unlock(&server->ip_lock);
    return ok;
}

static void ip_release(struct thou_server *server, const struct sockaddr_storage *addr)
{
    size_t slot = ip_slot(addr);
    pthread_mutex_lock(&server->ip_lock);
    struct ip_count **link = &server->ips[slot];
    while (*link && !same_ip(&(*link)->addr, addr))
        link = &(*link)->next;
    struct ip_count *ip = *link;
    if (ip && --ip->count == 0) {
        *link = ip->next;
        free(ip);
    }
    pthread_mutex_unlock(&server->ip_lock);
}

/* ---- deferred answers ------------------------------------------------------- */

static void queue_ready(struct conn *conn);

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
    /* Under the lock: the loop parks the connection under it too, so the
     * wake-up can neither come before the parking nor be lost. */
    pthread_mutex_lock(&deferred->lock);
    deferred->done = true;
    if (deferred->suspended) {
        deferred->suspended = false;
        queue_ready(deferred->conn);
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

/* ---- the ready queue ---------------------------------------------------------- */

static void wake_loop(struct loop *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter already means "wake up" */
}

/* Hand conn back to its loop; callable from any thread. */
static void queue_ready(struct conn *conn)
{
    struct loop *loop = conn->loop;
    bool was_empty = false;
    pthread_mutex_lock(&loop->lock);
    if (!conn->queued) {
        conn->queued = true;
        conn->next_ready = NULL;
        was_empty = loop->ready_head == NULL;
        if (loop->ready_tail)
            loop->ready_tail->next_ready = conn;
        else
            loop->ready_head = conn;
        loop->ready_tail = conn;
    }
    pthread_mutex_unlock(&loop->lock);
    /* The loop drains its queue before it sleeps: only another thread has to
     * wake it, and only when the queue was empty (else a wake is pending). */
    if (!was_empty || current_loop == loop)
        return;
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
    ((struct conn *)conn)->suspended = true;
}

void thou_server_resume(void *conn)
{
    queue_ready(conn);
}

/* ---- timeouts -------------------------------------------------------------------- */

static void idle_unlink(struct conn *conn)
{
    if (!conn->next)
        return;
    conn->prev->next = conn->next;
    conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
}

/* Reading or writing made progress: the timeout starts again. */
static void idle_touch(struct conn *conn)
{
    struct loop *loop = conn->loop;
    struct conn *list = conn->state == CS_DRAIN ? &loop->draining : &loop->idle;
    idle_unlink(conn);
    conn->active_ms = monotonic_ms();
    conn->prev = list->prev;
    conn->next = list;
    list->prev->next = conn;
    list->prev = conn;
}

/* ---- closing ---------------------------------------------------------------------- */

static void request_done(struct conn *conn);

static void conn_free(struct conn *conn)
{
    free(conn->in);
    thou_buf_release(&conn->body);
    thou_buf_release(&conn->out);
    free(conn);
}

static void conn_close(struct conn *conn)
{
    struct thou_server *server = conn->loop->server;
    if (conn->state == CS_DEFERRED) {
        /* The answer's producer still points here: keep the connection until
         * it is handed back, then close. */
        conn->peer_gone = true;
        idle_unlink(conn);
        return;
    }
    request_done(conn);
    if (conn->stream) {
        /* After free() the hub never resumes this connection again. */
        conn->stream->free(conn->stream);
        conn->stream = NULL;
    }
    if (conn->deferred) {
        deferred_free(conn->deferred);
        conn->deferred = NULL;
    }
    if (conn->file_fd >= 0)
        close(conn->file_fd);
    conn->file_fd = -1;
    idle_unlink(conn);
    conn->all_prev->all_next = conn->all_next;
    conn->all_next->all_prev = conn->all_prev;
    close(conn->fd);
    ip_release(server, &conn->peer);
    atomic_fetch_sub(&server->connections, 1);
    thou_metrics_connections(server->metrics, -1);
    pthread_mutex_lock(&conn->loop->lock);
    bool queued = conn->queued;
    conn->dead = true;
    pthread_mutex_unlock(&conn->loop->lock);
    if (!queued)
        conn_free(conn);
}

/* ---- responses ---------------------------------------------------------------------- */

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static const char *http_date(struct loop *loop)
{
    time_t now = time(NULL);
    if (now != loop->date_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(loop->date, sizeof(loop->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        loop->date_second = now;
    }
    return loop->date;
}

static void put_header(struct thou_buf *out, const char *name, const char *value)
{
    thou_buf_puts(out, name);
    thou_buf_puts(out, ": ");
    thou_buf_puts(out, value);
    thou_buf_puts(out, "\r\n");
}

static void put_number_header(struct thou_buf *out, const char *name, uint64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%llu", (unsigned long long)value);
    put_header(out, name, digits);
}

/* Serialize res into conn->out (a file body is sent after it); takes what
 * res owns. */
static void render_response(struct conn *conn, struct thou_response *res)
{
    struct thou_buf *out = &conn->out;
    if (res->status == 0)
        res->status = 500;
    conn->status = res->status;
    if (!conn->head.keep_alive || atomic_load(&conn->loop->server->stopping))
        conn->close_after = true;

    char line[64];
    snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", res->status, reason_phrase(res->status));
    thou_buf_puts(out, line);
    put_header(out, "Date", http_date(conn->loop));
    thou_buf_puts(out, security_headers);
    if (res->content_type)
        put_header(out, "Content-Type", res->content_type);
    if (res->etag[0])
        put_header(out, "ETag", res->etag);
    put_header(out, "Cache-Control", res->cache_control ? res->cache_control : "no-store");
    if (res->retry_after_s)
        put_number_header(out, "Retry-After", res->retry_after_s);
    if (res->allow)
        put_header(out, "Allow", res->allow);
    if (res->content_encoding)
        put_header(out, "Content-Encoding", res->content_encoding);
    if (res->vary)
        put_header(out, "Vary", res->vary);

    if (res->stream) {
        conn->chunked_out = conn->head.minor == 1;
        if (conn->chunked_out)
            thou_buf_puts(out, "Transfer-Encoding: chunked\r\n");
        else
            conn->close_after = true; /* HTTP/1.0: the body ends with the connection */
        thou_buf_puts(out, "X-Accel-Buffering: no\r\n\r\n");
        conn->stream = res->stream;
        conn->stream->conn = conn;
        res->stream = NULL;
        thou_response_release(res);
        return;
    }
    bool no_body = res->status == 304 || res->status == 204;
    uint64_t length = res->file_fd >= 0 ? res->file_size : res->body_len;
    if (!no_body)
        put_number_header(out, "Content-Length", length);
    if (conn->close_after)
        thou_buf_puts(out, "Connection: close\r\n");
    else if (conn->head.minor == 0)
        thou_buf_puts(out, "Connection: keep-alive\r\n"); /* 1.0 closes unless told */
    thou_buf_puts(out, "\r\n");
    if (!no_body && !conn->head_only) {
        if (res->file_fd >= 0) {
            conn->file_fd = res->file_fd;
            conn->file_off = 0;
            conn->file_left = res->file_size;
            res->file_fd = -1;
        } else if (res->body_len) {
            thou_buf_append(out, res->body, res->body_len);
        }
    }
    thou_response_release(res);
}

/* What a failed send() or sendfile() means for the connection. */
enum write_failure { WRITE_RETRY, WRITE_WAIT, WRITE_BROKEN };

static enum write_failure write_failed(struct conn *conn)
{
    if (errno == EINTR)
        return WRITE_RETRY;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->writable = false; /* the next EPOLLOUT edge says when */
        return WRITE_WAIT;
    }
    return WRITE_BROKEN;
}

/* Write what is pending. Returns false when the connection broke. */
static bool flush_out(struct conn *conn)
{
    while (conn->out_sent < conn->out.len) {
        ssize_t n = send(conn->fd, conn->out.data + conn->out_sent, conn->out.len - conn->out_sent,
                         MSG_NOSIGNAL);
        if (n < 0) {
            enum write_failure failure = write_failed(conn);
            if (failure == WRITE_RETRY)
                continue;
            return failure == WRITE_WAIT;
        }
        conn->out_sent += (size_t)n;
    }
    if (conn->out.cap > KEEP_OUT_BYTES)
        thou_buf_release(&conn->out);
    else
        thou_buf_reset(&conn->out);
    conn->out_sent = 0;
    while (conn->file_left > 0) {
        size_t want = conn->file_left > (1u << 20) ? (1u << 20) : (size_t)conn->file_left;
        ssize_t n = sendfile(conn->fd, conn->file_fd, &conn->file_off, want);
        if (n < 0) {
            enum write_failure failure = write_failed(conn);
            if (failure == WRITE_RETRY)
                continue;
            return failure == WRITE_WAIT;
        }
        if (n == 0)
            return false; /* the file shrank under us: the length sent is now a lie */
        conn->file_left -= (uint64_t)n;
    }
    if (conn->file_fd >= 0) {
        close(conn->file_fd);
        conn->file_fd = -1;
    }
    return true;
}

static bool out_pending(const struct conn *conn)
{
    return conn->out_sent < conn->out.len || conn->file_left > 0;
}

/* The request is over: log and count it once. */
static void request_done(struct conn *conn)
{
    if (!conn->counted)
        return;
    conn->counted = false;
    struct thou_server *server = conn->loop->server;
    double seconds = seconds_since(&conn->start);
    unsigned status = conn->status ? conn->status : 499; /* client went away before an answer */
    thou_metrics_request(server->metrics, conn->route, conn->method, status, seconds);
    thou_log_info("request method=%s route=%s status=%u ms=%.3f%s", thou_method_name(conn->method),
                  conn->route ? conn->route : "unmatched", status, seconds * 1000.0,
                  conn->stream ? " stream=1" : "");
    if (!conn->stream)
        atomic_fetch_sub(&server->in_flight, 1);
}

/* ---- requests ------------------------------------------------------------------------- */

/* Queue the answer; process() writes it. */
static void respond(struct conn *conn, struct thou_response *res)
{
    render_response(conn, res);
    conn->state = conn->stream ? CS_STREAM : CS_WRITE;
    if (conn->stream) {
        /* A stream is no request in flight: shutdown does not wait for it. */
        atomic_fetch_sub(&conn->loop->server->in_flight, 1);
        idle_unlink(conn); /* streams have no timeout; heartbeats find dead peers */
        free(conn->in);
        conn->in = NULL;
        conn->in_len = conn->in_cap = 0;
        thou_buf_release(&conn->body);
    }
}

static void respond_error(struct conn *conn, unsigned status, const char *code, const char *message)
{
    struct thou_response res;
    thou_response_init(&res);
    thou_response_error(&res, status, code, message);
    conn->head.keep_alive = false; /* the input can no longer be trusted to frame requests */
    respond(conn, &res);
}

static void finish_deferred(struct conn *conn)
{
    struct thou_deferred *deferred = conn->deferred;
    pthread_mutex_lock(&deferred->lock);
    if (!deferred->done) {
        deferred->conn = conn;
        deferred->suspended = true;
        conn->state = CS_DEFERRED;
        idle_unlink(conn); /* no timeout while the answer is being made */
        pthread_mutex_unlock(&deferred->lock);
        return;
    }
    pthread_mutex_unlock(&deferred->lock);
    conn->state = CS_WRITE;
    if (conn->peer_gone) {
        conn->close_after = true; /* nothing to send: process() closes */
        return;
    }
    struct thou_response res;
    thou_response_init(&res);
    deferred->finish(deferred, &res);
    respond(conn, &res);
}

static void dispatch(struct conn *conn)
{
    struct thou_server *server = conn->loop->server;
    struct thou_response res;
    thou_response_init(&res);
    char allow[64];

    if (conn->too_big) {
        conn->head.keep_alive = false;
        thou_response_error(&res, 413, "too_large", "the request body is larger than allowed");
        respond(conn, &res);
        return;
    }
    char *path = conn->head.path;
    struct thou_route_match match;
    enum thou_route_result found = thou_router_match(server->router, conn->method, path, &match);
    if (found == THOU_ROUTE_NOT_FOUND) {
        thou_response_error(&res, 404, "not_found", "no such resource");
        respond(conn, &res);
        return;
    }
    if (found == THOU_ROUTE_BAD_METHOD) {
        thou_router_allow_header(match.allowed, allow, sizeof(allow));
        res.allow = allow;
        thou_response_error(&res, 405, "method_not_allowed",
                            "this method is not allowed on this resource");
        respond(conn, &res);
        return;
    }
    conn->route = match.pattern;
    struct thou_request req = {
        .method = conn->method,
        .path = path,
        .route = match.pattern,
        .n_params = match.n_params,
        .content_type = conn->head.content_type,
        .authorization = conn->head.authorization,
        .last_event_id = conn->head.last_event_id,
        .if_none_match = conn->head.if_none_match,
        .accept_encoding = conn->head.accept_encoding,
        .body = conn->body.len ? conn->body.data : NULL,
        .body_len = conn->body.len,
        .conn = conn,
    };
    memcpy(req.params, match.params, sizeof(req.params));
    match.handler(match.ctx, &req, &res);
    if (!res.deferred) {
        respond(conn, &res);
        return;
    }
    conn->deferred = res.deferred;
    res.deferred = NULL;
    thou_response_release(&res);
    finish_deferred(conn);
}

/* A complete head is at the start of conn->in: start the request. Returns
 * false when it was answered at once (malformed). */
static bool start_request(struct conn *conn, enum thou_http1_error rc)
{
    struct thou_server *server = conn->loop->server;
    clock_gettime(CLOCK_MONOTONIC, &conn->start);
    conn->counted = true;
    atomic_fetch_add(&server->in_flight, 1);
    conn->status = 0;
    conn->route = NULL;
    conn->too_big = false;
    conn->body_done = false;
    conn->head_only = false;
    conn->raw_body = 0;
    conn->method = THOU_METHOD_OTHER;
    switch (rc) {
    case THOU_HTTP1_OK:
        break;
    case THOU_HTTP1_TOO_LARGE:
        respond_error(conn, 431, "headers_too_large", "the request head is larger than allowed");
        return false;
    case THOU_HTTP1_BAD_VERSION:
        respond_error(conn, 505, "bad_version", "only HTTP/1.0 and HTTP/1.1 are spoken here");
        return false;
    case THOU_HTTP1_NOT_IMPLEMENTED:
        respond_error(conn, 501, "not_implemented",
                      "only the chunked transfer coding is supported");
        return false;
    default:
        respond_error(conn, 400, "bad_request", "the request is not valid HTTP/1.1");
        return false;
    }
    conn->method = thou_method_parse(conn->head.method);
    conn->head_only = conn->method == THOU_METHOD_HEAD;
    thou_http1_unescape(conn->head.path);
    thou_buf_reset(&conn->body);
    if (conn->head.chunked)
        thou_http1_chunked_init(&conn->chunks);
    /* A declared body over the limit is refused before a byte of it is read. */
    if (conn->head.has_length && conn->head.content_length > server->max_body_bytes) {
        conn->too_big = true;
        conn->body_done = true;
        return true;
    }
    if (!conn->head.chunked && (!conn->head.has_length || conn->head.content_length == 0))
        conn->body_done = true;
    if (!conn->body_done && conn->head.expect_continue) {
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        thou_buf_append(&conn->out, go_on, sizeof(go_on) - 1);
        if (!flush_out(conn))
            conn->peer_gone = true;
    }
    return true;
}

/* Input after the head of the request being read. */
static char *body_input(struct conn *conn, size_t *len)
{
    *len = conn->in_len - conn->head.head_len;
    return conn->in + conn->head.head_len;
}

/* Drop n bytes of body input. */
static void consume_body_input(struct conn *conn, size_t n)
{
    size_t len;
    char *start = body_input(conn, &len);
    memmove(start, start + n, len - n);
    conn->in_len -= n;
}

/* Move body bytes from the input into conn->body. Returns false on a
 * malformed chunked body. */
static bool take_body(struct conn *conn)
{
    struct thou_server *server = conn->loop->server;
    size_t len;
    char *input = body_input(conn, &len);
    if (!conn->head.chunked) {
        uint64_t want = conn->head.content_length - conn->body.len;
        size_t n = len < want ? len : (size_t)want;
        thou_buf_append(&conn->body, input, n);
        consume_body_input(conn, n);
        conn->body_done = conn->body.len == conn->head.content_length;
        return true;
    }
    size_t used = 0, data = 0;
    int rc = thou_http1_chunked_decode(&conn->chunks, input, len, &used, &data);
    if (rc < 0)
        return false;
    /* A body that grows past the limit is read to its end but not kept. */
    if (!conn->too_big && conn->body.len + data <= server->max_body_bytes)
        thou_buf_append(&conn->body, input, data);
    else
        conn->too_big = true;
    conn->raw_body += used;
    consume_body_input(conn, used);
    conn->body_done = rc == 1;
    return true;
}

/* Parse and run whatever complete request the input holds. */
static void handle_input(struct conn *conn)
{
    struct thou_server *server = conn->loop->server;
    if (!conn->counted) {
        if (conn->in_len == 0)
            return;
        enum thou_http1_error rc =
            thou_http1_parse_head(conn->in, conn->in_len, server->max_head_bytes, &conn->head);
        if (rc == THOU_HTTP1_INCOMPLETE)
            return;
        if (!start_request(conn, rc))
            return;
    }
    if (!conn->body_done && !take_body(conn)) {
        respond_error(conn, 400, "bad_request", "the chunked request body is malformed");
        return;
    }
    if (!conn->body_done) {
        /* Even a body that is not kept has to end some time. */
        if (conn->raw_body > 2 * server->max_body_bytes + 65536) {
            conn->head.keep_alive = false;
            conn->too_big = true;
            dispatch(conn);
        }
        return;
    }
    if (conn->too_big && conn->head.has_length)
        conn->head.keep_alive = false; /* its body follows, unread */
    dispatch(conn);
}

/* The head's strings point into conn->in; follow the buffer when it moves. */
static void grow_input(struct conn *conn, size_t cap)
{
    const char **strings[] = {&conn->head.method,        &conn->head.content_type,
                              &conn->head.authorization, &conn->head.last_event_id,
                              &conn->head.if_none_match, &conn->head.accept_encoding};
    enum { N_STRINGS = sizeof(strings) / sizeof(strings[0]) };
    size_t offsets[N_STRINGS], path = 0;
    bool rebase = conn->counted && conn->head.head_len;
    if (rebase) {
        for (size_t i = 0; i < N_STRINGS; i++)
            offsets[i] = *strings[i] ? (size_t)(*strings[i] - conn->in) : 0;
        path = conn->head.path ? (size_t)(conn->head.path - conn->in) : 0;
    }
    conn->in = thou_xrealloc(conn->in, cap);
    conn->in_cap = cap;
    if (rebase) {
        for (size_t i = 0; i < N_STRINGS; i++)
            if (*strings[i])
                *strings[i] = conn->in + offsets[i];
        if (conn->head.path)
            conn->head.path = conn->in + path;
    }
}

/* Read until the socket is empty or the buffer holds as much as is useful
 * at once. Returns false when the peer closed or the connection broke. */
static bool read_input(struct conn *conn)
{
    struct thou_server *server = conn->loop->server;
    /* A head has to fit its limit; body input is consumed as it comes. */
    size_t limit = conn->counted ? conn->head.head_len + 65536 : server->max_head_bytes;
    while (conn->readable && conn->in_len < limit) {
        if (conn->in_cap - conn->in_len < 1024) {
            size_t cap = conn->in_cap ? conn->in_cap * 2 : 2048;
            grow_input(conn, cap > limit + 1 ? limit + 1 : cap);
        }
        size_t room = conn->in_cap - conn->in_len - 1; /* one byte for a NUL */
        if (room > limit - conn->in_len)
            room = limit - conn->in_len;
        ssize_t n = recv(conn->fd, conn->in + conn->in_len, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn->readable = false;
                return true;
            }
            return false;
        }
        if (n == 0) {
            conn->peer_eof = true;
            conn->readable = false;
            return true;
        }
        conn->in_len += (size_t)n;
        conn->in[conn->in_len] = '\0';
        /* A short read emptied the socket; the next byte brings a new edge
         * (unless the peer's FIN came with the data: then read to the end). */
        if ((size_t)n < room && !conn->rdhup)
            conn->readable = false;
    }
    return true;
}

/* The request was answered: drop its head and body for the next one. */
static void reset_request(struct conn *conn)
{
    if (conn->head.head_len) {
        memmove(conn->in, conn->in + conn->head.head_len, conn->in_len - conn->head.head_len);
        conn->in_len -= conn->head.head_len;
        conn->head.head_len = 0;
    }
    if (conn->in_len == 0 && conn->in_cap > 4096) {
        free(conn->in);
        conn->in = NULL;
        conn->in_cap = 0;
    }
    if (conn->body.cap > KEEP_OUT_BYTES)
        thou_buf_release(&conn->body);
    else
        thou_buf_reset(&conn->body);
    if (conn->deferred) {
        deferred_free(conn->deferred);
        conn->deferred = NULL;
    }
}

/* Pull what the stream has and frame it. Returns false when it ended. */
static bool pump_stream(struct conn *conn)
{
    char buf[STREAM_READ_BYTES];
    while (!conn->suspended && conn->out.len < 4 * STREAM_READ_BYTES) {
        ssize_t n = conn->stream->read(conn->stream, buf, sizeof(buf));
        if (n < 0) {
            if (conn->chunked_out)
                thou_buf_puts(&conn->out, "0\r\n\r\n");
            return false;
        }
        if (n == 0)
            break; /* the stream suspended itself */
        if (conn->chunked_out) {
            char size[24];
            snprintf(size, sizeof(size), "%zx\r\n", (size_t)n);
            thou_buf_puts(&conn->out, size);
        }
        thou_buf_append(&conn->out, buf, (size_t)n);
        if (conn->chunked_out)
            thou_buf_puts(&conn->out, "\r\n");
    }
    return true;
}

/* Write pending output. Returns false when the connection broke; true with
 * output still pending when the socket is full. */
static bool write_pending(struct conn *conn)
{
    if (!out_pending(conn) || !conn->writable)
        return true;
    return flush_out(conn);
}

static void after_response(struct conn *conn)
{
    request_done(conn);
    reset_request(conn);
    if (conn->close_after) {
        /* Perhaps answered before the whole request was read (a 413, a
         * 400): stop sending, then drop what still comes, so the answer is
         * not lost to a reset. */
        shutdown(conn->fd, SHUT_WR);
        conn->state = CS_DRAIN;
        idle_touch(conn);
        return;
    }
    conn->state = CS_READ;
}

/* Advance the connection as far as it can go without waiting. */
static void process(struct conn *conn)
{
    for (;;) {
        switch (conn->state) {
        case CS_READ:
            if (conn->peer_gone || !read_input(conn)) {
                conn_close(conn);
                return;
            }
            idle_touch(conn);
            handle_input(conn);
            if (conn->state == CS_READ && conn->peer_eof) {
                conn_close(conn); /* no complete request left, and none can come */
                return;
            }
            if (conn->state == CS_READ && !conn->readable)
                return;
            continue;
        case CS_DEFERRED:
            return;
        case CS_WRITE:
            if (!write_pending(conn)) {
                conn_close(conn);
                return;
            }
            if (out_pending(conn)) {
                idle_touch(conn);
                return;
            }
            after_response(conn);
            continue;
        case CS_STREAM:
            if (conn->peer_gone || !write_pending(conn)) {
                conn_close(conn);
                return;
            }
            if (out_pending(conn))
                return; /* the socket is full: go on when it drains */
            if (conn->stream_ended) {
                conn_close(conn);
                return;
            }
            if (conn->suspended)
                return;
            if (!pump_stream(conn))
                conn->stream_ended = true;
            continue;
        case CS_DRAIN: {
            char sink[4096];
            for (size_t total = 0; total < DRAIN_BYTES;) {
                ssize_t n = recv(conn->fd, sink, sizeof(sink), 0);
                if (n == 0 ||
                    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    conn_close(conn);
                    return;
                }
                if (n < 0)
                    return;
                total += (size_t)n;
            }
            return;
        }
        }
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void accept_some(struct loop *loop)
{
    struct thou_server *server = loop->server;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int listen_fd = atomic_load(&server->listen_fd);
        if (listen_fd < 0)
            return;
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd =
            accept4(listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: another loop took it, or nothing is left */
        if (atomic_fetch_add(&server->connections, 1) >= server->max_connections) {
            atomic_fetch_sub(&server->connections, 1);
            close(fd);
            continue;
        }
        if (!ip_take(server, &peer)) {
            atomic_fetch_sub(&server->connections, 1);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *conn = thou_xcalloc(1, sizeof(*conn));
        conn->fd = fd;
        conn->loop = loop;
        conn->state = CS_READ;
        conn->writable = true;
        conn->file_fd = -1;
        conn->peer = peer;
        thou_buf_init(&conn->body);
        thou_buf_init(&conn->out);
        thou_metrics_connections(server->metrics, 1);
        conn->all_prev = loop->all.all_prev;
        conn->all_next = &loop->all;
        loop->all.all_prev->all_next = conn;
        loop->all.all_prev = conn;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = conn};
        if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(conn);
            continue;
        }
        idle_touch(conn);
    }
}

static void drain_ready(struct loop *loop)
{
    for (;;) {
        pthread_mutex_lock(&loop->lock);
        struct conn *list = loop->ready_head;
        loop->ready_head = loop->ready_tail = NULL;
        for (struct conn *c = list; c; c = c->next_ready)
            c->queued = false;
        pthread_mutex_unlock(&loop->lock);
        if (!list)
            return;
        while (list) {
            struct conn *conn = list;
            list = conn->next_ready;
            if (conn->dead) {
                conn_free(conn);
                continue;
            }
            if (conn->state == CS_DEFERRED) {
                finish_deferred(conn);
                if (conn->state != CS_DEFERRED)
                    process(conn);
            } else if (conn->state == CS_STREAM) {
                conn->suspended = false; /* resumed: it has something to say */
                process(conn);
            }
        }
    }
}

static void expire_idle(struct loop *loop)
{
    int64_t now = monotonic_ms();
    while (loop->idle.next != &loop->idle &&
           now - loop->idle.next->active_ms >= loop->server->timeout_ms)
        conn_close(loop->idle.next);
    while (loop->draining.next != &loop->draining &&
           now - loop->draining.next->active_ms >= DRAIN_MS)
        conn_close(loop->draining.next);
}

static void *loop_main(void *arg)
{
    struct loop *loop = arg;
    struct thou_server *server = loop->server;
    current_loop = loop;
    pthread_setname_np(pthread_self(), "thou-http"); /* for top -H and profiles */
    struct epoll_event events[MAX_EVENTS];
    int64_t last_expiry = monotonic_ms();
    while (!atomic_load(&server->stopping)) {
        int n = epoll_wait(loop->epoll_fd, events, MAX_EVENTS, 1000);
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == loop) {
                uint64_t count;
                ssize_t r = read(loop->wake_fd, &count, sizeof(count));
                (void)r;
                continue;
            }
            if (ptr == server) {
                accept_some(loop);
                continue;
            }
            struct conn *conn = ptr;
            uint32_t e = events[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP))
                conn->readable = true;
            if (e & EPOLLRDHUP)
                conn->rdhup = true;
            if (e & EPOLLOUT)
                conn->writable = true;
            if (e & (EPOLLERR | EPOLLHUP))
                conn->peer_gone = true;
            /* A stream never reads: a half-close from its peer means gone. */
            if ((e & EPOLLRDHUP) && conn->state == CS_STREAM)
                conn->peer_gone = true;
            process(conn);
        }
        drain_ready(loop);
        int64_t now = monotonic_ms();
        if (now - last_expiry >= 1000) {
            expire_idle(loop);
            last_expiry = now;
        }
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------------- */

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

/* Bind and listen ourselves so a port in use is reported plainly. */
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

static enum thou_status loop_init(struct loop *loop, struct thou_server *server, int listen_fd)
{
    loop->server = server;
    loop->idle.prev = loop->idle.next = &loop->idle;
    loop->draining.prev = loop->draining.next = &loop->draining;
    loop->all.all_prev = loop->all.all_next = &loop->all;
    pthread_mutex_init(&loop->lock, NULL);
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epoll_fd < 0 || loop->wake_fd < 0)
        return THOU_EIO;
    struct epoll_event wake = {.events = EPOLLIN, .data.ptr = loop};
    /* EPOLLEXCLUSIVE: one loop wakes per new connection, not all of them. */
    struct epoll_event listen = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = server};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &wake) != 0 ||
        epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen) != 0)
        return THOU_EIO;
    return THOU_OK;
}

static void loop_release(struct loop *loop)
{
    /* Close what is left; connections still waiting for a deferred answer
     * are left to their producer (the stop timeout passed without it). */
    struct conn *conn = loop->all.all_next;
    while (conn != &loop->all) {
        struct conn *next = conn->all_next;
        conn_close(conn);
        conn = next;
    }
    drain_ready(loop);
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    pthread_mutex_destroy(&loop->lock);
}

enum thou_status thou_server_start(const struct thou_config *config, struct thou_router *router,
                                   struct thou_metrics *metrics, struct thou_server **out,
                                   char *errbuf, size_t errlen)
{
    raise_fd_limit(config->max_connections);
    int fd = open_listener(config, errbuf, errlen);
    if (fd < 0)
        return THOU_EIO;
    struct thou_server *server = thou_xcalloc(1, sizeof(*server));
    server->router = router;
    server->metrics = metrics;
    server->max_body_bytes = config->max_body_bytes;
    server->max_head_bytes = config->connection_memory_bytes;
    server->max_connections = config->max_connections;
    server->max_per_ip = config->max_connections_per_ip;
    server->timeout_ms = (int64_t)config->connection_timeout_s * 1000;
    server->port = bound_port(fd);
    atomic_init(&server->listen_fd, fd);
    pthread_mutex_init(&server->ip_lock, NULL);

    unsigned threads = config->threads;
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (unsigned)cores : 1;
    }
    server->loops = thou_xcalloc(threads, sizeof(*server->loops));
    for (unsigned i = 0; i < threads; i++) {
        server->loops[i].epoll_fd = server->loops[i].wake_fd = -1;
        if (loop_init(&server->loops[i], server, fd) != THOU_OK) {
            snprintf(errbuf, errlen, "cannot start the HTTP server: %s", strerror(errno));
            server->n_loops = i + 1;
            goto fail;
        }
        server->n_loops = i + 1;
    }
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&server->loops[i].thread, NULL, loop_main, &server->loops[i]) != 0) {
            snprintf(errbuf, errlen, "cannot start the HTTP server's threads");
            atomic_store(&server->stopping, true);
            for (unsigned j = 0; j < i; j++) {
                wake_loop(&server->loops[j]);
                pthread_join(server->loops[j].thread, NULL);
            }
            goto fail;
        }
    }
    *out = server;
    return THOU_OK;
fail:
    for (unsigned i = 0; i < server->n_loops; i++)
        loop_release(&server->loops[i]);
    close(fd);
    free(server->loops);
    pthread_mutex_destroy(&server->ip_lock);
    free(server);
    return THOU_EIO;
}

unsigned thou_server_port(const struct thou_server *server)
{
    return server->port;
}

void thou_server_quiesce(struct thou_server *server)
{
    int fd = atomic_exchange(&server->listen_fd, -1);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < server->n_loops; i++)
        epoll_ctl(server->loops[i].epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

void thou_server_stop(struct thou_server *server, unsigned timeout_ms)
{
    if (!server)
        return;
    thou_server_quiesce(server);
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(&server->in_flight) <= 0)
            break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    atomic_store(&server->stopping, true);
    atomic_store(&server->in_flight, 0); /* what is still in flight now is abandoned */
    for (unsigned i = 0; i < server->n_loops; i++)
        wake_loop(&server->loops[i]);
    for (unsigned i = 0; i < server->n_loops; i++)
        pthread_join(server->loops[i].thread, NULL);
    for (unsigned i = 0; i < server->n_loops; i++)
        loop_release(&server->loops[i]);
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
