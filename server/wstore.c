/*
 * The workshops' tables (include/thou/wstore.h). Every write runs on the
 * store's writer thread through thou_store_write_raw: one savepoint each, so
 * a join and the pairs it makes commit together or not at all.
 */
#include "thou/wstore.h"
#include "thou/wstore_pg.h"
#include "thou/crypto.h"
#include "thou/mem.h"
#include "thou/pairing.h"
#include "thou/studies.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum thou_status status_of(int rc)
{
    switch (rc & 0xff) {
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

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

/* Step a statement that returns no rows and finalize it. */
static int done(sqlite3_stmt *s)
{
    if (!s)
        return SQLITE_ERROR;
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void copy_text(char *out, size_t len, sqlite3_stmt *s, int col)
{
    const unsigned char *text = sqlite3_column_text(s, col);
    snprintf(out, len, "%s", text ? (const char *)text : "");
}

/* ---- workshops ---------------------------------------------------------------- */

#define WORKSHOP_COLUMNS                                                                           \
    "id, code, facilitator, title, set_id, set_version, state, released, paused, note,"            \
    " timer_ends_ms, capacity, created_ms, joined, pairs, study"

static void read_workshop(sqlite3_stmt *s, struct thou_workshop *w)
{
    memset(w, 0, sizeof(*w));
    w->id = sqlite3_column_int64(s, 0);
    copy_text(w->code, sizeof(w->code), s, 1);
    copy_text(w->facilitator, sizeof(w->facilitator), s, 2);
    copy_text(w->title, sizeof(w->title), s, 3);
    copy_text(w->set_id, sizeof(w->set_id), s, 4);
    w->set_version = sqlite3_column_int(s, 5);
    w->state = (enum thou_workshop_state)sqlite3_column_int(s, 6);
    w->released = sqlite3_column_int64(s, 7);
    w->paused = sqlite3_column_int(s, 8) != 0;
    w->has_note = sqlite3_column_type(s, 9) != SQLITE_NULL;
    copy_text(w->note, sizeof(w->note), s, 9);
    w->timer_ends_ms = sqlite3_column_int64(s, 10);
    w->capacity = sqlite3_column_int64(s, 11);
    w->created_ms = sqlite3_column_int64(s, 12);
    w->joined = sqlite3_column_int64(s, 13);
    w->pairs = sqlite3_column_int64(s, 14);
    copy_text(w->study, sizeof(w->study), s, 15);
}

static enum thou_status create_run(void *ctx, sqlite3 *db)
{
    struct thou_workshop *w = ctx;
    sqlite3_stmt *s = prep(db, "INSERT INTO workshops (code, facilitator, title, set_id,"
                               " set_version, state, released, paused, capacity, created_ms,"
                               " study) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, w->code, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, w->facilitator, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, w->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, w->set_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, w->set_version);
    sqlite3_bind_int(s, 6, (int)w->state);
    sqlite3_bind_int64(s, 7, w->released);
    sqlite3_bind_int64(s, 8, w->capacity);
    sqlite3_bind_int64(s, 9, w->created_ms);
    if (w->study[0])
        sqlite3_bind_text(s, 10, w->study, -1, SQLITE_STATIC);
    int rc = done(s);
    if (rc == SQLITE_OK)
        w->id = sqlite3_last_insert_rowid(db);
    return status_of(rc);
}

enum thou_status thou_wstore_create(struct thou_store *store, struct thou_workshop *w)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_create(thou_store_pg_of(store), w);
    return thou_store_write_raw(store, create_run, w);
}

struct get_args {
    int64_t id;
    const char *code;
    struct thou_workshop *w;
};

static enum thou_status get_workshop(sqlite3 *db, int64_t id, const char *code,
                                     struct thou_workshop *w)
{
    sqlite3_stmt *s = prep(db, id ? "SELECT " WORKSHOP_COLUMNS " FROM workshops WHERE id = ?"
                                  : "SELECT " WORKSHOP_COLUMNS " FROM workshops WHERE code = ?");
    if (!s)
        return THOU_EIO;
    if (id)
        sqlite3_bind_int64(s, 1, id);
    else
        sqlite3_bind_text(s, 1, code, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_workshop(s, w);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? THOU_OK : rc == SQLITE_DONE ? THOU_ENOTFOUND : THOU_EIO;
}

static enum thou_status get_run(void *ctx, sqlite3 *db)
{
    struct get_args *a = ctx;
    return get_workshop(db, a->id, a->code, a->w);
}

enum thou_status thou_wstore_get(struct thou_store *store, int64_t id, const char *code,
                                 struct thou_workshop *w)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_get(thou_store_pg_of(store), id, code, w);
    struct get_args args = {id, code, w};
    return thou_store_read_raw(store, get_run, &args);
}

struct list_args {
    const char *facilitator;
    void (*visit)(void *ctx, const struct thou_workshop *w);
    void *ctx;
};

static enum thou_status list_run(void *ctx, sqlite3 *db)
{
    struct list_args *a = ctx;
    sqlite3_stmt *s = prep(db, "SELECT " WORKSHOP_COLUMNS
                               " FROM workshops WHERE facilitator = ? ORDER BY id DESC");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, a->facilitator, -1, SQLITE_STATIC);
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    if (!w) {
        sqlite3_finalize(s);
        return THOU_ENOMEM;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_workshop(s, w);
        a->visit(a->ctx, w);
    }
    free(w);
    sqlite3_finalize(s);
    return status_of(rc);
}

enum thou_status thou_wstore_list(struct thou_store *store, const char *facilitator,
                                  void (*visit)(void *ctx, const struct thou_workshop *w),
                                  void *ctx)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_list(thou_store_pg_of(store), facilitator, visit, ctx);
    struct list_args args = {facilitator, visit, ctx};
    return thou_store_read_raw(store, list_run, &args);
}

static enum thou_status save_run(void *ctx, sqlite3 *db)
{
    const struct thou_workshop *w = ctx;
    sqlite3_stmt *s = prep(db, "UPDATE workshops SET state = ?, released = ?, paused = ?,"
                               " note = ?, timer_ends_ms = ? WHERE id = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int(s, 1, (int)w->state);
    sqlite3_bind_int64(s, 2, w->released);
    sqlite3_bind_int(s, 3, w->paused);
    if (w->has_note)
        sqlite3_bind_text(s, 4, w->note, -1, SQLITE_STATIC);
    if (w->timer_ends_ms)
        sqlite3_bind_int64(s, 5, w->timer_ends_ms);
    sqlite3_bind_int64(s, 6, w->id);
    return status_of(done(s));
}

enum thou_status thou_wstore_save(struct thou_store *store, const struct thou_workshop *w)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_save(thou_store_pg_of(store), w);
    return thou_store_write_raw(store, save_run, (void *)(uintptr_t)w);
}

/* ---- participants ---------------------------------------------------------- */

#define PARTICIPANT_COLUMNS "workshop_id, label, state, left_behind, room_id, role"

static void read_participant(sqlite3_stmt *s, struct thou_wparticipant *p)
{
    memset(p, 0, sizeof(*p));
    p->workshop_id = sqlite3_column_int64(s, 0);
    p->label = sqlite3_column_int64(s, 1);
    p->state = (enum thou_wparticipant_state)sqlite3_column_int(s, 2);
    p->left_behind = sqlite3_column_int(s, 3) != 0;
    copy_text(p->room_id, sizeof(p->room_id), s, 4);
    const unsigned char *role = sqlite3_column_text(s, 5);
    p->role = role ? (char)role[0] : '\0';
}

static enum thou_status participant_by_hash(sqlite3 *db, const uint8_t *token_hash,
                                            struct thou_wparticipant *p)
{
    sqlite3_stmt *s =
        prep(db, "SELECT " PARTICIPANT_COLUMNS " FROM workshop_participants WHERE token_hash = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_blob(s, 1, token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_participant(s, p);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? THOU_OK : rc == SQLITE_DONE ? THOU_ENOTFOUND : THOU_EIO;
}

/* ---- pairing (writer thread, inside the caller's savepoint) ---------------- */

struct queue_row {
    int64_t label;
    uint8_t token_hash[THOU_DIGEST_BYTES];
};

/* A pair's place in a study workshop's design, decided in the pairing's
 * transaction: the study's next block-randomised condition (the draw of
 * thou_store_study_assign) and the same study columns as
 * thou_store_room_set_study, so a pair is counted exactly when its room is
 * made and a crash leaves neither a room without its study nor a gap. */
struct pair_study {
    const char *set_id;
    int set_version;
    const char *flow_json;
    const char *condition; /* NULL: no study (none, or removed since) */
};

static enum thou_status study_draw(sqlite3 *db, const struct thou_workshop *w,
                                   const struct thou_wstore_pairing *pairing, struct pair_study *ps)
{
    *ps = (struct pair_study){w->set_id, w->set_version, pairing->flow_json, NULL};
    if (!w->study[0])
        return THOU_OK;
    sqlite3_stmt *s = prep(db, "SELECT seed, assigned FROM studies WHERE name = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, w->study, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? THOU_OK : THOU_EIO;
    }
    uint8_t seed[THOU_STUDY_SEED_BYTES] = {0};
    if (sqlite3_column_bytes(s, 0) == THOU_STUDY_SEED_BYTES)
        memcpy(seed, sqlite3_column_blob(s, 0), THOU_STUDY_SEED_BYTES);
    int64_t assigned = sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    if (pairing->n_conditions) {
        const struct thou_wstore_condition *c =
            &pairing->conditions[thou_studies_condition(seed, pairing->n_conditions, assigned)];
        *ps = (struct pair_study){c->set_id, c->set_version, c->flow_json, c->set_id};
    } else {
        ps->condition = w->set_id; /* as in link mode: the condition is the set */
    }
    memset(seed, 0, sizeof(seed));
    s = prep(db, "UPDATE studies SET assigned = assigned + 1 WHERE name = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, w->study, -1, SQLITE_STATIC);
    return status_of(done(s));
}

/* Make the room of one pair: the room, both seats, the join, both rows. */
static enum thou_status make_pair(sqlite3 *db, int64_t workshop_id, const struct thou_workshop *w,
                                  const struct queue_row *a, const struct queue_row *b,
                                  int64_t now_ms, const struct thou_wstore_pairing *pairing,
                                  struct thou_wstore_outcome *out)
{
    char room_id[THOU_ID_B64_LEN + 1];
    thou_crypto_new_id(room_id);
    int64_t pair = w->pairs + 1;
    static const uint8_t no_verifier[THOU_HASH_LEN] = {0};
    struct pair_study ps;
    enum thou_status drawn = study_draw(db, w, pairing, &ps);
    if (drawn)
        return drawn;
    sqlite3_stmt *s = prep(db, "INSERT INTO rooms (id, set_id, set_version, state, join_verifier,"
                               " created_ms, expires_ms, flow, mode, workshop_id, workshop_pair,"
                               " study, study_condition)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'workshop', ?, ?, ?, ?)");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ps.set_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, ps.set_version);
    sqlite3_bind_int(s, 4, THOU_ROOM_ACTIVE);
    /* No join secret: both seats are set here, from the two token hashes. */
    sqlite3_bind_blob(s, 5, no_verifier, THOU_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, now_ms);
    sqlite3_bind_int64(s, 7, now_ms + pairing->room_ttl_ms);
    sqlite3_bind_text(s, 8, ps.flow_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, workshop_id);
    sqlite3_bind_int64(s, 10, pair);
    if (ps.condition) {
        sqlite3_bind_text(s, 11, w->study, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 12, ps.condition, -1, SQLITE_STATIC);
    }
    int rc = done(s);
    const struct queue_row *seat[2] = {a, b};
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        s = prep(db, "INSERT INTO participants (room_id, role, token_hash, joined_ms)"
                     " VALUES (?, ?, ?, ?)");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, i ? "B" : "A", 1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, seat[i]->token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, now_ms);
        rc = done(s);
    }
    if (rc == SQLITE_OK) {
        /* As in a link room, B's arrival is the room's first event. */
        char data[96];
        snprintf(data, sizeof(data), "{\"type\":\"joined\",\"role\":\"B\",\"time\":%lld}",
                 (long long)now_ms);
        s = prep(db, "INSERT INTO events (room_id, seq, type, sender, visible_to, data, time_ms)"
                     " VALUES (?, 1, 'joined', 'B', NULL, ?, ?)");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_text(s, 1, room_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, data, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, now_ms);
        rc = done(s);
    }
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        /* state = WAITING in the WHERE: a row that is not waiting is never seated. */
        s = prep(db, "UPDATE workshop_participants SET state = ?, room_id = ?, role = ?, pair = ?"
                     " WHERE workshop_id = ? AND label = ? AND state = ?");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_int(s, 1, THOU_WP_PAIRED);
        sqlite3_bind_text(s, 2, room_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, i ? "B" : "A", 1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, pair);
        sqlite3_bind_int64(s, 5, workshop_id);
        sqlite3_bind_int64(s, 6, seat[i]->label);
        sqlite3_bind_int(s, 7, THOU_WP_WAITING);
        rc = done(s);
        if (rc == SQLITE_OK && sqlite3_changes(db) != 1)
            return THOU_ECONFLICT;
    }
    if (rc == SQLITE_OK) {
        s = prep(db, "UPDATE workshops SET pairs = ? WHERE id = ?");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_int64(s, 1, pair);
        sqlite3_bind_int64(s, 2, workshop_id);
        rc = done(s);
    }
    if (rc != SQLITE_OK)
        return status_of(rc) == THOU_OK ? THOU_EIO : status_of(rc);
    if (out && out->n_pairs < THOU_WSTORE_MAX_PAIRS) {
        struct thou_wstore_pair *p = &out->pairs[out->n_pairs++];
        p->pair = pair;
        p->label[0] = a->label;
        p->label[1] = b->label;
        snprintf(p->room_id, sizeof(p->room_id), "%s", room_id);
    }
    return THOU_OK;
}

/* The queue of a workshop: its rows and the pairing module's entries. */
struct queue {
    struct queue_row *rows;
    struct thou_pairing_entry *entries;
    size_t n;
};

static void queue_release(struct queue *q)
{
    free(q->rows);
    free(q->entries);
}

static enum thou_status read_queue(sqlite3 *db, int64_t workshop_id,
                                   const struct thou_wstore_pairing *pairing, struct queue *q)
{
    memset(q, 0, sizeof(*q));
    sqlite3_stmt *s = prep(db, "SELECT label, token_hash, queued_ms, left_behind"
                               " FROM workshop_participants WHERE workshop_id = ? AND state = ?"
                               " ORDER BY queued_ms, label");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int64(s, 1, workshop_id);
    sqlite3_bind_int(s, 2, THOU_WP_WAITING);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (q->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct queue_row *rows = thou_realloc(q->rows, cap * sizeof(*q->rows));
            if (rows)
                q->rows = rows;
            struct thou_pairing_entry *entries =
                rows ? thou_realloc(q->entries, cap * sizeof(*q->entries)) : NULL;
            if (!entries) {
                sqlite3_finalize(s);
                queue_release(q);
                return THOU_ENOMEM;
            }
            q->entries = entries;
        }
        struct queue_row *row = &q->rows[q->n];
        struct thou_pairing_entry *e = &q->entries[q->n];
        row->label = sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) == THOU_DIGEST_BYTES)
            memcpy(row->token_hash, sqlite3_column_blob(s, 1), THOU_DIGEST_BYTES);
        *e = (struct thou_pairing_entry){.label = row->label,
                                         .queued_ms = sqlite3_column_int64(s, 2),
                                         .left_behind = sqlite3_column_int(s, 3) != 0};
        e->last_seen_ms = e->queued_ms;
        if (pairing->presence)
            pairing->presence(pairing->presence_ctx, workshop_id, e->label, e->queued_ms,
                              &e->connected, &e->last_seen_ms);
        q->n++;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        queue_release(q);
        return THOU_EIO;
    }
    return THOU_OK;
}

static enum thou_status pair_queue(sqlite3 *db, int64_t workshop_id, int64_t now_ms,
                                   const struct thou_wstore_pairing *pairing,
                                   struct thou_wstore_outcome *out)
{
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    struct queue q;
    struct thou_pairing_pair *pairs = NULL;
    size_t *leave = NULL;
    if (!w)
        return THOU_ENOMEM;
    enum thou_status rc = get_workshop(db, workshop_id, NULL, w);
    if (rc == THOU_OK && w->state == THOU_WORKSHOP_ENDED)
        rc = THOU_EGONE;
    if (rc == THOU_OK)
        rc = read_queue(db, workshop_id, pairing, &q);
    if (rc) {
        free(w);
        return rc;
    }
    pairs = thou_malloc((q.n / 2 + 1) * sizeof(*pairs));
    leave = thou_malloc((q.n + 1) * sizeof(*leave));
    size_t n_pairs = 0, n_leave = 0;
    if (!pairs || !leave) {
        rc = THOU_ENOMEM; /* nothing written yet: the caller's transaction undoes the rest */
        goto out;
    }
    thou_pairing_decide(q.entries, q.n, now_ms, pairing->timeout_ms, pairs, &n_pairs, leave,
                        &n_leave);
    for (size_t i = 0; i < n_leave && rc == THOU_OK; i++) {
        sqlite3_stmt *s = prep(db, "UPDATE workshop_participants SET state = ?"
                                   " WHERE workshop_id = ? AND label = ? AND state = ?");
        if (!s) {
            rc = THOU_EIO;
            break;
        }
        sqlite3_bind_int(s, 1, THOU_WP_LEFT);
        sqlite3_bind_int64(s, 2, workshop_id);
        sqlite3_bind_int64(s, 3, q.rows[leave[i]].label);
        sqlite3_bind_int(s, 4, THOU_WP_WAITING);
        rc = status_of(done(s));
    }
    if (out && rc == THOU_OK)
        out->n_left += n_leave;
    for (size_t i = 0; i < n_pairs && rc == THOU_OK; i++) {
        rc = make_pair(db, workshop_id, w, &q.rows[pairs[i].a], &q.rows[pairs[i].b], now_ms,
                       pairing, out);
        w->pairs++;
    }
out:
    free(pairs);
    free(leave);
    queue_release(&q);
    free(w);
    return rc;
}

struct join_args {
    int64_t workshop_id;
    const uint8_t *token_hash;
    int64_t now_ms;
    const struct thou_wstore_pairing *pairing;
    struct thou_wparticipant *me;
    struct thou_wstore_outcome *out;
};

static enum thou_status join_run(void *ctx, sqlite3 *db)
{
    struct join_args *a = ctx;
    struct thou_workshop w;
    enum thou_status rc = get_workshop(db, a->workshop_id, NULL, &w);
    if (rc)
        return rc;
    if (w.state == THOU_WORKSHOP_ENDED)
        return THOU_EGONE;
    rc = participant_by_hash(db, a->token_hash, a->me);
    if (rc == THOU_OK) {
        if (a->me->workshop_id != a->workshop_id)
            return THOU_EEXIST;
        if (a->me->state != THOU_WP_LEFT)
            return THOU_OK; /* the same browser again: its place is kept */
        if (w.state != THOU_WORKSHOP_OPEN)
            return THOU_ECONFLICT;
        /* Back after the presence timeout: at the end of the queue. */
        sqlite3_stmt *s = prep(db, "UPDATE workshop_participants SET state = ?, queued_ms = ?"
                                   " WHERE workshop_id = ? AND label = ?");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_int(s, 1, THOU_WP_WAITING);
        sqlite3_bind_int64(s, 2, a->now_ms);
        sqlite3_bind_int64(s, 3, a->workshop_id);
        sqlite3_bind_int64(s, 4, a->me->label);
        rc = status_of(done(s));
    } else if (rc == THOU_ENOTFOUND) {
        if (w.state != THOU_WORKSHOP_OPEN)
            return THOU_ECONFLICT;
        if (w.joined >= w.capacity)
            return THOU_EFULL;
        sqlite3_stmt *s = prep(db, "INSERT INTO workshop_participants (workshop_id, label,"
                                   " token_hash, arrived_ms, queued_ms, state)"
                                   " VALUES (?, ?, ?, ?, ?, ?)");
        if (!s)
            return THOU_EIO;
        sqlite3_bind_int64(s, 1, a->workshop_id);
        sqlite3_bind_int64(s, 2, w.joined + 1);
        sqlite3_bind_blob(s, 3, a->token_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, a->now_ms);
        sqlite3_bind_int64(s, 5, a->now_ms);
        sqlite3_bind_int(s, 6, THOU_WP_WAITING);
        rc = status_of(done(s));
        if (rc == THOU_OK) {
            s = prep(db, "UPDATE workshops SET joined = joined + 1 WHERE id = ?");
            if (!s)
                return THOU_EIO;
            sqlite3_bind_int64(s, 1, a->workshop_id);
            rc = status_of(done(s));
        }
    }
    if (rc == THOU_OK)
        rc = pair_queue(db, a->workshop_id, a->now_ms, a->pairing, a->out);
    if (rc == THOU_OK)
        rc = participant_by_hash(db, a->token_hash, a->me);
    return rc;
}

enum thou_status thou_wstore_join(struct thou_store *store, int64_t workshop_id,
                                  const uint8_t token_hash[THOU_DIGEST_BYTES], int64_t now_ms,
                                  const struct thou_wstore_pairing *pairing,
                                  struct thou_wparticipant *me, struct thou_wstore_outcome *out)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_join(thou_store_pg_of(store), workshop_id, token_hash, now_ms,
                                   pairing, me, out);
    memset(out, 0, sizeof(*out));
    struct join_args args = {workshop_id, token_hash, now_ms, pairing, me, out};
    enum thou_status rc = thou_store_write_raw(store, join_run, &args);
    if (rc)
        memset(out, 0, sizeof(*out)); /* rolled back: nothing was paired */
    return rc;
}

struct pair_args {
    int64_t workshop_id;
    int64_t label_a, label_b;
    int64_t now_ms;
    const struct thou_wstore_pairing *pairing;
    struct thou_wstore_outcome *out;
};

static enum thou_status pair_queue_run(void *ctx, sqlite3 *db)
{
    struct pair_args *a = ctx;
    return pair_queue(db, a->workshop_id, a->now_ms, a->pairing, a->out);
}

enum thou_status thou_wstore_pair_queue(struct thou_store *store, int64_t workshop_id,
                                        int64_t now_ms, const struct thou_wstore_pairing *pairing,
                                        struct thou_wstore_outcome *out)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_pair_queue(thou_store_pg_of(store), workshop_id, now_ms, pairing,
                                         out);
    memset(out, 0, sizeof(*out));
    struct pair_args args = {workshop_id, 0, 0, now_ms, pairing, out};
    enum thou_status rc = thou_store_write_raw(store, pair_queue_run, &args);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

static enum thou_status by_hand_run(void *ctx, sqlite3 *db)
{
    struct pair_args *a = ctx;
    struct thou_workshop w;
    struct queue q;
    enum thou_status rc = get_workshop(db, a->workshop_id, NULL, &w);
    if (rc)
        return rc;
    if (w.state == THOU_WORKSHOP_ENDED)
        return THOU_EGONE;
    rc = read_queue(db, a->workshop_id, a->pairing, &q);
    if (rc)
        return rc;
    struct thou_pairing_pair pair;
    switch (thou_pairing_by_hand(q.entries, q.n, a->label_a, a->label_b, &pair)) {
    case THOU_PAIRING_OK:
        rc = make_pair(db, a->workshop_id, &w, &q.rows[pair.a], &q.rows[pair.b], a->now_ms,
                       a->pairing, a->out);
        break;
    case THOU_PAIRING_SAME:
        rc = THOU_EINVAL;
        break;
    case THOU_PAIRING_NOT_WAITING:
        rc = THOU_ECONFLICT;
        break;
    }
    queue_release(&q);
    return rc;
}

enum thou_status thou_wstore_pair_by_hand(struct thou_store *store, int64_t workshop_id,
                                          int64_t label_a, int64_t label_b, int64_t now_ms,
                                          const struct thou_wstore_pairing *pairing,
                                          struct thou_wstore_outcome *out)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_pair_by_hand(thou_store_pg_of(store), workshop_id, label_a, label_b,
                                           now_ms, pairing, out);
    memset(out, 0, sizeof(*out));
    struct pair_args args = {workshop_id, label_a, label_b, now_ms, pairing, out};
    enum thou_status rc = thou_store_write_raw(store, by_hand_run, &args);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

struct requeue_args {
    int64_t workshop_id, label;
    const uint8_t *new_hash;
    int64_t now_ms;
};

static enum thou_status requeue_run(void *ctx, sqlite3 *db)
{
    struct requeue_args *a = ctx;
    sqlite3_stmt *s = prep(db, "UPDATE workshop_participants SET state = ?, token_hash = ?,"
                               " queued_ms = ?, left_behind = 1, room_id = NULL, role = NULL,"
                               " pair = NULL WHERE workshop_id = ? AND label = ? AND state = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int(s, 1, THOU_WP_WAITING);
    sqlite3_bind_blob(s, 2, a->new_hash, THOU_DIGEST_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, a->now_ms);
    sqlite3_bind_int64(s, 4, a->workshop_id);
    sqlite3_bind_int64(s, 5, a->label);
    sqlite3_bind_int(s, 6, THOU_WP_PAIRED);
    enum thou_status rc = status_of(done(s));
    if (rc == THOU_OK && sqlite3_changes(db) != 1)
        rc = THOU_ECONFLICT;
    return rc;
}

enum thou_status thou_wstore_requeue(struct thou_store *store, int64_t workshop_id, int64_t label,
                                     const uint8_t new_hash[THOU_DIGEST_BYTES], int64_t now_ms)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_requeue(thou_store_pg_of(store), workshop_id, label, new_hash,
                                      now_ms);
    struct requeue_args args = {workshop_id, label, new_hash, now_ms};
    return thou_store_write_raw(store, requeue_run, &args);
}

static enum thou_status clear_run(void *ctx, sqlite3 *db)
{
    const int64_t *workshop_id = ctx;
    sqlite3_stmt *s = prep(db, "UPDATE workshop_participants SET state = ?"
                               " WHERE workshop_id = ? AND state = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int(s, 1, THOU_WP_LEFT);
    sqlite3_bind_int64(s, 2, *workshop_id);
    sqlite3_bind_int(s, 3, THOU_WP_WAITING);
    return status_of(done(s));
}

enum thou_status thou_wstore_clear_queue(struct thou_store *store, int64_t workshop_id)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_clear_queue(thou_store_pg_of(store), workshop_id);
    return thou_store_write_raw(store, clear_run, &workshop_id);
}

struct participant_args {
    const uint8_t *token_hash;
    const char *room_id;
    char role;
    struct thou_wparticipant *p;
};

static enum thou_status participant_run(void *ctx, sqlite3 *db)
{
    struct participant_args *a = ctx;
    if (a->token_hash)
        return participant_by_hash(db, a->token_hash, a->p);
    char role[2] = {a->role, '\0'};
    sqlite3_stmt *s = prep(db, "SELECT " PARTICIPANT_COLUMNS " FROM workshop_participants"
                               " WHERE room_id = ? AND role = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, role, 1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_participant(s, a->p);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? THOU_OK : rc == SQLITE_DONE ? THOU_ENOTFOUND : THOU_EIO;
}

enum thou_status thou_wstore_participant(struct thou_store *store,
                                         const uint8_t token_hash[THOU_DIGEST_BYTES],
                                         struct thou_wparticipant *p)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_participant(thou_store_pg_of(store), token_hash, p);
    struct participant_args args = {token_hash, NULL, 0, p};
    return thou_store_read_raw(store, participant_run, &args);
}

static enum thou_status by_label_run(void *ctx, sqlite3 *db)
{
    struct thou_wparticipant *p = ctx;
    sqlite3_stmt *s = prep(db, "SELECT " PARTICIPANT_COLUMNS " FROM workshop_participants"
                               " WHERE workshop_id = ? AND label = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int64(s, 1, p->workshop_id);
    sqlite3_bind_int64(s, 2, p->label);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_participant(s, p);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? THOU_OK : rc == SQLITE_DONE ? THOU_ENOTFOUND : THOU_EIO;
}

enum thou_status thou_wstore_participant_by_label(struct thou_store *store, int64_t workshop_id,
                                                  int64_t label, struct thou_wparticipant *p)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_participant_by_label(thou_store_pg_of(store), workshop_id, label, p);
    memset(p, 0, sizeof(*p));
    p->workshop_id = workshop_id;
    p->label = label;
    return thou_store_read_raw(store, by_label_run, p);
}

enum thou_status thou_wstore_participant_in_room(struct thou_store *store, const char *room_id,
                                                 char role, struct thou_wparticipant *p)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_participant_in_room(thou_store_pg_of(store), room_id, role, p);
    struct participant_args args = {NULL, room_id, role, p};
    return thou_store_read_raw(store, participant_run, &args);
}

struct room_workshop_args {
    const char *room_id;
    int64_t workshop_id;
};

static enum thou_status room_workshop_run(void *ctx, sqlite3 *db)
{
    struct room_workshop_args *a = ctx;
    sqlite3_stmt *s = prep(db, "SELECT workshop_id FROM rooms WHERE id = ?");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_text(s, 1, a->room_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        a->workshop_id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? THOU_OK : rc == SQLITE_DONE ? THOU_ENOTFOUND : THOU_EIO;
}

enum thou_status thou_wstore_room_workshop(struct thou_store *store, const char *room_id,
                                           int64_t *workshop_id)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_room_workshop(thou_store_pg_of(store), room_id, workshop_id);
    struct room_workshop_args args = {room_id, 0};
    enum thou_status rc = thou_store_read_raw(store, room_workshop_run, &args);
    *workshop_id = args.workshop_id;
    return rc;
}

struct read_args {
    int64_t workshop_id;
    void (*waiting)(void *ctx, const struct thou_wwaiting *w);
    void (*room)(void *ctx, const struct thou_wroom *r);
    void *ctx;
};

static enum thou_status read_run(void *ctx, sqlite3 *db)
{
    struct read_args *a = ctx;
    sqlite3_stmt *s = prep(db, "SELECT label, queued_ms, left_behind FROM workshop_participants"
                               " WHERE workshop_id = ? AND state = ? ORDER BY label");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int64(s, 1, a->workshop_id);
    sqlite3_bind_int(s, 2, THOU_WP_WAITING);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct thou_wwaiting w = {sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                  sqlite3_column_int(s, 2) != 0, 0};
        a->waiting(a->ctx, &w);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return THOU_EIO;
    if (!a->room)
        return THOU_OK;
    s = prep(db, "SELECT r.workshop_pair, r.id, r.state, r.flow,"
                 " (SELECT MAX(time_ms) FROM events e WHERE e.room_id = r.id)"
                 " FROM rooms r WHERE r.workshop_id = ? ORDER BY r.workshop_pair");
    if (!s)
        return THOU_EIO;
    sqlite3_bind_int64(s, 1, a->workshop_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct thou_wroom r = {0};
        r.pair = sqlite3_column_int64(s, 0);
        copy_text(r.room_id, sizeof(r.room_id), s, 1);
        r.state = (enum thou_room_state)sqlite3_column_int(s, 2);
        r.flow_json = (const char *)sqlite3_column_text(s, 3);
        r.last_step_ms = sqlite3_column_int64(s, 4);
        a->room(a->ctx, &r);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? THOU_OK : THOU_EIO;
}

enum thou_status thou_wstore_read(struct thou_store *store, int64_t workshop_id,
                                  void (*waiting)(void *ctx, const struct thou_wwaiting *w),
                                  void (*room)(void *ctx, const struct thou_wroom *r), void *ctx)
{
    if (thou_store_pg_of(store))
        return thou_wstore_pg_read(thou_store_pg_of(store), workshop_id, waiting, room, ctx);
    struct read_args args = {workshop_id, waiting, room, ctx};
    return thou_store_read_raw(store, read_run, &args);
}
