/*
 * An acknowledged event survives kill -9 of the server at any moment.
 * Writers post notes in a loop while the server is killed and restarted
 * several times; afterwards every acknowledged seq is present with its
 * exact ciphertext and the sequence has no gaps or duplicates. The same
 * for a workshop's joins and pairings: every acknowledged one is there and
 * the rooms, seats and participants agree. And for a study's research
 * copies and releases: every acknowledged copy is there with its exact
 * sealed bytes, every acknowledged release is there with exactly what it
 * released and left out, and the copies agree with their rooms.
 */
#include "harness.h"

#include <check.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRITERS        4
#define KILLS          5
#define MAX_ACKS       20000
#define CIPHERTEXT_LEN 64

struct ack {
    long long seq;
    char ciphertext[CIPHERTEXT_LEN + 1];
};

struct shared {
    struct thou_proc proc;
    atomic_uint port; /* 0 while the server is down */
    atomic_bool stop;
    atomic_size_t acked; /* joins or research copies acknowledged so far */
    char room[64];
    char tokens[2][64];
};

struct writer {
    struct shared *shared;
    int index;
    struct ack *acks;
    size_t n_acks;
    size_t n_failures;
};

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    struct shared *s = w->shared;
    const char *token = s->tokens[w->index % 2];
    char path[128], body[256], ciphertext[CIPHERTEXT_LEN + 1];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", s->room);
    unsigned counter = 1;
    while (!atomic_load(&s->stop) && w->n_acks < MAX_ACKS) {
        unsigned port = atomic_load(&s->port);
        if (!port) {
            usleep(2000);
            continue;
        }
        random_b64(48, ciphertext, sizeof(ciphertext));
        snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%u}",
                 ciphertext, counter++);
        struct http_reply reply;
        bool sent = http_json(port, "POST", path, token, body, &reply);
        if (sent && reply.status == 201) {
            json_t *seq = json_object_get(reply.json, "seq");
            struct ack *a = &w->acks[w->n_acks++];
            a->seq = json_integer_value(seq);
            memcpy(a->ciphertext, ciphertext, sizeof(a->ciphertext));
        } else {
            /* Killed mid-request: not acknowledged, so it may or may not be stored. */
            w->n_failures++;
        }
        http_reply_free(&reply);
    }
    return NULL;
}

static void setup_room(struct shared *s)
{
    unsigned char secret[32], verifier[32];
    char secret_b64[64], verifier_b64[64], body[256], path[128];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    sodium_bin2base64(secret_b64, sizeof(secret_b64), secret, sizeof(secret),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(verifier_b64, sizeof(verifier_b64), verifier, sizeof(verifier),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    struct http_reply reply;
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
             verifier_b64);
    ck_assert(http_json(s->proc.port, "POST", "/api/rooms", NULL, body, &reply));
    ck_assert_int_eq(reply.status, 201);
    snprintf(s->room, sizeof(s->room), "%s",
             json_string_value(json_object_get(reply.json, "room")));
    snprintf(s->tokens[0], sizeof(s->tokens[0]), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);

    snprintf(path, sizeof(path), "/api/rooms/%s/join", s->room);
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", secret_b64);
    ck_assert(http_json(s->proc.port, "POST", path, NULL, body, &reply));
    ck_assert_int_eq(reply.status, 200);
    snprintf(s->tokens[1], sizeof(s->tokens[1]), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
}

/* Read every event of the room through the stream, from the beginning. */
static size_t read_all(struct shared *s, long long last_seq, json_t **by_seq)
{
    struct sse_client client;
    char path[128];
    snprintf(path, sizeof(path), "/api/rooms/%s/events", s->room);
    ck_assert(sse_open(&client, s->proc.port, path, s->tokens[0], NULL));
    size_t count = 0;
    long long expected = 1;
    struct sse_event ev;
    while (expected <= last_seq && sse_next_event(&client, 10000, &ev)) {
        if (ev.id >= 0) {
            /* In order, each seq exactly once: the next id is always the next number. */
            ck_assert_int_eq(ev.id, expected);
            by_seq[ev.id] = json_loads(ev.data, 0, NULL);
            ck_assert_ptr_nonnull(by_seq[ev.id]);
            expected++;
            count++;
        }
        sse_event_release(&ev);
    }
    sse_close(&client);
    return count;
}

/* How the server is interrupted while the writers write. */
enum interruption { KILL_9, SIGTERM_AND_RESTART };

static void run_writers_through(enum interruption how)
{
    static struct shared s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_ge(sodium_init(), 0);
    const char *extra[] = {"--events-per-s", "100000", "--events-burst", "100000", NULL};
    proc_start(&s.proc, extra);
    setup_room(&s);
    atomic_store(&s.port, s.proc.port);

    struct writer writers[WRITERS];
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (struct writer){.shared = &s, .index = i};
        writers[i].acks = calloc(MAX_ACKS, sizeof(struct ack));
        pthread_create(&threads[i], NULL, write_loop, &writers[i]);
    }
    srand(12345);
    int interruptions = how == KILL_9 ? KILLS : 2;
    for (int k = 0; k < interruptions; k++) {
        usleep((useconds_t)(200 + rand() % 400) * 1000);
        atomic_store(&s.port, 0);
        if (how == KILL_9) {
            proc_kill9(&s.proc);
        } else {
            /* A graceful stop in the middle of the load: requests in flight
             * finish, the store closes cleanly, the exit status is 0. */
            ck_assert_int_eq(proc_stop(&s.proc), 0);
        }
        proc_restart(&s.proc);
        atomic_store(&s.port, s.proc.port);
    }
    usleep(300 * 1000);
    atomic_store(&s.stop, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(threads[i], NULL);
    struct http_reply reply;
    char path[128], auth[128];
    snprintf(path, sizeof(path), "/api/rooms/%s", s.room);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s.tokens[0]);
    const char *headers[] = {auth, NULL};
    ck_assert(http_do(s.proc.port, "GET", path, headers, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    long long last_seq = json_integer_value(json_object_get(reply.json, "last_seq"));
    http_reply_free(&reply);

    size_t total_acks = 0, total_failures = 0;
    for (int i = 0; i < WRITERS; i++) {
        total_acks += writers[i].n_acks;
        total_failures += writers[i].n_failures;
    }
    fprintf(stderr, "durability: %zu acknowledged, %zu interrupted, last_seq %lld, %d %s\n",
            total_acks, total_failures, last_seq, interruptions,
            how == KILL_9 ? "kill -9" : "SIGTERM");
    ck_assert_int_gt(total_acks, 100);
    /* The join event plus every acknowledged note; interrupted posts may add more. */
    ck_assert_int_ge(last_seq, (long long)total_acks + 1);

    json_t **by_seq = calloc((size_t)last_seq + 1, sizeof(json_t *));
    ck_assert_uint_eq(read_all(&s, last_seq, by_seq), (size_t)last_seq);
    char *seen = calloc((size_t)last_seq + 1, 1);
    for (int i = 0; i < WRITERS; i++) {
        for (size_t j = 0; j < writers[i].n_acks; j++) {
            const struct ack *a = &writers[i].acks[j];
            ck_assert_int_ge(a->seq, 1);
            ck_assert_int_le(a->seq, last_seq);
            ck_assert_msg(!seen[a->seq], "seq %lld acknowledged twice", a->seq);
            seen[a->seq] = 1;
            const char *stored = json_string_value(json_object_get(by_seq[a->seq], "ciphertext"));
            ck_assert_ptr_nonnull(stored);
            ck_assert_str_eq(stored, a->ciphertext);
        }
        free(writers[i].acks);
    }
    for (long long seq = 1; seq <= last_seq; seq++)
        json_decref(by_seq[seq]);
    free(by_seq);
    free(seen);
    proc_cleanup(&s.proc);
}

START_TEST(acknowledged_events_survive_kill_9)
{
    run_writers_through(KILL_9);
}
END_TEST

START_TEST(graceful_stop_under_load_loses_nothing)
{
    run_writers_through(SIGTERM_AND_RESTART);
}
END_TEST

/* ---- workshops: acknowledged joins and pairings survive kill -9 ------------------ */

#define JOINERS   4
#define MAX_JOINS 4000

struct join_ack {
    char hash[64];
    long long label;
    bool paired;
    char room[64];
    char role;
};

struct joiner {
    struct shared *shared;
    struct join_ack *acks;
    size_t n_acks;
};

static void *join_loop(void *arg)
{
    struct joiner *j = arg;
    struct shared *s = j->shared;
    while (!atomic_load(&s->stop) && j->n_acks < MAX_JOINS) {
        unsigned port = atomic_load(&s->port);
        if (!port) {
            usleep(2000);
            continue;
        }
        unsigned char token[32], digest[32];
        char hash[64], body[160];
        randombytes_buf(token, sizeof(token));
        crypto_generichash(digest, sizeof(digest), token, sizeof(token), NULL, 0);
        b64url32(digest, hash, sizeof(hash));
        snprintf(body, sizeof(body), "{\"code\":\"K7QM3XPA\",\"token_hash\":\"%s\"}", hash);
        struct http_reply reply;
        if (!http_json(port, "POST", "/api/workshops/join", NULL, body, &reply)) {
            http_reply_free(&reply); /* an unanswered request still holds empty buffers */
            continue;
        }
        if (reply.status == 200) {
            atomic_fetch_add(&s->acked, 1);
            struct join_ack *a = &j->acks[j->n_acks++];
            snprintf(a->hash, sizeof(a->hash), "%s", hash);
            a->label = atoll(json_string_value(json_object_get(reply.json, "participant")) + 1);
            const char *status = json_string_value(json_object_get(reply.json, "status"));
            a->paired = strcmp(status, "paired") == 0;
            if (a->paired) {
                snprintf(a->room, sizeof(a->room), "%s",
                         json_string_value(json_object_get(reply.json, "room")));
                a->role = json_string_value(json_object_get(reply.json, "role"))[0];
            }
        }
        http_reply_free(&reply);
    }
    return NULL;
}

/*
 * KILLS times: let the load run 0.2-0.6 s and until per_life more of its
 * requests were acknowledged (at most 30 s; under valgrind a restart eats
 * most of a fixed interval), then kill -9 and restart. Clients see port 0
 * while the server is down.
 */
static void kill9_cycles(struct shared *s, unsigned seed, size_t per_life)
{
    srand(seed);
    for (int k = 0; k < KILLS; k++) {
        usleep((useconds_t)(200 + rand() % 400) * 1000);
        for (int waited = 0; atomic_load(&s->acked) < (size_t)(k + 1) * per_life && waited < 600;
             waited++)
            usleep(50 * 1000);
        atomic_store(&s->port, 0);
        proc_kill9(&s->proc);
        proc_restart(&s->proc);
        atomic_store(&s->port, s->proc.port);
    }
}

static long long db_int(sqlite3 *db, const char *sql, const char *text)
{
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s", sql);
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

START_TEST(acknowledged_pairings_survive_kill_9)
{
    static struct shared s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_ge(sodium_init(), 0);
    proc_start(&s.proc, NULL);
    /* A workshop made the way the API makes one; joining needs no facilitator. */
    proc_sql(&s.proc, "INSERT INTO workshops (code, facilitator, title, set_id, set_version,"
                      " state, capacity, created_ms) VALUES ('K7QM3XPA', 'ada', 't',"
                      " 'couples-short', 1, 0, 10000, 0)");
    atomic_store(&s.port, s.proc.port);
    struct joiner joiners[JOINERS];
    pthread_t threads[JOINERS];
    for (int i = 0; i < JOINERS; i++) {
        joiners[i] =
            (struct joiner){.shared = &s, .acks = calloc(MAX_JOINS, sizeof(struct join_ack))};
        pthread_create(&threads[i], NULL, join_loop, &joiners[i]);
    }
    kill9_cycles(&s, 777, 5);
    usleep(300 * 1000);
    atomic_store(&s.stop, true);
    for (int i = 0; i < JOINERS; i++)
        pthread_join(threads[i], NULL);
    proc_stop(&s.proc);

    char path[400];
    snprintf(path, sizeof(path), "%s/thou.db", s.proc.data_dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    size_t acks = 0, paired = 0;
    for (int i = 0; i < JOINERS; i++) {
        for (size_t k = 0; k < joiners[i].n_acks; k++) {
            const struct join_ack *a = &joiners[i].acks[k];
            unsigned char raw[32];
            size_t n = 0;
            ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), a->hash, strlen(a->hash), NULL, &n,
                                               NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                             0);
            char hex[65], sql[400];
            sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
            /* Every acknowledged join is there, with its label. */
            snprintf(sql, sizeof(sql),
                     "SELECT label FROM workshop_participants WHERE token_hash = x'%s'", hex);
            ck_assert_int_eq(db_int(db, sql, NULL), a->label);
            acks++;
            if (!a->paired)
                continue;
            /* Every acknowledged pairing: its seat in its room, as answered. */
            paired++;
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM participants WHERE token_hash = x'%s' AND room_id = ?"
                     " AND role = '%c'",
                     hex, a->role);
            ck_assert_int_eq(db_int(db, sql, a->room), 1);
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM workshop_participants WHERE token_hash = x'%s' AND"
                     " state = 1 AND room_id = ? AND role = '%c'",
                     hex, a->role);
            ck_assert_int_eq(db_int(db, sql, a->room), 1);
        }
        free(joiners[i].acks);
    }
    fprintf(stderr, "durability: %zu joins acknowledged, %zu paired at once, %d kill -9\n", acks,
            paired, KILLS);
    ck_assert_int_gt(acks, 20);
    /* And the whole is consistent: two seats a room, nobody in two rooms,
     * the counters match the rows. */
    ck_assert_int_eq(
        db_int(db,
               "SELECT count(*) FROM rooms r WHERE mode = 'workshop' AND (SELECT"
               " count(DISTINCT role) FROM participants p WHERE p.room_id = r.id) != 2",
               NULL),
        0);
    ck_assert_int_eq(db_int(db,
                            "SELECT count(*) FROM (SELECT room_id FROM workshop_participants WHERE"
                            " room_id IS NOT NULL GROUP BY room_id HAVING count(*) != 2)",
                            NULL),
                     0);
    ck_assert_int_eq(db_int(db, "SELECT pairs FROM workshops", NULL),
                     db_int(db, "SELECT count(*) FROM rooms WHERE mode = 'workshop'", NULL));
    ck_assert_int_eq(db_int(db, "SELECT joined FROM workshops", NULL),
                     db_int(db, "SELECT count(*) FROM workshop_participants", NULL));
    ck_assert_int_eq(db_int(db, "SELECT count(*) FROM workshop_participants WHERE state = 1", NULL),
                     2 * db_int(db, "SELECT pairs FROM workshops", NULL));
    sqlite3_close(db);
    proc_cleanup(&s.proc);
}
END_TEST

/* ---- research: acknowledged copies and releases survive kill -9 ----------------- */

#define STUDY_ROOMS  4
#define MAX_COPIES   3000
#define SEALED_BYTES 300 /* at least a sealed box of an empty copy (296) */

struct copy_ack {
    int step;
    char sealed[SEALED_BYTES * 4 / 3 + 8];
};

struct release_ack {
    bool done;  /* released (acknowledged, or found released by a retry) */
    bool known; /* the counts below were acknowledged */
    long long released, left_out;
};

struct study_room {
    struct shared *shared;
    char room[64];
    char tokens[2][64];
    long long release_after; /* steps before the release; 0: release only at the end */
    struct copy_ack *acks;
    size_t n_acks;
    struct release_ack release[2];
    char refusal[32]; /* the code of a 409 to a release: only already_released may come */
};

/* One POST with the server possibly down; the status, 0 when it did not answer. */
static long post_when_up(struct shared *s, const char *path, const char *token, const char *body,
                         json_t **json)
{
    for (;;) {
        unsigned port = atomic_load(&s->port);
        if (!port) {
            usleep(2000);
            continue;
        }
        struct http_reply reply;
        long status = 0;
        if (http_json(port, "POST", path, token, body, &reply)) {
            status = reply.status;
            if (json)
                *json = reply.json ? json_incref(reply.json) : NULL;
        }
        http_reply_free(&reply);
        return status;
    }
}

/* Release role's copies, leaving out its first step; retried until it is known done. */
static void release_role(struct study_room *r, int role)
{
    char path[128], body[64];
    snprintf(path, sizeof(path), "/api/rooms/%s/research/release", r->room);
    snprintf(body, sizeof(body), "{\"leave_out\":[\"c%d\"]}", role + 1);
    while (!r->release[role].done) {
        json_t *json = NULL;
        long status = post_when_up(r->shared, path, r->tokens[role], body, &json);
        if (status == 200) {
            r->release[role] = (struct release_ack){
                true, true, json_integer_value(json_object_get(json, "released")),
                json_integer_value(json_object_get(json, "left_out"))};
        } else if (status == 409) {
            /* An attempt the kill cut off had committed: released, counts unknown. */
            /* (checked in the test's thread: a failed check here would abort) */
            const char *code =
                json_string_value(json_object_get(json_object_get(json, "error"), "code"));
            snprintf(r->refusal, sizeof(r->refusal), "%s", code ? code : "?");
            r->release[role].done = true;
        }
        json_decref(json);
    }
}

static void *copy_loop(void *arg)
{
    struct study_room *r = arg;
    char path[128], body[640];
    snprintf(path, sizeof(path), "/api/rooms/%s/research", r->room);
    /* Steps c1, c2, …: odd ones A's, even ones B's. */
    for (int step = 1; !atomic_load(&r->shared->stop) && r->n_acks < MAX_COPIES; step++) {
        if (r->release_after && step > r->release_after)
            break;
        int role = (step - 1) % 2;
        struct copy_ack *a = &r->acks[r->n_acks];
        unsigned char sealed[SEALED_BYTES];
        randombytes_buf(sealed, sizeof(sealed));
        sodium_bin2base64(a->sealed, sizeof(a->sealed), sealed, sizeof(sealed),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(body, sizeof(body), "{\"step\":\"c%d\",\"sealed\":\"%s\"}", step, a->sealed);
        if (post_when_up(r->shared, path, r->tokens[role], body, NULL) == 201) {
            a->step = step;
            r->n_acks++;
            atomic_fetch_add(&r->shared->acked, 1);
        }
    }
    /* Released in the middle of the kills, or (the rest) after them. */
    while (!r->release_after && !atomic_load(&r->shared->stop))
        usleep(2000);
    release_role(r, 0);
    release_role(r, 1);
    return NULL;
}

static void study_room_setup(struct shared *s, struct study_room *r)
{
    unsigned char secret[32], verifier[32];
    char secret_b64[64], verifier_b64[64], body[256], path[128], ct[80];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    b64url32(secret, secret_b64, sizeof(secret_b64));
    b64url32(verifier, verifier_b64, sizeof(verifier_b64));
    struct http_reply reply;
    snprintf(body, sizeof(body),
             "{\"set\":\"couples-short\",\"study\":\"d1\",\"join_verifier\":\"%s\"}", verifier_b64);
    ck_assert(http_json(s->proc.port, "POST", "/api/rooms", NULL, body, &reply));
    ck_assert_int_eq(reply.status, 201);
    snprintf(r->room, sizeof(r->room), "%s",
             json_string_value(json_object_get(reply.json, "room")));
    snprintf(r->tokens[0], sizeof(r->tokens[0]), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
    snprintf(path, sizeof(path), "/api/rooms/%s/join", r->room);
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", secret_b64);
    ck_assert(http_json(s->proc.port, "POST", path, NULL, body, &reply));
    ck_assert_int_eq(reply.status, 200);
    snprintf(r->tokens[1], sizeof(r->tokens[1]), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
    /* Both consent (sealed events; the server reads only their type). */
    snprintf(path, sizeof(path), "/api/rooms/%s/events", r->room);
    for (int role = 0; role < 2; role++) {
        random_b64(48, ct, sizeof(ct));
        snprintf(body, sizeof(body), "{\"type\":\"consent\",\"ciphertext\":\"%s\",\"counter\":1}",
                 ct);
        ck_assert(http_json(s->proc.port, "POST", path, r->tokens[role], body, &reply));
        ck_assert_msg(reply.status == 201, "consent: %ld %s", reply.status, reply.body);
        http_reply_free(&reply);
    }
}

START_TEST(acknowledged_research_survives_kill_9)
{
    static struct shared s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_ge(sodium_init(), 0);
    const char *extra[] = {"--events-per-s", "100000", "--events-burst", "100000", NULL};
    proc_start(&s.proc, extra);
    /* A study as `thou study add` makes one (the key does not matter here). */
    proc_sql(&s.proc, "INSERT INTO studies (name, public_key, conditions, closeness, seed,"
                      " created_ms) VALUES ('d1', randomblob(32), '[]', 0, randomblob(32), 0)");
    static struct study_room rooms[STUDY_ROOMS];
    pthread_t threads[STUDY_ROOMS];
    for (int i = 0; i < STUDY_ROOMS; i++) {
        rooms[i] = (struct study_room){.shared = &s,
                                       .release_after = i < 2 ? 120 + 60 * i : 0,
                                       .acks = calloc(MAX_COPIES, sizeof(struct copy_ack))};
        study_room_setup(&s, &rooms[i]);
    }
    atomic_store(&s.port, s.proc.port);
    for (int i = 0; i < STUDY_ROOMS; i++)
        pthread_create(&threads[i], NULL, copy_loop, &rooms[i]);
    kill9_cycles(&s, 4242, 25);
    usleep(300 * 1000);
    atomic_store(&s.stop, true);
    for (int i = 0; i < STUDY_ROOMS; i++)
        pthread_join(threads[i], NULL);
    proc_kill9(&s.proc); /* the last writes acknowledged, then kill -9 once more */

    char path[400];
    snprintf(path, sizeof(path), "%s/thou.db", s.proc.data_dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    size_t copies = 0;
    for (int i = 0; i < STUDY_ROOMS; i++) {
        struct study_room *r = &rooms[i];
        char sql[800];
        for (size_t k = 0; k < r->n_acks; k++) {
            const struct copy_ack *a = &r->acks[k];
            char role = a->step % 2 ? 'A' : 'B';
            bool left_out = a->step <= 2; /* c1 (A's) and c2 (B's) were left out */
            /* Every acknowledged copy is there: its exact bytes, released or left out. */
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM research_copies WHERE room_id = ? AND role = '%c'"
                     " AND step = 'c%d' AND state = %d AND %s",
                     role, a->step, left_out ? 2 : 1,
                     left_out ? "sealed IS NULL" : "sealed IS NOT NULL");
            ck_assert_msg(db_int(db, sql, r->room) == 1, "copy c%d of room %d", a->step, i);
            if (!left_out) {
                snprintf(sql, sizeof(sql),
                         "SELECT count(*) FROM research_copies WHERE room_id = ? AND step = 'c%d'"
                         " AND sealed = '%s'",
                         a->step, a->sealed);
                ck_assert_int_eq(db_int(db, sql, r->room), 1);
            }
            copies++;
        }
        ck_assert_msg(!r->refusal[0] || strcmp(r->refusal, "already_released") == 0,
                      "a release refused: %s", r->refusal);
        for (int role = 0; role < 2; role++) {
            const struct release_ack *rel = &r->release[role];
            char c = role ? 'B' : 'A';
            ck_assert(rel->done);
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM research_releases WHERE room_id = ? AND role = '%c'", c);
            ck_assert_int_eq(db_int(db, sql, r->room), 1);
            if (!rel->known)
                continue;
            /* Exactly what the acknowledged release said it released and left out. */
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM research_copies WHERE room_id = ? AND role = '%c'"
                     " AND state = 1",
                     c);
            ck_assert_int_eq(db_int(db, sql, r->room), rel->released);
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM research_copies WHERE room_id = ? AND role = '%c'"
                     " AND state = 2",
                     c);
            ck_assert_int_eq(db_int(db, sql, r->room), rel->left_out);
            bool first_acked = false; /* c1 (A) or c2 (B), the step it left out */
            for (size_t k = 0; k < r->n_acks; k++)
                first_acked |= r->acks[k].step == role + 1;
            if (first_acked)
                ck_assert_int_eq(rel->left_out, 1);
        }
    }
    fprintf(stderr, "durability: %zu research copies acknowledged, %d kill -9\n", copies, KILLS);
    ck_assert_int_gt(copies, 100);
    /* The whole agrees with its rooms: every copy and release in a room of the
     * study, nothing unreleased after a release, left out means no bytes. */
    ck_assert_int_eq(db_int(db,
                            "SELECT count(*) FROM research_copies c WHERE NOT EXISTS (SELECT 1 FROM"
                            " rooms r WHERE r.id = c.room_id AND r.study = 'd1')",
                            NULL),
                     0);
    ck_assert_int_eq(db_int(db,
                            "SELECT count(*) FROM research_releases x WHERE NOT EXISTS (SELECT 1"
                            " FROM rooms r WHERE r.id = x.room_id AND r.study = 'd1')",
                            NULL),
                     0);
    ck_assert_int_eq(db_int(db,
                            "SELECT count(*) FROM research_copies c JOIN research_releases x ON"
                            " x.room_id = c.room_id AND x.role = c.role WHERE c.state = 0",
                            NULL),
                     0);
    ck_assert_int_eq(db_int(db,
                            "SELECT count(*) FROM research_copies WHERE (state = 2) !="
                            " (sealed IS NULL)",
                            NULL),
                     0);
    ck_assert_int_eq(db_int(db, "SELECT count(*) FROM research_releases", NULL), 2 * STUDY_ROOMS);
    sqlite3_close(db);
    proc_cleanup(&s.proc);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("durability");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, acknowledged_events_survive_kill_9);
    tcase_add_test(tc, graceful_stop_under_load_loses_nothing);
    tcase_add_test(tc, acknowledged_pairings_survive_kill_9);
    tcase_add_test(tc, acknowledged_research_survives_kill_9);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
