#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/http.h"
#include "thou/status.h"

/*
 * The hub wakes event streams (DESIGN §3). It holds no events: a stream
 * reads what it has not yet sent from the store, so the store stays the
 * truth and a woken stream can never skip or repeat a seq. Idle streams are
 * suspended connections: no thread, no polling. The hub also knows who is
 * present (has a stream open) and sends each side its partner's presence.
 */

struct thou_hub;
struct thou_store;
struct thou_metrics;

/**
 * New hub over store; aborts on out-of-memory. One participant may hold at
 * most max_streams_per_role streams open in a room at once.
 */
struct thou_hub *thou_hub_new(struct thou_store *store, struct thou_metrics *metrics,
                              unsigned max_streams_per_role);

/** Free; all streams must have ended (thou_hub_shutdown + server stop). NULL is a no-op. */
void thou_hub_free(struct thou_hub *hub);

/**
 * A new stream for role in room that first sends every event after
 * after_seq, then live ones. The response takes ownership of the stream.
 * NULL when role already holds max_streams_per_role streams in room.
 */
struct thou_stream *thou_hub_subscribe(struct thou_hub *hub, const char *room_id, char role,
                                       int64_t after_seq);

/**
 * thou_hub_subscribe, saying why not in *why (may be NULL): THOU_ELIMIT when
 * role holds max_streams_per_role streams already, THOU_ENOMEM when memory
 * is short (the request is refused, the process goes on).
 */
struct thou_stream *thou_hub_subscribe_status(struct thou_hub *hub, const char *room_id, char role,
                                              int64_t after_seq, enum thou_status *why);

struct thou_event_record;

/**
 * Events of room were committed, in seq order, with nothing else committed
 * to the room in between: streams that are up to date take the frames
 * straight from here; any other stream reads them from the store.
 */
void thou_hub_publish(struct thou_hub *hub, const char *room_id,
                      const struct thou_event_record *events, size_t n);

/** Wake the room's streams: events were committed. */
void thou_hub_notify(struct thou_hub *hub, const char *room_id);

/**
 * Wake every stream: events may have been committed elsewhere that no
 * notification announced (another instance's, while its notice was lost).
 */
void thou_hub_notify_all(struct thou_hub *hub);

/** End the room's streams after what they have queued (the room was erased). */
void thou_hub_close_room(struct thou_hub *hub, const char *room_id);

/**
 * From now on, presence counts streams on every instance sharing the store:
 * this hub publishes its own (thou_store_presence_publish) and asks the
 * store about rooms it holds no stream of. Call before any stream opens.
 */
void thou_hub_share_presence(struct thou_hub *hub);

/**
 * Another instance reports whether role has a stream open in room there:
 * this instance's streams of the room hear of a change. Unknown rooms are
 * ignored.
 */
void thou_hub_remote_presence(struct thou_hub *hub, const char *room_id, char role, bool present);

/**
 * Renew this instance's presence in the store and ask it again about the
 * others' (leases run out): call every few seconds (every 10 s on
 * PostgreSQL, from the store's catch-up).
 */
void thou_hub_recheck_presence(struct thou_hub *hub);

/** End role's streams in room after what they have queued (the seat moved to another token). */
void thou_hub_close_role(struct thou_hub *hub, const char *room_id, char role);

/** True when role has at least one stream open in room (on any instance when shared). */
bool thou_hub_present(struct thou_hub *hub, const char *room_id, char role);

/** Have every stream send a heartbeat comment (finds dead peers too). */
void thou_hub_heartbeat(struct thou_hub *hub);

/** End every stream, for shutdown. */
void thou_hub_shutdown(struct thou_hub *hub);
