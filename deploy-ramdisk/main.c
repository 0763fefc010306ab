/* rackboot-deploy: the program the deploy ramdisk runs. It chooses the
 * target disk, streams the image from the rack agent onto it (verified by
 * sha256 before the partition table is written) and reports progress to the
 * agent. Then it fits the image's GPT to the disk (the backup header to the
 * end, the last partition grown) and, with --seed-url, adds a small CIDATA
 * partition holding the host's NoCloud seed. Rebooting afterwards is the
 * ramdisk's init script's job.
 *
 * Order on the disk: the image's bytes, its partition table once the hash
 * matched (sink), the seed's file system, the final partition table (grow).
 * A failure after the hash matched zeroes the tables again (sink_revoke), so
 * a failed deploy never leaves a disk that looks bootable.
 *
 * Wiring only: the work is in writer/ (rootdev, sink, stream, progress,
 * grow, seed). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "log.h"
#include "parse.h"
#include "sha256.h"
#include "timeutil.h"
#include "util.h"
#include "version.h"
#include "writer/grow.h"
#include "writer/progress.h"
#include "writer/rootdev.h"
#include "writer/seed.h"
#include "writer/sink.h"
#include "writer/stream.h"

/* A progress report must never hold up the write for long: the agent is on
 * the same link, so a slow answer means it is busy, and the next report
 * will do. */
#define REPORT_TIMEOUT_MS 3000L
/* The seed partition: FAT12 with three small files fits in far less, but a
 * MiB-aligned 4 MiB costs nothing on any disk and leaves user-data room. */
#define SEED_DEFAULT_BYTES ((uint64_t)4 << 20)
#define SEED_PART_NAME     "CIDATA"

typedef struct args {
    const char *url;
    const char *sha256;
    const char *root_device;
    const char *progress_url;
    const char *seed_url;
    uint64_t image_size;
    uint64_t seed_size;
    bool no_grow;
    bool dry_run;
    bool allow_file;
} args;

typedef struct reporter {
    const char *url; /* NULL: no reports */
    CURL *curl;
    progress_throttle throttle;
    unsigned failures;
} reporter;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: rackboot-deploy --url URL --sha256 HEX --root-device auto|/dev/...\n"
            "                       [--progress-url URL] [--image-size BYTES]\n"
            "                       [--seed-url URL [--seed-size BYTES]] [--no-grow] [--dry-run]\n"
            "\n"
            "Streams a disk image (raw, .zst or .xz, told by its magic bytes) from URL\n"
            "onto the root device, verifies the sha256 of the file as served, and writes\n"
            "the partition table (the first MiB) only once the hash matched. Then moves\n"
            "the image's backup GPT to the disk's end and grows its last partition to\n"
            "the disk (the file system inside is the OS's to grow: cloud-init resizefs).\n"
            "\n"
            "  --url URL            the image, http:// or https://\n"
            "  --sha256 HEX         sha256 of the file as served (64 hex digits)\n"
            "  --root-device DEV    auto: the smallest fixed, writable disk the image\n"
            "                       fits on (refused if two tie); or a path, symlinks\n"
            "                       such as /dev/disk/by-id/... resolved\n"
            "  --progress-url URL   POST phase=writing&percent=N, phase=written or\n"
            "                       phase=failed&message=... there\n"
            "  --image-size BYTES   uncompressed size, checked against the disk first\n"
            "                       (suffixes K, M, G, T)\n"
            "  --seed-url URL       fetch URL/meta-data, URL/network-config, URL/user-data\n"
            "                       first (all three required), and put them on a FAT\n"
            "                       partition labelled CIDATA at the disk's end (NoCloud)\n"
            "  --seed-size BYTES    that partition's size (default 4M, whole MiB)\n"
            "  --no-grow            leave the image's partition table as it is\n"
            "  --dry-run            download, decompress and verify; write nothing\n"
            "  --allow-file         accept a regular file as root device (tests)\n"
            "  --help, --version\n");
}

static int parse_args(int argc, char **argv, args *ret)
{
    enum {
        OPT_URL = 256,
        OPT_SHA,
        OPT_ROOT,
        OPT_PROGRESS,
        OPT_SIZE,
        OPT_SEED,
        OPT_SEED_SIZE,
        OPT_NO_GROW,
        OPT_DRY,
        OPT_FILE,
        OPT_VER
    };
    static const struct option opts[] = {
        { "url", required_argument, NULL, OPT_URL },
        { "sha256", required_argument, NULL, OPT_SHA },
        { "root-device", required_argument, NULL, OPT_ROOT },
        { "progress-url", required_argument, NULL, OPT_PROGRESS },
        { "image-size", required_argument, NULL, OPT_SIZE },
        { "seed-url", required_argument, NULL, OPT_SEED },
        { "seed-size", required_argument, NULL, OPT_SEED_SIZE },
        { "no-grow", no_argument, NULL, OPT_NO_GROW },
        { "dry-run", no_argument, NULL, OPT_DRY },
        { "allow-file", no_argument, NULL, OPT_FILE },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VER },
        { 0 },
    };
    args a = { .seed_size = SEED_DEFAULT_BYTES };
    int ch;
    uint8_t digest[SHA256_LEN];

    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_URL:
            a.url = optarg;
            break;
        case OPT_SHA:
            a.sha256 = optarg;
            break;
        case OPT_ROOT:
            a.root_device = optarg;
            break;
        case OPT_PROGRESS:
            a.progress_url = optarg;
            break;
        case OPT_SIZE:
            if (parse_size(optarg, &a.image_size) < 0) {
                log_error("--image-size: not a byte count: %s", optarg);
                return -EINVAL;
            }
            break;
        case OPT_SEED:
            a.seed_url = optarg;
            break;
        case OPT_SEED_SIZE:
            if (parse_size(optarg, &a.seed_size) < 0 || a.seed_size < ((uint64_t)1 << 20) ||
                a.seed_size > ((uint64_t)64 << 20)) {
                log_error("--seed-size: not a byte count from 1M to 64M: %s", optarg);
                return -EINVAL;
            }
            break;
        case OPT_NO_GROW:
            a.no_grow = true;
            break;
        case OPT_DRY:
            a.dry_run = true;
            break;
        case OPT_FILE:
            a.allow_file = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case OPT_VER:
            printf("rackboot-deploy %s\n", RACKBOOT_VERSION);
            return 1;
        case ':':
            log_error("%s needs a value", argv[optind - 1]);
            return -EINVAL;
        default:
            log_error("unknown option %s (see --help)", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument %s (see --help)", argv[optind]);
        return -EINVAL;
    }
    if (!a.url || !a.sha256 || !a.root_device) {
        log_error("--url, --sha256 and --root-device are required (see --help)");
        return -EINVAL;
    }
    if (a.seed_url && a.no_grow) {
        log_error("--seed-url needs the partition table edited: not with --no-grow");
        return -EINVAL;
    }
    if (sha256_from_hex(a.sha256, digest) < 0) {
        log_error("--sha256: not 64 hex digits: %s", a.sha256);
        return -EINVAL;
    }
    *ret = a;
    return 0;
}

static size_t discard_body(char *data, size_t size, size_t n, void *userdata)
{
    return size * n;
}

/* POSTs form fields to the agent. Failures are logged, never fatal: the
 * deploy matters more than its report. */
static void report_post(reporter *rp, const char *fields)
{
    if (!rp->url) {
        return;
    }
    if (!rp->curl) {
        rp->curl = curl_easy_init();
        if (!rp->curl) {
            return;
        }
    }
    CURL *c = rp->curl;
    curl_easy_setopt(c, CURLOPT_URL, rp->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REPORT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "rackboot-deploy");
    curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, fields);
    /* The answer body is of no interest; keep it off stdout. */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        /* Once is enough in the log: the agent may be down for a while. */
        if (rp->failures++ == 0) {
            log_warn("progress report failed url=%s err=%s", rp->url, curl_easy_strerror(cc));
        }
    }
}

static void on_progress(uint64_t received, uint64_t total, void *userdata)
{
    reporter *rp = userdata;
    int percent = progress_percent(received, total);
    if (!progress_throttle_ok(&rp->throttle, percent, now_monotonic_ms())) {
        return;
    }
    char fields[64];
    snprintf(fields, sizeof(fields), "phase=writing&percent=%d", percent);
    log_info("writing %d %%", percent);
    report_post(rp, fields);
}

static void report_failure(reporter *rp, const char *message)
{
    if (!rp->url) {
        return;
    }
    if (!rp->curl) {
        rp->curl = curl_easy_init();
        if (!rp->curl) {
            return;
        }
    }
    char *escaped = curl_easy_escape(rp->curl, message, 0);
    char *fields = NULL;
    if (escaped && asprintf(&fields, "phase=failed&message=%s", escaped) >= 0) {
        report_post(rp, fields);
    }
    free(fields);
    curl_free(escaped);
}

/* After the image is committed: the GPT fitted to the disk, the seed's file
 * system into the reserved tail, then the final table. */
static int finish_disk(const args *a, const char *target, sink *s, const seed_files *seed,
                       char **ret_error)
{
    grow *g = NULL;
    grow_layout l;
    uint8_t *image = NULL;
    int r = grow_open(target, a->seed_url ? a->seed_size : 0, &g, ret_error);
    if (r == -EMEDIUMTYPE && !a->seed_url) {
        /* A bare file system or an MBR image: nothing to fit, and no seed
         * asked for. */
        log_warn("not growing: %s", *ret_error ? *ret_error : "no GPT");
        free(*ret_error);
        *ret_error = NULL;
        return 0;
    }
    if (r < 0) {
        goto out;
    }
    grow_get_layout(g, &l);
    log_info("partition %u grows from %llu to %llu sectors of %llu bytes; disk %llu sectors",
             l.last_partno, (unsigned long long)l.last_old_sectors,
             (unsigned long long)l.last_new_sectors, (unsigned long long)l.sector_size,
             (unsigned long long)l.disk_sectors);
    if (a->seed_url) {
        uint64_t off = l.reserve_start_lba * l.sector_size;
        uint64_t len = l.reserve_sectors * l.sector_size;
        r = seed_image_build(seed, len, NULL, &image, ret_error);
        if (r < 0) {
            goto out;
        }
        r = sink_write_at(s, off, image, (size_t)len);
        if (r < 0) {
            errmsg_fail(ret_error, r, "cannot write the seed at byte %llu: %s",
                        (unsigned long long)off, errstr(r));
            goto out;
        }
        log_info("seed written label=%s offset=%llu bytes=%llu", SEED_LABEL,
                 (unsigned long long)off, (unsigned long long)len);
    }
    r = grow_commit(g, a->seed_url ? SEED_PART_NAME : NULL, ret_error);
out:
    free(image);
    grow_free(g);
    return r;
}

int main(int argc, char **argv)
{
    args a;
    reporter rp = { 0 };
    char *target = NULL, *reason = NULL, *error = NULL;
    seed_files seed = { 0 };
    sink *s = NULL;
    stream_result res = { 0 };
    sink_options so = { 0 };
    stream_options opts = { 0 };
    uint64_t t0, ms;
    int r, exit_code = 1;

    log_set_ident("rackboot-deploy");
    r = parse_args(argc, argv, &a);
    if (r != 0) {
        return r > 0 ? 0 : 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("libcurl initialisation failed");
        return 1;
    }
    rp.url = a.progress_url;
    progress_throttle_init(&rp.throttle);

    /* The seed first: a host must not get an image it cannot be reached in. */
    if (a.seed_url) {
        r = seed_fetch(a.seed_url, &seed, &error);
        if (r < 0) {
            goto out;
        }
        log_info("seed fetched url=%s bytes=%zu+%zu+%zu", a.seed_url, seed.len[0], seed.len[1],
                 seed.len[2]);
    }

    if (streq(a.root_device, "auto")) {
        r = rootdev_find_auto("/sys/block", a.image_size, &target, &reason);
    } else {
        r = rootdev_resolve(a.root_device, a.allow_file, &target, &reason);
    }
    if (r < 0) {
        error = TAKE_PTR(reason);
        goto out;
    }
    log_info("deploying url=%s target=%s%s", a.url, target, a.dry_run ? " dry-run" : "");

    so.dry_run = a.dry_run;
    r = sink_open(target, &so, &s);
    if (r < 0) {
        if (asprintf(&error, "cannot open %s: %s", target, errstr(r)) < 0) {
            error = NULL;
        }
        goto out;
    }
    opts = (stream_options){
        .url = a.url,
        .sha256_hex = a.sha256,
        .image_size = a.image_size,
        .on_progress = on_progress,
        .userdata = &rp,
    };
    t0 = now_monotonic_ms();
    r = stream_fetch(&opts, s, &res, &error);
    if (r < 0) {
        goto out;
    }
    ms = now_monotonic_ms() - t0;
    log_info("written target=%s format=%s received=%llu written=%llu attempts=%u restarts=%u "
             "seconds=%.1f direct=%s",
             target, decomp_format_to_string(res.format), (unsigned long long)res.received,
             (unsigned long long)res.written, res.attempts, res.restarts, (double)ms / 1000.0,
             sink_is_direct(s) ? "yes" : "no");
    if (!a.dry_run && !a.no_grow) {
        r = finish_disk(&a, target, s, &seed, &error);
        if (r < 0) {
            int rr = sink_revoke(s);
            if (rr < 0) {
                log_error("cannot zero the partition tables again: %s", errstr(rr));
            }
            goto out;
        }
    }
    report_post(&rp, "phase=written");
    exit_code = 0;
out:
    if (exit_code != 0) {
        const char *msg = error ? error : (r < 0 ? errstr(r) : "failed");
        log_error("deploy failed: %s", msg);
        report_failure(&rp, msg);
    }
    s = sink_free(s);
    if (rp.curl) {
        curl_easy_cleanup(rp.curl);
    }
    seed_files_clear(&seed);
    free(target);
    free(reason);
    free(error);
    curl_global_cleanup();
    return exit_code;
}
