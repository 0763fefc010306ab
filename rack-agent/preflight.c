#include "preflight.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "identity.h"
#include "pki.h"
#include "render/context.h"
#include "util.h"

static void check_interfaces(const agent_config *cfg, diag *d)
{
    for (size_t i = 0; i < cfg->n_interfaces; i++) {
        if (if_nametoindex(cfg->interfaces[i]) == 0) {
            diag_add(d, cfg->path, 0, "[dhcp6] interfaces: no interface named %s on this machine",
                     cfg->interfaces[i]);
        }
    }
}

/* Binding port 0 of the address tells whether the address is ours
 * (EADDRNOTAVAIL otherwise) without touching the port the daemon will use,
 * which may be held by the running agent being checked. */
static void check_listen(const agent_config *cfg, diag *d, const char *what, int type,
                         const struct sockaddr_in6 *listen)
{
    struct sockaddr_in6 probe = *listen;
    probe.sin6_port = 0;
    int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        diag_add(d, cfg->path, 0, "%s: cannot create a socket: %s", what, strerror(errno));
        return;
    }
    if (bind(fd, (const struct sockaddr *)&probe, sizeof(probe)) < 0) {
        char addr[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &listen->sin6_addr, addr, sizeof(addr));
        diag_add(d, cfg->path, 0, "%s: cannot listen on [%s]: %s", what, addr, strerror(errno));
    }
    close(fd);
}

/* The certificate the uplink presents: readable, its key matching, an
 * agent's, for this rack. */
static int check_own_identity(const agent_config *cfg, diag *d, pki_prover **ret)
{
    pki_prover *self = NULL;
    pki_reason reason = { { 0 } };
    /* The uplink's TLS configuration refuses a key others can read. */
    int r = pki_key_file_check(cfg->controller_key, &reason);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[controller] key %s: %s", cfg->controller_key,
                 reason.text[0] ? reason.text : errstr(r));
        return r;
    }
    r = pki_prover_load(cfg->controller_cert, cfg->controller_key, &self, &reason);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[controller] cert %s / key %s: %s", cfg->controller_cert,
                 cfg->controller_key, reason.text[0] ? reason.text : errstr(r));
        return r;
    }
    const pki_identity *id = pki_prover_identity(self);
    char rack[PKI_NAME_MAX + 1] = "";
    unsigned instance = 0;
    if (id->role != PKI_ROLE_AGENT) {
        diag_add(d, cfg->path, 0, "[controller] cert %s is a %s certificate, not an agent's",
                 cfg->controller_cert, pki_role_to_string(id->role));
        r = -EINVAL;
    } else if (pki_agent_name_split(id->name, rack, &instance) < 0 || !streq(rack, cfg->rack)) {
        /* rack-a's agent 2 ("rack-a/2") is rack-a's too */
        diag_add(d, cfg->path, 0,
                 "[controller] cert %s is rack %s's, but [agent] rack is %s (the controller "
                 "would send this agent another rack's intents)",
                 cfg->controller_cert, rack[0] ? rack : id->name, cfg->rack);
        r = -EINVAL;
    }
    if (r < 0) {
        pki_prover_free(self);
        return r;
    }
    *ret = self;
    return 0;
}

/* [deploy] ramdisk holds what build-ramdisk.sh writes: a non-empty regular
 * vmlinuz and initrd.img, readable (the agent opens them anew for every
 * request, so a rebuilt ramdisk is served without a restart). */
static void check_deploy_ramdisk(const agent_config *cfg, diag *d)
{
    static const char *const names[] = { RENDER_DEPLOY_KERNEL_NAME, RENDER_DEPLOY_INITRD_NAME };
    const char *dir = cfg->deploy_ramdisk;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        diag_add(d, cfg->path, 0,
                 "[deploy] ramdisk %s: %s (image profiles cannot be served; build it with "
                 "deploy-ramdisk/build-ramdisk.sh %s)",
                 dir, strerror(errno), dir);
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        int fd = openat(dfd, names[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        const char *why = NULL;
        if (fd < 0) {
            why = strerror(errno);
        } else if (fstat(fd, &st) < 0) {
            why = strerror(errno);
        } else if (!S_ISREG(st.st_mode)) {
            why = "not a regular file";
        } else if (st.st_size == 0) {
            why = "empty";
        }
        if (fd >= 0) {
            close(fd);
        }
        if (why) {
            diag_add(d, cfg->path, 0,
                     "[deploy] ramdisk %s: %s: %s (image profiles cannot be served; build it "
                     "with deploy-ramdisk/build-ramdisk.sh %s)",
                     dir, names[i], why, dir);
        }
    }
    close(dfd);
}

int agent_preflight_image_profiles(const agent_config *cfg, const intent_set *set, diag *d)
{
    if (cfg->deploy_ramdisk || !set) {
        return 0;
    }
    size_t before = diag_count(d);
    for (size_t i = 0; i < intent_set_n_profiles(set); i++) {
        const model_profile *p = intent_set_profile_at(set, i);
        if (p->kind == PROFILE_IMAGE) {
            diag_add(d, cfg->hosts_path, 0,
                     "profile %s is kind = image, but [deploy] ramdisk is not set in %s: its "
                     "hosts cannot be served (set it to a directory that "
                     "deploy-ramdisk/build-ramdisk.sh filled)",
                     p->name, cfg->path);
        }
    }
    return diag_count(d) > before ? -EINVAL : 0;
}

int agent_preflight_trust(const agent_config *cfg, diag *d)
{
    if (!cfg->has_controller) {
        return 0;
    }
    pki_prover *self = NULL;
    /* NULL diag: agent_preflight() reports these problems. */
    int r = check_own_identity(cfg, NULL, &self);
    if (r < 0) {
        return 0;
    }
    pki_verifier *v = NULL;
    pki_reason reason = { { 0 } };
    /* The server name matters only to identity proofs; any will do here. */
    r = pki_verifier_new(cfg->controller_ca, cfg->controller_crl, "preflight", &v, &reason);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[controller] ca %s%s%s: %s", cfg->controller_ca,
                 cfg->controller_crl ? " / crl " : "",
                 cfg->controller_crl ? cfg->controller_crl : "",
                 reason.text[0] ? reason.text : errstr(r));
        pki_prover_free(self);
        return -EINVAL;
    }
    size_t pem_len = 0;
    const char *pem = pki_prover_cert_pem(self, &pem_len);
    pki_identity checked;
    r = pki_verifier_check_cert(v, pem, pem_len, PKI_ROLE_AGENT, &checked, &reason);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[controller] cert %s is refused by ca %s%s%s: %s",
                 cfg->controller_cert, cfg->controller_ca, cfg->controller_crl ? " / crl " : "",
                 cfg->controller_crl ? cfg->controller_crl : "",
                 reason.text[0] ? reason.text : errstr(r));
    }
    pki_verifier_free(v);
    pki_prover_free(self);
    return r < 0 ? -EINVAL : 0;
}

int agent_preflight(const agent_config *cfg, diag *d)
{
    size_t before = diag_count(d);
    check_interfaces(cfg, d);
    check_listen(cfg, d, "[http] listen", SOCK_STREAM, &cfg->http_listen);
    if (cfg->tftp_enabled) {
        check_listen(cfg, d, "[tftp] listen", SOCK_DGRAM, &cfg->tftp_listen);
    }
    if (cfg->deploy_ramdisk) {
        check_deploy_ramdisk(cfg, d);
    }
    if (cfg->has_controller) {
        pki_prover *self = NULL;
        if (check_own_identity(cfg, d, &self) == 0) {
            pki_prover_free(self);
        }
    }
    return diag_count(d) > before ? -EINVAL : 0;
}
