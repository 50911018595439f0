/*
 * Whole guided conversations over HTTP, as docs/api.md describes them: two
 * participants follow flow.expect from the room state, every accepted event
 * is checked on both event streams, and every refused one leaves the room
 * exactly as it was.
 */
#include "harness.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SET_ID          "couples-short"
#define EVENT_WAIT_MS   5000 /* an event that is due arrives within this */
#define QUIET_MS        500  /* a stream silent this long holds nothing back */
#define TEST_TIMEOUT_S  180
#define MAX_STEPS       200 /* far more moves than couples-short needs */
#define CIPHERTEXT_SIZE 96  /* bytes; the server cannot read them, so any will do */

/* ---- JSON helpers ---------------------------------------------------------- */

static const char *str(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

static json_int_t integer(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    ck_assert_msg(json_is_integer(value), "'%s' is not an integer", key);
    return json_integer_value(value);
}

static char *dump(const json_t *value)
{
    return value ? json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                 : strdup("(null)");
}

static bool array_has(const json_t *array, const char *text)
{
    size_t i;
    const json_t *item;
    json_array_foreach(array, i, item)
    {
        if (json_is_string(item) && strcmp(json_string_value(item), text) == 0)
            return true;
    }
    return false;
}

/* Fail unless value equals expected; what names the value in the message. */
static void assert_json_equal(const json_t *value, const json_t *expected, const char *what)
{
    if (json_equal(value, expected))
        return;
    char *got = dump(value), *want = dump(expected);
    ck_abort_msg("%s is %s, expected %s", what, got, want);
}

/* ---- the room and its two participants ------------------------------------- */

struct party {
    char role;        /* 'A' or 'B' */
    char token[64];   /* bearer token */
    json_int_t count; /* the last message counter used */
    struct sse_client stream;
    bool listening; /* stream is open */
    json_t *posted; /* events posted that the partner may see: {seq,type,role,fields...} */
    json_t *seen;   /* data of every stored event the stream delivered, in order */
};

struct room {
    struct thou_proc proc;
    char id[64];
    char join_secret[64]; /* base64url */
    struct party a, b;
    json_int_t last_seq; /* of the last event acknowledged */
};

struct outcome {
    long status;
    json_int_t seq; /* on 201 */
    char code[64];  /* error code otherwise */
    char message[256];
};

static struct party *partner_of(struct room *r, const struct party *p)
{
    return p == &r->a ? &r->b : &r->a;
}

static struct party *party_of(struct room *r, char role)
{
    return role == 'A' ? &r->a : &r->b;
}

static void room_path(const struct room *r, const char *suffix, char *path, size_t len)
{
    snprintf(path, len, "/api/rooms/%s%s", r->id, suffix);
}

/* Start a server (with extra arguments, NULL-terminated; may be NULL) for a new room. */
static void room_start_with(struct room *r, const char *const *extra)
{
    memset(r, 0, sizeof(*r));
    ck_assert_int_ge(sodium_init(), 0);
    /* Check runs each test in its own process group and kills the group when
     * the test ends, so a failed assertion cannot leave this server running;
     * its directory stays behind, with server.log, for a look. */
    proc_start(&r->proc, extra);
    r->a.role = 'A';
    r->b.role = 'B';
    r->a.posted = json_array();
    r->b.posted = json_array();
    r->a.seen = json_array();
    r->b.seen = json_array();
}

static void room_start(struct room *r)
{
    room_start_with(r, NULL);
}

static void room_finish(struct room *r)
{
    struct party *parties[] = {&r->a, &r->b};
    for (size_t i = 0; i < 2; i++) {
        if (parties[i]->listening)
            sse_close(&parties[i]->stream);
        json_decref(parties[i]->posted);
        json_decref(parties[i]->seen);
    }
    ck_assert_int_eq(proc_stop(&r->proc), 0);
    proc_cleanup(&r->proc);
}

/* Check the error shape {"error":{"code","message"}} and copy both out. */
static void read_error(const struct http_reply *reply, struct outcome *out)
{
    const json_t *error = json_object_get(reply->json, "error");
    ck_assert_msg(json_is_object(reply->json) && json_object_size(reply->json) == 1 &&
                      json_is_object(error) && json_object_size(error) == 2 && str(error, "code") &&
                      str(error, "message"),
                  "status %ld with a body that is not the error shape: %s", reply->status,
                  reply->body);
    snprintf(out->code, sizeof(out->code), "%s", str(error, "code"));
    snprintf(out->message, sizeof(out->message), "%s", str(error, "message"));
}

/* POST /api/rooms with a fresh join secret; the creator is A. */
static void room_create(struct room *r, const char *set_id)
{
    unsigned char secret[32], verifier[32];
    char verifier_b64[64], body[256];
    randombytes_buf(secret, sizeof(secret));
    /* The verifier is the unkeyed 32-byte BLAKE2b of the join secret (docs/crypto.md §1). */
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    sodium_bin2base64(r->join_secret, sizeof(r->join_secret), secret, sizeof(secret),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(verifier_b64, sizeof(verifier_b64), verifier, sizeof(verifier),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(body, sizeof(body), "{\"set\":\"%s\",\"join_verifier\":\"%s\"}", set_id, verifier_b64);
    struct http_reply reply;
    ck_assert(http_json(r->proc.port, "POST", "/api/rooms", NULL, body, &reply));
    ck_assert_msg(reply.status == 201, "create: %ld %s", reply.status, reply.body);
    ck_assert_int_eq(json_object_size(reply.json), 3);
    ck_assert_msg(str(reply.json, "room") && strlen(str(reply.json, "room")) == 22,
                  "create: bad room id in %s", reply.body);
    ck_assert_msg(str(reply.json, "token"), "create: no token in %s", reply.body);
    ck_assert_str_eq(str(reply.json, "role"), "A");
    snprintf(r->id, sizeof(r->id), "%s", str(reply.json, "room"));
    snprintf(r->a.token, sizeof(r->a.token), "%s", str(reply.json, "token"));
    http_reply_free(&reply);
}

/* POST /api/rooms/{room}/join with the right secret; the second person is B. */
static void room_join(struct room *r)
{
    char path[128], body[128];
    room_path(r, "/join", path, sizeof(path));
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", r->join_secret);
    struct http_reply reply;
    ck_assert(http_json(r->proc.port, "POST", path, NULL, body, &reply));
    ck_assert_msg(reply.status == 200, "join: %ld %s", reply.status, reply.body);
    ck_assert_str_eq(str(reply.json, "room"), r->id);
    ck_assert_str_eq(str(reply.json, "role"), "B");
    ck_assert_msg(str(reply.json, "token"), "join: no token in %s", reply.body);
    snprintf(r->b.token, sizeof(r->b.token), "%s", str(reply.json, "token"));
    ck_assert_str_ne(r->a.token, r->b.token);
    http_reply_free(&reply);
    r->last_seq = 1; /* the server records the join as event 1 */
}

/* GET /api/rooms/{room} as p: the state (new reference); *raw (may be NULL) receives the body. */
static json_t *get_state(struct room *r, const struct party *p, char **raw)
{
    char path[128];
    room_path(r, "", path, sizeof(path));
    struct http_reply reply;
    ck_assert(http_json(r->proc.port, "GET", path, p->token, NULL, &reply));
    ck_assert_msg(reply.status == 200, "state as %c: %ld %s", p->role, reply.status, reply.body);
    ck_assert_msg(json_is_object(reply.json), "state as %c is not JSON: %s", p->role, reply.body);
    char role_text[2] = {p->role, '\0'};
    ck_assert_str_eq(str(reply.json, "room"), r->id);
    ck_assert_str_eq(str(reply.json, "role"), role_text);
    json_t *state = json_incref(reply.json);
    if (raw)
        *raw = strdup(reply.body);
    http_reply_free(&reply);
    return state;
}

/* Every event a participant writes is sealed, control events included; only
 * the key exchange (key, confirm) is not. */
static bool carries_ciphertext(const char *type)
{
    return strcmp(type, "key") != 0 && strcmp(type, "confirm") != 0;
}

/* An event body as a client sends it: a fresh random ciphertext and the next counter. */
static json_t *message(struct party *p, const char *type, const char *question)
{
    json_t *body = json_pack("{s:s}", "type", type);
    if (question)
        json_object_set_new(body, "question", json_string(question));
    if (carries_ciphertext(type)) {
        char ciphertext[2 * CIPHERTEXT_SIZE];
        random_b64(CIPHERTEXT_SIZE, ciphertext, sizeof(ciphertext));
        json_object_set_new(body, "ciphertext", json_string(ciphertext));
        json_object_set_new(body, "counter", json_integer(++p->count));
    }
    return body;
}

/* A key or confirm event with random bytes: the server cannot check the MACs. */
static json_t *key_message(const char *type)
{
    char key[64], mac[64];
    random_b64(32, key, sizeof(key));
    random_b64(32, mac, sizeof(mac));
    if (strcmp(type, "key") == 0)
        return json_pack("{s:s,s:s,s:s}", "type", "key", "public_key", key, "mac", mac);
    return json_pack("{s:s,s:s}", "type", "confirm", "mac", mac);
}

/* POST an event as p; takes body. */
static struct outcome post_event(struct room *r, const struct party *p, json_t *body)
{
    struct outcome out = {0};
    char path[128];
    room_path(r, "/events", path, sizeof(path));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct http_reply reply;
    ck_assert(http_json(r->proc.port, "POST", path, p->token, text, &reply));
    free(text);
    out.status = reply.status;
    if (reply.status == 201) {
        ck_assert_msg(json_object_size(reply.json) == 1, "201 with %s", reply.body);
        out.seq = integer(reply.json, "seq");
    } else {
        read_error(&reply, &out);
    }
    http_reply_free(&reply);
    return out;
}

/* ---- the event streams ----------------------------------------------------- */

/* A presence event: no id, the partner's role, present true or false. */
static bool presence_of(const struct party *p, const struct sse_event *ev)
{
    ck_assert_msg(strcmp(ev->type, "presence") == 0 && ev->id == -1 && ev->data,
                  "%c's stream: an event without id that is not presence (event: '%s')", p->role,
                  ev->type);
    json_t *data = json_loads(ev->data, JSON_REJECT_DUPLICATES, NULL);
    char partner[2] = {p->role == 'A' ? 'B' : 'A', '\0'};
    ck_assert_msg(json_is_object(data) && json_object_size(data) == 2 && str(data, "role") &&
                      strcmp(str(data, "role"), partner) == 0 &&
                      json_is_boolean(json_object_get(data, "present")),
                  "%c's stream: bad presence data %s", p->role, ev->data);
    bool present = json_is_true(json_object_get(data, "present"));
    json_decref(data);
    return present;
}

enum presence { ABSENT, PRESENT, EITHER };

/*
 * Open p's stream. It starts with the reconnection delay (a block without
 * id, event or data: "retry: ...") and then the partner's presence.
 */
static void listen_to(struct room *r, struct party *p, const char *last_event_id,
                      enum presence partner)
{
    char path[128];
    room_path(r, "/events", path, sizeof(path));
    ck_assert_msg(sse_open(&p->stream, r->proc.port, path, p->token, last_event_id),
                  "%c cannot open its stream: status %ld", p->role, p->stream.status);
    p->listening = true;
    struct sse_event ev;
    ck_assert_msg(sse_next(&p->stream, EVENT_WAIT_MS, &ev), "%c's stream: nothing", p->role);
    ck_assert_msg(ev.id == -1 && ev.type[0] == '\0' && !ev.data && !ev.comment,
                  "%c's stream does not start with its retry line", p->role);
    sse_event_release(&ev);
    ck_assert_msg(sse_next(&p->stream, EVENT_WAIT_MS, &ev), "%c's stream: no presence", p->role);
    bool present = presence_of(p, &ev);
    ck_assert_msg(partner == EITHER || present == (partner == PRESENT),
                  "%c's stream: partner present is %s", p->role, present ? "true" : "false");
    sse_event_release(&ev);
}

/*
 * The next stored event on p's stream (its data, new reference), or NULL
 * when none comes within timeout_ms. Heartbeats and presence events on the
 * way are checked and skipped.
 */
static json_t *next_stored(struct party *p, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        struct sse_event ev;
        long long left = deadline - now_ms();
        if (left <= 0 || !sse_next(&p->stream, (int)left, &ev))
            return NULL;
        if (ev.comment) {
            sse_event_release(&ev);
            continue;
        }
        if (ev.id < 0) {
            presence_of(p, &ev);
            sse_event_release(&ev);
            continue;
        }
        ck_assert_msg(ev.data, "%c's stream: event %lld without data", p->role, ev.id);
        json_t *data = json_loads(ev.data, JSON_REJECT_DUPLICATES, NULL);
        ck_assert_msg(json_is_object(data), "%c's stream: event %lld data is not an object: %s",
                      p->role, ev.id, ev.data);
        ck_assert_msg(integer(data, "seq") == ev.id && str(data, "type") &&
                          strcmp(str(data, "type"), ev.type) == 0,
                      "%c's stream: id %lld, event '%s' disagree with data %s", p->role, ev.id,
                      ev.type, ev.data);
        json_array_append(p->seen, data);
        sse_event_release(&ev);
        return data;
    }
}

/* The next stored event on p's stream is exactly seq, type, role and fields, with a time. */
static void expect_stored(struct party *p, json_int_t seq, const char *type, char role,
                          const json_t *fields)
{
    json_t *data = next_stored(p, EVENT_WAIT_MS);
    ck_assert_msg(data, "%c's stream: event %lld (%s by %c) did not arrive", p->role,
                  (long long)seq, type, role);
    const json_t *time = json_object_get(data, "time");
    ck_assert_msg(json_is_integer(time) && json_integer_value(time) > 0,
                  "%c's stream: event %lld has no time", p->role, (long long)seq);
    char role_text[2] = {role, '\0'};
    json_t *expected = json_pack("{s:I,s:s,s:s}", "seq", seq, "type", type, "role", role_text);
    json_object_update(expected, (json_t *)(uintptr_t)fields);
    json_t *rest = json_deep_copy(data);
    json_object_del(rest, "time");
    char what[64];
    snprintf(what, sizeof(what), "%c's stream event %lld", p->role, (long long)seq);
    assert_json_equal(rest, expected, what);
    json_decref(rest);
    json_decref(expected);
    json_decref(data);
}

/* Nothing stored arrives on p's stream for a while. */
static void expect_quiet(struct party *p, int timeout_ms)
{
    json_t *data = next_stored(p, timeout_ms);
    char *text = dump(data);
    ck_assert_msg(!data, "%c's stream: unexpected event %s", p->role, text);
    free(text);
}

/*
 * Post body as p and expect it stored with the next seq and delivered: to
 * both streams, or only to p's own when held. Takes body; returns the seq.
 */
static json_int_t send_ok(struct room *r, struct party *p, json_t *body, bool held)
{
    char type[32];
    snprintf(type, sizeof(type), "%s", str(body, "type"));
    json_t *fields = json_deep_copy(body);
    json_object_del(fields, "type");
    struct outcome out = post_event(r, p, body);
    ck_assert_msg(out.status == 201, "%c %s: expected 201, got %ld %s (%s)", p->role, type,
                  out.status, out.code, out.message);
    ck_assert_int_eq(out.seq, r->last_seq + 1);
    r->last_seq = out.seq;
    if (p->listening)
        expect_stored(p, out.seq, type, p->role, fields);
    struct party *partner = partner_of(r, p);
    if (!held) {
        if (partner->listening)
            expect_stored(partner, out.seq, type, p->role, fields);
        char role_text[2] = {p->role, '\0'};
        json_t *entry = json_pack("{s:I,s:s,s:s}", "seq", out.seq, "type", type, "role", role_text);
        json_object_update(entry, fields);
        json_array_append_new(p->posted, entry);
    }
    json_decref(fields);
    return out.seq;
}

/* The room's stored state as text: all of GET's answer but the partner's
 * presence, which is whether a stream is open right now, not stored. */
static char *stored_state(struct room *r)
{
    json_t *state = get_state(r, &r->a, NULL);
    json_object_del(json_object_get(state, "partner"), "present");
    char *text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(state);
    return text;
}

/*
 * Post body as p and expect a refusal with status and code that changes
 * nothing: the room state (last_seq, flow, everything stored) stays byte
 * for byte.
 */
static void expect_refused(struct room *r, struct party *p, json_t *body, long status,
                           const char *code)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char *before = stored_state(r);
    struct outcome out = post_event(r, p, body);
    ck_assert_msg(out.status == status && strcmp(out.code, code) == 0,
                  "%c posting %s: expected %ld %s, got %ld %s (%s)", p->role, text, status, code,
                  out.status, out.code, out.message);
    char *after = stored_state(r);
    ck_assert_msg(strcmp(before, after) == 0,
                  "a refused %s changed the room:\nbefore %s\nafter  %s", text, before, after);
    free(text);
    free(before);
    free(after);
}

/*
 * Every event writer posted that its partner may see reached reader's
 * stream, in order, exactly; and nothing else of writer's did (no held
 * answer). Server-made events (joined, reveal) are checked where they happen.
 */
static void check_partner_saw_all(const struct party *writer, const struct party *reader)
{
    char role_text[2] = {writer->role, '\0'};
    size_t matched = 0, i;
    json_int_t previous = 0;
    const json_t *data;
    json_array_foreach(reader->seen, i, data)
    {
        json_int_t seq = integer(data, "seq");
        ck_assert_msg(seq > previous, "%c's stream went back from %lld to %lld", reader->role,
                      (long long)previous, (long long)seq);
        previous = seq;
        const char *type = str(data, "type");
        if (strcmp(str(data, "role"), role_text) != 0 || strcmp(type, "joined") == 0 ||
            strcmp(type, "reveal") == 0)
            continue;
        ck_assert_msg(matched < json_array_size(writer->posted),
                      "%c's stream has more of %c's events than %c posted (seq %lld)", reader->role,
                      writer->role, writer->role, (long long)seq);
        json_t *rest = json_deep_copy(data);
        json_object_del(rest, "time");
        char what[64];
        snprintf(what, sizeof(what), "%c's %zu-th event of %c", reader->role, matched + 1,
                 writer->role);
        assert_json_equal(rest, json_array_get(writer->posted, matched), what);
        json_decref(rest);
        matched++;
    }
    ck_assert_msg(matched == json_array_size(writer->posted), "%c's stream saw %zu of %zu of %c's",
                  reader->role, matched, json_array_size(writer->posted), writer->role);
}

/* Read a shipped question set file (new reference). */
static json_t *load_set_file(const char *id)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/config/questions/%s.json", THOU_SOURCE_DIR, id);
    json_error_t err;
    json_t *set = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(set, "cannot read %s: %s", path, err.text);
    return set;
}

static json_int_t count_questions(const json_t *set)
{
    json_int_t n = 0;
    size_t i;
    const json_t *stage;
    json_array_foreach(json_object_get(set, "stages"), i, stage)
    {
        n += (json_int_t)json_array_size(json_object_get(stage, "questions"));
    }
    return n;
}

/* ---- a whole conversation -------------------------------------------------- */

struct tally {
    int passes[2]; /* by A, by B */
    int adds;
    int reflects;
    int confirms;
    int reveals;
    int gates;          /* stage gates both chose to go on through */
    bool reflect_again; /* an add was answered with a second reflection */
};

/*
 * A stage gate: both see what comes next and may go on or stay; nothing
 * else moves until both chose. At the first gate the refusals are checked
 * too: a question event, a vote for another question, a second vote.
 */
static void vote_go_on(struct room *r, const json_t *flow, struct tally *tally)
{
    const char *question = str(flow, "question");
    json_t *choices =
        json_pack("{s:[s,s],s:[s,s]}", "A", "go_on", "stay_here", "B", "go_on", "stay_here");
    assert_json_equal(json_object_get(flow, "expect"), choices, "flow.expect at a stage gate");
    json_decref(choices);
    ck_assert_int_eq(integer(flow, "question_index"), 0);
    if (tally->gates == 0) {
        expect_refused(r, &r->a, message(&r->a, "answer", question), 409, "stage_vote");
        expect_refused(r, &r->b, message(&r->b, "pass", question), 409, "stage_vote");
        expect_refused(r, &r->a, message(&r->a, "go_on", "cg-good-moment"), 409, "wrong_step");
        expect_refused(r, &r->a, message(&r->a, "go_on", NULL), 400, "invalid_event");
    }
    send_ok(r, &r->b, message(&r->b, "go_on", question), false);
    if (tally->gates == 0) {
        expect_refused(r, &r->b, message(&r->b, "go_on", question), 409, "already_voted");
        expect_refused(r, &r->b, message(&r->b, "stay_here", question), 409, "already_voted");
        json_t *state = get_state(r, &r->a, NULL);
        const json_t *half = json_object_get(state, "flow");
        ck_assert_str_eq(str(half, "status"), "voting");
        ck_assert(json_is_true(json_object_get(json_object_get(half, "votes"), "B")));
        ck_assert(json_is_false(json_object_get(json_object_get(half, "votes"), "A")));
        json_decref(state);
    }
    send_ok(r, &r->a, message(&r->a, "go_on", question), false);
    tally->gates++;
}

/*
 * The reveal-together question: B writes first and its answer is held from
 * A; A's answer then releases both in one reveal event, to both.
 */
static void reveal_together(struct room *r, const json_t *flow, struct tally *tally)
{
    const char *question = str(flow, "question");
    const json_t *expect = json_object_get(flow, "expect");
    ck_assert(json_is_null(json_object_get(flow, "speaker")));
    ck_assert(array_has(json_object_get(expect, "A"), "answer"));
    ck_assert(array_has(json_object_get(expect, "B"), "answer"));

    json_t *answer_b = message(&r->b, "answer", question);
    json_t *kept_b = json_pack("{s:O,s:O}", "ciphertext", json_object_get(answer_b, "ciphertext"),
                               "counter", json_object_get(answer_b, "counter"));
    json_int_t first = send_ok(r, &r->b, answer_b, true);
    expect_quiet(&r->a, QUIET_MS); /* the held answer never reaches A */

    json_t *state = get_state(r, &r->a, NULL);
    ck_assert_int_eq(integer(state, "last_seq"), first);
    const json_t *now = json_object_get(state, "flow");
    ck_assert_str_eq(str(now, "phase"), "reveal_write");
    ck_assert(json_is_true(json_object_get(json_object_get(now, "done"), "B")));
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(now, "expect"), "B")), 0);
    ck_assert(array_has(json_object_get(json_object_get(now, "expect"), "A"), "answer"));
    json_decref(state);

    json_t *answer_a = message(&r->a, "answer", question);
    json_t *kept_a = json_pack("{s:O,s:O}", "ciphertext", json_object_get(answer_a, "ciphertext"),
                               "counter", json_object_get(answer_a, "counter"));
    /* A's own answer is private as well: B receives only the reveal. */
    json_int_t second = send_ok(r, &r->a, answer_a, true);
    json_t *reveal =
        json_pack("{s:s,s:{s:o,s:o}}", "question", question, "answers", "A", kept_a, "B", kept_b);
    r->last_seq = second + 1;
    expect_stored(&r->a, second + 1, "reveal", 'A', reveal);
    expect_stored(&r->b, second + 1, "reveal", 'A', reveal);
    json_decref(reveal);
    tally->reveals++;
}

/* Decide the next move from the room state alone, make it, and check it. */
static void take_turn(struct room *r, const json_t *flow, struct tally *tally)
{
    const char *phase = str(flow, "phase");
    const char *question = str(flow, "question");
    const char *speaker = str(flow, "speaker");
    const json_t *expect = json_object_get(flow, "expect");
    json_int_t index = integer(json_object_get(flow, "progress"), "index");
    json_int_t rounds = integer(flow, "rounds");
    ck_assert_msg(phase && question, "no phase or question in an active flow");
    if (strcmp(phase, "reveal_write") == 0) {
        reveal_together(r, flow, tally);
        return;
    }

    struct party *mover = NULL;
    const char *type = NULL;
    bool turn_based = strcmp(phase, "reveal_reflect") != 0;
    ck_assert_msg(!turn_based || (speaker && (speaker[0] == 'A' || speaker[0] == 'B')),
                  "no speaker in phase %s", phase);
    if (strcmp(phase, "speak") == 0) {
        mover = party_of(r, speaker[0]);
        /* B passes its own half of the second question. */
        type = index == 1 && mover->role == 'B' ? "pass" : "answer";
    } else if (strcmp(phase, "reflect") == 0) {
        mover = partner_of(r, party_of(r, speaker[0]));
        /* A, listening, passes the reflection of the sixth question. */
        type = index == 5 && mover->role == 'A' ? "pass" : "reflect";
        if (rounds > 0) {
            ck_assert_str_eq(type, "reflect");
            tally->reflect_again = true;
        }
    } else if (strcmp(phase, "confirm") == 0) {
        mover = party_of(r, speaker[0]);
        /* "Not quite": A adds once to the very first reflection. */
        type = index == 0 && mover->role == 'A' && rounds == 0 ? "add" : "confirm_heard";
    } else if (strcmp(phase, "reveal_reflect") == 0) {
        mover = json_is_true(json_object_get(json_object_get(flow, "done"), "A")) ? &r->b : &r->a;
        type = "reflect";
    } else {
        ck_abort_msg("unexpected phase '%s' in an active flow", phase);
    }
    char role_text[2] = {mover->role, '\0'};
    char other_text[2] = {partner_of(r, mover)->role, '\0'};
    ck_assert_msg(array_has(json_object_get(expect, role_text), type),
                  "flow.expect.%s does not offer %s in phase %s", role_text, type, phase);
    ck_assert_msg(array_has(json_object_get(expect, role_text), "pass"),
                  "flow.expect.%s does not offer pass", role_text);
    if (turn_based)
        ck_assert_msg(json_array_size(json_object_get(expect, other_text)) == 0,
                      "flow.expect.%s is not empty on %c's turn", other_text, mover->role);

    send_ok(r, mover, message(mover, type, question), false);
    if (strcmp(type, "pass") == 0)
        tally->passes[mover->role == 'B']++;
    else if (strcmp(type, "add") == 0)
        tally->adds++;
    else if (strcmp(type, "reflect") == 0)
        tally->reflects++;
    else if (strcmp(type, "confirm_heard") == 0)
        tally->confirms++;
}

/* Both views of the room agree with each other and with what was acknowledged. */
static json_t *shared_state(struct room *r)
{
    json_t *state_a = get_state(r, &r->a, NULL);
    json_t *state_b = get_state(r, &r->b, NULL);
    ck_assert_int_eq(integer(state_a, "last_seq"), r->last_seq);
    ck_assert_int_eq(integer(state_b, "last_seq"), r->last_seq);
    ck_assert_str_eq(str(state_a, "state"), str(state_b, "state"));
    ck_assert_str_eq(str(json_object_get(state_a, "set"), "id"), SET_ID);
    assert_json_equal(json_object_get(state_a, "set"), json_object_get(state_b, "set"), "set");
    assert_json_equal(json_object_get(state_a, "flow"), json_object_get(state_b, "flow"),
                      "A's flow against B's");
    json_t *both_here = json_pack("{s:b,s:b}", "joined", 1, "present", 1);
    assert_json_equal(json_object_get(state_a, "partner"), both_here, "A's partner");
    assert_json_equal(json_object_get(state_b, "partner"), both_here, "B's partner");
    json_decref(both_here);
    json_decref(state_b);
    return state_a;
}

START_TEST(test_whole_conversation)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    listen_to(&r, &r.a, NULL, ABSENT);
    room_join(&r);
    listen_to(&r, &r.b, NULL, PRESENT);
    json_t *no_fields = json_object();
    expect_stored(&r.a, 1, "joined", 'B', no_fields);
    expect_stored(&r.b, 1, "joined", 'B', no_fields);
    json_decref(no_fields);

    /* The browsers' key exchange and a note; opaque to the server. */
    send_ok(&r, &r.a, key_message("key"), false);
    send_ok(&r, &r.b, key_message("key"), false);
    send_ok(&r, &r.a, key_message("confirm"), false);
    send_ok(&r, &r.b, key_message("confirm"), false);
    send_ok(&r, &r.b, message(&r.b, "note", NULL), false);

    json_t *set = load_set_file(SET_ID);
    json_int_t total = count_questions(set);
    json_decref(set);
    struct tally tally = {0};
    json_int_t last_index = 0;
    json_t *state = NULL;
    for (int step = 0;; step++) {
        ck_assert_msg(step < MAX_STEPS, "the conversation did not end in %d moves", MAX_STEPS);
        state = shared_state(&r);
        const json_t *flow = json_object_get(state, "flow");
        const json_t *progress = json_object_get(flow, "progress");
        json_int_t index = integer(progress, "index");
        ck_assert_int_eq(integer(progress, "total"), total);
        ck_assert_msg(index == last_index || index == last_index + 1,
                      "progress.index went from %lld to %lld", (long long)last_index,
                      (long long)index);
        last_index = index;
        if (strcmp(str(state, "state"), "ended") == 0)
            break;
        ck_assert_str_eq(str(state, "state"), "active");
        if (strcmp(str(flow, "status"), "voting") == 0) {
            vote_go_on(&r, flow, &tally);
            json_decref(state);
            continue;
        }
        ck_assert_str_eq(str(flow, "status"), "active");
        take_turn(&r, flow, &tally);
        json_decref(state);
    }

    /* The conversation ran through its last question. */
    const json_t *flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "ended");
    ck_assert(json_is_true(json_object_get(flow, "finished")));
    ck_assert_str_eq(str(flow, "phase"), "done");
    ck_assert(json_is_null(json_object_get(flow, "question")));
    ck_assert_int_eq(last_index, total);
    json_t *nothing = json_pack("{s:[],s:[]}", "A", "B");
    assert_json_equal(json_object_get(flow, "expect"), nothing, "flow.expect once ended");
    json_decref(nothing);
    json_decref(state);

    ck_assert_int_eq(tally.adds, 1);
    ck_assert(tally.reflect_again);
    ck_assert_int_ge(tally.passes[0], 1);
    ck_assert_int_ge(tally.passes[1], 1);
    ck_assert_int_eq(tally.reveals, 1);
    ck_assert_int_ge(tally.confirms, 1);
    ck_assert_int_eq(tally.gates, 3); /* four stages: three gates */

    /* Nothing more is accepted, and nothing else reaches the streams. */
    expect_refused(&r, &r.a, message(&r.a, "note", NULL), 409, "room_ended");
    expect_quiet(&r.a, 300);
    expect_quiet(&r.b, 300);
    check_partner_saw_all(&r.a, &r.b);
    check_partner_saw_all(&r.b, &r.a);
    room_finish(&r);
}
END_TEST

/* ---- the rules, enforced over HTTP -------------------------------------- */

START_TEST(test_enforcement)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    const char *q0 = "cg-good-moment", *q1 = "precious-feel-yourself";

    expect_refused(&r, &r.a, message(&r.a, "answer", q0), 409, "waiting_for_partner");
    room_join(&r);

    /* Whose turn, and which step. */
    expect_refused(&r, &r.b, message(&r.b, "answer", q0), 409, "not_your_turn");
    expect_refused(&r, &r.a, message(&r.a, "answer", q1), 409, "wrong_step");
    expect_refused(&r, &r.a, message(&r.a, "reflect", q0), 409, "wrong_step");
    expect_refused(&r, &r.a, message(&r.a, "confirm_heard", q0), 409, "wrong_step");

    /* Pause and resume. */
    send_ok(&r, &r.b, message(&r.b, "pause", NULL), false);
    json_t *state = get_state(&r, &r.a, NULL);
    ck_assert_str_eq(str(state, "state"), "paused");
    const json_t *flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "paused");
    ck_assert_str_eq(str(flow, "paused_from"), "active");
    ck_assert_str_eq(str(flow, "paused_by"), "B");
    json_t *nothing = json_pack("{s:[],s:[]}", "A", "B");
    assert_json_equal(json_object_get(flow, "expect"), nothing, "flow.expect while paused");
    json_decref(state);
    expect_refused(&r, &r.a, message(&r.a, "answer", q0), 409, "paused");
    expect_refused(&r, &r.a, message(&r.a, "pause", NULL), 409, "already_paused");
    expect_refused(&r, &r.b, message(&r.b, "pause", NULL), 409, "already_paused");
    /* The pause is B's: A waits (or ends), and nothing of the pause changes. */
    expect_refused(&r, &r.a, message(&r.a, "resume", NULL), 409, "paused_by_partner");
    state = get_state(&r, &r.b, NULL);
    ck_assert_str_eq(str(state, "state"), "paused");
    ck_assert_str_eq(str(json_object_get(state, "flow"), "paused_by"), "B");
    json_decref(state);
    send_ok(&r, &r.b, message(&r.b, "resume", NULL), false);
    expect_refused(&r, &r.a, message(&r.a, "resume", NULL), 409, "not_paused");
    state = get_state(&r, &r.a, NULL);
    ck_assert_str_eq(str(state, "state"), "active");
    ck_assert(json_is_null(json_object_get(json_object_get(state, "flow"), "paused_from")));
    ck_assert(json_is_null(json_object_get(json_object_get(state, "flow"), "paused_by")));
    json_decref(state);

    /* Accepted again; the identical answer a second time is a step already taken. */
    json_t *answer = message(&r.a, "answer", q0);
    json_t *replay = json_deep_copy(answer);
    send_ok(&r, &r.a, answer, false);
    expect_refused(&r, &r.a, json_deep_copy(replay), 409, "wrong_step");
    send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
    expect_refused(&r, &r.a, json_deep_copy(replay), 409, "wrong_step");
    expect_refused(&r, &r.b, message(&r.b, "confirm_heard", q0), 409, "not_your_turn");
    expect_refused(&r, &r.b, message(&r.b, "reflect", q0), 409, "wrong_step");
    json_decref(replay);

    /* After the end nothing more is accepted, from either side. */
    send_ok(&r, &r.a, message(&r.a, "end", NULL), false);
    state = get_state(&r, &r.b, NULL);
    ck_assert_str_eq(str(state, "state"), "ended");
    flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "ended");
    ck_assert(json_is_false(json_object_get(flow, "finished")));
    assert_json_equal(json_object_get(flow, "expect"), nothing, "flow.expect once ended");
    json_decref(state);
    json_decref(nothing);

    char *before = NULL, *after = NULL;
    json_decref(get_state(&r, &r.a, &before));
    static const char *const types[] = {"answer", "reflect", "add", "confirm_heard", "pass", "note",
                                        "pause",  "resume",  "end"};
    struct party *parties[] = {&r.a, &r.b};
    for (size_t p = 0; p < 2; p++) {
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            bool has_question = strcmp(types[t], "note") != 0 && strcmp(types[t], "pause") != 0 &&
                                strcmp(types[t], "resume") != 0 && strcmp(types[t], "end") != 0;
            expect_refused(&r, parties[p], message(parties[p], types[t], has_question ? q0 : NULL),
                           409, "room_ended");
        }
        expect_refused(&r, parties[p], key_message("confirm"), 409, "room_ended");
    }
    json_decref(get_state(&r, &r.a, &after));
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    room_finish(&r);
}
END_TEST

/* ---- question sets ---------------------------------------------------------- */

START_TEST(test_sets)
{
    struct room r;
    room_start(&r);
    struct http_reply reply;
    ck_assert(http_json(r.proc.port, "GET", "/api/sets", NULL, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    const json_t *sets = json_object_get(reply.json, "sets");
    ck_assert_int_eq(json_object_size(reply.json), 1);
    static const char *const ids[] = {"couples-full", "couples-short", "workshop-strangers"};
    ck_assert_int_eq(json_array_size(sets), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *file = load_set_file(ids[i]);
        json_t *expected = json_pack(
            "{s:O,s:O,s:O,s:O,s:O,s:O,s:I,s:I}", "id", json_object_get(file, "id"), "version",
            json_object_get(file, "version"), "title", json_object_get(file, "title"), "language",
            json_object_get(file, "language"), "description", json_object_get(file, "description"),
            "minutes", json_object_get(file, "minutes"), "stages",
            (json_int_t)json_array_size(json_object_get(file, "stages")), "questions",
            count_questions(file));
        ck_assert_str_eq(str(file, "id"), ids[i]);
        assert_json_equal(json_array_get(sets, i), expected, ids[i]);
        json_decref(expected);
        json_decref(file);
    }
    http_reply_free(&reply);

    /* One set in full: the file, with reveal_together spelled out where it defaults. */
    ck_assert(http_json(r.proc.port, "GET", "/api/sets/" SET_ID, NULL, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    json_t *expected = load_set_file(SET_ID);
    size_t s, q;
    json_t *stage, *question;
    json_array_foreach(json_object_get(expected, "stages"), s, stage)
    {
        json_array_foreach(json_object_get(stage, "questions"), q, question)
        {
            if (!json_object_get(question, "reveal_together"))
                json_object_set_new(question, "reveal_together", json_false());
        }
    }
    assert_json_equal(reply.json, expected, "GET /api/sets/" SET_ID);
    json_decref(expected);
    http_reply_free(&reply);

    static const char *const unknown[] = {"/api/sets/no-such-set", "/api/sets/Not%20An%20Id"};
    for (size_t i = 0; i < 2; i++) {
        ck_assert(http_json(r.proc.port, "GET", unknown[i], NULL, NULL, &reply));
        struct outcome out = {.status = reply.status};
        read_error(&reply, &out);
        ck_assert_msg(out.status == 404 && strcmp(out.code, "no_such_set") == 0, "GET %s: %ld %s",
                      unknown[i], out.status, out.code);
        http_reply_free(&reply);
    }
    room_finish(&r);
}
END_TEST

/* ---- a restart keeps the conversation where it was --------------------------- */

/* p's stream, opened after last_event_id, replays exactly the events after it. */
static void expect_replay(struct room *r, struct party *p, json_int_t after)
{
    char last_event_id[32];
    snprintf(last_event_id, sizeof(last_event_id), "%lld", (long long)after);
    /* A stream closed just before may count as present until the next heartbeat finds it gone. */
    listen_to(r, p, last_event_id, EITHER);
    json_t *no_fields = json_object();
    for (json_int_t seq = after + 1; seq <= r->last_seq; seq++) {
        const json_t *entry = NULL;
        struct party *parties[] = {&r->a, &r->b};
        for (size_t i = 0; i < 2 && !entry; i++) {
            size_t k;
            const json_t *posted;
            json_array_foreach(parties[i]->posted, k, posted)
            {
                if (integer(posted, "seq") == seq) {
                    entry = posted;
                    break;
                }
            }
        }
        if (!entry) {
            ck_assert_int_eq(seq, 1);
            expect_stored(p, 1, "joined", 'B', no_fields);
            continue;
        }
        json_t *fields = json_deep_copy(entry);
        json_object_del(fields, "seq");
        json_object_del(fields, "type");
        json_object_del(fields, "role");
        expect_stored(p, seq, str(entry, "type"), str(entry, "role")[0], fields);
        json_decref(fields);
    }
    json_decref(no_fields);
    expect_quiet(p, 300);
    sse_close(&p->stream);
    p->listening = false;
}

/* Either may stay at the depth reached: the conversation ends, kindly marked as such. */
START_TEST(test_stay_here)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    room_join(&r);
    expect_refused(&r, &r.a, message(&r.a, "go_on", "cg-good-moment"), 409, "wrong_step");
    json_t *state = NULL;
    for (int step = 0;; step++) {
        ck_assert_int_lt(step, MAX_STEPS);
        state = get_state(&r, &r.a, NULL);
        const json_t *flow = json_object_get(state, "flow");
        if (strcmp(str(flow, "status"), "voting") == 0)
            break;
        const json_t *expect = json_object_get(flow, "expect");
        struct party *mover = json_array_size(json_object_get(expect, "A")) ? &r.a : &r.b;
        send_ok(&r, mover, message(mover, "pass", str(flow, "question")), false);
        json_decref(state);
    }
    char *question = strdup(str(json_object_get(state, "flow"), "question"));
    json_decref(state);
    send_ok(&r, &r.a, message(&r.a, "go_on", question), false);
    send_ok(&r, &r.b, message(&r.b, "stay_here", question), false);
    state = get_state(&r, &r.a, NULL);
    const json_t *flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(state, "state"), "ended");
    ck_assert_str_eq(str(flow, "status"), "ended");
    ck_assert(json_is_true(json_object_get(flow, "stayed")));
    ck_assert(json_is_false(json_object_get(flow, "finished")));
    ck_assert_int_eq(integer(flow, "stage"), 1);
    json_decref(state);
    expect_refused(&r, &r.a, message(&r.a, "go_on", question), 409, "room_ended");
    free(question);
    room_finish(&r);
}
END_TEST

START_TEST(test_restart)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    room_join(&r);
    const char *q0 = "cg-good-moment";
    send_ok(&r, &r.a, message(&r.a, "answer", q0), false);
    send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
    send_ok(&r, &r.a, message(&r.a, "add", q0), false);
    send_ok(&r, &r.b, message(&r.b, "pause", NULL), false);

    char *before_a = NULL, *before_b = NULL, *after_a = NULL, *after_b = NULL;
    json_t *state = get_state(&r, &r.a, &before_a);
    const json_t *flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "phase"), "reflect");
    ck_assert_int_eq(integer(flow, "rounds"), 1);
    ck_assert_str_eq(str(flow, "status"), "paused");
    json_decref(state);
    json_decref(get_state(&r, &r.b, &before_b));

    ck_assert_int_eq(proc_stop(&r.proc), 0);
    proc_restart(&r.proc);

    /* Same position, same last_seq, same everything, for both. */
    json_decref(get_state(&r, &r.a, &after_a));
    json_decref(get_state(&r, &r.b, &after_b));
    ck_assert_str_eq(after_a, before_a);
    ck_assert_str_eq(after_b, before_b);
    free(before_a);
    free(before_b);
    free(after_a);
    free(after_b);

    /* Everything acknowledged is still there, in order; Last-Event-ID skips what was seen. */
    expect_replay(&r, &r.a, 0);
    expect_replay(&r, &r.b, r.last_seq - 2);

    /* And the conversation goes on from there, resumed by the one who paused. */
    expect_refused(&r, &r.a, message(&r.a, "resume", NULL), 409, "paused_by_partner");
    send_ok(&r, &r.b, message(&r.b, "resume", NULL), false);
    send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
    state = get_state(&r, &r.b, NULL);
    ck_assert_str_eq(str(json_object_get(state, "flow"), "phase"), "confirm");
    ck_assert_int_eq(integer(state, "last_seq"), r.last_seq);
    json_decref(state);
    room_finish(&r);
}
END_TEST

/* ---- ending before the partner came ---------------------------------------- */

START_TEST(test_end_before_join)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    send_ok(&r, &r.a, message(&r.a, "end", NULL), false);
    expect_refused(&r, &r.a, message(&r.a, "answer", "cg-good-moment"), 409, "room_ended");

    char path[128], body[128];
    room_path(&r, "/join", path, sizeof(path));
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", r.join_secret);
    struct http_reply reply;
    ck_assert(http_json(r.proc.port, "POST", path, NULL, body, &reply));
    struct outcome out = {.status = reply.status};
    read_error(&reply, &out);
    ck_assert_msg(out.status == 410 && strcmp(out.code, "room_ended") == 0, "join: %ld %s",
                  out.status, out.code);
    http_reply_free(&reply);

    /* The flow in the room state says the same as the room: ended, nothing expected. */
    json_t *state = get_state(&r, &r.a, NULL);
    ck_assert_str_eq(str(state, "state"), "ended");
    ck_assert_int_eq(integer(state, "last_seq"), 1);
    json_t *flow = json_incref(json_object_get(state, "flow"));
    json_decref(state);
    room_finish(&r); /* first, so the server and its directory go even if the check fails */
    json_t *nothing = json_pack("{s:[],s:[]}", "A", "B");
    char *text = dump(flow);
    ck_assert_msg(str(flow, "status") && strcmp(str(flow, "status"), "ended") == 0 &&
                      json_is_false(json_object_get(flow, "finished")) &&
                      json_equal(json_object_get(flow, "expect"), nothing),
                  "an ended room's flow is %s; expected status \"ended\", finished false and "
                  "nothing in expect",
                  text);
    free(text);
    json_decref(nothing);
    json_decref(flow);
}
END_TEST

/* ---- regressions: each case is named after the bug it catches --------------- */

/* The room state's flow as p sees it (new reference). */
static json_t *flow_of(struct room *r, const struct party *p)
{
    json_t *state = get_state(r, p, NULL);
    json_t *flow = json_incref(json_object_get(state, "flow"));
    json_decref(state);
    return flow;
}

/* Check flow's phase, speaker ("" for none), rounds and whose half is done. */
static void expect_flow(const json_t *flow, const char *question, const char *phase,
                        const char *speaker, json_int_t rounds, bool done_a, bool done_b)
{
    json_t *expected = json_pack("{s:s,s:s,s:I,s:{s:b,s:b}}", "question", question, "phase", phase,
                                 "rounds", rounds, "done", "A", done_a, "B", done_b);
    json_object_set_new(expected, "speaker", speaker[0] ? json_string(speaker) : json_null());
    json_t *got =
        json_pack("{s:O,s:O,s:O,s:O,s:O}", "question", json_object_get(flow, "question"), "phase",
                  json_object_get(flow, "phase"), "rounds", json_object_get(flow, "rounds"), "done",
                  json_object_get(flow, "done"), "speaker", json_object_get(flow, "speaker"));
    assert_json_equal(got, expected, "the flow");
    json_decref(got);
    json_decref(expected);
}

/* The ciphertext and counter of an answer body: what a reveal carries of it (new reference). */
static json_t *revealed_part(const json_t *answer)
{
    return json_pack("{s:O,s:O}", "ciphertext", json_object_get(answer, "ciphertext"), "counter",
                     json_object_get(answer, "counter"));
}

/*
 * Bug: the reveal looks up the partner's held answer without naming the
 * question, so a reveal after the partner passed carries the partner's
 * answer to an earlier reveal question. In couples-full, stage 2 has four
 * reveal-together questions in a row: both answer the first; on the second
 * A passes and B answers, and the reveal carries B's answer only; on the
 * third both pass, and the reveal carries nothing.
 */
START_TEST(test_reveal_ignores_question_carries_stale_answer)
{
    struct room r;
    room_start(&r);
    room_create(&r, "couples-full");
    listen_to(&r, &r.a, NULL, ABSENT);
    room_join(&r);
    listen_to(&r, &r.b, NULL, PRESENT);
    json_t *no_fields = json_object();
    expect_stored(&r.a, 1, "joined", 'B', no_fields);
    expect_stored(&r.b, 1, "joined", 'B', no_fields);
    json_decref(no_fields);

    /* Stages 0 and 1: each speaker passes its half; both go on at each gate. */
    json_t *flow = flow_of(&r, &r.a);
    for (int step = 0; strcmp(str(flow, "phase"), "reveal_write") != 0 ||
                       strcmp(str(flow, "status"), "voting") == 0;
         step++) {
        ck_assert_msg(step < 40, "no reveal question after %d passes", step);
        if (strcmp(str(flow, "status"), "voting") == 0) {
            send_ok(&r, &r.a, message(&r.a, "go_on", str(flow, "question")), false);
            send_ok(&r, &r.b, message(&r.b, "go_on", str(flow, "question")), false);
            json_decref(flow);
            flow = flow_of(&r, &r.a);
            continue;
        }
        struct party *speaker = party_of(&r, str(flow, "speaker")[0]);
        send_ok(&r, speaker, message(speaker, "pass", str(flow, "question")), false);
        json_decref(flow);
        flow = flow_of(&r, &r.a);
    }
    ck_assert_str_eq(str(flow, "question"), "differ-everyday");

    /* First reveal question: both answer, both answers are revealed. */
    struct tally tally = {0};
    reveal_together(&r, flow, &tally);
    json_decref(flow);
    send_ok(&r, &r.a, message(&r.a, "pass", "differ-everyday"), false);
    send_ok(&r, &r.b, message(&r.b, "pass", "differ-everyday"), false);

    /* Second: A passes first, then B answers; the reveal holds B's answer alone. */
    const char *second = "differ-matters-to-other";
    flow = flow_of(&r, &r.b);
    expect_flow(flow, second, "reveal_write", "", 0, false, false);
    json_decref(flow);
    send_ok(&r, &r.a, message(&r.a, "pass", second), false);
    json_t *answer_b = message(&r.b, "answer", second);
    json_t *part_b = revealed_part(answer_b);
    json_int_t seq = send_ok(&r, &r.b, answer_b, true);
    json_t *reveal = json_pack("{s:s,s:{s:o}}", "question", second, "answers", "B", part_b);
    r.last_seq = seq + 1;
    expect_stored(&r.a, seq + 1, "reveal", 'B', reveal);
    expect_stored(&r.b, seq + 1, "reveal", 'B', reveal);
    json_decref(reveal);
    send_ok(&r, &r.b, message(&r.b, "pass", second), false);
    send_ok(&r, &r.a, message(&r.a, "pass", second), false);

    /* Third: both pass; the reveal carries no answer at all. */
    const char *third = "differ-matters-to-me";
    send_ok(&r, &r.a, message(&r.a, "pass", third), false);
    seq = send_ok(&r, &r.b, message(&r.b, "pass", third), false);
    reveal = json_pack("{s:s,s:{}}", "question", third, "answers");
    r.last_seq = seq + 1;
    expect_stored(&r.a, seq + 1, "reveal", 'B', reveal);
    expect_stored(&r.b, seq + 1, "reveal", 'B', reveal);
    json_decref(reveal);

    flow = flow_of(&r, &r.a);
    expect_flow(flow, third, "reveal_reflect", "", 0, false, false);
    ck_assert_int_eq(integer(flow, "stage"), 2);
    json_decref(flow);
    room_finish(&r);
}
END_TEST

/*
 * Bug: a pass in the confirm phase does not close the speaker's half (it
 * sends the turn back to reflect, or waits for another confirm). The half
 * ends at once and the partner speaks next on the same question.
 */
START_TEST(test_pass_in_confirm_keeps_the_half_open)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    room_join(&r);
    const char *q0 = "cg-good-moment";
    send_ok(&r, &r.a, message(&r.a, "answer", q0), false);
    send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
    json_t *flow = flow_of(&r, &r.b);
    expect_flow(flow, q0, "confirm", "A", 0, false, false);
    json_decref(flow);

    send_ok(&r, &r.a, message(&r.a, "pass", q0), false);
    flow = flow_of(&r, &r.b);
    expect_flow(flow, q0, "speak", "B", 0, true, false);
    json_t *expect = json_pack("{s:[],s:[s,s]}", "A", "B", "answer", "pass");
    assert_json_equal(json_object_get(flow, "expect"), expect, "flow.expect after the pass");
    json_decref(expect);
    json_decref(flow);
    expect_refused(&r, &r.a, message(&r.a, "confirm_heard", q0), 409, "wrong_step");
    expect_refused(&r, &r.b, message(&r.b, "reflect", q0), 409, "wrong_step");

    /* The same after an add sent the turn back once. */
    send_ok(&r, &r.b, message(&r.b, "answer", q0), false);
    send_ok(&r, &r.a, message(&r.a, "reflect", q0), false);
    send_ok(&r, &r.b, message(&r.b, "add", q0), false);
    send_ok(&r, &r.a, message(&r.a, "reflect", q0), false);
    send_ok(&r, &r.b, message(&r.b, "pass", q0), false);
    flow = flow_of(&r, &r.a);
    expect_flow(flow, "precious-feel-yourself", "speak", "B", 0, false, false);
    json_decref(flow);
    room_finish(&r);
}
END_TEST

/*
 * Bug: resuming a conversation that was paused while held at the stage cap
 * makes it active, opening the capped stage. Link rooms have no cap until
 * the workshop API sets one, so the test puts one in the stored flow, as
 * that API will.
 */
START_TEST(test_resume_from_held_opens_the_stage)
{
    struct room r;
    room_start(&r);
    room_create(&r, SET_ID);
    room_join(&r);
    /* With the server stopped: its writer keeps the rooms it wrote to in memory. */
    ck_assert_int_eq(proc_stop(&r.proc), 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE rooms SET flow = json_set(flow, '$.stage_cap', 0) WHERE id = '%s'", r.id);
    proc_sql(&r.proc, sql);
    proc_restart(&r.proc);
    json_t *flow = flow_of(&r, &r.a);
    ck_assert_int_eq(integer(flow, "stage_cap"), 0);
    json_decref(flow);

    /* Stage 0 has one question; passing both halves and both going on at
     * the gate reaches stage 1, held. */
    const char *q0 = "cg-good-moment", *q1 = "precious-feel-yourself";
    send_ok(&r, &r.a, message(&r.a, "pass", q0), false);
    send_ok(&r, &r.b, message(&r.b, "pass", q0), false);
    send_ok(&r, &r.a, message(&r.a, "go_on", q1), false);
    send_ok(&r, &r.b, message(&r.b, "go_on", q1), false);
    json_t *state = get_state(&r, &r.a, NULL);
    flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "held");
    ck_assert_str_eq(str(flow, "question"), q1);
    ck_assert_int_eq(integer(flow, "stage"), 1);
    json_decref(state);
    expect_refused(&r, &r.b, message(&r.b, "answer", q1), 409, "held");

    send_ok(&r, &r.b, message(&r.b, "pause", NULL), false);
    state = get_state(&r, &r.a, NULL);
    ck_assert_str_eq(str(state, "state"), "paused");
    flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "paused");
    ck_assert_str_eq(str(flow, "paused_from"), "held");
    json_decref(state);

    send_ok(&r, &r.b, message(&r.b, "resume", NULL), false); /* the pause is B's to lift */
    state = get_state(&r, &r.b, NULL);
    flow = json_object_get(state, "flow");
    ck_assert_str_eq(str(flow, "status"), "held");
    ck_assert(json_is_null(json_object_get(flow, "paused_from")));
    ck_assert_str_eq(str(flow, "question"), q1);
    json_t *nothing = json_pack("{s:[],s:[]}", "A", "B");
    assert_json_equal(json_object_get(flow, "expect"), nothing, "flow.expect while held");
    json_decref(nothing);
    json_decref(state);
    expect_refused(&r, &r.b, message(&r.b, "answer", q1), 409, "held");
    expect_refused(&r, &r.b, message(&r.b, "pass", q1), 409, "held");
    room_finish(&r);
}
END_TEST

/*
 * Bug: the round limit is off by one or ignored, so "not quite" can send
 * the turn back to reflect more often than max_reflect_rounds allows. With
 * the limit at 2, two adds go back to reflect; the third is delivered and
 * closes the half.
 */
START_TEST(test_round_limit_not_enforced)
{
    struct room r;
    static const char *const limit[] = {"--max-reflect-rounds", "2", NULL};
    room_start_with(&r, limit);
    room_create(&r, SET_ID);
    room_join(&r);
    const char *q0 = "cg-good-moment";
    send_ok(&r, &r.a, message(&r.a, "answer", q0), false);
    for (json_int_t round = 1; round <= 2; round++) {
        send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
        send_ok(&r, &r.a, message(&r.a, "add", q0), false);
        json_t *flow = flow_of(&r, &r.a);
        expect_flow(flow, q0, "reflect", "A", round, false, false);
        json_decref(flow);
    }
    send_ok(&r, &r.b, message(&r.b, "reflect", q0), false);
    json_t *flow = flow_of(&r, &r.a);
    expect_flow(flow, q0, "confirm", "A", 2, false, false);
    json_decref(flow);
    send_ok(&r, &r.a, message(&r.a, "add", q0), false);
    flow = flow_of(&r, &r.b);
    expect_flow(flow, q0, "speak", "B", 0, true, false);
    json_decref(flow);
    expect_refused(&r, &r.b, message(&r.b, "reflect", q0), 409, "wrong_step");
    room_finish(&r);
}
END_TEST

static Suite *flow_suite(void)
{
    Suite *suite = suite_create("flow");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"conversation", test_whole_conversation},
        {"enforcement", test_enforcement},
        {"sets", test_sets},
        {"restart", test_restart},
        {"stay_here", test_stay_here},
        {"end_before_join", test_end_before_join},
        {"reveal_ignores_question_carries_stale_answer",
         test_reveal_ignores_question_carries_stale_answer},
        {"pass_in_confirm_keeps_the_half_open", test_pass_in_confirm_keeps_the_half_open},
        {"resume_from_held_opens_the_stage", test_resume_from_held_opens_the_stage},
        {"round_limit_not_enforced", test_round_limit_not_enforced},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, TEST_TIMEOUT_S);
        tcase_add_test(tc, cases[i].test);
        if (strcmp(cases[i].name, "resume_from_held_opens_the_stage") == 0)
            tcase_set_tags(tc, "sqlite-file"); /* edits thou.db by hand */
        suite_add_tcase(suite, tc);
    }
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(flow_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
