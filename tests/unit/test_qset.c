#include "thou/qset.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "thou/buf.h"

#ifndef THOU_SOURCE_DIR
#error "THOU_SOURCE_DIR must name the repository root"
#endif

#define QUESTIONS_DIR THOU_SOURCE_DIR "/config/questions"
#define TEMP_TEMPLATE "/tmp/thou_qset_XXXXXX"

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

/*
 * A small valid set. The bad cases below each change one spot of it; their
 * expected line:column values count from this text, so keep it as it is.
 */
static const char base_set[] =
    "{\n"
    "  \"id\": \"test-set\",\n"
    "  \"version\": 1,\n"
    "  \"title\": \"A test set\",\n"
    "  \"language\": \"en\",\n"
    "  \"description\": \"Used by the unit tests.\",\n"
    "  \"minutes\": 20,\n"
    "  \"stages\": [\n"
    "    {\n"
    "      \"id\": \"first\",\n"
    "      \"title\": \"First stage\",\n"
    "      \"intro\": \"Take your time.\",\n"
    "      \"minutes\": 10,\n"
    "      \"listening\": true,\n"
    "      \"questions\": [\n"
    "        {\"id\": \"q-one\", \"text\": \"What made you smile?\", \"hint\": \"Listen.\"},\n"
    "        {\"id\": \"q-two\", \"text\": \"What do you look forward to?\", "
    "\"reveal_together\": true}\n"
    "      ]\n"
    "    },\n"
    "    {\n"
    "      \"id\": \"second\",\n"
    "      \"title\": \"Second stage\",\n"
    "      \"intro\": \"Passing is fine.\",\n"
    "      \"listening\": false,\n"
    "      \"questions\": [\n"
    "        {\"id\": \"q-three\", \"text\": \"What do you value in a friend?\"}\n"
    "      ]\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* ---- helpers ------------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *content, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    ck_assert_msg(file != NULL, "cannot create '%s': %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(content, 1, len, file), len);
    ck_assert_int_eq(fclose(file), 0);
}

static void make_temp_dir(char *dir)
{
    memcpy(dir, TEMP_TEMPLATE, sizeof(TEMP_TEMPLATE));
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

/* Remove the files the tests write, then the directory itself. */
static void remove_temp_dir(const char *dir)
{
    static const char *const names[] = {"set.json",  "a.json",       "b.json",
                                        "README.md", ".hidden.json", "notes.json~"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}

/*
 * base_set with its one occurrence of find replaced by before + pad copies of
 * pad_char + after. Caller frees.
 */
static char *edit_base(const char *find, const char *before, size_t pad, char pad_char,
                       const char *after, size_t *len)
{
    const char *at = strstr(base_set, find);
    ck_assert_msg(at != NULL, "'%s' is not in the base set", find);
    ck_assert_msg(strstr(at + 1, find) == NULL, "'%s' is in the base set twice", find);
    struct thou_buf out;
    thou_buf_init(&out);
    thou_buf_append(&out, base_set, (size_t)(at - base_set));
    thou_buf_puts(&out, before);
    for (size_t i = 0; i < pad; i++)
        thou_buf_append(&out, &pad_char, 1);
    thou_buf_puts(&out, after);
    thou_buf_puts(&out, at + strlen(find));
    return thou_buf_steal(&out, len);
}

/* Load a directory holding only one file, then clean up; returns the status. */
static enum thou_status load_one(const char *content, size_t len, char *dir, char *errbuf,
                                 size_t errlen)
{
    struct thou_qset_registry *reg = (struct thou_qset_registry *)1;
    make_temp_dir(dir);
    write_file(dir, "set.json", content, len);
    enum thou_status rc = thou_qset_registry_load(dir, &reg, errbuf, errlen);
    if (rc)
        ck_assert_ptr_null(reg);
    thou_qset_registry_free(reg);
    remove_temp_dir(dir);
    return rc;
}

/* ---- the shipped sets ---------------------------------------------------------------------- */

struct expected_set {
    const char *id;
    size_t min_stages;
    size_t max_stages;
    size_t min_questions;
    size_t max_questions;
    unsigned min_minutes;
    unsigned max_minutes;
    size_t min_reveal_together;
    size_t max_reveal_together;
};

static const struct expected_set shipped[] = {
    {"couples-full", 4, 6, 24, 40, 45, 60, 3, 10},
    {"couples-short", 3, 4, 6, 8, 12, 18, 1, 1},
    {"workshop-strangers", 4, 6, 12, 24, 30, 40, 1, 6},
};

#define N_SHIPPED (sizeof shipped / sizeof shipped[0])

static struct thou_qset_registry *registry;

static void load_shipped(void)
{
    char errbuf[512] = "";
    enum thou_status rc = thou_qset_registry_load(QUESTIONS_DIR, &registry, errbuf, sizeof errbuf);
    ck_assert_msg(rc == THOU_OK, "%s: %s", thou_status_name(rc), errbuf);
}

static void free_shipped(void)
{
    thou_qset_registry_free(registry);
    registry = NULL;
}

START_TEST(test_shipped_sets_load)
{
    ck_assert_uint_eq(thou_qset_registry_count(registry), N_SHIPPED);
    for (size_t i = 0; i < N_SHIPPED; i++) {
        /* shipped[] is in id order, as the registry is */
        const struct thou_qset *set = thou_qset_registry_get(registry, i);
        ck_assert_ptr_nonnull(set);
        ck_assert_str_eq(set->id, shipped[i].id);
        ck_assert_ptr_eq(thou_qset_registry_find(registry, shipped[i].id), set);
    }
    ck_assert_ptr_null(thou_qset_registry_get(registry, N_SHIPPED));
    ck_assert_ptr_null(thou_qset_registry_find(registry, "no-such-set"));
    ck_assert_ptr_null(thou_qset_registry_find(registry, ""));
}
END_TEST

START_TEST(test_shipped_set_sizes)
{
    const struct expected_set *want = &shipped[_i];
    const struct thou_qset *set = thou_qset_registry_find(registry, want->id);
    ck_assert_ptr_nonnull(set);
    ck_assert_uint_eq(set->version, 1);
    ck_assert_str_eq(set->language, "en");
    ck_assert_uint_ge(set->n_stages, want->min_stages);
    ck_assert_uint_le(set->n_stages, want->max_stages);
    ck_assert_uint_ge(set->n_questions, want->min_questions);
    ck_assert_uint_le(set->n_questions, want->max_questions);
    ck_assert_uint_ge(set->minutes, want->min_minutes);
    ck_assert_uint_le(set->minutes, want->max_minutes);

    size_t questions = 0;
    size_t reveal_together = 0;
    unsigned stage_minutes = 0;
    for (size_t s = 0; s < set->n_stages; s++) {
        const struct thou_qset_stage *stage = &set->stages[s];
        ck_assert_uint_ge(stage->n_questions, 1);
        /* every intro tells people that passing is fine, and stays short */
        ck_assert_msg(strcasestr(stage->intro, "pass") != NULL,
                      "%s: stage '%s' never says passing is fine", set->id, stage->id);
        ck_assert_uint_le(strlen(stage->intro), 400);
        /* only a light opener may skip the listening step */
        if (s > 0)
            ck_assert_msg(stage->listening, "%s: stage '%s' has listening off", set->id, stage->id);
        stage_minutes += stage->minutes;
        questions += stage->n_questions;
        for (size_t q = 0; q < stage->n_questions; q++)
            reveal_together += stage->questions[q].reveal_together;
    }
    ck_assert_uint_eq(questions, set->n_questions);
    ck_assert_uint_eq(stage_minutes, set->minutes);
    ck_assert_uint_ge(reveal_together, want->min_reveal_together);
    ck_assert_uint_le(reveal_together, want->max_reveal_together);

    /* the arc: it opens on common ground and closes on what is now understood */
    ck_assert_str_eq(set->stages[set->n_stages - 1].id, "now-i-understand");
    ck_assert_msg(strcmp(set->stages[0].id, "common-ground") == 0 ||
                      strcmp(set->stages[0].id, "getting-started") == 0,
                  "%s opens with '%s'", set->id, set->stages[0].id);
}
END_TEST

START_TEST(test_couples_full_differ_stage_reveals_together)
{
    const struct thou_qset *set = thou_qset_registry_find(registry, "couples-full");
    ck_assert_ptr_nonnull(set);
    ck_assert_uint_ge(set->n_stages, 5);
    const struct thou_qset_stage *differ = NULL;
    for (size_t s = 0; s < set->n_stages; s++) {
        if (strcmp(set->stages[s].id, "where-we-differ") == 0)
            differ = &set->stages[s];
    }
    ck_assert_ptr_nonnull(differ);
    size_t together = 0;
    for (size_t q = 0; q < differ->n_questions; q++)
        together += differ->questions[q].reveal_together;
    ck_assert_uint_gt(2 * together, differ->n_questions);
}
END_TEST

START_TEST(test_shipped_plan_matches)
{
    const struct thou_qset *set = thou_qset_registry_get(registry, (size_t)_i);
    const struct thou_flow_plan *plan = thou_qset_plan(set);
    ck_assert_uint_eq(plan->n_stages, set->n_stages);
    for (size_t s = 0; s < set->n_stages; s++) {
        const struct thou_qset_stage *stage = &set->stages[s];
        const struct thou_flow_stage *flow = &plan->stages[s];
        ck_assert_int_eq(flow->listening, stage->listening);
        ck_assert_uint_eq(flow->n_questions, stage->n_questions);
        for (size_t q = 0; q < stage->n_questions; q++) {
            ck_assert_str_eq(flow->questions[q].id, stage->questions[q].id);
            ck_assert_int_eq(flow->questions[q].reveal_together,
                             stage->questions[q].reveal_together);

            size_t found_stage = SIZE_MAX;
            size_t found_question = SIZE_MAX;
            const struct thou_qset_question *found =
                thou_qset_find_question(set, stage->questions[q].id, &found_stage, &found_question);
            ck_assert_ptr_eq(found, &stage->questions[q]);
            ck_assert_uint_eq(found_stage, s);
            ck_assert_uint_eq(found_question, q);
        }
    }
    ck_assert_ptr_null(thou_qset_find_question(set, "no-such-question", NULL, NULL));
}
END_TEST

START_TEST(test_shipped_json_round_trip)
{
    const struct thou_qset *set = thou_qset_registry_get(registry, (size_t)_i);

    json_t *summary = thou_qset_summary_json(set);
    ck_assert_ptr_nonnull(summary);
    ck_assert_str_eq(json_string_value(json_object_get(summary, "id")), set->id);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "version")), set->version);
    ck_assert_str_eq(json_string_value(json_object_get(summary, "title")), set->title);
    ck_assert_str_eq(json_string_value(json_object_get(summary, "language")), set->language);
    ck_assert_str_eq(json_string_value(json_object_get(summary, "description")), set->description);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "minutes")), set->minutes);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "stages")), set->n_stages);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "questions")), set->n_questions);
    ck_assert_uint_eq(json_object_size(summary), 8);
    json_decref(summary);

    /* the full form is itself a valid set file that describes the same set */
    json_t *full = thou_qset_to_json(set);
    ck_assert_ptr_nonnull(full);
    char *text = json_dumps(full, JSON_INDENT(2));
    ck_assert_ptr_nonnull(text);
    char errbuf[512] = "";
    struct thou_qset *again = NULL;
    enum thou_status rc =
        thou_qset_parse("round-trip.json", text, strlen(text), &again, errbuf, sizeof errbuf);
    ck_assert_msg(rc == THOU_OK, "%s", errbuf);
    json_t *full_again = thou_qset_to_json(again);
    ck_assert_msg(json_equal(full, full_again), "round trip changed '%s'", set->id);

    /* and it says what the file says */
    json_error_t error;
    json_t *file = json_load_file(set->source, 0, &error);
    ck_assert_ptr_nonnull(file);
    ck_assert_str_eq(json_string_value(json_object_get(file, "title")), set->title);
    ck_assert_uint_eq(json_array_size(json_object_get(file, "stages")), set->n_stages);

    json_decref(file);
    json_decref(full_again);
    thou_qset_free(again);
    free(text);
    json_decref(full);
}
END_TEST

START_TEST(test_registry_summary_json)
{
    json_t *list = thou_qset_registry_summary_json(registry);
    ck_assert_ptr_nonnull(list);
    ck_assert_uint_eq(json_array_size(list), N_SHIPPED);
    for (size_t i = 0; i < N_SHIPPED; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, i), "id")),
                         shipped[i].id);
    json_decref(list);
}
END_TEST

/* ---- good sets ----------------------------------------------------------------------------- */

START_TEST(test_base_set_parses)
{
    char errbuf[512] = "";
    struct thou_qset *set = NULL;
    enum thou_status rc =
        thou_qset_parse("base.json", base_set, strlen(base_set), &set, errbuf, sizeof errbuf);
    ck_assert_msg(rc == THOU_OK, "%s", errbuf);
    ck_assert_str_eq(set->id, "test-set");
    ck_assert_str_eq(set->source, "base.json");
    ck_assert_uint_eq(set->n_stages, 2);
    ck_assert_uint_eq(set->n_questions, 3);
    ck_assert_uint_eq(set->stages[0].minutes, 10);
    ck_assert_uint_eq(set->stages[1].minutes, 0); /* optional, absent */
    ck_assert_str_eq(set->stages[0].questions[0].hint, "Listen.");
    ck_assert_ptr_null(set->stages[0].questions[1].hint);
    ck_assert(!set->stages[0].questions[0].reveal_together);
    ck_assert(set->stages[0].questions[1].reveal_together);
    ck_assert(!set->stages[1].listening);

    size_t s;
    size_t q;
    ck_assert_ptr_nonnull(thou_qset_find_question(set, "q-three", &s, &q));
    ck_assert_uint_eq(s, 1);
    ck_assert_uint_eq(q, 0);

    /* optional fields stay absent in the JSON form */
    json_t *full = thou_qset_to_json(set);
    json_t *second = json_array_get(json_object_get(full, "stages"), 1);
    ck_assert_ptr_null(json_object_get(second, "minutes"));
    ck_assert(json_is_false(json_object_get(second, "listening")));
    json_t *question = json_array_get(json_object_get(second, "questions"), 0);
    ck_assert_ptr_null(json_object_get(question, "hint"));
    ck_assert(json_is_false(json_object_get(question, "reveal_together")));
    json_decref(full);
    thou_qset_free(set);
    thou_qset_free(NULL);
    thou_qset_registry_free(NULL);
}
END_TEST

/* Values exactly at each limit are accepted. */
START_TEST(test_limits_are_inclusive)
{
    static const struct {
        const char *find;
        const char *before;
        size_t pad;
        const char *after;
    } cases[] = {
        {"\"What do you look forward to?\"", "\"", THOU_QSET_MAX_TEXT_BYTES, "\""},
        {"\"A test set\"", "\"", THOU_QSET_MAX_TITLE_BYTES, "\""},
        {"\"q-two\"", "\"", THOU_QSET_MAX_ID_BYTES, "\""},
        {"\"minutes\": 10", "\"minutes\": 120", 0, ""},
        {"\"minutes\": 20", "\"minutes\": 600", 0, ""},
        {"\"language\": \"en\"", "\"language\": \"sr-Latn-RS\"", 0, ""},
        {"\"id\": \"q-one\"", "\"\\u0069d\": \"q-one\"", 0, ""}, /* an escaped key is still "id" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *text =
            edit_base(cases[i].find, cases[i].before, cases[i].pad, 'x', cases[i].after, &len);
        char errbuf[512] = "";
        struct thou_qset *set = NULL;
        enum thou_status rc = thou_qset_parse("limit.json", text, len, &set, errbuf, sizeof errbuf);
        ck_assert_msg(rc == THOU_OK, "case %zu: %s", i, errbuf);
        thou_qset_free(set);
        free(text);
    }
}
END_TEST

/* A set with n_stages stages of n_questions questions each. Caller frees. */
static char *make_set(size_t n_stages, size_t n_questions, size_t *len)
{
    struct thou_buf out;
    thou_buf_init(&out);
    thou_buf_puts(&out,
                  "{\"id\": \"big\", \"version\": 1, \"title\": \"Big\", \"language\": \"en\",\n"
                  " \"description\": \"Many stages.\", \"minutes\": 60, \"stages\": [\n");
    for (size_t s = 0; s < n_stages; s++) {
        thou_buf_printf(&out,
                        "%s  {\"id\": \"s%zu\", \"title\": \"S\", \"intro\": \"I\", \"listening\": "
                        "true, \"questions\": [\n",
                        s ? ",\n" : "", s);
        for (size_t q = 0; q < n_questions; q++)
            thou_buf_printf(&out, "%s    {\"id\": \"s%zu-q%zu\", \"text\": \"T\"}", q ? ",\n" : "",
                            s, q);
        thou_buf_puts(&out, "]}");
    }
    thou_buf_puts(&out, "]}\n");
    return thou_buf_steal(&out, len);
}

START_TEST(test_stage_and_question_counts)
{
    static const struct {
        size_t stages;
        size_t questions;
        enum thou_status status;
        const char *where;
    } cases[] = {
        {THOU_QSET_MAX_STAGES, THOU_QSET_MAX_QUESTIONS, THOU_OK, NULL},
        {THOU_QSET_MAX_STAGES + 1, 1, THOU_ETOOBIG, "big.json:2:58: stages: holds 17 elements"},
        {1, THOU_QSET_MAX_QUESTIONS + 1, THOU_ETOOBIG,
         "big.json:3:76: stages[0].questions: holds 65 elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *text = make_set(cases[i].stages, cases[i].questions, &len);
        char errbuf[512] = "";
        struct thou_qset *set = NULL;
        enum thou_status rc = thou_qset_parse("big.json", text, len, &set, errbuf, sizeof errbuf);
        ck_assert_msg(rc == cases[i].status, "case %zu: %s: %s", i, thou_status_name(rc), errbuf);
        if (cases[i].where)
            ck_assert_msg(strncmp(errbuf, cases[i].where, strlen(cases[i].where)) == 0,
                          "case %zu: '%s' does not start with '%s'", i, errbuf, cases[i].where);
        else
            ck_assert_uint_eq(set->n_questions, cases[i].stages * cases[i].questions);
        thou_qset_free(set);
        free(text);
    }
}
END_TEST

START_TEST(test_other_files_are_ignored)
{
    char dir[sizeof TEMP_TEMPLATE];
    make_temp_dir(dir);
    write_file(dir, "set.json", base_set, strlen(base_set));
    write_file(dir, "README.md", "not a set", 9);
    write_file(dir, ".hidden.json", "not json", 8);
    write_file(dir, "notes.json~", "not json", 8);
    struct thou_qset_registry *reg = NULL;
    char errbuf[512] = "";
    enum thou_status rc = thou_qset_registry_load(dir, &reg, errbuf, sizeof errbuf);
    remove_temp_dir(dir);
    ck_assert_msg(rc == THOU_OK, "%s", errbuf);
    ck_assert_uint_eq(thou_qset_registry_count(reg), 1);
    ck_assert_ptr_nonnull(thou_qset_registry_find(reg, "test-set"));
    thou_qset_registry_free(reg);
}
END_TEST

/* ---- bad sets ------------------------------------------------------------------------------ */

struct bad_case {
    const char *name;
    const char *find; /* in base_set; NULL: the text is `before` alone */
    const char *before;
    size_t pad; /* copies of pad_char between before and after */
    char pad_char;
    const char *after;
    enum thou_status status;
    const char *where; /* "line:column", NULL for whole-file problems */
    const char *path;  /* field path, "" when there is none */
    const char *what;  /* a fragment of the explanation */
};

static const struct bad_case bad_cases[] = {
    {"duplicate question id", "\"id\": \"q-two\"", "\"id\": \"q-one\"", 0, 0, "", THOU_EINVAL,
     "17:16", "stages[0].questions[1].id", "already used by stages[0].questions[0].id"},
    {"duplicate question id across stages", "\"id\": \"q-three\"", "\"id\": \"q-one\"", 0, 0, "",
     THOU_EINVAL, "26:16", "stages[1].questions[0].id", "question id 'q-one' is already used"},
    {"duplicate stage id", "\"id\": \"second\"", "\"id\": \"first\"", 0, 0, "", THOU_EINVAL,
     "21:13", "stages[1].id", "stage id 'first' is already used by stages[0].id"},
    {"empty stages array", NULL,
     "{\n  \"id\": \"empty\", \"version\": 1, \"title\": \"T\", \"language\": \"en\",\n"
     "  \"description\": \"D\", \"minutes\": 5,\n  \"stages\": []\n}\n",
     0, 0, "", THOU_EINVAL, "4:13", "stages", "must hold at least 1 element"},
    {"stage without questions",
     "\"questions\": [\n        {\"id\": \"q-three\", \"text\": \"What do you value in a "
     "friend?\"}\n      ]",
     "\"questions\": []", 0, 0, "", THOU_EINVAL, "25:20", "stages[1].questions",
     "must hold at least 1 element"},
    {"unknown key at the top", "\"minutes\": 20,", "\"minutes\": 20,\n  \"colour\": \"blue\",", 0,
     0, "", THOU_EINVAL, "8:3", "colour", "unknown key (known keys: id, version, title"},
    {"unknown key in a stage", "\"listening\": false,",
     "\"listening\": false,\n      \"mood\": \"calm\",", 0, 0, "", THOU_EINVAL, "25:7",
     "stages[1].mood", "unknown key (known keys: id, title, intro, minutes, listening, questions)"},
    {"unknown key in a question", "\"reveal_together\": true}",
     "\"reveal_together\": true, \"weight\": 2}", 0, 0, "", THOU_EINVAL, "17:90",
     "stages[0].questions[1].weight", "unknown key (known keys: id, text, hint, reveal_together)"},
    {"unknown key written with an escape", "\"reveal_together\": true}", "\"r\\u00e9veal\": true}",
     0, 0, "", THOU_EINVAL, "17:65", "stages[0].questions[1].r\xc3\xa9veal", "unknown key"},
    {"missing required key", "      \"intro\": \"Passing is fine.\",\n", "", 0, 0, "", THOU_EINVAL,
     "20:5", "stages[1].intro", "required key is missing"},
    {"version as a string", "\"version\": 1,", "\"version\": \"1\",", 0, 0, "", THOU_EINVAL, "3:14",
     "version", "must be an integer, not a string"},
    {"minutes as a real number", "\"minutes\": 20,", "\"minutes\": 20.5,", 0, 0, "", THOU_EINVAL,
     "7:14", "minutes", "must be an integer, not a real number"},
    {"listening as a string", "\"listening\": true,", "\"listening\": \"yes\",", 0, 0, "",
     THOU_EINVAL, "14:20", "stages[0].listening", "must be true or false, not a string"},
    {"reveal_together as a number", "\"reveal_together\": true}", "\"reveal_together\": 1}", 0, 0,
     "", THOU_EINVAL, "17:84", "stages[0].questions[1].reveal_together",
     "must be true or false, not an integer"},
    {"hint as null", "\"hint\": \"Listen.\"", "\"hint\": null", 0, 0, "", THOU_EINVAL, "16:65",
     "stages[0].questions[0].hint", "must be a string, not null"},
    {"question as a string", "{\"id\": \"q-three\", \"text\": \"What do you value in a friend?\"}",
     "\"q-three\"", 0, 0, "", THOU_EINVAL, "26:9", "stages[1].questions[0]",
     "must be an object, not a string"},
    {"root not an object", NULL, "[1, 2]\n", 0, 0, "", THOU_EINVAL, "1:1", "",
     "must be an object, not an array"},
    {"bad question id", "\"id\": \"q-two\"", "\"id\": \"Q two\"", 0, 0, "", THOU_EINVAL, "17:16",
     "stages[0].questions[1].id", "'Q two' is not a valid id"},
    {"set id starting with a dash", "\"id\": \"test-set\"", "\"id\": \"-test\"", 0, 0, "",
     THOU_EINVAL, "2:9", "id", "is not a valid id"},
    {"id too long", "\"q-two\"", "\"", THOU_QSET_MAX_ID_BYTES + 1, 'x', "\"", THOU_EINVAL, "17:16",
     "stages[0].questions[1].id", "is not a valid id"},
    {"bad language", "\"language\": \"en\"", "\"language\": \"English\"", 0, 0, "", THOU_EINVAL,
     "5:15", "language", "not a language tag"},
    {"version 0", "\"version\": 1,", "\"version\": 0,", 0, 0, "", THOU_EINVAL, "3:14", "version",
     "must be an integer of at least 1"},
    {"stage minutes too high", "\"minutes\": 10,", "\"minutes\": 121,", 0, 0, "", THOU_EINVAL,
     "13:18", "stages[0].minutes", "must be an integer from 1 to 120"},
    {"text too long", "\"What do you look forward to?\"", "\"", THOU_QSET_MAX_TEXT_BYTES + 1, 'x',
     "\"", THOU_ETOOBIG, "17:33", "stages[0].questions[1].text",
     "is 2001 bytes long, over the limit of 2000"},
    {"title too long", "\"A test set\"", "\"", THOU_QSET_MAX_TITLE_BYTES + 1, 'x', "\"",
     THOU_ETOOBIG, "4:12", "title", "is 201 bytes long, over the limit of 200"},
    {"empty text", "\"What do you value in a friend?\"", "\"  \"", 0, 0, "", THOU_EINVAL, "26:35",
     "stages[1].questions[0].text", "must not be empty"},
    {"title on two lines", "\"First stage\"", "\"First\\nstage\"", 0, 0, "", THOU_EINVAL, "11:16",
     "stages[0].title", "must be a single line"},
    {"tab in a text", "\"Take your time.\"", "\"Take\\tyour time.\"", 0, 0, "", THOU_EINVAL,
     "12:16", "stages[0].intro", "must not hold control characters (byte 0x09)"},
    {"file too large", "  ]\n}\n", "  ]\n}", THOU_QSET_MAX_FILE_BYTES, ' ', "\n", THOU_ETOOBIG,
     NULL, "", "over the limit of 262144"},
    {"invalid UTF-8 byte", "Take your time.", "Take your \xff time.", 0, 0, "", THOU_EINVAL,
     "12:27", "stages[0].intro", "invalid UTF-8 (byte 0xff)"},
    {"overlong UTF-8", "A test set", "A test \xc0\xaf set", 0, 0, "", THOU_EINVAL, "4:20", "title",
     "invalid UTF-8 (byte 0xc0)"},
    {"UTF-8 surrogate", "Listen.", "Listen \xed\xa0\x80.", 0, 0, "", THOU_EINVAL, "16:73",
     "stages[0].questions[0].hint", "invalid UTF-8 (byte 0xed)"},
    {"byte order mark", "{\n  \"id\"", "\xef\xbb\xbf{\n  \"id\"", 0, 0, "", THOU_EINVAL, "1:1", "",
     "byte order mark"},
    {"duplicate JSON key", "\"minutes\": 10,", "\"minutes\": 10,\n      \"minutes\": 12,", 0, 0, "",
     THOU_EINVAL, "14:7", "stages[0].minutes", "duplicate key"},
    {"missing comma", "\"title\": \"A test set\",", "\"title\": \"A test set\"", 0, 0, "",
     THOU_EINVAL, "5:13", "title", "syntax error: '}' expected near '\"language\"'"},
    {"unterminated text", "\"Passing is fine.\",", "\"Passing is fine.,", 0, 0, "", THOU_EINVAL,
     "23:34", "stages[1].intro", "syntax error: unexpected newline"},
    {"trailing garbage", "  ]\n}\n", "  ]\n}\n}\n", 0, 0, "", THOU_EINVAL, "31:2", "",
     "syntax error: end of file expected"},
    {"empty file", NULL, "", 0, 0, "", THOU_EINVAL, "1:1", "", "syntax error"},
};

#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

/*
 * Bug: a set, stage or question missing one of its required keys loads. One
 * case per required key; the error points at the object that lacks it.
 */
static const struct bad_case missing_key_cases[] = {
    {"set without id", "  \"id\": \"test-set\",\n", "", 0, 0, "", THOU_EINVAL, "1:1", "id",
     "required key is missing"},
    {"set without version", "  \"version\": 1,\n", "", 0, 0, "", THOU_EINVAL, "1:1", "version",
     "required key is missing"},
    {"set without title", "  \"title\": \"A test set\",\n", "", 0, 0, "", THOU_EINVAL, "1:1",
     "title", "required key is missing"},
    {"set without language", "  \"language\": \"en\",\n", "", 0, 0, "", THOU_EINVAL, "1:1",
     "language", "required key is missing"},
    {"set without description", "  \"description\": \"Used by the unit tests.\",\n", "", 0, 0, "",
     THOU_EINVAL, "1:1", "description", "required key is missing"},
    {"set without minutes", "  \"minutes\": 20,\n", "", 0, 0, "", THOU_EINVAL, "1:1", "minutes",
     "required key is missing"},
    {"set without stages", NULL,
     "{\n  \"id\": \"no-stages\", \"version\": 1, \"title\": \"T\", \"language\": \"en\",\n"
     "  \"description\": \"D\", \"minutes\": 5\n}\n",
     0, 0, "", THOU_EINVAL, "1:1", "stages", "required key is missing"},
    {"stage without id", "      \"id\": \"first\",\n", "", 0, 0, "", THOU_EINVAL, "9:5",
     "stages[0].id", "required key is missing"},
    {"stage without title", "      \"title\": \"First stage\",\n", "", 0, 0, "", THOU_EINVAL, "9:5",
     "stages[0].title", "required key is missing"},
    {"stage without intro", "      \"intro\": \"Take your time.\",\n", "", 0, 0, "", THOU_EINVAL,
     "9:5", "stages[0].intro", "required key is missing"},
    {"stage without listening", "      \"listening\": true,\n", "", 0, 0, "", THOU_EINVAL, "9:5",
     "stages[0].listening", "required key is missing"},
    {"stage without questions",
     "\"listening\": false,\n      \"questions\": [\n        {\"id\": \"q-three\", \"text\": "
     "\"What do you value in a friend?\"}\n      ]\n",
     "\"listening\": false\n", 0, 0, "", THOU_EINVAL, "20:5", "stages[1].questions",
     "required key is missing"},
    {"question without id", "{\"id\": \"q-three\", ", "{", 0, 0, "", THOU_EINVAL, "26:9",
     "stages[1].questions[0].id", "required key is missing"},
    {"question without text", "\"text\": \"What made you smile?\", ", "", 0, 0, "", THOU_EINVAL,
     "16:9", "stages[0].questions[0].text", "required key is missing"},
};

#define N_MISSING_KEY_CASES (sizeof missing_key_cases / sizeof missing_key_cases[0])

/* Load the bad variant of the base set and check the status and the whole message. */
static void check_bad_case(const struct bad_case *bad)
{
    size_t len;
    char *text;
    if (bad->find) {
        text = edit_base(bad->find, bad->before, bad->pad, bad->pad_char, bad->after, &len);
    } else {
        len = strlen(bad->before);
        text = strdup(bad->before);
    }

    char dir[sizeof TEMP_TEMPLATE];
    char errbuf[1024] = "";
    enum thou_status rc = load_one(text, len, dir, errbuf, sizeof errbuf);
    free(text);

    ck_assert_msg(rc == bad->status, "%s: status %s, expected %s: %s", bad->name,
                  thou_status_name(rc), thou_status_name(bad->status), errbuf);
    /* "<dir>/set.json:<line>:<column>: <path>: <what>" */
    char prefix[512];
    if (!bad->where)
        snprintf(prefix, sizeof prefix, "%s/set.json: ", dir);
    else if (bad->path[0])
        snprintf(prefix, sizeof prefix, "%s/set.json:%s: %s: ", dir, bad->where, bad->path);
    else
        snprintf(prefix, sizeof prefix, "%s/set.json:%s: ", dir, bad->where);
    ck_assert_msg(strncmp(errbuf, prefix, strlen(prefix)) == 0, "%s: '%s' does not start with '%s'",
                  bad->name, errbuf, prefix);
    ck_assert_msg(strstr(errbuf + strlen(prefix), bad->what) != NULL, "%s: '%s' does not say '%s'",
                  bad->name, errbuf, bad->what);
}

START_TEST(test_bad_set)
{
    check_bad_case(&bad_cases[_i]);
}
END_TEST

START_TEST(test_set_missing_a_required_key_loads)
{
    check_bad_case(&missing_key_cases[_i]);
}
END_TEST

START_TEST(test_duplicate_set_ids)
{
    char dir[sizeof TEMP_TEMPLATE];
    make_temp_dir(dir);
    write_file(dir, "a.json", base_set, strlen(base_set));
    write_file(dir, "b.json", base_set, strlen(base_set));
    struct thou_qset_registry *reg = NULL;
    char errbuf[1024] = "";
    enum thou_status rc = thou_qset_registry_load(dir, &reg, errbuf, sizeof errbuf);
    remove_temp_dir(dir);
    ck_assert_int_eq(rc, THOU_EEXIST);
    ck_assert_ptr_null(reg);

    char expected[512];
    snprintf(expected, sizeof expected,
             "%s/b.json:2:9: id: set id 'test-set' is already used by '%s/a.json'", dir, dir);
    ck_assert_str_eq(errbuf, expected);
}
END_TEST

/* The first bad file in name order stops loading, whatever readdir's order. */
START_TEST(test_first_error_stops_loading)
{
    char dir[sizeof TEMP_TEMPLATE];
    make_temp_dir(dir);
    write_file(dir, "a.json", "{", 1);
    write_file(dir, "b.json", "[", 1);
    struct thou_qset_registry *reg = NULL;
    char errbuf[1024] = "";
    enum thou_status rc = thou_qset_registry_load(dir, &reg, errbuf, sizeof errbuf);
    remove_temp_dir(dir);
    ck_assert_int_eq(rc, THOU_EINVAL);
    ck_assert_ptr_null(reg);
    ck_assert_contains(errbuf, "/a.json:1:");
}
END_TEST

START_TEST(test_empty_directory)
{
    char dir[sizeof TEMP_TEMPLATE];
    make_temp_dir(dir);
    struct thou_qset_registry *reg = NULL;
    char errbuf[1024] = "";
    enum thou_status rc = thou_qset_registry_load(dir, &reg, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc, THOU_ENOTFOUND);
    ck_assert_ptr_null(reg);
    ck_assert_contains(errbuf, dir);
    ck_assert_contains(errbuf, "no question sets");

    /* files that are not sets do not count */
    write_file(dir, "README.md", "not a set", 9);
    errbuf[0] = '\0';
    rc = thou_qset_registry_load(dir, &reg, errbuf, sizeof errbuf);
    remove_temp_dir(dir);
    ck_assert_int_eq(rc, THOU_ENOTFOUND);
    ck_assert_ptr_null(reg);
    ck_assert_contains(errbuf, "no question sets");
}
END_TEST

START_TEST(test_missing_directory_and_file)
{
    struct thou_qset_registry *reg = NULL;
    char errbuf[1024] = "";
    enum thou_status rc =
        thou_qset_registry_load("/nonexistent/thou/questions", &reg, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc, THOU_ENOTFOUND);
    ck_assert_ptr_null(reg);
    ck_assert_contains(errbuf, "/nonexistent/thou/questions: cannot open directory");

    struct thou_qset *set = NULL;
    rc = thou_qset_load_file("/nonexistent/thou/set.json", &set, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc, THOU_ENOTFOUND);
    ck_assert_ptr_null(set);
    ck_assert_contains(errbuf, "/nonexistent/thou/set.json: cannot open");

    /* a directory is not a set file */
    rc = thou_qset_load_file(QUESTIONS_DIR, &set, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc, THOU_EINVAL);
    ck_assert_contains(errbuf, "not a regular file");

    /* a NULL error buffer is allowed */
    rc = thou_qset_load_file("/nonexistent/thou/set.json", &set, NULL, 0);
    ck_assert_int_eq(rc, THOU_ENOTFOUND);
}
END_TEST

/* Control characters from the file never reach a log line through a message. */
START_TEST(test_messages_are_sanitised)
{
    size_t len;
    char *text =
        edit_base("\"minutes\": 20,", "\"minutes\": 20,\n  \"a\\u001b[31mb\": 1,", 0, 0, "", &len);
    char errbuf[512] = "";
    struct thou_qset *set = NULL;
    enum thou_status rc = thou_qset_parse("x.json", text, len, &set, errbuf, sizeof errbuf);
    free(text);
    ck_assert_int_eq(rc, THOU_EINVAL);
    ck_assert_ptr_null(set);
    ck_assert_msg(strncmp(errbuf, "x.json:8:3: a?[31mb: unknown key", 32) == 0, "%s", errbuf);
    for (const char *p = errbuf; *p; p++)
        ck_assert_int_ge((unsigned char)*p, 0x20);
}
END_TEST

/* A short error buffer gets a cut message, cut between characters. */
START_TEST(test_short_error_buffer)
{
    size_t len;
    char *text = edit_base("\"A test set\"", "\"A test set", 0, 0, "\n\"", &len);
    char errbuf[12];
    memset(errbuf, 'z', sizeof errbuf);
    struct thou_qset *set = NULL;
    /* "\xc3\xa9" puts a two-byte character across the cut */
    enum thou_status rc = thou_qset_parse("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.json",
                                          text, len, &set, errbuf, 12);
    free(text);
    ck_assert_int_eq(rc, THOU_EINVAL);
    ck_assert_str_eq(errbuf, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
}
END_TEST

static Suite *qset_suite(void)
{
    Suite *suite = suite_create("qset");

    TCase *tc = tcase_create("shipped");
    tcase_add_checked_fixture(tc, load_shipped, free_shipped);
    tcase_add_test(tc, test_shipped_sets_load);
    tcase_add_loop_test(tc, test_shipped_set_sizes, 0, (int)N_SHIPPED);
    tcase_add_test(tc, test_couples_full_differ_stage_reveals_together);
    tcase_add_loop_test(tc, test_shipped_plan_matches, 0, (int)N_SHIPPED);
    tcase_add_loop_test(tc, test_shipped_json_round_trip, 0, (int)N_SHIPPED);
    tcase_add_test(tc, test_registry_summary_json);
    suite_add_tcase(suite, tc);

    tc = tcase_create("good");
    tcase_add_test(tc, test_base_set_parses);
    tcase_add_test(tc, test_limits_are_inclusive);
    tcase_add_test(tc, test_stage_and_question_counts);
    tcase_add_test(tc, test_other_files_are_ignored);
    suite_add_tcase(suite, tc);

    tc = tcase_create("bad");
    tcase_add_loop_test(tc, test_bad_set, 0, (int)N_BAD_CASES);
    tcase_add_loop_test(tc, test_set_missing_a_required_key_loads, 0, (int)N_MISSING_KEY_CASES);
    tcase_add_test(tc, test_duplicate_set_ids);
    tcase_add_test(tc, test_first_error_stops_loading);
    tcase_add_test(tc, test_empty_directory);
    tcase_add_test(tc, test_missing_directory_and_file);
    tcase_add_test(tc, test_messages_are_sanitised);
    tcase_add_test(tc, test_short_error_buffer);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(qset_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
