/*
 * Facilitated workshops on two thou instances sharing one PostgreSQL
 * database (the cluster script/test starts, THOU_TEST_PG_URL): 200
 * simultaneous joins split across the instances make exactly 100 pairs; a
 * facilitator logged in on one instance drives a workshop whose
 * participants wait on the other, whose open wait stream counts as
 * presence there; the login limit is one for both instances. Skipped (77)
 * without a cluster.
 */
#include "harness.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CROWD 200

static struct thou_proc one, two;
static char store_url[300];

/* A short presence timeout, and heartbeats that find a closed stream soon. */
static const char *const quick_presence[] = {"--workshop-presence-timeout-s", "2", "--heartbeat-s",
                                             "1", NULL};

static void start_on(const char *const *settings)
{
    pg_new_database(store_url, sizeof(store_url));
    proc_start_on(&one, store_url, settings);
    proc_start_on(&two, store_url, settings);
}

static void start_pair(void)
{
    start_on(NULL);
}

static void start_quick_pair(void)
{
    start_on(quick_presence);
}

static void stop_pair(void)
{
    proc_cleanup(&two);
    proc_cleanup(&one);
}

static long long sql_count(const char *query)
{
    PGconn *conn = PQconnectdb(store_url);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, query);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "'%s': %s", query,
                  PQerrorMessage(conn));
    long long n = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return n;
}

/* An account as `thou facilitator add` makes it: an Argon2id string. */
static void add_facilitator(const char *name, const char *password)
{
    char hash[crypto_pwhash_STRBYTES];
    ck_assert_int_eq(crypto_pwhash_str(hash, password, strlen(password),
                                       crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
    PGconn *conn = PQconnectdb(store_url);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    const char *values[] = {name, hash};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO facilitators (name, password_hash, created_ms)"
                                 " VALUES ($1, $2, 0)",
                                 2, NULL, values, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

/* A logged-in facilitator: the instance, the cookie header and the CSRF header. */
struct fac {
    unsigned port;
    char cookie[160];
    char csrf[160];
};

static long login(unsigned port, const char *name, const char *password, struct fac *f)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", "/api/facilitator/login", NULL, body, &reply));
    long status = reply.status;
    if (status == 200 && f) {
        char set_cookie[256];
        ck_assert(http_header(&reply, "Set-Cookie", set_cookie, sizeof(set_cookie)));
        char *semi = strchr(set_cookie, ';');
        ck_assert_ptr_nonnull(semi);
        f->port = port;
        snprintf(f->cookie, sizeof(f->cookie), "Cookie: %.*s", (int)(semi - set_cookie),
                 set_cookie);
        snprintf(f->csrf, sizeof(f->csrf), "X-CSRF-Token: %s",
                 json_string_value(json_object_get(reply.json, "csrf")));
    }
    http_reply_free(&reply);
    return status;
}

static long fac_call(const struct fac *f, const char *method, const char *path, const char *body,
                     json_t **json)
{
    const char *headers[4] = {"Content-Type: application/json", f->cookie, f->csrf, NULL};
    struct http_reply reply;
    ck_assert(http_do(f->port, method, path, headers, body, body ? strlen(body) : 0, &reply));
    long status = reply.status;
    if (json)
        *json = reply.json ? json_incref(reply.json) : NULL;
    http_reply_free(&reply);
    return status;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long create_workshop(const struct fac *f, char code[16])
{
    json_t *w = NULL;
    ck_assert_int_eq(fac_call(f, "POST", "/api/workshops",
                              "{\"title\":\"Class 4b\",\"set\":\"couples-short\"}", &w),
                     201);
    snprintf(code, 16, "%s", str(w, "code"));
    long long id = json_integer_value(json_object_get(w, "id"));
    json_decref(w);
    return id;
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

static long join(unsigned port, const char *code, const struct person *p, json_t **json)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", code, p->hash);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", "/api/workshops/join", NULL, body, &reply));
    long status = reply.status;
    if (json)
        *json = reply.json ? json_incref(reply.json) : NULL;
    http_reply_free(&reply);
    return status;
}

/* The next event of a type within timeout_ms; its data parsed (NULL: none came). */
static json_t *next_of_type(struct sse_client *sse, const char *type, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    struct sse_event ev;
    while (now_ms() < deadline && sse_next_event(sse, (int)(deadline - now_ms()), &ev)) {
        bool match = strcmp(ev.type, type) == 0;
        json_t *data = match ? json_loads(ev.data, 0, NULL) : NULL;
        sse_event_release(&ev);
        if (match)
            return data;
    }
    return NULL;
}

/* ---- 200 at once, split across the instances ------------------------------------ */

struct joiner {
    pthread_barrier_t *barrier;
    unsigned port;
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
    if (http_json(j->port, "POST", "/api/workshops/join", NULL, body, &reply)) {
        j->status = reply.status;
        snprintf(j->answer_status, sizeof(j->answer_status), "%s", str(reply.json, "status"));
        http_reply_free(&reply);
    }
    return NULL;
}

/*
 * Every join and the pairing it causes hold the workshop's row lock: the
 * two instances take turns, so 200 make exactly 100 rooms, nobody sits in
 * two, no room has three, and each label is given once.
 */
START_TEST(two_hundred_joins_on_two_instances_make_100_pairs)
{
    add_facilitator("ada", "correct horse");
    struct fac f;
    ck_assert_int_eq(login(one.port, "ada", "correct horse", &f), 200);
    char code[16];
    long long id = create_workshop(&f, code);
    static struct joiner joiners[CROWD];
    pthread_t threads[CROWD];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, CROWD);
    for (int i = 0; i < CROWD; i++) {
        joiners[i] =
            (struct joiner){.barrier = &barrier, .port = i % 2 ? two.port : one.port, .code = code};
        new_person(&joiners[i].person);
        ck_assert_int_eq(pthread_create(&threads[i], NULL, join_thread, &joiners[i]), 0);
    }
    int paired_at_once = 0;
    for (int i = 0; i < CROWD; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(joiners[i].status == 200, "join %d: %ld", i, joiners[i].status);
        paired_at_once += strcmp(joiners[i].answer_status, "paired") == 0;
    }
    pthread_barrier_destroy(&barrier);
    ck_assert_int_eq(paired_at_once, CROWD / 2);

    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM rooms WHERE workshop_id = %lld", id);
    ck_assert_int_eq(sql_count(sql), CROWD / 2);
    ck_assert_int_eq(
        sql_count("SELECT count(*) FROM rooms r WHERE mode = 'workshop' AND"
                  " (SELECT count(*) FROM participants p WHERE p.room_id = r.id) <> 2"),
        0);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM (SELECT room_id FROM participants GROUP BY"
                               " room_id HAVING count(DISTINCT role) <> 2) x"),
                     0);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM workshop_participants WHERE state = 1"),
                     CROWD);
    ck_assert_int_eq(sql_count("SELECT count(DISTINCT label) FROM workshop_participants"), CROWD);
    ck_assert_int_eq(sql_count("SELECT count(DISTINCT token_hash) FROM participants"), CROWD);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM participants"), CROWD);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM (SELECT room_id FROM workshop_participants"
                               " GROUP BY room_id HAVING count(*) <> 2) x"),
                     0);
    ck_assert_int_eq(sql_count("SELECT count(DISTINCT pair) FROM workshop_participants"),
                     CROWD / 2);
    ck_assert_int_eq(sql_count("SELECT max(pair) FROM workshop_participants"), CROWD / 2);
    snprintf(sql, sizeof(sql), "SELECT pairs * 1000 + joined FROM workshops WHERE id = %lld", id);
    ck_assert_int_eq(sql_count(sql), (CROWD / 2) * 1000 + CROWD);

    /* Asked again on the other instance, each learns where to go: 100 A and 100 B. */
    int as = 0;
    for (int i = 0; i < CROWD; i++) {
        json_t *a = NULL;
        ck_assert_int_eq(join(i % 2 ? one.port : two.port, code, &joiners[i].person, &a), 200);
        ck_assert_str_eq(str(a, "status"), "paired");
        as += strcmp(str(a, "role"), "A") == 0;
        json_decref(a);
    }
    ck_assert_int_eq(as, CROWD / 2);
}
END_TEST

/* ---- a facilitator on one instance, participants on the other --------------------- */

/* A server under valgrind runs some ten times slower: waits grow, what is awaited does not. */
static int slow(int ms)
{
    return getenv("THOU_VALGRIND") ? ms * 10 : ms;
}

static bool open_wait(struct sse_client *sse, unsigned port, const struct person *p)
{
    return sse_open(sse, port, "/api/workshops/wait", p->token, NULL) && sse->status == 200;
}

START_TEST(facilitator_on_one_drives_participants_on_two)
{
    add_facilitator("ada", "correct horse");
    struct fac f;
    ck_assert_int_eq(login(one.port, "ada", "correct horse", &f), 200);
    char code[16];
    long long id = create_workshop(&f, code);
    char path[128];
    snprintf(path, sizeof(path), "/api/workshops/%lld/events", id);
    const char *headers[] = {f.cookie, NULL};
    struct sse_client dash;
    ck_assert(sse_open_headers(&dash, one.port, path, headers));
    ck_assert_int_eq(dash.status, 200);

    /* p1 waits on instance two, its stream open longer than the presence
     * timeout (2 s). Instance one never saw that stream: only the lease in
     * the store tells it p1 is there. */
    struct person p1, p2, p3;
    new_person(&p1);
    new_person(&p2);
    new_person(&p3);
    json_t *answer = NULL;
    ck_assert_int_eq(join(two.port, code, &p1, &answer), 200);
    ck_assert_str_eq(str(answer, "status"), "waiting");
    json_decref(answer);
    struct sse_client wait1;
    ck_assert(open_wait(&wait1, two.port, &p1));
    json_t *waiting = next_of_type(&wait1, "waiting", slow(3000));
    ck_assert_ptr_nonnull(waiting);
    json_decref(waiting);

    /* The facilitator's note on one reaches the waiting stream on two. */
    json_t *snap = NULL;
    snprintf(path, sizeof(path), "/api/workshops/%lld/actions", id);
    ck_assert_int_eq(
        fac_call(&f, "POST", path, "{\"action\":\"broadcast\",\"text\":\"Welcome\"}", &snap), 200);
    json_decref(snap);
    json_t *note = next_of_type(&wait1, "note", slow(5000));
    ck_assert_msg(note != NULL, "the note did not reach the waiter on instance two");
    ck_assert_str_eq(str(note, "text"), "Welcome");
    json_decref(note);
    sleep(3); /* past the presence timeout, p1's stream still open on two */

    /* The dashboard on one counts p1 present: its lease says so. */
    snprintf(path, sizeof(path), "/api/workshops/%lld", id);
    ck_assert_int_eq(fac_call(&f, "GET", path, NULL, &snap), 200);
    json_t *queue = json_object_get(snap, "waiting");
    ck_assert_int_eq(json_array_size(queue), 1);
    ck_assert_msg(json_is_true(json_object_get(json_array_get(queue, 0), "present")),
                  "p1, waiting on two, is shown absent on one");
    json_decref(snap);

    /* p2 joins on one: paired with p1 at once, and p1's stream on two hears it. */
    long long told_from = now_ms();
    ck_assert_int_eq(join(one.port, code, &p2, &answer), 200);
    ck_assert_msg(strcmp(str(answer, "status"), "paired") == 0,
                  "p1, waiting on instance two, did not count as present on one: %s",
                  str(answer, "status"));
    ck_assert_str_eq(str(answer, "role"), "B");
    json_decref(answer);
    json_t *paired = next_of_type(&wait1, "paired", slow(5000));
    ck_assert_msg(paired != NULL, "the pair made on one never reached p1's stream on two");
    ck_assert_str_eq(str(paired, "role"), "A");
    json_decref(paired);
    ck_assert_msg(now_ms() - told_from < slow(3000), "told after %lld ms", now_ms() - told_from);
    sse_close(&wait1);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM rooms WHERE mode = 'workshop'"), 1);

    /* p3 joins on two and closes its stream: gone past the timeout, it
     * leaves the queue, whichever instance looks. */
    ck_assert_int_eq(join(two.port, code, &p3, NULL), 200);
    struct sse_client wait3;
    ck_assert(open_wait(&wait3, two.port, &p3));
    sse_close(&wait3);

    /* The dashboard on one shows the pair and the queue from the store. */
    bool saw_pair = false;
    long long deadline = now_ms() + slow(5000);
    while (!saw_pair && now_ms() < deadline) {
        json_t *s = next_of_type(&dash, "snapshot", (int)(deadline - now_ms()));
        if (!s)
            break;
        json_t *counts = json_object_get(s, "counts");
        saw_pair = json_integer_value(json_object_get(counts, "paired")) == 2 &&
                   json_integer_value(json_object_get(counts, "joined")) == 3;
        json_decref(s);
    }
    ck_assert_msg(saw_pair, "the dashboard on one did not show the pair and the three joined");
    sse_close(&dash);
    deadline = now_ms() + slow(8000);
    while (now_ms() < deadline &&
           sql_count("SELECT count(*) FROM workshop_participants WHERE state = 2") != 1)
        usleep(200 * 1000);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM workshop_participants WHERE state = 2"), 1);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM presence WHERE role = 'W' AND"
                               " expires_ms > (extract(epoch from now()) * 1000)::bigint"),
                     0);
}
END_TEST

/* ---- the login limit ------------------------------------------------------------------- */

/*
 * Two wrong passwords a minute per name: one on each instance, and the third
 * try is refused on either, where each instance's own bucket would still
 * have one. Two, not the default five: the bucket refills one try per 30 s,
 * and three Argon2id logins stay well inside that even under valgrind (five
 * at the default's 12 s per try did not, on a loaded machine).
 */
static void start_login_pair(void)
{
    start_on((const char *[]){"--login-failures-per-min", "2", NULL});
}

START_TEST(login_limit_is_shared)
{
    add_facilitator("ada", "correct horse");
    ck_assert_int_eq(login(one.port, "ada", "wrong", NULL), 401);
    ck_assert_int_eq(login(two.port, "ada", "wrong", NULL), 401);
    ck_assert_int_eq(login(one.port, "ada", "wrong", NULL), 429);
    ck_assert_int_eq(login(two.port, "ada", "correct horse", NULL), 429);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_buckets WHERE bucket LIKE 'login-%'"), 2);
}
END_TEST

/* ---- the database away ----------------------------------------------------------------- */

static void sql_admin(const char *command)
{
    PGconn *conn = PQconnectdb(pg_cluster_url());
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, command);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
                  "'%s': %s", command, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

/* Connections to the test's database refused (away) or allowed again, the open ones cut. */
static void database_away(bool away)
{
    const char *db_name = strrchr(store_url, '/') + 1;
    char command[512];
    snprintf(command, sizeof(command), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", db_name,
             away ? "false" : "true");
    sql_admin(command);
    if (away) {
        snprintf(command, sizeof(command),
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE datname = '%s' AND pid <> pg_backend_pid()",
                 db_name);
        sql_admin(command);
    }
}

/* A join or a login while the database is away: a clear 503, nothing stored;
 * back, the instances serve workshops again by themselves. */
START_TEST(database_away_refuses_joins_cleanly)
{
    add_facilitator("ada", "correct horse");
    struct fac f;
    ck_assert_int_eq(login(one.port, "ada", "correct horse", &f), 200);
    char code[16];
    create_workshop(&f, code);
    struct person p1, p2;
    new_person(&p1);
    new_person(&p2);
    ck_assert_int_eq(join(two.port, code, &p1, NULL), 200);

    database_away(true);
    usleep(200 * 1000);
    char body[256];
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", code, p2.hash);
    struct http_reply reply;
    ck_assert(http_json(one.port, "POST", "/api/workshops/join", NULL, body, &reply));
    ck_assert_int_eq(reply.status, 503);
    ck_assert_str_eq(http_error_code(&reply), "unavailable");
    http_reply_free(&reply);
    ck_assert_int_eq(login(two.port, "ada", "correct horse", NULL), 503);
    database_away(false);

    ck_assert_int_eq(sql_count("SELECT count(*) FROM workshop_participants"), 1);
    long status = 503;
    json_t *answer = NULL;
    for (long long until = now_ms() + slow(8000); status == 503 && now_ms() < until;
         usleep(100 * 1000)) {
        json_decref(answer);
        answer = NULL;
        status = join(one.port, code, &p2, &answer);
    }
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(answer, "status"), "paired");
    json_decref(answer);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM workshop_participants"), 2);
    ck_assert_int_eq(sql_count("SELECT count(*) FROM rooms WHERE mode = 'workshop'"), 1);
}
END_TEST

int main(void)
{
    if (!pg_cluster_url()) {
        printf("THOU_TEST_PG_URL is not set: no PostgreSQL cluster (script/test starts one); "
               "skipped\n");
        return 77;
    }
    Suite *suite = suite_create("workshops_cluster");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, start_pair, stop_pair);
    tcase_add_test(tc, two_hundred_joins_on_two_instances_make_100_pairs);
    tcase_add_test(tc, database_away_refuses_joins_cleanly);
    suite_add_tcase(suite, tc);
    TCase *quick = tcase_create("quick presence");
    tcase_set_timeout(quick, 120);
    tcase_add_checked_fixture(quick, start_quick_pair, stop_pair);
    tcase_add_test(quick, facilitator_on_one_drives_participants_on_two);
    suite_add_tcase(suite, quick);
    TCase *login = tcase_create("login limit");
    tcase_set_timeout(login, 120);
    tcase_add_checked_fixture(login, start_login_pair, stop_pair);
    tcase_add_test(login, login_limit_is_shared);
    suite_add_tcase(suite, login);
    return run_suite(suite);
}
