/*
 * Facilitated workshops over HTTP against the real binary: facilitator
 * accounts from the CLI, login, sessions and CSRF, workshops, joining and
 * pairing (200 at once), the dashboard (no ciphertext on the wire), the
 * facilitator's actions reaching the rooms, and every refusal of the issue.
 */
#include "harness.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static struct thou_proc proc;

static void stop(void)
{
    proc_cleanup(&proc);
}

/* ---- helpers ------------------------------------------------------------- */

/* thou COMMAND ARGS --data-dir DIR with stdin_text piped in; the exit code. */
static int command_cli(const char *command, const char *const *args, const char *stdin_text,
                       size_t stdin_len)
{
    int in[2];
    ck_assert_int_eq(pipe(in), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        close(in[0]);
        close(in[1]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        /* The test's own switches, not settings: thou refuses THOU_* names it does not know. */
        unsetenv("THOU_VALGRIND");
        unsetenv("THOU_TEST_PG_URL");
        unsetenv("THOU_TEST_STORE");
        /* On PostgreSQL (@postgresql), the store the server uses. */
        if (proc.store_url[0])
            setenv("THOU_STORE_URL", proc.store_url, 1);
        const char *argv[16];
        size_t n = 0;
        argv[n++] = getenv("THOU_BIN");
        argv[n++] = command;
        for (size_t i = 0; args[i] && n < 12; i++)
            argv[n++] = args[i];
        argv[n++] = "--data-dir";
        argv[n++] = proc.data_dir;
        argv[n] = NULL;
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(in[0]);
    if (stdin_len)
        ck_assert_int_eq(write(in[1], stdin_text, stdin_len), (ssize_t)stdin_len);
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* thou facilitator ARGS with stdin_text piped in; the exit code. */
static int facilitator_cli(const char *const *args, const char *stdin_text, size_t stdin_len)
{
    return command_cli("facilitator", args, stdin_text, stdin_len);
}

static void add_facilitator(const char *name, const char *password)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s\n", password);
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", name, NULL}, line, (size_t)n), 0);
}

/* A logged-in facilitator: the cookie header and the CSRF header. */
struct fac {
    char cookie[160];
    char csrf[160];
};

static long login(const char *name, const char *password, struct fac *f, struct http_reply *out)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    struct http_reply reply;
    ck_assert(http_json(proc.port, "POST", "/api/facilitator/login", NULL, body, &reply));
    long status = reply.status;
    if (status == 200 && f) {
        char set_cookie[256];
        ck_assert(http_header(&reply, "Set-Cookie", set_cookie, sizeof(set_cookie)));
        char *semi = strchr(set_cookie, ';');
        ck_assert_ptr_nonnull(semi);
        snprintf(f->cookie, sizeof(f->cookie), "Cookie: %.*s", (int)(semi - set_cookie),
                 set_cookie);
        snprintf(f->csrf, sizeof(f->csrf), "X-CSRF-Token: %s",
                 json_string_value(json_object_get(reply.json, "csrf")));
    }
    if (out)
        *out = reply;
    else
        http_reply_free(&reply);
    return status;
}

/* A facilitator request: cookie, CSRF (unless csrf is false), JSON body. */
static long fac_do(const struct fac *f, const char *method, const char *path, const char *body,
                   bool csrf, struct http_reply *reply)
{
    const char *headers[4] = {"Content-Type: application/json", f->cookie, csrf ? f->csrf : NULL,
                              NULL};
    ck_assert(http_do(proc.port, method, path, headers, body, body ? strlen(body) : 0, reply));
    return reply->status;
}

static long fac_call(const struct fac *f, const char *method, const char *path, const char *body,
                     json_t **json)
{
    struct http_reply reply;
    long status = fac_do(f, method, path, body, true, &reply);
    if (json)
        *json = reply.json ? json_incref(reply.json) : NULL;
    http_reply_free(&reply);
    return status;
}

/* A participant's token (base64url) and its hash, as the browser makes them. */
struct person {
    char token[64];
    char hash[64];
};

static void new_person(struct person *p)
{
    unsigned char bytes[32], digest[32];
    randombytes_buf(bytes, sizeof(bytes));
    crypto_generichash(digest, sizeof(digest), bytes, sizeof(bytes), NULL, 0);
    b64url32(bytes, p->token, sizeof(p->token));
    b64url32(digest, p->hash, sizeof(p->hash));
}

static long join(const char *code, const struct person *p, json_t **json)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", code, p->hash);
    struct http_reply reply;
    ck_assert(http_json(proc.port, "POST", "/api/workshops/join", NULL, body, &reply));
    long status = reply.status;
    if (json)
        *json = reply.json ? json_incref(reply.json) : NULL;
    http_reply_free(&reply);
    return status;
}

/* The next event with a type (the stream opens with a bare "retry:" block). */
static bool next_typed(struct sse_client *sse, int timeout_ms, struct sse_event *ev)
{
    long long deadline = now_ms() + timeout_ms;
    while (sse_next_event(sse, (int)(deadline - now_ms()), ev)) {
        if (ev->type[0])
            return true;
        sse_event_release(ev);
    }
    return false;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A new workshop of f; its id and code (as shown, K7QM-3XPA). */
static long long create_workshop(const struct fac *f, const char *extra, char code[16])
{
    char body[256];
    snprintf(body, sizeof(body), "{\"title\":\"Class 4b\",\"set\":\"couples-short\"%s}",
             extra ? extra : "");
    json_t *w = NULL;
    ck_assert_int_eq(fac_call(f, "POST", "/api/workshops", body, &w), 201);
    snprintf(code, 16, "%s", str(w, "code"));
    long long id = num(w, "id");
    json_decref(w);
    return id;
}

/* One number from the server's store: its PostgreSQL database (@postgresql) or thou.db. */
static long long db_count(const char *sql)
{
    if (proc.store_url[0]) {
        PGconn *conn = PQconnectdb(proc.store_url);
        ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
        PGresult *res = PQexec(conn, sql);
        ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s: %s", sql,
                      PQerrorMessage(conn));
        long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(conn);
        return v;
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/thou.db", proc.data_dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* A statement on the server's store, as db_count reads it. */
static void db_exec(const char *sql)
{
    if (!proc.store_url[0]) {
        proc_sql(&proc, sql);
        return;
    }
    PGconn *conn = PQconnectdb(proc.store_url);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

static void start(const char *const *extra)
{
    proc_start(&proc, extra);
    add_facilitator("ada", "correct horse");
    add_facilitator("bob", "battery staple");
}

/* ---- the CLI ---------------------------------------------------------------- */

START_TEST(test_cli)
{
    start(NULL);
    /* again: taken */
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "ada", NULL}, "x\n", 2), 1);
    /* empty and too long passwords, bad names, unknown actions: usage errors */
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "cy", NULL}, "\n", 1), 2);
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "cy", NULL}, "", 0), 2);
    char long_line[1100];
    memset(long_line, 'a', 1025);
    long_line[1025] = '\n';
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "cy", NULL}, long_line, 1026), 2);
    memset(long_line, 'a', 1024); /* exactly 1024 bytes is fine */
    long_line[1024] = '\n';
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "cy", NULL}, long_line, 1025), 0);
    ck_assert_int_eq(facilitator_cli((const char *[]){"add", "no way", NULL}, "x\n", 2), 2);
    ck_assert_int_eq(facilitator_cli((const char *[]){"frob", "ada", NULL}, "", 0), 2);
    ck_assert_int_eq(facilitator_cli((const char *[]){"remove", "zed", NULL}, "", 0), 1);
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitators"), 3);
    /* the hash is Argon2id, never the password */
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitators WHERE password_hash LIKE "
                              "'$argon2id$%' AND password_hash NOT LIKE '%horse%'"),
                     3);

    /* passwd: the old password stops working and sessions end */
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    ck_assert_int_eq(facilitator_cli((const char *[]){"passwd", "ada", NULL}, "new one\n", 8), 0);
    struct http_reply reply;
    ck_assert_int_eq(fac_do(&f, "GET", "/api/facilitator/session", NULL, false, &reply), 401);
    http_reply_free(&reply);
    ck_assert_int_eq(login("ada", "correct horse", NULL, NULL), 401);
    ck_assert_int_eq(login("ada", "new one", NULL, NULL), 200);
    /* remove: gone, with its sessions */
    ck_assert_int_eq(facilitator_cli((const char *[]){"remove", "cy", NULL}, "", 0), 0);
    ck_assert_int_eq(login("cy", long_line, NULL, NULL), 400); /* 1025 with the newline */
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitators"), 2);
}
END_TEST

/* ---- login, session, CSRF --------------------------------------------------- */

START_TEST(test_login_session_csrf)
{
    start(NULL);
    struct http_reply reply;
    ck_assert_int_eq(login("ada", "wrong", NULL, &reply), 401);
    ck_assert_str_eq(http_error_code(&reply), "bad_login");
    http_reply_free(&reply);
    ck_assert_int_eq(login("nobody", "wrong", NULL, &reply), 401);
    ck_assert_str_eq(http_error_code(&reply), "bad_login"); /* the same answer */
    http_reply_free(&reply);
    ck_assert_int_eq(login("ada", "", NULL, &reply), 400);
    ck_assert_str_eq(http_error_code(&reply), "invalid_request");
    http_reply_free(&reply);
    char long_password[1100];
    memset(long_password, 'x', 1025);
    long_password[1025] = '\0';
    ck_assert_int_eq(login("ada", long_password, NULL, NULL), 400);
    ck_assert(http_json(proc.port, "POST", "/api/facilitator/login", NULL,
                        "{\"name\":\"ada\",\"password\":\"correct horse\",\"x\":1}", &reply));
    ck_assert_int_eq(reply.status, 400);
    http_reply_free(&reply);

    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, &reply), 200);
    char cookie[256];
    ck_assert(http_header(&reply, "Set-Cookie", cookie, sizeof(cookie)));
    ck_assert_ptr_nonnull(strstr(cookie, "thou_session="));
    ck_assert_ptr_nonnull(strstr(cookie, "; HttpOnly"));
    ck_assert_ptr_nonnull(strstr(cookie, "; SameSite=Strict"));
    ck_assert_ptr_nonnull(strstr(cookie, "; Path=/"));
    ck_assert_ptr_nonnull(strstr(cookie, "; Max-Age=43200"));
    ck_assert_ptr_null(strstr(cookie, "Secure")); /* plain HTTP here */
    ck_assert_str_eq(str(reply.json, "name"), "ada");
    http_reply_free(&reply);
    /* The token is stored only as a hash. */
    char token[64];
    snprintf(token, sizeof(token), "%.43s", strchr(f.cookie, '=') + 1);
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitator_sessions"), 1);
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitator_sessions WHERE"
                              " length(token_hash) = 32"),
                     1);

    /* The session gives the CSRF token back after a reload. */
    ck_assert_int_eq(fac_do(&f, "GET", "/api/facilitator/session", NULL, false, &reply), 200);
    char csrf[160];
    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", str(reply.json, "csrf"));
    ck_assert_str_eq(csrf, f.csrf);
    http_reply_free(&reply);
    ck_assert(http_do(proc.port, "GET", "/api/facilitator/session", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 401);
    ck_assert_str_eq(http_error_code(&reply), "no_session");
    http_reply_free(&reply);

    /* Every state-changing request needs the CSRF token. */
    const char *body = "{\"title\":\"t\",\"set\":\"couples-short\"}";
    ck_assert_int_eq(fac_do(&f, "POST", "/api/workshops", body, false, &reply), 403);
    ck_assert_str_eq(http_error_code(&reply), "bad_csrf");
    http_reply_free(&reply);
    struct fac wrong = f;
    wrong.csrf[strlen(wrong.csrf) - 1] ^= 1;
    ck_assert_int_eq(fac_do(&wrong, "POST", "/api/workshops", body, true, &reply), 403);
    ck_assert_str_eq(http_error_code(&reply), "bad_csrf");
    http_reply_free(&reply);
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshops"), 0); /* nothing half-done */
    ck_assert_int_eq(fac_do(&f, "POST", "/api/facilitator/logout", NULL, false, &reply), 403);
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&f, "POST", "/api/workshops", body, true, &reply), 201);
    http_reply_free(&reply);

    /* Logout revokes the session at once. */
    ck_assert_int_eq(fac_do(&f, "POST", "/api/facilitator/logout", NULL, true, &reply), 204);
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&f, "GET", "/api/facilitator/session", NULL, false, &reply), 401);
    ck_assert_str_eq(http_error_code(&reply), "no_session");
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&f, "GET", "/api/workshops", NULL, false, &reply), 401);
    http_reply_free(&reply);
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitator_sessions"), 0);
}
END_TEST

/* Two wrong passwords a minute, not the default five: the bucket refills one
 * try per 30 s, and three Argon2id logins stay well inside that even under
 * valgrind (five at the default's 12 s per try did not, on a loaded machine). */
START_TEST(test_login_rate_limit)
{
    start((const char *[]){"--login-failures-per-min", "2", NULL});
    struct http_reply reply;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(login("ada", "wrong", NULL, &reply), 401);
        http_reply_free(&reply);
    }
    /* The bucket is empty: even the right password waits. */
    ck_assert_int_eq(login("ada", "correct horse", NULL, &reply), 429);
    ck_assert_str_eq(http_error_code(&reply), "rate_limited");
    char retry[16];
    ck_assert(http_header(&reply, "Retry-After", retry, sizeof(retry)));
    ck_assert_int_ge(atoi(retry), 1);
    http_reply_free(&reply);
    /* The address's bucket is empty too: another name from here waits as well. */
    ck_assert_int_eq(login("bob", "battery staple", NULL, &reply), 429);
    http_reply_free(&reply);
    ck_assert_int_eq(db_count("SELECT count(*) FROM facilitator_sessions"), 0);
}
END_TEST

START_TEST(test_expired_session)
{
    /* Long enough for the login and the first request, short to wait out: 3 s, or 30 s
     * when the server runs under valgrind, where one Argon2id login alone takes seconds. */
    const char *valgrind = getenv("THOU_VALGRIND");
    int lifetime_s = valgrind && strcmp(valgrind, "1") == 0 ? 30 : 3;
    char lifetime[16], max_age[32];
    snprintf(lifetime, sizeof(lifetime), "%d", lifetime_s);
    snprintf(max_age, sizeof(max_age), "Max-Age=%d", lifetime_s);
    start((const char *[]){"--facilitator-session-s", lifetime, NULL});
    struct fac f;
    struct http_reply reply;
    ck_assert_int_eq(login("ada", "correct horse", &f, &reply), 200);
    char cookie[256];
    ck_assert(http_header(&reply, "Set-Cookie", cookie, sizeof(cookie)));
    ck_assert_ptr_nonnull(strstr(cookie, max_age));
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&f, "GET", "/api/facilitator/session", NULL, false, &reply), 200);
    http_reply_free(&reply);
    usleep((useconds_t)lifetime_s * 1000 * 1000 + 300 * 1000);
    ck_assert_int_eq(fac_do(&f, "GET", "/api/facilitator/session", NULL, false, &reply), 401);
    ck_assert_str_eq(http_error_code(&reply), "no_session");
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&f, "POST", "/api/workshops",
                            "{\"title\":\"t\",\"set\":\"couples-short\"}", true, &reply),
                     401);
    http_reply_free(&reply);
}
END_TEST

/* ---- the whole facilitator path ----------------------------------------------- */

static void post_event(const char *room, const char *token, const char *body, long expect)
{
    struct http_reply reply;
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", room);
    ck_assert(http_json(proc.port, "POST", path, token, body, &reply));
    ck_assert_msg(reply.status == expect, "%s: %ld %s", body, reply.status, reply.body);
    http_reply_free(&reply);
}

static json_t *room_state(const char *room, const char *token)
{
    struct http_reply reply;
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s", room);
    ck_assert(http_json(proc.port, "GET", path, token, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    json_t *json = json_incref(reply.json);
    http_reply_free(&reply);
    return json;
}

/* The next facilitator event of a room stream with this action. */
static json_t *next_facilitator(struct sse_client *sse, const char *action)
{
    struct sse_event ev;
    while (next_typed(sse, 5000, &ev)) {
        json_t *data = json_loads(ev.data, 0, NULL);
        bool match =
            strcmp(ev.type, "facilitator") == 0 && strcmp(str(data, "action"), action) == 0;
        sse_event_release(&ev);
        if (match)
            return data;
        json_decref(data);
    }
    ck_abort_msg("no facilitator event '%s'", action);
    return NULL;
}

START_TEST(test_whole_path)
{
    start(NULL);
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    char code[16];
    long long id = create_workshop(&f, NULL, code);
    ck_assert_int_eq(strlen(code), 9);
    ck_assert_int_eq(code[4], '-');
    for (int i = 0; i < 9; i++)
        if (i != 4)
            ck_assert_ptr_nonnull(strchr("23456789ABCDEFGHJKMNPQRSTUVWXYZ", code[i]));

    json_t *list = NULL;
    ck_assert_int_eq(fac_call(&f, "GET", "/api/workshops", NULL, &list), 200);
    ck_assert_int_eq(json_array_size(json_object_get(list, "workshops")), 1);
    json_decref(list);

    /* p1 waits, with its waiting stream open. */
    struct person people[5];
    for (int i = 0; i < 5; i++)
        new_person(&people[i]);
    json_t *a = NULL;
    char typed[16];
    snprintf(typed, sizeof(typed), "%c%c%c%c %c%c%c%c", code[0] | 0x20, code[1] | 0x20, code[2],
             code[3], code[5], code[6], code[7], code[8]); /* any case, a space */
    ck_assert_int_eq(join(typed, &people[0], &a), 200);
    ck_assert_str_eq(str(a, "participant"), "p1");
    ck_assert_str_eq(str(a, "status"), "waiting");
    ck_assert_str_eq(str(a, "title"), "Class 4b");
    json_decref(a);
    struct sse_client wait;
    ck_assert(sse_open(&wait, proc.port, "/api/workshops/wait", people[0].token, NULL));
    ck_assert_int_eq(wait.status, 200);
    struct sse_event ev;
    ck_assert(next_typed(&wait, 3000, &ev));
    ck_assert_str_eq(ev.type, "waiting");
    ck_assert_str_eq(ev.data, "{\"waiting\":1}");
    sse_event_release(&ev);
    /* the same token again: the same place */
    ck_assert_int_eq(join(code, &people[0], &a), 200);
    ck_assert_str_eq(str(a, "participant"), "p1");
    json_decref(a);

    /* p2 arrives: paired at once, as B; p1 hears of it as A. */
    json_t *b = NULL;
    ck_assert_int_eq(join(code, &people[1], &b), 200);
    ck_assert_str_eq(str(b, "status"), "paired");
    ck_assert_str_eq(str(b, "role"), "B");
    char room[64];
    snprintf(room, sizeof(room), "%s", str(b, "room"));
    json_decref(b);
    bool paired = false;
    while (!paired && next_typed(&wait, 3000, &ev)) {
        if (strcmp(ev.type, "paired") == 0) {
            json_t *d = json_loads(ev.data, 0, NULL);
            ck_assert_str_eq(str(d, "room"), room);
            ck_assert_str_eq(str(d, "role"), "A");
            json_decref(d);
            paired = true;
        }
        sse_event_release(&ev);
    }
    ck_assert(paired);
    sse_close(&wait);

    /* Each token is its participant's bearer token in the room. */
    json_t *state = room_state(room, people[0].token);
    ck_assert_str_eq(str(state, "role"), "A");
    ck_assert_str_eq(str(state, "mode"), "workshop");
    ck_assert_str_eq(str(state, "state"), "active");
    json_t *ws_info = json_object_get(state, "workshop");
    ck_assert_str_eq(str(ws_info, "title"), "Class 4b");
    ck_assert_int_eq(num(ws_info, "released"), 0);
    ck_assert_int_eq(num(json_object_get(state, "flow"), "stage_cap"), 0);
    json_decref(state);
    state = room_state(room, people[1].token);
    ck_assert_str_eq(str(state, "role"), "B");
    json_decref(state);

    /* The key commitment of docs/crypto.md §5a: once per role, 32 bytes. */
    char commit[160];
    char commitment[64];
    random_b64(32, commitment, sizeof(commitment));
    snprintf(commit, sizeof(commit), "{\"type\":\"commit\",\"commitment\":\"%s\"}", commitment);
    post_event(room, people[0].token, "{\"type\":\"commit\",\"commitment\":\"AAAA\"}", 400);
    post_event(room, people[0].token, "{\"type\":\"commit\"}", 400);
    post_event(room, people[0].token, commit, 201);
    post_event(room, people[0].token, commit, 409);

    /* p3, p4 make the second pair; p5 waits. */
    ck_assert_int_eq(join(code, &people[2], NULL), 200);
    ck_assert_int_eq(join(code, &people[3], &b), 200);
    ck_assert_str_eq(str(b, "status"), "paired");
    char room2[64];
    snprintf(room2, sizeof(room2), "%s", str(b, "room"));
    json_decref(b);
    ck_assert_str_ne(room, room2);
    ck_assert_int_eq(join(code, &people[4], NULL), 200);

    /* An answer with a recognisable ciphertext in pair 1. */
    struct sse_client room_a;
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", room);
    ck_assert(sse_open(&room_a, proc.port, path, people[0].token, NULL));
    const char *secret_ct = "U0VDUkVUQ0lQSEVSVEVYVHNlY3JldGNpcGhlcnRleHQ";
    char body[512];
    snprintf(body, sizeof(body),
             "{\"type\":\"answer\",\"question\":\"cg-good-moment\",\"ciphertext\":\"%s\","
             "\"counter\":1}",
             secret_ct);
    post_event(room, people[0].token, body, 201);

    /* The dashboard: counts, pairs, the waiting one, and no ciphertext, no
     * tokens, no room ids, neither in the GET nor on the stream. */
    char wpath[96];
    snprintf(wpath, sizeof(wpath), "/api/workshops/%lld", id);
    struct http_reply reply;
    ck_assert_int_eq(fac_do(&f, "GET", wpath, NULL, false, &reply), 200);
    json_t *snap = reply.json;
    json_t *counts = json_object_get(snap, "counts");
    ck_assert_int_eq(num(counts, "joined"), 5);
    ck_assert_int_eq(num(counts, "paired"), 4);
    ck_assert_int_eq(num(counts, "waiting"), 1);
    ck_assert_int_eq(num(counts, "finished"), 0);
    json_t *pairs = json_object_get(snap, "pairs");
    ck_assert_int_eq(json_array_size(pairs), 2);
    json_t *p1 = json_array_get(pairs, 0);
    ck_assert_int_eq(num(p1, "pair"), 1);
    ck_assert_int_eq(num(p1, "stage"), 0);
    ck_assert_str_eq(str(p1, "status"), "active");
    ck_assert_str_eq(str(p1, "turn"), "B"); /* B reflects A's answer */
    ck_assert(json_is_true(json_object_get(json_object_get(p1, "connected"), "A")));
    ck_assert(json_is_false(json_object_get(json_object_get(p1, "connected"), "B")));
    ck_assert_int_ge(num(p1, "last_step"), wall_ms() - 10000);
    json_t *waiting = json_object_get(snap, "waiting");
    ck_assert_int_eq(json_array_size(waiting), 1);
    ck_assert_str_eq(str(json_array_get(waiting, 0), "participant"), "p5");
    ck_assert_ptr_null(strstr(reply.body, secret_ct));
    ck_assert_ptr_null(strstr(reply.body, room));
    ck_assert_ptr_null(strstr(reply.body, people[0].token));
    ck_assert_ptr_null(strstr(reply.body, people[0].hash));
    ck_assert_ptr_null(strstr(reply.body, "ciphertext"));
    http_reply_free(&reply);

    snprintf(path, sizeof(path), "/api/workshops/%lld/events", id);
    struct sse_client dash;
    /* The stream: the same snapshot at once, then a new one when a pair moves. */
    {
        char hdr_path[128];
        snprintf(hdr_path, sizeof(hdr_path), "%s", path);
        struct http_reply head;
        const char *headers[] = {f.cookie, NULL};
        ck_assert(http_do(proc.port, "HEAD", hdr_path, headers, NULL, 0, &head));
        ck_assert_int_eq(head.status, 200);
        http_reply_free(&head);
    }
    ck_assert(sse_open_headers(&dash, proc.port, path, (const char *[]){f.cookie, NULL}));
    ck_assert_int_eq(dash.status, 200);
    ck_assert(next_typed(&dash, 3000, &ev));
    ck_assert_str_eq(ev.type, "snapshot");
    ck_assert_ptr_null(strstr(ev.data, secret_ct));
    sse_event_release(&ev);
    long long t0 = now_ms();
    snprintf(body, sizeof(body),
             "{\"type\":\"reflect\",\"question\":\"cg-good-moment\",\"ciphertext\":\"%s\","
             "\"counter\":1}",
             secret_ct);
    post_event(room, people[1].token, body, 201);
    bool moved = false;
    while (!moved && next_typed(&dash, 3000, &ev)) {
        ck_assert_ptr_null(strstr(ev.data, secret_ct));
        ck_assert_ptr_null(strstr(ev.data, room));
        json_t *d = json_loads(ev.data, 0, NULL);
        json_t *first = json_array_get(json_object_get(d, "pairs"), 0);
        moved = strcmp(str(first, "turn"), "A") == 0; /* A confirms now */
        json_decref(d);
        sse_event_release(&ev);
    }
    ck_assert(moved);
    ck_assert_int_lt(now_ms() - t0, 2000);

    /* release: every room's flow gets the cap, as a stored facilitator event */
    json_t *out = NULL;
    ck_assert_int_eq(fac_call(&f, "POST", wpath, NULL, NULL), 405);
    char apath[128];
    snprintf(apath, sizeof(apath), "/api/workshops/%lld/actions", id);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"release\",\"stage\":1}", &out),
                     200);
    ck_assert_int_eq(num(json_object_get(out, "workshop"), "released"), 1);
    json_decref(out);
    json_t *fe = next_facilitator(&room_a, "release");
    ck_assert_str_eq(str(fe, "role"), "F");
    ck_assert_int_eq(num(fe, "stage_cap"), 1);
    ck_assert_int_eq(num(json_object_get(fe, "flow"), "stage_cap"), 1);
    json_decref(fe);

    /* pause_all: paused by F; only the facilitator resumes */
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"pause_all\"}", &out), 200);
    ck_assert(json_is_true(json_object_get(json_object_get(out, "workshop"), "paused")));
    ck_assert_str_eq(str(json_array_get(json_object_get(out, "pairs"), 0), "status"), "paused");
    json_decref(out);
    fe = next_facilitator(&room_a, "pause");
    ck_assert_str_eq(str(json_object_get(fe, "flow"), "paused_by"), "F");
    json_decref(fe);
    post_event(room, people[0].token, "{\"type\":\"resume\",\"ciphertext\":\"AAAA\",\"counter\":2}",
               409);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"resume_all\"}", &out), 200);
    ck_assert_str_eq(str(json_array_get(json_object_get(out, "pairs"), 0), "status"), "active");
    json_decref(out);
    json_decref(next_facilitator(&room_a, "resume"));

    /* broadcast and timer reach the rooms and the room state */
    ck_assert_int_eq(
        fac_call(&f, "POST", apath, "{\"action\":\"broadcast\",\"text\":\"Five minutes\"}", &out),
        200);
    ck_assert_str_eq(str(json_object_get(out, "workshop"), "note"), "Five minutes");
    json_decref(out);
    fe = next_facilitator(&room_a, "note");
    ck_assert_str_eq(str(fe, "text"), "Five minutes");
    json_decref(fe);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"timer\",\"seconds\":300}", &out),
                     200);
    long long ends = num(json_object_get(out, "workshop"), "timer_ends");
    ck_assert_int_ge(ends, wall_ms() + 290000);
    json_decref(out);
    fe = next_facilitator(&room_a, "timer");
    ck_assert_int_eq(num(fe, "ends"), ends);
    json_decref(fe);
    state = room_state(room, people[1].token);
    ck_assert_str_eq(str(json_object_get(state, "workshop"), "note"), "Five minutes");
    ck_assert_int_eq(num(json_object_get(state, "workshop"), "timer_ends"), ends);
    json_decref(state);

    /* move_on: pair 1 goes to the next question */
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"move_on\",\"pair\":1}", &out), 200);
    json_decref(out);
    fe = next_facilitator(&room_a, "move_on");
    ck_assert_int_eq(num(json_object_get(json_object_get(fe, "flow"), "progress"), "index"), 1);
    json_decref(fe);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"move_on\",\"pair\":9}", NULL), 400);

    /* pair by hand: p5 and a newcomer p6, who is not yet... p6 pairs with p5 at once */
    struct person p6, p7;
    new_person(&p6);
    new_person(&p7);
    ck_assert_int_eq(join(code, &p6, &b), 200);
    ck_assert_str_eq(str(b, "status"), "paired"); /* with p5 */
    json_decref(b);
    ck_assert_int_eq(join(code, &p7, NULL), 200); /* p7 waits alone */
    ck_assert_int_eq(
        fac_call(&f, "POST", apath, "{\"action\":\"pair\",\"a\":\"p7\",\"b\":\"p5\"}", &out), 409);
    json_decref(out);
    ck_assert_int_eq(
        fac_call(&f, "POST", apath, "{\"action\":\"pair\",\"a\":\"p7\",\"b\":\"p7\"}", NULL), 400);

    /* close: nobody joins; open again; end: final */
    struct person late;
    new_person(&late);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"close\"}", NULL), 200);
    ck_assert_int_eq(join(code, &late, &a), 409);
    ck_assert_str_eq(str(json_object_get(a, "error"), "code"), "workshop_closed");
    json_decref(a);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"open\"}", NULL), 200);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"end\"}", &out), 200);
    ck_assert_str_eq(str(json_object_get(out, "workshop"), "state"), "ended");
    ck_assert_int_eq(num(json_object_get(out, "counts"), "finished"), 6);
    json_decref(out);
    json_decref(next_facilitator(&room_a, "end"));
    state = room_state(room, people[0].token);
    ck_assert_str_eq(str(state, "state"), "ended");
    json_decref(state);
    ck_assert_int_eq(join(code, &late, &a), 410);
    ck_assert_str_eq(str(json_object_get(a, "error"), "code"), "workshop_ended");
    json_decref(a);
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"open\"}", &out), 409);
    ck_assert_str_eq(str(json_object_get(out, "error"), "code"), "workshop_ended");
    json_decref(out);
    post_event(room2, people[2].token, "{\"type\":\"pause\",\"ciphertext\":\"AAAA\",\"counter\":3}",
               409);
    sse_close(&room_a);
    sse_close(&dash);

    /* The QR code of the absolute link */
    snprintf(path, sizeof(path), "/api/workshops/%lld/qr.svg", id);
    ck_assert_int_eq(fac_do(&f, "GET", path, NULL, false, &reply), 200);
    char type[64];
    ck_assert(http_header(&reply, "Content-Type", type, sizeof(type)));
    ck_assert_str_eq(type, "image/svg+xml");
    ck_assert_ptr_nonnull(strstr(reply.body, "<svg"));
    ck_assert_ptr_nonnull(strstr(reply.body, "<path"));
    char link[128];
    snprintf(link, sizeof(link), "http://127.0.0.1:%u/w/%.4s%.4s", proc.port, code, code + 5);
    ck_assert_ptr_nonnull(strstr(reply.body, link));
    http_reply_free(&reply);
}
END_TEST

/* ---- the public address ---------------------------------------------------------- */

/* Behind a proxy the page's own origin may be an internal one: with public_url
 * set, the workshop carries the address people type (join_url, which the
 * projector prints) and its QR code holds the same one; without, neither
 * names an address of its own. */
START_TEST(test_public_url)
{
    start((const char *[]){"--public-url", "https://talk.example.org", NULL});
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    json_t *w = NULL;
    ck_assert_int_eq(fac_call(&f, "POST", "/api/workshops",
                              "{\"title\":\"Hall\",\"set\":\"couples-short\"}", &w),
                     201);
    char want[96];
    snprintf(want, sizeof(want), "https://talk.example.org%s", str(w, "link"));
    ck_assert_str_eq(str(w, "join_url"), want);
    char path[96];
    snprintf(path, sizeof(path), "/api/workshops/%lld", num(w, "id"));
    json_decref(w);
    ck_assert_int_eq(fac_call(&f, "GET", path, NULL, &w), 200);
    ck_assert_str_eq(str(json_object_get(w, "workshop"), "join_url"), want);
    json_decref(w);
    struct http_reply reply;
    strcat(path, "/qr.svg");
    ck_assert_int_eq(fac_do(&f, "GET", path, NULL, false, &reply), 200);
    ck_assert_ptr_nonnull(strstr(reply.body, want));
    http_reply_free(&reply);
    proc_cleanup(&proc);

    start(NULL);
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    ck_assert_int_eq(fac_call(&f, "POST", "/api/workshops",
                              "{\"title\":\"Hall\",\"set\":\"couples-short\"}", &w),
                     201);
    ck_assert_ptr_null(json_object_get(w, "join_url"));
    json_decref(w);
}
END_TEST

/* ---- bad input ------------------------------------------------------------------- */

START_TEST(test_bad_input)
{
    start(NULL);
    struct fac ada, bob;
    ck_assert_int_eq(login("ada", "correct horse", &ada, NULL), 200);
    ck_assert_int_eq(login("bob", "battery staple", &bob, NULL), 200);
    char code[16];
    long long id = create_workshop(&ada, ",\"capacity\":2", code);

    /* another facilitator's workshop: 403 for every endpoint */
    char path[128];
    struct http_reply reply;
    const char *suffixes[] = {"", "/events", "/qr.svg"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/api/workshops/%lld%s", id, suffixes[i]);
        ck_assert_int_eq(fac_do(&bob, "GET", path, NULL, false, &reply), 403);
        ck_assert_str_eq(http_error_code(&reply), "not_your_workshop");
        http_reply_free(&reply);
    }
    snprintf(path, sizeof(path), "/api/workshops/%lld/actions", id);
    ck_assert_int_eq(fac_do(&bob, "POST", path, "{\"action\":\"end\"}", true, &reply), 403);
    ck_assert_str_eq(http_error_code(&reply), "not_your_workshop");
    http_reply_free(&reply);
    ck_assert_int_eq(db_count("SELECT state FROM workshops"), 0); /* still open */
    ck_assert_int_eq(fac_do(&ada, "GET", "/api/workshops/999", NULL, false, &reply), 404);
    ck_assert_str_eq(http_error_code(&reply), "no_such_workshop");
    http_reply_free(&reply);
    ck_assert_int_eq(fac_do(&ada, "GET", "/api/workshops/abc", NULL, false, &reply), 404);
    http_reply_free(&reply);

    /* bad creations and actions */
    const char *bad_creates[] = {
        "{\"set\":\"couples-short\"}",
        "{\"title\":\"\",\"set\":\"couples-short\"}",
        "{\"title\":\"t\"}",
        "{\"title\":\"t\",\"set\":\"couples-short\",\"capacity\":1}",
        "{\"title\":\"t\",\"set\":\"couples-short\",\"capacity\":\"9\"}",
        "{\"title\":\"t\",\"set\":\"couples-short\",\"extra\":1}",
    };
    for (size_t i = 0; i < sizeof(bad_creates) / sizeof(bad_creates[0]); i++) {
        ck_assert_int_eq(fac_do(&ada, "POST", "/api/workshops", bad_creates[i], true, &reply), 400);
        ck_assert_str_eq(http_error_code(&reply), "invalid_request");
        http_reply_free(&reply);
    }
    ck_assert_int_eq(
        fac_do(&ada, "POST", "/api/workshops", "{\"title\":\"t\",\"set\":\"nope\"}", true, &reply),
        404);
    http_reply_free(&reply);
    const char *bad_actions[] = {
        "{}",
        "{\"action\":\"fly\"}",
        "{\"action\":\"release\"}",
        "{\"action\":\"release\",\"stage\":99}",
        "{\"action\":\"release\",\"stage\":-1}",
        "{\"action\":\"timer\",\"seconds\":-5}",
        "{\"action\":\"timer\",\"seconds\":86401}",
        "{\"action\":\"open\",\"x\":1}",
        "{\"action\":\"pair\",\"a\":\"p1\"}",
        "{\"action\":\"pair\",\"a\":\"x1\",\"b\":\"p2\"}",
    };
    for (size_t i = 0; i < sizeof(bad_actions) / sizeof(bad_actions[0]); i++) {
        ck_assert_int_eq(fac_do(&ada, "POST", path, bad_actions[i], true, &reply), 400);
        ck_assert_str_eq(http_error_code(&reply), "invalid_request");
        http_reply_free(&reply);
    }
    char note[600];
    memset(note, 0, sizeof(note));
    strcpy(note, "{\"action\":\"broadcast\",\"text\":\"");
    memset(note + strlen(note), 'n', 281);
    strcat(note, "\"}");
    ck_assert_int_eq(fac_do(&ada, "POST", path, note, true, &reply), 400);
    http_reply_free(&reply);
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshops WHERE note IS NOT NULL"), 0);

    /* joins: bad bodies, wrong codes, full */
    struct person p[4];
    for (int i = 0; i < 4; i++)
        new_person(&p[i]);
    ck_assert(
        http_json(proc.port, "POST", "/api/workshops/join", NULL, "{\"code\":\"x\"}", &reply));
    ck_assert_int_eq(reply.status, 400);
    http_reply_free(&reply);
    ck_assert_int_eq(join(code, &p[0], NULL), 200);
    ck_assert_int_eq(join(code, &p[1], NULL), 200);
    json_t *answer = NULL;
    ck_assert_int_eq(join(code, &p[2], &answer), 409);
    ck_assert_str_eq(str(json_object_get(answer, "error"), "code"), "workshop_full");
    json_decref(answer);
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshop_participants"), 2);
    ck_assert_int_eq(join(code, &p[0], NULL), 200); /* the same one again is not a third */

    /* Wrong codes: 404 until the address's bucket is empty, then 429. */
    ck_assert_int_eq(join("K7QM-3XPB", &p[3], &answer), 404);
    ck_assert_str_eq(str(json_object_get(answer, "error"), "code"), "no_such_workshop");
    json_decref(answer);
    ck_assert_int_eq(join("0O1I-LLLL", &p[3], NULL), 404); /* not even the alphabet */
    long status = 404;
    int tries = 2;
    while (status == 404 && tries < 30) {
        status = join("K7QM-3XPB", &p[3], NULL);
        tries++;
    }
    ck_assert_int_eq(status, 429);
    ck_assert_int_eq(tries, 11);                    /* join_failures_per_min: 10 */
    ck_assert_int_eq(join(code, &p[3], NULL), 429); /* the address waits, right code or not */
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshop_participants"), 2);

    /* wait stream without a known token */
    struct sse_client wait;
    sse_open(&wait, proc.port, "/api/workshops/wait", p[3].token, NULL);
    ck_assert_int_eq(wait.status, 401);
    sse_close(&wait);
}
END_TEST

/* ---- 200 at once ------------------------------------------------------------------ */

#define CROWD 200

struct joiner {
    pthread_barrier_t *barrier;
    const char *code;
    struct person person;
    long status;
    char answer_status[16];
};

static void *join_thread(void *arg)
{
    struct joiner *j = arg;
    char body[256];
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", j->code,
             j->person.hash);
    pthread_barrier_wait(j->barrier);
    struct http_reply reply;
    if (http_json(proc.port, "POST", "/api/workshops/join", NULL, body, &reply)) {
        j->status = reply.status;
        snprintf(j->answer_status, sizeof(j->answer_status), "%s", str(reply.json, "status"));
        http_reply_free(&reply);
    }
    return NULL;
}

START_TEST(test_200_at_once)
{
    start(NULL);
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    char code[16];
    long long id = create_workshop(&f, NULL, code);
    static struct joiner joiners[CROWD];
    pthread_t threads[CROWD];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, CROWD);
    for (int i = 0; i < CROWD; i++) {
        joiners[i] = (struct joiner){.barrier = &barrier, .code = code};
        new_person(&joiners[i].person);
        ck_assert_int_eq(pthread_create(&threads[i], NULL, join_thread, &joiners[i]), 0);
    }
    int paired_at_once = 0;
    for (int i = 0; i < CROWD; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(joiners[i].status, 200);
        paired_at_once += strcmp(joiners[i].answer_status, "paired") == 0;
    }
    pthread_barrier_destroy(&barrier);
    /* One of each pair arrived second and was paired at once. */
    ck_assert_int_eq(paired_at_once, CROWD / 2);

    /* The store: exactly 100 rooms of this workshop, each with exactly two
     * seats (one A, one B), everybody in exactly one room. */
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM rooms WHERE workshop_id = %lld", id);
    ck_assert_int_eq(db_count(sql), CROWD / 2);
    ck_assert_int_eq(db_count("SELECT count(*) FROM rooms r WHERE mode = 'workshop' AND"
                              " (SELECT count(*) FROM participants p WHERE p.room_id = r.id) != 2"),
                     0);
    ck_assert_int_eq(db_count("SELECT count(*) FROM (SELECT room_id FROM participants GROUP BY"
                              " room_id HAVING count(DISTINCT role) != 2) x"),
                     0);
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshop_participants WHERE state = 1"), CROWD);
    ck_assert_int_eq(db_count("SELECT count(DISTINCT token_hash) FROM participants"), CROWD);
    ck_assert_int_eq(db_count("SELECT count(*) FROM (SELECT room_id FROM workshop_participants"
                              " GROUP BY room_id HAVING count(*) != 2) x"),
                     0);
    ck_assert_int_eq(db_count("SELECT count(*) FROM workshop_participants w JOIN participants p"
                              " ON p.token_hash = w.token_hash AND p.room_id = w.room_id AND"
                              " p.role = w.role"),
                     CROWD);
    ck_assert_int_eq(db_count("SELECT max(pair) FROM workshop_participants"), CROWD / 2);
    snprintf(sql, sizeof(sql), "SELECT pairs * 1000 + joined FROM workshops WHERE id = %lld", id);
    ck_assert_int_eq(db_count(sql), (CROWD / 2) * 1000 + CROWD);

    /* Asking again tells each where to go: 100 A and 100 B. */
    int as = 0;
    for (int i = 0; i < CROWD; i++) {
        json_t *a = NULL;
        ck_assert_int_eq(join(code, &joiners[i].person, &a), 200);
        ck_assert_str_eq(str(a, "status"), "paired");
        as += strcmp(str(a, "role"), "A") == 0;
        json_decref(a);
    }
    ck_assert_int_eq(as, CROWD / 2);
}
END_TEST

/* A pairing pass that pairs more people than it reports (a queue of 140
 * found waiting, as after a restart): every waiting stream still learns
 * where to go. */
START_TEST(test_big_queue_all_told)
{
    start(NULL);
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    char code[16];
    long long id = create_workshop(&f, NULL, code);
    enum { QUEUED = 140 };
    static struct person queued[QUEUED];
    char *sql = malloc(QUEUED * 160 + 256);
    int len = sprintf(sql, "INSERT INTO workshop_participants (workshop_id, label, token_hash,"
                           " arrived_ms, queued_ms, state) VALUES ");
    long long now = wall_ms();
    for (int i = 0; i < QUEUED; i++) {
        new_person(&queued[i]);
        unsigned char raw[32];
        size_t n = 0;
        sodium_base642bin(raw, sizeof(raw), queued[i].hash, strlen(queued[i].hash), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char hex[65];
        sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
        len += sprintf(sql + len,
                       proc.store_url[0] ? "%s(%lld, %d, decode('%s', 'hex'), %lld, %lld, 0)"
                                         : "%s(%lld, %d, x'%s', %lld, %lld, 0)",
                       i ? "," : "", id, i + 1, hex, now, now + i);
    }
    db_exec(sql);
    sprintf(sql, "UPDATE workshops SET joined = %d WHERE id = %lld", QUEUED, id);
    db_exec(sql);
    free(sql);
    /* The last two of the queue make the 70th pair of one pass. */
    struct sse_client last[2];
    for (int i = 0; i < 2; i++)
        ck_assert(sse_open(&last[i], proc.port, "/api/workshops/wait", queued[QUEUED - 2 + i].token,
                           NULL));
    for (int i = 0; i < 2; i++) {
        struct sse_event ev;
        bool paired = false;
        while (!paired && next_typed(&last[i], 5000, &ev)) {
            if (strcmp(ev.type, "paired") == 0) {
                json_t *d = json_loads(ev.data, 0, NULL);
                ck_assert_str_eq(str(d, "role"), i ? "B" : "A");
                json_decref(d);
                paired = true;
            }
            sse_event_release(&ev);
        }
        ck_assert_msg(paired, "stream %d was never told", i);
        sse_close(&last[i]);
    }
    ck_assert_int_eq(db_count("SELECT count(*) FROM rooms WHERE mode = 'workshop'"), QUEUED / 2);
}
END_TEST

/* The pages: served like /r/{room}, with the document headers. */
START_TEST(test_pages)
{
    start(NULL);
    static const struct {
        const char *path, *marker;
    } pages[] = {
        {"/facilitate", "<title>Facilitate"},
        {"/facilitate/projector?w=1", "<title>Projector"},
        {"/w/K7QM3XPA", "<title>Join a workshop"},
    };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        struct http_reply reply;
        ck_assert(http_do(proc.port, "GET", pages[i].path, NULL, NULL, 0, &reply));
        ck_assert_msg(reply.status == 200, "%s: %ld", pages[i].path, reply.status);
        char type[64], csp[512];
        ck_assert(http_header(&reply, "Content-Type", type, sizeof(type)));
        ck_assert_ptr_nonnull(strstr(type, "text/html"));
        ck_assert(http_header(&reply, "Content-Security-Policy", csp, sizeof(csp)));
        ck_assert_ptr_nonnull(strstr(reply.body, pages[i].marker));
        http_reply_free(&reply);
    }
}
END_TEST

/* ---- left behind ------------------------------------------------------------------ */

START_TEST(test_left_behind)
{
    start((const char *[]){"--workshop-repair-after-s", "1", NULL});
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);
    char code[16];
    create_workshop(&f, NULL, code);
    struct person a, b, c, fresh;
    new_person(&a);
    new_person(&b);
    new_person(&c);
    new_person(&fresh);
    ck_assert_int_eq(join(code, &a, NULL), 200);
    json_t *answer = NULL;
    ck_assert_int_eq(join(code, &b, &answer), 200);
    char room[64];
    snprintf(room, sizeof(room), "%s", str(answer, "room"));
    json_decref(answer);

    /* Asking for a new partner while the partner is there: refused. */
    char path[128], body[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", room);
    struct sse_client a_stream, b_stream;
    ck_assert(sse_open(&a_stream, proc.port, path, a.token, NULL));
    ck_assert(sse_open(&b_stream, proc.port, path, b.token, NULL));
    snprintf(body, sizeof(body), "{\"token_hash\":\"%s\"}", fresh.hash);
    struct http_reply reply;
    ck_assert(http_json(proc.port, "POST", "/api/workshops/rejoin", a.token, body, &reply));
    ck_assert_int_eq(reply.status, 409);
    ck_assert_str_eq(http_error_code(&reply), "not_left_behind");
    http_reply_free(&reply);

    /* B goes; after workshop_repair_after_s A hears that B is gone. */
    sse_close(&b_stream);
    json_t *gone = next_facilitator(&a_stream, "partner_gone");
    ck_assert_str_eq(str(gone, "gone"), "B");
    ck_assert_str_eq(str(gone, "role"), "F");
    json_decref(gone);

    /* A finds a new partner: back in the queue, left behind, with a new seat token. */
    ck_assert(http_json(proc.port, "POST", "/api/workshops/rejoin", NULL, body, &reply));
    ck_assert_int_eq(reply.status, 401);
    http_reply_free(&reply);
    ck_assert(http_json(proc.port, "POST", "/api/workshops/rejoin", a.token, body, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_str_eq(str(reply.json, "participant"), "p1");
    ck_assert_str_eq(str(reply.json, "status"), "waiting");
    http_reply_free(&reply);
    sse_close(&a_stream);
    ck_assert_int_eq(db_count("SELECT left_behind FROM workshop_participants WHERE label = 1"), 1);
    json_t *state = room_state(room, b.token);
    ck_assert_str_eq(str(state, "state"), "ended"); /* the old room is over */
    json_decref(state);
    /* The next to arrive pairs with the one left behind, who is A (first in the queue). */
    ck_assert_int_eq(join(code, &c, &answer), 200);
    ck_assert_str_eq(str(answer, "status"), "paired");
    ck_assert_str_eq(str(answer, "role"), "B");
    char room2[64];
    snprintf(room2, sizeof(room2), "%s", str(answer, "room"));
    json_decref(answer);
    state = room_state(room2, fresh.token);
    ck_assert_str_eq(str(state, "role"), "A");
    json_decref(state);
}
END_TEST

/* ---- a workshop with a research study (docs/research.md, workshop mode) ---- */

START_TEST(test_study_workshop)
{
    start(NULL);
    unsigned char pk[32], sk[32];
    crypto_box_keypair(pk, sk);
    char pk_b64[64];
    b64url32(pk, pk_b64, sizeof(pk_b64));
    ck_assert_int_eq(
        command_cli("study",
                    (const char *[]){"add", "s2", "--public-key", pk_b64, "--conditions",
                                     "couples-short,couples-full", "--questions-dir",
                                     THOU_SOURCE_DIR "/config/questions", NULL},
                    NULL, 0),
        0);
    struct fac f;
    ck_assert_int_eq(login("ada", "correct horse", &f, NULL), 200);

    /* The studies a facilitator may choose: names and fingerprints only. */
    json_t *list = NULL;
    ck_assert_int_eq(fac_call(&f, "GET", "/api/studies", NULL, &list), 200);
    json_t *studies = json_object_get(list, "studies");
    ck_assert_int_eq(json_array_size(studies), 1);
    json_t *listed = json_array_get(studies, 0);
    ck_assert_str_eq(str(listed, "name"), "s2");
    ck_assert_int_eq(strlen(str(listed, "fingerprint")), 39);
    ck_assert_int_eq(json_object_size(listed), 2); /* no key, no conditions */
    char fingerprint[64];
    snprintf(fingerprint, sizeof(fingerprint), "%s", str(listed, "fingerprint"));
    json_decref(list);
    struct http_reply anon;
    ck_assert(http_json(proc.port, "GET", "/api/studies", NULL, NULL, &anon));
    ck_assert_int_eq(anon.status, 401);
    http_reply_free(&anon);

    /* An unknown study, a study that is not a name. */
    json_t *err = NULL;
    ck_assert_int_eq(fac_call(&f, "POST", "/api/workshops",
                              "{\"title\":\"x\",\"set\":\"couples-short\",\"study\":\"nope\"}",
                              &err),
                     404);
    ck_assert_str_eq(str(json_object_get(err, "error"), "code"), "no_such_study");
    json_decref(err);
    ck_assert_int_eq(fac_call(&f, "POST", "/api/workshops",
                              "{\"title\":\"x\",\"set\":\"couples-short\",\"study\":7}", &err),
                     400);
    json_decref(err);

    char code[16];
    long long id = create_workshop(&f, ",\"study\":\"s2\"", code);
    json_t *w = NULL;
    char path[64];
    snprintf(path, sizeof(path), "/api/workshops/%lld", id);
    ck_assert_int_eq(fac_call(&f, "GET", path, NULL, &w), 200);
    json_t *study = json_object_get(json_object_get(w, "workshop"), "study");
    ck_assert_str_eq(str(study, "name"), "s2");
    ck_assert_str_eq(str(study, "fingerprint"), fingerprint);
    json_decref(w);

    /* 8 joins: 4 rooms, conditions 2/2, each room's state carries the study. */
    struct person people[8];
    char rooms[8][64];
    int per_condition[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        new_person(&people[i]);
        json_t *a = NULL;
        ck_assert_int_eq(join(code, &people[i], &a), 200);
        if (i % 2) {
            ck_assert_str_eq(str(a, "status"), "paired");
            snprintf(rooms[i], sizeof(rooms[i]), "%s", str(a, "room"));
            json_t *state = room_state(rooms[i], people[i].token);
            json_t *st = json_object_get(state, "study");
            ck_assert_str_eq(str(st, "name"), "s2");
            ck_assert_str_eq(str(st, "fingerprint"), fingerprint);
            ck_assert_str_eq(str(st, "public_key"), pk_b64);
            const char *set = str(json_object_get(state, "set"), "id");
            ck_assert_msg(!strcmp(set, "couples-short") || !strcmp(set, "couples-full"), "%s", set);
            per_condition[strcmp(set, "couples-full") == 0]++;
            json_decref(state);
        }
        json_decref(a);
    }
    ck_assert_int_eq(per_condition[0], 2);
    ck_assert_int_eq(per_condition[1], 2);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM rooms WHERE workshop_id = %lld AND study = 's2' AND"
             " study_condition = set_id",
             id);
    ck_assert_int_eq(db_count(sql), 4);
    ck_assert_int_eq(db_count("SELECT assigned FROM studies WHERE name = 's2'"), 4);

    /* Release caps the stage index in either condition set; the dashboard
     * never names a pair's condition. */
    char apath[96];
    snprintf(apath, sizeof(apath), "/api/workshops/%lld/actions", id);
    json_t *out = NULL;
    ck_assert_int_eq(fac_call(&f, "POST", apath, "{\"action\":\"release\",\"stage\":1}", &out),
                     200);
    json_decref(out);
    for (int i = 1; i < 8; i += 2) {
        json_t *state = room_state(rooms[i], people[i].token);
        ck_assert_int_eq(num(json_object_get(state, "flow"), "stage_cap"), 1);
        json_decref(state);
    }
    struct http_reply reply;
    ck_assert_int_eq(fac_do(&f, "GET", path, NULL, false, &reply), 200);
    ck_assert_int_eq(json_array_size(json_object_get(reply.json, "pairs")), 4);
    /* The sets' lengths differ: a pair's total of questions would name its condition. */
    for (size_t i = 0; i < 4; i++) {
        json_t *progress =
            json_object_get(json_array_get(json_object_get(reply.json, "pairs"), i), "progress");
        ck_assert(json_is_object(progress));
        ck_assert_ptr_null(json_object_get(progress, "total"));
    }
    ck_assert_ptr_null(strstr(reply.body, "couples-full"));
    ck_assert_ptr_null(strstr(reply.body, "condition"));
    ck_assert_ptr_null(strstr(reply.body, pk_b64));
    http_reply_free(&reply);
}
END_TEST

static Suite *workshops_suite(void)
{
    Suite *s = suite_create("workshops");
    TCase *tc = tcase_create("workshops");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_login_session_csrf);
    tcase_add_test(tc, test_login_rate_limit);
    tcase_add_test(tc, test_expired_session);
    tcase_add_test(tc, test_whole_path);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_public_url);
    tcase_add_test(tc, test_200_at_once);
    tcase_add_test(tc, test_left_behind);
    tcase_add_test(tc, test_pages);
    tcase_add_test(tc, test_big_queue_all_told);
    tcase_add_test(tc, test_study_workshop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(workshops_suite());
}
