#include "thou/disk.h"
#include "thou/log.h"
#include "thou/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/statvfs.h>

struct thou_disk {
    char *dir;
    uint64_t floor_bytes;
    atomic_bool low;
};

struct thou_disk *thou_disk_new(const char *dir, uint64_t floor_bytes)
{
    struct thou_disk *disk = thou_xcalloc(1, sizeof(*disk));
    disk->dir = thou_xstrdup(dir);
    disk->floor_bytes = floor_bytes;
    thou_disk_refresh(disk);
    return disk;
}

void thou_disk_free(struct thou_disk *disk)
{
    if (!disk)
        return;
    free(disk->dir);
    free(disk);
}

void thou_disk_refresh(struct thou_disk *disk)
{
    struct statvfs fs;
    if (statvfs(disk->dir, &fs) != 0)
        return; /* keep the last answer: a passing failure must not stop writes */
    /* What an unprivileged writer may use: thou should not eat root's reserve. */
    uint64_t free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
    bool low = disk->floor_bytes && free_bytes < disk->floor_bytes;
    if (atomic_exchange(&disk->low, low) != low) {
        if (low)
            thou_log_warn("free disk space %llu MiB is below the floor of %llu MiB; refusing "
                          "new writes",
                          (unsigned long long)(free_bytes >> 20),
                          (unsigned long long)(disk->floor_bytes >> 20));
        else
            thou_log_info("free disk space is back above the floor; writing again");
    }
}

bool thou_disk_low(const struct thou_disk *disk)
{
    return atomic_load(&((struct thou_disk *)(uintptr_t)disk)->low);
}
