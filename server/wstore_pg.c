/*
 * The workshops' tables on PostgreSQL (include/thou/wstore_pg.h). Writes run
 * on the store's writer through thou_store_pg_write_raw, one savepoint each;
 * every write that reads a workshop's queue first locks the workshop's row,
 * which the instances sharing the database then take in turn.
 */
#include "thou/wstore_pg.h"
#include "thou/crypto.h"
#include "thou/mem.h"
#include "thou/pairing.h"
#include "thou/studies.h"

#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct thou_store_pg_conn conn_t;

/* Decimal text of v in buf. */
static const char *num(char buf[24], int64_t v)
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

static int64_t int_at(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void text_at(char *out, size_t len, const PGresult *res, int row, int col)
{
    snprintf(out, len, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* Tell the other instances that a workshop changed: ids only, sent at commit. */
static enum thou_status notify(conn_t *c, int64_t workshop_id)
{
    char id[24];
    const char *values[] = {num(id, workshop_id)};
    return thou_store_pg_exec(c, "SELECT pg_notify('" THOU_STORE_PG_CHANNEL "', 'w' || $1 || ' w')",
                              1, values, NULL, NULL, NULL);
}

/* ---- workshops ---------------------------------------------------------------- */

#define WORKSHOP_COLUMNS                                                                           \
    "id, code, facilitator, title, set_id, set_version, state, released, paused, note,"            \
    " timer_ends_ms, capacity, created_ms, joined, pairs, study"

static void read_workshop(const PGresult *res, int row, struct thou_workshop *w)
{
    memset(w, 0, sizeof(*w));
    w->id = int_at(res, row, 0);
    text_at(w->code, sizeof(w->code), res, row, 1);
    text_at(w->facilitator, sizeof(w->facilitator), res, row, 2);
    text_at(w->title, sizeof(w->title), res, row, 3);
    text_at(w->set_id, sizeof(w->set_id), res, row, 4);
    w->set_version = (int)int_at(res, row, 5);
    w->state = (enum thou_workshop_state)int_at(res, row, 6);
    w->released = int_at(res, row, 7);
    w->paused = int_at(res, row, 8) != 0;
    w->has_note = !PQgetisnull(res, row, 9);
    text_at(w->note, sizeof(w->note), res, row, 9);
    w->timer_ends_ms = int_at(res, row, 10);
    w->capacity = int_at(res, row, 11);
    w->created_ms = int_at(res, row, 12);
    w->joined = int_at(res, row, 13);
    w->pairs = int_at(res, row, 14);
    text_at(w->study, sizeof(w->study), res, row, 15);
}

static enum thou_status create_run(void *ctx, conn_t *c)
{
    struct thou_workshop *w = ctx;
    char version[24], state[24], released[24], capacity[24], created[24];
    const char *values[] = {w->code,
                            w->facilitator,
                            w->title,
                            w->set_id,
                            num(version, w->set_version),
                            num(state, (int64_t)w->state),
                            num(released, w->released),
                            num(capacity, w->capacity),
                            num(created, w->created_ms),
                            w->study[0] ? w->study : NULL};
    PGresult *res = thou_store_pg_sql(c,
                                      "INSERT INTO workshops (code, facilitator, title, set_id,"
                                      " set_version, state, released, paused, capacity,"
                                      " created_ms, study)"
                                      " VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10)"
                                      " RETURNING id",
                                      10, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    w->id = int_at(res, 0, 0);
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_wstore_pg_create(struct thou_store_pg *pg, struct thou_workshop *w)
{
    return thou_store_pg_write_raw(pg, create_run, w, 0);
}

/*
 * Read one workshop by id or code. lock: hold its row until the commit, so
 * that another instance's join or pairing of this workshop waits for ours
 * and then reads what we wrote (READ COMMITTED reads anew per statement).
 */
static enum thou_status get_workshop(conn_t *c, int64_t id, const char *code, bool lock,
                                     struct thou_workshop *w)
{
    char id_text[24];
    const char *values[] = {id ? num(id_text, id) : code};
    const char *sql = id ? (lock ? "SELECT " WORKSHOP_COLUMNS " FROM workshops WHERE id = $1"
                                   " FOR UPDATE"
                                 : "SELECT " WORKSHOP_COLUMNS " FROM workshops WHERE id = $1")
                         : "SELECT " WORKSHOP_COLUMNS " FROM workshops WHERE code = $1";
    PGresult *res = thou_store_pg_sql(c, sql, 1, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    enum thou_status rc = THOU_ENOTFOUND;
    if (PQntuples(res) > 0) {
        read_workshop(res, 0, w);
        rc = THOU_OK;
    }
    PQclear(res);
    return rc;
}

struct get_args {
    int64_t id;
    const char *code;
    struct thou_workshop *w;
};

static enum thou_status get_run(void *ctx, conn_t *c)
{
    struct get_args *a = ctx;
    return get_workshop(c, a->id, a->code, false, a->w);
}

enum thou_status thou_wstore_pg_get(struct thou_store_pg *pg, int64_t id, const char *code,
                                    struct thou_workshop *w)
{
    struct get_args args = {id, code, w};
    return thou_store_pg_read_raw(pg, get_run, &args);
}

struct list_args {
    const char *facilitator;
    void (*visit)(void *ctx, const struct thou_workshop *w);
    void *ctx;
};

static enum thou_status list_run(void *ctx, conn_t *c)
{
    struct list_args *a = ctx;
    const char *values[] = {a->facilitator};
    PGresult *res = thou_store_pg_sql(c,
                                      "SELECT " WORKSHOP_COLUMNS " FROM workshops"
                                      " WHERE facilitator = $1 ORDER BY id DESC",
                                      1, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    if (!w) {
        PQclear(res);
        return THOU_ENOMEM;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        read_workshop(res, i, w);
        a->visit(a->ctx, w);
    }
    free(w);
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_wstore_pg_list(struct thou_store_pg *pg, const char *facilitator,
                                     void (*visit)(void *ctx, const struct thou_workshop *w),
                                     void *ctx)
{
    struct list_args args = {facilitator, visit, ctx};
    return thou_store_pg_read_raw(pg, list_run, &args);
}

static enum thou_status save_run(void *ctx, conn_t *c)
{
    const struct thou_workshop *w = ctx;
    char state[24], released[24], paused[24], timer[24], id[24];
    const char *values[] = {num(state, (int64_t)w->state),
                            num(released, w->released),
                            num(paused, w->paused),
                            w->has_note ? w->note : NULL,
                            w->timer_ends_ms ? num(timer, w->timer_ends_ms) : NULL,
                            num(id, w->id)};
    enum thou_status rc =
        thou_store_pg_exec(c,
                           "UPDATE workshops SET state = $1, released = $2, paused = $3,"
                           " note = $4, timer_ends_ms = $5 WHERE id = $6",
                           6, values, NULL, NULL, NULL);
    return rc ? rc : notify(c, w->id);
}

enum thou_status thou_wstore_pg_save(struct thou_store_pg *pg, const struct thou_workshop *w)
{
    return thou_store_pg_write_raw(pg, save_run, (void *)(uintptr_t)w, w->id);
}

/* ---- participants ---------------------------------------------------------- */

#define PARTICIPANT_COLUMNS "workshop_id, label, state, left_behind, room_id, role"

static void read_participant(const PGresult *res, int row, struct thou_wparticipant *p)
{
    memset(p, 0, sizeof(*p));
    p->workshop_id = int_at(res, row, 0);
    p->label = int_at(res, row, 1);
    p->state = (enum thou_wparticipant_state)int_at(res, row, 2);
    p->left_behind = int_at(res, row, 3) != 0;
    text_at(p->room_id, sizeof(p->room_id), res, row, 4);
    p->role = PQgetisnull(res, row, 5) ? '\0' : PQgetvalue(res, row, 5)[0];
}

/* One participant by a query of PARTICIPANT_COLUMNS; ENOTFOUND when none. */
static enum thou_status participant_where(conn_t *c, const char *where, int n,
                                          const char *const *values, const int *lengths,
                                          const int *binary, struct thou_wparticipant *p)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT " PARTICIPANT_COLUMNS " FROM workshop_participants WHERE %s",
             where);
    PGresult *res = thou_store_pg_sql(c, sql, n, values, lengths, binary);
    if (!res)
        return thou_store_pg_failure(c);
    enum thou_status rc = THOU_ENOTFOUND;
    if (PQntuples(res) > 0) {
        read_participant(res, 0, p);
        rc = THOU_OK;
    }
    PQclear(res);
    return rc;
}

static enum thou_status participant_by_hash(conn_t *c, const uint8_t *token_hash,
                                            struct thou_wparticipant *p)
{
    const char *values[] = {(const char *)token_hash};
    const int lengths[] = {THOU_DIGEST_BYTES};
    const int binary[] = {1};
    return participant_where(c, "token_hash = $1", 1, values, lengths, binary, p);
}

/* ---- pairing (writer, inside the caller's savepoint, workshop row locked) ---- */

struct queue_row {
    int64_t label;
    uint8_t token_hash[THOU_DIGEST_BYTES];
};

struct pair_study {
    const char *set_id;
    int set_version;
    const char *flow_json;
    const char *condition; /* NULL: no study (none, or removed since) */
};

/* The study's next block-randomised condition, counted in the pairing's
 * transaction under the study's row lock (as thou_store_study_assign). */
static enum thou_status study_draw(conn_t *c, const struct thou_workshop *w,
                                   const struct thou_wstore_pairing *pairing, struct pair_study *ps)
{
    *ps = (struct pair_study){w->set_id, w->set_version, pairing->flow_json, NULL};
    if (!w->study[0])
        return THOU_OK;
    const char *values[] = {w->study};
    PGresult *res = thou_store_pg_sql(c,
                                      "UPDATE studies SET assigned = assigned + 1 WHERE name = $1"
                                      " RETURNING encode(seed, 'hex'), assigned - 1",
                                      1, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return THOU_OK;
    }
    uint8_t seed[THOU_STUDY_SEED_BYTES] = {0};
    const char *hex = PQgetvalue(res, 0, 0);
    if (strlen(hex) != 2 * THOU_STUDY_SEED_BYTES ||
        sodium_hex2bin(seed, sizeof(seed), hex, strlen(hex), NULL, NULL, NULL) != 0)
        memset(seed, 0, sizeof(seed));
    int64_t assigned = int_at(res, 0, 1);
    PQclear(res);
    if (pairing->n_conditions) {
        const struct thou_wstore_condition *cond =
            &pairing->conditions[thou_studies_condition(seed, pairing->n_conditions, assigned)];
        *ps = (struct pair_study){cond->set_id, cond->set_version, cond->flow_json, cond->set_id};
    } else {
        ps->condition = w->set_id; /* as in link mode: the condition is the set */
    }
    sodium_memzero(seed, sizeof(seed));
    return THOU_OK;
}

/* Make the room of one pair: the room, both seats, the join event, both rows. */
static enum thou_status make_pair(conn_t *c, int64_t workshop_id, const struct thou_workshop *w,
                                  const struct queue_row *a, const struct queue_row *b,
                                  int64_t now_ms, const struct thou_wstore_pairing *pairing,
                                  struct thou_wstore_outcome *out)
{
    char room_id[THOU_ID_B64_LEN + 1];
    thou_crypto_new_id(room_id);
    int64_t pair = w->pairs + 1;
    static const uint8_t no_verifier[THOU_HASH_LEN] = {0};
    struct pair_study ps;
    enum thou_status rc = study_draw(c, w, pairing, &ps);
    if (rc)
        return rc;
    /* As in a link room, B's arrival is the room's first event: seq 1, and
     * the room's counter and size say so. */
    char data[96];
    snprintf(data, sizeof(data), "{\"type\":\"joined\",\"role\":\"B\",\"time\":%lld}",
             (long long)now_ms);
    char version[24], state[24], now[24], expires[24], wid[24], pair_text[24], bytes[24];
    const char *room_values[] = {room_id,
                                 ps.set_id,
                                 num(version, ps.set_version),
                                 num(state, THOU_ROOM_ACTIVE),
                                 (const char *)no_verifier,
                                 num(now, now_ms),
                                 num(expires, now_ms + pairing->room_ttl_ms),
                                 ps.flow_json,
                                 num(wid, workshop_id),
                                 num(pair_text, pair),
                                 ps.condition ? w->study : NULL,
                                 ps.condition,
                                 num(bytes, (int64_t)strlen(data))};
    const int room_lengths[13] = {[4] = THOU_HASH_LEN};
    const int room_binary[13] = {[4] = 1};
    rc = thou_store_pg_exec(
        c,
        "INSERT INTO rooms (id, set_id, set_version, state, join_verifier, created_ms,"
        " expires_ms, flow, mode, workshop_id, workshop_pair, study, study_condition,"
        " last_seq, bytes)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'workshop', $9, $10, $11, $12, 1, $13)",
        13, room_values, room_lengths, room_binary, NULL);
    const struct queue_row *seat[2] = {a, b};
    for (int i = 0; i < 2 && rc == THOU_OK; i++) {
        const char *values[] = {room_id, i ? "B" : "A", (const char *)seat[i]->token_hash, now};
        const int lengths[] = {0, 0, THOU_DIGEST_BYTES, 0};
        const int binary[] = {0, 0, 1, 0};
        rc = thou_store_pg_exec(c,
                                "INSERT INTO participants (room_id, role, token_hash, joined_ms)"
                                " VALUES ($1, $2, $3, $4)",
                                4, values, lengths, binary, NULL);
    }
    if (rc == THOU_OK) {
        const char *values[] = {room_id, data, now};
        rc = thou_store_pg_exec(
            c,
            "INSERT INTO events (room_id, seq, type, sender, visible_to, data, time_ms)"
            " VALUES ($1, 1, 'joined', 'B', NULL, $2, $3)",
            3, values, NULL, NULL, NULL);
    }
    for (int i = 0; i < 2 && rc == THOU_OK; i++) {
        /* state = waiting in the WHERE: a row that is not waiting is never seated. */
        char label[24], waiting[24], paired[24];
        const char *values[] = {num(paired, THOU_WP_PAIRED),
                                room_id,
                                i ? "B" : "A",
                                pair_text,
                                wid,
                                num(label, seat[i]->label),
                                num(waiting, THOU_WP_WAITING)};
        size_t changed = 0;
        rc = thou_store_pg_exec(
            c,
            "UPDATE workshop_participants SET state = $1, room_id = $2, role = $3,"
            " pair = $4 WHERE workshop_id = $5 AND label = $6 AND state = $7",
            7, values, NULL, NULL, &changed);
        if (rc == THOU_OK && changed != 1)
            rc = THOU_ECONFLICT;
    }
    if (rc == THOU_OK) {
        const char *values[] = {pair_text, wid};
        rc = thou_store_pg_exec(c, "UPDATE workshops SET pairs = $1 WHERE id = $2", 2, values, NULL,
                                NULL, NULL);
    }
    for (int i = 0; i < 2 && rc == THOU_OK; i++) {
        /* Seated: the waiter's leases have served. */
        char label[24];
        const char *values[] = {wid, num(label, seat[i]->label)};
        rc = thou_store_pg_exec(
            c, "DELETE FROM presence WHERE role = 'W' AND room_id = 'w' || $1 || '.' || $2", 2,
            values, NULL, NULL, NULL);
    }
    if (rc)
        return rc;
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

/*
 * The waiting rows with each one's presence: this instance's own streams
 * (the pairing's callback) or a lease of any instance. A lease still
 * running is a stream open somewhere; one that ran out, or was ended when
 * its stream closed, is when the participant was last seen.
 */
static enum thou_status read_queue(conn_t *c, int64_t workshop_id, int64_t now_ms,
                                   const struct thou_wstore_pairing *pairing, struct queue *q)
{
    memset(q, 0, sizeof(*q));
    char wid[24], waiting[24];
    const char *values[] = {num(wid, workshop_id), num(waiting, THOU_WP_WAITING)};
    PGresult *res = thou_store_pg_sql(
        c,
        "SELECT wp.label, encode(wp.token_hash, 'hex'), wp.queued_ms, wp.left_behind,"
        " (SELECT max(p.expires_ms) FROM presence p WHERE p.role = 'W'"
        "  AND p.room_id = 'w' || wp.workshop_id || '.' || wp.label)"
        " FROM workshop_participants wp WHERE wp.workshop_id = $1 AND wp.state = $2"
        " ORDER BY wp.queued_ms, wp.label",
        2, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    size_t n = (size_t)PQntuples(res);
    q->rows = thou_malloc((n + 1) * sizeof(*q->rows));
    q->entries = thou_malloc((n + 1) * sizeof(*q->entries));
    if (!q->rows || !q->entries) {
        PQclear(res);
        queue_release(q);
        return THOU_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct queue_row *row = &q->rows[i];
        struct thou_pairing_entry *e = &q->entries[i];
        row->label = int_at(res, (int)i, 0);
        const char *hex = PQgetvalue(res, (int)i, 1);
        if (sodium_hex2bin(row->token_hash, THOU_DIGEST_BYTES, hex, strlen(hex), NULL, NULL,
                           NULL) != 0)
            memset(row->token_hash, 0, THOU_DIGEST_BYTES);
        *e = (struct thou_pairing_entry){.label = row->label,
                                         .queued_ms = int_at(res, (int)i, 2),
                                         .left_behind = int_at(res, (int)i, 3) != 0};
        e->last_seen_ms = e->queued_ms;
        if (pairing->presence)
            pairing->presence(pairing->presence_ctx, workshop_id, e->label, e->queued_ms,
                              &e->connected, &e->last_seen_ms);
        if (!PQgetisnull(res, (int)i, 4)) {
            int64_t lease = int_at(res, (int)i, 4);
            if (lease > now_ms)
                e->connected = true;
            int64_t seen = lease < now_ms ? lease : now_ms;
            if (seen > e->last_seen_ms)
                e->last_seen_ms = seen;
        }
    }
    q->n = n;
    PQclear(res);
    return THOU_OK;
}

static enum thou_status pair_queue(conn_t *c, int64_t workshop_id, int64_t now_ms,
                                   const struct thou_wstore_pairing *pairing,
                                   struct thou_wstore_outcome *out)
{
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    if (!w)
        return THOU_ENOMEM;
    struct queue q = {0};
    struct thou_pairing_pair *pairs = NULL;
    size_t *leave = NULL;
    enum thou_status rc = get_workshop(c, workshop_id, NULL, true, w);
    if (rc == THOU_OK && w->state == THOU_WORKSHOP_ENDED)
        rc = THOU_EGONE;
    if (rc == THOU_OK)
        rc = read_queue(c, workshop_id, now_ms, pairing, &q);
    if (rc == THOU_OK) {
        pairs = thou_malloc((q.n / 2 + 1) * sizeof(*pairs));
        leave = thou_malloc((q.n + 1) * sizeof(*leave));
        if (!pairs || !leave)
            rc = THOU_ENOMEM;
    }
    size_t n_pairs = 0, n_leave = 0;
    if (rc == THOU_OK)
        thou_pairing_decide(q.entries, q.n, now_ms, pairing->timeout_ms, pairs, &n_pairs, leave,
                            &n_leave);
    for (size_t i = 0; i < n_leave && rc == THOU_OK; i++) {
        char left[24], wid[24], label[24], waiting[24];
        const char *values[] = {num(left, THOU_WP_LEFT), num(wid, workshop_id),
                                num(label, q.rows[leave[i]].label), num(waiting, THOU_WP_WAITING)};
        rc = thou_store_pg_exec(c,
                                "UPDATE workshop_participants SET state = $1"
                                " WHERE workshop_id = $2 AND label = $3 AND state = $4",
                                4, values, NULL, NULL, NULL);
    }
    if (out && rc == THOU_OK)
        out->n_left += n_leave;
    for (size_t i = 0; i < n_pairs && rc == THOU_OK; i++) {
        rc = make_pair(c, workshop_id, w, &q.rows[pairs[i].a], &q.rows[pairs[i].b], now_ms, pairing,
                       out);
        w->pairs++;
    }
    if (rc == THOU_OK && (n_pairs || n_leave))
        rc = notify(c, workshop_id);
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

static enum thou_status join_run(void *ctx, conn_t *c)
{
    struct join_args *a = ctx;
    memset(a->out, 0, sizeof(*a->out)); /* a retried job (a lost deadlock) starts over */
    struct thou_workshop w;
    /* The workshop's row lock, first: labels, capacity and the queue are
     * read and written by one instance at a time. */
    enum thou_status rc = get_workshop(c, a->workshop_id, NULL, true, &w);
    if (rc)
        return rc;
    if (w.state == THOU_WORKSHOP_ENDED)
        return THOU_EGONE;
    char wid[24], now[24], waiting[24], label[24];
    num(wid, a->workshop_id);
    num(now, a->now_ms);
    num(waiting, THOU_WP_WAITING);
    rc = participant_by_hash(c, a->token_hash, a->me);
    if (rc == THOU_OK) {
        if (a->me->workshop_id != a->workshop_id)
            return THOU_EEXIST;
        if (a->me->state != THOU_WP_LEFT)
            return THOU_OK; /* the same browser again: its place is kept */
        if (w.state != THOU_WORKSHOP_OPEN)
            return THOU_ECONFLICT;
        /* Back after the presence timeout: at the end of the queue. */
        const char *values[] = {waiting, now, wid, num(label, a->me->label)};
        rc = thou_store_pg_exec(c,
                                "UPDATE workshop_participants SET state = $1, queued_ms = $2"
                                " WHERE workshop_id = $3 AND label = $4",
                                4, values, NULL, NULL, NULL);
    } else if (rc == THOU_ENOTFOUND) {
        if (w.state != THOU_WORKSHOP_OPEN)
            return THOU_ECONFLICT;
        if (w.joined >= w.capacity)
            return THOU_EFULL;
        const char *values[] = {wid, num(label, w.joined + 1), (const char *)a->token_hash, now,
                                waiting};
        const int lengths[] = {0, 0, THOU_DIGEST_BYTES, 0, 0};
        const int binary[] = {0, 0, 1, 0, 0};
        rc = thou_store_pg_exec(
            c,
            "INSERT INTO workshop_participants (workshop_id, label, token_hash, arrived_ms,"
            " queued_ms, state) VALUES ($1, $2, $3, $4, $4, $5)",
            5, values, lengths, binary, NULL);
        if (rc == THOU_OK) {
            const char *id_values[] = {wid};
            rc = thou_store_pg_exec(c, "UPDATE workshops SET joined = joined + 1 WHERE id = $1", 1,
                                    id_values, NULL, NULL, NULL);
        }
    }
    if (rc == THOU_OK)
        rc = notify(c, a->workshop_id); /* the others' dashboards count the queue anew */
    if (rc == THOU_OK)
        rc = pair_queue(c, a->workshop_id, a->now_ms, a->pairing, a->out);
    if (rc == THOU_OK)
        rc = participant_by_hash(c, a->token_hash, a->me);
    return rc;
}

enum thou_status thou_wstore_pg_join(struct thou_store_pg *pg, int64_t workshop_id,
                                     const uint8_t token_hash[THOU_DIGEST_BYTES], int64_t now_ms,
                                     const struct thou_wstore_pairing *pairing,
                                     struct thou_wparticipant *me, struct thou_wstore_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct join_args args = {workshop_id, token_hash, now_ms, pairing, me, out};
    enum thou_status rc = thou_store_pg_write_raw(pg, join_run, &args, workshop_id);
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

static enum thou_status pair_queue_run(void *ctx, conn_t *c)
{
    struct pair_args *a = ctx;
    /* A retried job (a lost deadlock) starts over: forget what the undone try reported. */
    memset(a->out, 0, sizeof(*a->out));
    return pair_queue(c, a->workshop_id, a->now_ms, a->pairing, a->out);
}

enum thou_status thou_wstore_pg_pair_queue(struct thou_store_pg *pg, int64_t workshop_id,
                                           int64_t now_ms,
                                           const struct thou_wstore_pairing *pairing,
                                           struct thou_wstore_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct pair_args args = {workshop_id, 0, 0, now_ms, pairing, out};
    enum thou_status rc = thou_store_pg_write_raw(pg, pair_queue_run, &args, workshop_id);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

static enum thou_status by_hand_run(void *ctx, conn_t *c)
{
    struct pair_args *a = ctx;
    memset(a->out, 0, sizeof(*a->out));
    struct thou_workshop w;
    struct queue q;
    enum thou_status rc = get_workshop(c, a->workshop_id, NULL, true, &w);
    if (rc)
        return rc;
    if (w.state == THOU_WORKSHOP_ENDED)
        return THOU_EGONE;
    rc = read_queue(c, a->workshop_id, a->now_ms, a->pairing, &q);
    if (rc)
        return rc;
    struct thou_pairing_pair pair;
    switch (thou_pairing_by_hand(q.entries, q.n, a->label_a, a->label_b, &pair)) {
    case THOU_PAIRING_OK:
        rc = make_pair(c, a->workshop_id, &w, &q.rows[pair.a], &q.rows[pair.b], a->now_ms,
                       a->pairing, a->out);
        if (rc == THOU_OK)
            rc = notify(c, a->workshop_id);
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

enum thou_status thou_wstore_pg_pair_by_hand(struct thou_store_pg *pg, int64_t workshop_id,
                                             int64_t label_a, int64_t label_b, int64_t now_ms,
                                             const struct thou_wstore_pairing *pairing,
                                             struct thou_wstore_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct pair_args args = {workshop_id, label_a, label_b, now_ms, pairing, out};
    enum thou_status rc = thou_store_pg_write_raw(pg, by_hand_run, &args, workshop_id);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

struct requeue_args {
    int64_t workshop_id, label;
    const uint8_t *new_hash;
    int64_t now_ms;
};

static enum thou_status requeue_run(void *ctx, conn_t *c)
{
    struct requeue_args *a = ctx;
    struct thou_workshop w;
    enum thou_status rc = get_workshop(c, a->workshop_id, NULL, true, &w);
    if (rc)
        return rc;
    char waiting[24], now[24], wid[24], label[24], paired[24];
    const char *values[] = {num(waiting, THOU_WP_WAITING), (const char *)a->new_hash,
                            num(now, a->now_ms),           num(wid, a->workshop_id),
                            num(label, a->label),          num(paired, THOU_WP_PAIRED)};
    const int lengths[] = {0, THOU_DIGEST_BYTES, 0, 0, 0, 0};
    const int binary[] = {0, 1, 0, 0, 0, 0};
    size_t changed = 0;
    rc = thou_store_pg_exec(
        c,
        "UPDATE workshop_participants SET state = $1, token_hash = $2, queued_ms = $3,"
        " left_behind = 1, room_id = NULL, role = NULL, pair = NULL"
        " WHERE workshop_id = $4 AND label = $5 AND state = $6",
        6, values, lengths, binary, &changed);
    if (rc == THOU_OK && changed != 1)
        rc = THOU_ECONFLICT;
    return rc ? rc : notify(c, a->workshop_id);
}

enum thou_status thou_wstore_pg_requeue(struct thou_store_pg *pg, int64_t workshop_id,
                                        int64_t label, const uint8_t new_hash[THOU_DIGEST_BYTES],
                                        int64_t now_ms)
{
    struct requeue_args args = {workshop_id, label, new_hash, now_ms};
    return thou_store_pg_write_raw(pg, requeue_run, &args, workshop_id);
}

static enum thou_status clear_run(void *ctx, conn_t *c)
{
    const int64_t *workshop_id = ctx;
    struct thou_workshop w;
    enum thou_status rc = get_workshop(c, *workshop_id, NULL, true, &w);
    if (rc)
        return rc == THOU_ENOTFOUND ? THOU_OK : rc;
    char left[24], wid[24], waiting[24];
    const char *values[] = {num(left, THOU_WP_LEFT), num(wid, *workshop_id),
                            num(waiting, THOU_WP_WAITING)};
    rc = thou_store_pg_exec(
        c, "UPDATE workshop_participants SET state = $1 WHERE workshop_id = $2 AND state = $3", 3,
        values, NULL, NULL, NULL);
    if (rc == THOU_OK)
        rc = thou_store_pg_exec(
            c, "DELETE FROM presence WHERE role = 'W' AND room_id LIKE 'w' || $1 || '.%'", 1,
            values + 1, NULL, NULL, NULL);
    return rc ? rc : notify(c, *workshop_id);
}

enum thou_status thou_wstore_pg_clear_queue(struct thou_store_pg *pg, int64_t workshop_id)
{
    return thou_store_pg_write_raw(pg, clear_run, &workshop_id, workshop_id);
}

struct participant_args {
    const uint8_t *token_hash;
    const char *room_id;
    char role;
    struct thou_wparticipant *p;
};

static enum thou_status participant_run(void *ctx, conn_t *c)
{
    struct participant_args *a = ctx;
    if (a->token_hash)
        return participant_by_hash(c, a->token_hash, a->p);
    char role[2] = {a->role, '\0'};
    const char *values[] = {a->room_id, role};
    return participant_where(c, "room_id = $1 AND role = $2", 2, values, NULL, NULL, a->p);
}

enum thou_status thou_wstore_pg_participant(struct thou_store_pg *pg,
                                            const uint8_t token_hash[THOU_DIGEST_BYTES],
                                            struct thou_wparticipant *p)
{
    struct participant_args args = {token_hash, NULL, 0, p};
    return thou_store_pg_read_raw(pg, participant_run, &args);
}

static enum thou_status by_label_run(void *ctx, conn_t *c)
{
    struct thou_wparticipant *p = ctx;
    char wid[24], label[24];
    const char *values[] = {num(wid, p->workshop_id), num(label, p->label)};
    return participant_where(c, "workshop_id = $1 AND label = $2", 2, values, NULL, NULL, p);
}

enum thou_status thou_wstore_pg_participant_by_label(struct thou_store_pg *pg, int64_t workshop_id,
                                                     int64_t label, struct thou_wparticipant *p)
{
    memset(p, 0, sizeof(*p));
    p->workshop_id = workshop_id;
    p->label = label;
    return thou_store_pg_read_raw(pg, by_label_run, p);
}

enum thou_status thou_wstore_pg_participant_in_room(struct thou_store_pg *pg, const char *room_id,
                                                    char role, struct thou_wparticipant *p)
{
    struct participant_args args = {NULL, room_id, role, p};
    return thou_store_pg_read_raw(pg, participant_run, &args);
}

struct room_workshop_args {
    const char *room_id;
    int64_t workshop_id;
};

static enum thou_status room_workshop_run(void *ctx, conn_t *c)
{
    struct room_workshop_args *a = ctx;
    const char *values[] = {a->room_id};
    PGresult *res =
        thou_store_pg_sql(c, "SELECT workshop_id FROM rooms WHERE id = $1", 1, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    enum thou_status rc = THOU_ENOTFOUND;
    if (PQntuples(res) > 0) {
        a->workshop_id = PQgetisnull(res, 0, 0) ? 0 : int_at(res, 0, 0);
        rc = THOU_OK;
    }
    PQclear(res);
    return rc;
}

enum thou_status thou_wstore_pg_room_workshop(struct thou_store_pg *pg, const char *room_id,
                                              int64_t *workshop_id)
{
    struct room_workshop_args args = {room_id, 0};
    enum thou_status rc = thou_store_pg_read_raw(pg, room_workshop_run, &args);
    *workshop_id = args.workshop_id;
    return rc;
}

struct read_args {
    int64_t workshop_id;
    void (*waiting)(void *ctx, const struct thou_wwaiting *w);
    void (*room)(void *ctx, const struct thou_wroom *r);
    void *ctx;
};

static enum thou_status read_run(void *ctx, conn_t *c)
{
    struct read_args *a = ctx;
    char wid[24], waiting[24];
    const char *values[] = {num(wid, a->workshop_id), num(waiting, THOU_WP_WAITING)};
    PGresult *res = thou_store_pg_sql(c,
                                      "SELECT wp.label, wp.queued_ms, wp.left_behind,"
                                      " (SELECT max(p.expires_ms) FROM presence p"
                                      "  WHERE p.role = 'W'"
                                      "  AND p.room_id = 'w' || wp.workshop_id || '.' || wp.label)"
                                      " FROM workshop_participants wp"
                                      " WHERE wp.workshop_id = $1 AND wp.state = $2"
                                      " ORDER BY wp.label",
                                      2, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    for (int i = 0; i < PQntuples(res); i++) {
        struct thou_wwaiting w = {int_at(res, i, 0), int_at(res, i, 1), int_at(res, i, 2) != 0,
                                  int_at(res, i, 3)};
        a->waiting(a->ctx, &w);
    }
    PQclear(res);
    if (!a->room)
        return THOU_OK;
    /* The rooms' last step is the room's newest event: its seq is last_seq. */
    res = thou_store_pg_sql(c,
                            "SELECT r.workshop_pair, r.id, r.state, r.flow,"
                            " (SELECT e.time_ms FROM events e WHERE e.room_id = r.id"
                            "  AND e.seq = r.last_seq)"
                            " FROM rooms r WHERE r.workshop_id = $1 ORDER BY r.workshop_pair",
                            1, values, NULL, NULL);
    if (!res)
        return thou_store_pg_failure(c);
    for (int i = 0; i < PQntuples(res); i++) {
        struct thou_wroom r = {0};
        r.pair = int_at(res, i, 0);
        text_at(r.room_id, sizeof(r.room_id), res, i, 1);
        r.state = (enum thou_room_state)int_at(res, i, 2);
        r.flow_json = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
        r.last_step_ms = int_at(res, i, 4);
        a->room(a->ctx, &r);
    }
    PQclear(res);
    return THOU_OK;
}

enum thou_status thou_wstore_pg_read(struct thou_store_pg *pg, int64_t workshop_id,
                                     void (*waiting)(void *ctx, const struct thou_wwaiting *w),
                                     void (*room)(void *ctx, const struct thou_wroom *r), void *ctx)
{
    struct read_args args = {workshop_id, waiting, room, ctx};
    return thou_store_pg_read_raw(pg, read_run, &args);
}

/* ---- waiters' presence leases -------------------------------------------------- */

struct presence_args {
    struct thou_store_pg *pg;
    int64_t workshop_id;
    const int64_t *labels;
    size_t n;
    int64_t expires_ms;
};

static enum thou_status presence_run(void *ctx, conn_t *c)
{
    struct presence_args *a = ctx;
    /* An array literal of the labels: digits and commas only. */
    size_t cap = a->n * 21 + 3;
    char *list = thou_malloc(cap);
    if (!list)
        return THOU_ENOMEM;
    size_t len = 0;
    list[len++] = '{';
    for (size_t i = 0; i < a->n; i++)
        len += (size_t)snprintf(list + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)a->labels[i]);
    snprintf(list + len, cap - len, "}");
    char wid[24], expires[24];
    const char *values[] = {num(wid, a->workshop_id), list, thou_store_pg_instance(a->pg),
                            num(expires, a->expires_ms)};
    enum thou_status rc = thou_store_pg_exec(
        c,
        "INSERT INTO presence (room_id, role, instance, expires_ms)"
        " SELECT 'w' || $1 || '.' || l, 'W', $3, $4 FROM unnest($2::bigint[]) AS l"
        " ON CONFLICT (room_id, role, instance) DO UPDATE SET expires_ms = EXCLUDED.expires_ms",
        4, values, NULL, NULL, NULL);
    free(list);
    return rc;
}

void thou_wstore_pg_presence(struct thou_store_pg *pg, int64_t workshop_id, const int64_t *labels,
                             size_t n, bool present, int64_t now_ms)
{
    if (!n)
        return;
    struct presence_args args = {pg, workshop_id, labels, n,
                                 present ? now_ms + THOU_WSTORE_PG_LEASE_MS : now_ms};
    (void)thou_store_pg_read_raw(pg, presence_run, &args);
}

#define LEASE_KEPT_MS (2 * 3600 * 1000LL)

static enum thou_status sweep_leases_run(void *ctx, conn_t *c)
{
    const int64_t *cutoff = ctx;
    char cutoff_text[24];
    const char *values[] = {num(cutoff_text, *cutoff)};
    return thou_store_pg_exec(c, "DELETE FROM presence WHERE role = 'W' AND expires_ms < $1", 1,
                              values, NULL, NULL, NULL);
}

void thou_wstore_pg_sweep_leases(struct thou_store_pg *pg, int64_t now_ms)
{
    int64_t cutoff = now_ms - LEASE_KEPT_MS;
    (void)thou_store_pg_read_raw(pg, sweep_leases_run, &cutoff);
}
