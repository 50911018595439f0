#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thou/crypto.h"
#include "thou/status.h"

/*
 * Facilitator accounts and their login sessions, kept in the store
 * (schema 4). Passwords are stored as Argon2id strings (crypto_pwhash_str,
 * interactive limits); sessions by the hash of their token, each with a
 * CSRF token and an expiry. Hashing a password takes a tenth of a second
 * and 64 MiB on purpose: it runs on the caller's thread, never on the
 * store's writer.
 */

struct thou_store;

#define THOU_FACILITATOR_NAME_MAX 64
#define THOU_PASSWORD_MAX         1024
#define THOU_CSRF_LEN             THOU_TOKEN_B64_LEN

/** 1..64 characters of A-Z a-z 0-9 . _ - */
bool thou_facilitator_name_valid(const char *name);

/** A password of 1..THOU_PASSWORD_MAX bytes. */
bool thou_facilitator_password_valid(size_t len);

/** A new account. THOU_EEXIST when the name is taken, THOU_EINVAL for a bad name or password. */
enum thou_status thou_facilitators_add(struct thou_store *store, const char *name,
                                       const char *password, size_t len, int64_t now_ms);

/** A new password; the account's sessions end. THOU_ENOTFOUND for an unknown name. */
enum thou_status thou_facilitators_set_password(struct thou_store *store, const char *name,
                                                const char *password, size_t len);

/** Delete an account and its sessions (its workshops stay). THOU_ENOTFOUND when unknown. */
enum thou_status thou_facilitators_remove(struct thou_store *store, const char *name);

/** Visit every account's name in name order. */
enum thou_status thou_facilitators_list(struct thou_store *store,
                                        void (*visit)(void *ctx, const char *name), void *ctx);

/**
 * Check a password. THOU_EAUTH for an unknown name or a wrong password; an
 * unknown name costs the same work as a known one (a hash is verified
 * either way), so timing does not tell which names exist.
 */
enum thou_status thou_facilitators_verify(struct thou_store *store, const char *name,
                                          const char *password, size_t len);

struct thou_facilitator_session {
    char name[THOU_FACILITATOR_NAME_MAX + 1];
    char csrf[THOU_CSRF_LEN + 1];
    int64_t expires_ms;
};

/** Start a session for name lasting ttl_ms: token receives the cookie's value. */
enum thou_status thou_facilitators_session_new(struct thou_store *store, const char *name,
                                               int64_t now_ms, int64_t ttl_ms,
                                               char token[THOU_TOKEN_B64_LEN + 1],
                                               struct thou_facilitator_session *session);

/** The live session of a token. THOU_EAUTH when unknown, revoked or expired. */
enum thou_status thou_facilitators_session_get(struct thou_store *store, const char *token,
                                               int64_t now_ms,
                                               struct thou_facilitator_session *session);

/** End the session of a token now (also deletes every expired one). */
enum thou_status thou_facilitators_session_revoke(struct thou_store *store, const char *token,
                                                  int64_t now_ms);
