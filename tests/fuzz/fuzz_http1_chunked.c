/*
 * The chunked-body decoder is incremental, so where the input happens to be
 * cut must not matter: decoding it in one call, in two pieces split at a
 * point the input chooses, and (for small inputs) byte by byte must give the
 * same answer, the same consumed count and the same data.
 */
#include "thou/http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BYTEWISE_MAX 512

struct outcome {
    int rc;
    size_t used; /* meaningful unless rc is -1 */
    size_t data_len;
    char *data; /* data_len bytes, owned */
};

/* Feed one piece on an exact-size heap copy, so ASan sees any read past it. */
static int feed(struct thou_http1_chunked *chunked, const uint8_t *piece, size_t len,
                struct outcome *total)
{
    char *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    if (len)
        memcpy(buf, piece, len);
    size_t used = 0, data_len = 0;
    int rc = thou_http1_chunked_decode(chunked, buf, len, &used, &data_len);
    if (rc != -1) {
        if (used > len || data_len > used)
            __builtin_trap();
        /* Needing more input means every byte given was taken. */
        if (rc == 0 && used != len)
            __builtin_trap();
        if (data_len) {
            memcpy(total->data + total->data_len, buf, data_len);
            total->data_len += data_len;
        }
        total->used += used;
    }
    free(buf);
    total->rc = rc;
    return rc;
}

/* Decode data in pieces ending at the given cut points (ascending, < size). */
static void decode_pieces(const uint8_t *data, size_t size, const size_t *cuts, size_t n_cuts,
                          struct outcome *out)
{
    struct thou_http1_chunked chunked;
    thou_http1_chunked_init(&chunked);
    out->rc = 0;
    out->used = 0;
    out->data_len = 0;
    out->data = malloc(size ? size : 1);
    if (!out->data)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : size;
        if (feed(&chunked, data + start, end - start, out) != 0)
            return;
        start = end;
    }
}

static void check_same(const struct outcome *whole, const struct outcome *split)
{
    if (whole->rc != split->rc)
        __builtin_trap();
    if (whole->rc == -1)
        return;
    if (whole->used != split->used || whole->data_len != split->data_len)
        __builtin_trap();
    if (whole->data_len && memcmp(whole->data, split->data, whole->data_len) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, split;
    decode_pieces(data, size, NULL, 0, &whole);
    if (whole.rc != -1 && (whole.used > size || whole.data_len > whole.used))
        __builtin_trap();

    size_t cut = size ? data[0] % (size + 1) : 0;
    decode_pieces(data, size, &cut, 1, &split);
    check_same(&whole, &split);
    free(split.data);

    if (size > 1 && size <= BYTEWISE_MAX) {
        size_t cuts[BYTEWISE_MAX];
        for (size_t i = 0; i + 1 < size; i++)
            cuts[i] = i + 1;
        decode_pieces(data, size, cuts, size - 1, &split);
        check_same(&whole, &split);
        free(split.data);
    }
    free(whole.data);
    return 0;
}
