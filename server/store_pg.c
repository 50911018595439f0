#include "thou/store_pg.h"
#include "thou/buf.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/studies.h"

#include <jansson.h>
#include <sodium.h>

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Migration i takes the schema from version i to i + 1, numbered like the
 * SQLite migrations so that one THOU_SCHEMA_VERSION names the same tables on
 * both. Versions 1 and 2 never shipped on PostgreSQL: the first migration
 * that does anything creates version 3 at once. Never edit a migration that
 * has shipped; append one for each new SQLite migration.
 *
 * Unlike SQLite's, the rooms row keeps last_seq and bytes: the per-room
 * counter that instances take under the row's lock, and the room's size for
 * its limit, both read and advanced inside the event's own transaction.
 */
static const char *const pg_migrations[] = {
    NULL,
    NULL,
    "CREATE TABLE rooms ("
    "  id text PRIMARY KEY,"
    "  set_id text NOT NULL,"
    "  set_version integer NOT NULL,"
    "  state integer NOT NULL,"
    "  join_verifier bytea NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  expires_ms bigint NOT NULL,"
    "  last_seq bigint NOT NULL DEFAULT 0,"
    "  bytes bigint NOT NULL DEFAULT 0,"
    "  flow text"
    ");"
    "CREATE INDEX rooms_expiry ON rooms(expires_ms);"
    "CREATE TABLE participants ("
    "  room_id text NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role text NOT NULL CHECK (role IN ('A', 'B')),"
    "  token_hash bytea NOT NULL UNIQUE,"
    "  joined_ms bigint NOT NULL,"
    "  PRIMARY KEY (room_id, role)"
    ");"
    "CREATE TABLE events ("
    "  room_id text NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  seq bigint NOT NULL,"
    "  type text NOT NULL,"
    "  sender text NOT NULL,"
    "  visible_to text,"
    "  data text NOT NULL,"
    "  time_ms bigint NOT NULL,"
    "  PRIMARY KEY (room_id, seq)"
    ");"
    "CREATE TABLE tombstones ("
    "  room_id text PRIMARY KEY,"
    "  gone_ms bigint NOT NULL"
    ");"
    /* Rate limits shared by the instances (thou_store_rate_take). Unlogged:
     * a crash of the database forgets them, as a restart of one instance
     * forgets its own, and they cost no WAL. */
    /* Who has a stream open where (thou_store_presence_publish): each
     * instance's rows hold a lease it renews, so a killed instance's
     * partners stop counting as present when the lease runs out. */
    "CREATE UNLOGGED TABLE presence ("
    "  room_id text NOT NULL,"
    "  role text NOT NULL,"
    "  instance text NOT NULL,"
    "  expires_ms bigint NOT NULL,"
    "  PRIMARY KEY (room_id, role, instance)"
    ");"
    "CREATE UNLOGGED TABLE rate_buckets ("
    "  bucket text PRIMARY KEY,"
    "  tokens double precision NOT NULL,"
    "  updated_ms bigint NOT NULL,"
    "  allowed boolean NOT NULL"
    ");",
    /* 4: workshops (another change; empty on SQLite too until then) */
    NULL,
    /* 5: research studies (docs/research.md), as SQLite's migration 5. */
    "CREATE TABLE studies ("
    "  name text PRIMARY KEY,"
    "  public_key bytea NOT NULL,"
    "  conditions text NOT NULL,"
    "  closeness integer NOT NULL,"
    "  seed bytea NOT NULL,"
    "  assigned bigint NOT NULL DEFAULT 0,"
    "  created_ms bigint NOT NULL"
    ");"
    "ALTER TABLE rooms ADD COLUMN study text;"
    "ALTER TABLE rooms ADD COLUMN study_condition text;"
    "CREATE INDEX rooms_by_study ON rooms(study) WHERE study IS NOT NULL;"
    "CREATE TABLE research_copies ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  room_id text NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role text NOT NULL CHECK (role IN ('A', 'B')),"
    "  step text NOT NULL,"
    "  sealed text,"
    "  state integer NOT NULL DEFAULT 0,"
    "  hour bigint NOT NULL,"
    "  UNIQUE (room_id, role, step)"
    ");"
    "CREATE TABLE research_releases ("
    "  room_id text NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role text NOT NULL CHECK (role IN ('A', 'B')),"
    "  PRIMARY KEY (room_id, role)"
    ");",
};
#define N_PG_MIGRATIONS ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

_Static_assert(N_PG_MIGRATIONS == THOU_SCHEMA_VERSION,
               "one PostgreSQL migration per schema version");

/* The NOTIFY channel: payload "<room id> <seq>", never content. */
#define CHANNEL "thou_events"
/* Serialises migrations of instances that start at the same time ('thou'). */
#define MIGRATION_LOCK_TEXT "1953002613"
/* A stream's events are re-read at least this often, in case a
 * notification was lost with the listening connection. */
#define CATCH_UP_MS 10000
#define MAX_BATCH   512
/* A job that lost a deadlock between two instances' batches runs again. */
#define DEADLOCK_RETRIES    5
#define RATE_BUCKET_IDLE_MS (7LL * 24 * 3600 * 1000)
#define RECONNECT_MS        1000
/* A presence row lives this long unless its instance renews it (each catch-up). */
#define PRESENCE_LEASE_MS (2 * CATCH_UP_MS + 5000)
#define N_READERS         4

enum stmt_id {
    ST_PING,
    ST_ROOM_INSERT,
    ST_PARTICIPANT_INSERT,
    ST_JOIN_B,
    ST_ROOM_GET,
    ST_ROOM_LOCK,
    ST_TOMBSTONE_GET,
    ST_ROOM_ACTIVATE,
    ST_ROLE_BY_TOKEN,
    ST_EVENT_INSERT,
    ST_ROOM_ADVANCE,
    ST_ROOM_ADVANCE_NOTIFY,
    ST_EVENTS_AFTER,
    ST_ROOM_DELETE,
    ST_NOTIFY_ERASED,
    ST_EXPIRED_DELETE,
    ST_TOMBSTONE_SWEEP,
    ST_FIND_EVENT,
    ST_RATE_TAKE,
    ST_RATE_SWEEP,
    ST_LOCK_ROOMS,
    ST_PRESENCE_ON,
    ST_PRESENCE_OFF,
    ST_PRESENCE_ELSEWHERE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_ROOM_INSERT] = "INSERT INTO rooms (id, set_id, set_version, state, join_verifier,"
                       " created_ms, expires_ms, flow) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_PARTICIPANT_INSERT] =
        "INSERT INTO participants (room_id, role, token_hash, joined_ms) VALUES ($1, $2, $3, $4)",
    /* A racing join on another instance waits for this one's commit and
     * then inserts nothing: the seat is taken once. */
    [ST_JOIN_B] = "INSERT INTO participants (room_id, role, token_hash, joined_ms)"
                  " VALUES ($1, 'B', $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
    [ST_ROOM_GET] = "SELECT set_id, set_version, state, encode(join_verifier, 'hex'), created_ms,"
                    " expires_ms, last_seq, flow, bytes, EXISTS (SELECT 1 FROM participants p"
                    " WHERE p.room_id = rooms.id AND p.role = 'B')"
                    " FROM rooms WHERE id = $1",
    /* The room's row lock orders every writer of the room, on any instance. */
    [ST_ROOM_LOCK] = "SELECT set_id, set_version, state, encode(join_verifier, 'hex'), created_ms,"
                     " expires_ms, last_seq, flow, bytes, EXISTS (SELECT 1 FROM participants p"
                     " WHERE p.room_id = rooms.id AND p.role = 'B')"
                     " FROM rooms WHERE id = $1 FOR UPDATE",
    [ST_TOMBSTONE_GET] = "SELECT 1 FROM tombstones WHERE room_id = $1",
    [ST_ROOM_ACTIVATE] = "UPDATE rooms SET state = 1 WHERE id = $1 AND state = 0",
    [ST_ROLE_BY_TOKEN] = "SELECT role FROM participants WHERE room_id = $1 AND token_hash = $2",
    [ST_EVENT_INSERT] = "INSERT INTO events (room_id, seq, type, sender, visible_to, data, time_ms)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
    [ST_ROOM_ADVANCE] = "UPDATE rooms SET last_seq = $2, bytes = $3, state = $4,"
                        " flow = COALESCE($5, flow) WHERE id = $1",
    /* NOTIFY is sent at commit, and only if the transaction commits. */
    [ST_ROOM_ADVANCE_NOTIFY] = "UPDATE rooms SET last_seq = $2, bytes = $3, state = $4,"
                               " flow = COALESCE($5, flow) WHERE id = $1"
                               " RETURNING pg_notify('" CHANNEL "', id || ' ' || last_seq)",
    [ST_EVENTS_AFTER] = "SELECT seq, type, sender, visible_to, data, time_ms FROM events"
                        " WHERE room_id = $1 AND seq > $2 AND (visible_to IS NULL OR visible_to ="
                        " $3) ORDER BY seq LIMIT $4",
    [ST_ROOM_DELETE] = "WITH gone AS (DELETE FROM rooms WHERE id = $1 RETURNING id)"
                       " INSERT INTO tombstones (room_id, gone_ms) SELECT id, $2 FROM gone"
                       " ON CONFLICT (room_id) DO UPDATE SET gone_ms = EXCLUDED.gone_ms",
    [ST_NOTIFY_ERASED] = "SELECT pg_notify('" CHANNEL "', $1 || ' -1')",
    /* SKIP LOCKED: instances sweeping at once share the work instead of
     * queueing on each other's rows. */
    [ST_EXPIRED_DELETE] =
        "WITH gone AS (DELETE FROM rooms WHERE id IN (SELECT id FROM rooms WHERE expires_ms <= $1"
        " LIMIT 256 FOR UPDATE SKIP LOCKED) RETURNING id)"
        " INSERT INTO tombstones (room_id, gone_ms) SELECT id, $1 FROM gone"
        " ON CONFLICT (room_id) DO UPDATE SET gone_ms = EXCLUDED.gone_ms",
    [ST_TOMBSTONE_SWEEP] = "DELETE FROM tombstones WHERE gone_ms <= $1",
    [ST_FIND_EVENT] = "SELECT data FROM events WHERE room_id = $1 AND type = $2 AND sender = $3"
                      " AND ($4::text IS NULL OR (data::json)->>'question' = $4)"
                      " ORDER BY seq DESC LIMIT 1",
    /* One statement, under the bucket's row lock: refill, then take a token
     * if one is there ($5: take; false only looks). Returns the verdict and
     * the tokens left. $2 per ms, $3 burst, $4 now. */
    [ST_RATE_TAKE] =
        "INSERT INTO rate_buckets AS b (bucket, tokens, updated_ms, allowed)"
        " VALUES ($1, $3::float8 - CASE WHEN $5::bool THEN 1 ELSE 0 END, $4, true)"
        " ON CONFLICT (bucket) DO UPDATE SET"
        " tokens = LEAST($3::float8, b.tokens + GREATEST($4 - b.updated_ms, 0) * $2::float8)"
        "   - CASE WHEN $5::bool AND LEAST($3::float8, b.tokens + GREATEST($4 - b.updated_ms, 0)"
        "   * $2::float8) >= 1 THEN 1 ELSE 0 END,"
        " updated_ms = GREATEST($4, b.updated_ms),"
        " allowed = LEAST($3::float8, b.tokens + GREATEST($4 - b.updated_ms, 0) * $2::float8) >= 1"
        " RETURNING allowed, tokens",
    /* Buckets full again are the same as no bucket. */
    [ST_RATE_SWEEP] = "DELETE FROM rate_buckets WHERE updated_ms < $1",
    /* Rows are locked as the sort hands them out: in id order. */
    /* Presence changes reach the other instances as "<room> p<role><0|1> <instance>". */
    [ST_PRESENCE_ON] =
        "WITH up AS (INSERT INTO presence (room_id, role, instance, expires_ms)"
        " VALUES ($1::text, $2::text, $3::text, $4::bigint) ON CONFLICT (room_id, role, instance)"
        " DO UPDATE SET expires_ms = EXCLUDED.expires_ms RETURNING 1)"
        " SELECT pg_notify('" CHANNEL "', $1::text || ' p' || $2::text || '1 ' || $3::text)",
    [ST_PRESENCE_OFF] =
        "WITH gone AS (DELETE FROM presence WHERE room_id = $1::text AND role = $2::text"
        " AND instance = $3::text RETURNING 1)"
        " SELECT pg_notify('" CHANNEL "', $1::text || ' p' || $2::text || '0 ' || $3::text)",
    [ST_PRESENCE_ELSEWHERE] = "SELECT EXISTS (SELECT 1 FROM presence WHERE room_id = $1"
                              " AND role = $2 AND instance <> $3 AND expires_ms > $4)",
    [ST_LOCK_ROOMS] = "SELECT id FROM rooms WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE",
};

/* One libpq connection with its statements prepared. */
struct conn {
    PGconn *pg;
    bool ready; /* connected and prepared */
    char sqlstate[6];
    const char *retry_url; /* set: one statement at a time, retried once on a new connection */
    int64_t failed_ms;     /* when connecting last failed (monotonic), 0: it did not */
};

struct job {
    enum thou_status (*run)(struct thou_store_pg *pg, void *arg);
    void *arg;
    enum thou_status status;
    thou_store_done_fn done; /* asynchronous: called after the commit */
    void *done_ctx;
    bool finished;
    const char *room_id; /* the existing room the job writes, if any (locked first) */
    struct job *next;
};

struct thou_store_pg {
    char *url;
    struct conn writer; /* writer thread only (and open/close) */
    /* Reads from request threads, each connection under its lock: a read
     * waits for the database's answer, so one connection would queue them. */
    struct conn readers[N_READERS];
    pthread_mutex_t reader_locks[N_READERS];
    atomic_uint next_reader;
    int64_t max_events, max_bytes;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t queue_lock;
    pthread_cond_t work_cond;
    pthread_cond_t done_cond;
    struct job *head, *tail;
    bool stopping;
    void (*before_done)(void *);
    void (*after_done)(void *);
    void *hooks_ctx;

    pthread_t listener;
    bool listener_started;
    int wake_pipe[2]; /* tells the listener to stop */
    void (*committed)(void *, const char *, int64_t);
    void *committed_ctx;
    atomic_int writer_pid; /* the writer's backend: its own notifications are skipped */
    char instance[33];     /* random, for this process: names its presence rows */
    void (*presence)(void *, const char *, char, bool);
    void *presence_ctx;
};

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* libpq's last message on one line, without its trailing newline. */
static const char *pg_message(PGconn *conn, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = (p[1] ? ' ' : '\0');
    return out;
}

bool thou_store_pg_is_url(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

/* Connect (or reconnect) and prepare every statement. */
static enum thou_status conn_connect(struct conn *c, const char *url, bool prepare, char *errbuf,
                                     size_t errlen)
{
    char message[512];
    if (c->pg)
        PQfinish(c->pg);
    c->ready = false;
    /* Defaults the URL may override (later values win): give up on an
     * unreachable host within seconds, and notice a dead peer on an idle
     * connection, rather than hold requests for the kernel's minutes. */
    const char *const keywords[] = {"connect_timeout",
                                    "keepalives_idle",
                                    "keepalives_interval",
                                    "keepalives_count",
                                    "tcp_user_timeout",
                                    "application_name",
                                    "dbname",
                                    NULL};
    const char *const values[] = {"5", "15", "5", "3", "20000", "thou", url, NULL};
    c->pg = PQconnectdbParams(keywords, values, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        set_error(errbuf, errlen, "cannot connect to PostgreSQL: %s",
                  pg_message(c->pg, message, sizeof(message)));
        return THOU_EUNAVAIL;
    }
    PQsetNoticeProcessor(c->pg, quiet_notices, NULL);
    for (int i = 0; prepare && i < ST_COUNT; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", i);
        PGresult *res = PQprepare(c->pg, name, stmt_sql[i], 0, NULL);
        bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            set_error(errbuf, errlen, "cannot prepare statement %d: %s", i,
                      pg_message(c->pg, message, sizeof(message)));
            return PQstatus(c->pg) == CONNECTION_OK ? THOU_EIO : THOU_EUNAVAIL;
        }
    }
    c->ready = true;
    return THOU_OK;
}

static int64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock time: presence leases are compared across machines. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connection that broke is connected again before its next use; while
 * the database is away, at most once a second (the rest fail at once). */
static bool conn_usable(struct conn *c, const char *url)
{
    if (c->ready && PQstatus(c->pg) == CONNECTION_OK)
        return true;
    int64_t now = clock_ms();
    if (c->failed_ms && now - c->failed_ms < RECONNECT_MS)
        return false;
    char err[512];
    if (conn_connect(c, url, true, err, sizeof(err)) == THOU_OK) {
        thou_log_info("reconnected to PostgreSQL");
        c->failed_ms = 0;
        return true;
    }
    thou_log_warn("%s", err);
    c->failed_ms = clock_ms();
    return false;
}

/*
 * Run a prepared statement. Parameters are text, except those flagged in
 * binary (bytea), whose lengths come from lengths. The caller PQclears.
 * NULL when the statement failed; c->sqlstate says why.
 */
static PGresult *run(struct conn *c, enum stmt_id id, int n, const char *const *values,
                     const int *lengths, const int *binary)
{
    char name[16];
    snprintf(name, sizeof(name), "s%d", (int)id);
    c->sqlstate[0] = '\0';
    PGresult *res = PQexecPrepared(c->pg, name, n, values, lengths, binary, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    /* A read on a connection that died while idle (the database restarted,
     * a proxy dropped it) did nothing: ask again on a new one. */
    if (c->retry_url && PQstatus(c->pg) != CONNECTION_OK) {
        PQclear(res);
        c->ready = false;
        if (!conn_usable(c, c->retry_url))
            return NULL;
        res = PQexecPrepared(c->pg, name, n, values, lengths, binary, 0);
        st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            return res;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->ready = false;
    PQclear(res);
    return NULL;
}

/* Run a plain command (transaction control); true when it succeeded. */
static bool command(struct conn *c, const char *sql)
{
    PGresult *res = PQexec(c->pg, sql);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
        if (PQstatus(c->pg) != CONNECTION_OK)
            c->ready = false;
    }
    PQclear(res);
    return ok;
}

/* The status of the last failed statement on c. */
static enum thou_status failure(const struct conn *c)
{
    if (!c->ready)
        return THOU_EUNAVAIL;
    if (strcmp(c->sqlstate, "23505") == 0)
        return THOU_EEXIST; /* unique_violation */
    return THOU_EIO;
}

static bool is_deadlock(const struct conn *c)
{
    return strcmp(c->sqlstate, "40P01") == 0 || strcmp(c->sqlstate, "40001") == 0;
}

/* ---- opening and migrating ---------------------------------------------- */

static enum thou_status schema_version(struct conn *c, int *version, char *errbuf, size_t errlen)
{
    char message[512];
    PGresult *res = PQexec(c->pg, "SELECT to_regclass('thou_schema') IS NOT NULL, count(*)"
                                  " FROM pg_tables WHERE schemaname = current_schema()");
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    bool ours = ok && PQgetvalue(res, 0, 0)[0] == 't';
    long tables = ok ? atol(PQgetvalue(res, 0, 1)) : 0;
    PQclear(res);
    if (!ok) {
        set_error(errbuf, errlen, "cannot read the schema version: %s",
                  pg_message(c->pg, message, sizeof(message)));
        return THOU_EIO;
    }
    *version = 0;
    if (!ours) {
        /* Refuse a database of other tables rather than mix ours in. */
        if (tables == 0)
            return THOU_OK;
        set_error(errbuf, errlen,
                  "database has tables but no thou_schema table: not a thou database");
        return THOU_ESCHEMA;
    }
    res = PQexec(c->pg, "SELECT max(version) FROM thou_schema");
    ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!ok) {
        set_error(errbuf, errlen, "cannot read the schema version: %s",
                  pg_message(c->pg, message, sizeof(message)));
        return THOU_EIO;
    }
    return THOU_OK;
}

static enum thou_status migrate(struct conn *c, int *version_out, char *errbuf, size_t errlen)
{
    char message[512];
    enum thou_status rc = THOU_OK;
    int version = 0;
    /* One instance migrates; the others wait here and then find it done. */
    if (!command(c, "BEGIN")) {
        set_error(errbuf, errlen, "cannot begin migration: %s",
                  pg_message(c->pg, message, sizeof(message)));
        return THOU_EUNAVAIL;
    }
    PGresult *res = PQexec(c->pg, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_TEXT ")");
    bool locked = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!locked) {
        set_error(errbuf, errlen, "cannot lock for migration: %s",
                  pg_message(c->pg, message, sizeof(message)));
        rc = THOU_EIO;
        goto out;
    }
    rc = schema_version(c, &version, errbuf, errlen);
    if (rc)
        goto out;
    if (version > N_PG_MIGRATIONS) {
        set_error(errbuf, errlen,
                  "database schema version %d is newer than this thou understands (%d); "
                  "upgrade thou",
                  version, N_PG_MIGRATIONS);
        rc = THOU_ESCHEMA;
        goto out;
    }
    if (version == N_PG_MIGRATIONS)
        goto out;
    /* All steps in one transaction: PostgreSQL's DDL is transactional, so a
     * crash leaves the old version whole. */
    for (int v = version; v < N_PG_MIGRATIONS; v++) {
        if (!pg_migrations[v])
            continue;
        if (!command(c, pg_migrations[v])) {
            set_error(errbuf, errlen, "cannot migrate database to version %d: %s", v + 1,
                      pg_message(c->pg, message, sizeof(message)));
            rc = THOU_EIO;
            goto out;
        }
    }
    char sql[160];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS thou_schema (version integer NOT NULL);"
             " DELETE FROM thou_schema; INSERT INTO thou_schema VALUES (%d)",
             N_PG_MIGRATIONS);
    if (!command(c, sql)) {
        set_error(errbuf, errlen, "cannot record the schema version: %s",
                  pg_message(c->pg, message, sizeof(message)));
        rc = THOU_EIO;
        goto out;
    }
    version = N_PG_MIGRATIONS;
out:
    if (rc == THOU_OK && !command(c, "COMMIT")) {
        set_error(errbuf, errlen, "cannot commit migration: %s",
                  pg_message(c->pg, message, sizeof(message)));
        rc = THOU_EIO;
    }
    if (rc)
        command(c, "ROLLBACK");
    *version_out = version;
    return rc;
}

static void *writer_main(void *arg);

enum thou_status thou_store_pg_open(const char *url, struct thou_store_pg **out, char *errbuf,
                                    size_t errlen)
{
    struct thou_store_pg *pg = thou_xcalloc(1, sizeof(*pg));
    pg->url = thou_xstrdup(url);
    uint8_t random_id[16];
    FILE *urandom = fopen("/dev/urandom", "rb");
    size_t got = urandom ? fread(random_id, 1, sizeof(random_id), urandom) : 0;
    if (urandom)
        fclose(urandom);
    for (size_t i = 0; i < sizeof(random_id); i++)
        snprintf(pg->instance + 2 * i, 3, "%02x",
                 i < got ? random_id[i] : (unsigned)(getpid() >> (i % 4 * 8)) & 0xff);
    pg->wake_pipe[0] = pg->wake_pipe[1] = -1;
    for (int i = 0; i < N_READERS; i++)
        pthread_mutex_init(&pg->reader_locks[i], NULL);
    pthread_mutex_init(&pg->queue_lock, NULL);
    pthread_cond_init(&pg->work_cond, NULL);
    pthread_cond_init(&pg->done_cond, NULL);
    int version = 0;
    enum thou_status rc = conn_connect(&pg->writer, url, false, errbuf, errlen);
    if (rc == THOU_OK)
        rc = migrate(&pg->writer, &version, errbuf, errlen);
    if (rc == THOU_OK)
        rc = conn_connect(&pg->writer, url, true, errbuf, errlen);
    for (int i = 0; i < N_READERS; i++) {
        if (rc == THOU_OK)
            rc = conn_connect(&pg->readers[i], url, true, errbuf, errlen);
        pg->readers[i].retry_url = pg->url;
    }
    if (rc)
        goto out;
    if (pthread_create(&pg->thread, NULL, writer_main, pg) != 0) {
        set_error(errbuf, errlen, "cannot start the database writer thread");
        rc = THOU_EIO;
        goto out;
    }
    atomic_store(&pg->writer_pid, PQbackendPID(pg->writer.pg));
    pg->thread_started = true;
out:
    if (rc) {
        thou_store_pg_close(pg);
        pg = NULL;
    }
    *out = pg;
    return rc;
}

void thou_store_pg_close(struct thou_store_pg *pg)
{
    if (!pg)
        return;
    if (pg->listener_started) {
        char byte = 0;
        ssize_t ignored = write(pg->wake_pipe[1], &byte, 1);
        (void)ignored;
        pthread_join(pg->listener, NULL);
    }
    if (pg->wake_pipe[0] >= 0) {
        close(pg->wake_pipe[0]);
        close(pg->wake_pipe[1]);
    }
    if (pg->thread_started) {
        /* The writer drains the queue before it stops: nothing accepted is dropped. */
        pthread_mutex_lock(&pg->queue_lock);
        pg->stopping = true;
        pthread_cond_signal(&pg->work_cond);
        pthread_mutex_unlock(&pg->queue_lock);
        pthread_join(pg->thread, NULL);
    }
    for (int i = 0; i < N_READERS; i++)
        if (pg->readers[i].pg)
            PQfinish(pg->readers[i].pg);
    if (pg->writer.pg)
        PQfinish(pg->writer.pg);
    for (int i = 0; i < N_READERS; i++)
        pthread_mutex_destroy(&pg->reader_locks[i]);
    pthread_mutex_destroy(&pg->queue_lock);
    pthread_cond_destroy(&pg->work_cond);
    pthread_cond_destroy(&pg->done_cond);
    free(pg->url);
    free(pg);
}

void thou_store_pg_set_batch_hooks(struct thou_store_pg *pg, void (*before)(void *),
                                   void (*after)(void *), void *ctx)
{
    pthread_mutex_lock(&pg->queue_lock);
    pg->before_done = before;
    pg->after_done = after;
    pg->hooks_ctx = ctx;
    pthread_mutex_unlock(&pg->queue_lock);
}

void thou_store_pg_set_room_limits(struct thou_store_pg *pg, int64_t max_events, int64_t max_bytes)
{
    pg->max_events = max_events;
    pg->max_bytes = max_bytes;
}

int thou_store_pg_schema_version(struct thou_store_pg *pg)
{
    (void)pg;
    return N_PG_MIGRATIONS;
}

/* ---- the writer thread --------------------------------------------------- */

static void complete(struct thou_store_pg *pg, struct job *job)
{
    if (job->done) {
        thou_store_done_fn done = job->done;
        void *done_ctx = job->done_ctx;
        enum thou_status status = job->status;
        free(job->arg);
        free(job);
        done(done_ctx, status);
        return;
    }
    pthread_mutex_lock(&pg->queue_lock);
    job->finished = true;
    pthread_cond_broadcast(&pg->done_cond);
    pthread_mutex_unlock(&pg->queue_lock);
}

/* One job under its own savepoint, again when it lost a deadlock. */
static enum thou_status run_job(struct thou_store_pg *pg, struct job *job)
{
    struct conn *c = &pg->writer;
    for (int attempt = 0;; attempt++) {
        if (!command(c, "SAVEPOINT job"))
            return failure(c);
        enum thou_status rc = job->run(pg, job->arg);
        if (rc == THOU_OK && command(c, "RELEASE job"))
            return THOU_OK;
        bool retry = is_deadlock(c) && attempt < DEADLOCK_RETRIES;
        if (!c->ready)
            return THOU_EUNAVAIL;
        if (!command(c, "ROLLBACK TO job") || !command(c, "RELEASE job"))
            return failure(c);
        if (!retry)
            return rc ? rc : THOU_EIO;
    }
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Lock the rows of every room the batch writes, in id order, before any job
 * runs. Each job locks its room anyway; taking them all first, in one order
 * every instance shares, means two instances' batches can never hold one
 * room each while waiting for the other's (a deadlock PostgreSQL would end
 * by failing one of them).
 */
static bool lock_rooms(struct conn *c, struct job *batch)
{
    size_t n = 0;
    for (struct job *job = batch; job; job = job->next)
        n += job->room_id != NULL;
    if (n < 2)
        return true; /* one room: its job's own lock is the only one */
    const char **ids = thou_xcalloc(n, sizeof(*ids));
    size_t k = 0;
    for (struct job *job = batch; job; job = job->next)
        if (job->room_id)
            ids[k++] = job->room_id;
    qsort(ids, n, sizeof(*ids), compare_ids);
    /* An array literal: room ids are base64url, nothing in them needs quoting. */
    struct thou_buf list;
    thou_buf_init(&list);
    thou_buf_puts(&list, "{");
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(ids[i], ids[i - 1]) == 0)
            continue;
        if (strspn(ids[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            strlen(ids[i]))
            continue; /* not a room id: its job finds no room */
        thou_buf_printf(&list, "%s%s", list.len > 1 ? "," : "", ids[i]);
    }
    thou_buf_puts(&list, "}");
    const char *values[] = {list.data};
    PGresult *res = run(c, ST_LOCK_ROOMS, 1, values, NULL, NULL);
    PQclear(res);
    thou_buf_release(&list);
    free(ids);
    return res != NULL;
}

/* Run a batch of jobs in one transaction: one commit acknowledges them all. */
static void run_batch(struct thou_store_pg *pg, struct job *batch)
{
    struct conn *c = &pg->writer;
    bool open = conn_usable(c, pg->url) && command(c, "BEGIN");
    /* Dead since the last batch, with nothing of this one sent: reconnect. */
    if (!open && !c->ready && conn_usable(c, pg->url))
        open = command(c, "BEGIN");
    if (open)
        atomic_store(&pg->writer_pid, PQbackendPID(c->pg));
    if (open && !lock_rooms(c, batch)) {
        command(c, "ROLLBACK");
        open = false;
    }
    for (struct job *job = batch; job; job = job->next)
        job->status = open && c->ready ? run_job(pg, job) : THOU_EUNAVAIL;
    bool committed = open && c->ready && command(c, "COMMIT");
    if (!committed) {
        if (c->ready)
            command(c, "ROLLBACK");
        /* A commit whose answer was lost may or may not have happened; the
         * client retries, and its retry finds what was stored. */
        for (struct job *job = batch; job; job = job->next)
            if (job->status == THOU_OK)
                job->status = c->ready ? THOU_EIO : THOU_EUNAVAIL;
    }
    pthread_mutex_lock(&pg->queue_lock);
    void (*before)(void *) = pg->before_done;
    void (*after)(void *) = pg->after_done;
    void *hooks_ctx = pg->hooks_ctx;
    pthread_mutex_unlock(&pg->queue_lock);
    if (before)
        before(hooks_ctx);
    while (batch) {
        struct job *next = batch->next;
        complete(pg, batch);
        batch = next;
    }
    if (after)
        after(hooks_ctx);
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "thou-pg-writer");
    struct thou_store_pg *pg = arg;
    for (;;) {
        pthread_mutex_lock(&pg->queue_lock);
        while (!pg->head && !pg->stopping)
            pthread_cond_wait(&pg->work_cond, &pg->queue_lock);
        if (!pg->head) {
            pthread_mutex_unlock(&pg->queue_lock);
            return NULL;
        }
        struct job *batch = pg->head, *last = batch;
        for (size_t n = 1; n < MAX_BATCH && last->next; n++)
            last = last->next;
        pg->head = last->next;
        if (!pg->head)
            pg->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&pg->queue_lock);
        run_batch(pg, batch);
    }
}

static void enqueue(struct thou_store_pg *pg, struct job *job)
{
    pthread_mutex_lock(&pg->queue_lock);
    job->next = NULL;
    if (pg->tail)
        pg->tail->next = job;
    else
        pg->head = job;
    pg->tail = job;
    pthread_cond_signal(&pg->work_cond);
    pthread_mutex_unlock(&pg->queue_lock);
}

static enum thou_status write_sync(struct thou_store_pg *pg,
                                   enum thou_status (*fn)(struct thou_store_pg *, void *),
                                   void *arg, const char *room_id)
{
    struct job job = {.run = fn, .arg = arg, .room_id = room_id};
    enqueue(pg, &job);
    pthread_mutex_lock(&pg->queue_lock);
    while (!job.finished)
        pthread_cond_wait(&pg->done_cond, &pg->queue_lock);
    pthread_mutex_unlock(&pg->queue_lock);
    return job.status;
}

/* ---- reads ---------------------------------------------------------------- */

static int64_t int_value(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned byte = 0;
        sscanf(hex + 2 * i, "%2x", &byte);
        out[i] = (uint8_t)byte;
    }
}

/* ENOTFOUND or EGONE for a room id without a row. */
static enum thou_status missing_room(struct conn *c, const char *room_id)
{
    const char *values[] = {room_id};
    PGresult *res = run(c, ST_TOMBSTONE_GET, 1, values, NULL, NULL);
    if (!res)
        return failure(c);
    bool gone = PQntuples(res) > 0;
    PQclear(res);
    return gone ? THOU_EGONE : THOU_ENOTFOUND;
}

/* Read a room (with its row locked when lock); *bytes receives its size. */
static enum thou_status room_read(struct conn *c, const char *room_id, bool lock,
                                  struct thou_room_record *room, int64_t *bytes)
{
    memset(room, 0, sizeof(*room));
    const char *values[] = {room_id};
    PGresult *res = run(c, lock ? ST_ROOM_LOCK : ST_ROOM_GET, 1, values, NULL, NULL);
    if (!res)
        return failure(c);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return missing_room(c, room_id);
    }
    snprintf(room->id, sizeof(room->id), "%s", room_id);
    snprintf(room->set_id, sizeof(room->set_id), "%s", PQgetvalue(res, 0, 0));
    room->set_version = (int)int_value(res, 0, 1);
    room->state = (enum thou_room_state)int_value(res, 0, 2);
    hex_to_bytes(PQgetvalue(res, 0, 3), room->join_verifier, THOU_HASH_LEN);
    room->created_ms = int_value(res, 0, 4);
    room->expires_ms = int_value(res, 0, 5);
    room->last_seq = int_value(res, 0, 6);
    room->flow_json = PQgetisnull(res, 0, 7) ? NULL : thou_xstrdup(PQgetvalue(res, 0, 7));
    if (bytes)
        *bytes = int_value(res, 0, 8);
    room->b_joined = PQgetvalue(res, 0, 9)[0] == 't';
    PQclear(res);
    return THOU_OK;
}

/* A read takes a free reader connection (else waits for one), reconnecting
 * it when it broke. NULL when the database cannot be reached. */
static struct conn *reader_take(struct thou_store_pg *pg)
{
    unsigned start = atomic_fetch_add(&pg->next_reader, 1);
    int taken = -1;
    for (int i = 0; i < N_READERS && taken < 0; i++) {
        int k = (int)((start + (unsigned)i) % N_READERS);
        if (pthread_mutex_trylock(&pg->reader_locks[k]) == 0)
            taken = k;
    }
    if (taken < 0) {
        taken = (int)(start % N_READERS);
        pthread_mutex_lock(&pg->reader_locks[taken]);
    }
    if (conn_usable(&pg->readers[taken], pg->url))
        return &pg->readers[taken];
    pthread_mutex_unlock(&pg->reader_locks[taken]);
    return NULL;
}

static void reader_give(struct thou_store_pg *pg, struct conn *c)
{
    pthread_mutex_unlock(&pg->reader_locks[c - pg->readers]);
}

enum thou_status thou_store_pg_ping(struct thou_store_pg *pg)
{
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    PGresult *res = run(c, ST_PING, 0, NULL, NULL, NULL);
    reader_give(pg, c);
    PQclear(res);
    return res ? THOU_OK : THOU_EUNAVAIL;
}

enum thou_status thou_store_pg_room_get(struct thou_store_pg *pg, const char *room_id,
                                        struct thou_room_record *room)
{
    struct conn *c = reader_take(pg);
    if (!c) {
        memset(room, 0, sizeof(*room));
        return THOU_EUNAVAIL;
    }
    enum thou_status rc = room_read(c, room_id, false, room, NULL);
    reader_give(pg, c);
    return rc;
}

enum thou_status thou_store_pg_participant_role(struct thou_store_pg *pg, const char *room_id,
                                                const uint8_t token_hash[THOU_HASH_LEN], char *role)
{
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    const char *values[] = {room_id, (const char *)token_hash};
    const int lengths[] = {0, THOU_HASH_LEN};
    const int binary[] = {0, 1};
    PGresult *res = run(c, ST_ROLE_BY_TOKEN, 2, values, lengths, binary);
    enum thou_status rc = THOU_EAUTH;
    if (!res) {
        rc = failure(c);
    } else if (PQntuples(res) > 0) {
        *role = PQgetvalue(res, 0, 0)[0];
        rc = THOU_OK;
    }
    PQclear(res);
    reader_give(pg, c);
    return rc;
}

enum thou_status thou_store_pg_events_after(struct thou_store_pg *pg, const char *room_id,
                                            char role, int64_t after_seq, size_t limit,
                                            thou_event_visit_fn visit, void *ctx)
{
    char role_text[2] = {role, '\0'};
    char after_text[24], limit_text[24];
    snprintf(after_text, sizeof(after_text), "%lld", (long long)after_seq);
    snprintf(limit_text, sizeof(limit_text), "%zu", limit);
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    const char *values[] = {room_id, after_text, role_text, limit_text};
    PGresult *res = run(c, ST_EVENTS_AFTER, 4, values, NULL, NULL);
    /* The rows are in memory: visit them without holding the connection. */
    reader_give(pg, c);
    if (!res)
        return THOU_EUNAVAIL;
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        struct thou_event_record event = {
            .seq = int_value(res, i, 0),
            .type = PQgetvalue(res, i, 1),
            .sender = PQgetvalue(res, i, 2)[0],
            .visible_to = PQgetisnull(res, i, 3) ? 0 : PQgetvalue(res, i, 3)[0],
            .data = PQgetvalue(res, i, 4),
            .time_ms = int_value(res, i, 5),
        };
        if (!visit(ctx, &event))
            break;
    }
    PQclear(res);
    return THOU_OK;
}

/* ---- writes (on the writer thread, inside the job's savepoint) ------------ */

static enum thou_status insert_participant(struct conn *c, const char *room_id, const char *role,
                                           const uint8_t *token_hash, int64_t now_ms)
{
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%lld", (long long)now_ms);
    const char *values[] = {room_id, role, (const char *)token_hash, now_text};
    const int lengths[] = {0, 0, THOU_HASH_LEN, 0};
    const int binary[] = {0, 0, 1, 0};
    PGresult *res = run(c, ST_PARTICIPANT_INSERT, 4, values, lengths, binary);
    PQclear(res);
    return res ? THOU_OK : failure(c);
}

struct create_args {
    const struct thou_room_record *room;
    const uint8_t *token_hash;
};

static enum thou_status create_run(struct thou_store_pg *pg, void *arg)
{
    const struct create_args *a = arg;
    const struct thou_room_record *room = a->room;
    struct conn *c = &pg->writer;
    char version[16], state[16], created[24], expires[24];
    snprintf(version, sizeof(version), "%d", room->set_version);
    snprintf(state, sizeof(state), "%d", (int)room->state);
    snprintf(created, sizeof(created), "%lld", (long long)room->created_ms);
    snprintf(expires, sizeof(expires), "%lld", (long long)room->expires_ms);
    const char *values[] = {
        room->id, room->set_id, version,        state, (const char *)room->join_verifier,
        created,  expires,      room->flow_json};
    const int lengths[] = {0, 0, 0, 0, THOU_HASH_LEN, 0, 0, 0};
    const int binary[] = {0, 0, 0, 0, 1, 0, 0, 0};
    PGresult *res = run(c, ST_ROOM_INSERT, 8, values, lengths, binary);
    PQclear(res);
    if (!res)
        return failure(c);
    return insert_participant(c, room->id, "A", a->token_hash, room->created_ms);
}

enum thou_status thou_store_pg_room_create(struct thou_store_pg *pg,
                                           const struct thou_room_record *room,
                                           const uint8_t token_hash_a[THOU_HASH_LEN])
{
    struct create_args args = {room, token_hash_a};
    return write_sync(pg, create_run, &args, NULL);
}

struct join_args {
    const char *room_id;
    const uint8_t *token_hash;
    int64_t now_ms;
    bool again;
};

static enum thou_status join_run(struct thou_store_pg *pg, void *arg)
{
    struct join_args *a = arg;
    struct conn *c = &pg->writer;
    struct thou_room_record room;
    /* The room's row lock orders this join after any other instance's. */
    enum thou_status rc = room_read(c, a->room_id, true, &room, NULL);
    thou_room_record_release(&room);
    if (rc)
        return rc;
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%lld", (long long)a->now_ms);
    const char *values[] = {a->room_id, (const char *)a->token_hash, now_text};
    const int lengths[] = {0, THOU_HASH_LEN, 0};
    const int binary[] = {0, 1, 0};
    PGresult *res = run(c, ST_JOIN_B, 3, values, lengths, binary);
    if (!res)
        return failure(c);
    bool inserted = PQntuples(res) > 0;
    PQclear(res);
    if (!inserted) {
        /* The seat was taken: by this very token (a retried join) or by another. */
        const char *role_values[] = {a->room_id, (const char *)a->token_hash};
        const int role_lengths[] = {0, THOU_HASH_LEN};
        res = run(c, ST_ROLE_BY_TOKEN, 2, role_values, role_lengths, binary);
        if (!res)
            return failure(c);
        a->again = PQntuples(res) > 0 && PQgetvalue(res, 0, 0)[0] == 'B';
        PQclear(res);
        return a->again ? THOU_OK : THOU_EFULL;
    }
    const char *room_values[] = {a->room_id};
    res = run(c, ST_ROOM_ACTIVATE, 1, room_values, NULL, NULL);
    PQclear(res);
    return res ? THOU_OK : failure(c);
}

enum thou_status thou_store_pg_room_join(struct thou_store_pg *pg, const char *room_id,
                                         const uint8_t token_hash_b[THOU_HASH_LEN], int64_t now_ms,
                                         bool *again)
{
    struct join_args args = {room_id, token_hash_b, now_ms, false};
    enum thou_status rc = write_sync(pg, join_run, &args, room_id);
    if (again)
        *again = rc == THOU_OK && args.again;
    return rc;
}

struct thou_store_pg_txn {
    struct conn *conn;
    const char *room_id;
};

enum thou_status thou_store_pg_txn_find(struct thou_store_pg_txn *txn, const char *type,
                                        char sender, const char *question, char **data)
{
    char sender_text[2] = {sender, '\0'};
    const char *values[] = {txn->room_id, type, sender_text, question};
    PGresult *res = run(txn->conn, ST_FIND_EVENT, 4, values, NULL, NULL);
    if (!res)
        return failure(txn->conn);
    enum thou_status rc = THOU_ENOTFOUND;
    if (PQntuples(res) > 0) {
        if (data)
            *data = thou_xstrdup(PQgetvalue(res, 0, 0));
        rc = THOU_OK;
    }
    PQclear(res);
    return rc;
}

static enum thou_status insert_event(struct conn *c, const char *room_id,
                                     const struct thou_event_record *event, int64_t seq)
{
    char seq_text[24], time_text[24];
    char sender[2] = {event->sender, '\0'};
    char visible[2] = {event->visible_to, '\0'};
    snprintf(seq_text, sizeof(seq_text), "%lld", (long long)seq);
    snprintf(time_text, sizeof(time_text), "%lld", (long long)event->time_ms);
    const char *values[] = {
        room_id,     seq_text, event->type, sender, event->visible_to ? visible : NULL,
        event->data, time_text};
    PGresult *res = run(c, ST_EVENT_INSERT, 7, values, NULL, NULL);
    PQclear(res);
    return res ? THOU_OK : failure(c);
}

struct update_args {
    const char *room_id;
    thou_room_update_fn update;
    void *ctx;
    struct thou_room_change *change;
};

static enum thou_status update_run(struct thou_store_pg *pg, void *arg)
{
    struct update_args *a = arg;
    struct conn *c = &pg->writer;
    struct thou_room_record room;
    int64_t bytes = 0;
    /* Locked until the batch commits: the room's next seq is ours alone. */
    enum thou_status rc = room_read(c, a->room_id, true, &room, &bytes);
    if (rc == THOU_OK) {
        struct thou_store_pg_txn txn = {c, a->room_id};
        rc = thou_store_call_update(a->update, a->ctx, &txn, a->room_id, &room, a->change);
    }
    struct thou_room_change *change = a->change;
    if (rc == THOU_OK && change->n_events > THOU_CHANGE_MAX_EVENTS)
        rc = THOU_EINVAL;
    int64_t added = 0;
    for (size_t i = 0; rc == THOU_OK && i < change->n_events; i++)
        added += (int64_t)strlen(change->events[i].data);
    if (rc == THOU_OK && change->n_events &&
        ((pg->max_events && room.last_seq + (int64_t)change->n_events > pg->max_events) ||
         (pg->max_bytes && bytes + added > pg->max_bytes)))
        rc = THOU_ELIMIT;
    int64_t seq = room.last_seq;
    for (size_t i = 0; rc == THOU_OK && i < change->n_events; i++) {
        rc = insert_event(c, a->room_id, &change->events[i], ++seq);
        change->seqs[i] = seq;
    }
    bool touch = change->n_events || change->new_state != room.state || change->flow_json;
    if (rc == THOU_OK && touch) {
        char seq_text[24], bytes_text[24], state_text[16];
        snprintf(seq_text, sizeof(seq_text), "%lld", (long long)seq);
        snprintf(bytes_text, sizeof(bytes_text), "%lld", (long long)(bytes + added));
        snprintf(state_text, sizeof(state_text), "%d", (int)change->new_state);
        const char *values[] = {a->room_id, seq_text, bytes_text, state_text, change->flow_json};
        PGresult *res = run(c, change->n_events ? ST_ROOM_ADVANCE_NOTIFY : ST_ROOM_ADVANCE, 5,
                            values, NULL, NULL);
        PQclear(res);
        if (!res)
            rc = failure(c);
    }
    thou_room_record_release(&room);
    return rc;
}

enum thou_status thou_store_pg_room_update(struct thou_store_pg *pg, const char *room_id,
                                           thou_room_update_fn update, void *ctx,
                                           struct thou_room_change *change)
{
    struct update_args args = {room_id, update, ctx, change};
    return write_sync(pg, update_run, &args, room_id);
}

void thou_store_pg_room_update_async(struct thou_store_pg *pg, const char *room_id,
                                     thou_room_update_fn update, void *ctx,
                                     struct thou_room_change *change, thou_store_done_fn done,
                                     void *done_ctx)
{
    struct update_args *args = thou_malloc(sizeof(*args));
    struct job *job = thou_calloc(1, sizeof(*job));
    if (!args || !job) {
        /* Nothing was queued: the caller learns it as from any failed write. */
        free(args);
        free(job);
        done(done_ctx, THOU_ENOMEM);
        return;
    }
    *args = (struct update_args){room_id, update, ctx, change};
    job->run = update_run;
    job->arg = args; /* freed by complete() */
    job->done = done;
    job->done_ctx = done_ctx;
    job->room_id = room_id;
    enqueue(pg, job);
}

struct erase_args {
    const char *room_id;
    int64_t now_ms;
};

static enum thou_status erase_run(struct thou_store_pg *pg, void *arg)
{
    const struct erase_args *a = arg;
    struct conn *c = &pg->writer;
    struct thou_room_record room;
    enum thou_status rc = room_read(c, a->room_id, true, &room, NULL);
    thou_room_record_release(&room);
    if (rc)
        return rc;
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%lld", (long long)a->now_ms);
    const char *values[] = {a->room_id, now_text};
    PGresult *res = run(c, ST_ROOM_DELETE, 2, values, NULL, NULL);
    PQclear(res);
    if (!res)
        return failure(c);
    /* Other instances end their streams of the room. */
    res = run(c, ST_NOTIFY_ERASED, 1, values, NULL, NULL);
    PQclear(res);
    return res ? THOU_OK : failure(c);
}

enum thou_status thou_store_pg_room_erase(struct thou_store_pg *pg, const char *room_id,
                                          int64_t now_ms)
{
    struct erase_args args = {room_id, now_ms};
    return write_sync(pg, erase_run, &args, room_id);
}

struct sweep_args {
    int64_t now_ms;
    int64_t tombstone_ttl_ms;
    size_t deleted;
};

static enum thou_status sweep_run(struct thou_store_pg *pg, void *arg)
{
    struct sweep_args *a = arg;
    struct conn *c = &pg->writer;
    char now_text[24], cutoff_text[24];
    snprintf(now_text, sizeof(now_text), "%lld", (long long)a->now_ms);
    snprintf(cutoff_text, sizeof(cutoff_text), "%lld",
             (long long)(a->now_ms - a->tombstone_ttl_ms));
    a->deleted = 0;
    size_t n;
    do {
        const char *values[] = {now_text};
        PGresult *res = run(c, ST_EXPIRED_DELETE, 1, values, NULL, NULL);
        if (!res)
            return failure(c);
        n = (size_t)strtoul(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        a->deleted += n;
    } while (n == 256);
    const char *values[] = {cutoff_text};
    PGresult *res = run(c, ST_TOMBSTONE_SWEEP, 1, values, NULL, NULL);
    PQclear(res);
    if (!res)
        return failure(c);
    /* A bucket untouched for a week has refilled for any limit thou has. */
    char idle_text[24];
    snprintf(idle_text, sizeof(idle_text), "%lld", (long long)(a->now_ms - RATE_BUCKET_IDLE_MS));
    const char *idle_values[] = {idle_text};
    res = run(c, ST_RATE_SWEEP, 1, idle_values, NULL, NULL);
    PQclear(res);
    return res ? THOU_OK : failure(c);
}

enum thou_status thou_store_pg_sweep(struct thou_store_pg *pg, int64_t now_ms,
                                     int64_t tombstone_ttl_ms, size_t *deleted)
{
    struct sweep_args args = {now_ms, tombstone_ttl_ms, 0};
    enum thou_status rc = write_sync(pg, sweep_run, &args, NULL);
    *deleted = rc == THOU_OK ? args.deleted : 0;
    return rc;
}

/* ---- rate limits shared by the instances ------------------------------------ */

enum thou_status thou_store_pg_rate_take(struct thou_store_pg *pg, const char *name,
                                         const char *key, double per_second, unsigned burst,
                                         bool consume, int64_t now_ms, unsigned *retry_after_s)
{
    char bucket[160], per_ms[40], burst_text[16], now_text[24];
    snprintf(bucket, sizeof(bucket), "%s:%s", name, key);
    snprintf(per_ms, sizeof(per_ms), "%.17g", per_second / 1000.0);
    snprintf(burst_text, sizeof(burst_text), "%u", burst);
    snprintf(now_text, sizeof(now_text), "%lld", (long long)now_ms);
    const char *values[] = {bucket, per_ms, burst_text, now_text, consume ? "true" : "false"};
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    PGresult *res = run(c, ST_RATE_TAKE, 5, values, NULL, NULL);
    reader_give(pg, c);
    if (!res)
        return THOU_EUNAVAIL;
    bool allowed = PQgetvalue(res, 0, 0)[0] == 't';
    double tokens = strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);
    if (allowed)
        return THOU_OK;
    if (retry_after_s) {
        double wait_s = per_second > 0 ? (1.0 - tokens) / per_second : 1.0;
        *retry_after_s = wait_s > 1.0 ? (unsigned)(wait_s + 0.999) : 1;
    }
    return THOU_ERATE;
}

/* ---- presence shared by the instances ------------------------------------------ */

void thou_store_pg_presence_publish(struct thou_store_pg *pg, const char *room_id, char role,
                                    bool present)
{
    char role_text[2] = {role, '\0'}, expires[24];
    snprintf(expires, sizeof(expires), "%lld", (long long)(wall_ms() + PRESENCE_LEASE_MS));
    const char *values[] = {room_id, role_text, pg->instance, expires};
    struct conn *c = reader_take(pg);
    if (!c)
        return; /* the others see the lease run out instead */
    PGresult *res =
        run(c, present ? ST_PRESENCE_ON : ST_PRESENCE_OFF, present ? 4 : 3, values, NULL, NULL);
    reader_give(pg, c);
    PQclear(res);
}

bool thou_store_pg_presence_elsewhere(struct thou_store_pg *pg, const char *room_id, char role)
{
    char role_text[2] = {role, '\0'}, now[24];
    snprintf(now, sizeof(now), "%lld", (long long)wall_ms());
    const char *values[] = {room_id, role_text, pg->instance, now};
    struct conn *c = reader_take(pg);
    if (!c)
        return false;
    PGresult *res = run(c, ST_PRESENCE_ELSEWHERE, 4, values, NULL, NULL);
    reader_give(pg, c);
    bool elsewhere = res && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return elsewhere;
}

void thou_store_pg_set_presence_hook(struct thou_store_pg *pg,
                                     void (*presence)(void *, const char *, char, bool), void *ctx)
{
    if (pg->listener_started)
        return; /* the listener reads it unlocked: set it before */
    pg->presence = presence;
    pg->presence_ctx = ctx;
}

/* ---- listening for other instances' commits -------------------------------- */

/* "<room id> <seq>" from another instance: wake this instance's streams of the room. */
static void deliver_notification(struct thou_store_pg *pg, const PGnotify *note, int own_pid)
{
    if (note->be_pid == own_pid)
        return; /* this instance's writer: its streams were woken already */
    if (!note->extra)
        return;
    const char *space = strchr(note->extra, ' ');
    size_t id_len = space ? (size_t)(space - note->extra) : 0;
    if (!space || id_len == 0 || id_len > THOU_ROOM_ID_LEN)
        return;
    char room_id[THOU_ROOM_ID_LEN + 1];
    memcpy(room_id, note->extra, id_len);
    room_id[id_len] = '\0';
    const char *rest = space + 1;
    if (rest[0] == 'p') {
        /* "p<role><0|1> <instance>": another instance's presence changed. */
        bool valid = (rest[1] == 'A' || rest[1] == 'B') && (rest[2] == '0' || rest[2] == '1') &&
                     rest[3] == ' ';
        if (valid && strcmp(rest + 4, pg->instance) != 0 && pg->presence)
            pg->presence(pg->presence_ctx, room_id, rest[1], rest[2] == '1');
        return;
    }
    pg->committed(pg->committed_ctx, room_id, strtoll(rest, NULL, 10));
}

/*
 * A dedicated connection LISTENs for commits of the other instances. When
 * it breaks, notifications sent meanwhile are lost: on reconnecting, and
 * every CATCH_UP_MS anyway, every stream re-reads the store (committed()
 * with a NULL room), so a lost notification delays an event, never loses it.
 */
static void *listener_main(void *arg)
{
    pthread_setname_np(pthread_self(), "thou-pg-listen");
    struct thou_store_pg *pg = arg;
    struct conn listen = {0};
    int64_t next_catch_up = clock_ms() + CATCH_UP_MS;
    bool stop = false;
    while (!stop) {
        if (!listen.ready || PQstatus(listen.pg) != CONNECTION_OK) {
            char err[512];
            if (conn_connect(&listen, pg->url, false, err, sizeof(err)) == THOU_OK &&
                command(&listen, "LISTEN " CHANNEL)) {
                pg->committed(pg->committed_ctx, NULL, 0);
            } else {
                listen.ready = false;
                struct pollfd wait_fd = {pg->wake_pipe[0], POLLIN, 0};
                if (poll(&wait_fd, 1, 1000) > 0)
                    break;
                continue;
            }
        }
        struct pollfd fds[2] = {{PQsocket(listen.pg), POLLIN, 0}, {pg->wake_pipe[0], POLLIN, 0}};
        int64_t wait_ms = next_catch_up - clock_ms();
        int ready = poll(fds, 2, wait_ms > 0 ? (int)wait_ms : 0);
        if (ready > 0 && fds[1].revents)
            stop = true;
        if (ready > 0 && fds[0].revents) {
            if (!PQconsumeInput(listen.pg)) {
                listen.ready = false;
                thou_log_warn("lost the PostgreSQL notification connection; reconnecting");
                continue;
            }
            /* Read after the wait: the writer sets it before its commits. */
            int own_pid = atomic_load(&pg->writer_pid);
            PGnotify *note;
            while ((note = PQnotifies(listen.pg))) {
                deliver_notification(pg, note, own_pid);
                PQfreemem(note);
            }
        }
        if (clock_ms() >= next_catch_up) {
            pg->committed(pg->committed_ctx, NULL, 0);
            next_catch_up = clock_ms() + CATCH_UP_MS;
        }
    }
    if (listen.pg)
        PQfinish(listen.pg);
    return NULL;
}

void thou_store_pg_set_remote_hook(struct thou_store_pg *pg,
                                   void (*committed)(void *, const char *, int64_t), void *ctx)
{
    if (pg->listener_started || !committed)
        return;
    pg->committed = committed;
    pg->committed_ctx = ctx;
    if (pipe(pg->wake_pipe) != 0) {
        thou_log_error("cannot listen for other instances: %s", strerror(errno));
        return;
    }
    if (pthread_create(&pg->listener, NULL, listener_main, pg) != 0) {
        thou_log_error("cannot start the PostgreSQL listener thread");
        return;
    }
    pg->listener_started = true;
}

/* ---- seat moves, studies and research copies ---------------------------------
 *
 * Rare statements (a seat move, a CLI call, a new room of a study, a research
 * copy), so they are sent as text with their parameters rather than kept
 * prepared on every connection. Every write that concerns one room locks its
 * row first, as the room's events do: a consent appended on one instance and
 * a research copy taken on another are ordered by that lock.
 */

/* Run one statement with text parameters (binary[i]: values[i] is 32 raw
 * bytes); NULL on failure, with c->sqlstate set. */
static PGresult *run_sql(struct conn *c, const char *sql, int n, const char *const *values,
                         const int *binary)
{
    int lengths[8] = {0};
    for (int i = 0; binary && i < n && i < 8; i++)
        lengths[i] = binary[i] ? THOU_HASH_LEN : 0;
    c->sqlstate[0] = '\0';
    PGresult *res = PQexecParams(c->pg, sql, n, NULL, values, lengths, binary, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->ready = false;
    PQclear(res);
    return NULL;
}

/* Run a statement for its effect; *changed (when not NULL) receives the row count. */
static enum thou_status exec_sql(struct conn *c, const char *sql, int n, const char *const *values,
                                 const int *binary, size_t *changed)
{
    PGresult *res = run_sql(c, sql, n, values, binary);
    if (!res)
        return failure(c);
    if (changed)
        *changed = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return THOU_OK;
}

/* Lock the room's row (ENOTFOUND/EGONE when it is not there). */
static enum thou_status lock_room(struct conn *c, const char *room_id)
{
    struct thou_room_record room;
    enum thou_status rc = room_read(c, room_id, true, &room, NULL);
    thou_room_record_release(&room);
    return rc;
}

struct seat_args {
    const char *room_id;
    const uint8_t *old_hash, *new_hash;
    char role;
    bool again;
};

static enum thou_status role_of(struct conn *c, const char *room_id, const uint8_t *hash,
                                char *role)
{
    const char *values[] = {room_id, (const char *)hash};
    const int lengths[] = {0, THOU_HASH_LEN};
    const int binary[] = {0, 1};
    PGresult *res = run(c, ST_ROLE_BY_TOKEN, 2, values, lengths, binary);
    if (!res)
        return failure(c);
    *role = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0)[0] : 0;
    PQclear(res);
    return THOU_OK;
}

static enum thou_status seat_run(struct thou_store_pg *pg, void *arg)
{
    struct seat_args *a = arg;
    struct conn *c = &pg->writer;
    /* Under the room's row lock: of two devices claiming with the same old
     * token, on any instances, exactly one finds it still there. */
    enum thou_status rc = lock_room(c, a->room_id);
    if (rc == THOU_OK)
        rc = role_of(c, a->room_id, a->old_hash, &a->role);
    if (rc)
        return rc;
    if (!a->role) {
        /* The old token is gone: this very claim again (its answer was lost)? */
        rc = role_of(c, a->room_id, a->new_hash, &a->role);
        if (rc)
            return rc;
        a->again = a->role != 0;
        return a->again ? THOU_OK : THOU_EAUTH;
    }
    const char *values[] = {(const char *)a->new_hash, a->room_id, (const char *)a->old_hash};
    const int binary[] = {1, 0, 1};
    return exec_sql(c,
                    "UPDATE participants SET token_hash = $1 WHERE room_id = $2"
                    " AND token_hash = $3",
                    3, values, binary, NULL);
}

enum thou_status thou_store_pg_seat_move(struct thou_store_pg *pg, const char *room_id,
                                         const uint8_t old_hash[THOU_HASH_LEN],
                                         const uint8_t new_hash[THOU_HASH_LEN], char *role,
                                         bool *again)
{
    struct seat_args args = {room_id, old_hash, new_hash, 0, false};
    enum thou_status rc = write_sync(pg, seat_run, &args, room_id);
    *role = rc == THOU_OK ? args.role : 0;
    if (again)
        *again = rc == THOU_OK && args.again;
    return rc;
}

#define STUDY_COLUMNS                                                                              \
    "name, encode(public_key, 'hex'), conditions, closeness, assigned, created_ms,"                \
    " encode(seed, 'hex')"

/* A study from a row of STUDY_COLUMNS; seed (when not NULL) receives its seed. */
static void study_from_row(const PGresult *res, int row, struct thou_study_record *study,
                           uint8_t *seed)
{
    memset(study, 0, sizeof(*study));
    snprintf(study->name, sizeof(study->name), "%s", PQgetvalue(res, row, 0));
    hex_to_bytes(PQgetvalue(res, row, 1), study->public_key, sizeof(study->public_key));
    json_t *list = json_loads(PQgetvalue(res, row, 2), 0, NULL);
    size_t i;
    json_t *value;
    json_array_foreach(list, i, value)
    {
        if (i < sizeof(study->conditions) / sizeof(study->conditions[0]) && json_is_string(value))
            snprintf(study->conditions[study->n_conditions++], sizeof(study->conditions[0]), "%s",
                     json_string_value(value));
    }
    json_decref(list);
    study->closeness = int_value(res, row, 3) != 0;
    study->assigned = int_value(res, row, 4);
    study->created_ms = int_value(res, row, 5);
    if (seed)
        hex_to_bytes(PQgetvalue(res, row, 6), seed, THOU_STUDY_SEED_BYTES);
}

struct study_add_args {
    const struct thou_study_record *study;
    const uint8_t *seed;
};

static enum thou_status study_add_run(struct thou_store_pg *pg, void *arg)
{
    const struct study_add_args *a = arg;
    json_t *list = json_array();
    for (size_t i = 0; list && i < a->study->n_conditions; i++)
        json_array_append_new(list, json_string(a->study->conditions[i]));
    char *conditions = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    if (!conditions)
        return THOU_ENOMEM;
    char created[24];
    snprintf(created, sizeof(created), "%lld", (long long)a->study->created_ms);
    const char *values[] = {a->study->name,
                            (const char *)a->study->public_key,
                            conditions,
                            a->study->closeness ? "1" : "0",
                            (const char *)a->seed,
                            created};
    const int binary[] = {0, 1, 0, 0, 1, 0};
    enum thou_status rc = exec_sql(&pg->writer,
                                   "INSERT INTO studies (name, public_key, conditions, closeness,"
                                   " seed, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                                   6, values, binary, NULL);
    free(conditions);
    return rc;
}

enum thou_status thou_store_pg_study_add(struct thou_store_pg *pg,
                                         const struct thou_study_record *study,
                                         const uint8_t seed[32])
{
    _Static_assert(sizeof(study->public_key) == THOU_HASH_LEN && THOU_STUDY_SEED_BYTES == 32,
                   "keys and seeds travel as 32-byte binary parameters");
    struct study_add_args args = {study, seed};
    return write_sync(pg, study_add_run, &args, NULL);
}

enum thou_status thou_store_pg_study_get(struct thou_store_pg *pg, const char *name,
                                         struct thou_study_record *study)
{
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    const char *values[] = {name};
    PGresult *res =
        run_sql(c, "SELECT " STUDY_COLUMNS " FROM studies WHERE name = $1", 1, values, NULL);
    enum thou_status rc = res ? THOU_ENOTFOUND : failure(c);
    reader_give(pg, c);
    if (res && PQntuples(res) > 0) {
        study_from_row(res, 0, study, NULL);
        rc = THOU_OK;
    }
    PQclear(res);
    return rc;
}

enum thou_status thou_store_pg_study_list(struct thou_store_pg *pg, thou_study_visit_fn visit,
                                          void *ctx)
{
    struct conn *c = reader_take(pg);
    if (!c)
        return THOU_EUNAVAIL;
    PGresult *res = run_sql(c,
                            "SELECT " STUDY_COLUMNS ", (SELECT count(*) FROM rooms"
                            " WHERE rooms.study = studies.name) FROM studies ORDER BY name",
                            0, NULL, NULL);
    enum thou_status rc = res ? THOU_OK : failure(c);
    reader_give(pg, c);
    for (int i = 0; res && i < PQntuples(res); i++) {
        struct thou_study_record study;
        study_from_row(res, i, &study, NULL);
        visit(ctx, &study, int_value(res, i, 7));
    }
    PQclear(res);
    return rc;
}

static enum thou_status study_remove_run(struct thou_store_pg *pg, void *arg)
{
    const char *values[] = {arg};
    struct conn *c = &pg->writer;
    /* The study's rooms first, in id order: a research copy being taken on
     * another instance finishes before its room leaves the study, and none
     * starts after. */
    static const char *const steps[] = {
        "SELECT id FROM rooms WHERE study = $1 ORDER BY id FOR UPDATE",
        "DELETE FROM research_copies WHERE room_id IN (SELECT id FROM rooms WHERE study = $1)",
        "DELETE FROM research_releases WHERE room_id IN (SELECT id FROM rooms WHERE study = $1)",
        "UPDATE rooms SET study = NULL, study_condition = NULL WHERE study = $1",
    };
    size_t removed = 0;
    enum thou_status rc =
        exec_sql(c, "DELETE FROM studies WHERE name = $1", 1, values, NULL, &removed);
    if (rc == THOU_OK && removed == 0)
        return THOU_ENOTFOUND;
    for (size_t i = 0; rc == THOU_OK && i < sizeof(steps) / sizeof(steps[0]); i++)
        rc = exec_sql(c, steps[i], 1, values, NULL, NULL);
    return rc;
}

enum thou_status thou_store_pg_study_remove(struct thou_store_pg *pg, const char *name)
{
    return write_sync(pg, study_remove_run, (void *)(uintptr_t)name, NULL);
}

struct study_assign_args {
    const char *name;
    struct thou_study_record *study;
    size_t condition;
};

static enum thou_status study_assign_run(struct thou_store_pg *pg, void *arg)
{
    struct study_assign_args *a = arg;
    struct conn *c = &pg->writer;
    const char *values[] = {a->name};
    /* Counted under the study's row lock: instances assigning at once each
     * get their own index, so the blocks stay balanced across them. */
    PGresult *res = run_sql(c,
                            "UPDATE studies SET assigned = assigned + 1 WHERE name = $1"
                            " RETURNING " STUDY_COLUMNS,
                            1, values, NULL);
    if (!res)
        return failure(c);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return THOU_ENOTFOUND;
    }
    uint8_t seed[THOU_STUDY_SEED_BYTES];
    study_from_row(res, 0, a->study, seed);
    PQclear(res);
    a->condition = thou_studies_condition(seed, a->study->n_conditions, a->study->assigned - 1);
    sodium_memzero(seed, sizeof(seed));
    return THOU_OK;
}

enum thou_status thou_store_pg_study_assign(struct thou_store_pg *pg, const char *name,
                                            struct thou_study_record *study, size_t *condition)
{
    struct study_assign_args args = {name, study, 0};
    enum thou_status rc = write_sync(pg, study_assign_run, &args, NULL);
    *condition = args.condition;
    return rc;
}

struct room_study_args {
    const char *room_id, *study, *condition;
};

static enum thou_status room_set_study_run(struct thou_store_pg *pg, void *arg)
{
    const struct room_study_args *a = arg;
    const char *values[] = {a->study, a->condition, a->room_id};
    size_t changed = 0;
    enum thou_status rc =
        exec_sql(&pg->writer, "UPDATE rooms SET study = $1, study_condition = $2 WHERE id = $3", 3,
                 values, NULL, &changed);
    return rc == THOU_OK && changed == 0 ? THOU_ENOTFOUND : rc;
}

enum thou_status thou_store_pg_room_set_study(struct thou_store_pg *pg, const char *room_id,
                                              const char *study, const char *condition)
{
    struct room_study_args args = {room_id, study, condition};
    return write_sync(pg, room_set_study_run, &args, room_id);
}

static enum thou_status room_study(struct conn *c, const char *room_id,
                                   char study[THOU_SET_ID_MAX + 1],
                                   char condition[THOU_SET_ID_MAX + 1])
{
    study[0] = condition[0] = '\0';
    const char *values[] = {room_id};
    PGresult *res =
        run_sql(c, "SELECT study, study_condition FROM rooms WHERE id = $1", 1, values, NULL);
    if (!res)
        return failure(c);
    enum thou_status rc = THOU_OK;
    if (PQntuples(res) > 0) {
        snprintf(study, THOU_SET_ID_MAX + 1, "%s", PQgetvalue(res, 0, 0));
        snprintf(condition, THOU_SET_ID_MAX + 1, "%s", PQgetvalue(res, 0, 1));
    } else {
        rc = missing_room(c, room_id);
    }
    PQclear(res);
    return rc;
}

enum thou_status thou_store_pg_room_study(struct thou_store_pg *pg, const char *room_id,
                                          char study[THOU_SET_ID_MAX + 1],
                                          char condition[THOU_SET_ID_MAX + 1])
{
    struct conn *c = reader_take(pg);
    if (!c) {
        study[0] = condition[0] = '\0';
        return THOU_EUNAVAIL;
    }
    enum thou_status rc = room_study(c, room_id, study, condition);
    reader_give(pg, c);
    return rc;
}

/* With the room locked: THOU_OK while the room has a study, both partners
 * consented and neither declined or withdrew (the events are the record),
 * THOU_EFORBIDDEN otherwise, THOU_ECONFLICT once role released its copies. */
static enum thou_status research_allowed(struct conn *c, const char *room_id, char role)
{
    enum thou_status rc = lock_room(c, room_id);
    if (rc)
        return rc;
    const char role_text[2] = {role, '\0'};
    const char *values[] = {room_id, role_text};
    PGresult *res = run_sql(c,
                            "SELECT study IS NOT NULL,"
                            " (SELECT count(DISTINCT sender) FROM events WHERE room_id = $1"
                            "  AND type = 'consent'),"
                            " (SELECT count(*) FROM events WHERE room_id = $1"
                            "  AND type IN ('decline', 'withdraw')),"
                            " EXISTS (SELECT 1 FROM research_releases WHERE room_id = $1"
                            "  AND role = $2)"
                            " FROM rooms WHERE id = $1",
                            2, values, NULL);
    if (!res)
        return failure(c);
    rc = THOU_EIO;
    if (PQntuples(res) > 0) {
        bool allowed = PQgetvalue(res, 0, 0)[0] == 't' && int_value(res, 0, 1) == 2 &&
                       int_value(res, 0, 2) == 0;
        rc = !allowed                          ? THOU_EFORBIDDEN
             : PQgetvalue(res, 0, 3)[0] == 't' ? THOU_ECONFLICT
                                               : THOU_OK;
    }
    PQclear(res);
    return rc;
}

struct research_add_args {
    const char *room_id;
    char role;
    const char *step, *sealed;
    int64_t hour;
};

static enum thou_status research_add_run(struct thou_store_pg *pg, void *arg)
{
    const struct research_add_args *a = arg;
    struct conn *c = &pg->writer;
    enum thou_status rc = research_allowed(c, a->room_id, a->role);
    if (rc)
        return rc;
    const char role_text[2] = {a->role, '\0'};
    char hour[24];
    snprintf(hour, sizeof(hour), "%lld", (long long)a->hour);
    const char *values[] = {a->room_id, role_text, a->step, a->sealed, hour};
    return exec_sql(c,
                    "INSERT INTO research_copies (room_id, role, step, sealed, hour)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    5, values, NULL, NULL);
}

enum thou_status thou_store_pg_research_add(struct thou_store_pg *pg, const char *room_id,
                                            char role, const char *step, const char *sealed,
                                            int64_t hour)
{
    struct research_add_args args = {room_id, role, step, sealed, hour};
    return write_sync(pg, research_add_run, &args, room_id);
}

struct research_delete_args {
    const char *room_id;
    size_t deleted;
};

static enum thou_status research_delete_run(struct thou_store_pg *pg, void *arg)
{
    struct research_delete_args *a = arg;
    const char *values[] = {a->room_id};
    return exec_sql(&pg->writer, "DELETE FROM research_copies WHERE room_id = $1", 1, values, NULL,
                    &a->deleted);
}

enum thou_status thou_store_pg_research_delete(struct thou_store_pg *pg, const char *room_id,
                                               size_t *deleted)
{
    struct research_delete_args args = {room_id, 0};
    enum thou_status rc = write_sync(pg, research_delete_run, &args, room_id);
    *deleted = rc == THOU_OK ? args.deleted : 0;
    return rc;
}

struct research_release_args {
    const char *room_id;
    char role;
    const char *const *leave_out;
    size_t n_leave_out;
    size_t released, left_out;
};

static enum thou_status research_release_run(struct thou_store_pg *pg, void *arg)
{
    struct research_release_args *a = arg;
    struct conn *c = &pg->writer;
    /* Counted afresh if the job runs again after a deadlock. */
    a->released = a->left_out = 0;
    enum thou_status rc = research_allowed(c, a->room_id, a->role);
    const char role_text[2] = {a->role, '\0'};
    /* Left out: the sealed bytes go at once, so nothing can export them. */
    for (size_t i = 0; rc == THOU_OK && i < a->n_leave_out; i++) {
        const char *values[] = {a->room_id, role_text, a->leave_out[i]};
        size_t changed = 0;
        rc = exec_sql(c,
                      "UPDATE research_copies SET sealed = NULL, state = 2"
                      " WHERE room_id = $1 AND role = $2 AND step = $3",
                      3, values, NULL, &changed);
        a->left_out += changed;
    }
    const char *values[] = {a->room_id, role_text};
    if (rc == THOU_OK)
        rc = exec_sql(c,
                      "UPDATE research_copies SET state = 1 WHERE room_id = $1 AND role = $2"
                      " AND state = 0",
                      2, values, NULL, &a->released);
    if (rc == THOU_OK)
        rc = exec_sql(c, "INSERT INTO research_releases (room_id, role) VALUES ($1, $2)", 2, values,
                      NULL, NULL);
    return rc;
}

enum thou_status thou_store_pg_research_release(struct thou_store_pg *pg, const char *room_id,
                                                char role, const char *const *leave_out,
                                                size_t n_leave_out, size_t *released,
                                                size_t *left_out)
{
    struct research_release_args args = {room_id, role, leave_out, n_leave_out, 0, 0};
    enum thou_status rc = write_sync(pg, research_release_run, &args, room_id);
    *released = rc == THOU_OK ? args.released : 0;
    *left_out = rc == THOU_OK ? args.left_out : 0;
    return rc;
}
