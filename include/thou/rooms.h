#pragma once

#include "thou/http.h"

/*
 * Handlers of the conversation relay; ctx is the struct thou_app. The HTTP
 * surface they implement is described in docs/api.md.
 */

/** POST /api/rooms: create a room; 201 {"room","token","role":"A"}. */
void thou_rooms_create(void *ctx, struct thou_request *req, struct thou_response *res);

/** POST /api/rooms/{room}/join: the second person; 200 {"room","token","role":"B"}. */
void thou_rooms_join(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /api/rooms/{room}: what a client needs to render after a reload. */
void thou_rooms_get(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /api/rooms/{room}/events: the event stream (SSE). */
void thou_rooms_stream(void *ctx, struct thou_request *req, struct thou_response *res);

/** POST /api/rooms/{room}/events: store an event; 201 {"seq"} after commit. */
void thou_rooms_post_event(void *ctx, struct thou_request *req, struct thou_response *res);

/** DELETE /api/rooms/{room}: erase the room and everything of it; 204. */
void thou_rooms_erase(void *ctx, struct thou_request *req, struct thou_response *res);

struct thou_app;
struct thou_room_record;

/**
 * For handlers of other modules: load the room of the path and check the
 * bearer token; false with res filled when either fails. The caller
 * releases *room on success.
 */
bool thou_rooms_open_participant(struct thou_app *app, const struct thou_request *req,
                                 struct thou_room_record *room, char *role,
                                 struct thou_response *res);
