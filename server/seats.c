/*
 * A seat follows its owner to another device (docs/api.md, docs/crypto.md
 * §9c): POST /api/rooms/{room}/seat with the seat's bearer token replaces
 * that token's hash with a new one the new device drew. The old token stops
 * working at once: its cached session is forgotten and its open streams end,
 * so the old device learns from the 401 of its next request or reconnect.
 * The room still has exactly two seats; nothing about them but the token
 * hash changes.
 */
#include "thou/app.h"
#include "thou/crypto.h"
#include "thou/hub.h"
#include "thou/json.h"
#include "thou/seats.h"
#include "thou/sessions.h"
#include "thou/store.h"

#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refuse_missing(struct thou_response *res, enum thou_status rc)
{
    if (rc == THOU_EGONE)
        thou_response_error(res, 410, "room_gone", "this conversation was erased or has expired");
    else if (rc == THOU_ENOTFOUND)
        thou_response_error(res, 404, "no_such_room", "there is no conversation with this id");
    else
        thou_response_status(res, rc);
}

void thou_seats_move(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    static const char *const allowed[] = {"token_hash", NULL};
    const char *room_id = req->params[0];
    uint8_t old_hash[THOU_DIGEST_BYTES], new_hash[THOU_DIGEST_BYTES];
    struct thou_room_record room = {0};
    json_t *body = NULL;

    /* The room first, so an erased conversation says so rather than "bad token". */
    enum thou_status rc = thou_store_room_get(app->store, room_id, &room);
    if (rc == THOU_OK && room.expires_ms <= now_ms())
        rc = THOU_EGONE;
    thou_room_record_release(&room);
    if (rc) {
        refuse_missing(res, rc);
        return;
    }
    if (thou_crypto_bearer_hash(req->authorization, old_hash)) {
        thou_response_error(res, 401, "bad_token",
                            "missing or invalid token for this conversation");
        return;
    }
    body = thou_json_body(req, res);
    if (!body)
        return;
    const char *unknown = thou_json_unknown_key(body, allowed);
    const char *hash_text = thou_json_string(body, "token_hash");
    size_t n = 0;
    if (unknown) {
        thou_response_error(res, 400, "invalid_request", "unknown field in the request");
        goto out;
    }
    if (!hash_text ||
        thou_crypto_b64_decode(hash_text, strlen(hash_text), new_hash, sizeof(new_hash), &n) ||
        n != sizeof(new_hash)) {
        thou_response_error(res, 400, "invalid_request",
                            "'token_hash' must be 32 bytes of unpadded base64url");
        goto out;
    }
    if (memcmp(old_hash, new_hash, sizeof(old_hash)) == 0) {
        thou_response_error(res, 400, "invalid_request",
                            "'token_hash' must be a new token's, not the one in use");
        goto out;
    }
    char role = 0;
    bool again = false;
    rc = thou_store_seat_move(app->store, room_id, old_hash, new_hash, &role, &again);
    if (rc == THOU_EAUTH) {
        thou_response_error(res, 401, "bad_token",
                            "this token holds no seat here (any more): a link to continue on "
                            "another device works once");
        goto out;
    }
    if (rc == THOU_EEXIST) {
        thou_response_error(res, 409, "token_in_use", "choose another token");
        goto out;
    }
    if (rc) {
        refuse_missing(res, rc);
        goto out;
    }
    /* From here on the old token is nobody's: not in the cache, not on a stream. */
    thou_sessions_forget(app->sessions, old_hash);
    if (!again)
        thou_hub_close_role(app->hub, room_id, role);
    thou_json_respond(res, 200, json_pack("{s:s,s:s}", "room", room_id, "role", (char[]){role, 0}));
out:
    json_decref(body);
}
