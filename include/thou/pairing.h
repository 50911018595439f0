#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Who pairs with whom in a workshop's queue, as a pure module: no I/O, no
 * clock, no allocation. The store runs it inside the writer's transaction,
 * so what it decides is what gets written, exactly once.
 *
 * The rules, as product decisions:
 * - Present means a waiting stream is open now, or the participant was last
 *   seen (joined, or closed its stream) less than the presence timeout ago.
 *   Nobody present ever leaves the queue; someone absent for the whole
 *   timeout does ("leave"), and is never paired.
 * - Those left behind by a partner who went away come first, among
 *   themselves in the order they were put back in the queue; everyone else
 *   follows in order of arrival (queued_ms, then label). So a person left
 *   behind is paired with another left behind when there is one, and
 *   otherwise with the next newcomer before any newcomer pairs with another.
 * - Consecutive present participants in that order make a pair; the first
 *   of the two is A. An odd one out waits.
 * - By hand, a facilitator may pair any two who are in the queue (present
 *   or not): the earlier of the two in the order above is A.
 */

struct thou_pairing_entry {
    int64_t label;        /* the per-workshop participant number (p<label>) */
    int64_t queued_ms;    /* when it entered the queue: arrival, or the re-queue */
    int64_t last_seen_ms; /* when it was last known present (join, stream closed) */
    bool connected;       /* a waiting stream is open right now */
    bool left_behind;     /* its partner went away; pairs first */
};

/** One decided pair: indices into the queue given. */
struct thou_pairing_pair {
    size_t a, b;
};

/** True when entry counts as present at now_ms. */
bool thou_pairing_present(const struct thou_pairing_entry *entry, int64_t now_ms,
                          int64_t timeout_ms);

/**
 * Decide the pairs and the departures of a queue of n entries (in any
 * order). pairs must have room for n / 2 pairs and leave for n indices.
 * Pairs come in order (the first pair is the one formed first).
 */
void thou_pairing_decide(const struct thou_pairing_entry *queue, size_t n, int64_t now_ms,
                         int64_t timeout_ms, struct thou_pairing_pair *pairs, size_t *n_pairs,
                         size_t *leave, size_t *n_leave);

enum thou_pairing_reason {
    THOU_PAIRING_OK = 0,
    THOU_PAIRING_SAME,        /* a and b are one participant */
    THOU_PAIRING_NOT_WAITING, /* a or b is not in the queue */
};

/**
 * Pair the participants labelled label_a and label_b by hand. On success
 * *pair names them with A first (the earlier in queue order).
 */
enum thou_pairing_reason thou_pairing_by_hand(const struct thou_pairing_entry *queue, size_t n,
                                              int64_t label_a, int64_t label_b,
                                              struct thou_pairing_pair *pair);
