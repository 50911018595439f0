/*
 * Static path resolution (server/static_files.c) over any request path: a
 * file it opens always lies inside the static root, never behind a '..',
 * an escape, a hidden name or a symlink; whatever it refuses, it opens
 * nothing (no descriptor leaks).
 */
#include "thou/static_files.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct thou_static *root;
static char root_path[PATH_MAX];

static void open_root(void)
{
    if (root)
        return;
    if (!realpath(THOU_SOURCE_DIR "/static", root_path) ||
        thou_static_open(root_path, &root) != THOU_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_root();
    char *rel = malloc(size + 1);
    memcpy(rel, data, size);
    rel[size] = '\0';
    int fd = -1;
    uint64_t file_size = 0;
    char etag[64];
    if (thou_static_resolve(root, rel, &fd, &file_size, etag, sizeof(etag)) == THOU_OK) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            __builtin_trap();
        target[n] = '\0';
        size_t root_len = strlen(root_path);
        if (strncmp(target, root_path, root_len) != 0 || target[root_len] != '/')
            __builtin_trap(); /* outside the root */
        close(fd);
    } else if (fd >= 0) {
        __builtin_trap();
    }
    free(rel);
    return 0;
}
