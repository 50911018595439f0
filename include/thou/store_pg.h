#pragma once

#include "thou/store.h"

/*
 * The store on PostgreSQL (libpq), for several thou instances sharing one
 * database. The public functions of store.h dispatch here when the store
 * was opened with a postgresql:// URL; nothing else calls this module.
 *
 * Same guarantees as the SQLite store: a room's seq comes from a counter in
 * the room's row, taken under that row's lock inside the event's own
 * transaction, so it stays gap-free and totally ordered whichever instance
 * writes; a write is acknowledged only after its commit; one writer thread
 * per instance commits everything queued at once (group commit), each job
 * under its own savepoint. Every commit that adds events to a room sends a
 * NOTIFY carrying only the room id and the last seq (see
 * thou_store_set_remote_hook).
 */

struct thou_store_pg;

/** True when location names a PostgreSQL database (postgresql:// or postgres://). */
bool thou_store_pg_is_url(const char *location);

/**
 * Connect to url, check the schema version (a newer one is refused with
 * THOU_ESCHEMA), migrate to THOU_SCHEMA_VERSION under an advisory lock so
 * that instances starting together migrate once, and start the writer.
 * An unreachable database is THOU_EUNAVAIL. errbuf receives a message that
 * never contains the URL's password.
 */
enum thou_status thou_store_pg_open(const char *url, struct thou_store_pg **out, char *errbuf,
                                    size_t errlen);
void thou_store_pg_close(struct thou_store_pg *pg);

void thou_store_pg_set_batch_hooks(struct thou_store_pg *pg, void (*before)(void *),
                                   void (*after)(void *), void *ctx);
void thou_store_pg_set_room_limits(struct thou_store_pg *pg, int64_t max_events, int64_t max_bytes);
void thou_store_pg_set_remote_hook(struct thou_store_pg *pg,
                                   void (*committed)(void *, const char *, int64_t), void *ctx);
enum thou_status thou_store_pg_ping(struct thou_store_pg *pg);
int thou_store_pg_schema_version(struct thou_store_pg *pg);
enum thou_status thou_store_pg_room_create(struct thou_store_pg *pg,
                                           const struct thou_room_record *room,
                                           const uint8_t token_hash_a[THOU_HASH_LEN]);
enum thou_status thou_store_pg_room_get(struct thou_store_pg *pg, const char *room_id,
                                        struct thou_room_record *room);
enum thou_status thou_store_pg_room_join(struct thou_store_pg *pg, const char *room_id,
                                         const uint8_t token_hash_b[THOU_HASH_LEN], int64_t now_ms,
                                         bool *again);
enum thou_status thou_store_pg_participant_role(struct thou_store_pg *pg, const char *room_id,
                                                const uint8_t token_hash[THOU_HASH_LEN],
                                                char *role);
enum thou_status thou_store_pg_room_update(struct thou_store_pg *pg, const char *room_id,
                                           thou_room_update_fn update, void *ctx,
                                           struct thou_room_change *change);
void thou_store_pg_room_update_async(struct thou_store_pg *pg, const char *room_id,
                                     thou_room_update_fn update, void *ctx,
                                     struct thou_room_change *change, thou_store_done_fn done,
                                     void *done_ctx);
enum thou_status thou_store_pg_events_after(struct thou_store_pg *pg, const char *room_id,
                                            char role, int64_t after_seq, size_t limit,
                                            thou_event_visit_fn visit, void *ctx);
enum thou_status thou_store_pg_room_erase(struct thou_store_pg *pg, const char *room_id,
                                          int64_t now_ms);
enum thou_status thou_store_pg_sweep(struct thou_store_pg *pg, int64_t now_ms,
                                     int64_t tombstone_ttl_ms, size_t *deleted);

enum thou_status thou_store_pg_rate_take(struct thou_store_pg *pg, const char *name,
                                         const char *key, double per_second, unsigned burst,
                                         bool consume, int64_t now_ms, unsigned *retry_after_s);

void thou_store_pg_presence_publish(struct thou_store_pg *pg, const char *room_id, char role,
                                    bool present);
bool thou_store_pg_presence_elsewhere(struct thou_store_pg *pg, const char *room_id, char role);
void thou_store_pg_set_presence_hook(struct thou_store_pg *pg,
                                     void (*presence)(void *, const char *, char, bool), void *ctx);

/* The PostgreSQL side of an update's transaction (see thou_store_txn_find). */
enum thou_status thou_store_pg_seat_move(struct thou_store_pg *pg, const char *room_id,
                                         const uint8_t old_hash[THOU_HASH_LEN],
                                         const uint8_t new_hash[THOU_HASH_LEN], char *role,
                                         bool *again);
enum thou_status thou_store_pg_study_add(struct thou_store_pg *pg,
                                         const struct thou_study_record *study,
                                         const uint8_t seed[32]);
enum thou_status thou_store_pg_study_get(struct thou_store_pg *pg, const char *name,
                                         struct thou_study_record *study);
enum thou_status thou_store_pg_study_list(struct thou_store_pg *pg, thou_study_visit_fn visit,
                                          void *ctx);
enum thou_status thou_store_pg_study_remove(struct thou_store_pg *pg, const char *name);
enum thou_status thou_store_pg_study_assign(struct thou_store_pg *pg, const char *name,
                                            struct thou_study_record *study, size_t *condition);
enum thou_status thou_store_pg_room_set_study(struct thou_store_pg *pg, const char *room_id,
                                              const char *study, const char *condition);
enum thou_status thou_store_pg_room_study(struct thou_store_pg *pg, const char *room_id,
                                          char study[THOU_SET_ID_MAX + 1],
                                          char condition[THOU_SET_ID_MAX + 1]);
enum thou_status thou_store_pg_research_add(struct thou_store_pg *pg, const char *room_id,
                                            char role, const char *step, const char *sealed,
                                            int64_t hour);
enum thou_status thou_store_pg_research_delete(struct thou_store_pg *pg, const char *room_id,
                                               size_t *deleted);
enum thou_status thou_store_pg_research_release(struct thou_store_pg *pg, const char *room_id,
                                                char role, const char *const *leave_out,
                                                size_t n_leave_out, size_t *released,
                                                size_t *left_out);

void thou_store_pg_set_moved_hook(struct thou_store_pg *pg,
                                  void (*moved)(void *, const char *, char), void *ctx);

struct thou_store_pg_txn;
enum thou_status thou_store_pg_txn_find(struct thou_store_pg_txn *txn, const char *type,
                                        char sender, const char *question, char **data);

/**
 * Implemented by store.c: call an update callback with a struct
 * thou_room_txn that routes thou_store_txn_find to pg_txn.
 */
enum thou_status thou_store_call_update(thou_room_update_fn update, void *ctx,
                                        struct thou_store_pg_txn *pg_txn, const char *room_id,
                                        const struct thou_room_record *room,
                                        struct thou_room_change *change);

/* ---- direct access for modules with tables of their own (the workshops) ---- */

struct pg_result;
struct thou_store_pg_conn;

/** The PostgreSQL store behind store, or NULL for a SQLite store (implemented by store.c). */
struct thou_store_pg *thou_store_pg_of(struct thou_store *store);

/** Work on a connection: return THOU_OK or an error; never BEGIN, COMMIT or ROLLBACK. */
typedef enum thou_status (*thou_store_pg_raw_fn)(void *ctx, struct thou_store_pg_conn *c);

/**
 * Run fn on the writer inside the batch's transaction, under its own
 * savepoint (an error undoes all fn wrote; a lost deadlock runs it again),
 * and wait for the commit. workshop_id (0: none) names the workshop whose
 * row fn locks: the batch locks those of all its jobs first, in id order,
 * so that instances' batches never wait for each other in a circle.
 */
enum thou_status thou_store_pg_write_raw(struct thou_store_pg *pg, thou_store_pg_raw_fn fn,
                                         void *ctx, int64_t workshop_id);

/** Run fn on a reading connection (autocommit: each statement on its own). */
enum thou_status thou_store_pg_read_raw(struct thou_store_pg *pg, thou_store_pg_raw_fn fn,
                                        void *ctx);

/**
 * One statement with text parameters (binary[i]: values[i] is lengths[i]
 * raw bytes, a bytea). The caller PQclears; NULL on failure, whose status
 * thou_store_pg_failure gives (THOU_EEXIST for a unique violation).
 */
struct pg_result *thou_store_pg_sql(struct thou_store_pg_conn *c, const char *sql, int n,
                                    const char *const *values, const int *lengths,
                                    const int *binary);
enum thou_status thou_store_pg_failure(const struct thou_store_pg_conn *c);

/** thou_store_pg_sql for a statement's effect; *changed (when not NULL) receives its row count. */
enum thou_status thou_store_pg_exec(struct thou_store_pg_conn *c, const char *sql, int n,
                                    const char *const *values, const int *lengths,
                                    const int *binary, size_t *changed);

/** This process's random instance name (it names its presence rows). */
const char *thou_store_pg_instance(const struct thou_store_pg *pg);

/**
 * Called on the listener thread when another instance's commit changed a
 * workshop's queue or pairs ("w<id> w" on the channel: ids only). Set it
 * before thou_store_set_remote_hook starts the listener.
 */
void thou_store_pg_set_workshop_hook(struct thou_store_pg *pg, void (*changed)(void *, int64_t),
                                     void *ctx);

/** The notification channel; a write sends "w<id> w" on it with pg_notify. */
#define THOU_STORE_PG_CHANNEL "thou_events"
