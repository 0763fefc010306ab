/* storm_client: N simulated hosts netbooting at once, for tests/bench/storm.
 *
 * Each host runs the whole sequence an iPXE host and an installer run:
 *
 *   DHCPv6 Solicit -> Advertise -> Request -> Reply (its own DUID-LL from its
 *   MAC, user class "iPXE", all from one UDP socket on the interface's
 *   link-local address, port 546, to ff02::1:2; RFC 8415 §15 retransmission:
 *   1 s, doubling, at most --dhcp-retries times per message)
 *   then over HTTP, every transfer bound to the host's reserved address:
 *   GET the boot file URL of the Reply (the iPXE script), the kernel and every
 *   initrd it names, the kickstart (inst.ks=), the stage2 image
 *   (inst.stage2= + LiveOS/squashfs.img), and unless --no-progress the
 *   progress POSTs the kickstart's %pre/%post would send: --installing N
 *   times phase=installing&percent=..., then phase=installed.
 *
 * libcurl's multi interface carries every transfer on one thread; the DHCPv6
 * socket is polled with it (curl_multi_poll's extra fds). A host does one
 * transfer at a time, reusing its own connection (keep-alive), like a real
 * host. A failed transfer (curl error or an unexpected status) is retried
 * after a second, at most --http-retries times, then the host fails.
 *
 * Bounded: every host ends by --timeout seconds at the latest (transfers
 * still running then are counted as failures), and each transfer has a
 * stall limit. Prints one line of key=value results on stdout, and with -o
 * one line per host (name state times in seconds since the start).
 *
 * Not a test. Built by tests/bench/storm:
 *     cc -O2 -o storm_client storm_client.c -lcurl
 *     storm_client -i IFACE -f HOSTS [-n INSTALLING] [--no-progress] [-t SECONDS]
 * HOSTS: one host per line, "NAME MAC ADDRESS" (the reserved address, which
 * must be configured on IFACE).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH       64
#define PKT         1500
#define MAX_HOSTS   65535 /* the host index is the low 16 bits of the xid */
#define MAX_INITRDS 4
#define SCRIPT_MAX  (64 * 1024)
#define KS_MAX      (1024 * 1024)
#define URL_MAX     1024
#define STALL_SECS  60 /* a transfer below 1 KiB/s for this long fails */
#define RETRY_DELAY 1000000000ull

/* DHCPv6 (RFC 8415) message types and options used here. */
enum { SOLICIT = 1, ADVERTISE = 2, REQUEST = 3, REPLY = 7 };
enum {
    OPT_CLIENTID = 1,
    OPT_SERVERID = 2,
    OPT_IA_NA = 3,
    OPT_IAADDR = 5,
    OPT_ORO = 6,
    OPT_ELAPSED = 8,
    OPT_STATUS = 13,
    OPT_USER_CLASS = 15,
    OPT_BOOTFILE_URL = 59,
};

enum state { H_SOLICIT, H_REQUEST, H_HTTP, H_DONE, H_FAILED };

/* The HTTP steps, in order. INITRD repeats for every initrd line. */
enum step { ST_SCRIPT, ST_KERNEL, ST_INITRD, ST_KICKSTART, ST_STAGE2, ST_PROGRESS, ST_END };
static const char *const step_names[] = { "script", "kernel",   "initrd", "kickstart",
                                          "stage2", "progress", "end" };

typedef struct host {
    char name[64];
    uint8_t mac[6];
    char mac_text[18];
    char addr_text[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    char iface_opt[INET6_ADDRSTRLEN + 8]; /* "host!ADDR" for CURLOPT_INTERFACE */
    enum state state;
    const char *fail_why;
    /* DHCPv6 */
    uint32_t xid;
    uint8_t srvid[130];
    size_t srvid_len;
    uint8_t offered[16];
    uint64_t t_first;    /* first Solicit, ns */
    uint64_t t_sent, rt; /* current message sent, its retransmission timeout, ns */
    unsigned tries;      /* transmissions of the current message */
    char bootfile[URL_MAX];
    /* HTTP */
    CURL *easy;
    bool busy; /* a transfer is in the multi handle */
    enum step step;
    unsigned initrd_i, n_initrds, progress_i;
    unsigned retries_left;
    uint64_t retry_at;
    char kernel[URL_MAX], initrds[MAX_INITRDS][URL_MAX], ks[URL_MAX], stage2[URL_MAX],
        progress_url[URL_MAX];
    char *body; /* script or kickstart being received */
    size_t body_len, body_cap;
    uint64_t bytes;
    char post[64];
    /* times, ns since the start */
    uint64_t t_bound, t_script, t_stage2, t_done;
} host;

static struct {
    const char *ifname;
    const char *hosts_file;
    const char *out_file;
    unsigned installing;
    bool progress;
    double timeout;
    unsigned dhcp_retries;
    unsigned http_retries;
} opt = { .installing = 3, .progress = true, .timeout = 900, .dhcp_retries = 8, .http_retries = 3 };

static host *hosts;
static size_t n_hosts;
static int dfd = -1;
static struct sockaddr_in6 dst;
static CURLM *multi;
static uint64_t t0;

static struct {
    uint64_t solicits, requests, retransmits, advertises, replies, dhcp_failed, addr_mismatch,
        no_bootfile, stray, send_errors;
    uint64_t http_requests, http_retries, http_failed, bytes, posts;
    uint64_t http_connects; /* new connections; one per host when keep-alive holds */
    uint64_t by_step[ST_END];
} st;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t t)
{
    return t ? (double)(t - t0) / 1e9 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: storm_client -i IFACE -f HOSTS [-o PER_HOST_OUT] [-n INSTALLING_POSTS]\n"
            "                    [--no-progress] [-t TIMEOUT_S] [--dhcp-retries N]\n"
            "                    [--http-retries N]\n");
    exit(2);
}

/* ---- DHCPv6 wire (the few helpers dhcp6_load.c has, plus user class and
 *      the boot file URL) ---------------------------------------------------- */

static size_t put_opt(uint8_t *p, uint16_t code, const void *data, uint16_t len)
{
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    if (len) {
        memcpy(p + 4, data, len);
    }
    return 4u + len;
}

static void make_duid(const host *h, uint8_t duid[10])
{
    duid[0] = 0;
    duid[1] = 3; /* DUID-LL */
    duid[2] = 0;
    duid[3] = 1; /* Ethernet */
    memcpy(duid + 4, h->mac, 6);
}

static size_t build(uint8_t *buf, int type, host *h, uint64_t t)
{
    uint8_t *p = buf;
    uint8_t duid[10];
    size_t idx = (size_t)(h - hosts);
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(h->xid >> 16);
    p[2] = (uint8_t)(h->xid >> 8);
    p[3] = (uint8_t)h->xid;
    p += 4;
    make_duid(h, duid);
    p += put_opt(p, OPT_CLIENTID, duid, sizeof(duid));
    if (type == REQUEST) {
        p += put_opt(p, OPT_SERVERID, h->srvid, (uint16_t)h->srvid_len);
    }
    uint8_t ia[12 + 28];
    size_t ialen = 12;
    uint32_t iaid = htonl((uint32_t)idx + 1);
    memcpy(ia, &iaid, 4);
    memset(ia + 4, 0, 8); /* T1, T2: the server's choice */
    if (type == REQUEST) {
        uint8_t iaaddr[24];
        memcpy(iaaddr, h->offered, 16);
        memset(iaaddr + 16, 0, 8);
        ialen += put_opt(ia + 12, OPT_IAADDR, iaaddr, sizeof(iaaddr));
    }
    p += put_opt(p, OPT_IA_NA, ia, (uint16_t)ialen);
    /* RFC 8415 §21.9: hundredths of a second since the first message. */
    uint64_t cs = (t - h->t_first) / 10000000ull;
    uint8_t elapsed[2] = { (uint8_t)((cs > 0xffff ? 0xffff : cs) >> 8),
                           (uint8_t)(cs > 0xffff ? 0xff : cs) };
    p += put_opt(p, OPT_ELAPSED, elapsed, 2);
    uint8_t oro[8] = { 0, OPT_BOOTFILE_URL, 0, 60, 0, 23, 0, 24 };
    p += put_opt(p, OPT_ORO, oro, sizeof(oro));
    static const uint8_t uc[] = { 0, 4, 'i', 'P', 'X', 'E' };
    p += put_opt(p, OPT_USER_CLASS, uc, sizeof(uc));
    return (size_t)(p - buf);
}

static const uint8_t *find_opt(const uint8_t *p, const uint8_t *end, uint16_t code, uint16_t *len)
{
    while (end - p >= 4) {
        uint16_t c = (uint16_t)(p[0] << 8 | p[1]);
        uint16_t l = (uint16_t)(p[2] << 8 | p[3]);
        if (end - p - 4 < l) {
            return NULL;
        }
        if (c == code) {
            *len = l;
            return p + 4;
        }
        p += 4 + l;
    }
    return NULL;
}

static uint8_t sbuf[BATCH][PKT];
static struct mmsghdr smsg[BATCH];
static struct iovec siov[BATCH];
static int nsend;

static void flush(void)
{
    int off = 0;
    while (off < nsend) {
        int r = sendmmsg(dfd, smsg + off, (unsigned)(nsend - off), 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) {
                usleep(1000);
                continue;
            }
            st.send_errors += (uint64_t)(nsend - off);
            break;
        }
        off += r;
    }
    nsend = 0;
}

static void queue(int type, host *h, uint64_t t)
{
    siov[nsend].iov_len = build(sbuf[nsend], type, h, t);
    nsend++;
    if (nsend == BATCH) {
        flush();
    }
}

static void host_fail(host *h, const char *why)
{
    if (h->state != H_DONE && h->state != H_FAILED) {
        h->state = H_FAILED;
        h->fail_why = why;
        h->t_done = now_ns();
    }
}

static void dhcp_send(host *h, int type, uint64_t t, bool first)
{
    static uint8_t gen;
    if (first) {
        gen++;
        h->xid = (uint32_t)gen << 16 | (uint32_t)(h - hosts);
        h->tries = 0;
        h->rt = 1000000000ull; /* SOL_TIMEOUT, REQ_TIMEOUT: 1 s */
    } else {
        st.retransmits++;
        /* RFC 8415 §15: RT doubles, up to SOL_MAX_RT / REQ_MAX_RT (30 s
         * for Request; bounded here by the retry count). */
        h->rt = h->rt * 2 > 30000000000ull ? 30000000000ull : h->rt * 2;
    }
    h->tries++;
    h->t_sent = t;
    if (type == SOLICIT) {
        st.solicits++;
    } else {
        st.requests++;
    }
    queue(type, h, t);
}

static void dhcp_timers(uint64_t t)
{
    for (size_t i = 0; i < n_hosts; i++) {
        host *h = &hosts[i];
        if ((h->state != H_SOLICIT && h->state != H_REQUEST) || t - h->t_sent < h->rt) {
            continue;
        }
        if (h->tries > opt.dhcp_retries) {
            st.dhcp_failed++;
            host_fail(h, h->state == H_SOLICIT ? "no Advertise" : "no Reply");
            continue;
        }
        dhcp_send(h, h->state == H_SOLICIT ? SOLICIT : REQUEST, t, false);
    }
    if (nsend) {
        flush();
    }
}

static void http_start(host *h);

static void dhcp_receive(void)
{
    static uint8_t rbuf[BATCH][PKT];
    static struct mmsghdr rmsg[BATCH];
    static struct iovec riov[BATCH];
    for (;;) {
        for (int k = 0; k < BATCH; k++) {
            riov[k].iov_base = rbuf[k];
            riov[k].iov_len = PKT;
            memset(&rmsg[k].msg_hdr, 0, sizeof(rmsg[k].msg_hdr));
            rmsg[k].msg_hdr.msg_iov = &riov[k];
            rmsg[k].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(dfd, rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            break;
        }
        uint64_t t = now_ns();
        for (int k = 0; k < n; k++) {
            const uint8_t *m = rbuf[k];
            size_t len = rmsg[k].msg_len;
            if (len < 4) {
                st.stray++;
                continue;
            }
            uint32_t xid = (uint32_t)(m[1] << 16 | m[2] << 8 | m[3]);
            size_t idx = xid & 0xffff;
            if (idx >= n_hosts || hosts[idx].xid != xid) {
                st.stray++;
                continue;
            }
            host *h = &hosts[idx];
            const uint8_t *end = m + len;
            uint16_t cl, sl, ial;
            uint8_t duid[10];
            make_duid(h, duid);
            const uint8_t *cid = find_opt(m + 4, end, OPT_CLIENTID, &cl);
            if (!cid || cl != sizeof(duid) || memcmp(cid, duid, sizeof(duid)) != 0) {
                st.stray++;
                continue;
            }
            const uint8_t *ia = find_opt(m + 4, end, OPT_IA_NA, &ial);
            const uint8_t *addr = NULL;
            if (ia && ial >= 12) {
                uint16_t al;
                const uint8_t *a = find_opt(ia + 12, ia + ial, OPT_IAADDR, &al);
                if (a && al >= 24) {
                    addr = a;
                }
            }
            if (h->state == H_SOLICIT && m[0] == ADVERTISE) {
                const uint8_t *sid = find_opt(m + 4, end, OPT_SERVERID, &sl);
                st.advertises++;
                if (!sid || !addr || sl > sizeof(h->srvid)) {
                    continue; /* RFC 8415 §18.2.9: ignore it, keep soliciting */
                }
                memcpy(h->srvid, sid, sl);
                h->srvid_len = sl;
                memcpy(h->offered, addr, 16);
                h->state = H_REQUEST;
                dhcp_send(h, REQUEST, t, true);
            } else if (h->state == H_REQUEST && m[0] == REPLY) {
                st.replies++;
                h->xid = 0xffffffff; /* later copies are strays */
                if (!addr) {
                    st.dhcp_failed++;
                    host_fail(h, "Reply without an address");
                    continue;
                }
                if (memcmp(addr, &h->addr, 16) != 0) {
                    st.addr_mismatch++;
                    st.dhcp_failed++;
                    host_fail(h, "Reply with another address than the reservation");
                    continue;
                }
                uint16_t bl;
                const uint8_t *b = find_opt(m + 4, end, OPT_BOOTFILE_URL, &bl);
                if (!b || bl == 0 || bl >= sizeof(h->bootfile)) {
                    st.no_bootfile++;
                    st.dhcp_failed++;
                    host_fail(h, "Reply without a boot file URL");
                    continue;
                }
                memcpy(h->bootfile, b, bl);
                h->bootfile[bl] = 0;
                h->t_bound = t;
                h->state = H_HTTP;
                h->step = ST_SCRIPT;
                h->retries_left = opt.http_retries;
                http_start(h);
            } else {
                st.stray++;
            }
        }
        if (nsend) {
            flush();
        }
    }
}

/* ---- HTTP -------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    host *h = userdata;
    size_t n = size * nmemb;
    h->bytes += n;
    if (h->step == ST_SCRIPT || h->step == ST_KICKSTART) {
        size_t cap = h->step == ST_SCRIPT ? SCRIPT_MAX : KS_MAX;
        if (h->body_len + n + 1 > cap) {
            return 0; /* too big: fails the transfer */
        }
        if (h->body_len + n + 1 > h->body_cap) {
            size_t c = h->body_cap ? h->body_cap : 4096;
            while (c < h->body_len + n + 1) {
                c *= 2;
            }
            char *b = realloc(h->body, c);
            if (!b) {
                return 0;
            }
            h->body = b;
            h->body_cap = c;
        }
        memcpy(h->body + h->body_len, data, n);
        h->body_len += n;
        h->body[h->body_len] = 0;
    }
    return n;
}

static bool copy_url(char *dst_url, const char *s, size_t n)
{
    if (n == 0 || n >= URL_MAX) {
        return false;
    }
    memcpy(dst_url, s, n);
    dst_url[n] = 0;
    return true;
}

/* The first "http://" token of a line: the kernel's URL comes before its
 * arguments, an initrd's after "--name NAME". */
static bool line_url(const char *line, const char *eol, char *out)
{
    const char *p = line;
    while (p < eol) {
        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }
        const char *tok = p;
        while (p < eol && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }
        if (p - tok > 7 && strncmp(tok, "http://", 7) == 0) {
            return copy_url(out, tok, (size_t)(p - tok));
        }
        if (p < eol && *p == '\r') {
            p++;
        }
    }
    return false;
}

static bool arg_value(const char *line, const char *eol, const char *key, char *out)
{
    size_t kl = strlen(key);
    for (const char *p = line; p + kl <= eol; p++) {
        if ((p == line || p[-1] == ' ') && strncmp(p, key, kl) == 0) {
            const char *v = p + kl, *e = v;
            while (e < eol && *e != ' ' && *e != '\t' && *e != '\r') {
                e++;
            }
            return copy_url(out, v, (size_t)(e - v));
        }
    }
    return false;
}

static const char *parse_script(host *h)
{
    char *s = h->body;
    if (!s || strncmp(s, "#!ipxe", 6) != 0) {
        return "the script does not start with #!ipxe";
    }
    h->kernel[0] = h->ks[0] = h->stage2[0] = 0;
    h->n_initrds = 0;
    for (char *line = s; *line;) {
        char *eol = strchr(line, '\n');
        if (!eol) {
            eol = line + strlen(line);
        }
        if (strncmp(line, "kernel ", 7) == 0) {
            if (!line_url(line + 7, eol, h->kernel)) {
                return "no kernel URL";
            }
            char st2[URL_MAX];
            arg_value(line, eol, "inst.ks=", h->ks);
            if (arg_value(line, eol, "inst.stage2=", st2)) {
                size_t l = strlen(st2);
                int r = snprintf(h->stage2, URL_MAX, "%s%s", st2,
                                 l && st2[l - 1] == '/' ? "LiveOS/squashfs.img" : "");
                if (r < 0 || r >= URL_MAX) {
                    return "stage2 URL too long";
                }
            }
        } else if (strncmp(line, "initrd ", 7) == 0) {
            if (h->n_initrds == MAX_INITRDS || !line_url(line + 7, eol, h->initrds[h->n_initrds])) {
                return "too many initrds or no initrd URL";
            }
            h->n_initrds++;
        }
        line = *eol ? eol + 1 : eol;
    }
    if (!h->kernel[0] || !h->ks[0] || !h->stage2[0]) {
        return "the script lacks kernel, inst.ks= or inst.stage2=";
    }
    return NULL;
}

/* The kickstart's progress URL: "http://.../progress/ID?token=T". */
static const char *parse_kickstart(host *h)
{
    h->progress_url[0] = 0;
    if (!opt.progress) {
        return NULL;
    }
    char *p = h->body ? strstr(h->body, "/progress/") : NULL;
    if (!p) {
        return "no progress URL in the kickstart";
    }
    char *b = p;
    while (b > h->body && strncmp(b, "http://", 7) != 0) {
        b--;
    }
    char *e = p;
    while (*e && *e != '"' && *e != '\'' && *e != ' ' && *e != '\n') {
        e++;
    }
    if (strncmp(b, "http://", 7) != 0 || !copy_url(h->progress_url, b, (size_t)(e - b))) {
        return "bad progress URL in the kickstart";
    }
    return NULL;
}

static const char *step_url(host *h)
{
    switch (h->step) {
    case ST_SCRIPT:
        return h->bootfile;
    case ST_KERNEL:
        return h->kernel;
    case ST_INITRD:
        return h->initrds[h->initrd_i];
    case ST_KICKSTART:
        return h->ks;
    case ST_STAGE2:
        return h->stage2;
    case ST_PROGRESS:
        return h->progress_url;
    default:
        return NULL;
    }
}

static void http_start(host *h)
{
    CURL *e = h->easy;
    if (!e) {
        e = h->easy = curl_easy_init();
        if (!e) {
            host_fail(h, "curl_easy_init");
            return;
        }
        curl_easy_setopt(e, CURLOPT_INTERFACE, h->iface_opt);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
        curl_easy_setopt(e, CURLOPT_PRIVATE, h);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)STALL_SECS);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "storm_client (iPXE-like)");
    }
    if (h->step == ST_SCRIPT || h->step == ST_KICKSTART) {
        h->body_len = 0;
        if (h->body) {
            h->body[0] = 0;
        }
    }
    curl_easy_setopt(e, CURLOPT_URL, step_url(h));
    if (h->step == ST_PROGRESS) {
        if (h->progress_i < opt.installing) {
            snprintf(h->post, sizeof(h->post), "phase=installing&percent=%u",
                     (h->progress_i + 1) * 100 / (opt.installing + 1));
        } else {
            snprintf(h->post, sizeof(h->post), "phase=installed");
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->post);
        st.posts++;
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    st.http_requests++;
    st.by_step[h->step]++;
    h->busy = true;
    CURLMcode mc = curl_multi_add_handle(multi, e);
    if (mc != CURLM_OK) {
        h->busy = false;
        host_fail(h, curl_multi_strerror(mc));
    }
}

/* The next step after STEP succeeded. */
static void http_next(host *h, uint64_t t)
{
    switch (h->step) {
    case ST_SCRIPT:
        h->t_script = t;
        h->step = ST_KERNEL;
        break;
    case ST_KERNEL:
        h->initrd_i = 0;
        h->step = h->n_initrds ? ST_INITRD : ST_KICKSTART;
        break;
    case ST_INITRD:
        if (++h->initrd_i == h->n_initrds) {
            h->step = ST_KICKSTART;
        }
        break;
    case ST_KICKSTART:
        h->step = ST_STAGE2;
        break;
    case ST_STAGE2:
        h->t_stage2 = t;
        h->progress_i = 0;
        h->step = opt.progress ? ST_PROGRESS : ST_END;
        break;
    case ST_PROGRESS:
        if (++h->progress_i > opt.installing) {
            h->step = ST_END;
        }
        break;
    default:
        h->step = ST_END;
    }
    h->retries_left = opt.http_retries;
    if (h->step == ST_END) {
        h->state = H_DONE;
        h->t_done = t;
        return;
    }
    http_start(h);
}

static void http_done(CURL *e, CURLcode rc)
{
    host *h = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&h);
    curl_multi_remove_handle(multi, e);
    h->busy = false;
    st.bytes += h->bytes;
    h->bytes = 0;
    if (h->state != H_HTTP) {
        return;
    }
    long code = 0, connects = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    /* A kept-alive connection the server closed between two requests shows
     * up here only: curl reconnects silently. */
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    st.http_connects += (uint64_t)connects;
    const char *why = NULL;
    if (rc != CURLE_OK) {
        why = curl_easy_strerror(rc);
    } else if (code != 200) {
        why = "HTTP status not 200";
    } else if (h->step == ST_SCRIPT) {
        why = parse_script(h);
    } else if (h->step == ST_KICKSTART) {
        why = parse_kickstart(h);
    }
    uint64_t t = now_ns();
    if (!why) {
        http_next(h, t);
        return;
    }
    if (getenv("STORM_DEBUG")) {
        fprintf(stderr, "storm_client: %s %s %s: %s (status %ld)\n", h->name, step_names[h->step],
                step_url(h), why, code);
    }
    if (h->retries_left == 0) {
        st.http_failed++;
        host_fail(h, why);
        return;
    }
    h->retries_left--;
    st.http_retries++;
    h->retry_at = t + RETRY_DELAY;
}

/* ---- setup and the loop ------------------------------------------------ */

static int load_hosts(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof(line), f)) {
        char name[64], mac[32], addr[64];
        if (line[0] == '#' || sscanf(line, "%63s %31s %63s", name, mac, addr) != 3) {
            continue;
        }
        if (n_hosts == MAX_HOSTS) {
            fprintf(stderr, "storm_client: at most %d hosts\n", MAX_HOSTS);
            fclose(f);
            return -1;
        }
        if (n_hosts == cap) {
            cap = cap ? cap * 2 : 256;
            host *g = realloc(hosts, cap * sizeof(*g));
            if (!g) {
                fclose(f);
                return -1;
            }
            hosts = g;
        }
        host *h = &hosts[n_hosts];
        memset(h, 0, sizeof(*h));
        snprintf(h->name, sizeof(h->name), "%s", name);
        unsigned m[6];
        if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6 ||
            inet_pton(AF_INET6, addr, &h->addr) != 1) {
            fprintf(stderr, "storm_client: %s: bad line: %s", path, line);
            fclose(f);
            return -1;
        }
        for (int k = 0; k < 6; k++) {
            h->mac[k] = (uint8_t)m[k];
        }
        snprintf(h->mac_text, sizeof(h->mac_text), "%02x:%02x:%02x:%02x:%02x:%02x", m[0] & 0xff,
                 m[1] & 0xff, m[2] & 0xff, m[3] & 0xff, m[4] & 0xff, m[5] & 0xff);
        inet_ntop(AF_INET6, &h->addr, h->addr_text, sizeof(h->addr_text));
        snprintf(h->iface_opt, sizeof(h->iface_opt), "host!%s", h->addr_text);
        n_hosts++;
    }
    fclose(f);
    return n_hosts ? 0 : -1;
}

static int open_dhcp(void)
{
    unsigned ifindex = if_nametoindex(opt.ifname);
    if (!ifindex) {
        fprintf(stderr, "storm_client: no interface %s\n", opt.ifname);
        return -1;
    }
    struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(546) };
    struct ifaddrs *ifa;
    bool found = false;
    if (getifaddrs(&ifa) < 0) {
        perror("getifaddrs");
        return -1;
    }
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 &&
            strcmp(i->ifa_name, opt.ifname) == 0) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)i->ifa_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&s->sin6_addr)) {
                local.sin6_addr = s->sin6_addr;
                found = true;
                break;
            }
        }
    }
    freeifaddrs(ifa);
    if (!found) {
        fprintf(stderr, "storm_client: no link-local address on %s\n", opt.ifname);
        return -1;
    }
    local.sin6_scope_id = ifindex;
    dfd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (dfd < 0) {
        perror("socket");
        return -1;
    }
    int one = 1, zero = 0, hops = 1, bufsz = 4 << 20;
    setsockopt(dfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(dfd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
    setsockopt(dfd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    setsockopt(dfd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex));
    setsockopt(dfd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero));
    setsockopt(dfd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
    if (bind(dfd, (struct sockaddr *)&local, sizeof(local)) < 0) {
        perror("bind [link-local]:546");
        return -1;
    }
    dst = (struct sockaddr_in6){ .sin6_family = AF_INET6,
                                 .sin6_port = htons(547),
                                 .sin6_scope_id = ifindex };
    inet_pton(AF_INET6, "ff02::1:2", &dst.sin6_addr);
    for (int k = 0; k < BATCH; k++) {
        siov[k].iov_base = sbuf[k];
        smsg[k].msg_hdr.msg_iov = &siov[k];
        smsg[k].msg_hdr.msg_iovlen = 1;
        smsg[k].msg_hdr.msg_name = &dst;
        smsg[k].msg_hdr.msg_namelen = sizeof(dst);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "no-progress", no_argument, NULL, 'P' },
        { "dhcp-retries", required_argument, NULL, 'D' },
        { "http-retries", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "i:f:o:n:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            opt.ifname = optarg;
            break;
        case 'f':
            opt.hosts_file = optarg;
            break;
        case 'o':
            opt.out_file = optarg;
            break;
        case 'n':
            opt.installing = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            opt.timeout = atof(optarg);
            break;
        case 'P':
            opt.progress = false;
            break;
        case 'D':
            opt.dhcp_retries = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'R':
            opt.http_retries = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (!opt.ifname || !opt.hosts_file || opt.timeout <= 0 || opt.timeout > 3600 ||
        opt.installing > 100 || opt.dhcp_retries > 20 || opt.http_retries > 20) {
        usage();
    }
    if (load_hosts(opt.hosts_file) < 0 || open_dhcp() < 0) {
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(multi = curl_multi_init())) {
        fprintf(stderr, "storm_client: curl init failed\n");
        return 1;
    }
    /* Every host keeps its own connection between its transfers. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n_hosts + 16);

    t0 = now_ns();
    uint64_t deadline = t0 + (uint64_t)(opt.timeout * 1e9), t_all_bound = 0;
    for (size_t i = 0; i < n_hosts; i++) {
        hosts[i].state = H_SOLICIT;
        hosts[i].t_first = t0;
        dhcp_send(&hosts[i], SOLICIT, t0, true);
    }
    flush();

    uint64_t last_timers = t0;
    for (;;) {
        uint64_t t = now_ns();
        size_t active = 0, bound = 0;
        for (size_t i = 0; i < n_hosts; i++) {
            host *h = &hosts[i];
            if (h->state == H_HTTP && !h->busy && h->retry_at && t >= h->retry_at) {
                h->retry_at = 0;
                http_start(h);
            }
            active += h->state == H_SOLICIT || h->state == H_REQUEST || h->state == H_HTTP;
            bound += h->t_bound != 0;
        }
        if (!t_all_bound && bound == n_hosts) {
            t_all_bound = t;
        }
        if (active == 0) {
            break;
        }
        if (t >= deadline) {
            for (size_t i = 0; i < n_hosts; i++) {
                if (hosts[i].state == H_SOLICIT || hosts[i].state == H_REQUEST) {
                    st.dhcp_failed++;
                } else if (hosts[i].state == H_HTTP) {
                    st.http_failed++;
                }
                host_fail(&hosts[i], "timeout");
            }
            break;
        }
        if (t - last_timers >= 10000000ull) {
            last_timers = t;
            dhcp_timers(t);
        }
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg == CURLMSG_DONE) {
                http_done(msg->easy_handle, msg->data.result);
            }
        }
        struct curl_waitfd wfd = { .fd = dfd, .events = CURL_WAIT_POLLIN };
        int nfds = 0;
        curl_multi_poll(multi, &wfd, 1, 10, &nfds);
        if (wfd.revents) {
            dhcp_receive();
        }
    }
    uint64_t t1 = now_ns();

    size_t done = 0, failed = 0, nd = 0;
    uint64_t t_all_stage2 = 0; /* the last host's stage2 done (before its posts) */
    uint64_t *durs = calloc(n_hosts, sizeof(uint64_t));
    FILE *out = opt.out_file ? fopen(opt.out_file, "we") : NULL;
    for (size_t i = 0; i < n_hosts; i++) {
        host *h = &hosts[i];
        if (h->state == H_DONE) {
            done++;
            if (h->t_stage2 > t_all_stage2) {
                t_all_stage2 = h->t_stage2;
            }
            if (durs) {
                durs[nd++] = h->t_done - t0;
            }
        } else {
            failed++;
            if (failed <= 5) {
                fprintf(stderr, "storm_client: %s failed at %s: %s\n", h->name,
                        h->state == H_FAILED && h->t_bound ? step_names[h->step] : "dhcp",
                        h->fail_why ? h->fail_why : "?");
            }
        }
        if (out) {
            fprintf(out, "%s %s bound=%.3f script=%.3f stage2=%.3f done=%.3f%s%s\n", h->name,
                    h->state == H_DONE ? "done" : "failed", secs(h->t_bound), secs(h->t_script),
                    secs(h->t_stage2), secs(h->t_done), h->fail_why ? " why=" : "",
                    h->fail_why ? h->fail_why : "");
        }
        if (h->easy) {
            if (h->busy) {
                curl_multi_remove_handle(multi, h->easy);
            }
            curl_easy_cleanup(h->easy);
        }
        free(h->body);
    }
    if (out) {
        fclose(out);
    }
    double p50 = 0, p99 = 0, mx = 0;
    if (durs && nd) {
        qsort(durs, nd, sizeof(*durs), cmp_u64);
        p50 = (double)durs[nd / 2] / 1e9;
        p99 = (double)durs[(nd * 99) / 100 < nd ? (nd * 99) / 100 : nd - 1] / 1e9;
        mx = (double)durs[nd - 1] / 1e9;
    }
    free(durs);
    printf("hosts=%zu done=%zu failed=%zu total_secs=%.3f all_bound_secs=%.3f all_stage2_secs=%.3f "
           "host_p50_secs=%.3f "
           "host_p99_secs=%.3f host_max_secs=%.3f solicits=%llu requests=%llu "
           "dhcp_retransmits=%llu advertises=%llu replies=%llu dhcp_failed=%llu "
           "addr_mismatch=%llu no_bootfile=%llu dhcp_stray=%llu send_errors=%llu "
           "http_requests=%llu http_connects=%llu http_retries=%llu http_failed=%llu posts=%llu "
           "bytes=%llu "
           "mib_per_sec=%.1f\n",
           n_hosts, done, failed, (double)(t1 - t0) / 1e9, secs(t_all_bound),
           failed ? -1.0 : secs(t_all_stage2), p50, p99, mx, (unsigned long long)st.solicits,
           (unsigned long long)st.requests, (unsigned long long)st.retransmits,
           (unsigned long long)st.advertises, (unsigned long long)st.replies,
           (unsigned long long)st.dhcp_failed, (unsigned long long)st.addr_mismatch,
           (unsigned long long)st.no_bootfile, (unsigned long long)st.stray,
           (unsigned long long)st.send_errors, (unsigned long long)st.http_requests,
           (unsigned long long)st.http_connects, (unsigned long long)st.http_retries,
           (unsigned long long)st.http_failed, (unsigned long long)st.posts,
           (unsigned long long)st.bytes, (double)st.bytes / 1048576.0 / ((double)(t1 - t0) / 1e9));
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
