/*
 * The conversation relay (DESIGN §2–§4, §8): create and join a room, post
 * events, stream them, read the room's state, erase it. Answers are opaque
 * ciphertext here; the flow rules decide only from who did which step.
 */
#include "thou/app.h"
#include "thou/crypto.h"
#include "thou/flow.h"
#include "thou/hub.h"
#include "thou/json.h"
#include "thou/jsonflat.h"
#include "thou/disk.h"
#include "thou/event_check.h"
#include "thou/limiter.h"
#include "thou/proxy.h"
#include "thou/text.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/qset.h"
#include "thou/rooms.h"
#include "thou/research.h"
#include "thou/sessions.h"
#include "thou/store.h"
#include "thou/workshops.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BYTES       32 /* X25519 public key */
#define MAC_MIN_BYTES   16
#define MAC_MAX_BYTES   64
#define COUNTER_MAX     9007199254740991LL /* 2^53 - 1: exact in every JSON reader */
#define QUESTION_MAX    64                 /* bytes of a question id */
#define LIMIT_KEY_BYTES 16                 /* of the token hash, to tell participants apart */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- authentication and lookup ---------------------------------------- */

/* Answer for a room that cannot be used: never existed, erased or expired. */
static void room_missing(struct thou_response *res, enum thou_status rc)
{
    if (rc == THOU_EGONE)
        thou_response_error(res, 410, "room_gone", "this conversation was erased or has expired");
    else if (rc == THOU_ENOTFOUND)
        thou_response_error(res, 404, "no_such_room", "there is no conversation with this id");
    else
        thou_response_status(res, rc);
}

/* Load the room named in the path; expired rooms count as gone even before
 * the sweep deletes them. Fills res and returns false when unusable. */
static bool load_room(struct thou_app *app, const char *room_id, struct thou_room_record *room,
                      struct thou_response *res)
{
    enum thou_status rc = thou_store_room_get(app->store, room_id, room);
    if (rc == THOU_OK && room->expires_ms <= now_ms()) {
        thou_room_record_release(room);
        rc = THOU_EGONE;
    }
    if (rc) {
        room_missing(res, rc);
        return false;
    }
    return true;
}

/* The role the bearer token holds in room_id, or false with res filled. */
static bool authenticate(struct thou_app *app, const struct thou_request *req, const char *room_id,
                         char *role, uint8_t token_hash[THOU_DIGEST_BYTES],
                         struct thou_response *res)
{
    enum thou_status rc = thou_crypto_bearer_hash(req->authorization, token_hash)
                              ? THOU_EAUTH
                              : thou_store_participant_role(app->store, room_id, token_hash, role);
    if (rc == THOU_EAUTH) {
        thou_response_error(res, 401, "bad_token",
                            "missing or invalid token for this conversation");
        return false;
    }
    if (rc) {
        /* The store could not say (away, failing): not the token's fault, and
         * a 401 would make the browser give up a seat it still holds. */
        thou_response_status(res, rc);
        return false;
    }
    return true;
}

/* The room named in the path and the caller's role in it; false with res
 * filled when either is missing. The caller releases *room on success. */
static bool open_as_participant(struct thou_app *app, const struct thou_request *req,
                                struct thou_room_record *room, char *role,
                                uint8_t token_hash[THOU_DIGEST_BYTES], struct thou_response *res)
{
    if (!load_room(app, req->params[0], room, res))
        return false;
    if (authenticate(app, req, req->params[0], role, token_hash, res))
        return true;
    thou_room_record_release(room);
    return false;
}

bool thou_rooms_open_participant(struct thou_app *app, const struct thou_request *req,
                                 struct thou_room_record *room, char *role,
                                 struct thou_response *res)
{
    uint8_t token_hash[THOU_DIGEST_BYTES];
    return open_as_participant(app, req, room, role, token_hash, res);
}

/* ---- field validation -------------------------------------------------- */

static void invalid(struct thou_response *res, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void invalid(struct thou_response *res, const char *code, const char *fmt, ...)
{
    char message[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    thou_response_error(res, 400, code, message);
}

/* One member of a request body as the validators see it, whichever reader
 * read it: the flat reader (a view into the body) or jansson. */
struct body_field {
    bool present;
    bool is_string;
    bool is_integer;
    const char *text; /* a string's bytes; NUL-terminated only from jansson */
    size_t len;
    int64_t integer;
    size_t position; /* among the body's members, in body order */
};

static struct body_field json_field(const json_t *value, size_t position)
{
    struct body_field field = {.present = value != NULL, .position = position};
    if (json_is_string(value)) {
        field.is_string = true;
        field.text = json_string_value(value);
        field.len = json_string_length(value);
    } else if (json_is_integer(value)) {
        field.is_integer = true;
        field.integer = json_integer_value(value);
    }
    return field;
}

/* A base64url field decoding to min..max bytes. Only a ciphertext, whose
 * cap is a configured limit, is "too large" (413); a fixed-size field of
 * the wrong size is simply malformed (400). */
static bool check_b64(const struct body_field *value, const char *field, size_t min, size_t max,
                      const char *code, struct thou_response *res)
{
    bool limit_is_configured = strcmp(field, "ciphertext") == 0;
    if (!value->present) {
        invalid(res, code, "missing field '%s'", field);
        return false;
    }
    if (!value->is_string) {
        invalid(res, code, "'%s' must be a base64url string", field);
        return false;
    }
    size_t len = value->len;
    if (limit_is_configured && thou_crypto_b64_decoded_max(len) > max) {
        char message[200];
        snprintf(message, sizeof(message), "'%s' is larger than %zu bytes", field, max);
        thou_response_error(res, 413, "too_large", message);
        return false;
    }
    size_t n = 0;
    /* Checked, not decoded: the server never needs the bytes themselves. */
    enum thou_status rc = thou_crypto_b64_check(value->text, len, &n);
    if (rc == THOU_OK && n > max)
        rc = THOU_ETOOBIG;
    if (rc || n < min) {
        invalid(res, code, "'%s' is not valid unpadded base64url of the right size", field);
        return false;
    }
    return true;
}

static bool check_b64_member(const json_t *body, const char *field, size_t min, size_t max,
                             const char *code, struct thou_response *res)
{
    struct body_field value = json_field(json_object_get(body, field), 0);
    return check_b64(&value, field, min, max, code, res);
}

/* ---- POST /api/rooms ------------------------------------------------------ */

/* Below the free-disk floor nothing new is written: a clear refusal now
 * rather than a database that fails halfway or a disk full for everyone. */
static bool disk_allows_writes(struct thou_app *app, struct thou_response *res)
{
    if (!app->disk || !thou_disk_low(app->disk))
        return true;
    thou_metrics_refusal(app->metrics, THOU_REFUSAL_DISK_LOW);
    thou_response_error(res, 507, "insufficient_storage",
                        "the server is short of disk space and stores nothing new for now; "
                        "nothing was stored");
    res->retry_after_s = 60;
    return false;
}

/* Rooms are cheap to ask for and each takes disk: one client address may
 * create room_creations_per_min a minute. Behind a trusted proxy the
 * address is the one it forwarded. */
static bool creation_allowed(struct thou_app *app, const struct thou_request *req,
                             struct thou_response *res)
{
    if (!req->client_addr)
        return true;
    char key[THOU_ADDRESS_KEY_LEN];
    thou_address_key(req->client_addr, key, sizeof(key));
    unsigned retry_after = 1;
    if (thou_limiter_take(app->create_limiter, key, now_ms(), &retry_after))
        return true;
    thou_response_error(res, 429, "rate_limited",
                        "too many new conversations from this address; try again shortly");
    res->retry_after_s = retry_after;
    return false;
}

void thou_rooms_create(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    static const char *const allowed[] = {"set", "join_verifier", "study", NULL};
    if (!creation_allowed(app, req, res) || !disk_allows_writes(app, res))
        return;
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    const char *unknown = thou_json_unknown_key(body, allowed);
    const char *set_id = thou_json_string(body, "set");
    /* A study (docs/research.md) may choose the set: its assigned condition. */
    const char *study_name = thou_json_string(body, "study");
    struct thou_study_record study = {0};
    char condition[THOU_SET_ID_MAX + 1] = "";
    if (unknown) {
        invalid(res, "invalid_request", "unknown field '%s'", unknown);
        goto out;
    }
    if (json_object_get(body, "study") && !study_name) {
        invalid(res, "invalid_request", "'%s' must be a study name", "study");
        goto out;
    }
    if (!set_id && !study_name) {
        invalid(res, "invalid_request", "missing field '%s' (a question set id)", "set");
        goto out;
    }
    if (!check_b64_member(body, "join_verifier", THOU_DIGEST_BYTES, THOU_DIGEST_BYTES,
                          "invalid_request", res))
        goto out;
    /* Last of the checks on the request, so a bad one takes no place in the study's block. */
    if (study_name && !thou_research_assign(app, study_name, &study, condition, res))
        goto out;
    if (condition[0])
        set_id = condition;
    if (!set_id) {
        invalid(res, "invalid_request", "missing field '%s' (a question set id)", "set");
        goto out;
    }
    const struct thou_qset *set = thou_qset_registry_find(app->qsets, set_id);
    if (!set) {
        thou_response_error(res, 404, "no_such_set", "there is no question set with this id");
        goto out;
    }

    struct thou_room_record room = {0};
    size_t n = 0;
    const char *verifier = thou_json_string(body, "join_verifier");
    thou_crypto_b64_decode(verifier, strlen(verifier), room.join_verifier, THOU_DIGEST_BYTES, &n);
    snprintf(room.set_id, sizeof(room.set_id), "%s", set->id);
    room.set_version = (int)set->version;
    room.state = THOU_ROOM_WAITING;
    room.created_ms = now_ms();
    room.expires_ms = room.created_ms + (int64_t)app->config->room_ttl_days * 86400 * 1000;

    struct thou_flow_state flow;
    thou_flow_state_init(&flow, thou_qset_plan(set));
    json_t *flow_json = thou_flow_state_to_json(thou_qset_plan(set), &flow);
    room.flow_json = flow_json ? thou_json_dumps(flow_json, JSON_COMPACT) : NULL;
    json_decref(flow_json);
    if (!room.flow_json) {
        thou_response_status(res, THOU_ENOMEM);
        goto out;
    }

    char token[THOU_TOKEN_B64_LEN + 1];
    uint8_t token_hash[THOU_DIGEST_BYTES];
    thou_crypto_new_token(token, token_hash);
    enum thou_status rc;
    do { /* a 128-bit id clash is practically impossible, but costs one line to handle */
        thou_crypto_new_id(room.id);
        rc = thou_store_room_create(app->store, &room, token_hash);
    } while (rc == THOU_EEXIST);
    free(room.flow_json);
    if (rc == THOU_OK && study_name)
        rc = thou_store_room_set_study(app->store, room.id, study.name,
                                       condition[0] ? condition : room.set_id);
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    json_t *created = json_pack("{s:s,s:s,s:s}", "room", room.id, "token", token, "role", "A");
    if (study_name)
        json_object_set_new(created, "study", thou_research_study_json(&study));
    thou_json_respond(res, 201, created);
out:
    json_decref(body);
}

/* ---- POST /api/rooms/{room}/join --------------------------------------- */

static enum thou_status append_simple(struct thou_app *app, const char *room_id, const char *type,
                                      char role, enum thou_room_state state)
{
    int64_t time_ms = now_ms();
    char *data = NULL;
    json_t *object = json_pack("{s:s,s:s,s:I}", "type", type, "role", (char[]){role, '\0'}, "time",
                               (json_int_t)time_ms);
    data = object ? thou_json_dumps(object, JSON_COMPACT) : NULL;
    json_decref(object);
    if (!data)
        return THOU_ENOMEM;
    struct thou_event_record event = {
        .type = type, .sender = role, .data = data, .time_ms = time_ms};
    int64_t seq;
    enum thou_status rc =
        thou_store_events_append(app->store, room_id, &event, 1, state, NULL, &seq);
    free(data);
    if (rc == THOU_OK)
        thou_hub_notify(app->hub, room_id);
    return rc;
}

void thou_rooms_join(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    static const char *const allowed[] = {"join_secret", "token_hash", NULL};
    const char *room_id = req->params[0];
    struct thou_room_record room = {0};
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    const char *unknown = thou_json_unknown_key(body, allowed);
    if (unknown) {
        invalid(res, "invalid_request", "unknown field '%s'", unknown);
        goto out;
    }
    if (!check_b64_member(body, "join_secret", THOU_DIGEST_BYTES, THOU_DIGEST_BYTES,
                          "invalid_request", res))
        goto out;
    /* A browser that drew its own token sends only its hash, so it can
     * retry a join whose answer it never got (docs/api.md). */
    bool own_token = json_object_get(body, "token_hash") != NULL;
    if (own_token && !check_b64_member(body, "token_hash", THOU_DIGEST_BYTES, THOU_DIGEST_BYTES,
                                       "invalid_request", res))
        goto out;
    if (!load_room(app, room_id, &room, res) || !disk_allows_writes(app, res))
        goto out;

    /* Guessing is throttled per address, before the secret is even looked
     * at; a room whose secret many addresses guess at still admits the one
     * who holds it (a lock-out would be the attack). */
    unsigned retry_after = 0;
    int64_t now = now_ms();
    char address[THOU_ADDRESS_KEY_LEN] = "";
    if (req->client_addr)
        thou_address_key(req->client_addr, address, sizeof(address));
    if (address[0] && !thou_limiter_peek(app->join_address_limiter, address, now, &retry_after)) {
        res->retry_after_s = retry_after;
        thou_response_error(res, 429, "rate_limited",
                            "too many wrong join attempts from here; wait and try again");
        goto out;
    }
    uint8_t secret[THOU_DIGEST_BYTES], digest[THOU_DIGEST_BYTES];
    size_t n = 0;
    const char *secret_text = thou_json_string(body, "join_secret");
    thou_crypto_b64_decode(secret_text, strlen(secret_text), secret, sizeof(secret), &n);
    thou_crypto_digest(secret, sizeof(secret), digest);
    if (!thou_crypto_digest_equal(digest, room.join_verifier)) {
        if (address[0])
            thou_limiter_take(app->join_address_limiter, address, now, NULL);
        if (!thou_limiter_take(app->join_limiter, room_id, now, &retry_after)) {
            res->retry_after_s = retry_after;
            thou_response_error(res, 429, "rate_limited",
                                "too many wrong join attempts; wait and try again");
            goto out;
        }
        thou_response_error(res, 403, "bad_secret", "this link is not valid for the conversation");
        goto out;
    }
    if (room.state == THOU_ROOM_ENDED) {
        /* Its own code, so the page can say "ended" rather than "erased". */
        thou_response_error(res, 410, "room_ended", "this conversation has ended");
        goto out;
    }

    char token[THOU_TOKEN_B64_LEN + 1];
    uint8_t token_hash[THOU_DIGEST_BYTES];
    if (own_token) {
        const char *hash_text = thou_json_string(body, "token_hash");
        thou_crypto_b64_decode(hash_text, strlen(hash_text), token_hash, sizeof(token_hash), &n);
    } else {
        thou_crypto_new_token(token, token_hash);
    }
    bool again = false;
    enum thou_status rc = thou_store_room_join(app->store, room_id, token_hash, now, &again);
    if (rc == THOU_EFULL) {
        thou_response_error(res, 409, "room_full",
                            "this conversation already has two people; a third cannot join");
        goto out;
    }
    if (rc) {
        room_missing(res, rc);
        goto out;
    }
    /* Tell A that B arrived: as an event, so it survives A's reconnects.
     * A retried join is the same arrival, told once. */
    if (!again && append_simple(app, room_id, "joined", 'B', THOU_ROOM_ACTIVE))
        thou_log_warn("cannot record the join of a conversation");
    if (own_token)
        thou_json_respond(res, 200, json_pack("{s:s,s:s}", "room", room_id, "role", "B"));
    else
        thou_json_respond(res, 200,
                          json_pack("{s:s,s:s,s:s}", "room", room_id, "token", token, "role", "B"));
out:
    thou_room_record_release(&room);
    json_decref(body);
}

/* ---- GET /api/rooms/{room} -------------------------------------------------- */

static const char *room_state_name(const struct thou_room_record *room, const json_t *flow)
{
    if (room->state == THOU_ROOM_ENDED)
        return "ended";
    if (!room->b_joined)
        return "waiting";
    const char *status = thou_json_string(flow, "status");
    return status && strcmp(status, "paused") == 0 ? "paused" : "active";
}

void thou_rooms_get(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    const char *room_id = req->params[0];
    struct thou_room_record room = {0};
    char role;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    if (!open_as_participant(app, req, &room, &role, token_hash, res))
        return;
    json_t *flow =
        room.flow_json ? thou_json_parse(room.flow_json, strlen(room.flow_json), 0, NULL) : NULL;
    if (room.flow_json && !flow) { /* the store wrote it, so only memory can fail here */
        thou_response_status(res, THOU_ENOMEM);
        thou_room_record_release(&room);
        return;
    }
    /* Nobody can act on a question before the partner is there. */
    if (flow && !room.b_joined)
        json_object_set_new(flow, "expect", json_pack("{s:[],s:[]}", "A", "B"));
    char role_text[2] = {role, '\0'};
    char partner = role == 'A' ? 'B' : 'A';
    bool partner_joined = role == 'B' || room.b_joined;
    json_t *state = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:i},s:{s:b,s:b},s:I,s:I,s:o}", "room", room.id, "role", role_text,
        "state", room_state_name(&room, flow), "set", "id", room.set_id, "version",
        room.set_version, "partner", "joined", partner_joined, "present",
        thou_hub_present(app->hub, room_id, partner), "last_seq", (json_int_t)room.last_seq,
        "expires", (json_int_t)room.expires_ms, "flow", flow ? flow : json_null());
    thou_research_add_room_study(app, room_id, state);
    if (app->workshops && !thou_workshops_room_info(app->workshops, room_id, state)) {
        json_decref(state); /* out of memory: thou_json_respond answers 503 */
        state = NULL;
    }
    thou_json_respond(res, 200, state);
    thou_room_record_release(&room);
}

/* ---- GET /api/rooms/{room}/events ----------------------------------------- */

void thou_rooms_stream(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    const char *room_id = req->params[0];
    struct thou_room_record room = {0};
    char role;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    int64_t after = 0;
    if (!open_as_participant(app, req, &room, &role, token_hash, res))
        return;
    if (req->last_event_id && !thou_text_parse_seq(req->last_event_id, &after)) {
        thou_response_error(res, 400, "bad_last_event_id",
                            "Last-Event-ID must be a decimal event number");
        goto out;
    }
    if (after > room.last_seq) {
        thou_response_error(res, 400, "bad_last_event_id",
                            "Last-Event-ID is ahead of this conversation's events");
        goto out;
    }
    res->status = 200;
    res->content_type = "text/event-stream; charset=utf-8";
    if (req->method == THOU_METHOD_HEAD)
        goto out; /* the head only: no stream, and no presence for the partner to see */
    enum thou_status why = THOU_OK;
    res->stream = thou_hub_subscribe_status(app->hub, room_id, role, after, &why);
    if (!res->stream && why == THOU_ENOMEM) {
        res->content_type = NULL;
        thou_response_status(res, THOU_ENOMEM);
        goto out;
    }
    if (!res->stream) {
        res->content_type = NULL;
        thou_response_error(res, 429, "too_many_streams",
                            "this participant already has as many event streams open as allowed; "
                            "close one first");
        res->retry_after_s = 1;
        goto out;
    }
    /* An erase that committed between the lookup above and the subscription
     * closed the room's streams before this one existed: close it too. */
    struct thou_room_record again = {0};
    if (thou_store_room_get(app->store, room_id, &again))
        thou_hub_close_room(app->hub, room_id);
    thou_room_record_release(&again);
    /* Likewise a seat that moved to another device in between (seats.c). */
    char still;
    if (thou_store_participant_role(app->store, room_id, token_hash, &still))
        thou_hub_close_role(app->hub, room_id, role);
out:
    thou_room_record_release(&room);
}

/* ---- DELETE /api/rooms/{room} ---------------------------------------------- */

void thou_rooms_erase(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    const char *room_id = req->params[0];
    struct thou_room_record room = {0};
    char role;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    if (!open_as_participant(app, req, &room, &role, token_hash, res))
        return;
    enum thou_status rc = thou_store_room_erase(app->store, room_id, now_ms());
    if (rc == THOU_EGONE || rc == THOU_ENOTFOUND) {
        room_missing(res, rc);
    } else if (rc) {
        thou_response_status(res, rc);
    } else {
        thou_hub_close_room(app->hub, room_id);
        res->status = 204;
    }
    thou_room_record_release(&room);
}

/* ---- POST /api/rooms/{room}/events ----------------------------------------- */

/* The shape of each event type a participant may post. */
enum field_kind {
    F_NONE = 0,
    F_CIPHERTEXT = 1 << 0,
    F_QUESTION = 1 << 1,
    F_KEY = 1 << 2,
    F_MAC = 1 << 3,
    F_COMMITMENT = 1 << 4
};

struct event_type {
    const char *name;
    unsigned fields;  /* required fields */
    bool flow;        /* decided by the flow rules */
    bool once;        /* each role may send it once */
    bool before_join; /* allowed while the partner has not joined */
};

static const struct event_type event_types[] = {
    {"key", F_KEY | F_MAC, false, true, true},
    /* A workshop room's key commitment (docs/crypto.md §5a): before the keys. */
    {"commit", F_COMMITMENT, false, true, true},
    {"confirm", F_MAC, false, true, false},
    {"note", F_CIPHERTEXT, false, false, false},
    {"answer", F_CIPHERTEXT | F_QUESTION, true, false, false},
    {"reflect", F_CIPHERTEXT | F_QUESTION, true, false, false},
    {"add", F_CIPHERTEXT | F_QUESTION, true, false, false},
    /* Control events are sealed too (docs/crypto.md §6): the server sees
     * their type, which drives the flow, but cannot invent one. */
    {"confirm_heard", F_CIPHERTEXT | F_QUESTION, true, false, false},
    {"pass", F_CIPHERTEXT | F_QUESTION, true, false, false},
    {"pause", F_CIPHERTEXT, true, false, false},
    {"resume", F_CIPHERTEXT, true, false, false},
    {"end", F_CIPHERTEXT, true, false, true},
    /* Stage votes name the next stage's first question; sealed like every step. */
    {"go_on", F_CIPHERTEXT | F_QUESTION, true, false, false},
    {"stay_here", F_CIPHERTEXT | F_QUESTION, true, false, false},
    /* A study's consent, its refusal and its withdrawal (docs/research.md):
     * sealed, so the partner can tell the server did not invent them. */
    {"consent", F_CIPHERTEXT, false, true, false},
    {"decline", F_CIPHERTEXT, false, true, false},
    {"withdraw", F_CIPHERTEXT, false, true, false},
};

static const struct event_type *find_event_type(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++)
        if (strlen(event_types[i].name) == len && memcmp(event_types[i].name, name, len) == 0)
            return &event_types[i];
    return NULL;
}

/* The members an event body may have; which ones depends on its type. */
enum event_member {
    M_TYPE,
    M_CIPHERTEXT,
    M_COUNTER,
    M_QUESTION,
    M_PUBLIC_KEY,
    M_MAC,
    M_COMMITMENT,
    N_EVENT_MEMBERS
};

static const char *const event_member_names[N_EVENT_MEMBERS] = {
    [M_TYPE] = "type",
    [M_CIPHERTEXT] = "ciphertext",
    [M_COUNTER] = "counter",
    [M_QUESTION] = "question",
    [M_PUBLIC_KEY] = "public_key",
    [M_MAC] = "mac",
    [M_COMMITMENT] = "commitment",
};

/* A posted body as the validator sees it, filled by either reader. */
struct event_body {
    struct body_field members[N_EVENT_MEMBERS];
    const char *other; /* the first member with another name, or NULL */
    size_t other_len;
    size_t other_position;
};

static enum event_member event_member_find(const char *key, size_t len)
{
    for (size_t i = 0; i < N_EVENT_MEMBERS; i++)
        if (strlen(event_member_names[i]) == len && memcmp(event_member_names[i], key, len) == 0)
            return (enum event_member)i;
    return N_EVENT_MEMBERS;
}

static void event_body_add(struct event_body *body, const char *key, size_t key_len,
                           const struct body_field *field)
{
    enum event_member member = event_member_find(key, key_len);
    if (member < N_EVENT_MEMBERS) {
        body->members[member] = *field;
    } else if (!body->other) {
        body->other = key;
        body->other_len = key_len;
        body->other_position = field->position;
    }
}

static void event_body_from_flat(struct event_body *body, const struct thou_jsonflat *flat)
{
    *body = (struct event_body){0};
    for (size_t i = 0; i < flat->n_members; i++) {
        const struct thou_jsonflat_member *m = &flat->members[i];
        bool is_string = m->kind == THOU_JSONFLAT_STRING;
        struct body_field field = {.present = true,
                                   .is_string = is_string,
                                   .is_integer = !is_string,
                                   .text = is_string ? m->text : NULL,
                                   .len = is_string ? m->text_len : 0,
                                   .integer = m->integer,
                                   .position = i};
        event_body_add(body, m->key, m->key_len, &field);
    }
}

static void event_body_from_json(struct event_body *body, const json_t *object)
{
    *body = (struct event_body){0};
    size_t position = 0;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)(uintptr_t)object, key, value)
    {
        struct body_field field = json_field(value, position++);
        event_body_add(body, key, strlen(key), &field);
    }
}

/* The members an event of this type may carry, one bit per enum event_member. */
static unsigned allowed_members(const struct event_type *type)
{
    unsigned allowed = 1u << M_TYPE;
    if (type->fields & F_CIPHERTEXT)
        allowed |= 1u << M_CIPHERTEXT | 1u << M_COUNTER;
    if (type->fields & F_QUESTION)
        allowed |= 1u << M_QUESTION;
    if (type->fields & F_KEY)
        allowed |= 1u << M_PUBLIC_KEY;
    if (type->fields & F_MAC)
        allowed |= 1u << M_MAC;
    if (type->fields & F_COMMITMENT)
        allowed |= 1u << M_COMMITMENT;
    return allowed;
}

/* The first member in body order that this type does not take; false when none. */
static bool find_unknown(const struct event_body *body, const struct event_type *type,
                         const char **name, size_t *len)
{
    unsigned allowed = allowed_members(type);
    size_t first = SIZE_MAX;
    if (body->other) {
        first = body->other_position;
        *name = body->other;
        *len = body->other_len;
    }
    for (size_t i = 0; i < N_EVENT_MEMBERS; i++) {
        const struct body_field *field = &body->members[i];
        if (field->present && !(allowed & 1u << i) && field->position < first) {
            first = field->position;
            *name = event_member_names[i];
            *len = strlen(event_member_names[i]);
        }
    }
    return first != SIZE_MAX;
}

/* Validate the body against its type; false with res filled when it does not fit. */
static bool validate_event(const struct thou_app *app, const struct event_body *body,
                           const struct event_type *type, struct thou_response *res)
{
    unsigned f = type->fields;
    const char *unknown;
    size_t unknown_len;
    if (find_unknown(body, type, &unknown, &unknown_len)) {
        /* A message of 200 bytes shows at most that much of the name. */
        invalid(res, "invalid_event", "unknown field '%.*s' for this event type",
                (int)(unknown_len < 200 ? unknown_len : 200), unknown);
        return false;
    }
    if ((f & F_CIPHERTEXT) && !check_b64(&body->members[M_CIPHERTEXT], "ciphertext", 1,
                                         app->config->max_ciphertext_bytes, "invalid_event", res))
        return false;
    if (f & F_CIPHERTEXT) {
        const struct body_field *counter = &body->members[M_COUNTER];
        if (!counter->is_integer || counter->integer < 1 || counter->integer > COUNTER_MAX) {
            invalid(res, "invalid_event", "'%s' must be an integer from 1 to 2^53-1", "counter");
            return false;
        }
    }
    if (f & F_QUESTION) {
        const struct body_field *question = &body->members[M_QUESTION];
        if (!question->is_string || question->len == 0 || question->len > QUESTION_MAX) {
            invalid(res, "invalid_event", "'%s' must be a question id", "question");
            return false;
        }
    }
    if ((f & F_KEY) && !check_b64(&body->members[M_PUBLIC_KEY], "public_key", KEY_BYTES, KEY_BYTES,
                                  "invalid_event", res))
        return false;
    if ((f & F_MAC) && !check_b64(&body->members[M_MAC], "mac", MAC_MIN_BYTES, MAC_MAX_BYTES,
                                  "invalid_event", res))
        return false;
    if ((f & F_COMMITMENT) && !check_b64(&body->members[M_COMMITMENT], "commitment", KEY_BYTES,
                                         KEY_BYTES, "invalid_event", res))
        return false;
    return true;
}

/* Everything one posted event needs inside the store's transaction. */
struct post_ctx {
    struct thou_app *app;
    const struct thou_qset *set;
    const struct event_type *type;
    char question[QUESTION_MAX + 1]; /* empty when the event names none */
    char role;
    int64_t time_ms;
    const char *refusal; /* stable code when the update refused */
    char *data[2];       /* event data owned here */
    char *flow_json;
};

/* The stored data of an event: {"type":…,"role":…,"time":…} and fields. */
static char *event_data(const char *type, char role, int64_t time_ms, const json_t *fields)
{
    json_t *object = json_pack("{s:s,s:s,s:I}", "type", type, "role", (char[]){role, '\0'}, "time",
                               (json_int_t)time_ms);
    json_object_update(object, (json_t *)(uintptr_t)fields);
    char *data = thou_json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(object);
    return data;
}

static bool is_type_member(const struct thou_jsonflat_member *member)
{
    return member->key_len == 4 && memcmp(member->key, "type", 4) == 0;
}

static char *append(char *out, const void *bytes, size_t len)
{
    memcpy(out, bytes, len);
    return out + len;
}

/*
 * What event_data makes of a validated body the flat reader read, written
 * directly: the same members in the same order. Its strings hold no escape,
 * no control and no non-ASCII byte, so jansson would write them back
 * verbatim between quotes; its one integer, the counter, is canonical
 * digits (1 to 2^53-1).
 */
static char *flat_event_data(const char *type, char role, int64_t time_ms,
                             const struct thou_jsonflat *flat)
{
    char head[96];
    int head_len = snprintf(head, sizeof(head), "{\"type\":\"%s\",\"role\":\"%c\",\"time\":%lld",
                            type, role, (long long)time_ms);
    size_t size = (size_t)head_len + 2; /* and "}" and NUL */
    for (size_t i = 0; i < flat->n_members; i++) {
        const struct thou_jsonflat_member *m = &flat->members[i];
        if (is_type_member(m))
            continue;
        /* ,"key": and the value, quoted when a string */
        size += m->key_len + 4 + m->text_len + (m->kind == THOU_JSONFLAT_STRING ? 2 : 0);
    }
    char *data = thou_malloc(size);
    if (!data)
        return NULL;
    char *out = append(data, head, (size_t)head_len);
    for (size_t i = 0; i < flat->n_members; i++) {
        const struct thou_jsonflat_member *m = &flat->members[i];
        if (is_type_member(m))
            continue;
        out = append(out, ",\"", 2);
        out = append(out, m->key, m->key_len);
        out = append(out, "\":", 2);
        if (m->kind == THOU_JSONFLAT_STRING)
            *out++ = '"';
        out = append(out, m->text, m->text_len);
        if (m->kind == THOU_JSONFLAT_STRING)
            *out++ = '"';
    }
    *out++ = '}';
    *out = '\0';
    return data;
}

/* A ciphertext entry of a reveal: what the partner needs to open it. */
static json_t *reveal_entry(const char *data)
{
    json_t *held = thou_json_parse(data, strlen(data), 0, NULL);
    json_t *entry = json_pack("{s:O,s:O}", "ciphertext", json_object_get(held, "ciphertext"),
                              "counter", json_object_get(held, "counter"));
    json_decref(held);
    return entry;
}

/* Both reveal-together answers of a question, released in one event. */
static enum thou_status add_reveal(struct post_ctx *post, struct thou_room_txn *txn,
                                   const char *question, struct thou_room_change *change)
{
    json_t *answers = json_object();
    if (!answers)
        return THOU_ENOMEM;
    char partner = post->role == 'A' ? 'B' : 'A';
    char *held = NULL;
    enum thou_status rc = thou_store_txn_find(txn, "answer", partner, question, &held);
    if (rc == THOU_OK) {
        char key[2] = {partner, '\0'};
        /* A reveal that lost an answer to a failed allocation must not be stored. */
        if (json_object_set_new(answers, key, reveal_entry(held)))
            rc = THOU_ENOMEM;
        free(held);
    } else if (rc == THOU_ENOTFOUND) {
        rc = THOU_OK;
    }
    if (rc == THOU_OK && strcmp(post->type->name, "answer") == 0) {
        char key[2] = {post->role, '\0'};
        if (json_object_set_new(answers, key, reveal_entry(post->data[0])))
            rc = THOU_ENOMEM;
    }
    if (rc) {
        json_decref(answers);
        return rc;
    }
    json_t *fields = json_pack("{s:s,s:o}", "question", question, "answers", answers);
    free(post->data[1]); /* a store may run the update again (a retried deadlock) */
    post->data[1] = fields ? event_data("reveal", post->role, post->time_ms, fields) : NULL;
    json_decref(fields);
    if (!post->data[1])
        return THOU_ENOMEM;
    change->events[1] = (struct thou_event_record){
        .type = "reveal", .sender = post->role, .data = post->data[1], .time_ms = post->time_ms};
    change->n_events = 2;
    return THOU_OK;
}

/* Apply a flow event to the stored flow state. */
static enum thou_status apply_flow(struct post_ctx *post, struct thou_room_txn *txn,
                                   const struct thou_room_record *room,
                                   struct thou_room_change *change)
{
    const struct thou_flow_plan *plan = thou_qset_plan(post->set);
    struct thou_flow_state state;
    json_error_t error;
    json_t *stored = room->flow_json
                         ? thou_json_parse(room->flow_json, strlen(room->flow_json), 0, &error)
                         : NULL;
    if (room->flow_json && !stored && thou_json_out_of_memory(&error))
        return THOU_ENOMEM;
    enum thou_status rc = stored ? thou_flow_state_from_json(plan, stored, &state) : THOU_EINVAL;
    json_decref(stored);
    if (rc == THOU_ENOMEM)
        return rc;
    if (rc)
        return THOU_EIO; /* the stored state is ours; failing to read it is corruption */

    const char *question = post->question[0] ? post->question : NULL;
    bool writing_privately = state.phase == THOU_FLOW_PHASE_REVEAL_WRITE;
    struct thou_flow_event event = {thou_flow_type_parse(post->type->name), post->role, question};
    struct thou_flow_result result;
    enum thou_flow_reason reason =
        thou_flow_apply(plan, post->app->config->max_reflect_rounds, &state, &event, &result);
    if (reason) {
        post->refusal = thou_flow_reason_code(reason);
        return reason == THOU_FLOW_EINVAL ? THOU_EINVAL : THOU_ECONFLICT;
    }
    /* Every answer written privately stays with its writer; the reveal
     * event carries both to both at once. */
    if (writing_privately && event.type == THOU_FLOW_ANSWER)
        change->events[0].visible_to = post->role;
    if (result.reveal) {
        rc = add_reveal(post, txn, question, change);
        if (rc)
            return rc;
    }
    json_t *json = thou_flow_state_to_json(plan, &state);
    free(post->flow_json); /* a store may run the update again (a retried deadlock) */
    post->flow_json = json ? thou_json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!post->flow_json) /* without it the store would keep the old flow beside the event */
        return THOU_ENOMEM;
    change->flow_json = post->flow_json;
    change->new_state = state.status == THOU_FLOW_ENDED ? THOU_ROOM_ENDED : THOU_ROOM_ACTIVE;
    return THOU_OK;
}

static enum thou_status post_update(void *ctx, struct thou_room_txn *txn,
                                    const struct thou_room_record *room,
                                    struct thou_room_change *change)
{
    struct post_ctx *post = ctx;
    if (room->state == THOU_ROOM_ENDED) {
        post->refusal = "room_ended";
        return THOU_ECONFLICT;
    }
    if (!room->b_joined && !post->type->before_join) {
        post->refusal = "waiting_for_partner";
        return THOU_ECONFLICT;
    }
    if (post->type->once) {
        enum thou_status found = thou_store_txn_find(txn, post->type->name, post->role, NULL, NULL);
        if (found == THOU_OK) {
            post->refusal = "already_sent";
            return THOU_ECONFLICT;
        }
        if (found != THOU_ENOTFOUND)
            return found;
    }
    change->events[0] = (struct thou_event_record){.type = post->type->name,
                                                   .sender = post->role,
                                                   .data = post->data[0],
                                                   .time_ms = post->time_ms};
    change->n_events = 1;
    change->new_state = room->state;
    return post->type->flow ? apply_flow(post, txn, room, change) : THOU_OK;
}

static void refuse(struct thou_response *res, enum thou_status rc, const char *code)
{
    static const struct {
        const char *code;
        const char *message;
    } messages[] = {
        {"room_ended", "this conversation has ended; nothing more can be added"},
        {"waiting_for_partner", "your partner has not joined yet"},
        {"already_sent", "this can be sent only once"},
        {"not_your_turn", "it is your partner's turn"},
        {"wrong_step", "this is not the current step of the conversation"},
        {"paused", "the conversation is paused"},
        {"held", "the next stage has not been opened yet"},
        {"already_paused", "the conversation is already paused"},
        {"not_paused", "the conversation is not paused"},
        {"stage_vote", "first both choose whether to go on to the next stage"},
        {"already_voted", "you have already chosen at this stage"},
        {"paused_by_partner", "your partner paused; only they can carry on (you can still end)"},
        {"paused_by_facilitator", "the facilitator paused everyone; they will carry on"},
        {"invalid", "the event is missing what this step needs"},
    };
    for (size_t i = 0; code && i < sizeof(messages) / sizeof(messages[0]); i++) {
        if (strcmp(messages[i].code, code) == 0) {
            unsigned status = strcmp(code, "invalid") == 0 ? 400 : 409;
            thou_response_error(res, status, strcmp(code, "invalid") == 0 ? "invalid_event" : code,
                                messages[i].message);
            return;
        }
    }
    if (rc == THOU_EGONE || rc == THOU_ENOTFOUND)
        room_missing(res, rc);
    else
        thou_response_status(res, rc);
}

/* A posted event on its way through the store's group commit. */
struct post_job {
    struct thou_deferred deferred; /* first: the adapter holds only this */
    struct post_ctx post;
    struct thou_room_change change;
    char room_id[THOU_ROOM_ID_LEN + 1];
    enum thou_status status;
};

static void post_job_free(struct thou_deferred *deferred)
{
    struct post_job *job = (struct post_job *)deferred;
    free(job->post.data[0]);
    free(job->post.data[1]);
    free(job->post.flow_json);
    free(job);
}

/* On the store's writer thread, after the commit. */
static void post_job_done(void *ctx, enum thou_status status)
{
    struct post_job *job = ctx;
    job->status = status;
    if (status == THOU_OK) {
        thou_metrics_event(job->post.app->metrics, job->post.type->name);
        struct thou_event_record *events = job->change.events;
        for (size_t i = 0; i < job->change.n_events; i++)
            events[i].seq = job->change.seqs[i];
        thou_hub_publish(job->post.app->hub, job->room_id, events, job->change.n_events);
    }
    thou_deferred_complete(&job->deferred);
}

/* Back on a request thread: answer only now that the event is durable. */
static void post_job_finish(struct thou_deferred *deferred, struct thou_response *res)
{
    struct post_job *job = (struct post_job *)deferred;
    if (job->status) {
        if (job->status == THOU_ELIMIT)
            thou_metrics_refusal(job->post.app->metrics, THOU_REFUSAL_ROOM_LIMIT);
        refuse(res, job->status, job->post.refusal);
        return;
    }
    /* Formatted by hand: every acknowledgement of every event goes through here. */
    char *body = thou_malloc(32);
    if (!body) {
        thou_response_status(res, THOU_ENOMEM);
        return;
    }
    int len = snprintf(body, 32, "{\"seq\":%lld}", (long long)job->change.seqs[0]);
    thou_response_set_body(res, 201, "application/json", body, (size_t)len);
}

/* The caller's session in the room of the path: from the cache when the
 * store confirmed it before, else from the store (then cached). Whether the
 * room still exists is left to the store's writer, which refuses events
 * for an erased room. */
static bool find_session(struct thou_app *app, const struct thou_request *req,
                         uint8_t token_hash[THOU_DIGEST_BYTES], struct thou_session *session,
                         struct thou_response *res)
{
    const char *room_id = req->params[0];
    if (thou_crypto_bearer_hash(req->authorization, token_hash)) {
        /* Fails, with the same 404, 410 or 401 any other request would get. */
        struct thou_room_record room = {0};
        char role;
        open_as_participant(app, req, &room, &role, token_hash, res);
        return false;
    }
    if (thou_sessions_get(app->sessions, token_hash, room_id, session) &&
        session->expires_ms > now_ms())
        return true;
    struct thou_room_record room = {0};
    unsigned long epoch = thou_sessions_epoch(app->sessions);
    if (!open_as_participant(app, req, &room, &session->role, token_hash, res))
        return false;
    snprintf(session->room_id, sizeof(session->room_id), "%s", room.id);
    snprintf(session->set_id, sizeof(session->set_id), "%s", room.set_id);
    session->set_version = room.set_version;
    session->expires_ms = room.expires_ms;
    thou_room_record_release(&room);
    thou_sessions_put_since(app->sessions, token_hash, session, epoch);
    return true;
}

/* The rate limiter's key for a participant: the start of its token hash, in hex. */
static void limiter_key(const uint8_t token_hash[THOU_DIGEST_BYTES],
                        char key[2 * LIMIT_KEY_BYTES + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < LIMIT_KEY_BYTES; i++) {
        key[2 * i] = hex[token_hash[i] >> 4];
        key[2 * i + 1] = hex[token_hash[i] & 0x0f];
    }
    key[2 * LIMIT_KEY_BYTES] = '\0';
}

/*
 * Read a posted event body and validate it against its type: false with res
 * filled (400, 413, 415) when it does not fit. *flat_body tells which reader
 * read it (*flat, or jansson into *body, which the caller frees).
 */
static bool read_event(const struct thou_app *app, const struct thou_request *req,
                       struct thou_response *res, bool try_flat, struct thou_jsonflat *flat,
                       bool *flat_body, json_t **body, struct event_body *event,
                       const struct event_type **type_out)
{
    if (!thou_json_check_body(req, res))
        return false;
    /*
     * Most events are flat objects of strings and one integer. Read through
     * jansson (parse, deep copy, re-escape on output) such a body cost about
     * 12 µs, 22% of the request threads' CPU under saturation, nearly all of
     * it in the 683-character ciphertext, handled one byte at a time. The
     * flat reader takes what it can read with certainty and leaves the rest
     * (and every malformed body, for its error message) to jansson.
     */
    *flat_body = try_flat && thou_jsonflat_parse(flat, req->body, req->body_len);
    if (*flat_body) {
        event_body_from_flat(event, flat);
    } else {
        *body = thou_json_body(req, res);
        if (!*body)
            return false;
        event_body_from_json(event, *body);
    }
    const struct body_field *type = &event->members[M_TYPE];
    if (!type->is_string) {
        invalid(res, "invalid_event", "missing field '%s'", "type");
        return false;
    }
    *type_out = find_event_type(type->text, type->len);
    if (!*type_out) {
        thou_response_error(res, 400, "unknown_type", "unknown event type");
        return false;
    }
    return validate_event(app, event, *type_out, res);
}

const char *thou_event_check(const struct thou_app *app, const struct thou_request *req,
                             struct thou_response *res, bool flat_reader, bool *flat_read)
{
    struct thou_jsonflat flat;
    json_t *body = NULL;
    struct event_body event;
    const struct event_type *type = NULL;
    bool flat_body = false;
    bool ok = read_event(app, req, res, flat_reader, &flat, &flat_body, &body, &event, &type);
    json_decref(body);
    if (flat_read)
        *flat_read = flat_body;
    return ok ? type->name : NULL;
}

void thou_rooms_post_event(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    const char *room_id = req->params[0];
    struct post_ctx post = {.app = app, .time_ms = now_ms()};
    json_t *body = NULL;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    struct thou_session session;
    struct thou_jsonflat flat;
    struct event_body event;

    if (!find_session(app, req, token_hash, &session, res) || !disk_allows_writes(app, res))
        return;
    post.role = session.role;
    /* Rate limits key on the participant, not the address (DESIGN §7). */
    char key[2 * LIMIT_KEY_BYTES + 1];
    limiter_key(token_hash, key);
    unsigned retry_after = 0;
    if (!thou_limiter_take(app->event_limiter, key, post.time_ms, &retry_after)) {
        res->retry_after_s = retry_after;
        thou_response_error(res, 429, "rate_limited", "too many events; slow down");
        goto out;
    }
    bool flat_body = false;
    if (!read_event(app, req, res, true, &flat, &flat_body, &body, &event, &post.type))
        goto out;
    if (thou_research_choice_type(post.type->name) &&
        !thou_research_room_has_study(app, room_id, res))
        goto out;
    const struct body_field *question = &event.members[M_QUESTION];
    if (question->is_string) {
        memcpy(post.question, question->text, question->len);
        post.question[question->len] = '\0';
    }
    /* The set the room was made with; a changed file (another version) cannot
     * drive this room's flow. */
    const struct thou_qset *set = thou_qset_registry_find(app->qsets, session.set_id);
    post.set = set && (int)set->version == session.set_version ? set : NULL;
    if (!post.set && post.type->flow) {
        thou_response_error(res, 409, "set_changed",
                            "the question set of this conversation is no longer available");
        goto out;
    }

    /* Serialized here, not in the transaction: the single writer thread is
     * what every acknowledgement waits on. */
    if (flat_body) {
        post.data[0] = flat_event_data(post.type->name, post.role, post.time_ms, &flat);
    } else {
        json_object_del(body, "type"); /* the stored data leads with its own */
        post.data[0] = event_data(post.type->name, post.role, post.time_ms, body);
    }

    /* The answer waits for the commit, which the writer shares with every
     * event posted meanwhile: one fsync for many acknowledgements. */
    if (!post.data[0]) { /* only allocation can fail in making it */
        thou_response_status(res, THOU_ENOMEM);
        goto out;
    }
    struct post_job *job = thou_calloc(1, sizeof(*job));
    if (!job) {
        free(post.data[0]);
        thou_response_status(res, THOU_ENOMEM);
        goto out;
    }
    thou_deferred_init(&job->deferred, post_job_finish, post_job_free);
    job->post = post;
    snprintf(job->room_id, sizeof(job->room_id), "%s", room_id);
    res->deferred = &job->deferred;
    thou_store_room_update_async(app->store, job->room_id, post_update, &job->post, &job->change,
                                 post_job_done, job);
out:
    json_decref(body);
}
