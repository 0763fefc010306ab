#include "standalone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fileio.h"
#include "hashmap.h"
#include "hex.h"
#include "ini.h"
#include "log.h"
#include "parse.h"
#include "sha256.h"
#include "state.h"
#include "util.h"

#define INSTALLS_HEADER "# rackboot standalone installs v1\n"
#define INSTALLS_MAX    (64u * 1024u * 1024u)

enum {
    UUID_STR_LEN = 36,
    TOKEN_BYTES = 32,
};

typedef struct install_rec {
    char *host;
    char fingerprint[SHA256_HEX_LEN + 1];
    char *id;
    char *token;
} install_rec;

struct standalone_installs {
    char *path;
    install_rec *recs;
    size_t n;
};

static void recs_free(install_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(recs[i].host);
        free(recs[i].id);
        free(recs[i].token);
    }
    free(recs);
}

standalone_installs *standalone_installs_free(standalone_installs *reg)
{
    if (reg) {
        recs_free(reg->recs, reg->n);
        free(reg->path);
        free(reg);
    }
    return NULL;
}

int standalone_installs_load(const char *state_dir, standalone_installs **ret)
{
    standalone_installs *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        return -ENOMEM;
    }
    reg->path = state_path(state_dir, "installs");
    if (!reg->path) {
        standalone_installs_free(reg);
        return -ENOMEM;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = fileio_read_all(reg->path, INSTALLS_MAX, (void **)&text, &len);
    if (r == -ENOENT) {
        *ret = reg;
        return 0;
    }
    if (r < 0) {
        standalone_installs_free(reg);
        return r;
    }
    if (strncmp(text, INSTALLS_HEADER, strlen(INSTALLS_HEADER)) != 0) {
        standalone_installs_free(reg);
        return -EBADMSG;
    }
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(text + strlen(INSTALLS_HEADER), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        size_t nf = 0;
        char *fsave = NULL;
        for (char *w = strtok_r(line, " ", &fsave); w && nf < 4; w = strtok_r(NULL, " ", &fsave)) {
            f[nf++] = w;
        }
        if (nf != 4 || strlen(f[1]) != SHA256_HEX_LEN) {
            standalone_installs_free(reg);
            return -EBADMSG;
        }
        if (reg->n == cap) {
            cap = cap ? cap * 2 : 64;
            install_rec *grown = realloc(reg->recs, cap * sizeof(*grown));
            if (!grown) {
                standalone_installs_free(reg);
                return -ENOMEM;
            }
            reg->recs = grown;
        }
        install_rec *rec = &reg->recs[reg->n];
        memset(rec, 0, sizeof(*rec));
        reg->n++;
        memcpy(rec->fingerprint, f[1], sizeof(rec->fingerprint));
        rec->host = strdup(f[0]);
        rec->id = strdup(f[2]);
        rec->token = strdup(f[3]);
        if (!rec->host || !rec->id || !rec->token) {
            standalone_installs_free(reg);
            return -ENOMEM;
        }
    }
    *ret = reg;
    return 0;
}

static const install_rec *installs_find(const standalone_installs *reg, const char *host)
{
    for (size_t i = 0; i < reg->n; i++) {
        if (streq(reg->recs[i].host, host)) {
            return &reg->recs[i];
        }
    }
    return NULL;
}

static int installs_save(const standalone_installs *reg, const install_rec *recs, size_t n)
{
    size_t cap = strlen(INSTALLS_HEADER) + 1;
    for (size_t i = 0; i < n; i++) {
        cap +=
            strlen(recs[i].host) + SHA256_HEX_LEN + strlen(recs[i].id) + strlen(recs[i].token) + 4;
    }
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    size_t off = (size_t)snprintf(buf, cap, "%s", INSTALLS_HEADER);
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + off, cap - off, "%s %s %s %s\n", recs[i].host, recs[i].fingerprint,
                         recs[i].id, recs[i].token);
        RB_ASSERT(w > 0 && (size_t)w < cap - off);
        off += (size_t)w;
    }
    return fileio_write_atomic(reg->path, buf, off, 0600);
}

static int new_uuid(char out[UUID_STR_LEN + 1])
{
    uint8_t u[16];
    int r = state_random(u, sizeof(u));
    if (r < 0) {
        return r;
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* RFC 4122 §4.4: version 4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, UUID_STR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    return 0;
}

/* ---- the hosts file ----------------------------------------------------- */

typedef struct profile_rec {
    intent_profile p;
    const ini_section *s;
} profile_rec;

typedef struct host_rec {
    intent in;
    const ini_section *s;
    const char *name;
    char *profile; /* NULL: no intent */
    unsigned mac_line;
} host_rec;

typedef struct loader {
    const char *file;
    diag *d;
    unsigned errors;
    const standalone_defaults *defs;
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
                       intent_profile *p)
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
    intent_image img = { .kind = kind };
    if (sha256_from_hex(sp + 1 + 7, img.sha256) < 0) {
        problem(l, e->line, "%s: sha256= needs 64 hex digits", e->key);
        return -EINVAL;
    }
    size_t url_len = (size_t)(sp - v);
    while (url_len > 0 && (v[url_len - 1] == ' ' || v[url_len - 1] == '\t')) {
        url_len--;
    }
    if (url_len == 0 || memchr(v, ' ', url_len) || memchr(v, '\t', url_len) ||
        (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)) {
        problem(l, e->line, "%s: the URL must be one http:// or https:// URL", e->key);
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
    intent_image *grown = realloc(p->images, (p->n_images + 1) * sizeof(*grown));
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

static void parse_profile(loader *l, profile_rec *pr)
{
    const ini_section *s = pr->s;
    intent_profile *p = &pr->p;
    p->ip = IP_MODE_STATIC;
    p->keep_ra = true;
    bool has_kernel = false, has_initrd = false;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "kernel")) {
            has_kernel |= parse_image(l, e, "vmlinuz", IMAGE_KERNEL, p) == 0;
        } else if (streq(e->key, "initrd")) {
            has_initrd |= parse_image(l, e, "initrd.img", IMAGE_INITRD, p) == 0;
        } else if (streq(e->key, "stage2")) {
            parse_image(l, e, "squashfs.img", IMAGE_STAGE2, p);
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
        } else if (streq(e->key, "kickstart")) {
            if (strempty(e->value)) {
                problem(l, e->line, "kickstart: empty path");
                continue;
            }
            _cleanup_free_ char *ks_path = agent_path_relative(l->file, e->value);
            void *content = NULL;
            size_t len = 0;
            int r = ks_path ? fileio_read_all(ks_path, STANDALONE_MAX_KICKSTART, &content, &len)
                            : -ENOMEM;
            if (r < 0) {
                problem(l, e->line, "kickstart: cannot read %s: %s", ks_path ? ks_path : e->value,
                        errstr(r));
                continue;
            }
            if (memchr(content, '\0', len)) {
                free(content);
                problem(l, e->line, "kickstart: %s contains a NUL byte", ks_path);
                continue;
            }
            free(p->kickstart);
            p->kickstart = content;
            if (sha256_buffer(content, len, p->kickstart_sha256) < 0) {
                problem(l, e->line, "kickstart: cannot hash %s", ks_path);
            }
        } else if (streq(e->key, "overlay")) {
            if (parse_bool(e->value, &p->overlay) < 0) {
                problem(l, e->line, "overlay: expected yes or no, not \"%s\"", e->value);
            }
        } else if (streq(e->key, "keep_ra")) {
            if (parse_bool(e->value, &p->keep_ra) < 0) {
                problem(l, e->line, "keep_ra: expected yes or no, not \"%s\"", e->value);
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
    if (!has_kernel) {
        problem(l, s->line, "[profile %s] needs a valid kernel", p->name);
    }
    if (!has_initrd) {
        problem(l, s->line, "[profile %s] needs a valid initrd", p->name);
    }
}

static int addr_list(loader *l, const ini_entry *e, struct in6_addr *out, size_t max, size_t *ret_n)
{
    char *words[INTENT_MAX_DNS];
    size_t n = 0;
    int r = agent_split_words(e->value, words, max < INTENT_MAX_DNS ? max : INTENT_MAX_DNS, &n);
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

static void parse_host(loader *l, host_rec *h)
{
    const ini_section *s = h->s;
    intent *in = &h->in;
    bool has_addr = false;
    in->prefix_len = 64;
    in->has_gateway = l->defs->has_gateway;
    in->gateway = l->defs->gateway;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "mac")) {
            char *words[INTENT_MAX_MACS];
            size_t n = 0;
            if (agent_split_words(e->value, words, INTENT_MAX_MACS, &n) < 0) {
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
            if (agent_split_words(e->value, in->search, INTENT_MAX_SEARCH, &in->n_search) < 0) {
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
            if (strempty(e->value)) {
                problem(l, e->line, "install: empty value (use \"none\" for no install)");
            } else if (!streq(e->value, "none")) {
                h->profile = strdup(e->value);
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [host %s]", e->key, h->name);
        }
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

/* The fingerprint of what an install is made of: the host's entries, its
 * profile's entries and the kickstart's content, plus the rack gateway it
 * inherits. Any change makes a new install. */
static int fingerprint(const host_rec *h, const profile_rec *pr, const standalone_defaults *defs,
                       char out[SHA256_HEX_LEN + 1])
{
    sha256_ctx *ctx = sha256_new();
    if (!ctx) {
        return -ENOMEM;
    }
    int r = 0;
    const ini_section *secs[2] = { h->s, pr->s };
    for (size_t k = 0; k < 2 && r == 0; k++) {
        r = sha256_update(ctx, secs[k]->name, strlen(secs[k]->name) + 1);
        for (size_t i = 0; i < secs[k]->n_entries && r == 0; i++) {
            const ini_entry *e = &secs[k]->entries[i];
            r = sha256_update(ctx, e->key, strlen(e->key) + 1);
            if (r == 0) {
                r = sha256_update(ctx, e->value, strlen(e->value) + 1);
            }
        }
    }
    if (r == 0) {
        r = sha256_update(ctx, pr->p.kickstart_sha256, sizeof(pr->p.kickstart_sha256));
    }
    if (r == 0 && defs->has_gateway) {
        r = sha256_update(ctx, &defs->gateway, sizeof(defs->gateway));
    }
    uint8_t digest[SHA256_LEN];
    if (r == 0) {
        r = sha256_final(ctx, digest);
    }
    sha256_free(ctx);
    if (r == 0) {
        sha256_to_hex(digest, out);
    }
    return r;
}

int standalone_load(const char *path, const standalone_defaults *defs, standalone_installs *reg,
                    uint64_t generation, diag *d, intent_set **ret)
{
    ini_doc *doc = NULL;
    int r = ini_load_file(path, d, &doc);
    if (r < 0) {
        return r;
    }
    loader l = { .file = path, .d = d, .defs = defs };
    profile_rec *profiles = calloc(doc->n_sections + 1, sizeof(*profiles));
    host_rec *hosts = calloc(doc->n_sections + 1, sizeof(*hosts));
    install_rec *recs = calloc(doc->n_sections + 1, sizeof(*recs));
    size_t n_profiles = 0, n_hosts = 0, n_recs = 0;
    const profile_rec **used = calloc(doc->n_sections + 1, sizeof(*used));
    hashmap *macs = NULL;
    intent_set *set = NULL;
    bool changed = false;
    size_t ri = 0;
    if (!profiles || !hosts || !recs || !used || hashmap_new(doc->n_sections * 2, &macs) < 0) {
        r = -ENOMEM;
        goto out;
    }

    for (size_t i = 0; i < doc->n_sections; i++) {
        const ini_section *s = &doc->sections[i];
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
            for (size_t k = 0; k < n_profiles; k++) {
                if (streq(profiles[k].p.name, arg)) {
                    problem(&l, s->line, "profile %s defined twice (first at line %u)", arg,
                            profiles[k].s->line);
                }
            }
            profile_rec *pr = &profiles[n_profiles++];
            pr->s = s;
            pr->p.name = strdup(arg);
            parse_profile(&l, pr);
        } else {
            for (size_t k = 0; k < n_hosts; k++) {
                if (streq(hosts[k].name, arg)) {
                    problem(&l, s->line, "host %s defined twice (first at line %u)", arg,
                            hosts[k].s->line);
                }
            }
            host_rec *h = &hosts[n_hosts++];
            h->s = s;
            h->name = arg;
            parse_host(&l, h);
        }
    }

    /* A MAC names one machine: two hosts sharing one would be served at
     * random. Name both lines so the operator finds the pair. */
    for (size_t i = 0; i < n_hosts; i++) {
        host_rec *h = &hosts[i];
        for (size_t m = 0; m < h->in.n_macs; m++) {
            host_rec *other = hashmap_get(macs, h->in.macs[m], 6);
            if (other) {
                char mac[FORMAT_MAC_LEN];
                format_mac(h->in.macs[m], mac);
                problem(&l, h->mac_line, "mac %s of host %s is already used by host %s (line %u)",
                        mac, h->name, other->name, other->mac_line);
            } else if (hashmap_put(macs, h->in.macs[m], 6, h) < 0) {
                r = -ENOMEM;
                goto out;
            }
        }
    }

    for (size_t i = 0; i < n_hosts; i++) {
        host_rec *h = &hosts[i];
        if (!h->profile) {
            continue;
        }
        for (size_t k = 0; k < n_profiles; k++) {
            if (streq(profiles[k].p.name, h->profile)) {
                used[i] = &profiles[k];
            }
        }
        if (!used[i]) {
            const ini_entry *e = ini_section_find(h->s, "install");
            problem(&l, e ? e->line : h->s->line, "host %s: unknown profile \"%s\"", h->name,
                    h->profile);
        }
    }
    if (l.errors > 0) {
        r = -EINVAL;
        goto out;
    }

    /* Everything is valid: assign installs, then build the set. */
    for (size_t i = 0; i < n_hosts; i++) {
        host_rec *h = &hosts[i];
        if (!used[i]) {
            continue;
        }
        install_rec *rec = &recs[n_recs++];
        r = fingerprint(h, used[i], defs, rec->fingerprint);
        if (r < 0) {
            goto out;
        }
        rec->host = strdup(h->name);
        const install_rec *old = reg ? installs_find(reg, h->name) : NULL;
        if (!reg) {
            /* A check only: nothing is handed out, nothing is saved. */
            rec->id = strdup(rec->fingerprint);
            rec->token = strdup(rec->fingerprint);
        } else if (old && streq(old->fingerprint, rec->fingerprint)) {
            rec->id = strdup(old->id);
            rec->token = strdup(old->token);
        } else {
            char uuid[UUID_STR_LEN + 1];
            uint8_t tok[TOKEN_BYTES];
            char tok_hex[2 * TOKEN_BYTES + 1];
            r = new_uuid(uuid);
            if (r == 0) {
                r = state_random(tok, sizeof(tok));
            }
            if (r < 0) {
                goto out;
            }
            hex_encode(tok, sizeof(tok), tok_hex);
            rec->id = strdup(uuid);
            rec->token = strdup(tok_hex);
            changed = true;
        }
        if (!rec->host || !rec->id || !rec->token) {
            r = -ENOMEM;
            goto out;
        }
    }
    changed |= reg && n_recs != reg->n;

    r = intent_set_new(generation, &set);
    if (r < 0) {
        goto out;
    }
    for (size_t k = 0; k < n_profiles; k++) {
        r = intent_set_add_profile(set, &profiles[k].p);
        if (r < 0) {
            diag_add(d, path, profiles[k].s->line, "profile %s: %s", profiles[k].s->name,
                     errstr(r));
            goto out;
        }
    }
    for (size_t i = 0; i < n_hosts; i++) {
        host_rec *h = &hosts[i];
        if (!used[i]) {
            continue;
        }
        install_rec *rec = &recs[ri++];
        h->in.install_id = strdup(rec->id);
        h->in.token = strdup(rec->token);
        h->in.host = strdup(h->name);
        h->in.attempt = 1;
        if (!h->in.install_id || !h->in.token || !h->in.host) {
            r = -ENOMEM;
            goto out;
        }
        r = intent_set_add(set, &h->in, h->profile);
        if (r < 0) {
            diag_add(d, path, h->s->line, "host %s: %s", h->name, errstr(r));
            goto out;
        }
    }
    if (changed) {
        r = installs_save(reg, recs, n_recs);
        if (r < 0) {
            diag_add(d, reg->path, 0, "cannot save install ids: %s", errstr(r));
            goto out;
        }
    }
    if (reg) {
        recs_free(reg->recs, reg->n);
        reg->recs = TAKE_PTR(recs);
        reg->n = n_recs;
        n_recs = 0;
    }
    *ret = TAKE_PTR(set);
    r = 0;
out:
    intent_set_free(set);
    if (profiles) {
        for (size_t k = 0; k < n_profiles; k++) {
            intent_profile_clear(&profiles[k].p);
        }
    }
    if (hosts) {
        for (size_t i = 0; i < n_hosts; i++) {
            intent_clear(&hosts[i].in);
            free(hosts[i].profile);
        }
    }
    free(profiles);
    free(hosts);
    free(used);
    recs_free(recs, n_recs);
    hashmap_free(macs);
    ini_doc_free(doc);
    return r;
}
