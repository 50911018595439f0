#include "thou/config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#ifndef THOU_SOURCE_DIR
#error "THOU_SOURCE_DIR must name the repository root"
#endif

#define TEMP_TEMPLATE "/tmp/thou_config_XXXXXX"

static struct thou_config config;
static char errbuf[512];

static void setup(void)
{
    thou_config_init(&config);
    errbuf[0] = '\0';
}

static void teardown(void)
{
    thou_config_release(&config);
}

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' does not contain '%s'", (haystack),  \
                  (needle))

static void write_file(const char *path, const char *content)
{
    FILE *file = fopen(path, "w");
    ck_assert_msg(file != NULL, "cannot create '%s': %s", path, strerror(errno));
    ck_assert_int_eq(fputs(content, file) >= 0, 1);
    ck_assert_int_eq(fclose(file), 0);
}

/* path must hold sizeof(TEMP_TEMPLATE) bytes. */
static void write_temp(char *path, const char *content)
{
    memcpy(path, TEMP_TEMPLATE, sizeof(TEMP_TEMPLATE));
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
    close(fd);
    write_file(path, content);
}

static void assert_same_config(const struct thou_config *a, const struct thou_config *b)
{
    ck_assert_str_eq(a->listen_address, b->listen_address);
    ck_assert_uint_eq(a->port, b->port);
    ck_assert_str_eq(a->data_dir, b->data_dir);
    ck_assert_str_eq(a->static_dir, b->static_dir);
    ck_assert_str_eq(a->questions_dir, b->questions_dir);
    ck_assert_uint_eq(a->threads, b->threads);
    ck_assert_uint_eq(a->max_connections, b->max_connections);
    ck_assert_uint_eq(a->max_connections_per_ip, b->max_connections_per_ip);
    ck_assert_uint_eq(a->connection_timeout_s, b->connection_timeout_s);
    ck_assert_uint_eq(a->header_timeout_s, b->header_timeout_s);
    ck_assert_uint_eq(a->body_timeout_s, b->body_timeout_s);
    ck_assert_uint_eq(a->max_body_bytes, b->max_body_bytes);
    ck_assert_int_eq(a->log_level, b->log_level);
    ck_assert_uint_eq(a->heartbeat_s, b->heartbeat_s);
    ck_assert_uint_eq(a->max_streams_per_participant, b->max_streams_per_participant);
    ck_assert_uint_eq(a->room_ttl_days, b->room_ttl_days);
    ck_assert_uint_eq(a->min_free_disk_mb, b->min_free_disk_mb);
    ck_assert_uint_eq(a->max_room_events, b->max_room_events);
    ck_assert_uint_eq(a->max_room_bytes, b->max_room_bytes);
    ck_assert_uint_eq(a->sweep_interval_s, b->sweep_interval_s);
    ck_assert_uint_eq(a->max_ciphertext_bytes, b->max_ciphertext_bytes);
    ck_assert_uint_eq(a->join_failures_per_min, b->join_failures_per_min);
    ck_assert_uint_eq(a->events_per_s, b->events_per_s);
    ck_assert_uint_eq(a->events_burst, b->events_burst);
    ck_assert_uint_eq(a->room_creations_per_min, b->room_creations_per_min);
    ck_assert_str_eq(a->trusted_proxies, b->trusted_proxies);
    ck_assert_uint_eq(a->max_reflect_rounds, b->max_reflect_rounds);
    ck_assert_uint_eq(a->workshop_capacity, b->workshop_capacity);
    ck_assert_uint_eq(a->workshop_presence_timeout_s, b->workshop_presence_timeout_s);
    ck_assert_uint_eq(a->workshop_repair_after_s, b->workshop_repair_after_s);
    ck_assert_uint_eq(a->facilitator_session_s, b->facilitator_session_s);
    ck_assert_uint_eq(a->login_failures_per_min, b->login_failures_per_min);
    ck_assert_str_eq(a->public_url, b->public_url);
}

static void assert_defaults(const struct thou_config *c)
{
    struct thou_config defaults;
    thou_config_init(&defaults);
    assert_same_config(c, &defaults);
    thou_config_release(&defaults);
}

static const char *const all_settings[] = {
    "listen_address",
    "port",
    "data_dir",
    "store_url",
    "static_dir",
    "questions_dir",
    "threads",
    "max_connections",
    "max_connections_per_ip",
    "trusted_proxies",
    "connection_timeout_s",
    "header_timeout_s",
    "body_timeout_s",
    "max_body_bytes",
    "connection_memory_bytes",
    "tls_cert",
    "tls_key",
    "log_level",
    "max_streams_per_participant",
    "heartbeat_s",
    "max_room_events",
    "max_room_bytes",
    "min_free_disk_mb",
    "room_ttl_days",
    "sweep_interval_s",
    "max_ciphertext_bytes",
    "join_failures_per_min",
    "events_per_s",
    "events_burst",
    "room_creations_per_min",
    "max_reflect_rounds",
    "workshop_capacity",
    "workshop_presence_timeout_s",
    "workshop_repair_after_s",
    "facilitator_session_s",
    "login_failures_per_min",
    "public_url",
};

#define ALL_SETTINGS_COUNT (sizeof(all_settings) / sizeof(all_settings[0]))

/* envp entries are char *: a compound literal gives a writable copy of a literal. */
#define VAR(text) ((char[]){text})

START_TEST(test_defaults)
{
    ck_assert_str_eq(config.listen_address, "127.0.0.1");
    ck_assert_uint_eq(config.port, 8080);
    ck_assert_str_eq(config.data_dir, "data");
    ck_assert_str_eq(config.static_dir, "static");
    ck_assert_str_eq(config.questions_dir, "config/questions");
    ck_assert_uint_eq(config.threads, 0);
    ck_assert_uint_eq(config.max_connections, 4096);
    ck_assert_uint_eq(config.max_connections_per_ip, 512);
    ck_assert_uint_eq(config.connection_timeout_s, 30);
    ck_assert_uint_eq(config.header_timeout_s, 10);
    ck_assert_uint_eq(config.body_timeout_s, 30);
    ck_assert_uint_eq(config.max_body_bytes, 65536);
    ck_assert_int_eq(config.log_level, THOU_LOG_INFO);
    ck_assert_uint_eq(config.max_streams_per_participant, 4);
    ck_assert_uint_eq(config.heartbeat_s, 20);
    ck_assert_uint_eq(config.min_free_disk_mb, 64);
    ck_assert_uint_eq(config.max_room_events, 20000);
    ck_assert_uint_eq(config.max_room_bytes, 64 * 1024 * 1024);
    ck_assert_uint_eq(config.room_ttl_days, 30);
    ck_assert_uint_eq(config.sweep_interval_s, 3600);
    ck_assert_uint_eq(config.max_ciphertext_bytes, 16384);
    ck_assert_uint_eq(config.join_failures_per_min, 10);
    ck_assert_uint_eq(config.events_per_s, 20);
    ck_assert_uint_eq(config.events_burst, 60);
    ck_assert_uint_eq(config.room_creations_per_min, 30);
    ck_assert_str_eq(config.trusted_proxies, "");
    ck_assert_uint_eq(config.max_reflect_rounds, 3);
    ck_assert_uint_eq(config.workshop_capacity, 500);
    ck_assert_uint_eq(config.workshop_presence_timeout_s, 20);
    ck_assert_uint_eq(config.workshop_repair_after_s, 90);
    ck_assert_uint_eq(config.facilitator_session_s, 43200);
    ck_assert_uint_eq(config.login_failures_per_min, 5);
    ck_assert_str_eq(config.public_url, "");
    ck_assert_str_eq(config.tls_cert, ""); /* plain HTTP unless asked */
    ck_assert_str_eq(config.tls_key, "");
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_OK);
}
END_TEST

START_TEST(test_has)
{
    for (size_t i = 0; i < ALL_SETTINGS_COUNT; i++)
        ck_assert_msg(thou_config_has(all_settings[i]), "'%s' unknown", all_settings[i]);
    ck_assert(thou_config_has("max-body-bytes"));
    ck_assert(!thou_config_has("max_body"));
    ck_assert(!thou_config_has("max_body_bytes_"));
    ck_assert(!thou_config_has("PORT"));
    ck_assert(!thou_config_has(""));
    ck_assert(!thou_config_has("config"));
}
END_TEST

START_TEST(test_default_file)
{
    const char *path = THOU_SOURCE_DIR "/config/thou.json";
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_str_eq(config.data_dir, THOU_SOURCE_DIR "/config/../data");
    ck_assert_str_eq(config.static_dir, THOU_SOURCE_DIR "/config/../static");
    ck_assert_str_eq(config.questions_dir, THOU_SOURCE_DIR "/config/questions");

    /* Apart from the paths, the shipped file says exactly the defaults. */
    struct thou_config defaults;
    thou_config_init(&defaults);
    free(defaults.data_dir);
    free(defaults.static_dir);
    free(defaults.questions_dir);
    defaults.data_dir = strdup(config.data_dir);
    defaults.static_dir = strdup(config.static_dir);
    defaults.questions_dir = strdup(config.questions_dir);
    assert_same_config(&config, &defaults);
    thou_config_release(&defaults);

    /* And it names every setting, so it documents them all. */
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(json_object_size(root), ALL_SETTINGS_COUNT);
    for (size_t i = 0; i < ALL_SETTINGS_COUNT; i++)
        ck_assert_msg(json_object_get(root, all_settings[i]) != NULL, "'%s' missing",
                      all_settings[i]);
    json_decref(root);
}
END_TEST

START_TEST(test_load_good_file)
{
    char path[sizeof(TEMP_TEMPLATE)];
    write_temp(path, "{\"port\": 9000, \"listen_address\": \"::1\", \"log_level\": \"debug\",\n"
                     " \"max_body_bytes\": 1048576, \"data_dir\": \"/var/lib/thou\",\n"
                     " \"max_reflect_rounds\": 0}\n");
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_uint_eq(config.port, 9000);
    ck_assert_str_eq(config.listen_address, "::1");
    ck_assert_int_eq(config.log_level, THOU_LOG_DEBUG);
    ck_assert_uint_eq(config.max_body_bytes, 1048576);
    ck_assert_str_eq(config.data_dir, "/var/lib/thou");
    ck_assert_uint_eq(config.max_reflect_rounds, 0);
    ck_assert_uint_eq(config.threads, 0);
    ck_assert_str_eq(config.static_dir, "static");
    unlink(path);
}
END_TEST

START_TEST(test_load_empty_object)
{
    char path[sizeof(TEMP_TEMPLATE)];
    write_temp(path, "{}");
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_OK);
    assert_defaults(&config);
    unlink(path);
}
END_TEST

static const struct bad_file_case {
    const char *content;
    const char *message; /* a part of the message after "<path>" */
} bad_files[] = {
    {"{\"portt\": 1}", ": unknown key 'portt'"},
    {"{\"PORT\": 1}", ": unknown key 'PORT'"},
    {"{\"max-body-bytes\": 2048}", ": unknown key 'max-body-bytes'"},
    {"{\"port\": \"8080\"}", ": 'port' must be an integer, not a string"},
    {"{\"port\": 80.5}", ": 'port' must be an integer"},
    {"{\"port\": true}", ": 'port' must be an integer, not a boolean"},
    {"{\"port\": null}", ": 'port' must be an integer, not null"},
    {"{\"data_dir\": 5}", ": 'data_dir' must be a string, not an integer"},
    {"{\"static_dir\": [\"a\"]}", ": 'static_dir' must be a string, not an array"},
    {"{\"log_level\": 3}", ": 'log_level' must be a string"},
    {"{\"log_level\": \"loud\"}", ": 'log_level' must be one of"},
    {"{\"port\": 65536}", ": 'port' must be between 0 and 65535, not 65536"},
    {"{\"port\": -1}", ": 'port' must be between 0 and 65535, not -1"},
    {"{\"threads\": 257}", ": 'threads' must be between 0 and 256, not 257"},
    {"{\"max_body_bytes\": 1023}", ": 'max_body_bytes' must be between 1024 and 16777216"},
    {"{\"max_connections\": 4294967296}", ": 'max_connections' must be between 16 and 1000000"},
    {"{\"heartbeat_s\": 0}", ": 'heartbeat_s' must be between 1 and 3600, not 0"},
    {"{\"data_dir\": \"\"}", ": 'data_dir' must not be empty"},
    {"{\"store_url\": \"mysql://db/thou\"}", ": 'store_url' must be empty, sqlite:PATH or a"},
    {"{\"store_url\": \"sqlite:\"}", ": 'store_url' must be empty, sqlite:PATH or a"},
    {"{\"listen_address\": \"localhost\"}", ": 'listen_address' must be an IPv4 or IPv6 address"},
    {"{\"listen_address\": \"\"}", ": 'listen_address' must be an IPv4 or IPv6 address"},
    {"{\n  \"port\": 1,\n  \"threads\" 2\n}\n", ":3:"},
    {"{\"port\": 1,}", ":1:"},
    {"", ":1:"},
    {"\"port\"", ":1:"},
    {"{\"port\": 1, \"port\": 2}", "duplicate"},
    {"[1, 2]", ": the top level must be an object, not an array"},
    {"{\"port\": 1} {}", ":1:"},
    {"{\"port\": 99999999999999999999}", ":1:"},
};

START_TEST(test_load_bad_file)
{
    const struct bad_file_case *bad = &bad_files[_i];
    char path[sizeof(TEMP_TEMPLATE)];
    write_temp(path, bad->content);
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_msg(strncmp(errbuf, path, strlen(path)) == 0, "'%s' does not start with '%s'", errbuf,
                  path);
    ck_assert_contains(errbuf + strlen(path), bad->message);
    ck_assert_msg(errbuf[strlen(errbuf) - 1] != '.', "'%s' ends with a period", errbuf);
    assert_defaults(&config);
    unlink(path);
}
END_TEST

START_TEST(test_syntax_error_names_line_and_column)
{
    char path[sizeof(TEMP_TEMPLATE)];
    char expected[sizeof(TEMP_TEMPLATE) + 16];
    write_temp(path, "{\n  \"port\": 1,\n  \"threads\" 2\n}\n");
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_EINVAL);
    snprintf(expected, sizeof(expected), "%s:3:", path);
    ck_assert_msg(strncmp(errbuf, expected, strlen(expected)) == 0, "'%s' lacks '%s'", errbuf,
                  expected);
    const char *column = errbuf + strlen(expected);
    ck_assert_msg(*column >= '1' && *column <= '9', "no column in '%s'", errbuf);
    unlink(path);
}
END_TEST

START_TEST(test_failed_load_leaves_config_unchanged)
{
    char path[sizeof(TEMP_TEMPLATE)];
    ck_assert_int_eq(thou_config_set(&config, "port", "7000", errbuf, sizeof(errbuf)), THOU_OK);
    write_temp(path, "{\"port\": 9000, \"data_dir\": \"elsewhere\", \"log_level\": \"debug\",\n"
                     " \"threads\": 999}\n");
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_contains(errbuf, "'threads'");
    ck_assert_uint_eq(config.port, 7000);
    ck_assert_str_eq(config.data_dir, "data");
    ck_assert_int_eq(config.log_level, THOU_LOG_INFO);
    unlink(path);
}
END_TEST

START_TEST(test_missing_file)
{
    const char *path = "/tmp/thou_config_does_not_exist/thou.json";
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_ENOTFOUND);
    ck_assert_contains(errbuf, "'/tmp/thou_config_does_not_exist/thou.json'");
    assert_defaults(&config);
}
END_TEST

START_TEST(test_directory_is_unreadable)
{
    char dir[] = TEMP_TEMPLATE;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(thou_config_load_file(&config, dir, errbuf, sizeof(errbuf)), THOU_EIO);
    ck_assert_contains(errbuf, dir);
    assert_defaults(&config);
    rmdir(dir);
}
END_TEST

START_TEST(test_permission_denied)
{
    if (geteuid() == 0)
        return; /* root reads anything */
    char path[sizeof(TEMP_TEMPLATE)];
    write_temp(path, "{}");
    ck_assert_int_eq(chmod(path, 0), 0);
    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_EIO);
    ck_assert_contains(errbuf, path);
    unlink(path);
}
END_TEST

/* A PostgreSQL URL is kept as written; the default, empty, means SQLite in data_dir. */
START_TEST(test_store_url)
{
    ck_assert_str_eq(config.store_url, "");
    ck_assert_int_eq(thou_config_set(&config, "store_url",
                                     "postgresql://thou@db.internal:5432/thou?sslmode=require",
                                     errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_str_eq(config.store_url, "postgresql://thou@db.internal:5432/thou?sslmode=require");
    ck_assert_int_eq(
        thou_config_set(&config, "store_url", "postgres://h/d", errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_set(&config, "store_url", "sqlite:var/db", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_str_eq(config.store_url, "sqlite:var/db");
    ck_assert_int_eq(thou_config_set(&config, "store_url", "/var/lib/thou", errbuf, sizeof(errbuf)),
                     THOU_EINVAL);
}
END_TEST

START_TEST(test_relative_paths_resolve_against_file)
{
    char dir[] = TEMP_TEMPLATE;
    char path[sizeof(dir) + 16];
    char expected[sizeof(dir) + 32];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/thou.json", dir);
    write_file(path, "{\"data_dir\": \"/srv/thou/data\", \"static_dir\": \"../static\",\n"
                     " \"questions_dir\": \"questions\", \"store_url\": \"sqlite:db\"}\n");

    ck_assert_int_eq(thou_config_load_file(&config, path, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_str_eq(config.data_dir, "/srv/thou/data");
    snprintf(expected, sizeof(expected), "sqlite:%s/db", dir);
    ck_assert_str_eq(config.store_url, expected);
    snprintf(expected, sizeof(expected), "%s/../static", dir);
    ck_assert_str_eq(config.static_dir, expected);
    snprintf(expected, sizeof(expected), "%s/questions", dir);
    ck_assert_str_eq(config.questions_dir, expected);

    /* A file named without a directory is in the working directory already. */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(dir), 0);
    enum thou_status rc = thou_config_load_file(&config, "thou.json", errbuf, sizeof(errbuf));
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, THOU_OK);
    ck_assert_str_eq(config.static_dir, "../static");
    ck_assert_str_eq(config.questions_dir, "questions");

    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_env_applies)
{
    char *envp[] = {
        VAR("PATH=/usr/bin"),
        VAR("THOU_PORT=9090"),
        VAR("THOU_DATA_DIR=var/data"),
        VAR("THOU_LOG_LEVEL=warn"),
        VAR("THOU_CONFIG=/nowhere"),
        VAR("THOU_BIN=/usr/bin/thou"),
        VAR("THOU_TEST_PG_URL=postgresql://thou@127.0.0.1:5/postgres"),
        VAR("THOU_STORE_URL=postgresql://thou@db/thou"),
        VAR("THOU_MAX_BODY_BYTES=2048"),
        VAR("NOT_THOU_X=1"),
        VAR("THOU_NO_EQUALS"),
        NULL,
    };
    ck_assert_int_eq(thou_config_load_env(&config, envp, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_uint_eq(config.port, 9090);
    ck_assert_str_eq(config.data_dir, "var/data");
    ck_assert_int_eq(config.log_level, THOU_LOG_WARN);
    ck_assert_uint_eq(config.max_body_bytes, 2048);
    ck_assert_str_eq(config.static_dir, "static");
    ck_assert_str_eq(config.store_url, "postgresql://thou@db/thou");
}
END_TEST

START_TEST(test_env_empty)
{
    char *envp[] = {NULL};
    ck_assert_int_eq(thou_config_load_env(&config, envp, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_load_env(&config, NULL, errbuf, sizeof(errbuf)), THOU_OK);
    assert_defaults(&config);
}
END_TEST

static const struct bad_env_case {
    const char *variable;
    const char *message;
} bad_envs[] = {
    {"THOU_PORTT=1", "unknown environment variable 'THOU_PORTT'"},
    {"THOU_port=1", "unknown environment variable 'THOU_port'"},
    {"THOU_=1", "unknown environment variable 'THOU_'"},
    {"THOU_CONFIG_FILE=x", "unknown environment variable 'THOU_CONFIG_FILE'"},
    {"THOU_THREADS=abc", "'THOU_THREADS' must be a whole number, not 'abc'"},
    {"THOU_THREADS=", "'THOU_THREADS' must be a whole number, not ''"},
    {"THOU_PORT=65536", "'THOU_PORT' must be between 0 and 65535, not 65536"},
    {"THOU_STATIC_DIR=", "'THOU_STATIC_DIR' must not be empty"},
    {"THOU_TRUSTED_PROXIES=10.0.0.0/33",
     "'THOU_TRUSTED_PROXIES': '10.0.0.0/33' is not an IP address or a CIDR block such as "
     "10.0.0.0/8"},
    {"THOU_LOG_LEVEL=INFO",
     "'THOU_LOG_LEVEL' must be one of 'error', 'warn', 'info' or 'debug', not 'INFO'"},
};

START_TEST(test_env_refuses)
{
    const struct bad_env_case *bad = &bad_envs[_i];
    /* The good variable before the bad one must not stick. */
    char variable[64];
    snprintf(variable, sizeof(variable), "%s", bad->variable);
    char *envp[] = {VAR("THOU_PORT=9090"), VAR("THOU_DATA_DIR=elsewhere"), variable, NULL};
    ck_assert_int_eq(thou_config_load_env(&config, envp, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_str_eq(errbuf, bad->message);
    assert_defaults(&config);
}
END_TEST

START_TEST(test_set)
{
    ck_assert_int_eq(thou_config_set(&config, "max-body-bytes", "1024", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_uint_eq(config.max_body_bytes, 1024);
    ck_assert_int_eq(thou_config_set(&config, "max_body_bytes", "16777216", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_uint_eq(config.max_body_bytes, 16777216);
    ck_assert_int_eq(thou_config_set(&config, "log-level", "error", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_int_eq(config.log_level, THOU_LOG_ERROR);
    ck_assert_int_eq(thou_config_set(&config, "listen-address", "0.0.0.0", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_str_eq(config.listen_address, "0.0.0.0");
    ck_assert_int_eq(thou_config_set(&config, "static-dir", "../s", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_str_eq(config.static_dir, "../s");
    ck_assert_int_eq(thou_config_set(&config, "port", "0", errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_uint_eq(config.port, 0);
}
END_TEST

START_TEST(test_public_url)
{
    static const char *const good[] = {"", "https://thou.example.org", "http://127.0.0.1:8080",
                                       "https://[::1]:8443"};
    static const char *const bad[] = {
        "thou.example.org", "ftp://x",     "https://",    "https://x/",
        "https://x/w",      "https://x?y", "https://x y", "javascript:alert(1)"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_int_eq(thou_config_set(&config, "public-url", good[i], errbuf, sizeof(errbuf)),
                         THOU_OK);
        ck_assert_str_eq(config.public_url, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(thou_config_set(&config, "public_url", bad[i], errbuf, sizeof(errbuf)) ==
                          THOU_EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_contains(errbuf, "must be empty or an origin");
        ck_assert_str_eq(config.public_url, good[3]); /* unchanged */
    }
    ck_assert_int_eq(thou_config_set(&config, "facilitator-session-s", "1", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_uint_eq(config.facilitator_session_s, 1);
    ck_assert_int_eq(thou_config_set(&config, "facilitator_session_s", "0", errbuf, sizeof(errbuf)),
                     THOU_EINVAL);
    ck_assert_int_eq(thou_config_set(&config, "workshop_capacity", "1", errbuf, sizeof(errbuf)),
                     THOU_EINVAL);
}
END_TEST

START_TEST(test_set_refuses)
{
    ck_assert_int_eq(thou_config_set(&config, "nope", "1", errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_str_eq(errbuf, "unknown setting 'nope'");
    ck_assert_int_eq(thou_config_set(&config, "--port", "1", errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_int_eq(thou_config_set(&config, "port", NULL, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_str_eq(errbuf, "'port' needs a value");
    ck_assert_int_eq(thou_config_set(&config, "max-body-bytes", "64k", errbuf, sizeof(errbuf)),
                     THOU_EINVAL);
    ck_assert_str_eq(errbuf, "'max-body-bytes' must be a whole number, not '64k'");
    /* A NULL errbuf is allowed. */
    ck_assert_int_eq(thou_config_set(&config, "port", "x", NULL, 0), THOU_EINVAL);
    assert_defaults(&config);
}
END_TEST

static const struct integer_case {
    const char *text;
    enum thou_status status;
    unsigned port;
} integers[] = {
    {"0", THOU_OK, 0},
    {"65535", THOU_OK, 65535},
    {"007", THOU_OK, 7},
    {" 1", THOU_EINVAL, 8080},
    {"1 ", THOU_EINVAL, 8080},
    {"1x", THOU_EINVAL, 8080},
    {"-1", THOU_EINVAL, 8080},
    {"+1", THOU_EINVAL, 8080},
    {"0x10", THOU_EINVAL, 8080},
    {"1e3", THOU_EINVAL, 8080},
    {"1.0", THOU_EINVAL, 8080},
    {"", THOU_EINVAL, 8080},
    {"65536", THOU_EINVAL, 8080},
    {"4294967297", THOU_EINVAL, 8080},
    {"18446744073709551615", THOU_EINVAL, 8080},
    {"99999999999999999999", THOU_EINVAL, 8080},
};

START_TEST(test_strict_integers)
{
    const struct integer_case *c = &integers[_i];
    ck_assert_int_eq(thou_config_set(&config, "port", c->text, errbuf, sizeof(errbuf)), c->status);
    ck_assert_uint_eq(config.port, c->port);
    if (c->status)
        ck_assert_contains(errbuf, "'port' must be");
}
END_TEST

START_TEST(test_check)
{
    ck_assert_int_eq(thou_config_set(&config, "max_connections", "100", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_contains(errbuf, "'max_connections_per_ip' (512)");
    config.max_connections_per_ip = 100;
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_OK);

    ck_assert_int_eq(thou_config_set(&config, "max_body_bytes", "4096", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_contains(errbuf, "'max_body_bytes' (4096) is too small");
}
END_TEST

START_TEST(test_check_tls_pair)
{
    ck_assert_int_eq(thou_config_set(&config, "tls-cert", "cert.pem", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_contains(errbuf, "'tls_cert' and 'tls_key' go together");
    ck_assert_int_eq(thou_config_set(&config, "tls_key", "key.pem", errbuf, sizeof(errbuf)),
                     THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_str_eq(config.tls_cert, "cert.pem");
    ck_assert_str_eq(config.tls_key, "key.pem");
    /* An empty value turns TLS off again, which needs both off. */
    ck_assert_int_eq(thou_config_set(&config, "tls_cert", "", errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_EINVAL);
    ck_assert_int_eq(thou_config_set(&config, "tls_key", "", errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_check(&config, errbuf, sizeof(errbuf)), THOU_OK);
}
END_TEST

START_TEST(test_print_help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    thou_config_print_help(out);
    ck_assert_int_eq(fclose(out), 0);

    ck_assert_contains(text, "  --max-body-bytes BYTES");
    ck_assert_contains(text, "(default: 65536)\n");
    ck_assert_contains(text, "  --port N ");
    ck_assert_contains(text, "(default: 8080)\n");
    ck_assert_contains(text, "  --log-level LEVEL ");
    ck_assert_contains(text, "(default: info)\n");
    ck_assert_contains(text, "  --questions-dir PATH ");
    ck_assert_msg(strchr(text, '_') == NULL, "underscore in help: %s", text);

    size_t lines = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        ck_assert_msg(strncmp(line, "  --", 4) == 0, "odd line in help: %s", line);
        lines++;
    }
    ck_assert_uint_eq(lines, ALL_SETTINGS_COUNT);
    free(text);
}
END_TEST

/* Under CK_FORK a leak here fails this test alone when built with ASan. */
START_TEST(test_release_frees_everything)
{
    struct thou_config c;
    char path[sizeof(TEMP_TEMPLATE)];
    char *envp[] = {VAR("THOU_DATA_DIR=env-data"), VAR("THOU_LISTEN_ADDRESS=::"), NULL};

    thou_config_init(&c);
    write_temp(path, "{\"static_dir\": \"s\", \"questions_dir\": \"q\"}");
    ck_assert_int_eq(thou_config_load_file(&c, path, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_load_env(&c, envp, errbuf, sizeof(errbuf)), THOU_OK);
    ck_assert_int_eq(thou_config_set(&c, "data-dir", "flag-data", errbuf, sizeof(errbuf)), THOU_OK);
    thou_config_release(&c);

    ck_assert_ptr_null(c.listen_address);
    ck_assert_ptr_null(c.data_dir);
    ck_assert_ptr_null(c.static_dir);
    ck_assert_ptr_null(c.questions_dir);
    ck_assert_uint_eq(c.port, 0);
    ck_assert_uint_eq(c.max_body_bytes, 0);
    thou_config_release(&c); /* twice is harmless */
    unlink(path);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *suite = suite_create("config");

    TCase *defaults = tcase_create("defaults");
    tcase_add_checked_fixture(defaults, setup, teardown);
    tcase_add_test(defaults, test_defaults);
    tcase_add_test(defaults, test_has);
    tcase_add_test(defaults, test_release_frees_everything);
    suite_add_tcase(suite, defaults);

    TCase *file = tcase_create("file");
    tcase_add_checked_fixture(file, setup, teardown);
    tcase_add_test(file, test_default_file);
    tcase_add_test(file, test_load_good_file);
    tcase_add_test(file, test_load_empty_object);
    tcase_add_loop_test(file, test_load_bad_file, 0,
                        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(file, test_syntax_error_names_line_and_column);
    tcase_add_test(file, test_failed_load_leaves_config_unchanged);
    tcase_add_test(file, test_missing_file);
    tcase_add_test(file, test_directory_is_unreadable);
    tcase_add_test(file, test_permission_denied);
    tcase_add_test(file, test_relative_paths_resolve_against_file);
    tcase_add_test(file, test_store_url);
    suite_add_tcase(suite, file);

    TCase *env = tcase_create("env");
    tcase_add_checked_fixture(env, setup, teardown);
    tcase_add_test(env, test_env_applies);
    tcase_add_test(env, test_env_empty);
    tcase_add_loop_test(env, test_env_refuses, 0, (int)(sizeof(bad_envs) / sizeof(bad_envs[0])));
    suite_add_tcase(suite, env);

    TCase *set = tcase_create("set");
    tcase_add_checked_fixture(set, setup, teardown);
    tcase_add_test(set, test_set);
    tcase_add_test(set, test_set_refuses);
    tcase_add_test(set, test_public_url);
    tcase_add_loop_test(set, test_strict_integers, 0,
                        (int)(sizeof(integers) / sizeof(integers[0])));
    tcase_add_test(set, test_check);
    tcase_add_test(set, test_check_tls_pair);
    tcase_add_test(set, test_print_help);
    suite_add_tcase(suite, set);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(config_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
