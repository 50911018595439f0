/*
 * Research studies over the real binary (docs/research.md): the study
 * commands, a study attached to link-mode rooms with balanced conditions,
 * research copies kept only while both partners consent, release after
 * review, withdrawal, and `thou export` with its refusals. The copies are
 * sealed here exactly as the browser seals them (docs/crypto.md §8).
 */
#include "harness.h"

#include <check.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct thou_proc server;
static unsigned port;
static char key_path[400], pk_b64[64], fingerprint[64];
static unsigned char study_pk[32];

static const char *const extra[] = {
    "--room-creations-per-min", "1000", "--events-per-s", "1000", "--events-burst", "1000", NULL};

/* Run thou with the server's data directory; returns the exit code. */
static int thou(char *out, size_t outlen, const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    for (; args[n]; n++)
        argv[n] = args[n];
    argv[n] = NULL;
    return proc_run(argv, out, outlen);
}

static void expected_fingerprint(const unsigned char pk[32], char out[40])
{
    unsigned char hash[16];
    crypto_generichash(hash, sizeof(hash), pk, 32, NULL, 0);
    char hex[33];
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    size_t o = 0;
    for (size_t i = 0; i < 32; i++) {
        if (i && i % 4 == 0)
            out[o++] = ' ';
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/* A study key made by `thou study keygen`, and a study "s1" with two conditions. */
static void setup(void)
{
    proc_start(&server, extra);
    port = server.port;
    snprintf(key_path, sizeof(key_path), "%s/study.key", server.dir);
    char out[2048];
    ck_assert_int_eq(
        thou(out, sizeof(out), (const char *const[]){"study", "keygen", "--out", key_path, NULL}),
        0);
    const char *line = strstr(out, "public key:");
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(sscanf(line, "public key: %63s", pk_b64), 1);
    size_t n = 0;
    ck_assert_int_eq(sodium_base642bin(study_pk, 32, pk_b64, strlen(pk_b64), NULL, &n, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    ck_assert_uint_eq(n, 32);
    expected_fingerprint(study_pk, fingerprint);
    ck_assert_msg(strstr(out, fingerprint), "keygen printed no fingerprint %s: %s", fingerprint,
                  out);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"study", "add", "s1", "--public-key", pk_b64, "--conditions",
                                   "couples-short,couples-full", "--closeness", "--data-dir",
                                   server.data_dir, "--questions-dir",
                                   THOU_SOURCE_DIR "/config/questions", NULL}),
        0);
}

static void teardown(void)
{
    proc_cleanup(&server);
}

/* ---- rooms of a study -------------------------------------------------------- */

struct pair {
    char room[64], token_a[128], token_b[128], set[64];
    json_t *study;
    unsigned char copy_pk[2][32], copy_sk[2][32]; /* each partner's copy key */
};

static void pair_free(struct pair *p)
{
    json_decref(p->study);
}

static long create_in_study(const char *study, struct pair *p)
{
    memset(p, 0, sizeof(*p));
    for (int r = 0; r < 2; r++)
        crypto_box_keypair(p->copy_pk[r], p->copy_sk[r]);
    unsigned char secret[32], verifier[32];
    randombytes_buf(secret, sizeof(secret));
    crypto_generichash(verifier, sizeof(verifier), secret, sizeof(secret), NULL, 0);
    char secret_b64[64], verifier_b64[64], body[512], path[160];
    b64url32(secret, secret_b64, sizeof(secret_b64));
    b64url32(verifier, verifier_b64, sizeof(verifier_b64));
    snprintf(body, sizeof(body), "{\"study\":\"%s\",\"join_verifier\":\"%s\"}", study,
             verifier_b64);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", "/api/rooms", NULL, body, &reply));
    long status = reply.status;
    if (status == 201) {
        snprintf(p->room, sizeof(p->room), "%s",
                 json_string_value(json_object_get(reply.json, "room")));
        snprintf(p->token_a, sizeof(p->token_a), "%s",
                 json_string_value(json_object_get(reply.json, "token")));
        p->study = json_incref(json_object_get(reply.json, "study"));
    }
    http_reply_free(&reply);
    if (status != 201)
        return status;
    snprintf(body, sizeof(body), "{\"join_secret\":\"%s\"}", secret_b64);
    snprintf(path, sizeof(path), "/api/rooms/%s/join", p->room);
    ck_assert(http_json(port, "POST", path, NULL, body, &reply));
    ck_assert_int_eq(reply.status, 200);
    snprintf(p->token_b, sizeof(p->token_b), "%s",
             json_string_value(json_object_get(reply.json, "token")));
    http_reply_free(&reply);
    snprintf(path, sizeof(path), "/api/rooms/%s", p->room);
    ck_assert(http_json(port, "GET", path, p->token_b, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    snprintf(p->set, sizeof(p->set), "%s",
             json_string_value(json_object_get(json_object_get(reply.json, "set"), "id")));
    /* The partner learns the same study from the room. */
    ck_assert(json_equal(json_object_get(reply.json, "study"), p->study));
    http_reply_free(&reply);
    return status;
}

static long post_event(const struct pair *p, const char *token, const char *type, int counter);

START_TEST(test_study_commands)
{
    char out[2048];
    /* keygen: 0600, never overwrites. */
    struct stat st;
    ck_assert_int_eq(stat(key_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    char *before = read_file(key_path, NULL);
    ck_assert_int_eq(
        thou(out, sizeof(out), (const char *const[]){"study", "keygen", "--out", key_path, NULL}),
        2);
    ck_assert_msg(strstr(out, "never overwritten"), "%s", out);
    char *after = read_file(key_path, NULL);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    /* list shows the study with its fingerprint and conditions. */
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"study", "list", "--data-dir", server.data_dir, NULL}),
        0);
    ck_assert_msg(strstr(out, "s1\t") && strstr(out, fingerprint) &&
                      strstr(out, "couples-short,couples-full"),
                  "%s", out);
    /* Bad input: a taken name, a bad key, an unknown set, an unknown study. */
    const char *dir = server.data_dir;
    ck_assert_int_eq(thou(out, sizeof(out),
                          (const char *const[]){"study", "add", "s1", "--public-key", pk_b64,
                                                "--data-dir", dir, NULL}),
                     2);
    ck_assert_msg(strstr(out, "already"), "%s", out);
    ck_assert_int_eq(thou(out, sizeof(out),
                          (const char *const[]){"study", "add", "s2", "--public-key", "abc",
                                                "--data-dir", dir, NULL}),
                     2);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"study", "add", "s2", "--public-key", pk_b64, "--conditions",
                                   "no-such-set", "--data-dir", dir, "--questions-dir",
                                   THOU_SOURCE_DIR "/config/questions", NULL}),
        2);
    ck_assert_msg(strstr(out, "no-such-set"), "%s", out);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"study", "remove", "nope", "--data-dir", dir, NULL}),
        2);
    /* add then remove. */
    ck_assert_int_eq(thou(out, sizeof(out),
                          (const char *const[]){"study", "add", "s2", "--public-key", pk_b64,
                                                "--data-dir", dir, NULL}),
                     0);
    ck_assert_int_eq(thou(out, sizeof(out),
                          (const char *const[]){"study", "remove", "s2", "--data-dir", dir, NULL}),
                     0);
    ck_assert_int_eq(
        thou(out, sizeof(out), (const char *const[]){"study", "list", "--data-dir", dir, NULL}), 0);
    ck_assert_ptr_null(strstr(out, "s2\t"));
}
END_TEST

START_TEST(test_conditions_balanced)
{
    int short_sets = 0, full_sets = 0;
    for (int i = 0; i < 40; i++) {
        struct pair p;
        ck_assert_int_eq(create_in_study("s1", &p), 201);
        ck_assert_str_eq(json_string_value(json_object_get(p.study, "name")), "s1");
        ck_assert_str_eq(json_string_value(json_object_get(p.study, "public_key")), pk_b64);
        ck_assert_str_eq(json_string_value(json_object_get(p.study, "fingerprint")), fingerprint);
        ck_assert(json_is_true(json_object_get(p.study, "closeness")));
        if (strcmp(p.set, "couples-short") == 0)
            short_sets++;
        else if (strcmp(p.set, "couples-full") == 0)
            full_sets++;
        /* Balanced in every block of two, not only at the end. */
        if (i % 2 == 1)
            ck_assert_int_eq(short_sets, full_sets);
        pair_free(&p);
    }
    ck_assert_int_eq(short_sets, 20);
    ck_assert_int_eq(full_sets, 20);
    struct pair p;
    ck_assert_int_eq(create_in_study("no-such-study", &p), 404);
    /* A conversation without a study takes no consent and no copies. */
    struct test_pair plain;
    ck_assert_int_eq(test_pair_create(port, &plain), 201);
    struct pair q = {0};
    snprintf(q.room, sizeof(q.room), "%s", plain.room);
    snprintf(q.token_a, sizeof(q.token_a), "%s", plain.token_a);
    ck_assert_int_eq(post_event(&q, q.token_a, "consent", 1), 409);
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s", plain.room);
    struct http_reply reply;
    ck_assert(http_json(port, "GET", path, plain.token_a, NULL, &reply));
    ck_assert_ptr_null(json_object_get(reply.json, "study"));
    http_reply_free(&reply);
}
END_TEST

/* ---- research copies ------------------------------------------------------------ */

static long post_event(const struct pair *p, const char *token, const char *type, int counter)
{
    char ciphertext[800], body[1000], path[160];
    random_b64(120, ciphertext, sizeof(ciphertext));
    snprintf(body, sizeof(body), "{\"type\":\"%s\",\"ciphertext\":\"%s\",\"counter\":%d}", type,
             ciphertext, counter);
    snprintf(path, sizeof(path), "/api/rooms/%s/events", p->room);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", path, token, body, &reply));
    long status = reply.status;
    http_reply_free(&reply);
    return status;
}

static char *b64(const unsigned char *bytes, size_t len)
{
    size_t b64_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(b64_len);
    sodium_bin2base64(out, b64_len, bytes, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* Box a copy from a partner's copy key, as static/js/research.js does. */
static char *box(const char *plaintext, const unsigned char copy_sk[32])
{
    size_t len = strlen(plaintext), padded_len = 0;
    unsigned char *padded = malloc(len + 256);
    memcpy(padded, plaintext, len);
    ck_assert_int_eq(sodium_pad(&padded_len, padded, len, 256, len + 256), 0);
    size_t n = crypto_box_NONCEBYTES + crypto_box_MACBYTES + padded_len;
    unsigned char *boxed = malloc(n);
    randombytes_buf(boxed, crypto_box_NONCEBYTES);
    ck_assert_int_eq(crypto_box_easy(boxed + crypto_box_NONCEBYTES, padded, padded_len, boxed,
                                     study_pk, copy_sk),
                     0);
    char *out = b64(boxed, n);
    free(padded);
    free(boxed);
    return out;
}

/* Seal a consent copy as static/js/research.js does. */
static char *seal(const char *plaintext)
{
    size_t len = strlen(plaintext), padded_len = 0;
    size_t cap = len + 256;
    unsigned char *padded = malloc(cap);
    memcpy(padded, plaintext, len);
    ck_assert_int_eq(sodium_pad(&padded_len, padded, len, 256, cap), 0);
    unsigned char *sealed = malloc(padded_len + crypto_box_SEALBYTES);
    crypto_box_seal(sealed, padded, padded_len, study_pk);
    char *out = b64(sealed, padded_len + crypto_box_SEALBYTES);
    free(padded);
    free(sealed);
    return out;
}

static long post_copy(const struct pair *p, const char *token, const char *step,
                      const char *plaintext)
{
    int r = token == p->token_a ? 0 : 1;
    char *sealed = strcmp(step, "consent") == 0 ? seal(plaintext) : box(plaintext, p->copy_sk[r]);
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s/research", p->room);
    json_t *body = json_pack("{s:s,s:s}", "step", step, "sealed", sealed);
    char *text = json_dumps(body, JSON_COMPACT);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", path, token, text, &reply));
    long status = reply.status;
    http_reply_free(&reply);
    free(text);
    json_decref(body);
    free(sealed);
    return status;
}

static long post_step(const struct pair *p, char role, const char *step, const char *kind,
                      const char *question, double t, const char *text)
{
    json_t *plain = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:s}", "v", 1, "room", p->room,
                              "sender", role == 'A' ? "A" : "B", "step", step, "kind", kind,
                              "stage", "common-ground", "question", question, "t", t, "text", text);
    char *s = json_dumps(plain, JSON_COMPACT);
    long status = post_copy(p, role == 'A' ? p->token_a : p->token_b, step, s);
    free(s);
    json_decref(plain);
    return status;
}

static long post_consent_copy(const struct pair *p, char role, const char *tag)
{
    char *copy_key = b64(p->copy_pk[role == 'A' ? 0 : 1], 32);
    json_t *plain =
        json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "v", 1, "room", p->room, "sender",
                  role == 'A' ? "A" : "B", "step", "consent", "kind", "consent", "study", "s1",
                  "fingerprint", fingerprint, "pair", tag, "copy_key", copy_key);
    free(copy_key);
    char *s = json_dumps(plain, JSON_COMPACT);
    long status = post_copy(p, role == 'A' ? p->token_a : p->token_b, "consent", s);
    free(s);
    json_decref(plain);
    return status;
}

static long post_closeness(const struct pair *p, char role, const char *when, int value)
{
    char step[32];
    snprintf(step, sizeof(step), "closeness-%s", when);
    json_t *plain = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:i}", "v", 1, "room", p->room, "sender",
                              role == 'A' ? "A" : "B", "step", step, "kind", "closeness", "when",
                              when, "value", value);
    char *s = json_dumps(plain, JSON_COMPACT);
    long status = post_copy(p, role == 'A' ? p->token_a : p->token_b, step, s);
    free(s);
    json_decref(plain);
    return status;
}

static long release(const struct pair *p, const char *token, const char *leave_out_json)
{
    char path[160], body[256];
    snprintf(path, sizeof(path), "/api/rooms/%s/research/release", p->room);
    snprintf(body, sizeof(body), "{\"leave_out\":%s}", leave_out_json);
    struct http_reply reply;
    ck_assert(http_json(port, "POST", path, token, body, &reply));
    long status = reply.status;
    http_reply_free(&reply);
    return status;
}

static int export_csv(const char *out_path, const char *const *more, char *out, size_t outlen)
{
    const char *argv[32] = {"export",     "--study",       "s1",    "--key", key_path,
                            "--data-dir", server.data_dir, "--out", out_path};
    size_t n = 9;
    for (size_t i = 0; more && more[i]; i++)
        argv[n++] = more[i];
    argv[n] = NULL;
    return thou(out, outlen, argv);
}

static char *file_hash(const char *path)
{
    size_t len = 0;
    char *data = read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    unsigned char hash[32];
    crypto_generichash(hash, sizeof(hash), (unsigned char *)data, len, NULL, 0);
    free(data);
    char *hex = malloc(65);
    sodium_bin2hex(hex, 65, hash, sizeof(hash));
    return hex;
}

START_TEST(test_copies_consent_release_export)
{
    struct pair yes, no, gone;
    ck_assert_int_eq(create_in_study("s1", &yes), 201);
    ck_assert_int_eq(create_in_study("s1", &no), 201);
    ck_assert_int_eq(create_in_study("s1", &gone), 201);

    /* Before both consented, nothing is kept. */
    ck_assert_int_eq(post_step(&yes, 'A', "c3", "answer", "q1", 5, "early"), 409);
    ck_assert_int_eq(post_event(&yes, yes.token_a, "consent", 1), 201);
    ck_assert_int_eq(post_step(&yes, 'A', "c3", "answer", "q1", 5, "early"), 409);
    ck_assert_int_eq(post_event(&yes, yes.token_b, "consent", 1), 201);
    /* A consent is posted once. */
    ck_assert_int_eq(post_event(&yes, yes.token_b, "consent", 2), 409);

    ck_assert_int_eq(post_consent_copy(&yes, 'A', "tag-yes"), 201);
    ck_assert_int_eq(post_consent_copy(&yes, 'B', "tag-yes"), 201);
    ck_assert_int_eq(post_closeness(&yes, 'A', "before", 3), 201);
    ck_assert_int_eq(post_closeness(&yes, 'A', "after", 5), 201);
    ck_assert_int_eq(post_step(&yes, 'A', "c3", "answer", "q1", 5.5, "We, \"laughed\"\nall day"),
                     201);
    ck_assert_int_eq(post_step(&yes, 'A', "c3", "answer", "q1", 5.5, "We laughed"),
                     201); /* retry */
    ck_assert_int_eq(post_step(&yes, 'B', "c2", "reflect", "q1", 20, "You laughed"), 201);
    ck_assert_int_eq(post_step(&yes, 'B', "c4", "answer", "q2", 40, "left out by B"), 201);
    ck_assert_int_eq(post_step(&yes, 'B', "c5", "pass", "q3", 60, ""), 201);
    ck_assert_int_eq(post_step(&yes, 'A', "c9", "answer", "q4", 80, "never released by A"), 201);

    /* The other pair: A consents, B declines; nothing is kept. */
    ck_assert_int_eq(post_event(&no, no.token_a, "consent", 1), 201);
    ck_assert_int_eq(post_event(&no, no.token_b, "decline", 1), 201);
    ck_assert_int_eq(post_step(&no, 'A', "c3", "answer", "q1", 5, "declined pair"), 409);

    /* A third pair consents, stores, and withdraws: its copies go. */
    ck_assert_int_eq(post_event(&gone, gone.token_a, "consent", 1), 201);
    ck_assert_int_eq(post_event(&gone, gone.token_b, "consent", 1), 201);
    ck_assert_int_eq(post_consent_copy(&gone, 'A', "tag-gone"), 201);
    ck_assert_int_eq(post_consent_copy(&gone, 'B', "tag-gone"), 201);
    ck_assert_int_eq(post_step(&gone, 'A', "c3", "answer", "q1", 5, "withdrawn words"), 201);
    ck_assert_int_eq(post_event(&gone, gone.token_b, "withdraw", 2), 201);
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s/research", gone.room);
    struct http_reply reply;
    ck_assert(http_json(port, "DELETE", path, gone.token_b, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(reply.json, "deleted")), 3);
    http_reply_free(&reply);
    ck_assert_int_eq(post_step(&gone, 'A', "c4", "answer", "q2", 9, "after withdrawal"), 409);

    /* A fourth pair whose consent copies carry different pair tags (one made up by
     * someone without the session keys): not exported. */
    struct pair odd;
    ck_assert_int_eq(create_in_study("s1", &odd), 201);
    ck_assert_int_eq(post_event(&odd, odd.token_a, "consent", 1), 201);
    ck_assert_int_eq(post_event(&odd, odd.token_b, "consent", 1), 201);
    ck_assert_int_eq(post_consent_copy(&odd, 'A', "tag-real"), 201);
    ck_assert_int_eq(post_consent_copy(&odd, 'B', "tag-made-up"), 201);
    ck_assert_int_eq(post_step(&odd, 'A', "c3", "answer", "q1", 5, "odd pair words"), 201);
    ck_assert_int_eq(release(&odd, odd.token_a, "[]"), 200);
    ck_assert_int_eq(release(&odd, odd.token_b, "[]"), 200);

    /* Review: B leaves c4 out; releasing again is refused. A (c3 only)
     * releases too, but c9 after that is refused. */
    ck_assert_int_eq(release(&yes, yes.token_b, "[\"c4\"]"), 200);
    ck_assert_int_eq(release(&yes, yes.token_b, "[]"), 409);
    ck_assert_int_eq(post_step(&yes, 'B', "c6", "answer", "q5", 99, "after release"), 409);
    proc_sql(&server, "DELETE FROM research_copies WHERE step = 'c9'");
    ck_assert_int_eq(release(&yes, yes.token_a, "[]"), 200);
    ck_assert_int_eq(release(&yes, "x", "[]"), 401);

    /* Export while the server runs. */
    char out[4096], csv[400];
    snprintf(csv, sizeof(csv), "%s/out.csv", server.dir);
    ck_assert_int_eq(export_csv(csv, NULL, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "exported 1 conversations, 3 rows"), "%s", out);
    char *data = read_file(csv, NULL);
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(strstr(data, "\"We, \"\"laughed\"\"\nall day\""), "%s", data);
    ck_assert_msg(strstr(data, ",You laughed,"), "%s", data);
    ck_assert_msg(strstr(data, ",pass,,60.0,"), "%s", data);
    ck_assert_ptr_null(strstr(data, "left out by B"));
    ck_assert_ptr_null(strstr(data, "declined pair"));
    ck_assert_ptr_null(strstr(data, "withdrawn words"));
    ck_assert_ptr_null(strstr(data, "odd pair words"));
    ck_assert_ptr_null(strstr(data, yes.room));
    /* A's closeness, before and after, on A's rows. */
    ck_assert_msg(strstr(data, ",5.5,3,5\r\n"), "%s", data);
    free(data);
    char codebook[400];
    snprintf(codebook, sizeof(codebook), "%s/out-codebook.csv", server.dir);
    data = read_file(codebook, NULL);
    ck_assert_ptr_nonnull(data);
    ck_assert_ptr_nonnull(strstr(data, "participant_id"));
    free(data);

    /* jsonl, same rows. */
    char jsonl[400];
    snprintf(jsonl, sizeof(jsonl), "%s/out2.jsonl", server.dir);
    ck_assert_int_eq(
        export_csv(jsonl, (const char *const[]){"--format", "jsonl", NULL}, out, sizeof(out)), 0);
    data = read_file(jsonl, NULL);
    ck_assert_msg(strstr(data, "\"text\":\"You laughed\"") &&
                      strstr(data, "\"closeness_before\":3"),
                  "%s", data);
    free(data);

    /* A tampered copy is reported and skipped; the rest still exports. */
    proc_sql(&server, "UPDATE research_copies SET sealed = substr(sealed, 1, 60) || "
                      "(CASE substr(sealed, 61, 1) WHEN 'A' THEN 'B' ELSE 'A' END) ||"
                      " substr(sealed, 62) WHERE step = 'c2'");
    ck_assert_int_eq(export_csv(csv, (const char *const[]){"--force", NULL}, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "1 research copies did not open") &&
                      strstr(out, "exported 1 conversations, 2 rows"),
                  "%s", out);
    data = read_file(csv, NULL);
    ck_assert_ptr_null(strstr(data, "You laughed"));
    free(data);
    pair_free(&yes);
    pair_free(&no);
    pair_free(&gone);
    pair_free(&odd);
}
END_TEST

START_TEST(test_export_refusals)
{
    char out[4096], csv[400], bad_key[400], other_key[400];
    snprintf(csv, sizeof(csv), "%s/exists.csv", server.dir);
    FILE *f = fopen(csv, "w");
    fputs("keep me", f);
    fclose(f);
    int rc = proc_stop(&server);
    ck_assert_int_eq(rc, 0);
    char db[400];
    snprintf(db, sizeof(db), "%s/thou.db", server.data_dir);
    char *db_before = file_hash(db);
    char fresh[400];
    snprintf(fresh, sizeof(fresh), "%s/fresh.csv", server.dir);

    /* An existing output file without --force. */
    ck_assert_int_eq(export_csv(csv, NULL, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "--force"), "%s", out);
    char *kept = read_file(csv, NULL);
    ck_assert_str_eq(kept, "keep me");
    free(kept);
    /* An unknown format. */
    ck_assert_int_eq(
        export_csv(fresh, (const char *const[]){"--format", "xlsx", NULL}, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "xlsx"), "%s", out);
    /* An unknown study. */
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"export", "--study", "nope", "--key", key_path, "--data-dir",
                                   server.data_dir, "--out", fresh, NULL}),
        2);
    ck_assert_msg(strstr(out, "no study named 'nope'"), "%s", out);
    /* A corrupt key file. */
    snprintf(bad_key, sizeof(bad_key), "%s/bad.key", server.dir);
    f = fopen(bad_key, "w");
    fputs("thou study secret key v1\nnot-a-key\n", f);
    fclose(f);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"export", "--study", "s1", "--key", bad_key, "--data-dir",
                                   server.data_dir, "--out", fresh, NULL}),
        2);
    ck_assert_msg(strstr(out, "damaged"), "%s", out);
    f = fopen(bad_key, "w");
    fputs("-----BEGIN PRIVATE KEY-----\n", f);
    fclose(f);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"export", "--study", "s1", "--key", bad_key, "--data-dir",
                                   server.data_dir, "--out", fresh, NULL}),
        2);
    ck_assert_msg(strstr(out, "not a study key file"), "%s", out);
    /* The key of another study. */
    snprintf(other_key, sizeof(other_key), "%s/other.key", server.dir);
    ck_assert_int_eq(
        thou(out, sizeof(out), (const char *const[]){"study", "keygen", "--out", other_key, NULL}),
        0);
    ck_assert_int_eq(
        thou(out, sizeof(out),
             (const char *const[]){"export", "--study", "s1", "--key", other_key, "--data-dir",
                                   server.data_dir, "--out", fresh, NULL}),
        2);
    ck_assert_msg(strstr(out, "is not the key of study 's1'"), "%s", out);
    ck_assert_int_eq(access(fresh, F_OK), -1);
    /* None of these changed the store. */
    char *db_after = file_hash(db);
    ck_assert_str_eq(db_before, db_after);
    free(db_after);
    /* A database of a newer schema. */
    proc_sql(&server, "PRAGMA user_version = 99");
    ck_assert_int_eq(export_csv(fresh, NULL, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "newer"), "%s", out);
    proc_sql(&server, "PRAGMA user_version = 6");
    /* A PostgreSQL store: the export reads SQLite only and says so, and the
     * study commands go where `thou serve` would (nothing listens there). */
    char pg_config[400];
    snprintf(pg_config, sizeof(pg_config), "%s/pg.json", server.dir);
    f = fopen(pg_config, "w");
    fputs("{\"store_url\": \"postgresql://thou@127.0.0.1:9/none?connect_timeout=2\"}", f);
    fclose(f);
    ck_assert_int_eq(thou(out, sizeof(out),
                          (const char *const[]){"export", "--study", "s1", "--key", key_path,
                                                "--config", pg_config, "--out", fresh, NULL}),
                     2);
    ck_assert_msg(strstr(out, "PostgreSQL"), "%s", out);
    ck_assert_int_eq(access(fresh, F_OK), -1);
    ck_assert_int_eq(
        thou(out, sizeof(out), (const char *const[]){"study", "list", "--config", pg_config, NULL}),
        1);
    ck_assert_msg(strstr(out, "127.0.0.1"), "%s", out);
    free(db_before);
    proc_restart(&server);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("research");
    TCase *tc = tcase_create("research");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_study_commands);
    tcase_add_test(tc, test_conditions_balanced);
    tcase_add_test(tc, test_copies_consent_release_export);
    tcase_add_test(tc, test_export_refusals);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
