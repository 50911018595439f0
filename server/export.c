#include "thou/export.h"
#include "thou/buf.h"
#include "thou/mem.h"
#include "thou/store.h"
#include "thou/studies.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

#define THOU_APPLICATION_ID 0x74686f75
#define PAD_BLOCK           256
#define ROOMS_PER_BATCH     1024
#define MAX_THREADS         8

/* The steps a row may be, in the order the codebook lists them. */
static const char *const step_kinds[] = {"answer", "reflect", "add", "pass", "confirm_heard"};

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* One research copy as stored, and what opening it gave. */
struct copy {
    char room[THOU_ROOM_ID_LEN + 1];
    char role;
    int state; /* 0 held, 1 released */
    char *step;
    char *sealed;
    json_t *plain; /* the opened copy; NULL when it did not open or match */
};

struct room_row {
    char id[THOU_ROOM_ID_LEN + 1];
    char set_id[THOU_SET_ID_MAX + 1];
    char condition[THOU_SET_ID_MAX + 1];
    int set_version;
    size_t first, count; /* its copies in the batch */
};

struct batch {
    struct room_row *rooms;
    size_t n_rooms;
    struct copy *copies;
    size_t n_copies, cap_copies;
};

struct opener {
    struct batch *batch;
    const uint8_t *pk, *sk;
    size_t index, stride;
    size_t tampered;
};

static bool string_is(const json_t *object, const char *key, const char *want)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value && strcmp(value, want) == 0;
}

/* The row a copy names inside itself must be the row it was stored under:
 * neither box has associated data, so the context travels inside. */
static json_t *check_row(json_t *plain, const struct copy *copy)
{
    char role[2] = {copy->role, '\0'};
    if (plain && (!json_is_object(plain) || !string_is(plain, "room", copy->room) ||
                  !string_is(plain, "sender", role) || !string_is(plain, "step", copy->step))) {
        json_decref(plain);
        plain = NULL;
    }
    return plain;
}

/* Decode base64url into a fresh buffer; NULL when it is not base64url. */
static uint8_t *decode(const char *text, size_t *n)
{
    size_t len = strlen(text);
    size_t max = len * 3 / 4 + 3;
    uint8_t *bytes = thou_xmalloc(max);
    if (sodium_base642bin(bytes, max, text, len, NULL, n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(bytes);
        return NULL;
    }
    return bytes;
}

/* Unpad and parse what a box held, wiping it. */
static json_t *parse_padded(uint8_t *padded, size_t padded_len)
{
    size_t text_len = 0;
    json_t *plain = NULL;
    if (sodium_unpad(&text_len, padded, padded_len, PAD_BLOCK) == 0)
        plain = json_loadb((const char *)padded, text_len, JSON_REJECT_DUPLICATES, NULL);
    sodium_memzero(padded, padded_len);
    return plain;
}

/* A consent copy: crypto_box_seal to the study key (docs/crypto.md §8). */
static json_t *open_sealed(const struct copy *copy, const uint8_t *pk, const uint8_t *sk)
{
    size_t n = 0;
    uint8_t *bytes = decode(copy->sealed, &n);
    json_t *plain = NULL;
    if (bytes && n >= crypto_box_SEALBYTES + PAD_BLOCK) {
        size_t padded_len = n - crypto_box_SEALBYTES;
        uint8_t *padded = thou_xmalloc(padded_len);
        if (crypto_box_seal_open(padded, bytes, n, pk, sk) == 0)
            plain = parse_padded(padded, padded_len);
        free(padded);
    }
    free(bytes);
    return check_row(plain, copy);
}

/* Every other copy: crypto_box from the partner's copy key to the study key,
 * opened with the shared key precomputed once per partner (beforenm): one
 * X25519 per participant instead of one per step. */
static json_t *open_boxed(const struct copy *copy, const uint8_t shared[crypto_box_BEFORENMBYTES])
{
    size_t n = 0;
    uint8_t *bytes = decode(copy->sealed, &n);
    json_t *plain = NULL;
    size_t head = crypto_box_NONCEBYTES + crypto_box_MACBYTES;
    if (bytes && n >= head + PAD_BLOCK) {
        size_t padded_len = n - head;
        uint8_t *padded = thou_xmalloc(padded_len);
        if (crypto_box_open_easy_afternm(padded, bytes + crypto_box_NONCEBYTES,
                                         n - crypto_box_NONCEBYTES, bytes, shared) == 0)
            plain = parse_padded(padded, padded_len);
        free(padded);
    }
    free(bytes);
    return check_row(plain, copy);
}

/* The copy key a consent copy announces, as the shared key for its partner's boxes. */
static bool shared_key(const json_t *consent, const uint8_t *sk,
                       uint8_t shared[crypto_box_BEFORENMBYTES])
{
    const char *text = json_string_value(json_object_get(consent, "copy_key"));
    uint8_t sender_pk[32];
    size_t n = 0;
    if (!text ||
        sodium_base642bin(sender_pk, sizeof(sender_pk), text, strlen(text), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(sender_pk))
        return false;
    return crypto_box_beforenm(shared, sender_pk, sk) == 0;
}

json_t *thou_export_open_copy(const char *room, char role, const char *step, const char *sealed,
                              const uint8_t pk[32], const uint8_t sk[32])
{
    struct copy copy = {
        .role = role, .step = (char *)(uintptr_t)step, .sealed = (char *)(uintptr_t)sealed};
    snprintf(copy.room, sizeof(copy.room), "%s", room);
    return open_sealed(&copy, pk, sk);
}

json_t *thou_export_open_boxed(const char *room, char role, const char *step, const char *boxed,
                               const json_t *consent, const uint8_t sk[32])
{
    struct copy copy = {
        .role = role, .step = (char *)(uintptr_t)step, .sealed = (char *)(uintptr_t)boxed};
    snprintf(copy.room, sizeof(copy.room), "%s", room);
    uint8_t shared[crypto_box_BEFORENMBYTES];
    if (!shared_key(consent, sk, shared))
        return NULL;
    json_t *plain = open_boxed(&copy, shared);
    sodium_memzero(shared, sizeof(shared));
    return plain;
}

/* Open one room's copies: each partner's consent copy first, then that
 * partner's other copies with the copy key it announced. */
static size_t open_room(const struct room_row *room, struct copy *copies, const uint8_t *pk,
                        const uint8_t *sk)
{
    size_t tampered = 0;
    uint8_t shared[2][crypto_box_BEFORENMBYTES];
    bool have[2] = {false, false};
    for (size_t i = 0; i < room->count; i++) {
        struct copy *c = &copies[i];
        if (strcmp(c->step, "consent") != 0)
            continue;
        int r = c->role == 'A' ? 0 : 1;
        c->plain = open_sealed(c, pk, sk);
        if (c->plain && !have[r])
            have[r] = shared_key(c->plain, sk, shared[r]);
        if (!c->plain)
            tampered++;
    }
    for (size_t i = 0; i < room->count; i++) {
        struct copy *c = &copies[i];
        if (strcmp(c->step, "consent") == 0)
            continue;
        int r = c->role == 'A' ? 0 : 1;
        c->plain = have[r] ? open_boxed(c, shared[r]) : NULL;
        if (!c->plain)
            tampered++;
    }
    sodium_memzero(shared, sizeof(shared));
    return tampered;
}

static void *opener_main(void *arg)
{
    struct opener *o = arg;
    for (size_t i = o->index; i < o->batch->n_rooms; i += o->stride) {
        const struct room_row *room = &o->batch->rooms[i];
        o->tampered += open_room(room, &o->batch->copies[room->first], o->pk, o->sk);
    }
    return NULL;
}

static size_t open_batch(struct batch *batch, const uint8_t *pk, const uint8_t *sk)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;
    struct opener openers[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    size_t started = 0, tampered = 0;
    for (size_t t = 0; t < threads; t++) {
        openers[t] = (struct opener){batch, pk, sk, t, threads, 0};
        if (t > 0 && pthread_create(&ids[t], NULL, opener_main, &openers[t]) == 0)
            started = t;
        else if (t > 0)
            break;
    }
    /* This thread takes share 0; a thread that could not start leaves its
     * share to a second pass below. */
    opener_main(&openers[0]);
    for (size_t t = 1; t <= started; t++)
        pthread_join(ids[t], NULL);
    for (size_t t = 0; t <= started; t++)
        tampered += openers[t].tampered;
    for (size_t t = started + 1; t < threads; t++) {
        opener_main(&openers[t]);
        tampered += openers[t].tampered;
    }
    return tampered;
}

static void batch_clear(struct batch *batch)
{
    for (size_t i = 0; i < batch->n_copies; i++) {
        free(batch->copies[i].step);
        free(batch->copies[i].sealed);
        json_decref(batch->copies[i].plain);
    }
    batch->n_copies = 0;
    batch->n_rooms = 0;
}

/* ---- output ---------------------------------------------------------------- */

static void csv_field(struct thou_buf *out, const char *text)
{
    if (!text)
        return;
    if (strpbrk(text, ",\"\r\n") == NULL) {
        thou_buf_append(out, text, strlen(text));
        return;
    }
    thou_buf_append(out, "\"", 1);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            thou_buf_append(out, "\"", 1);
        thou_buf_append(out, p, 1);
    }
    thou_buf_append(out, "\"", 1);
}

static const char *const columns[][3] = {
    {"pair_id", "string",
     "pseudonymous id of the conversation (keyed hash under the study key; the same in every "
     "export of this study, never the room id)"},
    {"participant_id", "string", "pseudonymous id of the participant, as pair_id"},
    {"role", "A|B", "A started the conversation, B joined it through the link"},
    {"condition", "string", "the condition the pair was assigned to at random (a question set id)"},
    {"set_id", "string", "the question set of the conversation"},
    {"set_version", "integer", "its version"},
    {"stage", "string", "the stage of the question set the step belongs to"},
    {"question_id", "string", "the question the step belongs to"},
    {"step", "answer|reflect|add|pass|confirm_heard",
     "answer: the participant's answer; reflect: what the listener heard; add: the speaker's "
     "addition after a reflection; pass: the participant passed the question; confirm_heard: "
     "the speaker confirmed the reflection"},
    {"text", "string", "what the participant wrote (empty for pass and confirm_heard)"},
    {"seconds", "number",
     "seconds since the conversation started, as the participant's browser measured it"},
    {"closeness_before", "integer 1-7",
     "Inclusion of Other in the Self before the first question (empty: not asked or not "
     "answered)"},
    {"closeness_after", "integer 1-7", "the same after the last question"},
};
#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

static void write_header(struct thou_buf *out, enum thou_export_format format)
{
    if (format != THOU_EXPORT_CSV)
        return;
    for (size_t i = 0; i < N_COLUMNS; i++) {
        if (i)
            thou_buf_append(out, ",", 1);
        csv_field(out, columns[i][0]);
    }
    thou_buf_append(out, "\r\n", 2);
}

static void write_codebook(struct thou_buf *out)
{
    thou_buf_printf(out, "column,type,description\r\n");
    for (size_t i = 0; i < N_COLUMNS; i++) {
        for (size_t j = 0; j < 3; j++) {
            if (j)
                thou_buf_append(out, ",", 1);
            csv_field(out, columns[i][j]);
        }
        thou_buf_append(out, "\r\n", 2);
    }
}

/* Pseudonyms: BLAKE2b-64 under a key derived from the study's secret key,
 * so they are stable across exports of one study, and nobody without that
 * key (the server included) can compute them from a room id. */
static void pseudonym(const uint8_t id_key[32], const char *prefix, const char *room, char role,
                      char out[24])
{
    uint8_t hash[8];
    crypto_generichash_state state;
    crypto_generichash_init(&state, id_key, 32, sizeof(hash));
    crypto_generichash_update(&state, (const uint8_t *)room, strlen(room) + 1);
    if (role)
        crypto_generichash_update(&state, (const uint8_t *)&role, 1);
    crypto_generichash_final(&state, hash, sizeof(hash));
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(out, 24, "%s%s", prefix, hex);
}

static bool is_step_kind(const char *kind)
{
    for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++)
        if (kind && strcmp(kind, step_kinds[i]) == 0)
            return true;
    return false;
}

static double seconds_of(const json_t *plain)
{
    const json_t *t = json_object_get(plain, "t");
    return json_is_number(t) ? json_number_value(t) : -1;
}

static int compare_rows(const void *a, const void *b)
{
    const struct copy *x = *(const struct copy *const *)a, *y = *(const struct copy *const *)b;
    double sx = seconds_of(x->plain), sy = seconds_of(y->plain);
    if (sx != sy)
        return sx < sy ? -1 : 1;
    if (x->role != y->role)
        return x->role - y->role;
    return strcmp(x->step, y->step);
}

/* The conversation's rows, when both partners' consent copies opened and
 * carry the same pair tag (which only the two browsers could compute). */
static size_t write_room(struct thou_buf *out, enum thou_export_format format,
                         const uint8_t id_key[32], const struct room_row *room, struct copy *copies)
{
    const char *tag[2] = {NULL, NULL};
    int closeness[2][2] = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < room->count; i++) {
        const struct copy *c = &copies[i];
        if (!c->plain)
            continue;
        const char *kind = json_string_value(json_object_get(c->plain, "kind"));
        int r = c->role == 'A' ? 0 : 1;
        if (kind && strcmp(kind, "consent") == 0)
            tag[r] = json_string_value(json_object_get(c->plain, "pair"));
        if (kind && strcmp(kind, "closeness") == 0 && c->state == 1) {
            json_int_t value = json_integer_value(json_object_get(c->plain, "value"));
            int when = string_is(c->plain, "when", "after") ? 1 : 0;
            if (value >= 1 && value <= 7)
                closeness[r][when] = (int)value;
        }
    }
    if (!tag[0] || !tag[1] || strcmp(tag[0], tag[1]) != 0)
        return 0;
    struct copy **rows = thou_xcalloc(room->count ? room->count : 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < room->count; i++) {
        struct copy *c = &copies[i];
        if (c->plain && c->state == 1 &&
            is_step_kind(json_string_value(json_object_get(c->plain, "kind"))))
            rows[n++] = c;
    }
    qsort(rows, n, sizeof(*rows), compare_rows);
    char pair[24], person[2][24];
    pseudonym(id_key, "p", room->id, 0, pair);
    pseudonym(id_key, "u", room->id, 'A', person[0]);
    pseudonym(id_key, "u", room->id, 'B', person[1]);
    for (size_t i = 0; i < n; i++) {
        const struct copy *c = rows[i];
        int r = c->role == 'A' ? 0 : 1;
        const json_t *p = c->plain;
        const char *text = json_string_value(json_object_get(p, "text"));
        char seconds[32], version[16], before[4] = "", after[4] = "";
        snprintf(seconds, sizeof(seconds), "%.1f", seconds_of(p) < 0 ? 0 : seconds_of(p));
        snprintf(version, sizeof(version), "%d", room->set_version);
        if (closeness[r][0])
            snprintf(before, sizeof(before), "%d", closeness[r][0]);
        if (closeness[r][1])
            snprintf(after, sizeof(after), "%d", closeness[r][1]);
        const char *values[N_COLUMNS] = {
            pair,
            person[r],
            c->role == 'A' ? "A" : "B",
            room->condition[0] ? room->condition : room->set_id,
            room->set_id,
            version,
            json_string_value(json_object_get(p, "stage")),
            json_string_value(json_object_get(p, "question")),
            json_string_value(json_object_get(p, "kind")),
            text ? text : "",
            seconds,
            before,
            after,
        };
        if (format == THOU_EXPORT_CSV) {
            for (size_t k = 0; k < N_COLUMNS; k++) {
                if (k)
                    thou_buf_append(out, ",", 1);
                csv_field(out, values[k]);
            }
            thou_buf_append(out, "\r\n", 2);
        } else {
            json_t *line = json_object();
            for (size_t k = 0; k < N_COLUMNS; k++) {
                json_t *value;
                if (k == 5)
                    value = json_integer(room->set_version);
                else if (k == 10)
                    value = json_real(seconds_of(p) < 0 ? 0 : seconds_of(p));
                else if ((k == 11 || k == 12) && !values[k][0])
                    value = json_null();
                else if (k == 11 || k == 12)
                    value = json_integer(atoi(values[k]));
                else
                    value = values[k] ? json_string(values[k]) : json_null();
                json_object_set_new(line, columns[k][0], value);
            }
            char *text_line = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
            thou_buf_printf(out, "%s\n", text_line);
            free(text_line);
            json_decref(line);
        }
    }
    free(rows);
    return n;
}

/* ---- the database ------------------------------------------------------------ */

static int open_db(const char *path, sqlite3 **db, char *errbuf, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        set_error(errbuf, errlen, "there is no database at '%s' (see --data-dir)", path);
        return EXIT_USAGE;
    }
    char *uri = sqlite3_mprintf("file:%s?mode=ro", path);
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    sqlite3_free(uri);
    if (rc != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot open database '%s': %s", path, sqlite3_errmsg(*db));
        return EXIT_RUNTIME;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_stmt *s = NULL;
    int version = -1, app_id = -1;
    if (sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(*db, "PRAGMA application_id", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        app_id = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version < 0 || app_id != THOU_APPLICATION_ID) {
        set_error(errbuf, errlen, "'%s' is not a thou database", path);
        return EXIT_USAGE;
    }
    if (version > THOU_SCHEMA_VERSION) {
        set_error(errbuf, errlen,
                  "database '%s' has schema version %d, newer than this thou understands (%d); "
                  "export with the thou that wrote it",
                  path, version, THOU_SCHEMA_VERSION);
        return EXIT_USAGE;
    }
    if (version < 5) {
        set_error(errbuf, errlen, "database '%s' (schema %d) has no studies yet", path, version);
        return EXIT_USAGE;
    }
    return 0;
}

static int find_study(sqlite3 *db, const char *name, uint8_t pk[32], char *errbuf, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = EXIT_USAGE;
    if (sqlite3_prepare_v2(db, "SELECT public_key FROM studies WHERE name = ?", -1, &s, NULL) !=
        SQLITE_OK) {
        set_error(errbuf, errlen, "cannot read the studies: %s", sqlite3_errmsg(db));
        return EXIT_RUNTIME;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
        memcpy(pk, sqlite3_column_blob(s, 0), 32);
        rc = 0;
    } else if (step == SQLITE_DONE) {
        set_error(errbuf, errlen, "there is no study named '%s' (see 'thou study list')", name);
    } else {
        set_error(errbuf, errlen, "cannot read the studies: %s", sqlite3_errmsg(db));
        rc = EXIT_RUNTIME;
    }
    sqlite3_finalize(s);
    return rc;
}

/* The rooms of the study whose server-side consent record says both agreed
 * and nobody declined or withdrew; the sealed consent copies are checked
 * again in write_room. */
static const char *const rooms_sql =
    "SELECT r.id, r.set_id, r.set_version, coalesce(r.study_condition, '') FROM rooms r"
    " WHERE r.study = ?1 AND r.id > ?2"
    " AND (SELECT count(DISTINCT sender) FROM events e WHERE e.room_id = r.id"
    "      AND e.type = 'consent') = 2"
    " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.room_id = r.id"
    "      AND e.type IN ('decline', 'withdraw'))"
    " ORDER BY r.id LIMIT ?3";
static const char *const copies_sql = "SELECT role, state, step, sealed FROM research_copies"
                                      " WHERE room_id = ? AND sealed IS NOT NULL"
                                      " AND state IN (0, 1) ORDER BY id";

static int count_rooms(sqlite3 *db, const char *study, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM rooms WHERE study = ?", -1, &s, NULL) !=
        SQLITE_OK)
        return EXIT_RUNTIME;
    sqlite3_bind_text(s, 1, study, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return 0;
}

static void progress(FILE *out, size_t done, size_t total)
{
    if (!out || total == 0)
        return;
    size_t width = 30, filled = done * width / total;
    char bar[31];
    for (size_t i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(out, "\rexport [%s] %zu/%zu conversations", bar, done, total);
    if (done == total)
        fputc('\n', out);
    fflush(out);
}

static int load_batch(sqlite3 *db, sqlite3_stmt *rooms, sqlite3_stmt *copies, const char *study,
                      const char *after, struct batch *batch)
{
    sqlite3_reset(rooms);
    sqlite3_bind_text(rooms, 1, study, -1, SQLITE_STATIC);
    sqlite3_bind_text(rooms, 2, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(rooms, 3, ROOMS_PER_BATCH);
    int step;
    while ((step = sqlite3_step(rooms)) == SQLITE_ROW) {
        struct room_row *room = &batch->rooms[batch->n_rooms++];
        snprintf(room->id, sizeof(room->id), "%s", (const char *)sqlite3_column_text(rooms, 0));
        snprintf(room->set_id, sizeof(room->set_id), "%s",
                 (const char *)sqlite3_column_text(rooms, 1));
        room->set_version = sqlite3_column_int(rooms, 2);
        snprintf(room->condition, sizeof(room->condition), "%s",
                 (const char *)sqlite3_column_text(rooms, 3));
        room->first = batch->n_copies;
        sqlite3_reset(copies);
        sqlite3_bind_text(copies, 1, room->id, -1, SQLITE_STATIC);
        while (sqlite3_step(copies) == SQLITE_ROW) {
            if (batch->n_copies == batch->cap_copies) {
                batch->cap_copies = batch->cap_copies ? 2 * batch->cap_copies : 4096;
                batch->copies =
                    thou_xrealloc(batch->copies, batch->cap_copies * sizeof(*batch->copies));
            }
            struct copy *c = &batch->copies[batch->n_copies++];
            memset(c, 0, sizeof(*c));
            snprintf(c->room, sizeof(c->room), "%s", room->id);
            c->role = (char)sqlite3_column_text(copies, 0)[0];
            c->state = sqlite3_column_int(copies, 1);
            c->step = thou_xstrdup((const char *)sqlite3_column_text(copies, 2));
            c->sealed = thou_xstrdup((const char *)sqlite3_column_text(copies, 3));
        }
        room->count = batch->n_copies - room->first;
    }
    (void)db;
    return step == SQLITE_DONE ? 0 : EXIT_RUNTIME;
}

/* Create path for writing: refused when it exists, unless force. */
static FILE *create_output(const char *path, bool force, char *errbuf, size_t errlen, int *code)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        *code = errno == EEXIST ? EXIT_USAGE : EXIT_RUNTIME;
        set_error(errbuf, errlen, "cannot create '%s': %s%s", path, strerror(errno),
                  errno == EEXIST ? " (use --force to replace it)" : "");
        return NULL;
    }
    return fdopen(fd, "w");
}

int thou_export_run(const struct thou_export_options *o, struct thou_export_result *result,
                    char *errbuf, size_t errlen)
{
    memset(result, 0, sizeof(*result));
    int code = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *rooms = NULL, *copies = NULL;
    FILE *out = NULL, *codebook = NULL;
    struct batch batch = {0};
    struct thou_buf buf;
    thou_buf_init(&buf);
    uint8_t sk[32], pk[32], study_pk[32], id_key[32];

    code = open_db(o->db_path, &db, errbuf, errlen);
    if (code)
        goto out;
    code = find_study(db, o->study, study_pk, errbuf, errlen);
    if (code)
        goto out;
    char key_err[512];
    enum thou_status key_rc = thou_studies_key_read(o->key_path, sk, pk, key_err, sizeof(key_err));
    if (key_rc) {
        set_error(errbuf, errlen, "%s", key_err);
        code = EXIT_USAGE;
        goto out;
    }
    if (sodium_memcmp(pk, study_pk, 32) != 0) {
        char have[THOU_STUDY_FINGERPRINT_LEN + 1], want[THOU_STUDY_FINGERPRINT_LEN + 1];
        thou_studies_fingerprint(pk, have);
        thou_studies_fingerprint(study_pk, want);
        set_error(errbuf, errlen,
                  "key file '%s' is not the key of study '%s' (its fingerprint is %s; the "
                  "study's is %s)",
                  o->key_path, o->study, have, want);
        code = EXIT_USAGE;
        goto out;
    }
    static const char id_context[] = "thou export ids v1";
    crypto_generichash(id_key, sizeof(id_key), (const uint8_t *)id_context, sizeof(id_context) - 1,
                       sk, sizeof(sk));

    /* Both files are checked before either is written. */
    if (!o->force && (access(o->out_path, F_OK) == 0 || access(o->codebook_path, F_OK) == 0)) {
        set_error(errbuf, errlen, "'%s' exists; use --force to replace it",
                  access(o->out_path, F_OK) == 0 ? o->out_path : o->codebook_path);
        code = EXIT_USAGE;
        goto out;
    }
    if (sqlite3_prepare_v2(db, rooms_sql, -1, &rooms, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, copies_sql, -1, &copies, NULL) != SQLITE_OK) {
        set_error(errbuf, errlen, "cannot read the research copies: %s", sqlite3_errmsg(db));
        code = EXIT_RUNTIME;
        goto out;
    }
    size_t total = 0;
    count_rooms(db, o->study, &total);
    out = create_output(o->out_path, o->force, errbuf, errlen, &code);
    if (!out)
        goto out;
    codebook = create_output(o->codebook_path, o->force, errbuf, errlen, &code);
    if (!codebook)
        goto out;
    write_codebook(&buf);
    fwrite(buf.data, 1, buf.len, codebook);
    thou_buf_reset(&buf);
    write_header(&buf, o->format);

    /* One read transaction: the export is a consistent snapshot even while
     * the server writes. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    batch.rooms = thou_xcalloc(ROOMS_PER_BATCH, sizeof(*batch.rooms));
    char after[THOU_ROOM_ID_LEN + 1] = "";
    size_t done = 0;
    progress(o->progress, 0, total);
    for (;;) {
        batch_clear(&batch);
        if (load_batch(db, rooms, copies, o->study, after, &batch)) {
            set_error(errbuf, errlen, "cannot read the research copies: %s", sqlite3_errmsg(db));
            code = EXIT_RUNTIME;
            goto out;
        }
        if (batch.n_rooms == 0)
            break;
        result->tampered += open_batch(&batch, pk, sk);
        for (size_t i = 0; i < batch.n_rooms; i++) {
            size_t rows = write_room(&buf, o->format, id_key, &batch.rooms[i],
                                     &batch.copies[batch.rooms[i].first]);
            result->rows += rows;
            result->conversations += rows > 0;
        }
        fwrite(buf.data, 1, buf.len, out);
        thou_buf_reset(&buf);
        snprintf(after, sizeof(after), "%s", batch.rooms[batch.n_rooms - 1].id);
        done += batch.n_rooms;
        progress(o->progress, done < total ? done : total, total);
        if (batch.n_rooms < ROOMS_PER_BATCH)
            break;
    }
    if (done < total)
        progress(o->progress, total, total);
    fwrite(buf.data, 1, buf.len, out);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0 || fflush(codebook) != 0) {
        set_error(errbuf, errlen, "cannot write '%s': %s", o->out_path, strerror(errno));
        code = EXIT_RUNTIME;
    }
out:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(id_key, sizeof(id_key));
    batch_clear(&batch);
    free(batch.rooms);
    free(batch.copies);
    thou_buf_release(&buf);
    if (out)
        fclose(out);
    if (codebook)
        fclose(codebook);
    sqlite3_finalize(rooms);
    sqlite3_finalize(copies);
    if (db) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    return code;
}
