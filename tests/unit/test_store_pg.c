/*
 * The store on PostgreSQL, through the same interface as test_store.c's
 * SQLite store, on the throwaway cluster script/test starts
 * (THOU_TEST_PG_URL). Two store handles on one database stand for two thou
 * instances. Without a cluster every test is skipped (exit 77).
 */
#include "thou/store.h"
#include "thou/facilitators.h"
#include "thou/studies.h"
#include "thou/wstore.h"
#include "thou/wstore_pg.h"

#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROOM_1 "room1AAAAAAAAAAAAAAAAA"
#define ROOM_2 "room2AAAAAAAAAAAAAAAAA"
#define NEVER  "neverAAAAAAAAAAAAAAAAA"

static char url[512]; /* the test's own database */
static struct thou_store *store, *other;
static char errbuf[512];

/* ---- the test's database ---------------------------------------------------- */

static PGconn *admin_connect(const char *target)
{
    PGconn *conn = PQconnectdb(target);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    return conn;
}

static void sql_on(const char *target, const char *sql)
{
    PGconn *conn = admin_connect(target);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "'%s': %s", sql,
                  PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

static long long sql_int(const char *sql)
{
    PGconn *conn = admin_connect(url);
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "'%s': %s", sql,
                  PQerrorMessage(conn));
    long long value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return value;
}

/* A fresh empty database for every test. */
static void new_database(void)
{
    const char *cluster = getenv("THOU_TEST_PG_URL");
    ck_assert_ptr_nonnull(cluster);
    static unsigned counter;
    char name[64], sql[128];
    snprintf(name, sizeof(name), "thou_unit_%ld_%u_%ld", (long)getpid(), counter++,
             (long)time(NULL));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    sql_on(cluster, sql);
    const char *slash = strrchr(cluster, '/');
    snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - cluster), cluster, name);
}

static void setup(void)
{
    new_database();
    errbuf[0] = '\0';
    ck_assert_msg(thou_store_open(url, &store, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
    ck_assert_msg(thou_store_open(url, &other, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
}

static void teardown(void)
{
    thou_store_close(store);
    thou_store_close(other);
    store = other = NULL;
}

/* ---- helpers on the store API ------------------------------------------------- */

static void hash_of(uint8_t out[THOU_HASH_LEN], unsigned seed)
{
    for (size_t i = 0; i < THOU_HASH_LEN; i++)
        out[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof(seed); i++)
        out[i] ^= (uint8_t)(seed >> (8 * i));
}

static enum thou_status create_room(struct thou_store *s, const char *id, unsigned token_seed,
                                    int64_t expires_ms)
{
    struct thou_room_record room;
    memset(&room, 0, sizeof(room));
    snprintf(room.id, sizeof(room.id), "%s", id);
    snprintf(room.set_id, sizeof(room.set_id), "couples-short");
    room.set_version = 3;
    room.state = THOU_ROOM_WAITING;
    hash_of(room.join_verifier, 0x40);
    room.created_ms = 1000;
    room.expires_ms = expires_ms;
    room.flow_json = (char *)(uintptr_t) "{\"stage\":1}";
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, token_seed);
    return thou_store_room_create(s, &room, token);
}

static enum thou_status join_room(struct thou_store *s, const char *id, unsigned token_seed,
                                  bool *again)
{
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, token_seed);
    return thou_store_room_join(s, id, token, 5000, again);
}

static enum thou_status append_one(struct thou_store *s, const char *id, const char *data,
                                   int64_t *seq)
{
    struct thou_event_record event = {
        .type = "note", .sender = 'A', .visible_to = 0, .data = data, .time_ms = 1234};
    return thou_store_events_append(s, id, &event, 1, THOU_ROOM_ACTIVE, NULL, seq);
}

struct collected {
    int64_t seqs[4096];
    char visible[4096];
    size_t n;
};

static bool collect(void *ctx, const struct thou_event_record *event)
{
    struct collected *c = ctx;
    if (c->n < 4096) {
        c->visible[c->n] = event->visible_to;
        c->seqs[c->n++] = event->seq;
    }
    return true;
}

/* ---- opening --------------------------------------------------------------------- */

START_TEST(test_open_migrates_to_current_version)
{
    ck_assert_int_eq(thou_store_schema_version(store), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(sql_int("SELECT version FROM thou_schema"), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(thou_store_ping(store), THOU_OK);
    /* Every version's tables, as on SQLite: workshops (4), studies (5), a workshop's study (6). */
    ck_assert_int_eq(sql_int("SELECT count(*) FROM information_schema.tables WHERE table_name IN"
                             " ('facilitators', 'facilitator_sessions', 'workshops',"
                             " 'workshop_participants', 'studies', 'research_copies',"
                             " 'research_releases')"),
                     7);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_name ="
                             " 'rooms' AND column_name IN ('mode', 'workshop_id', 'workshop_pair',"
                             " 'study', 'study_condition')"),
                     5);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_name ="
                             " 'workshops' AND column_name = 'study'"),
                     1);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    teardown();
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE thou_schema SET version = %d", THOU_SCHEMA_VERSION + 1);
    sql_on(url, sql);
    ck_assert_int_eq(thou_store_open(url, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_ptr_null(store);
    ck_assert_msg(strstr(errbuf, "newer") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(test_foreign_database_refused)
{
    teardown();
    new_database();
    sql_on(url, "CREATE TABLE payroll (id integer)");
    ck_assert_int_eq(thou_store_open(url, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_msg(strstr(errbuf, "not a thou database") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(test_unreachable_refused_without_password)
{
    teardown();
    /* Port 1 on loopback: nothing listens there. */
    ck_assert_int_eq(thou_store_open("postgresql://thou:s3cret-pw@127.0.0.1:1/x?connect_timeout=2",
                                     &store, errbuf, sizeof(errbuf)),
                     THOU_EUNAVAIL);
    ck_assert_msg(strstr(errbuf, "cannot connect to PostgreSQL") != NULL, "%s", errbuf);
    ck_assert_msg(strstr(errbuf, "s3cret-pw") == NULL, "the password is in '%s'", errbuf);
}
END_TEST

/* ---- rooms, seats and events ------------------------------------------------------ */

START_TEST(test_room_create_get_join)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    ck_assert_int_eq(create_room(other, ROOM_1, 7, 99999), THOU_EEXIST);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(other, ROOM_1, &room), THOU_OK);
    ck_assert_str_eq(room.set_id, "couples-short");
    ck_assert_int_eq(room.state, THOU_ROOM_WAITING);
    ck_assert_str_eq(room.flow_json, "{\"stage\":1}");
    uint8_t verifier[THOU_HASH_LEN];
    hash_of(verifier, 0x40);
    ck_assert_mem_eq(room.join_verifier, verifier, THOU_HASH_LEN);
    ck_assert(!room.b_joined);
    thou_room_record_release(&room);

    bool again = true;
    ck_assert_int_eq(join_room(other, ROOM_1, 2, &again), THOU_OK);
    ck_assert(!again);
    ck_assert_int_eq(join_room(store, ROOM_1, 2, &again), THOU_OK); /* a retried join */
    ck_assert(again);
    ck_assert_int_eq(join_room(store, ROOM_1, 3, &again), THOU_EFULL);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert(room.b_joined);
    ck_assert_int_eq(room.state, THOU_ROOM_ACTIVE);
    thou_room_record_release(&room);

    char role = 0;
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, 2);
    ck_assert_int_eq(thou_store_participant_role(store, ROOM_1, token, &role), THOU_OK);
    ck_assert_int_eq(role, 'B');
    hash_of(token, 3);
    ck_assert_int_eq(thou_store_participant_role(store, ROOM_1, token, &role), THOU_EAUTH);
    ck_assert_int_eq(thou_store_room_get(store, NEVER, &room), THOU_ENOTFOUND);
}
END_TEST

struct join_race {
    struct thou_store *store;
    unsigned seed;
    enum thou_status rc;
};

static void *join_thread(void *arg)
{
    struct join_race *j = arg;
    j->rc = join_room(j->store, ROOM_1, j->seed, NULL);
    return NULL;
}

/* Sixteen joins with different tokens through two instances: one seat. */
START_TEST(test_concurrent_joins_take_one_seat)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    struct join_race joins[16];
    pthread_t threads[16];
    for (unsigned i = 0; i < 16; i++) {
        joins[i] = (struct join_race){i % 2 ? other : store, 100 + i, THOU_EIO};
        pthread_create(&threads[i], NULL, join_thread, &joins[i]);
    }
    int seated = 0;
    for (unsigned i = 0; i < 16; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(joins[i].rc == THOU_OK || joins[i].rc == THOU_EFULL, "join %u: %d", i,
                      joins[i].rc);
        seated += joins[i].rc == THOU_OK;
    }
    ck_assert_int_eq(seated, 1);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM participants"), 2);
}
END_TEST

struct appender {
    struct thou_store *store;
    int count;
    int64_t seqs[200];
    enum thou_status rc;
};

static void *append_thread(void *arg)
{
    struct appender *a = arg;
    a->rc = THOU_OK;
    for (int i = 0; i < a->count && a->rc == THOU_OK; i++)
        a->rc = append_one(a->store, ROOM_1, "{\"n\":1}", &a->seqs[i]);
    return NULL;
}

/* Writers on two instances at once: seqs 1..N, each once, in commit order. */
START_TEST(test_concurrent_appends_gap_free_across_instances)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    enum { THREADS = 8, EACH = 100 };
    struct appender appenders[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        appenders[i] = (struct appender){.store = i % 2 ? other : store, .count = EACH};
        pthread_create(&threads[i], NULL, append_thread, &appenders[i]);
    }
    static bool seen[THREADS * EACH + 1];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(appenders[i].rc, THOU_OK);
        for (int k = 0; k < EACH; k++) {
            int64_t seq = appenders[i].seqs[k];
            ck_assert(seq >= 1 && seq <= THREADS * EACH);
            ck_assert_msg(!seen[seq], "seq %lld twice", (long long)seq);
            seen[seq] = true;
            /* One writer's own events are in the order it wrote them. */
            if (k)
                ck_assert(seq > appenders[i].seqs[k - 1]);
        }
    }
    static struct collected got;
    memset(&got, 0, sizeof(got));
    ck_assert_int_eq(thou_store_events_after(other, ROOM_1, 'B', 0, 4096, collect, &got), THOU_OK);
    ck_assert_uint_eq(got.n, THREADS * EACH);
    for (size_t i = 0; i < got.n; i++)
        ck_assert_int_eq(got.seqs[i], (int64_t)i + 1);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, THREADS * EACH);
    thou_room_record_release(&room);
}
END_TEST

START_TEST(test_visibility_and_limit)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    struct thou_event_record events[3] = {
        {.type = "a", .sender = 'A', .visible_to = 0, .data = "{}", .time_ms = 1},
        {.type = "b", .sender = 'A', .visible_to = 'A', .data = "{}", .time_ms = 1},
        {.type = "c", .sender = 'B', .visible_to = 'B', .data = "{}", .time_ms = 1},
    };
    int64_t seqs[3];
    ck_assert_int_eq(
        thou_store_events_append(store, ROOM_1, events, 3, THOU_ROOM_ACTIVE, NULL, seqs), THOU_OK);
    ck_assert_int_eq(seqs[2], 3);
    struct collected got = {0};
    ck_assert_int_eq(thou_store_events_after(store, ROOM_1, 'B', 0, 10, collect, &got), THOU_OK);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_int_eq(got.seqs[0], 1);
    ck_assert_int_eq(got.seqs[1], 3);
    memset(&got, 0, sizeof(got));
    ck_assert_int_eq(thou_store_events_after(store, ROOM_1, 'A', 0, 1, collect, &got), THOU_OK);
    ck_assert_uint_eq(got.n, 1);
}
END_TEST

/* Finds the newest event of a type by sender, optionally naming a question. */
static enum thou_status find_update(void *ctx, struct thou_room_txn *txn,
                                    const struct thou_room_record *room,
                                    struct thou_room_change *change)
{
    char **found = ctx;
    enum thou_status rc = thou_store_txn_find(txn, "answer", 'A', "q2", found);
    change->n_events = 0;
    change->new_state = room->state;
    return rc;
}

START_TEST(test_txn_find)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    struct thou_event_record events[3] = {
        {.type = "answer", .sender = 'A', .data = "{\"question\":\"q2\",\"n\":1}", .time_ms = 1},
        {.type = "answer", .sender = 'A', .data = "{\"question\":\"q2\",\"n\":2}", .time_ms = 1},
        {.type = "answer", .sender = 'A', .data = "{\"question\":\"q3\",\"n\":3}", .time_ms = 1},
    };
    int64_t seqs[3];
    ck_assert_int_eq(
        thou_store_events_append(store, ROOM_1, events, 3, THOU_ROOM_ACTIVE, NULL, seqs), THOU_OK);
    char *found = NULL;
    struct thou_room_change change = {0};
    ck_assert_int_eq(thou_store_room_update(other, ROOM_1, find_update, &found, &change), THOU_OK);
    ck_assert_str_eq(found, "{\"question\":\"q2\",\"n\":2}");
    free(found);
}
END_TEST

START_TEST(test_limits_and_ended_rooms)
{
    thou_store_set_room_limits(store, 2, 0);
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_OK);
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_OK);
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_ELIMIT);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM events"), 2);

    ck_assert_int_eq(create_room(store, ROOM_2, 2, 99999), THOU_OK);
    struct thou_event_record end = {.type = "end", .sender = 'A', .data = "{}", .time_ms = 1};
    ck_assert_int_eq(thou_store_events_append(store, ROOM_2, &end, 1, THOU_ROOM_ENDED, NULL, &seq),
                     THOU_OK);
    ck_assert_int_eq(append_one(other, ROOM_2, "{}", &seq), THOU_ECONFLICT);
    ck_assert_int_eq(append_one(other, NEVER, "{}", &seq), THOU_ENOTFOUND);
}
END_TEST

START_TEST(test_erase_and_sweep)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    ck_assert_int_eq(create_room(store, ROOM_2, 2, 500), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_OK);
    ck_assert_int_eq(thou_store_room_erase(other, ROOM_1, 2000), THOU_OK);
    ck_assert_int_eq(thou_store_room_erase(other, ROOM_1, 2000), THOU_EGONE);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_EGONE);
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_EGONE);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM events"), 0);

    size_t deleted = 0;
    ck_assert_int_eq(thou_store_sweep(store, 1000, 100000, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, 1);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_2, &room), THOU_EGONE);
    /* Tombstones older than their time to live go too. */
    ck_assert_int_eq(thou_store_sweep(store, 1000000, 1000, &deleted), THOU_OK);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM tombstones"), 0);
}
END_TEST

/* ---- group commit ----------------------------------------------------------------- */

struct async_job {
    struct thou_room_change change;
    struct thou_event_record event;
    atomic_int *done;
    enum thou_status status;
};

static enum thou_status async_update(void *ctx, struct thou_room_txn *txn,
                                     const struct thou_room_record *room,
                                     struct thou_room_change *change)
{
    struct async_job *job = ctx;
    change->events[0] = job->event;
    change->n_events = 1;
    change->new_state = THOU_ROOM_ACTIVE;
    return THOU_OK;
}

static void async_done(void *ctx, enum thou_status status)
{
    struct async_job *job = ctx;
    job->status = status;
    atomic_fetch_add(job->done, 1);
}

static int batches;
static void count_batch(void *ctx)
{
    (void)ctx;
    batches++;
}

/* Many asynchronous updates queued at once commit in fewer transactions. */
START_TEST(test_async_updates_group_commit)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    batches = 0;
    thou_store_set_batch_hooks(store, count_batch, NULL, NULL);
    enum { N = 300 };
    static struct async_job jobs[N];
    atomic_int done = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct async_job){.event = {.type = "note", .sender = 'A', .data = "{}"},
                                     .done = &done,
                                     .status = THOU_EIO};
        thou_store_room_update_async(store, ROOM_1, async_update, &jobs[i], &jobs[i].change,
                                     async_done, &jobs[i]);
    }
    for (int wait = 0; atomic_load(&done) < N && wait < 3000; wait++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&done), N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].status, THOU_OK);
        ck_assert_int_eq(jobs[i].change.seqs[0], i + 1); /* queue order is seq order */
    }
    ck_assert_int_eq(sql_int("SELECT count(*) FROM events"), N);
    ck_assert_msg(batches < N, "%d commits for %d updates", batches, N);
}
END_TEST

/* One bucket for both instances: what one takes, the other cannot. */
START_TEST(test_rate_buckets_are_shared)
{
    unsigned retry = 0;
    const int64_t t0 = 1000000;
    ck_assert_int_eq(thou_store_rate_take(store, "events", "k", 0.5, 3, true, t0, &retry), THOU_OK);
    ck_assert_int_eq(thou_store_rate_take(other, "events", "k", 0.5, 3, true, t0, &retry), THOU_OK);
    /* Looking takes nothing. */
    ck_assert_int_eq(thou_store_rate_take(other, "events", "k", 0.5, 3, false, t0, &retry),
                     THOU_OK);
    ck_assert_int_eq(thou_store_rate_take(store, "events", "k", 0.5, 3, true, t0, &retry), THOU_OK);
    ck_assert_int_eq(thou_store_rate_take(other, "events", "k", 0.5, 3, true, t0, &retry),
                     THOU_ERATE);
    ck_assert_uint_eq(retry, 2); /* one token at 0.5 a second */
    ck_assert_int_eq(thou_store_rate_take(store, "events", "k", 0.5, 3, false, t0, &retry),
                     THOU_ERATE);
    /* Other keys and other limits have buckets of their own. */
    ck_assert_int_eq(thou_store_rate_take(store, "events", "j", 0.5, 3, true, t0, &retry), THOU_OK);
    ck_assert_int_eq(thou_store_rate_take(store, "joins", "k", 0.5, 3, true, t0, &retry), THOU_OK);
    /* Two seconds later one token is back, for whichever instance asks. */
    ck_assert_int_eq(thou_store_rate_take(other, "events", "k", 0.5, 3, true, t0 + 2000, &retry),
                     THOU_OK);
    ck_assert_int_eq(thou_store_rate_take(store, "events", "k", 0.5, 3, true, t0 + 2000, &retry),
                     THOU_ERATE);
}
END_TEST

/* Two instances' batches each write two rooms, in opposite orders, at once:
 * without one lock order they would deadlock and PostgreSQL fail requests. */
START_TEST(test_crossed_batches_do_not_deadlock)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    ck_assert_int_eq(create_room(store, ROOM_2, 2, 99999), THOU_OK);
    enum { PAIRS = 150 };
    static struct async_job jobs[2][2 * PAIRS];
    atomic_int done = 0;
    for (int round = 0; round < PAIRS; round++) {
        for (int side = 0; side < 2; side++) {
            struct thou_store *s = side ? other : store;
            for (int k = 0; k < 2; k++) {
                struct async_job *job = &jobs[side][2 * round + k];
                *job = (struct async_job){.event = {.type = "note", .sender = 'A', .data = "{}"},
                                          .done = &done,
                                          .status = THOU_EIO};
                /* store: room 1 then 2; other: room 2 then 1 */
                const char *room = (k == 0) == (side == 0) ? ROOM_1 : ROOM_2;
                thou_store_room_update_async(s, room, async_update, job, &job->change, async_done,
                                             job);
            }
        }
    }
    for (int wait = 0; atomic_load(&done) < 4 * PAIRS && wait < 6000; wait++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&done), 4 * PAIRS);
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < 2 * PAIRS; i++)
            ck_assert_msg(jobs[side][i].status == THOU_OK, "side %d job %d: %d", side, i,
                          jobs[side][i].status);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM events"), 4 * PAIRS);
    ck_assert_int_eq(sql_int("SELECT max(seq) FROM events WHERE room_id = '" ROOM_1 "'"),
                     2 * PAIRS);
}
END_TEST

/* ---- across instances --------------------------------------------------------------- */

static pthread_mutex_t heard_lock = PTHREAD_MUTEX_INITIALIZER;
static char heard_room[64];
static int64_t heard_seq;
static int heard_count;

static void heard(void *ctx, const char *room_id, int64_t seq)
{
    (void)ctx;
    if (!room_id)
        return; /* a periodic catch-up */
    pthread_mutex_lock(&heard_lock);
    snprintf(heard_room, sizeof(heard_room), "%s", room_id);
    heard_seq = seq;
    heard_count++;
    pthread_mutex_unlock(&heard_lock);
}

static int64_t wait_heard(int64_t seq)
{
    int64_t got = 0;
    for (int wait = 0; wait < 500; wait++) {
        pthread_mutex_lock(&heard_lock);
        got = heard_seq;
        pthread_mutex_unlock(&heard_lock);
        if (got == seq)
            break;
        usleep(10000);
    }
    return got;
}

/* A commit on one instance reaches the other as room id and seq, never content. */
START_TEST(test_commits_are_announced_to_other_instances)
{
    heard_count = 0;
    heard_seq = 0;
    thou_store_set_remote_hook(other, heard, NULL);
    thou_store_set_remote_hook(store, heard, NULL);
    usleep(300 * 1000); /* the listeners connect */
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(store, ROOM_1, "{\"secret\":1}", &seq), THOU_OK);
    ck_assert_int_eq(append_one(store, ROOM_1, "{\"secret\":2}", &seq), THOU_OK);
    ck_assert_int_eq(wait_heard(2), 2);
    pthread_mutex_lock(&heard_lock);
    ck_assert_str_eq(heard_room, ROOM_1);
    /* Only the other instance heard: the writer's own instance skips its commits. */
    int count = heard_count;
    pthread_mutex_unlock(&heard_lock);
    ck_assert_int_eq(count, 2);
    /* An erase is announced with seq -1. */
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_1, 5000), THOU_OK);
    ck_assert_int_eq(wait_heard(-1), -1);
}
END_TEST

/* The database drops the store's connections: requests fail as unavailable,
 * store nothing half-done, and the store reconnects by itself. */
START_TEST(test_lost_connection_reconnects)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_OK);
    sql_on(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    usleep(100 * 1000);
    enum thou_status first = append_one(store, ROOM_1, "{}", &seq);
    ck_assert_msg(first == THOU_EUNAVAIL || first == THOU_OK, "first write: %d", first);
    struct thou_room_record room;
    enum thou_status read = thou_store_room_get(store, ROOM_1, &room);
    ck_assert_msg(read == THOU_EUNAVAIL || read == THOU_OK, "first read: %d", read);
    thou_room_record_release(&room);
    /* Reconnected: both work again, and the seqs have no gap. */
    ck_assert_int_eq(append_one(store, ROOM_1, "{}", &seq), THOU_OK);
    ck_assert_int_eq(seq, first == THOU_OK ? 3 : 2);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM events"), seq);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, seq);
    thou_room_record_release(&room);
    ck_assert_int_eq(thou_store_ping(store), THOU_OK);
}
END_TEST

/* ---- seat moves, studies and research copies --------------------------------- */

struct seat_race {
    struct thou_store *store;
    unsigned new_seed;
    enum thou_status rc;
    bool again;
};

static void *seat_thread(void *arg)
{
    struct seat_race *m = arg;
    uint8_t old_hash[THOU_HASH_LEN], new_hash[THOU_HASH_LEN];
    hash_of(old_hash, 1);
    hash_of(new_hash, m->new_seed);
    char role = 0;
    m->rc = thou_store_seat_move(m->store, ROOM_1, old_hash, new_hash, &role, &m->again);
    if (m->rc == THOU_OK)
        ck_assert_int_eq(role, 'A');
    return NULL;
}

/* Eight devices claim A's seat with its old token through two instances:
 * exactly one gets it, and the old token stops working. */
START_TEST(test_seat_move_once_across_instances)
{
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    ck_assert_int_eq(join_room(other, ROOM_1, 2, NULL), THOU_OK);
    struct seat_race moves[8];
    pthread_t threads[8];
    for (unsigned i = 0; i < 8; i++) {
        moves[i] = (struct seat_race){i % 2 ? other : store, 200 + i, THOU_EIO, false};
        pthread_create(&threads[i], NULL, seat_thread, &moves[i]);
    }
    int won = -1;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(moves[i].rc == THOU_OK || moves[i].rc == THOU_EAUTH, "move %d: %d", i,
                      moves[i].rc);
        if (moves[i].rc == THOU_OK) {
            ck_assert_msg(won < 0, "moves %d and %d both won", won, i);
            ck_assert(!moves[i].again);
            won = i;
        }
    }
    ck_assert_int_ge(won, 0);
    uint8_t old_hash[THOU_HASH_LEN], new_hash[THOU_HASH_LEN], b_hash[THOU_HASH_LEN];
    hash_of(old_hash, 1);
    hash_of(new_hash, moves[won].new_seed);
    hash_of(b_hash, 2);
    char role = 0;
    ck_assert_int_eq(thou_store_participant_role(other, ROOM_1, old_hash, &role), THOU_EAUTH);
    ck_assert_int_eq(thou_store_participant_role(other, ROOM_1, new_hash, &role), THOU_OK);
    ck_assert_int_eq(role, 'A');
    /* The winner's move again (its answer lost): OK, marked as a repeat. */
    bool again = false;
    ck_assert_int_eq(thou_store_seat_move(other, ROOM_1, old_hash, new_hash, &role, &again),
                     THOU_OK);
    ck_assert(again);
    ck_assert_int_eq(role, 'A');
    /* B's token cannot move onto A's, and nothing moves in a room that is not there. */
    ck_assert_int_eq(thou_store_seat_move(store, ROOM_1, b_hash, new_hash, &role, NULL),
                     THOU_EEXIST);
    ck_assert_int_eq(thou_store_participant_role(store, ROOM_1, b_hash, &role), THOU_OK);
    ck_assert_int_eq(role, 'B');
    ck_assert_int_eq(thou_store_seat_move(store, NEVER, b_hash, old_hash, &role, NULL),
                     THOU_ENOTFOUND);
}
END_TEST

static void add_study(struct thou_store *s, const char *name, uint8_t seed[32])
{
    struct thou_study_record study;
    memset(&study, 0, sizeof(study));
    snprintf(study.name, sizeof(study.name), "%s", name);
    for (size_t i = 0; i < sizeof(study.public_key); i++)
        study.public_key[i] = (uint8_t)(0xa0 + i);
    study.n_conditions = 2;
    snprintf(study.conditions[0], sizeof(study.conditions[0]), "couples-short");
    snprintf(study.conditions[1], sizeof(study.conditions[1]), "couples-full");
    study.closeness = true;
    study.created_ms = 4242;
    for (size_t i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i * 13 + 1);
    ck_assert_int_eq(thou_store_study_add(s, &study, seed), THOU_OK);
}

struct assigner {
    struct thou_store *store;
    int64_t assigned[8];
    size_t condition[8];
    enum thou_status rc;
};

static void *assign_thread(void *arg)
{
    struct assigner *a = arg;
    a->rc = THOU_OK;
    for (int i = 0; i < 8 && a->rc == THOU_OK; i++) {
        struct thou_study_record study;
        a->rc = thou_store_study_assign(a->store, "s1", &study, &a->condition[i]);
        a->assigned[i] = study.assigned;
    }
    return NULL;
}

static void count_study(void *ctx, const struct thou_study_record *study, int64_t rooms)
{
    int64_t *seen = ctx;
    ck_assert_str_eq(study->name, "s1");
    seen[0]++;
    seen[1] = rooms;
    seen[2] = study->assigned;
}

/* A study is one counter for every instance: pairs assigned on both at
 * once each get their own index, and the blocks stay balanced. */
START_TEST(test_study_assign_balanced_across_instances)
{
    uint8_t seed[32];
    add_study(store, "s1", seed);
    struct thou_study_record got;
    ck_assert_int_eq(thou_store_study_get(other, "s1", &got), THOU_OK);
    /* The name is taken on every instance. */
    ck_assert_int_eq(thou_store_study_add(other, &got, seed), THOU_EEXIST);
    ck_assert_str_eq(got.name, "s1");
    ck_assert_uint_eq(got.n_conditions, 2);
    ck_assert_str_eq(got.conditions[1], "couples-full");
    ck_assert(got.closeness);
    ck_assert_int_eq(got.public_key[31], 0xa0 + 31);
    ck_assert_int_eq(got.created_ms, 4242);
    ck_assert_int_eq(thou_store_study_get(other, "nope", &got), THOU_ENOTFOUND);
    size_t condition;
    ck_assert_int_eq(thou_store_study_assign(store, "nope", &got, &condition), THOU_ENOTFOUND);

    struct assigner assigners[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        assigners[i] = (struct assigner){.store = i % 2 ? other : store};
        pthread_create(&threads[i], NULL, assign_thread, &assigners[i]);
    }
    bool seen[33] = {false};
    int per_condition[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(assigners[i].rc, THOU_OK);
        for (int k = 0; k < 8; k++) {
            int64_t n = assigners[i].assigned[k];
            ck_assert(n >= 1 && n <= 32);
            ck_assert_msg(!seen[n], "pair %lld assigned twice", (long long)n);
            seen[n] = true;
            ck_assert_uint_eq(assigners[i].condition[k], thou_studies_condition(seed, 2, n - 1));
            per_condition[assigners[i].condition[k]]++;
        }
    }
    ck_assert_int_eq(per_condition[0], 16);
    ck_assert_int_eq(per_condition[1], 16);
    int64_t listed[3] = {0, -1, -1};
    ck_assert_int_eq(thou_store_study_list(other, count_study, listed), THOU_OK);
    ck_assert_int_eq(listed[0], 1);
    ck_assert_int_eq(listed[1], 0);
    ck_assert_int_eq(listed[2], 32);
}
END_TEST

static void append_typed(struct thou_store *s, const char *type, char sender)
{
    struct thou_event_record event = {
        .type = type, .sender = sender, .visible_to = 0, .data = "{}", .time_ms = 1234};
    int64_t seq;
    ck_assert_int_eq(thou_store_events_append(s, ROOM_1, &event, 1, THOU_ROOM_ACTIVE, NULL, &seq),
                     THOU_OK);
}

/* Research copies through either instance: only with a study and both
 * consents, release is final, and a withdrawal or the study's removal
 * takes them away. */
START_TEST(test_research_copies_on_both_instances)
{
    uint8_t seed[32];
    add_study(store, "s1", seed);
    ck_assert_int_eq(create_room(store, ROOM_1, 1, 99999), THOU_OK);
    ck_assert_int_eq(join_room(store, ROOM_1, 2, NULL), THOU_OK);
    char study[THOU_SET_ID_MAX + 1], condition[THOU_SET_ID_MAX + 1];
    ck_assert_int_eq(thou_store_room_study(other, ROOM_1, study, condition), THOU_OK);
    ck_assert_str_eq(study, "");
    ck_assert_int_eq(thou_store_research_add(other, ROOM_1, 'A', "c1", "sealed", 7),
                     THOU_EFORBIDDEN);
    ck_assert_int_eq(thou_store_room_set_study(store, ROOM_1, "s1", "couples-full"), THOU_OK);
    ck_assert_int_eq(thou_store_room_set_study(store, NEVER, "s1", "couples-full"), THOU_ENOTFOUND);
    ck_assert_int_eq(thou_store_room_study(other, ROOM_1, study, condition), THOU_OK);
    ck_assert_str_eq(study, "s1");
    ck_assert_str_eq(condition, "couples-full");
    ck_assert_int_eq(thou_store_room_study(other, NEVER, study, condition), THOU_ENOTFOUND);

    /* One consent is not enough; both are. */
    append_typed(store, "consent", 'A');
    ck_assert_int_eq(thou_store_research_add(other, ROOM_1, 'A', "c1", "sealed", 7),
                     THOU_EFORBIDDEN);
    append_typed(other, "consent", 'B');
    ck_assert_int_eq(thou_store_research_add(other, ROOM_1, 'A', "c1", "sealed-a1", 7), THOU_OK);
    ck_assert_int_eq(thou_store_research_add(store, ROOM_1, 'A', "c1", "sealed-a1", 7), THOU_OK);
    ck_assert_int_eq(thou_store_research_add(store, ROOM_1, 'A', "c2", "sealed-a2", 7), THOU_OK);
    ck_assert_int_eq(thou_store_research_add(other, ROOM_1, 'B', "c1", "sealed-b1", 8), THOU_OK);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM research_copies"), 3);
    ck_assert_int_eq(thou_store_research_add(store, NEVER, 'A', "c1", "x", 7), THOU_ENOTFOUND);

    /* A's release leaves c2 out: its sealed bytes go at once. */
    const char *const leave_out[] = {"c2"};
    size_t released = 99, left_out = 99;
    ck_assert_int_eq(
        thou_store_research_release(other, ROOM_1, 'A', leave_out, 1, &released, &left_out),
        THOU_OK);
    ck_assert_uint_eq(released, 1);
    ck_assert_uint_eq(left_out, 1);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM research_copies WHERE sealed IS NULL"), 1);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM research_copies WHERE state = 1"), 1);
    ck_assert_int_eq(thou_store_research_release(store, ROOM_1, 'A', NULL, 0, &released, &left_out),
                     THOU_ECONFLICT);
    ck_assert_int_eq(thou_store_research_add(store, ROOM_1, 'A', "c3", "x", 7), THOU_ECONFLICT);
    int64_t listed[3] = {0, -1, -1};
    ck_assert_int_eq(thou_store_study_list(store, count_study, listed), THOU_OK);
    ck_assert_int_eq(listed[1], 1);

    /* A withdrawal: the copies go, and no new ones come. */
    size_t deleted = 0;
    ck_assert_int_eq(thou_store_research_delete(other, ROOM_1, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, 3);
    append_typed(other, "withdraw", 'B');
    ck_assert_int_eq(thou_store_research_add(store, ROOM_1, 'B', "c2", "x", 8), THOU_EFORBIDDEN);

    /* Removing the study keeps the room, without a study. */
    ck_assert_int_eq(thou_store_study_remove(other, "s1"), THOU_OK);
    ck_assert_int_eq(thou_store_study_remove(store, "s1"), THOU_ENOTFOUND);
    ck_assert_int_eq(thou_store_room_study(store, ROOM_1, study, condition), THOU_OK);
    ck_assert_str_eq(study, "");
    ck_assert_int_eq(sql_int("SELECT count(*) FROM research_releases"), 0);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM rooms"), 1);
}
END_TEST

/* ---- workshops and facilitators on two instances --------------------------------- */

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t new_workshop(struct thou_store *s, const char *code, int64_t capacity)
{
    struct thou_workshop w = {0};
    snprintf(w.code, sizeof(w.code), "%s", code);
    snprintf(w.facilitator, sizeof(w.facilitator), "ada");
    snprintf(w.title, sizeof(w.title), "Tuesday group");
    snprintf(w.set_id, sizeof(w.set_id), "classic");
    w.set_version = 1;
    w.state = THOU_WORKSHOP_OPEN;
    w.capacity = capacity;
    w.created_ms = wall_now_ms();
    ck_assert_int_eq(thou_wstore_create(s, &w), THOU_OK);
    ck_assert_int_gt(w.id, 0);
    return w.id;
}

static struct thou_wstore_pairing plain_pairing(int64_t timeout_ms)
{
    return (struct thou_wstore_pairing){
        .timeout_ms = timeout_ms, .flow_json = "{\"step\":0}", .room_ttl_ms = 3600 * 1000};
}

static void count_name(void *ctx, const char *name)
{
    (void)name;
    ++*(int *)ctx;
}

static void count_workshop(void *ctx, const struct thou_workshop *w)
{
    (void)w;
    ++*(int *)ctx;
}

/* Accounts, sessions and workshops written on one instance are the other's too. */
START_TEST(test_workshop_tables_on_both_instances)
{
    int64_t now = wall_now_ms();
    ck_assert_int_eq(thou_facilitators_add(store, "ada", "correct horse", 13, now), THOU_OK);
    ck_assert_int_eq(thou_facilitators_add(other, "ada", "other", 5, now), THOU_EEXIST);
    ck_assert_int_eq(thou_facilitators_verify(other, "ada", "correct horse", 13), THOU_OK);
    ck_assert_int_eq(thou_facilitators_verify(other, "ada", "wrong", 5), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_verify(other, "bob", "wrong", 5), THOU_EAUTH);
    int names = 0;
    ck_assert_int_eq(thou_facilitators_list(other, count_name, &names), THOU_OK);
    ck_assert_int_eq(names, 1);

    char token[THOU_TOKEN_B64_LEN + 1];
    struct thou_facilitator_session session, seen;
    ck_assert_int_eq(thou_facilitators_session_new(store, "ada", now, 60000, token, &session),
                     THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_get(other, token, now, &seen), THOU_OK);
    ck_assert_str_eq(seen.name, "ada");
    ck_assert_str_eq(seen.csrf, session.csrf);
    ck_assert_int_eq(thou_facilitators_session_get(other, token, now + 60000, &seen), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_session_revoke(other, token, now), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_get(store, token, now, &seen), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_session_new(store, "ada", now, 60000, token, &session),
                     THOU_OK);
    ck_assert_int_eq(thou_facilitators_set_password(other, "ada", "new horse", 9), THOU_OK);
    ck_assert_int_eq(thou_facilitators_session_get(store, token, now, &seen), THOU_EAUTH);
    ck_assert_int_eq(thou_facilitators_session_new(store, "bob", now, 60000, token, &session),
                     THOU_EAUTH);

    int64_t id = new_workshop(store, "ABCD2345", 10);
    struct thou_workshop w;
    ck_assert_int_eq(thou_wstore_get(other, 0, "ABCD2345", &w), THOU_OK);
    ck_assert_int_eq(w.id, id);
    ck_assert_str_eq(w.title, "Tuesday group");
    ck_assert(!w.has_note);
    ck_assert_int_eq(w.timer_ends_ms, 0);
    w.paused = true;
    w.has_note = true;
    snprintf(w.note, sizeof(w.note), "five minutes");
    w.timer_ends_ms = now + 300000;
    w.released = 3;
    ck_assert_int_eq(thou_wstore_save(other, &w), THOU_OK);
    ck_assert_int_eq(thou_wstore_get(store, id, NULL, &w), THOU_OK);
    ck_assert(w.paused);
    ck_assert_str_eq(w.note, "five minutes");
    ck_assert_int_eq(w.released, 3);
    ck_assert_int_eq(w.timer_ends_ms, now + 300000);
    struct thou_workshop dup = w;
    ck_assert_int_eq(thou_wstore_create(other, &dup), THOU_EEXIST);
    int listed = 0;
    ck_assert_int_eq(thou_wstore_list(other, "ada", count_workshop, &listed), THOU_OK);
    ck_assert_int_eq(listed, 1);
    ck_assert_int_eq(thou_wstore_get(other, 0, "ZZZZ2345", &w), THOU_ENOTFOUND);

    /* A pair made on one instance, read and requeued on the other. */
    struct thou_wstore_pairing pairing = plain_pairing(60000);
    struct thou_wstore_outcome out;
    struct thou_wparticipant me;
    uint8_t h1[THOU_HASH_LEN], h2[THOU_HASH_LEN], h3[THOU_HASH_LEN];
    hash_of(h1, 1);
    hash_of(h2, 2);
    hash_of(h3, 3);
    ck_assert_int_eq(thou_wstore_join(store, id, h1, now, &pairing, &me, &out), THOU_OK);
    ck_assert_int_eq(me.label, 1);
    ck_assert_int_eq(me.state, THOU_WP_WAITING);
    ck_assert_int_eq(thou_wstore_join(other, id, h2, now, &pairing, &me, &out), THOU_OK);
    ck_assert_int_eq(me.label, 2);
    ck_assert_int_eq(me.state, THOU_WP_PAIRED);
    ck_assert_int_eq(me.role, 'B');
    ck_assert_uint_eq(out.n_pairs, 1);
    char room_id[THOU_ROOM_ID_LEN + 1];
    snprintf(room_id, sizeof(room_id), "%s", out.pairs[0].room_id);
    ck_assert_int_eq(thou_wstore_participant(store, h1, &me), THOU_OK);
    ck_assert_str_eq(me.room_id, room_id);
    ck_assert_int_eq(me.role, 'A');
    ck_assert_int_eq(thou_wstore_participant_in_room(other, room_id, 'B', &me), THOU_OK);
    ck_assert_int_eq(me.label, 2);
    int64_t of = 0;
    ck_assert_int_eq(thou_wstore_room_workshop(other, room_id, &of), THOU_OK);
    ck_assert_int_eq(of, id);
    /* The room is a real room of the store: seq 1 is B's arrival. */
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(other, room_id, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, 1);
    ck_assert(room.b_joined);
    thou_room_record_release(&room);
    char role = 0;
    ck_assert_int_eq(thou_store_participant_role(other, room_id, h2, &role), THOU_OK);
    ck_assert_int_eq(role, 'B');
    ck_assert_int_eq(thou_wstore_requeue(other, id, 2, h3, now + 1), THOU_OK);
    ck_assert_int_eq(thou_wstore_requeue(store, id, 2, h3, now + 1), THOU_ECONFLICT);
    ck_assert_int_eq(thou_wstore_participant_by_label(store, id, 2, &me), THOU_OK);
    ck_assert_int_eq(me.state, THOU_WP_WAITING);
    ck_assert(me.left_behind);
    ck_assert_int_eq(thou_wstore_pair_by_hand(store, id, 2, 2, now, &pairing, &out), THOU_EINVAL);
    ck_assert_int_eq(thou_wstore_pair_by_hand(store, id, 1, 2, now, &pairing, &out),
                     THOU_ECONFLICT);
    ck_assert_int_eq(thou_wstore_clear_queue(other, id), THOU_OK);
    ck_assert_int_eq(thou_wstore_participant_by_label(store, id, 2, &me), THOU_OK);
    ck_assert_int_eq(me.state, THOU_WP_LEFT);
    ck_assert_int_eq(thou_facilitators_remove(other, "ada"), THOU_OK);
    ck_assert_int_eq(thou_facilitators_remove(store, "ada"), THOU_ENOTFOUND);
}
END_TEST

#define RACERS 41

struct wjoin_race {
    struct thou_store *store;
    int64_t workshop_id;
    unsigned seed;
    enum thou_status rc;
    size_t reported;
};

static void *wjoin_thread(void *arg)
{
    struct wjoin_race *j = arg;
    struct thou_wstore_pairing pairing = plain_pairing(600000);
    struct thou_wstore_outcome *out = malloc(sizeof(*out));
    struct thou_wparticipant me;
    uint8_t hash[THOU_HASH_LEN];
    hash_of(hash, j->seed);
    j->rc = thou_wstore_join(j->store, j->workshop_id, hash, wall_now_ms(), &pairing, &me, out);
    j->reported = j->rc == THOU_OK ? out->n_pairs : 0;
    free(out);
    return NULL;
}

/*
 * Joins racing through two instances: each gets its own label, everyone is
 * paired at most once, no room has a third seat, and every two make a pair.
 * Without the workshop's row lock the instances read the same count of
 * joined and pairs: a label or pair number twice (a failed join) or a
 * participant seated twice.
 */
START_TEST(test_racing_joins_pair_once_across_instances)
{
    int64_t id = new_workshop(store, "RACE2345", 1000);
    struct wjoin_race joins[RACERS];
    pthread_t threads[RACERS];
    for (unsigned i = 0; i < RACERS; i++) {
        joins[i] = (struct wjoin_race){i % 2 ? other : store, id, 1000 + i, THOU_EIO, 0};
        pthread_create(&threads[i], NULL, wjoin_thread, &joins[i]);
    }
    size_t reported = 0;
    for (unsigned i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(joins[i].rc == THOU_OK, "join %u: %d", i, joins[i].rc);
        reported += joins[i].reported;
    }
    ck_assert_uint_eq(reported, RACERS / 2);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM workshop_participants"), RACERS);
    ck_assert_int_eq(sql_int("SELECT count(DISTINCT label) FROM workshop_participants"), RACERS);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM workshop_participants WHERE state = 1"),
                     RACERS / 2 * 2);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM rooms WHERE mode = 'workshop'"), RACERS / 2);
    ck_assert_int_eq(sql_int("SELECT count(DISTINCT workshop_pair) FROM rooms"), RACERS / 2);
    ck_assert_int_eq(sql_int("SELECT pairs FROM workshops"), RACERS / 2);
    ck_assert_int_eq(sql_int("SELECT joined FROM workshops"), RACERS);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM (SELECT room_id FROM participants"
                             " GROUP BY room_id HAVING count(*) <> 2) x"),
                     0);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM (SELECT room_id FROM workshop_participants"
                             " WHERE room_id IS NOT NULL GROUP BY room_id HAVING count(*) <> 2) x"),
                     0);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM participants"), RACERS / 2 * 2);
    /* As on SQLite, the schema itself refuses a third seat in a room. */
    ck_assert_int_eq(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'workshop_seats'"
                             " AND indexdef LIKE 'CREATE UNIQUE INDEX%(room_id, role)"
                             " WHERE (room_id IS NOT NULL)'"),
                     1);
}
END_TEST

#define CROSS_THREADS 12
#define CROSS_JOINS   20

struct cross_joiner {
    struct thou_store *store;
    int64_t workshops[2];
    unsigned seed;
    enum thou_status rc;
};

static void *cross_thread(void *arg)
{
    struct cross_joiner *j = arg;
    struct thou_wstore_pairing pairing = plain_pairing(600000);
    struct thou_wstore_outcome *out = malloc(sizeof(*out));
    struct thou_wparticipant me;
    j->rc = THOU_OK;
    for (unsigned i = 0; i < CROSS_JOINS && j->rc == THOU_OK; i++) {
        uint8_t hash[THOU_HASH_LEN];
        hash_of(hash, j->seed + i);
        j->rc = thou_wstore_join(j->store, j->workshops[i % 2], hash, wall_now_ms(), &pairing, &me,
                                 out);
    }
    free(out);
    return NULL;
}

/*
 * Joins of two workshops through both instances at once, in opposite orders:
 * one instance's batch holding workshop 1 while waiting for 2, the other's
 * the reverse, would deadlock, and PostgreSQL would fail one of them (again
 * on each retry, as the batch keeps its earlier lock). A batch locks its
 * workshops in id order first, as it does its rooms.
 */
START_TEST(test_crossed_workshop_batches_do_not_deadlock)
{
    int64_t w1 = new_workshop(store, "CRSA2345", 1000);
    int64_t w2 = new_workshop(store, "CRSB2345", 1000);
    struct cross_joiner joiners[CROSS_THREADS];
    pthread_t threads[CROSS_THREADS];
    for (unsigned i = 0; i < CROSS_THREADS; i++) {
        bool side = i % 2;
        joiners[i] = (struct cross_joiner){
            side ? other : store, {side ? w2 : w1, side ? w1 : w2}, 10000 + i * 100, THOU_EIO};
        pthread_create(&threads[i], NULL, cross_thread, &joiners[i]);
    }
    for (unsigned i = 0; i < CROSS_THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(joiners[i].rc == THOU_OK, "joiner %u: %d", i, joiners[i].rc);
    }
    int64_t each = CROSS_THREADS * CROSS_JOINS / 2;
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT joined * 1000 + pairs FROM workshops WHERE id = %lld",
             (long long)w1);
    ck_assert_int_eq(sql_int(sql), each * 1000 + each / 2);
    snprintf(sql, sizeof(sql), "SELECT joined * 1000 + pairs FROM workshops WHERE id = %lld",
             (long long)w2);
    ck_assert_int_eq(sql_int(sql), each * 1000 + each / 2);
}
END_TEST

/*
 * A waiter whose stream is open on the other instance holds a lease there:
 * a pairing on this instance counts it as present. Without the lease, the
 * same waiter, gone longer than the presence timeout, leaves the queue.
 */
START_TEST(test_waiter_lease_counts_on_the_other_instance)
{
    int64_t now = wall_now_ms();
    struct thou_wstore_pairing pairing = plain_pairing(30000);
    struct thou_wstore_outcome out;
    struct thou_wparticipant me;
    uint8_t h1[THOU_HASH_LEN], h2[THOU_HASH_LEN], h3[THOU_HASH_LEN], h4[THOU_HASH_LEN];
    hash_of(h1, 1);
    hash_of(h2, 2);
    hash_of(h3, 3);
    hash_of(h4, 4);

    int64_t leased = new_workshop(store, "LEAS2345", 10);
    ck_assert_int_eq(thou_wstore_join(store, leased, h1, now - 60000, &pairing, &me, &out),
                     THOU_OK);
    int64_t label = me.label;
    thou_wstore_pg_presence(thou_store_pg_of(other), leased, &label, 1, true, now);
    ck_assert_int_eq(thou_wstore_join(store, leased, h2, now, &pairing, &me, &out), THOU_OK);
    ck_assert_uint_eq(out.n_pairs, 1);
    ck_assert_uint_eq(out.n_left, 0);
    ck_assert_int_eq(me.state, THOU_WP_PAIRED);
    /* Seated: its lease is gone with it. */
    ck_assert_int_eq(sql_int("SELECT count(*) FROM presence WHERE role = 'W'"), 0);

    int64_t bare = new_workshop(store, "BARE2345", 10);
    ck_assert_int_eq(thou_wstore_join(store, bare, h3, now - 60000, &pairing, &me, &out), THOU_OK);
    ck_assert_int_eq(thou_wstore_join(store, bare, h4, now, &pairing, &me, &out), THOU_OK);
    ck_assert_uint_eq(out.n_pairs, 0);
    ck_assert_uint_eq(out.n_left, 1);

    /* A lease ended (the stream closed) counts from when it ended. */
    int64_t ended = new_workshop(store, "ENDD2345", 10);
    uint8_t h5[THOU_HASH_LEN], h6[THOU_HASH_LEN];
    hash_of(h5, 5);
    hash_of(h6, 6);
    ck_assert_int_eq(thou_wstore_join(store, ended, h5, now - 60000, &pairing, &me, &out), THOU_OK);
    label = me.label;
    thou_wstore_pg_presence(thou_store_pg_of(other), ended, &label, 1, false, now - 5000);
    ck_assert_int_eq(thou_wstore_join(store, ended, h6, now, &pairing, &me, &out), THOU_OK);
    ck_assert_uint_eq(out.n_left, 0);
    ck_assert_uint_eq(out.n_pairs, 1); /* seen 5 s ago: present for 25 s more */

    /* A lease that ran out a minute ago (its instance was killed) is no presence. */
    int64_t expired = new_workshop(store, "GONE2345", 10);
    uint8_t h7[THOU_HASH_LEN], h8[THOU_HASH_LEN];
    hash_of(h7, 7);
    hash_of(h8, 8);
    ck_assert_int_eq(thou_wstore_join(store, expired, h7, now - 120000, &pairing, &me, &out),
                     THOU_OK);
    label = me.label;
    thou_wstore_pg_presence(thou_store_pg_of(other), expired, &label, 1, true,
                            now - 60000 - THOU_WSTORE_PG_LEASE_MS);
    ck_assert_int_eq(thou_wstore_join(store, expired, h8, now, &pairing, &me, &out), THOU_OK);
    ck_assert_uint_eq(out.n_pairs, 0);
    ck_assert_uint_eq(out.n_left, 1);

    /* Leases that ended hours ago are swept; recent ones stay. */
    int64_t labels[] = {7, 8};
    thou_wstore_pg_presence(thou_store_pg_of(store), ended, labels, 1, false, now - 3 * 3600000LL);
    thou_wstore_pg_presence(thou_store_pg_of(store), ended, labels + 1, 1, false, now - 60000);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM presence WHERE role = 'W'"), 3);
    thou_wstore_pg_sweep_leases(thou_store_pg_of(other), now);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM presence WHERE role = 'W'"), 2);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM presence WHERE room_id LIKE 'w%.8'"), 1);
}
END_TEST

static pthread_mutex_t workshop_heard_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t workshop_heard;

static void heard_workshop(void *ctx, int64_t id)
{
    (void)ctx;
    pthread_mutex_lock(&workshop_heard_lock);
    workshop_heard = id;
    pthread_mutex_unlock(&workshop_heard_lock);
}

static void heard_nothing(void *ctx, const char *room_id, int64_t seq)
{
    (void)ctx;
    (void)room_id;
    (void)seq;
}

/* A join on one instance is announced to the other by the workshop's id alone. */
START_TEST(test_workshop_changes_are_announced)
{
    thou_store_pg_set_workshop_hook(thou_store_pg_of(other), heard_workshop, NULL);
    thou_store_set_remote_hook(other, heard_nothing, NULL);
    int64_t id = new_workshop(store, "NOTE2345", 10);
    usleep(300 * 1000); /* the listener is listening */
    struct thou_wstore_pairing pairing = plain_pairing(60000);
    struct thou_wstore_outcome out;
    struct thou_wparticipant me;
    uint8_t h1[THOU_HASH_LEN];
    hash_of(h1, 1);
    ck_assert_int_eq(thou_wstore_join(store, id, h1, wall_now_ms(), &pairing, &me, &out), THOU_OK);
    int64_t got = 0;
    for (int i = 0; i < 100 && got != id; i++) {
        usleep(50 * 1000);
        pthread_mutex_lock(&workshop_heard_lock);
        got = workshop_heard;
        pthread_mutex_unlock(&workshop_heard_lock);
    }
    ck_assert_int_eq(got, id);
}
END_TEST

static Suite *store_pg_suite(void)
{
    Suite *s = suite_create("store_pg");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_open_migrates_to_current_version);
    tcase_add_test(tc, test_newer_schema_refused);
    tcase_add_test(tc, test_foreign_database_refused);
    tcase_add_test(tc, test_unreachable_refused_without_password);
    tcase_add_test(tc, test_room_create_get_join);
    tcase_add_test(tc, test_concurrent_joins_take_one_seat);
    tcase_add_test(tc, test_concurrent_appends_gap_free_across_instances);
    tcase_add_test(tc, test_visibility_and_limit);
    tcase_add_test(tc, test_txn_find);
    tcase_add_test(tc, test_limits_and_ended_rooms);
    tcase_add_test(tc, test_erase_and_sweep);
    tcase_add_test(tc, test_async_updates_group_commit);
    tcase_add_test(tc, test_rate_buckets_are_shared);
    tcase_add_test(tc, test_crossed_batches_do_not_deadlock);
    tcase_add_test(tc, test_commits_are_announced_to_other_instances);
    tcase_add_test(tc, test_lost_connection_reconnects);
    tcase_add_test(tc, test_seat_move_once_across_instances);
    tcase_add_test(tc, test_study_assign_balanced_across_instances);
    tcase_add_test(tc, test_research_copies_on_both_instances);
    tcase_add_test(tc, test_workshop_tables_on_both_instances);
    tcase_add_test(tc, test_racing_joins_pair_once_across_instances);
    tcase_add_test(tc, test_crossed_workshop_batches_do_not_deadlock);
    tcase_add_test(tc, test_waiter_lease_counts_on_the_other_instance);
    tcase_add_test(tc, test_workshop_changes_are_announced);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!getenv("THOU_TEST_PG_URL") || !*getenv("THOU_TEST_PG_URL")) {
        printf("THOU_TEST_PG_URL is not set: no PostgreSQL cluster (script/test starts one); "
               "skipped\n");
        return 77;
    }
    SRunner *runner = srunner_create(store_pg_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
