#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
    abort();
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void random_b64(size_t n, char *out, size_t outlen)
{
    unsigned char bytes[128];
    if (n > sizeof(bytes) || sodium_init() < 0)
        abort();
    randombytes_buf(bytes, n);
    sodium_bin2base64(out, outlen, bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static const char *thou_bin(void)
{
    const char *bin = getenv("THOU_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "harness: THOU_BIN is not set\n");
        abort();
    }
    return bin;
}

char *read_file(const char *path, size_t *len)
{
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&data, &size);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    fclose(mem);
    if (len)
        *len = size;
    return data;
}

char *proc_log(const struct thou_proc *p, size_t *len)
{
    return read_file(p->log_path, len);
}

/* Wait for the "listening on http://ADDR:PORT" (or https://) line a start
 * writes. The log is appended across restarts, so only lines after offset
 * count. */
static bool wait_listening(struct thou_proc *p, size_t offset)
{
    for (long long deadline = now_ms() + 60000; now_ms() < deadline;) {
        size_t len = 0;
        char *log = proc_log(p, &len);
        const char *line = log && len > offset ? strstr(log + offset, "listening on http") : NULL;
        const char *scheme_end = line ? strstr(line, "://") : NULL;
        if (scheme_end) {
            const char *colon = strchr(scheme_end + 3, ':');
            p->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
            free(log);
            return p->port != 0;
        }
        free(log);
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return false;
        }
        usleep(20 * 1000);
    }
    return false;
}

/* The harness's own THOU_ settings: thou refuses THOU_ variables it does not know. */
static void unset_harness_env(void)
{
    unsetenv("THOU_VALGRIND");
    unsetenv("THOU_TEST_PG_URL");
    unsetenv("THOU_TEST_STORE");
}

static void spawn(struct thou_proc *p)
{
    size_t offset = 0;
    char *old = proc_log(p, &offset);
    free(old);

    const char *argv[64];
    size_t n = 0;
    /* THOU_VALGRIND=1 runs the server under memcheck; errors and definite
     * leaks turn its exit status into 99, which proc_stop() reports. */
    if (getenv("THOU_VALGRIND") && strcmp(getenv("THOU_VALGRIND"), "1") == 0) {
        argv[n++] = "/usr/bin/valgrind";
        argv[n++] = "--quiet";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--errors-for-leak-kinds=definite";
    }
    argv[n++] = thou_bin();
    argv[n++] = "serve";
    argv[n++] = "--config";
    argv[n++] = THOU_SOURCE_DIR "/config/thou.json";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--data-dir";
    argv[n++] = p->data_dir;
    argv[n++] = "--static-dir";
    argv[n++] = THOU_SOURCE_DIR "/static";
    argv[n++] = "--questions-dir";
    argv[n++] = THOU_SOURCE_DIR "/config/questions";
    if (p->store_url[0]) {
        argv[n++] = "--store-url";
        argv[n++] = p->store_url;
    }
    for (size_t i = 0; p->extra[i] && n < 62; i++)
        argv[n++] = p->extra[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        close(fd);
        unset_harness_env();
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    p->pid = pid;
    if (!wait_listening(p, offset)) {
        char *log = proc_log(p, NULL);
        fprintf(stderr, "harness: thou did not start; its log:\n%s\n", log ? log : "(none)");
        free(log);
        abort();
    }
}

const char *pg_cluster_url(void)
{
    const char *url = getenv("THOU_TEST_PG_URL");
    return url && *url ? url : NULL;
}

bool pg_mode(void)
{
    const char *store = getenv("THOU_TEST_STORE");
    return store && strcmp(store, "postgresql") == 0;
}

void pg_new_database(char *url, size_t urllen)
{
    const char *cluster = pg_cluster_url();
    if (!cluster) {
        fprintf(stderr, "harness: THOU_TEST_PG_URL is not set (script/test sets it)\n");
        abort();
    }
    static unsigned counter;
    char name[64], sql[128];
    snprintf(name, sizeof(name), "thou_it_%ld_%u_%lld", (long)getpid(), counter++, wall_ms());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGconn *conn = PQconnectdb(cluster);
    PGresult *res = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql) : NULL;
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "harness: cannot create database %s: %s\n", name, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    if (!ok)
        abort();
    /* The cluster's URL names its maintenance database last: swap the name. */
    const char *slash = strrchr(cluster, '/');
    snprintf(url, urllen, "%.*s/%s", (int)(slash - cluster), cluster, name);
}

void proc_start_on(struct thou_proc *p, const char *store_url, const char *const *extra)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->store_url, sizeof(p->store_url), "%s", store_url);
    snprintf(p->dir, sizeof(p->dir), "/tmp/thou-it-XXXXXX");
    if (!mkdtemp(p->dir))
        die("mkdtemp");
    snprintf(p->log_path, sizeof(p->log_path), "%s/server.log", p->dir);
    snprintf(p->data_dir, sizeof(p->data_dir), "%s/data", p->dir);
    for (size_t i = 0; extra && extra[i] && i + 1 < sizeof(p->extra) / sizeof(p->extra[0]); i++)
        p->extra[i] = extra[i];
    spawn(p);
}

void proc_start(struct thou_proc *p, const char *const *extra)
{
    if (pg_mode()) {
        char url[300];
        pg_new_database(url, sizeof(url));
        proc_start_on(p, url, extra);
        return;
    }
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/thou-it-XXXXXX");
    if (!mkdtemp(p->dir))
        die("mkdtemp");
    snprintf(p->log_path, sizeof(p->log_path), "%s/server.log", p->dir);
    snprintf(p->data_dir, sizeof(p->data_dir), "%s/data", p->dir);
    for (size_t i = 0; extra && extra[i] && i + 1 < sizeof(p->extra) / sizeof(p->extra[0]); i++)
        p->extra[i] = extra[i];
    spawn(p);
}

void proc_sql(const struct thou_proc *p, const char *sql)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/thou.db", p->data_dir);
    sqlite3 *db = NULL;
    char *error = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, 10000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &error);
    char message[512];
    snprintf(message, sizeof(message), "%s", error ? error : sqlite3_errmsg(db));
    sqlite3_free(error);
    sqlite3_close(db);
    ck_assert_msg(rc == SQLITE_OK, "sql on %s failed: %s (%s)", path, message, sql);
}

void proc_restart(struct thou_proc *p)
{
    spawn(p);
}

int proc_stop(struct thou_proc *p)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    int status = 0;
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

void proc_kill9(struct thou_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

void proc_cleanup(struct thou_proc *p)
{
    /* Every test ends with a clean shutdown: exit status 0 (and, under
     * THOU_VALGRIND, no memory errors or leaks). */
    int status = p->pid > 0 ? proc_stop(p) : 0;
    if (status != 0) {
        char *log = proc_log(p, NULL);
        fprintf(stderr, "harness: thou exited with %d on SIGTERM; its log:\n%s\n", status,
                log ? log : "(none)");
        free(log);
    }
    ck_assert_int_eq(status, 0);
    if (p->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "harness: cannot remove %s\n", p->dir);
    }
}

int proc_run(const char *const *args, char *err, size_t errlen)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        const char *argv[64];
        size_t n = 0;
        argv[n++] = thou_bin();
        for (size_t i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        unset_harness_env();
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t used = 0;
    ssize_t r;
    char sink[1024];
    while ((r = read(pipefd[0], used + 1 < errlen ? err + used : sink,
                     used + 1 < errlen ? errlen - used - 1 : sizeof(sink))) > 0) {
        if (used + 1 < errlen)
            used += (size_t)r;
    }
    if (errlen)
        err[used < errlen ? used : errlen - 1] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct growbuf {
    char *data;
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct growbuf *b = userdata;
    size_t n = size * nmemb;
    b->data = realloc(b->data, b->len + n + 1);
    if (!b->data)
        abort();
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* With a CA file, requests go over HTTPS and trust only that certificate. */
static const char *tls_ca_file;

void http_use_tls(const char *ca_file)
{
    tls_ca_file = ca_file;
}

bool http_do(unsigned port, const char *method, const char *path, const char *const *headers,
             const char *body, size_t body_len, struct http_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    CURL *curl = curl_easy_init();
    if (!curl)
        return false;
    char url[2048];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", tls_ca_file ? "https" : "http", port, path);
    struct growbuf out = {0}, head = {0};
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (tls_ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, tls_ca_file);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    reply->body = out.data ? out.data : calloc(1, 1);
    reply->len = out.len;
    reply->headers = head.data ? head.data : calloc(1, 1);
    if (reply->len)
        reply->json = json_loadb(reply->body, reply->len, 0, NULL);
    return rc == CURLE_OK;
}

bool http_json(unsigned port, const char *method, const char *path, const char *token,
               const char *body, struct http_reply *reply)
{
    char auth[300];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers[1] = auth;
    }
    return http_do(port, method, path, headers, body, body ? strlen(body) : 0, reply);
}

bool http_header(const struct http_reply *reply, const char *name, char *out, size_t outlen)
{
    size_t name_len = strlen(name);
    for (const char *line = reply->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            snprintf(out, outlen, "%.*s", (int)(line + len - value), value);
            return true;
        }
        line = end ? end + 2 : line + len;
    }
    return false;
}

const char *http_error_code(const struct http_reply *reply)
{
    json_t *code = json_object_get(json_object_get(reply->json, "error"), "code");
    return json_is_string(code) ? json_string_value(code) : "";
}

void http_reply_free(struct http_reply *reply)
{
    free(reply->body);
    free(reply->headers);
    json_decref(reply->json);
    memset(reply, 0, sizeof(*reply));
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void consume(char *buf, size_t *len, size_t n)
{
    memmove(buf, buf + n, *len - n);
    *len -= n;
    buf[*len] = '\0';
}

/* Move whole chunks from raw to buf (chunked transfer coding). */
static void dechunk(struct sse_client *c)
{
    for (;;) {
        if (c->chunk_left < 0) {
            char *crlf = c->raw_len ? strstr(c->raw, "\r\n") : NULL;
            if (!crlf)
                return;
            long long size = strtoll(c->raw, NULL, 16);
            consume(c->raw, &c->raw_len, (size_t)(crlf - c->raw) + 2);
            if (size == 0) {
                c->eof = true;
                return;
            }
            c->chunk_left = size;
        }
        if (c->raw_len == 0)
            return;
        size_t take = c->raw_len < (size_t)c->chunk_left ? c->raw_len : (size_t)c->chunk_left;
        append(&c->buf, &c->len, &c->cap, c->raw, take);
        consume(c->raw, &c->raw_len, take);
        c->chunk_left -= (long long)take;
        if (c->chunk_left == 0) {
            if (c->raw_len < 2) {
                c->chunk_left = -2; /* expecting the CRLF after the chunk */
                return;
            }
            consume(c->raw, &c->raw_len, 2);
            c->chunk_left = -1;
        }
    }
}

static bool fill(struct sse_client *c, int timeout_ms)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return false;
    char chunk[8192];
    ssize_t n = read(c->fd, chunk, sizeof(chunk));
    if (n <= 0) {
        c->eof = true;
        return false;
    }
    append(&c->raw, &c->raw_len, &c->raw_cap, chunk, (size_t)n);
    if (c->chunk_left == -2 && c->raw_len >= 2) {
        consume(c->raw, &c->raw_len, 2);
        c->chunk_left = -1;
    }
    dechunk(c);
    return true;
}

static bool sse_connect(struct sse_client *c, unsigned port, const char *path,
                        const char *header_block);

bool sse_open(struct sse_client *c, unsigned port, const char *path, const char *token,
              const char *last_event_id)
{
    char block[512];
    snprintf(block, sizeof(block), "%s%s%s%s%s%s", token ? "Authorization: Bearer " : "",
             token ? token : "", token ? "\r\n" : "", last_event_id ? "Last-Event-ID: " : "",
             last_event_id ? last_event_id : "", last_event_id ? "\r\n" : "");
    return sse_connect(c, port, path, block);
}

bool sse_open_headers(struct sse_client *c, unsigned port, const char *path,
                      const char *const *headers)
{
    char block[1024] = "";
    for (size_t i = 0; headers && headers[i]; i++) {
        strncat(block, headers[i], sizeof(block) - strlen(block) - 3);
        strcat(block, "\r\n");
    }
    return sse_connect(c, port, path, block);
}

static bool sse_connect(struct sse_client *c, unsigned port, const char *path,
                        const char *header_block)
{
    memset(c, 0, sizeof(*c));
    c->chunk_left = -1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        return false;
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                     "%s\r\n",
                     path, header_block);
    if (write(c->fd, req, (size_t)n) != n)
        return false;
    /* Read the status line and headers. */
    for (long long deadline = now_ms() + 10000; now_ms() < deadline;) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        char chunk[4096];
        ssize_t r = read(c->fd, chunk, sizeof(chunk));
        if (r <= 0)
            break;
        append(&c->raw, &c->raw_len, &c->raw_cap, chunk, (size_t)r);
        char *end = strstr(c->raw, "\r\n\r\n");
        if (!end)
            continue;
        c->status = strtol(c->raw + strlen("HTTP/1.1 "), NULL, 10);
        bool chunked = strcasestr(c->raw, "transfer-encoding: chunked") != NULL &&
                       strcasestr(c->raw, "transfer-encoding: chunked") < end;
        consume(c->raw, &c->raw_len, (size_t)(end - c->raw) + 4);
        if (!chunked) {
            /* An error reply with a plain body: keep it readable in buf. */
            append(&c->buf, &c->len, &c->cap, c->raw, c->raw_len);
            c->raw_len = 0;
            return c->status == 200;
        }
        dechunk(c);
        return c->status == 200;
    }
    return false;
}

/* Parse one complete event block from buf if there is one. */
static bool take_event(struct sse_client *c, struct sse_event *ev)
{
    char *end = c->len ? strstr(c->buf, "\n\n") : NULL;
    if (!end)
        return false;
    memset(ev, 0, sizeof(*ev));
    ev->id = -1;
    size_t block_len = (size_t)(end - c->buf);
    char *block = strndup(c->buf, block_len);
    consume(c->buf, &c->len, block_len + 2);
    char *save = NULL;
    for (char *line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == ':')
            ev->comment = true;
        else if (strncmp(line, "id: ", 4) == 0)
            ev->id = strtoll(line + 4, NULL, 10);
        else if (strncmp(line, "event: ", 7) == 0)
            snprintf(ev->type, sizeof(ev->type), "%s", line + 7);
        else if (strncmp(line, "data: ", 6) == 0)
            ev->data = strdup(line + 6);
    }
    free(block);
    return true;
}

bool sse_next(struct sse_client *c, int timeout_ms, struct sse_event *ev)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (take_event(c, ev))
            return true;
        long long left = deadline - now_ms();
        if (left <= 0 || c->eof)
            return false;
        fill(c, (int)left);
    }
}

bool sse_next_event(struct sse_client *c, int timeout_ms, struct sse_event *ev)
{
    long long deadline = now_ms() + timeout_ms;
    while (sse_next(c, (int)(deadline - now_ms()), ev)) {
        if (!ev->comment)
            return true;
        sse_event_release(ev);
    }
    return false;
}

void sse_event_release(struct sse_event *ev)
{
    free(ev->data);
    ev->data = NULL;
}

void sse_close(struct sse_client *c)
{
    if (c->fd > 0)
        close(c->fd);
    free(c->buf);
    free(c->raw);
    memset(c, 0, sizeof(*c));
}

/* What a sanitizer build of the server reported, or NULL. */
const char *sanitizer_report(const char *log)
{
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:", "WARNING: ThreadSanitizer"};
    for (size_t i = 0; log && i < sizeof(markers) / sizeof(markers[0]); i++) {
        const char *found = strstr(log, markers[i]);
        if (found)
            return found;
    }
    return NULL;
}

void b64url32(const unsigned char bytes[32], char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, bytes, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

long test_pair_create(unsigned port, struct test_pair *pair)
{
    memset(pair, 0, sizeof(*pair));
    unsigned char secret[32], verifier[32];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    b64url32(secret, pair->secret, sizeof(pair->secret));
    b64url32(verifier, pair->verifier, sizeof(pair->verifier));
    char body[256], path[160];
    struct http_reply reply;
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
             pair->verifier);
    ck_assert(http_json(port, "POST", "/api/rooms", NULL, body, &reply));
    long status = reply.status;
    if (status == 201) {
        snprintf(pair->room, sizeof(pair->room), "%s",
                 json_string_value(json_object_get(reply.json, "room")));
        snprintf(pair->token_a, sizeof(pair->token_a), "%s",
                 json_string_value(json_object_get(reply.json, "token")));
    }
    http_reply_free(&reply);
    if (status != 201)
        return status;
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", pair->secret);
    snprintf(path, sizeof(path), "/api/rooms/%s/join", pair->room);
    ck_assert(http_json(port, "POST", path, NULL, body, &reply));
    ck_assert_msg(reply.status == 200, "join: %ld %s", reply.status, reply.body);
    snprintf(pair->token_b, sizeof(pair->token_b), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
    return status;
}

int run_suite(Suite *suite)
{
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

long refusals_metric(unsigned port, const char *reason)
{
    struct http_reply reply;
    ck_assert(http_do(port, "GET", "/metrics", NULL, NULL, 0, &reply));
    char needle[128];
    snprintf(needle, sizeof(needle), "thou_refusals_total{reason=\"%s\"} ", reason);
    const char *at = strstr(reply.body, needle);
    long value = at ? strtol(at + strlen(needle), NULL, 10) : -1;
    http_reply_free(&reply);
    return value;
}
