#pragma once

#include "thou/facilitators.h"
#include "thou/store_pg.h"

/*
 * Facilitator accounts and sessions on PostgreSQL: the store's half of
 * facilitators.h, to which facilitators.c dispatches on a PostgreSQL store
 * (password hashing stays there, on the caller's thread). Every instance
 * reads the same accounts and sessions: a login on one is a login on all.
 */

enum thou_status thou_facilitators_pg_add(struct thou_store_pg *pg, const char *name,
                                          const char *hash, int64_t now_ms);
enum thou_status thou_facilitators_pg_set_password(struct thou_store_pg *pg, const char *name,
                                                   const char *hash);
enum thou_status thou_facilitators_pg_remove(struct thou_store_pg *pg, const char *name);
enum thou_status thou_facilitators_pg_list(struct thou_store_pg *pg,
                                           void (*visit)(void *ctx, const char *name), void *ctx);
/** The password hash of name into hash (len bytes); *found false for an unknown name. */
enum thou_status thou_facilitators_pg_hash(struct thou_store_pg *pg, const char *name, char *hash,
                                           size_t len, bool *found);
/** THOU_EAUTH when the account was removed meanwhile. */
enum thou_status thou_facilitators_pg_session_new(struct thou_store_pg *pg,
                                                  const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                  const struct thou_facilitator_session *session);
enum thou_status thou_facilitators_pg_session_get(struct thou_store_pg *pg,
                                                  const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                  int64_t now_ms,
                                                  struct thou_facilitator_session *session,
                                                  bool *found);
enum thou_status thou_facilitators_pg_session_revoke(struct thou_store_pg *pg,
                                                     const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                     int64_t now_ms);
