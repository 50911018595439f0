/*
 * Pairing by arrival (include/thou/pairing.h states the rules).
 */
#include "thou/pairing.h"

bool thou_pairing_present(const struct thou_pairing_entry *entry, int64_t now_ms,
                          int64_t timeout_ms)
{
    return entry->connected || now_ms - entry->last_seen_ms < timeout_ms;
}

/* Queue order: left behind first, then by queued time, then by label. */
static bool before(const struct thou_pairing_entry *x, const struct thou_pairing_entry *y)
{
    if (x->left_behind != y->left_behind)
        return x->left_behind;
    if (x->queued_ms != y->queued_ms)
        return x->queued_ms < y->queued_ms;
    return x->label < y->label;
}

void thou_pairing_decide(const struct thou_pairing_entry *queue, size_t n, int64_t now_ms,
                         int64_t timeout_ms, struct thou_pairing_pair *pairs, size_t *n_pairs,
                         size_t *leave, size_t *n_leave)
{
    *n_pairs = 0;
    *n_leave = 0;
    /* Present entries are collected in leave's tail, absent ones at its
     * head: one array of n indices holds both without allocating. */
    size_t tail = n;
    for (size_t i = 0; i < n; i++) {
        if (thou_pairing_present(&queue[i], now_ms, timeout_ms))
            leave[--tail] = i;
        else
            leave[(*n_leave)++] = i;
    }
    size_t *order = leave + tail;
    size_t n_order = n - tail;
    /* Insertion sort: queues are short between two pairings (a join pairs
     * at once), and the order must be total and stable. */
    for (size_t i = 1; i < n_order; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && before(&queue[v], &queue[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t i = 0; i + 1 < n_order; i += 2)
        pairs[(*n_pairs)++] = (struct thou_pairing_pair){order[i], order[i + 1]};
}

enum thou_pairing_reason thou_pairing_by_hand(const struct thou_pairing_entry *queue, size_t n,
                                              int64_t label_a, int64_t label_b,
                                              struct thou_pairing_pair *pair)
{
    if (label_a == label_b)
        return THOU_PAIRING_SAME;
    size_t a = n, b = n;
    for (size_t i = 0; i < n; i++) {
        if (queue[i].label == label_a)
            a = i;
        else if (queue[i].label == label_b)
            b = i;
    }
    if (a == n || b == n)
        return THOU_PAIRING_NOT_WAITING;
    *pair = before(&queue[a], &queue[b]) ? (struct thou_pairing_pair){a, b}
                                         : (struct thou_pairing_pair){b, a};
    return THOU_PAIRING_OK;
}
