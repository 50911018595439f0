#include "thou/metrics.h"
#include "thou/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Histogram bucket upper bounds in seconds. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,  0.1,    0.25,  1.0};
#define N_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

struct request_counter {
    const char *route;
    enum thou_method method;
    unsigned status;
    unsigned long long count;
};

struct route_latency {
    const char *route;
    unsigned long long buckets[N_BOUNDS]; /* non-cumulative; summed when rendered */
    unsigned long long count;
    double sum;
};

struct event_counter {
    const char *type;
    unsigned long long count;
};

struct thou_metrics {
    pthread_mutex_t lock;
    struct request_counter *requests;
    size_t n_requests;
    struct route_latency *latencies;
    size_t n_latencies;
    struct event_counter *events;
    size_t n_events;
    atomic_long connections;
    atomic_long streams;
    atomic_ullong refusals[THOU_REFUSAL_COUNT];
};

static const char *const refusal_names[THOU_REFUSAL_COUNT] = {
    [THOU_REFUSAL_CONNECTION_LIMIT] = "connection_limit",
    [THOU_REFUSAL_ADDRESS_LIMIT] = "address_limit",
    [THOU_REFUSAL_HEAD_DEADLINE] = "head_deadline",
    [THOU_REFUSAL_BODY_DEADLINE] = "body_deadline",
    [THOU_REFUSAL_DISK_LOW] = "disk_low",
    [THOU_REFUSAL_ROOM_LIMIT] = "room_limit",
    [THOU_REFUSAL_OUT_OF_MEMORY] = "out_of_memory",
};

struct thou_metrics *thou_metrics_new(void)
{
    struct thou_metrics *metrics = thou_xcalloc(1, sizeof(*metrics));
    pthread_mutex_init(&metrics->lock, NULL);
    return metrics;
}

void thou_metrics_free(struct thou_metrics *metrics)
{
    if (!metrics)
        return;
    pthread_mutex_destroy(&metrics->lock);
    free(metrics->requests);
    free(metrics->latencies);
    free(metrics->events);
    free(metrics);
}

/* Routes are router-owned strings compared by content, because the same
 * pattern may be counted from different match structs. */
static bool same_route(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static struct request_counter *find_request(struct thou_metrics *m, const char *route,
                                            enum thou_method method, unsigned status)
{
    for (size_t i = 0; i < m->n_requests; i++) {
        struct request_counter *c = &m->requests[i];
        if (c->method == method && c->status == status && same_route(c->route, route))
            return c;
    }
    m->requests = thou_xrealloc(m->requests, (m->n_requests + 1) * sizeof(*m->requests));
    struct request_counter *c = &m->requests[m->n_requests++];
    *c = (struct request_counter){route, method, status, 0};
    return c;
}

static struct route_latency *find_latency(struct thou_metrics *m, const char *route)
{
    for (size_t i = 0; i < m->n_latencies; i++)
        if (same_route(m->latencies[i].route, route))
            return &m->latencies[i];
    m->latencies = thou_xrealloc(m->latencies, (m->n_latencies + 1) * sizeof(*m->latencies));
    struct route_latency *l = &m->latencies[m->n_latencies++];
    memset(l, 0, sizeof(*l));
    l->route = route;
    return l;
}

void thou_metrics_request(struct thou_metrics *metrics, const char *route, enum thou_method method,
                          unsigned status, double seconds)
{
    pthread_mutex_lock(&metrics->lock);
    find_request(metrics, route, method, status)->count++;
    struct route_latency *l = find_latency(metrics, route);
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (seconds <= latency_bounds[i]) {
            l->buckets[i]++;
            break;
        }
    }
    l->count++;
    l->sum += seconds;
    pthread_mutex_unlock(&metrics->lock);
}

void thou_metrics_connections(struct thou_metrics *metrics, int delta)
{
    atomic_fetch_add(&metrics->connections, delta);
}

void thou_metrics_streams(struct thou_metrics *metrics, int delta)
{
    atomic_fetch_add(&metrics->streams, delta);
}

void thou_metrics_refusal(struct thou_metrics *metrics, enum thou_refusal reason)
{
    atomic_fetch_add(&metrics->refusals[reason], 1);
}

long thou_metrics_open_streams(const struct thou_metrics *metrics)
{
    return atomic_load(&((struct thou_metrics *)(uintptr_t)metrics)->streams);
}

void thou_metrics_event(struct thou_metrics *metrics, const char *type)
{
    pthread_mutex_lock(&metrics->lock);
    size_t i = 0;
    while (i < metrics->n_events && strcmp(metrics->events[i].type, type) != 0)
        i++;
    if (i == metrics->n_events) {
        metrics->events =
            thou_xrealloc(metrics->events, (metrics->n_events + 1) * sizeof(*metrics->events));
        metrics->events[metrics->n_events++] = (struct event_counter){type, 0};
    }
    metrics->events[i].count++;
    pthread_mutex_unlock(&metrics->lock);
}

void thou_metrics_render(struct thou_metrics *metrics, struct thou_buf *out)
{
    pthread_mutex_lock(&metrics->lock);
    thou_buf_puts(out, "# HELP thou_http_requests_total HTTP requests by route, method and "
                       "status.\n# TYPE thou_http_requests_total counter\n");
    for (size_t i = 0; i < metrics->n_requests; i++) {
        const struct request_counter *c = &metrics->requests[i];
        thou_buf_printf(
            out, "thou_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n",
            c->route ? c->route : "unmatched", thou_method_name(c->method), c->status, c->count);
    }
    thou_buf_puts(out,
                  "# HELP thou_http_request_duration_seconds Time from the request's first "
                  "byte to its response.\n# TYPE thou_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < metrics->n_latencies; i++) {
        const struct route_latency *l = &metrics->latencies[i];
        const char *route = l->route ? l->route : "unmatched";
        unsigned long long cumulative = 0;
        for (size_t b = 0; b < N_BOUNDS; b++) {
            cumulative += l->buckets[b];
            thou_buf_printf(
                out, "thou_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                route, latency_bounds[b], cumulative);
        }
        thou_buf_printf(out,
                        "thou_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                        "thou_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                        "thou_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                        route, l->count, route, l->sum, route, l->count);
    }
    thou_buf_puts(out, "# HELP thou_events_total Events stored, by type.\n"
                       "# TYPE thou_events_total counter\n");
    for (size_t i = 0; i < metrics->n_events; i++)
        thou_buf_printf(out, "thou_events_total{type=\"%s\"} %llu\n", metrics->events[i].type,
                        metrics->events[i].count);
    pthread_mutex_unlock(&metrics->lock);
    thou_buf_printf(out,
                    "# HELP thou_open_connections Open HTTP connections.\n"
                    "# TYPE thou_open_connections gauge\nthou_open_connections %ld\n"
                    "# HELP thou_open_streams Open event streams.\n"
                    "# TYPE thou_open_streams gauge\nthou_open_streams %ld\n",
                    atomic_load(&metrics->connections), atomic_load(&metrics->streams));
    thou_buf_puts(out, "# HELP thou_refusals_total Connections and requests refused or cut off, "
                       "by reason.\n# TYPE thou_refusals_total counter\n");
    for (size_t i = 0; i < THOU_REFUSAL_COUNT; i++)
        thou_buf_printf(out, "thou_refusals_total{reason=\"%s\"} %llu\n", refusal_names[i],
                        atomic_load(&metrics->refusals[i]));
}
