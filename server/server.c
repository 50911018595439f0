#include "thou/server.h"
#include "thou/text.h"
#include "thou/buf.h"
#include "thou/log.h"
#include "thou/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* DESIGN §2: the page that does the crypto must load nothing from elsewhere
 * and run no inline script; libsodium.js needs 'wasm-unsafe-eval'. */
static const char content_security_policy[] =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; "
    "img-src 'self'; style-src 'self'; font-src 'self'; manifest-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct thou_server {
    struct MHD_Daemon *daemon;
    struct thou_router *router;
    struct thou_metrics *metrics;
    size_t max_body_bytes;
    unsigned port;
    atomic_int in_flight; /* requests that are not streams */
};

/* Per-request state, made on the first call of the access handler and
 * freed only in the request-completed callback. */
struct request_state {
    struct timespec start;
    struct thou_buf body;
    bool too_big;
    bool streaming;
    unsigned status;
    enum thou_method method;
    const char *route;
    struct thou_deferred *deferred; /* an answer being prepared elsewhere */
};

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
        MHD_resume_connection(deferred->conn);
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

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void add_common_headers(struct MHD_Response *response)
{
    MHD_add_response_header(response, "Content-Security-Policy", content_security_policy);
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    MHD_add_response_header(response, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(response, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(response, "Permissions-Policy",
                            "camera=(), microphone=(), geolocation=(), interest-cohort=()");
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct thou_stream *stream = cls;
    ssize_t n = stream->read(stream, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void stream_free(void *cls)
{
    struct thou_stream *stream = cls;
    stream->free(stream);
}

/* Turn a filled thou_response into an MHD response; takes what it owns. */
static struct MHD_Response *make_mhd_response(struct thou_response *res,
                                              struct MHD_Connection *connection)
{
    struct MHD_Response *response;
    if (res->stream) {
        res->stream->conn = connection;
        /* Small blocks: an idle stream holds its buffer for hours, and
         * frames are small; a backlog just takes more rounds. */
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_reader,
                                                     res->stream, stream_free);
        if (response)
            res->stream = NULL;
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
    if (!response)
        return NULL;
    add_common_headers(response);
    if (res->content_type)
        MHD_add_response_header(response, "Content-Type", res->content_type);
    if (res->etag[0])
        MHD_add_response_header(response, "ETag", res->etag);
    MHD_add_response_header(response, "Cache-Control",
                            res->cache_control ? res->cache_control : "no-store");
    if (res->retry_after_s) {
        char value[16];
        snprintf(value, sizeof(value), "%u", res->retry_after_s);
        MHD_add_response_header(response, "Retry-After", value);
    }
    if (res->allow)
        MHD_add_response_header(response, "Allow", res->allow);
    return response;
}

static enum MHD_Result send_response(struct MHD_Connection *connection, struct request_state *rs,
                                     struct thou_response *res)
{
    if (res->status == 0)
        res->status = 500;
    rs->status = res->status;
    rs->streaming = res->stream != NULL;
    struct MHD_Response *response = make_mhd_response(res, connection);
    thou_response_release(res);
    if (!response)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(connection, rs->status, response);
    MHD_destroy_response(response);
    return ret;
}

/* Send the deferred answer if it is ready, else suspend until it is. */
static enum MHD_Result finish_deferred(struct MHD_Connection *connection, struct request_state *rs)
{
    struct thou_deferred *deferred = rs->deferred;
    pthread_mutex_lock(&deferred->lock);
    if (!deferred->done) {
        deferred->conn = connection;
        deferred->suspended = true;
        MHD_suspend_connection(connection);
        pthread_mutex_unlock(&deferred->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&deferred->lock);
    struct thou_response res;
    thou_response_init(&res);
    deferred->finish(deferred, &res);
    return send_response(connection, rs, &res);
}

static const char *lookup_header(struct MHD_Connection *connection, const char *name)
{
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

static enum MHD_Result dispatch(struct thou_server *server, struct MHD_Connection *connection,
                                struct request_state *rs, const char *url)
{
    struct thou_response res;
    thou_response_init(&res);
    char allow[64];

    if (rs->too_big) {
        thou_response_error(&res, 413, "too_large", "the request body is larger than allowed");
        return send_response(connection, rs, &res);
    }
    /* On the stack: captures are needed only while the handler runs, and a
     * stream's request state lives as long as the stream. */
    struct thou_route_match match;
    enum thou_route_result found = thou_router_match(server->router, rs->method, url, &match);
    if (found == THOU_ROUTE_NOT_FOUND) {
        thou_response_error(&res, 404, "not_found", "no such resource");
        return send_response(connection, rs, &res);
    }
    if (found == THOU_ROUTE_BAD_METHOD) {
        thou_router_allow_header(match.allowed, allow, sizeof(allow));
        res.allow = allow;
        thou_response_error(&res, 405, "method_not_allowed",
                            "this method is not allowed on this resource");
        return send_response(connection, rs, &res);
    }
    rs->route = match.pattern;

    struct thou_request req = {
        .method = rs->method,
        .path = url,
        .route = match.pattern,
        .n_params = match.n_params,
        .content_type = lookup_header(connection, "Content-Type"),
        .authorization = lookup_header(connection, "Authorization"),
        .last_event_id = lookup_header(connection, "Last-Event-ID"),
        .if_none_match = lookup_header(connection, "If-None-Match"),
        .body = rs->body.data,
        .body_len = rs->body.len,
        .conn = connection,
    };
    memcpy(req.params, match.params, sizeof(req.params));
    match.handler(match.ctx, &req, &res);
    if (!res.deferred)
        return send_response(connection, rs, &res);
    rs->deferred = res.deferred;
    res.deferred = NULL;
    thou_response_release(&res);
    return finish_deferred(connection, rs);
}

/* A declared body over the limit is refused before a byte of it is read. */
static bool declared_too_big(struct MHD_Connection *connection, size_t limit)
{
    const char *length = lookup_header(connection, "Content-Length");
    if (!length)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(length, &end, 10);
    return errno != 0 || end == length || n > limit;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    struct thou_server *server = cls;
    struct request_state *rs = *req_cls;

    if (!rs) {
        rs = thou_xcalloc(1, sizeof(*rs));
        clock_gettime(CLOCK_MONOTONIC, &rs->start);
        thou_buf_init(&rs->body);
        rs->method = thou_method_parse(method);
        *req_cls = rs;
        atomic_fetch_add(&server->in_flight, 1);
        if (declared_too_big(connection, server->max_body_bytes)) {
            rs->too_big = true;
            return dispatch(server, connection, rs, url);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_big && rs->body.len + *upload_data_size <= server->max_body_bytes)
            thou_buf_append(&rs->body, upload_data, *upload_data_size);
        else
            rs->too_big = true;
        *upload_data_size = 0;
        /* A chunked body that grows past the limit is read to its end but
         * never buffered (libmicrohttpd cannot answer mid-upload); the 413
         * goes out on the final call. */
        return MHD_YES;
    }
    if (rs->deferred)
        return finish_deferred(connection, rs); /* resumed: the answer is ready */
    return dispatch(server, connection, rs, url);
}

static void request_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct thou_server *server = cls;
    struct request_state *rs = *req_cls;
    if (!rs)
        return;
    double seconds = seconds_since(&rs->start);
    unsigned status = rs->status ? rs->status : 499; /* client went away before an answer */
    const char *route = rs->route ? rs->route : "unmatched";
    thou_metrics_request(server->metrics, rs->route, rs->method, status, seconds);
    thou_log_info("request method=%s route=%s status=%u ms=%.3f%s", thou_method_name(rs->method),
                  route, status, seconds * 1000.0, rs->streaming ? " stream=1" : "");
    atomic_fetch_sub(&server->in_flight, 1);
    if (rs->deferred)
        deferred_free(rs->deferred);
    thou_buf_release(&rs->body);
    free(rs);
    *req_cls = NULL;
}

static void connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct thou_server *server = cls;
    thou_metrics_connections(server->metrics, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* Percent-decode in place. An escape that would produce a control byte
 * (%00 above all) is left encoded, so it can neither truncate the path nor
 * reach a file name; static files refuse any '%' that remains. */
static size_t unescape(void *cls, struct MHD_Connection *connection, char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        int hi, lo;
        if (in[0] == '%' && (hi = thou_hex_value(in[1])) >= 0 &&
            (lo = thou_hex_value(in[2])) >= 0) {
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
    if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 1024) != 0) {
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
    server->port = bound_port(fd);

    unsigned threads = config->threads;
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (unsigned)cores : 1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, access_handler, server, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, config->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        config->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, config->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, config->connection_memory_bytes,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, server, MHD_OPTION_NOTIFY_CONNECTION,
        connection_notify, server, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!server->daemon) {
        snprintf(errbuf, errlen, "cannot start the HTTP server on %s:%u", config->listen_address,
                 server->port);
        close(fd);
        free(server);
        return THOU_EIO;
    }
    *out = server;
    return THOU_OK;
}

unsigned thou_server_port(const struct thou_server *server)
{
    return server->port;
}

void thou_server_quiesce(struct thou_server *server)
{
    MHD_socket fd = MHD_quiesce_daemon(server->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void thou_server_stop(struct thou_server *server, unsigned timeout_ms)
{
    if (!server)
        return;
    long open_streams = thou_metrics_open_streams(server->metrics);
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        /* Streams still being torn down count as in flight until freed. */
        if (atomic_load(&server->in_flight) <= open_streams)
            break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        open_streams = thou_metrics_open_streams(server->metrics);
    }
    MHD_stop_daemon(server->daemon);
    free(server);
}

void thou_server_suspend(void *conn)
{
    MHD_suspend_connection(conn);
}

void thou_server_resume(void *conn)
{
    MHD_resume_connection(conn);
}
