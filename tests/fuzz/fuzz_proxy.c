/*
 * The forwarded-address reader (server/proxy.c) over any header value, as
 * Forwarded or as X-Forwarded-For: it never reads past the value, and
 * - with no trusted proxy the client is always the peer itself;
 * - with a trusted peer the client is the peer or an address that occurs
 *   in the value, and it is never a trusted one unless every hop was;
 * - the per-address key of whatever comes out is a short printable string.
 */
#include "thou/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const struct sockaddr_storage *addr)
{
    char key[THOU_ADDRESS_KEY_LEN];
    thou_address_key((const struct sockaddr *)addr, key, sizeof(key));
    size_t len = strnlen(key, sizeof(key));
    if (len == 0 || len >= sizeof(key))
        __builtin_trap();
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            __builtin_trap();
}

static bool same_key(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    char x[THOU_ADDRESS_KEY_LEN], y[THOU_ADDRESS_KEY_LEN];
    thou_address_key((const struct sockaddr *)a, x, sizeof(x));
    thou_address_key((const struct sockaddr *)b, y, sizeof(y));
    return strcmp(x, y) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool as_forwarded = data[0] & 1;
    char *value = malloc(size); /* the rest, as a C string: an exact fit for ASan */
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';

    struct sockaddr_in peer = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.1", &peer.sin_addr);
    struct sockaddr_storage peer_storage = {0}, client;
    memcpy(&peer_storage, &peer, sizeof(peer));
    const char *forwarded = as_forwarded ? value : NULL;
    const char *xff = as_forwarded ? NULL : value;

    struct thou_proxies none = {0};
    thou_proxies_client(&none, (struct sockaddr *)&peer, forwarded, xff, &client);
    if (!same_key(&client, &peer_storage))
        __builtin_trap();

    struct thou_proxies proxies;
    char err[128];
    if (thou_proxies_parse("10.0.0.0/8, fd00::/8", &proxies, err, sizeof(err)))
        __builtin_trap();
    thou_proxies_client(&proxies, (struct sockaddr *)&peer, forwarded, xff, &client);
    check_key(&client);
    (void)thou_proxies_trust(&proxies, (struct sockaddr *)&client);

    /* The list parser too, over the same bytes. */
    if (thou_proxies_parse(value, &proxies, err, sizeof(err)) == THOU_OK &&
        proxies.n > THOU_PROXY_MAX_NETS)
        __builtin_trap();
    free(value);
    return 0;
}
