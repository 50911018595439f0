/*
 * The facilitator accounts from the command line. The password comes from
 * the terminal without echo (asked twice), or as one line from stdin when
 * piped, so scripts and tests can make accounts.
 */
#include "thou/cli_facilitator.h"
#include "thou/config.h"
#include "thou/crypto.h"
#include "thou/facilitators.h"
#include "thou/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

extern char **environ;

static void usage(FILE *out)
{
    fputs("usage: thou facilitator add NAME | passwd NAME | list | remove NAME\n"
          "                        [--config FILE] [--data-dir DIR]\n"
          "\n"
          "Manages the accounts facilitators log in with at /facilitate. add and\n"
          "passwd read the password without echo from a terminal (twice), or one\n"
          "line from stdin when it is piped; 1 to 1024 bytes. Names are 1 to 64 of\n"
          "A-Z a-z 0-9 . _ -\n",
          out);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line from f without its line ending; -1 at EOF before any byte, -2
 * when longer than the limit (the rest of the line is read and dropped). */
static long read_line(FILE *f, char *buf, size_t cap)
{
    size_t len = 0;
    bool too_long = false;
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n') {
        if (len + 1 < cap)
            buf[len++] = (char)c;
        else
            too_long = true;
    }
    if (c == EOF && len == 0 && !too_long)
        return -1;
    if (len && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    return too_long ? -2 : (long)len;
}

static long prompt_hidden(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    fputs(prompt, stderr);
    fflush(stderr);
    bool restore = tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    long len = read_line(stdin, buf, cap);
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputs("\n", stderr);
    return len;
}

/* The new password into buf; 0, or an exit code after a message. */
static int read_password(char *buf, size_t cap)
{
    long len;
    if (isatty(STDIN_FILENO)) {
        char again[THOU_PASSWORD_MAX + 2];
        len = prompt_hidden("Password: ", buf, cap);
        long len2 = len >= 0 ? prompt_hidden("Again: ", again, sizeof(again)) : -1;
        bool same = len == len2 && strcmp(buf, again) == 0;
        sodium_memzero(again, sizeof(again));
        if (len >= 0 && !same) {
            fprintf(stderr, "thou: the two passwords differ\n");
            return EXIT_USAGE;
        }
    } else {
        len = read_line(stdin, buf, cap);
    }
    if (len < 1 || !thou_facilitator_password_valid((size_t)len)) {
        fprintf(stderr, "thou: the password must be 1 to %d bytes\n", THOU_PASSWORD_MAX);
        return EXIT_USAGE;
    }
    return 0;
}

static void print_name(void *ctx, const char *name)
{
    (void)ctx;
    printf("%s\n", name);
}

int thou_cli_facilitator(int argc, char **argv)
{
    const char *action = NULL, *name = NULL, *config_path = getenv("THOU_CONFIG");
    const char *data_dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--data-dir") == 0) &&
            i + 1 < argc) {
            if (argv[i][2] == 'c')
                config_path = argv[++i];
            else
                data_dir = argv[++i];
        } else if (!action) {
            action = argv[i];
        } else if (!name) {
            name = argv[i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    bool needs_name = action && strcmp(action, "list") != 0;
    bool known = action && (strcmp(action, "add") == 0 || strcmp(action, "passwd") == 0 ||
                            strcmp(action, "remove") == 0 || strcmp(action, "list") == 0);
    if (!known || needs_name != (name != NULL)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (name && !thou_facilitator_name_valid(name)) {
        fprintf(stderr, "thou: a name is 1 to %d of A-Z a-z 0-9 . _ -\n",
                THOU_FACILITATOR_NAME_MAX);
        return EXIT_USAGE;
    }

    int exit_code = EXIT_RUNTIME;
    char err[512];
    char password[THOU_PASSWORD_MAX + 2];
    struct thou_config config;
    struct thou_store *store = NULL;
    thou_config_init(&config);
    if ((config_path && *config_path &&
         thou_config_load_file(&config, config_path, err, sizeof(err))) ||
        thou_config_load_env(&config, environ, err, sizeof(err)) ||
        (data_dir && thou_config_set(&config, "data_dir", data_dir, err, sizeof(err)))) {
        fprintf(stderr, "thou: %s\n", err);
        exit_code = EXIT_USAGE;
        goto out;
    }
    bool with_password = strcmp(action, "add") == 0 || strcmp(action, "passwd") == 0;
    if (with_password) {
        int rc = read_password(password, sizeof(password));
        if (rc) {
            exit_code = rc;
            goto out;
        }
    }
    if (thou_crypto_init()) {
        fprintf(stderr, "thou: cannot initialise libsodium\n");
        goto out;
    }
    /* The store `thou serve` uses: store_url when set, else the data directory. */
    const char *location = config.store_url[0] ? config.store_url : config.data_dir;
    if (thou_store_open(location, &store, err, sizeof(err))) {
        fprintf(stderr, "thou: %s\n", err);
        goto out;
    }
    enum thou_status rc = THOU_OK;
    if (strcmp(action, "add") == 0)
        rc = thou_facilitators_add(store, name, password, strlen(password), now_ms());
    else if (strcmp(action, "passwd") == 0)
        rc = thou_facilitators_set_password(store, name, password, strlen(password));
    else if (strcmp(action, "remove") == 0)
        rc = thou_facilitators_remove(store, name);
    else
        rc = thou_facilitators_list(store, print_name, NULL);
    if (rc == THOU_EEXIST)
        fprintf(stderr, "thou: a facilitator named '%s' already exists\n", name);
    else if (rc == THOU_ENOTFOUND)
        fprintf(stderr, "thou: there is no facilitator named '%s'\n", name);
    else if (rc)
        fprintf(stderr, "thou: cannot %s: %s\n", action, thou_status_name(rc));
    else
        exit_code = 0;
out:
    sodium_memzero(password, sizeof(password));
    thou_store_close(store);
    thou_config_release(&config);
    return exit_code;
}
