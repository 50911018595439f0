#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "thou/http.h"
#include "thou/store.h"

/*
 * Research copies on the server (docs/research.md, docs/api.md): a room's
 * study at creation, and the endpoints that store sealed copies, delete
 * them on withdrawal and release them after review. The server cannot open
 * a copy; it only checks the consent events both partners posted.
 */

struct thou_app;

/**
 * Attach a new room to a study: count the pair and pick its condition
 * (condition receives its set id, or "" when the study has none and the
 * room keeps the set asked for). False with res filled for an unknown study.
 * The one entry point for every kind of room (link mode, workshops).
 */
bool thou_research_assign(struct thou_app *app, const char *study_name,
                          struct thou_study_record *study, char condition[THOU_SET_ID_MAX + 1],
                          struct thou_response *res);

/** {"name","public_key","fingerprint","closeness"}: what a browser shows and checks. */
json_t *thou_research_study_json(const struct thou_study_record *study);

/** Add "study" to a room's state object when the room has one. */
void thou_research_add_room_study(struct thou_app *app, const char *room_id, json_t *state);

/** True for the event types of a study choice: consent, decline, withdraw. */
bool thou_research_choice_type(const char *type);

/** False with res filled (409 no_study) when the room has no study. */
bool thou_research_room_has_study(struct thou_app *app, const char *room_id,
                                  struct thou_response *res);

/** POST /api/rooms/{room}/research: store one sealed copy; 201. */
void thou_research_add(void *ctx, struct thou_request *req, struct thou_response *res);

/** DELETE /api/rooms/{room}/research: delete the room's copies (withdrawal); 200. */
void thou_research_delete(void *ctx, struct thou_request *req, struct thou_response *res);

/** POST /api/rooms/{room}/research/release: release my copies, leaving some out; 200. */
void thou_research_release(void *ctx, struct thou_request *req, struct thou_response *res);
