#include "thou/store.h"
#include "thou/store_pg.h"
#include "thou/buf.h"
#include "thou/mem.h"
#include "thou/text.h"
#include "thou/studies.h"

#include <jansson.h>
#include <sodium.h>

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 'thou' in ASCII: marks the file as ours, so another program's database
 * is never migrated by mistake. */
#define THOU_APPLICATION_ID 0x74686f75

/* Migration i takes the schema from version i to i + 1. Never edit a
 * migration that has shipped; append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE rooms ("
    "  id TEXT PRIMARY KEY,"
    "  set_id TEXT NOT NULL,"
    "  set_version INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  join_verifier BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  flow TEXT"
    ") WITHOUT ROWID;"
    "CREATE INDEX rooms_expiry ON rooms(expires_ms);"
    "CREATE TABLE participants ("
    "  room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('A', 'B')),"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  joined_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (room_id, role)"
    ") WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  visible_to TEXT,"
    "  data TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (room_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE tombstones ("
    "  room_id TEXT PRIMARY KEY,"
    "  gone_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 2: a room's last seq is the largest seq of its events (one index
     * seek), so storing an event no longer rewrites the room's row. */
    "ALTER TABLE rooms DROP COLUMN last_seq;",
    /* 3: events in arrival order (rowid), found by a (room_id, seq) index:
     * a commit of many rooms' events appends to the same few data pages
     * instead of dirtying one page per room. */
    "CREATE TABLE events_v3 ("
    "  id INTEGER PRIMARY KEY,"
    "  room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  visible_to TEXT,"
    "  data TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL"
    ");"
    "INSERT INTO events_v3 (room_id, seq, type, sender, visible_to, data, time_ms)"
    "  SELECT room_id, seq, type, sender, visible_to, data, time_ms FROM events"
    "  ORDER BY time_ms, room_id, seq;"
    "DROP TABLE events;"
    "ALTER TABLE events_v3 RENAME TO events;"
    "CREATE UNIQUE INDEX events_by_room ON events(room_id, seq);",
    /* 4: facilitated workshops (docs/api.md, Workshops). Facilitators and
     * their sessions (only hashes of session tokens), workshops, and the
     * people who joined one: a per-workshop label and the hash of the token
     * their browser drew, never a name, an address or a user agent. A
     * participant sits in at most one room (one row, one room_id), and a
     * room of a workshop has at most one A and one B (the partial unique
     * index), so no pairing can make a room of three. */
    "CREATE TABLE facilitators ("
    "  name TEXT PRIMARY KEY,"
    "  password_hash TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE facilitator_sessions ("
    "  token_hash BLOB PRIMARY KEY,"
    "  facilitator TEXT NOT NULL REFERENCES facilitators(name) ON DELETE CASCADE,"
    "  csrf TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX facilitator_sessions_by_name ON facilitator_sessions(facilitator);"
    "CREATE TABLE workshops ("
    "  id INTEGER PRIMARY KEY,"
    "  code TEXT NOT NULL UNIQUE,"
    "  facilitator TEXT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  set_id TEXT NOT NULL,"
    "  set_version INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  released INTEGER NOT NULL DEFAULT 0,"
    "  paused INTEGER NOT NULL DEFAULT 0,"
    "  note TEXT,"
    "  timer_ends_ms INTEGER,"
    "  capacity INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  joined INTEGER NOT NULL DEFAULT 0,"
    "  pairs INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX workshops_by_facilitator ON workshops(facilitator, id);"
    "CREATE TABLE workshop_participants ("
    "  workshop_id INTEGER NOT NULL REFERENCES workshops(id) ON DELETE CASCADE,"
    "  label INTEGER NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  arrived_ms INTEGER NOT NULL,"
    "  queued_ms INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  left_behind INTEGER NOT NULL DEFAULT 0,"
    "  room_id TEXT,"
    "  role TEXT CHECK (role IN ('A', 'B')),"
    "  pair INTEGER,"
    "  PRIMARY KEY (workshop_id, label)"
    ") WITHOUT ROWID;"
    "CREATE UNIQUE INDEX workshop_seats ON workshop_participants(room_id, role)"
    "  WHERE room_id IS NOT NULL;"
    "CREATE INDEX workshop_queue ON workshop_participants(workshop_id, state, queued_ms);"
    "ALTER TABLE rooms ADD COLUMN mode TEXT NOT NULL DEFAULT 'link';"
    "ALTER TABLE rooms ADD COLUMN workshop_id INTEGER;"
    "ALTER TABLE rooms ADD COLUMN workshop_pair INTEGER;"
    "CREATE INDEX rooms_by_workshop ON rooms(workshop_id) WHERE workshop_id IS NOT NULL;",
    /* 5: research studies (docs/research.md). A room may belong to a study
     * and carries the condition it was assigned; research copies are sealed
     * to the study's key in the browser and deleted with their room. Their
     * time is the hour only, so no copy gives away when someone wrote. */
    "CREATE TABLE studies ("
    "  name TEXT PRIMARY KEY,"
    "  public_key BLOB NOT NULL,"
    "  conditions TEXT NOT NULL,"
    "  closeness INTEGER NOT NULL,"
    "  seed BLOB NOT NULL,"
    "  assigned INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "ALTER TABLE rooms ADD COLUMN study TEXT;"
    "ALTER TABLE rooms ADD COLUMN study_condition TEXT;"
    "CREATE INDEX rooms_by_study ON rooms(study) WHERE study IS NOT NULL;"
    "CREATE TABLE research_copies ("
    "  id INTEGER PRIMARY KEY,"
    "  room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('A', 'B')),"
    "  step TEXT NOT NULL,"
    "  sealed TEXT,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  hour INTEGER NOT NULL,"
    "  UNIQUE (room_id, role, step)"
    ");"
    "CREATE TABLE research_releases ("
    "  room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('A', 'B')),"
    "  PRIMARY KEY (room_id, role)"
    ") WITHOUT ROWID;",
    /* 6: a workshop may carry a study (docs/research.md, workshop mode). */
    "ALTER TABLE workshops ADD COLUMN study TEXT;",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(N_MIGRATIONS == THOU_SCHEMA_VERSION, "one migration per schema version");

enum stmt_id {
    ST_PING,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_ROOM_INSERT,
    ST_PARTICIPANT_INSERT,
    ST_ROOM_GET,
    ST_ROOM_HAS_B,
    ST_TOMBSTONE_GET,
    ST_ROOM_SET_STATE,
    ST_ROLE_BY_TOKEN,
    ST_EVENT_INSERT,
    ST_ROOM_ADVANCE,
    ST_EVENTS_AFTER,
    ST_ROOM_DELETE,
    ST_TOMBSTONE_INSERT,
    ST_EXPIRED_SELECT,
    ST_TOMBSTONE_SWEEP,
    ST_FIND_EVENT,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_ROOM_BYTES,
    ST_PARTICIPANT_RETOKEN,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_ROOM_INSERT] = "INSERT INTO rooms (id, set_id, set_version, state, join_verifier,"
                       " created_ms, expires_ms, flow) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_PARTICIPANT_INSERT] =
        "INSERT INTO participants (room_id, role, token_hash, joined_ms) VALUES (?, ?, ?, ?)",
    [ST_ROOM_GET] = "SELECT set_id, set_version, state, join_verifier, created_ms, expires_ms,"
                    " (SELECT COALESCE(MAX(seq), 0) FROM events WHERE room_id = rooms.id), flow"
                    " FROM rooms WHERE id = ?",
    [ST_ROOM_HAS_B] = "SELECT 1 FROM participants WHERE room_id = ? AND role = 'B'",
    [ST_TOMBSTONE_GET] = "SELECT 1 FROM tombstones WHERE room_id = ?",
    [ST_ROOM_SET_STATE] = "UPDATE rooms SET state = ? WHERE id = ?",
    [ST_ROLE_BY_TOKEN] = "SELECT role FROM participants WHERE room_id = ? AND token_hash = ?",
    [ST_EVENT_INSERT] = "INSERT INTO events (room_id, seq, type, sender, visible_to, data, time_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
    [ST_ROOM_ADVANCE] = "UPDATE rooms SET state = ?, flow = COALESCE(?, flow) WHERE id = ?",
    [ST_ROOM_BYTES] = "SELECT coalesce(sum(length(data)), 0) FROM events WHERE room_id = ?",
    [ST_EVENTS_AFTER] = "SELECT seq, type, sender, visible_to, data, time_ms FROM events"
                        " WHERE room_id = ? AND seq > ? AND (visible_to IS NULL OR visible_to = ?)"
                        " ORDER BY seq LIMIT ?",
    [ST_ROOM_DELETE] = "DELETE FROM rooms WHERE id = ?",
    [ST_TOMBSTONE_INSERT] = "INSERT OR REPLACE INTO tombstones (room_id, gone_ms) VALUES (?, ?)",
    [ST_EXPIRED_SELECT] = "SELECT id FROM rooms WHERE expires_ms <= ? LIMIT 256",
    [ST_TOMBSTONE_SWEEP] = "DELETE FROM tombstones WHERE gone_ms <= ?",
    [ST_FIND_EVENT] = "SELECT data FROM events WHERE room_id = ? AND type = ? AND sender = ?"
                      " AND (?4 IS NULL OR json_extract(data, '$.question') = ?4)"
                      " ORDER BY seq DESC LIMIT 1",
    [ST_SAVEPOINT] = "SAVEPOINT job",
    [ST_RELEASE] = "RELEASE job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO job",
    [ST_PARTICIPANT_RETOKEN] =
        "UPDATE participants SET token_hash = ? WHERE room_id = ? AND token_hash = ?",
};

struct room_cache;

/* One SQLite connection with its prepared statements. */
struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    struct room_cache *cache; /* the writer's rooms; NULL on other connections */
};

/*
 * The writer's copy of the rooms it has touched lately. The writer thread
 * is the only one that changes rooms, so what it last wrote is what the
 * database holds: a posted event needs no read before its insert. Direct
 * mapped and bounded; any doubt (a failed commit, a sweep) empties it.
 */
#define CACHE_SLOTS 4096

struct room_cache {
    struct thou_room_record slots[CACHE_SLOTS]; /* id[0] == '\0': empty */
    int64_t bytes[CACHE_SLOTS];                 /* each room's stored event data, in bytes */
    int64_t max_events, max_bytes;              /* per room; 0: no limit */
};

static int64_t *cache_bytes(struct room_cache *cache, const struct thou_room_record *slot)
{
    return &cache->bytes[slot - cache->slots];
}

static struct thou_room_record *cache_slot(struct room_cache *cache, const char *room_id)
{
    return &cache->slots[thou_text_hash(room_id) % CACHE_SLOTS];
}

static void cache_forget(struct room_cache *cache, const char *room_id)
{
    struct thou_room_record *slot = cache_slot(cache, room_id);
    if (strcmp(slot->id, room_id) == 0) {
        free(slot->flow_json);
        memset(slot, 0, sizeof(*slot));
        *cache_bytes(cache, slot) = 0;
    }
}

static void cache_clear(struct room_cache *cache)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(cache->slots[i].flow_json);
        memset(&cache->slots[i], 0, sizeof(cache->slots[i]));
    }
}

/*
 * A write waiting for the writer thread. The writer runs every job queued
 * at that moment inside one transaction, each under its own savepoint, and
 * commits once: one fsync acknowledges many events (group commit). Nothing
 * is reported done before that commit.
 */
struct job {
    enum thou_status (*run)(struct conn *c, void *arg);
    void *arg;
    enum thou_status status;
    thou_store_done_fn done; /* asynchronous: called after the commit */
    void *done_ctx;
    bool finished;      /* synchronous: the waiter sleeps on done_cond */
    bool own_savepoint; /* run() keeps its writes atomic itself (see update_run) */
    struct job *next;
};

#define MAX_BATCH 512

struct thou_store {
    struct conn writer; /* used by the writer thread only (and open/close) */
    struct conn reader; /* reads from request threads, under read_lock */
    pthread_mutex_t read_lock;
    int schema_version;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t queue_lock;
    pthread_cond_t work_cond;
    pthread_cond_t done_cond;
    struct job *head, *tail;
    bool stopping;
    int wal_pages;               /* pages in the WAL after the last commit (writer thread) */
    void (*before_done)(void *); /* batch hooks, see thou_store_set_batch_hooks */
    void (*after_done)(void *);
    void *hooks_ctx;
    struct thou_store_pg *pg; /* set: every public function runs on PostgreSQL instead */
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

/* mkdir -p with mode 0700: the data directory holds conversations. */
static int make_dirs(const char *path)
{
    char *copy = thou_xstrdup(path);
    int rc = 0;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *p = '/';
    }
    if (rc == 0 && mkdir(copy, 0700) != 0 && errno != EEXIST)
        rc = -1;
    free(copy);
    return rc;
}

static int pragma_int(sqlite3 *db, const char *sql, int *value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            *value = sqlite3_column_int(stmt, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Refuse a database that is not ours before anything writes to it (even
 * switching its journal mode would change a stranger's file). */
static enum thou_status check_identity(sqlite3 *db, const char *path, int *version, char *errbuf,
                                       size_t errlen)
{
    int app_id = 0, tables = 0;
    if (pragma_int(db, "PRAGMA user_version", version) != SQLITE_OK ||
        pragma_int(db, "PRAGMA application_id", &app_id) != SQLITE_OK ||
        pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot read database '%s': %s", path, sqlite3_errmsg(db));
        return THOU_EIO;
    }
    if (app_id != THOU_APPLICATION_ID && (app_id != 0 || tables > 0)) {
        set_error(errbuf, errlen, "database '%s' is not a thou database (application id %d)", path,
                  app_id);
        return THOU_ESCHEMA;
    }
    return THOU_OK;
}

/*
 * Refuse a damaged database rather than serve it: a crash leaves a
 * database SQLite recovers by itself (the WAL), but a file damaged on disk
 * or by hand would answer some reads wrongly and fail some writes. The
 * check reads every page once (about a second per GiB), at start only.
 */
static enum thou_status check_integrity(sqlite3 *db, const char *path, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    enum thou_status status = THOU_EIO;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        set_error(errbuf, errlen,
                  "database '%s' is damaged and cannot be served: %s; restore "
                  "it from a backup",
                  path, sqlite3_errmsg(db));
        goto out;
    }
    const char *verdict = (const char *)sqlite3_column_text(stmt, 0);
    if (!verdict || strcmp(verdict, "ok") != 0) {
        set_error(errbuf, errlen,
                  "database '%s' is damaged and cannot be served (%s); restore "
                  "it from a backup",
                  path, verdict ? verdict : "no verdict");
        goto out;
    }
    status = THOU_OK;
out:
    sqlite3_finalize(stmt);
    return status;
}

static enum thou_status migrate(struct thou_store *store, int version, char *errbuf, size_t errlen)
{
    sqlite3 *db = store->writer.db;
    if (version > N_MIGRATIONS) {
        set_error(errbuf, errlen,
                  "database schema version %d is newer than this thou understands (%d); "
                  "upgrade thou",
                  version, N_MIGRATIONS);
        return THOU_ESCHEMA;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        char pragmas[96];
        snprintf(pragmas, sizeof(pragmas), "PRAGMA user_version = %d; PRAGMA application_id = %d;",
                 v + 1, THOU_APPLICATION_ID);
        /* Each step is one transaction: a crash leaves the old version whole. */
        char *msg = NULL;
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, migrations[v], NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            set_error(errbuf, errlen, "cannot migrate database to version %d: %s", v + 1,
                      msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return THOU_EIO;
        }
    }
    store->schema_version = N_MIGRATIONS;
    return THOU_OK;
}

static enum thou_status conn_open(struct conn *c, const char *path, int *version, char *errbuf,
                                  size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot open database '%s': %s", path,
                  c->db ? sqlite3_errmsg(c->db) : "out of memory");
        return THOU_EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    enum thou_status identity = check_identity(c->db, path, version, errbuf, errlen);
    if (identity)
        return identity;
    char *msg = NULL;
    /* FULL makes every commit fsync the WAL: an acknowledged event survives
     * power loss, not only a crash of the process. */
    int rc = sqlite3_exec(c->db,
                          "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                          " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
                          /* Read pages through a mapping rather than a pread() each. */
                          " PRAGMA mmap_size = 268435456;",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot configure database '%s': %s", path,
                  msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return THOU_EIO;
    }
    return THOU_OK;
}

static enum thou_status conn_prepare(struct conn *c, char *errbuf, size_t errlen)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[i],
                               NULL) != SQLITE_OK) {
            set_error(errbuf, errlen, "cannot prepare statement %d: %s", i, sqlite3_errmsg(c->db));
            return THOU_EIO;
        }
    }
    return THOU_OK;
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    /* The last connection to close checkpoints the WAL into the main file. */
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

static void *writer_main(void *arg);
static int count_wal_pages(void *ctx, sqlite3 *db, const char *name, int pages);

/* The store_url "postgresql://..." opens PostgreSQL; "sqlite:PATH" the SQLite one in PATH. */
static enum thou_status open_pg(const char *url, struct thou_store **out, char *errbuf,
                                size_t errlen)
{
    struct thou_store_pg *pg = NULL;
    enum thou_status rc = thou_store_pg_open(url, &pg, errbuf, errlen);
    *out = NULL;
    if (rc == THOU_OK) {
        *out = thou_xcalloc(1, sizeof(**out));
        (*out)->pg = pg;
    }
    return rc;
}

enum thou_status thou_store_open(const char *data_dir, struct thou_store **out, char *errbuf,
                                 size_t errlen)
{
    if (thou_store_pg_is_url(data_dir))
        return open_pg(data_dir, out, errbuf, errlen);
    if (strncmp(data_dir, "sqlite:", 7) == 0)
        data_dir += 7;
    enum thou_status rc = THOU_OK;
    struct thou_store *store = thou_xcalloc(1, sizeof(*store));
    struct thou_buf path;
    thou_buf_init(&path);
    pthread_mutex_init(&store->read_lock, NULL);
    pthread_mutex_init(&store->queue_lock, NULL);
    pthread_cond_init(&store->work_cond, NULL);
    pthread_cond_init(&store->done_cond, NULL);

    if (make_dirs(data_dir) != 0) {
        set_error(errbuf, errlen, "cannot create data directory '%s': %s", data_dir,
                  strerror(errno));
        rc = THOU_EIO;
        goto out;
    }
    thou_buf_printf(&path, "%s/thou.db", data_dir);
    int version = 0;
    rc = conn_open(&store->writer, path.data, &version, errbuf, errlen);
    if (rc == THOU_OK)
        rc = check_integrity(store->writer.db, path.data, errbuf, errlen);
    if (rc == THOU_OK)
        rc = migrate(store, version, errbuf, errlen);
    if (rc == THOU_OK)
        rc = conn_prepare(&store->writer, errbuf, errlen);
    store->writer.cache = thou_xcalloc(1, sizeof(struct room_cache));
    if (rc == THOU_OK)
        rc = conn_open(&store->reader, path.data, &version, errbuf, errlen);
    if (rc == THOU_OK)
        rc = conn_prepare(&store->reader, errbuf, errlen);
    /* The writer thread checkpoints, between batches (see checkpoint_if_due);
     * this hook only counts the WAL's pages. */
    if (rc == THOU_OK)
        sqlite3_wal_hook(store->writer.db, count_wal_pages, store);
    if (rc)
        goto out;
    if (pthread_create(&store->thread, NULL, writer_main, store) != 0) {
        set_error(errbuf, errlen, "cannot start the database writer thread");
        rc = THOU_EIO;
        goto out;
    }
    store->thread_started = true;
out:
    thou_buf_release(&path);
    if (rc) {
        thou_store_close(store);
        store = NULL;
    }
    *out = store;
    return rc;
}

void thou_store_set_room_limits(struct thou_store *store, int64_t max_events, int64_t max_bytes)
{
    if (store->pg) {
        thou_store_pg_set_room_limits(store->pg, max_events, max_bytes);
        return;
    }
    store->writer.cache->max_events = max_events;
    store->writer.cache->max_bytes = max_bytes;
}

void thou_store_close(struct thou_store *store)
{
    if (!store)
        return;
    if (store->pg) {
        thou_store_pg_close(store->pg);
        free(store);
        return;
    }
    if (store->thread_started) {
        /* The writer drains the queue before it stops: nothing accepted is dropped. */
        pthread_mutex_lock(&store->queue_lock);
        store->stopping = true;
        pthread_cond_signal(&store->work_cond);
        pthread_mutex_unlock(&store->queue_lock);
        pthread_join(store->thread, NULL);
    }
    if (store->writer.cache) {
        cache_clear(store->writer.cache);
        free(store->writer.cache);
    }
    conn_close(&store->reader);
    conn_close(&store->writer);
    pthread_mutex_destroy(&store->read_lock);
    pthread_mutex_destroy(&store->queue_lock);
    pthread_cond_destroy(&store->work_cond);
    pthread_cond_destroy(&store->done_cond);
    free(store);
}

void thou_store_set_batch_hooks(struct thou_store *store, void (*before)(void *),
                                void (*after)(void *), void *ctx)
{
    if (store->pg) {
        thou_store_pg_set_batch_hooks(store->pg, before, after, ctx);
        return;
    }
    /* Under the queue lock: the writer reads them after taking a batch from
     * the queue under the same lock. */
    pthread_mutex_lock(&store->queue_lock);
    store->before_done = before;
    store->after_done = after;
    store->hooks_ctx = ctx;
    pthread_mutex_unlock(&store->queue_lock);
}

void thou_store_set_remote_hook(struct thou_store *store,
                                void (*committed)(void *ctx, const char *room_id, int64_t seq),
                                void *ctx)
{
    /* One SQLite database has one writer, this instance: nobody else commits. */
    if (store->pg)
        thou_store_pg_set_remote_hook(store->pg, committed, ctx);
}

void thou_store_presence_publish(struct thou_store *store, const char *room_id, char role,
                                 bool present)
{
    if (store->pg)
        thou_store_pg_presence_publish(store->pg, room_id, role, present);
}

bool thou_store_presence_elsewhere(struct thou_store *store, const char *room_id, char role)
{
    return store->pg && thou_store_pg_presence_elsewhere(store->pg, room_id, role);
}

void thou_store_set_moved_hook(struct thou_store *store,
                               void (*moved)(void *ctx, const char *room_id, char role), void *ctx)
{
    if (store->pg)
        thou_store_pg_set_moved_hook(store->pg, moved, ctx);
}

void thou_store_set_presence_hook(struct thou_store *store,
                                  void (*presence)(void *ctx, const char *room_id, char role,
                                                   bool present),
                                  void *ctx)
{
    if (store->pg)
        thou_store_pg_set_presence_hook(store->pg, presence, ctx);
}

enum thou_status thou_store_rate_take(struct thou_store *store, const char *name, const char *key,
                                      double per_second, unsigned burst, bool consume,
                                      int64_t now_ms, unsigned *retry_after_s)
{
    if (store->pg)
        return thou_store_pg_rate_take(store->pg, name, key, per_second, burst, consume, now_ms,
                                       retry_after_s);
    return THOU_EUNAVAIL; /* one instance: its own limiter decides */
}

int thou_store_rate_hook(void *store, const char *name, const char *key, double per_second,
                         unsigned burst, bool consume, int64_t now_ms, unsigned *retry_after_s)
{
    switch (
        thou_store_rate_take(store, name, key, per_second, burst, consume, now_ms, retry_after_s)) {
    case THOU_OK:
        return 1;
    case THOU_ERATE:
        return 0;
    default:
        return -1; /* SQLite, or the database is away */
    }
}

int thou_store_schema_version(struct thou_store *store)
{
    if (store->pg)
        return thou_store_pg_schema_version(store->pg);
    return store->schema_version;
}

/* Prepared statement, reset and cleared, ready for binding. */
static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = c->stmts[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Run a statement that returns no rows. */
static int exec_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static enum thou_status status_of(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return THOU_OK;
    case SQLITE_CONSTRAINT:
        return THOU_EEXIST;
    case SQLITE_NOMEM:
        return THOU_ENOMEM;
    default:
        return THOU_EIO;
    }
}

/* ---- the writer thread ---------------------------------------------------- */

static void complete(struct thou_store *store, struct job *job)
{
    if (job->done) {
        thou_store_done_fn done = job->done;
        void *done_ctx = job->done_ctx;
        enum thou_status status = job->status;
        free(job);
        done(done_ctx, status);
        return;
    }
    pthread_mutex_lock(&store->queue_lock);
    job->finished = true;
    pthread_cond_broadcast(&store->done_cond);
    pthread_mutex_unlock(&store->queue_lock);
}

/* Run a batch of jobs in one transaction. */
static void run_batch(struct thou_store *store, struct job *batch)
{
    struct conn *c = &store->writer;
    bool open = exec_stmt(stmt(c, ST_BEGIN)) == SQLITE_OK;
    for (struct job *job = batch; job; job = job->next) {
        if (!open) {
            job->status = THOU_EIO;
            continue;
        }
        if (job->own_savepoint) {
            job->status = job->run(c, job->arg);
            continue;
        }
        /* A savepoint per job: one job's failure undoes only its own writes. */
        if (exec_stmt(stmt(c, ST_SAVEPOINT)) != SQLITE_OK) {
            job->status = THOU_EIO;
            continue;
        }
        job->status = job->run(c, job->arg);
        if (job->status)
            exec_stmt(stmt(c, ST_ROLLBACK_TO));
        exec_stmt(stmt(c, ST_RELEASE));
    }
    bool committed = open && exec_stmt(stmt(c, ST_COMMIT)) == SQLITE_OK;
    if (!committed) {
        /* What the cache learnt from this batch never reached the disk. */
        cache_clear(c->cache);
        if (open && !sqlite3_get_autocommit(c->db))
            exec_stmt(stmt(c, ST_ROLLBACK));
        for (struct job *job = batch; job; job = job->next)
            if (job->status == THOU_OK)
                job->status = THOU_EIO;
    }
    if (store->before_done)
        store->before_done(store->hooks_ctx);
    while (batch) {
        struct job *next = batch->next;
        complete(store, batch);
        batch = next;
    }
    if (store->after_done)
        store->after_done(store->hooks_ctx);
}

static int count_wal_pages(void *ctx, sqlite3 *db, const char *name, int pages)
{
    struct thou_store *store = ctx;
    store->wal_pages = pages;
    return SQLITE_OK;
}

/*
 * Copy the WAL back into the database on the writer thread, where no write
 * can run meanwhile (so the checkpoint completes and the next commit starts
 * the WAL afresh; from another thread a busy writer would keep it growing).
 * Preferably when no write is waiting, so a checkpoint rarely delays an
 * acknowledgement; under sustained load, at a larger size regardless.
 */
#define CHECKPOINT_PAGES       1000
#define CHECKPOINT_FORCE_PAGES 8000

static void checkpoint_if_due(struct thou_store *store)
{
    if (store->wal_pages < CHECKPOINT_PAGES)
        return;
    pthread_mutex_lock(&store->queue_lock);
    bool idle = store->head == NULL;
    pthread_mutex_unlock(&store->queue_lock);
    if (!idle && store->wal_pages < CHECKPOINT_FORCE_PAGES)
        return;
    sqlite3_wal_checkpoint_v2(store->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    store->wal_pages = 0;
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "thou-writer"); /* for top -H and profiles */
    struct thou_store *store = arg;
    for (;;) {
        pthread_mutex_lock(&store->queue_lock);
        while (!store->head && !store->stopping)
            pthread_cond_wait(&store->work_cond, &store->queue_lock);
        if (!store->head) {
            pthread_mutex_unlock(&store->queue_lock);
            return NULL;
        }
        /* Take up to MAX_BATCH jobs; later ones wait for the next commit. */
        struct job *batch = store->head, *last = batch;
        for (size_t n = 1; n < MAX_BATCH && last->next; n++)
            last = last->next;
        store->head = last->next;
        if (!store->head)
            store->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&store->queue_lock);
        run_batch(store, batch);
        checkpoint_if_due(store);
    }
}

static void enqueue(struct thou_store *store, struct job *job)
{
    pthread_mutex_lock(&store->queue_lock);
    job->next = NULL;
    if (store->tail)
        store->tail->next = job;
    else
        store->head = job;
    store->tail = job;
    pthread_cond_signal(&store->work_cond);
    pthread_mutex_unlock(&store->queue_lock);
}

/* Run a write on the writer thread and wait for its commit. */
static enum thou_status write_sync(struct thou_store *store,
                                   enum thou_status (*run)(struct conn *, void *), void *arg,
                                   bool own_savepoint)
{
    struct job job = {.run = run, .arg = arg, .own_savepoint = own_savepoint};
    enqueue(store, &job);
    pthread_mutex_lock(&store->queue_lock);
    while (!job.finished)
        pthread_cond_wait(&store->done_cond, &store->queue_lock);
    pthread_mutex_unlock(&store->queue_lock);
    return job.status;
}

/* ---- reads ------------------------------------------------------------------ */

enum thou_status thou_store_ping(struct thou_store *store)
{
    if (store->pg)
        return thou_store_pg_ping(store->pg);
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *s = stmt(&store->reader, ST_PING);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    pthread_mutex_unlock(&store->read_lock);
    return rc == SQLITE_ROW ? THOU_OK : THOU_EUNAVAIL;
}

void thou_room_record_release(struct thou_room_record *room)
{
    free(room->flow_json);
    room->flow_json = NULL;
}

static bool has_row(sqlite3_stmt *s)
{
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return found;
}

/* ENOTFOUND or EGONE for a room id without a row. */
static enum thou_status missing_room(struct conn *c, const char *room_id)
{
    sqlite3_stmt *s = stmt(c, ST_TOMBSTONE_GET);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    return has_row(s) ? THOU_EGONE : THOU_ENOTFOUND;
}

static enum thou_status room_get(struct conn *c, const char *room_id, struct thou_room_record *room)
{
    memset(room, 0, sizeof(*room));
    sqlite3_stmt *s = stmt(c, ST_ROOM_GET);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? missing_room(c, room_id) : THOU_EIO;
    }
    snprintf(room->id, sizeof(room->id), "%s", room_id);
    snprintf(room->set_id, sizeof(room->set_id), "%s", (const char *)sqlite3_column_text(s, 0));
    room->set_version = sqlite3_column_int(s, 1);
    room->state = (enum thou_room_state)sqlite3_column_int(s, 2);
    if (sqlite3_column_bytes(s, 3) == THOU_HASH_LEN)
        memcpy(room->join_verifier, sqlite3_column_blob(s, 3), THOU_HASH_LEN);
    room->created_ms = sqlite3_column_int64(s, 4);
    room->expires_ms = sqlite3_column_int64(s, 5);
    room->last_seq = sqlite3_column_int64(s, 6);
    const unsigned char *flow = sqlite3_column_text(s, 7);
    room->flow_json = flow ? thou_strdup((const char *)flow) : NULL;
    sqlite3_reset(s);
    if (flow && !room->flow_json)
        return THOU_ENOMEM;

    s = stmt(c, ST_ROOM_HAS_B);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    room->b_joined = has_row(s);
    return THOU_OK;
}

enum thou_status thou_store_room_get(struct thou_store *store, const char *room_id,
                                     struct thou_room_record *room)
{
    if (store->pg)
        return thou_store_pg_room_get(store->pg, room_id, room);
    pthread_mutex_lock(&store->read_lock);
    enum thou_status rc = room_get(&store->reader, room_id, room);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

enum thou_status thou_store_participant_role(struct thou_store *store, const char *room_id,
                                             const uint8_t token_hash[THOU_HASH_LEN], char *role)
{
    if (store->pg)
        return thou_store_pg_participant_role(store->pg, room_id, token_hash, role);
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *s = stmt(&store->reader, ST_ROLE_BY_TOKEN);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, token_hash, THOU_HASH_LEN, SQLITE_STATIC);
    enum thou_status rc = THOU_EAUTH;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *role = (char)sqlite3_column_text(s, 0)[0];
        rc = THOU_OK;
    } else if (step != SQLITE_DONE) {
        rc = THOU_EIO;
    }
    sqlite3_reset(s);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

enum thou_status thou_store_events_after(struct thou_store *store, const char *room_id, char role,
                                         int64_t after_seq, size_t limit, thou_event_visit_fn visit,
                                         void *ctx)
{
    if (store->pg)
        return thou_store_pg_events_after(store->pg, room_id, role, after_seq, limit, visit, ctx);
    char role_text[2] = {role, '\0'};
    enum thou_status rc = THOU_OK;
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *s = stmt(&store->reader, ST_EVENTS_AFTER);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, after_seq);
    sqlite3_bind_text(s, 3, role_text, 1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *visible = sqlite3_column_text(s, 3);
        struct thou_event_record event = {
            .seq = sqlite3_column_int64(s, 0),
            .type = (const char *)sqlite3_column_text(s, 1),
            .sender = (char)sqlite3_column_text(s, 2)[0],
            .visible_to = visible ? (char)visible[0] : 0,
            .data = (const char *)sqlite3_column_text(s, 4),
            .time_ms = sqlite3_column_int64(s, 5),
        };
        if (!visit(ctx, &event))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = THOU_EIO;
    sqlite3_reset(s);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* ---- writes (run on the writer thread, inside a savepoint) ---------------- */

static int insert_participant(struct conn *c, const char *room_id, const char *role,
                              const uint8_t *token_hash, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(c, ST_PARTICIPANT_INSERT);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, role, 1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, token_hash, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    return exec_stmt(s);
}

struct create_args {
    const struct thou_room_record *room;
    const uint8_t *token_hash;
};

static enum thou_status create_run(struct conn *c, void *arg)
{
    const struct create_args *a = arg;
    const struct thou_room_record *room = a->room;
    sqlite3_stmt *s = stmt(c, ST_ROOM_INSERT);
    sqlite3_bind_text(s, 1, room->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, room->set_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, room->set_version);
    sqlite3_bind_int(s, 4, (int)room->state);
    sqlite3_bind_blob(s, 5, room->join_verifier, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, room->created_ms);
    sqlite3_bind_int64(s, 7, room->expires_ms);
    if (room->flow_json)
        sqlite3_bind_text(s, 8, room->flow_json, -1, SQLITE_STATIC);
    enum thou_status rc = status_of(exec_stmt(s));
    if (rc == THOU_OK)
        rc = status_of(insert_participant(c, room->id, "A", a->token_hash, room->created_ms));
    return rc;
}

enum thou_status thou_store_room_create(struct thou_store *store,
                                        const struct thou_room_record *room,
                                        const uint8_t token_hash_a[THOU_HASH_LEN])
{
    if (store->pg)
        return thou_store_pg_room_create(store->pg, room, token_hash_a);
    struct create_args args = {room, token_hash_a};
    return write_sync(store, create_run, &args, false);
}

struct join_args {
    const char *room_id;
    const uint8_t *token_hash;
    int64_t now_ms;
    bool again;
};

/* Is token_hash B's in this room? Read on the writer, inside the join's transaction. */
static enum thou_status is_b_token(struct conn *c, const char *room_id, const uint8_t *token_hash,
                                   bool *is_b)
{
    sqlite3_stmt *s = stmt(c, ST_ROLE_BY_TOKEN);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, token_hash, THOU_HASH_LEN, SQLITE_STATIC);
    enum thou_status rc = THOU_OK;
    int step = sqlite3_step(s);
    *is_b = step == SQLITE_ROW && sqlite3_column_text(s, 0)[0] == 'B';
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = THOU_EIO;
    sqlite3_reset(s);
    return rc;
}

static enum thou_status join_run(struct conn *c, void *arg)
{
    struct join_args *a = arg;
    struct thou_room_record room;
    /* Check and insert inside one transaction on the single writer: two
     * racing joins with the right secret can never both become B. */
    enum thou_status rc = room_get(c, a->room_id, &room);
    thou_room_record_release(&room);
    if (rc)
        return rc;
    if (room.b_joined) {
        /* The same browser again (its first answer was lost): the seat stays one. */
        bool is_b = false;
        rc = is_b_token(c, a->room_id, a->token_hash, &is_b);
        if (rc)
            return rc;
        a->again = is_b;
        return is_b ? THOU_OK : THOU_EFULL;
    }
    cache_forget(c->cache, a->room_id); /* b_joined changes */
    rc = status_of(insert_participant(c, a->room_id, "B", a->token_hash, a->now_ms));
    if (rc)
        return rc == THOU_EEXIST ? THOU_EFULL : rc;
    if (room.state != THOU_ROOM_WAITING)
        return THOU_OK;
    cache_forget(c->cache, a->room_id);
    sqlite3_stmt *s = stmt(c, ST_ROOM_SET_STATE);
    sqlite3_bind_int(s, 1, THOU_ROOM_ACTIVE);
    sqlite3_bind_text(s, 2, a->room_id, -1, SQLITE_STATIC);
    return status_of(exec_stmt(s));
}

enum thou_status thou_store_room_join(struct thou_store *store, const char *room_id,
                                      const uint8_t token_hash_b[THOU_HASH_LEN], int64_t now_ms,
                                      bool *again)
{
    if (store->pg)
        return thou_store_pg_room_join(store->pg, room_id, token_hash_b, now_ms, again);
    struct join_args args = {room_id, token_hash_b, now_ms, false};
    enum thou_status rc = write_sync(store, join_run, &args, false);
    if (again)
        *again = rc == THOU_OK && args.again;
    return rc;
}

struct seat_args {
    const char *room_id;
    const uint8_t *old_hash;
    const uint8_t *new_hash;
    char role;
    bool again;
};

/* The role token_hash holds in the room, read on the writer inside the
 * transaction; 0 when none. */
static enum thou_status role_on_writer(struct conn *c, const char *room_id,
                                       const uint8_t *token_hash, char *role)
{
    sqlite3_stmt *s = stmt(c, ST_ROLE_BY_TOKEN);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, token_hash, THOU_HASH_LEN, SQLITE_STATIC);
    enum thou_status rc = THOU_OK;
    int step = sqlite3_step(s);
    *role = step == SQLITE_ROW ? (char)sqlite3_column_text(s, 0)[0] : 0;
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = THOU_EIO;
    sqlite3_reset(s);
    return rc;
}

static enum thou_status seat_run(struct conn *c, void *arg)
{
    struct seat_args *a = arg;
    struct thou_room_record room;
    enum thou_status rc = room_get(c, a->room_id, &room);
    thou_room_record_release(&room);
    if (rc)
        return rc;
    /* Looked up and replaced in one transaction on the single writer: of
     * two devices claiming with the same old token, exactly one wins. */
    rc = role_on_writer(c, a->room_id, a->old_hash, &a->role);
    if (rc)
        return rc;
    if (!a->role) {
        /* The old token is gone: this very claim again (its answer was lost)? */
        rc = role_on_writer(c, a->room_id, a->new_hash, &a->role);
        if (rc)
            return rc;
        a->again = a->role != 0;
        return a->again ? THOU_OK : THOU_EAUTH;
    }
    sqlite3_stmt *s = stmt(c, ST_PARTICIPANT_RETOKEN);
    sqlite3_bind_blob(s, 1, a->new_hash, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->room_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, a->old_hash, THOU_HASH_LEN, SQLITE_STATIC);
    return status_of(exec_stmt(s));
}

enum thou_status thou_store_seat_move(struct thou_store *store, const char *room_id,
                                      const uint8_t old_hash[THOU_HASH_LEN],
                                      const uint8_t new_hash[THOU_HASH_LEN], char *role,
                                      bool *again)
{
    if (store->pg)
        return thou_store_pg_seat_move(store->pg, room_id, old_hash, new_hash, role, again);
    struct seat_args args = {room_id, old_hash, new_hash, 0, false};
    enum thou_status rc = write_sync(store, seat_run, &args, false);
    *role = rc == THOU_OK ? args.role : 0;
    if (again)
        *again = rc == THOU_OK && args.again;
    return rc;
}

static int insert_event(struct conn *c, const char *room_id, const struct thou_event_record *event,
                        int64_t seq)
{
    char sender[2] = {event->sender, '\0'};
    char visible[2] = {event->visible_to, '\0'};
    sqlite3_stmt *s = stmt(c, ST_EVENT_INSERT);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_text(s, 3, event->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, sender, 1, SQLITE_TRANSIENT);
    if (event->visible_to)
        sqlite3_bind_text(s, 5, visible, 1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, event->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, event->time_ms);
    return exec_stmt(s);
}

struct thou_room_txn {
    struct conn *conn;
    const char *room_id;
    struct thou_store_pg_txn *pg; /* set: the update runs on PostgreSQL */
};

enum thou_status thou_store_call_update(thou_room_update_fn update, void *ctx,
                                        struct thou_store_pg_txn *pg_txn, const char *room_id,
                                        const struct thou_room_record *room,
                                        struct thou_room_change *change)
{
    struct thou_room_txn txn = {NULL, room_id, pg_txn};
    return update(ctx, &txn, room, change);
}

enum thou_status thou_store_txn_find(struct thou_room_txn *txn, const char *type, char sender,
                                     const char *question, char **data)
{
    if (txn->pg)
        return thou_store_pg_txn_find(txn->pg, type, sender, question, data);
    char sender_text[2] = {sender, '\0'};
    sqlite3_stmt *s = stmt(txn->conn, ST_FIND_EVENT);
    sqlite3_bind_text(s, 1, txn->room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, sender_text, 1, SQLITE_STATIC);
    if (question)
        sqlite3_bind_text(s, 4, question, -1, SQLITE_STATIC);
    enum thou_status rc = THOU_ENOTFOUND;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        if (data)
            *data = thou_strdup((const char *)sqlite3_column_text(s, 0));
        rc = data && !*data ? THOU_ENOMEM : THOU_OK;
    } else if (step != SQLITE_DONE) {
        rc = THOU_EIO;
    }
    sqlite3_reset(s);
    return rc;
}

/* Insert the change's events after room->last_seq; touch the room's row
 * only when its state or flow changed. */
static enum thou_status write_change(struct conn *c, const struct thou_room_record *room,
                                     struct thou_room_change *change)
{
    int64_t seq = room->last_seq;
    for (size_t i = 0; i < change->n_events; i++) {
        seq++;
        enum thou_status rc = status_of(insert_event(c, room->id, &change->events[i], seq));
        if (rc)
            return rc;
        change->seqs[i] = seq;
    }
    if (change->new_state == room->state && !change->flow_json)
        return THOU_OK;
    sqlite3_stmt *s = stmt(c, ST_ROOM_ADVANCE);
    sqlite3_bind_int(s, 1, (int)change->new_state);
    if (change->flow_json)
        sqlite3_bind_text(s, 2, change->flow_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, room->id, -1, SQLITE_STATIC);
    return status_of(exec_stmt(s));
}

/*
 * write_change() in one piece. Most changes are one statement (a note's
 * insert), which SQLite already keeps atomic: a failing statement is undone
 * and leaves the transaction as it was. Only a change of several statements
 * pays for a savepoint; at saturation the savepoint's two extra statements
 * per event were ~10 % of the throughput.
 */
static enum thou_status write_change_atomic(struct conn *c, const struct thou_room_record *room,
                                            struct thou_room_change *change)
{
    bool room_row = change->new_state != room->state || change->flow_json;
    if (change->n_events + room_row <= 1)
        return write_change(c, room, change);
    if (exec_stmt(stmt(c, ST_SAVEPOINT)) != SQLITE_OK)
        return THOU_EIO;
    enum thou_status rc = write_change(c, room, change);
    if (rc)
        exec_stmt(stmt(c, ST_ROLLBACK_TO));
    exec_stmt(stmt(c, ST_RELEASE));
    return rc;
}

struct update_args {
    const char *room_id;
    thou_room_update_fn update;
    void *ctx;
    struct thou_room_change *change;
};

/* The room as the writer knows it: from the cache, else from the database
 * (and then cached). The record stays owned by the cache. */
static enum thou_status writer_room(struct conn *c, const char *room_id,
                                    struct thou_room_record **out)
{
    struct thou_room_record *slot = cache_slot(c->cache, room_id);
    if (strcmp(slot->id, room_id) != 0) {
        struct thou_room_record fresh;
        enum thou_status rc = room_get(c, room_id, &fresh);
        if (rc) {
            thou_room_record_release(&fresh);
            return rc;
        }
        /* What the room holds, for its size limit: read once per fill. */
        sqlite3_stmt *s = stmt(c, ST_ROOM_BYTES);
        sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
        int step = sqlite3_step(s);
        int64_t bytes = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (step != SQLITE_ROW) {
            thou_room_record_release(&fresh);
            return THOU_EIO;
        }
        free(slot->flow_json);
        *slot = fresh;
        *cache_bytes(c->cache, slot) = bytes;
    }
    *out = slot;
    return THOU_OK;
}

/* Would the change take the room past its size limits? New bytes in *added. */
static bool within_limits(const struct room_cache *cache, const struct thou_room_record *room,
                          int64_t room_bytes, const struct thou_room_change *change, int64_t *added)
{
    *added = 0;
    for (size_t i = 0; i < change->n_events; i++)
        *added += (int64_t)strlen(change->events[i].data);
    if (change->n_events == 0)
        return true;
    if (cache->max_events && room->last_seq + (int64_t)change->n_events > cache->max_events)
        return false;
    return !cache->max_bytes || room_bytes + *added <= cache->max_bytes;
}

static enum thou_status update_run(struct conn *c, void *arg)
{
    struct update_args *a = arg;
    struct thou_room_record *room = NULL;
    struct thou_room_txn txn = {c, a->room_id, NULL};
    enum thou_status rc = writer_room(c, a->room_id, &room);
    if (rc == THOU_OK)
        rc = a->update(a->ctx, &txn, room, a->change);
    if (rc == THOU_OK && a->change->n_events > THOU_CHANGE_MAX_EVENTS)
        rc = THOU_EINVAL;
    int64_t added = 0;
    if (rc == THOU_OK &&
        !within_limits(c->cache, room, *cache_bytes(c->cache, room), a->change, &added))
        rc = THOU_ELIMIT;
    if (rc == THOU_OK)
        rc = write_change_atomic(c, room, a->change);
    if (rc == THOU_OK) {
        /* Keep the cache equal to what this savepoint wrote. */
        *cache_bytes(c->cache, room) += added;
        if (a->change->n_events)
            room->last_seq = a->change->seqs[a->change->n_events - 1];
        room->state = a->change->new_state;
        if (a->change->flow_json) {
            free(room->flow_json);
            room->flow_json = thou_strdup(a->change->flow_json);
            if (!room->flow_json) /* committed all the same: read it back next time */
                cache_forget(c->cache, a->room_id);
        }
    }
    /* A refused or failed update wrote nothing its savepoint kept, and the
     * cache was not touched: it still matches the database. */
    return rc;
}

enum thou_status thou_store_room_update(struct thou_store *store, const char *room_id,
                                        thou_room_update_fn update, void *ctx,
                                        struct thou_room_change *change)
{
    if (store->pg)
        return thou_store_pg_room_update(store->pg, room_id, update, ctx, change);
    struct update_args args = {room_id, update, ctx, change};
    return write_sync(store, update_run, &args, true);
}

/* An asynchronous update owns its arguments until the done callback. */
struct async_update {
    struct update_args args;
    thou_store_done_fn done;
    void *done_ctx;
};

static void async_done(void *ctx, enum thou_status status)
{
    struct async_update *a = ctx;
    thou_store_done_fn done = a->done;
    void *done_ctx = a->done_ctx;
    free(a);
    done(done_ctx, status);
}

static enum thou_status async_run(struct conn *c, void *arg)
{
    struct async_update *a = arg;
    return update_run(c, &a->args);
}

void thou_store_room_update_async(struct thou_store *store, const char *room_id,
                                  thou_room_update_fn update, void *ctx,
                                  struct thou_room_change *change, thou_store_done_fn done,
                                  void *done_ctx)
{
    if (store->pg) {
        thou_store_pg_room_update_async(store->pg, room_id, update, ctx, change, done, done_ctx);
        return;
    }
    struct async_update *a = thou_malloc(sizeof(*a));
    struct job *job = thou_calloc(1, sizeof(*job));
    if (!a || !job) {
        /* Nothing was queued: the caller learns it as from any failed write. */
        free(a);
        free(job);
        done(done_ctx, THOU_ENOMEM);
        return;
    }
    *a = (struct async_update){{room_id, update, ctx, change}, done, done_ctx};
    job->run = async_run;
    job->own_savepoint = true;
    job->arg = a;
    job->done = async_done;
    job->done_ctx = a;
    enqueue(store, job);
}

struct append_ctx {
    const struct thou_event_record *events;
    size_t n;
    enum thou_room_state new_state;
    const char *flow_json;
};

static enum thou_status append_update(void *ctx, struct thou_room_txn *txn,
                                      const struct thou_room_record *room,
                                      struct thou_room_change *change)
{
    const struct append_ctx *append = ctx;
    if (room->state == THOU_ROOM_ENDED)
        return THOU_ECONFLICT;
    if (append->n > THOU_CHANGE_MAX_EVENTS)
        return THOU_EINVAL;
    memcpy(change->events, append->events, append->n * sizeof(*append->events));
    change->n_events = append->n;
    change->new_state = append->new_state;
    change->flow_json = append->flow_json;
    return THOU_OK;
}

enum thou_status thou_store_events_append(struct thou_store *store, const char *room_id,
                                          const struct thou_event_record *events, size_t n,
                                          enum thou_room_state new_state, const char *flow_json,
                                          int64_t *seqs)
{
    struct append_ctx ctx = {events, n, new_state, flow_json};
    struct thou_room_change change = {0};
    enum thou_status rc = thou_store_room_update(store, room_id, append_update, &ctx, &change);
    if (rc == THOU_OK)
        memcpy(seqs, change.seqs, n * sizeof(*seqs));
    return rc;
}

/* Delete one room (events and participants cascade) and leave a tombstone. */
static enum thou_status erase_one(struct conn *c, const char *room_id, int64_t now_ms)
{
    cache_forget(c->cache, room_id);
    sqlite3_stmt *s = stmt(c, ST_ROOM_DELETE);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    int rc = exec_stmt(s);
    if (rc != SQLITE_OK)
        return status_of(rc);
    s = stmt(c, ST_TOMBSTONE_INSERT);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    return status_of(exec_stmt(s));
}

struct erase_args {
    const char *room_id;
    int64_t now_ms;
};

static enum thou_status erase_run(struct conn *c, void *arg)
{
    const struct erase_args *a = arg;
    struct thou_room_record room;
    enum thou_status rc = room_get(c, a->room_id, &room);
    thou_room_record_release(&room);
    return rc ? rc : erase_one(c, a->room_id, a->now_ms);
}

enum thou_status thou_store_room_erase(struct thou_store *store, const char *room_id,
                                       int64_t now_ms)
{
    if (store->pg)
        return thou_store_pg_room_erase(store->pg, room_id, now_ms);
    struct erase_args args = {room_id, now_ms};
    return write_sync(store, erase_run, &args, false);
}

struct sweep_args {
    int64_t now_ms;
    int64_t tombstone_ttl_ms;
    size_t deleted;
};

static enum thou_status sweep_run(struct conn *c, void *arg)
{
    struct sweep_args *a = arg;
    char ids[256][THOU_ROOM_ID_LEN + 1];
    size_t n_ids;
    a->deleted = 0;
    /* In batches of 256 ids, because a statement cannot delete the rows it
     * is still stepping through. */
    do {
        n_ids = 0;
        sqlite3_stmt *s = stmt(c, ST_EXPIRED_SELECT);
        sqlite3_bind_int64(s, 1, a->now_ms);
        while (n_ids < 256 && sqlite3_step(s) == SQLITE_ROW)
            snprintf(ids[n_ids++], sizeof(ids[0]), "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_reset(s);
        for (size_t i = 0; i < n_ids; i++) {
            enum thou_status rc = erase_one(c, ids[i], a->now_ms);
            if (rc)
                return rc;
        }
        a->deleted += n_ids;
    } while (n_ids == 256);
    sqlite3_stmt *s = stmt(c, ST_TOMBSTONE_SWEEP);
    sqlite3_bind_int64(s, 1, a->now_ms - a->tombstone_ttl_ms);
    return status_of(exec_stmt(s));
}

enum thou_status thou_store_sweep(struct thou_store *store, int64_t now_ms,
                                  int64_t tombstone_ttl_ms, size_t *deleted)
{
    if (store->pg)
        return thou_store_pg_sweep(store->pg, now_ms, tombstone_ttl_ms, deleted);
    struct sweep_args args = {now_ms, tombstone_ttl_ms, 0};
    enum thou_status rc = write_sync(store, sweep_run, &args, false);
    *deleted = rc == THOU_OK ? args.deleted : 0;
    return rc;
}

/* ---- research studies ------------------------------------------------------- */

/* Study statements are rare (a CLI call, a new room, a research copy), so
 * they are prepared where they run rather than kept with the hot ones. */
static sqlite3_stmt *prepare(struct conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

/* Run a one-off statement to its end and finalise it. */
static int exec_once(sqlite3_stmt *s)
{
    if (!s)
        return SQLITE_ERROR;
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static json_t *conditions_json(const struct thou_study_record *study)
{
    json_t *list = json_array();
    for (size_t i = 0; i < study->n_conditions; i++)
        json_array_append_new(list, json_string(study->conditions[i]));
    return list;
}

static void study_from_row(sqlite3_stmt *s, struct thou_study_record *study)
{
    memset(study, 0, sizeof(*study));
    snprintf(study->name, sizeof(study->name), "%s", (const char *)sqlite3_column_text(s, 0));
    if (sqlite3_column_bytes(s, 1) == (int)sizeof(study->public_key))
        memcpy(study->public_key, sqlite3_column_blob(s, 1), sizeof(study->public_key));
    json_t *list = json_loads((const char *)sqlite3_column_text(s, 2), 0, NULL);
    size_t i;
    json_t *value;
    json_array_foreach(list, i, value)
    {
        if (i < sizeof(study->conditions) / sizeof(study->conditions[0]) && json_is_string(value))
            snprintf(study->conditions[study->n_conditions++], sizeof(study->conditions[0]), "%s",
                     json_string_value(value));
    }
    json_decref(list);
    study->closeness = sqlite3_column_int(s, 3) != 0;
    study->assigned = sqlite3_column_int64(s, 4);
    study->created_ms = sqlite3_column_int64(s, 5);
}

#define STUDY_COLUMNS "name, public_key, conditions, closeness, assigned, created_ms"

struct study_add_args {
    const struct thou_study_record *study;
    const uint8_t *seed;
};

static enum thou_status study_add_run(struct conn *c, void *arg)
{
    const struct study_add_args *a = arg;
    sqlite3_stmt *s = prepare(c, "INSERT INTO studies (name, public_key, conditions, closeness,"
                                 " seed, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
    if (!s)
        return THOU_EIO;
    json_t *list = conditions_json(a->study);
    char *conditions = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    sqlite3_bind_text(s, 1, a->study->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, a->study->public_key, sizeof(a->study->public_key), SQLITE_STATIC);
    sqlite3_bind_text(s, 3, conditions, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, a->study->closeness ? 1 : 0);
    sqlite3_bind_blob(s, 5, a->seed, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, a->study->created_ms);
    enum thou_status rc = status_of(exec_once(s));
    free(conditions);
    return rc;
}

enum thou_status thou_store_study_add(struct thou_store *store,
                                      const struct thou_study_record *study, const uint8_t seed[32])
{
    if (store->pg)
        return thou_store_pg_study_add(store->pg, study, seed);
    struct study_add_args args = {study, seed};
    return write_sync(store, study_add_run, &args, false);
}

static enum thou_status study_get(struct conn *c, const char *name, struct thou_study_record *study,
                                  uint8_t *seed)
{
    sqlite3_stmt *s = prepare(c, "SELECT " STUDY_COLUMNS ", seed FROM studies WHERE name = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    enum thou_status rc = step == SQLITE_ROW    ? THOU_OK
                          : step == SQLITE_DONE ? THOU_ENOTFOUND
                                                : THOU_EIO;
    if (rc == THOU_OK) {
        study_from_row(s, study);
        if (seed && sqlite3_column_bytes(s, 6) == 32)
            memcpy(seed, sqlite3_column_blob(s, 6), 32);
    }
    sqlite3_finalize(s);
    return rc;
}

enum thou_status thou_store_study_get(struct thou_store *store, const char *name,
                                      struct thou_study_record *study)
{
    if (store->pg)
        return thou_store_pg_study_get(store->pg, name, study);
    pthread_mutex_lock(&store->read_lock);
    enum thou_status rc = study_get(&store->reader, name, study, NULL);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

enum thou_status thou_store_study_list(struct thou_store *store, thou_study_visit_fn visit,
                                       void *ctx)
{
    if (store->pg)
        return thou_store_pg_study_list(store->pg, visit, ctx);
    pthread_mutex_lock(&store->read_lock);
    enum thou_status rc = THOU_EIO;
    sqlite3_stmt *s =
        prepare(&store->reader, "SELECT " STUDY_COLUMNS ", (SELECT count(*) FROM rooms"
                                " WHERE rooms.study = studies.name) FROM studies ORDER BY name");
    if (s) {
        int step;
        while ((step = sqlite3_step(s)) == SQLITE_ROW) {
            struct thou_study_record study;
            study_from_row(s, &study);
            visit(ctx, &study, sqlite3_column_int64(s, 6));
        }
        rc = step == SQLITE_DONE ? THOU_OK : THOU_EIO;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

static enum thou_status study_remove_run(struct conn *c, void *arg)
{
    const char *name = arg;
    sqlite3_stmt *s = prepare(c, "DELETE FROM studies WHERE name = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = exec_once(s);
    if (rc != SQLITE_OK)
        return status_of(rc);
    if (sqlite3_changes(c->db) == 0)
        return THOU_ENOTFOUND;
    static const char *const cleanup[] = {
        "DELETE FROM research_copies WHERE room_id IN (SELECT id FROM rooms WHERE study = ?1)",
        "DELETE FROM research_releases WHERE room_id IN (SELECT id FROM rooms WHERE study = ?1)",
        "UPDATE rooms SET study = NULL, study_condition = NULL WHERE study = ?1",
    };
    for (size_t i = 0; i < sizeof(cleanup) / sizeof(cleanup[0]); i++) {
        s = prepare(c, cleanup[i]);
        if (s)
            sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = exec_once(s);
        if (rc != SQLITE_OK)
            return status_of(rc);
    }
    return THOU_OK;
}

enum thou_status thou_store_study_remove(struct thou_store *store, const char *name)
{
    if (store->pg)
        return thou_store_pg_study_remove(store->pg, name);
    return write_sync(store, study_remove_run, (void *)(uintptr_t)name, false);
}

struct study_assign_args {
    const char *name;
    struct thou_study_record *study;
    size_t condition;
};

static enum thou_status study_assign_run(struct conn *c, void *arg)
{
    struct study_assign_args *a = arg;
    uint8_t seed[32];
    enum thou_status rc = study_get(c, a->name, a->study, seed);
    if (rc)
        return rc;
    a->condition = thou_studies_condition(seed, a->study->n_conditions, a->study->assigned);
    sodium_memzero(seed, sizeof(seed));
    sqlite3_stmt *s = prepare(c, "UPDATE studies SET assigned = assigned + 1 WHERE name = ?");
    if (s)
        sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
    rc = status_of(exec_once(s));
    if (rc == THOU_OK)
        a->study->assigned++;
    return rc;
}

enum thou_status thou_store_study_assign(struct thou_store *store, const char *name,
                                         struct thou_study_record *study, size_t *condition)
{
    if (store->pg)
        return thou_store_pg_study_assign(store->pg, name, study, condition);
    struct study_assign_args args = {name, study, 0};
    enum thou_status rc = write_sync(store, study_assign_run, &args, false);
    *condition = args.condition;
    return rc;
}

struct room_study_args {
    const char *room_id, *study, *condition;
};

static enum thou_status room_set_study_run(struct conn *c, void *arg)
{
    const struct room_study_args *a = arg;
    sqlite3_stmt *s = prepare(c, "UPDATE rooms SET study = ?, study_condition = ? WHERE id = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, a->study, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->condition, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, a->room_id, -1, SQLITE_STATIC);
    enum thou_status rc = status_of(exec_once(s));
    return rc == THOU_OK && sqlite3_changes(c->db) == 0 ? THOU_ENOTFOUND : rc;
}

enum thou_status thou_store_room_set_study(struct thou_store *store, const char *room_id,
                                           const char *study, const char *condition)
{
    if (store->pg)
        return thou_store_pg_room_set_study(store->pg, room_id, study, condition);
    struct room_study_args args = {room_id, study, condition};
    return write_sync(store, room_set_study_run, &args, false);
}

static enum thou_status room_study(struct conn *c, const char *room_id,
                                   char study[THOU_SET_ID_MAX + 1],
                                   char condition[THOU_SET_ID_MAX + 1])
{
    study[0] = condition[0] = '\0';
    sqlite3_stmt *s = prepare(c, "SELECT study, study_condition FROM rooms WHERE id = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    enum thou_status rc = THOU_OK;
    if (step == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(s, 0);
        const unsigned char *cond = sqlite3_column_text(s, 1);
        snprintf(study, THOU_SET_ID_MAX + 1, "%s", name ? (const char *)name : "");
        snprintf(condition, THOU_SET_ID_MAX + 1, "%s", cond ? (const char *)cond : "");
    } else {
        rc = step == SQLITE_DONE ? missing_room(c, room_id) : THOU_EIO;
    }
    sqlite3_finalize(s);
    return rc;
}

enum thou_status thou_store_room_study(struct thou_store *store, const char *room_id,
                                       char study[THOU_SET_ID_MAX + 1],
                                       char condition[THOU_SET_ID_MAX + 1])
{
    if (store->pg)
        return thou_store_pg_room_study(store->pg, room_id, study, condition);
    pthread_mutex_lock(&store->read_lock);
    enum thou_status rc = room_study(&store->reader, room_id, study, condition);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* Copies are taken only while the room has a study, both partners posted
 * their (sealed) consent and neither declined or withdrew. The events are
 * the record: the server keeps no consent flag apart from them. */
static enum thou_status research_allowed(struct conn *c, const char *room_id)
{
    char study[THOU_SET_ID_MAX + 1], condition[THOU_SET_ID_MAX + 1];
    enum thou_status rc = room_study(c, room_id, study, condition);
    if (rc)
        return rc;
    if (!study[0])
        return THOU_EFORBIDDEN;
    sqlite3_stmt *s = prepare(c, "SELECT count(DISTINCT sender) FILTER (WHERE type = 'consent'),"
                                 " count(*) FILTER (WHERE type IN ('decline', 'withdraw'))"
                                 " FROM events WHERE room_id = ?"
                                 " AND type IN ('consent', 'decline', 'withdraw')");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    rc = THOU_EIO;
    if (sqlite3_step(s) == SQLITE_ROW)
        rc = sqlite3_column_int(s, 0) == 2 && sqlite3_column_int(s, 1) == 0 ? THOU_OK
                                                                            : THOU_EFORBIDDEN;
    sqlite3_finalize(s);
    return rc;
}

static enum thou_status released_before(struct conn *c, const char *room_id, char role)
{
    sqlite3_stmt *s = prepare(c, "SELECT 1 FROM research_releases WHERE room_id = ? AND role = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, (char[]){role, '\0'}, 1, SQLITE_TRANSIENT);
    int step = sqlite3_step(s);
    sqlite3_finalize(s);
    return step == SQLITE_ROW ? THOU_ECONFLICT : step == SQLITE_DONE ? THOU_OK : THOU_EIO;
}

struct research_add_args {
    const char *room_id;
    char role;
    const char *step, *sealed;
    int64_t hour;
};

static enum thou_status research_add_run(struct conn *c, void *arg)
{
    const struct research_add_args *a = arg;
    enum thou_status rc = research_allowed(c, a->room_id);
    if (rc == THOU_OK)
        rc = released_before(c, a->room_id, a->role);
    if (rc)
        return rc;
    sqlite3_stmt *s = prepare(c, "INSERT INTO research_copies (room_id, role, step, sealed, hour)"
                                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, (char[]){a->role, '\0'}, 1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, a->step, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->sealed, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, a->hour);
    return status_of(exec_once(s));
}

enum thou_status thou_store_research_add(struct thou_store *store, const char *room_id, char role,
                                         const char *step, const char *sealed, int64_t hour)
{
    if (store->pg)
        return thou_store_pg_research_add(store->pg, room_id, role, step, sealed, hour);
    struct research_add_args args = {room_id, role, step, sealed, hour};
    return write_sync(store, research_add_run, &args, false);
}

struct research_delete_args {
    const char *room_id;
    size_t deleted;
};

static enum thou_status research_delete_run(struct conn *c, void *arg)
{
    struct research_delete_args *a = arg;
    sqlite3_stmt *s = prepare(c, "DELETE FROM research_copies WHERE room_id = ?");
    if (s)
        sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
    enum thou_status rc = status_of(exec_once(s));
    if (rc == THOU_OK)
        a->deleted = (size_t)sqlite3_changes(c->db);
    return rc;
}

enum thou_status thou_store_research_delete(struct thou_store *store, const char *room_id,
                                            size_t *deleted)
{
    if (store->pg)
        return thou_store_pg_research_delete(store->pg, room_id, deleted);
    struct research_delete_args args = {room_id, 0};
    enum thou_status rc = write_sync(store, research_delete_run, &args, false);
    *deleted = args.deleted;
    return rc;
}

struct research_release_args {
    const char *room_id;
    char role;
    const char *const *leave_out;
    size_t n_leave_out;
    size_t released, left_out;
};

static enum thou_status research_release_run(struct conn *c, void *arg)
{
    struct research_release_args *a = arg;
    const char role[2] = {a->role, '\0'};
    enum thou_status rc = research_allowed(c, a->room_id);
    if (rc == THOU_OK)
        rc = released_before(c, a->room_id, a->role);
    if (rc)
        return rc;
    /* Left out: the sealed bytes go at once, so nothing can export them. */
    for (size_t i = 0; i < a->n_leave_out && rc == THOU_OK; i++) {
        sqlite3_stmt *s = prepare(c, "UPDATE research_copies SET sealed = NULL, state = 2"
                                     " WHERE room_id = ? AND role = ? AND step = ?");
        if (s) {
            sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, role, 1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, a->leave_out[i], -1, SQLITE_STATIC);
        }
        rc = status_of(exec_once(s));
        a->left_out += rc == THOU_OK ? (size_t)sqlite3_changes(c->db) : 0;
    }
    static const char *const finish[] = {
        "UPDATE research_copies SET state = 1 WHERE room_id = ?1 AND role = ?2 AND state = 0",
        "INSERT INTO research_releases (room_id, role) VALUES (?1, ?2)",
    };
    for (size_t i = 0; i < 2 && rc == THOU_OK; i++) {
        sqlite3_stmt *s = prepare(c, finish[i]);
        if (s) {
            sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, role, 1, SQLITE_STATIC);
        }
        rc = status_of(exec_once(s));
        if (i == 0 && rc == THOU_OK)
            a->released = (size_t)sqlite3_changes(c->db);
    }
    return rc;
}

enum thou_status thou_store_research_release(struct thou_store *store, const char *room_id,
                                             char role, const char *const *leave_out,
                                             size_t n_leave_out, size_t *released, size_t *left_out)
{
    if (store->pg)
        return thou_store_pg_research_release(store->pg, room_id, role, leave_out, n_leave_out,
                                              released, left_out);
    struct research_release_args args = {room_id, role, leave_out, n_leave_out, 0, 0};
    enum thou_status rc = write_sync(store, research_release_run, &args, false);
    *released = args.released;
    *left_out = args.left_out;
    return rc;
}
/* ---- raw access for modules with their own tables (workshops) -------------- */

struct raw_args {
    thou_store_raw_fn fn;
    void *ctx;
};

static enum thou_status raw_run(struct conn *c, void *arg)
{
    const struct raw_args *a = arg;
    return a->fn(a->ctx, c->db);
}

enum thou_status thou_store_write_raw(struct thou_store *store, thou_store_raw_fn fn, void *ctx)
{
    /* A PostgreSQL store has no SQLite connection: its callers use
     * thou_store_pg_write_raw (wstore_pg.c); refuse, as when the store is
     * away, rather than hand fn a connection it cannot use. */
    if (store->pg)
        return THOU_EUNAVAIL;
    struct raw_args args = {fn, ctx};
    return write_sync(store, raw_run, &args, false);
}

enum thou_status thou_store_read_raw(struct thou_store *store, thou_store_raw_fn fn, void *ctx)
{
    if (store->pg)
        return THOU_EUNAVAIL;
    pthread_mutex_lock(&store->read_lock);
    enum thou_status rc = fn(ctx, store->reader.db);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

struct thou_store_pg *thou_store_pg_of(struct thou_store *store)
{
    return store->pg;
}
