#include "thou/qset.h"
#include "thou/json.h"
#include "thou/text.h"
#include "thou/buf.h"
#include "thou/mem.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NO_OFFSET SIZE_MAX

/* BCP 47 tags in practice ("en", "pt-BR", "sr-Latn-RS") stay well under this. */
#define LANGUAGE_MAX_BYTES 35

/*
 * The position finder gives up on deeper nesting: a question set is five
 * levels deep, and an explicit stack this size keeps a hostile file from
 * costing more than a little memory.
 */
#define SCAN_MAX_DEPTH 4096

/* Real paths are short; a long one (deep nesting, a huge unknown key) is cut
 * so the explanation after it still fits the caller's buffer. */
#define PATH_SHOWN_MAX 160

struct thou_qset_ref {
    const char *id;
    size_t stage;
    size_t question;
};

struct thou_qset_registry {
    size_t n_sets;
    struct thou_qset **sets; /* sorted by id */
};

/* ---- UTF-8 --------------------------------------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is not
 * one: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
    unsigned lead = s[0];
    size_t extra;
    unsigned long code_point;
    unsigned long min;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf) {
        extra = 1;
        code_point = lead & 0x1f;
        min = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
        extra = 2;
        code_point = lead & 0x0f;
        min = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        extra = 3;
        code_point = lead & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len <= extra)
        return 0;
    for (size_t i = 1; i <= extra; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        code_point = (code_point << 6) | (s[i] & 0x3f);
    }
    if (code_point < min || code_point > 0x10ffff || (code_point >= 0xd800 && code_point <= 0xdfff))
        return 0;
    return extra + 1;
}

static void utf8_append(struct thou_buf *out, unsigned long code_point)
{
    unsigned char bytes[4];
    size_t n;
    if (code_point < 0x80) {
        bytes[0] = (unsigned char)code_point;
        n = 1;
    } else if (code_point < 0x800) {
        bytes[0] = (unsigned char)(0xc0 | (code_point >> 6));
        bytes[1] = (unsigned char)(0x80 | (code_point & 0x3f));
        n = 2;
    } else if (code_point < 0x10000) {
        bytes[0] = (unsigned char)(0xe0 | (code_point >> 12));
        bytes[1] = (unsigned char)(0x80 | ((code_point >> 6) & 0x3f));
        bytes[2] = (unsigned char)(0x80 | (code_point & 0x3f));
        n = 3;
    } else {
        bytes[0] = (unsigned char)(0xf0 | (code_point >> 18));
        bytes[1] = (unsigned char)(0x80 | ((code_point >> 12) & 0x3f));
        bytes[2] = (unsigned char)(0x80 | ((code_point >> 6) & 0x3f));
        bytes[3] = (unsigned char)(0x80 | (code_point & 0x3f));
        n = 4;
    }
    thou_buf_append(out, bytes, n);
}

/* ---- error messages ------------------------------------------------------------------------ */

/*
 * Messages end up in logs and terminals: the path and the keys in them come
 * from the file, so control characters and broken UTF-8 become '?'.
 */
static void put_error(char *errbuf, size_t errlen, struct thou_buf *msg)
{
    if (!errbuf || errlen == 0)
        return;
    unsigned char *s = (unsigned char *)msg->data;
    size_t i = 0;
    while (s && i < msg->len) {
        size_t n = utf8_sequence_length(s + i, msg->len - i);
        if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
            s[i] = '?';
            n = 1;
        }
        i += n;
    }
    /* cut a message that does not fit on a character boundary */
    size_t len = msg->len < errlen ? msg->len : errlen - 1;
    while (len > 0 && len < msg->len && (s[len] & 0xc0) == 0x80)
        len--;
    if (len)
        memcpy(errbuf, s, len);
    errbuf[len] = '\0';
}

__attribute__((format(printf, 3, 4))) static void set_error(char *errbuf, size_t errlen,
                                                            const char *fmt, ...)
{
    struct thou_buf msg;
    thou_buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    thou_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    put_error(errbuf, errlen, &msg);
    thou_buf_release(&msg);
}

/* ---- position finder ----------------------------------------------------------------------- */

/*
 * jansson keeps no positions in parsed values, so an error found while
 * validating is located by walking the raw text again: a small scanner that
 * tracks the path of keys and indices ("stages[2].questions[0].id") to
 * where each member or element starts. It runs only to report an error.
 * It never trusts the text: on anything malformed it simply stops, which is
 * also what locates syntax errors and invalid bytes.
 */

/*
 * Called where each value starts: item is where its key (or the value itself,
 * in an array or at the root) starts. Called again with value == NO_OFFSET
 * when an object or array at path has closed, item being just past its end.
 * Returns true to stop the scan.
 */
typedef bool (*scan_visit_fn)(void *ctx, const char *path, size_t item, size_t value);

struct scan_frame {
    bool is_object;
    size_t index;    /* of the current element, in arrays */
    size_t path_len; /* length of the container's own path */
};

struct scanner {
    const char *text;
    size_t len;
    size_t pos;
    struct thou_buf path;
    struct scan_frame *frames;
    size_t depth;
    size_t cap;
    scan_visit_fn visit;
    void *ctx;
};

enum scan_step {
    SCAN_AT_VALUE, /* positioned at the next value, its path set */
    SCAN_COMPLETE, /* a value was consumed */
    SCAN_STOP,     /* end of the text, or text that is not well-formed */
};

static const char *path_text(const struct thou_buf *path)
{
    return path->data ? path->data : "";
}

static void path_truncate(struct thou_buf *path, size_t len)
{
    path->len = len;
    if (path->data)
        path->data[len] = '\0';
}

static void path_push_key(struct thou_buf *path, const char *key, size_t key_len)
{
    if (path->len)
        thou_buf_append(path, ".", 1);
    thou_buf_append(path, key, key_len);
}

static void path_push_index(struct thou_buf *path, size_t index)
{
    thou_buf_printf(path, "[%zu]", index);
}

static void skip_space(struct scanner *s)
{
    while (s->pos < s->len) {
        char c = s->text[s->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return;
        s->pos++;
    }
}

static bool read_hex4(struct scanner *s, unsigned long *value)
{
    if (s->len - s->pos < 4)
        return false;
    *value = 0;
    for (size_t i = 0; i < 4; i++) {
        int digit = thou_hex_value(s->text[s->pos + i]);
        if (digit < 0)
            return false;
        *value = (*value << 4) | (unsigned long)digit;
    }
    s->pos += 4;
    return true;
}

/* Decode the string at s->pos (its opening quote) into out, so that paths
 * match the keys jansson decoded. */
static bool decode_string(struct scanner *s, struct thou_buf *out)
{
    static const char escaped[] = "\"\\/bfnrt";
    static const char meant[] = "\"\\/\b\f\n\r\t";
    s->pos++;
    while (s->pos < s->len) {
        char c = s->text[s->pos++];
        if (c == '"')
            return true;
        if (c != '\\') {
            if (out)
                thou_buf_append(out, &c, 1);
            continue;
        }
        if (s->pos >= s->len)
            return false;
        char e = s->text[s->pos++];
        const char *which = e ? strchr(escaped, e) : NULL;
        if (which) {
            if (out)
                thou_buf_append(out, &meant[which - escaped], 1);
            continue;
        }
        unsigned long code_point;
        if (e != 'u' || !read_hex4(s, &code_point))
            return false;
        if (code_point >= 0xd800 && code_point <= 0xdbff && s->len - s->pos >= 6 &&
            s->text[s->pos] == '\\' && s->text[s->pos + 1] == 'u') {
            size_t saved = s->pos;
            unsigned long low;
            s->pos += 2;
            if (read_hex4(s, &low) && low >= 0xdc00 && low <= 0xdfff)
                code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
            else
                s->pos = saved;
        }
        if (code_point >= 0xd800 && code_point <= 0xdfff)
            code_point = 0xfffd; /* a lone surrogate; jansson refuses these anyway */
        if (out)
            utf8_append(out, code_point);
    }
    return false;
}

static bool skip_atom(struct scanner *s)
{
    if (s->text[s->pos] == '"')
        return decode_string(s, NULL);
    size_t start = s->pos;
    while (s->pos < s->len && s->text[s->pos] != '\0' &&
           strchr("+-.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  s->text[s->pos]))
        s->pos++;
    return s->pos > start;
}

/* Read a member's key and its colon; the path gains the key. */
static enum scan_step read_key(struct scanner *s, size_t *item)
{
    if (s->pos >= s->len || s->text[s->pos] != '"')
        return SCAN_STOP;
    *item = s->pos;
    if (s->path.len)
        thou_buf_append(&s->path, ".", 1);
    if (!decode_string(s, &s->path))
        return SCAN_STOP;
    skip_space(s);
    if (s->pos >= s->len || s->text[s->pos] != ':')
        return SCAN_STOP;
    s->pos++;
    skip_space(s);
    return SCAN_AT_VALUE;
}

/* Consume the closing bracket; false when the visitor stops the scan. */
static bool close_container(struct scanner *s)
{
    s->pos++;
    s->depth--;
    return !s->visit(s->ctx, path_text(&s->path), s->pos, NO_OFFSET);
}

static enum scan_step open_container(struct scanner *s, bool is_object, size_t *item)
{
    if (s->depth == SCAN_MAX_DEPTH)
        return SCAN_STOP;
    if (s->depth == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->frames = thou_xrealloc(s->frames, s->cap * sizeof *s->frames);
    }
    s->frames[s->depth++] = (struct scan_frame){is_object, 0, s->path.len};
    s->pos++;
    skip_space(s);
    if (s->pos >= s->len)
        return SCAN_STOP;
    if (s->text[s->pos] == (is_object ? '}' : ']'))
        return close_container(s) ? SCAN_COMPLETE : SCAN_STOP;
    if (is_object)
        return read_key(s, item);
    path_push_index(&s->path, 0);
    *item = NO_OFFSET;
    return SCAN_AT_VALUE;
}

/* After a complete value: close the containers that end here and move on to
 * the next member or element. */
static enum scan_step next_item(struct scanner *s, size_t *item)
{
    while (s->depth) {
        struct scan_frame *frame = &s->frames[s->depth - 1];
        path_truncate(&s->path, frame->path_len);
        skip_space(s);
        if (s->pos >= s->len)
            return SCAN_STOP;
        char c = s->text[s->pos];
        if (c == (frame->is_object ? '}' : ']')) {
            if (!close_container(s))
                return SCAN_STOP;
            continue;
        }
        if (c != ',')
            return SCAN_STOP;
        s->pos++;
        skip_space(s);
        if (frame->is_object)
            return read_key(s, item);
        path_push_index(&s->path, ++frame->index);
        *item = NO_OFFSET;
        return SCAN_AT_VALUE;
    }
    return SCAN_STOP;
}

static void scan_text(const char *text, size_t len, scan_visit_fn visit, void *ctx)
{
    struct scanner s = {.text = text, .len = len, .visit = visit, .ctx = ctx};
    thou_buf_init(&s.path);
    size_t item = NO_OFFSET;
    skip_space(&s);
    enum scan_step step = SCAN_AT_VALUE;
    while (step == SCAN_AT_VALUE && s.pos < s.len) {
        size_t value = s.pos;
        if (visit(ctx, path_text(&s.path), item != NO_OFFSET ? item : value, value))
            break;
        char c = s.text[s.pos];
        if (c == '{' || c == '[')
            step = open_container(&s, c == '{', &item);
        else
            step = skip_atom(&s) ? SCAN_COMPLETE : SCAN_STOP;
        if (step == SCAN_COMPLETE)
            step = next_item(&s, &item);
    }
    free(s.frames);
    thou_buf_release(&s.path);
}

struct find_path {
    const char *want;
    size_t item;
    size_t value;
    bool found;
};

static bool visit_find_path(void *ctx, const char *path, size_t item, size_t value)
{
    struct find_path *find = ctx;
    if (value == NO_OFFSET || strcmp(path, find->want) != 0)
        return false;
    find->item = item;
    find->value = value;
    find->found = true;
    return true;
}

/*
 * The innermost member or element still open at an offset or, past the end of
 * a container, the container: what a syntax error there is "in".
 */
struct find_offset {
    size_t offset;
    size_t item;
    struct thou_buf path;
};

static bool visit_find_offset(void *ctx, const char *path, size_t item, size_t value)
{
    struct find_offset *find = ctx;
    if (value == NO_OFFSET) {
        if (item > find->offset)
            return true;
    } else {
        if (item >= find->offset)
            return true;
        find->item = item;
    }
    thou_buf_reset(&find->path);
    thou_buf_puts(&find->path, path);
    return false;
}

static void offset_to_line_column(const char *text, size_t len, size_t offset, unsigned *line,
                                  unsigned *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            /* columns count characters, as jansson's do */
            (*column)++;
        }
    }
}

/* ---- validation ---------------------------------------------------------------------------- */

struct parse_ctx {
    const char *source;
    const char *text;
    size_t len;
    struct thou_buf path; /* of the value being checked */
    char *errbuf;
    size_t errlen;
    struct thou_qset *const *loaded; /* sets already in the registry */
    size_t n_loaded;
};

__attribute__((format(printf, 4, 0))) static void
report_at(struct parse_ctx *ctx, size_t offset, const char *path, const char *fmt, va_list ap)
{
    unsigned line;
    unsigned column;
    offset_to_line_column(ctx->text, ctx->len, offset, &line, &column);
    struct thou_buf msg;
    thou_buf_init(&msg);
    thou_buf_printf(&msg, "%s:%u:%u: ", ctx->source, line, column);
    if (path && strlen(path) > PATH_SHOWN_MAX)
        thou_buf_printf(&msg, "%.*s...: ", PATH_SHOWN_MAX, path);
    else if (path && path[0])
        thou_buf_printf(&msg, "%s: ", path);
    thou_buf_vprintf(&msg, fmt, ap);
    put_error(ctx->errbuf, ctx->errlen, &msg);
    thou_buf_release(&msg);
}

__attribute__((format(printf, 4, 5))) static void report(struct parse_ctx *ctx, size_t offset,
                                                         const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_at(ctx, offset, path, fmt, ap);
    va_end(ap);
}

/*
 * Report a problem with the value at ctx->path (or with its key, at_key) and
 * return status. A path that is not in the text, such as a missing key, is
 * located at its nearest ancestor that is.
 */
__attribute__((format(printf, 4, 5))) static enum thou_status
fail(struct parse_ctx *ctx, enum thou_status status, bool at_key, const char *fmt, ...)
{
    struct thou_buf where;
    thou_buf_init(&where);
    thou_buf_puts(&where, path_text(&ctx->path));
    size_t offset = 0;
    for (;;) {
        struct find_path find = {.want = path_text(&where)};
        scan_text(ctx->text, ctx->len, visit_find_path, &find);
        if (find.found) {
            offset = at_key ? find.item : find.value;
            break;
        }
        if (where.len == 0)
            break;
        size_t cut = where.len;
        while (cut > 0 && where.data[cut - 1] != '.' && where.data[cut - 1] != '[')
            cut--;
        path_truncate(&where, cut ? cut - 1 : 0);
        at_key = false;
    }
    thou_buf_release(&where);

    va_list ap;
    va_start(ap, fmt);
    report_at(ctx, offset, path_text(&ctx->path), fmt, ap);
    va_end(ap);
    return status;
}

enum field_kind {
    FIELD_ID,       /* ^[a-z0-9][a-z0-9-]{0,63}$ */
    FIELD_LINE,     /* one line of text */
    FIELD_TEXT,     /* text that may hold line breaks */
    FIELD_LANGUAGE, /* a BCP 47 tag */
    FIELD_UINT,     /* an integer within [min, max] */
    FIELD_BOOL,
    FIELD_ARRAY, /* of [min, max] elements, handed back to the caller */
};

struct field_spec {
    const char *key;
    enum field_kind kind;
    bool required;
    size_t min;
    size_t max;    /* bytes for text, the bound for integers, elements for arrays */
    size_t offset; /* of the destination in the target struct */
};

static const struct field_spec set_fields[] = {
    {"id", FIELD_ID, true, 0, 0, offsetof(struct thou_qset, id)},
    {"version", FIELD_UINT, true, 1, 1000000000, offsetof(struct thou_qset, version)},
    {"title", FIELD_LINE, true, 0, THOU_QSET_MAX_TITLE_BYTES, offsetof(struct thou_qset, title)},
    {"language", FIELD_LANGUAGE, true, 0, 0, offsetof(struct thou_qset, language)},
    {"description", FIELD_LINE, true, 0, THOU_QSET_MAX_TEXT_BYTES,
     offsetof(struct thou_qset, description)},
    {"minutes", FIELD_UINT, true, 1, THOU_QSET_MAX_SET_MINUTES,
     offsetof(struct thou_qset, minutes)},
    {"stages", FIELD_ARRAY, true, 1, THOU_QSET_MAX_STAGES, 0},
};

static const struct field_spec stage_fields[] = {
    {"id", FIELD_ID, true, 0, 0, offsetof(struct thou_qset_stage, id)},
    {"title", FIELD_LINE, true, 0, THOU_QSET_MAX_TITLE_BYTES,
     offsetof(struct thou_qset_stage, title)},
    {"intro", FIELD_TEXT, true, 0, THOU_QSET_MAX_TEXT_BYTES,
     offsetof(struct thou_qset_stage, intro)},
    {"minutes", FIELD_UINT, false, 1, THOU_QSET_MAX_STAGE_MINUTES,
     offsetof(struct thou_qset_stage, minutes)},
    {"listening", FIELD_BOOL, true, 0, 0, offsetof(struct thou_qset_stage, listening)},
    {"questions", FIELD_ARRAY, true, 1, THOU_QSET_MAX_QUESTIONS, 0},
};

static const struct field_spec question_fields[] = {
    {"id", FIELD_ID, true, 0, 0, offsetof(struct thou_qset_question, id)},
    {"text", FIELD_TEXT, true, 0, THOU_QSET_MAX_TEXT_BYTES,
     offsetof(struct thou_qset_question, text)},
    {"hint", FIELD_TEXT, false, 0, THOU_QSET_MAX_TEXT_BYTES,
     offsetof(struct thou_qset_question, hint)},
    {"reveal_together", FIELD_BOOL, false, 0, 0,
     offsetof(struct thou_qset_question, reveal_together)},
};

#define N_FIELDS(table) (sizeof(table) / sizeof((table)[0]))

static bool is_valid_id(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > THOU_QSET_MAX_ID_BYTES || id[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* ^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$: the shape of a BCP 47 tag, not a registry check. */
static bool is_valid_language(const char *tag)
{
    size_t len = strlen(tag);
    size_t i = 0;
    if (len > LANGUAGE_MAX_BYTES)
        return false;
    while (i < len && tag[i] >= 'a' && tag[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    while (i < len) {
        if (tag[i++] != '-')
            return false;
        size_t start = i;
        while (i < len && ((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= 'A' && tag[i] <= 'Z') ||
                           (tag[i] >= '0' && tag[i] <= '9')))
            i++;
        if (i == start || i - start > 8)
            return false;
    }
    return true;
}

static enum thou_status check_text(struct parse_ctx *ctx, const struct field_spec *spec,
                                   const char *text, size_t len)
{
    if (len > spec->max)
        return fail(ctx, THOU_ETOOBIG, false, "is %zu bytes long, over the limit of %zu", len,
                    spec->max);
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n' && spec->kind == FIELD_LINE)
            return fail(ctx, THOU_EINVAL, false, "must be a single line");
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            return fail(ctx, THOU_EINVAL, false, "must not hold control characters (byte 0x%02x)",
                        c);
        if (c != ' ' && c != '\n')
            blank = false;
    }
    if (blank)
        return fail(ctx, THOU_EINVAL, false, "must not be empty");
    return THOU_OK;
}

static enum thou_status parse_field(struct parse_ctx *ctx, const struct field_spec *spec,
                                    json_t *value, void *target, json_t **array)
{
    char *slot = (char *)target + spec->offset;
    enum thou_status rc;

    switch (spec->kind) {
    case FIELD_ID:
    case FIELD_LINE:
    case FIELD_TEXT:
    case FIELD_LANGUAGE:
        if (!json_is_string(value))
            return fail(ctx, THOU_EINVAL, false, "must be a string, not %s",
                        thou_json_type_name(value));
        break;
    case FIELD_UINT:
        if (!json_is_integer(value))
            return fail(ctx, THOU_EINVAL, false, "must be an integer, not %s",
                        thou_json_type_name(value));
        break;
    case FIELD_BOOL:
        if (!json_is_boolean(value))
            return fail(ctx, THOU_EINVAL, false, "must be true or false, not %s",
                        thou_json_type_name(value));
        break;
    case FIELD_ARRAY:
        if (!json_is_array(value))
            return fail(ctx, THOU_EINVAL, false, "must be an array, not %s",
                        thou_json_type_name(value));
        break;
    }

    switch (spec->kind) {
    case FIELD_ID:
        if (!is_valid_id(json_string_value(value)))
            return fail(ctx, THOU_EINVAL, false,
                        "'%s' is not a valid id: use 1 to 64 of a-z, 0-9 and '-', not starting "
                        "with '-'",
                        json_string_value(value));
        *(char **)(void *)slot = thou_xstrdup(json_string_value(value));
        return THOU_OK;
    case FIELD_LANGUAGE:
        if (!is_valid_language(json_string_value(value)))
            return fail(ctx, THOU_EINVAL, false,
                        "'%s' is not a language tag such as \"en\" or \"pt-BR\"",
                        json_string_value(value));
        *(char **)(void *)slot = thou_xstrdup(json_string_value(value));
        return THOU_OK;
    case FIELD_LINE:
    case FIELD_TEXT:
        rc = check_text(ctx, spec, json_string_value(value), json_string_length(value));
        if (rc)
            return rc;
        *(char **)(void *)slot = thou_xstrdup(json_string_value(value));
        return THOU_OK;
    case FIELD_UINT: {
        json_int_t n = json_integer_value(value);
        if (n < (json_int_t)spec->min || n > (json_int_t)spec->max) {
            if (spec->max >= 1000000000)
                return fail(ctx, THOU_EINVAL, false, "must be an integer of at least %zu",
                            spec->min);
            return fail(ctx, THOU_EINVAL, false, "must be an integer from %zu to %zu", spec->min,
                        spec->max);
        }
        *(unsigned *)(void *)slot = (unsigned)n;
        return THOU_OK;
    }
    case FIELD_BOOL:
        *(bool *)(void *)slot = json_is_true(value);
        return THOU_OK;
    case FIELD_ARRAY: {
        size_t n = json_array_size(value);
        if (n < spec->min)
            return fail(ctx, THOU_EINVAL, false, "must hold at least %zu element%s", spec->min,
                        spec->min == 1 ? "" : "s");
        if (n > spec->max)
            return fail(ctx, THOU_ETOOBIG, false, "holds %zu elements, over the limit of %zu", n,
                        spec->max);
        *array = value;
        return THOU_OK;
    }
    }
    return THOU_OK;
}

static void append_known_keys(struct thou_buf *out, const struct field_spec *fields,
                              size_t n_fields)
{
    for (size_t i = 0; i < n_fields; i++)
        thou_buf_printf(out, "%s%s", i ? ", " : "", fields[i].key);
}

/*
 * Check an object against a field table, in the order of the text so the
 * first problem reported is the first one a reader meets, and store its
 * values into target. The table's one array field is handed back in *array.
 */
static enum thou_status parse_fields(struct parse_ctx *ctx, json_t *object,
                                     const struct field_spec *fields, size_t n_fields, void *target,
                                     json_t **array)
{
    if (!json_is_object(object))
        return fail(ctx, THOU_EINVAL, false, "must be an object, not %s",
                    thou_json_type_name(object));

    size_t base = ctx->path.len;
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        const struct field_spec *spec = NULL;
        for (size_t i = 0; i < n_fields && !spec; i++) {
            if (strcmp(fields[i].key, key) == 0)
                spec = &fields[i];
        }
        path_push_key(&ctx->path, key, strlen(key));
        enum thou_status rc;
        if (spec) {
            rc = parse_field(ctx, spec, value, target, array);
        } else {
            struct thou_buf known;
            thou_buf_init(&known);
            append_known_keys(&known, fields, n_fields);
            rc = fail(ctx, THOU_EINVAL, true, "unknown key (known keys: %s)", known.data);
            thou_buf_release(&known);
        }
        path_truncate(&ctx->path, base);
        if (rc)
            return rc;
    }

    for (size_t i = 0; i < n_fields; i++) {
        if (!fields[i].required || json_object_get(object, fields[i].key))
            continue;
        path_push_key(&ctx->path, fields[i].key, strlen(fields[i].key));
        enum thou_status rc = fail(ctx, THOU_EINVAL, false, "required key is missing");
        path_truncate(&ctx->path, base);
        return rc;
    }
    return THOU_OK;
}

/* The path of an id, for "already used by ..." messages. */
static void format_question_path(struct thou_buf *out, size_t stage, size_t question)
{
    thou_buf_printf(out, "stages[%zu].questions[%zu].id", stage, question);
}

static enum thou_status check_question_unique(struct parse_ctx *ctx, const struct thou_qset *set,
                                              size_t stage_index, size_t question_index)
{
    const char *id = set->stages[stage_index].questions[question_index].id;
    for (size_t s = 0; s <= stage_index; s++) {
        const struct thou_qset_stage *stage = &set->stages[s];
        size_t end = s == stage_index ? question_index : stage->n_questions;
        for (size_t q = 0; q < end; q++) {
            if (strcmp(stage->questions[q].id, id) != 0)
                continue;
            struct thou_buf first;
            thou_buf_init(&first);
            format_question_path(&first, s, q);
            size_t base = ctx->path.len;
            path_push_key(&ctx->path, "id", 2);
            enum thou_status rc = fail(ctx, THOU_EINVAL, false,
                                       "question id '%s' is already used by %s", id, first.data);
            path_truncate(&ctx->path, base);
            thou_buf_release(&first);
            return rc;
        }
    }
    return THOU_OK;
}

static enum thou_status parse_stage(struct parse_ctx *ctx, json_t *json, struct thou_qset *set,
                                    size_t stage_index)
{
    struct thou_qset_stage *stage = &set->stages[stage_index];
    json_t *questions = NULL;
    enum thou_status rc =
        parse_fields(ctx, json, stage_fields, N_FIELDS(stage_fields), stage, &questions);
    if (rc)
        return rc;

    size_t base = ctx->path.len;
    for (size_t s = 0; s < stage_index; s++) {
        if (strcmp(set->stages[s].id, stage->id) != 0)
            continue;
        path_push_key(&ctx->path, "id", 2);
        rc = fail(ctx, THOU_EINVAL, false, "stage id '%s' is already used by stages[%zu].id",
                  stage->id, s);
        path_truncate(&ctx->path, base);
        return rc;
    }

    stage->n_questions = json_array_size(questions);
    stage->questions = thou_xcalloc(stage->n_questions, sizeof *stage->questions);
    for (size_t q = 0; q < stage->n_questions; q++) {
        path_push_key(&ctx->path, "questions", 9);
        path_push_index(&ctx->path, q);
        rc = parse_fields(ctx, json_array_get(questions, q), question_fields,
                          N_FIELDS(question_fields), &stage->questions[q], NULL);
        if (!rc)
            rc = check_question_unique(ctx, set, stage_index, q);
        path_truncate(&ctx->path, base);
        if (rc)
            return rc;
    }
    set->n_questions += stage->n_questions;
    return THOU_OK;
}

static enum thou_status parse_set(struct parse_ctx *ctx, json_t *root, struct thou_qset *set)
{
    json_t *stages = NULL;
    enum thou_status rc = parse_fields(ctx, root, set_fields, N_FIELDS(set_fields), set, &stages);
    if (rc)
        return rc;

    for (size_t i = 0; i < ctx->n_loaded; i++) {
        if (strcmp(ctx->loaded[i]->id, set->id) != 0)
            continue;
        path_push_key(&ctx->path, "id", 2);
        rc = fail(ctx, THOU_EEXIST, false, "set id '%s' is already used by '%s'", set->id,
                  ctx->loaded[i]->source);
        path_truncate(&ctx->path, 0);
        return rc;
    }

    set->n_stages = json_array_size(stages);
    set->stages = thou_xcalloc(set->n_stages, sizeof *set->stages);
    for (size_t s = 0; s < set->n_stages; s++) {
        path_push_key(&ctx->path, "stages", 6);
        path_push_index(&ctx->path, s);
        rc = parse_stage(ctx, json_array_get(stages, s), set, s);
        path_truncate(&ctx->path, 0);
        if (rc)
            return rc;
    }
    return THOU_OK;
}

/* ---- building a set ------------------------------------------------------------------------ */

static int compare_refs(const void *a, const void *b)
{
    const struct thou_qset_ref *ra = a;
    const struct thou_qset_ref *rb = b;
    return strcmp(ra->id, rb->id);
}

static void build_plan(struct thou_qset *set)
{
    set->flow_stages = thou_xcalloc(set->n_stages, sizeof *set->flow_stages);
    set->flow_questions = thou_xcalloc(set->n_questions, sizeof *set->flow_questions);
    set->by_id = thou_xcalloc(set->n_questions, sizeof *set->by_id);
    size_t next = 0;
    for (size_t s = 0; s < set->n_stages; s++) {
        const struct thou_qset_stage *stage = &set->stages[s];
        set->flow_stages[s] = (struct thou_flow_stage){
            .listening = stage->listening,
            .n_questions = stage->n_questions,
            .questions = &set->flow_questions[next],
        };
        for (size_t q = 0; q < stage->n_questions; q++, next++) {
            set->flow_questions[next] = (struct thou_flow_question){
                .id = stage->questions[q].id,
                .reveal_together = stage->questions[q].reveal_together,
            };
            set->by_id[next] = (struct thou_qset_ref){stage->questions[q].id, s, q};
        }
    }
    qsort(set->by_id, set->n_questions, sizeof *set->by_id, compare_refs);
    set->plan = (struct thou_flow_plan){.n_stages = set->n_stages, .stages = set->flow_stages};
    /* Validation already refused anything the flow rules cannot drive (no
     * stage, an empty stage, a repeated question id): an invariant here. */
    assert(thou_flow_plan_check(&set->plan) == THOU_OK);
}

/* Invalid bytes are refused before jansson sees the text, so the message can
 * say what is wrong and where, in the field that holds them. */
static enum thou_status check_encoding(struct parse_ctx *ctx)
{
    const unsigned char *text = (const unsigned char *)ctx->text;
    if (ctx->len >= 3 && text[0] == 0xef && text[1] == 0xbb && text[2] == 0xbf) {
        report(ctx, 0, NULL,
               "the file starts with a byte order mark; save it as UTF-8 without one");
        return THOU_EINVAL;
    }
    size_t i = 0;
    while (i < ctx->len) {
        size_t n = text[i] ? utf8_sequence_length(text + i, ctx->len - i) : 0;
        if (n) {
            i += n;
            continue;
        }
        struct find_offset find = {.offset = i};
        thou_buf_init(&find.path);
        scan_text(ctx->text, ctx->len, visit_find_offset, &find);
        if (text[i])
            report(ctx, i, path_text(&find.path),
                   "invalid UTF-8 (byte 0x%02x); save the file as UTF-8", text[i]);
        else
            report(ctx, i, path_text(&find.path), "NUL byte in the text");
        thou_buf_release(&find.path);
        return THOU_EINVAL;
    }
    return THOU_OK;
}

static enum thou_status report_json_error(struct parse_ctx *ctx, const json_error_t *error)
{
    if (json_error_code(error) == json_error_out_of_memory) {
        set_error(ctx->errbuf, ctx->errlen, "%s: out of memory", ctx->source);
        return THOU_ENOMEM;
    }
    size_t position = error->position > 0 ? (size_t)error->position : 0;
    struct find_offset find = {.offset = position, .item = NO_OFFSET};
    thou_buf_init(&find.path);
    scan_text(ctx->text, ctx->len, visit_find_offset, &find);
    if (json_error_code(error) == json_error_duplicate_key && find.item != NO_OFFSET) {
        /* jansson stops just after the second key; point at its start */
        report(ctx, find.item, path_text(&find.path),
               "duplicate key (each key may appear once per object)");
    } else {
        report(ctx, position, path_text(&find.path), "syntax error: %s", error->text);
    }
    thou_buf_release(&find.path);
    return THOU_EINVAL;
}

static enum thou_status parse_text(const char *source, const char *text, size_t len,
                                   struct thou_qset *const *loaded, size_t n_loaded,
                                   struct thou_qset **out, char *errbuf, size_t errlen)
{
    struct parse_ctx ctx = {
        .source = source,
        .text = text,
        .len = len,
        .errbuf = errbuf,
        .errlen = errlen,
        .loaded = loaded,
        .n_loaded = n_loaded,
    };
    json_t *root = NULL;
    struct thou_qset *set = NULL;
    enum thou_status rc;

    *out = NULL;
    thou_buf_init(&ctx.path);
    rc = check_encoding(&ctx);
    if (rc)
        goto out;

    json_error_t error;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        rc = report_json_error(&ctx, &error);
        goto out;
    }

    set = thou_xcalloc(1, sizeof *set);
    set->source = thou_xstrdup(source);
    rc = parse_set(&ctx, root, set);
    if (rc)
        goto out;
    build_plan(set);
    *out = set;
    set = NULL;
out:
    thou_qset_free(set);
    json_decref(root);
    thou_buf_release(&ctx.path);
    return rc;
}

enum thou_status thou_qset_parse(const char *source, const char *text, size_t len,
                                 struct thou_qset **out, char *errbuf, size_t errlen)
{
    return parse_text(source, text, len, NULL, 0, out, errbuf, errlen);
}

/* ---- files --------------------------------------------------------------------------------- */

static enum thou_status read_set_file(const char *path, char **out, size_t *out_len, char *errbuf,
                                      size_t errlen)
{
    int fd = -1;
    char *text = NULL;
    enum thou_status rc = THOU_OK;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? THOU_ENOTFOUND : THOU_EIO;
        set_error(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = THOU_EIO;
        set_error(errbuf, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = THOU_EINVAL;
        set_error(errbuf, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > THOU_QSET_MAX_FILE_BYTES) {
        rc = THOU_ETOOBIG;
        set_error(errbuf, errlen, "%s: file is %lld bytes, over the limit of %d (256 KiB)", path,
                  (long long)st.st_size, THOU_QSET_MAX_FILE_BYTES);
        goto out;
    }

    /* One byte more than fstat promised tells a file that grew meanwhile. */
    size_t cap = (size_t)st.st_size + 1;
    size_t len = 0;
    text = thou_xmalloc(cap + 1);
    while (len < cap) {
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = THOU_EIO;
            set_error(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == cap) {
        rc = THOU_EIO;
        set_error(errbuf, errlen, "%s: the file changed while it was read", path);
        goto out;
    }
    text[len] = '\0';
    *out = text;
    *out_len = len;
    text = NULL;
out:
    free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}

static enum thou_status load_file(const char *path, struct thou_qset *const *loaded,
                                  size_t n_loaded, struct thou_qset **out, char *errbuf,
                                  size_t errlen)
{
    char *text;
    size_t len;
    *out = NULL;
    enum thou_status rc = read_set_file(path, &text, &len, errbuf, errlen);
    if (rc)
        return rc;
    rc = parse_text(path, text, len, loaded, n_loaded, out, errbuf, errlen);
    free(text);
    return rc;
}

enum thou_status thou_qset_load_file(const char *path, struct thou_qset **out, char *errbuf,
                                     size_t errlen)
{
    return load_file(path, NULL, 0, out, errbuf, errlen);
}

void thou_qset_free(struct thou_qset *set)
{
    if (!set)
        return;
    for (size_t s = 0; s < set->n_stages; s++) {
        struct thou_qset_stage *stage = &set->stages[s];
        for (size_t q = 0; q < stage->n_questions; q++) {
            free(stage->questions[q].id);
            free(stage->questions[q].text);
            free(stage->questions[q].hint);
        }
        free(stage->questions);
        free(stage->id);
        free(stage->title);
        free(stage->intro);
    }
    free(set->stages);
    free(set->id);
    free(set->title);
    free(set->language);
    free(set->description);
    free(set->source);
    free(set->flow_stages);
    free(set->flow_questions);
    free(set->by_id);
    free(set);
}

/* ---- queries ------------------------------------------------------------------------------- */

const struct thou_flow_plan *thou_qset_plan(const struct thou_qset *set)
{
    return &set->plan;
}

static int compare_id_to_ref(const void *key, const void *element)
{
    const struct thou_qset_ref *ref = element;
    return strcmp(key, ref->id);
}

const struct thou_qset_question *thou_qset_find_question(const struct thou_qset *set,
                                                         const char *question_id,
                                                         size_t *stage_index,
                                                         size_t *question_index)
{
    const struct thou_qset_ref *ref =
        bsearch(question_id, set->by_id, set->n_questions, sizeof *set->by_id, compare_id_to_ref);
    if (!ref)
        return NULL;
    if (stage_index)
        *stage_index = ref->stage;
    if (question_index)
        *question_index = ref->question;
    return &set->stages[ref->stage].questions[ref->question];
}

json_t *thou_qset_summary_json(const struct thou_qset *set)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "id", set->id, "version",
                     (json_int_t)set->version, "title", set->title, "language", set->language,
                     "description", set->description, "minutes", (json_int_t)set->minutes, "stages",
                     (json_int_t)set->n_stages, "questions", (json_int_t)set->n_questions);
}

static json_t *stage_to_json(const struct thou_qset_stage *stage)
{
    json_t *questions = json_array();
    json_t *result = NULL;
    if (!questions)
        goto out;
    for (size_t q = 0; q < stage->n_questions; q++) {
        const struct thou_qset_question *question = &stage->questions[q];
        json_t *item =
            json_pack("{s:s, s:s, s:s*, s:b}", "id", question->id, "text", question->text, "hint",
                      question->hint, "reveal_together", question->reveal_together);
        if (json_array_append_new(questions, item) != 0)
            goto out;
    }
    result =
        json_pack("{s:s, s:s, s:s}", "id", stage->id, "title", stage->title, "intro", stage->intro);
    if (!result)
        goto out;
    if ((stage->minutes &&
         json_object_set_new(result, "minutes", json_integer(stage->minutes)) != 0) ||
        json_object_set_new(result, "listening", json_boolean(stage->listening)) != 0 ||
        json_object_set(result, "questions", questions) != 0) {
        json_decref(result);
        result = NULL;
    }
out:
    json_decref(questions);
    return result;
}

json_t *thou_qset_to_json(const struct thou_qset *set)
{
    json_t *stages = json_array();
    json_t *result = NULL;
    if (!stages)
        goto out;
    for (size_t s = 0; s < set->n_stages; s++) {
        if (json_array_append_new(stages, stage_to_json(&set->stages[s])) != 0)
            goto out;
    }
    result = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:O}", "id", set->id, "version",
                       (json_int_t)set->version, "title", set->title, "language", set->language,
                       "description", set->description, "minutes", (json_int_t)set->minutes,
                       "stages", stages);
out:
    json_decref(stages);
    return result;
}

/* ---- registry ------------------------------------------------------------------------------ */

static bool is_set_file_name(const char *name)
{
    size_t len = strlen(name);
    /* dot files are editor back-ups and the like, never sets */
    return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".json") == 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_sets(const void *a, const void *b)
{
    const struct thou_qset *sa = *(const struct thou_qset *const *)a;
    const struct thou_qset *sb = *(const struct thou_qset *const *)b;
    return strcmp(sa->id, sb->id);
}

enum thou_status thou_qset_registry_load(const char *dir, struct thou_qset_registry **out,
                                         char *errbuf, size_t errlen)
{
    DIR *d = NULL;
    char **names = NULL;
    size_t n_names = 0;
    size_t cap = 0;
    struct thou_qset_registry *reg = NULL;
    struct thou_buf path;
    enum thou_status rc = THOU_OK;

    *out = NULL;
    thou_buf_init(&path);
    d = opendir(dir);
    if (!d) {
        rc = errno == ENOENT ? THOU_ENOTFOUND : THOU_EIO;
        set_error(errbuf, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        goto out;
    }
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(d);
        if (!entry)
            break;
        if (!is_set_file_name(entry->d_name))
            continue;
        if (n_names == cap) {
            cap = cap ? cap * 2 : 8;
            names = thou_xrealloc(names, cap * sizeof *names);
        }
        names[n_names++] = thou_xstrdup(entry->d_name);
    }
    if (errno) {
        rc = THOU_EIO;
        set_error(errbuf, errlen, "%s: cannot read directory: %s", dir, strerror(errno));
        goto out;
    }
    if (n_names == 0) {
        rc = THOU_ENOTFOUND;
        set_error(errbuf, errlen, "%s: no question sets (*.json files) in this directory", dir);
        goto out;
    }
    /* name order makes "the first error" the same on every machine */
    qsort(names, n_names, sizeof *names, compare_names);

    reg = thou_xcalloc(1, sizeof *reg);
    reg->sets = thou_xcalloc(n_names, sizeof *reg->sets);
    size_t dir_len = strlen(dir);
    for (size_t i = 0; i < n_names; i++) {
        thou_buf_reset(&path);
        thou_buf_puts(&path, dir);
        if (dir_len && dir[dir_len - 1] != '/')
            thou_buf_puts(&path, "/");
        thou_buf_puts(&path, names[i]);
        struct thou_qset *set;
        rc = load_file(path.data, reg->sets, reg->n_sets, &set, errbuf, errlen);
        if (rc)
            goto out;
        reg->sets[reg->n_sets++] = set;
    }
    qsort(reg->sets, reg->n_sets, sizeof *reg->sets, compare_sets);
    *out = reg;
    reg = NULL;
out:
    thou_qset_registry_free(reg);
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    thou_buf_release(&path);
    return rc;
}

void thou_qset_registry_free(struct thou_qset_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_sets; i++)
        thou_qset_free(reg->sets[i]);
    free(reg->sets);
    free(reg);
}

static int compare_id_to_set(const void *key, const void *element)
{
    const struct thou_qset *set = *(const struct thou_qset *const *)element;
    return strcmp(key, set->id);
}

const struct thou_qset *thou_qset_registry_find(const struct thou_qset_registry *reg,
                                                const char *id)
{
    struct thou_qset *const *found =
        bsearch(id, reg->sets, reg->n_sets, sizeof *reg->sets, compare_id_to_set);
    return found ? *found : NULL;
}

size_t thou_qset_registry_count(const struct thou_qset_registry *reg)
{
    return reg->n_sets;
}

const struct thou_qset *thou_qset_registry_get(const struct thou_qset_registry *reg, size_t index)
{
    return index < reg->n_sets ? reg->sets[index] : NULL;
}

json_t *thou_qset_registry_summary_json(const struct thou_qset_registry *reg)
{
    json_t *list = json_array();
    if (!list)
        return NULL;
    for (size_t i = 0; i < reg->n_sets; i++) {
        if (json_array_append_new(list, thou_qset_summary_json(reg->sets[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}
