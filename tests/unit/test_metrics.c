#include "thou/metrics.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct thou_metrics *metrics;
static struct thou_buf out;

static void setup(void)
{
    metrics = thou_metrics_new();
    ck_assert_ptr_nonnull(metrics);
    thou_buf_init(&out);
}

static void teardown(void)
{
    thou_metrics_free(metrics);
    metrics = NULL;
    thou_buf_release(&out);
}

static const char *render(void)
{
    thou_buf_reset(&out);
    thou_metrics_render(metrics, &out);
    ck_assert_ptr_nonnull(out.data);
    return out.data;
}

/* The text holds line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line)) {
        bool starts = p == text || p[-1] == '\n';
        if (starts && p[len] == '\n')
            return true;
    }
    return false;
}

#define ck_assert_line(text, line)                                                                 \
    ck_assert_msg(has_line((text), (line)), "no line '%s' in:\n%s", (line), (text))

#define ck_assert_no_line_with(text, needle)                                                       \
    ck_assert_msg(strstr((text), (needle)) == NULL, "'%s' unexpected in:\n%s", (needle), (text))

/*
 * Check the exposition format: every line ends with '\n'; each family has a
 * HELP then a TYPE line before its samples; samples of a family are
 * contiguous; every sample is "name{labels} value" or "name value" with a
 * number as value.
 */
static void assert_well_formed(const char *text)
{
    ck_assert_msg(text[0] != '\0' && text[strlen(text) - 1] == '\n', "text must end in newline");
    char family[128] = "";
    char help_for[128] = "";
    char seen_families[32][128];
    size_t n_seen = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        size_t len = (size_t)(end - line);
        ck_assert_msg(len > 0, "empty line in:\n%s", text);
        char copy[512];
        ck_assert_uint_lt(len, sizeof(copy));
        memcpy(copy, line, len);
        copy[len] = '\0';
        if (strncmp(copy, "# HELP ", 7) == 0) {
            const char *name = copy + 7;
            size_t name_len = strcspn(name, " ");
            ck_assert_msg(name[name_len] == ' ' && name[name_len + 1] != '\0',
                          "HELP without text: %s", copy);
            snprintf(help_for, sizeof(help_for), "%.*s", (int)name_len, name);
        } else if (strncmp(copy, "# TYPE ", 7) == 0) {
            const char *name = copy + 7;
            size_t name_len = strcspn(name, " ");
            const char *type = name + name_len + 1;
            ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                              strcmp(type, "histogram") == 0,
                          "bad type: %s", copy);
            snprintf(family, sizeof(family), "%.*s", (int)name_len, name);
            ck_assert_msg(strcmp(family, help_for) == 0, "TYPE %s not right after its HELP",
                          family);
            for (size_t i = 0; i < n_seen; i++)
                ck_assert_msg(strcmp(seen_families[i], family) != 0, "family %s twice", family);
            ck_assert_uint_lt(n_seen, 32);
            snprintf(seen_families[n_seen++], sizeof(seen_families[0]), "%s", family);
        } else {
            ck_assert_msg(copy[0] != '#', "unknown comment: %s", copy);
            ck_assert_msg(family[0], "sample before any TYPE: %s", copy);
            ck_assert_msg(strncmp(copy, family, strlen(family)) == 0,
                          "sample '%s' outside its family %s", copy, family);
            const char *rest = copy + strlen(family);
            const char *suffixes[] = {"", "_bucket", "_sum", "_count"};
            bool ok = false;
            for (size_t i = 0; i < 4 && !ok; i++) {
                size_t n = strlen(suffixes[i]);
                if (strncmp(rest, suffixes[i], n) == 0 && (rest[n] == '{' || rest[n] == ' '))
                    ok = true;
            }
            ck_assert_msg(ok, "sample name of '%s' is not of family %s", copy, family);
            const char *space = strrchr(copy, ' ');
            ck_assert_ptr_nonnull(space);
            char *num_end = NULL;
            strtod(space + 1, &num_end);
            ck_assert_msg(num_end && *num_end == '\0' && num_end != space + 1,
                          "value of '%s' is not a number", copy);
            const char *brace = strchr(copy, '{');
            if (brace && brace < space)
                ck_assert_msg(space[-1] == '}', "unclosed labels: %s", copy);
        }
        line = end + 1;
    }
}

/* Value of the sample whose name and labels are exactly key; fails if absent. */
static double sample(const char *text, const char *key)
{
    size_t len = strlen(key);
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
        if ((p == text || p[-1] == '\n') && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    }
    ck_abort_msg("no sample '%s' in:\n%s", key, text);
    return 0;
}

START_TEST(test_render_empty)
{
    const char *text = render();
    assert_well_formed(text);
    ck_assert_line(text, "# TYPE thou_http_requests_total counter");
    ck_assert_line(text, "# TYPE thou_http_request_duration_seconds histogram");
    ck_assert_line(text, "# TYPE thou_events_total counter");
    ck_assert_line(text, "# TYPE thou_open_connections gauge");
    ck_assert_line(text, "# TYPE thou_open_streams gauge");
    ck_assert_line(text, "thou_open_connections 0");
    ck_assert_line(text, "thou_open_streams 0");
    ck_assert_no_line_with(text, "thou_http_requests_total{");
    ck_assert_no_line_with(text, "_bucket{");
}
END_TEST

START_TEST(test_request_counters)
{
    /* The same pattern from two different buffers is one route. */
    char pattern_copy[] = "/healthz";
    thou_metrics_request(metrics, "/healthz", THOU_METHOD_GET, 200, 0.001);
    thou_metrics_request(metrics, pattern_copy, THOU_METHOD_GET, 200, 0.001);
    thou_metrics_request(metrics, "/healthz", THOU_METHOD_GET, 200, 0.001);
    thou_metrics_request(metrics, "/healthz", THOU_METHOD_HEAD, 200, 0.001);
    thou_metrics_request(metrics, "/healthz", THOU_METHOD_GET, 503, 0.001);
    thou_metrics_request(metrics, "/api/rooms/{room}", THOU_METHOD_POST, 201, 0.01);
    thou_metrics_request(metrics, NULL, THOU_METHOD_GET, 404, 0.0001);
    thou_metrics_request(metrics, NULL, THOU_METHOD_OTHER, 405, 0.0001);
    const char *text = render();
    assert_well_formed(text);
    ck_assert_line(text,
                   "thou_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 3");
    ck_assert_line(text,
                   "thou_http_requests_total{route=\"/healthz\",method=\"HEAD\",status=\"200\"} 1");
    ck_assert_line(text,
                   "thou_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"503\"} 1");
    ck_assert_line(
        text,
        "thou_http_requests_total{route=\"/api/rooms/{room}\",method=\"POST\",status=\"201\"} 1");
    ck_assert_line(text,
                   "thou_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1");
    ck_assert_line(
        text, "thou_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"405\"} 1");
    /* One histogram per route, whatever the method and status. */
    ck_assert_line(text, "thou_http_request_duration_seconds_count{route=\"/healthz\"} 5");
    ck_assert_line(text, "thou_http_request_duration_seconds_count{route=\"unmatched\"} 2");
}
END_TEST

START_TEST(test_histogram)
{
    const double observations[] = {0.0001, 0.0005, 0.001, 0.003, 0.003, 0.2, 1.0, 5.0};
    double sum = 0;
    for (size_t i = 0; i < sizeof(observations) / sizeof(observations[0]); i++) {
        thou_metrics_request(metrics, "/x", THOU_METHOD_GET, 200, observations[i]);
        sum += observations[i];
    }
    const char *text = render();
    assert_well_formed(text);
    static const struct {
        const char *le;
        double count;
    } buckets[] = {
        {"0.0005", 2}, {"0.001", 3}, {"0.0025", 3}, {"0.005", 5}, {"0.01", 5}, {"0.025", 5},
        {"0.05", 5},   {"0.1", 5},   {"0.25", 6},   {"1", 7},     {"+Inf", 8},
    };
    double previous = 0;
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        char key[160];
        snprintf(key, sizeof(key),
                 "thou_http_request_duration_seconds_bucket{route=\"/x\",le=\"%s\"}",
                 buckets[i].le);
        double value = sample(text, key);
        ck_assert_msg(value == buckets[i].count, "%s: %g, expected %g", key, value,
                      buckets[i].count);
        ck_assert(value >= previous); /* cumulative */
        previous = value;
    }
    ck_assert(sample(text, "thou_http_request_duration_seconds_count{route=\"/x\"}") == 8);
    double rendered_sum = sample(text, "thou_http_request_duration_seconds_sum{route=\"/x\"}");
    ck_assert_msg(fabs(rendered_sum - sum) < 1e-5, "sum %f, expected %f", rendered_sum, sum);

    /* Bucket lines come in ascending order of le, +Inf last. */
    const char *first = strstr(text, "le=\"0.0005\"");
    const char *one = strstr(text, "le=\"1\"");
    const char *inf = strstr(text, "le=\"+Inf\"");
    ck_assert(first && one && inf && first < one && one < inf);
}
END_TEST

START_TEST(test_gauges)
{
    thou_metrics_connections(metrics, 1);
    thou_metrics_connections(metrics, 1);
    thou_metrics_connections(metrics, 1);
    thou_metrics_connections(metrics, -1);
    thou_metrics_streams(metrics, 1);
    thou_metrics_streams(metrics, 1);
    thou_metrics_streams(metrics, -1);
    ck_assert_int_eq(thou_metrics_open_streams(metrics), 1);
    const char *text = render();
    assert_well_formed(text);
    ck_assert_line(text, "thou_open_connections 2");
    ck_assert_line(text, "thou_open_streams 1");
    thou_metrics_streams(metrics, -1);
    ck_assert_int_eq(thou_metrics_open_streams(metrics), 0);
    text = render();
    ck_assert_line(text, "thou_open_streams 0");
}
END_TEST

START_TEST(test_events)
{
    thou_metrics_event(metrics, "answer");
    thou_metrics_event(metrics, "answer");
    thou_metrics_event(metrics, "pass");
    const char *text = render();
    assert_well_formed(text);
    ck_assert_line(text, "thou_events_total{type=\"answer\"} 2");
    ck_assert_line(text, "thou_events_total{type=\"pass\"} 1");
}
END_TEST

/* Every reason is rendered, counted or not, so a dashboard sees a zero. */
START_TEST(test_refusals)
{
    const char *text = render();
    assert_well_formed(text);
    ck_assert_line(text, "# TYPE thou_refusals_total counter");
    ck_assert_line(text, "thou_refusals_total{reason=\"head_deadline\"} 0");
    thou_metrics_refusal(metrics, THOU_REFUSAL_HEAD_DEADLINE);
    thou_metrics_refusal(metrics, THOU_REFUSAL_HEAD_DEADLINE);
    thou_metrics_refusal(metrics, THOU_REFUSAL_ADDRESS_LIMIT);
    text = render();
    assert_well_formed(text);
    ck_assert_line(text, "thou_refusals_total{reason=\"head_deadline\"} 2");
    ck_assert_line(text, "thou_refusals_total{reason=\"address_limit\"} 1");
    ck_assert_line(text, "thou_refusals_total{reason=\"connection_limit\"} 0");
    ck_assert_line(text, "thou_refusals_total{reason=\"body_deadline\"} 0");
}
END_TEST

/* Rendering appends: what the buffer held before stays in front. */
START_TEST(test_render_appends)
{
    thou_buf_puts(&out, "# HELP x y\n");
    thou_metrics_render(metrics, &out);
    ck_assert_mem_eq(out.data, "# HELP x y\n", 11);
    ck_assert_ptr_nonnull(strstr(out.data, "thou_open_streams 0\n"));
}
END_TEST

#define N_THREADS  4
#define N_REQUESTS 2000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < N_REQUESTS; i++) {
        thou_metrics_request(metrics, i % 2 ? "/a" : "/b", THOU_METHOD_GET, 200, 0.002);
        thou_metrics_connections(metrics, 1);
        thou_metrics_connections(metrics, -1);
        thou_metrics_event(metrics, "e");
    }
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t threads[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(threads[i], NULL);
    const char *text = render();
    assert_well_formed(text);
    char line[160];
    snprintf(line, sizeof(line),
             "thou_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} %d",
             N_THREADS * N_REQUESTS / 2);
    ck_assert_line(text, line);
    snprintf(line, sizeof(line), "thou_http_request_duration_seconds_count{route=\"/b\"} %d",
             N_THREADS * N_REQUESTS / 2);
    ck_assert_line(text, line);
    snprintf(line, sizeof(line), "thou_events_total{type=\"e\"} %d", N_THREADS * N_REQUESTS);
    ck_assert_line(text, line);
    ck_assert_line(text, "thou_open_connections 0");
}
END_TEST

START_TEST(test_free_null)
{
    thou_metrics_free(NULL);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *suite = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_render_empty);
    tcase_add_test(tc, test_request_counters);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_gauges);
    tcase_add_test(tc, test_events);
    tcase_add_test(tc, test_render_appends);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(metrics_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
