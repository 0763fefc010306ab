/* rackboot profiles import|list|show and rackboot images: what to install. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "commands.h"
#include "diag.h"
#include "model/template.h"
#include "pb.h"
#include "profile_file.h"
#include "rbproto.h"
#include "render.h"
#include "util.h"
#include "values.h"

static const char profiles_help[] =
    "Usage: rackboot profiles COMMAND ...\n"
    "\n"
    "  import FILE...            add or update the [profile NAME] sections of\n"
    "                            standalone hosts files (same keys as the agent's)\n"
    "  list\n"
    "  show NAME...              with the kickstart template\n"
    "\n"
    "Run 'rackboot profiles COMMAND --help' for one command.\n";

static const char import_help[] =
    "Usage: rackboot profiles import FILE... [-o FORMAT]\n"
    "\n"
    "Reads every [profile NAME] section of each FILE, in the agent's standalone\n"
    "hosts file format:\n"
    "  kernel = URL sha256=HEX      initrd = URL sha256=HEX   (required)\n"
    "  stage2 = URL sha256=HEX      file.NAME = URL sha256=HEX\n"
    "  cmdline = ARGS   kickstart = FILE (relative to the profile file)\n"
    "  overlay = yes|no   ip = static|dhcp6   keep_ra = yes|no\n"
    "  root_device = auto|/dev/PATH (passed as rackboot.root_device=)\n"
    "  uefi_boot = ipxe|uki (UEFI hosts: through iPXE, or a per-host kernel image)\n"
    "  kind = install|image|debian-installer\n"
    "  image = URL sha256=HEX (kind = image: a raw, .zst or .xz disk image)\n"
    "  ssh_authorized_keys = LINE (repeatable)\n"
    "  user_data = FILE (a cloud-init user-data template, relative to the file)\n"
    "  kind = debian-installer: kernel and initrd are Debian's netboot installer,\n"
    "  preseed = FILE (a preseed template, relative to the file; ip = static,\n"
    "  no stage2 or overlay; ssh_authorized_keys go to the installed system)\n"
    "  source_check = yes|no\n"
    "The kickstart template's content is sent with the profile. Importing a\n"
    "profile that exists replaces it (--update is accepted and is the default);\n"
    "installs already dispatched keep the profile they were sent.\n"
    "\n"
    "Kickstart, preseed and user-data templates may use these placeholders,\n"
    "written {{name}}; any other name is refused at import:\n";

/* The help, then each placeholder the templates know (model/template.h). */
static void print_import_help(FILE *f)
{
    fputs(import_help, f);
    for (size_t i = 0; i < template_n_placeholders; i++) {
        fprintf(f, "  %-14s %s\n", template_placeholders[i].name, template_placeholders[i].meaning);
    }
}

static const char list_help[] = "Usage: rackboot profiles list [-o FORMAT]\n";
static const char show_help[] = "Usage: rackboot profiles show NAME... [-o FORMAT]\n";
static const char images_help[] =
    "Usage: rackboot images [list] [-o FORMAT]\n"
    "\n"
    "Every image of every profile: kind, file name, size, sha256 and origin URL.\n";

enum { OPT_UPDATE = 1000 };

static int profiles_import(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "update", no_argument, NULL, OPT_UPDATE },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_UPDATE:
            break; /* always: re-importing a profile updates it */
        case 'h':
            print_import_help(c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "profiles import ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (argc == optind) {
        return cli_usage_error(c, "profiles import ", "expected a FILE");
    }
    Rackboot__V1__ApiRequest *req =
        cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT);
    diag *d = diag_new();
    if (!req || !d) {
        cli_pb_free(req);
        diag_free(d);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    /* The rule: re-importing a profile updates it. The controller
     * then bumps the generation of racks whose active installs use it. */
    req->profiles_import->update_existing = true;
    int r = 0;
    bool failed = false;
    for (int i = optind; i < argc; i++) {
        Rackboot__V1__ProfilesImportRequest *pi = req->profiles_import;
        size_t before = pi->n_profiles;
        r = profile_file_read_profiles(argv[i], d, pi);
        if (r == -ENOMEM) {
            break;
        }
        failed |= r < 0;
        /* One name, one profile: two files defining it would be a race. */
        for (size_t k = before; k < pi->n_profiles; k++) {
            for (size_t j = 0; j < before; j++) {
                if (streq(pi->profiles[k]->name, pi->profiles[j]->name)) {
                    diag_add(d, argv[i], 0, "profile %s is also defined in an earlier file",
                             pi->profiles[k]->name);
                    failed = true;
                }
            }
        }
        r = 0;
    }
    if (r == 0 && !failed && req->profiles_import->n_profiles > RBPROTO_MAX_PROFILES) {
        diag_add(d, NULL, 0, "more than %u profiles in one import", RBPROTO_MAX_PROFILES);
        failed = true;
    }
    cli_print_diag(c, d, "");
    diag_free(d);
    if (r < 0 || failed) {
        cli_pb_free(req);
        if (r == -ENOMEM) {
            cli_error(c, "out of memory");
            return CLI_EXIT_FAILED;
        }
        cli_error(c, "nothing imported");
        return CLI_EXIT_USAGE;
    }
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY__NOT_SET, &reply);
    if (code != 0) {
        cli_pb_free(req);
        return code;
    }
    const Rackboot__V1__ProfilesImportRequest *pi = req->profiles_import;
    if (output_structured(c->format)) {
        Rackboot__V1__ProfileList sent = RACKBOOT__V1__PROFILE_LIST__INIT;
        const Rackboot__V1__ProfileList *l =
            reply->body_case == RACKBOOT__V1__API_REPLY__BODY_PROFILES ? reply->profiles : &sent;
        sent.n_profiles = pi->n_profiles;
        sent.profiles = pi->profiles;
        r = output_print(c->out, c->format, render_profiles_json(l, false), RENDER_NAME_PROFILES);
    } else {
        fprintf(c->out, "imported %zu profile%s:", pi->n_profiles, pi->n_profiles == 1 ? "" : "s");
        for (size_t k = 0; k < pi->n_profiles; k++) {
            fprintf(c->out, " %s", pi->profiles[k]->name);
        }
        fputc('\n', c->out);
    }
    cli_pb_free(req);
    rbproto_api_reply_free(reply);
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int profiles_query(cli *c, int argc, char **argv, bool show)
{
    static const struct option opts[] = {
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *cmd = show ? "profiles show " : "profiles list ";
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            fputs(show ? show_help : list_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, cmd, ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (show && argc == optind) {
        return cli_usage_error(c, cmd, "expected a profile NAME");
    }
    if (!show && argc != optind) {
        return cli_usage_error(c, cmd, "unexpected argument '%s'", argv[optind]);
    }
    const char *why;
    for (int i = optind; i < argc; i++) {
        if ((why = cli_check_name(argv[i]))) {
            return cli_usage_error(c, cmd, "%s: %s", argv[i], why);
        }
    }
    Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_PROFILES_LIST);
    int r = req ? 0 : -ENOMEM;
    for (int i = optind; r == 0 && i < argc; i++) {
        r = cli_pb_add_string(&req->profiles_list->names, &req->profiles_list->n_names, argv[i]);
    }
    if (r < 0) {
        cli_pb_free(req);
        cli_error(c, "out of memory");
        return CLI_EXIT_FAILED;
    }
    req->profiles_list->with_content = show;
    Rackboot__V1__ApiReply *reply = NULL;
    int code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_PROFILES, &reply);
    cli_pb_free(req);
    if (code != 0) {
        return code;
    }
    const Rackboot__V1__ProfileList *l = reply->profiles;
    for (int i = optind; i < argc; i++) {
        bool found = false;
        for (size_t k = 0; k < l->n_profiles; k++) {
            found |= streq(l->profiles[k]->name, argv[i]);
        }
        if (!found) {
            cli_error(c, "profile %s not found", argv[i]);
            rbproto_api_reply_free(reply);
            return CLI_EXIT_NOT_FOUND;
        }
    }
    if (output_structured(c->format)) {
        r = output_print(c->out, c->format, render_profiles_json(l, show), RENDER_NAME_PROFILES);
    } else if (show) {
        for (size_t k = 0; k < l->n_profiles; k++) {
            if (k) {
                fputc('\n', c->out);
            }
            render_profile_detail_text(c->out, l->profiles[k]);
        }
    } else {
        render_profiles_text(c->out, l);
    }
    rbproto_api_reply_free(reply);
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cmd_profiles(cli *c, int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(c, "profiles ", "expected a command: import, list, show");
    }
    if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        fputs(profiles_help, c->out);
        return CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    if (streq(sub, "import")) {
        return profiles_import(c, argc, argv);
    }
    if (streq(sub, "list") || streq(sub, "ls")) {
        return profiles_query(c, argc, argv, false);
    }
    if (streq(sub, "show")) {
        return profiles_query(c, argc, argv, true);
    }
    return cli_usage_error(c, "profiles ", "unknown command 'profiles %s'", sub);
}

static int render_images(cli *c, const Rackboot__V1__ApiReply *reply)
{
    if (output_structured(c->format)) {
        return output_print(c->out, c->format, render_images_json(reply->images),
                            RENDER_NAME_IMAGES);
    }
    render_images_text(c->out, reply->images);
    return 0;
}

int cmd_images(cli *c, int argc, char **argv)
{
    return cli_listing(c, argc, argv, "images ", images_help,
                       RACKBOOT__V1__API_REQUEST__BODY_IMAGES_LIST,
                       RACKBOOT__V1__API_REPLY__BODY_IMAGES, render_images);
}
