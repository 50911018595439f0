#pragma once

#include <stddef.h>

#include "thou/config.h"
#include "thou/metrics.h"
#include "thou/router.h"
#include "thou/status.h"

/*
 * The HTTP/1.1 server: sockets on one side, the plain request/response
 * structs of http.h on the other. One epoll loop per thread, no thread per
 * connection; long-lived streams are suspended while idle (see server.c).
 */

struct thou_server;

/**
 * Bind the listen socket and start serving router. The router and metrics
 * must outlive the server. On failure errbuf says why ("cannot listen on
 * 127.0.0.1:8080: Address already in use").
 */
enum thou_status thou_server_start(const struct thou_config *config, struct thou_router *router,
                                   struct thou_metrics *metrics, struct thou_server **out,
                                   char *errbuf, size_t errlen);

/** The port actually bound (useful with port 0). */
unsigned thou_server_port(const struct thou_server *server);

/** Stop accepting new connections; requests in flight go on. */
void thou_server_quiesce(struct thou_server *server);

/**
 * Wait up to timeout_ms for requests in flight (streams excluded) to finish,
 * then stop the server and free it. Streams must have been ended before.
 * NULL is a no-op.
 */
void thou_server_stop(struct thou_server *server, unsigned timeout_ms);

/**
 * Suspend the connection of a stream from inside its read(); the stream's
 * producer later calls thou_server_resume() from any thread.
 */
void thou_server_suspend(void *conn);

/** Resume a connection suspended with thou_server_suspend(). */
void thou_server_resume(void *conn);

/**
 * From now on, the wake-ups that this thread's resumes and deferred
 * completions would send to the server's loops are held back until
 * thou_server_flush_wakes(): a thread completing many requests at once (the
 * store's writer after a commit) then wakes each loop once, not once per
 * request.
 */
void thou_server_hold_wakes(void *unused);

/** Send the wake-ups held back since thou_server_hold_wakes(). */
void thou_server_flush_wakes(void *unused);
