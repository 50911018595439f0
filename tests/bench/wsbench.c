/*
 * A workshop of N people joining within a few seconds (tests/bench/README.md,
 * "Workshops"): join-to-paired latency, the dashboard's update delay, and
 * the server's memory per participant holding a waiting stream. Runs the
 * real binary through the integration harness; not a timed test.
 *
 *   wsbench [participants] [seconds] [instances]      defaults: 500 10 1
 *
 * With two instances (THOU_TEST_STORE=postgresql), every second person
 * joins through the second one; the dashboard stays on the first.
 */
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PEOPLE 2000

static struct thou_proc proc;
static struct thou_proc proc2; /* the second instance, when there are two */
static int instances = 1;
static char code[16];
static long long start_ms;

struct person {
    int index;
    long long delay_ms; /* when to join, after start */
    long long sent_ms, acked_ms, paired_ms;
    long long label;
    bool ok;
    struct sse_client wait;
    bool wait_open;
};

static struct person people[MAX_PEOPLE];
static atomic_int paired_count;

static long long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atoll(line + 6);
    if (f)
        fclose(f);
    return kib;
}

static int facilitator_add(const char *name, const char *password)
{
    int in[2];
    if (pipe(in) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        close(in[0]);
        close(in[1]);
        if (proc.store_url[0]) /* the server's store, PostgreSQL included */
            setenv("THOU_STORE_URL", proc.store_url, 1);
        execl(getenv("THOU_BIN"), "thou", "facilitator", "add", name, "--data-dir", proc.data_dir,
              (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    if (write(in[1], password, strlen(password)) < 0)
        return -1;
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void *person_main(void *arg)
{
    struct person *p = arg;
    long long wake = start_ms + p->delay_ms;
    while (now_ms() < wake)
        usleep((useconds_t)((wake - now_ms()) * 1000));
    unsigned char token[32], digest[32];
    char token_b64[64], hash[64], body[160];
    randombytes_buf(token, sizeof(token));
    crypto_generichash(digest, sizeof(digest), token, sizeof(token), NULL, 0);
    b64url32(token, token_b64, sizeof(token_b64));
    b64url32(digest, hash, sizeof(hash));
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"token_hash\":\"%s\"}", code, hash);
    struct http_reply reply;
    int port = instances == 2 && p->index % 2 ? proc2.port : proc.port;
    p->sent_ms = now_ms();
    if (!http_json(port, "POST", "/api/workshops/join", NULL, body, &reply))
        return NULL;
    p->acked_ms = now_ms();
    p->ok = reply.status == 200;
    const char *status = json_string_value(json_object_get(reply.json, "status"));
    const char *label = json_string_value(json_object_get(reply.json, "participant"));
    p->label = label ? atoll(label + 1) : 0;
    bool paired = status && strcmp(status, "paired") == 0;
    http_reply_free(&reply);
    if (paired) {
        p->paired_ms = p->acked_ms;
        atomic_fetch_add(&paired_count, 1);
    }
    /* Everyone holds the waiting stream, as the join page does. */
    p->wait_open = sse_open(&p->wait, port, "/api/workshops/wait", token_b64, NULL);
    struct sse_event ev;
    while (!paired && p->wait_open && sse_next(&p->wait, 30000, &ev)) {
        if (strcmp(ev.type, "paired") == 0) {
            p->paired_ms = now_ms();
            paired = true;
            atomic_fetch_add(&paired_count, 1);
        }
        sse_event_release(&ev);
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long pct(long long *v, size_t n, double q)
{
    if (!n)
        return -1;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

struct dash {
    struct sse_client sse;
    long long *seen_ms; /* by joined count: when a snapshot first showed it */
    int n;
    atomic_bool stop;
};

static void *dash_main(void *arg)
{
    struct dash *d = arg;
    struct sse_event ev;
    int shown = 0;
    while (!atomic_load(&d->stop)) {
        if (!sse_next(&d->sse, 500, &ev))
            continue;
        if (strcmp(ev.type, "snapshot") == 0) {
            json_t *snap = json_loads(ev.data, 0, NULL);
            int joined =
                (int)json_integer_value(json_object_get(json_object_get(snap, "counts"), "joined"));
            long long t = now_ms();
            for (; shown < joined && shown < d->n; shown++)
                d->seen_ms[shown] = t;
            json_decref(snap);
        }
        sse_event_release(&ev);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500;
    int seconds = argc > 2 ? atoi(argv[2]) : 10;
    instances = argc > 3 ? atoi(argv[3]) : 1;
    if (n < 2 || n > MAX_PEOPLE || seconds < 1 || instances < 1 || instances > 2) {
        fprintf(stderr, "usage: wsbench [participants 2..%d] [seconds] [instances 1..2]\n",
                MAX_PEOPLE);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    const char *extra[] = {"--max-connections-per-ip", "8000", "--max-connections", "8000", NULL};
    proc_start(&proc, extra);
    if (instances == 2) {
        if (!proc.store_url[0]) {
            fprintf(stderr, "wsbench: two instances share a PostgreSQL store "
                            "(THOU_TEST_STORE=postgresql)\n");
            return 2;
        }
        proc_start_on(&proc2, proc.store_url, extra);
    }
    if (facilitator_add("bench", "bench password\n") != 0) {
        fprintf(stderr, "wsbench: cannot add the facilitator\n");
        return 1;
    }
    struct http_reply reply;
    http_json(proc.port, "POST", "/api/facilitator/login", NULL,
              "{\"name\":\"bench\",\"password\":\"bench password\"}", &reply);
    char set_cookie[256], cookie[300], csrf[200];
    http_header(&reply, "Set-Cookie", set_cookie, sizeof(set_cookie));
    char *end = strchr(set_cookie, ';');
    if (reply.status != 200 || !end) {
        fprintf(stderr, "wsbench: the facilitator login failed (%ld)\n", (long)reply.status);
        return 1;
    }
    *end = '\0';
    snprintf(cookie, sizeof(cookie), "Cookie: %s", set_cookie);
    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s",
             json_string_value(json_object_get(reply.json, "csrf")));
    http_reply_free(&reply);
    char body[128];
    snprintf(body, sizeof(body),
             "{\"title\":\"bench\",\"set\":\"workshop-strangers\",\"capacity\":%d}", n);
    const char *headers[] = {"Content-Type: application/json", cookie, csrf, NULL};
    http_do(proc.port, "POST", "/api/workshops", headers, body, strlen(body), &reply);
    snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(reply.json, "code")));
    long long id = json_integer_value(json_object_get(reply.json, "id"));
    http_reply_free(&reply);

    struct dash dash = {.n = n};
    dash.seen_ms = calloc((size_t)n, sizeof(long long));
    char path[96];
    snprintf(path, sizeof(path), "/api/workshops/%lld/events", id);
    const char *dash_headers[] = {cookie, NULL};
    if (!sse_open_headers(&dash.sse, proc.port, path, dash_headers)) {
        fprintf(stderr, "wsbench: no dashboard stream\n");
        return 1;
    }
    pthread_t dash_thread;
    pthread_create(&dash_thread, NULL, dash_main, &dash);
    usleep(300 * 1000);
    long long rss_before = rss_kib(proc.pid) + (instances == 2 ? rss_kib(proc2.pid) : 0);

    pthread_t threads[MAX_PEOPLE];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    start_ms = now_ms() + 200;
    for (int i = 0; i < n; i++) {
        people[i] = (struct person){.index = i, .delay_ms = (long long)i * seconds * 1000 / n};
        pthread_create(&threads[i], &attr, person_main, &people[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    usleep(1500 * 1000); /* the last snapshots */
    long long rss_after = rss_kib(proc.pid) + (instances == 2 ? rss_kib(proc2.pid) : 0);
    atomic_store(&dash.stop, true);
    pthread_join(dash_thread, NULL);

    long long *join_to_paired = calloc((size_t)n, sizeof(long long));
    long long *dash_delay = calloc((size_t)n, sizeof(long long));
    long long *acked_sorted = calloc((size_t)n, sizeof(long long));
    size_t n_paired = 0, n_ok = 0, n_dash = 0;
    for (int i = 0; i < n; i++) {
        n_ok += people[i].ok;
        if (people[i].paired_ms)
            join_to_paired[n_paired++] = people[i].paired_ms - people[i].sent_ms;
        acked_sorted[i] = people[i].acked_ms;
    }
    /* The k-th acknowledged join against the first snapshot with joined >= k. */
    qsort(acked_sorted, (size_t)n, sizeof(long long), cmp_ll);
    for (int k = 0; k < n; k++)
        if (dash.seen_ms[k] && acked_sorted[k])
            dash_delay[n_dash++] =
                dash.seen_ms[k] > acked_sorted[k] ? dash.seen_ms[k] - acked_sorted[k] : 0;
    qsort(join_to_paired, n_paired, sizeof(long long), cmp_ll);
    qsort(dash_delay, n_dash, sizeof(long long), cmp_ll);
    int streams = 0;
    for (int i = 0; i < n; i++)
        streams += people[i].wait_open;
    printf("{\"participants\":%d,\"seconds\":%d,\"instances\":%d,\"joined_ok\":%zu,\"paired\":%zu,"
           "\"join_to_paired_ms\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld},"
           "\"dashboard_delay_ms\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld,\"samples\":%zu},"
           "\"rss_kib\":{\"before\":%lld,\"after\":%lld},\"waiting_streams\":%d,"
           "\"bytes_per_participant\":%lld}\n",
           n, seconds, instances, n_ok, n_paired, pct(join_to_paired, n_paired, 0.5),
           pct(join_to_paired, n_paired, 0.99), n_paired ? join_to_paired[n_paired - 1] : -1,
           pct(dash_delay, n_dash, 0.5), pct(dash_delay, n_dash, 0.99),
           n_dash ? dash_delay[n_dash - 1] : -1, n_dash, rss_before, rss_after, streams,
           streams ? (rss_after - rss_before) * 1024 / streams : -1);
    int rc = n_ok == (size_t)n && n_paired == (size_t)(n - n % 2) ? 0 : 1;
    for (int i = 0; i < n; i++)
        if (people[i].wait_open)
            sse_close(&people[i].wait);
    sse_close(&dash.sse);
    /* proc_cleanup() asserts through Check, which runs no test here. */
    char cmd[400];
    for (int i = 0; i < instances; i++) {
        struct thou_proc *each = i ? &proc2 : &proc;
        if (proc_stop(each) != 0)
            rc = 1;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", each->dir);
        if (system(cmd) != 0)
            rc = 1;
    }
    return rc;
}
