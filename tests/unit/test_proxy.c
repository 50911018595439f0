#include "thou/proxy.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(1234);
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return addr;
}

static const char *key_of(const struct sockaddr_storage *addr)
{
    static char key[THOU_ADDRESS_KEY_LEN];
    thou_address_key((const struct sockaddr *)addr, key, sizeof(key));
    return key;
}

static struct thou_proxies parse_ok(const char *text)
{
    struct thou_proxies proxies;
    char err[256];
    ck_assert_msg(thou_proxies_parse(text, &proxies, err, sizeof(err)) == THOU_OK, "'%s': %s", text,
                  err);
    return proxies;
}

START_TEST(test_parse)
{
    struct thou_proxies p = parse_ok("");
    ck_assert_uint_eq(p.n, 0);
    p = parse_ok("10.0.0.1, 192.168.0.0/16 ,::1,fd00::/8");
    ck_assert_uint_eq(p.n, 4);
    ck_assert_uint_eq(p.nets[0].prefix, 32);
    ck_assert_uint_eq(p.nets[1].prefix, 16);
    ck_assert_uint_eq(p.nets[2].prefix, 128);
    ck_assert_uint_eq(p.nets[3].prefix, 8);
    /* Host bits of a block are dropped: 10.1.2.3/8 is 10.0.0.0/8. */
    p = parse_ok("10.1.2.3/8");
    ck_assert_uint_eq(p.nets[0].addr[1], 0);
}
END_TEST

static const struct {
    const char *text;
    const char *message;
} bad_lists[] = {
    {"10.0.0.1,", "an empty entry"},
    {",10.0.0.1", "an empty entry"},
    {"10.0.0", "'10.0.0' is not an IP address"},
    {"10.0.0.0/33", "'10.0.0.0/33'"},
    {"::/129", "'::/129'"},
    {"10.0.0.0/", "'10.0.0.0/'"},
    {"10.0.0.0/-1", "'10.0.0.0/-1'"},
    {"example.com", "'example.com'"},
    {"10.0.0.1 10.0.0.2", "'10.0.0.1 10.0.0.2'"},
};

START_TEST(test_parse_refuses)
{
    struct thou_proxies p;
    char err[256] = "";
    ck_assert_int_eq(thou_proxies_parse(bad_lists[_i].text, &p, err, sizeof(err)), THOU_EINVAL);
    ck_assert_msg(strstr(err, bad_lists[_i].message) != NULL, "'%s': '%s'", bad_lists[_i].text,
                  err);
    ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_trust)
{
    struct thou_proxies p = parse_ok("10.0.0.0/8, 192.168.1.1, 2001:db8::/32, 172.16.0.0/12");
    static const struct {
        const char *addr;
        bool trusted;
    } cases[] = {
        {"10.255.0.1", true},      {"11.0.0.1", false},     {"192.168.1.1", true},
        {"192.168.1.2", false},    {"2001:db8:1::5", true}, {"2001:db9::1", false},
        {"::ffff:10.1.1.1", true}, /* IPv4-mapped counts as IPv4 */
        {"172.31.255.255", true},  {"172.32.0.0", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage a = addr_of(cases[i].addr);
        ck_assert_msg(thou_proxies_trust(&p, (struct sockaddr *)&a) == cases[i].trusted, "%s",
                      cases[i].addr);
    }
}
END_TEST

static const struct client_case {
    const char *peer;
    const char *forwarded;
    const char *xff;
    const char *client;
} client_cases[] = {
    /* An untrusted peer's headers count for nothing. */
    {"203.0.113.9", NULL, "198.51.100.1", "203.0.113.9"},
    {"203.0.113.9", "for=198.51.100.1", NULL, "203.0.113.9"},
    /* A trusted proxy with nothing forwarded is the client. */
    {"10.0.0.1", NULL, NULL, "10.0.0.1"},
    /* The rightmost address that is not a trusted proxy. */
    {"10.0.0.1", NULL, "198.51.100.1", "198.51.100.1"},
    {"10.0.0.1", NULL, "6.6.6.6, 198.51.100.1", "198.51.100.1"},  /* the left is the client's own */
    {"10.0.0.1", NULL, "198.51.100.1, 10.0.0.2", "198.51.100.1"}, /* two proxies */
    {"10.0.0.1", NULL, "10.0.0.3, 10.0.0.2", "10.0.0.3"},         /* all trusted: leftmost */
    {"10.0.0.1", NULL, " 198.51.100.1:4711 ", "198.51.100.1"},
    {"10.0.0.1", NULL, "[2001:db8::1]:80", "2001:db8::1"},
    {"10.0.0.1", NULL, "2001:db8::1", "2001:db8::1"},
    {"10.0.0.1", NULL, "::ffff:198.51.100.7", "198.51.100.7"},
    /* What a proxy cannot have written stops the walk at the last trusted hop. */
    {"10.0.0.1", NULL, "198.51.100.1, garbage", "10.0.0.1"},
    {"10.0.0.1", NULL, "garbage, 10.0.0.2", "10.0.0.2"},
    {"10.0.0.1", NULL, "", "10.0.0.1"},
    {"10.0.0.1", NULL, "198.51.100.1,", "10.0.0.1"},
    /* Forwarded (RFC 7239) wins over X-Forwarded-For when both come. */
    {"10.0.0.1", "for=198.51.100.2", "198.51.100.1", "198.51.100.2"},
    {"10.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", NULL, "192.0.2.60"},
    {"10.0.0.1", "for=\"[2001:db8:cafe::17]:4711\"", NULL, "2001:db8:cafe::17"},
    {"10.0.0.1", "For=198.51.100.1, for=10.0.0.2", NULL, "198.51.100.1"},
    {"10.0.0.1", "proto=https; for=198.51.100.1", NULL, "198.51.100.1"},
    {"10.0.0.1", "for=unknown", NULL, "10.0.0.1"},
    {"10.0.0.1", "for=_hidden", NULL, "10.0.0.1"},
    {"10.0.0.1", "for=\"198.51.100.1\\\"\"", NULL, "10.0.0.1"},
    {"10.0.0.1", "by=10.0.0.9", NULL, "10.0.0.1"},
};

START_TEST(test_client)
{
    struct thou_proxies p = parse_ok("10.0.0.0/8");
    const struct client_case *c = &client_cases[_i];
    struct sockaddr_storage peer = addr_of(c->peer), want = addr_of(c->client), got;
    thou_proxies_client(&p, (struct sockaddr *)&peer, c->forwarded, c->xff, &got);
    char got_key[THOU_ADDRESS_KEY_LEN];
    snprintf(got_key, sizeof(got_key), "%s", key_of(&got));
    ck_assert_msg(strcmp(got_key, key_of(&want)) == 0, "peer %s fwd '%s' xff '%s': got %s", c->peer,
                  c->forwarded ? c->forwarded : "", c->xff ? c->xff : "", got_key);
}
END_TEST

/* Hundreds of hops: only the rightmost are looked at, and nothing breaks. */
START_TEST(test_client_many_hops)
{
    struct thou_proxies p = parse_ok("10.0.0.0/8");
    static char xff[20000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(xff + len, sizeof(xff) - len, "%s10.1.%d.%d", i ? "," : "", i / 250,
                                i % 250);
    len += (size_t)snprintf(xff + len, sizeof(xff) - len, ",198.51.100.4");
    struct sockaddr_storage peer = addr_of("10.0.0.1"), got;
    thou_proxies_client(&p, (struct sockaddr *)&peer, NULL, xff, &got);
    ck_assert_str_eq(key_of(&got), "198.51.100.4");
}
END_TEST

START_TEST(test_address_key)
{
    struct sockaddr_storage a = addr_of("198.51.100.7");
    ck_assert_str_eq(key_of(&a), "198.51.100.7");
    a = addr_of("::ffff:198.51.100.7");
    ck_assert_str_eq(key_of(&a), "198.51.100.7");
    /* One /64, whatever the interface part. */
    a = addr_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    ck_assert_str_eq(key_of(&a), "2001:db8:1:2::/64");
    a = addr_of("2001:db8:1:2::1");
    ck_assert_str_eq(key_of(&a), "2001:db8:1:2::/64");
    a = addr_of("2001:db8:1:3::1");
    ck_assert_str_eq(key_of(&a), "2001:db8:1:3::/64");
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *suite = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_add_test(tc, test_parse);
    tcase_add_loop_test(tc, test_parse_refuses, 0, sizeof(bad_lists) / sizeof(bad_lists[0]));
    tcase_add_test(tc, test_trust);
    tcase_add_loop_test(tc, test_client, 0, sizeof(client_cases) / sizeof(client_cases[0]));
    tcase_add_test(tc, test_client_many_hops);
    tcase_add_test(tc, test_address_key);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(proxy_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
