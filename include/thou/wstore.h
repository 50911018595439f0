#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/crypto.h"
#include "thou/status.h"
#include "thou/store.h"

/*
 * The workshops' tables (schema 4) behind plain functions, on top of the
 * store's raw access. Joining and pairing happen in one transaction of the
 * store's single writer: a join that returns has its place in the queue, and
 * every pair it made has its room, both seats and both participants' rows,
 * or none of it.
 */

#define THOU_WORKSHOP_CODE_LEN  8
#define THOU_WORKSHOP_TITLE_MAX 120 /* characters */
#define THOU_WORKSHOP_NOTE_MAX  280 /* characters */

enum thou_workshop_state {
    THOU_WORKSHOP_OPEN = 0,
    THOU_WORKSHOP_CLOSED = 1,
    THOU_WORKSHOP_ENDED = 2,
};

/* A participant's row. */
enum thou_wparticipant_state {
    THOU_WP_WAITING = 0,
    THOU_WP_PAIRED = 1,
    THOU_WP_LEFT = 2, /* gone from the queue for the presence timeout */
};

struct thou_workshop {
    int64_t id;
    char code[THOU_WORKSHOP_CODE_LEN + 1];
    char facilitator[65];
    char title[THOU_WORKSHOP_TITLE_MAX * 4 + 1];
    char set_id[THOU_SET_ID_MAX + 1];
    int set_version;
    enum thou_workshop_state state;
    int64_t released;
    bool paused;
    bool has_note;
    char note[THOU_WORKSHOP_NOTE_MAX * 4 + 1];
    int64_t timer_ends_ms; /* 0: none */
    int64_t capacity;
    int64_t created_ms;
    int64_t joined;                  /* participants ever: the next label is joined + 1 */
    int64_t pairs;                   /* pairs ever made */
    char study[THOU_SET_ID_MAX + 1]; /* "" when the workshop has no study */
};

/** Store a new workshop; *id receives its id. THOU_EEXIST when the code is taken. */
enum thou_status thou_wstore_create(struct thou_store *store, struct thou_workshop *w);

/** Read one workshop by id or (when id is 0) by code. THOU_ENOTFOUND when there is none. */
enum thou_status thou_wstore_get(struct thou_store *store, int64_t id, const char *code,
                                 struct thou_workshop *w);

/** Visit a facilitator's workshops, newest first. */
enum thou_status thou_wstore_list(struct thou_store *store, const char *facilitator,
                                  void (*visit)(void *ctx, const struct thou_workshop *w),
                                  void *ctx);

/** Write state, released, paused, note and timer of w (nothing else). */
enum thou_status thou_wstore_save(struct thou_store *store, const struct thou_workshop *w);

/** Asked by the writer, inside the transaction, about a waiting participant's presence. */
typedef void (*thou_wstore_presence_fn)(void *ctx, int64_t workshop_id, int64_t label,
                                        int64_t queued_ms, bool *connected, int64_t *last_seen_ms);

/** What a pairing needs to make rooms. */
struct thou_wstore_pairing {
    thou_wstore_presence_fn presence;
    void *presence_ctx;
    int64_t timeout_ms;
    const char *flow_json; /* a new room's flow (with the workshop's cap and pause) */
    int64_t room_ttl_ms;
    /* The study's conditions, in the study's order, each with its set's
     * version and a new room's flow: a pair of a study workshop is assigned
     * one by the study's block randomisation, inside the pairing's
     * transaction. With none, the pair keeps the workshop's set. */
    struct thou_wstore_condition {
        const char *set_id;
        int set_version;
        const char *flow_json;
    } conditions[8];
    size_t n_conditions;
};

/** One pair made, for the notifications after the commit. */
struct thou_wstore_pair {
    int64_t pair;
    int64_t label[2]; /* A, B */
    char room_id[THOU_ROOM_ID_LEN + 1];
};

#define THOU_WSTORE_MAX_PAIRS 64 /* reported per call; more are made, reported by the next read */

struct thou_wstore_outcome {
    struct thou_wstore_pair pairs[THOU_WSTORE_MAX_PAIRS];
    size_t n_pairs;
    size_t n_left; /* participants who left the queue */
};

/** A participant as the join and the wait stream see it. */
struct thou_wparticipant {
    int64_t workshop_id;
    int64_t label;
    enum thou_wparticipant_state state;
    bool left_behind;
    char room_id[THOU_ROOM_ID_LEN + 1]; /* empty unless paired */
    char role;                          /* 'A'/'B' when paired */
};

/**
 * Join workshop_id with token_hash, then pair whoever can be paired. The
 * same token_hash again changes nothing (a participant who left the queue
 * goes back in at its end). THOU_EGONE: ended; THOU_ECONFLICT: closed;
 * THOU_EFULL: capacity reached; THOU_EEXIST: the token belongs to another
 * workshop. *me is the participant after the pairing.
 */
enum thou_status thou_wstore_join(struct thou_store *store, int64_t workshop_id,
                                  const uint8_t token_hash[THOU_DIGEST_BYTES], int64_t now_ms,
                                  const struct thou_wstore_pairing *pairing,
                                  struct thou_wparticipant *me, struct thou_wstore_outcome *out);

/** Pair whoever can be paired, and let the long gone leave the queue. */
enum thou_status thou_wstore_pair_queue(struct thou_store *store, int64_t workshop_id,
                                        int64_t now_ms, const struct thou_wstore_pairing *pairing,
                                        struct thou_wstore_outcome *out);

/** Pair labels a and b by hand. THOU_EINVAL: a == b; THOU_ECONFLICT: one is not waiting. */
enum thou_status thou_wstore_pair_by_hand(struct thou_store *store, int64_t workshop_id,
                                          int64_t label_a, int64_t label_b, int64_t now_ms,
                                          const struct thou_wstore_pairing *pairing,
                                          struct thou_wstore_outcome *out);

/**
 * Put a paired participant back in the queue with a new token hash, marked
 * left behind. THOU_EEXIST when new_hash is in use.
 */
enum thou_status thou_wstore_requeue(struct thou_store *store, int64_t workshop_id, int64_t label,
                                     const uint8_t new_hash[THOU_DIGEST_BYTES], int64_t now_ms);

/** End the queue of an ended workshop: nobody waits any more. */
enum thou_status thou_wstore_clear_queue(struct thou_store *store, int64_t workshop_id);

/** The participant of a token hash. THOU_ENOTFOUND when none. */
enum thou_status thou_wstore_participant(struct thou_store *store,
                                         const uint8_t token_hash[THOU_DIGEST_BYTES],
                                         struct thou_wparticipant *p);

/** The participant labelled label in a workshop. THOU_ENOTFOUND when none. */
enum thou_status thou_wstore_participant_by_label(struct thou_store *store, int64_t workshop_id,
                                                  int64_t label, struct thou_wparticipant *p);

/** The participant seated in a room with a role. THOU_ENOTFOUND when none. */
enum thou_status thou_wstore_participant_in_room(struct thou_store *store, const char *room_id,
                                                 char role, struct thou_wparticipant *p);

/** The workshop a room belongs to: *workshop_id is 0 for a link room. */
enum thou_status thou_wstore_room_workshop(struct thou_store *store, const char *room_id,
                                           int64_t *workshop_id);

/** One waiting participant, for the dashboard. */
struct thou_wwaiting {
    int64_t label;
    int64_t queued_ms;
    bool left_behind;
    int64_t lease_ms; /* PostgreSQL: when its newest presence lease ends (any instance), 0: none */
};

/** One pair's room, for the dashboard. */
struct thou_wroom {
    int64_t pair;
    char room_id[THOU_ROOM_ID_LEN + 1];
    enum thou_room_state state;
    const char *flow_json;
    int64_t last_step_ms;
};

/** Visit the queue (in label order) and the rooms (in pair order; room may be NULL) of a workshop.
 */
enum thou_status thou_wstore_read(struct thou_store *store, int64_t workshop_id,
                                  void (*waiting)(void *ctx, const struct thou_wwaiting *w),
                                  void (*room)(void *ctx, const struct thou_wroom *r), void *ctx);
