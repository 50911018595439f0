/*
 * An allocation failure refuses one request; it never takes the process
 * down (issue 11), for the workshop requests: the real handlers over a real
 * store, each allocation of a request failing in turn (thou_mem_fail_at).
 * Each time the answer is 503 out_of_memory or success, the process is
 * still here, the next request succeeds, and the store is whole: every
 * participant who joined is waiting or paired, never half-paired.
 *
 * The workshops' refresh thread runs meanwhile and may take an injected
 * failure itself (it skips that round); the request then simply succeeds.
 */
#include "thou/app.h"
#include "thou/config.h"
#include "thou/crypto.h"
#include "thou/facilitators.h"
#include "thou/hub.h"
#include "thou/limiter.h"
#include "thou/mem.h"
#include "thou/metrics.h"
#include "thou/qset.h"
#include "thou/rooms.h"
#include "thou/sessions.h"
#include "thou/static_files.h"
#include "thou/store.h"
#include "thou/workshops.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef THOU_SOURCE_DIR
#error "THOU_SOURCE_DIR must name the repository root"
#endif

#define MAX_ALLOCATIONS 600 /* far above what one request makes: the loop must end earlier */
#define PASSWORD        "a facilitator's password"

static struct thou_config config;
static struct thou_app app;
static char data_dir[64];
static char cookie[128], csrf[64];

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct answer {
    unsigned status;
    char code[64];
    json_t *json;
    char text[4096]; /* a stream's first read */
    char set_cookie[192];
    bool fired; /* the injected failure happened within the request */
};

static void answer_free(struct answer *a)
{
    json_decref(a->json);
    a->json = NULL;
}

static struct answer call(thou_handler_fn handler, enum thou_method method, const char *param,
                          const char *token, bool session, const char *body)
{
    char authorization[128] = "";
    if (token)
        snprintf(authorization, sizeof(authorization), "Bearer %s", token);
    struct thou_request req = {.method = method,
                               .path = "/api/workshops",
                               .params = {param},
                               .n_params = param ? 1 : 0,
                               .content_type = body ? "application/json" : NULL,
                               .authorization = token ? authorization : NULL,
                               .cookie = session ? cookie : NULL,
                               .csrf_token = session ? csrf : NULL,
                               .host = "localhost",
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    struct thou_response res;
    thou_response_init(&res);
    handler(&app, &req, &res);
    ck_assert_ptr_null(res.deferred);
    struct answer a = {.status = res.status};
    snprintf(a.set_cookie, sizeof(a.set_cookie), "%s", res.set_cookie);
    if (res.stream) { /* the first read only: a second would suspend (the adapter's business) */
        ssize_t n = res.stream->read(res.stream, a.text, sizeof(a.text) - 1);
        a.text[n > 0 ? n : 0] = '\0';
    }
    /* The request is over: the test's own reading of the answer must not
     * take the failure. */
    a.fired = !thou_mem_fail_pending();
    thou_mem_fail_at(-1);
    if (res.body)
        a.json = json_loadb(res.body, res.body_len, 0, NULL);
    const char *code = json_string_value(json_object_get(json_object_get(a.json, "error"), "code"));
    snprintf(a.code, sizeof(a.code), "%s", code ? code : "");
    thou_response_release(&res);
    return a;
}

static struct answer login(void)
{
    return call(thou_workshops_login, THOU_METHOD_POST, NULL, NULL, false,
                "{\"name\":\"fac\",\"password\":\"" PASSWORD "\"}");
}

static void setup(void)
{
    thou_mem_use_for_json();
    ck_assert_int_ge(sodium_init(), 0);
    thou_config_init(&config);
    snprintf(data_dir, sizeof(data_dir), "/tmp/thou-oomw-XXXXXX");
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
    app.workshops = thou_workshops_new(&app);
    ck_assert_int_eq(thou_facilitators_add(app.store, "fac", PASSWORD, strlen(PASSWORD), wall_ms()),
                     THOU_OK);
    struct answer a = login();
    ck_assert_msg(a.status == 200, "login: %u %s", a.status, a.code);
    snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(a.set_cookie, ";"), a.set_cookie);
    snprintf(csrf, sizeof(csrf), "%s", json_string_value(json_object_get(a.json, "csrf")));
    answer_free(&a);
}

static void teardown(void)
{
    thou_mem_fail_at(-1);
    thou_hub_shutdown(app.hub);
    thou_workshops_shutdown(app.workshops);
    thou_workshops_free(app.workshops);
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

/* A workshop to act in, made without any injected failure; with one
 * participant waiting (first) and, with pair, a second that paired with it. */
struct shop {
    char id[24];
    char code[16];
    char first[64]; /* the first participant's token */
    char room[64];  /* the pair's room, with pair */
};

static struct answer create_workshop(void)
{
    return call(thou_workshops_create, THOU_METHOD_POST, NULL, NULL, true,
                "{\"title\":\"Evening\",\"set\":\"couples-short\"}");
}

static struct answer join(const struct shop *s, char token[64])
{
    uint8_t bytes[THOU_TOKEN_BYTES], hash[THOU_DIGEST_BYTES];
    randombytes_buf(bytes, sizeof(bytes));
    sodium_bin2base64(token, 64, bytes, sizeof(bytes), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    thou_crypto_digest(bytes, sizeof(bytes), hash); /* what the server keeps of a token */
    char hash_text[64], body[200];
    sodium_bin2base64(hash_text, sizeof(hash_text), hash, sizeof(hash),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", s->code, hash_text);
    return call(thou_workshops_join, THOU_METHOD_POST, NULL, NULL, false, body);
}

static struct shop fresh_shop(bool pair)
{
    struct shop s = {0};
    struct answer a = create_workshop();
    ck_assert_msg(a.status == 201, "create: %u %s", a.status, a.code);
    snprintf(s.id, sizeof(s.id), "%lld",
             (long long)json_integer_value(json_object_get(a.json, "id")));
    const char *link = json_string_value(json_object_get(a.json, "link")); /* "/w/CODE" */
    snprintf(s.code, sizeof(s.code), "%s", link + 3);
    answer_free(&a);
    a = join(&s, s.first);
    ck_assert_msg(a.status == 200, "first join: %u %s", a.status, a.code);
    answer_free(&a);
    if (pair) {
        char token[64];
        a = join(&s, token);
        ck_assert_msg(a.status == 200, "second join: %u %s", a.status, a.code);
        ck_assert_str_eq(json_string_value(json_object_get(a.json, "status")), "paired");
        snprintf(s.room, sizeof(s.room), "%s", json_string_value(json_object_get(a.json, "room")));
        answer_free(&a);
    }
    return s;
}

/* The store is whole: everyone who joined is waiting or in a pair. */
static void assert_whole(const struct shop *s, const char *when)
{
    struct answer a = call(thou_workshops_get, THOU_METHOD_GET, s->id, NULL, true, NULL);
    ck_assert_msg(a.status == 200, "%s: snapshot %u %s", when, a.status, a.code);
    json_t *counts = json_object_get(a.json, "counts");
    json_int_t joined = json_integer_value(json_object_get(counts, "joined"));
    json_int_t paired = json_integer_value(json_object_get(counts, "paired"));
    json_int_t waiting = json_integer_value(json_object_get(counts, "waiting"));
    ck_assert_msg(paired + waiting == joined && paired % 2 == 0 &&
                      (size_t)paired == 2 * json_array_size(json_object_get(a.json, "pairs")),
                  "%s: joined %lld, paired %lld, waiting %lld", when, (long long)joined,
                  (long long)paired, (long long)waiting);
    answer_free(&a);
}

enum step {
    LOGIN,
    CREATE,
    DASHBOARD,
    DASHBOARD_STREAM,
    RELEASE,
    BROADCAST,
    JOIN,
    WAIT,
    ROOM_STATE,
    N_STEPS
};
static const char *const step_names[N_STEPS] = {
    "login",     "create workshop", "dashboard",   "dashboard stream",       "release",
    "broadcast", "join (pairing)",  "wait stream", "a workshop room's state"};
static const unsigned ok_status[N_STEPS] = {200, 201, 200, 200, 200, 200, 200, 200, 200};

static struct answer run_step(enum step step, const struct shop *s, char token[64])
{
    switch (step) {
    case LOGIN:
        return login();
    case CREATE:
        return create_workshop();
    case JOIN: /* the second participant: pairs with the first */
        return join(s, token);
    case WAIT: /* the first participant, paired: its first read tells it where to go */
        return call(thou_workshops_wait, THOU_METHOD_GET, NULL, s->first, false, NULL);
    case DASHBOARD:
        return call(thou_workshops_get, THOU_METHOD_GET, s->id, NULL, true, NULL);
    case DASHBOARD_STREAM: /* its first read: the retry hint and a whole snapshot */
        return call(thou_workshops_events, THOU_METHOD_GET, s->id, NULL, true, NULL);
    case BROADCAST:
        return call(thou_workshops_action, THOU_METHOD_POST, s->id, NULL, true,
                    "{\"action\":\"broadcast\",\"text\":\"Take a short break\"}");
    case RELEASE:
        return call(thou_workshops_action, THOU_METHOD_POST, s->id, NULL, true,
                    "{\"action\":\"release\",\"stage\":1}");
    case ROOM_STATE: /* GET /api/rooms/{room} of a workshop's room: with its "workshop" */
        return call(thou_rooms_get, THOU_METHOD_GET, s->room, s->first, false, NULL);
    case N_STEPS:
        break;
    }
    ck_abort();
    return (struct answer){0};
}

static bool answer_ok(enum step step, const struct answer *a)
{
    if (a->status != ok_status[step])
        return false;
    if (step == WAIT) /* a whole first read: the retry hint and where to go */
        return strstr(a->text, "retry: 2000\n\n") && strstr(a->text, "event: paired\n");
    if (step == DASHBOARD_STREAM) /* a whole first read: the retry hint and a snapshot */
        return strncmp(a->text, "retry: 2000\n\n", 13) == 0 &&
               strstr(a->text, "event: snapshot\ndata: {\"workshop\":") && strstr(a->text, "}\n\n");
    if (step == ROOM_STATE)
        return json_string_value(json_object_get(a->json, "mode")) &&
               strcmp(json_string_value(json_object_get(a->json, "mode")), "workshop") == 0 &&
               json_is_object(json_object_get(a->json, "workshop"));
    if (step == JOIN)
        return json_string_value(json_object_get(a->json, "status")) &&
               strcmp(json_string_value(json_object_get(a->json, "status")), "paired") == 0 &&
               json_string_value(json_object_get(a->json, "room"));
    return true;
}

START_TEST(each_allocation_refuses_one_request)
{
    enum step step = (enum step)_i;
    unsigned refused = 0;
    long n;
    for (n = 0; n < MAX_ALLOCATIONS; n++) {
        struct shop s = fresh_shop(step != JOIN);
        char token[64];
        thou_mem_fail_at(n);
        struct answer a = run_step(step, &s, token);
        bool fired = a.fired;
        if (!fired) { /* the request made fewer than n + 1 allocations: all were tried */
            ck_assert_msg(answer_ok(step, &a), "%s: %u %s", step_names[step], a.status, a.code);
            answer_free(&a);
            break;
        }
        ck_assert_msg(answer_ok(step, &a) ||
                          (a.status == 503 && strcmp(a.code, "out_of_memory") == 0),
                      "%s, allocation %ld failing: %u '%s' %s", step_names[step], n, a.status,
                      a.code, a.json ? json_dumps(a.json, 0) : a.text);
        refused += a.status == 503;
        answer_free(&a);
        /* Still here, and the store is whole; the next request goes through. */
        assert_whole(&s, step_names[step]);
        if (step == JOIN) {
            /* A refused join left nobody half-paired: a third participant
             * pairs with the first if the refused one is not in a pair. */
            char third[64];
            struct answer again = join(&s, third);
            ck_assert_msg(again.status == 200, "join after allocation %ld failed: %u %s", n,
                          again.status, again.code);
            answer_free(&again);
            assert_whole(&s, "the join after");
            continue;
        }
        struct answer again = run_step(step, &s, token);
        ck_assert_msg(answer_ok(step, &again), "%s after allocation %ld failed: %u %s",
                      step_names[step], n, again.status, again.code);
        answer_free(&again);
    }
    ck_assert_msg(n < MAX_ALLOCATIONS, "%s never finished without a failure", step_names[step]);
    ck_assert_msg(refused > 0, "%s: no failure was ever refused with 503", step_names[step]);
    fprintf(stderr, "oom: %s: %ld allocations, %u refused with 503\n", step_names[step], n,
            refused);
}
END_TEST

/* A stream left open and never read, as a browser that keeps it open would. */
static struct thou_stream *open_stream(thou_handler_fn handler, const char *param,
                                       const char *token, bool session)
{
    char authorization[128] = "";
    if (token)
        snprintf(authorization, sizeof(authorization), "Bearer %s", token);
    struct thou_request req = {.method = THOU_METHOD_GET,
                               .path = "/api/workshops",
                               .params = {param},
                               .n_params = param ? 1 : 0,
                               .authorization = token ? authorization : NULL,
                               .cookie = session ? cookie : NULL,
                               .csrf_token = session ? csrf : NULL};
    struct thou_response res;
    thou_response_init(&res);
    handler(&app, &req, &res);
    ck_assert_msg(res.status == 200 && res.stream, "stream: %u", res.status);
    struct thou_stream *stream = res.stream;
    res.stream = NULL;
    thou_response_release(&res);
    return stream;
}

/*
 * The refresh thread (dashboards, waiting streams, pairing, repairs), with
 * a dashboard and a waiting stream open: each of its allocations in turn
 * fails while nothing else allocates. Every injected failure must be taken
 * (the thread is still running and allocating after each), and then the
 * requests that share its lock and the store go through and the store is
 * whole.
 */
START_TEST(refresh_thread_skips_a_round)
{
    struct shop s = fresh_shop(true);
    char waiter[64];
    struct answer a = join(&s, waiter);
    ck_assert_str_eq(json_string_value(json_object_get(a.json, "status")), "waiting");
    answer_free(&a);
    struct thou_stream *dashboard = open_stream(thou_workshops_events, s.id, NULL, true);
    struct thou_stream *waiting = open_stream(thou_workshops_wait, NULL, waiter, false);
    long tried = 0;
    for (long n = 0; n < 300; n += n < 40 ? 1 : 10, tried++) {
        thou_mem_fail_at(n);
        int64_t deadline = wall_ms() + 5000;
        while (thou_mem_fail_pending()) {
            ck_assert_msg(wall_ms() < deadline, "the refresh thread stopped at allocation %ld", n);
            usleep(2000);
        }
    }
    thou_mem_fail_at(-1);
    assert_whole(&s, "after the refresh thread's failures");
    char fourth[64];
    a = join(&s, fourth); /* pairs with the one waiting */
    ck_assert_msg(a.status == 200, "join: %u %s", a.status, a.code);
    ck_assert_str_eq(json_string_value(json_object_get(a.json, "status")), "paired");
    answer_free(&a);
    assert_whole(&s, "after the next join");
    waiting->free(waiting);
    dashboard->free(dashboard);
    fprintf(stderr, "oom: the refresh thread took %ld injected failures\n", tried);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("oom_workshops");
    TCase *tc = tcase_create("refuse one request");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, each_allocation_refuses_one_request, 0, N_STEPS);
    tcase_add_test(tc, refresh_thread_skips_a_round);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
