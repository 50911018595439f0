#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "thou/http.h"

/*
 * Facilitated workshops (docs/api.md, Workshops): facilitator login and
 * CSRF, workshops and their dashboard, joining and pairing by arrival, the
 * waiting stream, and the facilitator's actions reaching every room as
 * stored `facilitator` events. Handlers take the struct thou_app as ctx.
 *
 * The module keeps, per workshop in use, who is waiting with a stream open
 * (presence for the pairing rules) and the open dashboard and waiting
 * streams; a thread of its own refreshes them four times a second.
 */

struct thou_app;
struct thou_workshops;

/** The module's state for app; starts its thread. Aborts on out-of-memory. */
struct thou_workshops *thou_workshops_new(struct thou_app *app);

/** End every stream of the module (for shutdown, before the server stops). */
void thou_workshops_shutdown(struct thou_workshops *ws);

/** Stop the thread and free; NULL is a no-op. Streams must have ended. */
void thou_workshops_free(struct thou_workshops *ws);

/** Add "mode" and, for a workshop's room, "workshop" to a room's state (GET /api/rooms/{room});
 *  false when out of memory (state may then lack them: refuse the request). */
bool thou_workshops_room_info(struct thou_workshops *ws, const char *room_id, json_t *state);

void thou_workshops_login(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_session(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_logout(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_create(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_list(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /api/studies: the studies a workshop may carry, names and fingerprints only. */
void thou_workshops_studies(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_get(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_events(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_qr(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_action(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_join(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_wait(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_rejoin(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /facilitate, /facilitate/projector and /w/{code}: their pages. */
void thou_workshops_page_facilitate(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_page_projector(void *ctx, struct thou_request *req, struct thou_response *res);
void thou_workshops_page_join(void *ctx, struct thou_request *req, struct thou_response *res);
