#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "parse.h"
#include "store.h"
#include "util.h"

typedef struct loader {
    const char *file;
    diag *d;
    unsigned errors;
    controller_config *cfg;
} loader;

#define problem(l, line, ...)                                                                      \
    do {                                                                                           \
        diag_add((l)->d, (l)->file, (line), __VA_ARGS__);                                          \
        (l)->errors++;                                                                             \
    } while (0)

controller_config *controller_config_free(controller_config *cfg)
{
    if (!cfg) {
        return NULL;
    }
    free(cfg->path);
    free(cfg->state_dir);
    free(cfg->user);
    free(cfg->agents_listen);
    free(cfg->api_listen);
    free(cfg->operators_listen);
    free(cfg->ca);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->crl);
    free(cfg->server_name);
    free(cfg->store_url);
    free(cfg);
    return NULL;
}

/* `rel` against the directory of `base` unless it is absolute. */
static char *path_relative(const char *base, const char *rel)
{
    if (rel[0] == '/') {
        return strdup(rel);
    }
    const char *slash = strrchr(base, '/');
    if (!slash) {
        return strdup(rel);
    }
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s", (int)(slash - base), base, rel) < 0) {
        return NULL;
    }
    return out;
}

static void set_string(loader *l, const ini_entry *e, char **dst, bool is_path)
{
    if (strempty(e->value)) {
        problem(l, e->line, "%s: empty value", e->key);
        return;
    }
    free(*dst);
    *dst = is_path ? path_relative(l->file, e->value) : strdup(e->value);
    if (!*dst) {
        problem(l, e->line, "out of memory");
    }
}

static void set_url(loader *l, const ini_entry *e, char **dst, const char *scheme)
{
    if (strncmp(e->value, scheme, strlen(scheme)) != 0 || !e->value[strlen(scheme)]) {
        problem(l, e->line, "%s: expected a URL starting with %s, not \"%s\"", e->key, scheme,
                e->value);
        return;
    }
    set_string(l, e, dst, false);
}

static void set_seconds(loader *l, const ini_entry *e, uint64_t *dst_ms)
{
    uint32_t v;
    int r = parse_u32(e->value, 0, 30u * 24 * 3600, &v);
    if (r < 0) {
        problem(l, e->line, "%s: expected seconds (0 disables, at most 30 days), not \"%s\"",
                e->key, e->value);
        return;
    }
    *dst_ms = (uint64_t)v * 1000;
}

static void section_controller(loader *l, const ini_section *s)
{
    controller_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "state_dir")) {
            set_string(l, e, &c->state_dir, true);
        } else if (streq(e->key, "user")) {
            set_string(l, e, &c->user, false);
            if (c->user && !user_name_valid(c->user)) {
                problem(l, e->line, "user: \"%s\" is not a user name", e->value);
            }
        } else if (streq(e->key, "agents_listen")) {
            set_url(l, e, &c->agents_listen, "tls+tcp://");
        } else if (streq(e->key, "api_listen")) {
            set_url(l, e, &c->api_listen, "ipc://");
        } else if (streq(e->key, "operators_listen")) {
            set_url(l, e, &c->operators_listen, "tls+tcp://");
        } else if (streq(e->key, "log_level")) {
            if (log_level_from_string(e->value, &c->log_level) < 0) {
                problem(l, e->line, "log_level: expected debug, info, warn or error, not \"%s\"",
                        e->value);
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [controller]", e->key);
        }
    }
}

static void section_pki(loader *l, const ini_section *s)
{
    controller_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "ca")) {
            set_string(l, e, &c->ca, true);
        } else if (streq(e->key, "cert")) {
            set_string(l, e, &c->cert, true);
        } else if (streq(e->key, "key")) {
            set_string(l, e, &c->key, true);
        } else if (streq(e->key, "crl")) {
            set_string(l, e, &c->crl, true);
        } else if (streq(e->key, "server_name")) {
            set_string(l, e, &c->server_name, false);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [pki]", e->key);
        }
    }
}

static void section_installs(loader *l, const ini_section *s)
{
    controller_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "boot_timeout")) {
            set_seconds(l, e, &c->timeouts.boot_ms);
        } else if (streq(e->key, "install_timeout")) {
            set_seconds(l, e, &c->timeouts.install_ms);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [installs]", e->key);
        }
    }
}

static void section_store(loader *l, const ini_section *s)
{
    controller_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "keep_events_days")) {
            if (parse_u32(e->value, 0, 36500, &c->keep_events_days) < 0) {
                problem(l, e->line,
                        "keep_events_days: expected days (0 keeps events for ever, at most "
                        "36500), not \"%s\"",
                        e->value);
            }
        } else if (streq(e->key, "url")) {
            const char *why = NULL;
            if (store_url_check(e->value, &why) < 0) {
                problem(l, e->line, "url: %s: \"%s\"", why, e->value);
            } else {
                set_string(l, e, &c->store_url, false);
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [store]", e->key);
        }
    }
}

int controller_config_load(const char *path, diag *d, controller_config **ret)
{
    ini_doc *doc = NULL;
    int r = ini_load_file(path, d, &doc);
    if (r < 0) {
        return r;
    }
    controller_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ini_doc_free(doc);
        return -ENOMEM;
    }
    c->path = strdup(path);
    c->log_level = LOG_LEVEL_INFO;
    c->timeouts.boot_ms = (uint64_t)CONTROLLER_DEFAULT_BOOT_TIMEOUT * 1000;
    c->timeouts.install_ms = (uint64_t)CONTROLLER_DEFAULT_INSTALL_TIMEOUT * 1000;
    c->keep_events_days = CONTROLLER_DEFAULT_KEEP_EVENTS;
    loader l = { .file = path, .d = d, .cfg = c };

    for (size_t i = 0; i < doc->n_sections; i++) {
        const ini_section *s = &doc->sections[i];
        if (streq(s->name, "controller")) {
            section_controller(&l, s);
        } else if (streq(s->name, "pki")) {
            section_pki(&l, s);
        } else if (streq(s->name, "installs")) {
            section_installs(&l, s);
        } else if (streq(s->name, "store")) {
            section_store(&l, s);
        } else {
            problem(&l, s->line, "unknown section [%s]", s->name);
        }
    }
    if (!c->api_listen) {
        c->api_listen = strdup(CONTROLLER_DEFAULT_API_LISTEN);
    }
    if (!c->state_dir) {
        problem(&l, 0, "[controller] state_dir is required");
    }
    bool tls = c->agents_listen || c->operators_listen;
    if (tls && (!c->ca || !c->cert || !c->key)) {
        problem(&l, 0,
                "[pki] ca, cert and key are required with agents_listen or "
                "operators_listen");
    }
    ini_doc_free(doc);
    if (!c->path || !c->api_listen) {
        problem(&l, 0, "out of memory");
    }
    if (l.errors > 0) {
        controller_config_free(c);
        return -EINVAL;
    }
    *ret = c;
    return 0;
}
