#include "thou/studies.h"
#include "thou/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The first line of a key file: says what the file is to whoever finds it,
 * and lets the export refuse any other file with a clear message. */
#define KEY_FILE_HEADER "thou study secret key v1"

bool thou_studies_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > THOU_STUDY_NAME_MAX || name[0] == '-' || name[0] == '_')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

void thou_studies_fingerprint(const uint8_t public_key[THOU_STUDY_KEY_BYTES],
                              char out[THOU_STUDY_FINGERPRINT_LEN + 1])
{
    uint8_t hash[16];
    crypto_generichash(hash, sizeof(hash), public_key, THOU_STUDY_KEY_BYTES, NULL, 0);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof(hash); i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = ' ';
        out[o++] = hex[hash[i] >> 4];
        out[o++] = hex[hash[i] & 15];
    }
    out[o] = '\0';
}

size_t thou_studies_condition(const uint8_t seed[THOU_STUDY_SEED_BYTES], size_t n, int64_t index)
{
    if (n <= 1)
        return 0;
    int64_t block = index / (int64_t)n;
    size_t position = (size_t)(index % (int64_t)n);
    /* The block's random bytes: BLAKE2b keyed with the seed over the block
     * number, enough for a Fisher-Yates shuffle of up to 8 conditions. */
    uint8_t block_le[8];
    for (int i = 0; i < 8; i++)
        block_le[i] = (uint8_t)((uint64_t)block >> (8 * i));
    uint8_t random[THOU_STUDY_MAX_CONDITIONS * 4];
    crypto_generichash(random, sizeof(random), block_le, sizeof(block_le), seed,
                       THOU_STUDY_SEED_BYTES);
    size_t order[THOU_STUDY_MAX_CONDITIONS];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        uint32_t r = (uint32_t)random[4 * i] | (uint32_t)random[4 * i + 1] << 8 |
                     (uint32_t)random[4 * i + 2] << 16 | (uint32_t)random[4 * i + 3] << 24;
        /* The modulo bias of 32 random bits over at most 8 choices is below 2^-29. */
        size_t j = r % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return order[position];
}

enum thou_status thou_studies_keygen(const char *path, uint8_t pk[THOU_STUDY_KEY_BYTES],
                                     char *errbuf, size_t errlen)
{
    uint8_t sk[THOU_STUDY_KEY_BYTES];
    char b64[sodium_base64_ENCODED_LEN(THOU_STUDY_KEY_BYTES,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    enum thou_status rc = THOU_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot create '%s': %s%s", path, strerror(errno),
                 errno == EEXIST ? " (a key file is never overwritten)" : "");
        return errno == EEXIST ? THOU_EEXIST : THOU_EIO;
    }
    crypto_box_keypair(pk, sk);
    sodium_bin2base64(b64, sizeof(b64), sk, sizeof(sk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char text[128];
    int len = snprintf(text, sizeof(text), "%s\n%s\n", KEY_FILE_HEADER, b64);
    if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
        snprintf(errbuf, errlen, "cannot write '%s': %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = THOU_OK;
out:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(b64, sizeof(b64));
    sodium_memzero(text, sizeof(text));
    close(fd);
    return rc;
}

enum thou_status thou_studies_key_read(const char *path, uint8_t sk[THOU_STUDY_KEY_BYTES],
                                       uint8_t pk[THOU_STUDY_KEY_BYTES], char *errbuf,
                                       size_t errlen)
{
    char text[256] = {0};
    enum thou_status rc = THOU_EINVAL;
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(errbuf, errlen, "cannot read key file '%s': %s", path, strerror(errno));
        return THOU_EIO;
    }
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    size_t header_len = strlen(KEY_FILE_HEADER);
    if (more || len < header_len + 1 || memcmp(text, KEY_FILE_HEADER "\n", header_len + 1) != 0) {
        snprintf(errbuf, errlen,
                 "'%s' is not a study key file (it should begin with the line '%s', as "
                 "'thou study keygen' writes it)",
                 path, KEY_FILE_HEADER);
        goto out;
    }
    const char *b64 = text + header_len + 1;
    size_t b64_len = strcspn(b64, "\n");
    size_t n = 0;
    if (b64_len != THOU_STUDY_KEY_B64_LEN ||
        thou_crypto_b64_decode(b64, b64_len, sk, THOU_STUDY_KEY_BYTES, &n) ||
        n != THOU_STUDY_KEY_BYTES || strspn(b64 + b64_len, "\n") != strlen(b64 + b64_len)) {
        snprintf(errbuf, errlen, "key file '%s' is damaged: its second line is not a 32-byte key",
                 path);
        goto out;
    }
    crypto_scalarmult_base(pk, sk);
    rc = THOU_OK;
out:
    sodium_memzero(text, sizeof(text));
    return rc;
}

enum thou_status thou_studies_parse_conditions(const char *list,
                                               char conditions[][THOU_STUDY_NAME_MAX + 1],
                                               size_t *n, char *errbuf, size_t errlen)
{
    *n = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > THOU_STUDY_NAME_MAX) {
            snprintf(errbuf, errlen, "--conditions: '%s' is not a list of question set ids", list);
            return THOU_EINVAL;
        }
        if (*n == THOU_STUDY_MAX_CONDITIONS) {
            snprintf(errbuf, errlen, "--conditions: at most %d conditions",
                     THOU_STUDY_MAX_CONDITIONS);
            return THOU_EINVAL;
        }
        snprintf(conditions[*n], THOU_STUDY_NAME_MAX + 1, "%.*s", (int)len, p);
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(conditions[i], conditions[*n]) == 0) {
                snprintf(errbuf, errlen, "--conditions: '%s' is named twice", conditions[i]);
                return THOU_EINVAL;
            }
        }
        (*n)++;
        if (p[len] == '\0')
            return THOU_OK;
        p += len + 1;
    }
}
