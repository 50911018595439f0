#pragma once

#include "thou/config.h"
#include "thou/metrics.h"
#include "thou/router.h"

/*
 * The context every handler receives: the process's long-lived parts,
 * made by `thou serve` at start-up and owned there. Modules register their
 * routes through thou_app_routes(); handlers reach what they need here
 * instead of through globals.
 */

struct thou_store;
struct thou_static;
struct thou_qset_registry;
struct thou_hub;
struct thou_limiter;
struct thou_sessions;
struct thou_disk;
struct thou_workshops;

struct thou_app {
    const struct thou_config *config;
    struct thou_store *store;
    struct thou_metrics *metrics;
    struct thou_static *statics;
    struct thou_qset_registry *qsets;
    struct thou_hub *hub;
    struct thou_limiter *join_limiter;         /* wrong join secrets, keyed by room */
    struct thou_limiter *join_address_limiter; /* wrong join secrets, keyed by address */
    struct thou_limiter *event_limiter;        /* posted events, keyed by participant */
    struct thou_limiter *create_limiter;       /* new rooms, keyed by client address */
    struct thou_disk *disk;                    /* free space of data_dir, against its floor */
    struct thou_sessions *sessions;            /* who a token is, once the store said so */
    struct thou_workshops *workshops;          /* facilitated workshops' live state */
};

/** Register every route of the product on router. Aborts on a malformed pattern. */
void thou_app_routes(struct thou_app *app, struct thou_router *router);

/* Handlers, grouped by the module that implements them. */

/** GET /healthz: 200 {"status":"ok"} when the store answers, else 503. (ops.c) */
void thou_ops_healthz(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /metrics: Prometheus text exposition. (ops.c) */
void thou_ops_metrics(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET / and every other GET path: files of the static directory. (pages.c) */
void thou_pages_static(void *ctx, struct thou_request *req, struct thou_response *res);

/** GET /r/{room}: the conversation page, room.html of the static directory. (pages.c) */
void thou_pages_room(void *ctx, struct thou_request *req, struct thou_response *res);
