/* ca: the fleet CA directory, issuing certificates and CRLs. */
#include "ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki-internal.h"
#include "util.h"

#define CA_CERT_FILE "ca.crt"
#define CA_KEY_FILE  "ca.key"
#define CRL_FILE     "crl.pem"
#define INDEX_FILE   "index.txt"
#define INDEX_MAX    (16 * 1024 * 1024)
#define PEM_FILE_MAX (1024 * 1024)
#define SAN_MAX      32

struct pki_ca {
    int dirfd; /* locked with flock(LOCK_EX) while open */
    X509 *cert;
    EVP_PKEY *key;
    pki_ca_entry *entries;
    size_t n_entries;
    uint64_t crl_number;
};

/* --- files ------------------------------------------------------------- */

static int fsync_dir(int dirfd)
{
    return fsync(dirfd) < 0 ? negative_errno() : 0;
}

/* Writes data to a fresh temporary file in dirfd, fsynced, with exactly
 * `mode`. Returns its name in tmp (a buffer of at least 32 bytes). */
static int write_temp(int dirfd, const void *data, size_t len, mode_t mode, char *tmp,
                      size_t tmp_size)
{
    uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    int n = snprintf(tmp, tmp_size, ".tmp-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                     rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    RB_ASSERT(n > 0 && (size_t)n < tmp_size);
    /* 0600 until fchmod: a key is never readable by others, even briefly. */
    _cleanup_close_ int fd =
        openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return negative_errno();
    }
    int r = 0;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            r = negative_errno();
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        r = negative_errno();
        goto fail;
    }
    return 0;
fail:
    (void)unlinkat(dirfd, tmp, 0);
    return r;
}

/* Puts a new file in place; -EEXIST, and nothing changed, if `name` exists.
 * link(2) never replaces its target, so this holds even against a race. */
static int write_new_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    char tmp[32];
    int r = write_temp(dirfd, data, len, mode, tmp, sizeof(tmp));
    if (r < 0) {
        return r;
    }
    if (linkat(dirfd, tmp, dirfd, name, 0) < 0) {
        r = negative_errno();
    }
    (void)unlinkat(dirfd, tmp, 0);
    if (r < 0) {
        return r;
    }
    return fsync_dir(dirfd);
}

/* Replaces `name` atomically: readers see the old or the new file whole. */
static int write_replace_file(int dirfd, const char *name, const void *data, size_t len,
                              mode_t mode)
{
    char tmp[32];
    int r = write_temp(dirfd, data, len, mode, tmp, sizeof(tmp));
    if (r < 0) {
        return r;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        r = negative_errno();
        (void)unlinkat(dirfd, tmp, 0);
        return r;
    }
    return fsync_dir(dirfd);
}

static int read_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len,
                   pki_reason *reason)
{
    return pki_read_file_at(dirfd, name, max, ret, ret_len, reason);
}

static bool exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* PEM of an object into a malloc'd buffer. */
static int bio_take(BIO *bio, char **ret, size_t *ret_len)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0) {
        return -ENOMEM;
    }
    char *copy = malloc((size_t)n + 1);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, p, (size_t)n);
    copy[n] = '\0';
    *ret = copy;
    *ret_len = (size_t)n;
    return 0;
}

static int pem_cert(X509 *x, char **ret, size_t *ret_len)
{
    _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_X509(bio, x)) {
        ERR_clear_error();
        return -ENOMEM;
    }
    return bio_take(bio, ret, ret_len);
}

/* PKCS#8, unencrypted: both OpenSSL and mbedTLS (nng) read it. */
static int pem_key(EVP_PKEY *key, char **ret, size_t *ret_len)
{
    _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        ERR_clear_error();
        return -ENOMEM;
    }
    return bio_take(bio, ret, ret_len);
}

static void cleanse_free(char *p, size_t len)
{
    if (p) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

/* --- certificate building ---------------------------------------------- */

static int key_generate(EVP_PKEY **ret)
{
    /* P-256: what mbedTLS 2.28 in nng handles best, and enough. */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) {
        ERR_clear_error();
        return -EIO;
    }
    *ret = key;
    return 0;
}

/* RFC 5280 §4.1.2.2: positive, at most 20 octets. 128 random bits make
 * collisions (and serial-guessing attacks on the CA) out of reach. */
static int serial_random(BIGNUM **ret)
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    b[0] |= 0x01; /* never zero; still 127+ bits of randomness */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    if (!bn) {
        return -ENOMEM;
    }
    *ret = bn;
    return 0;
}

static int set_time(ASN1_TIME **t, time_t when)
{
    /* ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as
     * RFC 5280 §4.1.2.5 requires. */
    ASN1_TIME *n = ASN1_TIME_set(*t, when);
    if (!n) {
        return -EINVAL;
    }
    *t = n;
    return 0;
}

static int time_from_asn1(const ASN1_TIME *t, time_t *ret)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        return -EBADMSG;
    }
    *ret = timegm(&tm);
    return 0;
}

static int add_ext_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext || !X509_add_ext(x, ext, -1)) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

static int subject_build(const char *ou, const char *cn, X509_NAME **ret)
{
    X509_NAME *n = X509_NAME_new();
    if (!n ||
        !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                    (const unsigned char *)"rackboot", -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, MBSTRING_UTF8,
                                    (const unsigned char *)ou, -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0)) {
        X509_NAME_free(n);
        ERR_clear_error();
        return -ENOMEM;
    }
    *ret = n;
    return 0;
}

/* The skeleton every certificate shares: v3, random serial, dates, subject,
 * key. Returns the serial in hex too. */
static int cert_skeleton(const char *ou, const char *cn, EVP_PKEY *key, time_t not_before,
                         time_t not_after, X509 **ret, char *ret_serial, size_t serial_size)
{
    _cleanup_(X509_freep) X509 *x = X509_new();
    _cleanup_(BN_freep) BIGNUM *serial = NULL;
    _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
    if (!x) {
        return -ENOMEM;
    }
    int r = serial_random(&serial);
    if (r < 0) {
        return r;
    }
    r = subject_build(ou, cn, &subject);
    if (r < 0) {
        return r;
    }
    _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(serial, NULL);
    _cleanup_(ASN1_TIME_freep) ASN1_TIME *nb = NULL;
    _cleanup_(ASN1_TIME_freep) ASN1_TIME *na = NULL;
    if (!ai || set_time(&nb, not_before) < 0 || set_time(&na, not_after) < 0 ||
        !X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, ai) ||
        !X509_set1_notBefore(x, nb) || !X509_set1_notAfter(x, na) ||
        !X509_set_subject_name(x, subject) || !X509_set_pubkey(x, key)) {
        ERR_clear_error();
        return -ENOMEM;
    }
    char *hex = BN_bn2hex(serial);
    if (!hex) {
        return -ENOMEM;
    }
    bool fits = strlen(hex) < serial_size;
    if (fits) {
        memcpy(ret_serial, hex, strlen(hex) + 1);
    }
    OPENSSL_free(hex);
    if (!fits) {
        return -EOVERFLOW;
    }
    *ret = TAKE_PTR(x);
    return 0;
}

static int cert_sign(X509 *x, EVP_PKEY *key)
{
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

static int san_add(X509 *x, const char *name, const char *const *sans, size_t n_sans,
                   pki_reason *reason)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int r = -ENOMEM;
    if (!gens) {
        return r;
    }
    for (size_t i = 0; i <= n_sans; i++) {
        const char *s = i == 0 ? name : sans[i - 1];
        uint8_t addr[16];
        int addr_len = inet_pton(AF_INET, s, addr) == 1    ? 4
                       : inet_pton(AF_INET6, s, addr) == 1 ? 16
                                                           : 0;
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_STRING *v = addr_len ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
        if (!gn || !v) {
            GENERAL_NAME_free(gn);
            ASN1_STRING_free(v);
            goto out;
        }
        if (!addr_len && !pki_dns_name_is_valid(s)) {
            GENERAL_NAME_free(gn);
            ASN1_STRING_free(v);
            r = pki_fail(reason, -EINVAL, "SAN %s is neither a DNS name nor an IP address", s);
            goto out;
        }
        if (!(addr_len ? ASN1_STRING_set(v, addr, addr_len) : ASN1_STRING_set(v, s, -1))) {
            GENERAL_NAME_free(gn);
            ASN1_STRING_free(v);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, addr_len ? GEN_IPADD : GEN_DNS, v);
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            goto out;
        }
    }
    r = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -ENOMEM;
out:
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return r;
}

/* --- index --------------------------------------------------------------- */

static int index_parse(pki_ca *ca, const char *text, pki_reason *reason)
{
    unsigned line_no = 0;
    bool have_crlnumber = false;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        line_no++;
        char line[256];
        if (len >= sizeof(line)) {
            return pki_fail(reason, -EBADMSG, "%s:%u: line too long", INDEX_FILE, line_no);
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (eol ? 1 : 0);
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }

        char kind[16], serial[64], role[16], name[128];
        int64_t not_after, revoked_at;
        uint64_t number;
        int consumed = 0;
        if (sscanf(line, "crlnumber %" SCNu64 "%n", &number, &consumed) == 1 &&
            (size_t)consumed == len && !have_crlnumber) {
            ca->crl_number = number;
            have_crlnumber = true;
            continue;
        }
        consumed = 0;
        if (sscanf(line, "%15s %63s %15s %127s %" SCNd64 " %" SCNd64 "%n", kind, serial, role, name,
                   &not_after, &revoked_at, &consumed) != 6 ||
            (size_t)consumed != len || !streq(kind, "cert")) {
            return pki_fail(reason, -EBADMSG, "%s:%u: unreadable line", INDEX_FILE, line_no);
        }
        pki_ca_entry e = { .not_after = (time_t)not_after, .revoked_at = (time_t)revoked_at };
        if (pki_role_from_string(role, &e.role) < 0 || !pki_name_is_valid(e.role, name) ||
            strlen(serial) >= sizeof(e.serial) ||
            strspn(serial, "0123456789ABCDEF") != strlen(serial)) {
            return pki_fail(reason, -EBADMSG, "%s:%u: bad role, name or serial", INDEX_FILE,
                            line_no);
        }
        memcpy(e.serial, serial, strlen(serial) + 1);
        memcpy(e.name, name, strlen(name) + 1);
        pki_ca_entry *grown = reallocarray(ca->entries, ca->n_entries + 1, sizeof(*grown));
        if (!grown) {
            return -ENOMEM;
        }
        ca->entries = grown;
        ca->entries[ca->n_entries++] = e;
    }
    if (!have_crlnumber) {
        return pki_fail(reason, -EBADMSG, "%s: no crlnumber line", INDEX_FILE);
    }
    return 0;
}

static int index_write(int dirfd, const pki_ca_entry *entries, size_t n, uint64_t crl_number,
                       pki_reason *reason)
{
    char *buf = NULL;
    size_t size = 0;
    _cleanup_fclose_ FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return -ENOMEM;
    }
    fprintf(f,
            "# rackboot-pki index v1, written by rackboot-pki; do not edit while it runs\n"
            "# cert <serial hex> <role> <name> <not-after unix> <revoked-at unix, 0 = not>\n"
            "crlnumber %" PRIu64 "\n",
            crl_number);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "cert %s %s %s %" PRId64 " %" PRId64 "\n", entries[i].serial,
                pki_role_to_string(entries[i].role), entries[i].name, (int64_t)entries[i].not_after,
                (int64_t)entries[i].revoked_at);
    }
    int r = fclose(f) == 0 ? 0 : -ENOMEM;
    f = NULL;
    if (r == 0) {
        r = write_replace_file(dirfd, INDEX_FILE, buf, size, 0600);
        if (r < 0) {
            pki_fail(reason, r, "%s: %s", INDEX_FILE, errstr(r));
        }
    }
    free(buf);
    return r;
}

/* --- CRL ------------------------------------------------------------------ */

static int crl_build(X509 *ca_cert, EVP_PKEY *ca_key, const pki_ca_entry *entries, size_t n,
                     uint64_t crl_number, unsigned days, char **ret_pem, size_t *ret_len)
{
    time_t now = time(NULL);
    _cleanup_(X509_CRL_freep) X509_CRL *crl = X509_CRL_new();
    _cleanup_(ASN1_TIME_freep) ASN1_TIME *last = NULL;
    _cleanup_(ASN1_TIME_freep) ASN1_TIME *next = NULL;
    _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *number = ASN1_INTEGER_new();
    if (!crl || !number || set_time(&last, now) < 0 ||
        set_time(&next, now + (time_t)days * 86400) < 0 ||
        !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next) ||
        !ASN1_INTEGER_set_uint64(number, crl_number)) {
        ERR_clear_error();
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (entries[i].revoked_at == 0) {
            continue;
        }
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *when = NULL;
        if (!BN_hex2bn(&bn, entries[i].serial) || set_time(&when, entries[i].revoked_at) < 0) {
            ERR_clear_error();
            return -EINVAL;
        }
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        X509_REVOKED *rv = X509_REVOKED_new();
        if (!serial || !rv || !X509_REVOKED_set_serialNumber(rv, serial) ||
            !X509_REVOKED_set_revocationDate(rv, when) || !X509_CRL_add0_revoked(crl, rv)) {
            X509_REVOKED_free(rv);
            ERR_clear_error();
            return -ENOMEM;
        }
    }
    /* Both extensions non-critical: mbedTLS 2.28 refuses a CRL with any
     * critical extension. RFC 5280 §5.2.1, §5.2.3 want AKI and a CRL number. */
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, NULL, NULL, crl, 0);
    _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *aki =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (!aki || !X509_CRL_add_ext(crl, aki, -1) ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 || !X509_CRL_sort(crl) ||
        X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0) {
        ERR_clear_error();
        return -EIO;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_X509_CRL(bio, crl)) {
        ERR_clear_error();
        return -ENOMEM;
    }
    return bio_take(bio, ret_pem, ret_len);
}

/* Writes the index with `crl_number` and then the CRL built from `entries`.
 * The index goes first: if the CRL write fails, `rackboot-pki crl` rebuilds
 * it from the index; the other way round a revocation could be lost. */
static int ca_commit(pki_ca *ca, pki_ca_entry *entries, size_t n, uint64_t crl_number,
                     unsigned days, pki_reason *reason)
{
    if (days == 0 || days > PKI_DAYS_MAX) {
        return pki_fail(reason, -EINVAL, "CRL validity must be 1..%d days", PKI_DAYS_MAX);
    }
    _cleanup_free_ char *pem = NULL;
    size_t pem_len;
    int r = crl_build(ca->cert, ca->key, entries, n, crl_number, days, &pem, &pem_len);
    if (r < 0) {
        return pki_fail(reason, r, "cannot build the CRL: %s", errstr(r));
    }
    r = index_write(ca->dirfd, entries, n, crl_number, reason);
    if (r < 0) {
        return r;
    }
    r = write_replace_file(ca->dirfd, CRL_FILE, pem, pem_len, 0644);
    if (r < 0) {
        return pki_fail(reason, r, "%s: %s", CRL_FILE, errstr(r));
    }
    return 0;
}

/* --- the CA ---------------------------------------------------------------- */

pki_ca *pki_ca_free(pki_ca *ca)
{
    if (ca) {
        if (ca->dirfd >= 0) {
            close(ca->dirfd); /* drops the flock */
        }
        X509_free(ca->cert);
        EVP_PKEY_free(ca->key);
        free(ca->entries);
        free(ca);
    }
    return NULL;
}

static void pki_ca_freep(pki_ca **ca)
{
    pki_ca_free(*ca);
}

static int dir_open_locked(const char *dir, int *ret, pki_reason *reason)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s: %s", dir, errstr(r));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int r = errno == EWOULDBLOCK ? -EBUSY : negative_errno();
        return pki_fail(reason, r, "%s: locked by another rackboot-pki", dir);
    }
    *ret = TAKE_FD(fd);
    return 0;
}

/* The CA's name is only its common name (no file, URL or identity is made
 * of it), so it may read like a name: "ACME Fleet CA". Refused: what is not
 * UTF-8, control characters (C0, DEL, C1), '/' (the "/O=x/CN=y" form tools
 * print and parse), the characters RFC 4514 makes a string form escape
 * (, + = " \ < > ;), leading or trailing blanks, and more than the 64
 * characters X.520 allows a common name. */
static bool ca_name_is_valid(const char *name)
{
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)name;
    if (!*p || *p == ' ' || *p == '#') {
        return false;
    }
    while (*p) {
        uint32_t c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (n == 0) {
            return false;
        }
        if (n > 1) {
            c &= 0xffu >> (n + 1);
            for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) {
                    return false;
                }
                c = (c << 6) | (p[i] & 0x3fu);
            }
            /* overlong forms, surrogates, beyond Unicode */
            static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
            if (c < min[n] || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) {
                return false;
            }
        }
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c < 0x80 && strchr("/,+=\"\\<>;", (int)c))) {
            return false;
        }
        p += n;
        chars++;
    }
    return chars <= 64 && p[-1] != ' ';
}

int pki_ca_init(const char *dir, const char *name, unsigned days, pki_reason *reason)
{
    if (!name || !ca_name_is_valid(name)) {
        return pki_fail(reason, -EINVAL,
                        "invalid CA name (1..64 printable characters; no control characters, "
                        "no / , + = \" \\ < > ; and no blanks at either end)");
    }
    if (days == 0 || days > PKI_DAYS_MAX) {
        return pki_fail(reason, -EINVAL, "validity must be 1..%d days", PKI_DAYS_MAX);
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s: %s", dir, errstr(r));
    }
    _cleanup_(pki_ca_freep) pki_ca *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        return -ENOMEM;
    }
    ca->dirfd = -1;
    int r = dir_open_locked(dir, &ca->dirfd, reason);
    if (r < 0) {
        return r;
    }
    static const char *const owned[] = { CA_CERT_FILE, CA_KEY_FILE, INDEX_FILE, CRL_FILE };
    for (size_t i = 0; i < ARRAY_SIZE(owned); i++) {
        if (exists_at(ca->dirfd, owned[i])) {
            return pki_fail(reason, -EEXIST, "%s/%s exists: a CA is already there", dir, owned[i]);
        }
    }

    r = key_generate(&ca->key);
    if (r < 0) {
        return pki_fail(reason, r, "cannot generate a key");
    }
    time_t now = time(NULL);
    char serial[41];
    r = cert_skeleton("ca", name, ca->key, now - PKI_CLOCK_SKEW_SECONDS, now + (time_t)days * 86400,
                      &ca->cert, serial, sizeof(serial));
    if (r < 0) {
        return pki_fail(reason, r, "cannot build the CA certificate");
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, ca->cert, NULL, NULL, 0);
    if (!X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) ||
        add_ext_conf(ca->cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext_conf(ca->cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext_conf(ca->cert, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        add_ext_conf(ca->cert, &ctx, NID_authority_key_identifier, "keyid:always") < 0 ||
        cert_sign(ca->cert, ca->key) < 0) {
        ERR_clear_error();
        return pki_fail(reason, -EIO, "cannot build the CA certificate");
    }

    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_len = 0, cert_len = 0;
    r = pem_key(ca->key, &key_pem, &key_len);
    if (r == 0) {
        r = pem_cert(ca->cert, &cert_pem, &cert_len);
    }
    if (r == 0) {
        r = write_new_file(ca->dirfd, CA_KEY_FILE, key_pem, key_len, 0600);
        if (r < 0) {
            pki_fail(reason, r, "%s/%s: %s", dir, CA_KEY_FILE, errstr(r));
        }
    }
    if (r == 0) {
        r = write_new_file(ca->dirfd, CA_CERT_FILE, cert_pem, cert_len, 0644);
        if (r < 0) {
            pki_fail(reason, r, "%s/%s: %s", dir, CA_CERT_FILE, errstr(r));
        }
    }
    cleanse_free(key_pem, key_len);
    free(cert_pem);
    if (r < 0) {
        return r;
    }
    return ca_commit(ca, NULL, 0, 1, PKI_CRL_DAYS_DEFAULT, reason);
}

int pki_ca_open(const char *dir, pki_ca **ret, pki_reason *reason)
{
    _cleanup_(pki_ca_freep) pki_ca *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        return -ENOMEM;
    }
    ca->dirfd = -1;
    int r = dir_open_locked(dir, &ca->dirfd, reason);
    if (r < 0) {
        return r;
    }
    if (!exists_at(ca->dirfd, CA_CERT_FILE)) {
        return pki_fail(reason, -ENOENT, "%s: no CA here (run rackboot-pki --dir %s init)", dir,
                        dir);
    }

    _cleanup_free_ char *cert_pem = NULL;
    size_t len;
    r = read_at(ca->dirfd, CA_CERT_FILE, PEM_FILE_MAX, &cert_pem, &len, reason);
    if (r < 0) {
        return r;
    }
    r = pki_cert_parse_pem(cert_pem, len, &ca->cert, reason);
    if (r < 0) {
        return pki_fail(reason, r, "%s: not a PEM certificate", CA_CERT_FILE);
    }

    char *key_pem = NULL;
    size_t key_len = 0;
    r = pki_key_file_check_at(ca->dirfd, CA_KEY_FILE, reason);
    if (r < 0) {
        return r;
    }
    r = read_at(ca->dirfd, CA_KEY_FILE, PEM_FILE_MAX, &key_pem, &key_len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(key_pem, (int)key_len);
    if (bio) {
        ca->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    }
    cleanse_free(key_pem, key_len);
    if (!ca->key || X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        return pki_fail(reason, -EKEYREJECTED, "%s does not hold the key of %s", CA_KEY_FILE,
                        CA_CERT_FILE);
    }

    _cleanup_free_ char *index = NULL;
    r = read_at(ca->dirfd, INDEX_FILE, INDEX_MAX, &index, &len, reason);
    if (r < 0) {
        return r;
    }
    if (strlen(index) != len) {
        return pki_fail(reason, -EBADMSG, "%s: holds a NUL byte", INDEX_FILE);
    }
    r = index_parse(ca, index, reason);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(ca);
    return 0;
}

time_t pki_ca_not_after(const pki_ca *ca)
{
    time_t t = 0;
    (void)time_from_asn1(X509_get0_notAfter(ca->cert), &t);
    return t;
}

int pki_ca_issue(pki_ca *ca, const pki_issue_request *req, pki_reason *reason)
{
    const char *role = pki_role_to_string(req->role);
    if (!role) {
        return pki_fail(reason, -EINVAL, "unknown role");
    }
    if (!pki_name_is_valid(req->role, req->name)) {
        return pki_fail(
            reason, -EINVAL,
            req->role == PKI_ROLE_CONTROLLER
                ? "invalid controller name (a DNS host name of at most 63 characters)"
                : "invalid name (1..63 of A-Z a-z 0-9 . _ -, not starting with . or -)");
    }
    if (req->n_sans > 0 && req->role != PKI_ROLE_CONTROLLER) {
        return pki_fail(reason, -EINVAL, "--san is for controller certificates only");
    }
    if (req->n_sans > SAN_MAX) {
        return pki_fail(reason, -EINVAL, "at most %d SANs", SAN_MAX);
    }
    if (req->not_after <= req->not_before) {
        return pki_fail(reason, -EINVAL, "not-after must be later than not-before");
    }
    if (req->not_after > pki_ca_not_after(ca)) {
        return pki_fail(reason, -EINVAL, "certificate would outlive the CA; use fewer --days");
    }

    /* Same file names under every role directory: 0700, since keys live there. */
    if (mkdirat(ca->dirfd, role, 0700) < 0 && errno != EEXIST) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s/: %s", role, errstr(r));
    }
    char file_base[PKI_NAME_MAX + 1]; /* "rack-a/2" is agent/rack-a@2.crt */
    pki_name_to_file(req->name, file_base);
    char crt_name[PKI_NAME_MAX + 32], key_name[PKI_NAME_MAX + 32];
    (void)snprintf(crt_name, sizeof(crt_name), "%s/%s.crt", role, file_base);
    (void)snprintf(key_name, sizeof(key_name), "%s/%s.key", role, file_base);
    if (exists_at(ca->dirfd, crt_name) || exists_at(ca->dirfd, key_name)) {
        return pki_fail(reason, -EEXIST,
                        "%s %s already has a certificate (%s); revoke it and move its files "
                        "away first",
                        role, req->name, crt_name);
    }
    _cleanup_close_ int rolefd = openat(ca->dirfd, role, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rolefd < 0) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s/: %s", role, errstr(r));
    }

    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    _cleanup_(X509_freep) X509 *x = NULL;
    pki_ca_entry e = { .role = req->role, .not_after = req->not_after };
    int r = key_generate(&key);
    if (r < 0) {
        return pki_fail(reason, r, "cannot generate a key");
    }
    r = cert_skeleton(role, req->name, key, req->not_before, req->not_after, &x, e.serial,
                      sizeof(e.serial));
    if (r < 0) {
        return pki_fail(reason, r, "cannot build the certificate");
    }
    for (size_t i = 0; i < ca->n_entries; i++) {
        if (streq(ca->entries[i].serial, e.serial)) {
            /* 2^-64 odds; refuse rather than issue two certificates one
             * revocation would hit together. */
            return pki_fail(reason, -EAGAIN, "serial collision, run again");
        }
    }
    memcpy(e.name, req->name, strlen(req->name) + 1);

    pki_identity id = { .role = req->role };
    memcpy(id.name, req->name, strlen(req->name) + 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    /* ECDHE-ECDSA suites need only digitalSignature; keyAgreement would be
     * for static ECDH, which nng/mbedTLS and OpenSSL do not negotiate here. */
    const char *eku = req->role == PKI_ROLE_CONTROLLER ? "serverAuth" : "clientAuth";
    if (!X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
        add_ext_conf(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext_conf(x, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext_conf(x, &ctx, NID_ext_key_usage, eku) < 0 ||
        add_ext_conf(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        add_ext_conf(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0) {
        ERR_clear_error();
        return pki_fail(reason, -EIO, "cannot build the certificate extensions");
    }
    if (req->role == PKI_ROLE_CONTROLLER) {
        r = san_add(x, req->name, req->sans, req->n_sans, reason);
        if (r < 0) {
            return r == -ENOMEM ? pki_fail(reason, r, "cannot add SANs") : r;
        }
    }
    r = pki_cert_add_identity(x, &id);
    if (r == 0) {
        r = cert_sign(x, ca->key);
    }
    if (r < 0) {
        return pki_fail(reason, r, "cannot sign the certificate");
    }

    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_len = 0, cert_len = 0;
    char key_file[PKI_NAME_MAX + 8], crt_file[PKI_NAME_MAX + 8];
    (void)snprintf(key_file, sizeof(key_file), "%s.key", file_base);
    (void)snprintf(crt_file, sizeof(crt_file), "%s.crt", file_base);
    bool key_written = false, crt_written = false;
    r = pem_key(key, &key_pem, &key_len);
    if (r == 0) {
        r = pem_cert(x, &cert_pem, &cert_len);
    }
    if (r == 0) {
        r = write_new_file(rolefd, key_file, key_pem, key_len, 0600);
        key_written = r == 0;
        if (r < 0) {
            pki_fail(reason, r, "%s: %s", key_name, errstr(r));
        }
    }
    if (r == 0) {
        r = write_new_file(rolefd, crt_file, cert_pem, cert_len, 0644);
        crt_written = r == 0;
        if (r < 0) {
            pki_fail(reason, r, "%s: %s", crt_name, errstr(r));
        }
    }
    cleanse_free(key_pem, key_len);
    free(cert_pem);

    if (r == 0) {
        pki_ca_entry *grown = reallocarray(ca->entries, ca->n_entries + 1, sizeof(*grown));
        if (!grown) {
            r = -ENOMEM;
        } else {
            ca->entries = grown;
            ca->entries[ca->n_entries] = e;
            r = index_write(ca->dirfd, ca->entries, ca->n_entries + 1, ca->crl_number, reason);
            if (r == 0) {
                ca->n_entries++;
            }
        }
    }
    if (r < 0) {
        /* A certificate the index does not know could never be revoked by
         * name: take the files back. */
        if (crt_written) {
            (void)unlinkat(rolefd, crt_file, 0);
        }
        if (key_written) {
            (void)unlinkat(rolefd, key_file, 0);
        }
        return r;
    }
    return 0;
}

int pki_ca_revoke(pki_ca *ca, pki_role role, const char *name, unsigned crl_days,
                  pki_reason *reason)
{
    _cleanup_free_ pki_ca_entry *copy = NULL;
    if (ca->n_entries > 0) {
        copy = malloc(ca->n_entries * sizeof(*copy));
        if (!copy) {
            return -ENOMEM;
        }
        memcpy(copy, ca->entries, ca->n_entries * sizeof(*copy));
    }
    size_t found = 0, revoked = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < ca->n_entries; i++) {
        if (copy[i].role == role && streq(copy[i].name, name)) {
            found++;
            if (copy[i].revoked_at == 0) {
                copy[i].revoked_at = now;
                revoked++;
            }
        }
    }
    if (found == 0) {
        return pki_fail(reason, -ENOENT, "no %s certificate named %s was issued",
                        pki_role_to_string(role), name);
    }
    if (revoked == 0) {
        return pki_fail(reason, -EALREADY, "%s %s is already revoked", pki_role_to_string(role),
                        name);
    }
    int r = ca_commit(ca, copy, ca->n_entries, ca->crl_number + 1, crl_days, reason);
    if (r < 0) {
        return r;
    }
    memcpy(ca->entries, copy, ca->n_entries * sizeof(*copy));
    ca->crl_number++;
    return (int)revoked;
}

int pki_ca_write_crl(pki_ca *ca, unsigned days, pki_reason *reason)
{
    int r = ca_commit(ca, ca->entries, ca->n_entries, ca->crl_number + 1, days, reason);
    if (r < 0) {
        return r;
    }
    ca->crl_number++;
    return 0;
}

size_t pki_ca_count(const pki_ca *ca)
{
    return ca->n_entries;
}

const pki_ca_entry *pki_ca_entry_at(const pki_ca *ca, size_t i)
{
    return i < ca->n_entries ? &ca->entries[i] : NULL;
}

pki_cert_status pki_ca_entry_status(const pki_ca_entry *e, time_t now)
{
    if (e->revoked_at != 0) {
        return PKI_CERT_REVOKED;
    }
    return e->not_after < now ? PKI_CERT_EXPIRED : PKI_CERT_VALID;
}

const char *pki_cert_status_to_string(pki_cert_status s)
{
    switch (s) {
    case PKI_CERT_VALID:
        return "valid";
    case PKI_CERT_REVOKED:
        return "revoked";
    case PKI_CERT_EXPIRED:
        return "expired";
    }
    return "unknown";
}

int pki_ca_crl_next_update(const pki_ca *ca, time_t *ret, pki_reason *reason)
{
    _cleanup_free_ char *pem = NULL;
    size_t len;
    int r = read_at(ca->dirfd, CRL_FILE, PEM_FILE_MAX, &pem, &len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        return -ENOMEM;
    }
    _cleanup_(X509_CRL_freep) X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    if (!crl) {
        ERR_clear_error();
        return pki_fail(reason, -EBADMSG, "%s: not a PEM CRL", CRL_FILE);
    }
    time_t t;
    if (time_from_asn1(X509_CRL_get0_nextUpdate(crl), &t) < 0) {
        return pki_fail(reason, -EBADMSG, "%s: no nextUpdate", CRL_FILE);
    }
    *ret = t;
    return 0;
}
