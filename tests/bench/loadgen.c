/*
 * loadgen: drive thou, or nginx + nchan, with two-person conversations and
 * check every delivery (tests/bench/README.md says what is measured).
 *
 * One thread, one epoll set, non-blocking keep-alive HTTP/1.1 connections,
 * a hand-written response parser (Content-Length, chunked, read-to-close)
 * and a server-sent-events parser. Every participant has one event stream
 * and, when it posts, one request connection. Each message carries its
 * sender and a per-sender counter, so the receiver can tell a message that
 * reached the wrong person, came out of order, twice, or not at all; its
 * 512-byte ciphertext is derived from (sender, counter) and checked byte
 * for byte.
 *
 * Only loopback addresses are accepted, every wait has a deadline, every
 * run is at most MAX_SECONDS long, and an alarm ends a stuck process.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL
#define MAX_PAIRS 10000
#define MAX_SECS  30
#define MAX_PIDS  64
#define NAME_CAP  96
#define TOKEN_CAP 128

#define CIPHER_CHARS  683 /* unpadded base64url of 512 bytes */
#define CIPHER_RANDOM 680 /* 510 random bytes' worth; "AAA" encodes the last two */
#define POOL_SPREAD   256 /* distinct payload offsets */

#define RING            4096 /* send times kept per sender */
#define HEAD_CAP        16384
#define LINE_CAP        8192
#define DATA_CAP        8192
#define BODY_CAP        65536
#define IN_CAP_START    4096
#define IN_CAP_MAX      (4u << 20)
#define CONNECT_WINDOW  200 /* connections opening at once */
#define SETUP_CONNS     16
#define SETUP_TIMEOUT   (120 * NS_PER_S)
#define OPEN_TIMEOUT    (30 * NS_PER_S)
#define DRAIN_TIMEOUT   (5 * NS_PER_S)
#define IDLE_SETTLE     (1 * NS_PER_S)
#define MAX_LAT_SAMPLES (8u << 20)

enum target { TARGET_THOU, TARGET_NCHAN };
enum scenario { SC_IDLE, SC_LIGHT, SC_SATURATION };

static const char *const scenario_names[] = {"idle", "light", "saturation"};

struct options {
    enum target target;
    int scenario; /* -1: not given */
    char host[INET_ADDRSTRLEN];
    struct sockaddr_in addr;
    unsigned port;
    struct sockaddr_in addr2; /* --port2: B's streams and posts go to a second instance */
    unsigned port2;
    unsigned pairs; /* 0: the scenario's default */
    unsigned seconds;
    unsigned interval_ms;
    unsigned run;
    pid_t pids[MAX_PIDS];
    size_t n_pids;
    bool smoke;
    const char *set;
    unsigned head_bytes;  /* pad each stream's request head to about this size; 0: plain */
    unsigned idle_beside; /* saturation and light: idle streams held beside the busy pairs */
};

/* ---- clock, process statistics ------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static size_t read_small_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return len;
}

/* ppid and utime + stime (clock ticks) from /proc/<pid>/stat. */
static bool proc_stat(pid_t pid, long *ppid, unsigned long long *cpu_ticks)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!read_small_file(path, buf, sizeof(buf)))
        return false;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return false;
    p++;
    unsigned long long utime = 0, stime = 0;
    long parent = 0;
    for (int field = 3; field <= 15 && *p; field++) {
        while (*p == ' ')
            p++;
        char *end = NULL;
        unsigned long long value = strtoull(p, &end, 10);
        if (field == 4)
            parent = (long)value;
        else if (field == 14)
            utime = value;
        else if (field == 15)
            stime = value;
        p = end && end != p ? end : strchr(p, ' ');
        if (!p)
            break;
    }
    if (ppid)
        *ppid = parent;
    if (cpu_ticks)
        *cpu_ticks = utime + stime;
    return true;
}

static long proc_rss_kb(pid_t pid)
{
    char path[64], buf[8192];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!read_small_file(path, buf, sizeof(buf)))
        return 0;
    const char *line = strstr(buf, "\nVmRSS:");
    return line ? strtol(line + strlen("\nVmRSS:"), NULL, 10) : 0;
}

/* The given server pids and their direct children (nginx's workers). */
static size_t server_pids(const struct options *opt, pid_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < opt->n_pids && n < cap; i++)
        out[n++] = opt->pids[i];
    DIR *dir = opendir("/proc");
    if (!dir)
        return n;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && n < cap) {
        char *end = NULL;
        long pid = strtol(entry->d_name, &end, 10);
        if (pid <= 0 || *end)
            continue;
        long ppid = 0;
        if (!proc_stat((pid_t)pid, &ppid, NULL))
            continue;
        for (size_t i = 0; i < opt->n_pids; i++)
            if (ppid == opt->pids[i] && n < cap)
                out[n++] = (pid_t)pid;
    }
    closedir(dir);
    return n;
}

static long sum_rss_kb(const pid_t *pids, size_t n)
{
    long total = 0;
    for (size_t i = 0; i < n; i++)
        total += proc_rss_kb(pids[i]);
    return total;
}

static unsigned long long sum_cpu_ticks(const pid_t *pids, size_t n)
{
    unsigned long long total = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned long long ticks = 0;
        if (proc_stat(pids[i], NULL, &ticks))
            total += ticks;
    }
    return total;
}

/* All CPUs' busy ticks (everything but idle and iowait), from /proc/stat. */
static unsigned long long machine_busy_ticks(void)
{
    char buf[4096];
    if (!read_small_file("/proc/stat", buf, sizeof(buf)) || strncmp(buf, "cpu ", 4) != 0)
        return 0;
    const char *p = buf + 4;
    unsigned long long busy = 0;
    for (int field = 0; field < 8; field++) {
        char *end = NULL;
        unsigned long long value = strtoull(p, &end, 10);
        if (end == p)
            break;
        if (field != 3 && field != 4) /* idle, iowait */
            busy += value;
        p = end;
    }
    return busy;
}

static int64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NS_PER_S +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* ---- payloads ---------------------------------------------------------- */

static char payload_pool[CIPHER_RANDOM + POOL_SPREAD];

static void payload_pool_init(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char random_bytes[sizeof(payload_pool)];
    randombytes_buf(random_bytes, sizeof(random_bytes));
    for (size_t i = 0; i < sizeof(payload_pool); i++)
        payload_pool[i] = alphabet[random_bytes[i] & 63];
}

/* The ciphertext of message `counter` from participant `sender`: valid,
 * canonical unpadded base64url of 512 bytes, different per message. */
static const char *payload_for(unsigned sender, uint64_t counter)
{
    return payload_pool + (sender * 131u + (unsigned)(counter % 1024) * 17u) % POOL_SPREAD;
}

static bool payload_matches(unsigned sender, uint64_t counter, const char *data, size_t len)
{
    static const char key[] = "\"ciphertext\":\"";
    const char *at = memmem(data, len, key, sizeof(key) - 1);
    if (!at)
        return false;
    at += sizeof(key) - 1;
    if ((size_t)(data + len - at) < CIPHER_CHARS + 1)
        return false;
    return memcmp(at, payload_for(sender, counter), CIPHER_RANDOM) == 0 &&
           memcmp(at + CIPHER_RANDOM, "AAA\"", 4) == 0;
}

/* ---- tiny JSON field readers (the bodies are ours or the server's) ------- */

static const char *json_value(const char *body, size_t len, const char *key)
{
    char pattern[64];
    int n = snprintf(pattern, sizeof(pattern), "\"%s\":", key);
    if (n <= 0 || (size_t)n >= sizeof(pattern))
        return NULL;
    const char *at = memmem(body, len, pattern, (size_t)n);
    if (!at)
        return NULL;
    at += n;
    while (at < body + len && *at == ' ')
        at++;
    return at < body + len ? at : NULL;
}

static bool json_string_field(const char *body, size_t len, const char *key, char *out,
                              size_t outlen)
{
    const char *at = json_value(body, len, key);
    if (!at || *at != '"')
        return false;
    at++;
    const char *end = memchr(at, '"', (size_t)(body + len - at));
    if (!end || (size_t)(end - at) + 1 > outlen)
        return false;
    memcpy(out, at, (size_t)(end - at));
    out[end - at] = '\0';
    return true;
}

static bool json_uint_field(const char *body, size_t len, const char *key, uint64_t *out)
{
    const char *at = json_value(body, len, key);
    if (!at || *at < '0' || *at > '9')
        return false;
    uint64_t value = 0;
    for (int digits = 0; at < body + len && *at >= '0' && *at <= '9'; at++, digits++) {
        if (digits >= 18)
            return false;
        value = value * 10 + (uint64_t)(*at - '0');
    }
    *out = value;
    return true;
}

/* ---- connections and the HTTP response parser -------------------------- */

enum parse_state {
    PS_HEAD,
    PS_BODY_LEN,
    PS_BODY_EOF,
    PS_CHUNK_SIZE,
    PS_CHUNK_DATA,
    PS_CHUNK_CRLF,
    PS_CHUNK_TRAILER
};

enum conn_kind { CONN_SETUP, CONN_STREAM, CONN_POSTER };

struct run;
struct conn;

struct sse {
    char line[LINE_CAP];
    size_t line_len;
    bool overflow;
    char event[32];
    char id[64];
    bool has_id;
    char data[DATA_CAP];
    size_t data_len;
    bool has_data;
};

struct conn {
    int fd;
    enum conn_kind kind;
    void *owner;
    bool connected, busy, dead, writable_wanted, reopen;
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
    enum parse_state ps;
    int status;
    bool chunked, close_after;
    int64_t remaining;
    char *body; /* request connections: the response body */
    size_t body_len;
    bool body_overflow;
    struct sse *sse; /* stream connections */
};

struct participant {
    struct pair *pair;
    unsigned index; /* pair * 2 + role: the sender id */
    int role;       /* 0 = A, 1 = B */
    char token[TOKEN_CAP];
    struct conn *stream, *poster;
    bool stream_open, stream_failed, stopped;
    uint64_t sent, acked; /* counters of this sender */
    bool in_flight;
    int64_t *sent_ns;  /* RING send times, when posting */
    uint64_t received; /* highest counter from the partner */
    uint64_t echoes;   /* own messages seen on own stream (thou echoes) */
    long long last_id;
};

struct pair {
    unsigned index;
    char room[NAME_CAP];
    char secret_b64[64], verifier_b64[64];
    struct participant p[2];
    bool ready;
    int turn;
    bool round_open;
    int64_t next_round_ns;
};

struct setup_worker {
    struct conn *conn;
    struct pair *pair;
};

struct errors {
    uint64_t http, wrong_recipient, order, duplicate, lost, payload, stream, conn, timeout, parse;
};

struct run {
    const struct options *opt;
    enum scenario scenario;
    unsigned n_pairs; /* every pair, the idle ones beside included */
    unsigned n_busy;  /* the first n_busy pairs post */
    unsigned seconds;
    struct pair *pairs;
    int epfd;
    unsigned setup_next, setup_done;
    bool setup_failed;
    unsigned streams_open, streams_failed, posters_connected;
    bool posting, closing;
    int64_t t_start, t_end;
    uint64_t sent, acked, delivered, delivered_window, echoes, comments;
    struct errors err;
    int64_t *lat;
    size_t n_lat;
    struct conn **conns;
    size_t n_conns, cap_conns;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(2);
    }
    return p;
}

static void conn_watch(struct run *r, struct conn *c, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0u), .data.ptr = c};
    if (want_write != c->writable_wanted) {
        epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->writable_wanted = want_write;
    }
}

static bool conn_connect(struct run *r, struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connected = false;
    c->writable_wanted = true;
    c->in_len = 0;
    c->ps = PS_HEAD;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    /* With a second instance, B talks to it: the partners are split across two. */
    const struct sockaddr_in *addr = &r->opt->addr;
    if (r->opt->port2 && c->kind != CONN_SETUP && ((const struct participant *)c->owner)->role == 1)
        addr = &r->opt->addr2;
    if (connect(c->fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static struct conn *conn_new(struct run *r, enum conn_kind kind, void *owner)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->kind = kind;
    c->owner = owner;
    c->in_cap = IN_CAP_START;
    c->in = xcalloc(1, c->in_cap);
    if (kind == CONN_STREAM)
        c->sse = xcalloc(1, sizeof(*c->sse));
    else
        c->body = xcalloc(1, BODY_CAP);
    if (r->n_conns == r->cap_conns) {
        r->cap_conns = r->cap_conns ? r->cap_conns * 2 : 256;
        r->conns = xrealloc(r->conns, r->cap_conns * sizeof(*r->conns));
    }
    r->conns[r->n_conns++] = c;
    if (!conn_connect(r, c))
        c->dead = true;
    return c;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* closing the only descriptor removes it from epoll */
    c->fd = -1;
    c->connected = false;
}

static void conn_free(struct conn *c)
{
    conn_close(c);
    free(c->out);
    free(c->in);
    free(c->body);
    free(c->sse);
    free(c);
}

static void on_conn_failure(struct run *r, struct conn *c);

static void conn_fail(struct run *r, struct conn *c)
{
    if (c->dead)
        return;
    conn_close(c);
    c->dead = true;
    on_conn_failure(r, c);
}

static void conn_flush(struct run *r, struct conn *c)
{
    if (!c->connected || c->dead)
        return;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_watch(r, c, true);
                return;
            }
            if (errno == EINTR)
                continue;
            conn_fail(r, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    conn_watch(r, c, false);
}

static void conn_send(struct run *r, struct conn *c, const char *data, size_t len)
{
    if (c->dead)
        return;
    if (c->out_len + len > c->out_cap) {
        c->out_cap = (c->out_len + len) * 2;
        c->out = xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    c->busy = true;
    conn_flush(r, c);
}

/* Parse the status line and the headers we care about. */
static bool parse_head(struct conn *c, const char *head, size_t len)
{
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0)
        return false;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return false;
        status = status * 10 + (head[i] - '0');
    }
    c->status = status;
    c->chunked = false;
    c->close_after = head[7] == '0';
    c->remaining = -1;
    const char *end = head + len;
    const char *line = memchr(head, '\n', len);
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        size_t n = (size_t)(eol - line);
        if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char *stop = NULL;
            long long value = strtoll(line + 15, &stop, 10);
            if (value < 0 || value > (long long)BODY_CAP * 64)
                return false;
            c->remaining = value;
        } else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            c->chunked = memmem(line, n, "chunked", 7) != NULL;
        } else if (n > 11 && strncasecmp(line, "connection:", 11) == 0) {
            if (memmem(line, n, "close", 5))
                c->close_after = true;
        }
        line = eol;
    }
    if (c->chunked)
        c->remaining = 0;
    return true;
}

static void on_stream_head(struct run *r, struct conn *c);
static void on_response(struct run *r, struct conn *c);
static void sse_feed(struct run *r, struct conn *c, const char *p, size_t n);

static void body_bytes(struct run *r, struct conn *c, const char *p, size_t n)
{
    if (c->kind == CONN_STREAM) {
        sse_feed(r, c, p, n);
        return;
    }
    if (c->body_len + n > BODY_CAP) {
        c->body_overflow = true;
        return;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
}

/* A whole response arrived. Returns false when the input buffer no longer
 * belongs to this connection (it was reopened). */
static bool message_done(struct run *r, struct conn *c)
{
    if (c->kind == CONN_STREAM) {
        if (!r->closing)
            r->err.stream++;
        conn_fail(r, c);
        return false;
    }
    c->busy = false;
    bool reopen = c->close_after;
    if (reopen) {
        /* Reconnect before the callback queues the next request, so that
         * request is never written to a socket the server is closing. */
        conn_close(c);
        if (!conn_connect(r, c)) {
            conn_fail(r, c);
            return false;
        }
    }
    if (c->body_overflow)
        r->err.parse++;
    on_response(r, c);
    c->body_len = 0;
    c->body_overflow = false;
    c->ps = PS_HEAD;
    return !reopen;
}

static void conn_parse(struct run *r, struct conn *c)
{
    size_t pos = 0;
    while (!c->dead) {
        const char *p = c->in + pos;
        size_t avail = c->in_len - pos;
        size_t n;
        const char *crlf;
        switch (c->ps) {
        case PS_HEAD: {
            const char *end = memmem(p, avail, "\r\n\r\n", 4);
            if (!end) {
                if (avail > HEAD_CAP)
                    goto bad;
                goto done;
            }
            size_t head_len = (size_t)(end - p) + 4;
            if (!parse_head(c, p, head_len))
                goto bad;
            pos += head_len;
            c->body_len = 0;
            if (c->chunked)
                c->ps = PS_CHUNK_SIZE;
            else if (c->remaining >= 0)
                c->ps = PS_BODY_LEN;
            else
                c->ps = PS_BODY_EOF;
            if (c->kind == CONN_STREAM) {
                on_stream_head(r, c);
                if (c->dead)
                    return;
            }
            if (c->ps == PS_BODY_LEN && c->remaining == 0 && !message_done(r, c))
                return;
            break;
        }
        case PS_BODY_LEN:
            n = avail < (size_t)c->remaining ? avail : (size_t)c->remaining;
            if (n == 0)
                goto done;
            body_bytes(r, c, p, n);
            pos += n;
            c->remaining -= (int64_t)n;
            if (c->remaining == 0 && !message_done(r, c))
                return;
            break;
        case PS_BODY_EOF:
            if (avail == 0)
                goto done;
            body_bytes(r, c, p, avail);
            pos += avail;
            break;
        case PS_CHUNK_SIZE: {
            crlf = memmem(p, avail, "\r\n", 2);
            if (!crlf) {
                if (avail > 1024)
                    goto bad;
                goto done;
            }
            char *stop = NULL;
            long long size = strtoll(p, &stop, 16);
            if (stop == p || size < 0 || size > (long long)IN_CAP_MAX)
                goto bad;
            pos += (size_t)(crlf - p) + 2;
            c->remaining = size;
            c->ps = size ? PS_CHUNK_DATA : PS_CHUNK_TRAILER;
            break;
        }
        case PS_CHUNK_DATA:
            n = avail < (size_t)c->remaining ? avail : (size_t)c->remaining;
            if (n == 0)
                goto done;
            body_bytes(r, c, p, n);
            pos += n;
            c->remaining -= (int64_t)n;
            if (c->remaining == 0)
                c->ps = PS_CHUNK_CRLF;
            break;
        case PS_CHUNK_CRLF:
            if (avail < 2)
                goto done;
            if (p[0] != '\r' || p[1] != '\n')
                goto bad;
            pos += 2;
            c->ps = PS_CHUNK_SIZE;
            break;
        case PS_CHUNK_TRAILER:
            crlf = memmem(p, avail, "\r\n", 2);
            if (!crlf)
                goto done;
            pos += (size_t)(crlf - p) + 2;
            if (crlf == p && !message_done(r, c))
                return;
            break;
        }
    }
done:
    if (c->dead)
        return;
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    return;
bad:
    r->err.parse++;
    conn_fail(r, c);
}

static void conn_read(struct run *r, struct conn *c)
{
    for (int round = 0; round < 8 && !c->dead; round++) {
        if (c->in_cap - c->in_len < 2048) {
            if (c->in_cap >= IN_CAP_MAX) {
                r->err.parse++;
                conn_fail(r, c);
                return;
            }
            c->in_cap *= 2;
            c->in = xrealloc(c->in, c->in_cap);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(r, c);
            return;
        }
        if (n == 0) {
            if (c->kind == CONN_STREAM && c->ps == PS_BODY_EOF && c->in_len)
                conn_parse(r, c);
            if (c->dead)
                return;
            if (c->kind != CONN_STREAM && !c->busy && c->in_len == 0) {
                /* The server closed an idle keep-alive connection. */
                conn_close(c);
                if (!conn_connect(r, c))
                    conn_fail(r, c);
                return;
            }
            if (c->kind == CONN_STREAM && !r->closing)
                r->err.stream++;
            conn_fail(r, c);
            return;
        }
        c->in_len += (size_t)n;
        conn_parse(r, c);
        if ((size_t)n < c->in_cap / 2)
            return; /* drained, most likely */
    }
}

static void on_connected(struct run *r, struct conn *c);

static void conn_event(struct run *r, struct conn *c, uint32_t events)
{
    if (c->dead || c->fd < 0)
        return;
    if (!c->connected) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
            conn_fail(r, c);
            return;
        }
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof(peer);
        if (getpeername(c->fd, (struct sockaddr *)&peer, &peer_len) != 0)
            return; /* still connecting */
        c->connected = true;
        on_connected(r, c);
        conn_flush(r, c);
    } else if (events & EPOLLOUT) {
        conn_flush(r, c);
    }
    if (!c->dead && c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        conn_read(r, c);
}

static void pump(struct run *r, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(r->epfd, events, 256, timeout_ms);
    for (int i = 0; i < n; i++)
        conn_event(r, events[i].data.ptr, events[i].events);
}

/* ---- the server-sent-events parser -------------------------------------- */

static void on_sse_event(struct run *r, struct participant *me, const struct sse *ev);

static void sse_line(struct run *r, struct conn *c, char *line, size_t len)
{
    struct sse *s = c->sse;
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0) {
        if (s->has_data)
            on_sse_event(r, c->owner, s);
        s->event[0] = '\0';
        s->has_id = false;
        s->data_len = 0;
        s->has_data = false;
        return;
    }
    if (line[0] == ':') {
        r->comments++;
        return;
    }
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    if (value < line + len && *value == ' ')
        value++;
    size_t value_len = (size_t)(line + len - value);
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        size_t extra = s->has_data ? 1 : 0;
        if (s->data_len + extra + value_len + 1 > sizeof(s->data)) {
            r->err.parse++;
            return;
        }
        if (extra)
            s->data[s->data_len++] = '\n';
        memcpy(s->data + s->data_len, value, value_len);
        s->data_len += value_len;
        s->data[s->data_len] = '\0';
        s->has_data = true;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        snprintf(s->event, sizeof(s->event), "%.*s", (int)value_len, value);
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        snprintf(s->id, sizeof(s->id), "%.*s", (int)value_len, value);
        s->has_id = true;
    }
}

static void sse_feed(struct run *r, struct conn *c, const char *p, size_t n)
{
    struct sse *s = c->sse;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (s->line_len + take >= sizeof(s->line)) {
            s->overflow = true;
            s->line_len = 0;
        } else {
            memcpy(s->line + s->line_len, p, take);
            s->line_len += take;
        }
        if (!nl)
            return;
        p += take + 1;
        n -= take + 1;
        if (s->overflow) {
            r->err.parse++;
            s->overflow = false;
        } else {
            sse_line(r, c, s->line, s->line_len);
        }
        s->line_len = 0;
    }
}

/* ---- requests ------------------------------------------------------------ */

static void send_create(struct run *r, struct conn *c, const struct pair *pair)
{
    char body[256], req[1024];
    int body_len = snprintf(body, sizeof(body), "{\"set\":\"%s\",\"join_verifier\":\"%s\"}",
                            r->opt->set, pair->verifier_b64);
    int n = snprintf(req, sizeof(req),
                     "POST /api/rooms HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     r->opt->host, body_len, body);
    conn_send(r, c, req, (size_t)n);
}

static void send_join(struct run *r, struct conn *c, const struct pair *pair)
{
    char body[256], req[1024];
    int body_len = snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", pair->secret_b64);
    int n = snprintf(req, sizeof(req),
                     "POST /api/rooms/%s/join HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     pair->room, r->opt->host, body_len, body);
    conn_send(r, c, req, (size_t)n);
}

/* What a browser sends besides the request's own fields, cut or padded to
 * bring the head to about head_bytes: servers keep a stream's request head
 * for the stream's whole life. */
static size_t browser_fields(unsigned head_bytes, size_t head_so_far, char *out, size_t cap)
{
    static const char fields[] =
        "User-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36\r\n"
        "Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
        "Cache-Control: no-cache\r\nPragma: no-cache\r\nSec-Fetch-Site: same-origin\r\n"
        "Sec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n"
        "sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n"
        "sec-ch-ua-mobile: ?1\r\nsec-ch-ua-platform: \"Android\"\r\n";
    if (!head_bytes || head_so_far + 2 >= head_bytes)
        return 0;
    size_t want = head_bytes - head_so_far - 2; /* the blank line ends the head */
    size_t n = sizeof(fields) - 1;
    if (want <= n) {
        memcpy(out, fields, n);
        return n;
    }
    size_t pad = want - n - strlen("Referer: \r\n");
    if (n + pad + 16 > cap)
        pad = cap - n - 16;
    memcpy(out, fields, n);
    memcpy(out + n, "Referer: ", 9);
    memset(out + n + 9, 'r', pad);
    memcpy(out + n + 9 + pad, "\r\n", 2);
    return n + 9 + pad + 2;
}

static void send_subscribe(struct run *r, struct participant *p)
{
    char req[HEAD_CAP], extra[HEAD_CAP / 2];
    int n;
    if (r->opt->target == TARGET_THOU)
        n = snprintf(req, sizeof(req),
                     "GET /api/rooms/%s/events HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n",
                     p->pair->room, r->opt->host, p->token);
    else
        n = snprintf(req, sizeof(req),
                     "GET /sub/%s-%c HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n",
                     p->pair->room, 'A' + p->role, r->opt->host);
    size_t len = (size_t)n;
    size_t more = browser_fields(r->opt->head_bytes, len, extra, sizeof(extra));
    memcpy(req + len, extra, more);
    len += more;
    memcpy(req + len, "\r\n", 2);
    conn_send(r, p->stream, req, len + 2);
}

/* Post the sender's next message to its partner. */
static void post_next(struct run *r, struct participant *me)
{
    uint64_t counter = me->sent + 1;
    const char *cipher = payload_for(me->index, counter);
    char body[1024], req[2048];
    int body_len, n;
    if (r->opt->target == TARGET_THOU) {
        body_len = snprintf(body, sizeof(body),
                            "{\"type\":\"note\",\"ciphertext\":\"%.*sAAA\",\"counter\":%llu}",
                            CIPHER_RANDOM, cipher, (unsigned long long)counter);
        n = snprintf(req, sizeof(req),
                     "POST /api/rooms/%s/events HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     me->pair->room, r->opt->host, me->token, body_len, body);
    } else {
        body_len = snprintf(body, sizeof(body),
                            "{\"from\":%u,\"counter\":%llu,\"ciphertext\":\"%.*sAAA\"}", me->index,
                            (unsigned long long)counter, CIPHER_RANDOM, cipher);
        n = snprintf(req, sizeof(req),
                     "POST /pub/%s-%c HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     me->pair->room, 'A' + (1 - me->role), r->opt->host, body_len, body);
    }
    if (n <= 0 || (size_t)n >= sizeof(req)) {
        r->err.parse++;
        me->stopped = true;
        return;
    }
    me->sent = counter;
    me->in_flight = true;
    me->sent_ns[counter % RING] = now_ns();
    r->sent++;
    conn_send(r, me->poster, req, (size_t)n);
}

/* ---- scenario logic -------------------------------------------------------- */

static void setup_next_pair(struct run *r, struct setup_worker *w)
{
    w->pair = NULL;
    if (r->setup_failed || r->setup_next >= r->n_pairs)
        return;
    w->pair = &r->pairs[r->setup_next++];
    send_create(r, w->conn, w->pair);
}

static void on_setup_response(struct run *r, struct conn *c)
{
    struct setup_worker *w = c->owner;
    struct pair *pair = w->pair;
    if (!pair)
        return;
    if (!pair->p[0].token[0]) {
        if (c->status != 201 ||
            !json_string_field(c->body, c->body_len, "room", pair->room, sizeof(pair->room)) ||
            !json_string_field(c->body, c->body_len, "token", pair->p[0].token,
                               sizeof(pair->p[0].token))) {
            fprintf(stderr, "loadgen: create room: HTTP %d %.*s\n", c->status,
                    (int)(c->body_len < 300 ? c->body_len : 300), c->body);
            r->err.http++;
            r->setup_failed = true;
            return;
        }
        send_join(r, c, pair);
        return;
    }
    if (c->status != 200 || !json_string_field(c->body, c->body_len, "token", pair->p[1].token,
                                               sizeof(pair->p[1].token))) {
        fprintf(stderr, "loadgen: join room: HTTP %d %.*s\n", c->status,
                (int)(c->body_len < 300 ? c->body_len : 300), c->body);
        r->err.http++;
        r->setup_failed = true;
        return;
    }
    pair->ready = true;
    r->setup_done++;
    setup_next_pair(r, w);
}

static void record_latency(struct run *r, int64_t ns)
{
    if (r->n_lat < MAX_LAT_SAMPLES)
        r->lat[r->n_lat++] = ns;
}

static void finish_round_if_done(struct run *r, struct pair *pair)
{
    if (r->scenario != SC_LIGHT || !pair->round_open)
        return;
    struct participant *sender = &pair->p[pair->turn];
    struct participant *receiver = &pair->p[1 - pair->turn];
    if (sender->in_flight || receiver->received < sender->sent)
        return;
    pair->round_open = false;
    pair->turn ^= 1;
    pair->next_round_ns = now_ns() + (int64_t)r->opt->interval_ms * NS_PER_MS;
}

static void on_post_response(struct run *r, struct conn *c)
{
    struct participant *me = c->owner;
    if (!me->in_flight) {
        r->err.parse++;
        return;
    }
    me->in_flight = false;
    if (c->status < 200 || c->status > 299) {
        fprintf(stderr, "loadgen: post: HTTP %d %.*s\n", c->status,
                (int)(c->body_len < 300 ? c->body_len : 300), c->body);
        r->err.http++;
        me->stopped = true;
        me->sent--; /* the server did not take it: nothing to deliver */
        return;
    }
    if (r->opt->target == TARGET_THOU) {
        uint64_t seq = 0;
        if (!json_uint_field(c->body, c->body_len, "seq", &seq))
            r->err.parse++;
    }
    me->acked = me->sent;
    r->acked++;
    if (r->scenario == SC_SATURATION && r->posting && !me->stopped)
        post_next(r, me);
    else
        finish_round_if_done(r, me->pair);
}

static void on_response(struct run *r, struct conn *c)
{
    if (c->kind == CONN_SETUP)
        on_setup_response(r, c);
    else if (c->kind == CONN_POSTER)
        on_post_response(r, c);
}

static void on_stream_head(struct run *r, struct conn *c)
{
    struct participant *me = c->owner;
    if (c->status != 200) {
        fprintf(stderr, "loadgen: stream: HTTP %d\n", c->status);
        r->err.http++;
        me->stream_failed = true;
        r->streams_failed++;
        conn_close(c);
        c->dead = true;
        return;
    }
    me->stream_open = true;
    r->streams_open++;
}

static void on_connected(struct run *r, struct conn *c)
{
    if (c->kind == CONN_POSTER)
        r->posters_connected++;
}

static void on_conn_failure(struct run *r, struct conn *c)
{
    if (r->closing)
        return;
    r->err.conn++;
    if (c->kind == CONN_SETUP) {
        r->setup_failed = true;
    } else if (c->kind == CONN_STREAM) {
        struct participant *me = c->owner;
        if (!me->stream_open && !me->stream_failed) {
            me->stream_failed = true;
            r->streams_failed++;
        }
        me->stream_open = false;
    } else {
        struct participant *me = c->owner;
        me->stopped = true;
        if (me->in_flight) {
            me->in_flight = false;
            me->sent--; /* unknown fate; the loss check would count it */
        }
    }
}

static bool parse_decimal(const char *text, long long *out)
{
    if (!*text)
        return false;
    long long value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || p - text >= 18)
            return false;
        value = value * 10 + (*p - '0');
    }
    *out = value;
    return true;
}

/* One event on my stream: check it is my partner's next message, intact. */
static void on_sse_event(struct run *r, struct participant *me, const struct sse *ev)
{
    bool thou = r->opt->target == TARGET_THOU;
    if (thou && ev->has_id) {
        long long id = 0;
        if (!parse_decimal(ev->id, &id) || id <= me->last_id)
            r->err.order++;
        me->last_id = id;
    }
    const char *type = ev->event[0] ? ev->event : "message";
    if (strcmp(type, thou ? "note" : "message") != 0)
        return; /* presence, joined, ... */
    int64_t now = now_ns();
    struct participant *partner = &me->pair->p[1 - me->role];
    uint64_t counter = 0;
    int sender = -1; /* 0: me, 1: partner, -1: someone else */
    if (thou) {
        char role[4];
        if (json_string_field(ev->data, ev->data_len, "role", role, sizeof(role)) && !role[1])
            sender = role[0] == 'A' + me->role ? 0 : role[0] == 'A' + partner->role ? 1 : -1;
    } else {
        uint64_t from = 0;
        if (json_uint_field(ev->data, ev->data_len, "from", &from))
            sender = from == partner->index ? 1 : -1;
    }
    if (!json_uint_field(ev->data, ev->data_len, "counter", &counter)) {
        r->err.parse++;
        return;
    }
    if (sender == 0) {
        /* thou echoes a sender's own events on its own stream. */
        if (counter != me->echoes + 1)
            r->err.order++;
        if (counter > me->echoes)
            me->echoes = counter;
        r->echoes++;
        return;
    }
    if (sender < 0) {
        r->err.wrong_recipient++;
        return;
    }
    if (counter <= me->received) {
        r->err.duplicate++;
        return;
    }
    if (counter != me->received + 1)
        r->err.order++; /* a gap: something before it is missing */
    me->received = counter;
    if (counter > partner->sent) {
        r->err.wrong_recipient++; /* never sent by the partner */
        return;
    }
    if (!payload_matches(partner->index, counter, ev->data, ev->data_len))
        r->err.payload++;
    if (partner->sent_ns && partner->sent - counter < RING)
        record_latency(r, now - partner->sent_ns[counter % RING]);
    r->delivered++;
    if (now <= r->t_end)
        r->delivered_window++;
    finish_round_if_done(r, me->pair);
}

/* ---- phases ------------------------------------------------------------------ */

static bool wait_until(struct run *r, bool (*done)(struct run *), int64_t timeout_ns)
{
    int64_t deadline = now_ns() + timeout_ns;
    while (!done(r)) {
        if (now_ns() >= deadline)
            return false;
        pump(r, 10);
    }
    return true;
}

static bool setup_finished(struct run *r)
{
    return r->setup_failed || r->setup_done == r->n_pairs;
}

static bool setup_rooms(struct run *r)
{
    if (r->opt->target == TARGET_NCHAN) {
        uint32_t tag = randombytes_random();
        for (unsigned i = 0; i < r->n_pairs; i++) {
            snprintf(r->pairs[i].room, sizeof(r->pairs[i].room), "b%08x%u", tag, i);
            r->pairs[i].ready = true;
        }
        return true;
    }
    for (unsigned i = 0; i < r->n_pairs; i++) {
        struct pair *pair = &r->pairs[i];
        unsigned char secret[32], verifier[32];
        randombytes_buf(secret, sizeof(secret));
        crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
        sodium_bin2base64(pair->secret_b64, sizeof(pair->secret_b64), secret, sizeof(secret),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_bin2base64(pair->verifier_b64, sizeof(pair->verifier_b64), verifier,
                          sizeof(verifier), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    unsigned n_workers = r->n_pairs < SETUP_CONNS ? r->n_pairs : SETUP_CONNS;
    struct setup_worker *workers = xcalloc(n_workers, sizeof(*workers));
    for (unsigned i = 0; i < n_workers; i++) {
        workers[i].conn = conn_new(r, CONN_SETUP, &workers[i]);
        if (workers[i].conn->dead)
            r->setup_failed = true;
        else
            setup_next_pair(r, &workers[i]);
    }
    bool finished = wait_until(r, setup_finished, SETUP_TIMEOUT);
    bool ok = finished && !r->setup_failed;
    if (!finished)
        r->err.timeout++;
    /* The setup connections are done; close them so they do not count. */
    for (unsigned i = 0; i < n_workers; i++) {
        struct conn *c = workers[i].conn;
        conn_close(c);
        c->dead = true;
    }
    free(workers);
    return ok;
}

static bool streams_settled(struct run *r)
{
    return r->streams_open + r->streams_failed == 2 * r->n_pairs;
}

static bool open_streams(struct run *r)
{
    unsigned total = 2 * r->n_pairs, next = 0;
    int64_t deadline = now_ns() + OPEN_TIMEOUT;
    while (!streams_settled(r)) {
        while (next < total && next - (r->streams_open + r->streams_failed) < CONNECT_WINDOW) {
            struct participant *p = &r->pairs[next / 2].p[next % 2];
            p->stream = conn_new(r, CONN_STREAM, p);
            if (p->stream->dead) {
                p->stream_failed = true;
                r->streams_failed++;
                r->err.conn++;
            } else {
                send_subscribe(r, p);
            }
            next++;
        }
        if (now_ns() >= deadline) {
            r->err.timeout++;
            return false;
        }
        pump(r, 10);
    }
    return r->streams_failed == 0;
}

static bool posters_ready(struct run *r)
{
    return r->posters_connected >= 2 * r->n_busy || r->err.conn > 0;
}

static bool open_posters(struct run *r)
{
    for (unsigned i = 0; i < r->n_busy; i++) {
        for (int role = 0; role < 2; role++) {
            struct participant *p = &r->pairs[i].p[role];
            p->sent_ns = xcalloc(RING, sizeof(*p->sent_ns));
            p->poster = conn_new(r, CONN_POSTER, p);
            if (p->poster->dead)
                r->err.conn++;
        }
    }
    if (!wait_until(r, posters_ready, OPEN_TIMEOUT)) {
        r->err.timeout++;
        return false;
    }
    return r->err.conn == 0;
}

static bool drained(struct run *r)
{
    for (unsigned i = 0; i < r->n_busy; i++) {
        for (int role = 0; role < 2; role++) {
            const struct participant *p = &r->pairs[i].p[role];
            const struct participant *partner = &r->pairs[i].p[1 - role];
            if (p->in_flight || (partner->stream_open && partner->received < p->sent))
                return false;
        }
    }
    return true;
}

static void count_losses(struct run *r)
{
    for (unsigned i = 0; i < r->n_busy; i++) {
        for (int role = 0; role < 2; role++) {
            const struct participant *p = &r->pairs[i].p[role];
            const struct participant *partner = &r->pairs[i].p[1 - role];
            if (partner->received < p->acked)
                r->err.lost += p->acked - partner->received;
        }
    }
}

/* Hold the posting phase for the run's seconds, then drain. */
static void run_posting(struct run *r)
{
    r->posting = true;
    int64_t start = r->t_start;
    for (unsigned i = 0; i < r->n_busy; i++) {
        struct pair *pair = &r->pairs[i];
        if (r->scenario == SC_SATURATION) {
            post_next(r, &pair->p[0]);
            post_next(r, &pair->p[1]);
        } else {
            /* Spread the first rounds over one interval: no lockstep bursts. */
            pair->next_round_ns = start + (int64_t)r->opt->interval_ms * NS_PER_MS * i / r->n_busy;
        }
    }
    for (int64_t now = now_ns(); now < r->t_end; now = now_ns()) {
        if (r->scenario == SC_LIGHT) {
            for (unsigned i = 0; i < r->n_busy; i++) {
                struct pair *pair = &r->pairs[i];
                struct participant *sender = &pair->p[pair->turn];
                if (!pair->round_open && !sender->stopped && now >= pair->next_round_ns) {
                    pair->round_open = true;
                    post_next(r, sender);
                }
            }
        }
        int64_t left_ms = (r->t_end - now) / NS_PER_MS;
        pump(r, r->scenario == SC_LIGHT ? 1 : (int)(left_ms < 10 ? left_ms + 1 : 10));
    }
    r->posting = false;
}

/* ---- results ------------------------------------------------------------------- */

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e6;
}

static uint64_t total_errors(const struct errors *e)
{
    return e->http + e->wrong_recipient + e->order + e->duplicate + e->lost + e->payload +
           e->stream + e->conn + e->timeout + e->parse;
}

struct measures {
    double hold_s;
    long rss_before_kb, rss_open_kb, rss_after_kb;
    unsigned long long cpu_ticks, machine_ticks;
    int64_t client_cpu_ns;
    double setup_s;
};

static void print_result(const struct run *r, const struct measures *m)
{
    const struct options *opt = r->opt;
    double ticks_per_s = (double)sysconf(_SC_CLK_TCK);
    double server_cpu_s = (double)m->cpu_ticks / ticks_per_s;
    double hold = m->hold_s > 0 ? m->hold_s : 1;
    unsigned streams = 2 * r->n_pairs;
    uint64_t errors = total_errors(&r->err);
    /* CPU used by everything else on the machine during the hold: a busy
     * neighbour makes a run worth repeating. */
    double client_cpu_s = (double)m->client_cpu_ns / 1e9;
    double other_cpu_s = (double)m->machine_ticks / ticks_per_s - server_cpu_s - client_cpu_s;
    printf("{\"target\":\"%s\",\"scenario\":\"%s%s\",\"run\":%u,\"pairs\":%u,\"streams\":%u,"
           "\"idle_beside\":%u,\"head_bytes\":%u,\"seconds\":%u,\"ok\":%s,\"errors\":%llu,\"setup_"
           "s\":%.2f,\"server_cpu_pct\":%.1f,"
           "\"client_cpu_pct\":%.1f,\"other_cpu_pct\":%.1f",
           opt->target == TARGET_THOU ? "thou" : "nchan", scenario_names[r->scenario],
           r->n_pairs > r->n_busy ? "+idle" : "", opt->run, r->n_busy, 2 * r->n_busy,
           2 * (r->n_pairs - r->n_busy), opt->head_bytes, r->seconds, errors ? "false" : "true",
           (unsigned long long)errors, m->setup_s, 100.0 * server_cpu_s / hold,
           100.0 * client_cpu_s / hold, other_cpu_s > 0 ? 100.0 * other_cpu_s / hold : 0.0);
    if (r->scenario == SC_IDLE) {
        double per_stream =
            streams ? (double)(m->rss_after_kb - m->rss_before_kb) * 1024.0 / streams : 0;
        printf(",\"rss_before_kb\":%ld,\"rss_open_kb\":%ld,\"rss_after_kb\":%ld,"
               "\"rss_per_stream_b\":%.0f,\"streams_open\":%u,\"comments\":%llu",
               m->rss_before_kb, m->rss_open_kb, m->rss_after_kb, per_stream, r->streams_open,
               (unsigned long long)r->comments);
    } else {
        int64_t *sorted = xcalloc(r->n_lat, sizeof(*sorted));
        memcpy(sorted, r->lat, r->n_lat * sizeof(*sorted));
        qsort(sorted, r->n_lat, sizeof(*sorted), compare_i64);
        double rate = (double)r->delivered_window / hold;
        double us_per_msg =
            r->delivered_window ? server_cpu_s * 1e6 / (double)r->delivered_window : 0;
        printf(",\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,\"echoes\":%llu,"
               "\"msgs_per_s\":%.1f,\"cpu_us_per_msg\":%.1f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.3f",
               (unsigned long long)r->sent, (unsigned long long)r->acked,
               (unsigned long long)r->delivered, (unsigned long long)r->echoes, rate, us_per_msg,
               percentile_ms(sorted, r->n_lat, 0.50), percentile_ms(sorted, r->n_lat, 0.95),
               percentile_ms(sorted, r->n_lat, 0.99),
               r->n_lat ? (double)sorted[r->n_lat - 1] / 1e6 : 0.0);
        free(sorted);
    }
    printf(",\"err_http\":%llu,\"err_wrong_recipient\":%llu,\"err_order\":%llu,"
           "\"err_duplicate\":%llu,\"err_lost\":%llu,\"err_payload\":%llu,\"err_stream\":%llu,"
           "\"err_conn\":%llu,\"err_timeout\":%llu,\"err_parse\":%llu}\n",
           (unsigned long long)r->err.http, (unsigned long long)r->err.wrong_recipient,
           (unsigned long long)r->err.order, (unsigned long long)r->err.duplicate,
           (unsigned long long)r->err.lost, (unsigned long long)r->err.payload,
           (unsigned long long)r->err.stream, (unsigned long long)r->err.conn,
           (unsigned long long)r->err.timeout, (unsigned long long)r->err.parse);
    fflush(stdout);
}

/* Run one scenario from setup to teardown; returns the number of errors,
 * or counts a run that produced nothing to check as one error. */
static uint64_t run_scenario(const struct options *opt, enum scenario scenario, unsigned n_busy,
                             unsigned seconds)
{
    unsigned n_pairs = n_busy;
    if (scenario != SC_IDLE)
        n_pairs += (opt->idle_beside + 1) / 2;
    struct run run = {
        .opt = opt, .scenario = scenario, .n_pairs = n_pairs, .n_busy = n_busy, .seconds = seconds};
    struct run *r = &run;
    struct measures m = {0};
    pid_t pids[MAX_PIDS];
    size_t n_pids = server_pids(opt, pids, MAX_PIDS);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }
    r->pairs = xcalloc(n_pairs, sizeof(*r->pairs));
    for (unsigned i = 0; i < n_pairs; i++) {
        struct pair *pair = &r->pairs[i];
        pair->index = i;
        for (int role = 0; role < 2; role++) {
            pair->p[role].pair = pair;
            pair->p[role].role = role;
            pair->p[role].index = i * 2 + (unsigned)role;
        }
    }
    if (scenario != SC_IDLE)
        r->lat = xcalloc(MAX_LAT_SAMPLES, sizeof(*r->lat));
    r->t_end = INT64_MAX;

    int64_t setup_start = now_ns();
    bool ok = setup_rooms(r);
    m.setup_s = (double)(now_ns() - setup_start) / 1e9;
    if (ok) {
        m.rss_before_kb = sum_rss_kb(pids, n_pids);
        ok = open_streams(r);
    }
    if (ok && scenario == SC_IDLE) {
        int64_t settle_end = now_ns() + IDLE_SETTLE;
        while (now_ns() < settle_end)
            pump(r, 10);
        m.rss_open_kb = sum_rss_kb(pids, n_pids);
        unsigned long long cpu0 = sum_cpu_ticks(pids, n_pids), machine0 = machine_busy_ticks();
        int64_t self0 = self_cpu_ns();
        r->t_start = now_ns();
        r->t_end = r->t_start + (int64_t)seconds * NS_PER_S;
        while (now_ns() < r->t_end)
            pump(r, 50);
        m.hold_s = (double)(now_ns() - r->t_start) / 1e9;
        m.cpu_ticks = sum_cpu_ticks(pids, n_pids) - cpu0;
        m.machine_ticks = machine_busy_ticks() - machine0;
        m.client_cpu_ns = self_cpu_ns() - self0;
        m.rss_after_kb = sum_rss_kb(pids, n_pids);
        if (r->streams_open != 2 * n_pairs || r->err.stream)
            ok = false;
    } else if (ok) {
        ok = open_posters(r);
        if (ok) {
            unsigned long long cpu0 = sum_cpu_ticks(pids, n_pids);
            unsigned long long machine0 = machine_busy_ticks();
            int64_t self0 = self_cpu_ns();
            r->t_start = now_ns();
            r->t_end = r->t_start + (int64_t)seconds * NS_PER_S;
            run_posting(r);
            m.hold_s = (double)(now_ns() - r->t_start) / 1e9;
            m.cpu_ticks = sum_cpu_ticks(pids, n_pids) - cpu0;
            m.machine_ticks = machine_busy_ticks() - machine0;
            m.client_cpu_ns = self_cpu_ns() - self0;
            if (!wait_until(r, drained, DRAIN_TIMEOUT))
                r->err.timeout++;
            count_losses(r);
            if (r->delivered == 0)
                ok = false;
        }
    }
    r->closing = true;
    uint64_t errors = total_errors(&r->err);
    if (!ok && errors == 0)
        errors = 1;
    print_result(r, &m);

    for (size_t i = 0; i < r->n_conns; i++)
        conn_free(r->conns[i]);
    free(r->conns);
    for (unsigned i = 0; i < n_pairs; i++) {
        free(r->pairs[i].p[0].sent_ns);
        free(r->pairs[i].p[1].sent_ns);
    }
    free(r->pairs);
    free(r->lat);
    close(r->epfd);
    return errors;
}

/* ---- command line -------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --target thou|nchan --port N [--port2 N] (--scenario "
            "idle|light|saturation | "
            "--smoke)\n"
            "               [--host 127.0.0.1] [--pairs N] [--seconds N] [--interval-ms N]\n"
            "               [--server-pid PID]... [--run N] [--set ID]\n"
            "               [--head-bytes N] [--idle-beside N]\n"
            "\n"
            "Drives thou or nginx + nchan on a loopback address with two-person\n"
            "conversations and prints one JSON line per run. --server-pid names a\n"
            "server process (its direct children count too) for RSS and CPU figures.\n"
            "Defaults: idle 1000 pairs, light 100, saturation 200; 10 s; light rounds\n"
            "every 100 ms. --head-bytes pads each stream's request head with a browser's\n"
            "fields to about N bytes (servers keep it for the stream's life). --idle-beside\n"
            "holds N idle streams open beside the busy pairs of light or saturation.\n"
            "--port2 sends each pair's B to a second instance on that port (partners\n"
            "split across two instances sharing one database).\n"
            "--smoke runs all three scenarios with 5 pairs for 1 s each and\n"
            "exits 1 on any delivery error. At most %d s per run.\n",
            MAX_SECS);
}

static bool parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
    long long value = 0;
    if (!parse_decimal(text, &value) || value < min || value > max)
        return false;
    *out = (unsigned)value;
    return true;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->scenario = -1;
    opt->seconds = 10;
    opt->interval_ms = 100;
    opt->set = "couples-short";
    snprintf(opt->host, sizeof(opt->host), "127.0.0.1");
    bool have_target = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = strcmp(arg, "--smoke") != 0 && strcmp(arg, "--help") != 0;
        if (takes_value && !value) {
            fprintf(stderr, "loadgen: '%s' needs a value\n", arg);
            return 2;
        }
        unsigned number = 0;
        if (strcmp(arg, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(arg, "--smoke") == 0) {
            opt->smoke = true;
            continue;
        } else if (strcmp(arg, "--target") == 0) {
            if (strcmp(value, "thou") == 0)
                opt->target = TARGET_THOU;
            else if (strcmp(value, "nchan") == 0)
                opt->target = TARGET_NCHAN;
            else
                goto bad_value;
            have_target = true;
        } else if (strcmp(arg, "--scenario") == 0) {
            opt->scenario = -1;
            for (int s = 0; s < 3; s++)
                if (strcmp(value, scenario_names[s]) == 0)
                    opt->scenario = s;
            if (opt->scenario < 0)
                goto bad_value;
        } else if (strcmp(arg, "--host") == 0) {
            if (strlen(value) >= sizeof(opt->host))
                goto bad_value;
            snprintf(opt->host, sizeof(opt->host), "%s", value);
        } else if (strcmp(arg, "--port2") == 0) {
            if (!parse_uint(value, 1, 65535, &opt->port2))
                goto bad_value;
        } else if (strcmp(arg, "--port") == 0) {
            if (!parse_uint(value, 1, 65535, &opt->port))
                goto bad_value;
        } else if (strcmp(arg, "--pairs") == 0) {
            if (!parse_uint(value, 1, MAX_PAIRS, &opt->pairs))
                goto bad_value;
        } else if (strcmp(arg, "--seconds") == 0) {
            if (!parse_uint(value, 1, MAX_SECS, &opt->seconds))
                goto bad_value;
        } else if (strcmp(arg, "--interval-ms") == 0) {
            if (!parse_uint(value, 1, 10000, &opt->interval_ms))
                goto bad_value;
        } else if (strcmp(arg, "--run") == 0) {
            if (!parse_uint(value, 0, 1000000, &opt->run))
                goto bad_value;
        } else if (strcmp(arg, "--set") == 0) {
            if (strlen(value) > 64 || strpbrk(value, "\"\\"))
                goto bad_value;
            opt->set = value;
        } else if (strcmp(arg, "--head-bytes") == 0) {
            if (!parse_uint(value, 0, HEAD_CAP / 2, &opt->head_bytes))
                goto bad_value;
        } else if (strcmp(arg, "--idle-beside") == 0) {
            if (!parse_uint(value, 0, MAX_PAIRS, &opt->idle_beside))
                goto bad_value;
        } else if (strcmp(arg, "--server-pid") == 0) {
            if (!parse_uint(value, 1, 1u << 30, &number) || opt->n_pids == MAX_PIDS / 4)
                goto bad_value;
            opt->pids[opt->n_pids++] = (pid_t)number;
        } else {
            fprintf(stderr, "loadgen: unknown option '%s'\n", arg);
            usage(stderr);
            return 2;
        }
        i++;
        continue;
    bad_value:
        fprintf(stderr, "loadgen: bad value '%s' for %s\n", value, arg);
        return 2;
    }
    if (!have_target || !opt->port || (opt->scenario < 0 && !opt->smoke)) {
        usage(stderr);
        return 2;
    }
    /* Loopback only: this tool floods whatever it is pointed at. */
    opt->addr.sin_family = AF_INET;
    opt->addr.sin_port = htons((uint16_t)opt->port);
    if (inet_pton(AF_INET, opt->host, &opt->addr.sin_addr) != 1 ||
        (ntohl(opt->addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: --host must be an IPv4 loopback address (127.x.x.x)\n");
        return 2;
    }
    opt->addr2 = opt->addr;
    opt->addr2.sin_port = htons((uint16_t)opt->port2);
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc)
        return rc;
    if (sodium_init() < 0) {
        fprintf(stderr, "loadgen: cannot initialise libsodium\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    payload_pool_init();

    if (opt.smoke) {
        alarm(300); /* a stuck smoke run ends here, not in CI's timeout */
        uint64_t errors = 0;
        unsigned pairs = opt.pairs ? opt.pairs : 5;
        for (int s = 0; s < 3; s++)
            errors += run_scenario(&opt, (enum scenario)s, pairs, 1);
        fprintf(stderr, "loadgen: smoke %s (%llu errors)\n", errors ? "FAILED" : "passed",
                (unsigned long long)errors);
        return errors ? 1 : 0;
    }
    static const unsigned default_pairs[] = {1000, 100, 200};
    unsigned pairs = opt.pairs ? opt.pairs : default_pairs[opt.scenario];
    alarm(opt.seconds + 240); /* setup, drain and slack; never hang */
    uint64_t errors = run_scenario(&opt, (enum scenario)opt.scenario, pairs, opt.seconds);
    return errors ? 1 : 0;
}
