#include "model/hostsfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hashmap.h"
#include "model/template.h"
#include "parse.h"
#include "sha256.h"
#include "util.h"

typedef struct loader {
    const char *file;
    diag *d;
    unsigned errors;
    const hostsfile_options *defs;
} loader;

#define problem(l, line, ...)                                                                      \
    do {                                                                                           \
        diag_add((l)->d, (l)->file, (line), __VA_ARGS__);                                          \
        (l)->errors++;                                                                             \
    } while (0)

static bool name_valid(const char *s)
{
    if (strempty(s) || strlen(s) > 63) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* "URL sha256=HEX" */
static int parse_image(loader *l, const ini_entry *e, const char *name, image_kind kind,
                       model_profile *p)
{
    const char *v = e->value;
    const char *sp = strrchr(v, ' ');
    const char *tab = strrchr(v, '\t');
    if (!sp || (tab && tab > sp)) {
        sp = tab;
    }
    if (!sp || strncmp(sp + 1, "sha256=", 7) != 0) {
        problem(l, e->line, "%s: expected \"URL sha256=HEX\"", e->key);
        return -EINVAL;
    }
    model_image img = { .kind = kind };
    if (sha256_from_hex(sp + 1 + 7, img.sha256) < 0) {
        problem(l, e->line, "%s: sha256= needs 64 hex digits", e->key);
        return -EINVAL;
    }
    size_t url_len = (size_t)(sp - v);
    while (url_len > 0 && (v[url_len - 1] == ' ' || v[url_len - 1] == '\t')) {
        url_len--;
    }
    /* The schemes the cache fetches (cache/fetch.c): file:// serves a site
     * that keeps its images on a local or mounted disk. */
    if (url_len == 0 || memchr(v, ' ', url_len) || memchr(v, '\t', url_len) ||
        (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0 &&
         strncmp(v, "file:///", 8) != 0)) {
        problem(l, e->line, "%s: the URL must be one http://, https:// or file:/// URL", e->key);
        return -EINVAL;
    }
    for (size_t i = 0; i < p->n_images; i++) {
        if (streq(p->images[i].name, name)) {
            problem(l, e->line, "%s: image \"%s\" given twice", e->key, name);
            return -EEXIST;
        }
    }
    img.url = strndup(v, url_len);
    img.name = strdup(name);
    model_image *grown = realloc(p->images, (p->n_images + 1) * sizeof(*grown));
    if (!img.url || !img.name || !grown) {
        free(img.url);
        free(img.name);
        if (grown) {
            p->images = grown;
        }
        problem(l, e->line, "out of memory");
        return -ENOMEM;
    }
    p->images = grown;
    p->images[p->n_images++] = img;
    return 0;
}

/* A template file named by `e` (kickstart =, user_data =), read relative to
 * the hosts file and checked; NULL after a problem. */
static char *read_template(loader *l, const ini_entry *e, size_t *ret_len)
{
    if (strempty(e->value)) {
        problem(l, e->line, "%s: empty path", e->key);
        return NULL;
    }
    _cleanup_free_ char *path = fileio_path_relative(l->file, e->value);
    void *content = NULL;
    size_t len = 0;
    int r = path ? fileio_read_all(path, HOSTSFILE_MAX_KICKSTART, &content, &len) : -ENOMEM;
    if (r < 0) {
        problem(l, e->line, "%s: cannot read %s: %s", e->key, path ? path : e->value, errstr(r));
        return NULL;
    }
    if (memchr(content, '\0', len)) {
        free(content);
        problem(l, e->line, "%s: %s contains a NUL byte", e->key, path);
        return NULL;
    }
    /* An unknown placeholder is an error now, not a blank at install
     * time. The template's own line is named: it is another file. */
    template_error terr;
    if (template_check(content, len, &terr) < 0) {
        free(content);
        problem(l, e->line, "%s: %s %s", e->key, path, terr.message);
        return NULL;
    }
    if (ret_len) {
        *ret_len = len;
    }
    return content;
}

/* kind = debian-installer: Debian's netboot kernel and initrd, a preseed
 * template, netcfg's static network; what only other kinds take is named
 * at its line. */
static void check_debian_installer(loader *l, hostsfile_profile *pr, bool has_kernel,
                                   bool has_initrd)
{
    const ini_section *s = pr->section;
    const model_profile *p = &pr->p;
    if (!has_kernel || !has_initrd) {
        problem(l, s->line, "[profile %s] kind = debian-installer needs a valid kernel and initrd",
                p->name);
    }
    static const struct {
        const char *key, *why;
    } refused[] = {
        { "kickstart", "kind = debian-installer reads a preseed: preseed = FILE" },
        { "stage2", "not for kind = debian-installer (d-i has no stage2)" },
        { "image", "only for kind = image" },
        { "user_data", "only for kind = image" },
    };
    for (size_t k = 0; k < ARRAY_SIZE(refused); k++) {
        const ini_entry *e = ini_section_find(s, refused[k].key);
        if (e) {
            problem(l, e->line, "%s: %s", refused[k].key, refused[k].why);
        }
    }
    if (p->overlay) {
        problem(l, ini_section_find(s, "overlay")->line,
                "overlay: not for kind = debian-installer (d-i runs no dracut hooks)");
    }
    if (p->ip != IP_MODE_STATIC) {
        problem(l, ini_section_find(s, "ip")->line,
                "ip: kind = debian-installer configures the host's static address (netcfg)");
    }
}

static void parse_profile(loader *l, hostsfile_profile *pr)
{
    const ini_section *s = pr->section;
    model_profile *p = &pr->p;
    p->ip = IP_MODE_STATIC;
    p->keep_ra = true;
    bool has_kernel = false, has_initrd = false;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "kernel")) {
            has_kernel |= parse_image(l, e, image_kind_file(IMAGE_KERNEL), IMAGE_KERNEL, p) == 0;
        } else if (streq(e->key, "initrd")) {
            has_initrd |= parse_image(l, e, image_kind_file(IMAGE_INITRD), IMAGE_INITRD, p) == 0;
        } else if (streq(e->key, "stage2")) {
            parse_image(l, e, image_kind_file(IMAGE_STAGE2), IMAGE_STAGE2, p);
        } else if (strncmp(e->key, "file.", 5) == 0) {
            const char *name = e->key + 5;
            if (!name_valid(name) || name[0] == '.' || strstr(name, "..")) {
                problem(l, e->line, "%s: a file name is letters, digits, '-', '_', '.'", e->key);
                continue;
            }
            parse_image(l, e, name, IMAGE_OTHER, p);
        } else if (streq(e->key, "cmdline")) {
            free(p->cmdline);
            p->cmdline = strdup(e->value);
        } else if (streq(e->key, "kickstart") || streq(e->key, "preseed")) {
            /* One answer-file template either way; which key the profile's
             * kind takes is checked below, once the kind is known. */
            size_t len = 0;
            char *content = read_template(l, e, &len);
            if (!content) {
                continue;
            }
            free(p->kickstart);
            p->kickstart = content;
            if (sha256_buffer(content, len, p->kickstart_sha256) < 0) {
                problem(l, e->line, "%s: cannot hash it", e->key);
            }
        } else if (streq(e->key, "user_data")) {
            char *content = read_template(l, e, NULL);
            if (!content) {
                continue;
            }
            free(p->user_data);
            p->user_data = content;
            if (model_user_data_is_mime(content)) {
                problem(l, e->line,
                        "user_data: a MIME document; give one part (#cloud-config, a script, "
                        "...): the seed makes the multipart");
            }
        } else if (streq(e->key, "kind")) {
            if (profile_kind_from_string(e->value, &p->kind) < 0) {
                problem(l, e->line, "kind: expected install, image or debian-installer, not \"%s\"",
                        e->value);
            }
        } else if (streq(e->key, "image")) {
            parse_image(l, e, image_kind_file(IMAGE_DISK), IMAGE_DISK, p);
        } else if (streq(e->key, "ssh_authorized_keys")) {
            if (!model_ssh_key_valid(e->value)) {
                problem(l, e->line,
                        "ssh_authorized_keys: expected one \"TYPE KEY [COMMENT]\" line of "
                        "printable ASCII");
                continue;
            }
            if (p->n_ssh_keys >= MODEL_SSH_KEYS_MAX) {
                problem(l, e->line, "ssh_authorized_keys: at most %u keys", MODEL_SSH_KEYS_MAX);
                continue;
            }
            char **grown = realloc(p->ssh_keys, (p->n_ssh_keys + 1) * sizeof(*grown));
            char *key = strdup(e->value);
            if (!grown || !key) {
                free(key);
                if (grown) {
                    p->ssh_keys = grown;
                }
                problem(l, e->line, "out of memory");
                continue;
            }
            p->ssh_keys = grown;
            p->ssh_keys[p->n_ssh_keys++] = key;
        } else if (streq(e->key, "overlay")) {
            if (parse_bool(e->value, &p->overlay) < 0) {
                problem(l, e->line, "overlay: expected yes or no, not \"%s\"", e->value);
            }
        } else if (streq(e->key, "source_check")) {
            bool check = true;
            if (parse_bool(e->value, &check) < 0) {
                problem(l, e->line, "source_check: expected yes or no, not \"%s\"", e->value);
            }
            p->any_source = !check;
        } else if (streq(e->key, "keep_ra")) {
            if (parse_bool(e->value, &p->keep_ra) < 0) {
                problem(l, e->line, "keep_ra: expected yes or no, not \"%s\"", e->value);
            }
        } else if (streq(e->key, "root_device")) {
            if (!model_root_device_valid(e->value)) {
                problem(l, e->line, "root_device: expected auto or a /dev/ path, not \"%s\"",
                        e->value);
                continue;
            }
            free(p->root_device);
            p->root_device = strdup(e->value);
        } else if (streq(e->key, "uefi_boot")) {
            if (streq(e->value, "ipxe")) {
                p->uefi = UEFI_BOOT_IPXE;
            } else if (streq(e->value, "uki")) {
                p->uefi = UEFI_BOOT_UKI;
            } else {
                problem(l, e->line, "uefi_boot: expected ipxe or uki, not \"%s\"", e->value);
            }
        } else if (streq(e->key, "ip")) {
            if (streq(e->value, "static")) {
                p->ip = IP_MODE_STATIC;
            } else if (streq(e->value, "dhcp6")) {
                p->ip = IP_MODE_DHCP6;
            } else {
                problem(l, e->line, "ip: expected static or dhcp6, not \"%s\"", e->value);
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [profile %s]", e->key, p->name);
        }
    }
    if (p->kind == PROFILE_DEBIAN_INSTALLER) {
        check_debian_installer(l, pr, has_kernel, has_initrd);
        return;
    }
    const ini_entry *preseed = ini_section_find(s, "preseed");
    if (preseed) {
        problem(l, preseed->line, "preseed: only for kind = debian-installer (kickstart = here)");
    }
    if (p->kind == PROFILE_INSTALL) {
        if (!has_kernel) {
            problem(l, s->line, "[profile %s] needs a valid kernel", p->name);
        }
        if (!has_initrd) {
            problem(l, s->line, "[profile %s] needs a valid initrd", p->name);
        }
        static const char *const image_keys[] = { "image", "ssh_authorized_keys", "user_data" };
        for (size_t k = 0; k < ARRAY_SIZE(image_keys); k++) {
            const ini_entry *e = ini_section_find(s, image_keys[k]);
            if (e) {
                problem(l, e->line, "%s: only for kind = image", image_keys[k]);
            }
        }
        return;
    }
    /* kind = image: the deploy ramdisk boots instead of a kernel of the
     * profile's, and cloud-init configures the system, not a kickstart. */
    if (!model_profile_image(p, IMAGE_DISK) && !ini_section_find(s, "image")) {
        problem(l, s->line, "[profile %s] kind = image needs an image", p->name);
    }
    static const char *const install_keys[] = { "kernel", "initrd", "stage2", "kickstart" };
    for (size_t k = 0; k < ARRAY_SIZE(install_keys); k++) {
        const ini_entry *e = ini_section_find(s, install_keys[k]);
        if (e) {
            problem(l, e->line, "%s: not for kind = image (the agent boots its deploy ramdisk)",
                    install_keys[k]);
        }
    }
    if (p->overlay) {
        problem(l, ini_section_find(s, "overlay")->line, "overlay: not for kind = image");
    }
}

static int addr_list(loader *l, const ini_entry *e, struct in6_addr *out, size_t max, size_t *ret_n)
{
    char *words[INTENT_MAX_DNS];
    size_t n = 0;
    int r = parse_words(e->value, words, max < INTENT_MAX_DNS ? max : INTENT_MAX_DNS, &n);
    if (r < 0) {
        problem(l, e->line, "%s: at most %zu addresses", e->key, max);
        return r;
    }
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        if (parse_ipv6(words[i], &out[good]) < 0) {
            problem(l, e->line, "%s: not an IPv6 address: \"%s\"", e->key, words[i]);
        } else {
            good++;
        }
        free(words[i]);
    }
    *ret_n = good;
    return good == n ? 0 : -EINVAL;
}

/* `bmc`, `bmc_user`, `bmc_password_file`, `firmware` of a [host]. Values
 * of the first three are never quoted back: a URL may carry credentials
 * (the parser refuses those without quoting them), and a password file's
 * reasons name the file, never its content. */
static void parse_bmc_key(loader *l, hostsfile_host *h, const ini_entry *e)
{
    char why[PATH_MAX + 160];
    if (streq(e->key, "bmc")) {
        if (model_bmc_url_parse(e->value, NULL, why, sizeof(why)) < 0) {
            problem(l, e->line, "bmc: %s", why);
            return;
        }
        free(h->bmc_url);
        h->bmc_url = strdup(e->value);
    } else if (streq(e->key, "bmc_user")) {
        if (strempty(e->value) || !model_bmc_user_valid(e->value)) {
            problem(l, e->line, "bmc_user: expected printable ASCII of 1-%u bytes",
                    MODEL_BMC_USER_MAX);
            return;
        }
        free(h->bmc_user);
        h->bmc_user = strdup(e->value);
    } else if (streq(e->key, "bmc_password_file")) {
        if (strempty(e->value)) {
            problem(l, e->line, "bmc_password_file: empty path");
            return;
        }
        _cleanup_free_ char *path = fileio_path_relative(l->file, e->value);
        char *pw = NULL;
        int r = path ? model_bmc_password_read_file(path, &pw, why, sizeof(why)) : -ENOMEM;
        if (r < 0) {
            problem(l, e->line, "bmc_password_file: %s", path ? why : errstr(r));
            return;
        }
        model_bmc_password_free(h->bmc_password);
        h->bmc_password = pw;
    } else if (model_firmware_from_string(e->value, &h->firmware) < 0) {
        problem(l, e->line, "firmware: expected uefi or bios, not \"%s\"", e->value);
    }
}

static void parse_host(loader *l, hostsfile_host *h)
{
    const ini_section *s = h->section;
    intent *in = &h->in;
    bool has_addr = false;
    in->prefix_len = 64;
    if (l->defs) {
        in->has_gateway = l->defs->has_gateway;
        in->gateway = l->defs->gateway;
    }
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "mac")) {
            char *words[INTENT_MAX_MACS];
            size_t n = 0;
            if (parse_words(e->value, words, INTENT_MAX_MACS, &n) < 0) {
                problem(l, e->line, "mac: at most %d addresses", INTENT_MAX_MACS);
                continue;
            }
            in->n_macs = 0;
            h->mac_line = e->line;
            for (size_t k = 0; k < n; k++) {
                uint8_t mac[6];
                if (parse_mac(words[k], mac) < 0) {
                    problem(l, e->line, "mac: not a MAC address: \"%s\"", words[k]);
                } else if (mac[0] & 1) {
                    problem(l, e->line, "mac: %s is a multicast address", words[k]);
                } else {
                    bool dup = false;
                    for (size_t j = 0; j < in->n_macs; j++) {
                        dup |= memcmp(in->macs[j], mac, 6) == 0;
                    }
                    if (dup) {
                        problem(l, e->line, "mac: %s listed twice", words[k]);
                    } else {
                        memcpy(in->macs[in->n_macs++], mac, 6);
                    }
                }
                free(words[k]);
            }
            if (n == 0) {
                problem(l, e->line, "mac: empty value");
            }
        } else if (streq(e->key, "address")) {
            if (parse_ipv6(e->value, &in->address) < 0) {
                problem(l, e->line, "address: not an IPv6 address: \"%s\"", e->value);
            } else if (IN6_IS_ADDR_LINKLOCAL(&in->address) || IN6_IS_ADDR_MULTICAST(&in->address) ||
                       IN6_IS_ADDR_UNSPECIFIED(&in->address) ||
                       IN6_IS_ADDR_LOOPBACK(&in->address)) {
                problem(l, e->line, "address: %s cannot be given to a host", e->value);
            } else {
                has_addr = true;
                h->address_line = e->line;
            }
        } else if (streq(e->key, "prefix")) {
            uint32_t v;
            if (parse_u32(e->value, 1, 128, &v) < 0) {
                problem(l, e->line, "prefix: expected 1-128, not \"%s\"", e->value);
            } else {
                in->prefix_len = (uint8_t)v;
            }
        } else if (streq(e->key, "gateway")) {
            if (parse_ipv6(e->value, &in->gateway) < 0) {
                problem(l, e->line, "gateway: not an IPv6 address: \"%s\"", e->value);
            } else {
                in->has_gateway = true;
            }
        } else if (streq(e->key, "hostname")) {
            if (!dns_name_valid(e->value)) {
                problem(l, e->line, "hostname: not a DNS name: \"%s\"", e->value);
            } else {
                free(in->hostname);
                in->hostname = strdup(e->value);
            }
        } else if (streq(e->key, "dns")) {
            addr_list(l, e, in->dns, INTENT_MAX_DNS, &in->n_dns);
        } else if (streq(e->key, "search")) {
            for (size_t k = 0; k < in->n_search; k++) {
                in->search[k] = (free(in->search[k]), NULL);
            }
            in->n_search = 0;
            if (parse_words(e->value, in->search, INTENT_MAX_SEARCH, &in->n_search) < 0) {
                problem(l, e->line, "search: at most %d names", INTENT_MAX_SEARCH);
            }
            for (size_t k = 0; k < in->n_search; k++) {
                if (!dns_name_valid(in->search[k])) {
                    problem(l, e->line, "search: not a DNS name: \"%s\"", in->search[k]);
                }
            }
        } else if (streq(e->key, "install")) {
            free(h->profile);
            h->profile = NULL;
            h->install_line = e->line;
            if (strempty(e->value)) {
                problem(l, e->line, "install: empty value (use \"none\" for no install)");
            } else if (!streq(e->value, "none")) {
                h->profile = strdup(e->value);
            }
        } else if (streq(e->key, "bmc") || streq(e->key, "bmc_user") ||
                   streq(e->key, "bmc_password_file") || streq(e->key, "firmware")) {
            parse_bmc_key(l, h, e);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [host %s]", e->key, h->name);
        }
    }
    if (!h->bmc_url && (h->bmc_user || h->bmc_password)) {
        problem(l, s->line, "[host %s]: bmc_user and bmc_password_file need a bmc URL", h->name);
    }
    if (!h->mac_line) {
        problem(l, s->line, "[host %s] needs a mac", h->name);
    }
    if (!has_addr) {
        problem(l, s->line, "[host %s] needs a valid address", h->name);
    }
    if (!in->hostname) {
        if (dns_name_valid(h->name)) {
            in->hostname = strdup(h->name);
        } else {
            problem(l, s->line, "[host %s]: the name is not a DNS name, set hostname", h->name);
        }
    }
}

const hostsfile_profile *hostsfile_find_profile(const hostsfile *hf, const char *name)
{
    for (size_t k = 0; k < hf->n_profiles; k++) {
        if (streq(hf->profiles[k].p.name, name)) {
            return &hf->profiles[k];
        }
    }
    return NULL;
}

hostsfile *hostsfile_free(hostsfile *hf)
{
    if (hf) {
        for (size_t k = 0; k < hf->n_profiles; k++) {
            model_profile_clear(&hf->profiles[k].p);
        }
        for (size_t i = 0; i < hf->n_hosts; i++) {
            intent_clear(&hf->hosts[i].in);
            free(hf->hosts[i].profile);
            free(hf->hosts[i].bmc_url);
            free(hf->hosts[i].bmc_user);
            model_bmc_password_free(hf->hosts[i].bmc_password);
        }
        free(hf->profiles);
        free(hf->hosts);
        ini_doc_free(hf->doc);
        free(hf->path);
        free(hf);
    }
    return NULL;
}

/* A MAC names one machine: two hosts sharing one would be served at random.
 * Name both lines so the operator finds the pair. */
static int check_macs(loader *l, hostsfile *hf)
{
    hashmap *macs = NULL;
    if (hashmap_new(hf->n_hosts * 2 + 1, &macs) < 0) {
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < hf->n_hosts && r == 0; i++) {
        hostsfile_host *h = &hf->hosts[i];
        for (size_t m = 0; m < h->in.n_macs; m++) {
            const hostsfile_host *other = hashmap_get(macs, h->in.macs[m], 6);
            if (other) {
                char mac[FORMAT_MAC_LEN];
                format_mac(h->in.macs[m], mac);
                problem(l, h->mac_line, "mac %s of host %s is already used by host %s (line %u)",
                        mac, h->name, other->name, other->mac_line);
            } else if (hashmap_put(macs, h->in.macs[m], 6, h) < 0) {
                r = -ENOMEM;
                break;
            }
        }
    }
    hashmap_free(macs);
    return r;
}

/* An address names one machine too: two hosts given the same one would
 * both be answered with it (RFC 8415 §18.3.1 leaves the conflict to the
 * server), and a host given the agent's own address takes the rack's boot
 * service off the link. */
static int check_addresses(loader *l, hostsfile *hf)
{
    hashmap *addrs = NULL;
    if (hashmap_new(hf->n_hosts * 2 + 1, &addrs) < 0) {
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < hf->n_hosts; i++) {
        hostsfile_host *h = &hf->hosts[i];
        if (!h->address_line) {
            continue; /* no valid address: already reported */
        }
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &h->in.address, text, sizeof(text));
        if (l->defs && l->defs->has_agent_address &&
            memcmp(&h->in.address, &l->defs->agent_address, sizeof(h->in.address)) == 0) {
            problem(l, h->address_line, "address %s of host %s is the agent's advertise_address",
                    text, h->name);
            continue;
        }
        const hostsfile_host *other = hashmap_get(addrs, &h->in.address, sizeof(h->in.address));
        if (other) {
            problem(l, h->address_line,
                    "address %s of host %s is already used by host %s (line %u)", text, h->name,
                    other->name, other->address_line);
        } else if (hashmap_put(addrs, &h->in.address, sizeof(h->in.address), h) < 0) {
            r = -ENOMEM;
            break;
        }
    }
    hashmap_free(addrs);
    return r;
}

int hostsfile_read(const char *path, const hostsfile_options *opts, diag *d, hostsfile **ret)
{
    hostsfile *hf = calloc(1, sizeof(*hf));
    if (!hf) {
        return -ENOMEM;
    }
    int r = ini_load_file(path, d, &hf->doc);
    if (r < 0) {
        hostsfile_free(hf);
        return r;
    }
    loader l = { .file = path, .d = d, .defs = opts };
    hf->path = strdup(path);
    hf->profiles = calloc(hf->doc->n_sections + 1, sizeof(*hf->profiles));
    hf->hosts = calloc(hf->doc->n_sections + 1, sizeof(*hf->hosts));
    if (!hf->path || !hf->profiles || !hf->hosts) {
        hostsfile_free(hf);
        return -ENOMEM;
    }

    for (size_t i = 0; i < hf->doc->n_sections; i++) {
        const ini_section *s = &hf->doc->sections[i];
        const char *kind, *arg;
        size_t kind_len;
        if (ini_section_split(s->name, &kind, &kind_len, &arg) < 0) {
            continue;
        }
        bool is_host = kind_len == 4 && strncmp(kind, "host", 4) == 0;
        bool is_profile = kind_len == 7 && strncmp(kind, "profile", 7) == 0;
        if (!is_host && !is_profile) {
            problem(&l, s->line, "unknown section [%s] (expected [host NAME] or [profile NAME])",
                    s->name);
            continue;
        }
        if (!arg || !name_valid(arg)) {
            problem(&l, s->line, "[%s]: a name is letters, digits, '-', '_', '.' (at most 63)",
                    s->name);
            continue;
        }
        if (is_profile) {
            for (size_t k = 0; k < hf->n_profiles; k++) {
                if (streq(hf->profiles[k].p.name, arg)) {
                    problem(&l, s->line, "profile %s defined twice (first at line %u)", arg,
                            hf->profiles[k].section->line);
                }
            }
            hostsfile_profile *pr = &hf->profiles[hf->n_profiles++];
            pr->section = s;
            pr->p.name = strdup(arg);
            if (!pr->p.name) {
                hostsfile_free(hf);
                return -ENOMEM;
            }
            parse_profile(&l, pr);
        } else {
            for (size_t k = 0; k < hf->n_hosts; k++) {
                if (streq(hf->hosts[k].name, arg)) {
                    problem(&l, s->line, "host %s defined twice (first at line %u)", arg,
                            hf->hosts[k].section->line);
                }
            }
            hostsfile_host *h = &hf->hosts[hf->n_hosts++];
            h->section = s;
            h->name = arg;
            parse_host(&l, h);
        }
    }

    r = check_macs(&l, hf);
    if (r == 0) {
        r = check_addresses(&l, hf);
    }
    for (size_t i = 0; r == 0 && opts && opts->check_installs && i < hf->n_hosts; i++) {
        const hostsfile_host *h = &hf->hosts[i];
        if (h->profile && !hostsfile_find_profile(hf, h->profile)) {
            problem(&l, h->install_line ? h->install_line : h->section->line,
                    "host %s: unknown profile \"%s\"", h->name, h->profile);
        }
    }
    if (r == 0 && l.errors > 0) {
        r = -EINVAL;
    }
    if (r < 0) {
        hostsfile_free(hf);
        return r;
    }
    *ret = hf;
    return 0;
}
