/* rb-power: one power request through the power executor, for tests and
 * for trying a BMC by hand.
 *
 *   rb-power URL USER PASSWORD_FILE OP [--bootdev pxe|disk] [--efi]
 *            [--timeout-ms N] [--retries N] [--backoff-ms N] [--trace]
 *
 * OP is status, on, off, cycle or soft. --trace dumps what goes to the BMC,
 * decoded, on stderr (libfreeipmi's debug dump). The password comes from a file (its
 * first line), never from argv, which every user can read in ps(1).
 *
 * Prints one line, "state=on|off|unknown bootdev_set=0|1 err=N attempts=N
 * message=...", and exits 0 on success, 1 on failure, 2 on usage errors. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "parse.h"
#include "power/power.h"
#include "util.h"

static void usage(void)
{
    fprintf(stderr, "usage: rb-power URL USER PASSWORD_FILE status|on|off|cycle|soft "
                    "[--bootdev pxe|disk] [--efi] [--timeout-ms N] [--retries N] "
                    "[--backoff-ms N] [--trace]\n");
    exit(2);
}

/* The first line of the file, without its newline. */
static int read_password(const char *path, char *buf, size_t size)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f) {
        return negative_errno();
    }
    if (!fgets(buf, (int)size, f)) {
        buf[0] = '\0';
        return ferror(f) ? -EIO : 0;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    } else if (n == size - 1 && !feof(f)) {
        return -E2BIG;
    }
    return 0;
}

typedef struct outcome {
    bool done;
    power_result res;
} outcome;

static void on_done(void *userdata, const power_result *res)
{
    outcome *o = userdata;
    o->res = *res;
    o->done = true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "bootdev", required_argument, NULL, 'b' },
        { "efi", no_argument, NULL, 'e' },
        { "timeout-ms", required_argument, NULL, 't' },
        { "retries", required_argument, NULL, 'r' },
        { "backoff-ms", required_argument, NULL, 'k' },
        { "trace", no_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        {},
    };
    power_request req = { 0 };
    power_executor_options opt = { .retries = -1, .max_concurrent = 1 };
    uint32_t v;
    int c;

    log_set_ident("rb-power");
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (power_bootdev_from_string(optarg, &req.bootdev) < 0) {
                usage();
            }
            break;
        case 'e':
            req.efi = true;
            break;
        case 't':
            if (parse_u32(optarg, 1, 600000, &v) < 0) {
                usage();
            }
            opt.attempt_timeout_ms = v;
            break;
        case 'r':
            if (parse_u32(optarg, 0, 20, &v) < 0) {
                usage();
            }
            opt.retries = (int)v;
            break;
        case 'T':
            opt.trace = true;
            break;
        case 'k':
            if (parse_u32(optarg, 1, 60000, &v) < 0) {
                usage();
            }
            opt.backoff_ms = v;
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 4 || power_op_from_string(argv[optind + 3], &req.op) < 0) {
        usage();
    }

    char password[256];
    int r = read_password(argv[optind + 2], password, sizeof(password));
    if (r < 0) {
        fprintf(stderr, "rb-power: cannot read password file %s: %s\n", argv[optind + 2],
                errstr(r));
        return 2;
    }
    power_target *t = NULL;
    char *why = NULL;
    r = power_target_parse(argv[optind], argv[optind + 1], password, &t, &why);
    explicit_bzero(password, sizeof(password));
    if (r < 0) {
        printf("state=unknown bootdev_set=0 err=%d attempts=0 message=%s\n", r,
               why ? why : errstr(r));
        free(why);
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    power_executor *ex = NULL;
    r = power_executor_new(&loop, &opt, &ex);
    if (r < 0) {
        fprintf(stderr, "rb-power: executor: %s\n", errstr(r));
        return 1;
    }
    outcome o = { 0 };
    r = power_executor_submit(ex, t, &req, on_done, &o);
    t = power_target_free(t);
    if (r < 0) {
        fprintf(stderr, "rb-power: submit: %s\n", errstr(r));
        return 1;
    }
    /* The executor's handle keeps the loop alive until the job reported. */
    uv_run(&loop, UV_RUN_DEFAULT);
    ex = power_executor_free(ex);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    if (!o.done) {
        fprintf(stderr, "rb-power: the loop ended without a result\n");
        return 1;
    }
    printf("state=%s bootdev_set=%d err=%d attempts=%u message=%s\n",
           power_state_to_string(o.res.state), o.res.bootdev_set, o.res.err, o.res.attempts,
           o.res.message);
    return o.res.err == 0 ? 0 : 1;
}
