#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/status.h"

/*
 * Durable storage behind a narrow interface (DESIGN §3): SQLite in WAL mode
 * with synchronous=FULL, schema migrations by version number, prepared
 * statements only. Every function is thread-safe. A write that returns
 * THOU_OK has been committed to disk.
 *
 * Writes run on one writer thread that commits whatever is queued together
 * (group commit: one fsync for many writes, each under its own savepoint so
 * one failure undoes only itself). Reads use a second connection and never
 * wait for an fsync.
 */

struct thou_store;

#define THOU_ROOM_ID_LEN    22 /* base64url of 16 random bytes */
#define THOU_HASH_LEN       32
#define THOU_SET_ID_MAX     64
#define THOU_SCHEMA_VERSION 6

/**
 * Open (creating if needed) thou.db in data_dir, creating data_dir itself
 * when missing, and migrate it to THOU_SCHEMA_VERSION. A database written by
 * a newer thou is refused with THOU_ESCHEMA. errbuf receives a message.
 * data_dir may also be a store URL: "sqlite:PATH" is the directory PATH, and
 * "postgresql://..." (or "postgres://...") opens that PostgreSQL database
 * instead, shared with other instances (THOU_EUNAVAIL when unreachable).
 */
enum thou_status thou_store_open(const char *data_dir, struct thou_store **out, char *errbuf,
                                 size_t errlen);

/**
 * Have the writer thread call before(ctx) ahead of the done callbacks of a
 * committed batch and after(ctx) behind them (the server holds back its
 * wake-ups meanwhile). Call before any write; NULLs turn it off.
 */
void thou_store_set_batch_hooks(struct thou_store *store, void (*before)(void *),
                                void (*after)(void *), void *ctx);

/**
 * Have committed(ctx, room_id, seq) called, on a thread of the store's own,
 * when another instance sharing the database committed events to room_id up
 * to seq (seq < 0: it erased the room), and with room_id NULL when
 * notifications may have been missed (every stream should re-read). Only
 * PostgreSQL has other instances; on SQLite this does nothing.
 */
void thou_store_set_remote_hook(struct thou_store *store,
                                void (*committed)(void *ctx, const char *room_id, int64_t seq),
                                void *ctx);

/**
 * A token bucket kept in the database, so that every instance sharing it
 * counts against one limit: refill bucket (name + key) at per_second up to
 * burst, then take a token when consume and one is there. THOU_OK: allowed;
 * THOU_ERATE: refused, *retry_after_s says when the next token is due;
 * THOU_EUNAVAIL when the store keeps no shared buckets (SQLite: one
 * instance) or cannot answer now.
 */
enum thou_status thou_store_rate_take(struct thou_store *store, const char *name, const char *key,
                                      double per_second, unsigned burst, bool consume,
                                      int64_t now_ms, unsigned *retry_after_s);

/**
 * thou_store_rate_take in the shape of a limiter's shared hook
 * (thou_limiter_shared_fn, ctx the store): 1 allowed, 0 refused, -1 when
 * the store keeps no shared buckets or cannot answer now (the limiter's own
 * bucket decides then).
 */
int thou_store_rate_hook(void *store, const char *name, const char *key, double per_second,
                         unsigned burst, bool consume, int64_t now_ms, unsigned *retry_after_s);

/**
 * Presence shared by instances on one database: tell the others that role
 * now has (present) or no longer has a stream open in room on this
 * instance. Best effort: while the database is away nothing is sent, and a
 * killed instance's presence runs out within about 25 s. No-op on SQLite.
 */
void thou_store_presence_publish(struct thou_store *store, const char *room_id, char role,
                                 bool present);

/** True when role has a stream open in room on another instance; false on SQLite. */
bool thou_store_presence_elsewhere(struct thou_store *store, const char *room_id, char role);

/**
 * Have presence(ctx, room_id, role, present) called on the store's own
 * thread when another instance publishes a presence change. Call before
 * thou_store_set_remote_hook; does nothing on SQLite.
 */
void thou_store_set_presence_hook(struct thou_store *store,
                                  void (*presence)(void *ctx, const char *room_id, char role,
                                                   bool present),
                                  void *ctx);

/**
 * Have moved(ctx, room_id, role) called on the store's own thread when
 * another instance moved role's seat in room to another token (the old
 * token's cached sessions and open streams must go). Call before
 * thou_store_set_remote_hook; does nothing on SQLite.
 */
void thou_store_set_moved_hook(struct thou_store *store,
                               void (*moved)(void *ctx, const char *room_id, char role), void *ctx);

/** Close the database cleanly (checkpointing the WAL); NULL is a no-op. */
void thou_store_close(struct thou_store *store);

/**
 * A room holds at most max_events events and max_bytes bytes of event data
 * (0: no limit); an update that would pass either fails with THOU_ELIMIT
 * and stores nothing. Call before the store is used.
 */
void thou_store_set_room_limits(struct thou_store *store, int64_t max_events, int64_t max_bytes);

/** THOU_OK when the database answers a trivial query. */
enum thou_status thou_store_ping(struct thou_store *store);

/** The schema version the open database is at. */
int thou_store_schema_version(struct thou_store *store);

enum thou_room_state {
    THOU_ROOM_WAITING = 0, /* only A has joined */
    THOU_ROOM_ACTIVE = 1,  /* both joined */
    THOU_ROOM_ENDED = 2,   /* one of them ended it; read-only */
};

struct thou_room_record {
    char id[THOU_ROOM_ID_LEN + 1];
    char set_id[THOU_SET_ID_MAX + 1];
    int set_version;
    enum thou_room_state state;
    uint8_t join_verifier[THOU_HASH_LEN];
    int64_t created_ms;
    int64_t expires_ms;
    int64_t last_seq;
    bool b_joined;
    char *flow_json; /* heap, owned by the record; NULL when none */
};

/** Free the record's heap members. */
void thou_room_record_release(struct thou_room_record *room);

/** Store a new room and participant A with its token hash. THOU_EEXIST on id clash. */
enum thou_status thou_store_room_create(struct thou_store *store,
                                        const struct thou_room_record *room,
                                        const uint8_t token_hash_a[THOU_HASH_LEN]);

/**
 * Read a room. THOU_ENOTFOUND when it never existed, THOU_EGONE when it was
 * erased or expired. The caller releases *room.
 */
enum thou_status thou_store_room_get(struct thou_store *store, const char *room_id,
                                     struct thou_room_record *room);

/**
 * Add participant B. When B already joined: THOU_OK with *again set if B
 * joined with this very token hash (a retried join), else THOU_EFULL.
 * THOU_ENOTFOUND or THOU_EGONE as for room_get. The room becomes active.
 * again may be NULL; it is set to false otherwise.
 */
enum thou_status thou_store_room_join(struct thou_store *store, const char *room_id,
                                      const uint8_t token_hash_b[THOU_HASH_LEN], int64_t now_ms,
                                      bool *again);

/**
 * Find which role a token hash belongs to in a room. THOU_EAUTH when it is
 * no participant of that room (tokens of other rooms included).
 */
enum thou_status thou_store_participant_role(struct thou_store *store, const char *room_id,
                                             const uint8_t token_hash[THOU_HASH_LEN], char *role);

/**
 * Move a seat to a new bearer token (another device): the participant whose
 * token hash is old_hash gets new_hash instead, atomically, so old_hash
 * stops working at once. When old_hash holds no seat but new_hash already
 * does (this move again, its answer lost): THOU_OK with *again set.
 * Otherwise THOU_EAUTH; THOU_EEXIST when new_hash is another seat's;
 * THOU_ENOTFOUND or THOU_EGONE as for room_get. *role receives the seat's
 * role; again may be NULL.
 */
enum thou_status thou_store_seat_move(struct thou_store *store, const char *room_id,
                                      const uint8_t old_hash[THOU_HASH_LEN],
                                      const uint8_t new_hash[THOU_HASH_LEN], char *role,
                                      bool *again);

/** One stored event. */
struct thou_event_record {
    int64_t seq;
    const char *type;
    char sender;      /* 'A' or 'B' */
    char visible_to;  /* 0: both; 'A'/'B': only that role */
    const char *data; /* the JSON object delivered on the stream, without seq */
    int64_t time_ms;
};

/**
 * Append n (at most THOU_CHANGE_MAX_EVENTS) events in one transaction: assign the room's next seqs,
 * insert them, update the room's state and flow (flow_json may be NULL to keep it) and commit.
 * Refuses with THOU_ECONFLICT when the room is ended and THOU_EGONE/THOU_ENOTFOUND when it does not
 * exist any more. seqs[i] receives each event's sequence number once the commit is durable.
 */
enum thou_status thou_store_events_append(struct thou_store *store, const char *room_id,
                                          const struct thou_event_record *events, size_t n,
                                          enum thou_room_state new_state, const char *flow_json,
                                          int64_t *seqs);

/** What an update callback asks the store to write. */
#define THOU_CHANGE_MAX_EVENTS 4
struct thou_room_change {
    struct thou_event_record events[THOU_CHANGE_MAX_EVENTS];
    size_t n_events;
    enum thou_room_state new_state;
    const char *flow_json;                /* NULL keeps the stored flow */
    int64_t seqs[THOU_CHANGE_MAX_EVENTS]; /* filled by the store after commit */
};

/** A read-only view of the store inside an update callback. */
struct thou_room_txn;

/**
 * Decide a change from the room as it is inside the transaction. Must not
 * call other store functions (the store is locked) except thou_store_txn_*.
 * A non-OK status rolls the transaction back and is returned to the caller.
 * It may be called more than once for one update (PostgreSQL runs it again
 * when two instances' transactions deadlocked): each call decides afresh.
 */
typedef enum thou_status (*thou_room_update_fn)(void *ctx, struct thou_room_txn *txn,
                                                const struct thou_room_record *room,
                                                struct thou_room_change *change);

/**
 * Read-modify-write one room atomically: read it, let update decide the
 * events and the new state and flow, then append the events with the next
 * gap-free seqs and commit. THOU_ENOTFOUND/THOU_EGONE when the room is not
 * there; otherwise the callback's status or THOU_EIO.
 */
enum thou_status thou_store_room_update(struct thou_store *store, const char *room_id,
                                        thou_room_update_fn update, void *ctx,
                                        struct thou_room_change *change);

/** Called on the store's writer thread once an asynchronous write committed (or failed). */
typedef void (*thou_store_done_fn)(void *ctx, enum thou_status status);

/**
 * Like thou_store_room_update, without waiting: the update runs on the
 * writer thread with other writes queued at the same moment, all committed
 * with one fsync (group commit), and then done(done_ctx, status) is called
 * on that thread. room_id, ctx and change must stay valid until then.
 */
void thou_store_room_update_async(struct thou_store *store, const char *room_id,
                                  thou_room_update_fn update, void *ctx,
                                  struct thou_room_change *change, thou_store_done_fn done,
                                  void *done_ctx);

/**
 * Inside an update: find the newest event of type sent by sender in this
 * room, optionally naming question (NULL: any). *data (when not NULL)
 * receives a heap copy of its data. THOU_ENOTFOUND when there is none.
 */
enum thou_status thou_store_txn_find(struct thou_room_txn *txn, const char *type, char sender,
                                     const char *question, char **data);

/** Called for each event by thou_store_events_after; return false to stop. */
typedef bool (*thou_event_visit_fn)(void *ctx, const struct thou_event_record *event);

/**
 * Visit the events of a room with seq > after_seq that role may see, in seq
 * order, at most limit of them.
 */
enum thou_status thou_store_events_after(struct thou_store *store, const char *room_id, char role,
                                         int64_t after_seq, size_t limit, thou_event_visit_fn visit,
                                         void *ctx);

/**
 * Delete a room and everything of it at once, leaving a tombstone of its id.
 * THOU_ENOTFOUND or THOU_EGONE when there is no such room (any more).
 */
enum thou_status thou_store_room_erase(struct thou_store *store, const char *room_id,
                                       int64_t now_ms);

/**
 * Delete rooms whose expiry is at or before now_ms (leaving tombstones), and
 * tombstones older than tombstone_ttl_ms. *deleted receives the room count.
 */
enum thou_status thou_store_sweep(struct thou_store *store, int64_t now_ms,
                                  int64_t tombstone_ttl_ms, size_t *deleted);

/* ---- research studies (docs/research.md) ------------------------------------ */

struct thou_study_record {
    char name[THOU_SET_ID_MAX + 1];
    uint8_t public_key[32];
    size_t n_conditions;
    char conditions[8][THOU_SET_ID_MAX + 1]; /* question set ids */
    bool closeness;                          /* ask the closeness scale before and after */
    int64_t assigned;                        /* pairs assigned so far */
    int64_t created_ms;
};

/** Add a study with its block seed. THOU_EEXIST when the name is taken. */
enum thou_status thou_store_study_add(struct thou_store *store,
                                      const struct thou_study_record *study,
                                      const uint8_t seed[32]);

/** Read a study. THOU_ENOTFOUND when there is none of that name. */
enum thou_status thou_store_study_get(struct thou_store *store, const char *name,
                                      struct thou_study_record *study);

/** Called for each study by thou_store_study_list, in name order. */
typedef void (*thou_study_visit_fn)(void *ctx, const struct thou_study_record *study,
                                    int64_t rooms);

/** Visit every study with the number of rooms it has now. */
enum thou_status thou_store_study_list(struct thou_store *store, thou_study_visit_fn visit,
                                       void *ctx);

/**
 * Remove a study and every research copy of its rooms (the rooms stay, as
 * conversations without a study). THOU_ENOTFOUND when there is none.
 */
enum thou_status thou_store_study_remove(struct thou_store *store, const char *name);

/**
 * The entry point for a new room of a study (link mode now, workshops
 * later): count one more pair and pick its condition by block
 * randomisation. *study receives the study and *condition the index of the
 * condition in study->conditions. THOU_ENOTFOUND for an unknown study.
 * Call thou_store_room_set_study once the room exists.
 */
enum thou_status thou_store_study_assign(struct thou_store *store, const char *name,
                                         struct thou_study_record *study, size_t *condition);

/** Record a new room's study and condition (a set id). */
enum thou_status thou_store_room_set_study(struct thou_store *store, const char *room_id,
                                           const char *study, const char *condition);

/**
 * A room's study and condition; empty strings when it has none.
 * THOU_ENOTFOUND/THOU_EGONE as for room_get.
 */
enum thou_status thou_store_room_study(struct thou_store *store, const char *room_id,
                                       char study[THOU_SET_ID_MAX + 1],
                                       char condition[THOU_SET_ID_MAX + 1]);

/**
 * Store one sealed research copy of role's step. Refused with
 * THOU_EFORBIDDEN unless the room has a study and both partners posted a
 * consent event and neither a decline or withdraw, THOU_ECONFLICT once role
 * released its copies; a step stored before is THOU_OK again (a retry).
 * hour is the coarse time kept with it.
 */
enum thou_status thou_store_research_add(struct thou_store *store, const char *room_id, char role,
                                         const char *step, const char *sealed, int64_t hour);

/** Delete every research copy of a room (a withdrawal); *deleted receives the count. */
enum thou_status thou_store_research_delete(struct thou_store *store, const char *room_id,
                                            size_t *deleted);

/**
 * Release role's copies for export, except the steps in leave_out, whose
 * sealed bytes are deleted. Final: THOU_ECONFLICT when role released before,
 * THOU_EFORBIDDEN without both consents. *released and *left_out receive
 * the counts.
 */
enum thou_status thou_store_research_release(struct thou_store *store, const char *room_id,
                                             char role, const char *const *leave_out,
                                             size_t n_leave_out, size_t *released,
                                             size_t *left_out);

struct sqlite3;

/**
 * Work on a connection directly, for a module with tables of its own (the
 * workshops). Return THOU_OK or an error; never BEGIN, COMMIT or ROLLBACK.
 */
typedef enum thou_status (*thou_store_raw_fn)(void *ctx, struct sqlite3 *db);

/**
 * Run fn on the writer thread inside the batch's transaction, under its
 * own savepoint (an error undoes all fn wrote), and wait for the commit.
 * fn must not change a row of rooms it did not insert itself (the writer
 * caches rooms); anything else of a room goes through thou_store_room_update.
 */
enum thou_status thou_store_write_raw(struct thou_store *store, thou_store_raw_fn fn, void *ctx);

/** Run fn on the reading connection (under its lock); fn only reads. */
enum thou_status thou_store_read_raw(struct thou_store *store, thou_store_raw_fn fn, void *ctx);
