/*
 * thou's own HTTP/1.1 server over raw sockets: keep-alive, pipelining,
 * 100-continue, the refusals (400, 413, 431, 501, 505) and what happens to
 * the connection after them, Host, HTTP/1.0 and its keep-alive, HEAD, the
 * idle timeout, the connection limits, and event streams (chunked, exempt
 * from the timeout, counted down when the client leaves).
 *
 * libcurl hides framing, so these tests speak HTTP themselves: a tiny
 * blocking client below, every wait bounded by a deadline, loopback only.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define IO_TIMEOUT_MS    5000 /* the longest any single answer may take */
#define CLOSE_TIMEOUT_MS 5000 /* the longest a close the server owes may take */
#define MAX_PEERS        24
#define PEER_BUF         (256 * 1024)

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

/* ---- the server ---------------------------------------------------------------- */

static struct thou_proc proc;
static bool proc_running;
static struct http_reply reply; /* the last libcurl reply; the teardown frees it too */

static unsigned start(const char *const *extra)
{
    ck_assert_msg(!proc_running, "one server per test");
    proc_start(&proc, extra);
    proc_running = true;
    return proc.port;
}

/* ---- a raw client ---------------------------------------------------------------- */

struct peer {
    int fd;
    char *buf; /* received, not yet consumed; NUL after the last byte */
    size_t len;
    bool eof; /* the server closed (or reset) the connection */
};

static struct peer peers[MAX_PEERS];

static void peers_init(void)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peers[i].fd = -1;
        peers[i].buf = NULL;
        peers[i].len = 0;
        peers[i].eof = false;
    }
}

static void peer_close(struct peer *peer)
{
    if (peer->fd >= 0)
        close(peer->fd);
    peer->fd = -1;
    free(peer->buf);
    peer->buf = NULL;
    peer->len = 0;
    peer->eof = false;
}

/* Connect to 127.0.0.1:port; the TCP handshake completes even when the
 * server will refuse the connection at once. */
static struct peer *peer_open(unsigned port)
{
    struct peer *peer = NULL;
    for (int i = 0; i < MAX_PEERS && !peer; i++)
        if (peers[i].fd < 0 && !peers[i].buf)
            peer = &peers[i];
    ck_assert_msg(peer != NULL, "too many connections in one test");
    peer->buf = calloc(1, PEER_BUF + 1);
    ck_assert_ptr_nonnull(peer->buf);
    peer->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(peer->fd, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
    setsockopt(peer->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(peer->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(peer->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ck_assert_msg(connect(peer->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0, "connect: %s",
                  strerror(errno));
    return peer;
}

/* Send everything; false when the connection broke (the server closed it). */
static bool peer_try_send(struct peer *peer, const void *data, size_t len)
{
    const char *p = data;
    long long deadline = now_ms() + IO_TIMEOUT_MS;
    while (len > 0) {
        struct pollfd pfd = {peer->fd, POLLOUT, 0};
        int wait = (int)(deadline - now_ms());
        if (wait <= 0 || poll(&pfd, 1, wait) <= 0)
            return false;
        ssize_t n = send(peer->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void peer_send(struct peer *peer, const void *data, size_t len)
{
    ck_assert_msg(peer_try_send(peer, data, len), "send: %s", strerror(errno));
}

static void peer_sends(struct peer *peer, const char *text)
{
    peer_send(peer, text, strlen(text));
}

/* Read what arrives before deadline: 1 got bytes, 0 deadline passed, -1 the
 * server closed. */
static int peer_fill(struct peer *peer, long long deadline)
{
    if (peer->eof)
        return -1;
    for (;;) {
        int wait = (int)(deadline - now_ms());
        if (wait <= 0)
            return 0;
        struct pollfd pfd = {peer->fd, POLLIN, 0};
        int ready = poll(&pfd, 1, wait);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return 0;
        ck_assert_msg(peer->len < PEER_BUF, "the server sent more than %d bytes", PEER_BUF);
        ssize_t n = recv(peer->fd, peer->buf + peer->len, PEER_BUF - peer->len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            peer->eof = true; /* FIN, or a reset */
            return -1;
        }
        peer->len += (size_t)n;
        peer->buf[peer->len] = '\0';
        return 1;
    }
}

static void peer_consume(struct peer *peer, size_t n)
{
    memmove(peer->buf, peer->buf + n, peer->len - n);
    peer->len -= n;
    peer->buf[peer->len] = '\0';
}

/* Wait up to ms for the server to close; what it sends meanwhile stays in buf. */
static bool peer_closed_within(struct peer *peer, int ms)
{
    long long deadline = now_ms() + ms;
    while (!peer->eof && peer_fill(peer, deadline) != 0) {
    }
    return peer->eof;
}

/* No heap in here: a failed assertion (no fork) leaks nothing. */
struct response {
    int status;
    char head[8192]; /* status line and fields, NUL-terminated */
    char body[16384];
    size_t body_len;
};

/* The string at body.key (or body.key.inner) of a JSON body, copied into
 * out; false when the body is no JSON or has no such string. */
static bool json_field(const struct response *res, const char *key, const char *inner, char *out,
                       size_t len)
{
    json_t *root = json_loadb(res->body, res->body_len, 0, NULL);
    const json_t *value = json_object_get(root, key);
    if (inner)
        value = json_object_get(value, inner);
    bool found = json_is_string(value);
    if (found)
        snprintf(out, len, "%s", json_string_value(value));
    json_decref(root);
    return found;
}

/* A field's value, copied into out; false when the response has no such field. */
static bool response_header(const struct response *res, const char *name, char *out, size_t len)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(res->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *field = line + 2;
        if (strncasecmp(field, name, name_len) != 0 || field[name_len] != ':')
            continue;
        const char *value = field + name_len + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        const char *end = strstr(value, "\r\n");
        size_t n = end ? (size_t)(end - value) : strlen(value);
        snprintf(out, len, "%.*s", (int)n, value);
        return true;
    }
    return false;
}

enum framing {
    FRAME_AUTO,      /* Content-Length, else chunked head only, else up to EOF */
    FRAME_HEAD_ONLY, /* a HEAD answer or a stream: no body is read */
};

/* Read one response. false when it did not arrive whole within IO_TIMEOUT_MS. */
static bool peer_response(struct peer *peer, struct response *res, enum framing framing)
{
    memset(res, 0, sizeof(*res));
    long long deadline = now_ms() + IO_TIMEOUT_MS;
    char *end = strstr(peer->buf, "\r\n\r\n");
    while (!end) {
        if (peer_fill(peer, deadline) <= 0)
            return false;
        end = strstr(peer->buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - peer->buf) + 4;
    ck_assert_uint_lt(head_len, sizeof(res->head));
    memcpy(res->head, peer->buf, head_len);
    res->head[head_len] = '\0';
    peer_consume(peer, head_len);
    ck_assert_msg(strncmp(res->head, "HTTP/1.1 ", 9) == 0, "not an HTTP/1.1 status line: %s",
                  res->head);
    res->status = (int)strtol(res->head + 9, NULL, 10);

    char value[64];
    bool no_body = framing == FRAME_HEAD_ONLY || res->status / 100 == 1 || res->status == 204 ||
                   res->status == 304;
    size_t want = 0;
    if (no_body) {
        want = 0;
    } else if (response_header(res, "Content-Length", value, sizeof(value))) {
        want = (size_t)strtoull(value, NULL, 10);
        ck_assert_uint_le(want, PEER_BUF);
        while (peer->len < want)
            if (peer_fill(peer, deadline) <= 0)
                return false;
    } else if (response_header(res, "Transfer-Encoding", value, sizeof(value))) {
        want = 0; /* a stream: the caller reads it */
    } else {
        while (peer_fill(peer, deadline) > 0) {
        }
        if (!peer->eof)
            return false;
        want = peer->len;
    }
    ck_assert_uint_lt(want, sizeof(res->body));
    memcpy(res->body, peer->buf, want);
    res->body[want] = '\0';
    res->body_len = want;
    peer_consume(peer, want);
    return true;
}

/* Read one response and check its status. */
static void expect_response(struct peer *peer, struct response *res, enum framing framing,
                            int status)
{
    ck_assert_msg(peer_response(peer, res, framing), "no whole response within %d ms; got '%s'",
                  IO_TIMEOUT_MS, peer->buf);
    ck_assert_msg(res->status == status, "status %d, expected %d:\n%s%s", res->status, status,
                  res->head, res->body);
}

/* What every response carries, whatever its status; documents (HTML) also
 * carry the whole set of security headers, the API's JSON only these. */
static void assert_common_headers(const struct response *res)
{
    char value[1024], type[128] = "";
    ck_assert_msg(response_header(res, "Date", value, sizeof(value)), "no Date in\n%s", res->head);
    ck_assert_contains(value, " GMT");
    ck_assert_msg(response_header(res, "X-Content-Type-Options", value, sizeof(value)),
                  "no X-Content-Type-Options in\n%s", res->head);
    ck_assert_str_eq(value, "nosniff");
    ck_assert_msg(response_header(res, "Cache-Control", value, sizeof(value)),
                  "no Cache-Control in\n%s", res->head);
    response_header(res, "Content-Type", type, sizeof(type));
    if (strncmp(type, "text/html", 9) != 0)
        return;
    ck_assert_msg(response_header(res, "Content-Security-Policy", value, sizeof(value)),
                  "no CSP in\n%s", res->head);
    ck_assert_contains(value, "default-src 'none'");
    ck_assert_msg(response_header(res, "Referrer-Policy", value, sizeof(value)),
                  "no Referrer-Policy in\n%s", res->head);
    ck_assert_str_eq(value, "no-referrer");
}

/* An error answer: the status, the stable code and a message, as JSON. */
static void assert_error(const struct response *res, int status, const char *code)
{
    ck_assert_msg(res->status == status, "status %d, expected %d:\n%s%s", res->status, status,
                  res->head, res->body);
    char value[256];
    ck_assert_msg(json_field(res, "error", "code", value, sizeof(value)),
                  "no error code in the body: %s", res->body);
    ck_assert_str_eq(value, code);
    ck_assert_msg(json_field(res, "error", "message", value, sizeof(value)),
                  "no error message in the body: %s", res->body);
    char type[128];
    ck_assert(response_header(res, "Content-Type", type, sizeof(type)));
    ck_assert_contains(type, "application/json");
    assert_common_headers(res);
}

static bool says_close(const struct response *res)
{
    char value[64];
    return response_header(res, "Connection", value, sizeof(value)) &&
           strcasecmp(value, "close") == 0;
}

/* ---- requests ----------------------------------------------------------------------- */

#define GET_HEALTHZ "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

static void assert_healthy(const struct response *res)
{
    ck_assert_int_eq(res->status, 200);
    char status[32], length[32];
    ck_assert_msg(json_field(res, "status", NULL, status, sizeof(status)), "healthz body: %s",
                  res->body);
    ck_assert_str_eq(status, "ok");
    ck_assert(response_header(res, "Content-Length", length, sizeof(length)));
    ck_assert_uint_eq(strtoull(length, NULL, 10), res->body_len);
    assert_common_headers(res);
}

/* One GET /healthz on peer, answered 200. */
static void healthz_on(struct peer *peer)
{
    struct response res;
    peer_sends(peer, GET_HEALTHZ);
    expect_response(peer, &res, FRAME_AUTO, 200);
    assert_healthy(&res);
}

/* A fresh connection still gets answered. */
static void assert_serving(unsigned port)
{
    http_reply_free(&reply);
    ck_assert(http_do(port, "GET", "/healthz", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
}

/* The body of POST /api/rooms: a room with a fresh join verifier. */
static void create_body(char *out, size_t len)
{
    char verifier[64];
    random_b64(32, verifier, sizeof(verifier));
    snprintf(out, len, "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}", verifier);
}

/* A gauge's value in the /metrics text, -1 when absent. */
static long gauge(const char *metrics, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *at = strstr(metrics, needle);
    return at ? strtol(at + strlen(needle), NULL, 10) : -1;
}

/* The /metrics text, in reply.body until the next request. */
static const char *metrics_text(unsigned port)
{
    http_reply_free(&reply);
    ck_assert(http_do(port, "GET", "/metrics", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    return reply.body;
}

/* Poll /metrics until the stream and connection gauges read as wanted. */
static void wait_gauges(unsigned port, long streams, long connections)
{
    long got_streams = -1, got_connections = -1;
    for (long long deadline = now_ms() + CLOSE_TIMEOUT_MS; now_ms() < deadline;) {
        const char *text = metrics_text(port);
        got_streams = gauge(text, "thou_open_streams");
        got_connections = gauge(text, "thou_open_connections");
        if (got_streams == streams && got_connections == connections)
            return;
        usleep(50 * 1000);
    }
    ck_abort_msg("gauges: %ld streams and %ld connections, expected %ld and %ld", got_streams,
                 got_connections, streams, connections);
}

/* ---- fixture ------------------------------------------------------------------------- */

static void setup(void)
{
    peers_init();
    proc_running = false;
    memset(&reply, 0, sizeof(reply));
}

static void teardown(void)
{
    http_reply_free(&reply);
    for (int i = 0; i < MAX_PEERS; i++)
        peer_close(&peers[i]);
    if (!proc_running)
        return;
    proc_running = false;
    int status = proc_stop(&proc);
    char *log = proc_log(&proc, NULL);
    const char *report = sanitizer_report(log);
    if (status != 0 || report)
        fprintf(stderr, "it_http: server exited with %d; its log:\n%s\n", status,
                log ? log : "(none)");
    free(log);
    proc_cleanup(&proc);
    ck_assert_msg(status == 0 && !report, "the server did not exit cleanly");
}

/* ---- connections ----------------------------------------------------------------------- */

START_TEST(test_keep_alive)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    struct response res;
    for (int i = 0; i < 3; i++) {
        peer_sends(peer, GET_HEALTHZ);
        expect_response(peer, &res, FRAME_AUTO, 200);
        assert_healthy(&res);
        ck_assert_msg(!says_close(&res), "request %d: Connection: close on keep-alive", i);
    }
    /* A 404 is an answer, not a broken request: the connection stays. */
    peer_sends(peer, "GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(peer, &res, FRAME_AUTO, 404);
    assert_error(&res, 404, "not_found");
    ck_assert(!says_close(&res));
    healthz_on(peer);
    ck_assert_uint_eq(peer->len, 0); /* nothing beyond the answers */
}
END_TEST

START_TEST(test_pipelining)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    char body[256], requests[2048];
    create_body(body, sizeof(body));
    snprintf(requests, sizeof(requests),
             GET_HEALTHZ "GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n"
                         "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s"
                         "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             strlen(body), body);
    peer_sends(peer, requests); /* all in one write */

    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 200);
    assert_healthy(&res);
    expect_response(peer, &res, FRAME_AUTO, 404);
    assert_error(&res, 404, "not_found");
    expect_response(peer, &res, FRAME_AUTO, 201);
    char value[128];
    ck_assert_msg(json_field(&res, "room", NULL, value, sizeof(value)), "create: %s", res.body);
    expect_response(peer, &res, FRAME_HEAD_ONLY, 200);
    expect_response(peer, &res, FRAME_AUTO, 200);
    assert_healthy(&res);
    ck_assert(says_close(&res));
    ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "still open after Connection: close");
    ck_assert_msg(peer->len == 0, "bytes after the last answer: '%s'", peer->buf);
}
END_TEST

START_TEST(test_expect_continue)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    char body[256], head[512];
    create_body(body, sizeof(body));
    snprintf(head, sizeof(head),
             "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    peer_sends(peer, head);

    /* The interim answer comes before a byte of the body is sent. */
    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 100);
    ck_assert_str_eq(res.head, "HTTP/1.1 100 Continue\r\n\r\n");
    ck_assert_uint_eq(peer->len, 0);

    peer_sends(peer, body);
    expect_response(peer, &res, FRAME_AUTO, 201);
    char value[128];
    ck_assert_msg(json_field(&res, "token", NULL, value, sizeof(value)), "create: %s", res.body);
    assert_common_headers(&res);
    healthz_on(peer); /* and the connection goes on */
}
END_TEST

/* RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an
 * HTTP/1.0 request (an HTTP/1.0 client cannot read an interim response). */
START_TEST(test_expect_continue_ignored_on_http10)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    char body[256], request[768];
    create_body(body, sizeof(body));
    snprintf(request, sizeof(request),
             "POST /api/rooms HTTP/1.0\r\nContent-Type: application/json\r\n"
             "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    peer_sends(peer, request);
    struct response res;
    ck_assert(peer_response(peer, &res, FRAME_AUTO));
    ck_assert_msg(res.status == 201, "HTTP/1.0 request answered %d first:\n%s", res.status,
                  res.head);
}
END_TEST

START_TEST(test_http10_closes)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    peer_sends(peer, "GET /healthz HTTP/1.0\r\n\r\n");
    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 200);
    assert_healthy(&res);
    ck_assert(says_close(&res));
    ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "HTTP/1.0 connection left open");
    ck_assert_uint_eq(peer->len, 0);
}
END_TEST

/* An HTTP/1.0 client that asks for keep-alive is told so and may send more
 * requests; one that does not ask is answered and closed. */
START_TEST(test_http10_keep_alive)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    struct response res;
    char value[64];
    for (int i = 0; i < 2; i++) {
        peer_sends(peer, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        expect_response(peer, &res, FRAME_AUTO, 200);
        assert_healthy(&res);
        ck_assert_msg(response_header(&res, "Connection", value, sizeof(value)),
                      "request %d: no Connection field:\n%s", i, res.head);
        ck_assert_msg(strcasecmp(value, "keep-alive") == 0, "request %d: Connection: %s", i, value);
        ck_assert_msg(!peer->eof, "request %d: closed after Connection: keep-alive", i);
    }
    peer_sends(peer, "GET /healthz HTTP/1.0\r\n\r\n");
    expect_response(peer, &res, FRAME_AUTO, 200);
    assert_healthy(&res);
    ck_assert(says_close(&res));
    ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "HTTP/1.0 connection left open");
    ck_assert_uint_eq(peer->len, 0);
}
END_TEST

/* A client may send its request and shut down its sending side at once
 * (nc -N, some HTTP/1.0 clients): the request still deserves its answer.
 * Whether the FIN reaches the server in the same wake-up as the request is
 * a race, so each shape is tried several times. */
START_TEST(test_request_then_half_close)
{
    unsigned port = start(NULL);
    static const char *const requests[] = {
        "GET /healthz HTTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    enum { TRIES = 10 };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        for (int try = 0; try < TRIES; try++) {
            struct peer *peer = peer_open(port);
            peer_sends(peer, requests[i]);
            ck_assert_int_eq(shutdown(peer->fd, SHUT_WR), 0);
            struct response res;
            ck_assert_msg(peer_response(peer, &res, FRAME_AUTO),
                          "request %zu, try %d: closed without an answer after the client's "
                          "half-close (eof %d, got '%s')",
                          i, try, peer->eof, peer->buf);
            assert_healthy(&res);
            ck_assert(peer_closed_within(peer, CLOSE_TIMEOUT_MS));
            peer_close(peer);
        }
    }
}
END_TEST

/* HEAD: the GET's headers and Content-Length, no body (the next answer follows at once). */
START_TEST(test_head_has_length_no_body)
{
    unsigned port = start(NULL);
    static const char *const paths[] = {"/healthz", "/", "/no/such/thing"};
    struct peer *peer = peer_open(port);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char requests[512];
        snprintf(requests, sizeof(requests),
                 "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i],
                 paths[i]);
        peer_sends(peer, requests);
        struct response head, get;
        ck_assert(peer_response(peer, &head, FRAME_HEAD_ONLY));
        /* Had the HEAD answer carried a body, this would not parse as a status line. */
        ck_assert(peer_response(peer, &get, FRAME_AUTO));
        ck_assert_int_eq(head.status, get.status);
        char head_length[32], get_length[32];
        ck_assert_msg(response_header(&head, "Content-Length", head_length, sizeof(head_length)),
                      "HEAD %s: no Content-Length:\n%s", paths[i], head.head);
        ck_assert(response_header(&get, "Content-Length", get_length, sizeof(get_length)));
        ck_assert_str_eq(head_length, get_length);
        ck_assert_uint_gt(get.body_len, 0);
        ck_assert_uint_eq(strtoull(head_length, NULL, 10), get.body_len);
        assert_common_headers(&head);
    }
    ck_assert_uint_eq(peer->len, 0);
}
END_TEST

/* ---- refusals --------------------------------------------------------------------------- */

/*
 * Who refuses a request. thou answers what reaches its access handler with
 * its JSON error; libmicrohttpd refuses some shapes itself, before thou
 * sees them, with its own short HTML page or by closing the connection
 * (docs/api.md, "The HTTP layer").
 */
enum refused_by {
    BY_THOU,      /* thou's JSON error and code, Connection: close, then closed */
    BY_MHD,       /* libmicrohttpd's own answer with this status, then closed */
    BY_MHD_CLOSE, /* closed without an answer */
};

static const struct refusal {
    const char *what;
    const char *request;
    enum refused_by by;
    int status;
    const char *code;
} refusals[] = {
    {"garbage", "HELLO\r\n\r\n", BY_MHD_CLOSE, 0, NULL},
    {"garbage with spaces", "this is not http at all\r\n\r\n", BY_MHD, 400, NULL},
    {"missing colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n", BY_MHD, 400, NULL},
    {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n", BY_THOU, 400, "bad_request"},
    {"HTTP/1.1 without Host, a request behind it", "GET /healthz HTTP/1.1\r\n\r\n" GET_HEALTHZ,
     BY_THOU, 400, "bad_request"},
    {"two Host fields", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", BY_THOU, 400,
     "bad_request"},
    {"two Host fields on HTTP/1.0", "GET /healthz HTTP/1.0\r\nHost: x\r\nhost: x\r\n\r\n", BY_THOU,
     400, "bad_request"},
    {"absolute-form", "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", BY_THOU, 400,
     "bad_request"},
    {"control byte in the target", "GET /health\x01z HTTP/1.1\r\nHost: x\r\n\r\n", BY_THOU, 400,
     "bad_request"},
    {"bare CR in a field value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", BY_THOU,
     400, "bad_request"},
    {"control byte in a field value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
     BY_THOU, 400, "bad_request"},
    {"bad length", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", BY_MHD, 400,
     NULL},
    {"two lengths",
     "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     BY_THOU, 400, "bad_request"},
    {"length and chunked",
     "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n",
     BY_THOU, 400, "bad_request"},
    {"chunked and length",
     "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     "0\r\n\r\n",
     BY_THOU, 400, "bad_request"},
    {"malformed chunked body",
     "POST /api/rooms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", BY_MHD, 400,
     NULL},
    {"chunk size overflow",
     "POST /api/rooms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "ffffffffffffffffff1\r\n",
     BY_MHD, 413, NULL},
    {"HTTP/2.0", "GET /healthz HTTP/2.0\r\n\r\n", BY_MHD, 505, NULL},
    {"HTTP/1.2", "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", BY_THOU, 505, "bad_version"},
    {"the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", BY_MHD, 505, NULL},
    {"gzip", "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", BY_THOU, 501,
     "not_implemented"},
    {"chunked, gzip",
     "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", BY_THOU, 501,
     "not_implemented"},
};

/* Each refusal is answered as its table row says, and the connection closes:
 * nothing after a refused head is ever taken as a request. */
START_TEST(test_refusals)
{
    unsigned port = start(NULL);
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        const struct refusal *r = &refusals[i];
        struct peer *peer = peer_open(port);
        peer_sends(peer, r->request);
        struct response res;
        bool answered = peer_response(peer, &res, FRAME_AUTO);
        if (r->by == BY_MHD_CLOSE) {
            ck_assert_msg(!answered && peer->eof, "%s: answered or left open: '%s'", r->what,
                          peer->buf);
            peer_close(peer);
            continue;
        }
        ck_assert_msg(answered, "%s: no answer", r->what);
        ck_assert_msg(res.status == r->status, "%s: status %d, expected %d", r->what, res.status,
                      r->status);
        ck_assert_msg(says_close(&res), "%s: no Connection: close", r->what);
        ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "%s: connection left open",
                      r->what);
        if (r->by == BY_THOU) {
            assert_error(&res, r->status, r->code);
            ck_assert_msg(peer->len == 0, "%s: bytes after the answer: '%s'", r->what, peer->buf);
        }
        peer_close(peer);
    }
    assert_serving(port);
}
END_TEST

/*
 * Shapes libmicrohttpd 0.9.75 accepts and thou cannot see (docs/api.md):
 * a bare LF as line end (RFC 9112 allows it), obs-fold (the continuation
 * is appended to the field's name) and a NUL in a value (the value ends
 * there). Each is one request and gets one answer: no second request hides
 * behind it. Should libmicrohttpd start refusing them, this test fails and
 * the documentation must change with it.
 */
START_TEST(test_tolerated_shapes)
{
    static const struct {
        const char *what;
        const char *request;
        size_t len;
    } shapes[] = {
        {"bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n", 0},
        {"obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 0},
        {"NUL in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 44},
    };
    unsigned port = start(NULL);
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        struct peer *peer = peer_open(port);
        size_t len = shapes[i].len ? shapes[i].len : strlen(shapes[i].request);
        peer_send(peer, shapes[i].request, len);
        struct response res;
        ck_assert_msg(peer_response(peer, &res, FRAME_AUTO), "%s: no answer", shapes[i].what);
        assert_healthy(&res);
        healthz_on(peer); /* the connection is still in step */
        ck_assert_msg(peer->len == 0, "%s: bytes after the answers: '%s'", shapes[i].what,
                      peer->buf);
        peer_close(peer);
    }
}
END_TEST

/* A kept-alive connection that then sends an HTTP/1.1 head without Host is
 * answered 400 and closed; the request pipelined behind it is not served. */
START_TEST(test_missing_host_closes)
{
    unsigned port = start(NULL);
    struct peer *peer = peer_open(port);
    healthz_on(peer);
    peer_sends(peer, "GET /healthz HTTP/1.1\r\nAccept: */*\r\n\r\n" GET_HEALTHZ);
    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 400);
    assert_error(&res, 400, "bad_request");
    ck_assert_msg(says_close(&res), "no Connection: close:\n%s", res.head);
    ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "left open after a missing Host");
    ck_assert_msg(peer->len == 0, "bytes after the answer: '%s'", peer->buf);
    assert_serving(port);
}
END_TEST

/*
 * connection_memory_bytes is libmicrohttpd's memory pool per connection: it
 * holds the request head and the answer's head, so the largest head read is
 * a little smaller than the pool (3,792 bytes of a 4,096-byte pool in
 * 0.9.75). A head of 3,500 bytes is read and the connection goes on; a
 * head the size of the pool is refused with libmicrohttpd's own 431 page.
 */
START_TEST(test_head_limit)
{
    static const char *const extra[] = {"--connection-memory-bytes", "4096", NULL};
    unsigned port = start(extra);
    static const size_t sizes[] = {3500, 4096};
    static char head[4096 + 1];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = sizes[i];
        int n = snprintf(head, sizeof(head), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        memset(head + n, 'p', size - (size_t)n - 4);
        memcpy(head + size - 4, "\r\n\r\n", 4);
        struct peer *peer = peer_open(port);
        peer_send(peer, head, size);
        struct response res;
        if (size < 4096) {
            expect_response(peer, &res, FRAME_AUTO, 200);
            assert_healthy(&res);
            healthz_on(peer);
        } else {
            expect_response(peer, &res, FRAME_AUTO, 431);
            ck_assert(says_close(&res));
            ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "left open after a 431");
        }
        peer_close(peer);
    }
    assert_serving(port);
}
END_TEST

/* A head far over the limit, and one that never ends: both 431, nothing else suffers. */
START_TEST(test_head_too_large)
{
    static const char *const extra[] = {"--connection-memory-bytes", "4096", NULL};
    unsigned port = start(extra);
    struct peer *bystander = peer_open(port);
    healthz_on(bystander);

    static char big[20000];
    int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: ");
    memset(big + n, 'c', sizeof(big) - (size_t)n - 4);
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    struct peer *peer = peer_open(port);
    peer_try_send(peer, big, sizeof(big)); /* the server may close before it has read it all */
    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 431);
    ck_assert(peer_closed_within(peer, CLOSE_TIMEOUT_MS));
    peer_close(peer);

    /* No blank line at all: refused once the limit is reached, not waited for. */
    peer = peer_open(port);
    peer_send(peer, big, 8000);
    expect_response(peer, &res, FRAME_AUTO, 431);
    peer_close(peer);

    healthz_on(bystander);
    assert_serving(port);
}
END_TEST

#define SMALL_BODY_LIMIT "--max-body-bytes", "2048", "--max-ciphertext-bytes", "256"

/* A declared length over max_body_bytes is refused before the body is sent. */
START_TEST(test_declared_body_too_large)
{
    static const char *const extra[] = {SMALL_BODY_LIMIT, NULL};
    unsigned port = start(extra);
    static const char *const heads[] = {
        "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000\r\n\r\n",
        /* No 100 Continue for a body that will not be read. */
        "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Expect: 100-continue\r\nContent-Length: 2049\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct peer *peer = peer_open(port);
        peer_sends(peer, heads[i]);
        struct response res;
        ck_assert_msg(peer_response(peer, &res, FRAME_AUTO),
                      "head %zu: no answer before the body was sent", i);
        assert_error(&res, 413, "too_large");
        ck_assert(says_close(&res));
        ck_assert_msg(peer_closed_within(peer, CLOSE_TIMEOUT_MS), "head %zu: left open after 413",
                      i);
        ck_assert_uint_eq(peer->len, 0);
        peer_close(peer);
    }

    /* A client that sends its body anyway still reads the answer, not a reset. */
    static char request[16384];
    int n = snprintf(request, sizeof(request),
                     "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 12000\r\n\r\n");
    memset(request + n, 'x', 12000);
    struct peer *peer = peer_open(port);
    peer_send(peer, request, (size_t)n + 12000);
    struct response res;
    expect_response(peer, &res, FRAME_AUTO, 413);
    assert_error(&res, 413, "too_large");
    ck_assert(peer_closed_within(peer, CLOSE_TIMEOUT_MS));
    peer_close(peer);

    /* Exactly at the limit is fine (routing decides: 405 for POST /healthz). */
    static char at_limit[4096];
    n = snprintf(at_limit, sizeof(at_limit),
                 "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n");
    memset(at_limit + n, 'x', 2048);
    peer = peer_open(port);
    peer_send(peer, at_limit, (size_t)n + 2048);
    expect_response(peer, &res, FRAME_AUTO, 405);
    assert_error(&res, 405, "method_not_allowed");
    assert_serving(port);
}
END_TEST

/*
 * The lingering drain after an early answer (the server has shut down its
 * side; the client may still be sending) ends after about two seconds, even
 * when an older keep-alive connection with the longer idle timeout sits
 * before it on the same loop (one thread makes that certain). The client
 * sees the FIN at once; only the open-connections gauge shows the server's
 * side of the socket going away.
 */
START_TEST(test_drain_bounded_behind_idle_connection)
{
    static const char *const extra[] = {"--threads", "1", NULL}; /* timeout: 30 s */
    unsigned port = start(extra);
    struct peer *idle = peer_open(port);
    healthz_on(idle);

    struct peer *refused = peer_open(port);
    peer_sends(refused, "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    struct response res;
    expect_response(refused, &res, FRAME_AUTO, 413);
    ck_assert(peer_closed_within(refused, CLOSE_TIMEOUT_MS)); /* the server's FIN */

    /* Left: the idle connection and the one asking for the metrics. */
    wait_gauges(port, 0, 2);
    healthz_on(idle);
}
END_TEST

/* A chunked request body, with an extension and a trailer, sent all at once
 * and byte by byte. */
START_TEST(test_chunked_request_body)
{
    unsigned port = start(NULL);
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        char body[256], request[1024];
        create_body(body, sizeof(body));
        size_t half = strlen(body) / 2;
        snprintf(request, sizeof(request),
                 "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "%zx;ext=1\r\n%.*s\r\n%zx\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" GET_HEALTHZ,
                 half, (int)half, body, strlen(body) - half, body + half);
        struct peer *peer = peer_open(port);
        if (bytewise) {
            for (size_t i = 0; request[i]; i++)
                peer_send(peer, &request[i], 1);
        } else {
            peer_sends(peer, request);
        }
        struct response res;
        expect_response(peer, &res, FRAME_AUTO, 201);
        char value[128];
        ck_assert_msg(json_field(&res, "room", NULL, value, sizeof(value)), "%s", res.body);
        /* The request after the body was framed right. */
        expect_response(peer, &res, FRAME_AUTO, 200);
        assert_healthy(&res);
        peer_close(peer);
    }
}
END_TEST

/* ---- timeouts ---------------------------------------------------------------------------- */

/* An idle keep-alive connection, a half-sent head and a silent connection
 * are all closed once connection_timeout_s passes. */
START_TEST(test_idle_timeout)
{
    static const char *const extra[] = {"--connection-timeout-s", "1", NULL};
    unsigned port = start(extra);
    struct peer *idle = peer_open(port);
    healthz_on(idle);
    struct peer *partial = peer_open(port);
    peer_sends(partial, "GET /healthz HTTP/1.1\r\nHost: 127.0");
    struct peer *silent = peer_open(port);
    long long started = now_ms();

    struct peer *all[] = {idle, partial, silent};
    const char *names[] = {"idle keep-alive", "half-sent head", "silent"};
    for (size_t i = 0; i < 3; i++) {
        long long left = started + CLOSE_TIMEOUT_MS - now_ms();
        ck_assert_msg(peer_closed_within(all[i], left > 0 ? (int)left : 0),
                      "%s connection still open after %d ms", names[i], CLOSE_TIMEOUT_MS);
        ck_assert_msg(strstr(all[i]->buf, "200 OK") == NULL, "%s connection was answered: %s",
                      names[i], all[i]->buf);
    }
    /* Not before the timeout either. */
    ck_assert_msg(now_ms() - started >= 900, "closed after %lld ms, before the 1 s timeout",
                  now_ms() - started);
    assert_serving(port);
}
END_TEST

/* Traffic keeps a connection alive: the timeout counts idleness, not age. */
START_TEST(test_busy_connection_survives_timeout)
{
    static const char *const extra[] = {"--connection-timeout-s", "1", NULL};
    unsigned port = start(extra);
    struct peer *peer = peer_open(port);
    long long until = now_ms() + 2500;
    while (now_ms() < until) {
        healthz_on(peer);
        usleep(300 * 1000);
    }
    healthz_on(peer);
}
END_TEST

/* ---- connection limits ----------------------------------------------------------------- */

/* The (limit+1)th connection is closed without an answer; the first ones
 * still work, and closing one makes room again. */
static void check_connection_limit(unsigned port, unsigned limit)
{
    struct peer *open[MAX_PEERS];
    ck_assert_uint_lt(limit, MAX_PEERS - 2);
    /* One at a time, each answered, so the server has counted it before the next. */
    for (unsigned i = 0; i < limit; i++) {
        open[i] = peer_open(port);
        healthz_on(open[i]);
    }
    struct peer *excess = peer_open(port);
    peer_try_send(excess, GET_HEALTHZ, strlen(GET_HEALTHZ)); /* may fail: closed already */
    ck_assert_msg(peer_closed_within(excess, CLOSE_TIMEOUT_MS),
                  "connection %u over the limit of %u left open", limit + 1, limit);
    ck_assert_msg(excess->len == 0, "connection over the limit was answered: %s", excess->buf);
    peer_close(excess);

    for (unsigned i = 0; i < limit; i++)
        healthz_on(open[i]);

    /* The server notices the close a moment later: retry briefly. */
    peer_close(open[0]);
    bool served = false;
    for (long long deadline = now_ms() + CLOSE_TIMEOUT_MS; !served && now_ms() < deadline;) {
        struct peer *again = peer_open(port);
        struct response res;
        if (peer_try_send(again, GET_HEALTHZ, strlen(GET_HEALTHZ)) &&
            peer_response(again, &res, FRAME_AUTO)) {
            served = res.status == 200;
        }
        peer_close(again);
        if (!served)
            usleep(100 * 1000);
    }
    ck_assert_msg(served, "no room again after a connection closed");
    for (unsigned i = 1; i < limit; i++)
        peer_close(open[i]);
}

START_TEST(test_max_connections_per_ip)
{
    static const char *const extra[] = {"--max-connections-per-ip", "3", NULL};
    check_connection_limit(start(extra), 3);
}
END_TEST

START_TEST(test_max_connections)
{
    static const char *const extra[] = {"--max-connections", "16", "--max-connections-per-ip", "16",
                                        NULL};
    check_connection_limit(start(extra), 16);
}
END_TEST

/* ---- event streams ----------------------------------------------------------------------- */

struct room {
    char id[64];
    char token[64];
};

static void create_room(unsigned port, struct room *room)
{
    char body[256];
    create_body(body, sizeof(body));
    http_reply_free(&reply);
    ck_assert(http_json(port, "POST", "/api/rooms", NULL, body, &reply));
    ck_assert_msg(reply.status == 201, "create: %ld %s", reply.status, reply.body);
    snprintf(room->id, sizeof(room->id), "%s",
             json_string_value(json_object_get(reply.json, "room")));
    snprintf(room->token, sizeof(room->token), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
}

static struct peer *open_stream(unsigned port, const struct room *room, const char *version,
                                struct response *res)
{
    struct peer *peer = peer_open(port);
    char request[512];
    snprintf(request, sizeof(request),
             "GET /api/rooms/%s/events HTTP/%s\r\nHost: 127.0.0.1\r\n"
             "Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n",
             room->id, version, room->token);
    peer_sends(peer, request);
    expect_response(peer, res, FRAME_HEAD_ONLY, 200);
    return peer;
}

START_TEST(test_event_stream)
{
    static const char *const extra[] = {"--connection-timeout-s", "1", "--heartbeat-s", "3600",
                                        NULL};
    unsigned port = start(extra);
    struct room room;
    create_room(port, &room);

    struct response res;
    struct peer *stream = open_stream(port, &room, "1.1", &res);
    char value[128];
    ck_assert_msg(response_header(&res, "Transfer-Encoding", value, sizeof(value)),
                  "stream not chunked:\n%s", res.head);
    ck_assert_str_eq(value, "chunked");
    ck_assert(response_header(&res, "Content-Type", value, sizeof(value)));
    ck_assert_contains(value, "text/event-stream");
    ck_assert_msg(!response_header(&res, "Content-Length", value, sizeof(value)),
                  "a stream with a length:\n%s", res.head);
    ck_assert_msg(response_header(&res, "X-Accel-Buffering", value, sizeof(value)),
                  "a stream a proxy may buffer:\n%s", res.head);
    ck_assert_str_eq(value, "no");
    assert_common_headers(&res);

    /* The stream is counted, and so is its connection (plus the one asking). */
    wait_gauges(port, 1, 2);

    /* Well past the 1 s timeout (the heartbeat is an hour away), it stays open. */
    ck_assert_msg(!peer_closed_within(stream, 3000), "the stream was closed by the timeout");
    wait_gauges(port, 1, 2);

    /* The client leaves: the server notices and counts both down. */
    peer_close(stream);
    wait_gauges(port, 0, 1);
    assert_serving(port);
}
END_TEST

/* HEAD of the event stream is its head only: no body, no stream left open,
 * and the connection goes on to the next request. */
START_TEST(test_event_stream_head)
{
    unsigned port = start(NULL);
    struct room room;
    create_room(port, &room);
    struct peer *peer = peer_open(port);
    char request[512];
    snprintf(request, sizeof(request),
             "HEAD /api/rooms/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n",
             room.id, room.token);
    peer_sends(peer, request);
    struct response res;
    expect_response(peer, &res, FRAME_HEAD_ONLY, 200);
    char value[128];
    ck_assert(response_header(&res, "Content-Type", value, sizeof(value)));
    ck_assert_contains(value, "text/event-stream");
    healthz_on(peer); /* nothing of a body came before this answer */
    ck_assert_msg(peer->len == 0, "bytes after the answers: '%s'", peer->buf);
    wait_gauges(port, 0, 2);
    peer_close(peer);
}
END_TEST

/* HTTP/1.0 has no chunked coding: the stream's body ends with the connection. */
START_TEST(test_event_stream_http10)
{
    unsigned port = start(NULL);
    struct room room;
    create_room(port, &room);
    struct response res;
    struct peer *stream = open_stream(port, &room, "1.0", &res);
    char value[128];
    ck_assert_msg(!response_header(&res, "Transfer-Encoding", value, sizeof(value)),
                  "chunked to an HTTP/1.0 client:\n%s", res.head);
    ck_assert(!response_header(&res, "Content-Length", value, sizeof(value)));
    peer_close(stream);
    wait_gauges(port, 0, 1);
}
END_TEST

/* ---- the suite ----------------------------------------------------------------------------- */

static Suite *http_suite(void)
{
    Suite *suite = suite_create("http");

    TCase *connections = tcase_create("connections");
    tcase_add_checked_fixture(connections, setup, teardown);
    tcase_set_timeout(connections, 60);
    tcase_add_test(connections, test_keep_alive);
    tcase_add_test(connections, test_pipelining);
    tcase_add_test(connections, test_expect_continue);
    tcase_add_test(connections, test_expect_continue_ignored_on_http10);
    tcase_add_test(connections, test_http10_closes);
    tcase_add_test(connections, test_http10_keep_alive);
    tcase_add_test(connections, test_request_then_half_close);
    tcase_add_test(connections, test_head_has_length_no_body);
    tcase_add_test(connections, test_chunked_request_body);
    suite_add_tcase(suite, connections);

    TCase *refused = tcase_create("refusals");
    tcase_add_checked_fixture(refused, setup, teardown);
    tcase_set_timeout(refused, 120);
    tcase_add_test(refused, test_refusals);
    tcase_add_test(refused, test_tolerated_shapes);
    tcase_add_test(refused, test_missing_host_closes);
    tcase_add_test(refused, test_head_limit);
    tcase_add_test(refused, test_head_too_large);
    tcase_add_test(refused, test_declared_body_too_large);
    tcase_add_test(refused, test_drain_bounded_behind_idle_connection);
    suite_add_tcase(suite, refused);

    TCase *limits = tcase_create("limits");
    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_set_timeout(limits, 60);
    tcase_add_test(limits, test_idle_timeout);
    tcase_add_test(limits, test_busy_connection_survives_timeout);
    tcase_add_test(limits, test_max_connections_per_ip);
    tcase_add_test(limits, test_max_connections);
    suite_add_tcase(suite, limits);

    TCase *streams = tcase_create("streams");
    tcase_add_checked_fixture(streams, setup, teardown);
    tcase_set_timeout(streams, 60);
    tcase_add_test(streams, test_event_stream);
    tcase_add_test(streams, test_event_stream_http10);
    tcase_add_test(streams, test_event_stream_head);
    suite_add_tcase(suite, streams);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(http_suite());
    /* No fork: a failed assertion still runs the teardown, which stops the
     * server the test started instead of leaving it running. */
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
