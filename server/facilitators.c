/*
 * Facilitator accounts and sessions (include/thou/facilitators.h).
 */
#include "thou/facilitators.h"
#include "thou/facilitators_pg.h"
#include "thou/store.h"

#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

bool thou_facilitator_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > THOU_FACILITATOR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool thou_facilitator_password_valid(size_t len)
{
    return len >= 1 && len <= THOU_PASSWORD_MAX;
}

static enum thou_status hash_password(const char *password, size_t len,
                                      char out[crypto_pwhash_STRBYTES])
{
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return THOU_ENOMEM; /* libsodium fails only when it cannot get the memory */
    return THOU_OK;
}

/* One statement with text parameters (NULL ends them); returns SQLITE_DONE,
 * SQLITE_ROW (the statement is then handed back in *out) or an error. */
static int run(sqlite3 *db, const char *sql, sqlite3_stmt **out, const char *const *texts,
               size_t n_texts)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    for (size_t i = 0; i < n_texts; i++)
        sqlite3_bind_text(s, (int)i + 1, texts[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && out) {
        *out = s;
        return rc;
    }
    sqlite3_finalize(s);
    return rc;
}

static enum thou_status status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return THOU_OK;
    case SQLITE_CONSTRAINT:
        return THOU_EEXIST;
    default:
        return THOU_EIO;
    }
}

/* ---- accounts ------------------------------------------------------------- */

struct account_args {
    const char *name;
    const char *hash;
    int64_t now_ms;
};

static enum thou_status add_run(void *ctx, sqlite3 *db)
{
    const struct account_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(
        db, "INSERT INTO facilitators (name, password_hash, created_ms) VALUES (?, ?, ?)", -1, &s,
        NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, a->hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, a->now_ms);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return status_of(rc);
}

enum thou_status thou_facilitators_add(struct thou_store *store, const char *name,
                                       const char *password, size_t len, int64_t now_ms)
{
    if (!thou_facilitator_name_valid(name) || !thou_facilitator_password_valid(len))
        return THOU_EINVAL;
    char hash[crypto_pwhash_STRBYTES];
    enum thou_status rc = hash_password(password, len, hash);
    if (rc)
        return rc;
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_add(thou_store_pg_of(store), name, hash, now_ms);
    struct account_args args = {name, hash, now_ms};
    return thou_store_write_raw(store, add_run, &args);
}

static enum thou_status passwd_run(void *ctx, sqlite3 *db)
{
    const struct account_args *a = ctx;
    const char *update[] = {a->hash, a->name};
    int rc = run(db, "UPDATE facilitators SET password_hash = ? WHERE name = ?", NULL, update, 2);
    if (rc != SQLITE_DONE)
        return status_of(rc);
    if (sqlite3_changes(db) == 0)
        return THOU_ENOTFOUND;
    /* Whoever knew the old password is logged out with it. */
    return status_of(
        run(db, "DELETE FROM facilitator_sessions WHERE facilitator = ?", NULL, &a->name, 1));
}

enum thou_status thou_facilitators_set_password(struct thou_store *store, const char *name,
                                                const char *password, size_t len)
{
    if (!thou_facilitator_password_valid(len))
        return THOU_EINVAL;
    char hash[crypto_pwhash_STRBYTES];
    enum thou_status rc = hash_password(password, len, hash);
    if (rc)
        return rc;
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_set_password(thou_store_pg_of(store), name, hash);
    struct account_args args = {name, hash, 0};
    return thou_store_write_raw(store, passwd_run, &args);
}

static enum thou_status remove_run(void *ctx, sqlite3 *db)
{
    const char *name = ctx;
    int rc = run(db, "DELETE FROM facilitators WHERE name = ?", NULL, &name, 1);
    if (rc != SQLITE_DONE)
        return status_of(rc);
    return sqlite3_changes(db) ? THOU_OK : THOU_ENOTFOUND;
}

enum thou_status thou_facilitators_remove(struct thou_store *store, const char *name)
{
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_remove(thou_store_pg_of(store), name);
    return thou_store_write_raw(store, remove_run, (void *)(uintptr_t)name);
}

struct list_args {
    void (*visit)(void *ctx, const char *name);
    void *ctx;
};

static enum thou_status list_run(void *ctx, sqlite3 *db)
{
    const struct list_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM facilitators ORDER BY name", -1, &s, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        a->visit(a->ctx, (const char *)sqlite3_column_text(s, 0));
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return status_of(rc);
}

enum thou_status thou_facilitators_list(struct thou_store *store,
                                        void (*visit)(void *ctx, const char *name), void *ctx)
{
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_list(thou_store_pg_of(store), visit, ctx);
    struct list_args args = {visit, ctx};
    return thou_store_read_raw(store, list_run, &args);
}

struct hash_args {
    const char *name;
    char hash[crypto_pwhash_STRBYTES];
    bool found;
};

static enum thou_status hash_run(void *ctx, sqlite3 *db)
{
    struct hash_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc = run(db, "SELECT password_hash FROM facilitators WHERE name = ?", &s, &a->name, 1);
    if (rc == SQLITE_ROW) {
        snprintf(a->hash, sizeof(a->hash), "%s", (const char *)sqlite3_column_text(s, 0));
        a->found = true;
        sqlite3_finalize(s);
        return THOU_OK;
    }
    return status_of(rc);
}

/* A hash of a random password, verified against for unknown names. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    char password[33];
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof(bytes));
    sodium_bin2hex(password, sizeof(password), bytes, sizeof(bytes));
    if (hash_password(password, strlen(password), dummy_hash))
        dummy_hash[0] = '\0';
}

enum thou_status thou_facilitators_verify(struct thou_store *store, const char *name,
                                          const char *password, size_t len)
{
    struct hash_args args = {.name = name};
    enum thou_status rc = thou_store_pg_of(store)
                              ? thou_facilitators_pg_hash(thou_store_pg_of(store), name, args.hash,
                                                          sizeof(args.hash), &args.found)
                              : thou_store_read_raw(store, hash_run, &args);
    if (rc)
        return rc;
    pthread_once(&dummy_once, make_dummy);
    const char *hash = args.found ? args.hash : dummy_hash;
    bool match = hash[0] && crypto_pwhash_str_verify(hash, password, len) == 0;
    return match && args.found ? THOU_OK : THOU_EAUTH;
}

/* ---- sessions --------------------------------------------------------------- */

struct session_args {
    uint8_t token_hash[THOU_DIGEST_BYTES];
    int64_t now_ms;
    struct thou_facilitator_session *session;
    bool found;
};

static enum thou_status session_new_run(void *ctx, sqlite3 *db)
{
    struct session_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc =
        sqlite3_prepare_v2(db,
                           "INSERT INTO facilitator_sessions (token_hash, facilitator, csrf,"
                           " expires_ms) SELECT ?, name, ?, ? FROM facilitators WHERE name = ?",
                           -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(s, 1, a->token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, a->session->csrf, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, a->session->expires_ms);
        sqlite3_bind_text(s, 4, a->session->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return status_of(rc);
    return sqlite3_changes(db) ? THOU_OK : THOU_EAUTH; /* removed meanwhile */
}

enum thou_status thou_facilitators_session_new(struct thou_store *store, const char *name,
                                               int64_t now_ms, int64_t ttl_ms,
                                               char token[THOU_TOKEN_B64_LEN + 1],
                                               struct thou_facilitator_session *session)
{
    struct session_args args = {.now_ms = now_ms, .session = session};
    uint8_t csrf_hash[THOU_DIGEST_BYTES];
    memset(session, 0, sizeof(*session));
    snprintf(session->name, sizeof(session->name), "%s", name);
    session->expires_ms = now_ms + ttl_ms;
    thou_crypto_new_token(session->csrf, csrf_hash);
    thou_crypto_new_token(token, args.token_hash);
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_session_new(thou_store_pg_of(store), args.token_hash, session);
    return thou_store_write_raw(store, session_new_run, &args);
}

static enum thou_status session_get_run(void *ctx, sqlite3 *db)
{
    struct session_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT facilitator, csrf, expires_ms FROM facilitator_sessions"
                                " WHERE token_hash = ? AND expires_ms > ?",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(s, 1, a->token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, a->now_ms);
        rc = sqlite3_step(s);
    }
    if (rc == SQLITE_ROW) {
        snprintf(a->session->name, sizeof(a->session->name), "%s",
                 (const char *)sqlite3_column_text(s, 0));
        snprintf(a->session->csrf, sizeof(a->session->csrf), "%s",
                 (const char *)sqlite3_column_text(s, 1));
        a->session->expires_ms = sqlite3_column_int64(s, 2);
        a->found = true;
    }
    sqlite3_finalize(s);
    return status_of(rc);
}

enum thou_status thou_facilitators_session_get(struct thou_store *store, const char *token,
                                               int64_t now_ms,
                                               struct thou_facilitator_session *session)
{
    struct session_args args = {.now_ms = now_ms, .session = session};
    if (!token || thou_crypto_token_hash(token, args.token_hash))
        return THOU_EAUTH;
    enum thou_status rc =
        thou_store_pg_of(store)
            ? thou_facilitators_pg_session_get(thou_store_pg_of(store), args.token_hash, now_ms,
                                               session, &args.found)
            : thou_store_read_raw(store, session_get_run, &args);
    if (rc)
        return rc;
    return args.found ? THOU_OK : THOU_EAUTH;
}

static enum thou_status revoke_run(void *ctx, sqlite3 *db)
{
    struct session_args *a = ctx;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(
        db, "DELETE FROM facilitator_sessions WHERE token_hash = ? OR expires_ms <= ?", -1, &s,
        NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(s, 1, a->token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, a->now_ms);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return status_of(rc);
}

enum thou_status thou_facilitators_session_revoke(struct thou_store *store, const char *token,
                                                  int64_t now_ms)
{
    struct session_args args = {.now_ms = now_ms};
    if (!token || thou_crypto_token_hash(token, args.token_hash))
        return THOU_EAUTH;
    if (thou_store_pg_of(store))
        return thou_facilitators_pg_session_revoke(thou_store_pg_of(store), args.token_hash,
                                                   now_ms);
    return thou_store_write_raw(store, revoke_run, &args);
}
