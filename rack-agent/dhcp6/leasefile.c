#include "dhcp6/leasefile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "parse.h"
#include "util.h"

/* The leases a rack can hold are bounded by its hosts and pool; a file past
 * this is not ours to trust. */
#define LEASEFILE_MAX_READ (256u * 1024u * 1024u)
/* The buffer of records waiting for the timer: past this much, write at once
 * (or, when that cannot be done, drop and rewrite from the bindings). */
#define LEASEFILE_MAX_BUFFER (1024u * 1024u)

static const char hexdigits[] = "0123456789abcdef";

static char *put_hex8(char *o, uint8_t v)
{
    o[0] = hexdigits[v >> 4];
    o[1] = hexdigits[v & 0xf];
    return o + 2;
}

static char *put_str(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *o++ = tmp[--n];
    }
    return o;
}

/* The address as inet_ntop(3) writes it (RFC 5952: lower-case hex, no
 * leading zeros, the first longest run of two or more zero groups as "::"),
 * without its cost. The forms with an embedded IPv4 address (a run of five
 * or six leading zero groups) are left to inet_ntop itself. */
static char *put_addr(char *o, const struct in6_addr *a)
{
    unsigned w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = ((unsigned)a->s6_addr[2 * i] << 8) | a->s6_addr[2 * i + 1];
    }
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && w[j] == 0) {
            j++;
        }
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2) {
        best = -1;
    }
    if (best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff))) {
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, buf, sizeof(buf));
        return put_str(o, buf, strlen(buf));
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *o++ = ':';
            if (i + best_len == 8) {
                *o++ = ':';
            }
            i += best_len - 1;
            continue;
        }
        if (i > 0) {
            *o++ = ':';
        }
        unsigned v = w[i];
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 0xf;
            if (d || started || shift == 0) {
                *o++ = hexdigits[d];
                started = true;
            }
        }
    }
    return o;
}

size_t dhcp6_leasefile_format(const dhcp6_binding *b, bool removed, char *buf, size_t size)
{
    /* The longest line fits DHCP6_LEASEFILE_MAX_LINE; callers pass that. */
    RB_ASSERT(size >= DHCP6_LEASEFILE_MAX_LINE);
    char *o = buf;
    *o++ = removed ? '-' : '+';
    o = put_str(o, b->kind == DHCP6_BINDING_POOL ? " pool " : " host ", 6);
    o = put_addr(o, &b->addr);
    *o++ = ' ';
    o = put_u64(o, b->expires);
    const char *flags =
        b->committed ? (b->declined ? " cd " : " c ") : (b->declined ? " d " : " - ");
    o = put_str(o, flags, strlen(flags));
    for (size_t i = 0; i < 6; i++) {
        if (i > 0) {
            *o++ = ':';
        }
        o = put_hex8(o, b->mac[i]);
    }
    *o++ = ' ';
    if (b->duid_len == 0) {
        *o++ = '-';
    } else {
        size_t n = b->duid_len <= DHCP6_MAX_DUID ? b->duid_len : DHCP6_MAX_DUID;
        for (size_t i = 0; i < n; i++) {
            o = put_hex8(o, b->duid[i]);
        }
    }
    *o++ = ' ';
    o = put_u64(o, b->iaid);
    *o++ = '\n';
    size_t n = (size_t)(o - buf);
    RB_ASSERT(n < size);
    buf[n] = '\0';
    return n;
}

static int unhex(const char *s, uint8_t *out, size_t cap, uint8_t *ret_len)
{
    size_t len = strlen(s);
    if (len % 2 != 0 || len / 2 > cap || len == 0) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1])) {
            return -EBADMSG;
        }
        out[i] = (uint8_t)v;
    }
    *ret_len = (uint8_t)(len / 2);
    return 0;
}

static int parse_line(char *line, dhcp6_binding *b, bool *ret_removed)
{
    char *f[8];
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (n == ARRAY_SIZE(f)) {
            return -EBADMSG;
        }
        f[n++] = w;
    }
    if (n != 8 || strlen(f[0]) != 1 || (f[0][0] != '+' && f[0][0] != '-')) {
        return -EBADMSG;
    }
    memset(b, 0, sizeof(*b));
    if (streq(f[1], "host")) {
        b->kind = DHCP6_BINDING_HOST;
    } else if (streq(f[1], "pool")) {
        b->kind = DHCP6_BINDING_POOL;
    } else {
        return -EBADMSG;
    }
    uint32_t iaid;
    if (inet_pton(AF_INET6, f[2], &b->addr) != 1 ||
        parse_u64(f[3], 0, UINT64_MAX, &b->expires) < 0 || parse_mac(f[5], b->mac) < 0 ||
        parse_u32(f[7], 0, UINT32_MAX, &iaid) < 0) {
        return -EBADMSG;
    }
    b->iaid = iaid;
    if (!streq(f[4], "-")) {
        for (const char *c = f[4]; *c; c++) {
            if (*c == 'c') {
                b->committed = true;
            } else if (*c == 'd') {
                b->declined = true;
            } else {
                return -EBADMSG;
            }
        }
    }
    if (!streq(f[6], "-") && unhex(f[6], b->duid, sizeof(b->duid), &b->duid_len) < 0) {
        return -EBADMSG;
    }
    *ret_removed = f[0][0] == '-';
    return 0;
}

int dhcp6_leasefile_load(const char *path, dhcp6_bindings *t, uint64_t now,
                         dhcp6_leasefile_stats *ret_stats)
{
    dhcp6_leasefile_stats st = { 0 };
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, LEASEFILE_MAX_READ, (void **)&text, &len);
    if (r == -ENOENT) {
        *ret_stats = st;
        return 0;
    }
    if (r < 0) {
        return r;
    }
    size_t hlen = strlen(DHCP6_LEASEFILE_HEADER);
    if (len < hlen || memcmp(text, DHCP6_LEASEFILE_HEADER, hlen) != 0) {
        return -EBADMSG;
    }
    char *p = text + hlen;
    char *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            /* A crash mid-append leaves a partial last line: ignore it. */
            st.truncated = true;
            break;
        }
        *nl = '\0';
        dhcp6_binding b;
        bool removed;
        if (memchr(p, '\0', (size_t)(nl - p)) || parse_line(p, &b, &removed) < 0) {
            st.bad++;
        } else if (removed) {
            dhcp6_binding *cur = b.kind == DHCP6_BINDING_HOST
                                     ? dhcp6_bindings_find_host(t, b.mac)
                                     : dhcp6_bindings_find_duid(t, b.duid, b.duid_len);
            if (cur) {
                dhcp6_bindings_release(t, cur);
            }
            st.records++;
        } else {
            r = dhcp6_bindings_restore(t, &b, now);
            if (r == -ENOMEM) {
                return r;
            }
            if (r < 0) {
                st.bad++;
            } else {
                st.records++;
            }
        }
        p = nl + 1;
    }
    *ret_stats = st;
    return 0;
}

/* Formats the live bindings of `t`, after the header, into a new buffer. */
static int format_live(const dhcp6_bindings *t, char **ret, size_t *ret_len)
{
    size_t n = dhcp6_bindings_count(t) + 1;
    size_t cap = strlen(DHCP6_LEASEFILE_HEADER) + n * DHCP6_LEASEFILE_MAX_LINE;
    char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    size_t off = strlen(DHCP6_LEASEFILE_HEADER);
    memcpy(buf, DHCP6_LEASEFILE_HEADER, off);
    size_t it = 0;
    const dhcp6_binding *b;
    while (dhcp6_bindings_next(t, &it, &b)) {
        /* An offer never requested holds nothing worth keeping. */
        if (!b->committed && !b->declined) {
            continue;
        }
        if (cap - off < DHCP6_LEASEFILE_MAX_LINE) {
            free(buf);
            return -EIO; /* more bindings than counted: an invariant broke */
        }
        off += dhcp6_leasefile_format(b, false, buf + off, cap - off);
    }
    *ret = buf;
    *ret_len = off;
    return 0;
}

static int write_live(const char *path, const dhcp6_bindings *t, size_t *ret_len)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int r = format_live(t, &buf, &len);
    if (r < 0) {
        return r;
    }
    r = fileio_write_atomic(path, buf, len, 0600);
    if (r == 0 && ret_len) {
        *ret_len = len;
    }
    return r;
}

int dhcp6_leasefile_compact(const char *path, const dhcp6_bindings *t)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int r = format_live(t, &buf, &len);
    if (r < 0) {
        return r;
    }
    return fileio_write_atomic(path, buf, len, 0600);
}

struct dhcp6_leasefile {
    uv_loop_t *loop;
    char *path;
    int fd;
    uint64_t appended; /* records appended since the last compaction */
    /* A compaction writes its snapshot on the thread pool; meanwhile changes
     * stay buffered and are written to the new file once it is in place. */
    uv_work_t compact_req;
    bool compact_busy;
    char *compact_buf;
    size_t compact_len;
    int compact_result;
    uv_timer_t timer;
    uv_fs_t fsync_req;
    bool fsync_busy;
    bool dirty; /* written since the last fsync started */
    bool timer_closed;
    bool closing;
    char *buf;
    size_t len, cap;
    log_ratelimit rl;
    /* The bounds (dhcp6_leasefile_set_limits). Without `bindings` the file
     * cannot be rewritten, so it is not bounded. */
    const dhcp6_bindings *bindings;
    size_t max_bytes, max_buffer;
    uint64_t size;     /* bytes in the file */
    size_t live_bytes; /* the last compaction's size */
    bool resync;       /* records were dropped: rewrite from the bindings */
    uint64_t dropped;  /* records not buffered */
};

static void finalize(dhcp6_leasefile *lf)
{
    close(lf->fd);
    free(lf->buf);
    free(lf->path);
    free(lf);
}

/* Everything that may still call back into `lf` is done. */
static bool idle(const dhcp6_leasefile *lf)
{
    return lf->timer_closed && !lf->fsync_busy && !lf->compact_busy;
}

/* The most the file may hold. A file of live bindings alone that is bigger
 * than half of max_bytes gets twice its size, or every append would start a
 * compaction that frees nothing. */
static uint64_t size_limit(const dhcp6_leasefile *lf)
{
    uint64_t live2 = 2 * (uint64_t)lf->live_bytes;
    return live2 > lf->max_bytes ? live2 : lf->max_bytes;
}

/* The buffer cannot simply be appended: the file would pass its cap, or
 * records were dropped. The file is rewritten from the bindings instead. */
static bool must_rewrite(const dhcp6_leasefile *lf)
{
    return lf->bindings && (lf->resync || lf->size + lf->len > size_limit(lf));
}

/* Writes the buffer with one write(2) (O_APPEND). A short or failed write
 * keeps what was not written for the next round. */
static int write_buffer(dhcp6_leasefile *lf)
{
    if (lf->len == 0) {
        return 0;
    }
    int r = fileio_write_all(lf->fd, lf->buf, lf->len);
    if (r < 0) {
        if (log_ratelimit_ok(&lf->rl, uv_now(lf->loop), NULL)) {
            log_error("dhcp6 lease file write failed err=%s", errstr(r));
        }
        return r;
    }
    lf->size += lf->len;
    lf->len = 0;
    lf->dirty = true;
    return 0;
}

/* Points `fd` at the file now at `path` (after it was replaced). */
static int reopen(dhcp6_leasefile *lf)
{
    int fd = open(lf->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    close(lf->fd);
    lf->fd = fd;
    return 0;
}

/* Rewrites the file from the bindings. The buffer's records are older than
 * the snapshot, which holds their effect: they are dropped, not written. */
static void start_rewrite(dhcp6_leasefile *lf, bool sync);

static void on_fsync(uv_fs_t *req)
{
    dhcp6_leasefile *lf = req->data;
    if (req->result < 0 && log_ratelimit_ok(&lf->rl, uv_now(lf->loop), NULL)) {
        log_error("dhcp6 lease file fsync failed err=%s", uv_strerror((int)req->result));
    }
    uv_fs_req_cleanup(req);
    lf->fsync_busy = false;
    if (lf->closing && idle(lf)) {
        finalize(lf);
    }
}

static void on_timer(uv_timer_t *t)
{
    dhcp6_leasefile *lf = t->data;
    if (lf->compact_busy) {
        return; /* the old file is being replaced: keep buffering */
    }
    if (must_rewrite(lf)) {
        start_rewrite(lf, false);
        return;
    }
    write_buffer(lf);
    if (lf->dirty && !lf->fsync_busy) {
        lf->dirty = false;
        lf->fsync_req.data = lf;
        if (uv_fs_fsync(lf->loop, &lf->fsync_req, lf->fd, on_fsync) == 0) {
            lf->fsync_busy = true;
        } else {
            lf->dirty = true;
        }
    }
}

int dhcp6_leasefile_open(uv_loop_t *loop, const char *path, uint64_t interval_ms,
                         dhcp6_leasefile **ret)
{
    dhcp6_leasefile *lf = calloc(1, sizeof(*lf));
    if (!lf) {
        return -ENOMEM;
    }
    lf->loop = loop;
    lf->rl = (log_ratelimit)LOG_RATELIMIT_INIT(60000, 5);
    lf->max_buffer = LEASEFILE_MAX_BUFFER;
    lf->max_bytes = DHCP6_LEASEFILE_DEFAULT_MAX_BYTES;
    lf->path = strdup(path);
    lf->fd = lf->path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
    struct stat st;
    if (lf->fd < 0 || fstat(lf->fd, &st) < 0) {
        int r = lf->path ? negative_errno() : -ENOMEM;
        if (lf->fd >= 0) {
            close(lf->fd);
        }
        free(lf->path);
        free(lf);
        return r;
    }
    lf->size = (uint64_t)st.st_size;
    lf->live_bytes = (size_t)st.st_size; /* opened right after a compaction */
    uv_timer_init(loop, &lf->timer);
    lf->timer.data = lf;
    uv_timer_start(&lf->timer, on_timer, interval_ms, interval_ms);
    *ret = lf;
    return 0;
}

void dhcp6_leasefile_set_limits(dhcp6_leasefile *lf, const dhcp6_bindings *t, size_t max_bytes,
                                size_t max_buffer)
{
    lf->bindings = t;
    lf->max_bytes = max_bytes ? max_bytes : DHCP6_LEASEFILE_DEFAULT_MAX_BYTES;
    lf->max_buffer = max_buffer ? max_buffer : LEASEFILE_MAX_BUFFER;
    if (lf->max_buffer < DHCP6_LEASEFILE_MAX_LINE) {
        lf->max_buffer = DHCP6_LEASEFILE_MAX_LINE;
    }
}

/* Makes room for one more record: grows the buffer up to max_buffer, else
 * writes it out if that may be done now. False when there is no room. */
static bool make_room(dhcp6_leasefile *lf)
{
    if (lf->cap - lf->len >= DHCP6_LEASEFILE_MAX_LINE) {
        return true;
    }
    if (lf->cap < lf->max_buffer) {
        size_t cap = lf->cap ? lf->cap * 2 : 16 * 1024;
        if (cap > lf->max_buffer) {
            cap = lf->max_buffer;
        }
        char *grown = realloc(lf->buf, cap);
        if (grown) {
            lf->buf = grown;
            lf->cap = cap;
            if (lf->cap - lf->len >= DHCP6_LEASEFILE_MAX_LINE) {
                return true;
            }
        }
    }
    /* Full. Writing now is fine unless the file is being replaced (the
     * records would go to the old one, and be lost with it) or would pass
     * its cap; then the timer rewrites the file from the bindings. */
    if (!lf->compact_busy && !must_rewrite(lf) && write_buffer(lf) == 0) {
        return lf->cap - lf->len >= DHCP6_LEASEFILE_MAX_LINE;
    }
    return false;
}

void dhcp6_leasefile_sink(void *userdata, const dhcp6_binding *b, bool removed)
{
    dhcp6_leasefile *lf = userdata;
    if (!make_room(lf)) {
        lf->dropped++;
        if (lf->bindings) {
            /* The binding is in memory; the rewrite will carry it. */
            lf->resync = true;
        } else if (log_ratelimit_ok(&lf->rl, uv_now(lf->loop), NULL)) {
            log_error("dhcp6 lease file: buffer full, a change is not recorded");
        }
        return;
    }
    lf->len += dhcp6_leasefile_format(b, removed, lf->buf + lf->len, lf->cap - lf->len);
    lf->appended++;
}

uint64_t dhcp6_leasefile_size(const dhcp6_leasefile *lf)
{
    return lf->size;
}

size_t dhcp6_leasefile_buffer_capacity(const dhcp6_leasefile *lf)
{
    return lf->cap;
}

size_t dhcp6_leasefile_buffered(const dhcp6_leasefile *lf)
{
    return lf->len;
}

uint64_t dhcp6_leasefile_dropped(const dhcp6_leasefile *lf)
{
    return lf->dropped;
}

uint64_t dhcp6_leasefile_appended(const dhcp6_leasefile *lf)
{
    return lf->appended;
}

bool dhcp6_leasefile_compacting(const dhcp6_leasefile *lf)
{
    return lf->compact_busy;
}

static void compact_work(uv_work_t *req)
{
    dhcp6_leasefile *lf = req->data;
    lf->compact_result = fileio_write_atomic(lf->path, lf->compact_buf, lf->compact_len, 0600);
}

static void compact_done(uv_work_t *req, int status)
{
    dhcp6_leasefile *lf = req->data;
    free(lf->compact_buf);
    lf->compact_buf = NULL;
    lf->compact_busy = false;
    int r = status < 0 ? status : lf->compact_result;
    if (r == 0) {
        /* The snapshot replaced the file: append to the new one from now on.
         * Lines buffered meanwhile are newer than the snapshot. */
        r = reopen(lf);
        if (r == 0) {
            lf->size = lf->compact_len;
            lf->live_bytes = lf->compact_len;
        }
    }
    if (r < 0) {
        /* The old file is intact (atomic replace) or, if only the reopen
         * failed, the old fd still names the replaced file. Either way the
         * records dropped for the snapshot are not in the file we append
         * to: rewrite again at the next tick. */
        lf->resync = lf->bindings != NULL;
        if (log_ratelimit_ok(&lf->rl, uv_now(lf->loop), NULL)) {
            log_error("dhcp6 lease file compaction failed path=%s err=%s", lf->path, errstr(r));
        }
    } else {
        log_info("dhcp6 lease file compacted path=%s bytes=%zu", lf->path, lf->compact_len);
    }
    if (lf->closing) {
        /* close() waited for us to flush into the file that is now current. */
        r = dhcp6_leasefile_flush_sync(lf);
        if (r < 0) {
            log_error("dhcp6 lease file: final flush failed err=%s", errstr(r));
        }
        if (idle(lf)) {
            finalize(lf);
        }
    }
}

static int compact_async(dhcp6_leasefile *lf, const dhcp6_bindings *t)
{
    char *buf;
    size_t len;
    int r = format_live(t, &buf, &len);
    if (r < 0) {
        return r;
    }
    lf->compact_buf = buf;
    lf->compact_len = len;
    lf->compact_req.data = lf;
    r = uv_queue_work(lf->loop, &lf->compact_req, compact_work, compact_done);
    if (r < 0) {
        free(lf->compact_buf);
        lf->compact_buf = NULL;
        return r;
    }
    /* The snapshot holds the effect of every buffered record. */
    lf->len = 0;
    lf->resync = false;
    lf->compact_busy = true;
    lf->appended = 0;
    return 0;
}

int dhcp6_leasefile_compact_async(dhcp6_leasefile *lf, const dhcp6_bindings *t)
{
    if (lf->compact_busy || lf->closing) {
        return -EBUSY;
    }
    return compact_async(lf, t);
}

/* Rewrites the file from the bindings, on the thread pool or (closing,
 * flushing) right here. */
static void start_rewrite(dhcp6_leasefile *lf, bool sync)
{
    int r;
    if (sync) {
        size_t len = 0;
        r = write_live(lf->path, lf->bindings, &len);
        if (r == 0) {
            r = reopen(lf);
        }
        if (r == 0) {
            lf->len = 0;
            lf->resync = false;
            lf->appended = 0;
            lf->size = len;
            lf->live_bytes = len;
            lf->dirty = false; /* fileio_write_atomic() fsynced it */
        }
    } else {
        r = compact_async(lf, lf->bindings);
    }
    if (r < 0 && log_ratelimit_ok(&lf->rl, uv_now(lf->loop), NULL)) {
        log_error("dhcp6 lease file rewrite failed path=%s err=%s", lf->path, errstr(r));
    }
}

int dhcp6_leasefile_flush_sync(dhcp6_leasefile *lf)
{
    if (lf->compact_busy) {
        return -EBUSY; /* compact_done() flushes into the new file */
    }
    if (must_rewrite(lf)) {
        start_rewrite(lf, true);
        return lf->resync || lf->len > 0 ? -EIO : 0;
    }
    int r = write_buffer(lf);
    if (r < 0) {
        return r;
    }
    if (fsync(lf->fd) < 0) {
        return negative_errno();
    }
    lf->dirty = false;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    dhcp6_leasefile *lf = h->data;
    lf->timer_closed = true;
    if (idle(lf)) {
        finalize(lf);
    }
}

void dhcp6_leasefile_close(dhcp6_leasefile *lf)
{
    if (!lf) {
        return;
    }
    /* During a compaction the current fd may name the file being replaced:
     * the final flush then happens in compact_done(), into the new file. */
    if (!lf->compact_busy) {
        int r = dhcp6_leasefile_flush_sync(lf);
        if (r < 0) {
            log_error("dhcp6 lease file: final flush failed err=%s", errstr(r));
        }
    }
    lf->closing = true;
    uv_close((uv_handle_t *)&lf->timer, on_timer_closed);
}
