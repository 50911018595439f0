#pragma once

#include "thou/buf.h"
#include "thou/http.h"

/*
 * Process metrics in the Prometheus text format: requests by route, method
 * and status, a latency histogram by route, open connections and open event
 * streams. Thread-safe. Routes are the router's patterns, never raw paths,
 * so ids and tokens cannot leak into labels.
 */

struct thou_metrics;

/** Why a connection or request was refused or cut off; each has its own counter. */
enum thou_refusal {
    THOU_REFUSAL_CONNECTION_LIMIT, /* max_connections reached */
    THOU_REFUSAL_ADDRESS_LIMIT,    /* max_connections_per_ip reached */
    THOU_REFUSAL_HEAD_DEADLINE,    /* the request head took longer than allowed */
    THOU_REFUSAL_BODY_DEADLINE,    /* the request body took longer than allowed */
    THOU_REFUSAL_DISK_LOW,         /* a write while free disk space is below the floor */
    THOU_REFUSAL_ROOM_LIMIT,       /* an event past a room's size limit */
    THOU_REFUSAL_OUT_OF_MEMORY,    /* a connection or request the HTTP layer could not allocate */
    THOU_REFUSAL_COUNT
};

/** New zeroed metrics; aborts on out-of-memory. */
struct thou_metrics *thou_metrics_new(void);

/** Free; NULL is a no-op. */
void thou_metrics_free(struct thou_metrics *metrics);

/** Count one finished request. route may be NULL for unrouted requests. */
void thou_metrics_request(struct thou_metrics *metrics, const char *route, enum thou_method method,
                          unsigned status, double seconds);

/** Add delta (+1/-1) to the open connections gauge. */
void thou_metrics_connections(struct thou_metrics *metrics, int delta);

/** Add delta (+1/-1) to the open event streams gauge. */
void thou_metrics_streams(struct thou_metrics *metrics, int delta);

/** Count an event stored (by type); type is a static string. */
void thou_metrics_event(struct thou_metrics *metrics, const char *type);

/** Count one refusal; lock-free, callable from any thread. */
void thou_metrics_refusal(struct thou_metrics *metrics, enum thou_refusal reason);

/** Current open event streams. */
long thou_metrics_open_streams(const struct thou_metrics *metrics);

/** Append the text exposition to out. */
void thou_metrics_render(struct thou_metrics *metrics, struct thou_buf *out);
