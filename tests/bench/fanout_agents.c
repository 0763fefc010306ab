/* fanout_agents: the simulated rack agents of tests/bench/fanout, in one
 * process, on the real client session (client/session.h), the real identity
 * handshake and the real wire schema.
 *
 *   fanout_agents --agents-url URL[,URL...] --api-url URL --pki DIR --server-name NAME
 *                 [--racks N] [--hosts-per-rack M] [--profile NAME] [--setup]
 *                 [--batches B] [--batch-size S] [--controller-pid PID]
 *                 [--latencies FILE] [--connect-parallel K] [--stack-kib K]
 *                 [--live-agents K] [--live-batch S] [--live-interval MS]
 *
 * With several --agents-url (controllers sharing one store), agent i dials
 * the (i mod n)-th: the racks are spread evenly over the controllers, and
 * the install request goes to --api-url's alone, so most agents learn of
 * it through another controller than the one it was made on.
 *
 * Phases, in order (progress on stderr as "== ...", results on stdout as
 * "result KEY VALUE" lines for the script):
 *
 *   setup    (--setup) one profile and N*M hosts through the API
 *            (profiles_import, hosts_add in batches of 1,000)
 *   live ids (--live-agents K) K agents spread over the racks get install ids
 *            to speak about during the fan-out: one InstallRequest for
 *            their racks, then a CancelRequest. Their events then name a
 *            real host of their rack and a real, terminal install of it: the
 *            controller stores them and acks them as it does any late event
 *            ("recorded, nothing more"), with no state change and no refused
 *            row (an unknown install id would be stored as refused, and the
 *            fan-out's own install ids do not exist before the request)
 *   connect  N agents dial in over mutual TLS and run the identity handshake
 *            (at most --connect-parallel at once), sync once (held 0), then
 *            park a long poll that also acks what they hold; ready when the
 *            controller shows every rack acked (racks_list)
 *   fan-out  prints "READY" on stdout and reads one line from stdin:
 *              "live"             (with --live-agents) the K agents start
 *                                 sending: one batch of S events in flight
 *                                 each, the next one --live-interval ms after
 *                                 the last one started, seq going on from
 *                                 the agent's last; then the next line is
 *                                 one of these two:
 *              "install"          send the InstallRequest (Selector.racks =
 *                                 every rack) ourselves, timed from just
 *                                 before the request is sent
 *              "t0 NS [t1 NS]"    someone else (the rackboot CLI) sent it;
 *                                 NS = CLOCK_REALTIME ns just before it ran
 *                                 (and after it returned)
 *            each agent records when it received the new generation and when
 *            it sent the acking sync (its next SyncRequest with
 *            acked_generation = the new generation); then racks_list is
 *            polled until the controller has recorded every ack. The live
 *            senders stop once every agent has its new generation (a batch
 *            in flight then is waited for); each batch's round trip is
 *            reported, and those that overlapped the install request
 *            (t0..t1) on their own
 *   events   every agent sends B batches of S events with its own seq from 1
 *            (from after the live events' last, for the live agents)
 *            (dhcp_bound, script_served, kernel_fetched, initrd_fetched, then
 *            stage2_progress, for its own hosts' install ids), one batch in
 *            flight per agent as the real uplink does, and checks that the
 *            controller's stored_through reaches the batch's last seq
 *
 * Why threads and not nng aio callbacks: the session API is blocking (each
 * call on its own nng context, thread-safe), and so is its identity
 * handshake in rb_session_open(); aio callbacks would mean re-implementing
 * that handshake on raw nng, and then the benchmark would no longer measure
 * the client code the agents run. Each agent has two threads, as the real
 * uplink does (a sync thread that mostly waits in the long poll, an events
 * thread): 2 x 500 threads with 256 KiB stacks reserve 250 MiB of address
 * space but touch a few pages each. The threads wait in nng_aio_wait(), so
 * the wake-up after a reply is one futex wake; it is part of what is
 * measured, as it would be on a real agent.
 *
 * Times are CLOCK_REALTIME so that the script's `date +%s%N` around the CLI
 * compares with ours (one machine, short runs). Every wait is bounded; a
 * global alarm (--deadline) ends the process if something hangs anyway. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rbproto.h"
#include "session.h"
#include "sha256.h"
#include "util.h"

#define MAX_RACKS          5000u
#define MAX_HOSTS_PER_RACK 1000u
#define HOSTS_PER_ADD      1000u
#define SYNC_WAIT_MS       30000u /* the agents' long poll */
#define CALL_SLACK_MS      15000u /* call deadline beyond the long poll */
#define EVENTS_TIMEOUT_MS  30000u
#define API_TIMEOUT_MS     120000u
#define INSTALL_TIMEOUT_MS 900000u /* 100,000 hosts in one request */
#define FANOUT_WAIT_S      60u     /* after the install was answered */
#define LIVE_MAX_BATCHES   100000u /* per live agent: the loop's count bound */
#define LIVE_LEAD_MS       100u    /* live events before the request (api trigger) */
#define MAX_CALL_ERRORS    20u     /* per agent, then it gives up */
/* racks_list answers 500 rows with two counting subqueries each: polling it
 * faster would slow down the ack processing it observes. */
#define POLL_INTERVAL_NS (25 * 1000000ull)

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

typedef struct intent_ref {
    char *host;
    char *install_id;
} intent_ref;

typedef struct agent {
    unsigned idx;
    char rack[32];
    char cert[PATH_MAX];
    char key[PATH_MAX];
    rb_session *s;
    pthread_t sync_thread, events_thread;

    /* Sync thread's own; main reads them after the counters below say so
     * (under g.lock, which orders the accesses). */
    uint64_t connect_ns;     /* rb_session_open() duration */
    uint64_t held;           /* generation held (and acked by the next sync) */
    uint64_t fan_generation; /* the first generation with intents after READY */
    uint64_t t_recv, t_ack;  /* CLOCK_REALTIME ns */
    size_t n_intents;
    intent_ref *intents;
    unsigned sync_errors;

    /* Live events (--live-agents), events thread's own: the agent's
     * hosts' warm-up install ids, and per batch its start and round trip. */
    bool live;
    intent_ref *live_refs;
    size_t n_live_refs;
    uint64_t *live_t, *live_rtt;
    unsigned n_live, cap_live, live_retries;
    bool live_mismatch;

    /* Events thread's own. */
    uint64_t seq;     /* the last seq the controller acked */
    uint64_t ev_base; /* seq before the events phase */
    uint64_t ev_sent, ev_through, ev_t_done;
    uint64_t *batch_ns;
    unsigned n_batches_done, ev_retries;
    bool ev_mismatch;

    bool failed;
    char why[200];
} agent;

static struct {
    /* options */
    const char *api_url, *pki, *server_name, *profile, *latencies;
    char *agents_urls[8]; /* --agents-url, split at commas */
    size_t n_agents_urls;
    unsigned racks, hosts_per_rack, batches, batch_size, connect_parallel, stack_kib;
    unsigned deadline_s;
    unsigned live_agents, live_batch, live_interval_ms;
    long controller_pid;
    bool setup;

    agent *agents;
    rb_session *api;
    sem_t connect_sem;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned n_connect_done, n_connected, n_first_park, n_fan_acked, n_events_done, n_failed;
    unsigned n_live_done;
    bool events_go, live_go, live_stop;
    atomic_bool armed, stop;
} g;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("== ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void result(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("result %s ", key);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fanout_agents: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Sleeps on g.cond until `done()` or the absolute realtime deadline;
 * called with g.lock held. Returns false on timeout. */
static bool wait_until(bool (*done)(void), uint64_t deadline)
{
    while (!done()) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            return false;
        }
        uint64_t until = now + 100 * NS_PER_MS < deadline ? now + 100 * NS_PER_MS : deadline;
        struct timespec ts = { .tv_sec = (time_t)(until / NS_PER_S),
                               .tv_nsec = (long)(until % NS_PER_S) };
        pthread_cond_timedwait(&g.cond, &g.lock, &ts);
    }
    return true;
}

static void sleep_ms(unsigned n)
{
    struct timespec ts = { .tv_sec = n / 1000, .tv_nsec = (long)(n % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- Percentiles ------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return v[rank - 1];
}

static void result_dist(const char *key, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    result(key, "n=%zu p50=%.2f p90=%.2f p99=%.2f max=%.2f min=%.2f", n, ms(pct(v, n, 50)),
           ms(pct(v, n, 90)), ms(pct(v, n, 99)), n ? ms(v[n - 1]) : 0.0, n ? ms(v[0]) : 0.0);
}

/* ---- The controller process -------------------------------------------- */

/* VmRSS, VmHWM (KiB) and user+system CPU (ms) of --controller-pid. */
static void controller_sample(const char *phase)
{
    if (g.controller_pid <= 0) {
        return;
    }
    char path[64], line[256];
    long rss = -1, hwm = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", g.controller_pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        progress("controller pid %ld: %s", g.controller_pid, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmRSS: %ld", &rss);
        sscanf(line, "VmHWM: %ld", &hwm);
    }
    fclose(f);
    double cpu_ms = -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", g.controller_pid);
    f = fopen(path, "re");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* Fields after the parenthesised name: state is field 3, utime 14, stime 15. */
        char *p = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
            cpu_ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
        }
    }
    result("controller", "phase=%s rss_kib=%ld hwm_kib=%ld cpu_ms=%.0f", phase, rss, hwm, cpu_ms);
}

/* ---- Names ------------------------------------------------------------- */

static void rack_name(unsigned r, char *buf, size_t len)
{
    snprintf(buf, len, "rack-%04u", r + 1);
}

static void host_name(unsigned r, unsigned h, char *buf, size_t len)
{
    snprintf(buf, len, "r%04u-h%03u", r + 1, h + 1);
}

/* "rack-0042" -> 41, else -1. */
static long rack_index(const char *name)
{
    unsigned n;
    char tail;
    if (sscanf(name, "rack-%4u%c", &n, &tail) != 1 || n < 1 || n > g.racks) {
        return -1;
    }
    return (long)n - 1;
}

/* ---- API calls ---------------------------------------------------------- */

static Rackboot__V1__ApiReply *api_call_within(const Rackboot__V1__ApiRequest *req,
                                               uint32_t timeout_ms, const char *what)
{
    Rackboot__V1__ApiReply *rep = NULL;
    int r = rb_session_call_api(g.api, req, timeout_ms, &rep);
    if (r < 0) {
        die("%s: %s", what, errstr(r));
    }
    if (rep->status != RACKBOOT__V1__STATUS__STATUS_OK) {
        die("%s: %s: %s", what, rbproto_status_to_string(rep->status), rep->message);
    }
    return rep;
}

static Rackboot__V1__ApiReply *api_call(const Rackboot__V1__ApiRequest *req, const char *what)
{
    return api_call_within(req, API_TIMEOUT_MS, what);
}

static const char kickstart[] = "# rackboot fan-out benchmark kickstart (never rendered)\n"
                                "text\n"
                                "lang en_US.UTF-8\n"
                                "keyboard us\n"
                                "timezone UTC --utc\n"
                                "network --bootproto=static --ip={{address}} --prefix={{prefix}} "
                                "--gateway={{gateway}} --hostname={{hostname}} --ipv6-only\n"
                                "rootpw --lock\n"
                                "zerombr\n"
                                "clearpart --all --initlabel\n"
                                "autopart --type=lvm\n"
                                "bootloader --location=mbr\n"
                                "%packages\n@^minimal-environment\n%end\n"
                                "%pre\ncurl -fsS -X POST {{progress_url}}?phase=installing\n%end\n"
                                "%post\ncurl -fsS -X POST {{progress_url}}?phase=installed\n%end\n";

static void setup_profile(void)
{
    static uint8_t sums[3][32];
    Rackboot__V1__Image im[3];
    Rackboot__V1__Image *ims[3];
    static const struct {
        const char *name;
        Rackboot__V1__ImageKind kind;
        uint64_t size;
    } files[3] = {
        { "vmlinuz", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL, 13u << 20 },
        { "initrd.img", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD, 96u << 20 },
        { "squashfs.img", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2, 800u << 20 },
    };
    char urls[3][128];
    for (size_t i = 0; i < 3; i++) {
        rackboot__v1__image__init(&im[i]);
        memset(sums[i], (int)(0xa0 + i), sizeof(sums[i])); /* any 32 bytes */
        snprintf(urls[i], sizeof(urls[i]), "http://mirror.invalid/bench/%s", files[i].name);
        im[i].name = RB_UNCONST(files[i].name);
        im[i].kind = files[i].kind;
        im[i].url = urls[i];
        im[i].sha256 = (ProtobufCBinaryData){ .len = 32, .data = sums[i] };
        im[i].size = files[i].size;
        ims[i] = &im[i];
    }
    uint8_t ks_sum[SHA256_LEN];
    if (sha256_buffer(kickstart, strlen(kickstart), ks_sum) < 0) {
        die("sha256 failed");
    }
    Rackboot__V1__Profile p = RACKBOOT__V1__PROFILE__INIT;
    p.name = RB_UNCONST(g.profile);
    p.n_images = 3;
    p.images = ims;
    p.kernel_args = RB_UNCONST("console=ttyS0,115200 inst.text");
    p.kickstart_template = RB_UNCONST(kickstart);
    p.kickstart_sha256 = (ProtobufCBinaryData){ .len = sizeof(ks_sum), .data = ks_sum };
    p.overlay = true;
    Rackboot__V1__Profile *ps[1] = { &p };
    Rackboot__V1__ProfilesImportRequest pi = RACKBOOT__V1__PROFILES_IMPORT_REQUEST__INIT;
    pi.n_profiles = 1;
    pi.profiles = ps;
    pi.update_existing = true;
    Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT;
    req.profiles_import = &pi;
    rbproto_free(&api_call(&req, "profiles_import")->base);
}

static void setup_hosts(void)
{
    size_t total = (size_t)g.racks * g.hosts_per_rack;
    Rackboot__V1__Host *hs = calloc(HOSTS_PER_ADD, sizeof(*hs));
    Rackboot__V1__Host **ptrs = calloc(HOSTS_PER_ADD, sizeof(*ptrs));
    char(*names)[32] = calloc(HOSTS_PER_ADD, sizeof(*names));
    char(*racks)[32] = calloc(HOSTS_PER_ADD, sizeof(*racks));
    uint8_t(*macs)[6] = calloc(HOSTS_PER_ADD, sizeof(*macs));
    ProtobufCBinaryData *macv = calloc(HOSTS_PER_ADD, sizeof(*macv));
    uint8_t(*addrs)[16] = calloc(HOSTS_PER_ADD, sizeof(*addrs));
    uint8_t(*gws)[16] = calloc(HOSTS_PER_ADD, sizeof(*gws));
    if (!hs || !ptrs || !names || !racks || !macs || !macv || !addrs || !gws) {
        die("out of memory");
    }
    uint64_t worst = 0;
    size_t calls = 0;
    for (size_t first = 0; first < total; first += HOSTS_PER_ADD) {
        size_t n = total - first < HOSTS_PER_ADD ? total - first : HOSTS_PER_ADD;
        for (size_t i = 0; i < n; i++) {
            unsigned r = (unsigned)((first + i) / g.hosts_per_rack);
            unsigned h = (unsigned)((first + i) % g.hosts_per_rack);
            Rackboot__V1__Host *m = &hs[i];
            rackboot__v1__host__init(m);
            host_name(r, h, names[i], sizeof(names[i]));
            rack_name(r, racks[i], sizeof(racks[i]));
            /* Locally administered MACs 02:fb:RR:RR:HH:HH, addresses
             * 2001:db8:RRRR::HH/64 with the gateway at ::1 of the rack. */
            uint8_t mac[6] = { 0x02,      0xfb, (uint8_t)(r >> 8), (uint8_t)r, (uint8_t)(h >> 8),
                               (uint8_t)h };
            memcpy(macs[i], mac, 6);
            macv[i] = (ProtobufCBinaryData){ .len = 6, .data = macs[i] };
            memset(addrs[i], 0, 16);
            addrs[i][0] = 0x20, addrs[i][1] = 0x01, addrs[i][2] = 0x0d, addrs[i][3] = 0xb8;
            addrs[i][4] = (uint8_t)((r + 1) >> 8), addrs[i][5] = (uint8_t)(r + 1);
            memcpy(gws[i], addrs[i], 16);
            gws[i][15] = 1;
            addrs[i][14] = (uint8_t)((h + 16) >> 8), addrs[i][15] = (uint8_t)(h + 16);
            m->name = names[i];
            m->n_macs = 1;
            m->macs = &macv[i];
            m->rack = racks[i];
            m->address = (ProtobufCBinaryData){ .len = 16, .data = addrs[i] };
            m->prefix_length = 64;
            m->gateway = (ProtobufCBinaryData){ .len = 16, .data = gws[i] };
            ptrs[i] = m;
        }
        Rackboot__V1__HostsAddRequest ha = RACKBOOT__V1__HOSTS_ADD_REQUEST__INIT;
        ha.n_hosts = n;
        ha.hosts = ptrs;
        ha.update_existing = true;
        Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
        req.body_case = RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD;
        req.hosts_add = &ha;
        uint64_t t = now_ns();
        rbproto_free(&api_call(&req, "hosts_add")->base);
        t = now_ns() - t;
        worst = t > worst ? t : worst;
        calls++;
    }
    result("setup_hosts_add_calls", "%zu slowest_ms=%.1f", calls, ms(worst));
    free(hs);
    free(ptrs);
    free(names);
    free(racks);
    free(macs);
    free(macv);
    free(addrs);
    free(gws);
}

/* One racks_list; returns how many of our racks have acked their current
 * generation, and the lowest generation among them in *ret_min_gen. */
static unsigned racks_acked(uint64_t *ret_min_gen)
{
    Rackboot__V1__RacksListRequest rl = RACKBOOT__V1__RACKS_LIST_REQUEST__INIT;
    Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST;
    req.racks_list = &rl;
    Rackboot__V1__ApiReply *rep = api_call(&req, "racks_list");
    unsigned acked = 0;
    uint64_t min_gen = UINT64_MAX;
    if (rep->body_case == RACKBOOT__V1__API_REPLY__BODY_RACKS) {
        for (size_t i = 0; i < rep->racks->n_racks; i++) {
            const Rackboot__V1__RackRow *row = rep->racks->racks[i];
            if (rack_index(row->rack) < 0) {
                continue;
            }
            acked += row->acked_generation == row->generation;
            min_gen = row->generation < min_gen ? row->generation : min_gen;
        }
    }
    rbproto_free(&rep->base);
    if (ret_min_gen) {
        *ret_min_gen = min_gen;
    }
    return acked;
}

/* Polls racks_list until `want` racks have acked a generation >= min_gen;
 * returns the realtime ns of the poll that saw it, 0 on timeout. */
static uint64_t poll_all_acked(unsigned want, uint64_t min_gen, uint64_t deadline,
                               unsigned *ret_polls)
{
    unsigned polls = 0;
    for (;;) {
        uint64_t gen = 0;
        unsigned n = racks_acked(&gen);
        polls++;
        uint64_t now = now_ns();
        if (n >= want && gen >= min_gen) {
            *ret_polls = polls;
            return now;
        }
        if (now >= deadline) {
            progress("racks_list: %u of %u racks acked at the deadline", n, want);
            *ret_polls = polls;
            return 0;
        }
        sleep_ms((unsigned)(POLL_INTERVAL_NS / NS_PER_MS));
    }
}

/* ---- Live events' install ids ------------------------------------------ */

/* Install, then cancel, the live agents' racks: their events during the
 * fan-out then speak about real hosts of their rack and real installs of
 * those hosts, which the controller stores as late events of a terminal
 * install (fleet_events.c: no state change, not refused). */
static void live_setup(void)
{
    char **names = calloc(g.live_agents, sizeof(*names));
    if (!names) {
        die("out of memory");
    }
    size_t n = 0;
    for (unsigned i = 0; i < g.racks; i++) {
        if (g.agents[i].live) {
            names[n++] = g.agents[i].rack;
        }
    }
    Rackboot__V1__Selector sel = RACKBOOT__V1__SELECTOR__INIT;
    sel.n_racks = n;
    sel.racks = names;
    Rackboot__V1__InstallRequest in = RACKBOOT__V1__INSTALL_REQUEST__INIT;
    in.target = &sel;
    in.profile = RB_UNCONST(g.profile);
    in.replace_active = true; /* a store left over from an earlier run */
    Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__API_REQUEST__BODY_INSTALL;
    req.install = &in;
    Rackboot__V1__ApiReply *rep = api_call_within(&req, INSTALL_TIMEOUT_MS, "install (live ids)");
    if (rep->body_case != RACKBOOT__V1__API_REPLY__BODY_STATUSES) {
        die("install (live ids): no status rows");
    }
    for (size_t i = 0; i < rep->statuses->n_rows; i++) {
        const Rackboot__V1__StatusRow *row = rep->statuses->rows[i];
        long idx = rack_index(row->rack);
        if (idx < 0 || !g.agents[idx].live || strempty(row->install_id)) {
            die("install (live ids): unexpected row host=%s rack=%s install_id=%s", row->host,
                row->rack, row->install_id);
        }
        agent *a = &g.agents[idx];
        if (!a->live_refs) {
            a->live_refs = calloc(g.hosts_per_rack, sizeof(*a->live_refs));
        }
        if (!a->live_refs || a->n_live_refs == g.hosts_per_rack) {
            die("install (live ids): %s: more rows than hosts, or out of memory", a->rack);
        }
        intent_ref *ref = &a->live_refs[a->n_live_refs++];
        ref->host = strdup(row->host);
        ref->install_id = strdup(row->install_id);
        if (!ref->host || !ref->install_id) {
            die("out of memory");
        }
    }
    rbproto_free(&rep->base);
    for (unsigned i = 0; i < g.racks; i++) {
        if (g.agents[i].live && g.agents[i].n_live_refs == 0) {
            die("install (live ids): no rows for %s", g.agents[i].rack);
        }
    }
    Rackboot__V1__CancelRequest cr = RACKBOOT__V1__CANCEL_REQUEST__INIT;
    cr.target = &sel;
    req = (Rackboot__V1__ApiRequest)RACKBOOT__V1__API_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__API_REQUEST__BODY_CANCEL;
    req.cancel = &cr;
    rbproto_free(&api_call_within(&req, INSTALL_TIMEOUT_MS, "cancel (live ids)")->base);
    free(names);
}

/* ---- Agents ------------------------------------------------------------- */

static void agent_fail(agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void agent_fail(agent *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why, sizeof(a->why), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g.lock);
    if (!a->failed) {
        a->failed = true;
        g.n_failed++;
    }
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

/* One sync; returns the reply or NULL (and counts the error). */
static Rackboot__V1__AgentReply *agent_sync(agent *a, uint64_t held, uint64_t ack, uint32_t wait)
{
    Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
    sync.held_generation = held;
    sync.acked_generation = ack;
    sync.max_wait_ms = wait;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
    req.sync = &sync;
    Rackboot__V1__AgentReply *rep = NULL;
    int r = rb_session_call_agent(a->s, &req, wait + CALL_SLACK_MS, &rep);
    if (r < 0) {
        if (!atomic_load(&g.stop)) {
            a->sync_errors++;
            snprintf(a->why, sizeof(a->why), "sync: %s", errstr(r));
        }
        return NULL;
    }
    if (rep->body_case != RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        a->sync_errors++;
        snprintf(a->why, sizeof(a->why), "sync: %s: %s",
                 rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR
                     ? rbproto_status_to_string(rep->error->code)
                     : "unexpected reply",
                 rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR ? rep->error->message
                                                                         : "");
        rbproto_free(&rep->base);
        return NULL;
    }
    return rep;
}

static void keep_intents(agent *a, const Rackboot__V1__SyncResponse *sr)
{
    a->intents = calloc(sr->n_intents, sizeof(*a->intents));
    if (!a->intents) {
        return;
    }
    for (size_t i = 0; i < sr->n_intents; i++) {
        a->intents[i].host = strdup(sr->intents[i]->host);
        a->intents[i].install_id = strdup(sr->intents[i]->install_id);
        if (!a->intents[i].host || !a->intents[i].install_id) {
            return;
        }
        a->n_intents = i + 1;
    }
}

static void *sync_main(void *arg)
{
    agent *a = arg;
    rb_session_config cfg = {
        .url = g.agents_urls[a->idx % g.n_agents_urls],
        .kind = RB_SESSION_AGENT,
        .ca = NULL,
        .cert = a->cert,
        .key = a->key,
        .server_name = g.server_name,
        .software_version = "fanout-bench",
        .connect_timeout_ms = 60000,
        .reconnect = true,
    };
    char ca[PATH_MAX];
    snprintf(ca, sizeof(ca), "%s/ca.crt", g.pki);
    cfg.ca = ca;

    /* Connect and handshake, a bounded number at once. */
    while (sem_wait(&g.connect_sem) < 0 && errno == EINTR) {
    }
    uint64_t t = now_ns();
    char *error = NULL;
    int r = rb_session_open(&cfg, &a->s, &error);
    a->connect_ns = now_ns() - t;
    sem_post(&g.connect_sem);
    if (r < 0) {
        agent_fail(a, "connect: %s", error ? error : errstr(r));
        free(error);
    }
    Rackboot__V1__AgentReply *rep = NULL;
    if (r >= 0) {
        rep = agent_sync(a, 0, 0, 0);
        if (rep) {
            a->held = rep->sync->generation;
            rbproto_free(&rep->base);
        } else {
            agent_fail(a, "%s", a->why);
            r = -EIO;
        }
    }
    pthread_mutex_lock(&g.lock);
    g.n_connect_done++;
    g.n_connected += r >= 0;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    if (r < 0) {
        return NULL;
    }

    /* The long poll: every sync acks what the agent holds. */
    bool first = true;
    while (!atomic_load(&g.stop)) {
        if (a->fan_generation && !a->t_ack && a->held == a->fan_generation) {
            a->t_ack = now_ns(); /* just before the acking sync goes out */
            pthread_mutex_lock(&g.lock);
            g.n_fan_acked++;
            pthread_cond_broadcast(&g.cond);
            pthread_mutex_unlock(&g.lock);
        }
        if (first) {
            first = false;
            pthread_mutex_lock(&g.lock);
            g.n_first_park++;
            pthread_cond_broadcast(&g.cond);
            pthread_mutex_unlock(&g.lock);
        }
        rep = agent_sync(a, a->held, a->held, SYNC_WAIT_MS);
        if (!rep) {
            if (atomic_load(&g.stop)) {
                break;
            }
            if (a->sync_errors >= MAX_CALL_ERRORS) {
                agent_fail(a, "%s (%u errors)", a->why, a->sync_errors);
                break;
            }
            sleep_ms(100);
            continue;
        }
        const Rackboot__V1__SyncResponse *sr = rep->sync;
        if (!sr->unchanged && sr->generation != a->held) {
            uint64_t now = now_ns();
            a->held = sr->generation;
            if (atomic_load(&g.armed) && !a->fan_generation && sr->n_intents > 0) {
                a->t_recv = now;
                a->fan_generation = sr->generation;
                keep_intents(a, sr);
            }
        }
        rbproto_free(&rep->base);
    }
    return NULL;
}

static bool events_go(void)
{
    return g.events_go || atomic_load(&g.stop);
}

static bool live_or_events_go(void)
{
    return g.live_go || events_go();
}

static bool live_over(void)
{
    return g.live_stop || atomic_load(&g.stop);
}

/* The phases a host goes through before the installer starts, then stage2
 * progress; the k-th event (from 0) of a run speaks about host k % n of
 * `refs` at step k / n. */
static void fill_event(const intent_ref *refs, size_t n, Rackboot__V1__Event *e, uint64_t seq,
                       uint64_t k)
{
    static const Rackboot__V1__Phase early[] = {
        RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND,
        RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED,
        RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED,
        RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED,
    };
    const intent_ref *in = &refs[k % n];
    uint64_t step = k / n;
    rackboot__v1__event__init(e);
    e->seq = seq;
    e->time_unix_ms = now_ns() / NS_PER_MS;
    e->install_id = in->install_id;
    e->host = in->host;
    if (step < ARRAY_SIZE(early)) {
        e->phase = early[step];
    } else {
        e->phase = RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
        uint64_t p = (step - ARRAY_SIZE(early) + 1) * 5;
        e->percent = (uint32_t)(p > 100 ? 100 : p);
    }
    e->message = RB_UNCONST("");
}

/* Sends the batch evs[0..n) (seq a->seq + 1 on) at least once, as the
 * uplink does: the same batch again after an error. On success a->seq is
 * its last seq and *ret_rtt the time from the first attempt to the ack. */
static bool send_batch(agent *a, Rackboot__V1__Event **evs, unsigned n, unsigned *retries,
                       bool *mismatch, uint64_t *ret_rtt)
{
    Rackboot__V1__EventBatch batch = RACKBOOT__V1__EVENT_BATCH__INIT;
    batch.n_events = n;
    batch.events = evs;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
    req.events = &batch;
    uint64_t last = evs[n - 1]->seq;
    uint64_t t = now_ns();
    bool done = false;
    for (unsigned attempt = 0; !done && attempt < MAX_CALL_ERRORS && !atomic_load(&g.stop);
         attempt++) {
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rb_session_call_agent(a->s, &req, EVENTS_TIMEOUT_MS, &rep);
        if (r >= 0 && rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK) {
            a->ev_through = rep->event_ack->stored_through;
            *mismatch |= a->ev_through != last;
            done = true;
        } else {
            snprintf(a->why, sizeof(a->why), "events: %s",
                     r < 0 ? errstr(r)
                     : rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR
                         ? rep->error->message
                         : "unexpected reply");
            (*retries)++;
        }
        if (rep) {
            rbproto_free(&rep->base);
        }
        if (!done) {
            sleep_ms(50);
        }
    }
    if (done) {
        *ret_rtt = now_ns() - t;
        a->seq = last;
    }
    return done;
}

/* During the fan-out: one batch in flight, the next one --live-interval ms
 * after the last one started, until main says the fan-out is over. The
 * count is bounded (LIVE_MAX_BATCHES), the time by main's deadlines. */
static void live_loop(agent *a, Rackboot__V1__Event *evs, Rackboot__V1__Event **ptrs)
{
    uint64_t k = 0;
    while (a->n_live < LIVE_MAX_BATCHES) {
        pthread_mutex_lock(&g.lock);
        bool over = live_over();
        pthread_mutex_unlock(&g.lock);
        if (over) {
            break;
        }
        if (a->n_live == a->cap_live) {
            unsigned cap = a->cap_live ? 2 * a->cap_live : 64;
            cap = cap > LIVE_MAX_BATCHES ? LIVE_MAX_BATCHES : cap;
            uint64_t *nt = reallocarray(a->live_t, cap, sizeof(*nt));
            if (nt) {
                a->live_t = nt;
            }
            uint64_t *nr = nt ? reallocarray(a->live_rtt, cap, sizeof(*nr)) : NULL;
            if (!nr) {
                agent_fail(a, "live events: out of memory");
                return;
            }
            a->live_rtt = nr;
            a->cap_live = cap;
        }
        for (unsigned i = 0; i < g.live_batch; i++) {
            fill_event(a->live_refs, a->n_live_refs, &evs[i], a->seq + 1 + i, k++);
            ptrs[i] = &evs[i];
        }
        uint64_t t = now_ns(), rtt = 0;
        if (!send_batch(a, ptrs, g.live_batch, &a->live_retries, &a->live_mismatch, &rtt)) {
            if (!atomic_load(&g.stop)) {
                agent_fail(a, "live %s (%u retries)", a->why, a->live_retries);
            }
            return;
        }
        a->live_t[a->n_live] = t;
        a->live_rtt[a->n_live] = rtt;
        a->n_live++;
        pthread_mutex_lock(&g.lock);
        wait_until(live_over, t + (uint64_t)g.live_interval_ms * NS_PER_MS);
        pthread_mutex_unlock(&g.lock);
    }
}

static void *events_main(void *arg)
{
    agent *a = arg;
    unsigned most = g.batch_size > g.live_batch ? g.batch_size : g.live_batch;
    Rackboot__V1__Event *evs = calloc(most, sizeof(*evs));
    Rackboot__V1__Event **ptrs = calloc(most, sizeof(*ptrs));
    if (a->live) {
        pthread_mutex_lock(&g.lock);
        wait_until(live_or_events_go, UINT64_MAX);
        bool live = g.live_go && !g.events_go && !a->failed && evs && ptrs;
        pthread_mutex_unlock(&g.lock);
        if (live) {
            live_loop(a, evs, ptrs);
        }
        pthread_mutex_lock(&g.lock);
        g.n_live_done++;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.lock);
        if (g.batches == 0) {
            free(evs);
            free(ptrs);
            return NULL;
        }
    }
    pthread_mutex_lock(&g.lock);
    wait_until(events_go, UINT64_MAX);
    pthread_mutex_unlock(&g.lock);
    a->ev_base = a->seq;
    a->ev_through = a->seq;
    if (atomic_load(&g.stop) || a->failed || a->n_intents == 0 || !evs || !ptrs || !a->batch_ns) {
        goto out;
    }
    for (unsigned b = 0; b < g.batches && !atomic_load(&g.stop); b++) {
        for (unsigned i = 0; i < g.batch_size; i++) {
            uint64_t k = (uint64_t)b * g.batch_size + i;
            fill_event(a->intents, a->n_intents, &evs[i], a->ev_base + k + 1, k);
            ptrs[i] = &evs[i];
        }
        uint64_t rtt = 0;
        if (!send_batch(a, ptrs, g.batch_size, &a->ev_retries, &a->ev_mismatch, &rtt)) {
            agent_fail(a, "%s (%u retries)", a->why, a->ev_retries);
            break;
        }
        a->batch_ns[a->n_batches_done++] = rtt;
        a->ev_sent = a->seq;
    }
out:
    a->ev_t_done = now_ns();
    free(evs);
    free(ptrs);
    pthread_mutex_lock(&g.lock);
    g.n_events_done++;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

static bool all_connect_done(void)
{
    return g.n_connect_done == g.racks;
}

static bool all_parked(void)
{
    return g.n_first_park + g.n_failed >= g.racks;
}

static bool all_fan_acked(void)
{
    return g.n_fan_acked + g.n_failed >= g.racks;
}

static bool all_events_done(void)
{
    return g.n_events_done == g.racks;
}

static bool all_live_done(void)
{
    return g.n_live_done == g.live_agents;
}

/* ---- Trigger ------------------------------------------------------------ */

/* Reads one line from stdin within the deadline. */
static bool read_line(char *buf, size_t len, uint64_t deadline)
{
    size_t n = 0;
    while (n + 1 < len) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            return false;
        }
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        int r = poll(&p, 1, (int)((deadline - now) / NS_PER_MS) + 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        ssize_t k = read(STDIN_FILENO, buf + n, 1);
        if (k <= 0) {
            return false;
        }
        if (buf[n] == '\n') {
            break;
        }
        n++;
    }
    buf[n] = '\0';
    return true;
}

static void install_all(uint64_t *ret_t0, uint64_t *ret_t1)
{
    char **names = calloc(g.racks, sizeof(*names));
    if (!names) {
        die("out of memory");
    }
    for (unsigned r = 0; r < g.racks; r++) {
        names[r] = g.agents[r].rack;
    }
    Rackboot__V1__Selector sel = RACKBOOT__V1__SELECTOR__INIT;
    sel.n_racks = g.racks;
    sel.racks = names;
    Rackboot__V1__InstallRequest in = RACKBOOT__V1__INSTALL_REQUEST__INIT;
    in.target = &sel;
    in.profile = RB_UNCONST(g.profile);
    in.replace_active = true;
    Rackboot__V1__ApiRequest req = RACKBOOT__V1__API_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__API_REQUEST__BODY_INSTALL;
    req.install = &in;
    *ret_t0 = now_ns();
    Rackboot__V1__ApiReply *rep = api_call_within(&req, INSTALL_TIMEOUT_MS, "install");
    *ret_t1 = now_ns();
    size_t rows =
        rep->body_case == RACKBOOT__V1__API_REPLY__BODY_STATUSES ? rep->statuses->n_rows : 0;
    if (rows != (size_t)g.racks * g.hosts_per_rack) {
        progress("install answered %zu status rows, expected %u", rows, g.racks * g.hosts_per_rack);
    }
    rbproto_free(&rep->base);
    free(names);
}

/* ---- Main --------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: fanout_agents --agents-url URL --api-url URL --pki DIR --server-name NAME\n"
            "         [--racks N] [--hosts-per-rack M] [--profile NAME] [--setup]\n"
            "         [--batches B] [--batch-size S] [--controller-pid PID] [--latencies FILE]\n"
            "         [--connect-parallel K] [--stack-kib K] [--deadline SECONDS]\n"
            "         [--live-agents K] [--live-batch S] [--live-interval MS]\n");
    return 2;
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi, const char *what)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !end || *end || v < lo || v > hi) {
        die("%s: %s is not in %u..%u", what, s, lo, hi);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "agents-url", required_argument, NULL, 'u' },
        { "api-url", required_argument, NULL, 'A' },
        { "pki", required_argument, NULL, 'p' },
        { "server-name", required_argument, NULL, 's' },
        { "racks", required_argument, NULL, 'r' },
        { "hosts-per-rack", required_argument, NULL, 'm' },
        { "profile", required_argument, NULL, 'P' },
        { "setup", no_argument, NULL, 'S' },
        { "batches", required_argument, NULL, 'b' },
        { "batch-size", required_argument, NULL, 'B' },
        { "controller-pid", required_argument, NULL, 'c' },
        { "latencies", required_argument, NULL, 'l' },
        { "connect-parallel", required_argument, NULL, 'C' },
        { "stack-kib", required_argument, NULL, 'k' },
        { "deadline", required_argument, NULL, 'd' },
        { "live-agents", required_argument, NULL, 'L' },
        { "live-batch", required_argument, NULL, 'E' },
        { "live-interval", required_argument, NULL, 'I' },
        { 0 },
    };
    g.racks = 500;
    g.hosts_per_rack = 20;
    g.profile = "bench";
    g.batches = 4;
    g.batch_size = 100;
    g.connect_parallel = 32;
    g.stack_kib = 256;
    g.deadline_s = 900;
    g.live_batch = 10;
    g.live_interval_ms = 100;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            for (char *save = NULL, *u = strtok_r(optarg, ",", &save); u;
                 u = strtok_r(NULL, ",", &save)) {
                if (g.n_agents_urls == sizeof(g.agents_urls) / sizeof(g.agents_urls[0])) {
                    fprintf(stderr, "fanout_agents: --agents-url: at most 8 URLs\n");
                    return 2;
                }
                g.agents_urls[g.n_agents_urls++] = u;
            }
            break;
        case 'A':
            g.api_url = optarg;
            break;
        case 'p':
            g.pki = optarg;
            break;
        case 's':
            g.server_name = optarg;
            break;
        case 'r':
            g.racks = parse_uint(optarg, 1, MAX_RACKS, "--racks");
            break;
        case 'm':
            g.hosts_per_rack = parse_uint(optarg, 1, MAX_HOSTS_PER_RACK, "--hosts-per-rack");
            break;
        case 'P':
            g.profile = optarg;
            break;
        case 'S':
            g.setup = true;
            break;
        case 'b':
            g.batches = parse_uint(optarg, 0, 100000, "--batches");
            break;
        case 'B':
            g.batch_size = parse_uint(optarg, 1, RBPROTO_MAX_EVENTS, "--batch-size");
            break;
        case 'c':
            g.controller_pid = (long)parse_uint(optarg, 1, INT_MAX, "--controller-pid");
            break;
        case 'l':
            g.latencies = optarg;
            break;
        case 'C':
            g.connect_parallel = parse_uint(optarg, 1, MAX_RACKS, "--connect-parallel");
            break;
        case 'k':
            g.stack_kib = parse_uint(optarg, 64, 8192, "--stack-kib");
            break;
        case 'd':
            g.deadline_s = parse_uint(optarg, 10, 86400, "--deadline");
            break;
        case 'L':
            g.live_agents = parse_uint(optarg, 0, MAX_RACKS, "--live-agents");
            break;
        case 'E':
            g.live_batch = parse_uint(optarg, 1, RBPROTO_MAX_EVENTS, "--live-batch");
            break;
        case 'I':
            g.live_interval_ms = parse_uint(optarg, 0, 60000, "--live-interval");
            break;
        default:
            return usage();
        }
    }
    if (optind != argc || g.n_agents_urls == 0 || !g.api_url || !g.pki || !g.server_name) {
        return usage();
    }
    if (g.live_agents > g.racks) {
        die("--live-agents %u: more than --racks %u", g.live_agents, g.racks);
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(g.deadline_s); /* the last resort against a hang: SIGALRM ends us */
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    sem_init(&g.connect_sem, 0, g.connect_parallel);

    rb_session_config api_cfg = { .url = g.api_url, .kind = RB_SESSION_API };
    char *error = NULL;
    int r = rb_session_open(&api_cfg, &g.api, &error);
    if (r < 0) {
        die("API %s: %s", g.api_url, error ? error : errstr(r));
    }
    controller_sample("start");

    /* ---- setup ---- */
    if (g.setup) {
        uint64_t t = now_ns();
        setup_profile();
        uint64_t tp = now_ns();
        setup_hosts();
        uint64_t th = now_ns();
        result("setup_profile_ms", "%.1f", ms(tp - t));
        result("setup_hosts_ms", "%.1f hosts=%u", ms(th - tp), g.racks * g.hosts_per_rack);
        progress("setup: profile %.0f ms, %u hosts in %.0f ms", ms(tp - t),
                 g.racks * g.hosts_per_rack, ms(th - tp));
        controller_sample("setup");
    }

    g.agents = calloc(g.racks, sizeof(*g.agents));
    if (!g.agents) {
        die("out of memory");
    }
    /* ---- live ids: K agents spread evenly over the racks ---- */
    for (unsigned j = 0; j < g.live_agents; j++) {
        g.agents[(size_t)j * g.racks / g.live_agents].live = true;
    }
    for (unsigned i = 0; i < g.racks; i++) {
        rack_name(i, g.agents[i].rack, sizeof(g.agents[i].rack));
    }
    if (g.live_agents > 0) {
        uint64_t t = now_ns();
        live_setup();
        progress("live events: %u agents, install ids of their %u hosts each (installed and "
                 "cancelled in %.0f ms)",
                 g.live_agents, g.hosts_per_rack, ms(now_ns() - t));
    }

    /* ---- connect ---- */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)g.stack_kib << 10);
    for (unsigned i = 0; i < g.racks; i++) {
        agent *a = &g.agents[i];
        a->idx = i;
        snprintf(a->cert, sizeof(a->cert), "%s/agent/%s.crt", g.pki, a->rack);
        snprintf(a->key, sizeof(a->key), "%s/agent/%s.key", g.pki, a->rack);
        a->batch_ns = calloc(g.batches ? g.batches : 1, sizeof(*a->batch_ns));
        if (access(a->cert, R_OK) != 0 || access(a->key, R_OK) != 0) {
            die("%s: %s", a->cert, strerror(errno));
        }
    }
    /* Event threads first: they wait for the go and cost nothing until then. */
    for (unsigned i = 0; i < g.racks; i++) {
        agent *a = &g.agents[i];
        if (g.batches == 0 && !a->live) {
            continue;
        }
        if (pthread_create(&a->events_thread, &attr, events_main, a) != 0) {
            die("cannot start thread %u: %s", i, strerror(errno));
        }
    }
    uint64_t t_connect = now_ns();
    for (unsigned i = 0; i < g.racks; i++) {
        agent *a = &g.agents[i];
        if (pthread_create(&a->sync_thread, &attr, sync_main, a) != 0) {
            die("cannot start thread %u: %s", i, strerror(errno));
        }
    }
    pthread_attr_destroy(&attr);
    uint64_t deadline = now_ns() + 300 * NS_PER_S;
    pthread_mutex_lock(&g.lock);
    bool ok = wait_until(all_connect_done, deadline);
    unsigned connected = g.n_connected;
    pthread_mutex_unlock(&g.lock);
    uint64_t t_connected = now_ns();
    if (!ok || connected < g.racks) {
        for (unsigned i = 0; i < g.racks; i++) {
            if (g.agents[i].failed) {
                progress("agent %s: %s", g.agents[i].rack, g.agents[i].why);
                break;
            }
        }
        die("%u of %u agents connected%s", connected, g.racks, ok ? "" : " (timed out)");
    }
    {
        uint64_t *v = calloc(g.racks, sizeof(*v));
        for (unsigned i = 0; v && i < g.racks; i++) {
            v[i] = g.agents[i].connect_ns;
        }
        result("connect_total_ms", "%.1f agents=%u parallel=%u", ms(t_connected - t_connect),
               g.racks, g.connect_parallel);
        if (v) {
            result_dist("connect_each_ms", v, g.racks);
        }
        free(v);
    }
    progress("connect: %u agents connected, handshaken and synced in %.0f ms", connected,
             ms(t_connected - t_connect));

    /* Every agent has its acking long poll out and the controller has
     * recorded the acks: the steady state before an install. */
    pthread_mutex_lock(&g.lock);
    ok = wait_until(all_parked, now_ns() + 60 * NS_PER_S);
    pthread_mutex_unlock(&g.lock);
    unsigned polls = 0;
    uint64_t base_gen = 0;
    racks_acked(&base_gen);
    uint64_t t_ready = ok ? poll_all_acked(g.racks, 1, now_ns() + 120 * NS_PER_S, &polls) : 0;
    if (!t_ready) {
        die("the agents did not settle in their long polls");
    }
    result("park_ms", "%.1f", ms(t_ready - t_connected));
    controller_sample("connected");
    sleep_ms(200); /* let the last parked syncs reach the controller's park list */

    /* ---- fan-out ---- */
    atomic_store(&g.armed, true);
    printf("READY\n");
    fflush(stdout);
    progress("READY: %u agents parked at generation %" PRIu64 "; waiting for the install", g.racks,
             base_gen);
    char line[256];
    if (!read_line(line, sizeof(line), now_ns() + 600 * NS_PER_S)) {
        die("no trigger line on stdin");
    }
    uint64_t t0 = 0, t1 = 0, t_live_go = 0, t_live_stop = 0;
    if (g.live_agents > 0 && (streq(line, "live") || streq(line, "install"))) {
        pthread_mutex_lock(&g.lock);
        t_live_go = now_ns();
        g.live_go = true;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.lock);
        /* The next line comes when the CLI has returned. */
        uint64_t within = (uint64_t)INSTALL_TIMEOUT_MS * NS_PER_MS + 60 * NS_PER_S;
        if (streq(line, "live") && !read_line(line, sizeof(line), now_ns() + within)) {
            die("no trigger line on stdin after \"live\"");
        } else if (streq(line, "install")) {
            sleep_ms(LIVE_LEAD_MS);
        }
    }
    const char *trigger;
    if (streq(line, "install")) {
        install_all(&t0, &t1);
        trigger = "api";
    } else if (sscanf(line, "t0 %" SCNu64 " t1 %" SCNu64, &t0, &t1) >= 1 && t0 > 0) {
        trigger = "cli";
    } else {
        die("bad trigger line: %s", line);
    }
    pthread_mutex_lock(&g.lock);
    ok = wait_until(all_fan_acked, (t1 > t0 ? t1 : t0) + FANOUT_WAIT_S * NS_PER_S);
    unsigned fan_acked = g.n_fan_acked;
    pthread_mutex_unlock(&g.lock);
    if (!ok) {
        progress("only %u of %u agents received the install within %u s of the answer", fan_acked,
                 g.racks, FANOUT_WAIT_S);
    }
    /* Every agent has its new generation: the live senders stop (a batch
     * in flight is waited for, and counted). */
    unsigned live_done = 0;
    if (t_live_go) {
        pthread_mutex_lock(&g.lock);
        t_live_stop = now_ns();
        g.live_stop = true;
        pthread_cond_broadcast(&g.cond);
        if (!wait_until(all_live_done, now_ns() + 2 * (uint64_t)EVENTS_TIMEOUT_MS * NS_PER_MS)) {
            die("%u of %u live senders did not stop", g.live_agents - g.n_live_done, g.live_agents);
        }
        live_done = g.n_live_done;
        pthread_mutex_unlock(&g.lock);
    }
    uint64_t t_confirm = poll_all_acked(fan_acked, base_gen + 1, now_ns() + 60 * NS_PER_S, &polls);
    controller_sample("fanout");

    uint64_t *lat_ack = calloc(g.racks, sizeof(uint64_t));
    uint64_t *lat_recv = calloc(g.racks, sizeof(uint64_t));
    size_t n_lat = 0, intents = 0, short_racks = 0;
    uint64_t last_ack = 0;
    FILE *lf = g.latencies ? fopen(g.latencies, "we") : NULL;
    if (lf) {
        fprintf(lf, "# rack recv_ms ack_sent_ms intents (from t0)\n");
    }
    for (unsigned i = 0; lat_ack && lat_recv && i < g.racks; i++) {
        const agent *a = &g.agents[i];
        if (!a->t_ack) {
            continue;
        }
        lat_ack[n_lat] = a->t_ack > t0 ? a->t_ack - t0 : 0;
        lat_recv[n_lat] = a->t_recv > t0 ? a->t_recv - t0 : 0;
        last_ack = a->t_ack > last_ack ? a->t_ack : last_ack;
        intents += a->n_intents;
        short_racks += a->n_intents != g.hosts_per_rack;
        if (lf) {
            fprintf(lf, "%s %.3f %.3f %zu\n", a->rack, ms(lat_recv[n_lat]), ms(lat_ack[n_lat]),
                    a->n_intents);
        }
        n_lat++;
    }
    if (lf) {
        fclose(lf);
    }
    result("fanout_trigger", "%s", trigger);
    if (t1 > t0) {
        result("fanout_install_reply_ms", "%.1f", ms(t1 - t0));
    }
    result_dist("fanout_ack_ms", lat_ack, n_lat);
    result_dist("fanout_recv_ms", lat_recv, n_lat);
    result("fanout_agents_acked", "%zu of %u", n_lat, g.racks);
    result("fanout_intents", "%zu expected=%u racks_with_wrong_count=%zu", intents,
           g.racks * g.hosts_per_rack, short_racks);
    if (t_confirm) {
        result("fanout_controller_all_acked_ms", "%.1f polls=%u", ms(t_confirm - t0), polls);
    } else {
        result("fanout_controller_all_acked_ms", "timeout");
    }
    progress("fan-out: %zu agents acked, last ack sent at %.1f ms, controller saw all at %.1f ms",
             n_lat, last_ack ? ms(last_ack - t0) : 0.0, t_confirm ? ms(t_confirm - t0) : -1.0);
    free(lat_ack);
    free(lat_recv);

    /* ---- live events: the round trips during the fan-out ---- */
    if (t_live_go) {
        size_t n_all = 0, n_req = 0;
        unsigned retries = 0, mismatches = 0, senders = 0;
        for (unsigned i = 0; i < g.racks; i++) {
            n_all += g.agents[i].n_live;
        }
        uint64_t *all = calloc(n_all ? n_all : 1, sizeof(uint64_t));
        uint64_t *req = calloc(n_all ? n_all : 1, sizeof(uint64_t));
        FILE *llf = g.latencies ? fopen(g.latencies, "ae") : NULL;
        if (llf) {
            fprintf(llf, "# live rack batch_start_ms (from t0) round_trip_ms\n");
        }
        n_all = 0;
        for (unsigned i = 0; all && req && i < g.racks; i++) {
            const agent *a = &g.agents[i];
            senders += a->n_live > 0;
            retries += a->live_retries;
            mismatches += a->live_mismatch;
            for (unsigned b = 0; b < a->n_live; b++) {
                uint64_t start = a->live_t[b], end = start + a->live_rtt[b];
                all[n_all++] = a->live_rtt[b];
                /* Overlapping the install request: sent before its answer
                 * came, answered after it was sent. */
                if (t1 > t0 && start < t1 && end > t0) {
                    req[n_req++] = a->live_rtt[b];
                }
                if (llf) {
                    fprintf(llf, "live %s %.3f %.3f\n", a->rack,
                            start >= t0 ? ms(start - t0) : -ms(t0 - start), ms(a->live_rtt[b]));
                }
            }
        }
        if (llf) {
            fclose(llf);
        }
        result("live_events",
               "agents=%u senders=%u batches=%zu events=%zu batch_size=%u interval_ms=%u "
               "lead_ms=%.1f window_ms=%.1f retries=%u ack_mismatches=%u stopped=%u",
               g.live_agents, senders, n_all, n_all * g.live_batch, g.live_batch,
               g.live_interval_ms, t0 > t_live_go ? ms(t0 - t_live_go) : 0.0,
               ms(t_live_stop - t_live_go), retries, mismatches, live_done);
        if (all && req) {
            result_dist("live_batch_ms", all, n_all);
            if (t1 > t0) {
                result_dist("live_in_request_ms", req, n_req);
            }
        }
        free(all);
        free(req);
        progress("live events: %zu batches of %u from %u agents in %.0f ms", n_all, g.live_batch,
                 senders, ms(t_live_stop - t_live_go));
    }

    /* ---- events ---- */
    if (g.batches > 0) {
        progress("events: %u agents x %u batches x %u events", g.racks, g.batches, g.batch_size);
        pthread_mutex_lock(&g.lock);
        uint64_t t_go = now_ns();
        g.events_go = true;
        pthread_cond_broadcast(&g.cond);
        ok = wait_until(all_events_done, t_go + 600 * NS_PER_S);
        pthread_mutex_unlock(&g.lock);
        uint64_t t_end = 0, stored = 0, batches_done = 0, retries = 0, mismatches = 0;
        uint64_t *bl = calloc((size_t)g.racks * g.batches, sizeof(uint64_t));
        size_t n_bl = 0;
        for (unsigned i = 0; i < g.racks; i++) {
            const agent *a = &g.agents[i];
            t_end = a->ev_t_done > t_end ? a->ev_t_done : t_end;
            stored += a->ev_through - a->ev_base;
            batches_done += a->n_batches_done;
            retries += a->ev_retries;
            mismatches += a->ev_mismatch;
            for (unsigned b = 0; bl && b < a->n_batches_done; b++) {
                bl[n_bl++] = a->batch_ns[b];
            }
        }
        uint64_t expect = (uint64_t)g.racks * g.batches * g.batch_size;
        double secs = (double)(t_end - t_go) / 1e9;
        result("events_stored",
               "%" PRIu64 " expected=%" PRIu64 " retries=%" PRIu64 " ack_mismatches=%" PRIu64 "%s",
               stored, expect, retries, mismatches, ok ? "" : " (timed out)");
        result("events_seconds", "%.3f", secs);
        result("events_per_second", "%.0f", secs > 0 ? (double)stored / secs : 0.0);
        result("events_batches", "%" PRIu64, batches_done);
        if (bl) {
            result_dist("events_batch_ms", bl, n_bl);
        }
        free(bl);
        progress("events: %" PRIu64 " stored in %.2f s: %.0f events/s", stored, secs,
                 secs > 0 ? (double)stored / secs : 0.0);
        controller_sample("events");
    }

    /* ---- stop ---- */
    /* No teardown: closing 500 REQ sockets while their long polls are in
     * flight only exercises nng's close path (and once aborted inside it,
     * SIGABRT after the results were printed); the kernel closes the
     * connections when we exit, which the controller sees as 500
     * disconnects. */
    unsigned failed;
    pthread_mutex_lock(&g.lock);
    failed = g.n_failed;
    atomic_store(&g.stop, true);
    pthread_mutex_unlock(&g.lock);
    for (unsigned i = 0, shown = 0; i < g.racks && shown < 5; i++) {
        if (g.agents[i].failed) {
            progress("agent %s failed: %s", g.agents[i].rack, g.agents[i].why);
            shown++;
        }
    }
    result("agents_failed", "%u", failed);
    {
        FILE *f = fopen("/proc/self/status", "re");
        char l[256];
        while (f && fgets(l, sizeof(l), f)) {
            long v;
            if (sscanf(l, "VmHWM: %ld", &v) == 1) {
                result("agents_process_hwm_kib", "%ld", v);
            }
        }
        if (f) {
            fclose(f);
        }
    }
    fflush(stdout);
    fflush(stderr);
    _exit(failed ? 1 : 0);
}
