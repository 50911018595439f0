#include "thou/limiter.h"
#include "thou/mem.h"
#include "thou/text.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 1024
#define KEY_MAX   64

struct entry {
    char key[KEY_MAX + 1];
    double tokens;
    int64_t updated_ms;
    struct entry *next;
};

struct thou_limiter {
    pthread_mutex_t lock;
    double per_ms;
    double burst;
    struct entry *buckets[N_BUCKETS];
    thou_limiter_shared_fn shared; /* set: the bucket lives there (other instances see it) */
    void *shared_ctx;
    const char *name;
};

void thou_limiter_share(struct thou_limiter *limiter, const char *name,
                        thou_limiter_shared_fn shared, void *ctx)
{
    limiter->name = name;
    limiter->shared = shared;
    limiter->shared_ctx = ctx;
}

struct thou_limiter *thou_limiter_new(double per_second, unsigned burst)
{
    struct thou_limiter *limiter = thou_xcalloc(1, sizeof(*limiter));
    pthread_mutex_init(&limiter->lock, NULL);
    limiter->per_ms = per_second / 1000.0;
    limiter->burst = burst ? burst : 1;
    return limiter;
}

void thou_limiter_free(struct thou_limiter *limiter)
{
    if (!limiter)
        return;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct entry *e = limiter->buckets[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&limiter->lock);
    free(limiter);
}

static size_t slot_of(const char *key)
{
    return thou_text_hash(key) % N_BUCKETS;
}

/* Find or make key's entry, refilled up to now; NULL when a new one cannot
 * be allocated. Lock held. */
static struct entry *entry_at(struct thou_limiter *limiter, const char *key, int64_t now_ms)
{
    size_t slot = slot_of(key);
    struct entry *e = limiter->buckets[slot];
    while (e && strncmp(e->key, key, KEY_MAX) != 0)
        e = e->next;
    if (!e) {
        e = thou_calloc(1, sizeof(*e));
        if (!e)
            return NULL;
        strncpy(e->key, key, KEY_MAX);
        e->tokens = limiter->burst;
        e->updated_ms = now_ms;
        e->next = limiter->buckets[slot];
        limiter->buckets[slot] = e;
    }
    if (now_ms > e->updated_ms) {
        e->tokens =
            fmin(limiter->burst, e->tokens + (double)(now_ms - e->updated_ms) * limiter->per_ms);
        e->updated_ms = now_ms;
    }
    return e;
}

static unsigned retry_after(const struct thou_limiter *limiter, const struct entry *e)
{
    double wait_ms = (1.0 - e->tokens) / limiter->per_ms;
    unsigned seconds = (unsigned)ceil(wait_ms / 1000.0);
    return seconds ? seconds : 1;
}

static bool limit(struct thou_limiter *limiter, const char *key, int64_t now_ms,
                  unsigned *retry_after_s, bool consume)
{
    if (limiter->shared) {
        unsigned wait = 1;
        int verdict =
            limiter->shared(limiter->shared_ctx, limiter->name, key, limiter->per_ms * 1000.0,
                            (unsigned)limiter->burst, consume, now_ms, &wait);
        if (verdict >= 0) {
            if (!verdict && retry_after_s)
                *retry_after_s = wait ? wait : 1;
            return verdict == 1;
        }
    }
    pthread_mutex_lock(&limiter->lock);
    struct entry *e = entry_at(limiter, key, now_ms);
    if (!e) {
        /* A key not seen lately has a full bucket: allowing is the answer it
         * would get, only this token is not remembered. An allocation
         * failure must not turn into a refusal that looks like a limit. */
        pthread_mutex_unlock(&limiter->lock);
        return true;
    }
    bool allowed = e->tokens >= 1.0;
    if (allowed && consume)
        e->tokens -= 1.0;
    if (!allowed && retry_after_s)
        *retry_after_s = retry_after(limiter, e);
    pthread_mutex_unlock(&limiter->lock);
    return allowed;
}

bool thou_limiter_take(struct thou_limiter *limiter, const char *key, int64_t now_ms,
                       unsigned *retry_after_s)
{
    return limit(limiter, key, now_ms, retry_after_s, true);
}

bool thou_limiter_peek(struct thou_limiter *limiter, const char *key, int64_t now_ms,
                       unsigned *retry_after_s)
{
    return limit(limiter, key, now_ms, retry_after_s, false);
}

void thou_limiter_prune(struct thou_limiter *limiter, int64_t now_ms)
{
    pthread_mutex_lock(&limiter->lock);
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct entry **link = &limiter->buckets[i];
        while (*link) {
            struct entry *e = *link;
            double tokens = e->tokens + (double)(now_ms - e->updated_ms) * limiter->per_ms;
            if (tokens >= limiter->burst) {
                *link = e->next;
                free(e);
            } else {
                link = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&limiter->lock);
}
