/*
 * Facilitated workshops (include/thou/workshops.h, docs/api.md). The store
 * keeps everything that must survive (wstore.c); this module keeps only what
 * is about connections: who is waiting with a stream open, and the open
 * dashboard and waiting streams, which its own thread refreshes.
 */
#include "thou/workshops.h"
#include "thou/app.h"
#include "thou/buf.h"
#include "thou/crypto.h"
#include "thou/facilitators.h"
#include "thou/flow.h"
#include "thou/hub.h"
#include "thou/json.h"
#include "thou/limiter.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/proxy.h"
#include "thou/qset.h"
#include "thou/server.h"
#include "thou/static_files.h"
#include "thou/store.h"
#include "thou/studies.h"
#include "thou/wstore.h"
#include "thou/wstore_pg.h"

#include <pthread.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CODE_ALPHABET  "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#define COOKIE_NAME    "thou_session"
#define TICK_MS        250 /* dashboards: at most four snapshots a second */
#define CAPACITY_MAX   10000
#define TIMER_MAX_S    86400
#define KEEP_BUF_BYTES 4096

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- live state ------------------------------------------------------------ */

enum push_kind { PUSH_DASHBOARD, PUSH_WAITER };

/*
 * One open stream of this module. Frames are appended under its lock and
 * the connection resumed; read() hands them out or suspends. Lock order:
 * ws->lock, then push->lock; the server is called only under push->lock
 * (suspend, resume), as the hub does.
 */
struct push {
    struct thou_stream stream; /* first: the adapter sees only this */
    struct thou_workshops *ws;
    enum push_kind kind;
    int64_t workshop_id;
    int64_t label; /* a waiter's */
    atomic_int refs;
    struct push *next; /* in its workshop's list, under ws->lock */

    pthread_mutex_t lock; /* guards what follows */
    struct thou_buf out;
    size_t out_sent;
    bool suspended, closing, gone;
    /* what was sent last, so only changes go out */
    char *last_snapshot;
    int64_t last_waiting;
    bool paired_sent, ended_sent;
    char *last_note;
    int64_t last_timer;
};

/* A participant's presence while waiting. */
struct presence {
    int streams;
    int64_t last_seen_ms;
};

/* A pair's room whose partner may have gone (partner_gone). */
struct repair {
    char room_id[THOU_ROOM_ID_LEN + 1];
    int64_t gone_since[2];
    bool told;
};

struct live {
    int64_t id;
    int64_t born_ms;           /* when this process first saw the workshop */
    struct presence *presence; /* by label */
    size_t n_presence;
    struct repair *repairs;
    size_t n_repairs;
    struct push *pushes;
    struct live *next;
};

struct thou_workshops {
    struct thou_app *app;
    pthread_mutex_t lock; /* guards lives and their contents */
    struct live *lives;
    struct thou_limiter *login_name_limiter;    /* wrong passwords, keyed by name */
    struct thou_limiter *login_address_limiter; /* wrong passwords, keyed by address */
    struct thou_limiter *code_limiter;          /* wrong join codes, keyed by address */
    pthread_t thread;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    bool poked; /* under stop_lock: another instance changed a workshop */
};

/* The live record of workshop id, made when missing; NULL when it cannot
 * be made (out of memory). ws->lock held. */
static struct live *live_get(struct thou_workshops *ws, int64_t id)
{
    for (struct live *l = ws->lives; l; l = l->next)
        if (l->id == id)
            return l;
    struct live *l = thou_calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->id = id;
    l->born_ms = now_ms();
    l->next = ws->lives;
    ws->lives = l;
    return l;
}

/* The presence of label in l, NULL when out of range or out of memory. */
static struct presence *presence_of(struct live *l, int64_t label)
{
    if (!l || label < 0 || label > CAPACITY_MAX + 1)
        return NULL;
    if ((size_t)label >= l->n_presence) {
        size_t n = (size_t)label + 64;
        struct presence *grown = thou_realloc(l->presence, n * sizeof(*l->presence));
        if (!grown)
            return NULL;
        l->presence = grown;
        memset(l->presence + l->n_presence, 0, (n - l->n_presence) * sizeof(*l->presence));
        l->n_presence = n;
    }
    return &l->presence[label];
}

/* Asked on the store's writer thread during a pairing. */
static void presence_cb(void *ctx, int64_t workshop_id, int64_t label, int64_t queued_ms,
                        bool *connected, int64_t *last_seen_ms)
{
    struct thou_workshops *ws = ctx;
    pthread_mutex_lock(&ws->lock);
    struct live *l = live_get(ws, workshop_id);
    struct presence *p = presence_of(l, label);
    if (!l) { /* out of memory: nothing known, so nobody is taken for gone */
        *connected = true;
        *last_seen_ms = now_ms();
        pthread_mutex_unlock(&ws->lock);
        return;
    }
    *connected = p && p->streams > 0;
    int64_t seen = queued_ms > l->born_ms ? queued_ms : l->born_ms;
    if (p && p->last_seen_ms > seen)
        seen = p->last_seen_ms;
    *last_seen_ms = seen;
    pthread_mutex_unlock(&ws->lock);
}

/*
 * On PostgreSQL a waiter's presence is also a lease in the shared store
 * (wstore_pg.h), so that a pairing on another instance counts a participant
 * whose stream is open here: taken when a stream opens, renewed every
 * second, ended when its last stream closes. Not under ws->lock.
 */
static void share_presence(struct thou_workshops *ws, int64_t workshop_id, const int64_t *labels,
                           size_t n, bool present)
{
    struct thou_store_pg *pg = thou_store_pg_of(ws->app->store);
    if (pg)
        thou_wstore_pg_presence(pg, workshop_id, labels, n, present, now_ms());
}

/* Once a second: renew the leases of every waiter with a stream open here. */
static void renew_leases(struct thou_workshops *ws)
{
    if (!thou_store_pg_of(ws->app->store))
        return;
    for (size_t k = 0;; k++) {
        int64_t id = 0, *labels = NULL;
        size_t n = 0;
        pthread_mutex_lock(&ws->lock);
        size_t i = 0;
        struct live *l = ws->lives;
        for (; l && i < k; l = l->next)
            i++;
        if (l) {
            id = l->id;
            labels = thou_malloc((l->n_presence + 1) * sizeof(*labels));
            for (size_t label = 0; labels && label < l->n_presence; label++)
                if (l->presence[label].streams > 0)
                    labels[n++] = (int64_t)label;
        }
        pthread_mutex_unlock(&ws->lock);
        if (!l)
            return;
        share_presence(ws, id, labels, n, true);
        free(labels);
    }
}

/* Another instance committed a change of workshop id: look again now. */
static void remote_change(void *ctx, int64_t workshop_id)
{
    (void)workshop_id; /* the next pass reads every live workshop */
    struct thou_workshops *ws = ctx;
    pthread_mutex_lock(&ws->stop_lock);
    ws->poked = true;
    pthread_cond_signal(&ws->stop_cond);
    pthread_mutex_unlock(&ws->stop_lock);
}

/* ---- streams ------------------------------------------------------------------ */

static void push_unref(struct push *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    thou_buf_release(&p->out);
    free(p->last_snapshot);
    free(p->last_note);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Append a frame (NULL: none, only wake) and resume the stream. */
static void push_frame(struct push *p, const char *event, const char *data, bool close)
{
    pthread_mutex_lock(&p->lock);
    if (event)
        thou_buf_printf(&p->out, "event: %s\ndata: %s\n\n", event, data);
    else if (data)
        thou_buf_puts(&p->out, data);
    /* A frame lost for want of memory: the stream ends after the whole
     * frames it has, and the client reconnects and starts afresh. */
    if (close || thou_buf_failed(&p->out))
        p->closing = true;
    if (p->suspended && !p->gone) {
        p->suspended = false;
        thou_server_resume(p->stream.conn);
    }
    pthread_mutex_unlock(&p->lock);
}

static ssize_t push_read(struct thou_stream *stream, char *buf, size_t max)
{
    struct push *p = (struct push *)stream;
    pthread_mutex_lock(&p->lock);
    size_t pending = p->out.len - p->out_sent;
    if (pending == 0) {
        if (p->out.cap > KEEP_BUF_BYTES)
            thou_buf_release(&p->out);
        else
            thou_buf_reset(&p->out);
        p->out_sent = 0;
        if (p->closing) {
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        p->suspended = true;
        thou_server_suspend(stream->conn);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    size_t n = pending < max ? pending : max;
    memcpy(buf, p->out.data + p->out_sent, n);
    p->out_sent += n;
    pthread_mutex_unlock(&p->lock);
    return (ssize_t)n;
}

static void push_free(struct thou_stream *stream)
{
    struct push *p = (struct push *)stream;
    struct thou_workshops *ws = p->ws;
    pthread_mutex_lock(&p->lock);
    p->gone = true;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_lock(&ws->lock);
    struct live *l = live_get(ws, p->workshop_id); /* found: the push is listed in it */
    for (struct push **link = &l->pushes; *link; link = &(*link)->next) {
        if (*link == p) {
            *link = p->next;
            break;
        }
    }
    bool last = false;
    if (p->kind == PUSH_WAITER) {
        struct presence *pr = presence_of(l, p->label);
        if (pr) {
            pr->streams--;
            pr->last_seen_ms = now_ms(); /* the presence timeout counts from here */
            last = pr->streams == 0;
        }
    }
    pthread_mutex_unlock(&ws->lock);
    if (last)
        share_presence(ws, p->workshop_id, &p->label, 1, false);
    thou_metrics_streams(ws->app->metrics, -1);
    push_unref(p);
}

/* A new stream of a workshop; NULL when out of memory. */
static struct push *push_new(struct thou_workshops *ws, enum push_kind kind, int64_t workshop_id,
                             int64_t label)
{
    struct push *p = thou_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->stream.read = push_read;
    p->stream.free = push_free;
    p->ws = ws;
    p->kind = kind;
    p->workshop_id = workshop_id;
    p->label = label;
    p->last_waiting = -1;
    p->last_timer = -1;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    thou_buf_init_failable(&p->out);
    thou_buf_puts(&p->out, "retry: 2000\n\n");
    pthread_mutex_lock(&ws->lock);
    struct live *l = thou_buf_failed(&p->out) ? NULL : live_get(ws, workshop_id);
    /* A waiter not counted present could be paired away as gone: no stream then. */
    struct presence *pr = l && kind == PUSH_WAITER ? presence_of(l, label) : NULL;
    if (!l || (kind == PUSH_WAITER && !pr)) {
        pthread_mutex_unlock(&ws->lock);
        thou_buf_release(&p->out);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    p->next = l->pushes;
    l->pushes = p;
    if (pr) {
        pr->streams++;
        pr->last_seen_ms = now_ms();
    }
    pthread_mutex_unlock(&ws->lock);
    if (kind == PUSH_WAITER)
        share_presence(ws, workshop_id, &label, 1, true);
    thou_metrics_streams(ws->app->metrics, 1);
    return p;
}

/* The pushes of a workshop (or of all, id 0) of a kind, each with a reference. */
static struct push **collect(struct thou_workshops *ws, int64_t workshop_id, int kind, size_t *n)
{
    struct push **items = NULL;
    size_t cap = 0;
    *n = 0;
    pthread_mutex_lock(&ws->lock);
    for (struct live *l = ws->lives; l; l = l->next) {
        if (workshop_id && l->id != workshop_id)
            continue;
        for (struct push *p = l->pushes; p; p = p->next) {
            if (kind >= 0 && (int)p->kind != kind)
                continue;
            if (*n == cap) {
                struct push **grown = thou_realloc(items, (cap ? cap * 2 : 16) * sizeof(*items));
                if (!grown) { /* out of memory: those collected so far, this round */
                    pthread_mutex_unlock(&ws->lock);
                    return items;
                }
                items = grown;
                cap = cap ? cap * 2 : 16;
            }
            atomic_fetch_add(&p->refs, 1);
            items[(*n)++] = p;
        }
    }
    pthread_mutex_unlock(&ws->lock);
    return items;
}

static void release_all(struct push **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        push_unref(items[i]);
    free(items);
}

/* ---- shared helpers -------------------------------------------------------------- */

static void fail(struct thou_response *res, unsigned status, const char *code, const char *message)
{
    thou_response_error(res, status, code, message);
}

static const struct thou_qset *set_of(struct thou_app *app, const struct thou_workshop *w)
{
    const struct thou_qset *set = thou_qset_registry_find(app->qsets, w->set_id);
    return set && (int)set->version == w->set_version ? set : NULL;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void format_code(const char *code, char out[THOU_WORKSHOP_CODE_LEN + 2])
{
    snprintf(out, THOU_WORKSHOP_CODE_LEN + 2, "%.4s-%.4s", code, code + 4);
}

/* Normalize a typed code: case-insensitive, '-' and spaces ignored. */
static bool normalize_code(const char *in, char out[THOU_WORKSHOP_CODE_LEN + 1])
{
    size_t n = 0;
    for (; *in; in++) {
        char c = *in;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!strchr(CODE_ALPHABET, c) || c == '\0' || n == THOU_WORKSHOP_CODE_LEN)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == THOU_WORKSHOP_CODE_LEN;
}

static void new_code(char out[THOU_WORKSHOP_CODE_LEN + 1])
{
    for (size_t i = 0; i < THOU_WORKSHOP_CODE_LEN; i++)
        out[i] = CODE_ALPHABET[randombytes_uniform(sizeof(CODE_ALPHABET) - 1)];
    out[THOU_WORKSHOP_CODE_LEN] = '\0';
}

/* The flow a new room of w starts with: the released stage, the pause. */
static char *initial_flow(const struct thou_qset *set, const struct thou_workshop *w)
{
    struct thou_flow_state state;
    thou_flow_state_init(&state, thou_qset_plan(set));
    thou_flow_set_stage_cap(&state, (size_t)w->released);
    if (w->paused)
        thou_flow_facilitator_pause(&state);
    json_t *json = thou_flow_state_to_json(thou_qset_plan(set), &state);
    char *text = thou_json_dumps(json, JSON_COMPACT);
    json_decref(json);
    return text;
}

static void pairing_for(struct thou_workshops *ws, const char *flow_json,
                        struct thou_wstore_pairing *pairing)
{
    const struct thou_config *config = ws->app->config;
    *pairing = (struct thou_wstore_pairing){
        .presence = presence_cb,
        .presence_ctx = ws,
        .timeout_ms = (int64_t)config->workshop_presence_timeout_s * 1000,
        .flow_json = flow_json,
        .room_ttl_ms = (int64_t)config->room_ttl_days * 86400 * 1000,
    };
}

/* A study workshop's conditions for the pairing, each with its own first
 * flow; free with free_conditions. THOU_EUNAVAIL when a condition's set is
 * gone, THOU_ENOMEM when a flow (or the pairing's own) could not be made. */
static enum thou_status add_conditions(struct thou_app *app, const struct thou_workshop *w,
                                       struct thou_wstore_pairing *pairing)
{
    struct thou_study_record study;
    if (!pairing->flow_json)
        return THOU_ENOMEM;
    if (!w->study[0] || thou_store_study_get(app->store, w->study, &study))
        return THOU_OK; /* no study, or removed since: pairs as without one */
    for (size_t i = 0; i < study.n_conditions && i < 8; i++) {
        const struct thou_qset *set = thou_qset_registry_find(app->qsets, study.conditions[i]);
        if (!set)
            return THOU_EUNAVAIL;
        pairing->conditions[i] =
            (struct thou_wstore_condition){set->id, (int)set->version, initial_flow(set, w)};
        pairing->n_conditions = i + 1;
        if (!pairing->conditions[i].flow_json)
            return THOU_ENOMEM;
    }
    return THOU_OK;
}

static void free_conditions(struct thou_wstore_pairing *pairing)
{
    for (size_t i = 0; i < pairing->n_conditions; i++)
        free((char *)(uintptr_t)pairing->conditions[i].flow_json);
    pairing->n_conditions = 0;
}

/* Tell the waiting streams of the newly paired where to go. */
static void notify_pairs(struct thou_workshops *ws, int64_t workshop_id,
                         const struct thou_wstore_outcome *out)
{
    if (!out->n_pairs)
        return;
    size_t n;
    struct push **items = collect(ws, workshop_id, PUSH_WAITER, &n);
    for (size_t i = 0; i < n; i++) {
        struct push *p = items[i];
        for (size_t k = 0; k < out->n_pairs; k++) {
            const struct thou_wstore_pair *pair = &out->pairs[k];
            for (int r = 0; r < 2; r++) {
                if (pair->label[r] != p->label)
                    continue;
                char data[96];
                snprintf(data, sizeof(data), "{\"room\":\"%s\",\"role\":\"%c\"}", pair->room_id,
                         r ? 'B' : 'A');
                pthread_mutex_lock(&p->lock);
                bool send = !p->paired_sent;
                p->paired_sent = true;
                pthread_mutex_unlock(&p->lock);
                if (send)
                    push_frame(p, "paired", data, false);
            }
        }
    }
    release_all(items, n);
}

/* ---- facilitator sessions ------------------------------------------------------ */

/* The session token from the Cookie header, into out; false when none. */
static bool cookie_token(const char *cookie, char out[THOU_TOKEN_B64_LEN + 1])
{
    const char *p = cookie;
    size_t name_len = strlen(COOKIE_NAME);
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len && strncmp(p, COOKIE_NAME "=", name_len + 1) == 0) {
            size_t value_len = len - name_len - 1;
            while (value_len && p[name_len + value_len] == ' ')
                value_len--;
            if (value_len != THOU_TOKEN_B64_LEN)
                return false;
            memcpy(out, p + name_len + 1, value_len);
            out[value_len] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

/* The caller's facilitator session; with csrf, a state-changing request:
 * the X-CSRF-Token must match. False with res filled otherwise. */
static bool facilitator(struct thou_app *app, const struct thou_request *req, bool csrf,
                        struct thou_facilitator_session *session, struct thou_response *res)
{
    char token[THOU_TOKEN_B64_LEN + 1];
    if (!req->cookie || !cookie_token(req->cookie, token) ||
        thou_facilitators_session_get(app->store, token, now_ms(), session)) {
        fail(res, 401, "no_session", "please log in as a facilitator");
        return false;
    }
    if (!csrf)
        return true;
    const char *sent = req->csrf_token;
    if (!sent || strlen(sent) != THOU_CSRF_LEN ||
        sodium_memcmp(sent, session->csrf, THOU_CSRF_LEN) != 0) {
        fail(res, 403, "bad_csrf", "missing or wrong X-CSRF-Token; reload the page");
        return false;
    }
    return true;
}

static void address_of(const struct thou_request *req, char *key, size_t len)
{
    key[0] = '\0';
    if (req->client_addr)
        thou_address_key(req->client_addr, key, len);
}

void thou_workshops_login(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_workshops *ws = app->workshops;
    static const char *const allowed[] = {"name", "password", NULL};
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    const char *unknown = thou_json_unknown_key(body, allowed);
    const char *name = thou_json_string(body, "name");
    json_t *password = json_object_get(body, "password");
    if (unknown || !name || !json_is_string(password)) {
        fail(res, 400, "invalid_request",
             unknown ? "unknown field" : "name and password must be strings");
        goto out;
    }
    size_t len = json_string_length(password);
    if (!thou_facilitator_password_valid(len)) {
        fail(res, 400, "invalid_request", "a password is 1 to 1024 bytes");
        goto out;
    }
    /* Limits before the password is even looked at: per name, per address. */
    int64_t now = now_ms();
    char address[THOU_ADDRESS_KEY_LEN];
    address_of(req, address, sizeof(address));
    char name_key[THOU_FACILITATOR_NAME_MAX + 2];
    snprintf(name_key, sizeof(name_key), "n%.*s", THOU_FACILITATOR_NAME_MAX, name);
    unsigned retry = 0, retry2 = 0;
    bool name_ok = thou_limiter_peek(ws->login_name_limiter, name_key, now, &retry);
    bool address_ok =
        !address[0] || thou_limiter_peek(ws->login_address_limiter, address, now, &retry2);
    if (!name_ok || !address_ok) {
        res->retry_after_s = retry > retry2 ? retry : retry2;
        fail(res, 429, "rate_limited", "too many wrong passwords; wait and try again");
        goto out;
    }
    enum thou_status rc =
        thou_facilitator_name_valid(name)
            ? thou_facilitators_verify(app->store, name, json_string_value(password), len)
            : THOU_EAUTH;
    if (rc == THOU_EAUTH) {
        thou_limiter_take(ws->login_name_limiter, name_key, now, NULL);
        if (address[0])
            thou_limiter_take(ws->login_address_limiter, address, now, NULL);
        fail(res, 401, "bad_login", "wrong name or password");
        goto out;
    }
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    char token[THOU_TOKEN_B64_LEN + 1];
    struct thou_facilitator_session session;
    int64_t ttl_ms = (int64_t)app->config->facilitator_session_s * 1000;
    rc = thou_facilitators_session_new(app->store, name, now, ttl_ms, token, &session);
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    snprintf(res->set_cookie, sizeof(res->set_cookie),
             COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u%s", token,
             app->config->facilitator_session_s, req->secure ? "; Secure" : "");
    thou_json_respond(res, 200, json_pack("{s:s,s:s}", "name", name, "csrf", session.csrf));
out:
    json_decref(body);
}

void thou_workshops_session(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    if (!facilitator(app, req, false, &session, res))
        return;
    thou_json_respond(res, 200, json_pack("{s:s,s:s}", "name", session.name, "csrf", session.csrf));
}

void thou_workshops_logout(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    char token[THOU_TOKEN_B64_LEN + 1];
    if (!facilitator(app, req, true, &session, res))
        return;
    cookie_token(req->cookie, token);
    enum thou_status rc = thou_facilitators_session_revoke(app->store, token, now_ms());
    if (rc) {
        thou_response_status(res, rc);
        return;
    }
    snprintf(res->set_cookie, sizeof(res->set_cookie),
             COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
             req->secure ? "; Secure" : "");
    res->status = 204;
}

/* ---- workshops -------------------------------------------------------------------- */

/* A study as a facilitator sees it: its name and key fingerprint (to show and
 * read aloud), never its conditions or a pair's. null for none. */
static json_t *study_json(struct thou_app *app, const char *name)
{
    struct thou_study_record study;
    if (!name[0] || thou_store_study_get(app->store, name, &study))
        return json_null();
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(study.public_key, fingerprint);
    return json_pack("{s:s,s:s}", "name", study.name, "fingerprint", fingerprint);
}

static void studies_visit(void *ctx, const struct thou_study_record *study, int64_t rooms)
{
    (void)rooms;
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(study->public_key, fingerprint);
    json_array_append_new(ctx,
                          json_pack("{s:s,s:s}", "name", study->name, "fingerprint", fingerprint));
}

void thou_workshops_studies(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    if (!facilitator(app, req, false, &session, res))
        return;
    json_t *list = json_array();
    enum thou_status rc = thou_store_study_list(app->store, studies_visit, list);
    if (rc) {
        json_decref(list);
        thou_response_status(res, rc);
        return;
    }
    thou_json_respond(res, 200, json_pack("{s:o}", "studies", list));
}

static json_t *workshop_json(struct thou_app *app, const struct thou_workshop *w, bool stages)
{
    char code[THOU_WORKSHOP_CODE_LEN + 2], link[16];
    format_code(w->code, code);
    snprintf(link, sizeof(link), "/w/%s", w->code);
    static const char *const states[] = {"open", "closed", "ended"};
    json_t *set = json_pack("{s:s,s:i}", "id", w->set_id, "version", w->set_version);
    const struct thou_qset *qset = set_of(app, w);
    int added = 0; /* -1 once anything could not be added for want of memory */
    if (stages) {
        json_t *list = json_array();
        for (size_t i = 0; qset && i < qset->n_stages; i++)
            added |= json_array_append_new(
                list, json_pack("{s:s,s:I}", "title", qset->stages[i].title, "questions",
                                (json_int_t)qset->stages[i].n_questions));
        added |= json_object_set_new(set, "stages", list);
    }
    json_t *out =
        json_pack("{s:I,s:s,s:s,s:s,s:o,s:s,s:I,s:b,s:o,s:o,s:I,s:I}", "id", (json_int_t)w->id,
                  "code", code, "link", link, "title", w->title, "set", set, "state",
                  states[w->state], "released", (json_int_t)w->released, "paused", w->paused,
                  "note", w->has_note ? json_string(w->note) : json_null(), "timer_ends",
                  w->timer_ends_ms ? json_integer(w->timer_ends_ms) : json_null(), "capacity",
                  (json_int_t)w->capacity, "created", (json_int_t)w->created_ms);
    added |= json_object_set_new(out, "study", study_json(app, w->study));
    /* What the projector prints for people to type: the public address when
     * one is set (the page's own origin may be an internal one), else none. */
    if (app->config->public_url[0])
        added |= json_object_set_new(out, "join_url",
                                     json_sprintf("%s%s", app->config->public_url, link));
    if (added) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* The snapshot of the dashboard: flow metadata only, never ciphertext,
 * tokens or room ids. */
struct snapshot_ctx {
    struct thou_workshops *ws;
    struct live_view {
        int64_t born_ms;
        struct presence *presence;
        size_t n_presence;
    } live;
    const struct thou_qset *set;
    bool study; /* a study workshop: nothing may tell one condition from another */
    int64_t now, timeout_ms;
    json_t *waiting, *pairs;
    int64_t n_active, n_finished;
    bool failed; /* out of memory: the snapshot is incomplete */
};

static void snapshot_waiting(void *ctx, const struct thou_wwaiting *w)
{
    struct snapshot_ctx *s = ctx;
    char label[24];
    snprintf(label, sizeof(label), "p%lld", (long long)w->label);
    int64_t seen = w->queued_ms > s->live.born_ms ? w->queued_ms : s->live.born_ms;
    bool connected = false;
    if ((size_t)w->label < s->live.n_presence) {
        const struct presence *p = &s->live.presence[w->label];
        connected = p->streams > 0;
        if (p->last_seen_ms > seen)
            seen = p->last_seen_ms;
    }
    /* On PostgreSQL, a stream on another instance: its lease. */
    connected |= w->lease_ms > s->now;
    int64_t lease_seen = w->lease_ms < s->now ? w->lease_ms : s->now;
    if (lease_seen > seen)
        seen = lease_seen;
    bool present = connected || s->now - seen < s->timeout_ms;
    s->failed |=
        json_array_append_new(s->waiting, json_pack("{s:s,s:I,s:b,s:b}", "participant", label,
                                                    "since", (json_int_t)w->queued_ms, "present",
                                                    present, "left_behind", w->left_behind));
}

static void snapshot_room(void *ctx, const struct thou_wroom *r)
{
    struct snapshot_ctx *s = ctx;
    json_error_t error;
    json_t *flow =
        r->flow_json ? thou_json_parse(r->flow_json, strlen(r->flow_json), 0, &error) : NULL;
    if (r->flow_json && !flow && thou_json_out_of_memory(&error))
        s->failed = true;
    const char *status = flow ? thou_json_string(flow, "status") : NULL;
    bool ended = r->state == THOU_ROOM_ENDED || (status && strcmp(status, "ended") == 0);
    bool finished = ended;
    if (ended)
        s->n_finished++;
    else
        s->n_active++;
    /* Whose move it is: the one role the flow expects something from. */
    json_t *expect = flow ? json_object_get(flow, "expect") : NULL;
    bool a_moves = json_array_size(json_object_get(expect, "A")) > 0;
    bool b_moves = json_array_size(json_object_get(expect, "B")) > 0;
    json_t *turn = a_moves != b_moves ? json_string(a_moves ? "A" : "B") : json_null();
    json_t *progress = flow ? json_object_get(flow, "progress") : NULL;
    /* Condition sets may differ in length: a pair's total would tell its condition. */
    if (s->study && json_is_object(progress))
        json_object_del(progress, "total");
    json_t *stage = flow ? json_object_get(flow, "stage") : NULL;
    json_t *qi = flow ? json_object_get(flow, "question_index") : NULL;
    s->failed |= json_array_append_new(
        s->pairs,
        json_pack("{s:I,s:O,s:O,s:O,s:o,s:s,s:I,s:{s:b,s:b},s:b}", "pair", (json_int_t)r->pair,
                  "stage", stage ? stage : json_null(), "question_index", qi ? qi : json_null(),
                  "progress", progress ? progress : json_null(), "turn", turn, "status",
                  status ? status : "ended", "last_step", (json_int_t)r->last_step_ms, "connected",
                  "A", thou_hub_present(s->ws->app->hub, r->room_id, 'A'), "B",
                  thou_hub_present(s->ws->app->hub, r->room_id, 'B'), "finished", finished));
    json_decref(flow);
}

/* NULL when the store cannot be read (*why THOU_EIO) or out of memory (THOU_ENOMEM). */
static json_t *snapshot(struct thou_workshops *ws, const struct thou_workshop *w,
                        enum thou_status *why)
{
    struct thou_app *app = ws->app;
    struct snapshot_ctx s = {.ws = ws,
                             .set = set_of(app, w),
                             .study = w->study[0] != '\0',
                             .now = now_ms(),
                             .timeout_ms = (int64_t)app->config->workshop_presence_timeout_s * 1000,
                             .waiting = json_array(),
                             .pairs = json_array()};
    /* A copy of the presence table: the store read below must not hold ws->lock. */
    pthread_mutex_lock(&ws->lock);
    struct live *l = live_get(ws, w->id);
    if (l) {
        s.live.born_ms = l->born_ms;
        s.live.n_presence = l->n_presence;
        s.live.presence = thou_malloc((l->n_presence + 1) * sizeof(*l->presence));
        if (l->n_presence && s.live.presence)
            memcpy(s.live.presence, l->presence, l->n_presence * sizeof(*l->presence));
    }
    pthread_mutex_unlock(&ws->lock);
    enum thou_status rc = THOU_ENOMEM;
    if (s.live.presence && s.waiting && s.pairs)
        rc = thou_wstore_read(app->store, w->id, snapshot_waiting, snapshot_room, &s);
    free(s.live.presence);
    if (rc == THOU_OK && s.failed)
        rc = THOU_ENOMEM;
    if (rc) {
        json_decref(s.waiting);
        json_decref(s.pairs);
        *why = rc == THOU_ENOMEM ? THOU_ENOMEM : THOU_EIO;
        return NULL;
    }
    *why = THOU_ENOMEM; /* the only way json_pack can fail here */
    return json_pack("{s:o,s:{s:I,s:I,s:I,s:I},s:o,s:o}", "workshop", workshop_json(app, w, true),
                     "counts", "joined", (json_int_t)w->joined, "paired",
                     (json_int_t)(2 * s.n_active), "waiting",
                     (json_int_t)json_array_size(s.waiting), "finished",
                     (json_int_t)(2 * s.n_finished), "waiting", s.waiting, "pairs", s.pairs);
}

/* The workshop of the path, if it is the caller's. False with res filled. */
static bool own_workshop(struct thou_app *app, const struct thou_request *req,
                         const struct thou_facilitator_session *session, struct thou_workshop *w,
                         struct thou_response *res)
{
    const char *text = req->params[0];
    char *end = NULL;
    long long id = strtoll(text, &end, 10);
    enum thou_status rc = THOU_ENOTFOUND;
    if (text[0] >= '1' && text[0] <= '9' && *end == '\0' && strlen(text) <= 15)
        rc = thou_wstore_get(app->store, (int64_t)id, NULL, w);
    if (rc == THOU_ENOTFOUND) {
        fail(res, 404, "no_such_workshop", "there is no workshop with this id");
        return false;
    }
    if (rc) {
        thou_response_status(res, rc);
        return false;
    }
    if (strcmp(w->facilitator, session->name) != 0) {
        fail(res, 403, "not_your_workshop", "this workshop belongs to another facilitator");
        return false;
    }
    return true;
}

void thou_workshops_create(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    static const char *const allowed[] = {"title", "set", "capacity", "study", NULL};
    struct thou_facilitator_session session;
    if (!facilitator(app, req, true, &session, res))
        return;
    json_t *body = thou_json_body(req, res);
    if (!body)
        return;
    struct thou_workshop *w = thou_calloc(1, sizeof(*w));
    if (!w) {
        thou_response_status(res, THOU_ENOMEM);
        json_decref(body);
        return;
    }
    const char *unknown = thou_json_unknown_key(body, allowed);
    const char *title = thou_json_string(body, "title");
    const char *set_id = thou_json_string(body, "set");
    json_t *capacity = json_object_get(body, "capacity");
    const char *study = thou_json_string(body, "study");
    struct thou_study_record record;
    if (unknown) {
        fail(res, 400, "invalid_request", "unknown field");
        goto out;
    }
    if (!title || title[0] == '\0' || utf8_chars(title) > THOU_WORKSHOP_TITLE_MAX ||
        strlen(title) >= sizeof(w->title)) {
        fail(res, 400, "invalid_request", "'title' must be 1 to 120 characters");
        goto out;
    }
    if (!set_id) {
        fail(res, 400, "invalid_request", "missing field 'set' (a question set id)");
        goto out;
    }
    if (capacity && (!json_is_integer(capacity) || json_integer_value(capacity) < 2 ||
                     json_integer_value(capacity) > CAPACITY_MAX)) {
        fail(res, 400, "invalid_request", "'capacity' must be an integer from 2 to 10000");
        goto out;
    }
    if (json_object_get(body, "study") && !json_is_null(json_object_get(body, "study")) && !study) {
        fail(res, 400, "invalid_request", "'study' must be a study name");
        goto out;
    }
    const struct thou_qset *set = thou_qset_registry_find(app->qsets, set_id);
    if (!set) {
        fail(res, 404, "no_such_set", "there is no question set with this id");
        goto out;
    }
    if (study && (!thou_studies_name_valid(study) ||
                  thou_store_study_get(app->store, study, &record) != THOU_OK)) {
        fail(res, 404, "no_such_study", "there is no study with this name");
        goto out;
    }
    if (study)
        snprintf(w->study, sizeof(w->study), "%s", record.name);
    snprintf(w->facilitator, sizeof(w->facilitator), "%s", session.name);
    snprintf(w->title, sizeof(w->title), "%s", title);
    snprintf(w->set_id, sizeof(w->set_id), "%s", set->id);
    w->set_version = (int)set->version;
    w->state = THOU_WORKSHOP_OPEN;
    w->capacity = capacity ? json_integer_value(capacity) : app->config->workshop_capacity;
    w->created_ms = now_ms();
    enum thou_status rc;
    do { /* 31^8 codes: a clash is rare, and costs one more try */
        new_code(w->code);
        rc = thou_wstore_create(app->store, w);
    } while (rc == THOU_EEXIST);
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    thou_json_respond(res, 201, workshop_json(app, w, false));
out:
    free(w);
    json_decref(body);
}

static void list_visit(void *ctx, const struct thou_workshop *w)
{
    void **args = ctx;
    json_array_append_new(args[1], workshop_json(args[0], w, false));
}

void thou_workshops_list(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    if (!facilitator(app, req, false, &session, res))
        return;
    json_t *list = json_array();
    void *args[2] = {app, list};
    enum thou_status rc = thou_wstore_list(app->store, session.name, list_visit, args);
    if (rc) {
        json_decref(list);
        thou_response_status(res, rc);
        return;
    }
    thou_json_respond(res, 200, json_pack("{s:o}", "workshops", list));
}

/* A request's workshop record (on the heap: its title and note are large), or
 * NULL with the request refused for want of memory. */
static struct thou_workshop *workshop_record(struct thou_response *res)
{
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    if (!w)
        thou_response_status(res, THOU_ENOMEM);
    return w;
}

void thou_workshops_get(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    if (facilitator(app, req, false, &session, res) && own_workshop(app, req, &session, w, res)) {
        enum thou_status why;
        json_t *snap = snapshot(app->workshops, w, &why);
        if (snap)
            thou_json_respond(res, 200, snap);
        else
            thou_response_status(res, why);
    }
    free(w);
}

void thou_workshops_events(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    if (facilitator(app, req, false, &session, res) && own_workshop(app, req, &session, w, res)) {
        res->status = 200;
        res->content_type = "text/event-stream; charset=utf-8";
        if (req->method != THOU_METHOD_HEAD) {
            struct push *p = push_new(app->workshops, PUSH_DASHBOARD, w->id, 0);
            if (!p) {
                thou_response_status(res, THOU_ENOMEM);
                free(w);
                return;
            }
            /* The first snapshot, or 503 for want of memory (a store that
             * cannot be read now: the refresh thread sends one later). */
            enum thou_status why = THOU_ENOMEM;
            json_t *snap = snapshot(app->workshops, w, &why);
            char *text = snap ? thou_json_dumps(snap, JSON_COMPACT) : NULL;
            json_decref(snap);
            if (!text && why == THOU_ENOMEM) {
                p->stream.free(&p->stream);
                thou_response_status(res, THOU_ENOMEM);
                free(w);
                return;
            }
            if (text) {
                pthread_mutex_lock(&p->lock);
                thou_buf_printf(&p->out, "event: snapshot\ndata: %s\n\n", text);
                p->last_snapshot = text;
                bool lost = thou_buf_failed(&p->out);
                pthread_mutex_unlock(&p->lock);
                if (lost) { /* out of memory: refused */
                    p->stream.free(&p->stream);
                    thou_response_status(res, THOU_ENOMEM);
                    free(w);
                    return;
                }
            }
            res->stream = &p->stream;
        }
    }
    free(w);
}

/* ---- QR code -------------------------------------------------------------------------- */

/* The absolute join link: public_url, else the request's own origin. */
static bool absolute_link(struct thou_app *app, const struct thou_request *req,
                          const struct thou_workshop *w, char *out, size_t len)
{
    if (app->config->public_url[0]) {
        snprintf(out, len, "%s/w/%s", app->config->public_url, w->code);
        return true;
    }
    const char *host = req->host;
    if (!host || !host[0] || strlen(host) > 255 ||
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
            strlen(host))
        return false;
    snprintf(out, len, "%s://%s/w/%s", req->secure ? "https" : "http", host, w->code);
    return true;
}

void thou_workshops_qr(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_facilitator_session session;
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    char link[512];
    QRcode *qr = NULL;
    if (!facilitator(app, req, false, &session, res) || !own_workshop(app, req, &session, w, res))
        goto out;
    if (!absolute_link(app, req, w, link, sizeof(link))) {
        fail(res, 400, "invalid_request", "no usable Host; set public_url");
        goto out;
    }
    qr = QRcode_encodeString(link, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr) {
        thou_response_status(res, THOU_ENOMEM);
        goto out;
    }
    /* One path of unit squares, one per dark module, inside a 4-module quiet zone. */
    int size = qr->width + 8;
    struct thou_buf svg;
    thou_buf_init_failable(&svg);
    thou_buf_printf(&svg,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\""
                    " shape-rendering=\"crispEdges\"><title>%s</title>"
                    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                    size, size, link, size, size);
    for (int y = 0; y < qr->width; y++)
        for (int x = 0; x < qr->width; x++)
            if (qr->data[y * qr->width + x] & 1)
                thou_buf_printf(&svg, "M%d %dh1v1h-1z", x + 4, y + 4);
    thou_buf_puts(&svg, "\"/></svg>\n");
    size_t svg_len = 0;
    char *body = thou_buf_steal(&svg, &svg_len);
    if (body)
        thou_response_set_body(res, 200, "image/svg+xml", body, svg_len);
    else
        thou_response_status(res, THOU_ENOMEM);
out:
    QRcode_free(qr);
    free(w);
}

/* ---- facilitator events in rooms -------------------------------------------------- */

enum room_action {
    RA_RELEASE,
    RA_PAUSE,
    RA_RESUME,
    RA_NOTE,
    RA_TIMER,
    RA_MOVE_ON,
    RA_END,
    RA_PARTNER_GONE
};

static const char *const room_action_names[] = {
    [RA_RELEASE] = "release", [RA_PAUSE] = "pause",
    [RA_RESUME] = "resume",   [RA_NOTE] = "note",
    [RA_TIMER] = "timer",     [RA_MOVE_ON] = "move_on",
    [RA_END] = "end",         [RA_PARTNER_GONE] = "partner_gone",
};

/* Waits for a batch of asynchronous room updates. */
struct latch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t pending;
};

struct room_job {
    struct thou_app *app;
    struct latch *latch;
    const struct thou_qset *set;
    enum room_action action;
    int64_t value;    /* release: the stage; timer: ends (0: none) */
    const char *text; /* note: NULL clears */
    char gone;        /* partner_gone: who */
    char room_id[THOU_ROOM_ID_LEN + 1];
    struct thou_room_change change;
    char *data, *flow_json;
    const char *refusal;
    enum thou_status status;
};

static enum thou_status room_job_update(void *ctx, struct thou_room_txn *txn,
                                        const struct thou_room_record *room,
                                        struct thou_room_change *change)
{
    struct room_job *job = ctx;
    /* A study workshop's pairs may be in different condition sets: each
     * room's flow follows its own set; the stage cap is an index. */
    const struct thou_qset *own = thou_qset_registry_find(job->app->qsets, room->set_id);
    const struct thou_flow_plan *plan =
        thou_qset_plan(own && (int)own->version == room->set_version ? own : job->set);
    struct thou_flow_state state;
    if (room->state == THOU_ROOM_ENDED) {
        job->refusal = "room_ended";
        return THOU_ECONFLICT;
    }
    json_error_t error;
    json_t *stored = room->flow_json
                         ? thou_json_parse(room->flow_json, strlen(room->flow_json), 0, &error)
                         : NULL;
    enum thou_status rc = stored ? thou_flow_state_from_json(plan, stored, &state) : THOU_EINVAL;
    json_decref(stored);
    if (rc == THOU_ENOMEM || (!stored && room->flow_json && thou_json_out_of_memory(&error))) {
        job->refusal = "out_of_memory";
        return THOU_ENOMEM;
    }
    if (rc)
        return THOU_EIO;
    enum thou_flow_reason reason = THOU_FLOW_OK;
    switch (job->action) {
    case RA_RELEASE:
        thou_flow_set_stage_cap(&state, (size_t)job->value);
        break;
    case RA_PAUSE:
        reason = thou_flow_facilitator_pause(&state);
        break;
    case RA_RESUME:
        reason = thou_flow_facilitator_resume(&state);
        break;
    case RA_MOVE_ON:
        reason = thou_flow_move_on(plan, &state, NULL);
        break;
    case RA_END: {
        struct thou_flow_event end = {THOU_FLOW_END, 'A', NULL};
        reason = state.status == THOU_FLOW_ENDED ? THOU_FLOW_EENDED
                                                 : thou_flow_apply(plan, 0, &state, &end, NULL);
        break;
    }
    case RA_NOTE:
    case RA_TIMER:
    case RA_PARTNER_GONE:
        break;
    }
    if (reason) {
        job->refusal = thou_flow_reason_code(reason);
        return THOU_ECONFLICT;
    }
    json_t *flow = thou_flow_state_to_json(plan, &state);
    int64_t time = now_ms();
    json_t *event = json_pack("{s:s,s:s,s:I,s:s}", "type", "facilitator", "role", "F", "time",
                              (json_int_t)time, "action", room_action_names[job->action]);
    int set = 0; /* each json_object_set* says -1 when it could not allocate */
    if (job->action == RA_RELEASE)
        set |= json_object_set_new(event, "stage_cap", json_integer(job->value));
    if (job->action == RA_NOTE)
        set |= json_object_set_new(event, "text", job->text ? json_string(job->text) : json_null());
    if (job->action == RA_TIMER)
        set |=
            json_object_set_new(event, "ends", job->value ? json_integer(job->value) : json_null());
    if (job->action == RA_PARTNER_GONE)
        set |= json_object_set_new(event, "gone", json_stringn(&job->gone, 1));
    set |= json_object_set(event, "flow", flow);
    job->data = set == 0 ? thou_json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    job->flow_json = flow ? thou_json_dumps(flow, JSON_COMPACT) : NULL;
    json_decref(event);
    json_decref(flow);
    if (!job->data || !job->flow_json) { /* out of memory: this room is left as it was */
        job->refusal = "out_of_memory";
        return THOU_ENOMEM;
    }
    change->events[0] = (struct thou_event_record){
        .type = "facilitator", .sender = 'F', .data = job->data, .time_ms = time};
    change->n_events = 1;
    change->flow_json = job->flow_json;
    change->new_state = state.status == THOU_FLOW_ENDED ? THOU_ROOM_ENDED : room->state;
    (void)txn;
    return THOU_OK;
}

static void room_job_done(void *ctx, enum thou_status status)
{
    struct room_job *job = ctx;
    job->status = status;
    if (status == THOU_OK) {
        job->change.events[0].seq = job->change.seqs[0];
        thou_hub_publish(job->app->hub, job->room_id, job->change.events, 1);
    }
    pthread_mutex_lock(&job->latch->lock);
    if (--job->latch->pending == 0)
        pthread_cond_broadcast(&job->latch->cond);
    pthread_mutex_unlock(&job->latch->lock);
}

struct room_list {
    struct room_item {
        char id[THOU_ROOM_ID_LEN + 1];
        int64_t pair;
        bool ended;
    } * items;
    size_t n, cap;
    bool failed; /* out of memory: the list is incomplete */
};

static void list_room(void *ctx, const struct thou_wroom *r)
{
    struct room_list *list = ctx;
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 32;
        struct room_item *grown = thou_realloc(list->items, cap * sizeof(*list->items));
        if (!grown) {
            list->failed = true;
            return;
        }
        list->items = grown;
        list->cap = cap;
    }
    struct room_item *item = &list->items[list->n++];
    snprintf(item->id, sizeof(item->id), "%s", r->room_id);
    item->pair = r->pair;
    item->ended = r->state == THOU_ROOM_ENDED;
}

static void ignore_waiting(void *ctx, const struct thou_wwaiting *w)
{
    (void)ctx;
    (void)w;
}

/*
 * Apply one action to the rooms of a workshop (only pair when pair > 0),
 * all queued on the store's writer together (one commit for many rooms).
 * Returns how many rooms took it; *refusal the last refusal's code, which
 * is "out_of_memory" when some room could not be tried for want of memory.
 */
static size_t apply_to_rooms(struct thou_app *app, const struct thou_workshop *w,
                             enum room_action action, int64_t value, const char *text, int64_t pair,
                             char gone_role, const char *only_room, const char **refusal,
                             bool *found)
{
    const struct thou_qset *set = set_of(app, w);
    struct room_list list = {0};
    *found = false;
    if (!set || thou_wstore_read(app->store, w->id, ignore_waiting, list_room, &list)) {
        free(list.items);
        return 0;
    }
    struct room_job **jobs = list.failed ? NULL : thou_calloc(list.n + 1, sizeof(*jobs));
    if (!jobs) {
        *refusal = "out_of_memory";
        free(list.items);
        return 0;
    }
    struct latch latch = {.pending = 1};
    pthread_mutex_init(&latch.lock, NULL);
    pthread_cond_init(&latch.cond, NULL);
    size_t n_jobs = 0;
    for (size_t i = 0; i < list.n; i++) {
        if ((pair && list.items[i].pair != pair) ||
            (only_room && strcmp(only_room, list.items[i].id) != 0))
            continue;
        *found = true;
        if (list.items[i].ended)
            continue;
        struct room_job *job = thou_calloc(1, sizeof(*job));
        if (!job) { /* the rooms listed so far go ahead; the answer says 503 */
            *refusal = "out_of_memory";
            break;
        }
        *job = (struct room_job){.app = app,
                                 .latch = &latch,
                                 .set = set,
                                 .action = action,
                                 .value = value,
                                 .text = text,
                                 .gone = gone_role};
        snprintf(job->room_id, sizeof(job->room_id), "%s", list.items[i].id);
        jobs[n_jobs++] = job;
    }
    pthread_mutex_lock(&latch.lock);
    latch.pending += n_jobs;
    pthread_mutex_unlock(&latch.lock);
    for (size_t i = 0; i < n_jobs; i++)
        thou_store_room_update_async(app->store, jobs[i]->room_id, room_job_update, jobs[i],
                                     &jobs[i]->change, room_job_done, jobs[i]);
    pthread_mutex_lock(&latch.lock);
    latch.pending--;
    while (latch.pending)
        pthread_cond_wait(&latch.cond, &latch.lock);
    pthread_mutex_unlock(&latch.lock);
    size_t taken = 0;
    for (size_t i = 0; i < n_jobs; i++) {
        if (jobs[i]->status == THOU_OK)
            taken++;
        else if (jobs[i]->refusal)
            *refusal = jobs[i]->refusal;
        free(jobs[i]->data);
        free(jobs[i]->flow_json);
        free(jobs[i]);
    }
    free(jobs);
    free(list.items);
    pthread_mutex_destroy(&latch.lock);
    pthread_cond_destroy(&latch.cond);
    return taken;
}

/* ---- actions -------------------------------------------------------------------------- */

static bool parse_label(const char *text, int64_t *label)
{
    if (!text || text[0] != 'p' || text[1] < '1' || text[1] > '9' || strlen(text) > 8)
        return false;
    char *end = NULL;
    long long v = strtoll(text + 1, &end, 10);
    if (*end)
        return false;
    *label = v;
    return true;
}

/* Keys each action takes besides "action". */
static bool keys_allowed(const json_t *body, const char *a, const char *b)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)(uintptr_t)body, key, value)
    {
        if (strcmp(key, "action") != 0 && !(a && strcmp(key, a) == 0) &&
            !(b && strcmp(key, b) == 0))
            return false;
    }
    return true;
}

static bool integer_in(const json_t *value, int64_t min, int64_t max, int64_t *out)
{
    if (!json_is_integer(value) || json_integer_value(value) < min ||
        json_integer_value(value) > max)
        return false;
    *out = json_integer_value(value);
    return true;
}

void thou_workshops_action(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_workshops *ws = app->workshops;
    struct thou_facilitator_session session;
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    json_t *body = NULL;
    char *flow_json = NULL;
    if (!facilitator(app, req, true, &session, res) || !own_workshop(app, req, &session, w, res))
        goto out;
    body = thou_json_body(req, res);
    if (!body)
        goto out;
    const char *action = thou_json_string(body, "action");
    if (!action) {
        fail(res, 400, "invalid_request", "missing field 'action'");
        goto out;
    }
    if (w->state == THOU_WORKSHOP_ENDED) {
        fail(res, 409, "workshop_ended", "this workshop has ended");
        goto out;
    }
    const struct thou_qset *set = set_of(app, w);
    const char *refusal = NULL;
    bool found = false;
    int64_t value = 0;
    enum thou_status rc = THOU_OK;
    bool bad = false;
    if (strcmp(action, "open") == 0 || strcmp(action, "close") == 0) {
        bad = !keys_allowed(body, NULL, NULL);
        w->state = action[0] == 'o' ? THOU_WORKSHOP_OPEN : THOU_WORKSHOP_CLOSED;
    } else if (strcmp(action, "end") == 0) {
        bad = !keys_allowed(body, NULL, NULL);
        if (!bad) {
            /* Final: nobody joins from now on; then every room ends. */
            w->state = THOU_WORKSHOP_ENDED;
            rc = thou_wstore_save(app->store, w);
            if (rc == THOU_OK)
                rc = thou_wstore_clear_queue(app->store, w->id);
            if (rc == THOU_OK)
                apply_to_rooms(app, w, RA_END, 0, NULL, 0, 0, NULL, &refusal, &found);
        }
    } else if (strcmp(action, "release") == 0) {
        bad = !keys_allowed(body, "stage", NULL) || !set ||
              !integer_in(json_object_get(body, "stage"), 0, (int64_t)set->n_stages - 1, &value);
        if (!bad) {
            w->released = value;
            rc = thou_wstore_save(app->store, w);
            if (rc == THOU_OK)
                apply_to_rooms(app, w, RA_RELEASE, value, NULL, 0, 0, NULL, &refusal, &found);
        }
    } else if (strcmp(action, "pause_all") == 0 || strcmp(action, "resume_all") == 0) {
        bad = !keys_allowed(body, NULL, NULL);
        bool pause = action[0] == 'p';
        if (!bad) {
            w->paused = pause;
            rc = thou_wstore_save(app->store, w);
            if (rc == THOU_OK)
                apply_to_rooms(app, w, pause ? RA_PAUSE : RA_RESUME, 0, NULL, 0, 0, NULL, &refusal,
                               &found);
        }
    } else if (strcmp(action, "broadcast") == 0) {
        const char *text = thou_json_string(body, "text");
        bad = !keys_allowed(body, "text", NULL) || !text ||
              utf8_chars(text) > THOU_WORKSHOP_NOTE_MAX || strlen(text) >= sizeof(w->note);
        if (!bad) {
            w->has_note = text[0] != '\0';
            snprintf(w->note, sizeof(w->note), "%s", text);
            rc = thou_wstore_save(app->store, w);
            if (rc == THOU_OK)
                apply_to_rooms(app, w, RA_NOTE, 0, w->has_note ? w->note : NULL, 0, 0, NULL,
                               &refusal, &found);
        }
    } else if (strcmp(action, "timer") == 0) {
        bad = !keys_allowed(body, "seconds", NULL) ||
              !integer_in(json_object_get(body, "seconds"), 0, TIMER_MAX_S, &value);
        if (!bad) {
            w->timer_ends_ms = value ? now_ms() + value * 1000 : 0;
            rc = thou_wstore_save(app->store, w);
            if (rc == THOU_OK)
                apply_to_rooms(app, w, RA_TIMER, w->timer_ends_ms, NULL, 0, 0, NULL, &refusal,
                               &found);
        }
    } else if (strcmp(action, "move_on") == 0) {
        bad = !keys_allowed(body, "pair", NULL) ||
              !integer_in(json_object_get(body, "pair"), 1, INT32_MAX, &value);
        if (!bad) {
            size_t taken =
                apply_to_rooms(app, w, RA_MOVE_ON, 0, NULL, value, 0, NULL, &refusal, &found);
            if (refusal && strcmp(refusal, "out_of_memory") == 0) {
                thou_response_status(res, THOU_ENOMEM);
                goto out;
            }
            if (!found) {
                fail(res, 400, "invalid_request", "there is no such pair in this workshop");
                goto out;
            }
            if (!taken) {
                char message[120];
                snprintf(message, sizeof(message), "this pair cannot be moved on now (%s)",
                         refusal ? refusal : "room_ended");
                fail(res, 409, "cannot_move_on", message);
                goto out;
            }
        }
    } else if (strcmp(action, "pair") == 0) {
        int64_t a = 0, b = 0;
        bad = !keys_allowed(body, "a", "b") || !parse_label(thou_json_string(body, "a"), &a) ||
              !parse_label(thou_json_string(body, "b"), &b) || a == b || !set;
        if (!bad) {
            struct thou_wstore_pairing pairing;
            struct thou_wstore_outcome *outcome = thou_malloc(sizeof(*outcome));
            flow_json = initial_flow(set, w);
            pairing_for(ws, flow_json, &pairing);
            rc = outcome ? add_conditions(app, w, &pairing) : THOU_ENOMEM;
            if (rc == THOU_OK)
                rc = thou_wstore_pair_by_hand(app->store, w->id, a, b, now_ms(), &pairing, outcome);
            free_conditions(&pairing);
            if (rc == THOU_OK)
                notify_pairs(ws, w->id, outcome);
            free(outcome);
            if (rc == THOU_ECONFLICT) {
                fail(res, 409, "not_waiting", "one of the two is no longer waiting");
                goto out;
            }
        }
    } else {
        bad = true;
    }
    if (bad) {
        fail(res, 400, "invalid_request", "unknown action, or a missing or bad value for it");
        goto out;
    }
    if (rc == THOU_OK && (strcmp(action, "open") == 0 || strcmp(action, "close") == 0))
        rc = thou_wstore_save(app->store, w);
    /* Some rooms did not get the action for want of memory: the workshop
     * has it, and the facilitator's retry brings it to the rest. */
    if (rc == THOU_OK && refusal && strcmp(refusal, "out_of_memory") == 0)
        rc = THOU_ENOMEM;
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    if (thou_wstore_get(app->store, w->id, NULL, w)) {
        thou_response_status(res, THOU_EIO);
        goto out;
    }
    enum thou_status why;
    json_t *snap = snapshot(ws, w, &why);
    if (snap)
        thou_json_respond(res, 200, snap);
    else
        thou_response_status(res, why);
out:
    free(flow_json);
    json_decref(body);
    free(w);
}

/* ---- participants ------------------------------------------------------------------------ */

static bool read_token_hash(const json_t *body, uint8_t hash[THOU_DIGEST_BYTES])
{
    const char *text = thou_json_string(body, "token_hash");
    size_t n = 0;
    return text && thou_crypto_b64_decode(text, strlen(text), hash, THOU_DIGEST_BYTES, &n) == 0 &&
           n == THOU_DIGEST_BYTES;
}

static void answer_participant(struct thou_response *res, const struct thou_workshop *w,
                               const struct thou_wparticipant *me)
{
    char label[24];
    snprintf(label, sizeof(label), "p%lld", (long long)me->label);
    json_t *answer = json_pack("{s:s,s:s,s:s}", "participant", label, "title", w->title, "status",
                               me->state == THOU_WP_PAIRED ? "paired" : "waiting");
    if (me->state == THOU_WP_PAIRED &&
        (json_object_set_new(answer, "room", json_string(me->room_id)) ||
         json_object_set_new(answer, "role", json_stringn(&me->role, 1)))) {
        json_decref(answer); /* out of memory: thou_json_respond answers 503 */
        answer = NULL;
    }
    thou_json_respond(res, 200, answer);
}

static void refuse_join(struct thou_response *res, enum thou_status rc)
{
    if (rc == THOU_EGONE)
        fail(res, 410, "workshop_ended", "this workshop has ended");
    else if (rc == THOU_ECONFLICT)
        fail(res, 409, "workshop_closed", "joining this workshop is closed");
    else if (rc == THOU_EFULL)
        fail(res, 409, "workshop_full", "this workshop is full");
    else if (rc == THOU_EEXIST)
        fail(res, 409, "token_in_use", "this browser already takes part in another workshop");
    else
        thou_response_status(res, rc);
}

/* Join or rejoin and pair: one store transaction. */
static enum thou_status join_and_pair(struct thou_workshops *ws, const struct thou_workshop *w,
                                      const uint8_t token_hash[THOU_DIGEST_BYTES],
                                      struct thou_wparticipant *me)
{
    const struct thou_qset *set = set_of(ws->app, w);
    if (!set)
        return THOU_EUNAVAIL;
    char *flow_json = initial_flow(set, w);
    struct thou_wstore_pairing pairing;
    pairing_for(ws, flow_json, &pairing);
    struct thou_wstore_outcome *outcome = thou_malloc(sizeof(*outcome));
    enum thou_status rc = outcome ? add_conditions(ws->app, w, &pairing) : THOU_ENOMEM;
    if (rc == THOU_OK)
        rc = thou_wstore_join(ws->app->store, w->id, token_hash, now_ms(), &pairing, me, outcome);
    free_conditions(&pairing);
    if (rc == THOU_OK)
        notify_pairs(ws, w->id, outcome);
    free(outcome);
    free(flow_json);
    return rc;
}

void thou_workshops_join(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_workshops *ws = app->workshops;
    static const char *const allowed[] = {"code", "token_hash", NULL};
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    json_t *body = thou_json_body(req, res);
    if (!body)
        goto out;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    const char *code_text = thou_json_string(body, "code");
    if (thou_json_unknown_key(body, allowed) || !code_text || strlen(code_text) > 64 ||
        !read_token_hash(body, token_hash)) {
        fail(res, 400, "invalid_request",
             "'code' (the workshop code) and 'token_hash' (32 bytes, base64url) are needed");
        goto out;
    }
    /* Guessing codes is throttled per address, before any lookup. */
    int64_t now = now_ms();
    char address[THOU_ADDRESS_KEY_LEN];
    address_of(req, address, sizeof(address));
    unsigned retry = 0;
    if (address[0] && !thou_limiter_peek(ws->code_limiter, address, now, &retry)) {
        res->retry_after_s = retry;
        fail(res, 429, "rate_limited", "too many wrong codes from here; wait and try again");
        goto out;
    }
    char code[THOU_WORKSHOP_CODE_LEN + 1];
    enum thou_status rc =
        normalize_code(code_text, code) ? thou_wstore_get(app->store, 0, code, w) : THOU_ENOTFOUND;
    if (rc == THOU_ENOTFOUND) {
        if (address[0])
            thou_limiter_take(ws->code_limiter, address, now, NULL);
        fail(res, 404, "no_such_workshop", "there is no workshop with this code");
        goto out;
    }
    if (rc) {
        thou_response_status(res, rc);
        goto out;
    }
    struct thou_wparticipant me;
    rc = join_and_pair(ws, w, token_hash, &me);
    if (rc) {
        refuse_join(res, rc);
        goto out;
    }
    answer_participant(res, w, &me);
out:
    json_decref(body);
    free(w);
}

void thou_workshops_wait(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    uint8_t token_hash[THOU_DIGEST_BYTES];
    struct thou_wparticipant me;
    enum thou_status rc = thou_crypto_bearer_hash(req->authorization, token_hash)
                              ? THOU_ENOTFOUND
                              : thou_wstore_participant(app->store, token_hash, &me);
    if (rc == THOU_ENOTFOUND) {
        fail(res, 401, "bad_token", "missing or unknown token for a workshop");
        return;
    }
    if (rc) {
        thou_response_status(res, rc);
        return;
    }
    res->status = 200;
    res->content_type = "text/event-stream; charset=utf-8";
    if (req->method == THOU_METHOD_HEAD)
        return;
    /* The first frames come from the next refresh, within a quarter second;
     * a pairing that happens meanwhile is sent by notify_pairs. */
    struct push *p = push_new(app->workshops, PUSH_WAITER, me.workshop_id, me.label);
    if (!p) {
        thou_response_status(res, THOU_ENOMEM);
        return;
    }
    /* Read again now that the stream is registered: a pairing committed
     * before this read is seen here, one after it reaches the stream. */
    if (me.state != THOU_WP_PAIRED)
        thou_wstore_participant(app->store, token_hash, &me);
    if (me.state == THOU_WP_PAIRED) {
        char data[96];
        snprintf(data, sizeof(data), "{\"room\":\"%s\",\"role\":\"%c\"}", me.room_id, me.role);
        pthread_mutex_lock(&p->lock);
        thou_buf_printf(&p->out, "event: paired\ndata: %s\n\n", data);
        p->paired_sent = true;
        bool lost = thou_buf_failed(&p->out);
        pthread_mutex_unlock(&p->lock);
        if (lost) { /* out of memory: refused, and the retry is told where to go */
            p->stream.free(&p->stream);
            thou_response_status(res, THOU_ENOMEM);
            return;
        }
    }
    res->stream = &p->stream;
}

void thou_workshops_rejoin(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_workshops *ws = app->workshops;
    static const char *const allowed[] = {"token_hash", NULL};
    struct thou_workshop *w = workshop_record(res);
    if (!w)
        return;
    uint8_t old_hash[THOU_DIGEST_BYTES], new_hash[THOU_DIGEST_BYTES];
    struct thou_wparticipant me;
    json_t *body = NULL;
    if (thou_crypto_bearer_hash(req->authorization, old_hash) ||
        thou_wstore_participant(app->store, old_hash, &me) || me.state != THOU_WP_PAIRED) {
        fail(res, 401, "bad_token", "missing or unknown token of a workshop's room");
        goto out;
    }
    body = thou_json_body(req, res);
    if (!body)
        goto out;
    if (thou_json_unknown_key(body, allowed) || !read_token_hash(body, new_hash)) {
        fail(res, 400, "invalid_request", "'token_hash' (32 bytes, base64url) is needed");
        goto out;
    }
    if (thou_wstore_get(app->store, me.workshop_id, NULL, w)) {
        thou_response_status(res, THOU_EIO);
        goto out;
    }
    if (w->state == THOU_WORKSHOP_ENDED) {
        fail(res, 410, "workshop_ended", "this workshop has ended");
        goto out;
    }
    char partner = me.role == 'A' ? 'B' : 'A';
    if (thou_hub_present(app->hub, me.room_id, partner)) {
        fail(res, 409, "not_left_behind", "your partner is still there");
        goto out;
    }
    enum thou_status rc = thou_wstore_requeue(app->store, w->id, me.label, new_hash, now_ms());
    if (rc == THOU_EEXIST) {
        fail(res, 409, "token_in_use", "this token hash is already in use");
        goto out;
    }
    if (rc) {
        thou_response_status(res, rc == THOU_ECONFLICT ? THOU_EIO : rc);
        goto out;
    }
    /* The old room is over for both: the one who left finds it ended. */
    const char *refusal = NULL;
    bool found = false;
    apply_to_rooms(app, w, RA_END, 0, NULL, 0, 0, me.room_id, &refusal, &found);
    struct thou_wparticipant again;
    rc = join_and_pair(ws, w, new_hash, &again);
    if (rc) {
        refuse_join(res, rc);
        goto out;
    }
    answer_participant(res, w, &again);
out:
    json_decref(body);
    free(w);
}

/* ---- rooms of a workshop ------------------------------------------------------------- */

bool thou_workshops_room_info(struct thou_workshops *ws, const char *room_id, json_t *state)
{
    int64_t workshop_id = 0;
    if (!state)
        return false;
    struct thou_workshop *w = thou_malloc(sizeof(*w));
    if (!w)
        return false;
    if (thou_wstore_room_workshop(ws->app->store, room_id, &workshop_id) || !workshop_id ||
        thou_wstore_get(ws->app->store, workshop_id, NULL, w)) {
        free(w);
        return json_object_set_new(state, "mode", json_string("link")) == 0;
    }
    int set = json_object_set_new(state, "mode", json_string("workshop"));
    set |= json_object_set_new(
        state, "workshop",
        json_pack("{s:s,s:o,s:o,s:I,s:b}", "title", w->title, "note",
                  w->has_note ? json_string(w->note) : json_null(), "timer_ends",
                  w->timer_ends_ms ? json_integer(w->timer_ends_ms) : json_null(), "released",
                  (json_int_t)w->released, "ended", w->state == THOU_WORKSHOP_ENDED));
    free(w);
    return set == 0;
}

/* ---- pages ---------------------------------------------------------------------------------- */

void thou_workshops_page_facilitate(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    thou_static_serve(app->statics, "facilitate.html", req->if_none_match, req->accept_encoding,
                      res);
}

void thou_workshops_page_projector(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    thou_static_serve(app->statics, "projector.html", req->if_none_match, req->accept_encoding,
                      res);
}

void thou_workshops_page_join(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    /* Every code serves the same page, which posts the code from the path. */
    thou_static_serve(app->statics, "join.html", req->if_none_match, req->accept_encoding, res);
}

/* ---- the refresh thread ------------------------------------------------------------------- */

struct waiting_count {
    int64_t n;
};

static void count_waiting(void *ctx, const struct thou_wwaiting *w)
{
    (void)w;
    ((struct waiting_count *)ctx)->n++;
}

/* Dashboards: a new snapshot where it differs from what each was sent. */
static void refresh_dashboards(struct thou_workshops *ws, struct push **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct push *p = items[i];
        struct thou_workshop w;
        char *text = NULL;
        /* One snapshot per workshop: the pushes come grouped by workshop. */
        for (size_t j = 0; j < i && !text; j++)
            if (items[j]->workshop_id == p->workshop_id) {
                pthread_mutex_lock(&items[j]->lock);
                text = items[j]->last_snapshot ? thou_strdup(items[j]->last_snapshot) : NULL;
                pthread_mutex_unlock(&items[j]->lock);
            }
        if (!text && thou_wstore_get(ws->app->store, p->workshop_id, NULL, &w) == THOU_OK) {
            enum thou_status why;
            json_t *snap = snapshot(ws, &w, &why);
            text = snap ? thou_json_dumps(snap, JSON_COMPACT) : NULL;
            json_decref(snap);
        }
        if (!text)
            continue;
        pthread_mutex_lock(&p->lock);
        bool changed = !p->last_snapshot || strcmp(p->last_snapshot, text) != 0;
        if (changed) { /* out of memory: no copy kept, so the next round sends it again */
            free(p->last_snapshot);
            p->last_snapshot = thou_strdup(text);
        }
        pthread_mutex_unlock(&p->lock);
        if (changed)
            push_frame(p, "snapshot", text, false);
        free(text);
    }
}

/* Waiting streams: the queue's length, the note, the timer, the end. */
/*
 * Once a second, a safety net under notify_pairs: a waiting stream not yet
 * told it was paired asks the store (a pass that paired more than
 * THOU_WSTORE_MAX_PAIRS reported only that many).
 */
static void check_paired(struct thou_workshops *ws, struct push **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct push *p = items[i];
        pthread_mutex_lock(&p->lock);
        bool told = p->paired_sent;
        pthread_mutex_unlock(&p->lock);
        struct thou_wparticipant me;
        if (told ||
            thou_wstore_participant_by_label(ws->app->store, p->workshop_id, p->label, &me) ||
            me.state != THOU_WP_PAIRED)
            continue;
        char data[96];
        snprintf(data, sizeof(data), "{\"room\":\"%s\",\"role\":\"%c\"}", me.room_id, me.role);
        pthread_mutex_lock(&p->lock);
        bool send = !p->paired_sent;
        p->paired_sent = true;
        pthread_mutex_unlock(&p->lock);
        if (send)
            push_frame(p, "paired", data, false);
    }
}

static void refresh_waiters(struct thou_workshops *ws, struct push **items, size_t n)
{
    int64_t last_id = -1;
    struct thou_workshop w;
    struct waiting_count count = {0};
    bool have = false;
    for (size_t i = 0; i < n; i++) {
        struct push *p = items[i];
        if (p->workshop_id != last_id) {
            last_id = p->workshop_id;
            count.n = 0;
            have = thou_wstore_get(ws->app->store, p->workshop_id, NULL, &w) == THOU_OK &&
                   thou_wstore_read(ws->app->store, p->workshop_id, count_waiting, NULL, &count) ==
                       THOU_OK;
        }
        if (!have)
            continue;
        char data[THOU_WORKSHOP_NOTE_MAX * 8 + 64];
        pthread_mutex_lock(&p->lock);
        if (p->paired_sent) {
            /* On its way to the room: the queue is no longer its business. */
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        bool send_count = p->last_waiting != count.n;
        p->last_waiting = count.n;
        bool note_changed = (p->last_note == NULL) != !w.has_note ||
                            (p->last_note && strcmp(p->last_note, w.note) != 0);
        bool first = p->last_timer == -1;
        if (note_changed && w.has_note) {
            char *copy = thou_strdup(w.note);
            if (!copy) { /* out of memory: this stream waits for the next round */
                p->last_waiting = -1;
                pthread_mutex_unlock(&p->lock);
                continue;
            }
            free(p->last_note);
            p->last_note = copy;
        } else if (note_changed) {
            free(p->last_note);
            p->last_note = NULL;
        }
        bool timer_changed = p->last_timer != w.timer_ends_ms;
        p->last_timer = w.timer_ends_ms;
        bool ended = w.state == THOU_WORKSHOP_ENDED && !p->ended_sent;
        p->ended_sent |= ended;
        pthread_mutex_unlock(&p->lock);
        if (send_count) {
            snprintf(data, sizeof(data), "{\"waiting\":%lld}", (long long)count.n);
            push_frame(p, "waiting", data, false);
        }
        if (note_changed && (!first || w.has_note)) {
            json_t *note =
                json_pack("{s:o}", "text", w.has_note ? json_string(w.note) : json_null());
            char *text = thou_json_dumps(note, JSON_COMPACT);
            push_frame(p, "note", text, false);
            free(text);
            json_decref(note);
        }
        if (timer_changed && (!first || w.timer_ends_ms)) {
            if (w.timer_ends_ms)
                snprintf(data, sizeof(data), "{\"ends\":%lld}", (long long)w.timer_ends_ms);
            else
                snprintf(data, sizeof(data), "{\"ends\":null}");
            push_frame(p, "timer", data, false);
        }
        if (ended)
            push_frame(p, "ended", "{}", true);
    }
}

/* The ids of the workshops with live state, copied under the lock so the
 * store is read without it. Heap; the caller frees it. */
static int64_t *live_ids(struct thou_workshops *ws, size_t *n_ids)
{
    size_t n = 0, cap = 0;
    int64_t *ids = NULL;
    pthread_mutex_lock(&ws->lock);
    for (struct live *l = ws->lives; l; l = l->next) {
        if (n == cap) {
            int64_t *grown = thou_realloc(ids, (cap ? cap * 2 : 8) * sizeof(*ids));
            if (!grown) /* out of memory: the workshops listed so far, this round */
                break;
            ids = grown;
            cap = cap ? cap * 2 : 8;
        }
        ids[n++] = l->id;
    }
    pthread_mutex_unlock(&ws->lock);
    *n_ids = n;
    return ids;
}

/* Once a second: pair whoever can be paired, let the long gone leave. */
static void pair_pending(struct thou_workshops *ws)
{
    size_t n_ids;
    int64_t *ids = live_ids(ws, &n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        struct thou_workshop w;
        struct waiting_count count = {0};
        if (thou_wstore_get(ws->app->store, ids[i], NULL, &w) || w.state == THOU_WORKSHOP_ENDED ||
            thou_wstore_read(ws->app->store, ids[i], count_waiting, NULL, &count) || !count.n)
            continue;
        const struct thou_qset *set = set_of(ws->app, &w);
        if (!set)
            continue;
        char *flow_json = initial_flow(set, &w);
        struct thou_wstore_pairing pairing;
        pairing_for(ws, flow_json, &pairing);
        /* Out of memory: no pairing this round; the next one tries again. */
        struct thou_wstore_outcome *outcome = thou_malloc(sizeof(*outcome));
        if (outcome && add_conditions(ws->app, &w, &pairing) == THOU_OK &&
            thou_wstore_pair_queue(ws->app->store, w.id, now_ms(), &pairing, outcome) == THOU_OK)
            notify_pairs(ws, w.id, outcome);
        free_conditions(&pairing);
        free(outcome);
        free(flow_json);
    }
    free(ids);
}

/* The repair record of a room in l, made when missing; NULL when l is NULL
 * or out of memory. ws->lock held. */
static struct repair *repair_of(struct live *l, const char *room_id)
{
    if (!l)
        return NULL;
    for (size_t i = 0; i < l->n_repairs; i++)
        if (strcmp(l->repairs[i].room_id, room_id) == 0)
            return &l->repairs[i];
    struct repair *grown = thou_realloc(l->repairs, (l->n_repairs + 1) * sizeof(*l->repairs));
    if (!grown)
        return NULL;
    l->repairs = grown;
    struct repair *r = &l->repairs[l->n_repairs++];
    memset(r, 0, sizeof(*r));
    snprintf(r->room_id, sizeof(r->room_id), "%s", room_id);
    return r;
}

/*
 * Once a second: in every open pair where one partner's room stream has
 * been gone for workshop_repair_after_s while the other is there, tell the
 * one left (a partner_gone event), once until the partner is back.
 */
static void find_left_behind(struct thou_workshops *ws)
{
    struct thou_app *app = ws->app;
    int64_t repair_ms = (int64_t)app->config->workshop_repair_after_s * 1000;
    size_t n_ids;
    int64_t *ids = live_ids(ws, &n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        struct thou_workshop w;
        struct room_list list = {0};
        if (thou_wstore_get(app->store, ids[i], NULL, &w) || w.state == THOU_WORKSHOP_ENDED ||
            thou_wstore_read(app->store, ids[i], ignore_waiting, list_room, &list) || list.failed) {
            free(list.items); /* out of memory: this workshop waits for the next round */
            continue;
        }
        int64_t now = now_ms();
        for (size_t k = 0; k < list.n; k++) {
            if (list.items[k].ended)
                continue;
            bool present[2] = {thou_hub_present(app->hub, list.items[k].id, 'A'),
                               thou_hub_present(app->hub, list.items[k].id, 'B')};
            char gone = 0;
            pthread_mutex_lock(&ws->lock);
            struct repair *r = repair_of(live_get(ws, ids[i]), list.items[k].id);
            if (!r) { /* out of memory: this room waits for the next round */
                pthread_mutex_unlock(&ws->lock);
                continue;
            }
            for (int role = 0; role < 2; role++) {
                if (present[role])
                    r->gone_since[role] = 0;
                else if (!r->gone_since[role])
                    r->gone_since[role] = now;
            }
            if (present[0] && present[1])
                r->told = false;
            for (int role = 0; role < 2 && !gone; role++)
                if (!r->told && present[!role] && r->gone_since[role] &&
                    now - r->gone_since[role] >= repair_ms)
                    gone = role ? 'B' : 'A';
            if (gone)
                r->told = true;
            pthread_mutex_unlock(&ws->lock);
            if (gone) {
                const char *refusal = NULL;
                bool found = false;
                apply_to_rooms(app, &w, RA_PARTNER_GONE, 0, NULL, 0, gone, list.items[k].id,
                               &refusal, &found);
            }
        }
        free(list.items);
    }
    free(ids);
}

static void *refresh_main(void *arg)
{
    struct thou_workshops *ws = arg;
    pthread_setname_np(pthread_self(), "thou-workshops");
    unsigned tick = 0;
    int64_t next_heartbeat = now_ms() + (int64_t)ws->app->config->heartbeat_s * 1000;
    struct timespec until = {0};
    bool new_tick = true;
    for (;;) {
        pthread_mutex_lock(&ws->stop_lock);
        if (new_tick) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += TICK_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
        }
        int waited = 0;
        while (!ws->stopping && !ws->poked &&
               (waited = pthread_cond_timedwait(&ws->stop_cond, &ws->stop_lock, &until)) == 0)
            ;
        bool stop = ws->stopping, poked = ws->poked;
        ws->poked = false;
        pthread_mutex_unlock(&ws->stop_lock);
        if (stop)
            return NULL;
        new_tick = waited != 0; /* the tick came, not (only) a poke */
        if (!new_tick) {
            /* Another instance changed a workshop before the tick: tell the
             * waiters here it paired, at once; the tick keeps its time. */
            size_t n;
            struct push **items = collect(ws, 0, PUSH_WAITER, &n);
            check_paired(ws, items, n);
            release_all(items, n);
            continue;
        }
        tick++;
        bool slow = tick % (1000 / TICK_MS) == 0;
        if (slow)
            renew_leases(ws);
        if (tick % (60000 / TICK_MS) == 0 && thou_store_pg_of(ws->app->store))
            thou_wstore_pg_sweep_leases(thou_store_pg_of(ws->app->store), now_ms());
        if (slow) {
            pair_pending(ws);
            find_left_behind(ws);
        }
        size_t n;
        struct push **items = collect(ws, 0, PUSH_DASHBOARD, &n);
        refresh_dashboards(ws, items, n);
        release_all(items, n);
        items = collect(ws, 0, PUSH_WAITER, &n);
        if (slow || poked)
            check_paired(ws, items, n);
        refresh_waiters(ws, items, n);
        release_all(items, n);
        if (now_ms() >= next_heartbeat) {
            next_heartbeat = now_ms() + (int64_t)ws->app->config->heartbeat_s * 1000;
            items = collect(ws, 0, -1, &n);
            for (size_t i = 0; i < n; i++)
                push_frame(items[i], NULL, ": heartbeat\n\n", false);
            release_all(items, n);
        }
    }
}

struct thou_workshops *thou_workshops_new(struct thou_app *app)
{
    struct thou_workshops *ws = thou_xcalloc(1, sizeof(*ws));
    const struct thou_config *config = app->config;
    ws->app = app;
    pthread_mutex_init(&ws->lock, NULL);
    pthread_mutex_init(&ws->stop_lock, NULL);
    pthread_cond_init(&ws->stop_cond, NULL);
    ws->login_name_limiter =
        thou_limiter_new(config->login_failures_per_min / 60.0, config->login_failures_per_min);
    ws->login_address_limiter =
        thou_limiter_new(config->login_failures_per_min / 60.0, config->login_failures_per_min);
    ws->code_limiter =
        thou_limiter_new(config->join_failures_per_min / 60.0, config->join_failures_per_min);
    /* On PostgreSQL wrong passwords and codes count on every instance alike. */
    thou_limiter_share(ws->login_name_limiter, "login-name", thou_store_rate_hook, app->store);
    thou_limiter_share(ws->login_address_limiter, "login-address", thou_store_rate_hook,
                       app->store);
    thou_limiter_share(ws->code_limiter, "join-code", thou_store_rate_hook, app->store);
    if (thou_store_pg_of(app->store))
        thou_store_pg_set_workshop_hook(thou_store_pg_of(app->store), remote_change, ws);
    if (pthread_create(&ws->thread, NULL, refresh_main, ws) != 0) {
        thou_log_error("cannot start the workshops' thread");
        abort();
    }
    return ws;
}

void thou_workshops_shutdown(struct thou_workshops *ws)
{
    if (!ws)
        return;
    size_t n;
    struct push **items = collect(ws, 0, -1, &n);
    for (size_t i = 0; i < n; i++)
        push_frame(items[i], NULL, NULL, true);
    release_all(items, n);
}

void thou_workshops_free(struct thou_workshops *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&ws->stop_lock);
    ws->stopping = true;
    pthread_cond_signal(&ws->stop_cond);
    pthread_mutex_unlock(&ws->stop_lock);
    pthread_join(ws->thread, NULL);
    while (ws->lives) {
        struct live *l = ws->lives;
        ws->lives = l->next;
        free(l->presence);
        free(l->repairs);
        free(l);
    }
    thou_limiter_free(ws->login_name_limiter);
    thou_limiter_free(ws->login_address_limiter);
    thou_limiter_free(ws->code_limiter);
    pthread_mutex_destroy(&ws->lock);
    pthread_mutex_destroy(&ws->stop_lock);
    pthread_cond_destroy(&ws->stop_cond);
    free(ws);
}
