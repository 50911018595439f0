#include "thou/app.h"
#include "thou/log.h"
#include "thou/research.h"
#include "thou/rooms.h"
#include "thou/seats.h"
#include "thou/sets.h"
#include "thou/workshops.h"

#include <stdlib.h>

struct route_entry {
    unsigned methods;
    const char *pattern;
    thou_handler_fn handler;
};

/* The whole HTTP surface in one table (docs/api.md describes each). Order
 * matters: the static catch-all comes last. */
static const struct route_entry routes[] = {
    {THOU_METHOD_GET, "/healthz", thou_ops_healthz},
    {THOU_METHOD_GET, "/metrics", thou_ops_metrics},
    {THOU_METHOD_GET, "/api/sets", thou_sets_list},
    {THOU_METHOD_GET, "/api/sets/{set}", thou_sets_get},
    {THOU_METHOD_POST, "/api/rooms", thou_rooms_create},
    {THOU_METHOD_POST, "/api/rooms/{room}/join", thou_rooms_join},
    {THOU_METHOD_GET, "/api/rooms/{room}", thou_rooms_get},
    {THOU_METHOD_DELETE, "/api/rooms/{room}", thou_rooms_erase},
    {THOU_METHOD_GET, "/api/rooms/{room}/events", thou_rooms_stream},
    {THOU_METHOD_POST, "/api/rooms/{room}/events", thou_rooms_post_event},
    {THOU_METHOD_POST, "/api/rooms/{room}/research", thou_research_add},
    {THOU_METHOD_DELETE, "/api/rooms/{room}/research", thou_research_delete},
    {THOU_METHOD_POST, "/api/rooms/{room}/research/release", thou_research_release},
    {THOU_METHOD_POST, "/api/rooms/{room}/seat", thou_seats_move},
    {THOU_METHOD_GET, "/r/{room}", thou_pages_room},
    {THOU_METHOD_POST, "/api/facilitator/login", thou_workshops_login},
    {THOU_METHOD_GET, "/api/facilitator/session", thou_workshops_session},
    {THOU_METHOD_POST, "/api/facilitator/logout", thou_workshops_logout},
    {THOU_METHOD_POST, "/api/workshops/join", thou_workshops_join},
    {THOU_METHOD_GET, "/api/workshops/wait", thou_workshops_wait},
    {THOU_METHOD_POST, "/api/workshops/rejoin", thou_workshops_rejoin},
    {THOU_METHOD_POST, "/api/workshops", thou_workshops_create},
    {THOU_METHOD_GET, "/api/workshops", thou_workshops_list},
    {THOU_METHOD_GET, "/api/workshops/{id}", thou_workshops_get},
    {THOU_METHOD_GET, "/api/workshops/{id}/events", thou_workshops_events},
    {THOU_METHOD_GET, "/api/workshops/{id}/qr.svg", thou_workshops_qr},
    {THOU_METHOD_POST, "/api/workshops/{id}/actions", thou_workshops_action},
    {THOU_METHOD_GET, "/facilitate", thou_workshops_page_facilitate},
    {THOU_METHOD_GET, "/facilitate/projector", thou_workshops_page_projector},
    {THOU_METHOD_GET, "/w/{code}", thou_workshops_page_join},
    {THOU_METHOD_GET, "/", thou_pages_static},
    {THOU_METHOD_GET, "/*", thou_pages_static},
};

void thou_app_routes(struct thou_app *app, struct thou_router *router)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (thou_router_add(router, routes[i].methods, routes[i].pattern, routes[i].handler, app)) {
            thou_log_error("malformed route pattern '%s'", routes[i].pattern);
            abort();
        }
    }
}
