/*
 * A disk that fills up. Below min_free_disk_mb thou refuses every new
 * write with 507 insufficient_storage and goes on reading; once space is
 * back it writes again. With no floor, a write the full disk makes fail is
 * answered as failed, never acknowledged, and everything acknowledged
 * before is still there. The real-disk cases use a small tmpfs, which needs
 * root (CI runs as root); the floor itself is also checked without one.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static struct thou_proc proc;
static bool proc_running;
static char small_dir[256];
static bool small_mounted;

static void setup(void)
{
    proc_running = false;
    small_mounted = false;
}

static void teardown(void)
{
    if (proc_running)
        proc_cleanup(&proc);
    if (small_mounted) {
        umount(small_dir);
        rmdir(small_dir);
    }
}

/* A 3 MiB tmpfs for the database; false where this machine does not allow it. */
static bool mount_small_disk(void)
{
    snprintf(small_dir, sizeof(small_dir), "/tmp/thou-disk-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(small_dir));
    if (mount("tmpfs", small_dir, "tmpfs", 0, "size=3m,mode=0700") != 0) {
        fprintf(stderr, "it_disk: no tmpfs here (%s); the real-disk cases are left out\n",
                strerror(errno));
        rmdir(small_dir);
        return false;
    }
    small_mounted = true;
    return true;
}

/* Fill the small disk but for about keep_kb KiB. */
static void fill_but(const char *ballast, long keep_kb)
{
    char command[600];
    snprintf(command, sizeof(command),
             "avail=$(df -k --output=avail '%s' | tail -1); "
             "n=$((avail - %ld)); [ $n -gt 0 ] && dd if=/dev/zero of='%s' bs=1k count=$n "
             "2>/dev/null; true",
             small_dir, keep_kb, ballast);
    ck_assert_int_eq(system(command), 0);
}

/* A note of 12 KiB; the status, and its seq when stored. */
static long post_note(const struct test_pair *room, unsigned counter, long long *seq)
{
    static char body[20000];
    char ciphertext[17000], path[160];
    /* 128 pieces of 96 random bytes: 96 is a multiple of 3, so the pieces'
     * base64 strung together is the base64 of 12 KiB. */
    for (size_t i = 0; i < 128; i++)
        random_b64(96, ciphertext + i * 128, sizeof(ciphertext) - i * 128);
    snprintf(body, sizeof(body), "{\"type\":\"note\",\"ciphertext\":\"%s\",\"counter\":%u}",
             ciphertext, counter);
    snprintf(path, sizeof(path), "/api/rooms/%s/events", room->room);
    struct http_reply reply;
    ck_assert(http_json(proc.port, "POST", path, room->token_a, body, &reply));
    long status = reply.status;
    if (status == 201 && seq)
        *seq = (long long)json_integer_value(json_object_get(reply.json, "seq"));
    if (status == 409)
        ck_assert_str_eq(http_error_code(&reply), "room_at_limit");
    if (status == 507) {
        ck_assert_str_eq(http_error_code(&reply), "insufficient_storage");
        char retry[32];
        ck_assert(http_header(&reply, "Retry-After", retry, sizeof(retry)));
    }
    http_reply_free(&reply);
    return status;
}

static long long last_seq(const struct test_pair *room)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/rooms/%s", room->room);
    struct http_reply reply;
    ck_assert(http_json(proc.port, "GET", path, room->token_b, NULL, &reply));
    ck_assert_int_eq(reply.status, 200);
    long long seq = (long long)json_integer_value(json_object_get(reply.json, "last_seq"));
    http_reply_free(&reply);
    return seq;
}

/* Below the floor (here: a floor no disk reaches) every write is refused
 * plainly, reads go on, and each refusal is counted. */
START_TEST(test_floor_refuses_writes)
{
    const char *extra[] = {"--min-free-disk-mb", "1000000", NULL};
    proc_start(&proc, extra);
    proc_running = true;
    struct test_pair room;
    ck_assert_int_eq(test_pair_create(proc.port, &room), 507);
    struct http_reply reply;
    ck_assert(http_do(proc.port, "GET", "/api/sets", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
    ck_assert(http_do(proc.port, "GET", "/healthz", NULL, NULL, 0, &reply));
    ck_assert_int_eq(reply.status, 200);
    http_reply_free(&reply);
    ck_assert_int_eq(refusals_metric(proc.port, "disk_low"), 1);
}
END_TEST

/* thou on the small disk with a floor of floor_mb, and a pair in a room;
 * false where no small disk can be had. */
static bool start_on_small_disk(const char *floor_mb, struct test_pair *room)
{
    if (!mount_small_disk())
        return false;
    const char *extra[] = {"--data-dir",     small_dir,        "--min-free-disk-mb",
                           floor_mb,         "--events-per-s", "1000",
                           "--events-burst", "1000",           NULL};
    proc_start(&proc, extra);
    proc_running = true;
    ck_assert_int_eq(test_pair_create(proc.port, room), 201);
    return true;
}

/* A real disk filling up past the floor, and emptying again. */
START_TEST(test_real_disk_below_the_floor)
{
    struct test_pair room;
    if (!start_on_small_disk("1", &room))
        return;
    ck_assert_int_eq(post_note(&room, 1, NULL), 201);

    char ballast[300];
    snprintf(ballast, sizeof(ballast), "%s/ballast", small_dir);
    fill_but(ballast, 512); /* half a MiB left: below the 1 MiB floor */
    usleep(2200 * 1000);    /* the floor is looked at once a second */
    ck_assert_int_eq(post_note(&room, 2, NULL), 507);
    ck_assert_int_eq(last_seq(&room), 2); /* joined, the first note: reads go on */

    unlink(ballast);
    usleep(2200 * 1000);
    ck_assert_int_eq(post_note(&room, 3, NULL), 201);
    ck_assert_int_eq(last_seq(&room), 3);
}
END_TEST

/* No floor: the disk itself fills. A note that does not fit is refused,
 * never acknowledged; every acknowledged one is kept; and once there is
 * room again the room goes on, gap-free. */
START_TEST(test_full_disk_is_a_refusal_not_a_loss)
{
    struct test_pair room;
    if (!start_on_small_disk("0", &room))
        return;
    char ballast[300];
    snprintf(ballast, sizeof(ballast), "%s/ballast", small_dir);
    fill_but(ballast, 256);
    long long acked = last_seq(&room);
    unsigned counter = 1;
    long status = 201;
    for (int i = 0; i < 200 && status == 201; i++) {
        long long seq = 0;
        status = post_note(&room, counter++, &seq);
        if (status == 201) {
            ck_assert_int_eq(seq, acked + 1);
            acked = seq;
        }
    }
    ck_assert_msg(status >= 500, "the full disk was answered %ld", status);
    ck_assert_int_eq(last_seq(&room), acked); /* nothing unacknowledged, nothing lost */

    unlink(ballast);
    long long seq = 0;
    ck_assert_int_eq(post_note(&room, counter++, &seq), 201);
    ck_assert_int_eq(seq, acked + 1);
}
END_TEST

/* A conversation has a natural size: past its limits it takes nothing
 * more, says so plainly, and other conversations go on. The byte limit
 * holds across a restart (sizes are read back from the database). */
START_TEST(test_room_size_limits)
{
    /* Bytes: each note stores about 16 KiB of base64, so six fit in 100,000. */
    const char *bytes_extra[] = {
        "--max-room-bytes", "100000", "--events-per-s", "1000", "--events-burst", "1000", NULL};
    proc_start(&proc, bytes_extra);
    proc_running = true;
    struct test_pair room, other;
    ck_assert_int_eq(test_pair_create(proc.port, &room), 201);
    unsigned counter = 1;
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(post_note(&room, counter++, NULL), 201);
    ck_assert_int_eq(post_note(&room, counter, NULL), 409);
    ck_assert_int_eq(last_seq(&room), 7);
    ck_assert_int_eq(refusals_metric(proc.port, "room_limit"), 1);
    ck_assert_int_eq(test_pair_create(proc.port, &other), 201);
    ck_assert_int_eq(post_note(&other, 1, NULL), 201);
    ck_assert_int_eq(proc_stop(&proc), 0);
    proc_restart(&proc);
    ck_assert_int_eq(post_note(&room, counter, NULL), 409);
    ck_assert_int_eq(last_seq(&room), 7);
    proc_cleanup(&proc);

    /* Events: joined and 99 notes make 100. */
    const char *events_extra[] = {
        "--max-room-events", "100", "--events-per-s", "1000", "--events-burst", "1000", NULL};
    proc_start(&proc, events_extra);
    ck_assert_int_eq(test_pair_create(proc.port, &room), 201);
    for (counter = 1; counter <= 99; counter++)
        ck_assert_int_eq(post_note(&room, counter, NULL), 201);
    ck_assert_int_eq(post_note(&room, counter, NULL), 409);
    ck_assert_int_eq(last_seq(&room), 100);
}
END_TEST

/* A database damaged on disk is refused at start with a clear message (not
 * served half-broken); one left by kill -9 is recovered and served. */
START_TEST(test_damaged_database_is_refused)
{
    proc_start(&proc, NULL);
    proc_running = true;
    struct test_pair room;
    ck_assert_int_eq(test_pair_create(proc.port, &room), 201);
    ck_assert_int_eq(post_note(&room, 1, NULL), 201);
    proc_kill9(&proc);
    proc_restart(&proc); /* the WAL a crash leaves is recovered */
    ck_assert_int_eq(last_seq(&room), 2);
    ck_assert_int_eq(proc_stop(&proc), 0);
    proc_running = false;

    /* Overwrite the file's third page, as a failing disk might. */
    char path[400];
    snprintf(path, sizeof(path), "%s/thou.db", proc.data_dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 2 * 4096, SEEK_SET), 0);
    static char junk[4096];
    memset(junk, 0xff, sizeof(junk));
    ck_assert_uint_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    ck_assert_int_eq(fclose(f), 0);

    char err[2048];
    const char *args[] = {"serve",       "--config", THOU_SOURCE_DIR "/config/thou.json",
                          "--port",      "0",        "--data-dir",
                          proc.data_dir, NULL};
    ck_assert_int_eq(proc_run(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "is damaged and cannot be served") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "restore it from a backup") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "listening") == NULL, "it served: %s", err);
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", proc.dir);
    ck_assert_int_eq(system(command), 0);
}
END_TEST

static Suite *disk_suite(void)
{
    Suite *suite = suite_create("disk");
    TCase *tc = tcase_create("full disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_floor_refuses_writes);
    tcase_add_test(tc, test_real_disk_below_the_floor);
    tcase_add_test(tc, test_full_disk_is_a_refusal_not_a_loss);
    tcase_add_test(tc, test_damaged_database_is_refused);
    tcase_add_test(tc, test_room_size_limits);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return run_suite(disk_suite());
}
