/* rackboot-pki: the fleet CA on the command line. The work is in ca.c; this
 * file parses arguments and prints. Exit status: 0 done, 1 failed, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "pki.h"
#include "util.h"
#include "version.h"

#define EXIT_USAGE 2

static const char *opt_dir;

static const char usage_top[] =
    "Usage: rackboot-pki [--dir DIR] COMMAND [ARGS]\n"
    "\n"
    "Runs the rackboot fleet CA kept in DIR: certificates for the controller, the\n"
    "rack agents and the operators, and the revocation list (CRL).\n"
    "\n"
    "Commands:\n"
    "  init [--name NAME] [--days N]            create the CA (ca.crt, ca.key, crl.pem)\n"
    "  issue controller NAME [--san DNS|IP]...  certificate for the controller\n"
    "  issue agent RACK [--instance N]          certificate for the agent (N) of RACK\n"
    "  issue operator NAME                      certificate for an operator\n"
    "  issue viewer NAME                        certificate for a read-only operator\n"
    "  revoke ROLE NAME                         revoke, and rewrite crl.pem\n"
    "  crl [--days N]                           rewrite crl.pem (run weekly)\n"
    "  list                                     issued certificates and CRL expiry\n"
    "\n"
    "Options:\n"
    "  -d, --dir DIR   the CA directory (default: $RACKBOOT_PKI_DIR)\n"
    "  -h, --help      this text; COMMAND --help for a command's own\n"
    "  -V, --version   print the version\n";

static const char usage_init[] =
    "Usage: rackboot-pki --dir DIR init [--name NAME] [--days N]\n"
    "\n"
    "Creates the fleet CA in DIR (created 0700 if missing): DIR/ca.key (0600),\n"
    "DIR/ca.crt, an empty DIR/crl.pem valid 30 days, and DIR/index.txt.\n"
    "Refuses if a CA is already there.\n"
    "\n"
    "  --name NAME   CA common name, e.g. \"ACME Fleet CA\" (default: rackboot-fleet-ca)\n"
    "  --days N      validity in days (default: 3650)\n";

static const char usage_issue[] =
    "Usage: rackboot-pki --dir DIR issue controller NAME [--san DNS|IP]... [--days N]\n"
    "       rackboot-pki --dir DIR issue agent RACK [--instance N] [--days N]\n"
    "       rackboot-pki --dir DIR issue operator NAME [--days N]\n"
    "       rackboot-pki --dir DIR issue viewer NAME [--days N]\n"
    "\n"
    "Writes DIR/<role>/<name>.crt and DIR/<role>/<name>.key (0600). Never\n"
    "overwrites: to replace a certificate, revoke it and move its files away.\n"
    "Names are 1-63 of A-Z a-z 0-9 . _ - (a controller's must be a DNS name).\n"
    "A viewer may read everything through the operators' API (list, show,\n"
    "status, events, watch) but change nothing.\n"
    "\n"
    "A controller certificate always carries NAME as a DNS SAN: nng's mbedTLS\n"
    "matches only DNS names, so agents must set NAME as the TLS server name\n"
    "even when they dial an IP address.\n"
    "\n"
    "A rack served by a redundant pair of agents gives each its own certificate:\n"
    "agent 1 is named RACK (as every agent certificate), agent N (2-9) RACK/N,\n"
    "issued with --instance N into DIR/agent/RACK@N.crt and .key.\n"
    "\n"
    "  --san DNS|IP  extra subjectAltName (controller only; repeatable). IP SANs\n"
    "                help OpenSSL clients only, nng ignores them.\n"
    "  --instance N  agent only: the rack's agent N, 1-9 (default: 1, named RACK)\n"
    "  --days N      validity in days (default: 365, never past the CA's)\n";

static const char usage_revoke[] =
    "Usage: rackboot-pki --dir DIR revoke ROLE NAME [--instance N] [--crl-days N]\n"
    "\n"
    "Records the revocation of every certificate issued to ROLE NAME and rewrites\n"
    "DIR/crl.pem. Distribute crl.pem to the controller and agents and reload them\n"
    "(SIGHUP). ROLE is controller, agent, operator or viewer.\n"
    "\n"
    "  --instance N  agent only: the rack's agent N (the certificate named NAME/N)\n"
    "  --crl-days N  validity of the new CRL in days (default: 30)\n";

static const char usage_crl[] =
    "Usage: rackboot-pki --dir DIR crl [--days N]\n"
    "\n"
    "Rewrites DIR/crl.pem, valid N days (default: 30). Every daemon refuses every\n"
    "peer once its CRL passes nextUpdate, so run this weekly (cron or a systemd\n"
    "timer) and distribute the result.\n"
    "\n"
    "  --days N      validity in days (default: 30)\n";

static const char usage_list[] =
    "Usage: rackboot-pki --dir DIR list\n"
    "\n"
    "Shows every issued certificate: role, name, serial, not-after and status\n"
    "(valid, revoked, expired), then the CRL's nextUpdate; warns when that is\n"
    "under 7 days away.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rackboot-pki: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static int fail(const pki_reason *reason, int r, const char *what)
{
    if (reason->text[0]) {
        fprintf(stderr, "rackboot-pki: %s: %s\n", what, reason->text);
    } else {
        fprintf(stderr, "rackboot-pki: %s: %s\n", what, errstr(r));
    }
    return EXIT_FAILURE;
}

static int parse_days(const char *s, unsigned *ret)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > PKI_DAYS_MAX) {
        return -EINVAL;
    }
    *ret = (unsigned)v;
    return 0;
}

static void format_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        (void)snprintf(buf, size, "@%lld", (long long)t);
    }
}

enum {
    OPT_NAME = 0x100,
    OPT_DAYS,
    OPT_SAN,
    OPT_CRL_DAYS,
    OPT_INSTANCE,
};

/* The options every subcommand understands; each accepts only its own. */
static const struct option sub_options[] = {
    { "help", no_argument, NULL, 'h' },
    { "dir", required_argument, NULL, 'd' },
    { "name", required_argument, NULL, OPT_NAME },
    { "days", required_argument, NULL, OPT_DAYS },
    { "san", required_argument, NULL, OPT_SAN },
    { "crl-days", required_argument, NULL, OPT_CRL_DAYS },
    { "instance", required_argument, NULL, OPT_INSTANCE },
    { 0 },
};

typedef struct sub_args {
    const char *name;
    unsigned days;
    bool days_set;
    unsigned crl_days;
    const char *sans[32];
    size_t n_sans;
    unsigned instance; /* --instance N (agents), 0 when not given */
    int n_pos;
    char **pos;
} sub_args;

/* Whether `word` is one of the space-separated words in `list`. */
static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) {
            return true;
        }
    }
    return false;
}

/* Parses a subcommand's options. `allowed` lists the long options it takes.
 * Returns 0, 1 after printing help, or EXIT_USAGE. */
static int parse_sub(int argc, char **argv, const char *usage, const char *allowed, sub_args *a)
{
    optind = 0; /* GNU: start over on the new argv */
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hd:", sub_options, NULL);
        if (c == -1) {
            break;
        }
        const char *as = c == OPT_NAME       ? "name"
                         : c == OPT_DAYS     ? "days"
                         : c == OPT_SAN      ? "san"
                         : c == OPT_CRL_DAYS ? "crl-days"
                         : c == OPT_INSTANCE ? "instance"
                                             : NULL;
        if (as && !word_in(allowed, as)) {
            return usage_error("%s does not take --%s", argv[0], as);
        }
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'd':
            opt_dir = optarg;
            break;
        case OPT_NAME:
            a->name = optarg;
            break;
        case OPT_DAYS:
            if (parse_days(optarg, &a->days) < 0) {
                return usage_error("--days wants 1..%d, not %s", PKI_DAYS_MAX, optarg);
            }
            a->days_set = true;
            break;
        case OPT_CRL_DAYS:
            if (parse_days(optarg, &a->crl_days) < 0) {
                return usage_error("--crl-days wants 1..%d, not %s", PKI_DAYS_MAX, optarg);
            }
            break;
        case OPT_INSTANCE: {
            char *end = NULL;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > PKI_AGENT_INSTANCE_MAX) {
                return usage_error("--instance wants 1..%u, not %s", PKI_AGENT_INSTANCE_MAX,
                                   optarg);
            }
            a->instance = (unsigned)v;
            break;
        }
        case OPT_SAN:
            if (a->n_sans >= ARRAY_SIZE(a->sans)) {
                return usage_error("at most %zu --san", ARRAY_SIZE(a->sans));
            }
            a->sans[a->n_sans++] = optarg;
            break;
        case ':':
            return usage_error("%s: option %s needs a value", argv[0], argv[optind - 1]);
        default:
            return usage_error("%s: unknown option %s", argv[0], argv[optind - 1]);
        }
    }
    a->pos = argv + optind;
    a->n_pos = argc - optind;
    return 0;
}

static int need_dir(void)
{
    if (strempty(opt_dir)) {
        return usage_error("no CA directory: give --dir DIR or set RACKBOOT_PKI_DIR");
    }
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    sub_args a = { .name = "rackboot-fleet-ca", .days = PKI_CA_DAYS_DEFAULT };
    int r = parse_sub(argc, argv, usage_init, "name days", &a);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (a.n_pos != 0) {
        return usage_error("init takes no arguments");
    }
    if ((r = need_dir()) != 0) {
        return r;
    }
    pki_reason reason = { "" };
    r = pki_ca_init(opt_dir, a.name, a.days, &reason);
    if (r < 0) {
        return fail(&reason, r, "init");
    }
    printf("created CA %s in %s (ca.crt, ca.key, crl.pem)\n", a.name, opt_dir);
    return 0;
}

static int open_ca(pki_ca **ret)
{
    pki_reason reason = { "" };
    int r = pki_ca_open(opt_dir, ret, &reason);
    if (r < 0) {
        return fail(&reason, r, "open");
    }
    return 0;
}

/* The certificate's name: NAME, or with --instance N (agents only) the
 * name of agent N of rack NAME, "NAME/N" (pki.h). EXIT_USAGE after saying
 * why when that is no name. */
static int subject_name(const sub_args *a, pki_role role, char out[PKI_NAME_MAX + 1])
{
    if (a->instance == 0) {
        (void)snprintf(out, PKI_NAME_MAX + 1, "%s", a->pos[1]);
        return 0;
    }
    if (role != PKI_ROLE_AGENT) {
        return usage_error("--instance is for agent certificates only");
    }
    if (strchr(a->pos[1], '/')) {
        return usage_error("agent %s: give the rack and --instance, or RACK/N alone", a->pos[1]);
    }
    if (pki_agent_name(a->pos[1], a->instance, out) < 0) {
        return usage_error("agent %s --instance %u: not a valid rack name, or too long with the "
                           "instance (at most %d characters in all)",
                           a->pos[1], a->instance, PKI_NAME_MAX);
    }
    return 0;
}

static int cmd_issue(int argc, char **argv)
{
    sub_args a = { .days = PKI_LEAF_DAYS_DEFAULT };
    int r = parse_sub(argc, argv, usage_issue, "days san instance", &a);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (a.n_pos != 2) {
        return usage_error("issue wants ROLE NAME");
    }
    pki_role role;
    if (pki_role_from_string(a.pos[0], &role) < 0) {
        return usage_error("unknown role %s (controller, agent, operator, viewer)", a.pos[0]);
    }
    if (a.n_sans > 0 && role != PKI_ROLE_CONTROLLER) {
        return usage_error("--san is for controller certificates only");
    }
    char name[PKI_NAME_MAX + 1], file[PKI_NAME_MAX + 1];
    if ((r = subject_name(&a, role, name)) != 0) {
        return r;
    }
    pki_name_to_file(name, file);
    if ((r = need_dir()) != 0) {
        return r;
    }
    pki_ca *ca = NULL;
    if ((r = open_ca(&ca)) != 0) {
        return r;
    }
    time_t now = time(NULL);
    pki_issue_request req = {
        .role = role,
        .name = name,
        .sans = a.sans,
        .n_sans = a.n_sans,
        .not_before = now - PKI_CLOCK_SKEW_SECONDS,
        .not_after = now + (time_t)a.days * 86400,
    };
    pki_reason reason = { "" };
    r = pki_ca_issue(ca, &req, &reason);
    ca = pki_ca_free(ca);
    if (r < 0) {
        return fail(&reason, r, "issue");
    }
    printf("issued %s %s: %s/%s/%s.crt and .key\n", a.pos[0], name, opt_dir, a.pos[0], file);
    return 0;
}

static int cmd_revoke(int argc, char **argv)
{
    sub_args a = { .crl_days = PKI_CRL_DAYS_DEFAULT };
    int r = parse_sub(argc, argv, usage_revoke, "crl-days instance", &a);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (a.n_pos != 2) {
        return usage_error("revoke wants ROLE NAME");
    }
    pki_role role;
    if (pki_role_from_string(a.pos[0], &role) < 0) {
        return usage_error("unknown role %s (controller, agent, operator, viewer)", a.pos[0]);
    }
    char name[PKI_NAME_MAX + 1];
    if ((r = subject_name(&a, role, name)) != 0) {
        return r;
    }
    if ((r = need_dir()) != 0) {
        return r;
    }
    pki_ca *ca = NULL;
    if ((r = open_ca(&ca)) != 0) {
        return r;
    }
    pki_reason reason = { "" };
    r = pki_ca_revoke(ca, role, name, a.crl_days, &reason);
    ca = pki_ca_free(ca);
    if (r < 0) {
        return fail(&reason, r, "revoke");
    }
    printf("revoked %s %s (%d certificate%s); distribute %s/crl.pem\n", a.pos[0], name, r,
           r == 1 ? "" : "s", opt_dir);
    return 0;
}

static int cmd_crl(int argc, char **argv)
{
    sub_args a = { .days = PKI_CRL_DAYS_DEFAULT };
    int r = parse_sub(argc, argv, usage_crl, "days", &a);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (a.n_pos != 0) {
        return usage_error("crl takes no arguments");
    }
    if ((r = need_dir()) != 0) {
        return r;
    }
    pki_ca *ca = NULL;
    if ((r = open_ca(&ca)) != 0) {
        return r;
    }
    pki_reason reason = { "" };
    r = pki_ca_write_crl(ca, a.days, &reason);
    ca = pki_ca_free(ca);
    if (r < 0) {
        return fail(&reason, r, "crl");
    }
    printf("wrote %s/crl.pem, valid %u days; distribute it\n", opt_dir, a.days);
    return 0;
}

static int cmd_list(int argc, char **argv)
{
    sub_args a = { 0 };
    int r = parse_sub(argc, argv, usage_list, "", &a);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (a.n_pos != 0) {
        return usage_error("list takes no arguments");
    }
    if ((r = need_dir()) != 0) {
        return r;
    }
    pki_ca *ca = NULL;
    if ((r = open_ca(&ca)) != 0) {
        return r;
    }
    time_t now = time(NULL);
    printf("%-10s  %-32s  %-34s  %-20s  %s\n", "ROLE", "NAME", "SERIAL", "NOT-AFTER", "STATUS");
    for (size_t i = 0; i < pki_ca_count(ca); i++) {
        const pki_ca_entry *e = pki_ca_entry_at(ca, i);
        char when[32];
        format_time(e->not_after, when, sizeof(when));
        printf("%-10s  %-32s  %-34s  %-20s  %s\n", pki_role_to_string(e->role), e->name, e->serial,
               when, pki_cert_status_to_string(pki_ca_entry_status(e, now)));
    }

    pki_reason reason = { "" };
    time_t next;
    r = pki_ca_crl_next_update(ca, &next, &reason);
    ca = pki_ca_free(ca);
    if (r < 0) {
        return fail(&reason, r, "list");
    }
    char when[32];
    format_time(next, when, sizeof(when));
    long long left = (long long)(next - now);
    printf("\nCRL next update: %s (%lld days)\n", when, left / 86400);
    if (left <= 0) {
        fprintf(stderr,
                "rackboot-pki: warning: the CRL expired at %s: every daemon now refuses every "
                "peer; run rackboot-pki --dir %s crl and distribute crl.pem\n",
                when, opt_dir);
    } else if (left < (long long)PKI_CRL_WARN_DAYS * 86400) {
        fprintf(stderr,
                "rackboot-pki: warning: the CRL expires in under %d days (%s); run "
                "rackboot-pki --dir %s crl and distribute crl.pem\n",
                PKI_CRL_WARN_DAYS, when, opt_dir);
    }
    return 0;
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "init", cmd_init }, { "issue", cmd_issue }, { "revoke", cmd_revoke },
    { "crl", cmd_crl },   { "list", cmd_list },
};

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "dir", required_argument, NULL, 'd' },
        { 0 },
    };
    opt_dir = getenv("RACKBOOT_PKI_DIR");
    opterr = 0;
    for (;;) {
        /* '+': stop at the command, whose options are its own. */
        int c = getopt_long(argc, argv, "+:hVd:", options, NULL);
        if (c == -1) {
            break;
        }
        switch (c) {
        case 'h':
            fputs(usage_top, stdout);
            return 0;
        case 'V':
            printf("rackboot-pki %s\n", RACKBOOT_VERSION);
            return 0;
        case 'd':
            opt_dir = optarg;
            break;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        return usage_error("no command given");
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (streq(argv[optind], commands[i].name)) {
            return commands[i].run(argc - optind, argv + optind);
        }
    }
    return usage_error("unknown command %s", argv[optind]);
}
