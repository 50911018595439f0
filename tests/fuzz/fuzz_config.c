/*
 * The config file (server/config.c) from any bytes, read through a memfd
 * so no file is written: loading never crashes or leaks; a file it
 * refuses leaves the configuration exactly as it was; one it accepts can
 * be loaded again to the same effect.
 */
#include "thou/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("thou-config", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64], err[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct thou_config config, before;
    thou_config_init(&config);
    thou_config_init(&before);
    if (thou_config_load_file(&config, path, err, sizeof(err)) == THOU_OK) {
        (void)thou_config_check(&config, err, sizeof(err));
        if (thou_config_load_file(&config, path, err, sizeof(err)) != THOU_OK)
            __builtin_trap();
    } else if (config.port != before.port || config.max_body_bytes != before.max_body_bytes ||
               strcmp(config.data_dir, before.data_dir) != 0) {
        __builtin_trap(); /* a refused file changed something */
    }
    thou_config_release(&config);
    thou_config_release(&before);
    close(fd);
    return 0;
}
