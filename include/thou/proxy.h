#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "thou/status.h"

/*
 * Trusted reverse proxies, and the client address they forward. Behind a
 * proxy every connection comes from the proxy's address, so per-address
 * limits would treat all clients as one; the address a trusted proxy puts
 * in Forwarded (RFC 7239) or X-Forwarded-For is believed instead, and only
 * then. Pure functions: no I/O, no allocation.
 */

#define THOU_PROXY_MAX_NETS 32

struct thou_proxy_net {
    sa_family_t family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];   /* network address, host bits zero */
    unsigned prefix;    /* bits */
};

struct thou_proxies {
    struct thou_proxy_net nets[THOU_PROXY_MAX_NETS];
    size_t n;
};

/**
 * Parse a comma-separated list of addresses and CIDR blocks ("10.0.0.1,
 * 192.168.0.0/16, ::1, fd00::/8"); "" is the empty list. THOU_EINVAL with a
 * message naming the bad entry, and *out left empty, on anything else.
 */
enum thou_status thou_proxies_parse(const char *text, struct thou_proxies *out, char *errbuf,
                                    size_t errlen);

/** True when addr lies in one of the trusted networks. */
bool thou_proxies_trust(const struct thou_proxies *proxies, const struct sockaddr *addr);

/**
 * The client's address. It is peer itself unless peer is a trusted proxy;
 * then it is the address the proxies forwarded: from Forwarded's "for="
 * when that header is present, else from X-Forwarded-For (either may be
 * NULL), read from the right, skipping trusted proxies; the first address
 * that is not one is the client. Entries a proxy cannot have written
 * (malformed, "unknown", obfuscated names) stop the walk at the last
 * trusted hop. The result is written to *client (an IPv4-mapped IPv6
 * address as plain IPv4).
 */
void thou_proxies_client(const struct thou_proxies *proxies, const struct sockaddr *peer,
                         const char *forwarded, const char *x_forwarded_for,
                         struct sockaddr_storage *client);

/**
 * A key naming addr for per-address limits: an IPv4 address in full, an
 * IPv6 address by its /64 (a household or a phone holds a whole /64).
 * out must hold THOU_ADDRESS_KEY_LEN bytes.
 */
#define THOU_ADDRESS_KEY_LEN 48
void thou_address_key(const struct sockaddr *addr, char *out, size_t len);
