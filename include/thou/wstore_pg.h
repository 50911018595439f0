#pragma once

#include "thou/store_pg.h"
#include "thou/wstore.h"

/*
 * The workshops' tables on PostgreSQL: the same functions as wstore.h, to
 * which wstore.c dispatches when the store is a PostgreSQL one. Joining and
 * pairing hold the workshop's row lock (SELECT … FOR UPDATE) until the
 * batch commits, so instances sharing the database take turns with a
 * workshop's queue: nobody is paired twice, no room gets a third seat, and
 * labels stay one per arrival.
 *
 * A waiting participant's presence is shared as a lease in the presence
 * table (room_id "w<workshop>.<label>", role "W"), renewed by the instance
 * holding the wait stream; a pairing on any instance counts it as present
 * while the lease lasts. Each commit that changes a queue sends "w<id> w"
 * on the notification channel (ids only).
 */

/** How long a waiter's lease lasts unless renewed (renewed every second or so). */
#define THOU_WSTORE_PG_LEASE_MS 10000

enum thou_status thou_wstore_pg_create(struct thou_store_pg *pg, struct thou_workshop *w);
enum thou_status thou_wstore_pg_get(struct thou_store_pg *pg, int64_t id, const char *code,
                                    struct thou_workshop *w);
enum thou_status thou_wstore_pg_list(struct thou_store_pg *pg, const char *facilitator,
                                     void (*visit)(void *ctx, const struct thou_workshop *w),
                                     void *ctx);
enum thou_status thou_wstore_pg_save(struct thou_store_pg *pg, const struct thou_workshop *w);
enum thou_status thou_wstore_pg_join(struct thou_store_pg *pg, int64_t workshop_id,
                                     const uint8_t token_hash[THOU_DIGEST_BYTES], int64_t now_ms,
                                     const struct thou_wstore_pairing *pairing,
                                     struct thou_wparticipant *me, struct thou_wstore_outcome *out);
enum thou_status thou_wstore_pg_pair_queue(struct thou_store_pg *pg, int64_t workshop_id,
                                           int64_t now_ms,
                                           const struct thou_wstore_pairing *pairing,
                                           struct thou_wstore_outcome *out);
enum thou_status thou_wstore_pg_pair_by_hand(struct thou_store_pg *pg, int64_t workshop_id,
                                             int64_t label_a, int64_t label_b, int64_t now_ms,
                                             const struct thou_wstore_pairing *pairing,
                                             struct thou_wstore_outcome *out);
enum thou_status thou_wstore_pg_requeue(struct thou_store_pg *pg, int64_t workshop_id,
                                        int64_t label, const uint8_t new_hash[THOU_DIGEST_BYTES],
                                        int64_t now_ms);
enum thou_status thou_wstore_pg_clear_queue(struct thou_store_pg *pg, int64_t workshop_id);
enum thou_status thou_wstore_pg_participant(struct thou_store_pg *pg,
                                            const uint8_t token_hash[THOU_DIGEST_BYTES],
                                            struct thou_wparticipant *p);
enum thou_status thou_wstore_pg_participant_by_label(struct thou_store_pg *pg, int64_t workshop_id,
                                                     int64_t label, struct thou_wparticipant *p);
enum thou_status thou_wstore_pg_participant_in_room(struct thou_store_pg *pg, const char *room_id,
                                                    char role, struct thou_wparticipant *p);
enum thou_status thou_wstore_pg_room_workshop(struct thou_store_pg *pg, const char *room_id,
                                              int64_t *workshop_id);
enum thou_status thou_wstore_pg_read(struct thou_store_pg *pg, int64_t workshop_id,
                                     void (*waiting)(void *ctx, const struct thou_wwaiting *w),
                                     void (*room)(void *ctx, const struct thou_wroom *r),
                                     void *ctx);

/**
 * Renew (present) or end (not present: last seen now) this instance's
 * leases of a workshop's waiting labels, in one statement. Best effort: a
 * failure lets the leases run out, as a killed instance's do.
 */
void thou_wstore_pg_presence(struct thou_store_pg *pg, int64_t workshop_id, const int64_t *labels,
                             size_t n, bool present, int64_t now_ms);

/**
 * Delete waiters' leases that ended over two hours ago (longer than any
 * presence timeout): a stream closed after its pairing leaves one behind.
 */
void thou_wstore_pg_sweep_leases(struct thou_store_pg *pg, int64_t now_ms);
