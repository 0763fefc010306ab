/* The event journal: segment files of CRC-framed records (journal.h has the
 * format and the policies). Cleanup style: _cleanup_ throughout, including
 * the mutexes (LOCK_GUARD). */
#include "uplink/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cursor.h"
#include "fileio.h"
#include "hex.h"
#include "uplink/journal-internal.h"
#include "log.h"
#include "parse.h"
#include "timeutil.h"
#include "util.h"

/* A journal is cut into about this many segments: dropping the oldest for
 * space loses 1/32 of it, and the in-memory index stays small. */
#define SEGMENTS_TARGET   32u
#define SEGMENT_MIN_BYTES 4096u
#define SEGMENT_NAME_LEN  24 /* 20 digits + ".seg" */
#define ACK_FILE          "ack"
#define ACK_FILE_MAX      64u
#define ID_FILE           "id"
#define JOURNAL_ID_BYTES  16u
/* Seqs, names and ack points past this are damage, not history: 2^63 events
 * are centuries at a million a second, and the bound keeps every sum below
 * from wrapping. */
#define SEQ_MAX (UINT64_MAX / 2)
/* Ranges of seqs taken back by recover_locked() remembered one by one for
 * journal_seq_durable(); older ones merge into one range (see lost_note()). */
#define LOST_RANGES 8u

/* ---- Framing (journal-internal.h) --------------------------------------- */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        }
        crc32c_table[i] = c;
    }
}

/* Our own CRC32C rather than zlib's crc32 (CRC-32/IEEE): twenty lines instead
 * of a new link dependency for the agent, and the Castagnoli polynomial keeps
 * a larger Hamming distance than IEEE at record sizes (Koopman 2002), which is
 * why iSCSI, ext4 metadata and LevelDB/RocksDB logs use it. A byte table is
 * fast enough: open checks 64 MiB in well under a second. */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    const uint8_t *p = buf;
    crc = ~crc;
    while (len-- > 0) {
        crc = (crc >> 8) ^ crc32c_table[(crc ^ *p++) & 0xffu];
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void journal_segment_header_build(uint64_t first_seq, uint8_t *buf)
{
    memcpy(buf, JOURNAL_SEGMENT_MAGIC, 8);
    put_be64(buf + 8, first_seq);
}

int journal_segment_header_parse(const uint8_t *buf, size_t len, uint64_t *ret_first_seq)
{
    cursor c = cursor_make(buf, len);
    const uint8_t *magic;
    uint64_t first;
    if (cursor_read_ref(&c, 8, &magic) < 0 || memcmp(magic, JOURNAL_SEGMENT_MAGIC, 8) != 0 ||
        cursor_read_be64(&c, &first) < 0 || first == 0) {
        return -EBADMSG;
    }
    *ret_first_seq = first;
    return 0;
}

/* The CRC covers the length, the seq and the payload: a flipped length bit
 * is caught by the CRC, not only by luck in what follows. */
static uint32_t record_crc(const uint8_t *hdr, const uint8_t *payload, size_t payload_len)
{
    uint32_t crc = journal_crc32c(0, hdr, 4);
    crc = journal_crc32c(crc, hdr + 8, 8);
    return journal_crc32c(crc, payload, payload_len);
}

void journal_record_header_build(uint64_t seq, const uint8_t *payload, size_t payload_len,
                                 uint8_t *hdr)
{
    RB_ASSERT(payload_len > 0 && payload_len <= JOURNAL_MAX_PAYLOAD);
    put_be32(hdr, (uint32_t)payload_len);
    put_be64(hdr + 8, seq);
    put_be32(hdr + 4, record_crc(hdr, payload, payload_len));
}

int journal_record_next(const uint8_t *buf, size_t len, size_t *offset, uint64_t *ret_seq,
                        const uint8_t **ret_payload, size_t *ret_payload_len)
{
    if (*offset > len) {
        return -EBADMSG;
    }
    if (*offset == len) {
        return 0;
    }
    cursor c = cursor_make(buf, len);
    c.off = *offset;
    const uint8_t *hdr = cursor_pos(&c);
    uint32_t plen, crc;
    uint64_t seq;
    const uint8_t *payload;
    if (cursor_read_be32(&c, &plen) < 0 || cursor_read_be32(&c, &crc) < 0 ||
        cursor_read_be64(&c, &seq) < 0) {
        return -EBADMSG;
    }
    /* Length checked before it is used: a damaged one must not send us
     * reading far past the record. */
    if (plen == 0 || plen > JOURNAL_MAX_PAYLOAD || cursor_read_ref(&c, plen, &payload) < 0) {
        return -EBADMSG;
    }
    if (record_crc(hdr, payload, plen) != crc || seq == 0) {
        return -EBADMSG;
    }
    *offset = c.off;
    *ret_seq = seq;
    *ret_payload = payload;
    *ret_payload_len = plen;
    return 1;
}

/* ---- The journal --------------------------------------------------------- */

typedef struct seq_range {
    uint64_t first, last; /* last 0: empty */
} seq_range;

typedef struct segment {
    uint64_t first; /* seq of record 0, also the file's name */
    uint64_t n;     /* records; their seqs are first .. first + n - 1 */
    uint64_t bytes; /* file size: header and records */
    uint32_t *offs; /* offset of each record */
    size_t offs_cap;
    int fd;
} segment;

struct journal {
    pthread_mutex_t lock;     /* everything below */
    pthread_mutex_t ack_lock; /* one journal_ack() at a time: ack files in order */
    char *ack_path;
    int dir_fd;
    uint64_t max_bytes, max_events;
    uint64_t seg_bytes, seg_events;
    bool sync_each_append;

    segment *segs; /* oldest first */
    size_t n_segs, segs_cap;
    uint64_t total_bytes, total_events;

    uint64_t next_seq;
    uint64_t durable_seq;
    uint64_t acked;
    uint64_t acked_persisted;
    bool dir_dirty;   /* a segment was created since the last directory fsync */
    uint64_t dir_gen; /* segments created, to tell whether a sync covered them */
    /* After a failed fsync (or a partial record that could not be cut):
     * what follows durable_seq on disk is unknown until recover_locked()
     * takes it back. Appends and syncs try that first. */
    int broken;
    /* The seqs recover_locked() took back, oldest first: a waiter on one
     * event asks by seq whether it is durable, because the fsync that lost
     * it may have been another append's. Older ranges merge into lost_old,
     * which then also covers the durable seqs between them: a waiter that
     * old is told "lost" (it retries) rather than "durable" wrongly. */
    seq_range lost[LOST_RANGES];
    size_t n_lost;
    seq_range lost_old;

    uint64_t dropped_total;
    uint64_t damaged_total;

    char id[2 * JOURNAL_ID_BYTES + 1];

    uint8_t scratch[JOURNAL_RECORD_HEADER + JOURNAL_MAX_PAYLOAD];
};

static pthread_mutex_t *lock(pthread_mutex_t *m)
{
    pthread_mutex_lock(m);
    return m;
}

static void unlockp(pthread_mutex_t **m)
{
    if (*m) {
        pthread_mutex_unlock(*m);
    }
}
#define GUARD_NAME_(n) guard_##n
#define GUARD_NAME(n)  GUARD_NAME_(n)
/* Holds m until the end of the enclosing block. */
#define LOCK_GUARD(m)                                                                              \
    _cleanup_(unlockp) __attribute__((unused)) pthread_mutex_t *GUARD_NAME(__COUNTER__) = lock(m)

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void segment_name(uint64_t first, char buf[SEGMENT_NAME_LEN + 1])
{
    snprintf(buf, SEGMENT_NAME_LEN + 1, "%020" PRIu64 ".seg", first);
}

/* Exactly 20 digits and ".seg": ignore anything else in the directory. */
static bool segment_name_parse(const char *name, uint64_t *ret)
{
    if (strlen(name) != SEGMENT_NAME_LEN || !streq(name + 20, ".seg")) {
        return false;
    }
    char digits[21];
    memcpy(digits, name, 20);
    digits[20] = '\0';
    if (strspn(digits, "0123456789") != 20) {
        return false;
    }
    return parse_u64(digits, 1, SEQ_MAX, ret) == 0;
}

static uint64_t segment_last(const segment *g)
{
    return g->first + g->n - 1; /* only meaningful when n > 0 */
}

static int segment_push_off(segment *g, uint64_t off)
{
    if (g->n == g->offs_cap) {
        size_t cap = g->offs_cap ? g->offs_cap * 2 : 64;
        uint32_t *o = reallocarray(g->offs, cap, sizeof(*o));
        if (!o) {
            return -ENOMEM;
        }
        g->offs = o;
        g->offs_cap = cap;
    }
    RB_ASSERT(off <= UINT32_MAX);
    g->offs[g->n] = (uint32_t)off;
    return 0;
}

static void segment_clear(segment *g)
{
    if (g->fd >= 0) {
        close(g->fd);
    }
    free(g->offs);
    *g = (segment){ .fd = -1 };
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return negative_errno();
        }
        if (n == 0) {
            return -ENOSPC;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int pread_all(int fd, void *data, size_t len, uint64_t off)
{
    uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return negative_errno();
        }
        if (n == 0) {
            return -EIO; /* the file is shorter than our index says */
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Unacknowledged events in g. */
static uint64_t segment_pending(const journal *j, const segment *g)
{
    if (g->n == 0 || segment_last(g) <= j->acked) {
        return 0;
    }
    return segment_last(g) - max_u64(j->acked, g->first - 1);
}

/* Closes and unlinks segment i. Unlinking is best effort and not fsync'ed: a
 * segment that comes back after a crash was acknowledged or dropped, and is
 * at worst sent again. */
static void segment_remove(journal *j, size_t i)
{
    segment *g = &j->segs[i];
    char name[SEGMENT_NAME_LEN + 1];
    segment_name(g->first, name);
    if (unlinkat(j->dir_fd, name, 0) < 0) {
        log_debug("journal: unlink %s: %s", name, strerror(errno));
    }
    j->total_bytes -= g->bytes;
    j->total_events -= g->n;
    segment_clear(g);
    memmove(&j->segs[i], &j->segs[i + 1], (j->n_segs - i - 1) * sizeof(*g));
    j->n_segs--;
}

static int segs_reserve(journal *j)
{
    if (j->n_segs < j->segs_cap) {
        return 0;
    }
    size_t cap = j->segs_cap ? j->segs_cap * 2 : 8;
    segment *s = reallocarray(j->segs, cap, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    j->segs = s;
    j->segs_cap = cap;
    return 0;
}

/* The segment appends go to: the newest, if its seqs run up to next_seq. */
static segment *active_segment(journal *j)
{
    if (j->n_segs == 0) {
        return NULL;
    }
    segment *g = &j->segs[j->n_segs - 1];
    return g->first + g->n == j->next_seq ? g : NULL;
}

static void lost_note(journal *j, uint64_t first, uint64_t last)
{
    if (j->n_lost == LOST_RANGES) {
        if (j->lost_old.last == 0) {
            j->lost_old.first = j->lost[0].first;
        }
        j->lost_old.last = j->lost[0].last;
        memmove(j->lost, j->lost + 1, (LOST_RANGES - 1) * sizeof(*j->lost));
        j->n_lost--;
    }
    j->lost[j->n_lost++] = (seq_range){ .first = first, .last = last };
}

static bool in_range(const seq_range *r, uint64_t seq)
{
    return r->last != 0 && seq >= r->first && seq <= r->last;
}

/* After a failed fsync the kernel may have dropped the dirty pages and a
 * retried fsync would report success (the error is reported once), so what
 * followed the last good sync is unknown on disk: a full record, a part of
 * one, nothing. Those records were never handed out (peek stops at
 * durable_seq), so they are taken back, like a power cut would lose them:
 * the newest segment (only it can hold undurable records) is cut to its
 * durable records and that is made durable. Their seqs are not given again
 * in this run (the next append starts a segment at next_seq), so an event
 * recorded anew, such as an installer's retry, is sent once. Until this
 * works, the journal refuses appends with the error that broke it. */
static int recover_locked(journal *j)
{
    if (j->broken == 0) {
        return 0;
    }
    if (j->n_segs > 0) {
        segment *g = &j->segs[j->n_segs - 1];
        uint64_t keep = 0; /* durable records in g */
        if (g->n > 0 && j->durable_seq >= g->first) {
            keep = min_u64(j->durable_seq - g->first + 1, g->n);
        }
        uint64_t bytes = keep < g->n ? g->offs[keep] : g->bytes;
        if (ftruncate(g->fd, (off_t)bytes) < 0 || fsync(g->fd) < 0) {
            return j->broken;
        }
        j->total_bytes -= g->bytes - bytes;
        j->total_events -= g->n - keep;
        g->n = keep;
        g->bytes = bytes;
    }
    /* The segment's name may not be durable either (a failed directory
     * fsync, or a failed sync right after the segment was started). */
    if (fsync(j->dir_fd) < 0) {
        return j->broken;
    }
    j->dir_dirty = false;
    if (j->next_seq - 1 > j->durable_seq) {
        lost_note(j, j->durable_seq + 1, j->next_seq - 1);
    }
    j->durable_seq = j->next_seq - 1;
    j->broken = 0;
    return 0;
}

static int sync_locked(journal *j)
{
    int r = recover_locked(j);
    if (r < 0) {
        return r;
    }
    if (j->durable_seq + 1 < j->next_seq) {
        /* Only the newest segment can hold undurable records: a segment is
         * synced before the next one is created. */
        segment *g = &j->segs[j->n_segs - 1];
        if (fdatasync(g->fd) < 0) {
            /* See recover_locked(). */
            j->broken = negative_errno();
            return j->broken;
        }
    }
    if (j->dir_dirty) {
        if (fsync(j->dir_fd) < 0) {
            j->broken = negative_errno();
            return j->broken;
        }
        j->dir_dirty = false;
    }
    j->durable_seq = j->next_seq - 1;
    return 0;
}

static int segment_create(journal *j, uint64_t first)
{
    char name[SEGMENT_NAME_LEN + 1];
    uint8_t hdr[JOURNAL_SEGMENT_HEADER];
    int r = segs_reserve(j);
    if (r < 0) {
        return r;
    }
    segment_name(first, name);
    /* O_TRUNC: a file of this name can only be a leftover of a failed
     * creation (a live one would be the active segment). */
    _cleanup_close_ int fd = openat(j->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return negative_errno();
    }
    journal_segment_header_build(first, hdr);
    r = pwrite_all(fd, hdr, sizeof(hdr), 0);
    if (r < 0) {
        (void)unlinkat(j->dir_fd, name, 0);
        return r;
    }
    j->segs[j->n_segs++] = (segment){ .first = first, .bytes = sizeof(hdr), .fd = TAKE_FD(fd) };
    j->total_bytes += sizeof(hdr);
    j->dir_dirty = true;
    j->dir_gen++;
    return 0;
}

/* Drops the oldest segments (never the active one) until a record of
 * rec_bytes fits. Returns the unacknowledged events dropped. */
static uint64_t make_room(journal *j, uint64_t rec_bytes, uint64_t rec_events)
{
    uint64_t dropped = 0;
    while (j->n_segs > 1 && (j->total_bytes + rec_bytes > j->max_bytes ||
                             j->total_events + rec_events > j->max_events)) {
        dropped += segment_pending(j, &j->segs[0]);
        segment_remove(j, 0);
    }
    j->dropped_total += dropped;
    return dropped;
}

/* Only reads ack_path, which never changes: callable without the lock. */
static int ack_write(const journal *j, uint64_t acked)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", acked);
    RB_ASSERT(n > 0 && (size_t)n < sizeof(buf));
    return fileio_write_atomic(j->ack_path, buf, (size_t)n, 0600);
}

/* The oldest segment is wholly acknowledged and not the newest, which is
 * kept: it holds the highest seq, which the next seq continues from. */
static bool trim_due(const journal *j)
{
    return j->n_segs > 1 && segment_last(&j->segs[0]) <= j->acked;
}

static void trim_through(journal *j, uint64_t acked)
{
    while (j->n_segs > 1 && segment_last(&j->segs[0]) <= acked) {
        segment_remove(j, 0);
    }
}

/* ---- Open ---------------------------------------------------------------- */

static void munmapp(void **p, size_t len)
{
    if (*p && *p != MAP_FAILED) {
        munmap(*p, len);
    }
}

/* Loads segment `first` into g: indexes its good records, cuts a damaged
 * tail, and counts it. *ret_end is past every seq the file could have held:
 * its name, its good records and what a damaged tail could have held. */
static int segment_load(journal *j, uint64_t first, segment *g, uint64_t *ret_end)
{
    char name[SEGMENT_NAME_LEN + 1];
    struct stat st;
    int r;

    *g = (segment){ .first = first, .fd = -1 };
    segment_name(first, name);
    _cleanup_close_ int fd = openat(j->dir_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return negative_errno();
    }
    if (fstat(fd, &st) < 0) {
        return negative_errno();
    }
    if (!S_ISREG(st.st_mode)) {
        return -EBADMSG;
    }
    /* A segment never grows past seg_bytes + one record; a huge file was not
     * written by us. Reading stays bounded by the index anyway (uint32). */
    if ((uint64_t)st.st_size > UINT32_MAX) {
        return -EFBIG;
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            return negative_errno();
        }
    }

    uint64_t hdr_first = 0;
    size_t good = 0;
    bool header_ok = journal_segment_header_parse(map, size, &hdr_first) == 0 && hdr_first == first;
    if (header_ok) {
        good = JOURNAL_SEGMENT_HEADER;
        for (;;) {
            size_t off = good;
            uint64_t seq;
            const uint8_t *payload;
            size_t plen;
            r = journal_record_next(map, size, &off, &seq, &payload, &plen);
            /* Seqs run on without a gap inside a segment; anything else is
             * damage as much as a bad CRC is. */
            if (r <= 0 || seq != first + g->n) {
                break;
            }
            r = segment_push_off(g, good);
            if (r < 0) {
                munmapp(&map, size);
                free(g->offs);
                g->offs = NULL;
                return r;
            }
            g->n++;
            good = off;
        }
    }
    munmapp(&map, size);

    uint64_t records_from = header_ok ? good : JOURNAL_SEGMENT_HEADER;
    uint64_t tail = size > records_from ? size - records_from : 0;
    if (good < size) {
        /* Cut at the last good record so the next open is clean and appends
         * land after good data. A torn header leaves an empty file. */
        if (ftruncate(fd, (off_t)good) < 0 || (good > 0 && fdatasync(fd) < 0)) {
            r = negative_errno();
            free(g->offs);
            g->offs = NULL;
            return r;
        }
        j->damaged_total++;
        log_debug("journal: %s damaged at offset %zu of %zu, cut", name, good, size);
    }
    g->bytes = good;
    g->fd = TAKE_FD(fd);
    /* Records are at least JOURNAL_MIN_RECORD bytes, so the cut tail held at
     * most this many seqs; skipping them all means no seq that might have
     * been sent is ever given to another event. */
    *ret_end = first + g->n + (tail + JOURNAL_MIN_RECORD - 1) / JOURNAL_MIN_RECORD;
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(int dir_fd, uint64_t **ret, size_t *ret_n)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int r = negative_errno();
        close(fd);
        return r;
    }
    _cleanup_free_ uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int r = 0;
    errno = 0;
    while ((de = readdir(d))) {
        uint64_t first;
        if (!segment_name_parse(de->d_name, &first)) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *nv = reallocarray(v, ncap, sizeof(*nv));
            if (!nv) {
                r = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = first;
        errno = 0;
    }
    if (r == 0 && errno != 0) {
        r = negative_errno();
    }
    closedir(d);
    if (r < 0) {
        return r;
    }
    if (n > 0) {
        qsort(v, n, sizeof(*v), u64_cmp);
    }
    *ret = TAKE_PTR(v);
    *ret_n = n;
    return 0;
}

static int read_ack(const char *path, uint64_t *ret)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int r = fileio_read_all(path, ACK_FILE_MAX, (void **)&buf, &len);
    if (r == -ENOENT) {
        *ret = 0;
        return 0;
    }
    if (r < 0) {
        return r;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        buf[len - 1] = '\0';
    }
    /* A damaged ack file costs a resend, not the journal. */
    if (parse_u64(buf, 0, SEQ_MAX, ret) < 0) {
        log_debug("journal: %s unreadable, resending from the oldest event", path);
        *ret = 0;
    }
    return 0;
}

static int config_apply(journal *j, const journal_config *cfg)
{
    j->max_bytes = cfg && cfg->max_bytes ? cfg->max_bytes : JOURNAL_DEFAULT_MAX_BYTES;
    j->max_events = cfg && cfg->max_events ? cfg->max_events : JOURNAL_DEFAULT_MAX_EVENTS;
    j->sync_each_append = cfg && cfg->sync_each_append;
    if (j->max_bytes < JOURNAL_MIN_MAX_BYTES || j->max_bytes > JOURNAL_MAX_MAX_BYTES ||
        j->max_events > JOURNAL_MAX_MAX_EVENTS) {
        return -EINVAL;
    }
    j->seg_bytes = max_u64(j->max_bytes / SEGMENTS_TARGET, SEGMENT_MIN_BYTES);
    j->seg_events = max_u64(j->max_events / SEGMENTS_TARGET, 1);
    return 0;
}

static int journal_load(journal *j)
{
    _cleanup_free_ uint64_t *names = NULL;
    size_t n_names = 0;
    int r = read_ack(j->ack_path, &j->acked);
    if (r < 0) {
        return r;
    }
    j->acked_persisted = j->acked;
    r = list_segments(j->dir_fd, &names, &n_names);
    if (r < 0) {
        return r;
    }

    uint64_t end = 1;      /* past every seq seen so far */
    uint64_t tail_end = 1; /* past what the newest segment could have held */
    for (size_t i = 0; i < n_names; i++) {
        segment g;
        uint64_t seg_end;
        r = segs_reserve(j);
        if (r < 0) {
            return r;
        }
        r = segment_load(j, names[i], &g, &seg_end);
        if (r == -EBADMSG || r == -EFBIG) {
            continue; /* not a file we wrote: leave it alone */
        }
        if (r < 0) {
            return r;
        }
        /* Seqs increase across segments; a segment overlapping the previous
         * one was not written by us in this order: drop it. */
        if (j->n_segs > 0 && g.first < j->segs[j->n_segs - 1].first + j->segs[j->n_segs - 1].n) {
            j->damaged_total++;
            j->segs[j->n_segs++] = g;
            j->total_bytes += g.bytes;
            j->total_events += g.n;
            segment_remove(j, j->n_segs - 1);
            continue;
        }
        /* A damaged tail matters only in the newest segment: an older one's
         * lost seqs are all below the next segment's first. */
        end = max_u64(end, g.first + g.n);
        tail_end = seg_end;
        j->segs[j->n_segs++] = g;
        j->total_bytes += g.bytes;
        j->total_events += g.n;
    }
    j->next_seq = max_u64(max_u64(end, tail_end), j->acked + 1);

    /* Empty segments are leftovers (a creation cut short, a header torn):
     * keep only an empty newest one that appends can continue. */
    for (size_t i = 0; i < j->n_segs;) {
        segment *g = &j->segs[i];
        bool keep = g->n > 0 || (i == j->n_segs - 1 && g->first == j->next_seq &&
                                 g->bytes == JOURNAL_SEGMENT_HEADER);
        if (keep) {
            i++;
        } else {
            segment_remove(j, i);
        }
    }

    /* Whatever the last run wrote may still be only in the page cache (a
     * process crash keeps it there): make it durable before any of it can
     * be handed out. */
    for (size_t i = 0; i < j->n_segs; i++) {
        if (fdatasync(j->segs[i].fd) < 0) {
            return negative_errno();
        }
    }
    if (fsync(j->dir_fd) < 0) {
        return negative_errno();
    }
    j->durable_seq = j->next_seq - 1;

    if (trim_due(j)) {
        /* The ack point first, so a restart does not resend what is gone. */
        r = ack_write(j, j->acked);
        if (r < 0) {
            return r;
        }
        j->acked_persisted = j->acked;
        trim_through(j, j->acked);
    }
    /* A smaller limit than the last run's applies at once. */
    make_room(j, 0, 0);
    return 0;
}

/* The id file: read it, or draw and write a new one (a new journal). */
static int id_load(journal *j, const char *dir)
{
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, ID_FILE) < 0) {
        return -ENOMEM;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, 64, (void **)&text, &len);
    uint8_t raw[JOURNAL_ID_BYTES];
    if (r >= 0 && len >= 2 * JOURNAL_ID_BYTES) {
        text[2 * JOURNAL_ID_BYTES] = '\0';
        if (hex_decode(text, raw, sizeof(raw)) == 0) {
            hex_encode(raw, sizeof(raw), j->id);
            return 0;
        }
    }
    if (r < 0 && r != -ENOENT) {
        return r;
    }
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        return -EIO;
    }
    hex_encode(raw, sizeof(raw), j->id);
    char line[2 * JOURNAL_ID_BYTES + 2];
    snprintf(line, sizeof(line), "%s\n", j->id);
    return fileio_write_atomic(path, line, strlen(line), 0600);
}

const char *journal_id(const journal *j)
{
    return j->id;
}

int journal_open(const char *dir, const journal_config *cfg, journal **ret)
{
    _cleanup_(journal_freep) journal *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->dir_fd = -1;
    int r = config_apply(j, cfg);
    if (r < 0) {
        return r;
    }
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->ack_lock, NULL);
    size_t plen = strlen(dir) + sizeof("/" ACK_FILE);
    j->ack_path = malloc(plen);
    if (!j->ack_path) {
        return -ENOMEM;
    }
    snprintf(j->ack_path, plen, "%s/%s", dir, ACK_FILE);

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return negative_errno();
    }
    j->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dir_fd < 0) {
        return negative_errno();
    }
    r = journal_load(j);
    if (r < 0) {
        return r;
    }
    r = id_load(j, dir);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(j);
    return 0;
}

journal *journal_free(journal *j)
{
    if (!j) {
        return NULL;
    }
    if (j->dir_fd >= 0) {
        /* Best effort: a lost ack point means a resend, lost records were
         * never durable and so never sent. */
        (void)sync_locked(j);
        if (j->acked != j->acked_persisted) {
            (void)ack_write(j, j->acked);
        }
        close(j->dir_fd);
        pthread_mutex_destroy(&j->lock);
        pthread_mutex_destroy(&j->ack_lock);
    }
    for (size_t i = 0; i < j->n_segs; i++) {
        segment_clear(&j->segs[i]);
    }
    free(j->segs);
    free(j->ack_path);
    free(j);
    return NULL;
}

/* ---- Append, sync, ack ----------------------------------------------------- */

int journal_append(journal *j, const Rackboot__V1__Event *ev, uint64_t *ret_seq)
{
    LOCK_GUARD(&j->lock);
    int r = recover_locked(j);
    if (r < 0) {
        return r;
    }
    if (j->next_seq >= UINT64_MAX) {
        return -EOVERFLOW;
    }

    Rackboot__V1__Event e = *ev;
    e.seq = j->next_seq;
    if (e.time_unix_ms == 0) {
        e.time_unix_ms = now_realtime_ms();
    }
    uint8_t *payload = j->scratch + JOURNAL_RECORD_HEADER;
    size_t plen;
    /* rbproto validates as the controller will: an event it would refuse
     * must not enter the journal, or it would wedge delivery. */
    r = rbproto_pack_into(&e.base, payload, JOURNAL_MAX_PAYLOAD, &plen);
    if (r == -ENOSPC) {
        return -E2BIG;
    }
    if (r < 0) {
        return r;
    }
    journal_record_header_build(e.seq, payload, plen, j->scratch);
    uint64_t rec = JOURNAL_RECORD_HEADER + plen;

    segment *g = active_segment(j);
    if (!g || g->n >= j->seg_events || (g->n > 0 && g->bytes + rec > j->seg_bytes)) {
        /* Seal the old segment durable before starting the next: then only
         * the newest segment ever holds undurable records. */
        if (j->n_segs > 0) {
            r = sync_locked(j);
            if (r < 0) {
                return r;
            }
        }
        r = segment_create(j, e.seq);
        if (r < 0) {
            return r;
        }
        g = &j->segs[j->n_segs - 1];
    }
    r = segment_push_off(g, g->bytes);
    if (r < 0) {
        return r;
    }
    r = pwrite_all(g->fd, j->scratch, rec, g->bytes);
    if (r < 0) {
        /* A full disk (ENOSPC, EFBIG) may have taken part of the record:
         * cut it back, or the next append would follow garbage and be lost
         * with it at the next open. Then nothing changed, and the next
         * append works as soon as there is room. */
        if (ftruncate(g->fd, (off_t)g->bytes) < 0) {
            j->broken = r;
        }
        return r;
    }
    g->n++;
    g->bytes += rec;
    j->total_bytes += rec;
    j->total_events++;
    j->next_seq++;
    /* Only now: a failed write must not have dropped anything. */
    uint64_t dropped = make_room(j, 0, 0);
    if (j->sync_each_append) {
        r = sync_locked(j);
        if (r < 0) {
            return r;
        }
    }
    if (ret_seq) {
        *ret_seq = e.seq;
    }
    return (int)min_u64(dropped, INT_MAX);
}

/* The fsyncs run without the lock, so the loop thread keeps appending and
 * the uplink keeps peeking while the disk works (e.g. with journal_sync() in
 * the libuv thread pool). Only the newest segment can hold undurable
 * records; a dup of its fd stays valid if the segment is dropped meanwhile. */
int journal_sync(journal *j)
{
    uint64_t target, gen;
    bool dir;
    _cleanup_close_ int fd = -1;
    {
        LOCK_GUARD(&j->lock);
        int r = recover_locked(j);
        if (r < 0) {
            return r;
        }
        target = j->next_seq - 1;
        dir = j->dir_dirty;
        gen = j->dir_gen;
        if (j->durable_seq < target) {
            fd = fcntl(j->segs[j->n_segs - 1].fd, F_DUPFD_CLOEXEC, 0);
            if (fd < 0) {
                return negative_errno();
            }
        }
    }
    int r = 0;
    if (fd >= 0 && fdatasync(fd) < 0) {
        r = negative_errno();
    }
    if (r == 0 && dir && fsync(j->dir_fd) < 0) {
        r = negative_errno();
    }
    LOCK_GUARD(&j->lock);
    if (r < 0) {
        /* See sync_locked(). */
        j->broken = r;
        return r;
    }
    if (j->broken < 0) {
        /* An append's fsync failed meanwhile (sealing the segment this one
         * synced): the kernel reports a lost write once, so this fsync's
         * success proves nothing, and what it covered is taken back by the
         * next append or sync. */
        return j->broken;
    }
    if (dir && j->dir_gen == gen) {
        j->dir_dirty = false;
    }
    j->durable_seq = max_u64(j->durable_seq, target);
    return 0;
}

int journal_ack(journal *j, uint64_t stored_through)
{
    LOCK_GUARD(&j->ack_lock);
    uint64_t acked;
    {
        LOCK_GUARD(&j->lock);
        if (stored_through > j->durable_seq) {
            return -ERANGE;
        }
        if (stored_through > j->acked) {
            j->acked = stored_through;
        }
        if (!trim_due(j)) {
            return 0;
        }
        acked = j->acked;
    }
    /* The ack point is written before the segments go, so a restart does
     * not resend what is gone; and without the lock, so appends do not wait
     * for its fsyncs. A failure keeps the ack in memory and the segments on
     * disk: the next ack tries again. */
    int r = ack_write(j, acked);
    if (r < 0) {
        return r;
    }
    LOCK_GUARD(&j->lock);
    j->acked_persisted = max_u64(j->acked_persisted, acked);
    trim_through(j, acked);
    return 0;
}

bool journal_seq_durable(journal *j, uint64_t seq)
{
    LOCK_GUARD(&j->lock);
    if (seq == 0 || seq > j->durable_seq || in_range(&j->lost_old, seq)) {
        return false;
    }
    for (size_t i = 0; i < j->n_lost; i++) {
        if (in_range(&j->lost[i], seq)) {
            return false;
        }
    }
    return true;
}

uint64_t journal_dropped_total(journal *j)
{
    LOCK_GUARD(&j->lock);
    return j->dropped_total;
}

void journal_get_stats(journal *j, journal_stats *ret)
{
    LOCK_GUARD(&j->lock);
    uint64_t pending = 0;
    for (size_t i = 0; i < j->n_segs; i++) {
        pending += segment_pending(j, &j->segs[i]);
    }
    *ret = (journal_stats){
        .next_seq = j->next_seq,
        .durable_seq = j->durable_seq,
        .acked = j->acked,
        .pending = pending,
        .events = j->total_events,
        .bytes = j->total_bytes,
        .segments = j->n_segs,
        .dropped_total = j->dropped_total,
        .damaged_total = j->damaged_total,
    };
}

/* ---- Peek ------------------------------------------------------------------ */

typedef struct batch_record {
    uint64_t seq;
    size_t off, len; /* in raw */
} batch_record;

typedef struct arena_chunk {
    struct arena_chunk *next;
    max_align_t data[];
} arena_chunk;

struct journal_batch {
    uint8_t *raw; /* the records as read, copied out under the lock */
    size_t raw_cap;
    batch_record *recs;
    size_t recs_cap;
    Rackboot__V1__Event **events;
    size_t n_events, events_cap;
    /* protobuf-c unpacks into a bump arena reset by each peek; an estimate
     * sizes it and rare overflows go to chunks freed at the next reset. */
    uint8_t *arena;
    size_t arena_cap, arena_used;
    arena_chunk *overflow;
    ProtobufCAllocator alloc;
};

static void *arena_alloc(void *data, size_t size)
{
    journal_batch *b = data;
    const size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) / align * align;
    if (need >= size && b->arena_cap - b->arena_used >= need) {
        void *p = b->arena + b->arena_used;
        b->arena_used += need;
        return p;
    }
    if (size > SIZE_MAX - sizeof(arena_chunk)) {
        return NULL;
    }
    arena_chunk *c = malloc(sizeof(*c) + size);
    if (!c) {
        return NULL;
    }
    c->next = b->overflow;
    b->overflow = c;
    return c->data;
}

static void arena_free(void *data, void *p)
{
    /* Freed all at once by the next reset. */
}

static void batch_reset(journal_batch *b)
{
    while (b->overflow) {
        arena_chunk *c = b->overflow;
        b->overflow = c->next;
        free(c);
    }
    b->arena_used = 0;
    b->n_events = 0;
}

int journal_batch_new(journal_batch **ret)
{
    journal_batch *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->alloc =
        (ProtobufCAllocator){ .alloc = arena_alloc, .free = arena_free, .allocator_data = b };
    *ret = b;
    return 0;
}

journal_batch *journal_batch_free(journal_batch *b)
{
    if (!b) {
        return NULL;
    }
    batch_reset(b);
    free(b->raw);
    free(b->recs);
    free(b->events);
    free(b->arena);
    free(b);
    return NULL;
}

size_t journal_batch_count(const journal_batch *b)
{
    return b->n_events;
}

Rackboot__V1__Event **journal_batch_events(const journal_batch *b)
{
    return b->events;
}

uint64_t journal_batch_last_seq(const journal_batch *b)
{
    return b->n_events > 0 ? b->events[b->n_events - 1]->seq : 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        ncap *= 2;
    }
    void *np = reallocarray(*p, ncap, elem);
    if (!np) {
        return -ENOMEM;
    }
    *p = np;
    *cap = ncap;
    return 0;
}

/* Copies up to max durable records from seq `from` on into b->raw and
 * b->recs. *ret_n is how many; *ret_next the seq after the last one. */
static int peek_locked(journal *j, uint64_t from, size_t max, journal_batch *b, size_t *ret_n,
                       uint64_t *ret_next)
{
    size_t n = 0, raw_len = 0;
    uint64_t seq = from;
    for (size_t s = 0; s < j->n_segs && n < max && seq <= j->durable_seq; s++) {
        segment *g = &j->segs[s];
        if (g->n == 0 || segment_last(g) < seq) {
            continue;
        }
        seq = max_u64(seq, g->first); /* past a gap (drops, damage) */
        if (seq > j->durable_seq) {
            break;
        }
        uint64_t last = min_u64(segment_last(g), j->durable_seq);
        size_t k = (size_t)min_u64(last - seq + 1, max - n);
        size_t i0 = (size_t)(seq - g->first), i1 = i0 + k;
        uint64_t off0 = g->offs[i0];
        uint64_t off1 = i1 < g->n ? g->offs[i1] : g->bytes;
        size_t len = (size_t)(off1 - off0);
        int r = grow((void **)&b->raw, &b->raw_cap, raw_len + len, 1);
        if (r == 0) {
            r = grow((void **)&b->recs, &b->recs_cap, n + k, sizeof(*b->recs));
        }
        if (r == 0) {
            r = pread_all(g->fd, b->raw + raw_len, len, off0);
        }
        if (r < 0) {
            return r;
        }
        for (size_t i = i0; i < i1; i++) {
            uint64_t end = i + 1 < g->n ? g->offs[i + 1] : g->bytes;
            b->recs[n++] = (batch_record){ .seq = g->first + i,
                                           .off = raw_len + (size_t)(g->offs[i] - off0),
                                           .len = (size_t)(end - g->offs[i]) };
        }
        raw_len += len;
        seq = g->first + i1;
    }
    *ret_n = n;
    *ret_next = seq;
    return 0;
}

/* Unpacks b->recs[0..n) into b->events; a record that is damaged (bit rot
 * since open) or no longer valid is skipped and counted. */
static int batch_unpack(journal_batch *b, size_t n, size_t *ret_damaged)
{
    size_t raw_len = n > 0 ? b->recs[n - 1].off + b->recs[n - 1].len : 0;
    /* A struct, alignment slack and a copy of each string or bytes field;
     * estimates that fall short spill to overflow chunks. */
    size_t want = n * (sizeof(Rackboot__V1__Event) + 4 * alignof(max_align_t)) + 2 * raw_len;
    size_t damaged = 0;
    int r = grow((void **)&b->events, &b->events_cap, n, sizeof(*b->events));
    if (r < 0) {
        return r;
    }
    if (want > b->arena_cap) {
        free(b->arena);
        b->arena = malloc(want);
        b->arena_cap = b->arena ? want : 0;
    }
    for (size_t i = 0; i < n; i++) {
        const batch_record *rec = &b->recs[i];
        size_t off = 0;
        uint64_t seq;
        const uint8_t *payload;
        size_t plen;
        Rackboot__V1__Event *ev = NULL;
        if (journal_record_next(b->raw + rec->off, rec->len, &off, &seq, &payload, &plen) == 1 &&
            seq == rec->seq) {
            ev = rackboot__v1__event__unpack(&b->alloc, plen, payload);
        }
        if (!ev || ev->seq != rec->seq || rbproto_validate_event(ev) < 0) {
            damaged++;
            continue;
        }
        b->events[b->n_events++] = ev;
    }
    *ret_damaged = damaged;
    return 0;
}

int journal_peek(journal *j, size_t max_events, journal_batch *b)
{
    batch_reset(b);
    max_events = min_u64(max_events, RBPROTO_MAX_EVENTS);
    if (max_events == 0) {
        return 0;
    }
    uint64_t from;
    {
        LOCK_GUARD(&j->lock);
        from = j->acked + 1;
    }
    for (;;) {
        size_t n, damaged;
        uint64_t next;
        int r;
        {
            LOCK_GUARD(&j->lock);
            r = peek_locked(j, from, max_events, b, &n, &next);
        }
        if (r < 0) {
            return r;
        }
        r = batch_unpack(b, n, &damaged);
        if (r < 0) {
            return r;
        }
        if (damaged > 0) {
            LOCK_GUARD(&j->lock);
            j->damaged_total += damaged;
        }
        /* A batch of nothing but damaged records would stop delivery: look
         * further, so the controller's ack of later events passes them. */
        if (b->n_events > 0 || n == 0) {
            return (int)b->n_events;
        }
        from = next;
    }
}
