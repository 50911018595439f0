/*
 * An acknowledged event survives kill -9 of the server at any moment.
 * Writers post notes in a loop while the server is killed and restarted
 * several times; afterwards every acknowledged seq is present with its
 * exact ciphertext and the sequence has no gaps or duplicates.
 */
#include "harness.h"

#include <check.h>
#include <pthread.h>
#include <sodium.h>
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

int main(void)
{
    Suite *suite = suite_create("durability");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, acknowledged_events_survive_kill_9);
    tcase_add_test(tc, graceful_stop_under_load_loses_nothing);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
