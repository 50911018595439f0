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

/** Current open event streams. */
long thou_metrics_open_streams(const struct thou_metrics *metrics);

/** Append the text exposition to out. */
void thou_metrics_render(struct thou_metrics *metrics, struct thou_buf *out);
