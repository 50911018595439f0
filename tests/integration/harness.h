#pragma once

/*
 * Integration test harness: starts the real thou binary on 127.0.0.1 with
 * an ephemeral port and a temporary data directory, and talks to it over
 * HTTP (libcurl) and raw sockets (server-sent events).
 */

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct thou_proc {
    pid_t pid;
    unsigned port;
    char dir[256]; /* temporary directory: data/, server.log */
    char log_path[300];
    char data_dir[300];
    const char *extra[32]; /* extra arguments passed at every start */
    char store_url[300];   /* "": SQLite in data_dir; else passed as --store-url */
};

/**
 * The PostgreSQL cluster the tests may use (THOU_TEST_PG_URL, set by
 * script/test), or NULL when there is none.
 */
const char *pg_cluster_url(void);

/**
 * True when this run puts every started server on PostgreSQL
 * (THOU_TEST_STORE=postgresql): each proc_start gets a database of its own.
 */
bool pg_mode(void);

/** A new empty database in the test cluster; its URL into url. Aborts on failure. */
void pg_new_database(char *url, size_t urllen);

/**
 * Start thou on store_url (a second instance sharing another's database:
 * pass that one's store_url). Like proc_start otherwise.
 */
void proc_start_on(struct thou_proc *p, const char *store_url, const char *const *extra);

/** Make a temp dir and start thou with extra (NULL-terminated, may be NULL). Aborts on failure. */
void proc_start(struct thou_proc *p, const char *const *extra);

/** Start again on the same data directory and options (after a stop or a kill). */
void proc_restart(struct thou_proc *p);

/** SIGTERM and wait; returns the exit status (or 128+signal). */
int proc_stop(struct thou_proc *p);

/** SIGKILL and wait. */
void proc_kill9(struct thou_proc *p);

/** Stop if running (asserting a clean exit, status 0) and delete the temp dir. */
void proc_cleanup(struct thou_proc *p);

/** Run thou with args (NULL-terminated) to completion; returns exit code; stderr into err. */
int proc_run(const char *const *args, char *err, size_t errlen);

/** Read a whole file (caller frees); NULL when it cannot be read. */
char *read_file(const char *path, size_t *len);

/** Read the whole server log (caller frees). */
char *proc_log(const struct thou_proc *p, size_t *len);

/**
 * Run sql on the server's database (data/thou.db) through a connection of
 * its own, as an operator's sqlite3 shell would, while the server runs or
 * not: for states no request can make yet (a stage cap) or that take too
 * long to wait for (an expiry). Aborts the test when it fails.
 */
void proc_sql(const struct thou_proc *p, const char *sql);

struct http_reply {
    long status;
    char *body;
    size_t len;
    char *headers; /* raw header block */
    json_t *json;  /* parsed body when it is JSON, else NULL */
};

/**
 * Send a request. headers: NULL-terminated "Name: value" strings or NULL.
 * body may be NULL. Returns false on a transport failure.
 */
bool http_do(unsigned port, const char *method, const char *path, const char *const *headers,
             const char *body, size_t body_len, struct http_reply *reply);

/** From now on, http_do() speaks HTTPS trusting only ca_file; NULL: plain HTTP again. */
void http_use_tls(const char *ca_file);

/** Shorthand: JSON body with Content-Type application/json and optional bearer token. */
bool http_json(unsigned port, const char *method, const char *path, const char *token,
               const char *body, struct http_reply *reply);

/** Value of a response header (case-insensitive name), copied into out; false if absent. */
bool http_header(const struct http_reply *reply, const char *name, char *out, size_t outlen);

/** The error code of an error reply ({"error":{"code":...}}), or "". */
const char *http_error_code(const struct http_reply *reply);

void http_reply_free(struct http_reply *reply);

/* A minimal server-sent events client over a raw socket. */
struct sse_event {
    long long id; /* -1 when the event had no id */
    char type[64];
    char *data;   /* heap */
    bool comment; /* a ':' comment line (heartbeat) */
};

struct sse_client {
    int fd;
    long status;
    char *buf; /* de-chunked body bytes not yet consumed */
    size_t len, cap;
    char *raw; /* raw bytes not yet de-chunked */
    size_t raw_len, raw_cap;
    long long chunk_left; /* -1: expecting a chunk header */
    bool eof;
};

/** Open a stream; last_event_id may be NULL. Returns false on failure; client->status holds the
 * HTTP status. */
bool sse_open(struct sse_client *client, unsigned port, const char *path, const char *token,
              const char *last_event_id);

/** Open a stream with extra request headers ("Name: value", NULL-terminated). */
bool sse_open_headers(struct sse_client *client, unsigned port, const char *path,
                      const char *const *headers);

/** Next event or comment within timeout_ms; false on timeout or end of stream. */
bool sse_next(struct sse_client *client, int timeout_ms, struct sse_event *event);

/** Next event that is not a comment. */
bool sse_next_event(struct sse_client *client, int timeout_ms, struct sse_event *event);

void sse_event_release(struct sse_event *event);
void sse_close(struct sse_client *client);

/** Milliseconds of a monotonic clock. */
long long now_ms(void);

/** Milliseconds since the Unix epoch: the clock the server stores times in. */
long long wall_ms(void);

/** Random bytes as unpadded base64url into out (out must hold 2*n bytes). */
void random_b64(size_t n, char *out, size_t outlen);

/** 32 bytes as unpadded base64url into out (at least 44 bytes). */
void b64url32(const unsigned char bytes[32], char *out, size_t outlen);

/** A conversation made over HTTP: its id, both tokens, the link's secret. */
struct test_pair {
    char room[64];
    char token_a[128];
    char token_b[128];
    char secret[64];   /* the join secret, base64url */
    char verifier[64]; /* its BLAKE2b-256, base64url */
};

/**
 * Create a couples-short room on port and, when that worked, join it as B.
 * Returns the status of the creation (201 when both worked; a join that
 * fails is a test failure).
 */
long test_pair_create(unsigned port, struct test_pair *pair);

/** thou_refusals_total{reason="reason"} from /metrics; -1 when absent. */
long refusals_metric(unsigned port, const char *reason);

/** libsodium and libcurl up, the suite run, everything down: main()'s exit code. */
int run_suite(Suite *suite);

/** Where a sanitizer build of the server reported a problem in log, or NULL. */
const char *sanitizer_report(const char *log);
