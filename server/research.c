#include "thou/research.h"
#include "thou/app.h"
#include "thou/crypto.h"
#include "thou/json.h"
#include "thou/log.h"
#include "thou/rooms.h"
#include "thou/studies.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STEP_MAX 64
/* A copy is a padded step in a box (nonce and tag: 40 bytes, sealed: 48) of
 * at least one 256-byte block, at most a posted ciphertext's size. */
#define MIN_COPY_BYTES (40 + 256)
#define MAX_LEAVE_OUT  4096

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool thou_research_assign(struct thou_app *app, const char *study_name,
                          struct thou_study_record *study, char condition[THOU_SET_ID_MAX + 1],
                          struct thou_response *res)
{
    size_t index = 0;
    condition[0] = '\0';
    enum thou_status rc = thou_studies_name_valid(study_name)
                              ? thou_store_study_assign(app->store, study_name, study, &index)
                              : THOU_ENOTFOUND;
    if (rc == THOU_ENOTFOUND) {
        thou_response_error(res, 404, "no_such_study", "there is no study with this name");
        return false;
    }
    if (rc) {
        thou_response_status(res, rc);
        return false;
    }
    if (study->n_conditions > 0)
        snprintf(condition, THOU_SET_ID_MAX + 1, "%s", study->conditions[index]);
    return true;
}

json_t *thou_research_study_json(const struct thou_study_record *study)
{
    char b64[THOU_STUDY_KEY_B64_LEN + 1];
    sodium_bin2base64(b64, sizeof(b64), study->public_key, sizeof(study->public_key),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(study->public_key, fingerprint);
    return json_pack("{s:s,s:s,s:s,s:b}", "name", study->name, "public_key", b64, "fingerprint",
                     fingerprint, "closeness", study->closeness);
}

void thou_research_add_room_study(struct thou_app *app, const char *room_id, json_t *state)
{
    char name[THOU_SET_ID_MAX + 1], condition[THOU_SET_ID_MAX + 1];
    struct thou_study_record study;
    if (thou_store_room_study(app->store, room_id, name, condition) || !name[0] ||
        thou_store_study_get(app->store, name, &study))
        return;
    json_object_set_new(state, "study", thou_research_study_json(&study));
}

bool thou_research_choice_type(const char *type)
{
    return strcmp(type, "consent") == 0 || strcmp(type, "decline") == 0 ||
           strcmp(type, "withdraw") == 0;
}

bool thou_research_room_has_study(struct thou_app *app, const char *room_id,
                                  struct thou_response *res)
{
    char name[THOU_SET_ID_MAX + 1], condition[THOU_SET_ID_MAX + 1];
    enum thou_status rc = thou_store_room_study(app->store, room_id, name, condition);
    if (rc) {
        thou_response_status(res, rc);
        return false;
    }
    if (!name[0]) {
        thou_response_error(res, 409, "no_study", "this conversation is not part of a study");
        return false;
    }
    return true;
}

static void refuse(struct thou_response *res, enum thou_status rc)
{
    if (rc == THOU_EFORBIDDEN)
        thou_response_error(res, 409, "no_consent",
                            "research copies are kept only while both partners consent to a "
                            "study; nothing was stored");
    else if (rc == THOU_ECONFLICT)
        thou_response_error(res, 409, "already_released",
                            "your research copies were released; that is final");
    else if (rc == THOU_ENOTFOUND || rc == THOU_EGONE)
        thou_response_error(res, 410, "room_gone", "this conversation was erased or has expired");
    else
        thou_response_status(res, rc);
}

static bool valid_step(const char *step)
{
    size_t len = step ? strlen(step) : 0;
    if (len == 0 || len > STEP_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = step[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

void thou_research_add(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_room_record room = {0};
    char role;
    if (!thou_rooms_open_participant(app, req, &room, &role, res))
        return;
    thou_room_record_release(&room);
    static const char *const allowed[] = {"step", "sealed", NULL};
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    const char *unknown = thou_json_unknown_key(body, allowed);
    const char *step = thou_json_string(body, "step");
    const char *sealed = thou_json_string(body, "sealed");
    size_t sealed_len = sealed ? strlen(sealed) : 0, decoded = 0;
    if (unknown) {
        thou_response_error(res, 400, "invalid_request", "unknown field");
    } else if (!valid_step(step)) {
        thou_response_error(res, 400, "invalid_request",
                            "'step' must be 1 to 64 of a-z, 0-9, '-' and '_'");
    } else if (!sealed || thou_crypto_b64_check(sealed, sealed_len, &decoded) != THOU_OK ||
               decoded < MIN_COPY_BYTES || decoded > app->config->max_ciphertext_bytes) {
        thou_response_error(res, 400, "invalid_request",
                            "'sealed' must be a sealed box of a padded step, in base64url");
    } else {
        /* The hour only: the copies keep no exact clock time. */
        enum thou_status rc = thou_store_research_add(app->store, req->params[0], role, step,
                                                      sealed, now_ms() / 3600000);
        if (rc)
            refuse(res, rc);
        else
            thou_json_respond(res, 201, json_pack("{s:s}", "step", step));
    }
    json_decref(body);
}

void thou_research_delete(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_room_record room = {0};
    char role;
    if (!thou_rooms_open_participant(app, req, &room, &role, res))
        return;
    thou_room_record_release(&room);
    size_t deleted = 0;
    enum thou_status rc = thou_store_research_delete(app->store, req->params[0], &deleted);
    if (rc) {
        refuse(res, rc);
        return;
    }
    thou_json_respond(res, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
}

void thou_research_release(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_room_record room = {0};
    char role;
    if (!thou_rooms_open_participant(app, req, &room, &role, res))
        return;
    thou_room_record_release(&room);
    static const char *const allowed[] = {"leave_out", NULL};
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    const json_t *list = json_object_get(body, "leave_out");
    const char **steps = NULL;
    size_t n = 0;
    if (thou_json_unknown_key(body, allowed) || !json_is_array(list) ||
        json_array_size(list) > MAX_LEAVE_OUT) {
        thou_response_error(res, 400, "invalid_request",
                            "'leave_out' must be a list of the steps to leave out");
        goto out;
    }
    steps = calloc(json_array_size(list) + 1, sizeof(*steps));
    size_t i;
    const json_t *value;
    json_array_foreach(list, i, value)
    {
        const char *step = json_string_value(value);
        if (!valid_step(step)) {
            thou_response_error(res, 400, "invalid_request", "'leave_out' holds a bad step id");
            goto out;
        }
        steps[n++] = step;
    }
    size_t released = 0, left_out = 0;
    enum thou_status rc = thou_store_research_release(app->store, req->params[0], role, steps, n,
                                                      &released, &left_out);
    if (rc) {
        refuse(res, rc);
        goto out;
    }
    thou_json_respond(
        res, 200,
        json_pack("{s:I,s:I}", "released", (json_int_t)released, "left_out", (json_int_t)left_out));
out:
    free(steps);
    json_decref(body);
}
