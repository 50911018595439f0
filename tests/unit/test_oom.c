/*
 * An allocation failure refuses one request; it never takes the process
 * down (issue 11). The real handlers of the conversation relay run here
 * over a real store, with a fault injected into the allocator that request
 * paths and jansson use (thou_mem_fail_at): for every allocation a request
 * makes, in turn, that allocation fails. Each time the request must answer
 * 503 out_of_memory (or succeed, where the failure could be absorbed), the
 * process must still be here, and the same request again must succeed.
 */
#include "thou/app.h"
#include "thou/config.h"
#include "thou/crypto.h"
#include "thou/hub.h"
#include "thou/limiter.h"
#include "thou/mem.h"
#include "thou/metrics.h"
#include "thou/qset.h"
#include "thou/rooms.h"
#include "thou/seats.h"
#include "thou/sessions.h"
#include "thou/static_files.h"
#include "thou/store.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef THOU_SOURCE_DIR
#error "THOU_SOURCE_DIR must name the repository root"
#endif

#define MAX_ALLOCATIONS 400 /* far above what one request makes: the loop must end earlier */

static struct thou_config config;
static struct thou_app app;
static char data_dir[64];

static void setup(void)
{
    thou_mem_use_for_json();
    ck_assert_int_ge(sodium_init(), 0);
    thou_config_init(&config);
    snprintf(data_dir, sizeof(data_dir), "/tmp/thou-oom-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(data_dir));
    char err[256];
    ck_assert_int_eq(
        thou_qset_registry_load(THOU_SOURCE_DIR "/config/questions", &app.qsets, err, sizeof(err)),
        THOU_OK);
    ck_assert_int_eq(thou_store_open(data_dir, &app.store, err, sizeof(err)), THOU_OK);
    app.config = &config;
    app.metrics = thou_metrics_new();
    app.hub = thou_hub_new(app.store, app.metrics, 4);
    app.join_limiter = thou_limiter_new(1, 100);
    app.join_address_limiter = thou_limiter_new(1, 100);
    app.event_limiter = thou_limiter_new(1000, 100000);
    app.create_limiter = thou_limiter_new(1, 100);
    app.sessions = thou_sessions_new();
    ck_assert_int_eq(thou_static_open(THOU_SOURCE_DIR "/static", &app.statics), THOU_OK);
}

static void teardown(void)
{
    thou_mem_fail_at(-1);
    thou_hub_shutdown(app.hub);
    thou_store_close(app.store);
    thou_hub_free(app.hub);
    thou_qset_registry_free(app.qsets);
    thou_limiter_free(app.join_limiter);
    thou_limiter_free(app.join_address_limiter);
    thou_limiter_free(app.event_limiter);
    thou_limiter_free(app.create_limiter);
    thou_sessions_free(app.sessions);
    thou_static_free(app.statics);
    thou_metrics_free(app.metrics);
    thou_config_release(&config);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", data_dir);
    ck_assert_int_eq(system(command), 0);
}

/* One answer: its status and, for an error, its code. */
struct answer {
    unsigned status;
    char code[64];
    json_t *json;
    int stream; /* a stream: 1 all it had was read, -1 it ended early, 0 none */
    bool fired; /* the injected failure happened within the request */
};

static void answer_free(struct answer *a)
{
    json_decref(a->json);
    a->json = NULL;
}

/* Call a handler as the HTTP adapter would, waiting out a deferred answer. */
static struct answer call(thou_handler_fn handler, enum thou_method method, const char *room,
                          const char *token, const char *body)
{
    char authorization[128] = "";
    if (token)
        snprintf(authorization, sizeof(authorization), "Bearer %s", token);
    struct thou_request req = {.method = method,
                               .path = "/css/thou.css",
                               .accept_encoding = "gzip",
                               .params = {room},
                               .n_params = room ? 1 : 0,
                               .content_type = body ? "application/json" : NULL,
                               .authorization = token ? authorization : NULL,
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    struct thou_response res;
    thou_response_init(&res);
    handler(&app, &req, &res);
    if (res.deferred) {
        struct thou_deferred *d = res.deferred;
        for (;;) {
            pthread_mutex_lock(&d->lock);
            bool done = d->done;
            pthread_mutex_unlock(&d->lock);
            if (done)
                break;
            usleep(1000);
        }
        res.deferred = NULL;
        d->finish(d, &res);
        d->free(d);
    }
    struct answer a = {.status = res.status};
    if (res.stream) {
        /* What a new stream has to send at once: the retry hint, the
         * partner's presence, the stored events; a fourth read would suspend
         * (an adapter's business), so three. A stream may end early for
         * want of memory: the client reconnects from the last whole frame. */
        static char text[1 << 16];
        size_t got = 0;
        a.stream = 1;
        for (int i = 0; i < 3 && a.stream == 1; i++) {
            ssize_t n = res.stream->read(res.stream, text + got, sizeof(text) - got - 1);
            if (n <= 0)
                a.stream = -1;
            else
                got += (size_t)n;
        }
        text[got] = '\0';
        if (a.stream == 1)
            ck_assert_msg(strstr(text, "event: joined\n") && strstr(text, "event: presence\n"),
                          "a whole stream holds the join and the presence: %s", text);
    }
    /* The request is over: the test's own reading of the answer must not
     * take the failure. */
    a.fired = !thou_mem_fail_pending();
    thou_mem_fail_at(-1);
    if (res.body)
        a.json = json_loadb(res.body, res.body_len, 0, NULL);
    /* Whatever the status, JSON that was sent is whole. */
    bool json = res.content_type && strncmp(res.content_type, "application/json", 16) == 0;
    ck_assert_msg(!json || !res.body_len || a.json, "%u with broken JSON: %.*s", res.status,
                  (int)res.body_len, res.body);
    const char *code = json_string_value(json_object_get(json_object_get(a.json, "error"), "code"));
    snprintf(a.code, sizeof(a.code), "%s", code ? code : "");
    thou_response_release(&res);
    return a;
}

/* A conversation to act in, made without any injected failure. */
struct pair {
    char room[64];
    char token_a[64];
    char token_b[64];
    char secret[64];
};

static void b64(const unsigned char *bytes, size_t n, char *out, size_t len)
{
    sodium_bin2base64(out, len, bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void make_room(struct pair *p)
{
    unsigned char secret[32], verifier[32];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    char verifier_text[64], body[200];
    b64(secret, sizeof(secret), p->secret, sizeof(p->secret));
    b64(verifier, sizeof(verifier), verifier_text, sizeof(verifier_text));
    snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}",
             verifier_text);
    struct answer a = call(thou_rooms_create, THOU_METHOD_POST, NULL, NULL, body);
    ck_assert_msg(a.status == 201, "create: %u %s", a.status, a.code);
    snprintf(p->room, sizeof(p->room), "%s", json_string_value(json_object_get(a.json, "room")));
    snprintf(p->token_a, sizeof(p->token_a), "%s",
             json_string_value(json_object_get(a.json, "token")));
    answer_free(&a);
}

static void join_room(struct pair *p)
{
    char body[200];
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", p->secret);
    struct answer a = call(thou_rooms_join, THOU_METHOD_POST, p->room, NULL, body);
    ck_assert_msg(a.status == 200, "join: %u %s", a.status, a.code);
    snprintf(p->token_b, sizeof(p->token_b), "%s",
             json_string_value(json_object_get(a.json, "token")));
    answer_free(&a);
}

/* Each step: what to prepare unarmed, the request, and its status when it works. */
enum step { CREATE, JOIN, GET, STREAM, POST_NOTE, POST_ANSWER, MOVE_SEAT, ERASE, STATIC, N_STEPS };
static const char *const step_names[N_STEPS] = {
    "create", "join", "get", "stream", "post note", "post answer", "move seat", "erase", "static"};

static struct pair fresh_pair(enum step step)
{
    struct pair p = {0};
    make_room(&p);
    if (step != JOIN)
        join_room(&p);
    return p;
}

static struct answer run_step(enum step step, const struct pair *p, int attempt)
{
    char body[400], ciphertext[120], hash[64];
    unsigned char bytes[64];
    randombytes_buf(bytes, sizeof(bytes));
    b64(bytes, sizeof(bytes), ciphertext, sizeof(ciphertext));
    switch (step) {
    case CREATE: {
        crypto_generichash(bytes, 32, bytes, 32, NULL, 0);
        b64(bytes, 32, hash, sizeof(hash));
        snprintf(body, sizeof(body), "{\"set\":\"couples-short\",\"join_verifier\":\"%s\"}", hash);
        return call(thou_rooms_create, THOU_METHOD_POST, NULL, NULL, body);
    }
    case JOIN:
        snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", p->secret);
        return call(thou_rooms_join, THOU_METHOD_POST, p->room, NULL, body);
    case GET:
        return call(thou_rooms_get, THOU_METHOD_GET, p->room, p->token_b, NULL);
    case STREAM: /* the subscription; the stream itself ends with the response */
        return call(thou_rooms_stream, THOU_METHOD_GET, p->room, p->token_b, NULL);
    case POST_NOTE:
        snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%d}",
                 ciphertext, attempt + 1);
        return call(thou_rooms_post_event, THOU_METHOD_POST, p->room, p->token_b, body);
    case POST_ANSWER: /* a flow step: read, apply and write the flow */
        snprintf(body, sizeof(body),
                 "{\"type\":\"answer\",\"question\":\"cg-good-moment\",\"ciphertext\":\"%s\","
                 "\"counter\":%d}",
                 ciphertext, attempt + 1);
        return call(thou_rooms_post_event, THOU_METHOD_POST, p->room, p->token_a, body);
    case MOVE_SEAT:
        crypto_generichash(bytes, 32, bytes, 32, NULL, 0);
        b64(bytes, 32, hash, sizeof(hash));
        snprintf(body, sizeof(body), "{\"token_hash\":\"%s\"}", hash);
        return call(thou_seats_move, THOU_METHOD_POST, p->room, p->token_b, body);
    case ERASE:
        return call(thou_rooms_erase, THOU_METHOD_DELETE, p->room, p->token_a, NULL);
    case STATIC: /* GET /css/thou.css (the path is set in call()) */
        return call(thou_pages_static, THOU_METHOD_GET, NULL, NULL, NULL);
    case N_STEPS:
        break;
    }
    ck_abort();
    return (struct answer){0};
}

static const unsigned ok_status[N_STEPS] = {201, 200, 200, 200, 201, 201, 200, 204, 200};

START_TEST(each_allocation_refuses_one_request)
{
    enum step step = (enum step)_i;
    unsigned refused = 0, ended = 0;
    long n;
    for (n = 0; n < MAX_ALLOCATIONS; n++) {
        struct pair p = fresh_pair(step);
        thou_mem_fail_at(n);
        struct answer a = run_step(step, &p, 0);
        bool fired = a.fired;
        if (!fired) { /* the request made fewer than n + 1 allocations: all were tried */
            ck_assert_msg(a.status == ok_status[step] && a.stream >= 0, "%s: %u %s",
                          step_names[step], a.status, a.code);
            answer_free(&a);
            break;
        }
        ck_assert_msg((a.status == ok_status[step] && a.stream >= 0) ||
                          (a.status == ok_status[step] && a.stream == -1 && step == STREAM) ||
                          (a.status == 503 && strcmp(a.code, "out_of_memory") == 0),
                      "%s, allocation %ld failing: %u '%s'", step_names[step], n, a.status, a.code);
        if (a.status == 503)
            refused++;
        if (a.stream == -1)
            ended++;
        answer_free(&a);
        /* What was stored is whole: the room (unless erased) still reads. */
        if (step != ERASE) {
            struct answer state = call(thou_rooms_get, THOU_METHOD_GET, p.room, p.token_a, NULL);
            ck_assert_msg(state.status == 200, "%s, allocation %ld failing: the room then: %u %s",
                          step_names[step], n, state.status, state.code);
            answer_free(&state);
        }
        /* Still here, and the next request goes through. A refusal can come
         * after the commit (the answer could not be made), so a step that
         * changes the room is tried again on a fresh one; the browser's own
         * retries handle that case (a join with its token hash, an event
         * whose retry meets 409). */
        bool changes_room = step == JOIN || step == POST_ANSWER || step == MOVE_SEAT;
        struct pair next = changes_room ? fresh_pair(step) : p;
        struct answer again = run_step(step, &next, 1);
        ck_assert_msg(again.status == ok_status[step] && again.stream >= 0,
                      "%s after allocation %ld failed: %u %s", step_names[step], n, again.status,
                      again.code);
        answer_free(&again);
    }
    ck_assert_msg(n < MAX_ALLOCATIONS, "%s never finished without a failure", step_names[step]);
    ck_assert_msg(refused > 0, "%s: no failure was ever refused with 503", step_names[step]);
    fprintf(stderr, "oom: %s: %ld allocations, %u refused with 503, %u streams ended early\n",
            step_names[step], n, refused, ended);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("oom");
    TCase *tc = tcase_create("refuse one request");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, each_allocation_refuses_one_request, 0, N_STEPS);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
