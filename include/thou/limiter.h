#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Token-bucket rate limits keyed by a short string (a room id, a token
 * hash in hex). Each key's bucket holds up to `burst` tokens and refills at
 * `per_second`. Thread-safe; idle keys are forgotten by thou_limiter_prune.
 */

struct thou_limiter;

/** New limiter; aborts on out-of-memory. */
struct thou_limiter *thou_limiter_new(double per_second, unsigned burst);

/** Free; NULL is a no-op. */
void thou_limiter_free(struct thou_limiter *limiter);

/**
 * Take one token for key. Returns true when allowed; otherwise false and
 * *retry_after_s says when the next token is due (at least 1).
 */
bool thou_limiter_take(struct thou_limiter *limiter, const char *key, int64_t now_ms,
                       unsigned *retry_after_s);

/** Like take, but only looks: true when a token is available. */
bool thou_limiter_peek(struct thou_limiter *limiter, const char *key, int64_t now_ms,
                       unsigned *retry_after_s);

/**
 * Where a limit is shared by several instances: shared(ctx, name, key,
 * per_second, burst, consume, now_ms, retry_after_s) keeps the bucket and
 * returns 1 (allowed), 0 (refused, *retry_after_s set) or -1 when it cannot
 * answer, in which case this instance's own bucket decides. name tells the
 * limits apart. Call before the limiter is used; NULL keeps it local.
 */
typedef int (*thou_limiter_shared_fn)(void *ctx, const char *name, const char *key,
                                      double per_second, unsigned burst, bool consume,
                                      int64_t now_ms, unsigned *retry_after_s);
void thou_limiter_share(struct thou_limiter *limiter, const char *name,
                        thou_limiter_shared_fn shared, void *ctx);

/** Forget keys whose buckets have refilled completely. */
void thou_limiter_prune(struct thou_limiter *limiter, int64_t now_ms);
