#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "thou/store.h"

/*
 * Who a bearer token is, remembered after the store said so once. Only
 * facts that never change once a participant exists are kept (the room,
 * the role, the room's question set and its expiry), so an entry never goes
 * stale; whether the room still exists is decided where it is written, by
 * the store. Bounded and thread-safe; a miss just means asking the store.
 * The one exception, a seat moving to another token, is forgotten by
 * thou_sessions_forget; an answer the store gave before such a move is not
 * remembered after it (thou_sessions_epoch, thou_sessions_put_since).
 */

struct thou_session {
    char room_id[THOU_ROOM_ID_LEN + 1];
    char role;
    char set_id[THOU_SET_ID_MAX + 1];
    int set_version;
    int64_t expires_ms;
};

struct thou_sessions;

/** New empty cache; aborts on out-of-memory. */
struct thou_sessions *thou_sessions_new(void);

/** Free; NULL is a no-op. */
void thou_sessions_free(struct thou_sessions *sessions);

/** The session of token_hash in room_id, if known. */
bool thou_sessions_get(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const char *room_id, struct thou_session *out);

/** Remember a session the store has confirmed (replacing whatever shared its slot). */
void thou_sessions_put(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const struct thou_session *session);

/** Forget token_hash (its seat moved to another token): the next request asks the store. */
void thou_sessions_forget(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN]);

/**
 * Forget every token of role in room_id: its seat moved on another instance
 * sharing the store, which named the seat, not the token.
 */
void thou_sessions_forget_seat(struct thou_sessions *sessions, const char *room_id, char role);

/** Forget every token (notices of seat moves on other instances may have been missed). */
void thou_sessions_forget_all(struct thou_sessions *sessions);

/** A number that changes whenever a token is forgotten; read it before asking the store. */
unsigned long thou_sessions_epoch(struct thou_sessions *sessions);

/**
 * thou_sessions_put, unless a token was forgotten since epoch: the store's
 * answer may then predate a seat's move, so it is used once, not kept.
 */
void thou_sessions_put_since(struct thou_sessions *sessions,
                             const uint8_t token_hash[THOU_HASH_LEN],
                             const struct thou_session *session, unsigned long epoch);
