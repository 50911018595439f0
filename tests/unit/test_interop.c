/*
 * Interoperability of the browser crypto module (static/js/crypto.js) with
 * libsodium in C: the vectors in tests/js/vectors.json were made by the
 * browser module (and are re-checked against it by node --test); here C code,
 * written from docs/crypto.md and not from the module, derives every key,
 * MAC, hash and code again from the fixed seeds and opens what the browser
 * sealed. The research export relies on exactly this.
 */
#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static json_t *vectors;

static const char *text(const char *section, const char *name)
{
    const json_t *value = json_object_get(json_object_get(vectors, section), name);
    ck_assert_msg(json_is_string(value), "vectors.json lacks %s.%s", section, name);
    return json_string_value(value);
}

/* Hex field into out; returns its length. */
static size_t hex(const char *section, const char *name, unsigned char *out, size_t max)
{
    size_t len = 0;
    const char *h = text(section, name);
    ck_assert_int_eq(sodium_hex2bin(out, max, h, strlen(h), NULL, &len, NULL), 0);
    return len;
}

static size_t b64(const char *section, const char *name, unsigned char *out, size_t max)
{
    size_t len = 0;
    const char *b = text(section, name);
    ck_assert_int_eq(sodium_base642bin(out, max, b, strlen(b), NULL, &len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    return len;
}

static void setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    json_error_t err;
    vectors = json_load_file(THOU_SOURCE_DIR "/tests/js/vectors.json", 0, &err);
    ck_assert_msg(vectors != NULL, "cannot read vectors: %s", err.text);
}

static void teardown(void)
{
    json_decref(vectors);
}

/* "thou2" 0 part 0 part ... as the browser module builds labels. */
static size_t join_parts(unsigned char *out, size_t max, const char *const *parts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t part = strlen(parts[i]);
        ck_assert_uint_le(len + part + 1, max);
        memcpy(out + len, parts[i], part);
        len += part;
        if (i + 1 < n)
            out[len++] = 0;
    }
    return len;
}

START_TEST(room_secret_derivations_match)
{
    unsigned char secret[32], join[32], mac_key[32], verifier[32], expected[32];
    hex("room", "room_secret", secret, sizeof(secret));
    crypto_kdf_derive_from_key(join, sizeof(join), 1, "thouroom", secret);
    crypto_kdf_derive_from_key(mac_key, sizeof(mac_key), 2, "thouroom", secret);
    hex("room", "join_secret", expected, sizeof(expected));
    ck_assert_mem_eq(join, expected, 32);
    hex("room", "mac_key", expected, sizeof(expected));
    ck_assert_mem_eq(mac_key, expected, 32);
    /* The server admits whoever sends a join secret hashing to the verifier. */
    crypto_generichash(verifier, sizeof(verifier), join, sizeof(join), NULL, 0);
    b64("room", "join_verifier_b64url", expected, sizeof(expected));
    ck_assert_mem_eq(verifier, expected, 32);
}
END_TEST

START_TEST(public_key_mac_verifies)
{
    unsigned char mac_key[32], pk[32], mac[32], input[256];
    hex("room", "mac_key", mac_key, sizeof(mac_key));
    hex("keys", "public_key_a", pk, sizeof(pk));
    hex("keys", "key_mac_a", mac, sizeof(mac));
    const char *parts[] = {"thou2", "key", text("keys", "room_id"), "A", ""};
    size_t len = join_parts(input, sizeof(input) - 32, parts, 5);
    memcpy(input + len, pk, 32);
    len += 32;
    ck_assert_int_eq(crypto_auth_verify(mac, input, len, mac_key), 0);
    pk[0] ^= 1; /* a swapped key fails */
    memcpy(input + len - 32, pk, 32);
    ck_assert_int_ne(crypto_auth_verify(mac, input, len, mac_key), 0);
}
END_TEST

START_TEST(session_keys_match)
{
    unsigned char seed[32], pk_a[32], sk_a[32], pk_b[32], sk_b[32];
    unsigned char rx[32], tx[32], expected[32], message_key[32];
    hex("keys", "seed_a", seed, sizeof(seed));
    crypto_kx_seed_keypair(pk_a, sk_a, seed);
    hex("keys", "seed_b", seed, sizeof(seed));
    crypto_kx_seed_keypair(pk_b, sk_b, seed);
    hex("keys", "public_key_a", expected, sizeof(expected));
    ck_assert_mem_eq(pk_a, expected, 32);
    ck_assert_int_eq(crypto_kx_client_session_keys(rx, tx, pk_a, sk_a, pk_b), 0);
    hex("keys", "kx_a_tx", expected, sizeof(expected));
    ck_assert_mem_eq(tx, expected, 32);
    crypto_kdf_derive_from_key(message_key, sizeof(message_key), 1, "thousess", tx);
    hex("keys", "a_tx", expected, sizeof(expected));
    ck_assert_mem_eq(message_key, expected, 32);
    /* B, the kx server, receives with what A sends with. */
    ck_assert_int_eq(crypto_kx_server_session_keys(rx, tx, pk_b, sk_b, pk_a), 0);
    crypto_kdf_derive_from_key(expected, sizeof(expected), 1, "thousess", rx);
    ck_assert_mem_eq(message_key, expected, 32);
}
END_TEST

/*
 * The question set's hash, made here independently of the browser module:
 * jansson's compact, key-sorted output is the canonical JSON of docs/crypto.md
 * for a set (ASCII keys, integers, the same string escapes).
 */
static void set_hash(unsigned char out[32])
{
    json_error_t err;
    json_t *set = json_loads(text("set", "json"), 0, &err);
    ck_assert_msg(set != NULL, "set.json: %s", err.text);
    char *canonical = json_dumps(set, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(canonical, text("set", "canonical_json"));
    char version[32];
    snprintf(version, sizeof(version), "%lld",
             (long long)json_integer_value(json_object_get(set, "version")));
    const char *parts[] = {"thou2", "set", json_string_value(json_object_get(set, "id")), version,
                           canonical};
    unsigned char input[4096];
    size_t len = join_parts(input, sizeof(input), parts, 5);
    crypto_generichash(out, 32, input, len, NULL, 0);
    free(canonical);
    json_decref(set);
}

START_TEST(question_set_hash_matches)
{
    unsigned char hash[32], expected[32];
    set_hash(hash);
    hex("set", "hash", expected, sizeof(expected));
    ck_assert_mem_eq(hash, expected, 32);
}
END_TEST

/* Both key pairs from their seeds, and each side's four derived keys. */
struct sides {
    unsigned char pk_a[32], sk_a[32], pk_b[32], sk_b[32];
    unsigned char a_tx[32], a_rx[32], a_ctx[32], a_crx[32];
    unsigned char b_tx[32], b_rx[32], b_ctx[32], b_crx[32];
};

static void derive_sides(struct sides *s)
{
    unsigned char seed[32], rx[32], tx[32];
    hex("keys", "seed_a", seed, sizeof(seed));
    crypto_kx_seed_keypair(s->pk_a, s->sk_a, seed);
    hex("keys", "seed_b", seed, sizeof(seed));
    crypto_kx_seed_keypair(s->pk_b, s->sk_b, seed);
    ck_assert_int_eq(crypto_kx_client_session_keys(rx, tx, s->pk_a, s->sk_a, s->pk_b), 0);
    crypto_kdf_derive_from_key(s->a_tx, 32, 1, "thousess", tx);
    crypto_kdf_derive_from_key(s->a_rx, 32, 1, "thousess", rx);
    crypto_kdf_derive_from_key(s->a_ctx, 32, 2, "thousess", tx);
    crypto_kdf_derive_from_key(s->a_crx, 32, 2, "thousess", rx);
    ck_assert_int_eq(crypto_kx_server_session_keys(rx, tx, s->pk_b, s->sk_b, s->pk_a), 0);
    crypto_kdf_derive_from_key(s->b_tx, 32, 1, "thousess", tx);
    crypto_kdf_derive_from_key(s->b_rx, 32, 1, "thousess", rx);
    crypto_kdf_derive_from_key(s->b_ctx, 32, 2, "thousess", tx);
    crypto_kdf_derive_from_key(s->b_crx, 32, 2, "thousess", rx);
}

START_TEST(receive_and_confirmation_keys_match)
{
    struct sides s;
    unsigned char expected[32];
    derive_sides(&s);
    const struct {
        const char *name;
        const unsigned char *key;
    } keys[] = {{"a_rx", s.a_rx},         {"a_confirm_tx", s.a_ctx}, {"a_confirm_rx", s.a_crx},
                {"b_tx", s.b_tx},         {"b_rx", s.b_rx},          {"b_confirm_tx", s.b_ctx},
                {"b_confirm_rx", s.b_crx}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        hex("keys", keys[i].name, expected, sizeof(expected));
        ck_assert_msg(memcmp(keys[i].key, expected, 32) == 0, "%s differs", keys[i].name);
    }
    ck_assert_mem_eq(s.a_tx, s.b_rx, 32);
    ck_assert_mem_eq(s.a_ctx, s.b_crx, 32);
}
END_TEST

/* "thou2" 0 "confirm" 0 room 0 sender 0 set_hash pkA pkB */
static size_t confirm_input(unsigned char *out, size_t max, const char *sender,
                            const struct sides *s)
{
    const char *parts[] = {"thou2", "confirm", text("keys", "room_id"), sender, ""};
    size_t len = join_parts(out, max - 96, parts, 5);
    set_hash(out + len);
    memcpy(out + len + 32, s->pk_a, 32);
    memcpy(out + len + 64, s->pk_b, 32);
    return len + 96;
}

START_TEST(confirmation_macs_verify)
{
    struct sides s;
    unsigned char input[512], mac[32], expected[512];
    derive_sides(&s);
    size_t len = confirm_input(input, sizeof(input), "A", &s);
    ck_assert_uint_eq(hex("keys", "confirm_input_a", expected, sizeof(expected)), len);
    ck_assert_mem_eq(input, expected, len);
    hex("keys", "confirm_mac_a", mac, sizeof(mac));
    ck_assert_int_eq(crypto_auth_verify(mac, input, len, s.b_crx), 0); /* B checks A's */
    ck_assert_int_ne(crypto_auth_verify(mac, input, len, s.a_crx), 0); /* not reflectable */
    len = confirm_input(input, sizeof(input), "B", &s);
    hex("keys", "confirm_mac_b", mac, sizeof(mac));
    ck_assert_int_eq(crypto_auth_verify(mac, input, len, s.a_crx), 0);
    input[len - 70] ^= 1; /* inside the set hash: other wording fails */
    ck_assert_int_ne(crypto_auth_verify(mac, input, len, s.a_crx), 0);
}
END_TEST

START_TEST(fingerprint_matches)
{
    unsigned char pk[32], hash[16];
    hex("study", "public_key", pk, sizeof(pk));
    crypto_generichash(hash, sizeof(hash), pk, sizeof(pk), NULL, 0);
    char fp[64];
    size_t off = 0;
    for (int i = 0; i < 16; i++)
        off += (size_t)snprintf(fp + off, sizeof(fp) - off, "%s%02x", i && i % 2 == 0 ? " " : "",
                                hash[i]);
    ck_assert_str_eq(fp, text("study", "fingerprint"));
}
END_TEST

START_TEST(workshop_commitment_and_short_code_match)
{
    struct sides s;
    unsigned char input[256], hash[32], expected[32];
    derive_sides(&s);
    const char *commit[] = {"thou2", "commit", text("workshop", "room_id"), ""};
    size_t len = join_parts(input, sizeof(input) - 32, commit, 4);
    memcpy(input + len, s.pk_a, 32);
    crypto_generichash(hash, sizeof(hash), input, len + 32, NULL, 0);
    hex("workshop", "commitment", expected, sizeof(expected));
    ck_assert_mem_eq(hash, expected, 32);
    const char *sas[] = {"thou2", "sas", text("workshop", "room_id"), ""};
    len = join_parts(input, sizeof(input) - 64, sas, 4);
    memcpy(input + len, s.pk_a, 32);
    memcpy(input + len + 32, s.pk_b, 32);
    crypto_generichash(hash, sizeof(hash), input, len + 64, NULL, 0);
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | hash[i];
    char code[16];
    snprintf(code, sizeof(code), "%06llu", v % 1000000ULL);
    ck_assert_str_eq(code, text("workshop", "sas_code"));
}
END_TEST

START_TEST(c_opens_what_the_browser_sealed)
{
    unsigned char key[32], sealed[2048], ad[512], expected_ad[512], padded[2048];
    hex("answer", "key", key, sizeof(key));
    size_t sealed_len = b64("answer", "sealed_b64url", sealed, sizeof(sealed));
    char counter[32];
    snprintf(counter, sizeof(counter), "%lld",
             (long long)json_integer_value(
                 json_object_get(json_object_get(vectors, "answer"), "counter")));
    const char *parts[] = {"thou2",
                           text("answer", "kind"),
                           text("answer", "room_id"),
                           text("answer", "sender"),
                           counter,
                           text("answer", "question"),
                           ""};
    size_t ad_len = join_parts(ad, sizeof(ad) - 32, parts, 7);
    /* The question set's hash, computed here from the set itself, ends the AD. */
    set_hash(ad + ad_len);
    ad_len += 32;
    size_t expected_len = hex("answer", "ad", expected_ad, sizeof(expected_ad));
    ck_assert_uint_eq(ad_len, expected_len);
    ck_assert_mem_eq(ad, expected_ad, ad_len);

    const size_t nonce_len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    unsigned long long padded_len = 0;
    ck_assert_int_eq(
        crypto_aead_xchacha20poly1305_ietf_decrypt(padded, &padded_len, NULL, sealed + nonce_len,
                                                   sealed_len - nonce_len, ad, ad_len, sealed, key),
        0);
    size_t plain_len = 0;
    ck_assert_int_eq(sodium_unpad(&plain_len, padded, padded_len, 256), 0);
    const char *plaintext = text("answer", "plaintext");
    ck_assert_uint_eq(plain_len, strlen(plaintext));
    ck_assert_mem_eq(padded, plaintext, plain_len);

    /* The AD binds the question set: the same ciphertext under other wording fails. */
    ad[ad_len - 1] ^= 1;
    ck_assert_int_ne(
        crypto_aead_xchacha20poly1305_ietf_decrypt(padded, &padded_len, NULL, sealed + nonce_len,
                                                   sealed_len - nonce_len, ad, ad_len, sealed, key),
        0);
}
END_TEST

START_TEST(c_opens_a_research_copy)
{
    unsigned char pk[32], sk[32], sealed[2048], padded[2048];
    hex("study", "public_key", pk, sizeof(pk));
    hex("study", "secret_key", sk, sizeof(sk));
    size_t sealed_len = b64("study", "sealed_b64url", sealed, sizeof(sealed));
    ck_assert_uint_gt(sealed_len, crypto_box_SEALBYTES);
    ck_assert_int_eq(crypto_box_seal_open(padded, sealed, sealed_len, pk, sk), 0);
    size_t plain_len = 0;
    ck_assert_int_eq(sodium_unpad(&plain_len, padded, sealed_len - crypto_box_SEALBYTES, 256), 0);
    const char *plaintext = text("study", "plaintext");
    ck_assert_uint_eq(plain_len, strlen(plaintext));
    ck_assert_mem_eq(padded, plaintext, plain_len);
}
END_TEST

START_TEST(safety_code_matches)
{
    unsigned char input[256], hash[32];
    size_t len = hex("keys", "safety_input", input, sizeof(input));
    crypto_generichash(hash, sizeof(hash), input, len, NULL, 0);
    char code[64];
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        unsigned long long group = 0;
        for (int j = 0; j < 5; j++)
            group = group << 8 | hash[5 * i + j];
        off += (size_t)snprintf(code + off, sizeof(code) - off, "%s%05llu", i ? " " : "",
                                group % 100000);
    }
    ck_assert_str_eq(code, text("keys", "safety_code"));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("interop");
    TCase *tc = tcase_create("vectors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, room_secret_derivations_match);
    tcase_add_test(tc, public_key_mac_verifies);
    tcase_add_test(tc, session_keys_match);
    tcase_add_test(tc, c_opens_what_the_browser_sealed);
    tcase_add_test(tc, c_opens_a_research_copy);
    tcase_add_test(tc, safety_code_matches);
    tcase_add_test(tc, question_set_hash_matches);
    tcase_add_test(tc, receive_and_confirmation_keys_match);
    tcase_add_test(tc, confirmation_macs_verify);
    tcase_add_test(tc, fingerprint_matches);
    tcase_add_test(tc, workshop_commitment_and_short_code_match);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
