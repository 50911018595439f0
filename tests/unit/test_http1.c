/*
 * The HTTP/1.1 message syntax of server/http1.c, byte by byte: request heads
 * (what is accepted, what each refusal is), the limit boundary, percent
 * decoding and the incremental chunked-body decoder.
 *
 * Every parse runs on a heap copy exactly as long as the input plus the one
 * writable byte the contract promises, so a sanitizer build catches any read
 * or write past it.
 */
#include "thou/http1.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX 4096

/* The copy the last parse or decode ran on; the teardown frees it. */
static char *copy;

static void setup(void)
{
    copy = NULL;
}

static void teardown(void)
{
    free(copy);
    copy = NULL;
}

/* Parse len bytes of text (which may hold NULs) with limit max. */
static enum thou_http1_error parse_n(const char *text, size_t len, size_t max,
                                     struct thou_http1_head *head)
{
    free(copy);
    copy = malloc(len + 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    copy[len] = '#'; /* the writable byte after the input, deliberately no NUL */
    return thou_http1_parse_head(copy, len, max, head);
}

static enum thou_http1_error parse(const char *text, struct thou_http1_head *head)
{
    return parse_n(text, strlen(text), DEFAULT_MAX, head);
}

static const char *error_name(enum thou_http1_error rc)
{
    switch (rc) {
    case THOU_HTTP1_OK:
        return "OK";
    case THOU_HTTP1_INCOMPLETE:
        return "INCOMPLETE";
    case THOU_HTTP1_BAD_REQUEST:
        return "BAD_REQUEST";
    case THOU_HTTP1_TOO_LARGE:
        return "TOO_LARGE";
    case THOU_HTTP1_BAD_VERSION:
        return "BAD_VERSION";
    case THOU_HTTP1_NOT_IMPLEMENTED:
        return "NOT_IMPLEMENTED";
    }
    return "?";
}

#define ck_assert_parse(got, want, what)                                                           \
    ck_assert_msg((got) == (want), "%s: got %s, expected %s", (what), error_name(got),             \
                  error_name(want))

/* A string the parser returned must lie inside the head it parsed. */
static void assert_in_head(const char *s, const struct thou_http1_head *head)
{
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(s >= copy && s < copy + head->head_len, "string outside the head");
}

/* ---- valid heads ---------------------------------------------------------------- */

START_TEST(test_simple_get)
{
    static const char text[] = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_str_eq(head.method, "GET");
    ck_assert_str_eq(head.path, "/");
    assert_in_head(head.method, &head);
    assert_in_head(head.path, &head);
    ck_assert_uint_eq(head.minor, 1);
    ck_assert_uint_eq(head.head_len, strlen(text));
    ck_assert(head.keep_alive);
    ck_assert(!head.has_length);
    ck_assert(!head.chunked);
    ck_assert(!head.expect_continue);
    ck_assert_ptr_null(head.content_type);
    ck_assert_ptr_null(head.authorization);
    ck_assert_ptr_null(head.last_event_id);
    ck_assert_ptr_null(head.if_none_match);
}
END_TEST

START_TEST(test_no_header_fields)
{
    static const char text[] = "GET /healthz HTTP/1.0\r\n\r\n";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_str_eq(head.path, "/healthz");
    ck_assert_uint_eq(head.minor, 0);
    ck_assert_uint_eq(head.head_len, strlen(text));
    ck_assert(!head.keep_alive);
}
END_TEST

/* head_len ends at the blank line: a body or the next request is not the head's. */
START_TEST(test_head_len_excludes_body)
{
    static const char head_text[] =
        "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
    char text[256];
    snprintf(text, sizeof(text), "%shello", head_text);
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_uint_eq(head.head_len, strlen(head_text));
    ck_assert(head.has_length);
    ck_assert_uint_eq(head.content_length, 5);
    ck_assert_str_eq(head.method, "POST");
    ck_assert_mem_eq(copy + head.head_len, "hello", 5);

    /* NULs in the body are none of the head's business. */
    static const char with_nul[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n\0\0";
    ck_assert_parse(parse_n(with_nul, sizeof(with_nul) - 1, DEFAULT_MAX, &head), THOU_HTTP1_OK,
                    "NUL in the body");
    ck_assert_uint_eq(head.head_len, sizeof(with_nul) - 3);
}
END_TEST

static const char *const methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "M-SEARCH", "X_Custom!~", "get",
};

START_TEST(test_methods)
{
    char text[128];
    snprintf(text, sizeof(text), "%s /x HTTP/1.1\r\nHost: x\r\n\r\n", methods[_i]);
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_str_eq(head.method, methods[_i]);
    ck_assert_str_eq(head.path, "/x");
}
END_TEST

static const struct {
    const char *target;
    const char *path;
} targets[] = {
    {"/", "/"},
    {"/a/b/c", "/a/b/c"},
    {"/a/b?x=1&y=2", "/a/b"},
    {"/?only-query", "/"},
    {"/a#fragment", "/a"},
    {"/a?x=1#f", "/a"},
    {"/a#f?x=1", "/a"},
    {"/a%20b%2F", "/a%20b%2F"}, /* still percent-encoded */
    {"/api/rooms/Zq3xY7wV9uT1sR5pO2nM4k/events", "/api/rooms/Zq3xY7wV9uT1sR5pO2nM4k/events"},
    {"//double", "//double"},
    {"/~user/it's(ok)*!$&+,;=:@", "/~user/it's(ok)*!$&+,;=:@"},
};

START_TEST(test_targets)
{
    char text[256];
    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", targets[_i].target);
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_str_eq(head.path, targets[_i].path);
}
END_TEST

START_TEST(test_field_names_case_insensitive)
{
    static const char text[] = "POST /a HTTP/1.1\r\n"
                               "hOsT: example\r\n"
                               "content-length: 3\r\n"
                               "CONTENT-TYPE: application/json\r\n"
                               "aUtHoRiZaTiOn: Bearer abc\r\n"
                               "last-event-id: 7\r\n"
                               "IF-NONE-MATCH: \"tag\"\r\n"
                               "eXpEcT: 100-Continue\r\n"
                               "\r\n";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert(head.has_length);
    ck_assert_uint_eq(head.content_length, 3);
    ck_assert_str_eq(head.content_type, "application/json");
    ck_assert_str_eq(head.authorization, "Bearer abc");
    ck_assert_str_eq(head.last_event_id, "7");
    ck_assert_str_eq(head.if_none_match, "\"tag\"");
    ck_assert(head.expect_continue);
    assert_in_head(head.content_type, &head);
    assert_in_head(head.authorization, &head);
    assert_in_head(head.last_event_id, &head);
    assert_in_head(head.if_none_match, &head);
}
END_TEST

START_TEST(test_value_whitespace_trimmed)
{
    static const char text[] = "POST /a HTTP/1.1\r\n"
                               "Host:  example \r\n"
                               "Content-Type: \t application/json; charset=utf-8 \t \r\n"
                               "Authorization:Bearer  two  spaces\r\n"
                               "Content-Length:\t42\t\r\n"
                               "Last-Event-ID:   \r\n"
                               "X-Unknown: anything at all\r\n"
                               "\r\n";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_str_eq(head.content_type, "application/json; charset=utf-8");
    ck_assert_str_eq(head.authorization, "Bearer  two  spaces"); /* inner spaces stay */
    ck_assert_uint_eq(head.content_length, 42);
    ck_assert_str_eq(head.last_event_id, "");
}
END_TEST

/* Visible ASCII and obs-text are field content; the parser keeps them. */
START_TEST(test_value_obs_text)
{
    static const char text[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9 \x80\xff\r\n\r\n";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
}
END_TEST

static const struct {
    const char *version;
    const char *connection[3]; /* Connection header values, NULL-terminated */
    bool keep_alive;
} keep_cases[] = {
    {"1.1", {NULL}, true},
    {"1.1", {"close", NULL}, false},
    {"1.1", {"Close", NULL}, false},
    {"1.1", {"CLOSE", NULL}, false},
    {"1.1", {"keep-alive", NULL}, true},
    {"1.1", {"keep-alive, close", NULL}, false},
    {"1.1", {"Upgrade,close", NULL}, false},
    {"1.1", {" , close , ", NULL}, false},
    {"1.1", {"closed", NULL}, true},
    {"1.1", {"not-close", NULL}, true},
    {"1.1", {"keep-alive", "close", NULL}, false},
    {"1.0", {NULL}, false},
    {"1.0", {"keep-alive", NULL}, true},
    {"1.0", {"Keep-Alive", NULL}, true},
    {"1.0", {"Upgrade, keep-alive", NULL}, true},
    {"1.0", {"keep-alive, close", NULL}, false},
    {"1.0", {"close", "keep-alive", NULL}, false},
    {"1.0", {"keep-alive-ish", NULL}, false},
    {"1.0", {"close", NULL}, false},
};

START_TEST(test_keep_alive)
{
    char text[512];
    /* HTTP/1.0 may omit Host, and does here: keep-alive must not depend on it. */
    bool http11 = strcmp(keep_cases[_i].version, "1.1") == 0;
    size_t n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/%s\r\n%s", keep_cases[_i].version,
                                http11 ? "Host: x\r\n" : "");
    for (size_t i = 0; keep_cases[_i].connection[i]; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "Connection: %s\r\n",
                              keep_cases[_i].connection[i]);
    snprintf(text + n, sizeof(text) - n, "\r\n");
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_msg(head.keep_alive == keep_cases[_i].keep_alive, "%s: keep_alive %d", text,
                  head.keep_alive);
}
END_TEST

START_TEST(test_expect_continue)
{
    struct thou_http1_head head;
    ck_assert_parse(
        parse("PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
              &head),
        THOU_HTTP1_OK, "expect");
    ck_assert(head.expect_continue);
    ck_assert_parse(parse("PUT /a HTTP/1.1\r\nHost: x\r\nExpect:  100-CONTINUE \r\n\r\n", &head),
                    THOU_HTTP1_OK, "expect, other case");
    ck_assert(head.expect_continue);
    ck_assert_parse(parse("PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", &head),
                    THOU_HTTP1_OK, "unknown expectation");
    ck_assert(!head.expect_continue);
    ck_assert_parse(parse("PUT /a HTTP/1.1\r\nHost: x\r\n\r\n", &head), THOU_HTTP1_OK, "no expect");
    ck_assert(!head.expect_continue);
}
END_TEST

START_TEST(test_chunked_framing)
{
    struct thou_http1_head head;
    ck_assert_parse(
        parse("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &head),
        THOU_HTTP1_OK, "chunked");
    ck_assert(head.chunked);
    ck_assert(!head.has_length);
    ck_assert_parse(
        parse("POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding:  Chunked \r\n\r\n", &head),
        THOU_HTTP1_OK, "Chunked");
    ck_assert(head.chunked);
}
END_TEST

/*
 * RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
 * framing; the server MUST close the connection after it, keep-alive or
 * not (refusing it outright would do too).
 */
START_TEST(test_http10_transfer_encoding_closes)
{
    struct thou_http1_head head;
    enum thou_http1_error rc = parse(
        "POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", &head);
    ck_assert_msg(rc == THOU_HTTP1_BAD_REQUEST || (rc == THOU_HTTP1_OK && !head.keep_alive),
                  "HTTP/1.0 with Transfer-Encoding: %s, keep_alive %d", error_name(rc),
                  head.keep_alive);
}
END_TEST

static const struct {
    const char *value;
    uint64_t length;
} length_cases[] = {
    {"0", 0},
    {"1", 1},
    {"007", 7},
    {"65536", 65536},
    {"1099511627776", 1099511627776ull},
    {"1844674407370955160", 1844674407370955160ull},
};

START_TEST(test_content_length)
{
    char text[256];
    snprintf(text, sizeof(text), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n",
             length_cases[_i].value);
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert(head.has_length);
    ck_assert_uint_eq(head.content_length, length_cases[_i].length);
}
END_TEST

START_TEST(test_equal_lengths_accepted)
{
    struct thou_http1_head head;
    ck_assert_parse(parse("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX: y\r\n"
                          "content-length: 012\r\n\r\n",
                          &head),
                    THOU_HTTP1_OK, "equal duplicate lengths");
    ck_assert(head.has_length);
    ck_assert_uint_eq(head.content_length, 12);
}
END_TEST

/* The buffer may move after a parse: every returned string is NUL-ended in place. */
START_TEST(test_strings_terminated_in_place)
{
    static const char text[] =
        "GET /p?q HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\nNEXT";
    struct thou_http1_head head;
    ck_assert_parse(parse(text, &head), THOU_HTTP1_OK, text);
    ck_assert_uint_eq(strlen(head.method), 3);
    ck_assert_uint_eq(strlen(head.path), 2);
    ck_assert_uint_eq(strlen(head.authorization), 8);
    ck_assert_mem_eq(copy + head.head_len, "NEXT", 4); /* the next request is untouched */
}
END_TEST

/* ---- incomplete and too large ------------------------------------------------------ */

static const char *const incomplete_cases[] = {
    "",
    "G",
    "GET / HTTP/1.1",
    "GET / HTTP/1.1\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r",
    "GET / HTTP/1.1\n\n", /* bare LFs end no head */
    "GET / HTTP/1.1\r\n\n\r\n",
};

START_TEST(test_incomplete)
{
    struct thou_http1_head head;
    ck_assert_parse(parse(incomplete_cases[_i], &head), THOU_HTTP1_INCOMPLETE,
                    incomplete_cases[_i]);
}
END_TEST

/* A head of exactly the limit fits; one byte more does not. */
START_TEST(test_limit_boundary)
{
    char text[600];
    size_t n = (size_t)snprintf(text, sizeof(text), "GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    while (n < 500)
        text[n++] = 'p';
    memcpy(text + n, "\r\n\r\n", 5);
    size_t len = n + 4;
    struct thou_http1_head head;

    ck_assert_parse(parse_n(text, len, len, &head), THOU_HTTP1_OK, "head == max");
    ck_assert_uint_eq(head.head_len, len);
    ck_assert_parse(parse_n(text, len, len + 1, &head), THOU_HTTP1_OK, "head < max");
    ck_assert_parse(parse_n(text, len, len - 1, &head), THOU_HTTP1_TOO_LARGE, "head == max + 1");
    ck_assert_parse(parse_n(text, len, len - 2, &head), THOU_HTTP1_TOO_LARGE,
                    "the blank line straddles max");
    ck_assert_parse(parse_n(text, len, 16, &head), THOU_HTTP1_TOO_LARGE, "far over max");

    /* Without a blank line: INCOMPLETE below the limit, TOO_LARGE at it. */
    size_t partial = len - 4;
    ck_assert_parse(parse_n(text, partial, partial + 1, &head), THOU_HTTP1_INCOMPLETE,
                    "len == max - 1");
    ck_assert_parse(parse_n(text, partial, partial, &head), THOU_HTTP1_TOO_LARGE, "len == max");
    ck_assert_parse(parse_n(text, partial, partial - 1, &head), THOU_HTTP1_TOO_LARGE, "len > max");
}
END_TEST

/* Bytes after a head that fits (pipelined requests) do not count against the limit. */
START_TEST(test_pipelined_bytes_beyond_limit)
{
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    size_t first = n;
    while (n < sizeof(text) - 1)
        text[n++] = 'G';
    struct thou_http1_head head;
    ck_assert_parse(parse_n(text, n, 64, &head), THOU_HTTP1_OK, "pipelined");
    ck_assert_uint_eq(head.head_len, first);
    ck_assert_str_eq(head.path, "/first");
}
END_TEST

/* ---- refusals ---------------------------------------------------------------------- */

/* A literal and its length, NULs included. */
#define TEXT(literal) literal, sizeof(literal) - 1

/*
 * Every HTTP/1.1 head here carries a Host, so each is refused for the fault
 * it names: were that check lost, the head would parse, not fall back on
 * the missing Host and still read as refused.
 */

static const struct head_case {
    const char *what;
    const char *text;
    size_t len;
    enum thou_http1_error rc;
} refusals[] = {
    /* The request line. */
    {"empty request line", TEXT("\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"leading space", TEXT(" GET / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"method only", TEXT("GET\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bad method char (", TEXT("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bad method char \"", TEXT("GE\"T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bad method char :", TEXT("GET: / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bad method char @", TEXT("G@T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bad method char {", TEXT("G{T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"control byte in method", TEXT("GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"tab in method", TEXT("GE\tT / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"8-bit method", TEXT("G\xc3\x89T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"missing target", TEXT("GET HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"empty target", TEXT("GET  HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"no version", TEXT("GET /\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"no version, trailing space", TEXT("GET / \r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"lower-case protocol", TEXT("GET / http/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"other protocol", TEXT("GET / HTTPS/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"absolute-form", TEXT("GET http://example/ HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"asterisk-form", TEXT("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"authority-form", TEXT("CONNECT example:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"relative target", TEXT("GET a/b HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"space in target", TEXT("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"tab in target", TEXT("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"control byte in target", TEXT("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"escape byte in target", TEXT("GET /a\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"DEL in target", TEXT("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"8-bit byte in target", TEXT("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"control byte in query", TEXT("GET /a?x=\x02 HTTP/1.1\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"bare LF in target", TEXT("GET /a\nb HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"bare CR in target", TEXT("GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    /* NUL anywhere in the head. */
    {"NUL in the target", TEXT("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"NUL in the method", TEXT("G\0T / HTTP/1.1\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"NUL in a field value", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"NUL in a field name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX\0Y: b\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"NUL hides Content-Length",
     TEXT("GET / HTTP/1.1\r\nHost: x\r\nX: \0\r\nContent-Length: 5\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    /* Line structure of the fields. */
    {"bare LF in a field line", TEXT("GET / HTTP/1.1\r\nHost: x\r\nA: b\nC: d\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"bare CR in a field line", TEXT("GET / HTTP/1.1\r\nHost: x\r\nA: b\rC: d\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"bare LF smuggles a length",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nX: y\nContent-Length: 5\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"obs-fold with a space", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"obs-fold with a tab", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"space before the first field", TEXT("GET / HTTP/1.1\r\n X-A: b\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"missing colon", TEXT("GET / HTTP/1.1\r\nX-A b\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"empty field name", TEXT("GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"space before the colon", TEXT("GET / HTTP/1.1\r\nX-A : b\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"tab before the colon", TEXT("GET / HTTP/1.1\r\nX-A\t: b\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"space inside the name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"( in the name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX(y): z\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"/ in the name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX/Y: z\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"control byte in the name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX\x01: z\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"8-bit byte in the name", TEXT("GET / HTTP/1.1\r\nHost: x\r\nH\xc3\xb6: z\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"control byte in a value", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"DEL in a value", TEXT("GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    /* Content-Length. */
    {"empty length", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"blank length", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  \t \r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"letters", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"digits then a letter", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"negative", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"plus sign", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"hex", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"two numbers", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"decimal point", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1.0\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"2^64", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"2^64 + 5 wraps to 5",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"far over 2^64",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999999999\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"two different lengths",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"different lengths, zero first",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\ncontent-length: 100\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"a list of lengths", TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    /* Both framings. */
    {"length then chunked",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"chunked then length",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"chunked then zero length",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"chunked twice",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
          "chunked\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    /* Versions. */
    {"HTTP/2.0", TEXT("GET / HTTP/2.0\r\n\r\n"), THOU_HTTP1_BAD_VERSION},
    {"HTTP/1.2", TEXT("GET / HTTP/1.2\r\n\r\n"), THOU_HTTP1_BAD_VERSION},
    {"HTTP/0.9", TEXT("GET / HTTP/0.9\r\n\r\n"), THOU_HTTP1_BAD_VERSION},
    {"HTTP/3.0", TEXT("GET / HTTP/3.0\r\n\r\n"), THOU_HTTP1_BAD_VERSION},
    {"HTTP/2.0 with fields", TEXT("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), THOU_HTTP1_BAD_VERSION},
    /* Transfer codings. */
    {"gzip", TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
     THOU_HTTP1_NOT_IMPLEMENTED},
    {"chunked, gzip",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
     THOU_HTTP1_NOT_IMPLEMENTED},
    {"gzip, chunked",
     TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     THOU_HTTP1_NOT_IMPLEMENTED},
    {"identity", TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"),
     THOU_HTTP1_NOT_IMPLEMENTED},
    {"deflate", TEXT("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: deflate\r\n\r\n"),
     THOU_HTTP1_NOT_IMPLEMENTED},
};

START_TEST(test_refusals)
{
    const struct head_case *c = &refusals[_i];
    struct thou_http1_head head;
    ck_assert_parse(parse_n(c->text, c->len, DEFAULT_MAX, &head), c->rc, c->what);
}
END_TEST

/*
 * A bare CR or LF inside the request line is a malformed request like one
 * inside a field line (400), not a version thou does not speak (505).
 */
static const struct head_case bare_line_breaks[] = {
    {"bare LF ends the request line", TEXT("GET / HTTP/1.1\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"bare CR in the request line", TEXT("GET / HTTP/1.1\rHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"bare LF after the version", TEXT("POST / HTTP/1.1\nContent-Length: 5\r\nHost: x\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
};

START_TEST(test_bare_line_break_in_request_line)
{
    const struct head_case *c = &bare_line_breaks[_i];
    struct thou_http1_head head;
    ck_assert_parse(parse_n(c->text, c->len, DEFAULT_MAX, &head), c->rc, c->what);
}
END_TEST

/* ---- Host (RFC 9112 §3.2) --------------------------------------------------------- */

/* HTTP/1.1 needs exactly one Host; HTTP/1.0 predates it, but two are still two. */
static const struct head_case host_cases[] = {
    {"1.1 with Host", TEXT("GET / HTTP/1.1\r\nHost: example\r\n\r\n"), THOU_HTTP1_OK},
    {"1.1 with Host after other fields",
     TEXT("GET / HTTP/1.1\r\nAccept: */*\r\nHost: example\r\n\r\n"), THOU_HTTP1_OK},
    {"1.1, host in lower case", TEXT("GET / HTTP/1.1\r\nhost: example\r\n\r\n"), THOU_HTTP1_OK},
    {"1.1, HOST in upper case", TEXT("GET / HTTP/1.1\r\nHOST: example\r\n\r\n"), THOU_HTTP1_OK},
    /* A target without an authority is sent with an empty Host. */
    {"1.1 with an empty Host", TEXT("GET / HTTP/1.1\r\nHost:\r\n\r\n"), THOU_HTTP1_OK},
    {"1.1 without Host", TEXT("GET / HTTP/1.1\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"1.1, other fields but no Host",
     TEXT("POST / HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.1, X-Host is no Host", TEXT("GET / HTTP/1.1\r\nX-Host: example\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.1, Hosts is no Host", TEXT("GET / HTTP/1.1\r\nHosts: example\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.1, two Host fields, same value",
     TEXT("GET / HTTP/1.1\r\nHost: example\r\nHost: example\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"1.1, two Host fields, different values",
     TEXT("GET / HTTP/1.1\r\nHost: example\r\nHost: evil\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"1.1, two Host fields apart",
     TEXT("GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nHost: example\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.1, two Host fields in different case",
     TEXT("GET / HTTP/1.1\r\nHost: example\r\nhost: example\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"1.1, two Host fields, one empty", TEXT("GET / HTTP/1.1\r\nHost:\r\nHost: example\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.1, three Host fields", TEXT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\nHost: a\r\n\r\n"),
     THOU_HTTP1_BAD_REQUEST},
    {"1.0 without Host", TEXT("GET / HTTP/1.0\r\n\r\n"), THOU_HTTP1_OK},
    {"1.0 without Host, other fields",
     TEXT("GET / HTTP/1.0\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"), THOU_HTTP1_OK},
    {"1.0 with Host", TEXT("GET / HTTP/1.0\r\nHost: example\r\n\r\n"), THOU_HTTP1_OK},
    {"1.0 with host in lower case", TEXT("GET / HTTP/1.0\r\nhost: example\r\n\r\n"), THOU_HTTP1_OK},
    {"1.0, two Host fields, same value",
     TEXT("GET / HTTP/1.0\r\nHost: example\r\nHost: example\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
    {"1.0, two Host fields, different values and case",
     TEXT("GET / HTTP/1.0\r\nHost: example\r\nHOST: evil\r\n\r\n"), THOU_HTTP1_BAD_REQUEST},
};

START_TEST(test_host)
{
    const struct head_case *c = &host_cases[_i];
    struct thou_http1_head head;
    ck_assert_parse(parse_n(c->text, c->len, DEFAULT_MAX, &head), c->rc, c->what);
    if (c->rc == THOU_HTTP1_OK)
        ck_assert_uint_eq(head.head_len, c->len);
}
END_TEST

/* ---- percent decoding ---------------------------------------------------------------- */

static const struct {
    const char *in;
    const char *out;
} unescape_cases[] = {
    {"", ""},
    {"/plain/path", "/plain/path"},
    {"/a%20b", "/a b"},
    {"%41%42%43", "ABC"},
    {"%2f%2F", "//"},
    {"%7e%7E", "~~"},
    {"%e2%82%ac", "\xe2\x82\xac"},
    {"%ff", "\xff"},
    {"%2541", "%41"}, /* decoded once, not twice */
    {"%%41", "%A"},
    {"%00", "%00"},
    {"a%00b", "a%00b"},
    {"%01%0a%0D%1f%1F", "%01%0a%0D%1f%1F"},
    {"%7f%7F", "%7f%7F"},
    {"%20%7e%1f", " ~%1f"},
    {"%zz", "%zz"},
    {"%g0", "%g0"},
    {"%4g", "%4g"},
    {"%-1", "%-1"},
    {"%", "%"},
    {"a%", "a%"},
    {"%4", "%4"},
    {"a%4", "a%4"},
    {"%%", "%%"},
    {"100%", "100%"},
};

START_TEST(test_unescape)
{
    char *s = strdup(unescape_cases[_i].in);
    ck_assert_ptr_nonnull(s);
    thou_http1_unescape(s);
    ck_assert_msg(strcmp(s, unescape_cases[_i].out) == 0, "'%s' became '%s', expected '%s'",
                  unescape_cases[_i].in, s, unescape_cases[_i].out);
    free(s);
}
END_TEST

/* ---- chunked bodies ------------------------------------------------------------------ */

struct decoded {
    int rc;
    size_t used;
    char data[512];
    size_t data_len;
};

/* Decode len bytes of input in one call. */
static void decode_all(const char *input, size_t len, struct decoded *out)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    free(copy);
    copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, input, len);
    size_t used = 0, data_len = 0;
    out->rc = thou_http1_chunked_decode(&chunked, copy, len, &used, &data_len);
    out->used = used;
    out->data_len = 0;
    if (out->rc < 0)
        return;
    ck_assert_uint_le(used, len);
    ck_assert_uint_le(data_len, used);
    ck_assert_uint_le(data_len, sizeof(out->data));
    memcpy(out->data, copy, data_len);
    out->data_len = data_len;
    if (out->rc == 0)
        ck_assert_msg(used == len, "needs more input but left %zu bytes", len - used);
}

/* Decode the same input one byte per call, as a slow client sends it. */
static void decode_bytewise(const char *input, size_t len, struct decoded *out)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < len; i++) {
        char byte = input[i];
        size_t used = 0, data_len = 0;
        out->rc = thou_http1_chunked_decode(&chunked, &byte, 1, &used, &data_len);
        if (out->rc < 0)
            return;
        ck_assert_uint_le(data_len, 1);
        if (data_len) {
            ck_assert_uint_lt(out->data_len, sizeof(out->data));
            out->data[out->data_len++] = byte;
        }
        if (out->rc == 1) {
            ck_assert_uint_eq(used, 1);
            out->used = i + 1;
            return;
        }
        ck_assert_uint_eq(used, 1);
        out->used = i + 1;
    }
}

/* Decode the input split in two at split: the second call gets what the first left. */
static void decode_split(const char *input, size_t len, size_t split, struct decoded *out)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    memset(out, 0, sizeof(*out));
    free(copy);
    copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, input, len);
    size_t used = 0, data_len = 0;
    out->rc = thou_http1_chunked_decode(&chunked, copy, split, &used, &data_len);
    if (out->rc < 0)
        return;
    memcpy(out->data, copy, data_len);
    out->data_len = data_len;
    out->used = used;
    if (out->rc == 1)
        return;
    ck_assert_uint_eq(used, split);
    out->rc = thou_http1_chunked_decode(&chunked, copy + split, len - split, &used, &data_len);
    if (out->rc < 0)
        return;
    memcpy(out->data + out->data_len, copy + split, data_len);
    out->data_len += data_len;
    out->used += used;
}

#define BODY(literal) literal, sizeof(literal) - 1

static const struct chunk_case {
    const char *what;
    const char *input;
    size_t len;
    int rc;
    const char *data; /* expected data (when rc >= 0) */
    size_t data_len;
    size_t used; /* expected consumed bytes; 0: all of them */
} chunk_cases[] = {
    {"one chunk", BODY("5\r\nhello\r\n0\r\n\r\n"), 1, BODY("hello"), 0},
    {"empty body", BODY("0\r\n\r\n"), 1, BODY(""), 0},
    {"several chunks", BODY("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"), 1,
     BODY("hello world!"), 0},
    {"hex sizes", BODY("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n"), 1,
     BODY("0123456789abcdefghij"), 0},
    {"size 0x10", BODY("10\r\n0123456789abcdef\r\n0\r\n\r\n"), 1, BODY("0123456789abcdef"), 0},
    {"leading zeros", BODY("0005\r\nhello\r\n000\r\n\r\n"), 1, BODY("hello"), 0},
    {"15 hex digits", BODY("000000000000005\r\nhello\r\n0\r\n\r\n"), 1, BODY("hello"), 0},
    {"CRLF inside data", BODY("4\r\n\r\n\r\n\r\n0\r\n\r\n"), 1, BODY("\r\n\r\n"), 0},
    {"binary data", BODY("3\r\n\0\xff\n\r\n0\r\n\r\n"), 1, BODY("\0\xff\n"), 0},
    {"extension", BODY("5;name=value\r\nhello\r\n0\r\n\r\n"), 1, BODY("hello"), 0},
    {"extensions everywhere", BODY("5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n"), 1, BODY("hello"),
     0},
    {"space before an extension", BODY("5 ;a=b\r\nhello\r\n0\t;x\r\n\r\n"), 1, BODY("hello"), 0},
    {"one trailer", BODY("5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"), 1, BODY("hello"), 0},
    {"two trailers", BODY("5\r\nhello\r\n0\r\nA: 1\r\nB: 2\r\n\r\n"), 1, BODY("hello"), 0},
    {"the next request is not consumed", BODY("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 1,
     BODY("hello"), 15},
    {"after trailers, nothing more is consumed", BODY("0\r\nA: b\r\n\r\nXYZ"), 1, BODY(""), 11},
    {"a partial size", BODY("1"), 0, BODY(""), 0},
    {"a partial size line", BODY("5\r"), 0, BODY(""), 0},
    {"partial data", BODY("5\r\nhel"), 0, BODY("hel"), 0},
    {"data without its CRLF yet", BODY("5\r\nhello"), 0, BODY("hello"), 0},
    {"no last chunk yet", BODY("5\r\nhello\r\n"), 0, BODY("hello"), 0},
    {"no final CRLF yet", BODY("5\r\nhello\r\n0\r\n"), 0, BODY("hello"), 0},
    {"inside a trailer", BODY("0\r\nX: y"), 0, BODY(""), 0},
    {"a huge chunk in progress", BODY("fffffffffffffff\r\nabc"), 0, BODY("abc"), 0},
    /* Malformed. */
    {"no digits", BODY("\r\nhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"extension without a size", BODY(";a=b\r\n"), -1, NULL, 0, 0},
    {"leading space", BODY(" 5\r\nhello\r\n"), -1, NULL, 0, 0},
    {"bad hex", BODY("g\r\n"), -1, NULL, 0, 0},
    {"bad hex after a digit", BODY("5x\r\nhello\r\n"), -1, NULL, 0, 0},
    {"0x prefix", BODY("0x5\r\nhello\r\n"), -1, NULL, 0, 0},
    {"negative", BODY("-5\r\nhello\r\n"), -1, NULL, 0, 0},
    {"data longer than its size", BODY("5\r\nhelloX\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"data shorter than its size", BODY("5\r\nhell\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"CR without LF after data", BODY("5\r\nhello\rX0\r\n\r\n"), -1, NULL, 0, 0},
    {"LF without CR after the size", BODY("5\nhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"CR without LF after the size", BODY("5\rhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"LF without CR after an extension", BODY("5;a=b\nhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"LF without CR after data", BODY("5\r\nhello\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"LF without CR after the last size", BODY("5\r\nhello\r\n0\n\r\n"), -1, NULL, 0, 0},
    {"CR CR at the end", BODY("0\r\n\r\r"), -1, NULL, 0, 0},
    {"CR CR after a trailer", BODY("0\r\nA: b\r\r\n\r\n"), -1, NULL, 0, 0},
    {"16 hex digits", BODY("0000000000000005\r\nhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {"a size over 60 bits", BODY("10000000000000000\r\n"), -1, NULL, 0, 0},
    {"a size of 2^64", BODY("ffffffffffffffff\r\n"), -1, NULL, 0, 0},
};

static void assert_decoded(const struct chunk_case *c, const struct decoded *got, const char *how)
{
    ck_assert_msg(got->rc == c->rc, "%s (%s): rc %d, expected %d", c->what, how, got->rc, c->rc);
    if (c->rc < 0)
        return;
    ck_assert_msg(got->data_len == c->data_len && memcmp(got->data, c->data, c->data_len) == 0,
                  "%s (%s): %zu data bytes '%.*s'", c->what, how, got->data_len, (int)got->data_len,
                  got->data);
    size_t used = c->used ? c->used : c->len;
    ck_assert_msg(got->used == used, "%s (%s): used %zu, expected %zu", c->what, how, got->used,
                  used);
}

START_TEST(test_chunked_all_at_once)
{
    const struct chunk_case *c = &chunk_cases[_i];
    struct decoded got;
    decode_all(c->input, c->len, &got);
    assert_decoded(c, &got, "all at once");
}
END_TEST

START_TEST(test_chunked_byte_by_byte)
{
    const struct chunk_case *c = &chunk_cases[_i];
    struct decoded got;
    decode_bytewise(c->input, c->len, &got);
    assert_decoded(c, &got, "byte by byte");
}
END_TEST

START_TEST(test_chunked_every_split)
{
    const struct chunk_case *c = &chunk_cases[_i];
    for (size_t split = 0; split <= c->len; split++) {
        struct decoded got;
        char how[32];
        snprintf(how, sizeof(how), "split at %zu", split);
        decode_split(c->input, c->len, split, &got);
        assert_decoded(c, &got, how);
    }
}
END_TEST

/* No input, no progress; the decoder waits. */
START_TEST(test_chunked_empty_input)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    char byte = 'x';
    size_t used = 99, data_len = 99;
    ck_assert_int_eq(thou_http1_chunked_decode(&chunked, &byte, 0, &used, &data_len), 0);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(data_len, 0);
}
END_TEST

/* A decoder is reusable after init: one body's state does not leak into the next. */
START_TEST(test_chunked_init_resets)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    char first[] = "ff\r\nabc";
    size_t used, data_len;
    ck_assert_int_eq(
        thou_http1_chunked_decode(&chunked, first, sizeof(first) - 1, &used, &data_len), 0);
    thou_http1_chunked_init(&chunked);
    char second[] = "2\r\nok\r\n0\r\n\r\n";
    ck_assert_int_eq(
        thou_http1_chunked_decode(&chunked, second, sizeof(second) - 1, &used, &data_len), 1);
    ck_assert_uint_eq(data_len, 2);
    ck_assert_mem_eq(second, "ok", 2);
}
END_TEST

/*
 * A bare LF is no line ending anywhere else in a chunked body; in the
 * trailer section it must not be either, or "0\r\n\n" ends the body for a
 * front end that accepts bare LFs while thou reads on (a smuggling shape).
 */
static const struct {
    const char *what;
    const char *input;
} bare_lf_trailers[] = {
    {"an empty line of a bare LF, then a request",
     "5\r\nhello\r\n0\r\n\nGET /smuggled HTTP/1.1\r\n\r\n"},
    {"a trailer line ended by a bare LF", "0\r\nX: y\nZ: w\r\n\r\n"},
    {"a bare LF as the final line", "0\r\n\n"},
};

START_TEST(test_chunked_bare_lf_in_trailers)
{
    const char *input = bare_lf_trailers[_i].input;
    struct decoded got;
    decode_all(input, strlen(input), &got);
    ck_assert_msg(got.rc == -1, "%s: accepted, rc %d after %zu of %zu bytes",
                  bare_lf_trailers[_i].what, got.rc, got.used, strlen(input));
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------ */

#define N(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *http1_suite(void)
{
    Suite *suite = suite_create("http1");

    TCase *heads = tcase_create("heads");
    tcase_add_checked_fixture(heads, setup, teardown);
    tcase_add_test(heads, test_simple_get);
    tcase_add_test(heads, test_no_header_fields);
    tcase_add_test(heads, test_head_len_excludes_body);
    tcase_add_loop_test(heads, test_methods, 0, N(methods));
    tcase_add_loop_test(heads, test_targets, 0, N(targets));
    tcase_add_test(heads, test_field_names_case_insensitive);
    tcase_add_test(heads, test_value_whitespace_trimmed);
    tcase_add_test(heads, test_value_obs_text);
    tcase_add_loop_test(heads, test_keep_alive, 0, N(keep_cases));
    tcase_add_test(heads, test_expect_continue);
    tcase_add_test(heads, test_chunked_framing);
    tcase_add_test(heads, test_http10_transfer_encoding_closes);
    tcase_add_loop_test(heads, test_content_length, 0, N(length_cases));
    tcase_add_test(heads, test_equal_lengths_accepted);
    tcase_add_test(heads, test_strings_terminated_in_place);
    suite_add_tcase(suite, heads);

    TCase *limits = tcase_create("limits");
    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_add_loop_test(limits, test_incomplete, 0, N(incomplete_cases));
    tcase_add_test(limits, test_limit_boundary);
    tcase_add_test(limits, test_pipelined_bytes_beyond_limit);
    suite_add_tcase(suite, limits);

    TCase *refused = tcase_create("refusals");
    tcase_add_checked_fixture(refused, setup, teardown);
    tcase_add_loop_test(refused, test_refusals, 0, N(refusals));
    tcase_add_loop_test(refused, test_bare_line_break_in_request_line, 0, N(bare_line_breaks));
    suite_add_tcase(suite, refused);

    TCase *host = tcase_create("host");
    tcase_add_checked_fixture(host, setup, teardown);
    tcase_add_loop_test(host, test_host, 0, N(host_cases));
    suite_add_tcase(suite, host);

    TCase *unescape = tcase_create("unescape");
    tcase_add_loop_test(unescape, test_unescape, 0, N(unescape_cases));
    suite_add_tcase(suite, unescape);

    TCase *chunked = tcase_create("chunked");
    tcase_add_checked_fixture(chunked, setup, teardown);
    tcase_add_loop_test(chunked, test_chunked_all_at_once, 0, N(chunk_cases));
    tcase_add_loop_test(chunked, test_chunked_byte_by_byte, 0, N(chunk_cases));
    tcase_add_loop_test(chunked, test_chunked_every_split, 0, N(chunk_cases));
    tcase_add_test(chunked, test_chunked_empty_input);
    tcase_add_test(chunked, test_chunked_init_resets);
    tcase_add_loop_test(chunked, test_chunked_bare_lf_in_trailers, 0, N(bare_lf_trailers));
    suite_add_tcase(suite, chunked);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(http1_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
