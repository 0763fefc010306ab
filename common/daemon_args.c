#include "daemon_args.h"

#include <getopt.h>

#include "parse.h"
#include "version.h"

void daemon_args_usage(const daemon_program *prog, FILE *f)
{
    fprintf(f,
            "Usage: %s --config FILE [--user NAME] [--check-config]\n"
            "%s%s%s"
            "\n"
            "%s"
            "\n"
            "  -c, --config FILE   configuration file (see %s)\n"
            "  -u, --user NAME     %s, run as this user (overrides\n"
            "                      %s)\n"
            "      --check-config  validate %s, then exit\n"
            "%s"
            "  -h, --help          show this help\n"
            "  -V, --version       show the version\n"
            "\n"
            "%s",
            prog->name, prog->store_options ? "       " : "", prog->store_options ? prog->name : "",
            prog->store_options ? " --config FILE --migrate | --import-store URL\n" : "",
            prog->about, prog->example, prog->user_when, prog->user_key, prog->check_what,
            prog->store_options
                ? "      --migrate       bring the configured store's schema to this version,\n"
                  "                      then exit (a shared PostgreSQL store needs it)\n"
                  "      --import-store URL\n"
                  "                      copy a stopped controller's store (sqlite:///PATH)\n"
                  "                      into the configured, empty PostgreSQL store, then exit\n"
                : "",
            prog->signals);
}

int daemon_args_parse(const daemon_program *prog, int argc, char **argv, FILE *out, FILE *err,
                      daemon_args *ret)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' },
        { "user", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "migrate", no_argument, NULL, 'M' },
        { "import-store", required_argument, NULL, 'I' },
        { 0 },
    };
    daemon_args a = { 0 };
    int c;
    /* 0, not 1: glibc then also resets its state inside an argument ("-hV"). */
    optind = 0;
    while ((c = getopt_long(argc, argv, "c:u:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a.config = optarg;
            break;
        case 'u':
            if (!user_name_valid(optarg)) {
                fprintf(err, "%s: --user: \"%s\" is not a user name\n", prog->name, optarg);
                return 2;
            }
            a.user = optarg;
            break;
        case 'C':
            a.check_config = true;
            break;
        case 'M':
        case 'I':
            if (!prog->store_options) {
                daemon_args_usage(prog, err);
                return 2;
            }
            if (c == 'M') {
                a.migrate = true;
            } else {
                a.import_store = optarg;
            }
            break;
        case 'h':
            daemon_args_usage(prog, out);
            return 0;
        case 'V':
            fprintf(out, "%s %s\n", prog->name, RACKBOOT_VERSION);
            return 0;
        default:
            daemon_args_usage(prog, err);
            return 2;
        }
    }
    /* each of them a run of its own that exits */
    if (a.check_config + a.migrate + !!a.import_store > 1) {
        fprintf(err, "%s: --check-config, --migrate and --import-store exclude each other\n",
                prog->name);
        return 2;
    }
    if (optind < argc || !a.config) {
        daemon_args_usage(prog, err);
        return 2;
    }
    *ret = a;
    return DAEMON_ARGS_RUN;
}
