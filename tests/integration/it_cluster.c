/*
 * Two thou instances on one PostgreSQL database (the cluster script/test
 * starts, THOU_TEST_PG_URL): partners split across the instances converse
 * as on one; one instance killed with SIGKILL mid-conversation loses nothing
 * acknowledged and the client resumes on the other with Last-Event-ID; a
 * lost database connection answers 503 and heals by itself; a missed or
 * stray notification loses or breaks nothing; a bad store URL exits clearly.
 * Skipped (77) without a cluster.
 */
#include "harness.h"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SET_ID "couples-short"

static const char *const fast_events[] = {"--events-per-s", "1000", "--events-burst", "1000", NULL};

static struct thou_proc one, two;
static char store_url[300];

static void start_pair(void)
{
    pg_new_database(store_url, sizeof(store_url));
    proc_start_on(&one, store_url, fast_events);
    proc_start_on(&two, store_url, fast_events);
}

static void stop_pair(void)
{
    proc_cleanup(&two);
    proc_cleanup(&one);
}

static void sql(const char *target, const char *command)
{
    PGconn *conn = PQconnectdb(target);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, command);
    ExecStatusType st = PQresultStatus(res);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "'%s': %s", command,
                  PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

static long long sql_count(const char *target, const char *query)
{
    PGconn *conn = PQconnectdb(target);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, query);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "'%s': %s", query,
                  PQerrorMessage(conn));
    long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return n;
}

/* ---- a conversation over HTTP -------------------------------------------------------- */

/* False when the instance did not answer at all. */
static bool post(unsigned port, const struct test_pair *pair, const char *token, const char *body,
                 struct http_reply *reply)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair->room);
    return http_json(port, "POST", path, token, body, reply);
}

static char *random_b64_text(size_t n)
{
    char *out = malloc(2 * n + 4);
    random_b64(n, out, 2 * n + 4);
    return out;
}

/* POST one event; its seq (a 201), -status, or 0 without an answer. */
static long long post_event(unsigned port, const struct test_pair *pair, const char *token,
                            const char *type, unsigned counter)
{
    char body[512];
    char *a = random_b64_text(32), *b = random_b64_text(32);
    if (strcmp(type, "key") == 0)
        snprintf(body, sizeof(body), "{\"type\":\"key\",\"public_key\":\"%s\",\"mac\":\"%s\"}", a,
                 b);
    else if (strcmp(type, "confirm") == 0)
        snprintf(body, sizeof(body), "{\"type\":\"confirm\",\"mac\":\"%s\"}", a);
    else
        snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%u}", a,
                 counter);
    free(a);
    free(b);
    struct http_reply reply;
    if (!post(port, pair, token, body, &reply)) {
        http_reply_free(&reply); /* an unanswered request still holds empty buffers */
        return 0;
    }
    long long result = -reply.status;
    if (reply.status == 201)
        result = json_integer_value(json_object_get(reply.json, "seq"));
    http_reply_free(&reply);
    return result;
}

static long long post_ok(unsigned port, const struct test_pair *pair, const char *token,
                         const char *type, unsigned counter)
{
    long long seq = post_event(port, pair, token, type, counter);
    ck_assert_msg(seq > 0, "POST %s on %u: status %lld", type, port, -seq);
    return seq;
}

/* A on instance one creates, B joins on instance two; keys and confirmations exchanged. */
static void split_pair(struct test_pair *pair)
{
    memset(pair, 0, sizeof(*pair));
    unsigned char secret[32], verifier[32];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    b64url32(secret, pair->secret, sizeof(pair->secret));
    b64url32(verifier, pair->verifier, sizeof(pair->verifier));
    char body[256], path[160];
    struct http_reply reply;
    snprintf(body, sizeof(body), "{\"set\":\"" SET_ID "\",\"join_verifier\":\"%s\"}",
             pair->verifier);
    ck_assert(http_json(one.port, "POST", "/api/rooms", NULL, body, &reply));
    ck_assert_msg(reply.status == 201, "create: %ld %s", reply.status, reply.body);
    snprintf(pair->room, sizeof(pair->room), "%s",
             json_string_value(json_object_get(reply.json, "room")));
    snprintf(pair->token_a, sizeof(pair->token_a), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", pair->secret);
    snprintf(path, sizeof(path), "/api/rooms/%s/join", pair->room);
    ck_assert(http_json(two.port, "POST", path, NULL, body, &reply));
    ck_assert_msg(reply.status == 200, "join on the other instance: %ld %s", reply.status,
                  reply.body);
    snprintf(pair->token_b, sizeof(pair->token_b), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
}

static void open_stream(struct sse_client *client, unsigned port, const struct test_pair *pair,
                        const char *token, const char *last_event_id)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair->room);
    ck_assert_msg(sse_open(client, port, path, token, last_event_id), "stream on %u: status %ld",
                  port, client->status);
}

/* Read stored events until seq `until`; each seq must be the next one. */
static long long read_through(struct sse_client *client, long long after, long long until,
                              int timeout_ms, const char *who)
{
    long long deadline = now_ms() + timeout_ms;
    long long cursor = after;
    while (cursor < until) {
        long long left = deadline - now_ms();
        struct sse_event ev;
        ck_assert_msg(left > 0 && sse_next(client, (int)left, &ev),
                      "%s: seq %lld not delivered (stopped at %lld)", who, cursor + 1, cursor);
        if (ev.id >= 0) {
            ck_assert_msg(ev.id == cursor + 1, "%s: seq %lld after %lld", who, ev.id, cursor);
            cursor = ev.id;
        }
        sse_event_release(&ev);
    }
    return cursor;
}

/* No stored event arrives for ms: nothing twice. */
static void assert_no_more(struct sse_client *client, int ms, const char *who)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        long long left = deadline - now_ms();
        struct sse_event ev;
        if (left <= 0 || !sse_next(client, (int)left, &ev))
            return;
        ck_assert_msg(ev.id < 0, "%s: an extra event %lld", who, ev.id);
        sse_event_release(&ev);
    }
}

/* ---- partners on two instances --------------------------------------------------------- */

START_TEST(partners_on_two_instances_converse)
{
    struct test_pair pair;
    split_pair(&pair);
    struct sse_client a, b;
    open_stream(&a, one.port, &pair, pair.token_a, NULL);
    open_stream(&b, two.port, &pair, pair.token_b, NULL);
    /* Each post goes to its sender's own instance; the other instance's stream
     * must deliver it within 2 s (a notification, not the 10 s catch-up). */
    long long seen_a = 0, seen_b = 0;
    long long seq = post_ok(one.port, &pair, pair.token_a, "key", 0);
    seen_b = read_through(&b, seen_b, seq, 2000, "B on two");
    seq = post_ok(two.port, &pair, pair.token_b, "key", 0);
    seen_a = read_through(&a, seen_a, seq, 2000, "A on one");
    post_ok(one.port, &pair, pair.token_a, "confirm", 0);
    seq = post_ok(two.port, &pair, pair.token_b, "confirm", 0);
    seen_a = read_through(&a, seen_a, seq, 2000, "A on one");
    seen_b = read_through(&b, seen_b, seq, 2000, "B on two");
    for (unsigned i = 1; i <= 20; i++) {
        bool from_a = i % 2;
        seq = post_ok(from_a ? one.port : two.port, &pair, from_a ? pair.token_a : pair.token_b,
                      "note", i);
        long long posted = now_ms();
        seen_a = read_through(&a, seen_a, seq, 2000, "A on one");
        seen_b = read_through(&b, seen_b, seq, 2000, "B on two");
        ck_assert_msg(now_ms() - posted < 2000, "slow cross-instance delivery");
    }
    assert_no_more(&a, 300, "A on one");
    assert_no_more(&b, 300, "B on two");
    sse_close(&a);
    sse_close(&b);
}
END_TEST

/* Both instances write the same room at once: one seq order, no gap, no repeat. */
struct writer {
    unsigned port;
    const struct test_pair *pair;
    const char *token;
    int n;
    long long seqs[100];
    int ok;
};

static void *write_notes(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        long long seq = post_event(w->port, w->pair, w->token, "note", (unsigned)i + 10);
        if (seq > 0)
            w->seqs[w->ok++] = seq;
    }
    return NULL;
}

START_TEST(racing_instances_share_one_seq_order)
{
    struct test_pair pair;
    split_pair(&pair);
    post_ok(one.port, &pair, pair.token_a, "key", 0);
    post_ok(two.port, &pair, pair.token_b, "key", 0);
    post_ok(one.port, &pair, pair.token_a, "confirm", 0);
    long long base = post_ok(two.port, &pair, pair.token_b, "confirm", 0);
    struct writer w[2] = {{one.port, &pair, pair.token_a, 100, {0}, 0},
                          {two.port, &pair, pair.token_b, 100, {0}, 0}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, write_notes, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    ck_assert_int_eq(w[0].ok, 100);
    ck_assert_int_eq(w[1].ok, 100);
    struct sse_client b;
    open_stream(&b, one.port, &pair, pair.token_b, NULL);
    read_through(&b, 0, base + 200, 5000, "B from the start");
    assert_no_more(&b, 300, "B from the start");
    sse_close(&b);
}
END_TEST

/* The next presence event on the stream says present (skipping stored events). */
static bool next_presence(struct sse_client *client, bool present, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        struct sse_event ev;
        if (left <= 0 || !sse_next(client, (int)left, &ev))
            return false;
        bool match = false;
        if (strcmp(ev.type, "presence") == 0 && ev.data) {
            json_t *data = json_loads(ev.data, 0, NULL);
            match = data && json_is_boolean(json_object_get(data, "present")) &&
                    json_is_true(json_object_get(data, "present")) == present;
            json_decref(data);
        }
        sse_event_release(&ev);
        if (match)
            return true;
    }
}

static bool partner_present(unsigned port, const struct test_pair *pair, const char *token)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s", pair->room);
    struct http_reply reply;
    ck_assert(http_json(port, "GET", path, token, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    const json_t *flag = json_object_get(json_object_get(reply.json, "partner"), "present");
    ck_assert(json_is_boolean(flag));
    bool present = json_is_true(flag);
    http_reply_free(&reply);
    return present;
}

/* Presence counts streams on both instances, and a killed instance's run out. */
START_TEST(presence_spans_the_instances)
{
    struct test_pair pair;
    split_pair(&pair);
    struct sse_client a, b;
    open_stream(&b, two.port, &pair, pair.token_b, NULL);
    ck_assert_msg(!partner_present(two.port, &pair, pair.token_b), "A has no stream yet");
    open_stream(&a, one.port, &pair, pair.token_a, NULL);
    ck_assert_msg(next_presence(&b, true, 3000), "B on two hears A arrive on one");
    ck_assert_msg(next_presence(&a, true, 3000), "A on one sees B present on two");
    ck_assert(partner_present(two.port, &pair, pair.token_b));
    ck_assert(partner_present(one.port, &pair, pair.token_a));
    /* An instance with no stream of the room asks the database. */
    ck_assert(partner_present(two.port, &pair, pair.token_a));

    sse_close(&a);
    ck_assert_msg(next_presence(&b, false, 3000), "B hears A leave");
    ck_assert(!partner_present(two.port, &pair, pair.token_b));
    open_stream(&a, one.port, &pair, pair.token_a, NULL);
    ck_assert_msg(next_presence(&b, true, 3000), "B hears A come back");

    /* A's instance dies without a word: A's presence runs out with its lease. */
    proc_kill9(&one);
    sse_close(&a);
    ck_assert_msg(next_presence(&b, false, 40000), "A still present after its instance died");
    sse_close(&b);
}
END_TEST

/* ---- an instance dies ---------------------------------------------------------------- */

struct steady_writer {
    const struct test_pair *pair;
    atomic_bool stop;
    long long acked[2000];
    int n_acked;
};

/* A keeps posting to instance one until it stops answering. */
static void *write_until_dead(void *arg)
{
    struct steady_writer *w = arg;
    for (unsigned i = 100; !atomic_load(&w->stop) && w->n_acked < 2000; i++) {
        long long seq = post_event(one.port, w->pair, w->pair->token_a, "note", i);
        if (seq > 0)
            w->acked[w->n_acked++] = seq;
        else if (seq == 0)
            break; /* no answer: the instance is gone */
    }
    return NULL;
}

START_TEST(killed_instance_loses_nothing_acknowledged)
{
    struct test_pair pair;
    split_pair(&pair);
    post_ok(one.port, &pair, pair.token_a, "key", 0);
    post_ok(two.port, &pair, pair.token_b, "key", 0);
    post_ok(one.port, &pair, pair.token_a, "confirm", 0);
    post_ok(two.port, &pair, pair.token_b, "confirm", 0);
    struct sse_client a;
    open_stream(&a, one.port, &pair, pair.token_a, NULL);
    long long seen = read_through(&a, 0, 5, 2000, "A on one");

    static struct steady_writer w;
    memset(&w, 0, sizeof(w));
    w.pair = &pair;
    pthread_t thread;
    pthread_create(&thread, NULL, write_until_dead, &w);
    usleep(400 * 1000); /* mid-conversation */
    proc_kill9(&one);
    atomic_store(&w.stop, true);
    pthread_join(thread, NULL);
    ck_assert_msg(w.n_acked > 0, "nothing was posted before the kill");

    /* A's stream ends with the instance; A comes back on the other one,
     * resuming after the last event its stream delivered. */
    for (;;) {
        struct sse_event ev;
        if (!sse_next(&a, 1000, &ev))
            break;
        if (ev.id >= 0) {
            ck_assert_int_eq(ev.id, seen + 1);
            seen = ev.id;
        }
        sse_event_release(&ev);
    }
    sse_close(&a);
    long long b_seq = post_ok(two.port, &pair, pair.token_b, "note", 9999);
    char last_id[32];
    snprintf(last_id, sizeof(last_id), "%lld", seen);
    open_stream(&a, two.port, &pair, pair.token_a, last_id);
    read_through(&a, seen, b_seq, 5000, "A resumed on two");
    assert_no_more(&a, 300, "A resumed on two");
    sse_close(&a);
    /* Every acknowledged event is stored, each under the seq it was acknowledged with. */
    long long last = w.acked[w.n_acked - 1];
    ck_assert_msg(b_seq > last, "B's seq %lld is not after A's acknowledged %lld", b_seq, last);
}
END_TEST

/* ---- the database goes away for a moment ---------------------------------------------- */

static long get_status(unsigned port, const char *path, const char *token, char *code,
                       size_t codelen)
{
    struct http_reply reply;
    ck_assert(http_json(port, "GET", path, token, NULL, &reply));
    long status = reply.status;
    snprintf(code, codelen, "%s", http_error_code(&reply));
    http_reply_free(&reply);
    return status;
}

/* On the cluster's maintenance database (the store's own may refuse us):
 * drop every connection to db_name, and with allow set, let none in or all. */
static void database_outage(const char *db_name, bool drop, const char *allow)
{
    char command[512];
    if (allow) {
        snprintf(command, sizeof(command), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", db_name,
                 allow);
        sql(pg_cluster_url(), command);
    }
    if (drop) {
        snprintf(command, sizeof(command),
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE datname = '%s' AND pid <> pg_backend_pid()",
                 db_name);
        sql(pg_cluster_url(), command);
    }
}

START_TEST(lost_database_connection_answers_503_then_heals)
{
    struct test_pair pair;
    split_pair(&pair);
    post_ok(one.port, &pair, pair.token_a, "key", 0);
    const char *db_name = strrchr(store_url, '/') + 1;

    /* The database restarts between requests: the instances reconnect unseen. */
    database_outage(db_name, true, NULL);
    usleep(200 * 1000);
    ck_assert_int_eq(post_ok(one.port, &pair, pair.token_b, "key", 0), 3);
    struct sse_client b;
    open_stream(&b, two.port, &pair, pair.token_b, NULL);
    read_through(&b, 0, 3, 2000, "B on two");

    /* The database is gone for a while: a clear 503, nothing stored. */
    database_outage(db_name, true, "false");
    usleep(200 * 1000);
    ck_assert_int_eq(post_event(one.port, &pair, pair.token_a, "confirm", 0), -503);
    char path[160], code[64];
    snprintf(path, sizeof(path), "/api/rooms/%s", pair.room);
    ck_assert_int_eq(get_status(two.port, path, pair.token_b, code, sizeof(code)), 503);
    ck_assert_str_eq(code, "unavailable");
    ck_assert_int_eq(get_status(two.port, "/healthz", NULL, code, sizeof(code)), 503);
    ck_assert_str_eq(code, "store_unavailable");

    /* Back: both instances serve again by themselves, and the refused
     * confirmation left no trace (the next seq is 4). */
    database_outage(db_name, false, "true");
    long long seq = -503;
    for (long long until = now_ms() + 5000; seq == -503 && now_ms() < until; usleep(100 * 1000))
        seq = post_event(one.port, &pair, pair.token_a, "confirm", 0);
    ck_assert_int_eq(seq, 4);
    long health = 503;
    for (long long until = now_ms() + 5000; health == 503 && now_ms() < until; usleep(100 * 1000))
        health = get_status(two.port, "/healthz", NULL, code, sizeof(code));
    ck_assert_int_eq(health, 200);
    /* B's stream may have ended while the database was away (a read that
     * fails ends it); B comes back as a browser does, with Last-Event-ID. */
    sse_close(&b);
    /* Its connections come back one by one (each tries again at most once a
     * second), so a request may still meet a 503, or a stream end at its
     * first read; a browser then reconnects with Last-Event-ID, and so does B. */
    snprintf(path, sizeof(path), "/api/rooms/%s/events", pair.room);
    long long got = 3;
    for (long long until = now_ms() + 8000; got < 4 && now_ms() < until;) {
        if (!sse_open(&b, two.port, path, pair.token_b, "3")) {
            ck_assert_msg(b.status == 503, "stream on two: status %ld", b.status);
            sse_close(&b);
            usleep(200 * 1000);
            continue;
        }
        struct sse_event ev;
        while (got < 4 && !b.eof && now_ms() < until) {
            if (!sse_next(&b, 200, &ev))
                continue;
            if (ev.id >= 0) {
                ck_assert_msg(ev.id == got + 1, "B on two: seq %lld after %lld", ev.id, got);
                got = ev.id;
            }
            sse_event_release(&ev);
        }
        if (got < 4)
            sse_close(&b);
    }
    ck_assert_msg(got == 4, "B on two never got seq 4 after the outage");
    assert_no_more(&b, 300, "B on two");
    sse_close(&b);
}
END_TEST

/* ---- notifications ------------------------------------------------------------------ */

START_TEST(missed_and_stray_notifications)
{
    struct test_pair pair;
    split_pair(&pair);
    /* Stray payloads: unknown rooms, garbage, an overlong id. Ignored. */
    sql(store_url, "NOTIFY thou_events, 'unknownAAAAAAAAAAAAAAA 5'");
    sql(store_url, "NOTIFY thou_events, 'garbage'");
    sql(store_url, "NOTIFY thou_events, 'an-overlong-room-id-longer-than-any-real-one 1'");
    struct sse_client b;
    open_stream(&b, two.port, &pair, pair.token_b, NULL);
    long long seen = read_through(&b, 0, 1, 2000, "B on two");
    /* Instance two's listening connection dies: the notifications of the
     * next commits never reach it. Its streams still get every event. */
    sql(store_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND query LIKE 'LISTEN%'");
    long long seq = post_ok(one.port, &pair, pair.token_a, "key", 0);
    read_through(&b, seen, seq, 15000, "B on two after a missed notification");
    assert_no_more(&b, 300, "B on two");
    sse_close(&b);
    struct http_reply reply;
    ck_assert(http_do(two.port, "GET", "/healthz", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
}
END_TEST

/* The event limit counts a participant's events on every instance together. */
START_TEST(event_limit_is_shared_by_the_instances)
{
    /* This test's own pair of instances, with a small burst. */
    static const char *const slow[] = {"--events-per-s", "1", "--events-burst", "4", NULL};
    proc_cleanup(&two);
    proc_cleanup(&one);
    pg_new_database(store_url, sizeof(store_url));
    proc_start_on(&one, store_url, slow);
    proc_start_on(&two, store_url, slow);
    struct test_pair pair;
    split_pair(&pair);
    post_ok(one.port, &pair, pair.token_a, "key", 0);
    post_ok(two.port, &pair, pair.token_b, "key", 0);
    post_ok(two.port, &pair, pair.token_a, "confirm", 0);
    post_ok(one.port, &pair, pair.token_b, "confirm", 0);
    /* A has two of its burst of 4 left, plus one a second. Twelve notes as
     * fast as they go, alternating instances: each instance alone would
     * accept at least 2 more (6 in all, twice that had each its own bucket). */
    long long start = now_ms();
    int accepted = 0, refused = 0;
    for (unsigned i = 0; i < 12; i++) {
        long long seq = post_event(i % 2 ? two.port : one.port, &pair, pair.token_a, "note", i + 1);
        ck_assert_msg(seq > 0 || seq == -429, "note %u: %lld", i, seq);
        accepted += seq > 0;
        refused += seq == -429;
    }
    long long elapsed = now_ms() - start;
    ck_assert_int_gt(refused, 0);
    ck_assert_msg(accepted <= 2 + elapsed / 1000 + 1, "%d accepted in %lld ms", accepted, elapsed);
}
END_TEST

/* ---- bad store URLs ----------------------------------------------------------------- */

/* A seat moved through one instance: the other, which had the old token in
 * its session cache and a stream open for it, lets go of both. */
START_TEST(seat_move_reaches_the_other_instance)
{
    struct test_pair pair;
    split_pair(&pair);
    /* A writes and listens through instance two: two now caches A's token. */
    post_ok(two.port, &pair, pair.token_a, "note", 1);
    struct sse_client old_stream;
    open_stream(&old_stream, two.port, &pair, pair.token_a, NULL);

    unsigned char bytes[32], digest[32];
    randombytes_buf(bytes, sizeof(bytes));
    crypto_generichash(digest, sizeof(digest), bytes, sizeof(bytes), NULL, 0);
    char token[64], hash[64], path[160], body[200];
    b64url32(bytes, token, sizeof(token));
    b64url32(digest, hash, sizeof(hash));
    snprintf(path, sizeof(path), "/api/rooms/%s/seat", pair.room);
    snprintf(body, sizeof(body), "{\"token_hash\":\"%s\"}", hash);
    struct http_reply reply;
    ck_assert(http_json(one.port, "POST", path, pair.token_a, body, &reply));
    ck_assert_msg(reply.status == 200, "move on instance one: %ld %s", reply.status, reply.body);
    http_reply_free(&reply);

    long long deadline = now_ms() + 5000;
    struct sse_event ev;
    while (!old_stream.eof && now_ms() < deadline)
        if (sse_next(&old_stream, 200, &ev))
            sse_event_release(&ev);
    ck_assert_msg(old_stream.eof, "the old token's stream on instance two stayed open");
    sse_close(&old_stream);
    long long refused = post_event(two.port, &pair, pair.token_a, "note", 2);
    ck_assert_msg(refused == -401, "the old token on instance two: %lld", refused);
    post_ok(two.port, &pair, token, "note", 2);
}
END_TEST

/* Facilitator accounts live in the shared database: one made with the CLI
 * logs in on either instance, and a wrong password is refused on both. */
START_TEST(facilitator_accounts_on_postgresql)
{
    char err[4096];
    setenv("THOU_STORE_URL", store_url, 1);
    const char *list[] = {"facilitator", "list", NULL};
    int rc = proc_run(list, err, sizeof(err));
    ck_assert_msg(rc == 0, "facilitator list on PostgreSQL: %d %s", rc, err);
    unsetenv("THOU_STORE_URL");
    struct http_reply reply;
    ck_assert(http_json(one.port, "POST", "/api/facilitator/login", NULL,
                        "{\"name\":\"nobody\",\"password\":\"correct horse\"}", &reply));
    ck_assert_int_eq(reply.status, 401);
    ck_assert_str_eq(http_error_code(&reply), "bad_login");
    http_reply_free(&reply);
    ck_assert(sql_count(store_url, "SELECT count(*) FROM facilitator_sessions") == 0);
}
END_TEST

START_TEST(bad_store_urls_exit_clearly)
{
    char err[4096];
    const char *unreachable[] = {"serve",
                                 "--config",
                                 THOU_SOURCE_DIR "/config/thou.json",
                                 "--port",
                                 "0",
                                 "--store-url",
                                 "postgresql://thou:pw-not-to-log@127.0.0.1:1/x?connect_timeout=2",
                                 NULL};
    int rc = proc_run(unreachable, err, sizeof(err));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "cannot connect to PostgreSQL"), "%s", err);
    ck_assert_msg(!strstr(err, "pw-not-to-log"), "the password was logged: %s", err);

    const char *wrong_scheme[] = {"serve", "--port", "0", "--store-url", "mysql://x/y", NULL};
    rc = proc_run(wrong_scheme, err, sizeof(err));
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "store-url"), "%s", err);

    /* A database written by a newer thou. */
    char url[300];
    pg_new_database(url, sizeof(url));
    sql(url, "CREATE TABLE thou_schema (version integer NOT NULL);"
             " INSERT INTO thou_schema VALUES (999)");
    const char *newer[] = {"serve",  "--config", THOU_SOURCE_DIR "/config/thou.json",
                           "--port", "0",        "--store-url",
                           url,      NULL};
    rc = proc_run(newer, err, sizeof(err));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "newer than this thou"), "%s", err);
}
END_TEST

int main(void)
{
    if (!pg_cluster_url()) {
        printf("THOU_TEST_PG_URL is not set: no PostgreSQL cluster (script/test starts one); "
               "skipped\n");
        return 77;
    }
    Suite *suite = suite_create("cluster");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, start_pair, stop_pair);
    tcase_add_test(tc, partners_on_two_instances_converse);
    tcase_add_test(tc, racing_instances_share_one_seq_order);
    tcase_add_test(tc, killed_instance_loses_nothing_acknowledged);
    tcase_add_test(tc, lost_database_connection_answers_503_then_heals);
    tcase_add_test(tc, missed_and_stray_notifications);
    tcase_add_test(tc, event_limit_is_shared_by_the_instances);
    tcase_add_test(tc, presence_spans_the_instances);
    tcase_add_test(tc, facilitator_accounts_on_postgresql);
    tcase_add_test(tc, seat_move_reaches_the_other_instance);
    suite_add_tcase(suite, tc);
    TCase *urls = tcase_create("store urls");
    tcase_set_timeout(urls, 60);
    tcase_add_test(urls, bad_store_urls_exit_clearly);
    suite_add_tcase(suite, urls);
    return run_suite(suite);
}
