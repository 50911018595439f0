#include "thou/store.h"
#include "thou/buf.h"
#include "thou/mem.h"

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
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_ROOM_INSERT] =
        "INSERT INTO rooms (id, set_id, set_version, state, join_verifier,"
        " created_ms, expires_ms, last_seq, flow) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
    [ST_PARTICIPANT_INSERT] =
        "INSERT INTO participants (room_id, role, token_hash, joined_ms) VALUES (?, ?, ?, ?)",
    [ST_ROOM_GET] = "SELECT set_id, set_version, state, join_verifier, created_ms, expires_ms,"
                    " last_seq, flow FROM rooms WHERE id = ?",
    [ST_ROOM_HAS_B] = "SELECT 1 FROM participants WHERE room_id = ? AND role = 'B'",
    [ST_TOMBSTONE_GET] = "SELECT 1 FROM tombstones WHERE room_id = ?",
    [ST_ROOM_SET_STATE] = "UPDATE rooms SET state = ? WHERE id = ?",
    [ST_ROLE_BY_TOKEN] = "SELECT role FROM participants WHERE room_id = ? AND token_hash = ?",
    [ST_EVENT_INSERT] = "INSERT INTO events (room_id, seq, type, sender, visible_to, data, time_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
    [ST_ROOM_ADVANCE] = "UPDATE rooms SET last_seq = ?, state = ?, flow = COALESCE(?, flow)"
                        " WHERE id = ?",
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
};

struct thou_store {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    int schema_version;
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

static enum thou_status migrate(struct thou_store *store, char *errbuf, size_t errlen)
{
    int version = 0, app_id = 0;
    if (pragma_int(store->db, "PRAGMA user_version", &version) != SQLITE_OK ||
        pragma_int(store->db, "PRAGMA application_id", &app_id) != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot read schema version: %s", sqlite3_errmsg(store->db));
        return THOU_EIO;
    }
    if (app_id != 0 && app_id != THOU_APPLICATION_ID) {
        set_error(errbuf, errlen, "database is not a thou database (application id %d)", app_id);
        return THOU_ESCHEMA;
    }
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
        int rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, migrations[v], NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, pragmas, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            set_error(errbuf, errlen, "cannot migrate database to version %d: %s", v + 1,
                      msg ? msg : sqlite3_errmsg(store->db));
            sqlite3_free(msg);
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
            return THOU_EIO;
        }
    }
    store->schema_version = N_MIGRATIONS;
    return THOU_OK;
}

static enum thou_status configure(struct thou_store *store, char *errbuf, size_t errlen)
{
    char *msg = NULL;
    /* FULL makes every commit fsync the WAL: an acknowledged event survives
     * power loss, not only a crash of the process. */
    int rc = sqlite3_exec(store->db,
                          "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                          " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot configure database: %s",
                  msg ? msg : sqlite3_errmsg(store->db));
        sqlite3_free(msg);
        return THOU_EIO;
    }
    sqlite3_busy_timeout(store->db, 5000);
    return THOU_OK;
}

enum thou_status thou_store_open(const char *data_dir, struct thou_store **out, char *errbuf,
                                 size_t errlen)
{
    enum thou_status rc = THOU_OK;
    struct thou_store *store = thou_xcalloc(1, sizeof(*store));
    struct thou_buf path;
    thou_buf_init(&path);
    pthread_mutex_init(&store->lock, NULL);

    if (make_dirs(data_dir) != 0) {
        set_error(errbuf, errlen, "cannot create data directory '%s': %s", data_dir,
                  strerror(errno));
        rc = THOU_EIO;
        goto out;
    }
    thou_buf_printf(&path, "%s/thou.db", data_dir);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.data, &store->db, flags, NULL) != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot open database '%s': %s", path.data,
                  store->db ? sqlite3_errmsg(store->db) : "out of memory");
        rc = THOU_EIO;
        goto out;
    }
    sqlite3_extended_result_codes(store->db, 1);
    rc = configure(store, errbuf, errlen);
    if (rc)
        goto out;
    rc = migrate(store, errbuf, errlen);
    if (rc)
        goto out;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(store->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &store->stmts[i], NULL) != SQLITE_OK) {
            set_error(errbuf, errlen, "cannot prepare statement %d: %s", i,
                      sqlite3_errmsg(store->db));
            rc = THOU_EIO;
            goto out;
        }
    }
out:
    thou_buf_release(&path);
    if (rc) {
        thou_store_close(store);
        store = NULL;
    }
    *out = store;
    return rc;
}

void thou_store_close(struct thou_store *store)
{
    if (!store)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(store->stmts[i]);
    if (store->db) {
        /* A clean close checkpoints the WAL into the main file. */
        sqlite3_close(store->db);
    }
    pthread_mutex_destroy(&store->lock);
    free(store);
}

int thou_store_schema_version(struct thou_store *store)
{
    return store->schema_version;
}

/* Prepared statement, reset and cleared, ready for binding. Lock held. */
static sqlite3_stmt *stmt(struct thou_store *store, enum stmt_id id)
{
    sqlite3_stmt *s = store->stmts[id];
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

static enum thou_status begin(struct thou_store *store)
{
    return exec_stmt(stmt(store, ST_BEGIN)) == SQLITE_OK ? THOU_OK : THOU_EIO;
}

/* Commit, or roll back when rc says the transaction failed. */
static enum thou_status finish(struct thou_store *store, enum thou_status rc)
{
    if (rc == THOU_OK && exec_stmt(stmt(store, ST_COMMIT)) == SQLITE_OK)
        return THOU_OK;
    exec_stmt(stmt(store, ST_ROLLBACK));
    return rc ? rc : THOU_EIO;
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

enum thou_status thou_store_ping(struct thou_store *store)
{
    pthread_mutex_lock(&store->lock);
    sqlite3_stmt *s = stmt(store, ST_PING);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    pthread_mutex_unlock(&store->lock);
    return rc == SQLITE_ROW ? THOU_OK : THOU_EUNAVAIL;
}

void thou_room_record_release(struct thou_room_record *room)
{
    free(room->flow_json);
    room->flow_json = NULL;
}

static int insert_participant(struct thou_store *store, const char *room_id, const char *role,
                              const uint8_t *token_hash, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(store, ST_PARTICIPANT_INSERT);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, role, 1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, token_hash, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    return exec_stmt(s);
}

enum thou_status thou_store_room_create(struct thou_store *store,
                                        const struct thou_room_record *room,
                                        const uint8_t token_hash_a[THOU_HASH_LEN])
{
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = begin(store);
    if (rc)
        goto out;
    sqlite3_stmt *s = stmt(store, ST_ROOM_INSERT);
    sqlite3_bind_text(s, 1, room->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, room->set_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, room->set_version);
    sqlite3_bind_int(s, 4, (int)room->state);
    sqlite3_bind_blob(s, 5, room->join_verifier, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, room->created_ms);
    sqlite3_bind_int64(s, 7, room->expires_ms);
    if (room->flow_json)
        sqlite3_bind_text(s, 8, room->flow_json, -1, SQLITE_STATIC);
    rc = status_of(exec_stmt(s));
    if (rc == THOU_OK)
        rc = status_of(insert_participant(store, room->id, "A", token_hash_a, room->created_ms));
    rc = finish(store, rc);
out:
    pthread_mutex_unlock(&store->lock);
    return rc;
}

static bool has_row(sqlite3_stmt *s)
{
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return found;
}

/* ENOTFOUND or EGONE for a room id without a row. Lock held. */
static enum thou_status missing_room(struct thou_store *store, const char *room_id)
{
    sqlite3_stmt *s = stmt(store, ST_TOMBSTONE_GET);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    return has_row(s) ? THOU_EGONE : THOU_ENOTFOUND;
}

/* Read a room row. Lock held. */
static enum thou_status room_get_locked(struct thou_store *store, const char *room_id,
                                        struct thou_room_record *room)
{
    memset(room, 0, sizeof(*room));
    sqlite3_stmt *s = stmt(store, ST_ROOM_GET);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? missing_room(store, room_id) : THOU_EIO;
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
    room->flow_json = flow ? thou_xstrdup((const char *)flow) : NULL;
    sqlite3_reset(s);

    s = stmt(store, ST_ROOM_HAS_B);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    room->b_joined = has_row(s);
    return THOU_OK;
}

enum thou_status thou_store_room_get(struct thou_store *store, const char *room_id,
                                     struct thou_room_record *room)
{
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = room_get_locked(store, room_id, room);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

enum thou_status thou_store_room_join(struct thou_store *store, const char *room_id,
                                      const uint8_t token_hash_b[THOU_HASH_LEN], int64_t now_ms)
{
    struct thou_room_record room;
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = begin(store);
    if (rc)
        goto out;
    /* Check and insert inside one write transaction: two racing joins with
     * the right secret can never both become B. */
    rc = room_get_locked(store, room_id, &room);
    thou_room_record_release(&room);
    if (rc == THOU_OK && room.b_joined)
        rc = THOU_EFULL;
    if (rc == THOU_OK)
        rc = status_of(insert_participant(store, room_id, "B", token_hash_b, now_ms));
    if (rc == THOU_EEXIST)
        rc = THOU_EFULL;
    if (rc == THOU_OK && room.state == THOU_ROOM_WAITING) {
        sqlite3_stmt *s = stmt(store, ST_ROOM_SET_STATE);
        sqlite3_bind_int(s, 1, THOU_ROOM_ACTIVE);
        sqlite3_bind_text(s, 2, room_id, -1, SQLITE_STATIC);
        rc = status_of(exec_stmt(s));
    }
    rc = finish(store, rc);
out:
    pthread_mutex_unlock(&store->lock);
    return rc;
}

enum thou_status thou_store_participant_role(struct thou_store *store, const char *room_id,
                                             const uint8_t token_hash[THOU_HASH_LEN], char *role)
{
    pthread_mutex_lock(&store->lock);
    sqlite3_stmt *s = stmt(store, ST_ROLE_BY_TOKEN);
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
    pthread_mutex_unlock(&store->lock);
    return rc;
}

static int insert_event(struct thou_store *store, const char *room_id,
                        const struct thou_event_record *event, int64_t seq)
{
    char sender[2] = {event->sender, '\0'};
    char visible[2] = {event->visible_to, '\0'};
    sqlite3_stmt *s = stmt(store, ST_EVENT_INSERT);
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
    struct thou_store *store;
    const char *room_id;
};

enum thou_status thou_store_txn_find(struct thou_room_txn *txn, const char *type, char sender,
                                     const char *question, char **data)
{
    char sender_text[2] = {sender, '\0'};
    sqlite3_stmt *s = stmt(txn->store, ST_FIND_EVENT);
    sqlite3_bind_text(s, 1, txn->room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, sender_text, 1, SQLITE_STATIC);
    if (question)
        sqlite3_bind_text(s, 4, question, -1, SQLITE_STATIC);
    enum thou_status rc = THOU_ENOTFOUND;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        if (data)
            *data = thou_xstrdup((const char *)sqlite3_column_text(s, 0));
        rc = THOU_OK;
    } else if (step != SQLITE_DONE) {
        rc = THOU_EIO;
    }
    sqlite3_reset(s);
    return rc;
}

/* Insert the change's events after room->last_seq and advance the room. Lock held. */
static enum thou_status write_change(struct thou_store *store, const struct thou_room_record *room,
                                     struct thou_room_change *change)
{
    int64_t seq = room->last_seq;
    for (size_t i = 0; i < change->n_events; i++) {
        seq++;
        enum thou_status rc = status_of(insert_event(store, room->id, &change->events[i], seq));
        if (rc)
            return rc;
        change->seqs[i] = seq;
    }
    sqlite3_stmt *s = stmt(store, ST_ROOM_ADVANCE);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int(s, 2, (int)change->new_state);
    if (change->flow_json)
        sqlite3_bind_text(s, 3, change->flow_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, room->id, -1, SQLITE_STATIC);
    return status_of(exec_stmt(s));
}

enum thou_status thou_store_room_update(struct thou_store *store, const char *room_id,
                                        thou_room_update_fn update, void *ctx,
                                        struct thou_room_change *change)
{
    struct thou_room_record room = {0};
    struct thou_room_txn txn = {store, room_id};
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = begin(store);
    if (rc)
        goto out;
    rc = room_get_locked(store, room_id, &room);
    if (rc == THOU_OK)
        rc = update(ctx, &txn, &room, change);
    if (rc == THOU_OK && change->n_events > THOU_CHANGE_MAX_EVENTS)
        rc = THOU_EINVAL;
    if (rc == THOU_OK)
        rc = write_change(store, &room, change);
    rc = finish(store, rc);
out:
    pthread_mutex_unlock(&store->lock);
    thou_room_record_release(&room);
    return rc;
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

enum thou_status thou_store_events_after(struct thou_store *store, const char *room_id, char role,
                                         int64_t after_seq, size_t limit, thou_event_visit_fn visit,
                                         void *ctx)
{
    char role_text[2] = {role, '\0'};
    enum thou_status rc = THOU_OK;
    pthread_mutex_lock(&store->lock);
    sqlite3_stmt *s = stmt(store, ST_EVENTS_AFTER);
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
    pthread_mutex_unlock(&store->lock);
    return rc;
}

/* Delete one room (events and participants cascade) and leave a tombstone. */
static int erase_locked(struct thou_store *store, const char *room_id, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(store, ST_ROOM_DELETE);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    int rc = exec_stmt(s);
    if (rc != SQLITE_OK)
        return rc;
    s = stmt(store, ST_TOMBSTONE_INSERT);
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    return exec_stmt(s);
}

enum thou_status thou_store_room_erase(struct thou_store *store, const char *room_id,
                                       int64_t now_ms)
{
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = begin(store);
    if (rc == THOU_OK) {
        rc = status_of(erase_locked(store, room_id, now_ms));
        rc = finish(store, rc);
    }
    pthread_mutex_unlock(&store->lock);
    return rc;
}

enum thou_status thou_store_sweep(struct thou_store *store, int64_t now_ms,
                                  int64_t tombstone_ttl_ms, size_t *deleted)
{
    char ids[256][THOU_ROOM_ID_LEN + 1];
    size_t n_ids = 0;
    *deleted = 0;
    pthread_mutex_lock(&store->lock);
    enum thou_status rc = begin(store);
    if (rc)
        goto out;
    sqlite3_stmt *s = stmt(store, ST_EXPIRED_SELECT);
    sqlite3_bind_int64(s, 1, now_ms);
    while (n_ids < 256 && sqlite3_step(s) == SQLITE_ROW)
        snprintf(ids[n_ids++], sizeof(ids[0]), "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    for (size_t i = 0; rc == THOU_OK && i < n_ids; i++)
        rc = status_of(erase_locked(store, ids[i], now_ms));
    if (rc == THOU_OK) {
        s = stmt(store, ST_TOMBSTONE_SWEEP);
        sqlite3_bind_int64(s, 1, now_ms - tombstone_ttl_ms);
        rc = status_of(exec_stmt(s));
    }
    rc = finish(store, rc);
    if (rc == THOU_OK)
        *deleted = n_ids;
out:
    pthread_mutex_unlock(&store->lock);
    return rc;
}
