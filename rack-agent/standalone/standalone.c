#include "standalone/standalone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hex.h"
#include "model/hostsfile.h"
#include "ini.h"
#include "log.h"
#include "sha256.h"
#include "state/state.h"
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

/* ---- the hosts file (parsed by hostsfile.c) ----------------------------- */

/* The fingerprint of what an install is made of: the host's entries, its
 * profile's entries and the kickstart's content, plus the rack gateway it
 * inherits. Any change makes a new install. */
static int fingerprint(const hostsfile_host *h, const hostsfile_profile *pr,
                       const standalone_defaults *defs, char out[SHA256_HEX_LEN + 1])
{
    sha256_ctx *ctx = sha256_new();
    if (!ctx) {
        return -ENOMEM;
    }
    int r = 0;
    const ini_section *secs[2] = { h->section, pr->section };
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
    hostsfile_options opts = {
        .has_gateway = defs->has_gateway,
        .gateway = defs->gateway,
        .check_installs = true,
        .has_agent_address = defs->has_agent_address,
        .agent_address = defs->agent_address,
    };
    hostsfile *hf = NULL;
    int r = hostsfile_read(path, &opts, d, &hf);
    if (r < 0) {
        return r;
    }
    install_rec *recs = calloc(hf->n_hosts + 1, sizeof(*recs));
    const hostsfile_profile **used = calloc(hf->n_hosts + 1, sizeof(*used));
    size_t n_recs = 0;
    intent_set *set = NULL;
    bool changed = false;
    size_t ri = 0;
    if (!recs || !used) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < hf->n_hosts; i++) {
        if (hf->hosts[i].profile) {
            used[i] = hostsfile_find_profile(hf, hf->hosts[i].profile);
            RB_ASSERT(used[i]); /* hostsfile_read checked it */
        }
    }

    /* Everything is valid: assign installs, then build the set. */
    for (size_t i = 0; i < hf->n_hosts; i++) {
        const hostsfile_host *h = &hf->hosts[i];
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
    for (size_t k = 0; k < hf->n_profiles; k++) {
        hostsfile_profile *pr = &hf->profiles[k];
        r = intent_set_add_profile(set, &pr->p);
        if (r < 0) {
            diag_add(d, path, pr->section->line, "profile %s: %s", pr->section->name, errstr(r));
            goto out;
        }
    }
    for (size_t i = 0; i < hf->n_hosts; i++) {
        hostsfile_host *h = &hf->hosts[i];
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
            diag_add(d, path, h->section->line, "host %s: %s", h->name, errstr(r));
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
    free(used);
    recs_free(recs, n_recs);
    hostsfile_free(hf);
    return r;
}
