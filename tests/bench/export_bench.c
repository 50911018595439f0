/*
 * Export benchmark (tests/bench/README.md, "Research export"): fill a fresh
 * store with N conversations of a study in which both partners consented and
 * released every step, each copy sealed to the study key as the browser
 * seals it, then time `thou export` over them.
 *
 *   export_bench THOU_BIN [--conversations N] [--questions Q] [--keep DIR]
 *
 * A conversation is Q questions (default 7, the short couples set), each
 * answered, reflected and confirmed by both partners (3 steps each), plus
 * each partner's consent copy and closeness before and after: 6·Q + 6
 * copies, made as the browser makes them (the consent copy sealed, the rest
 * boxed from the partner's copy key). Generating runs in two threads; only
 * the export is timed.
 */
#include "thou/store.h"
#include "thou/studies.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct row {
    char room[THOU_ROOM_ID_LEN + 1];
    char role;
    char step[24];
    char *sealed;
    uint8_t copy_pk[32], copy_sk[32]; /* the partner's copy key (the same for its rows) */
};

struct gen {
    struct row *rows;
    size_t from, to;
    const uint8_t *pk;
    int questions;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *seal(const uint8_t pk[32], const uint8_t *copy_sk, const char *plaintext)
{
    size_t len = strlen(plaintext), padded_len = 0;
    uint8_t *padded = malloc(len + 256);
    memcpy(padded, plaintext, len);
    sodium_pad(&padded_len, padded, len, 256, len + 256);
    size_t sealed_len =
        padded_len + (copy_sk ? crypto_box_NONCEBYTES + crypto_box_MACBYTES : crypto_box_SEALBYTES);
    uint8_t *sealed = malloc(sealed_len);
    if (copy_sk) {
        randombytes_buf(sealed, crypto_box_NONCEBYTES);
        if (crypto_box_easy(sealed + crypto_box_NONCEBYTES, padded, padded_len, sealed, pk,
                            copy_sk) != 0)
            abort();
    } else {
        crypto_box_seal(sealed, padded, padded_len, pk);
    }
    size_t b64_len =
        sodium_base64_ENCODED_LEN(sealed_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *b64 = malloc(b64_len);
    sodium_bin2base64(b64, b64_len, sealed, sealed_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(padded);
    free(sealed);
    return b64;
}

/* The plaintext of one row, as static/js/research.js writes it. */
static char *plaintext_of(const struct row *r, int index, int questions)
{
    json_t *p = json_pack("{s:i,s:s,s:s,s:s}", "v", 1, "room", r->room, "sender",
                          r->role == 'A' ? "A" : "B", "step", r->step);
    if (strcmp(r->step, "consent") == 0) {
        json_object_set_new(p, "kind", json_string("consent"));
        json_object_set_new(p, "pair", json_string(r->room)); /* the same for both partners */
        char key[64];
        sodium_bin2base64(key, sizeof(key), r->copy_pk, 32,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        json_object_set_new(p, "copy_key", json_string(key));
    } else if (strncmp(r->step, "closeness-", 10) == 0) {
        json_object_set_new(p, "kind", json_string("closeness"));
        json_object_set_new(p, "when", json_string(r->step + 10));
        json_object_set_new(p, "value", json_integer(1 + index % 7));
    } else {
        static const char *const kinds[] = {"answer", "reflect", "confirm_heard"};
        int q = index / 3 % questions;
        char question[16];
        snprintf(question, sizeof(question), "q%d", q + 1);
        json_object_set_new(p, "kind", json_string(kinds[index % 3]));
        json_object_set_new(p, "question", json_string(question));
        json_object_set_new(p, "stage", json_string("stage"));
        json_object_set_new(p, "t", json_real(30.0 * index));
        json_object_set_new(
            p, "text",
            json_string(index % 3 == 2 ? ""
                                       : "A typical answer of a sentence or two, about the size "
                                         "people write when they take a question seriously."));
    }
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return text;
}

static void *generate(void *arg)
{
    struct gen *g = arg;
    for (size_t i = g->from; i < g->to; i++) {
        char *text = plaintext_of(&g->rows[i], (int)(i % 97), g->questions);
        bool consent = strcmp(g->rows[i].step, "consent") == 0;
        g->rows[i].sealed = seal(g->pk, consent ? NULL : g->rows[i].copy_sk, text);
        free(text);
    }
    return NULL;
}

static int run_export(const char *bin, const char *dir, const char *key, const char *out)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "export", "--study", "bench", "--key", key, "--data-dir", dir, "--out", out,
              "--force", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(int argc, char **argv)
{
    if (argc < 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: export_bench THOU_BIN [--conversations N] [--questions Q] "
                        "[--keep DIR]\n");
        return 2;
    }
    const char *bin = argv[1];
    long conversations = 10000;
    int questions = 7;
    const char *keep = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--conversations") == 0)
            conversations = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--questions") == 0)
            questions = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = argv[i + 1];
    }
    char dir[256] = "/tmp/thou-export-bench-XXXXXX";
    if (keep)
        snprintf(dir, sizeof(dir), "%s", keep);
    else if (!mkdtemp(dir))
        return 1;
    char data[300], key[300], out[300], err[512];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(key, sizeof(key), "%s/study.key", dir);
    snprintf(out, sizeof(out), "%s/out.csv", dir);
    unlink(key);

    /* The schema, as thou makes it; then the rows straight into SQLite. */
    struct thou_store *store = NULL;
    uint8_t pk[32], seed[32];
    if (thou_store_open(data, &store, err, sizeof(err)) ||
        thou_studies_keygen(key, pk, err, sizeof(err))) {
        fprintf(stderr, "export_bench: %s\n", err);
        return 1;
    }
    struct thou_study_record study = {.name = "bench", .closeness = true};
    memcpy(study.public_key, pk, 32);
    randombytes_buf(seed, sizeof(seed));
    thou_store_study_add(store, &study, seed);
    thou_store_close(store);

    size_t per_room = (size_t)(6 * questions + 6);
    size_t n_rows = (size_t)conversations * per_room;
    struct row *rows = calloc(n_rows, sizeof(*rows));
    for (long c = 0; c < conversations; c++) {
        char room[THOU_ROOM_ID_LEN + 1];
        snprintf(room, sizeof(room), "bench%017ld", c % 100000000000000000L);
        uint8_t copy_pk[2][32], copy_sk[2][32];
        crypto_box_keypair(copy_pk[0], copy_sk[0]);
        crypto_box_keypair(copy_pk[1], copy_sk[1]);
        for (size_t k = 0; k < per_room; k++) {
            struct row *r = &rows[(size_t)c * per_room + k];
            snprintf(r->room, sizeof(r->room), "%s", room);
            r->role = k % 2 ? 'B' : 'A';
            memcpy(r->copy_pk, copy_pk[k % 2], 32);
            memcpy(r->copy_sk, copy_sk[k % 2], 32);
            size_t j = k / 2;
            if (j == 0)
                snprintf(r->step, sizeof(r->step), "consent");
            else if (j == 1)
                snprintf(r->step, sizeof(r->step), "closeness-before");
            else if (j == 2)
                snprintf(r->step, sizeof(r->step), "closeness-after");
            else
                snprintf(r->step, sizeof(r->step), "c%zu", j);
        }
    }
    double t0 = now_s();
    struct gen gens[2] = {{rows, 0, n_rows / 2, pk, questions},
                          {rows, n_rows / 2, n_rows, pk, questions}};
    pthread_t thread;
    pthread_create(&thread, NULL, generate, &gens[1]);
    generate(&gens[0]);
    pthread_join(thread, NULL);

    char db_path[320];
    snprintf(db_path, sizeof(db_path), "%s/thou.db", data);
    sqlite3 *db = NULL;
    sqlite3_open(db_path, &db);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *room_s, *part_s, *event_s, *copy_s;
    sqlite3_prepare_v2(db,
                       "INSERT INTO rooms (id, set_id, set_version, state, join_verifier,"
                       " created_ms, expires_ms, study, study_condition)"
                       " VALUES (?1, 'couples-short', 1, 2, zeroblob(32), 0, 9e15, 'bench',"
                       " 'couples-short')",
                       -1, &room_s, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO participants (room_id, role, token_hash, joined_ms)"
                       " VALUES (?1, ?2, randomblob(32), 0)",
                       -1, &part_s, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO events (room_id, seq, type, sender, data, time_ms)"
                       " VALUES (?1, ?2, 'consent', ?3, '{}', 0)",
                       -1, &event_s, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO research_copies (room_id, role, step, sealed, state, hour)"
                       " VALUES (?1, ?2, ?3, ?4, 1, 0)",
                       -1, &copy_s, NULL);
    for (long c = 0; c < conversations; c++) {
        const char *room = rows[(size_t)c * per_room].room;
        sqlite3_bind_text(room_s, 1, room, -1, SQLITE_STATIC);
        sqlite3_step(room_s);
        sqlite3_reset(room_s);
        for (int r = 0; r < 2; r++) {
            const char *role = r ? "B" : "A";
            sqlite3_bind_text(part_s, 1, room, -1, SQLITE_STATIC);
            sqlite3_bind_text(part_s, 2, role, -1, SQLITE_STATIC);
            sqlite3_step(part_s);
            sqlite3_reset(part_s);
            sqlite3_bind_text(event_s, 1, room, -1, SQLITE_STATIC);
            sqlite3_bind_int(event_s, 2, r + 1);
            sqlite3_bind_text(event_s, 3, role, -1, SQLITE_STATIC);
            sqlite3_step(event_s);
            sqlite3_reset(event_s);
        }
    }
    for (size_t i = 0; i < n_rows; i++) {
        sqlite3_bind_text(copy_s, 1, rows[i].room, -1, SQLITE_STATIC);
        sqlite3_bind_text(copy_s, 2, rows[i].role == 'A' ? "A" : "B", -1, SQLITE_STATIC);
        sqlite3_bind_text(copy_s, 3, rows[i].step, -1, SQLITE_STATIC);
        sqlite3_bind_text(copy_s, 4, rows[i].sealed, -1, SQLITE_STATIC);
        if (sqlite3_step(copy_s) != SQLITE_DONE) {
            fprintf(stderr, "export_bench: insert: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(copy_s);
        free(rows[i].sealed);
    }
    sqlite3_finalize(room_s);
    sqlite3_finalize(part_s);
    sqlite3_finalize(event_s);
    sqlite3_finalize(copy_s);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    free(rows);
    fprintf(stderr, "export_bench: %ld conversations, %zu sealed copies generated in %.1f s\n",
            conversations, n_rows, now_s() - t0);

    double t1 = now_s();
    int rc = run_export(bin, data, key, out);
    double elapsed = now_s() - t1;
    printf("export of %ld conversations (%zu sealed copies): %.2f s, exit %d\n", conversations,
           n_rows, elapsed, rc);
    return rc;
}
