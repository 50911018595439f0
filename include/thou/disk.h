#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Free space on the data directory's file system, held against a floor:
 * below it thou refuses new writes with a clear answer instead of letting
 * SQLite fail halfway or the disk fill up for everyone on the machine.
 * Read without a lock from any thread; refreshed by one thread.
 */

struct thou_disk;

/** Watch dir's file system with a floor of floor_bytes (0: never low). Aborts on OOM. */
struct thou_disk *thou_disk_new(const char *dir, uint64_t floor_bytes);

/** Free; NULL is a no-op. */
void thou_disk_free(struct thou_disk *disk);

/** Look at the free space again (statvfs); cheap, meant for once a second. */
void thou_disk_refresh(struct thou_disk *disk);

/** True while the free space last seen is below the floor. */
bool thou_disk_low(const struct thou_disk *disk);
