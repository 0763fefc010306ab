#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "fileio.h"
#include "pki.h"
#include "sha256.h"
#include "util.h"

/* A PEM file larger than this is not a certificate, key or CRL we issue. */
#define PEM_MAX (4u << 20)

static int read_pem(const char *what, const char *path, char **ret, char **ret_error)
{
    void *data = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, PEM_MAX, &data, &len);
    if (r < 0) {
        return errmsg_fail(ret_error, r, "cannot read %s %s: %s", what, path, errstr(r));
    }
    *ret = data; /* fileio_read_all NUL-terminates */
    return 0;
}

int rb_nng_errno(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case NNG_ECONNREFUSED:
        return -ECONNREFUSED;
    case NNG_ETIMEDOUT:
        return -ETIMEDOUT;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
        return -EINVAL;
    case NNG_ENOMEM:
        return -ENOMEM;
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH:
        return -EPROTO;
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
    case NNG_ECLOSED:
        return -ECONNRESET;
    case NNG_EUNREACHABLE:
        return -EHOSTUNREACH;
    case NNG_ENOENT:
        return -ENOENT;
    case NNG_EPERM:
        return -EACCES;
    case NNG_EADDRINUSE:
        return -EADDRINUSE;
    case NNG_EMSGSIZE:
        return -EMSGSIZE;
    case NNG_ECANCELED:
        return -ECANCELED;
    default:
        return -EIO;
    }
}

/* Each file's length and content, so that no two different file sets hash
 * alike by moving bytes from one file to the next. */
static int digest_files(const char *const *pems, size_t n, uint8_t ret[RB_TLS_DIGEST_SIZE])
{
    sha256_ctx *ctx = sha256_new();
    int r = ctx ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        uint64_t len = pems[i] ? strlen(pems[i]) : UINT64_MAX; /* "no CRL" differs from "" */
        r = sha256_update(ctx, &len, sizeof(len));
        if (r == 0 && pems[i]) {
            r = sha256_update(ctx, pems[i], strlen(pems[i]));
        }
    }
    if (r == 0) {
        r = sha256_final(ctx, ret);
    }
    sha256_free(ctx);
    return r;
}

uint64_t rb_tls_files_stamp(const rb_tls_files *f)
{
    const char *paths[] = { f->ca, f->cert, f->key, f->crl };
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the stat fields */
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        struct stat st;
        uint64_t v[5] = { 0 };
        if (paths[i] && stat(paths[i], &st) == 0) {
            v[0] = (uint64_t)st.st_dev;
            v[1] = (uint64_t)st.st_ino;
            v[2] = (uint64_t)st.st_size;
            v[3] = (uint64_t)st.st_mtim.tv_sec;
            v[4] = (uint64_t)st.st_mtim.tv_nsec;
        }
        const unsigned char *b = (const unsigned char *)v;
        for (size_t j = 0; j < sizeof(v); j++) {
            h = (h ^ b[j]) * 1099511628211ull;
        }
    }
    return h;
}

int rb_tls_config_new(const rb_tls_files *f, bool server, nng_tls_config **ret, char **ret_error)
{
    return rb_tls_config_load(f, server, ret, NULL, ret_error);
}

int rb_tls_config_load(const rb_tls_files *f, bool server, nng_tls_config **ret,
                       uint8_t ret_digest[RB_TLS_DIGEST_SIZE], char **ret_error)
{
    if (!f->ca || !f->cert || !f->key) {
        return errmsg_fail(ret_error, -EINVAL, "TLS needs a CA, a certificate and a key");
    }
    _cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL, *crl = NULL;
    int r = read_pem("CA", f->ca, &ca, ret_error);
    if (r == 0) {
        r = read_pem("certificate", f->cert, &cert, ret_error);
    }
    if (r == 0) {
        pki_reason reason = { { 0 } };
        r = pki_key_file_check(f->key, &reason);
        if (r < 0) {
            r = errmsg_fail(ret_error, r, "%s", reason.text);
        }
    }
    if (r == 0) {
        r = read_pem("key", f->key, &key, ret_error);
    }
    if (r == 0 && f->crl) {
        r = read_pem("CRL", f->crl, &crl, ret_error);
    }
    if (r < 0) {
        return r;
    }
    uint8_t digest[RB_TLS_DIGEST_SIZE];
    if (ret_digest) {
        const char *pems[] = { ca, cert, key, crl };
        r = digest_files(pems, ARRAY_SIZE(pems), digest);
        if (r < 0) {
            return errmsg_fail(ret_error, r, "TLS: cannot hash the PEM files: %s", errstr(r));
        }
    }

    nng_tls_config *cfg = NULL;
    int rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        return errmsg_fail(ret_error, rb_nng_errno(rv), "TLS: %s", nng_strerror(rv));
    }
    const char *what = "CA or CRL";
    rv = nng_tls_config_ca_chain(cfg, ca, crl);
    if (rv == 0) {
        what = "certificate or key";
        rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
    }
    if (rv == 0) {
        what = "authentication mode";
        rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
    }
    if (rv == 0 && !server && f->server_name) {
        what = "server name";
        rv = nng_tls_config_server_name(cfg, f->server_name);
    }
    if (rv != 0) {
        nng_tls_config_free(cfg);
        return errmsg_fail(ret_error, -EPROTO, "TLS refused the %s (%s, %s, %s%s%s): %s", what,
                           f->ca, f->cert, f->key, f->crl ? ", " : "", f->crl ? f->crl : "",
                           nng_strerror(rv));
    }
    if (ret_digest) {
        memcpy(ret_digest, digest, sizeof(digest));
    }
    *ret = cfg;
    return 0;
}
