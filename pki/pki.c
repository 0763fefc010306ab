/* pki: the certificate format (role and name) and the listener's verifier. */
#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki-internal.h"
#include "util.h"

static const char *const role_names[_PKI_ROLE_MAX] = {
    [PKI_ROLE_CONTROLLER] = "controller",
    [PKI_ROLE_AGENT] = "agent",
    [PKI_ROLE_OPERATOR] = "operator",
    [PKI_ROLE_VIEWER] = "viewer",
};

const char *pki_role_to_string(pki_role role)
{
    if ((unsigned)role >= _PKI_ROLE_MAX) {
        return NULL;
    }
    return role_names[role];
}

int pki_role_from_string(const char *s, pki_role *ret)
{
    for (unsigned i = 0; i < _PKI_ROLE_MAX; i++) {
        if (streq(s, role_names[i])) {
            *ret = (pki_role)i;
            return 0;
        }
    }
    return -EINVAL;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 §2.1 host names: labels of letters, digits and '-', not starting
 * or ending with '-'. mbedTLS compares the server name against the DNS SAN,
 * so a controller name that is no host name could never be reached. */
bool pki_dns_name_is_valid(const char *name)
{
    if (strnlen(name, 254) > 253) {
        return false;
    }
    size_t label = 0;
    char prev = '.';
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (label == 0 || prev == '-') {
                return false;
            }
            label = 0;
        } else if ((is_alnum(*p) || (*p == '-' && label > 0)) && label < 63) {
            label++;
        } else {
            return false;
        }
        prev = *p;
    }
    return label > 0 && prev != '-';
}

/* name[0..n): 1..PKI_NAME_MAX of [A-Za-z0-9._-], not starting with '.'
 * or '-'. */
static bool plain_name_is_valid(const char *name, size_t n)
{
    /* A leading '.' would allow "." and ".." (they are file names in the CA
     * directory); a leading '-' reads as an option on command lines. */
    if (n == 0 || n > PKI_NAME_MAX || name[0] == '.' || name[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-') {
            return false;
        }
    }
    return true;
}

bool pki_name_is_valid(pki_role role, const char *name)
{
    if (!name) {
        return false;
    }
    size_t n = strnlen(name, PKI_NAME_MAX + 1);
    if (n > PKI_NAME_MAX) {
        return false;
    }
    if (role == PKI_ROLE_AGENT) {
        char rack[PKI_NAME_MAX + 1];
        unsigned instance;
        return pki_agent_name_split(name, rack, &instance) == 0;
    }
    if (!plain_name_is_valid(name, n)) {
        return false;
    }
    if (role == PKI_ROLE_CONTROLLER) {
        return pki_dns_name_is_valid(name);
    }
    return (unsigned)role < _PKI_ROLE_MAX;
}

int pki_agent_name_split(const char *name, char rack[PKI_NAME_MAX + 1], unsigned *ret_instance)
{
    size_t n = strnlen(name, PKI_NAME_MAX + 1);
    if (n > PKI_NAME_MAX) {
        return -EINVAL;
    }
    const char *slash = memchr(name, '/', n);
    size_t rack_len = slash ? (size_t)(slash - name) : n;
    unsigned instance = 1;
    if (slash) {
        /* one digit, 2..MAX: "rack-a/1" would be a second name for
         * "rack-a", and "rack-a/02" a second name for "rack-a/2" */
        if (n - rack_len != 2 || slash[1] < '2' ||
            slash[1] > (char)('0' + PKI_AGENT_INSTANCE_MAX)) {
            return -EINVAL;
        }
        instance = (unsigned)(slash[1] - '0');
    }
    if (!plain_name_is_valid(name, rack_len)) {
        return -EINVAL;
    }
    memcpy(rack, name, rack_len);
    rack[rack_len] = '\0';
    *ret_instance = instance;
    return 0;
}

int pki_agent_name(const char *rack, unsigned instance, char out[PKI_NAME_MAX + 1])
{
    size_t n = strnlen(rack, PKI_NAME_MAX + 1);
    if (!plain_name_is_valid(rack, n) || instance < 1 || instance > PKI_AGENT_INSTANCE_MAX) {
        return -EINVAL;
    }
    if (instance == 1) {
        memcpy(out, rack, n + 1);
        return 0;
    }
    if (n + 2 > PKI_NAME_MAX) {
        return -EINVAL;
    }
    (void)snprintf(out, PKI_NAME_MAX + 1, "%s/%u", rack, instance);
    return 0;
}

void pki_name_to_file(const char *name, char out[PKI_NAME_MAX + 1])
{
    size_t i = 0;
    for (; name[i] && i < PKI_NAME_MAX; i++) {
        out[i] = name[i] == '/' ? '@' : name[i];
    }
    out[i] = '\0';
}

bool pki_role_accepts(pki_role listener, pki_role peer)
{
    return peer == listener || (listener == PKI_ROLE_OPERATOR && peer == PKI_ROLE_VIEWER);
}

int pki_key_file_check_at(int dirfd, const char *path, pki_reason *reason)
{
    struct stat st;
    if (fstatat(dirfd, path, &st, 0) < 0) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s: %s", path, errstr(r));
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        return pki_fail(reason, -EACCES,
                        "%s: private key has mode %04o, readable by group or others: "
                        "refused (chmod 600 it)",
                        path, (unsigned)(st.st_mode & 07777));
    }
    return 0;
}

int pki_key_file_check(const char *path, pki_reason *reason)
{
    return pki_key_file_check_at(AT_FDCWD, path, reason);
}

int pki_fail(pki_reason *reason, int r, const char *fmt, ...)
{
    if (reason) {
        va_list ap;
        va_start(ap, fmt);
        /* Truncation is acceptable: the reason is one log line. */
        (void)vsnprintf(reason->text, sizeof(reason->text), fmt, ap);
        va_end(ap);
    }
    return r;
}

void pki_reason_add_openssl(pki_reason *reason)
{
    unsigned long e = ERR_peek_error();
    if (reason && e != 0) {
        size_t used = strnlen(reason->text, sizeof(reason->text));
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        (void)snprintf(reason->text + used, sizeof(reason->text) - used, " (%s)", buf);
    }
    ERR_clear_error();
}

ASN1_OBJECT *pki_identity_oid_new(void)
{
    /* no_name=1: parse the dotted form, never look it up as a short name. */
    return OBJ_txt2obj(PKI_IDENTITY_OID, 1);
}

int pki_cert_add_identity(X509 *x, const pki_identity *id)
{
    const char *role = pki_role_to_string(id->role);
    char value[sizeof("controller:") + PKI_NAME_MAX];
    int n = snprintf(value, sizeof(value), "%s:%s", role ? role : "", id->name);
    if (!role || n < 0 || (size_t)n >= sizeof(value)) {
        return -EINVAL;
    }

    _cleanup_(ASN1_UTF8STRING_freep) ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
    _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *oct = ASN1_OCTET_STRING_new();
    _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oid = pki_identity_oid_new();
    if (!s || !oct || !oid || !ASN1_STRING_set(s, value, n)) {
        return -ENOMEM;
    }
    unsigned char *der = NULL;
    int der_len = i2d_ASN1_UTF8STRING(s, &der);
    if (der_len <= 0) {
        return -ENOMEM;
    }
    int ok = ASN1_OCTET_STRING_set(oct, der, der_len);
    OPENSSL_free(der);
    if (!ok) {
        return -ENOMEM;
    }
    _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext =
        X509_EXTENSION_create_by_OBJ(NULL, oid, /*crit=*/0, oct);
    if (!ext || !X509_add_ext(x, ext, -1)) {
        return -ENOMEM;
    }
    return 0;
}

/* The one entry of `nid` in a name, as bytes; -EACCES when absent or repeated
 * (two CNs would let a certificate read differently to different tools). */
static int name_get_single(const X509_NAME *subject, int nid, const unsigned char **ret,
                           size_t *ret_len)
{
    int i = X509_NAME_get_index_by_NID(subject, nid, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(subject, nid, i) >= 0) {
        return -EACCES;
    }
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    *ret = ASN1_STRING_get0_data(s);
    *ret_len = (size_t)ASN1_STRING_length(s);
    return 0;
}

static bool bytes_eq(const unsigned char *a, size_t a_len, const char *s)
{
    return a_len == strlen(s) && memcmp(a, s, a_len) == 0;
}

int pki_cert_read_identity(X509 *x, pki_identity *ret, pki_reason *reason)
{
    _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oid = pki_identity_oid_new();
    if (!oid) {
        return -ENOMEM;
    }
    int idx = X509_get_ext_by_OBJ(x, oid, -1);
    if (idx < 0) {
        return pki_fail(reason, -EACCES, "certificate has no rackboot identity extension");
    }
    if (X509_get_ext_by_OBJ(x, oid, idx) >= 0) {
        return pki_fail(reason, -EACCES, "certificate has two rackboot identity extensions");
    }
    const ASN1_OCTET_STRING *oct = X509_EXTENSION_get_data(X509_get_ext(x, idx));
    const unsigned char *p = ASN1_STRING_get0_data(oct);
    long der_len = ASN1_STRING_length(oct);
    _cleanup_(ASN1_UTF8STRING_freep) ASN1_UTF8STRING *s = d2i_ASN1_UTF8STRING(NULL, &p, der_len);
    if (!s || p != ASN1_STRING_get0_data(oct) + der_len) {
        ERR_clear_error();
        return pki_fail(reason, -EACCES, "identity extension is not one DER UTF8String");
    }

    const char *v = (const char *)ASN1_STRING_get0_data(s);
    size_t v_len = (size_t)ASN1_STRING_length(s);
    const char *colon = memchr(v, ':', v_len);
    if (!colon || memchr(v, '\0', v_len)) {
        return pki_fail(reason, -EACCES, "identity extension is not role:name");
    }
    char role_str[16];
    size_t role_len = (size_t)(colon - v);
    size_t name_len = v_len - role_len - 1;
    pki_identity id = { 0 };
    if (role_len >= sizeof(role_str) || name_len > PKI_NAME_MAX) {
        return pki_fail(reason, -EACCES, "identity extension is too long");
    }
    memcpy(role_str, v, role_len);
    role_str[role_len] = '\0';
    memcpy(id.name, colon + 1, name_len);
    id.name[name_len] = '\0';
    if (pki_role_from_string(role_str, &id.role) < 0) {
        return pki_fail(reason, -EACCES, "identity extension names unknown role");
    }
    if (!pki_name_is_valid(id.role, id.name)) {
        return pki_fail(reason, -EACCES, "identity extension holds an invalid name");
    }

    const X509_NAME *subject = X509_get_subject_name(x);
    const unsigned char *o, *ou, *cn;
    size_t o_len, ou_len, cn_len;
    if (name_get_single(subject, NID_organizationName, &o, &o_len) < 0 ||
        name_get_single(subject, NID_organizationalUnitName, &ou, &ou_len) < 0 ||
        name_get_single(subject, NID_commonName, &cn, &cn_len) < 0 ||
        !bytes_eq(o, o_len, "rackboot") || !bytes_eq(ou, ou_len, role_str) ||
        !bytes_eq(cn, cn_len, id.name)) {
        return pki_fail(reason, -EACCES, "subject does not match identity extension %s:%s",
                        role_str, id.name);
    }
    *ret = id;
    return 0;
}

int pki_cert_parse_pem(const char *pem, size_t len, X509 **ret, pki_reason *reason)
{
    if (len > PKI_CERT_PEM_MAX) {
        return pki_fail(reason, -E2BIG, "certificate longer than %d bytes", PKI_CERT_PEM_MAX);
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        return -ENOMEM;
    }
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x) {
        ERR_clear_error();
        return pki_fail(reason, -EBADMSG, "not a PEM certificate");
    }
    *ret = x;
    return 0;
}

int pki_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
                     pki_reason *reason)
{
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s: %s", path, errstr(r));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = negative_errno();
        return pki_fail(reason, r, "%s: %s", path, errstr(r));
    }
    if (!S_ISREG(st.st_mode) || (uintmax_t)st.st_size > max) {
        return pki_fail(reason, -E2BIG, "%s: not a regular file of at most %zu bytes", path, max);
    }
    size_t size = (size_t)st.st_size;
    _cleanup_free_ char *buf = malloc(size + 1);
    if (!buf) {
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int r = negative_errno();
            return pki_fail(reason, r, "%s: %s", path, errstr(r));
        }
        if (n == 0) {
            break; /* shrank under us: use what is there */
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *ret = TAKE_PTR(buf);
    *ret_len = got;
    return 0;
}

/* --- verifier ---------------------------------------------------------- */

/* CA and CRL files are small; anything larger is a mistake in the path. */
#define PKI_FILE_MAX (1024 * 1024)

struct pki_verifier {
    STACK_OF(X509) * cas;
    X509_STORE *store; /* the CAs plus the current CRL */
    bool has_crl;
    char *crl_path;
    char *server_name;
};

static int load_cas(const char *path, STACK_OF(X509) * *ret, pki_reason *reason)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = pki_read_file(path, PKI_FILE_MAX, &data, &len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(data, (int)len);
    _cleanup_(x509_stack_freep) STACK_OF(X509) *cas = sk_X509_new_null();
    if (!bio || !cas) {
        return -ENOMEM;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x) {
            break;
        }
        if (X509_check_ca(x) != 1) {
            X509_free(x);
            return pki_fail(reason, -EBADMSG, "%s: holds a certificate that is not a CA", path);
        }
        if (!sk_X509_push(cas, x)) {
            X509_free(x);
            return -ENOMEM;
        }
    }
    /* The loop ends on "no start line" at EOF; anything else was garbage. */
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (sk_X509_num(cas) == 0 || (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
        return pki_fail(reason, -EBADMSG, "%s: no readable PEM CA certificate", path);
    }
    *ret = TAKE_PTR(cas);
    return 0;
}

static int load_crl(const char *path, STACK_OF(X509) * cas, X509_CRL **ret, pki_reason *reason)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = pki_read_file(path, PKI_FILE_MAX, &data, &len, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (!bio) {
        return -ENOMEM;
    }
    _cleanup_(X509_CRL_freep) X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    if (!crl) {
        ERR_clear_error();
        return pki_fail(reason, -EBADMSG, "%s: not a PEM CRL", path);
    }
    /* Check the signature now, not at the first connection: a CRL from the
     * wrong CA would otherwise turn into "every peer refused". */
    for (int i = 0; i < sk_X509_num(cas); i++) {
        X509 *ca = sk_X509_value(cas, i);
        if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
            *ret = TAKE_PTR(crl);
            return 0;
        }
    }
    ERR_clear_error();
    return pki_fail(reason, -EBADMSG, "%s: CRL is not signed by the CA", path);
}

static int build_store(STACK_OF(X509) * cas, X509_CRL *crl, X509_STORE **ret)
{
    _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
    if (!store) {
        return -ENOMEM;
    }
    for (int i = 0; i < sk_X509_num(cas); i++) {
        if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
            return -ENOMEM;
        }
    }
    if (crl && !X509_STORE_add_crl(store, crl)) {
        return -ENOMEM;
    }
    *ret = TAKE_PTR(store);
    return 0;
}

pki_verifier *pki_verifier_free(pki_verifier *v)
{
    if (v) {
        sk_X509_pop_free(v->cas, X509_free);
        X509_STORE_free(v->store);
        free(v->crl_path);
        free(v->server_name);
        free(v);
    }
    return NULL;
}

static void pki_verifier_freep(pki_verifier **v)
{
    pki_verifier_free(*v);
}

int pki_verifier_new(const char *ca_path, const char *crl_path, const char *server_name,
                     pki_verifier **ret, pki_reason *reason)
{
    if (!ca_path || strempty(server_name)) {
        return -EINVAL;
    }
    _cleanup_(pki_verifier_freep) pki_verifier *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    v->server_name = strdup(server_name);
    v->crl_path = crl_path ? strdup(crl_path) : NULL;
    if (!v->server_name || (crl_path && !v->crl_path)) {
        return -ENOMEM;
    }
    int r = load_cas(ca_path, &v->cas, reason);
    if (r < 0) {
        return r;
    }
    _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
    if (crl_path) {
        r = load_crl(crl_path, v->cas, &crl, reason);
        if (r < 0) {
            return r;
        }
    }
    r = build_store(v->cas, crl, &v->store);
    if (r < 0) {
        return r;
    }
    v->has_crl = crl != NULL;
    *ret = TAKE_PTR(v);
    return 0;
}

int pki_verifier_reload_crl(pki_verifier *v, pki_reason *reason)
{
    if (!v->crl_path) {
        return pki_fail(reason, -EINVAL, "verifier was set up without a CRL");
    }
    _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
    int r = load_crl(v->crl_path, v->cas, &crl, reason);
    if (r < 0) {
        return r;
    }
    X509_STORE *store;
    r = build_store(v->cas, crl, &store);
    if (r < 0) {
        return r;
    }
    X509_STORE_free(v->store);
    v->store = store;
    return 0;
}

const char *pki_verifier_server_name(const pki_verifier *v)
{
    return v->server_name;
}

static int verify_error_to_errno(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_REVOKED:
        return -EKEYREJECTED;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return -EKEYEXPIRED;
    default:
        return -EACCES;
    }
}

int pki_verifier_check_x509(pki_verifier *v, const char *cert_pem, size_t cert_len,
                            pki_role expected_role, X509 **ret_cert, pki_identity *ret_identity,
                            pki_reason *reason)
{
    const char *want = pki_role_to_string(expected_role);
    if (!want) {
        return -EINVAL;
    }
    _cleanup_(X509_freep) X509 *x = NULL;
    int r = pki_cert_parse_pem(cert_pem, cert_len, &x, reason);
    if (r < 0) {
        return r;
    }

    _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || !X509_STORE_CTX_init(ctx, v->store, x, NULL)) {
        return -ENOMEM;
    }
    /* CRL_CHECK: the leaf's issuer must have a current CRL, so a CRL past
     * its nextUpdate refuses everyone, the same as mbedTLS does in nng. */
    unsigned long flags = X509_V_FLAG_X509_STRICT;
    if (v->has_crl) {
        flags |= X509_V_FLAG_CRL_CHECK;
    }
    X509_STORE_CTX_set_flags(ctx, flags);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        ERR_clear_error();
        return pki_fail(reason, verify_error_to_errno(err), "certificate refused: %s",
                        X509_verify_cert_error_string(err));
    }

    if (X509_check_ca(x) != 0) {
        return pki_fail(reason, -EACCES, "certificate is a CA, not a %s", want);
    }
    uint32_t xku = X509_get_extended_key_usage(x);
    uint32_t need = expected_role == PKI_ROLE_CONTROLLER ? XKU_SSL_SERVER : XKU_SSL_CLIENT;
    if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE) || !(xku & need)) {
        return pki_fail(reason, -EACCES, "certificate lacks extended key usage %s for a %s",
                        need == XKU_SSL_SERVER ? "serverAuth" : "clientAuth", want);
    }
    if (!(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE)) {
        return pki_fail(reason, -EACCES, "certificate lacks key usage digitalSignature");
    }

    pki_identity id;
    r = pki_cert_read_identity(x, &id, reason);
    if (r < 0) {
        return r;
    }
    if (!pki_role_accepts(expected_role, id.role)) {
        return pki_fail(reason, -EACCES, "certificate is for %s %s, expected a %s",
                        pki_role_to_string(id.role), id.name, want);
    }
    if (ret_cert) {
        *ret_cert = TAKE_PTR(x);
    }
    *ret_identity = id;
    return 0;
}

int pki_verifier_check_cert(pki_verifier *v, const char *cert_pem, size_t cert_len,
                            pki_role expected_role, pki_identity *ret_identity, pki_reason *reason)
{
    return pki_verifier_check_x509(v, cert_pem, cert_len, expected_role, NULL, ret_identity,
                                   reason);
}
