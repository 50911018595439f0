#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "thou/flow.h"
#include "thou/status.h"

/*
 * Question sets (DESIGN §5): JSON files in config/questions/, one set per
 * file, validated at start-up. The format, every field and its limits are
 * described in docs/question-sets.md.
 *
 * A loaded set is immutable: after thou_qset_registry_load() returns, the
 * registry and its sets may be read from any number of threads without
 * locking. Callers treat every struct below as read-only.
 *
 * Errors name the place of the problem in the usual compiler form,
 * "<file>:<line>:<column>: <field path>: <what is wrong>", e.g.
 * "config/questions/x.json:14:17: stages[0].questions[1].id: question id
 * 'q-one' is already used by stages[0].questions[0].id". Problems with the
 * file as a whole (too large, unreadable) name only the file.
 */

#define THOU_QSET_MAX_FILE_BYTES    (256 * 1024) /* checked before reading */
#define THOU_QSET_MAX_ID_BYTES      64           /* ids match ^[a-z0-9][a-z0-9-]{0,63}$ */
#define THOU_QSET_MAX_STAGES        16
#define THOU_QSET_MAX_QUESTIONS     64 /* per stage */
#define THOU_QSET_MAX_TITLE_BYTES   200
#define THOU_QSET_MAX_TEXT_BYTES    2000 /* description, intro, text, hint */
#define THOU_QSET_MAX_STAGE_MINUTES 120
#define THOU_QSET_MAX_SET_MINUTES   600

struct thou_qset_question {
    char *id; /* unique within the set, across stages */
    char *text;
    char *hint; /* for the listener; NULL when the set gives none */
    bool reveal_together;
};

struct thou_qset_stage {
    char *id; /* unique within the set */
    char *title;
    char *intro;
    unsigned minutes; /* suggested duration; 0 when the set gives none */
    bool listening;   /* the listener reflects back and the speaker confirms */
    size_t n_questions;
    struct thou_qset_question *questions;
};

struct thou_qset_ref; /* internal: the question index, sorted by id */

struct thou_qset {
    char *id; /* unique within a registry */
    unsigned version;
    char *title;
    char *language; /* a BCP 47 tag such as "en" or "de-CH" */
    char *description;
    unsigned minutes; /* suggested duration of the whole conversation */
    size_t n_stages;
    struct thou_qset_stage *stages;
    size_t n_questions; /* across all stages */
    char *source;       /* the file the set was loaded from */

    /* What the flow module sees; its arrays point into the set's own data. */
    struct thou_flow_plan plan;
    struct thou_flow_stage *flow_stages;
    struct thou_flow_question *flow_questions; /* all stages', in document order */
    struct thou_qset_ref *by_id;               /* n_questions entries */
};

/** All sets of one directory, sorted by id. Opaque. */
struct thou_qset_registry;

/**
 * Parse and validate one set from text in memory. source names the text in
 * error messages (normally its file path). On success *out is a new set that
 * the caller frees with thou_qset_free(); on failure *out is NULL, errbuf
 * (when not NULL) holds the message and the status is THOU_EINVAL (malformed
 * or invalid), THOU_ETOOBIG (over a limit) or THOU_ENOMEM. The file size
 * limit is thou_qset_load_file()'s: the caller bounds len.
 */
enum thou_status thou_qset_parse(const char *source, const char *text, size_t len,
                                 struct thou_qset **out, char *errbuf, size_t errlen);

/**
 * Read and validate one set file. Besides thou_qset_parse()'s statuses:
 * THOU_ENOTFOUND for a missing file, THOU_EIO for an unreadable one,
 * THOU_ETOOBIG for a file over THOU_QSET_MAX_FILE_BYTES (checked before it
 * is read) and THOU_EINVAL for something that is not a regular file.
 */
enum thou_status thou_qset_load_file(const char *path, struct thou_qset **out, char *errbuf,
                                     size_t errlen);

/** Free a set; NULL is a no-op. */
void thou_qset_free(struct thou_qset *set);

/** The set as the flow module sees it; owned by the set. */
const struct thou_flow_plan *thou_qset_plan(const struct thou_qset *set);

/**
 * Find a question by id. Returns it and stores its stage and its index
 * within that stage in *stage_index and *question_index (either may be
 * NULL), or returns NULL when the set has no such question.
 */
const struct thou_qset_question *thou_qset_find_question(const struct thou_qset *set,
                                                         const char *question_id,
                                                         size_t *stage_index,
                                                         size_t *question_index);

/**
 * The summary GET /api/sets lists: {"id", "version", "title", "language",
 * "description", "minutes", "stages": count, "questions": count}. New
 * reference owned by the caller; NULL when out of memory.
 */
json_t *thou_qset_summary_json(const struct thou_qset *set);

/**
 * The whole set in the file format, for GET /api/sets/{id}. Optional fields
 * are omitted when absent ("hint", a stage's "minutes"); "listening" and
 * "reveal_together" are always present. New reference; NULL when out of
 * memory.
 */
json_t *thou_qset_to_json(const struct thou_qset *set);

/**
 * Load every "*.json" file of dir (other names and dot files are ignored) in
 * name order. The first bad file stops loading: *out is NULL, errbuf holds
 * the message and the status is that of thou_qset_load_file(), or
 * THOU_EEXIST when two files share a set id, THOU_ENOTFOUND when dir is
 * missing or holds no set, THOU_EIO when it cannot be read. On success the
 * caller frees *out with thou_qset_registry_free().
 */
enum thou_status thou_qset_registry_load(const char *dir, struct thou_qset_registry **out,
                                         char *errbuf, size_t errlen);

/** Free a registry and all its sets; NULL is a no-op. */
void thou_qset_registry_free(struct thou_qset_registry *reg);

/** The set with this id, or NULL. Owned by the registry. */
const struct thou_qset *thou_qset_registry_find(const struct thou_qset_registry *reg,
                                                const char *id);

/** Number of sets; at least 1 for a loaded registry. */
size_t thou_qset_registry_count(const struct thou_qset_registry *reg);

/** The set at index (0 .. count-1) in id order, or NULL past the end. */
const struct thou_qset *thou_qset_registry_get(const struct thou_qset_registry *reg, size_t index);

/**
 * A JSON array of every set's summary in id order, the body of GET
 * /api/sets. New reference; NULL when out of memory.
 */
json_t *thou_qset_registry_summary_json(const struct thou_qset_registry *reg);
