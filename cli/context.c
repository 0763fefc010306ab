#include "context.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fileio.h"
#include "ini.h"
#include "render.h"
#include "util.h"

/* What a context sets, where else each comes from. */
enum { F_CONTROLLER, F_CA, F_CERT, F_KEY, F_CRL, F_SERVER_NAME, N_FIELDS };

static const struct field {
    const char *key;    /* in [context NAME] */
    const char *env;    /* the environment variable */
    const char *option; /* the command line's */
    bool path;          /* relative to the config file, or ~/... */
} fields[N_FIELDS] = {
    [F_CONTROLLER] = { "controller", "RACKBOOT_CONTROLLER", "--controller", false },
    [F_CA] = { "ca", "RACKBOOT_CA", "--ca", true },
    [F_CERT] = { "cert", "RACKBOOT_CERT", "--cert", true },
    [F_KEY] = { "key", "RACKBOOT_KEY", "--key", true },
    [F_CRL] = { "crl", "RACKBOOT_CRL", "--crl", true },
    [F_SERVER_NAME] = { "server_name", "RACKBOOT_SERVER_NAME", "--server-name", false },
};

#define SECTION_MAIN    "rackboot"
#define SECTION_CONTEXT "context"

struct cli_context_state {
    char *name;             /* c->context */
    char *values[N_FIELDS]; /* taken from the context */
    char *from;             /* c->controller_from when it is the context's */
};

static const char **slot(cli *c, size_t field)
{
    switch (field) {
    case F_CONTROLLER:
        return &c->controller;
    case F_CA:
        return &c->ca;
    case F_CERT:
        return &c->cert;
    case F_KEY:
        return &c->key;
    case F_CRL:
        return &c->crl;
    default:
        return &c->server_name;
    }
}

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return strempty(v) ? NULL : v;
}

char *cli_config_path(void)
{
    const char *v = env_value("RACKBOOT_CONFIG");
    if (v) {
        return strdup(v);
    }
    char *path = NULL;
    const char *xdg = env_value("XDG_CONFIG_HOME");
    const char *home = env_value("HOME");
    int n = xdg && xdg[0] == '/' ? asprintf(&path, "%s/rackboot/config", xdg)
            : home               ? asprintf(&path, "%s/.config/rackboot/config", home)
                                 : -1;
    return n < 0 ? NULL : path;
}

/* A config file's path value: "~/x" in $HOME, else relative to the file. */
static char *resolve_path(const char *file, const char *value)
{
    const char *home = env_value("HOME");
    if (strncmp(value, "~/", 2) == 0 && home) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", home, value + 2) < 0 ? NULL : p;
    }
    return fileio_path_relative(file, value);
}

/* The name of a [context NAME] section, NULL for any other. */
static const char *context_name(const ini_section *s)
{
    const char *kind, *arg;
    size_t kind_len;
    if (ini_section_split(s->name, &kind, &kind_len, &arg) < 0 || !arg ||
        kind_len != strlen(SECTION_CONTEXT) || strncmp(kind, SECTION_CONTEXT, kind_len) != 0) {
        return NULL;
    }
    return arg;
}

/* Every section and key known; problems to `d`. */
static void check_doc(const ini_doc *doc, diag *d)
{
    for (size_t i = 0; i < doc->n_sections; i++) {
        const ini_section *s = &doc->sections[i];
        bool main_section = streq(s->name, SECTION_MAIN);
        if (!main_section && !context_name(s)) {
            diag_add(d, doc->path, s->line,
                     "unknown section [%s] (expected [" SECTION_MAIN "] or [" SECTION_CONTEXT
                     " NAME])",
                     s->name);
            continue;
        }
        for (size_t k = 0; k < s->n_entries; k++) {
            const ini_entry *e = &s->entries[k];
            bool known = false;
            if (main_section) {
                known = streq(e->key, "context");
            } else {
                for (size_t f = 0; f < N_FIELDS && !known; f++) {
                    known = streq(e->key, fields[f].key);
                }
            }
            if (!known) {
                diag_add(d, doc->path, e->line, "unknown key \"%s\" in [%s]", e->key, s->name);
            } else if (!e->value[0]) {
                diag_add(d, doc->path, e->line, "%s: empty value", e->key);
            }
        }
    }
}

static const ini_section *find_context(const ini_doc *doc, const char *name)
{
    for (size_t i = 0; i < doc->n_sections; i++) {
        const char *n = context_name(&doc->sections[i]);
        if (n && streq(n, name)) {
            return &doc->sections[i];
        }
    }
    return NULL;
}

/* The config file, checked: 0 with *ret (NULL when there is none and that
 * is fine), or CLI_EXIT_USAGE after printing why. */
static int load_config(cli *c, const char *path, bool required, ini_doc **ret)
{
    *ret = NULL;
    diag *d = diag_new();
    ini_doc *doc = NULL;
    int r = d ? ini_load_file(path, d, &doc) : -ENOMEM;
    if (r == -ENOENT && !required) {
        diag_free(d);
        return 0;
    }
    if (r >= 0) {
        check_doc(doc, d);
    }
    int code = 0;
    if (r < 0 || diag_count(d) > 0) {
        if (d && diag_count(d) > 0) {
            cli_print_diag(c, d, "rackboot: ");
        } else {
            cli_error(c, "%s: %s", path, errstr(r));
        }
        doc = ini_doc_free(doc);
        code = CLI_EXIT_USAGE;
    }
    diag_free(d);
    *ret = doc;
    return code;
}

/* The names of the file's contexts, for "not found" messages. */
static void print_known(cli *c, const ini_doc *doc)
{
    fprintf(c->err, "rackboot: contexts in %s:", doc->path);
    size_t n = 0;
    for (size_t i = 0; i < doc->n_sections; i++) {
        const char *name = context_name(&doc->sections[i]);
        if (name) {
            fprintf(c->err, " %s", name);
            n++;
        }
    }
    fprintf(c->err, "%s\n", n ? "" : " none");
}

/* Fills the unset fields from context `name` of `doc`. */
static int apply_context(cli *c, const ini_doc *doc, const char *name)
{
    const ini_section *s = find_context(doc, name);
    if (!s) {
        cli_error(c, "context %s: no [context %s] in %s", name, name, doc->path);
        print_known(c, doc);
        return CLI_EXIT_USAGE;
    }
    c->context_state = calloc(1, sizeof(*c->context_state));
    if (!c->context_state || !(c->context_state->name = strdup(name))) {
        cli_error(c, "out of memory");
        return CLI_EXIT_USAGE;
    }
    c->context = c->context_state->name;
    for (size_t f = 0; f < N_FIELDS; f++) {
        const ini_entry *e = ini_section_find(s, fields[f].key);
        const char **to = slot(c, f);
        if (!e || *to) {
            continue;
        }
        char *v = fields[f].path ? resolve_path(doc->path, e->value) : strdup(e->value);
        if (!v) {
            cli_error(c, "out of memory");
            return CLI_EXIT_USAGE;
        }
        c->context_state->values[f] = v;
        *to = v;
        if (f == F_CONTROLLER &&
            asprintf(&c->context_state->from, "context %s in %s", name, doc->path) >= 0) {
            c->controller_from = c->context_state->from;
        }
    }
    return 0;
}

int cli_context_resolve(cli *c, const char *context)
{
    bool missing = false;
    for (size_t f = 0; f < N_FIELDS; f++) {
        const char **to = slot(c, f);
        if (*to) {
            if (f == F_CONTROLLER) {
                c->controller_from = fields[f].option;
            }
            continue;
        }
        *to = env_value(fields[f].env);
        if (*to && f == F_CONTROLLER) {
            c->controller_from = fields[f].env;
        }
        missing |= !*to;
    }
    const char *named = context ? context : env_value("RACKBOOT_CONTEXT");
    if (missing || named) {
        _cleanup_free_ char *path = cli_config_path();
        if (!path && named) {
            return cli_usage_error(c, NULL, "context %s: no config file (set HOME or %s)", named,
                                   "RACKBOOT_CONFIG");
        }
        ini_doc *doc = NULL;
        int code = path ? load_config(c, path, named != NULL, &doc) : 0;
        if (code != 0) {
            return code;
        }
        const ini_section *main_section = doc ? ini_doc_find_section(doc, SECTION_MAIN) : NULL;
        const ini_entry *e = main_section ? ini_section_find(main_section, "context") : NULL;
        const char *name = named ? named : e ? e->value : NULL;
        if (name) {
            code = apply_context(c, doc, name);
        }
        ini_doc_free(doc);
        if (code != 0) {
            return code;
        }
    }
    if (!c->controller) {
        c->controller = CLI_DEFAULT_CONTROLLER;
        c->controller_from = "the default";
    }
    return CLI_EXIT_OK;
}

void cli_context_release(cli *c)
{
    struct cli_context_state *s = c->context_state;
    if (!s) {
        return;
    }
    for (size_t f = 0; f < N_FIELDS; f++) {
        if (s->values[f]) {
            const char **to = slot(c, f);
            if (*to == s->values[f]) {
                *to = NULL;
            }
            free(s->values[f]);
        }
    }
    if (c->controller_from == s->from) {
        c->controller_from = NULL;
    }
    if (c->context == s->name) {
        c->context = NULL;
    }
    free(s->name);
    free(s->from);
    free(s);
    c->context_state = NULL;
}

static const char contexts_help[] =
    "Usage: rackboot contexts [-o FORMAT]\n"
    "\n"
    "Lists the contexts of the CLI's config file ($RACKBOOT_CONFIG, else\n"
    "$XDG_CONFIG_HOME/rackboot/config, else ~/.config/rackboot/config), the one\n"
    "in use marked '*'. A context names a controller and the files to reach it:\n"
    "\n"
    "    # the context used when none is named\n"
    "    [rackboot]\n"
    "    context = prod\n"
    "\n"
    "    # paths: relative to this file, or ~/...; crl and server_name optional\n"
    "    [context prod]\n"
    "    controller = tls+tcp://ctl1.fleet.example.net:7444\n"
    "    ca = /etc/rackboot/ca.crt\n"
    "    cert = alice.crt\n"
    "    key = alice.key\n"
    "    crl = /etc/rackboot/crl.pem\n"
    "    server_name = ctl1.fleet.example.net\n"
    "\n"
    "Comments are whole lines: a '#' after a value is part of the value.\n"
    "\n"
    "'rackboot --context NAME ...' (or RACKBOOT_CONTEXT=NAME) uses another.\n"
    "Each setting comes from the command line (--controller, --ca, --cert,\n"
    "--key, --crl, --server-name), else the environment (RACKBOOT_CONTROLLER,\n"
    "RACKBOOT_CA, RACKBOOT_CERT, RACKBOOT_KEY, RACKBOOT_CRL,\n"
    "RACKBOOT_SERVER_NAME), else the context; the controller else defaults "
    "to\n" CLI_DEFAULT_CONTROLLER ".\n";

int cmd_contexts(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            fputs(contexts_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "contexts ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (optind < argc && !streq(argv[optind], "list")) {
        return cli_usage_error(c, "contexts ", "unexpected argument '%s'", argv[optind]);
    }
    _cleanup_free_ char *path = cli_config_path();
    ini_doc *doc = NULL;
    if (path) {
        int code = load_config(c, path, false, &doc);
        if (code != 0) {
            return code;
        }
    }
    json_t *list = output_structured(c->format) ? json_array() : NULL;
    if (!output_structured(c->format)) {
        fprintf(c->out, "%-1s %-16s %s\n", "", "NAME", "CONTROLLER");
    }
    for (size_t i = 0; doc && i < doc->n_sections; i++) {
        const char *name = context_name(&doc->sections[i]);
        if (!name) {
            continue;
        }
        const ini_entry *e = ini_section_find(&doc->sections[i], fields[F_CONTROLLER].key);
        const char *url = e ? e->value : "";
        bool current = c->context && streq(c->context, name);
        if (list) {
            json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "name", name, "controller",
                                                  url, "current", current));
        } else {
            fprintf(c->out, "%-1s %-16s %s\n", current ? "*" : "", name, url);
        }
    }
    bool have_file = doc != NULL;
    ini_doc_free(doc);
    if (output_structured(c->format)) {
        return output_print(c->out, c->format, list, "name") < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    }
    if (!path) {
        cli_error(c, "no config file (set HOME or RACKBOOT_CONFIG)");
    } else if (!have_file) {
        cli_error(c, "no config file at %s ('rackboot contexts --help' shows one)", path);
    }
    return ferror(c->out) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
