/*
 * Facilitator accounts and sessions on PostgreSQL (include/thou/facilitators_pg.h).
 */
#include "thou/facilitators_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct thou_store_pg_conn conn_t;

/* ---- accounts ------------------------------------------------------------- */

struct account_args {
    const char *name;
    const char *hash;
    int64_t now_ms;
};

static enum thou_status add_run(void *ctx, conn_t *c)
{
    const struct account_args *a = ctx;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)a->now_ms);
    const char *values[] = {a->name, a->hash, now};
    return thou_store_pg_exec(
        c, "INSERT INTO facilitators (name, password_hash, created_ms) VALUES ($1, $2, $3)", 3,
        values, NULL, NULL, NULL);
}

enum thou_status thou_facilitators_pg_add(struct thou_store_pg *pg, const char *name,
                                          const char *hash, int64_t now_ms)
{
    struct account_args args = {name, hash, now_ms};
    return thou_store_pg_write_raw(pg, add_run, &args, 0);
}

static enum thou_status passwd_run(void *ctx, conn_t *c)
{
    const struct account_args *a = ctx;
    const char *values[] = {a->hash, a->name};
    size_t changed = 0;
    enum thou_status rc =
        thou_store_pg_exec(c, "UPDATE facilitators SET password_hash = $1 WHERE name = $2", 2,
                           values, NULL, NULL, &changed);
    if (rc)
        return rc;
    if (!changed)
        return THOU_ENOTFOUND;
    /* Whoever knew the old password is logged out with it, on every instance. */
    return thou_store_pg_exec(c, "DELETE FROM facilitator_sessions WHERE facilitator = $1", 1,
                              &a->name, NULL, NULL, NULL);
}

enum thou_status thou_facilitators_pg_set_password(struct thou_store_pg *pg, const char *name,
                                                   const char *hash)
{
    struct account_args args = {name, hash, 0};
    return thou_store_pg_write_raw(pg, passwd_run, &args, 0);
}

static enum thou_status remove_run(void *ctx, conn_t *c)
{
    const char *name = ctx;
    size_t changed = 0;
    enum thou_status rc = thou_store_pg_exec(c, "DELETE FROM facilitators WHERE name = $1", 1,
                                             &name, NULL, NULL, &changed);
    if (rc)
        return rc;
    return changed ? THOU_OK : THOU_ENOTFOUND;
}

enum thou_status thou_facilitators_pg_remove(struct thou_store_pg *pg, const char *name)
{
    return thou_store_pg_write_raw(pg, remove_run, (void *)(uintptr_t)name, 0);
}

struct list_args {
    void (*visit)(void *ctx, const char *name);
    void *ctx;
};

static enum thou_status list_run(void *ctx, conn_t *c)
{
    const struct list_args *a = ctx;
    PGresult *res = thou_store_pg_sql(
        c, "SELECT name FROM facilitators ORDER BY name COLLATE \"C\"", 0, NULL, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    for (int i = 0; i < PQntuples(res); i++)
        a->visit(a->ctx, PQgetvalue(res, i, 0));
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_facilitators_pg_list(struct thou_store_pg *pg,
                                           void (*visit)(void *ctx, const char *name), void *ctx)
{
    struct list_args args = {visit, ctx};
    return thou_store_pg_read_raw(pg, list_run, &args);
}

struct hash_args {
    const char *name;
    char *hash;
    size_t len;
    bool found;
};

static enum thou_status hash_run(void *ctx, conn_t *c)
{
    struct hash_args *a = ctx;
    PGresult *res = thou_store_pg_sql(c, "SELECT password_hash FROM facilitators WHERE name = $1",
                                      1, &a->name, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    if (PQntuples(res) > 0) {
        snprintf(a->hash, a->len, "%s", PQgetvalue(res, 0, 0));
        a->found = true;
    }
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_facilitators_pg_hash(struct thou_store_pg *pg, const char *name, char *hash,
                                           size_t len, bool *found)
{
    struct hash_args args = {name, hash, len, false};
    enum thou_status rc = thou_store_pg_read_raw(pg, hash_run, &args);
    *found = rc == THOU_OK && args.found;
    return rc;
}

/* ---- sessions --------------------------------------------------------------- */

struct session_args {
    const uint8_t *token_hash;
    int64_t now_ms;
    struct thou_facilitator_session *session;
    bool found;
    const struct thou_facilitator_session *new_session;
};

static enum thou_status session_new_run(void *ctx, conn_t *c)
{
    struct session_args *a = ctx;
    char expires[24];
    snprintf(expires, sizeof(expires), "%lld", (long long)a->new_session->expires_ms);
    const char *values[] = {(const char *)a->token_hash, a->new_session->csrf, expires,
                            a->new_session->name};
    const int lengths[] = {THOU_DIGEST_BYTES, 0, 0, 0};
    const int binary[] = {1, 0, 0, 0};
    size_t changed = 0;
    enum thou_status rc =
        thou_store_pg_exec(c,
                           "INSERT INTO facilitator_sessions (token_hash, facilitator, csrf,"
                           " expires_ms) SELECT $1, name, $2, $3 FROM facilitators"
                           " WHERE name = $4",
                           4, values, lengths, binary, &changed);
    if (rc)
        return rc;
    return changed ? THOU_OK : THOU_EAUTH; /* removed meanwhile */
}

enum thou_status thou_facilitators_pg_session_new(struct thou_store_pg *pg,
                                                  const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                  const struct thou_facilitator_session *session)
{
    struct session_args args = {token_hash, 0, NULL, false, session};
    return thou_store_pg_write_raw(pg, session_new_run, &args, 0);
}

static enum thou_status session_get_run(void *ctx, conn_t *c)
{
    struct session_args *a = ctx;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)a->now_ms);
    const char *values[] = {(const char *)a->token_hash, now};
    const int lengths[] = {THOU_DIGEST_BYTES, 0};
    const int binary[] = {1, 0};
    PGresult *res = thou_store_pg_sql(c,
                                      "SELECT facilitator, csrf, expires_ms FROM"
                                      " facilitator_sessions WHERE token_hash = $1"
                                      " AND expires_ms > $2",
                                      2, values, lengths, binary);
    if (!res)
        return thou_store_pg_failure(c);
    if (PQntuples(res) > 0) {
        snprintf(a->session->name, sizeof(a->session->name), "%s", PQgetvalue(res, 0, 0));
        snprintf(a->session->csrf, sizeof(a->session->csrf), "%s", PQgetvalue(res, 0, 1));
        a->session->expires_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        a->found = true;
    }
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_facilitators_pg_session_get(struct thou_store_pg *pg,
                                                  const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                  int64_t now_ms,
                                                  struct thou_facilitator_session *session,
                                                  bool *found)
{
    struct session_args args = {token_hash, now_ms, session, false, NULL};
    enum thou_status rc = thou_store_pg_read_raw(pg, session_get_run, &args);
    *found = rc == THOU_OK && args.found;
    return rc;
}

static enum thou_status revoke_run(void *ctx, conn_t *c)
{
    struct session_args *a = ctx;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)a->now_ms);
    const char *values[] = {(const char *)a->token_hash, now};
    const int lengths[] = {THOU_DIGEST_BYTES, 0};
    const int binary[] = {1, 0};
    return thou_store_pg_exec(
        c, "DELETE FROM facilitator_sessions WHERE token_hash = $1 OR expires_ms <= $2", 2, values,
        lengths, binary, NULL);
}

enum thou_status thou_facilitators_pg_session_revoke(struct thou_store_pg *pg,
                                                     const uint8_t token_hash[THOU_DIGEST_BYTES],
                                                     int64_t now_ms)
{
    struct session_args args = {token_hash, now_ms, NULL, false, NULL};
    return thou_store_pg_write_raw(pg, revoke_run, &args, 0);
}
