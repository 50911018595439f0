/*
 * `thou study ...` and `thou export`: argument parsing and messages; the
 * work is in store.c (studies), studies.c (keys) and export.c.
 */
#include "thou/research_cli.h"
#include "thou/config.h"
#include "thou/crypto.h"
#include "thou/export.h"
#include "thou/qset.h"
#include "thou/store.h"
#include "thou/store_pg.h"
#include "thou/studies.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

extern char **environ;

static void print_study_usage(FILE *out)
{
    fputs("usage: thou study keygen --out FILE\n"
          "       thou study add NAME --public-key KEY [--conditions SET,SET...] [--closeness]\n"
          "       thou study list\n"
          "       thou study remove NAME\n"
          "\n"
          "keygen writes a new secret key file (mode 0600; never overwrites one) and prints\n"
          "its public key and fingerprint. Keep the file offline; give `study add` the\n"
          "public key. add, list and remove work on the database of the configuration\n"
          "(--config FILE, else $THOU_CONFIG; --data-dir DIR overrides its data directory;\n"
          "--questions-dir DIR its question sets). See docs/research.md.\n",
          out);
}

static void print_export_usage(FILE *out)
{
    fputs("usage: thou export --study NAME --key FILE [--format csv|jsonl] [--out PATH]\n"
          "                   [--force] [--config FILE] [--data-dir DIR]\n"
          "\n"
          "Opens the study's released research copies with its secret key and writes one\n"
          "row per step (default: NAME.csv) and a codebook next to it (PATH's name with\n"
          "-codebook.csv). Reads the database only, also while the server runs. --force\n"
          "replaces existing output files. See docs/research.md.\n",
          out);
}

/* Where the store is, as `thou serve` finds it: store_url when set (a
 * PostgreSQL URL or sqlite:DIR), else the data directory. */
static const char *store_location(const struct thou_config *config)
{
    return config->store_url && config->store_url[0] ? config->store_url : config->data_dir;
}

/* Settings for a command that only needs the data and question directories:
 * defaults < config file < environment < --data-dir/--questions-dir. */
static int load_settings(struct thou_config *config, const char *config_path, const char *data_dir,
                         const char *questions_dir)
{
    char err[512];
    if (!config_path)
        config_path = getenv("THOU_CONFIG");
    if (config_path && *config_path && thou_config_load_file(config, config_path, err, sizeof(err)))
        goto fail;
    if (thou_config_load_env(config, environ, err, sizeof(err)))
        goto fail;
    if (data_dir && thou_config_set(config, "data_dir", data_dir, err, sizeof(err)))
        goto fail;
    if (questions_dir && thou_config_set(config, "questions_dir", questions_dir, err, sizeof(err)))
        goto fail;
    return 0;
fail:
    fprintf(stderr, "thou: %s\n", err);
    return EXIT_USAGE;
}

struct options {
    const char *out, *public_key, *conditions, *config, *data_dir, *questions_dir;
    const char *study, *key, *format;
    bool closeness, force;
    const char *positional;
};

/* One parser for both commands; allowed names the flags this command takes. */
static int parse_options(int argc, char **argv, const char *allowed, struct options *o)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (o->positional) {
                fprintf(stderr, "thou: unexpected argument '%s'\n", arg);
                return EXIT_USAGE;
            }
            o->positional = arg;
            continue;
        }
        /* --data_dir and --data-dir alike, as `thou serve` takes its settings. */
        char name_buf[40];
        snprintf(name_buf, sizeof(name_buf), "%s", arg + 2);
        for (char *p = name_buf; *p; p++)
            if (*p == '_')
                *p = '-';
        const char *name = name_buf;
        char pattern[48];
        snprintf(pattern, sizeof(pattern), " %s ", name);
        if (!strstr(allowed, pattern)) {
            fprintf(stderr, "thou: unknown option '%s'\n", arg);
            return EXIT_USAGE;
        }
        if (strcmp(name, "closeness") == 0) {
            o->closeness = true;
            continue;
        }
        if (strcmp(name, "force") == 0) {
            o->force = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "thou: option '%s' needs a value\n", arg);
            return EXIT_USAGE;
        }
        const char *value = argv[++i];
        const char **slot = strcmp(name, "out") == 0             ? &o->out
                            : strcmp(name, "public-key") == 0    ? &o->public_key
                            : strcmp(name, "conditions") == 0    ? &o->conditions
                            : strcmp(name, "config") == 0        ? &o->config
                            : strcmp(name, "data-dir") == 0      ? &o->data_dir
                            : strcmp(name, "questions-dir") == 0 ? &o->questions_dir
                            : strcmp(name, "study") == 0         ? &o->study
                            : strcmp(name, "key") == 0           ? &o->key
                                                                 : &o->format;
        *slot = value;
    }
    return 0;
}

static int study_keygen(struct options *o)
{
    if (!o->out || o->positional) {
        fprintf(stderr, "thou: usage: thou study keygen --out FILE\n");
        return EXIT_USAGE;
    }
    char err[512];
    uint8_t pk[THOU_STUDY_KEY_BYTES];
    enum thou_status rc = thou_studies_keygen(o->out, pk, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "thou: %s\n", err);
        return rc == THOU_EEXIST ? EXIT_USAGE : EXIT_RUNTIME;
    }
    char b64[THOU_STUDY_KEY_B64_LEN + 1];
    sodium_bin2base64(b64, sizeof(b64), pk, sizeof(pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(pk, fingerprint);
    printf("secret key:  %s (keep it offline; it opens every research copy)\n"
           "public key:  %s\n"
           "fingerprint: %s\n",
           o->out, b64, fingerprint);
    return 0;
}

static int parse_public_key(const char *text, uint8_t pk[THOU_STUDY_KEY_BYTES])
{
    size_t n = 0;
    if (!text || strlen(text) != THOU_STUDY_KEY_B64_LEN ||
        thou_crypto_b64_decode(text, strlen(text), pk, THOU_STUDY_KEY_BYTES, &n) ||
        n != THOU_STUDY_KEY_BYTES) {
        fprintf(stderr, "thou: --public-key: not a public key (43 characters of base64url, as "
                        "'thou study keygen' prints it)\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int study_add(struct thou_store *store, const struct thou_config *config, struct options *o)
{
    char err[512];
    struct thou_study_record study = {0};
    int exit_code = EXIT_USAGE;
    struct thou_qset_registry *sets = NULL;
    if (!o->positional || !thou_studies_name_valid(o->positional)) {
        fprintf(stderr, "thou: a study needs a NAME of 1 to 64 characters a-z, 0-9, '-', '_'\n");
        goto out;
    }
    snprintf(study.name, sizeof(study.name), "%s", o->positional);
    if (parse_public_key(o->public_key, study.public_key))
        goto out;
    if (o->conditions) {
        if (thou_studies_parse_conditions(o->conditions, study.conditions, &study.n_conditions, err,
                                          sizeof(err))) {
            fprintf(stderr, "thou: %s\n", err);
            goto out;
        }
        if (thou_qset_registry_load(config->questions_dir, &sets, err, sizeof(err))) {
            fprintf(stderr, "thou: %s\n", err);
            exit_code = EXIT_RUNTIME;
            goto out;
        }
        for (size_t i = 0; i < study.n_conditions; i++) {
            if (!thou_qset_registry_find(sets, study.conditions[i])) {
                fprintf(stderr, "thou: --conditions: there is no question set '%s' in '%s'\n",
                        study.conditions[i], config->questions_dir);
                goto out;
            }
        }
    }
    study.closeness = o->closeness;
    study.created_ms = (int64_t)time(NULL) * 1000;
    uint8_t seed[THOU_STUDY_SEED_BYTES];
    randombytes_buf(seed, sizeof(seed));
    enum thou_status rc = thou_store_study_add(store, &study, seed);
    if (rc == THOU_EEXIST) {
        fprintf(stderr, "thou: there is already a study named '%s'\n", study.name);
        goto out;
    }
    if (rc) {
        fprintf(stderr, "thou: cannot add the study: %s\n", thou_status_name(rc));
        exit_code = EXIT_RUNTIME;
        goto out;
    }
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(study.public_key, fingerprint);
    printf("study '%s' added; fingerprint %s\n"
           "link: /?study=%s\n",
           study.name, fingerprint, study.name);
    exit_code = 0;
out:
    thou_qset_registry_free(sets);
    return exit_code;
}

static void print_study(void *ctx, const struct thou_study_record *study, int64_t rooms)
{
    (void)ctx;
    char fingerprint[THOU_STUDY_FINGERPRINT_LEN + 1];
    thou_studies_fingerprint(study->public_key, fingerprint);
    printf("%s\tfingerprint %s\tconditions ", study->name, fingerprint);
    if (study->n_conditions == 0)
        fputs("(the set chosen at the start)", stdout);
    for (size_t i = 0; i < study->n_conditions; i++)
        printf("%s%s", i ? "," : "", study->conditions[i]);
    printf("\tcloseness %s\tpairs assigned %lld\tconversations stored %lld\n",
           study->closeness ? "yes" : "no", (long long)study->assigned, (long long)rooms);
}

int thou_research_study_main(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        print_study_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_USAGE : 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_study_usage(stdout);
            return 0;
        }
    }
    const char *sub = argv[0];
    struct options o = {0};
    static const char *const allowed[] = {
        "keygen", " out ",
        "add",    " public-key conditions closeness config data-dir questions-dir ",
        "list",   " config data-dir questions-dir ",
        "remove", " config data-dir questions-dir ",
    };
    const char *flags = NULL;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i += 2)
        if (strcmp(sub, allowed[i]) == 0)
            flags = allowed[i + 1];
    if (!flags) {
        fprintf(stderr, "thou: unknown study command '%s'\n\n", sub);
        print_study_usage(stderr);
        return EXIT_USAGE;
    }
    int rc = parse_options(argc - 1, argv + 1, flags, &o);
    if (rc)
        return rc;
    if (sodium_init() < 0) {
        fprintf(stderr, "thou: cannot initialise libsodium\n");
        return EXIT_RUNTIME;
    }
    if (strcmp(sub, "keygen") == 0)
        return study_keygen(&o);

    struct thou_config config;
    thou_config_init(&config);
    struct thou_store *store = NULL;
    char err[512];
    rc = load_settings(&config, o.config, o.data_dir, o.questions_dir);
    if (rc)
        goto out;
    if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0 && o.positional) {
        fprintf(stderr, "thou: unexpected argument '%s'\n", o.positional);
        rc = EXIT_USAGE;
        goto out;
    }
    if (thou_store_open(store_location(&config), &store, err, sizeof(err))) {
        fprintf(stderr, "thou: %s\n", err);
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (strcmp(sub, "add") == 0) {
        rc = study_add(store, &config, &o);
    } else if (strcmp(sub, "list") == 0) {
        rc = thou_store_study_list(store, print_study, NULL) ? EXIT_RUNTIME : 0;
    } else {
        enum thou_status status =
            o.positional ? thou_store_study_remove(store, o.positional) : THOU_EINVAL;
        if (status == THOU_OK) {
            printf("study '%s' removed, with the research copies of its conversations\n",
                   o.positional);
            rc = 0;
        } else if (status == THOU_ENOTFOUND || status == THOU_EINVAL) {
            fprintf(stderr, "thou: there is no study named '%s'\n",
                    o.positional ? o.positional : "");
            rc = EXIT_USAGE;
        } else {
            fprintf(stderr, "thou: cannot remove the study: %s\n", thou_status_name(status));
            rc = EXIT_RUNTIME;
        }
    }
out:
    thou_store_close(store);
    thou_config_release(&config);
    return rc;
}

int thou_research_export_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_export_usage(stdout);
            return 0;
        }
    }
    struct options o = {0};
    int rc = parse_options(argc, argv, " study key format out force config data-dir ", &o);
    if (rc)
        return rc;
    if (o.positional) {
        fprintf(stderr, "thou: unexpected argument '%s'\n", o.positional);
        return EXIT_USAGE;
    }
    if (!o.study || !o.key) {
        fprintf(stderr, "thou: export needs --study NAME and --key FILE\n");
        return EXIT_USAGE;
    }
    enum thou_export_format format = THOU_EXPORT_CSV;
    if (o.format && strcmp(o.format, "jsonl") == 0) {
        format = THOU_EXPORT_JSONL;
    } else if (o.format && strcmp(o.format, "csv") != 0) {
        fprintf(stderr, "thou: unknown format '%s' (csv or jsonl)\n", o.format);
        return EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "thou: cannot initialise libsodium\n");
        return EXIT_RUNTIME;
    }
    struct thou_config config;
    thou_config_init(&config);
    char *db_path = NULL, *out_path = NULL, *codebook_path = NULL;
    rc = load_settings(&config, o.config, o.data_dir, NULL);
    if (rc)
        goto out;
    /* The export reads the SQLite file directly (read-only, beside a running
     * server); a PostgreSQL store has no such file. */
    const char *location = store_location(&config);
    if (thou_store_pg_is_url(location)) {
        fprintf(stderr, "thou: export reads a SQLite store only, and store_url names a "
                        "PostgreSQL database; export from a SQLite copy of it\n");
        rc = EXIT_USAGE;
        goto out;
    }
    if (strncmp(location, "sqlite:", 7) == 0)
        location += 7;
    const char *ext = format == THOU_EXPORT_CSV ? "csv" : "jsonl";
    if (asprintf(&db_path, "%s/thou.db", location) < 0 ||
        (o.out ? asprintf(&out_path, "%s", o.out) : asprintf(&out_path, "%s.%s", o.study, ext)) <
            0) {
        rc = EXIT_RUNTIME;
        goto out;
    }
    /* The codebook sits beside the data: results.csv -> results-codebook.csv. */
    const char *slash = strrchr(out_path, '/');
    const char *dot = strrchr(slash ? slash : out_path, '.');
    int stem = dot && dot != (slash ? slash + 1 : out_path) ? (int)(dot - out_path)
                                                            : (int)strlen(out_path);
    if (asprintf(&codebook_path, "%.*s-codebook.csv", stem, out_path) < 0) {
        rc = EXIT_RUNTIME;
        goto out;
    }
    struct thou_export_options options = {
        .db_path = db_path,
        .study = o.study,
        .key_path = o.key,
        .format = format,
        .out_path = out_path,
        .codebook_path = codebook_path,
        .force = o.force,
        .progress = stderr,
    };
    struct thou_export_result result;
    char err[1024];
    rc = thou_export_run(&options, &result, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "thou: %s\n", err);
        goto out;
    }
    if (result.tampered)
        fprintf(stderr,
                "thou: %zu research copies did not open with the study key or did not match "
                "where they were stored (tampered or damaged); they were skipped\n",
                result.tampered);
    printf("exported %zu conversations, %zu rows, to %s (codebook %s)\n", result.conversations,
           result.rows, out_path, codebook_path);
out:
    free(db_path);
    free(out_path);
    free(codebook_path);
    thou_config_release(&config);
    return rc;
}
