#include "thou/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_HOPS     64 /* forwarded entries looked at, from the right */
#define MAX_ADDR_LEN 64 /* the longest address text with brackets and a port */

/* A forwarded entry: an address, or one a proxy cannot have written. */
struct hop {
    bool valid;
    struct sockaddr_storage addr;
};

static void set_v4(struct sockaddr_storage *out, const void *bytes)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    in4->sin_family = AF_INET;
    memcpy(&in4->sin_addr, bytes, 4);
}

/* Copy addr into out, an IPv4-mapped IPv6 address as plain IPv4. */
static void normalize(const struct sockaddr *addr, struct sockaddr_storage *out)
{
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            set_v4(out, &in6->s6_addr[12]);
            return;
        }
        memset(out, 0, sizeof(*out));
        memcpy(out, addr, sizeof(struct sockaddr_in6));
        return;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, addr, sizeof(struct sockaddr_in));
}

static const uint8_t *addr_bytes(const struct sockaddr_storage *addr, size_t *len)
{
    if (addr->ss_family == AF_INET6) {
        *len = 16;
        return ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
    }
    *len = 4;
    return (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr;
}

/* An address literal: "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:80", surrounding spaces allowed. */
static bool parse_address(const char *text, size_t len, struct sockaddr_storage *out)
{
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= MAX_ADDR_LEN)
        return false;
    char buf[MAX_ADDR_LEN];
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *host = buf;
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return false;
        *close = '\0';
        host++;
    } else {
        char *colon = strchr(host, ':');
        if (colon && !strchr(colon + 1, ':'))
            *colon = '\0'; /* IPv4 with a port; two colons or more make IPv6 */
    }
    uint8_t bytes[16];
    if (inet_pton(AF_INET, host, bytes) == 1) {
        set_v4(out, bytes);
        return true;
    }
    if (inet_pton(AF_INET6, host, bytes) == 1) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, bytes, 16);
        normalize((const struct sockaddr *)&in6, out);
        return true;
    }
    return false;
}

static bool in_net(const struct thou_proxy_net *net, const struct sockaddr_storage *addr)
{
    size_t len;
    const uint8_t *bytes = addr_bytes(addr, &len);
    if (addr->ss_family != net->family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(bytes, net->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (bytes[full] & mask) == net->addr[full];
}

static bool trusted(const struct thou_proxies *proxies, const struct sockaddr_storage *addr)
{
    for (size_t i = 0; i < proxies->n; i++)
        if (in_net(&proxies->nets[i], addr))
            return true;
    return false;
}

bool thou_proxies_trust(const struct thou_proxies *proxies, const struct sockaddr *addr)
{
    struct sockaddr_storage normal;
    normalize(addr, &normal);
    return trusted(proxies, &normal);
}

static enum thou_status parse_net(const char *text, size_t len, struct thou_proxy_net *net,
                                  char *errbuf, size_t errlen)
{
    char entry[MAX_ADDR_LEN];
    if (len >= sizeof(entry)) {
        snprintf(errbuf, errlen, "trusted_proxies: entry '%.*s…' is too long", 20, text);
        return THOU_EINVAL;
    }
    memcpy(entry, text, len);
    entry[len] = '\0';
    char shown[MAX_ADDR_LEN];
    memcpy(shown, entry, len + 1);
    char *slash = strchr(entry, '/');
    unsigned prefix = 0;
    bool has_prefix = slash != NULL;
    if (slash) {
        *slash = '\0';
        const char *digits = slash + 1;
        size_t n = strlen(digits);
        if (n == 0 || n > 3 || strspn(digits, "0123456789") != n)
            goto bad;
        for (size_t i = 0; i < n; i++)
            prefix = prefix * 10 + (unsigned)(digits[i] - '0');
    }
    struct sockaddr_storage addr;
    if (inet_pton(AF_INET, entry, &((struct sockaddr_in *)&addr)->sin_addr) == 1)
        addr.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, entry, &((struct sockaddr_in6 *)&addr)->sin6_addr) == 1)
        addr.ss_family = AF_INET6;
    else
        goto bad;
    size_t bytes_len;
    const uint8_t *bytes = addr_bytes(&addr, &bytes_len);
    if (!has_prefix)
        prefix = (unsigned)bytes_len * 8;
    if (prefix > bytes_len * 8)
        goto bad;
    memset(net, 0, sizeof(*net));
    net->family = addr.ss_family;
    net->prefix = prefix;
    for (unsigned bit = 0; bit < prefix; bit++)
        net->addr[bit / 8] |= (uint8_t)(bytes[bit / 8] & (0x80 >> (bit % 8)));
    return THOU_OK;
bad:
    snprintf(errbuf, errlen,
             "trusted_proxies: '%s' is not an IP address or a CIDR block such as 10.0.0.0/8",
             shown);
    return THOU_EINVAL;
}

enum thou_status thou_proxies_parse(const char *text, struct thou_proxies *out, char *errbuf,
                                    size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!*text)
        return THOU_OK;
    for (const char *p = text;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *start = p;
        while (len && isspace((unsigned char)*start))
            start++, len--;
        while (len && isspace((unsigned char)start[len - 1]))
            len--;
        if (len == 0) {
            snprintf(errbuf, errlen, "trusted_proxies: an empty entry");
            goto fail;
        }
        if (out->n == THOU_PROXY_MAX_NETS) {
            snprintf(errbuf, errlen, "trusted_proxies: more than %d entries", THOU_PROXY_MAX_NETS);
            goto fail;
        }
        if (parse_net(start, len, &out->nets[out->n], errbuf, errlen))
            goto fail;
        out->n++;
        if (!end)
            return THOU_OK;
        p = end + 1;
    }
fail:
    memset(out, 0, sizeof(*out));
    return THOU_EINVAL;
}

/* Split value at commas outside double quotes into at most MAX_HOPS
 * entries, the rightmost kept when there are more. */
static size_t split_elements(const char *value, const char *starts[MAX_HOPS], size_t lens[MAX_HOPS])
{
    size_t n = 0;
    bool quoted = false;
    const char *start = value;
    for (const char *p = value;; p++) {
        if (*p == '"')
            quoted = !quoted;
        if (*p == '\0' || (*p == ',' && !quoted)) {
            if (n == MAX_HOPS) {
                memmove(starts, starts + 1, (MAX_HOPS - 1) * sizeof(*starts));
                memmove(lens, lens + 1, (MAX_HOPS - 1) * sizeof(*lens));
                n--;
            }
            starts[n] = start;
            lens[n] = (size_t)(p - start);
            n++;
            if (*p == '\0')
                return n;
            start = p + 1;
        }
    }
}

/* The address in one Forwarded element's "for=" parameter. */
static bool forwarded_for(const char *element, size_t len, struct sockaddr_storage *out)
{
    const char *end = element + len;
    const char *p = element;
    while (p < end) {
        const char *param_end = p;
        bool quoted = false;
        while (param_end < end && (quoted || *param_end != ';')) {
            if (*param_end == '"')
                quoted = !quoted;
            param_end++;
        }
        const char *name = p;
        while (name < param_end && (*name == ' ' || *name == '\t'))
            name++;
        if (param_end - name > 4 && strncasecmp(name, "for=", 4) == 0) {
            const char *v = name + 4;
            size_t vlen = (size_t)(param_end - v);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
                if (memchr(v, '\\', vlen))
                    return false; /* escapes: no address needs one */
            }
            return parse_address(v, vlen, out);
        }
        p = param_end < end ? param_end + 1 : end;
    }
    return false;
}

void thou_proxies_client(const struct thou_proxies *proxies, const struct sockaddr *peer,
                         const char *forwarded, const char *x_forwarded_for,
                         struct sockaddr_storage *client)
{
    normalize(peer, client);
    if (!trusted(proxies, client))
        return;
    const char *value = forwarded ? forwarded : x_forwarded_for;
    if (!value)
        return;
    const char *starts[MAX_HOPS];
    size_t lens[MAX_HOPS];
    size_t n = split_elements(value, starts, lens);
    for (size_t i = n; i-- > 0;) {
        struct sockaddr_storage hop;
        bool valid = forwarded ? forwarded_for(starts[i], lens[i], &hop)
                               : parse_address(starts[i], lens[i], &hop);
        if (!valid)
            return; /* the last trusted hop is all that can be believed */
        *client = hop;
        if (!trusted(proxies, &hop))
            return;
    }
}

void thou_address_key(const struct sockaddr *addr, char *out, size_t len)
{
    struct sockaddr_storage normal;
    normalize(addr, &normal);
    char text[INET6_ADDRSTRLEN];
    if (normal.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&normal)->sin_addr, text, sizeof(text));
        snprintf(out, len, "%s", text);
        return;
    }
    struct in6_addr prefix;
    memset(&prefix, 0, sizeof(prefix));
    memcpy(prefix.s6_addr, ((struct sockaddr_in6 *)&normal)->sin6_addr.s6_addr, 8);
    inet_ntop(AF_INET6, &prefix, text, sizeof(text));
    snprintf(out, len, "%s/64", text);
}
