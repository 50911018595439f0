#include "thou/store.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];       /* temp dir of the test */
static char data_dir[128]; /* dir/data: does not exist before the store opens it */
static char db_path[160];  /* data_dir/thou.db */
static struct thou_store *store;
static char errbuf[512];

#define ROOM_1 "room1AAAAAAAAAAAAAAAAA"
#define ROOM_2 "room2AAAAAAAAAAAAAAAAA"
#define ROOM_3 "room3AAAAAAAAAAAAAAAAA"
#define ROOM_4 "room4AAAAAAAAAAAAAAAAA"
#define NEVER  "neverAAAAAAAAAAAAAAAAA"

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_dirs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/thou_store_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    snprintf(db_path, sizeof(db_path), "%s/thou.db", data_dir);
    errbuf[0] = '\0';
}

static void remove_dirs(void)
{
    if (dir[0])
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

/* Fixture: a fresh store in a fresh directory. */
static void setup(void)
{
    make_dirs();
    ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
}

static void teardown(void)
{
    thou_store_close(store);
    store = NULL;
    remove_dirs();
}

/* Fixture for tests that prepare the directory themselves. */
static void setup_empty(void)
{
    make_dirs();
    store = NULL;
}

/* --- helpers on a separate SQLite connection ------------------------------ */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    ck_assert_msg(rc == SQLITE_OK, "sqlite3_open_v2 '%s': %s", path, sqlite3_errstr(rc));
    return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "'%s': %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static long long db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    long long value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return value;
}

static void db_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *text = sqlite3_column_text(s, 0);
    snprintf(out, len, "%s", text ? (const char *)text : "");
    sqlite3_finalize(s);
}

/* One query on a short-lived connection to the store's file. */
static long long file_int(const char *sql)
{
    sqlite3 *db = db_open(db_path);
    long long value = db_int(db, sql);
    sqlite3_close(db);
    return value;
}

/* True when n appears in s as a whole decimal number. */
static int contains_number(const char *s, long n)
{
    char digits[32];
    snprintf(digits, sizeof(digits), "%ld", n);
    size_t len = strlen(digits);
    for (const char *p = strstr(s, digits); p; p = strstr(p + 1, digits)) {
        bool before = p > s && isdigit((unsigned char)p[-1]);
        bool after = isdigit((unsigned char)p[len]);
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* --- helpers on the store API ---------------------------------------------- */

/* A token hash that differs for every seed. */
static void hash_of(uint8_t out[THOU_HASH_LEN], unsigned seed)
{
    for (size_t i = 0; i < THOU_HASH_LEN; i++)
        out[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof(seed); i++)
        out[i] ^= (uint8_t)(seed >> (8 * i));
}

static enum thou_status create_room(const char *id, unsigned token_seed, int64_t created_ms,
                                    int64_t expires_ms, const char *flow)
{
    struct thou_room_record room;
    memset(&room, 0, sizeof(room));
    snprintf(room.id, sizeof(room.id), "%s", id);
    snprintf(room.set_id, sizeof(room.set_id), "couples-short");
    room.set_version = 3;
    room.state = THOU_ROOM_WAITING;
    hash_of(room.join_verifier, 0x40);
    room.created_ms = created_ms;
    room.expires_ms = expires_ms;
    room.flow_json = (char *)(uintptr_t)flow;
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, token_seed);
    return thou_store_room_create(store, &room, token);
}

static enum thou_status join_room(const char *id, unsigned token_seed)
{
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, token_seed);
    return thou_store_room_join(store, id, token, 5000, NULL);
}

static enum thou_status role_of(const char *id, unsigned token_seed, char *role)
{
    uint8_t token[THOU_HASH_LEN];
    hash_of(token, token_seed);
    return thou_store_participant_role(store, id, token, role);
}

static enum thou_status room_status(const char *id)
{
    struct thou_room_record room;
    enum thou_status rc = thou_store_room_get(store, id, &room);
    thou_room_record_release(&room);
    return rc;
}

static enum thou_status append_one(const char *id, const char *type, char sender, char visible_to,
                                   const char *data, enum thou_room_state state, int64_t *seq)
{
    struct thou_event_record event = {
        .type = type,
        .sender = sender,
        .visible_to = visible_to,
        .data = data,
        .time_ms = 1234,
    };
    return thou_store_events_append(store, id, &event, 1, state, NULL, seq);
}

#define MAX_SEEN 512

struct seen {
    size_t n;
    size_t stop_after; /* 0: never stop */
    int64_t seq[MAX_SEEN];
    char type[MAX_SEEN][32];
    char sender[MAX_SEEN];
    char visible_to[MAX_SEEN];
    char data[MAX_SEEN][64];
    int64_t time_ms[MAX_SEEN];
};

static bool collect(void *ctx, const struct thou_event_record *event)
{
    struct seen *seen = ctx;
    ck_assert_uint_lt(seen->n, MAX_SEEN);
    size_t i = seen->n++;
    seen->seq[i] = event->seq;
    snprintf(seen->type[i], sizeof(seen->type[i]), "%s", event->type);
    seen->sender[i] = event->sender;
    seen->visible_to[i] = event->visible_to;
    snprintf(seen->data[i], sizeof(seen->data[i]), "%s", event->data);
    seen->time_ms[i] = event->time_ms;
    return seen->stop_after == 0 || seen->n < seen->stop_after;
}

static struct seen *events_after(const char *id, char role, int64_t after, size_t limit)
{
    struct seen *seen = calloc(1, sizeof(*seen));
    ck_assert_ptr_nonnull(seen);
    ck_assert_int_eq(thou_store_events_after(store, id, role, after, limit, collect, seen),
                     THOU_OK);
    return seen;
}

/* --- opening ---------------------------------------------------------------- */

START_TEST(test_open_creates)
{
    struct stat sb;
    ck_assert_int_eq(stat(data_dir, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    /* The data directory holds conversations: nobody else may look. */
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    ck_assert_int_eq(stat(db_path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq(thou_store_schema_version(store), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(thou_store_ping(store), THOU_OK);
    ck_assert_int_eq(file_int("PRAGMA user_version"), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(file_int("PRAGMA application_id"), 0x74686f75);
}
END_TEST

/* A nested data directory is created with its parents. */
START_TEST(test_open_creates_parents)
{
    char nested[256];
    snprintf(nested, sizeof(nested), "%s/x/y/z", dir);
    struct thou_store *other = NULL;
    ck_assert_msg(thou_store_open(nested, &other, errbuf, sizeof(errbuf)) == THOU_OK, "%s", errbuf);
    ck_assert_int_eq(thou_store_ping(other), THOU_OK);
    thou_store_close(other);
    char path[300];
    snprintf(path, sizeof(path), "%s/thou.db", nested);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_wal_mode)
{
    /* journal_mode is persistent: a second connection sees what the store set.
     * (synchronous is per connection and the store does not expose its own.) */
    sqlite3 *db = db_open(db_path);
    char mode[16];
    db_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "wal");
    sqlite3_close(db);
    /* A write goes through the WAL. */
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    ck_assert_int_eq(access(wal, F_OK), 0);
}
END_TEST

START_TEST(test_reopen_idempotent)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, "{\"step\":1}"), THOU_OK);
    int64_t seq = 0;
    ck_assert_int_eq(append_one(ROOM_1, "hello", 'A', 0, "{}", THOU_ROOM_WAITING, &seq), THOU_OK);
    for (int i = 0; i < 3; i++) {
        thou_store_close(store);
        store = NULL;
        ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "%s",
                      errbuf);
        ck_assert_int_eq(thou_store_schema_version(store), THOU_SCHEMA_VERSION);
        struct thou_room_record room;
        ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
        ck_assert_int_eq(room.last_seq, 1);
        ck_assert_str_eq(room.flow_json, "{\"step\":1}");
        thou_room_record_release(&room);
    }
    ck_assert_int_eq(file_int("PRAGMA user_version"), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events"), 1);
}
END_TEST

/* A database at schema 1 (rooms kept their last seq in a column) is
 * migrated in place to the current schema with nothing lost. */
START_TEST(test_migrates_from_version_1)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    sqlite3 *db = db_open(db_path);
    db_exec(db,
            "PRAGMA application_id = 1953001333;"
            "CREATE TABLE rooms (id TEXT PRIMARY KEY, set_id TEXT NOT NULL,"
            " set_version INTEGER NOT NULL, state INTEGER NOT NULL, join_verifier BLOB NOT NULL,"
            " created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
            " last_seq INTEGER NOT NULL DEFAULT 0, flow TEXT) WITHOUT ROWID;"
            "CREATE INDEX rooms_expiry ON rooms(expires_ms);"
            "CREATE TABLE participants (room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE"
            " CASCADE, role TEXT NOT NULL CHECK (role IN ('A', 'B')), token_hash BLOB NOT NULL"
            " UNIQUE, joined_ms INTEGER NOT NULL, PRIMARY KEY (room_id, role)) WITHOUT ROWID;"
            "CREATE TABLE events (room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
            " seq INTEGER NOT NULL, type TEXT NOT NULL, sender TEXT NOT NULL, visible_to TEXT,"
            " data TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (room_id, seq))"
            " WITHOUT ROWID;"
            "CREATE TABLE tombstones (room_id TEXT PRIMARY KEY, gone_ms INTEGER NOT NULL)"
            " WITHOUT ROWID;"
            "INSERT INTO rooms VALUES ('" ROOM_1 "', 'couples-short', 1, 1, zeroblob(32), 1,"
            " 9999999999999, 2, '{\"v\":1}');"
            "INSERT INTO events VALUES ('" ROOM_1 "', 1, 'joined', 'B', NULL, '{}', 1);"
            "INSERT INTO events VALUES ('" ROOM_1 "', 2, 'note', 'A', NULL, '{}', 2);"
            "PRAGMA user_version = 1;");
    sqlite3_close(db);

    ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
    ck_assert_int_eq(thou_store_schema_version(store), THOU_SCHEMA_VERSION);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, 2);
    ck_assert_str_eq(room.flow_json, "{\"v\":1}");
    thou_room_record_release(&room);
    struct thou_event_record event = {.type = "note", .sender = 'B', .data = "{}", .time_ms = 3};
    int64_t seq = 0;
    ck_assert_int_eq(
        thou_store_events_append(store, ROOM_1, &event, 1, THOU_ROOM_ACTIVE, NULL, &seq), THOU_OK);
    ck_assert_int_eq(seq, 3);
    ck_assert_int_eq(file_int("PRAGMA user_version"), THOU_SCHEMA_VERSION);
    ck_assert_int_eq(
        file_int("SELECT count(*) FROM pragma_table_info('rooms') WHERE name = 'last_seq'"), 0);
    /* Schema 3: events in arrival order, found through their room's index. */
    ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                              " AND name = 'events_by_room'"),
                     1);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events WHERE room_id = '" ROOM_1 "'"), 3);
    /* Schema 4: an old room is a link room of no workshop. */
    ck_assert_int_eq(file_int("SELECT count(*) FROM rooms WHERE id = '" ROOM_1 "'"
                              " AND mode = 'link' AND workshop_id IS NULL"),
                     1);
}
END_TEST

static int db_try(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) & 0xff;
}

/* Schema 4 itself refuses a second seat of one role in a room of a
 * workshop, and a second place for one token: no room of three, nobody
 * twice, whatever the code above it does. */
START_TEST(test_workshop_seats_are_unique)
{
    sqlite3 *db = db_open(db_path);
    ck_assert_int_eq(db_try(db, "INSERT INTO workshops (id, code, facilitator, title, set_id,"
                                " set_version, state, capacity, created_ms)"
                                " VALUES (1, 'K7QM3XPA', 'ada', 't', 's', 1, 0, 500, 1)"),
                     SQLITE_OK);
    ck_assert_int_eq(db_try(db, "INSERT INTO workshop_participants (workshop_id, label, token_hash,"
                                " arrived_ms, queued_ms, state, room_id, role)"
                                " VALUES (1, 1, x'01', 1, 1, 1, 'r', 'A'),"
                                " (1, 2, x'02', 1, 1, 1, 'r', 'B')"),
                     SQLITE_OK);
    ck_assert_int_eq(db_try(db, "INSERT INTO workshop_participants (workshop_id, label, token_hash,"
                                " arrived_ms, queued_ms, state, room_id, role)"
                                " VALUES (1, 3, x'03', 1, 1, 1, 'r', 'B')"),
                     SQLITE_CONSTRAINT);
    ck_assert_int_eq(db_try(db, "INSERT INTO workshop_participants (workshop_id, label, token_hash,"
                                " arrived_ms, queued_ms, state) VALUES (1, 4, x'01', 1, 1, 0)"),
                     SQLITE_CONSTRAINT);
    ck_assert_int_eq(db_try(db, "INSERT INTO workshop_participants (workshop_id, label, token_hash,"
                                " arrived_ms, queued_ms, state) VALUES (1, 5, x'05', 1, 1, 0),"
                                " (1, 6, x'06', 1, 1, 0)"),
                     SQLITE_OK);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    sqlite3 *db = db_open(db_path);
    db_exec(db, "PRAGMA application_id = 1953001333; /* 0x74686f75 */ CREATE TABLE future (x);"
                "PRAGMA user_version = 99;");
    sqlite3_close(db);

    ck_assert_int_eq(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_ptr_null(store);
    ck_assert_contains(errbuf, "newer");
    ck_assert_msg(contains_number(errbuf, 99), "'%s' does not name version 99", errbuf);
    ck_assert_msg(contains_number(errbuf, THOU_SCHEMA_VERSION), "'%s' does not name version %d",
                  errbuf, THOU_SCHEMA_VERSION);
    /* Refused, and left as it was. */
    ck_assert_int_eq(file_int("PRAGMA user_version"), 99);
    ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name = 'rooms'"), 0);
}
END_TEST

/* Without an application id, a version above ours is still refused. */
START_TEST(test_newer_schema_refused_without_app_id)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    sqlite3 *db = db_open(db_path);
    db_exec(db, "PRAGMA user_version = 99;");
    sqlite3_close(db);
    ck_assert_int_eq(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_ptr_null(store);
    ck_assert_contains(errbuf, "newer");
    ck_assert_int_eq(file_int("PRAGMA user_version"), 99);
}
END_TEST

/* Another program's database is refused and not touched at all. */
static void assert_foreign_untouched(long long app_id)
{
    sqlite3 *db = db_open(db_path);
    ck_assert_int_eq(db_int(db, "PRAGMA application_id"), app_id);
    ck_assert_int_eq(db_int(db, "PRAGMA user_version"), 0);
    ck_assert_int_eq(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'rooms'"), 0);
    ck_assert_int_eq(db_int(db, "SELECT count(*) FROM theirs"), 2);
    char mode[16];
    db_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    ck_assert_msg(strcmp(mode, "delete") == 0, "journal_mode changed to '%s'", mode);
    sqlite3_close(db);
}

START_TEST(test_foreign_database_refused)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    sqlite3 *db = db_open(db_path);
    db_exec(db, "PRAGMA application_id = 305419896;" /* 0x12345678 */
                "CREATE TABLE theirs (x); INSERT INTO theirs VALUES (1), (2);");
    sqlite3_close(db);

    ck_assert_int_eq(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_ptr_null(store);
    ck_assert_contains(errbuf, "not a thou database");
    assert_foreign_untouched(305419896);
}
END_TEST

/* A database with tables but no application id is not ours either: it was
 * never migrated by thou (which sets the id with the first migration). */
START_TEST(test_foreign_database_without_app_id_refused)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    sqlite3 *db = db_open(db_path);
    db_exec(db, "CREATE TABLE theirs (x); INSERT INTO theirs VALUES (1), (2);");
    sqlite3_close(db);

    ck_assert_int_eq(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)), THOU_ESCHEMA);
    ck_assert_ptr_null(store);
    ck_assert_contains(errbuf, "not a thou database");
    assert_foreign_untouched(0);
}
END_TEST

/* An empty file (what sqlite3 leaves after a bare open) is a new database. */
START_TEST(test_empty_file_is_new)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    FILE *f = fopen(db_path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "%s",
                  errbuf);
    ck_assert_int_eq(thou_store_schema_version(store), THOU_SCHEMA_VERSION);
}
END_TEST

START_TEST(test_not_a_database)
{
    ck_assert_int_eq(mkdir(data_dir, 0700), 0);
    FILE *f = fopen(db_path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 512; i++)
        fputs("this is not sqlite ", f);
    fclose(f);
    enum thou_status rc = thou_store_open(data_dir, &store, errbuf, sizeof(errbuf));
    ck_assert_int_ne(rc, THOU_OK);
    ck_assert_ptr_null(store);
    ck_assert_uint_gt(strlen(errbuf), 0);
}
END_TEST

START_TEST(test_data_dir_under_file)
{
    char file[128], under[192];
    snprintf(file, sizeof(file), "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(under, sizeof(under), "%s/data", file);
    struct thou_store *refused = (struct thou_store *)(uintptr_t)1; /* must be reset */
    ck_assert_int_eq(thou_store_open(under, &refused, errbuf, sizeof(errbuf)), THOU_EIO);
    ck_assert_ptr_null(refused);
    ck_assert_contains(errbuf, under);
    ck_assert_contains(errbuf, "Not a directory");

    /* The data dir itself being a regular file fails as clearly. */
    errbuf[0] = '\0';
    ck_assert_int_eq(thou_store_open(file, &refused, errbuf, sizeof(errbuf)), THOU_EIO);
    ck_assert_ptr_null(refused);
    ck_assert_contains(errbuf, file);
}
END_TEST

START_TEST(test_close_null)
{
    thou_store_close(NULL);
}
END_TEST

/* --- rooms ---------------------------------------------------------------- */

START_TEST(test_room_create_get)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, "{\"step\":0}"), THOU_OK);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_str_eq(room.id, ROOM_1);
    ck_assert_str_eq(room.set_id, "couples-short");
    ck_assert_int_eq(room.set_version, 3);
    ck_assert_int_eq(room.state, THOU_ROOM_WAITING);
    uint8_t verifier[THOU_HASH_LEN];
    hash_of(verifier, 0x40);
    ck_assert_mem_eq(room.join_verifier, verifier, THOU_HASH_LEN);
    ck_assert_int_eq(room.created_ms, 1000);
    ck_assert_int_eq(room.expires_ms, 9000);
    ck_assert_int_eq(room.last_seq, 0);
    ck_assert(!room.b_joined);
    ck_assert_str_eq(room.flow_json, "{\"step\":0}");
    thou_room_record_release(&room);
    ck_assert_ptr_null(room.flow_json);

    /* Without flow. */
    ck_assert_int_eq(create_room(ROOM_2, 2, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_2, &room), THOU_OK);
    ck_assert_ptr_null(room.flow_json);
    thou_room_record_release(&room);

    /* Same id again. */
    ck_assert_int_eq(create_room(ROOM_1, 3, 1000, 9000, NULL), THOU_EEXIST);
    /* The refused create left nothing: token 3 belongs to no room. */
    char role = 0;
    ck_assert_int_eq(role_of(ROOM_1, 3, &role), THOU_EAUTH);
    ck_assert_int_eq(room_status(NEVER), THOU_ENOTFOUND);
}
END_TEST

START_TEST(test_room_join)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_1, 2), THOU_OK);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert(room.b_joined);
    ck_assert_int_eq(room.state, THOU_ROOM_ACTIVE);
    thou_room_record_release(&room);
    /* Exactly two participants, ever; B's own token hash again is a retry. */
    ck_assert_int_eq(join_room(ROOM_1, 3), THOU_EFULL);
    ck_assert_int_eq(join_room(ROOM_1, 1), THOU_EFULL); /* A's */
    uint8_t token_b[THOU_HASH_LEN];
    hash_of(token_b, 2);
    bool again = false;
    ck_assert_int_eq(thou_store_room_join(store, ROOM_1, token_b, 5000, &again), THOU_OK);
    ck_assert(again);
    uint8_t token_c[THOU_HASH_LEN];
    hash_of(token_c, 3);
    again = true;
    ck_assert_int_eq(thou_store_room_join(store, ROOM_1, token_c, 5000, &again), THOU_EFULL);
    ck_assert(!again);
    char role = 0;
    ck_assert_int_eq(role_of(ROOM_1, 3, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(ROOM_1, 2, &role), THOU_OK);
    ck_assert_int_eq(role, 'B');
    ck_assert_int_eq(join_room(NEVER, 4), THOU_ENOTFOUND);
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_1, 6000), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_1, 5), THOU_EGONE);
}
END_TEST

START_TEST(test_participant_role)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_2, 11, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_1, 2), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_2, 12), THOU_OK);
    char role = 0;
    ck_assert_int_eq(role_of(ROOM_1, 1, &role), THOU_OK);
    ck_assert_int_eq(role, 'A');
    ck_assert_int_eq(role_of(ROOM_1, 2, &role), THOU_OK);
    ck_assert_int_eq(role, 'B');
    ck_assert_int_eq(role_of(ROOM_2, 11, &role), THOU_OK);
    ck_assert_int_eq(role, 'A');
    /* Wrong token, another room's token, unknown room. */
    ck_assert_int_eq(role_of(ROOM_1, 99, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(ROOM_1, 11, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(ROOM_1, 12, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(ROOM_2, 1, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(NEVER, 1, &role), THOU_EAUTH);
}
END_TEST

/* --- events --------------------------------------------------------------- */

START_TEST(test_events_append_seqs)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_2, 2, 1000, 9000, NULL), THOU_OK);
    int64_t seq = 0;
    ck_assert_int_eq(append_one(ROOM_1, "joined", 'A', 0, "{\"n\":1}", THOU_ROOM_WAITING, &seq),
                     THOU_OK);
    ck_assert_int_eq(seq, 1);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, 1);
    thou_room_record_release(&room);

    /* Several in one transaction continue the sequence without gaps. */
    struct thou_event_record events[3] = {
        {.type = "a", .sender = 'A', .data = "{\"n\":2}", .time_ms = 2},
        {.type = "b", .sender = 'B', .visible_to = 'B', .data = "{\"n\":3}", .time_ms = 3},
        {.type = "c", .sender = 'A', .data = "{\"n\":4}", .time_ms = 4},
    };
    int64_t seqs[3] = {0};
    ck_assert_int_eq(
        thou_store_events_append(store, ROOM_1, events, 3, THOU_ROOM_ACTIVE, "{\"step\":2}", seqs),
        THOU_OK);
    ck_assert_int_eq(seqs[0], 2);
    ck_assert_int_eq(seqs[1], 3);
    ck_assert_int_eq(seqs[2], 4);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, 4);
    ck_assert_int_eq(room.state, THOU_ROOM_ACTIVE);
    ck_assert_str_eq(room.flow_json, "{\"step\":2}");
    thou_room_record_release(&room);

    /* flow_json NULL keeps the flow. */
    ck_assert_int_eq(append_one(ROOM_1, "d", 'B', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(seq, 5);
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_str_eq(room.flow_json, "{\"step\":2}");
    thou_room_record_release(&room);

    /* Each room has its own sequence. */
    ck_assert_int_eq(append_one(ROOM_2, "x", 'A', 0, "{}", THOU_ROOM_WAITING, &seq), THOU_OK);
    ck_assert_int_eq(seq, 1);

    /* Everything arrives in order, with its fields. */
    struct seen *seen = events_after(ROOM_1, 'B', 0, 100);
    ck_assert_uint_eq(seen->n, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(seen->seq[i], (int64_t)i + 1);
    ck_assert_str_eq(seen->type[2], "b");
    ck_assert_int_eq(seen->sender[2], 'B');
    ck_assert_int_eq(seen->visible_to[2], 'B');
    ck_assert_int_eq(seen->visible_to[1], 0);
    ck_assert_str_eq(seen->data[2], "{\"n\":3}");
    ck_assert_int_eq(seen->time_ms[2], 3);
    free(seen);
}
END_TEST

START_TEST(test_events_visibility_and_limit)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_1, 2), THOU_OK);
    int64_t seq;
    /* seq: 1 both, 2 only A, 3 both, 4 only B, 5 both */
    ck_assert_int_eq(append_one(ROOM_1, "e", 'A', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "e", 'A', 'A', "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "e", 'B', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "e", 'B', 'B', "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "e", 'A', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(seq, 5);

    struct seen *a = events_after(ROOM_1, 'A', 0, 100);
    ck_assert_uint_eq(a->n, 4);
    int64_t expected_a[] = {1, 2, 3, 5};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(a->seq[i], expected_a[i]);
    free(a);

    struct seen *b = events_after(ROOM_1, 'B', 0, 100);
    ck_assert_uint_eq(b->n, 4);
    int64_t expected_b[] = {1, 3, 4, 5};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(b->seq[i], expected_b[i]);
    free(b);

    /* after_seq is exclusive. */
    b = events_after(ROOM_1, 'B', 3, 100);
    ck_assert_uint_eq(b->n, 2);
    ck_assert_int_eq(b->seq[0], 4);
    ck_assert_int_eq(b->seq[1], 5);
    free(b);
    b = events_after(ROOM_1, 'B', 5, 100);
    ck_assert_uint_eq(b->n, 0);
    free(b);

    /* limit counts visible events. */
    a = events_after(ROOM_1, 'A', 0, 3);
    ck_assert_uint_eq(a->n, 3);
    ck_assert_int_eq(a->seq[2], 3);
    free(a);
    a = events_after(ROOM_1, 'A', 1, 1);
    ck_assert_uint_eq(a->n, 1);
    ck_assert_int_eq(a->seq[0], 2);
    free(a);

    /* The visitor stops the walk. */
    struct seen *stop = calloc(1, sizeof(*stop));
    stop->stop_after = 2;
    ck_assert_int_eq(thou_store_events_after(store, ROOM_1, 'A', 0, 100, collect, stop), THOU_OK);
    ck_assert_uint_eq(stop->n, 2);
    free(stop);

    /* No events of another room leak in; an unknown room has none. */
    a = events_after(NEVER, 'A', 0, 100);
    ck_assert_uint_eq(a->n, 0);
    free(a);
}
END_TEST

START_TEST(test_append_refused)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    int64_t seq = 0;
    ck_assert_int_eq(append_one(ROOM_1, "a", 'A', 0, "{}", THOU_ROOM_WAITING, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "end", 'A', 0, "{}", THOU_ROOM_ENDED, &seq), THOU_OK);
    ck_assert_int_eq(seq, 2);
    /* Ended: read-only. */
    ck_assert_int_eq(append_one(ROOM_1, "late", 'B', 0, "{}", THOU_ROOM_ACTIVE, &seq),
                     THOU_ECONFLICT);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.state, THOU_ROOM_ENDED);
    ck_assert_int_eq(room.last_seq, 2);
    thou_room_record_release(&room);
    struct seen *seen = events_after(ROOM_1, 'A', 0, 100);
    ck_assert_uint_eq(seen->n, 2);
    free(seen);

    ck_assert_int_eq(append_one(NEVER, "x", 'A', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_ENOTFOUND);
    ck_assert_int_eq(create_room(ROOM_2, 2, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_2, 5000), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_2, "x", 'A', 0, "{}", THOU_ROOM_ACTIVE, &seq), THOU_EGONE);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events WHERE room_id = '" ROOM_2 "'"), 0);
}
END_TEST

/* Appends racing from several threads still get gap-free, unique seqs. */
#define N_THREADS          4
#define APPENDS_PER_THREAD 20

struct appender {
    pthread_t thread;
    int64_t seqs[APPENDS_PER_THREAD];
    enum thou_status rc;
};

static void *append_loop(void *arg)
{
    struct appender *a = arg;
    a->rc = THOU_OK;
    for (int i = 0; i < APPENDS_PER_THREAD && a->rc == THOU_OK; i++)
        a->rc = append_one(ROOM_1, "t", 'A', 0, "{}", THOU_ROOM_ACTIVE, &a->seqs[i]);
    return NULL;
}

START_TEST(test_concurrent_appends)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    struct appender appenders[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        ck_assert_int_eq(pthread_create(&appenders[t].thread, NULL, append_loop, &appenders[t]), 0);
    int seen[N_THREADS * APPENDS_PER_THREAD + 1] = {0};
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(appenders[t].thread, NULL);
        ck_assert_int_eq(appenders[t].rc, THOU_OK);
        int64_t last = 0;
        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
            int64_t s = appenders[t].seqs[i];
            ck_assert_int_gt(s, last); /* increasing within a thread */
            ck_assert_int_le(s, N_THREADS * APPENDS_PER_THREAD);
            seen[s]++;
            last = s;
        }
    }
    for (int s = 1; s <= N_THREADS * APPENDS_PER_THREAD; s++)
        ck_assert_msg(seen[s] == 1, "seq %d given %d times", s, seen[s]);
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, N_THREADS * APPENDS_PER_THREAD);
    thou_room_record_release(&room);
}
END_TEST

/* --- a commit that fails ------------------------------------------------------ */

/*
 * A VFS that is the default one except that, while fail_syncs is set, every
 * xSync fails as a full or broken disk would: a WAL commit with
 * synchronous=FULL then fails at COMMIT, after every statement succeeded.
 * Registered as the default before the store opens (each test runs in its
 * own process).
 */
static sqlite3_vfs *real_vfs;
static sqlite3_vfs failing_vfs;
/* The default VFS gives different files different methods (the database, its WAL). */
#define MAX_METHODS 4
static const sqlite3_io_methods *real_methods[MAX_METHODS];
static sqlite3_io_methods failing_methods[MAX_METHODS];
static size_t n_methods;
static atomic_bool fail_syncs;
static atomic_int failed_syncs;

static int failing_sync(sqlite3_file *file, int flags)
{
    if (atomic_load(&fail_syncs)) {
        atomic_fetch_add(&failed_syncs, 1);
        return SQLITE_IOERR_FSYNC;
    }
    size_t i = (size_t)(file->pMethods - failing_methods);
    return real_methods[i]->xSync(file, flags);
}

/* Let the real VFS open the file, then route its calls through our methods. */
static int failing_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                        int *out_flags)
{
    (void)vfs;
    int rc = real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
    if (rc != SQLITE_OK || !file->pMethods)
        return rc;
    /* Files are opened on the thread that opens the store, or on the writer
     * thread while the opener waits: never two at once. */
    size_t i = 0;
    while (i < n_methods && real_methods[i] != file->pMethods)
        i++;
    if (i == n_methods) {
        ck_assert_uint_lt(n_methods, MAX_METHODS);
        real_methods[i] = file->pMethods;
        failing_methods[i] = *file->pMethods;
        failing_methods[i].xSync = failing_sync;
        n_methods++;
    }
    file->pMethods = &failing_methods[i];
    return rc;
}

static void setup_failing_sync(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    ck_assert_ptr_nonnull(real_vfs);
    failing_vfs = *real_vfs;
    failing_vfs.zName = "thou-failing-sync";
    failing_vfs.xOpen = failing_open;
    ck_assert_int_eq(sqlite3_vfs_register(&failing_vfs, 1), SQLITE_OK);
    atomic_store(&fail_syncs, false);
    atomic_store(&failed_syncs, 0);
    setup();
}

static void teardown_failing_sync(void)
{
    atomic_store(&fail_syncs, false);
    teardown();
    sqlite3_vfs_unregister(&failing_vfs);
}

/* An update callback that stores one event and a new flow, counting its calls. */
struct lost_update {
    int calls;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    enum thou_status status;
};

static enum thou_status lost_update_fn(void *ctx, struct thou_room_txn *txn,
                                       const struct thou_room_record *room,
                                       struct thou_room_change *change)
{
    (void)txn;
    (void)room;
    struct lost_update *u = ctx;
    u->calls++;
    change->events[0] = (struct thou_event_record){
        .type = "lost", .sender = 'B', .data = "{\"lost\":2}", .time_ms = 2};
    change->n_events = 1;
    change->new_state = THOU_ROOM_ACTIVE;
    change->flow_json = "{\"lost\":true}";
    return THOU_OK;
}

static void lost_update_done(void *ctx, enum thou_status status)
{
    struct lost_update *u = ctx;
    pthread_mutex_lock(&u->lock);
    u->status = status;
    u->done = true;
    pthread_cond_signal(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

/*
 * Bug: a batch whose COMMIT fails still reports its writes done, or leaves
 * the writer believing they happened. Both the waiting caller and the
 * deferred callback get THOU_EIO, nothing of the batch can be read (then
 * or after a reopen), and the next event takes the seq after the last one
 * committed.
 */
START_TEST(test_failed_commit_is_acknowledged)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, INT64_MAX, "{\"kept\":true}"), THOU_OK);
    int64_t seq = 0;
    ck_assert_int_eq(append_one(ROOM_1, "joined", 'B', 0, "{\"n\":1}", THOU_ROOM_ACTIVE, &seq),
                     THOU_OK);
    ck_assert_int_eq(seq, 1);

    atomic_store(&fail_syncs, true);
    ck_assert_int_eq(append_one(ROOM_1, "lost", 'A', 0, "{\"lost\":1}", THOU_ROOM_ENDED, &seq),
                     THOU_EIO);
    ck_assert_int_gt(atomic_load(&failed_syncs), 0);

    struct lost_update update = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                 .cond = PTHREAD_COND_INITIALIZER};
    struct thou_room_change change;
    memset(&change, 0, sizeof(change));
    thou_store_room_update_async(store, ROOM_1, lost_update_fn, &update, &change, lost_update_done,
                                 &update);
    pthread_mutex_lock(&update.lock);
    while (!update.done)
        pthread_cond_wait(&update.cond, &update.lock);
    pthread_mutex_unlock(&update.lock);
    ck_assert_int_eq(update.calls, 1); /* it ran: the failure came at the commit */
    ck_assert_int_eq(update.status, THOU_EIO);
    atomic_store(&fail_syncs, false);

    /* Nothing of the failed batches is there: not the events, the state or the flow. */
    struct thou_room_record room;
    ck_assert_int_eq(thou_store_room_get(store, ROOM_1, &room), THOU_OK);
    ck_assert_int_eq(room.last_seq, 1);
    ck_assert_int_eq(room.state, THOU_ROOM_ACTIVE); /* not ended, as the lost append said */
    ck_assert_str_eq(room.flow_json, "{\"kept\":true}");
    thou_room_record_release(&room);
    struct seen *seen = events_after(ROOM_1, 'A', 0, 100);
    ck_assert_uint_eq(seen->n, 1);
    ck_assert_str_eq(seen->type[0], "joined");
    free(seen);

    /* The next events continue from the last committed one, on both write paths. */
    ck_assert_int_eq(append_one(ROOM_1, "next", 'A', 0, "{\"n\":2}", THOU_ROOM_ACTIVE, &seq),
                     THOU_OK);
    ck_assert_int_eq(seq, 2);
    memset(&change, 0, sizeof(change));
    update.calls = 0;
    ck_assert_int_eq(thou_store_room_update(store, ROOM_1, lost_update_fn, &update, &change),
                     THOU_OK);
    ck_assert_int_eq(change.seqs[0], 3);

    /* And a reopened store finds the same. */
    thou_store_close(store);
    store = NULL;
    ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
    seen = events_after(ROOM_1, 'A', 0, 100);
    ck_assert_uint_eq(seen->n, 3);
    ck_assert_str_eq(seen->data[0], "{\"n\":1}");
    ck_assert_str_eq(seen->data[1], "{\"n\":2}");
    ck_assert_str_eq(seen->data[2], "{\"lost\":2}");
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(seen->seq[i], (int64_t)i + 1);
    free(seen);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events WHERE data = '{\"lost\":1}'"), 0);

    /* A store closed right after a failed commit does not bring it back either. */
    atomic_store(&fail_syncs, true);
    ck_assert_int_eq(append_one(ROOM_1, "lost", 'A', 0, "{\"lost\":3}", THOU_ROOM_ENDED, &seq),
                     THOU_EIO);
    atomic_store(&fail_syncs, false);
    thou_store_close(store);
    store = NULL;
    ck_assert_msg(thou_store_open(data_dir, &store, errbuf, sizeof(errbuf)) == THOU_OK, "open: %s",
                  errbuf);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events WHERE type = 'lost' AND sender = 'A'"),
                     0);
    ck_assert_int_eq(append_one(ROOM_1, "next", 'A', 0, "{\"n\":4}", THOU_ROOM_ACTIVE, &seq),
                     THOU_OK);
    ck_assert_int_eq(seq, 4);
}
END_TEST

/* --- erase and sweep ------------------------------------------------------- */

START_TEST(test_erase)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, "{}"), THOU_OK);
    ck_assert_int_eq(join_room(ROOM_1, 2), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_2, 3, 1000, 9000, NULL), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(ROOM_1, "a", 'A', 0, "{\"secret\":1}", THOU_ROOM_ACTIVE, &seq),
                     THOU_OK);
    ck_assert_int_eq(append_one(ROOM_1, "b", 'B', 'B', "{}", THOU_ROOM_ACTIVE, &seq), THOU_OK);
    ck_assert_int_eq(append_one(ROOM_2, "c", 'A', 0, "{}", THOU_ROOM_WAITING, &seq), THOU_OK);

    ck_assert_int_eq(thou_store_room_erase(store, ROOM_1, 7000), THOU_OK);
    ck_assert_int_eq(room_status(ROOM_1), THOU_EGONE);
    struct seen *seen = events_after(ROOM_1, 'A', 0, 100);
    ck_assert_uint_eq(seen->n, 0);
    free(seen);
    char role;
    ck_assert_int_eq(role_of(ROOM_1, 1, &role), THOU_EAUTH);
    ck_assert_int_eq(role_of(ROOM_1, 2, &role), THOU_EAUTH);
    /* Really gone from the file, not only hidden. */
    ck_assert_int_eq(file_int("SELECT count(*) FROM events WHERE room_id = '" ROOM_1 "'"), 0);
    ck_assert_int_eq(file_int("SELECT count(*) FROM participants WHERE room_id = '" ROOM_1 "'"), 0);
    ck_assert_int_eq(file_int("SELECT count(*) FROM rooms WHERE id = '" ROOM_1 "'"), 0);
    /* The other room is untouched. */
    ck_assert_int_eq(room_status(ROOM_2), THOU_OK);
    seen = events_after(ROOM_2, 'A', 0, 100);
    ck_assert_uint_eq(seen->n, 1);
    free(seen);
    ck_assert_int_eq(role_of(ROOM_2, 3, &role), THOU_OK);
}
END_TEST

START_TEST(test_erase_missing)
{
    ck_assert_int_eq(room_status(NEVER), THOU_ENOTFOUND);
    /* Erasing what never existed leaves no tombstone behind. */
    ck_assert_int_eq(thou_store_room_erase(store, NEVER, 7000), THOU_ENOTFOUND);
    ck_assert_int_eq(room_status(NEVER), THOU_ENOTFOUND);
    /* Erasing twice: the second time the room is already gone. */
    ck_assert_int_eq(create_room(ROOM_1, 1, 1000, 9000, NULL), THOU_OK);
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_1, 7000), THOU_OK);
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_1, 8000), THOU_EGONE);
    ck_assert_int_eq(room_status(ROOM_1), THOU_EGONE);
}
END_TEST

START_TEST(test_sweep)
{
    ck_assert_int_eq(create_room(ROOM_1, 1, 100, 1000, NULL), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_2, 2, 100, 2000, NULL), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_3, 3, 100, 3000, NULL), THOU_OK);
    ck_assert_int_eq(create_room(ROOM_4, 4, 100, 99000, NULL), THOU_OK);
    int64_t seq;
    ck_assert_int_eq(append_one(ROOM_1, "a", 'A', 0, "{}", THOU_ROOM_WAITING, &seq), THOU_OK);
    /* An old erase: its tombstone is from t=100. */
    ck_assert_int_eq(thou_store_room_erase(store, ROOM_4, 100), THOU_OK);

    size_t deleted = 99;
    ck_assert_int_eq(thou_store_sweep(store, 999, 1000, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, 0);
    ck_assert_int_eq(room_status(ROOM_4), THOU_EGONE); /* 100 > 999 - 1000 */

    /* Expiry at or before now. */
    ck_assert_int_eq(thou_store_sweep(store, 2000, 1000, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, 2);
    ck_assert_int_eq(room_status(ROOM_1), THOU_EGONE);
    ck_assert_int_eq(room_status(ROOM_2), THOU_EGONE);
    ck_assert_int_eq(room_status(ROOM_3), THOU_OK);
    ck_assert_int_eq(file_int("SELECT count(*) FROM events"), 0);
    /* The old tombstone (100 <= 2000 - 1000) is gone: the id is unknown again. */
    ck_assert_int_eq(room_status(ROOM_4), THOU_ENOTFOUND);

    /* Later: room 3 expires; the tombstones of 1 and 2 (from t=2000) age out. */
    ck_assert_int_eq(thou_store_sweep(store, 3500, 1000, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, 1);
    ck_assert_int_eq(room_status(ROOM_3), THOU_EGONE);
    ck_assert_int_eq(room_status(ROOM_1), THOU_ENOTFOUND);
    ck_assert_int_eq(room_status(ROOM_2), THOU_ENOTFOUND);
    ck_assert_int_eq(file_int("SELECT count(*) FROM rooms"), 0);
}
END_TEST

/* A sweep deletes every expired room, however many there are. */
START_TEST(test_sweep_many)
{
    enum { N_ROOMS = 300 };
    char id[THOU_ROOM_ID_LEN + 1];
    for (int i = 0; i < N_ROOMS; i++) {
        snprintf(id, sizeof(id), "many%018d", i);
        ck_assert_int_eq(create_room(id, 1000 + (unsigned)i, 100, 1000 + i, NULL), THOU_OK);
    }
    ck_assert_int_eq(create_room(ROOM_1, 1, 100, 1000000, NULL), THOU_OK);
    size_t deleted = 0;
    ck_assert_int_eq(thou_store_sweep(store, 5000, 1000000, &deleted), THOU_OK);
    ck_assert_uint_eq(deleted, N_ROOMS);
    ck_assert_int_eq(file_int("SELECT count(*) FROM rooms"), 1);
    ck_assert_int_eq(room_status(ROOM_1), THOU_OK);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *suite = suite_create("store");

    TCase *open = tcase_create("open");
    tcase_add_checked_fixture(open, setup, teardown);
    tcase_set_timeout(open, 60);
    tcase_add_test(open, test_open_creates);
    tcase_add_test(open, test_open_creates_parents);
    tcase_add_test(open, test_wal_mode);
    tcase_add_test(open, test_reopen_idempotent);
    tcase_add_test(open, test_workshop_seats_are_unique);
    suite_add_tcase(suite, open);

    TCase *refuse = tcase_create("refuse");
    tcase_add_checked_fixture(refuse, setup_empty, teardown);
    tcase_set_timeout(refuse, 60);
    tcase_add_test(refuse, test_migrates_from_version_1);
    tcase_add_test(refuse, test_newer_schema_refused);
    tcase_add_test(refuse, test_newer_schema_refused_without_app_id);
    tcase_add_test(refuse, test_foreign_database_refused);
    tcase_add_test(refuse, test_foreign_database_without_app_id_refused);
    tcase_add_test(refuse, test_empty_file_is_new);
    tcase_add_test(refuse, test_not_a_database);
    tcase_add_test(refuse, test_data_dir_under_file);
    tcase_add_test(refuse, test_close_null);
    suite_add_tcase(suite, refuse);

    TCase *rooms = tcase_create("rooms");
    tcase_add_checked_fixture(rooms, setup, teardown);
    tcase_set_timeout(rooms, 60);
    tcase_add_test(rooms, test_room_create_get);
    tcase_add_test(rooms, test_room_join);
    tcase_add_test(rooms, test_participant_role);
    suite_add_tcase(suite, rooms);

    TCase *events = tcase_create("events");
    tcase_add_checked_fixture(events, setup, teardown);
    tcase_set_timeout(events, 60);
    tcase_add_test(events, test_events_append_seqs);
    tcase_add_test(events, test_events_visibility_and_limit);
    tcase_add_test(events, test_append_refused);
    tcase_add_test(events, test_concurrent_appends);
    suite_add_tcase(suite, events);

    TCase *failing = tcase_create("failing_commit");
    tcase_add_checked_fixture(failing, setup_failing_sync, teardown_failing_sync);
    tcase_set_timeout(failing, 60);
    tcase_add_test(failing, test_failed_commit_is_acknowledged);
    suite_add_tcase(suite, failing);

    TCase *erase = tcase_create("erase");
    tcase_add_checked_fixture(erase, setup, teardown);
    tcase_set_timeout(erase, 120);
    tcase_add_test(erase, test_erase);
    tcase_add_test(erase, test_erase_missing);
    tcase_add_test(erase, test_sweep);
    tcase_add_test(erase, test_sweep_many);
    suite_add_tcase(suite, erase);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(store_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
