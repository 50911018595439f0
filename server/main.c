/*
 * thou: one binary, subcommands. main() only parses arguments, loads the
 * configuration and dispatches; each subcommand's work lives in its module.
 *
 * Exit codes: 0 success; 1 a runtime failure (storage, network, a bad
 * question set); 2 a usage or configuration error.
 */
#include "thou/app.h"
#include "thou/cli_facilitator.h"
#include "thou/config.h"
#include "thou/crypto.h"
#include "thou/disk.h"
#include "thou/hub.h"
#include "thou/limiter.h"
#include "thou/log.h"
#include "thou/mem.h"
#include "thou/qset.h"
#include "thou/research_cli.h"
#include "thou/router.h"
#include "thou/server.h"
#include "thou/sessions.h"
#include "thou/static_files.h"
#include "thou/store.h"
#include "thou/workshops.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

extern char **environ;

static void print_usage(FILE *out)
{
    fputs("usage: thou <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve        run the HTTP server\n"
          "  facilitator  manage facilitator accounts (add, passwd, list, remove)\n"
          "  study        research studies: keygen, add, list, remove\n"
          "  export       export a study's released research copies\n"
          "\n"
          "options:\n"
          "  -h, --help     show this help (thou <command> --help for a command's options)\n"
          "  -V, --version  show the version\n"
          "\n"
          "exit codes: 0 success, 1 runtime failure, 2 usage or configuration error\n",
          out);
}

static void print_serve_usage(FILE *out)
{
    fputs("usage: thou serve [--config FILE] [--SETTING VALUE]...\n"
          "\n"
          "Runs the server until SIGINT or SIGTERM. Settings come from the built-in\n"
          "defaults, then the config file (--config, else $THOU_CONFIG, else the\n"
          "installed default if present), then THOU_* environment variables, then\n"
          "flags; later sources win. See docs/configuration.md.\n"
          "\n"
          "settings:\n",
          out);
    thou_config_print_help(out);
}

static const char *default_config_path(void)
{
    const char *path = getenv("THOU_CONFIG");
    if (path && *path)
        return path;
    return access(THOU_DEFAULT_CONFIG, R_OK) == 0 ? THOU_DEFAULT_CONFIG : NULL;
}

/* Defaults < file < environment < flags. Returns 0 or an exit code. */
static int load_config(struct thou_config *config, int argc, char **argv)
{
    char err[512];
    const char *config_path = default_config_path();
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[i + 1];
    }
    if (config_path && thou_config_load_file(config, config_path, err, sizeof(err))) {
        fprintf(stderr, "thou: %s\n", err);
        return EXIT_USAGE;
    }
    if (thou_config_load_env(config, environ, err, sizeof(err))) {
        fprintf(stderr, "thou: %s\n", err);
        return EXIT_USAGE;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--config") == 0) {
            if (strcmp(arg, "--config") != 0) {
                fprintf(stderr, "thou: unexpected argument '%s'\n", arg);
                return EXIT_USAGE;
            }
            if (i + 1 >= argc) {
                fprintf(stderr, "thou: option '--config' needs a value\n");
                return EXIT_USAGE;
            }
            i++;
            continue;
        }
        const char *name = arg + 2;
        const char *value = NULL;
        char name_buf[64];
        const char *eq = strchr(name, '=');
        if (eq) {
            snprintf(name_buf, sizeof(name_buf), "%.*s", (int)(eq - name), name);
            name = name_buf;
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        }
        if (!thou_config_has(name)) {
            fprintf(stderr, "thou: unknown option '--%s' (see 'thou serve --help')\n", name);
            return EXIT_USAGE;
        }
        if (!value) {
            fprintf(stderr, "thou: option '--%s' needs a value\n", name);
            return EXIT_USAGE;
        }
        if (thou_config_set(config, name, value, err, sizeof(err))) {
            fprintf(stderr, "thou: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (thou_config_check(config, err, sizeof(err))) {
        fprintf(stderr, "thou: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sweep(struct thou_app *app)
{
    size_t deleted = 0;
    int64_t tombstone_ttl_ms = (int64_t)app->config->room_ttl_days * 86400 * 1000;
    if (thou_store_sweep(app->store, now_ms(), tombstone_ttl_ms, &deleted))
        thou_log_warn("sweep of expired conversations failed");
    else if (deleted)
        thou_log_info("sweep deleted %zu expired conversations", deleted);
}

/* The main thread waits for a signal; once a second it also runs the timers
 * (expiry sweep, stream heartbeats) so no other thread is needed for them. */
static void run_until_signal(struct thou_app *app, const sigset_t *signals)
{
    const struct thou_config *config = app->config;
    time_t next_sweep = time(NULL);
    time_t next_heartbeat = time(NULL) + (time_t)config->heartbeat_s;
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            thou_log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (sig == SIGUSR2) { /* only in the set under THOU_TEST_FAULTS (serve) */
            /* THOU_TEST_FAULTS=n: the n-th allocation from now (1, or not a
             * number: the next), so a test can pass the HTTP adapter's own. */
            long n = strtol(getenv("THOU_TEST_FAULTS"), NULL, 10);
            thou_mem_fail_at(n > 1 ? n - 1 : 0);
            thou_log_info("fault injection: request-path allocation %ld from now fails",
                          n > 1 ? n : 1);
        }
        time_t now = time(NULL);
        if (now >= next_heartbeat) {
            thou_hub_heartbeat(app->hub);
            next_heartbeat = now + (time_t)config->heartbeat_s;
        }
        thou_disk_refresh(app->disk);
        thou_limiter_prune(app->join_limiter, now_ms());
        thou_limiter_prune(app->join_address_limiter, now_ms());
        thou_limiter_prune(app->event_limiter, now_ms());
        thou_limiter_prune(app->create_limiter, now_ms());
        if (now >= next_sweep) {
            sweep(app);
            next_sweep = now + (time_t)config->sweep_interval_s;
        }
    }
}

/* Another instance's stream of a room opened or closed. */
static void remote_presence(void *ctx, const char *room_id, char role, bool present)
{
    thou_hub_remote_presence(ctx, room_id, role, present);
}

/* Another instance moved a seat: the old token is nobody's here either. */
static void remote_seat_moved(void *ctx, const char *room_id, char role)
{
    struct thou_app *app = ctx;
    thou_sessions_forget_seat(app->sessions, room_id, role);
    thou_hub_close_role(app->hub, room_id, role);
}

/* Another instance committed to a room (NULL: to rooms unknown): wake our streams of it. */
static void remote_commit(void *ctx, const char *room_id, int64_t seq)
{
    struct thou_app *app = ctx;
    struct thou_hub *hub = app->hub;
    if (!room_id) {
        /* A seat-move notice may have been lost with the others: cached
         * tokens are asked about again, so an old token works here at most
         * until this catch-up (every 10 s), not for good. */
        thou_sessions_forget_all(app->sessions);
        thou_hub_notify_all(hub);
        thou_hub_recheck_presence(hub);
    } else if (seq < 0)
        thou_hub_close_room(hub, room_id);
    else
        thou_hub_notify(hub, room_id);
}

static int serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_serve_usage(stdout);
            return 0;
        }
    }
    int exit_code = EXIT_RUNTIME;
    char err[512];
    struct thou_config config;
    struct thou_app app = {.config = &config};
    struct thou_router *router = NULL;
    struct thou_server *server = NULL;
    thou_config_init(&config);

    int rc = load_config(&config, argc, argv);
    if (rc) {
        exit_code = rc;
        goto out;
    }
    thou_log_set_level(config.log_level);

    /* Block the shutdown signals before any thread starts, so only the main
     * thread's sigtimedwait() receives them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    /* Tests only (tests/integration/it_oom.c): with THOU_TEST_FAULTS set,
     * SIGUSR2 makes the next allocation of a request path fail. */
    if (getenv("THOU_TEST_FAULTS"))
        sigaddset(&signals, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (thou_crypto_init()) {
        thou_log_error("cannot initialise libsodium");
        goto out;
    }
    if (thou_qset_registry_load(config.questions_dir, &app.qsets, err, sizeof(err))) {
        thou_log_error("%s", err);
        goto out;
    }
    if (thou_static_open(config.static_dir, &app.statics)) {
        thou_log_error("cannot open static directory '%s'", config.static_dir);
        goto out;
    }
    if (thou_store_open(config.store_url[0] ? config.store_url : config.data_dir, &app.store, err,
                        sizeof(err))) {
        thou_log_error("%s", err);
        goto out;
    }
    thou_store_set_room_limits(app.store, config.max_room_events, (int64_t)config.max_room_bytes);
    app.metrics = thou_metrics_new();
    app.hub = thou_hub_new(app.store, app.metrics, config.max_streams_per_participant);
    /* Presence across instances on PostgreSQL; on SQLite the store answers "nobody
     * elsewhere" at once. */
    thou_hub_share_presence(app.hub);
    app.join_limiter =
        thou_limiter_new(config.join_failures_per_min / 60.0, config.join_failures_per_min);
    app.join_address_limiter =
        thou_limiter_new(config.join_failures_per_min / 60.0, config.join_failures_per_min);
    app.event_limiter = thou_limiter_new(config.events_per_s, config.events_burst);
    app.create_limiter =
        thou_limiter_new(config.room_creations_per_min / 60.0, config.room_creations_per_min);
    app.sessions = thou_sessions_new();
    /* The limits that guard the store and the join secrets count across
     * every instance sharing the database (on SQLite there is one). */
    thou_limiter_share(app.event_limiter, "events", thou_store_rate_hook, app.store);
    thou_limiter_share(app.create_limiter, "creations", thou_store_rate_hook, app.store);
    thou_limiter_share(app.join_limiter, "join-room", thou_store_rate_hook, app.store);
    thou_limiter_share(app.join_address_limiter, "join-address", thou_store_rate_hook, app.store);
    app.disk = thou_disk_new(config.data_dir, (uint64_t)config.min_free_disk_mb << 20);
    app.workshops = thou_workshops_new(&app);
    router = thou_router_new();
    thou_app_routes(&app, router);
    enum thou_status started =
        thou_server_start(&config, router, app.metrics, &server, err, sizeof(err));
    if (started) {
        thou_log_error("%s", err);
        if (started == THOU_EINVAL)
            exit_code = EXIT_USAGE; /* a TLS file that cannot serve: a configuration error */
        goto out;
    }
    /* One wake-up per server loop for each committed batch, not per event. */
    thou_store_set_batch_hooks(app.store, thou_server_hold_wakes, thou_server_flush_wakes, NULL);
    thou_store_set_presence_hook(app.store, remote_presence, app.hub);
    thou_store_set_moved_hook(app.store, remote_seat_moved, &app);
    thou_store_set_remote_hook(app.store, remote_commit, &app);
    thou_log_info("thou %s listening on %s://%s:%u (data in '%s')", THOU_VERSION,
                  config.tls_cert[0] ? "https" : "http", config.listen_address,
                  thou_server_port(server), config.data_dir);

    run_until_signal(&app, &signals);
    thou_server_quiesce(server);
    thou_hub_shutdown(app.hub);
    thou_workshops_shutdown(app.workshops);
    thou_server_stop(server, 10000);
    server = NULL;
    thou_log_info("stopped cleanly");
    exit_code = 0;
out:
    thou_server_stop(server, 0);
    thou_workshops_free(app.workshops); /* its thread reads the store: before the store closes */
    thou_router_free(router);
    thou_store_close(app.store);
    thou_static_free(app.statics);
    thou_qset_registry_free(app.qsets);
    thou_hub_free(app.hub);
    thou_limiter_free(app.join_limiter);
    thou_limiter_free(app.join_address_limiter);
    thou_limiter_free(app.event_limiter);
    thou_limiter_free(app.create_limiter);
    thou_sessions_free(app.sessions);
    thou_disk_free(app.disk);
    thou_metrics_free(app.metrics);
    thou_config_release(&config);
    return exit_code;
}

int main(int argc, char **argv)
{
    /* JSON is made on request paths: an allocation failure there refuses the
     * request (503) instead of ending the process. */
    thou_mem_use_for_json();
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0 || strcmp(command, "-V") == 0) {
        printf("thou %s\n", THOU_VERSION);
        return 0;
    }
    if (strcmp(command, "serve") == 0)
        return serve(argc - 2, argv + 2);
    if (strcmp(command, "study") == 0)
        return thou_research_study_main(argc - 2, argv + 2);
    if (strcmp(command, "export") == 0)
        return thou_research_export_main(argc - 2, argv + 2);
    if (strcmp(command, "facilitator") == 0)
        return thou_cli_facilitator(argc - 2, argv + 2);
    fprintf(stderr, "thou: unknown command '%s'\n\n", command);
    print_usage(stderr);
    return EXIT_USAGE;
}
