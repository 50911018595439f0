#include "thou/config.h"
#include "thou/json.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "thou/buf.h"
#include "thou/mem.h"
#include "thou/proxy.h"

enum setting_type {
    SETTING_ADDRESS,   /* char *: an IPv4 or IPv6 literal */
    SETTING_PATH,      /* char *: non-empty; relative in a file means relative to the file */
    SETTING_OPT_PATH,  /* char *: like SETTING_PATH, but "" means unset */
    SETTING_PROXIES,   /* char *: addresses and CIDR blocks, comma-separated; "" none */
    SETTING_UNSIGNED,  /* unsigned */
    SETTING_SIZE,      /* size_t, a plain byte count */
    SETTING_LOG_LEVEL, /* enum thou_log_level, by name */
    SETTING_STORE_URL, /* char *: "" (data_dir), "sqlite:PATH" or "postgresql://..." */
    SETTING_URL,       /* char *: "" or an http(s) origin without a trailing slash */
};

struct setting {
    const char *name;
    enum setting_type type;
    unsigned long long min; /* bounds of numeric settings, inclusive */
    unsigned long long max;
    const char *default_value; /* parsed like any other value, so it obeys the bounds */
    size_t offset;
    const char *description;
};

#define KIB 1024ULL
#define MIB (1024ULL * 1024ULL)

#define FIELD(field) offsetof(struct thou_config, field)

static const struct setting settings[] = {
    {"listen_address", SETTING_ADDRESS, 0, 0, "127.0.0.1", FIELD(listen_address),
     "IPv4 or IPv6 address to listen on"},
    {"port", SETTING_UNSIGNED, 0, 65535, "8080", FIELD(port),
     "TCP port to listen on; 0 picks a free one"},
    {"data_dir", SETTING_PATH, 0, 0, "data", FIELD(data_dir), "directory holding the database"},
    {"store_url", SETTING_STORE_URL, 0, 0, "", FIELD(store_url),
     "where conversations are stored: empty for SQLite in the data directory, sqlite:PATH, "
     "or postgresql://... for a database several instances share"},
    {"static_dir", SETTING_PATH, 0, 0, "static", FIELD(static_dir),
     "directory of the browser client's files"},
    {"questions_dir", SETTING_PATH, 0, 0, "config/questions", FIELD(questions_dir),
     "directory of the question sets"},
    {"threads", SETTING_UNSIGNED, 0, 256, "0", FIELD(threads),
     "worker threads; 0 means one per CPU core"},
    {"max_connections", SETTING_UNSIGNED, 16, 1000000, "4096", FIELD(max_connections),
     "open connections at most, streams included"},
    {"trusted_proxies", SETTING_PROXIES, 0, 0, "", FIELD(trusted_proxies),
     "reverse proxies whose forwarded client address is believed (addresses, CIDR blocks)"},
    {"max_connections_per_ip", SETTING_UNSIGNED, 1, 1000000, "512", FIELD(max_connections_per_ip),
     "open connections at most from one IP address"},
    {"connection_timeout_s", SETTING_UNSIGNED, 1, 3600, "30", FIELD(connection_timeout_s),
     "seconds before an idle connection is closed"},
    {"header_timeout_s", SETTING_UNSIGNED, 1, 3600, "10", FIELD(header_timeout_s),
     "seconds a client has to send a whole request head"},
    {"body_timeout_s", SETTING_UNSIGNED, 1, 3600, "30", FIELD(body_timeout_s),
     "seconds a client has to send a whole request body"},
    {"max_body_bytes", SETTING_SIZE, 1 * KIB, 16 * MIB, "65536", FIELD(max_body_bytes),
     "largest request body accepted, in bytes"},
    {"connection_memory_bytes", SETTING_SIZE, 4 * KIB, 1 * MIB, "4096",
     FIELD(connection_memory_bytes),
     "memory per connection for request headers and response buffers, in bytes"},
    {"tls_cert", SETTING_OPT_PATH, 0, 0, "", FIELD(tls_cert),
     "PEM certificate (chain) to serve HTTPS with; empty serves plain HTTP"},
    {"tls_key", SETTING_OPT_PATH, 0, 0, "", FIELD(tls_key),
     "PEM private key of the certificate; set both or neither"},
    {"log_level", SETTING_LOG_LEVEL, 0, 0, "info", FIELD(log_level),
     "least severe lines logged: error, warn, info or debug"},
    {"max_streams_per_participant", SETTING_UNSIGNED, 1, 1000, "4",
     FIELD(max_streams_per_participant),
     "event streams one participant may hold open at once (tabs, devices)"},
    {"heartbeat_s", SETTING_UNSIGNED, 1, 3600, "20", FIELD(heartbeat_s),
     "seconds between heartbeats on an idle event stream"},
    {"max_room_events", SETTING_UNSIGNED, 100, 10000000, "20000", FIELD(max_room_events),
     "events one conversation may hold"},
    {"max_room_bytes", SETTING_SIZE, 65536, 1ULL << 40, "67108864", FIELD(max_room_bytes),
     "bytes of event data one conversation may hold"},
    {"min_free_disk_mb", SETTING_UNSIGNED, 0, 1000000, "64", FIELD(min_free_disk_mb),
     "free MiB on the data directory's disk below which nothing new is stored; 0: no floor"},
    {"room_ttl_days", SETTING_UNSIGNED, 1, 3650, "30", FIELD(room_ttl_days),
     "days after its creation that a room is deleted"},
    {"sweep_interval_s", SETTING_UNSIGNED, 1, 86400, "3600", FIELD(sweep_interval_s),
     "seconds between sweeps for expired rooms"},
    {"max_ciphertext_bytes", SETTING_SIZE, 256, 16 * MIB, "16384", FIELD(max_ciphertext_bytes),
     "largest decoded ciphertext accepted, in bytes"},
    {"join_failures_per_min", SETTING_UNSIGNED, 1, 10000, "10", FIELD(join_failures_per_min),
     "wrong join secrets allowed per room per minute"},
    {"events_per_s", SETTING_UNSIGNED, 1, 100000, "20", FIELD(events_per_s),
     "events per second one participant may send, sustained"},
    {"room_creations_per_min", SETTING_UNSIGNED, 1, 100000, "30", FIELD(room_creations_per_min),
     "conversations one client address may create per minute"},
    {"events_burst", SETTING_UNSIGNED, 1, 1000000, "60", FIELD(events_burst),
     "events one participant may send in a burst"},
    {"max_reflect_rounds", SETTING_UNSIGNED, 0, 100, "3", FIELD(max_reflect_rounds),
     "\"not quite\" rounds of reflecting before the turn moves on"},
    {"workshop_capacity", SETTING_UNSIGNED, 2, 10000, "500", FIELD(workshop_capacity),
     "people one workshop takes unless its facilitator sets another number"},
    {"workshop_presence_timeout_s", SETTING_UNSIGNED, 1, 3600, "20",
     FIELD(workshop_presence_timeout_s),
     "seconds a waiting participant's stream may be gone before it leaves the queue"},
    {"workshop_repair_after_s", SETTING_UNSIGNED, 1, 86400, "90", FIELD(workshop_repair_after_s),
     "seconds a partner may be gone before the one left behind is offered a new partner"},
    {"facilitator_session_s", SETTING_UNSIGNED, 1, 2592000, "43200", FIELD(facilitator_session_s),
     "seconds a facilitator's login lasts"},
    {"login_failures_per_min", SETTING_UNSIGNED, 1, 10000, "5", FIELD(login_failures_per_min),
     "wrong facilitator passwords allowed per account and per address per minute"},
    {"public_url", SETTING_URL, 0, 0, "", FIELD(public_url),
     "the origin people reach thou at (https://thou.example.org), for join links and QR codes; "
     "empty: the request's own"},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

/* THOU_* variables that are not settings but are read by someone else. */
static const char *const foreign_env_names[] = {"THOU_CONFIG", "THOU_BIN", "THOU_TEST_FAULTS",
                                                /* the tests' PostgreSQL cluster (script/test) */
                                                "THOU_TEST_PG_URL", "THOU_TEST_STORE"};

#define ENV_PREFIX "THOU_"

/*
 * A "note" or "answer" event carries its ciphertext base64-encoded inside a
 * small JSON object; this is room for the rest of that object.
 */
#define EVENT_ENVELOPE_BYTES 1024

__attribute__((format(printf, 3, 4))) static enum thou_status fail(char *errbuf, size_t errlen,
                                                                   const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return THOU_EINVAL;
}

static bool is_string_type(enum setting_type type)
{
    return type == SETTING_ADDRESS || type == SETTING_PATH || type == SETTING_OPT_PATH ||
           type == SETTING_PROXIES || type == SETTING_STORE_URL || type == SETTING_URL;
}

static bool is_number_type(enum setting_type type)
{
    return type == SETTING_UNSIGNED || type == SETTING_SIZE;
}

static void *setting_field(struct thou_config *config, const struct setting *setting)
{
    return (char *)config + setting->offset;
}

static const void *setting_field_const(const struct thou_config *config,
                                       const struct setting *setting)
{
    return (const char *)config + setting->offset;
}

/* With allow_dashes, "max-body-bytes" names "max_body_bytes". */
static bool name_matches(const char *setting_name, const char *name, bool allow_dashes)
{
    for (; *setting_name && *name; setting_name++, name++) {
        char c = *name;
        if (allow_dashes && c == '-')
            c = '_';
        if (c != *setting_name)
            return false;
    }
    return *setting_name == '\0' && *name == '\0';
}

static const struct setting *setting_find(const char *name, bool allow_dashes)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (name_matches(settings[i].name, name, allow_dashes))
            return &settings[i];
    }
    return NULL;
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* env_name is the part after THOU_, not NUL-terminated: "MAX_BODY_BYTES". */
static const struct setting *setting_find_env(const char *env_name, size_t len)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const char *name = settings[i].name;
        size_t j = 0;
        while (j < len && name[j] && env_name[j] == ascii_upper(name[j]))
            j++;
        if (j == len && name[j] == '\0')
            return &settings[i];
    }
    return NULL;
}

static bool is_foreign_env(const char *entry, size_t name_len)
{
    for (size_t i = 0; i < sizeof(foreign_env_names) / sizeof(foreign_env_names[0]); i++) {
        const char *name = foreign_env_names[i];
        if (strlen(name) == name_len && memcmp(entry, name, name_len) == 0)
            return true;
    }
    return false;
}

/*
 * Digits only: no sign, no space, no base prefix, nothing after. strtoull
 * alone would accept " 1", "+1" and even "-1" (as ULLONG_MAX).
 */
static bool parse_unsigned(const char *text, unsigned long long *value, bool *overflow)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    *value = strtoull(text, &end, 10);
    *overflow = errno == ERANGE;
    return *end == '\0';
}

/* NULL when path has no directory part: its relative values already mean the right thing. */
static char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    return thou_xstrndup(path, len);
}

static char *path_resolve(const char *base_dir, const char *path)
{
    if (!base_dir || path[0] == '/')
        return thou_xstrdup(path);
    struct thou_buf buf;
    thou_buf_init(&buf);
    thou_buf_puts(&buf, base_dir);
    if (buf.data[buf.len - 1] != '/')
        thou_buf_puts(&buf, "/");
    thou_buf_puts(&buf, path);
    return thou_buf_steal(&buf, NULL);
}

static void store_string(struct thou_config *config, const struct setting *setting, char *value)
{
    char **slot = setting_field(config, setting);
    free(*slot);
    *slot = value;
}

/* shown is the setting as the user spelled it: a key, THOU_PORT or max-body-bytes. */
static enum thou_status apply_number(struct thou_config *config, const struct setting *setting,
                                     const char *shown, unsigned long long value,
                                     const char *value_text, char *errbuf, size_t errlen)
{
    if (value < setting->min || value > setting->max)
        return fail(errbuf, errlen, "'%s' must be between %llu and %llu, not %s", shown,
                    setting->min, setting->max, value_text);
    if (setting->type == SETTING_SIZE)
        *(size_t *)setting_field(config, setting) = (size_t)value;
    else
        *(unsigned *)setting_field(config, setting) = (unsigned)value;
    return THOU_OK;
}

/* base_dir is the config file's directory, or NULL for the environment, flags and defaults. */
static enum thou_status apply_text(struct thou_config *config, const struct setting *setting,
                                   const char *shown, const char *text, const char *base_dir,
                                   char *errbuf, size_t errlen)
{
    if (!text)
        return fail(errbuf, errlen, "'%s' needs a value", shown);

    switch (setting->type) {
    case SETTING_ADDRESS: {
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, text, addr) != 1 && inet_pton(AF_INET6, text, addr) != 1)
            return fail(errbuf, errlen, "'%s' must be an IPv4 or IPv6 address, not '%s'", shown,
                        text);
        store_string(config, setting, thou_xstrdup(text));
        return THOU_OK;
    }
    case SETTING_PATH:
        if (text[0] == '\0')
            return fail(errbuf, errlen, "'%s' must not be empty", shown);
        store_string(config, setting, path_resolve(base_dir, text));
        return THOU_OK;
    case SETTING_OPT_PATH:
        store_string(config, setting, text[0] ? path_resolve(base_dir, text) : thou_xstrdup(""));
        return THOU_OK;
    case SETTING_PROXIES: {
        struct thou_proxies proxies;
        char why[200];
        if (thou_proxies_parse(text, &proxies, why, sizeof(why)))
            return fail(errbuf, errlen, "'%s': %s", shown, why + strlen("trusted_proxies: "));
        store_string(config, setting, thou_xstrdup(text));
        return THOU_OK;
    }
    case SETTING_STORE_URL:
        if (strncmp(text, "sqlite:", 7) == 0 && text[7]) {
            char *path = path_resolve(base_dir, text + 7);
            struct thou_buf url;
            thou_buf_init(&url);
            thou_buf_printf(&url, "sqlite:%s", path);
            free(path);
            store_string(config, setting, thou_buf_steal(&url, NULL));
            return THOU_OK;
        }
        if (text[0] && strncmp(text, "postgresql://", 13) != 0 &&
            strncmp(text, "postgres://", 11) != 0)
            return fail(errbuf, errlen,
                        "'%s' must be empty, sqlite:PATH or a postgresql:// URL, not '%.40s'",
                        shown, text);
        store_string(config, setting, thou_xstrdup(text));
        return THOU_OK;
    case SETTING_URL: {
        /* An origin only: links are made by appending a path to it. */
        size_t len = strlen(text);
        bool scheme = strncmp(text, "https://", 8) == 0 || strncmp(text, "http://", 7) == 0;
        const char *host = scheme ? strstr(text, "//") + 2 : text;
        if (len && (!scheme || !*host || strpbrk(host, "/?#\"\\<> ") || len > 200))
            return fail(errbuf, errlen,
                        "'%s' must be empty or an origin like https://thou.example.org, not '%s'",
                        shown, text);
        store_string(config, setting, thou_xstrdup(text));
        return THOU_OK;
    }
    case SETTING_LOG_LEVEL: {
        enum thou_log_level level;
        if (!thou_log_level_parse(text, &level))
            return fail(errbuf, errlen,
                        "'%s' must be one of 'error', 'warn', 'info' or 'debug', not '%s'", shown,
                        text);
        *(enum thou_log_level *)setting_field(config, setting) = level;
        return THOU_OK;
    }
    case SETTING_UNSIGNED:
    case SETTING_SIZE: {
        unsigned long long value = 0;
        bool overflow = false;
        if (!parse_unsigned(text, &value, &overflow))
            return fail(errbuf, errlen, "'%s' must be a whole number, not '%s'", shown, text);
        if (overflow)
            return fail(errbuf, errlen, "'%s' must be between %llu and %llu, not %s", shown,
                        setting->min, setting->max, text);
        return apply_number(config, setting, shown, value, text, errbuf, errlen);
    }
    }
    return fail(errbuf, errlen, "'%s' has an unknown type", shown);
}

static enum thou_status apply_json(struct thou_config *config, const struct setting *setting,
                                   const json_t *value, const char *base_dir, char *errbuf,
                                   size_t errlen)
{
    if (!is_number_type(setting->type)) {
        if (!json_is_string(value))
            return fail(errbuf, errlen, "'%s' must be a string, not %s", setting->name,
                        thou_json_type_name(value));
        return apply_text(config, setting, setting->name, json_string_value(value), base_dir,
                          errbuf, errlen);
    }

    if (!json_is_integer(value))
        return fail(errbuf, errlen, "'%s' must be an integer, not %s", setting->name,
                    thou_json_type_name(value));
    json_int_t number = json_integer_value(value);
    char value_text[32];
    snprintf(value_text, sizeof(value_text), "%" JSON_INTEGER_FORMAT, number);
    if (number < 0)
        return fail(errbuf, errlen, "'%s' must be between %llu and %llu, not %s", setting->name,
                    setting->min, setting->max, value_text);
    return apply_number(config, setting, setting->name, (unsigned long long)number, value_text,
                        errbuf, errlen);
}

/* A deep copy, so a source can be applied to it and swapped in only if all of it is valid. */
static void config_copy(struct thou_config *dst, const struct thou_config *src)
{
    *dst = *src;
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (!is_string_type(settings[i].type))
            continue;
        char *const *from = setting_field_const(src, &settings[i]);
        char **to = setting_field(dst, &settings[i]);
        *to = thou_xstrdup(*from);
    }
}

static void config_replace(struct thou_config *config, struct thou_config *replacement)
{
    thou_config_release(config);
    *config = *replacement;
    memset(replacement, 0, sizeof(*replacement));
}

void thou_config_init(struct thou_config *config)
{
    memset(config, 0, sizeof(*config));
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const struct setting *setting = &settings[i];
        assert(setting->type != SETTING_UNSIGNED || setting->max <= UINT_MAX);
        assert(setting->type != SETTING_SIZE || setting->max <= SIZE_MAX);
        enum thou_status rc =
            apply_text(config, setting, setting->name, setting->default_value, NULL, NULL, 0);
        assert(rc == THOU_OK);
        (void)rc;
    }
}

void thou_config_release(struct thou_config *config)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (is_string_type(settings[i].type))
            free(*(char **)setting_field(config, &settings[i]));
    }
    memset(config, 0, sizeof(*config));
}

static enum thou_status apply_json_object(struct thou_config *config, json_t *root,
                                          const char *path, char *errbuf, size_t errlen)
{
    enum thou_status rc = THOU_OK;
    char *base_dir = path_dirname(path);
    const char *key;
    json_t *value;
    char message[512];

    json_object_foreach(root, key, value)
    {
        const struct setting *setting = setting_find(key, false);
        if (!setting) {
            rc = fail(errbuf, errlen, "%s: unknown key '%s'", path, key);
            goto out;
        }
        rc = apply_json(config, setting, value, base_dir, message, sizeof(message));
        if (rc) {
            fail(errbuf, errlen, "%s: %s", path, message);
            goto out;
        }
    }
out:
    free(base_dir);
    return rc;
}

enum thou_status thou_config_load_file(struct thou_config *config, const char *path, char *errbuf,
                                       size_t errlen)
{
    enum thou_status rc = THOU_OK;
    FILE *file = NULL;
    json_t *root = NULL;
    struct thou_config copy = {0};
    json_error_t json_error;
    struct stat st;

    /* Opened here rather than by json_load_file so that a missing file and an
     * unreadable one can be told apart by errno. */
    file = fopen(path, "rb");
    if (!file) {
        int err = errno;
        rc = err == ENOENT || err == ENOTDIR ? THOU_ENOTFOUND : THOU_EIO;
        fail(errbuf, errlen, "cannot open config file '%s': %s", path, strerror(err));
        goto out;
    }
    if (fstat(fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = THOU_EIO;
        fail(errbuf, errlen, "cannot read config file '%s': %s", path, strerror(EISDIR));
        goto out;
    }

    root = json_loadf(file, JSON_REJECT_DUPLICATES, &json_error);
    if (!root) {
        if (ferror(file)) {
            rc = THOU_EIO;
            fail(errbuf, errlen, "cannot read config file '%s'", path);
        } else {
            rc = fail(errbuf, errlen, "%s:%d:%d: %s", path, json_error.line, json_error.column,
                      json_error.text);
        }
        goto out;
    }
    if (!json_is_object(root)) {
        rc = fail(errbuf, errlen, "%s: the top level must be an object, not %s", path,
                  thou_json_type_name(root));
        goto out;
    }

    config_copy(&copy, config);
    rc = apply_json_object(&copy, root, path, errbuf, errlen);
    if (rc)
        goto out;
    config_replace(config, &copy);

out:
    thou_config_release(&copy);
    json_decref(root);
    if (file)
        fclose(file);
    return rc;
}

enum thou_status thou_config_load_env(struct thou_config *config, char *const *envp, char *errbuf,
                                      size_t errlen)
{
    enum thou_status rc = THOU_OK;
    struct thou_config copy;
    const size_t prefix_len = strlen(ENV_PREFIX);

    config_copy(&copy, config);
    for (char *const *entry = envp; entry && *entry; entry++) {
        const char *name = *entry;
        if (strncmp(name, ENV_PREFIX, prefix_len) != 0)
            continue;
        const char *equals = strchr(name, '=');
        if (!equals)
            continue;
        size_t name_len = (size_t)(equals - name);
        int shown_len = name_len > 200 ? 200 : (int)name_len;
        if (is_foreign_env(name, name_len))
            continue;

        const struct setting *setting = setting_find_env(name + prefix_len, name_len - prefix_len);
        if (!setting) {
            rc = fail(errbuf, errlen, "unknown environment variable '%.*s'", shown_len, name);
            goto out;
        }
        char shown[64];
        snprintf(shown, sizeof(shown), "%.*s", shown_len, name);
        rc = apply_text(&copy, setting, shown, equals + 1, NULL, errbuf, errlen);
        if (rc)
            goto out;
    }
    config_replace(config, &copy);

out:
    thou_config_release(&copy);
    return rc;
}

enum thou_status thou_config_set(struct thou_config *config, const char *name, const char *value,
                                 char *errbuf, size_t errlen)
{
    const struct setting *setting = setting_find(name, true);
    if (!setting)
        return fail(errbuf, errlen, "unknown setting '%s'", name);
    return apply_text(config, setting, name, value, NULL, errbuf, errlen);
}

bool thou_config_has(const char *name)
{
    return setting_find(name, true) != NULL;
}

enum thou_status thou_config_check(const struct thou_config *config, char *errbuf, size_t errlen)
{
    if (config->max_connections_per_ip > config->max_connections)
        return fail(errbuf, errlen,
                    "'max_connections_per_ip' (%u) must not exceed 'max_connections' (%u)",
                    config->max_connections_per_ip, config->max_connections);

    if (!config->tls_cert[0] != !config->tls_key[0])
        return fail(errbuf, errlen, "'tls_cert' and 'tls_key' go together: set both or neither");

    size_t encoded = (config->max_ciphertext_bytes + 2) / 3 * 4;
    size_t needed = encoded + EVENT_ENVELOPE_BYTES;
    if (config->max_body_bytes < needed)
        return fail(errbuf, errlen,
                    "'max_body_bytes' (%zu) is too small for 'max_ciphertext_bytes' (%zu); "
                    "it must be at least %zu",
                    config->max_body_bytes, config->max_ciphertext_bytes, needed);
    return THOU_OK;
}

static const char *value_placeholder(enum setting_type type)
{
    switch (type) {
    case SETTING_ADDRESS:
        return "ADDRESS";
    case SETTING_PATH:
    case SETTING_OPT_PATH:
        return "PATH";
    case SETTING_PROXIES:
        return "LIST";
    case SETTING_STORE_URL:
        return "URL";
    case SETTING_UNSIGNED:
        return "N";
    case SETTING_SIZE:
        return "BYTES";
    case SETTING_LOG_LEVEL:
        return "LEVEL";
    case SETTING_URL:
        return "URL";
    }
    return "VALUE";
}

static void flag_usage(const struct setting *setting, char *out, size_t len)
{
    int n = snprintf(out, len, "--%s %s", setting->name, value_placeholder(setting->type));
    size_t end = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
    for (size_t i = 2; i < end && out[i] != ' '; i++) {
        if (out[i] == '_')
            out[i] = '-';
    }
}

void thou_config_print_help(FILE *out)
{
    char usage[96];
    int width = 0;
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        flag_usage(&settings[i], usage, sizeof(usage));
        int len = (int)strlen(usage);
        if (len > width)
            width = len;
    }
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const struct setting *setting = &settings[i];
        flag_usage(setting, usage, sizeof(usage));
        fprintf(out, "  %-*s   %s (default: %s)\n", width, usage, setting->description,
                setting->default_value[0] ? setting->default_value : "none");
    }
}
