#include "thou/hub.h"
#include "thou/buf.h"
#include "thou/mem.h"
#include "thou/text.h"
#include "thou/metrics.h"
#include "thou/server.h"
#include "thou/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define N_SLOTS        4096
#define FETCH_BATCH    128
#define KEEP_BUF_BYTES 4096 /* an idle stream keeps at most this much buffer */
/* A stream whose reader lags holds at most about this much in memory; the
 * rest waits in the store, read when the stream has sent what it holds. */
#define MAX_PENDING_BYTES (256 * 1024)
/* A stream catching up reads the store in batches of at most this many
 * bytes of frames (plus one event), whatever the events' sizes. */
#define REPLAY_BYTES (64 * 1024)

struct subscriber;

struct hub_room {
    char id[THOU_ROOM_ID_LEN + 1];
    struct subscriber *subs;
    unsigned present[2]; /* open streams of A and of B */
    bool remote[2];      /* A, B have a stream open on another instance */
    struct hub_room *next;
};

/* One open event stream. Lock order: hub->lock, then subscriber->lock; the
 * server is called only with a subscriber lock held (suspend, and resume,
 * which must not reach a connection the server is closing) and never calls
 * back into the hub from either. */
struct subscriber {
    struct thou_stream stream; /* first: the adapter sees only this */
    struct thou_hub *hub;
    struct hub_room *room;
    char role;
    atomic_int refs;
    struct subscriber *next;

    pthread_mutex_t lock; /* guards everything below */
    int64_t cursor;       /* last seq sent */
    bool suspended;
    bool wake; /* the store may have events after cursor */
    bool heartbeat;
    bool presence; /* partner_present changed and is not sent yet */
    bool partner_present;
    bool closing;
    bool fetching; /* reading the store with the lock dropped */
    bool gone;     /* its connection is being closed: never resume it again */
    struct thou_buf out;
    size_t out_sent;
};

struct thou_hub {
    pthread_mutex_t lock;
    struct thou_store *store;
    struct thou_metrics *metrics;
    unsigned max_streams_per_role; /* open streams of one participant in one room */
    struct hub_room *slots[N_SLOTS];
    bool share_presence; /* instances share a store: tell it, ask it (thou_hub_share_presence) */
};

/* Subscribers whose connections must be resumed once the locks are dropped. */
struct resume_list {
    struct subscriber **items;
    size_t n, cap;
};

struct thou_hub *thou_hub_new(struct thou_store *store, struct thou_metrics *metrics,
                              unsigned max_streams_per_role)
{
    struct thou_hub *hub = thou_xcalloc(1, sizeof(*hub));
    pthread_mutex_init(&hub->lock, NULL);
    hub->store = store;
    hub->metrics = metrics;
    hub->max_streams_per_role = max_streams_per_role;
    return hub;
}

void thou_hub_free(struct thou_hub *hub)
{
    if (!hub)
        return;
    /* Streams own their rooms' lifetimes; after shutdown none are left. */
    for (size_t i = 0; i < N_SLOTS; i++) {
        struct hub_room *room = hub->slots[i];
        while (room) {
            struct hub_room *next = room->next;
            free(room);
            room = next;
        }
    }
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

static size_t slot_of(const char *room_id)
{
    return thou_text_hash(room_id) % N_SLOTS;
}

static struct hub_room *find_room(struct thou_hub *hub, const char *room_id)
{
    struct hub_room *room = hub->slots[slot_of(room_id)];
    while (room && strcmp(room->id, room_id) != 0)
        room = room->next;
    return room;
}

static void remove_room(struct thou_hub *hub, struct hub_room *room)
{
    struct hub_room **link = &hub->slots[slot_of(room->id)];
    while (*link != room)
        link = &(*link)->next;
    *link = room->next;
    free(room);
}

static int role_index(char role)
{
    return role == 'B';
}

static void subscriber_unref(struct subscriber *sub)
{
    if (atomic_fetch_sub(&sub->refs, 1) != 1)
        return;
    thou_buf_release(&sub->out);
    pthread_mutex_destroy(&sub->lock);
    free(sub);
}

/* Flag set under the subscriber's lock; a suspended stream is queued for
 * resumption (with a reference so it outlives the hub lock). */
enum wake_reason { WAKE_EVENTS, WAKE_DATA, WAKE_HEARTBEAT, WAKE_PRESENCE, WAKE_CLOSE };

static void wake(struct subscriber *sub, enum wake_reason reason, bool partner_present,
                 struct resume_list *list)
{
    /* Room on the list first: a stream taken off "suspended" must be resumed.
     * Without memory for it, the stream keeps its news (the flags below) and
     * stays suspended until a later wake (the next heartbeat at the latest). */
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct subscriber **items = thou_realloc(list->items, cap * sizeof(*list->items));
        if (items) {
            list->items = items;
            list->cap = cap;
        }
    }
    pthread_mutex_lock(&sub->lock);
    switch (reason) {
    case WAKE_EVENTS:
        sub->wake = true;
        break;
    case WAKE_DATA: /* frames already queued in sub->out */
        break;
    case WAKE_HEARTBEAT:
        sub->heartbeat = true;
        break;
    case WAKE_PRESENCE:
        sub->presence = true;
        sub->partner_present = partner_present;
        break;
    case WAKE_CLOSE:
        sub->closing = true;
        break;
    }
    bool resume = sub->suspended && list->n < list->cap;
    if (resume)
        sub->suspended = false;
    pthread_mutex_unlock(&sub->lock);
    if (!resume)
        return;
    atomic_fetch_add(&sub->refs, 1);
    list->items[list->n++] = sub;
}

static void resume_all(struct resume_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        struct subscriber *sub = list->items[i];
        /* Under the subscriber's lock, which subscriber_free() takes to mark
         * it gone before the server frees the connection: a stream closing
         * right now is either resumed before that or not at all. */
        pthread_mutex_lock(&sub->lock);
        if (!sub->gone)
            thou_server_resume(sub->stream.conn);
        pthread_mutex_unlock(&sub->lock);
        subscriber_unref(sub);
    }
    free(list->items);
}

/* Is role present in room: a stream here, or one on another instance. */
static bool role_present(const struct hub_room *room, char role)
{
    return room->present[role_index(role)] > 0 || room->remote[role_index(role)];
}

/* Tell role's partner streams in room whether role is present. Hub lock held. */
static void announce_presence(struct hub_room *room, char role, struct resume_list *list)
{
    bool present = role_present(room, role);
    for (struct subscriber *s = room->subs; s; s = s->next)
        if (s->role != role)
            wake(s, WAKE_PRESENCE, present, list);
}

struct fetch_ctx {
    struct thou_buf *out;
    int64_t cursor;
    size_t count;
    size_t max_bytes; /* stop once out holds this much */
    bool full;        /* stopped for max_bytes: more may follow */
};

/* Format one stored event as an SSE frame. The stored data is a JSON
 * object without its seq, which exists only once committed; it is spliced
 * in here so the data line carries it too. */
static bool format_event(void *ctx, const struct thou_event_record *event)
{
    struct fetch_ctx *fetch = ctx;
    char seq[24];
    int seq_len = snprintf(seq, sizeof(seq), "%lld", (long long)event->seq);
    const char *rest = event->data[0] == '{' ? event->data + 1 : "}";
    /* Appends, not printf: this runs for every event every stream sends. */
    thou_buf_puts(fetch->out, "id: ");
    thou_buf_append(fetch->out, seq, (size_t)seq_len);
    thou_buf_puts(fetch->out, "\nevent: ");
    thou_buf_puts(fetch->out, event->type);
    thou_buf_puts(fetch->out, "\ndata: {\"seq\":");
    thou_buf_append(fetch->out, seq, (size_t)seq_len);
    if (rest[0] != '}')
        thou_buf_puts(fetch->out, ",");
    thou_buf_puts(fetch->out, rest);
    thou_buf_puts(fetch->out, "\n\n");
    if (thou_buf_failed(fetch->out))
        return false; /* out of memory: the caller ends what it was building */
    fetch->cursor = event->seq;
    fetch->count++;
    fetch->full = fetch->out->len >= fetch->max_bytes;
    return !fetch->full;
}

/* Fill sub->out with whatever is due. Returns false when the stream ends.
 * Called with sub->lock held; drops it around the store read. */
static bool refill(struct subscriber *sub)
{
    for (;;) {
        if (sub->out_sent < sub->out.len)
            return true;
        if (sub->out.cap > KEEP_BUF_BYTES)
            thou_buf_release(&sub->out);
        else
            thou_buf_reset(&sub->out);
        sub->out_sent = 0;
        if (sub->closing)
            return false;
        if (sub->presence) {
            sub->presence = false;
            thou_buf_printf(&sub->out,
                            "event: presence\ndata: {\"role\":\"%c\",\"present\":%s}\n\n",
                            sub->role == 'A' ? 'B' : 'A', sub->partner_present ? "true" : "false");
            if (thou_buf_failed(&sub->out))
                return false; /* out of memory: end the stream; the client reconnects */
            continue;
        }
        if (sub->wake) {
            sub->wake = false;
            struct thou_buf frames;
            thou_buf_init_failable(&frames);
            struct fetch_ctx fetch = {&frames, sub->cursor, 0, REPLAY_BYTES, false};
            sub->fetching = true;
            pthread_mutex_unlock(&sub->lock);
            enum thou_status rc =
                thou_store_events_after(sub->hub->store, sub->room->id, sub->role, sub->cursor,
                                        FETCH_BATCH, format_event, &fetch);
            pthread_mutex_lock(&sub->lock);
            sub->fetching = false;
            if (rc || thou_buf_failed(&frames)) {
                /* Ending the stream is safe: the client reconnects with the
                 * Last-Event-ID of the last whole frame it got. */
                thou_buf_release(&frames);
                return false;
            }
            sub->cursor = fetch.cursor;
            if (fetch.count == FETCH_BATCH || fetch.full)
                sub->wake = true; /* more may follow; read them after these are sent */
            if (frames.len)
                thou_buf_append(&sub->out, frames.data, frames.len);
            thou_buf_release(&frames);
            if (thou_buf_failed(&sub->out))
                return false;
            continue;
        }
        if (sub->heartbeat) {
            sub->heartbeat = false;
            thou_buf_puts(&sub->out, ": heartbeat\n\n");
            if (thou_buf_failed(&sub->out))
                return false;
            continue;
        }
        return true; /* nothing due */
    }
}

static ssize_t subscriber_read(struct thou_stream *stream, char *buf, size_t max)
{
    struct subscriber *sub = (struct subscriber *)stream;
    pthread_mutex_lock(&sub->lock);
    if (!refill(sub)) {
        pthread_mutex_unlock(&sub->lock);
        return -1;
    }
    size_t pending = sub->out.len - sub->out_sent;
    if (pending == 0) {
        /* An idle stream may sleep for hours: it keeps no buffer meanwhile. */
        thou_buf_release(&sub->out);
        sub->out_sent = 0;
        /* Suspend under the lock: a wake() that comes after sees suspended
         * and resumes us, so no event can slip between check and sleep. */
        sub->suspended = true;
        thou_server_suspend(stream->conn);
        pthread_mutex_unlock(&sub->lock);
        return 0;
    }
    size_t n = pending < max ? pending : max;
    memcpy(buf, sub->out.data + sub->out_sent, n);
    sub->out_sent += n;
    pthread_mutex_unlock(&sub->lock);
    return (ssize_t)n;
}

static void subscriber_free(struct thou_stream *stream)
{
    struct subscriber *sub = (struct subscriber *)stream;
    struct thou_hub *hub = sub->hub;
    struct resume_list list = {0};
    pthread_mutex_lock(&sub->lock);
    sub->gone = true;
    pthread_mutex_unlock(&sub->lock);
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = sub->room;
    struct subscriber **link = &room->subs;
    while (*link != sub)
        link = &(*link)->next;
    *link = sub->next;
    room->present[role_index(sub->role)]--;
    bool gone_here = room->present[role_index(sub->role)] == 0;
    if (gone_here && !room->remote[role_index(sub->role)])
        announce_presence(room, sub->role, &list);
    char room_id[THOU_ROOM_ID_LEN + 1];
    snprintf(room_id, sizeof(room_id), "%s", room->id);
    if (!room->subs)
        remove_room(hub, room);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
    if (gone_here && hub->share_presence)
        thou_store_presence_publish(hub->store, room_id, sub->role, false);
    thou_metrics_streams(hub->metrics, -1);
    subscriber_unref(sub);
}

struct thou_stream *thou_hub_subscribe(struct thou_hub *hub, const char *room_id, char role,
                                       int64_t after_seq)
{
    return thou_hub_subscribe_status(hub, room_id, role, after_seq, NULL);
}

struct thou_stream *thou_hub_subscribe_status(struct thou_hub *hub, const char *room_id, char role,
                                              int64_t after_seq, enum thou_status *why)
{
    if (why)
        *why = THOU_OK;
    struct subscriber *sub = thou_calloc(1, sizeof(*sub));
    if (!sub) {
        if (why)
            *why = THOU_ENOMEM;
        return NULL;
    }
    sub->stream.read = subscriber_read;
    sub->stream.free = subscriber_free;
    sub->hub = hub;
    sub->role = role;
    atomic_init(&sub->refs, 1);
    pthread_mutex_init(&sub->lock, NULL);
    sub->cursor = after_seq;
    sub->wake = true;
    sub->presence = true;
    thou_buf_init_failable(&sub->out);
    /* Ask browsers to reconnect after 2 s; clients with their own backoff ignore it. */
    thou_buf_puts(&sub->out, "retry: 2000\n\n");
    if (thou_buf_failed(&sub->out)) {
        subscriber_unref(sub); /* never shared: its only reference */
        if (why)
            *why = THOU_ENOMEM;
        return NULL;
    }

    /* Asked before the lock (the store answers over the network); used
     * when this stream is the room's first here. */
    char partner = role == 'A' ? 'B' : 'A';
    bool partner_elsewhere =
        hub->share_presence && thou_store_presence_elsewhere(hub->store, room_id, partner);
    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id);
    if (room && room->present[role_index(role)] >= hub->max_streams_per_role) {
        pthread_mutex_unlock(&hub->lock);
        subscriber_unref(sub); /* never shared: its only reference */
        if (why)
            *why = THOU_ELIMIT;
        return NULL;
    }
    if (!room) {
        room = thou_calloc(1, sizeof(*room));
        if (!room) {
            pthread_mutex_unlock(&hub->lock);
            subscriber_unref(sub);
            if (why)
                *why = THOU_ENOMEM;
            return NULL;
        }
        snprintf(room->id, sizeof(room->id), "%s", room_id);
        room->remote[role_index(partner)] = partner_elsewhere;
        size_t slot = slot_of(room_id);
        room->next = hub->slots[slot];
        hub->slots[slot] = room;
    }
    sub->room = room;
    sub->partner_present = role_present(room, partner);
    sub->next = room->subs;
    room->subs = sub;
    bool first_here = room->present[role_index(role)]++ == 0;
    if (first_here && !room->remote[role_index(role)])
        announce_presence(room, role, &list);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
    if (first_here && hub->share_presence)
        thou_store_presence_publish(hub->store, room_id, role, true);
    thou_metrics_streams(hub->metrics, 1);
    return &sub->stream;
}

static void wake_room(struct thou_hub *hub, const char *room_id, enum wake_reason reason)
{
    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id);
    for (struct subscriber *s = room ? room->subs : NULL; s; s = s->next)
        wake(s, reason, false, &list);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
}

/* Committed events, each formatted once for every stream that takes them. */
struct published {
    const struct thou_event_record *events;
    size_t n;
    struct thou_buf frames;
    size_t *ends; /* frames.data[ends[i-1]..ends[i]) is event i's frame */
};

/* Hand committed events to one stream from memory when it is exactly up to
 * date; otherwise (behind, or reading the store right now) let it read
 * them from the store, which is always right. */
static void deliver(struct subscriber *sub, const struct published *pub, struct resume_list *list)
{
    const struct thou_event_record *events = pub->events;
    size_t n = pub->n;
    pthread_mutex_lock(&sub->lock);
    bool in_step = !sub->wake && !sub->fetching && sub->cursor == events[0].seq - 1 &&
                   sub->out.len - sub->out_sent < MAX_PENDING_BYTES;
    if (in_step) {
        /* Consecutive frames this stream may see go in one append. */
        size_t run_start = 0;
        for (size_t i = 0; i <= n; i++) {
            bool visible = i < n && (!events[i].visible_to || events[i].visible_to == sub->role);
            if (visible)
                continue;
            size_t from = run_start ? pub->ends[run_start - 1] : 0;
            size_t to = i ? pub->ends[i - 1] : 0;
            if (to > from)
                thou_buf_append(&sub->out, pub->frames.data + from, to - from);
            run_start = i + 1;
        }
        sub->cursor = events[n - 1].seq;
        /* Frames that could not be queued: end the stream after what it
         * holds; the client reconnects from the last whole frame it got. */
        if (thou_buf_failed(&sub->out))
            sub->closing = true;
    }
    pthread_mutex_unlock(&sub->lock);
    wake(sub, in_step ? WAKE_DATA : WAKE_EVENTS, false, list);
}

void thou_hub_publish(struct thou_hub *hub, const char *room_id,
                      const struct thou_event_record *events, size_t n)
{
    if (n == 0)
        return;
    if (n > THOU_CHANGE_MAX_EVENTS) {
        thou_hub_notify(hub, room_id); /* more than one change holds: read them from the store */
        return;
    }
    size_t ends[THOU_CHANGE_MAX_EVENTS];
    struct published pub = {events, n, {0}, ends};
    thou_buf_init_failable(&pub.frames);
    struct fetch_ctx fetch = {&pub.frames, 0, 0, SIZE_MAX, false};
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        size += strlen(events[i].data) + strlen(events[i].type) + 64; /* id, event, seq lines */
    thou_buf_reserve(&pub.frames, size);
    for (size_t i = 0; i < n; i++) {
        format_event(&fetch, &events[i]);
        ends[i] = pub.frames.len;
    }
    if (thou_buf_failed(&pub.frames)) {
        /* No frames in memory: the streams read these events from the store. */
        thou_buf_release(&pub.frames);
        thou_hub_notify(hub, room_id);
        return;
    }

    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id);
    for (struct subscriber *s = room ? room->subs : NULL; s; s = s->next)
        deliver(s, &pub, &list);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
    thou_buf_release(&pub.frames);
}

void thou_hub_notify(struct thou_hub *hub, const char *room_id)
{
    wake_room(hub, room_id, WAKE_EVENTS);
}

void thou_hub_close_room(struct thou_hub *hub, const char *room_id)
{
    wake_room(hub, room_id, WAKE_CLOSE);
}

void thou_hub_close_role(struct thou_hub *hub, const char *room_id, char role)
{
    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id);
    for (struct subscriber *s = room ? room->subs : NULL; s; s = s->next)
        if (s->role == role)
            wake(s, WAKE_CLOSE, false, &list);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
}

bool thou_hub_present(struct thou_hub *hub, const char *room_id, char role)
{
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id);
    bool known = room != NULL;
    bool present = room && role_present(room, role);
    pthread_mutex_unlock(&hub->lock);
    /* No stream of the room here: only the store knows about the others. */
    if (!known && hub->share_presence)
        present = thou_store_presence_elsewhere(hub->store, room_id, role);
    return present;
}

void thou_hub_share_presence(struct thou_hub *hub)
{
    hub->share_presence = true;
}

void thou_hub_remote_presence(struct thou_hub *hub, const char *room_id, char role, bool present)
{
    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    struct hub_room *room = find_room(hub, room_id); /* none: no stream here cares */
    if (room && room->remote[role_index(role)] != present) {
        bool before = role_present(room, role);
        room->remote[role_index(role)] = present;
        if (role_present(room, role) != before)
            announce_presence(room, role, &list);
    }
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
}

void thou_hub_recheck_presence(struct thou_hub *hub)
{
    if (!hub->share_presence)
        return;
    /* Every role of every room with a stream here: present here (its lease
     * is renewed; a row this instance left by mistake is not, and runs out),
     * or present elsewhere or not (asked again: other leases run out). */
    struct check {
        char id[THOU_ROOM_ID_LEN + 1];
        char role;
        bool here;
    } *checks = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; i < N_SLOTS; i++)
        for (struct hub_room *room = hub->slots[i]; room; room = room->next)
            for (int r = 0; r < 2; r++) {
                if (n == cap) {
                    struct check *grown =
                        thou_realloc(checks, (cap ? cap * 2 : 64) * sizeof(*checks));
                    if (!grown) { /* out of memory: this round is skipped, the next one tries */
                        free(checks);
                        checks = NULL;
                        n = 0;
                        goto unlock;
                    }
                    checks = grown;
                    cap = cap ? cap * 2 : 64;
                }
                snprintf(checks[n].id, sizeof(checks[n].id), "%s", room->id);
                checks[n].here = room->present[r] > 0;
                checks[n++].role = r ? 'B' : 'A';
            }
unlock:
    pthread_mutex_unlock(&hub->lock);
    for (size_t i = 0; i < n; i++) {
        if (checks[i].here)
            thou_store_presence_publish(hub->store, checks[i].id, checks[i].role, true);
        else
            thou_hub_remote_presence(
                hub, checks[i].id, checks[i].role,
                thou_store_presence_elsewhere(hub->store, checks[i].id, checks[i].role));
    }
    free(checks);
}

static void wake_everyone(struct thou_hub *hub, enum wake_reason reason)
{
    struct resume_list list = {0};
    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; i < N_SLOTS; i++)
        for (struct hub_room *room = hub->slots[i]; room; room = room->next)
            for (struct subscriber *s = room->subs; s; s = s->next)
                wake(s, reason, false, &list);
    pthread_mutex_unlock(&hub->lock);
    resume_all(&list);
}

void thou_hub_notify_all(struct thou_hub *hub)
{
    wake_everyone(hub, WAKE_EVENTS);
}

void thou_hub_heartbeat(struct thou_hub *hub)
{
    wake_everyone(hub, WAKE_HEARTBEAT);
}

void thou_hub_shutdown(struct thou_hub *hub)
{
    wake_everyone(hub, WAKE_CLOSE);
}
