/* pki: certificates carry their identity, the verifier refuses what it must,
 * and the identity handshake cannot be forged, replayed or redirected.
 *
 * The fixture builds a real CA directory with the library (the same code
 * rackboot-pki runs), plus a second, unrelated CA. */
#include <errno.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "identity.h"
#include "pki-internal.h"
#include "pki.h"

#define SERVER_NAME "ctl.example.test"

static char fleet_dir[64];
static char other_dir[64];

static void path_of(char *buf, size_t size, const char *dir, const char *role, const char *name,
                    const char *ext)
{
    int n = snprintf(buf, size, "%s/%s/%s.%s", dir, role, name, ext);
    assert_true(n > 0 && (size_t)n < size);
}

static void file_of(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static char *read_all(const char *path, size_t *ret_len)
{
    char *data = NULL;
    size_t len = 0;
    pki_reason reason = { "" };
    int r = pki_read_file(path, 1 << 20, &data, &len, &reason);
    if (r < 0) {
        fail_msg("%s: %s", path, reason.text);
    }
    if (ret_len) {
        *ret_len = len;
    }
    return data;
}

static void issue(pki_ca *ca, pki_role role, const char *name, time_t not_before, time_t not_after)
{
    pki_reason reason = { "" };
    pki_issue_request req = {
        .role = role, .name = name, .not_before = not_before, .not_after = not_after
    };
    int r = pki_ca_issue(ca, &req, &reason);
    if (r < 0) {
        fail_msg("issue %s: %s", name, reason.text);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    time_t now = time(NULL);
    time_t year = now + 365 * 86400;
    pki_reason reason = { "" };
    pki_ca *ca = NULL;

    strcpy(fleet_dir, "/tmp/rb-test-pki-XXXXXX");
    strcpy(other_dir, "/tmp/rb-test-pki-other-XXXXXX");
    assert_non_null(mkdtemp(fleet_dir));
    assert_non_null(mkdtemp(other_dir));

    if (pki_ca_init(fleet_dir, "test-fleet-ca", 3650, &reason) < 0) {
        fail_msg("init: %s", reason.text);
    }
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);
    issue(ca, PKI_ROLE_CONTROLLER, SERVER_NAME, now - 60, year);
    issue(ca, PKI_ROLE_AGENT, "rack-a1", now - 60, year);
    issue(ca, PKI_ROLE_AGENT, "rack-b2", now - 60, year);
    issue(ca, PKI_ROLE_OPERATOR, "alice", now - 60, year);
    issue(ca, PKI_ROLE_VIEWER, "val", now - 60, year);
    issue(ca, PKI_ROLE_AGENT, "rack-revoked", now - 60, year);
    issue(ca, PKI_ROLE_AGENT, "rack-late", now - 60, year);
    issue(ca, PKI_ROLE_AGENT, "rack-old", now - 10 * 86400, now - 86400);
    assert_int_equal(pki_ca_revoke(ca, PKI_ROLE_AGENT, "rack-revoked", 30, &reason), 1);
    ca = pki_ca_free(ca);

    /* Another CA issuing the same name: only the CA tells them apart. */
    assert_int_equal(pki_ca_init(other_dir, "other-ca", 3650, &reason), 0);
    assert_int_equal(pki_ca_open(other_dir, &ca, &reason), 0);
    issue(ca, PKI_ROLE_AGENT, "rack-a1", now - 60, year);
    ca = pki_ca_free(ca);
    return 0;
}

static int teardown(void **state)
{
    nftw(fleet_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(other_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static pki_verifier *verifier_new(bool with_crl)
{
    char ca_path[128], crl_path[128];
    file_of(ca_path, sizeof(ca_path), fleet_dir, "ca.crt");
    file_of(crl_path, sizeof(crl_path), fleet_dir, "crl.pem");
    pki_verifier *v = NULL;
    pki_reason reason = { "" };
    int r = pki_verifier_new(ca_path, with_crl ? crl_path : NULL, SERVER_NAME, &v, &reason);
    if (r < 0) {
        fail_msg("verifier: %s", reason.text);
    }
    return v;
}

/* Checks the certificate DIR/role/name.crt as `expected`. */
static int check(pki_verifier *v, const char *dir, const char *role, const char *name,
                 pki_role expected, pki_identity *ret, pki_reason *reason)
{
    char path[192];
    path_of(path, sizeof(path), dir, role, name, "crt");
    size_t len;
    char *pem = read_all(path, &len);
    int r = pki_verifier_check_cert(v, pem, len, expected, ret, reason);
    free(pem);
    return r;
}

static void test_roles_and_names(void **state)
{
    pki_role role;
    assert_int_equal(pki_role_from_string("agent", &role), 0);
    assert_int_equal(role, PKI_ROLE_AGENT);
    assert_int_equal(pki_role_from_string("admin", &role), -EINVAL);
    assert_string_equal(pki_role_to_string(PKI_ROLE_CONTROLLER), "controller");
    assert_null(pki_role_to_string(_PKI_ROLE_MAX));

    assert_true(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1"));
    assert_true(pki_name_is_valid(PKI_ROLE_OPERATOR, "j.doe_2"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, ""));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, ".."));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "-rf"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "a/b"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack a1"));
    char long_name[PKI_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[PKI_NAME_MAX + 1] = '\0';
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, long_name));
    long_name[PKI_NAME_MAX] = '\0';
    assert_true(pki_name_is_valid(PKI_ROLE_AGENT, long_name));
    /* Controllers are reached by DNS name, so they must be host names. */
    assert_true(pki_name_is_valid(PKI_ROLE_CONTROLLER, "ctl-1.example.test"));
    assert_false(pki_name_is_valid(PKI_ROLE_CONTROLLER, "ctl_1.example.test"));
    assert_false(pki_name_is_valid(PKI_ROLE_CONTROLLER, "ctl..example"));
    assert_false(pki_name_is_valid(PKI_ROLE_CONTROLLER, "ctl-.example"));
}

/* A rack's agents: RACK (agent 1) and RACK/2..RACK/9, one name each; the
 * instance form is an agent's only, and the CA's files hold '@' for '/'. */
static void test_agent_instances(void **state)
{
    assert_true(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/2"));
    assert_true(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/9"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/1"));  /* that is rack-a1 */
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/02")); /* that is rack-a1/2 */
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/0"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/10"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "rack-a1/"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "/2"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "../2"));
    assert_false(pki_name_is_valid(PKI_ROLE_AGENT, "a/2/3"));
    assert_false(pki_name_is_valid(PKI_ROLE_OPERATOR, "alice/2"));
    assert_false(pki_name_is_valid(PKI_ROLE_CONTROLLER, "ctl/2"));

    char rack[PKI_NAME_MAX + 1];
    unsigned instance = 0;
    assert_int_equal(pki_agent_name_split("rack-a1", rack, &instance), 0);
    assert_string_equal(rack, "rack-a1");
    assert_int_equal(instance, 1);
    assert_int_equal(pki_agent_name_split("rack-a1/2", rack, &instance), 0);
    assert_string_equal(rack, "rack-a1");
    assert_int_equal(instance, 2);
    assert_int_equal(pki_agent_name_split("rack-a1/1", rack, &instance), -EINVAL);

    char name[PKI_NAME_MAX + 1], file[PKI_NAME_MAX + 1];
    assert_int_equal(pki_agent_name("rack-a1", 1, name), 0);
    assert_string_equal(name, "rack-a1");
    assert_int_equal(pki_agent_name("rack-a1", 2, name), 0);
    assert_string_equal(name, "rack-a1/2");
    assert_int_equal(pki_agent_name("rack-a1", 0, name), -EINVAL);
    assert_int_equal(pki_agent_name("rack-a1", PKI_AGENT_INSTANCE_MAX + 1, name), -EINVAL);
    assert_int_equal(pki_agent_name("rack/a", 2, name), -EINVAL);
    /* the whole name is at most PKI_NAME_MAX: a 62-character rack has no "/2" */
    char rack62[PKI_NAME_MAX];
    memset(rack62, 'r', sizeof(rack62) - 1);
    rack62[sizeof(rack62) - 1] = '\0';
    assert_int_equal(pki_agent_name(rack62, 1, name), 0);
    assert_int_equal(pki_agent_name(rack62, 2, name), -EINVAL);
    rack62[PKI_NAME_MAX - 2] = '\0';
    assert_int_equal(pki_agent_name(rack62, 2, name), 0);
    assert_int_equal(strlen(name), PKI_NAME_MAX);
    assert_true(pki_name_is_valid(PKI_ROLE_AGENT, name));

    pki_name_to_file("rack-a1/2", file);
    assert_string_equal(file, "rack-a1@2");
    pki_name_to_file("alice", file);
    assert_string_equal(file, "alice");
}

static void test_issued_certs_carry_identity(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };

    assert_int_equal(check(v, fleet_dir, "agent", "rack-a1", PKI_ROLE_AGENT, &id, &reason), 0);
    assert_int_equal(id.role, PKI_ROLE_AGENT);
    assert_string_equal(id.name, "rack-a1");

    assert_int_equal(check(v, fleet_dir, "operator", "alice", PKI_ROLE_OPERATOR, &id, &reason), 0);
    assert_int_equal(id.role, PKI_ROLE_OPERATOR);
    assert_string_equal(id.name, "alice");

    assert_int_equal(
        check(v, fleet_dir, "controller", SERVER_NAME, PKI_ROLE_CONTROLLER, &id, &reason), 0);
    assert_int_equal(id.role, PKI_ROLE_CONTROLLER);
    assert_string_equal(id.name, SERVER_NAME);

    /* The subject says the same, and the controller's DNS name is a SAN. */
    char path[192];
    path_of(path, sizeof(path), fleet_dir, "controller", SERVER_NAME, "crt");
    size_t len;
    char *pem = read_all(path, &len);
    X509 *x = NULL;
    assert_int_equal(pki_cert_parse_pem(pem, len, &x, NULL), 0);
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    assert_string_equal(subject, "/O=rackboot/OU=controller/CN=" SERVER_NAME);
    assert_int_equal(X509_check_host(x, SERVER_NAME, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL),
                     1);
    /* The identity extension must be non-critical for mbedTLS. */
    ASN1_OBJECT *oid = pki_identity_oid_new();
    int idx = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 0);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    free(pem);
    pki_verifier_free(v);
}

static void test_wrong_role_refused(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id = { .name = "untouched" };
    pki_reason reason = { "" };

    assert_int_equal(check(v, fleet_dir, "agent", "rack-a1", PKI_ROLE_OPERATOR, &id, &reason),
                     -EACCES);
    assert_non_null(strstr(reason.text, "expected a operator"));
    assert_string_equal(id.name, "untouched"); /* ret_* only on success */
    /* An agent cannot pass as the controller: no serverAuth. */
    assert_int_equal(check(v, fleet_dir, "agent", "rack-a1", PKI_ROLE_CONTROLLER, &id, &reason),
                     -EACCES);
    assert_non_null(strstr(reason.text, "serverAuth"));
    /* The controller's certificate has no clientAuth: it cannot dial in as an agent. */
    assert_int_equal(check(v, fleet_dir, "controller", SERVER_NAME, PKI_ROLE_AGENT, &id, &reason),
                     -EACCES);
    pki_verifier_free(v);
}

static void test_other_ca_refused(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };
    assert_int_equal(check(v, other_dir, "agent", "rack-a1", PKI_ROLE_AGENT, &id, &reason),
                     -EACCES);
    assert_non_null(strstr(reason.text, "certificate refused"));
    pki_verifier_free(v);
}

static void test_revoked_refused(void **state)
{
    pki_identity id;
    pki_reason reason = { "" };
    /* Without the CRL the certificate is fine: the CRL is what refuses it. */
    pki_verifier *v = verifier_new(false);
    assert_int_equal(check(v, fleet_dir, "agent", "rack-revoked", PKI_ROLE_AGENT, &id, &reason), 0);
    v = pki_verifier_free(v);

    v = verifier_new(true);
    assert_int_equal(check(v, fleet_dir, "agent", "rack-revoked", PKI_ROLE_AGENT, &id, &reason),
                     -EKEYREJECTED);
    assert_non_null(strstr(reason.text, "revoked"));
    pki_verifier_free(v);
}

static void test_reload_crl(void **state)
{
    pki_identity id;
    pki_reason reason = { "" };
    pki_verifier *v = verifier_new(true);
    assert_int_equal(check(v, fleet_dir, "agent", "rack-late", PKI_ROLE_AGENT, &id, &reason), 0);

    pki_ca *ca = NULL;
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);
    assert_int_equal(pki_ca_revoke(ca, PKI_ROLE_AGENT, "rack-late", 30, &reason), 1);
    /* Revoking twice says so rather than pretending. */
    assert_int_equal(pki_ca_revoke(ca, PKI_ROLE_AGENT, "rack-late", 30, &reason), -EALREADY);
    assert_int_equal(pki_ca_revoke(ca, PKI_ROLE_AGENT, "rack-never", 30, &reason), -ENOENT);
    pki_ca_free(ca);

    /* The loaded CRL still says good until the daemon reloads (SIGHUP). */
    assert_int_equal(check(v, fleet_dir, "agent", "rack-late", PKI_ROLE_AGENT, &id, &reason), 0);
    assert_int_equal(pki_verifier_reload_crl(v, &reason), 0);
    assert_int_equal(check(v, fleet_dir, "agent", "rack-late", PKI_ROLE_AGENT, &id, &reason),
                     -EKEYREJECTED);
    assert_int_equal(check(v, fleet_dir, "agent", "rack-a1", PKI_ROLE_AGENT, &id, &reason), 0);
    pki_verifier_free(v);
}

static void test_crl_from_other_ca_refused(void **state)
{
    char ca_path[128], crl_path[128];
    file_of(ca_path, sizeof(ca_path), fleet_dir, "ca.crt");
    file_of(crl_path, sizeof(crl_path), other_dir, "crl.pem");
    pki_verifier *v = NULL;
    pki_reason reason = { "" };
    assert_int_equal(pki_verifier_new(ca_path, crl_path, SERVER_NAME, &v, &reason), -EBADMSG);
    assert_null(v);
    assert_non_null(strstr(reason.text, "not signed by the CA"));
    /* A leaf is no CA file. */
    path_of(ca_path, sizeof(ca_path), fleet_dir, "agent", "rack-a1", "crt");
    assert_int_equal(pki_verifier_new(ca_path, NULL, SERVER_NAME, &v, &reason), -EBADMSG);
}

static void test_expired_refused(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };
    assert_int_equal(check(v, fleet_dir, "agent", "rack-old", PKI_ROLE_AGENT, &id, &reason),
                     -EKEYEXPIRED);
    assert_non_null(strstr(reason.text, "expired"));

    pki_ca *ca = NULL;
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);
    size_t n = pki_ca_count(ca);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        const pki_ca_entry *e = pki_ca_entry_at(ca, i);
        if (streq(e->name, "rack-old")) {
            assert_int_equal(pki_ca_entry_status(e, time(NULL)), PKI_CERT_EXPIRED);
            seen = true;
        }
    }
    assert_true(seen);
    pki_ca_free(ca);
    pki_verifier_free(v);
}

static void test_garbage_refused(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };
    static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_int_equal(
        pki_verifier_check_cert(v, junk, sizeof(junk) - 1, PKI_ROLE_AGENT, &id, &reason), -EBADMSG);
    assert_int_equal(pki_verifier_check_cert(v, "", 0, PKI_ROLE_AGENT, &id, NULL), -EBADMSG);
    char *big = calloc(1, PKI_CERT_PEM_MAX + 1);
    assert_non_null(big);
    assert_int_equal(
        pki_verifier_check_cert(v, big, PKI_CERT_PEM_MAX + 1, PKI_ROLE_AGENT, &id, &reason),
        -E2BIG);
    free(big);
    pki_verifier_free(v);
}

/* A certificate signed by the fleet CA but not made by rackboot-pki: the
 * verifier must not trust its subject alone, nor a subject that disagrees
 * with the extension. `ext` NULL leaves the extension out. */
static char *forge(const char *ou, const char *cn, const pki_identity *ext, size_t *ret_len)
{
    char path[128];
    file_of(path, sizeof(path), fleet_dir, "ca.key");
    char *key_pem = read_all(path, NULL);
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *ca_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    free(key_pem);
    file_of(path, sizeof(path), fleet_dir, "ca.crt");
    size_t len;
    char *ca_pem = read_all(path, &len);
    X509 *ca = NULL;
    assert_int_equal(pki_cert_parse_pem(ca_pem, len, &ca, NULL), 0);
    free(ca_pem);

    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"rackboot", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    assert_true(X509_set_version(x, X509_VERSION_3));
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_set_pubkey(x, key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *value;
    } exts[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_key_usage, "critical,digitalSignature" },
        { NID_ext_key_usage, "clientAuth" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
    };
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (ext) {
        assert_int_equal(pki_cert_add_identity(x, ext), 0);
    }
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *pem = malloc((size_t)n + 1);
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    *ret_len = (size_t)n;
    BIO_free(bio);
    X509_NAME_free(name);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return pem;
}

static void test_identity_extension_required_and_consistent(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };
    size_t len;

    /* Control: a well-formed forgery-by-the-CA passes, so the refusals
     * below are about the identity, not about the test's certificate. */
    pki_identity good = { .role = PKI_ROLE_AGENT, .name = "rack-z9" };
    char *pem = forge("agent", "rack-z9", &good, &len);
    assert_int_equal(pki_verifier_check_cert(v, pem, len, PKI_ROLE_AGENT, &id, &reason), 0);
    assert_string_equal(id.name, "rack-z9");
    free(pem);

    pem = forge("agent", "rack-z9", NULL, &len);
    assert_int_equal(pki_verifier_check_cert(v, pem, len, PKI_ROLE_AGENT, &id, &reason), -EACCES);
    assert_non_null(strstr(reason.text, "no rackboot identity extension"));
    free(pem);

    pki_identity other = { .role = PKI_ROLE_AGENT, .name = "rack-b2" };
    pem = forge("agent", "rack-z9", &other, &len);
    assert_int_equal(pki_verifier_check_cert(v, pem, len, PKI_ROLE_AGENT, &id, &reason), -EACCES);
    assert_non_null(strstr(reason.text, "subject does not match"));
    free(pem);
    pki_verifier_free(v);
}

/* --- the handshake ------------------------------------------------------ */

static pki_prover *prover_load(const char *role, const char *name, const char *key_name)
{
    char crt[192], key[192];
    path_of(crt, sizeof(crt), fleet_dir, role, name, "crt");
    path_of(key, sizeof(key), fleet_dir, role, key_name, "key");
    pki_prover *p = NULL;
    pki_reason reason = { "" };
    int r = pki_prover_load(crt, key, &p, &reason);
    if (r < 0) {
        fail_msg("prover %s: %s", name, reason.text);
    }
    return p;
}

static pki_challenge *challenge_for(pki_verifier *v, const pki_prover *p, pki_role role)
{
    size_t len;
    const char *pem = pki_prover_cert_pem(p, &len);
    pki_challenge *c = NULL;
    pki_reason reason = { "" };
    int r = pki_challenge_new(v, pem, len, role, &c, &reason);
    if (r < 0) {
        fail_msg("challenge: %s", reason.text);
    }
    return c;
}

static void sign(const pki_prover *p, const pki_challenge *c, const char *server_name,
                 uint8_t **sig, size_t *sig_len)
{
    assert_int_equal(
        pki_prover_sign(p, pki_challenge_nonce(c), PKI_NONCE_SIZE, server_name, sig, sig_len), 0);
}

static void test_handshake_agent_proves_rack(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *p = prover_load("agent", "rack-a1", "rack-a1");
    assert_string_equal(pki_prover_identity(p)->name, "rack-a1");
    pki_challenge *c = challenge_for(v, p, PKI_ROLE_AGENT);

    uint8_t *sig;
    size_t sig_len;
    sign(p, c, SERVER_NAME, &sig, &sig_len);
    pki_identity id;
    pki_reason reason = { "" };
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, sig, sig_len, &id, &reason), 0);
    assert_int_equal(id.role, PKI_ROLE_AGENT);
    assert_string_equal(id.name, "rack-a1");

    /* The same, valid proof again: the challenge is spent. */
    pki_identity untouched = { .name = "x" };
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, sig, sig_len, &untouched, &reason),
                     -ESTALE);
    assert_string_equal(untouched.name, "x");
    free(sig);
    pki_challenge_free(c);
    pki_prover_free(p);
    pki_verifier_free(v);
}

static void test_handshake_failed_attempt_spends_challenge(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *p = prover_load("agent", "rack-a1", "rack-a1");
    pki_challenge *c = challenge_for(v, p, PKI_ROLE_AGENT);
    uint8_t *sig;
    size_t sig_len;
    sign(p, c, SERVER_NAME, &sig, &sig_len);
    pki_identity id;
    uint8_t bad[8] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, bad, sizeof(bad), &id, NULL), -EACCES);
    /* One guess per nonce: the good proof is now too late. */
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, sig, sig_len, &id, NULL), -ESTALE);
    free(sig);
    pki_challenge_free(c);
    pki_prover_free(p);
    pki_verifier_free(v);
}

static void test_handshake_other_key_fails(void **state)
{
    pki_verifier *v = verifier_new(true);
    char crt[192], key[192];
    path_of(crt, sizeof(crt), fleet_dir, "agent", "rack-a1", "crt");
    path_of(key, sizeof(key), fleet_dir, "agent", "rack-b2", "key");
    pki_prover *mismatched = NULL;
    pki_reason reason = { "" };
    assert_int_equal(pki_prover_load(crt, key, &mismatched, &reason), -EKEYREJECTED);
    assert_null(mismatched);

    /* rack-b2 holds a good certificate and key of its own, and presents
     * rack-a1's certificate (which is no secret) in its hello. */
    pki_prover *a1 = prover_load("agent", "rack-a1", "rack-a1");
    pki_prover *b2 = prover_load("agent", "rack-b2", "rack-b2");
    pki_challenge *c = challenge_for(v, a1, PKI_ROLE_AGENT);
    uint8_t *sig;
    size_t sig_len;
    sign(b2, c, SERVER_NAME, &sig, &sig_len);
    pki_identity id;
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, sig, sig_len, &id, &reason), -EACCES);
    assert_non_null(strstr(reason.text, "does not verify"));
    free(sig);
    pki_challenge_free(c);
    pki_prover_free(a1);
    pki_prover_free(b2);
    pki_verifier_free(v);
}

static void test_handshake_replay_fails(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *p = prover_load("agent", "rack-a1", "rack-a1");
    pki_challenge *a = challenge_for(v, p, PKI_ROLE_AGENT);
    pki_challenge *b = challenge_for(v, p, PKI_ROLE_AGENT);
    assert_memory_not_equal(pki_challenge_nonce(a), pki_challenge_nonce(b), PKI_NONCE_SIZE);

    uint8_t *sig;
    size_t sig_len;
    sign(p, a, SERVER_NAME, &sig, &sig_len);
    pki_identity id;
    assert_int_equal(pki_challenge_verify(b, SERVER_NAME, sig, sig_len, &id, NULL), -EACCES);
    /* The proof was good for its own challenge. */
    assert_int_equal(pki_challenge_verify(a, SERVER_NAME, sig, sig_len, &id, NULL), 0);
    free(sig);
    pki_challenge_free(a);
    pki_challenge_free(b);
    pki_prover_free(p);
    pki_verifier_free(v);
}

static void test_handshake_other_server_name_fails(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *p = prover_load("agent", "rack-a1", "rack-a1");
    pki_identity id;
    pki_reason reason = { "" };
    uint8_t *sig;
    size_t sig_len;

    /* Honest about the name it signed for: refused by name. */
    pki_challenge *c = challenge_for(v, p, PKI_ROLE_AGENT);
    sign(p, c, "other.example.test", &sig, &sig_len);
    assert_int_equal(pki_challenge_verify(c, "other.example.test", sig, sig_len, &id, &reason),
                     -EACCES);
    assert_non_null(strstr(reason.text, "server name"));
    /* A relay that swaps the name in: refused by the signature. */
    c = pki_challenge_free(c);
    free(sig);
    c = challenge_for(v, p, PKI_ROLE_AGENT);
    sign(p, c, "other.example.test", &sig, &sig_len);
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, sig, sig_len, &id, &reason), -EACCES);
    assert_non_null(strstr(reason.text, "does not verify"));

    free(sig);
    pki_challenge_free(c);
    pki_prover_free(p);
    pki_verifier_free(v);
}

static void test_handshake_wrong_role_fails(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *op = prover_load("operator", "alice", "alice");
    size_t len;
    const char *pem = pki_prover_cert_pem(op, &len);
    pki_challenge *c = NULL;
    pki_reason reason = { "" };
    assert_int_equal(pki_challenge_new(v, pem, len, PKI_ROLE_AGENT, &c, &reason), -EACCES);
    assert_null(c);

    /* Revoked and other-CA certificates never get a nonce either. */
    pki_prover *revoked = prover_load("agent", "rack-revoked", "rack-revoked");
    pem = pki_prover_cert_pem(revoked, &len);
    assert_int_equal(pki_challenge_new(v, pem, len, PKI_ROLE_AGENT, &c, &reason), -EKEYREJECTED);
    assert_null(c);
    pki_prover_free(revoked);
    pki_prover_free(op);
    pki_verifier_free(v);
}

static void test_handshake_malformed_input(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_prover *p = prover_load("agent", "rack-a1", "rack-a1");
    uint8_t nonce[PKI_NONCE_SIZE] = { 0 };
    uint8_t *sig = NULL;
    size_t sig_len;
    assert_int_equal(pki_prover_sign(p, nonce, PKI_NONCE_SIZE - 1, SERVER_NAME, &sig, &sig_len),
                     -EBADMSG);
    assert_int_equal(pki_prover_sign(p, nonce, PKI_NONCE_SIZE, "", &sig, &sig_len), -EBADMSG);
    assert_null(sig);

    pki_challenge *c = challenge_for(v, p, PKI_ROLE_AGENT);
    static uint8_t huge[PKI_SIGNATURE_MAX + 1];
    pki_identity id;
    assert_int_equal(pki_challenge_verify(c, SERVER_NAME, huge, sizeof(huge), &id, NULL), -EBADMSG);
    pki_challenge_free(c);
    pki_prover_free(p);
    pki_verifier_free(v);
}

static void test_ca_refuses_overwrite_and_bad_requests(void **state)
{
    pki_ca *ca = NULL;
    pki_reason reason = { "" };
    assert_int_equal(pki_ca_init(fleet_dir, "again", 3650, &reason), -EEXIST);
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);

    /* A second open waits for no one: the directory is locked. */
    pki_ca *second = NULL;
    assert_int_equal(pki_ca_open(fleet_dir, &second, &reason), -EBUSY);

    char path[192];
    path_of(path, sizeof(path), fleet_dir, "agent", "rack-a1", "crt");
    size_t before_len;
    char *before = read_all(path, &before_len);
    time_t now = time(NULL);
    pki_issue_request req = {
        .role = PKI_ROLE_AGENT, .name = "rack-a1", .not_before = now, .not_after = now + 86400
    };
    assert_int_equal(pki_ca_issue(ca, &req, &reason), -EEXIST);
    size_t after_len;
    char *after = read_all(path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);

    req.name = "../escape";
    assert_int_equal(pki_ca_issue(ca, &req, &reason), -EINVAL);
    req.name = "rack-z1";
    req.not_after = now + 20 * 365 * 86400L; /* past the CA */
    assert_int_equal(pki_ca_issue(ca, &req, &reason), -EINVAL);
    const char *sans[] = { "not a name" };
    req = (pki_issue_request){ .role = PKI_ROLE_CONTROLLER,
                               .name = "ctl2.example.test",
                               .sans = sans,
                               .n_sans = 1,
                               .not_before = now,
                               .not_after = now + 86400 };
    assert_int_equal(pki_ca_issue(ca, &req, &reason), -EINVAL);
    path_of(path, sizeof(path), fleet_dir, "controller", "ctl2.example.test", "key");
    assert_int_equal(access(path, F_OK), -1);

    /* Keys are 0600. */
    path_of(path, sizeof(path), fleet_dir, "agent", "rack-a1", "key");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    pki_ca_free(ca);
}

/* A viewer is a person on the operators' API: the operators' listener
 * accepts its certificate (the API decides what it may do), no other does. */
static void test_viewer_role(void **state)
{
    pki_verifier *v = verifier_new(true);
    pki_identity id;
    pki_reason reason = { "" };
    pki_role role;
    assert_int_equal(pki_role_from_string("viewer", &role), 0);
    assert_int_equal(role, PKI_ROLE_VIEWER);
    assert_string_equal(pki_role_to_string(PKI_ROLE_VIEWER), "viewer");
    assert_int_equal(check(v, fleet_dir, "viewer", "val", PKI_ROLE_OPERATOR, &id, &reason), 0);
    assert_int_equal(id.role, PKI_ROLE_VIEWER);
    assert_string_equal(id.name, "val");
    assert_int_equal(check(v, fleet_dir, "viewer", "val", PKI_ROLE_AGENT, &id, &reason), -EACCES);
    assert_int_equal(check(v, fleet_dir, "viewer", "val", PKI_ROLE_CONTROLLER, &id, &reason),
                     -EACCES);
    /* and an operator's certificate is not taken where a viewer is meant */
    assert_false(pki_role_accepts(PKI_ROLE_VIEWER, PKI_ROLE_OPERATOR));
    assert_false(pki_role_accepts(PKI_ROLE_AGENT, PKI_ROLE_VIEWER));
    pki_verifier_free(v);
}

/* A key file group or others can read is refused, naming file and mode. */
static void test_key_file_modes(void **state)
{
    char path[192];
    pki_reason reason = { "" };
    path_of(path, sizeof(path), fleet_dir, "agent", "rack-a1", "key");
    assert_int_equal(pki_key_file_check(path, &reason), 0);
    static const mode_t loose[] = { 0644, 0640, 0604, 0660, 0601 };
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        assert_int_equal(chmod(path, loose[i]), 0);
        reason.text[0] = '\0';
        assert_int_equal(pki_key_file_check(path, &reason), -EACCES);
        char mode[16];
        snprintf(mode, sizeof(mode), "%04o", (unsigned)loose[i]);
        assert_non_null(strstr(reason.text, path));
        assert_non_null(strstr(reason.text, mode));
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(pki_key_file_check(path, &reason), 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(pki_key_file_check("/nonexistent/key", &reason), -ENOENT);

    /* the CA's own key, when the CA is opened */
    char ca_key[128];
    pki_ca *ca = NULL;
    file_of(ca_key, sizeof(ca_key), fleet_dir, "ca.key");
    assert_int_equal(chmod(ca_key, 0644), 0);
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), -EACCES);
    assert_non_null(strstr(reason.text, "0644"));
    assert_null(ca);
    assert_int_equal(chmod(ca_key, 0600), 0);
    assert_int_equal(pki_ca_open(fleet_dir, &ca, &reason), 0);
    pki_ca_free(ca);
}

/* A CA's name is a common name: "ACME Fleet CA" is one. */
static void test_ca_names(void **state)
{
    static const char *const good[] = { "ACME Fleet CA", "Société Générale (lab) #2", "a",
                                        "rackboot-fleet-ca", "x.y_z! ?&'*" };
    static const char *const bad[] = {
        "",
        " lead",
        "trail ",
        "a/b",
        "a\tb",
        "a\nb",
        "a,b",
        "a+b",
        "a=b",
        "a\"b",
        "a\\b",
        "a<b",
        "a>b",
        "a;b",
        "#lead",
        "bad\xc3",
        "\xc0\xaf overlong",
        "c1 \xc2\x85 control",
        "ok\x7f",
        "12345678901234567890123456789012345678901234567890123456789012345",
    };
    char dir[64];
    pki_reason reason = { "" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        strcpy(dir, "/tmp/rb-test-pki-name-XXXXXX");
        assert_non_null(mkdtemp(dir));
        int r = pki_ca_init(dir, good[i], 30, &reason);
        if (r < 0) {
            fail_msg("init --name '%s': %s", good[i], reason.text);
        }
        char path[128], subject[256];
        file_of(path, sizeof(path), dir, "ca.crt");
        size_t len;
        char *pem = read_all(path, &len);
        X509 *x = NULL;
        assert_int_equal(pki_cert_parse_pem(pem, len, &x, NULL), 0);
        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, subject,
                                              sizeof(subject)) > 0);
        assert_string_equal(subject, good[i]);
        X509_free(x);
        free(pem);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    strcpy(dir, "/tmp/rb-test-pki-name-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reason.text[0] = '\0';
        if (pki_ca_init(dir, bad[i], 30, &reason) != -EINVAL) {
            fail_msg("init --name '%s' was not refused", bad[i]);
        }
        assert_non_null(strstr(reason.text, "invalid CA name"));
    }
    char path[128];
    file_of(path, sizeof(path), dir, "ca.key");
    assert_int_equal(access(path, F_OK), -1);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_and_names),
        cmocka_unit_test(test_agent_instances),
        cmocka_unit_test(test_issued_certs_carry_identity),
        cmocka_unit_test(test_wrong_role_refused),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_revoked_refused),
        cmocka_unit_test(test_reload_crl),
        cmocka_unit_test(test_crl_from_other_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_identity_extension_required_and_consistent),
        cmocka_unit_test(test_handshake_agent_proves_rack),
        cmocka_unit_test(test_handshake_failed_attempt_spends_challenge),
        cmocka_unit_test(test_handshake_other_key_fails),
        cmocka_unit_test(test_handshake_replay_fails),
        cmocka_unit_test(test_handshake_other_server_name_fails),
        cmocka_unit_test(test_handshake_wrong_role_fails),
        cmocka_unit_test(test_handshake_malformed_input),
        cmocka_unit_test(test_ca_refuses_overwrite_and_bad_requests),
        cmocka_unit_test(test_viewer_role),
        cmocka_unit_test(test_key_file_modes),
        cmocka_unit_test(test_ca_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
