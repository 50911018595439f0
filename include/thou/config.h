#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "thou/log.h"
#include "thou/status.h"

/*
 * Server configuration. One table of settings (name, type, bounds, default,
 * field) drives the JSON file, the THOU_* environment variables and the
 * command-line flags alike; later sources win: defaults < file < environment
 * < flags. Unknown keys, wrong types and out-of-range values are refused
 * with a message naming the key and what is wrong.
 *
 * A setting named "max_body_bytes" is the file key "max_body_bytes", the
 * environment variable THOU_MAX_BODY_BYTES and the flag --max-body-bytes.
 *
 * Relative paths in a config file are resolved against the directory that
 * holds the file; relative paths from the environment, flags and defaults
 * stay relative to the working directory. docs/configuration.md lists every
 * setting with its bounds.
 */
struct thou_config {
    char *listen_address;                 /* "127.0.0.1" */
    unsigned port;                        /* 8080; 0 = pick an ephemeral port */
    char *data_dir;                       /* "data": holds thou.db */
    char *store_url;                      /* "": data_dir; sqlite:PATH, postgresql:// */
    char *static_dir;                     /* "static" */
    char *questions_dir;                  /* "config/questions" */
    unsigned threads;                     /* 0 = one per CPU core */
    unsigned max_connections;             /* 4096 */
    unsigned max_connections_per_ip;      /* 512; generous: a workshop behind one NAT */
    char *trusted_proxies;                /* "": proxies whose forwarded address is believed */
    unsigned connection_timeout_s;        /* 30: idle keep-alive connections */
    unsigned header_timeout_s;            /* 10: deadline for a whole request head */
    unsigned body_timeout_s;              /* 30: deadline for a whole request body */
    size_t max_body_bytes;                /* 65536: request body cap */
    size_t connection_memory_bytes;       /* 4096: per-connection buffer pool */
    char *tls_cert;                       /* "": a PEM certificate file; set: serve HTTPS */
    char *tls_key;                        /* "": its PEM private key file */
    enum thou_log_level log_level;        /* info */
    unsigned max_streams_per_participant; /* 4: open event streams of one participant */
    unsigned heartbeat_s;                 /* 20: SSE comment heartbeat interval */
    unsigned max_room_events;             /* 20000: events one conversation may hold */
    size_t max_room_bytes;                /* 64 MiB: event data one conversation may hold */
    unsigned min_free_disk_mb;            /* 64: below, new writes are refused (507) */
    unsigned room_ttl_days;               /* 30: rooms expire this long after creation */
    unsigned sweep_interval_s;            /* 3600: how often expired rooms are deleted */
    size_t max_ciphertext_bytes;          /* 16384: decoded size cap of one ciphertext */
    unsigned join_failures_per_min;       /* 10: wrong join secrets per room per minute */
    unsigned events_per_s;                /* 20: sustained events per participant */
    unsigned events_burst;                /* 60: burst allowance per participant */
    unsigned room_creations_per_min;      /* 30: rooms one client address may create a minute */
    unsigned max_reflect_rounds;          /* 3: "not quite" rounds before the turn moves on */
    unsigned workshop_capacity;           /* 500: people one workshop takes by default */
    unsigned workshop_presence_timeout_s; /* 20: a waiting stream gone this long leaves the queue */
    unsigned workshop_repair_after_s;     /* 90: a partner gone this long: offer a new one */
    unsigned facilitator_session_s;       /* 43200: lifetime of a facilitator's login */
    unsigned login_failures_per_min;      /* 5: wrong passwords per account / address a minute */
    char *public_url;                     /* "": origin for absolute join links; "" the request's */
};

/** Fill every field with its default. Strings are heap copies owned by config. */
void thou_config_init(struct thou_config *config);

/** Free the strings and reset to zero. */
void thou_config_release(struct thou_config *config);

/**
 * Apply a JSON config file. Returns THOU_OK, or an error with a message in
 * errbuf naming the file and the key (or line:column for syntax errors).
 * A missing file is THOU_ENOTFOUND; an unreadable one THOU_EIO; bad content
 * THOU_EINVAL. On any error config is left exactly as it was.
 */
enum thou_status thou_config_load_file(struct thou_config *config, const char *path, char *errbuf,
                                       size_t errlen);

/**
 * Apply THOU_* variables from envp (NULL-terminated "NAME=value" strings).
 * Variables that start with THOU_ but name no setting are refused, except
 * THOU_CONFIG, which selects the file and is handled by the caller, and
 * THOU_BIN, which the test harness uses. Returns THOU_EINVAL with a message
 * in errbuf on the first bad variable; config is then left as it was.
 */
enum thou_status thou_config_load_env(struct thou_config *config, char *const *envp, char *errbuf,
                                      size_t errlen);

/**
 * Set one setting by its name ("max_body_bytes") from a string value, as a
 * flag or environment variable would. Names with dashes are accepted too.
 * Numbers must be plain decimal digits. Returns THOU_EINVAL with a message
 * in errbuf for an unknown name or a bad value, leaving config unchanged.
 */
enum thou_status thou_config_set(struct thou_config *config, const char *name, const char *value,
                                 char *errbuf, size_t errlen);

/** True when name (with dashes or underscores) is a known setting. */
bool thou_config_has(const char *name);

/**
 * Check the settings against each other, once every source has been applied:
 * max_connections_per_ip must not exceed max_connections, and a request body
 * must have room for the largest ciphertext in base64. Returns THOU_EINVAL
 * with a message in errbuf otherwise.
 */
enum thou_status thou_config_check(const struct thou_config *config, char *errbuf, size_t errlen);

/** Write one "  --name VALUE   description (default: X)" line per setting for --help. */
void thou_config_print_help(FILE *out);
