/* rack-agent/uplink/journal: events survive restarts and crashes with their seqs,
 * are handed out oldest-unacknowledged first until acknowledged, are trimmed
 * only once acknowledged, and a full journal drops its oldest events and
 * says so. Damage is made for real: the segment files are cut at every byte
 * of a record and have bytes flipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "uplink/journal-internal.h"
#include "uplink/journal.h"
#include "util.h"

typedef struct fixture {
    char tmp[64];
    char dir[96];
    journal_batch *b;
} fixture;

static void rm_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, "..")) {
            continue;
        }
        unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_journal.XXXXXX");
    if (!mkdtemp(f->tmp)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/journal", f->tmp);
    if (journal_batch_new(&f->b) < 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_files(f->dir);
    rmdir(f->dir);
    rmdir(f->tmp);
    journal_batch_free(f->b);
    free(f);
    return 0;
}

/* protobuf-c's structs take non-const pointers: writable copies. */
static uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static char str_install[] = "inst-0001";
static char str_host[] = "web17";
static char str_bad_host[] = "web 17";

/* An event whose message names n, so a peek can be checked against what
 * was appended. */
static int append_n(journal *j, unsigned n, uint64_t *ret_seq)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "event %u", n);
    Rackboot__V1__Event e;
    rackboot__v1__event__init(&e);
    e.install_id = str_install;
    e.host = str_host;
    e.mac.data = test_mac;
    e.mac.len = sizeof(test_mac);
    e.phase = RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
    e.percent = n % 101;
    e.time_unix_ms = 1700000000000ull + n;
    e.message = msg;
    return journal_append(j, &e, ret_seq);
}

static void append_many(journal *j, unsigned from, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        uint64_t seq;
        assert_true(append_n(j, from + i, &seq) >= 0);
    }
}

static journal *open_j(fixture *f, uint64_t max_bytes, uint64_t max_events)
{
    journal_config cfg = { .max_bytes = max_bytes, .max_events = max_events };
    journal *j = NULL;
    assert_int_equal(journal_open(f->dir, &cfg, &j), 0);
    return j;
}

static journal_stats stats(journal *j)
{
    journal_stats st;
    journal_get_stats(j, &st);
    return st;
}

/* Peeks and checks the batch is seqs first..first+n-1 (when first is not
 * 0), with messages "event <seq>" (events appended in seq order from 1). */
static void expect_peek(fixture *f, journal *j, size_t max, uint64_t first, int n)
{
    int got = journal_peek(j, max, f->b);
    assert_int_equal(got, n);
    assert_int_equal(journal_batch_count(f->b), (size_t)n);
    Rackboot__V1__Event **ev = journal_batch_events(f->b);
    for (int i = 0; i < n; i++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "event %" PRIu64, first + (uint64_t)i);
        assert_int_equal(ev[i]->seq, first + (uint64_t)i);
        assert_string_equal(ev[i]->message, msg);
        assert_string_equal(ev[i]->host, "web17");
        assert_string_equal(ev[i]->install_id, "inst-0001");
        assert_int_equal(ev[i]->mac.len, 6);
        assert_memory_equal(ev[i]->mac.data, test_mac, 6);
        assert_int_equal(ev[i]->phase, RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS);
        assert_int_equal(ev[i]->time_unix_ms, 1700000000000ull + first + (uint64_t)i);
    }
    if (n > 0) {
        assert_int_equal(journal_batch_last_seq(f->b), first + (uint64_t)n - 1);
    }
}

/* Segment files, and the newest one's path. */
static size_t segments(const char *dir, char *newest, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    size_t n = 0;
    char best[64] = "";
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && streq(de->d_name + len - 4, ".seg")) {
            n++;
            if (strcmp(de->d_name, best) > 0) {
                snprintf(best, sizeof(best), "%s", de->d_name);
            }
        }
    }
    closedir(d);
    if (newest) {
        snprintf(newest, size, "%s/%s", dir, best);
    }
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ---- Framing ---------------------------------------------------------------- */

static void test_crc32c_check_value(void **state)
{
    /* The CRC-32C check value (RFC 3720 appendix B.4 polynomial; the
     * catalogue's "123456789" check). */
    assert_int_equal(journal_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(journal_crc32c(journal_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(journal_crc32c(0, "", 0), 0);
}

static void test_record_roundtrip_and_damage(void **state)
{
    uint8_t buf[JOURNAL_RECORD_HEADER + 5];
    memcpy(buf + JOURNAL_RECORD_HEADER, "hello", 5);
    journal_record_header_build(42, buf + JOURNAL_RECORD_HEADER, 5, buf);
    size_t off = 0;
    uint64_t seq;
    const uint8_t *p;
    size_t plen;
    assert_int_equal(journal_record_next(buf, sizeof(buf), &off, &seq, &p, &plen), 1);
    assert_int_equal(seq, 42);
    assert_int_equal(plen, 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(off, sizeof(buf));
    assert_int_equal(journal_record_next(buf, sizeof(buf), &off, &seq, &p, &plen), 0);
    /* Every single bit flip, in the length, CRC, seq or payload, is caught. */
    for (size_t i = 0; i < sizeof(buf) * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        off = 0;
        assert_int_equal(journal_record_next(buf, sizeof(buf), &off, &seq, &p, &plen), -EBADMSG);
        assert_int_equal(off, 0);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

/* ---- Append, peek, ack -------------------------------------------------------- */

static void test_append_peek_ack_trim(void **state)
{
    fixture *f = *state;
    /* 320 events: segments of 10. */
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 320);
    for (unsigned i = 1; i <= 25; i++) {
        uint64_t seq = 0;
        assert_int_equal(append_n(j, i, &seq), 0);
        assert_int_equal(seq, i);
        if (i == 5) {
            /* Not durable yet, so not handed out. */
            expect_peek(f, j, 10, 0, 0);
        }
    }
    /* Starting a segment sealed the one before durable: 1-20. */
    assert_int_equal(stats(j).durable_seq, 20);
    expect_peek(f, j, 100, 1, 20);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(stats(j).durable_seq, 25);

    expect_peek(f, j, 10, 1, 10);
    /* Unacknowledged: the same again. */
    expect_peek(f, j, 10, 1, 10);
    assert_int_equal(segments(f->dir, NULL, 0), 3);

    assert_int_equal(journal_ack(j, 10), 0);
    expect_peek(f, j, 10, 11, 10);
    /* Seqs 1-10 were one segment: trimmed. */
    assert_int_equal(segments(f->dir, NULL, 0), 2);
    assert_int_equal(stats(j).pending, 15);

    /* A partial ack trims nothing but moves the peek. */
    assert_int_equal(journal_ack(j, 13), 0);
    assert_int_equal(segments(f->dir, NULL, 0), 2);
    expect_peek(f, j, 1000, 14, 12);

    assert_int_equal(journal_ack(j, 25), 0);
    expect_peek(f, j, 10, 0, 0);
    /* The newest segment stays, acknowledged or not: it holds the highest
     * seq for the next run. */
    assert_int_equal(segments(f->dir, NULL, 0), 1);
    journal_stats st = stats(j);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.acked, 25);
    assert_int_equal(st.next_seq, 26);
    assert_int_equal(st.dropped_total, 0);
}

static void test_peek_caps_and_zero(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    append_many(j, 1, 1100);
    assert_int_equal(journal_sync(j), 0);
    expect_peek(f, j, 0, 0, 0);
    /* At most what one EventBatch may carry. */
    expect_peek(f, j, 5000, 1, (int)RBPROTO_MAX_EVENTS);
}

static void test_sync_each_append(void **state)
{
    fixture *f = *state;
    journal_config cfg = { .sync_each_append = true };
    _cleanup_(journal_freep) journal *j = NULL;
    assert_int_equal(journal_open(f->dir, &cfg, &j), 0);
    append_many(j, 1, 3);
    expect_peek(f, j, 10, 1, 3);
}

static void test_ack_beyond_highest_refused(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    assert_int_equal(journal_ack(j, 1), -ERANGE);
    append_many(j, 1, 3);
    /* Written but not durable: never handed out, so no one can ack it. */
    assert_int_equal(journal_ack(j, 1), -ERANGE);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 4), -ERANGE);
    assert_int_equal(journal_ack(j, UINT64_MAX), -ERANGE);
    assert_int_equal(stats(j).acked, 0);
    expect_peek(f, j, 10, 1, 3);
    assert_int_equal(journal_ack(j, 3), 0);
    expect_peek(f, j, 10, 0, 0);
}

static void test_ack_old_value_is_noop(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    append_many(j, 1, 8);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 5), 0);
    assert_int_equal(journal_ack(j, 3), 0);
    assert_int_equal(journal_ack(j, 0), 0);
    assert_int_equal(journal_ack(j, 5), 0);
    assert_int_equal(stats(j).acked, 5);
    expect_peek(f, j, 10, 6, 3);
}

static void test_invalid_event_refused(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    Rackboot__V1__Event e;
    rackboot__v1__event__init(&e);
    e.install_id = str_install;
    e.host = str_bad_host; /* the controller would refuse it */
    e.phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
    uint64_t seq = 77;
    assert_int_equal(journal_append(j, &e, &seq), -EINVAL);
    assert_int_equal(seq, 77);
    e.host = str_host;
    e.phase = RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED;
    assert_int_equal(journal_append(j, &e, &seq), -EINVAL);
    /* No seq was used. */
    assert_int_equal(append_n(j, 1, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(stats(j).events, 1);
}

static void test_time_filled_when_zero(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    Rackboot__V1__Event e;
    rackboot__v1__event__init(&e);
    e.install_id = str_install;
    e.host = str_host;
    e.phase = RACKBOOT__V1__PHASE__PHASE_INSTALLED;
    assert_int_equal(journal_append(j, &e, NULL), 0);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_peek(j, 10, f->b), 1);
    /* After 2023-11-14: the wall clock, not zero. */
    assert_true(journal_batch_events(f->b)[0]->time_unix_ms > 1700000000000ull);
}

static void test_config_out_of_range(void **state)
{
    fixture *f = *state;
    journal *j = NULL;
    journal_config small = { .max_bytes = 1000 };
    assert_int_equal(journal_open(f->dir, &small, &j), -EINVAL);
    journal_config many = { .max_events = JOURNAL_MAX_MAX_EVENTS + 1 };
    assert_int_equal(journal_open(f->dir, &many, &j), -EINVAL);
    assert_null(j);
}

/* ---- Restart ------------------------------------------------------------------ */

static void test_restart_resumes(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 5);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 3), 0);
    j = journal_free(j);

    /* The ack point and the sequence survive. */
    j = open_j(f, 0, 0);
    journal_stats st = stats(j);
    assert_int_equal(st.next_seq, 6);
    assert_int_equal(st.acked, 3);
    assert_int_equal(st.durable_seq, 5);
    expect_peek(f, j, 10, 4, 2);
    uint64_t seq;
    assert_int_equal(append_n(j, 6, &seq), 0);
    assert_int_equal(seq, 6);
    j = journal_free(j);

    /* Not synced before close: free syncs. */
    j = open_j(f, 0, 0);
    expect_peek(f, j, 10, 4, 3);
    j = journal_free(j);
}

/* The journal's id survives a restart; a new journal (a wiped directory)
 * has another, so the controller can tell their seqs apart. */
static void test_id_stable_and_new(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    char first[64];
    snprintf(first, sizeof(first), "%s", journal_id(j));
    assert_int_equal(strlen(first), 32);
    assert_int_equal(strspn(first, "0123456789abcdef"), 32);
    j = journal_free(j);
    j = open_j(f, 0, 0);
    assert_string_equal(journal_id(j), first);
    j = journal_free(j);
    rm_files(f->dir);
    j = open_j(f, 0, 0);
    assert_string_not_equal(journal_id(j), first);
    j = journal_free(j);
}

static void test_restart_after_everything_trimmed(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 64); /* segments of 2 */
    append_many(j, 1, 31);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 31), 0);
    assert_int_equal(segments(f->dir, NULL, 0), 1);
    j = journal_free(j);

    j = open_j(f, 0, 64);
    expect_peek(f, j, 10, 0, 0);
    uint64_t seq;
    assert_int_equal(append_n(j, 32, &seq), 0);
    assert_int_equal(seq, 32);
    assert_int_equal(journal_sync(j), 0);
    expect_peek(f, j, 10, 32, 1);
    j = journal_free(j);
}

static void test_restart_lost_ack_file_resends(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 4);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 2), 0);
    j = journal_free(j);

    /* A damaged ack file costs a resend (at least once), not the journal. */
    char path[160];
    snprintf(path, sizeof(path), "%s/ack", f->dir);
    assert_int_equal(fileio_write_atomic(path, "x\n", 2, 0600), 0);
    j = open_j(f, 0, 0);
    expect_peek(f, j, 10, 1, 4);
    assert_int_equal(stats(j).next_seq, 5);
    j = journal_free(j);
}

/* ---- Crash damage ---------------------------------------------------------------- */

/* Record boundaries of a segment file's bytes. */
static size_t record_starts(const uint8_t *buf, size_t len, size_t *starts, size_t max)
{
    size_t n = 0, off = JOURNAL_SEGMENT_HEADER;
    uint64_t seq;
    const uint8_t *p;
    size_t plen;
    while (n < max) {
        starts[n] = off;
        if (journal_record_next(buf, len, &off, &seq, &p, &plen) != 1) {
            break;
        }
        n++;
    }
    return n;
}

static void test_truncated_tail_every_offset(void **state)
{
    fixture *f = *state;
    char seg[160];
    journal *j = open_j(f, 0, 0);
    /* Different lengths, so cuts land everywhere in differently sized
     * records. */
    append_many(j, 1, 2);
    append_many(j, 3, 1);
    j = journal_free(j);
    assert_int_equal(segments(f->dir, seg, sizeof(seg)), 1);

    _cleanup_free_ uint8_t *orig = NULL;
    size_t len;
    assert_int_equal(fileio_read_all(seg, 1 << 20, (void **)&orig, &len), 0);
    size_t starts[4];
    assert_int_equal(record_starts(orig, len, starts, 4), 3);
    starts[3] = len;

    /* Cut everywhere: in the header, and at every byte of every record (the
     * last one above all: that is where a power cut tears). */
    for (size_t cut = 0; cut < len; cut++) {
        rm_files(f->dir);
        assert_int_equal(fileio_write_atomic(seg, orig, cut, 0600), 0);
        uint64_t whole = 0; /* records wholly before the cut */
        while (whole < 3 && starts[whole + 1] <= cut) {
            whole++;
        }
        bool torn = cut >= JOURNAL_SEGMENT_HEADER && cut != starts[whole];

        j = open_j(f, 0, 0);
        journal_stats st = stats(j);
        assert_int_equal(st.events, whole);
        assert_int_equal(st.damaged_total, torn || (cut > 0 && cut < JOURNAL_SEGMENT_HEADER));
        expect_peek(f, j, 10, whole ? 1 : 0, (int)whole);
        if (whole > 0) {
            /* Cut back to the last good record. */
            assert_int_equal(file_size(seg), (off_t)starts[whole]);
        }
        /* The sequence continues; a torn record's seq is never given to
         * another event, since it might have been sent. */
        uint64_t seq;
        assert_int_equal(append_n(j, 100, &seq), 0);
        if (torn) {
            assert_true(seq > whole + 1);
        } else {
            assert_int_equal(seq, whole + 1);
        }
        j = journal_free(j);

        /* The repair holds: a clean open with everything good in it. */
        j = open_j(f, 0, 0);
        st = stats(j);
        assert_int_equal(st.damaged_total, 0);
        assert_int_equal(st.events, whole + 1);
        assert_int_equal(st.next_seq, seq + 1);
        int n = journal_peek(j, 10, f->b);
        assert_int_equal(n, (int)whole + 1);
        assert_int_equal(journal_batch_last_seq(f->b), seq);
        j = journal_free(j);
    }
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* Decision: a bad record in the middle stops the reading of its segment;
 * the prefix is kept, the rest of the segment is lost (nothing after a bad
 * length can be trusted to be framed), the cut is counted, and the seqs the
 * lost bytes could have held are never reused. */
static void test_corrupt_middle_keeps_prefix(void **state)
{
    fixture *f = *state;
    char seg[160];
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 5);
    j = journal_free(j);
    assert_int_equal(segments(f->dir, seg, sizeof(seg)), 1);

    _cleanup_free_ uint8_t *orig = NULL;
    size_t len;
    assert_int_equal(fileio_read_all(seg, 1 << 20, (void **)&orig, &len), 0);
    size_t starts[6];
    assert_int_equal(record_starts(orig, len, starts, 6), 5);
    /* A byte of record 2's payload: its CRC no longer matches. */
    flip_byte(seg, (off_t)(starts[1] + JOURNAL_RECORD_HEADER + 3));

    j = open_j(f, 0, 0);
    journal_stats st = stats(j);
    assert_int_equal(st.damaged_total, 1);
    assert_int_equal(st.events, 1);
    assert_true(st.next_seq > 5);
    expect_peek(f, j, 10, 1, 1);
    assert_int_equal(file_size(seg), (off_t)starts[1]);
    j = journal_free(j);
}

static void test_corrupt_older_segment_keeps_later_ones(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 64); /* segments of 2: 1-2, 3-4, 5-6 */
    append_many(j, 1, 6);
    j = journal_free(j);
    assert_int_equal(segments(f->dir, NULL, 0), 3);

    char seg[200];
    snprintf(seg, sizeof(seg), "%s/%020d.seg", f->dir, 3);
    /* Record 4's CRC field. */
    _cleanup_free_ uint8_t *orig = NULL;
    size_t len;
    assert_int_equal(fileio_read_all(seg, 1 << 20, (void **)&orig, &len), 0);
    size_t starts[3];
    assert_int_equal(record_starts(orig, len, starts, 3), 2);
    flip_byte(seg, (off_t)(starts[1] + 5));

    j = open_j(f, 0, 64);
    journal_stats st = stats(j);
    assert_int_equal(st.damaged_total, 1);
    assert_int_equal(st.events, 5);
    assert_int_equal(st.next_seq, 7);
    /* 1-3, then past the lost 4 to 5-6. */
    expect_peek(f, j, 3, 1, 3);
    assert_int_equal(journal_ack(j, 3), 0);
    expect_peek(f, j, 10, 5, 2);
    j = journal_free(j);
}

static void test_stray_files_ignored(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 2);
    j = journal_free(j);
    char path[200];
    snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
    assert_int_equal(fileio_write_atomic(path, "hi", 2, 0600), 0);
    snprintf(path, sizeof(path), "%s/1.seg", f->dir);
    assert_int_equal(fileio_write_atomic(path, "hi", 2, 0600), 0);
    j = open_j(f, 0, 0);
    assert_int_equal(stats(j).damaged_total, 0);
    expect_peek(f, j, 10, 1, 2);
    j = journal_free(j);
    assert_int_equal(access(path, F_OK), 0);
}

/* ---- Bound ------------------------------------------------------------------------ */

static void test_bound_events_drops_oldest(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 64); /* segments of 2 */
    append_many(j, 1, 10);
    assert_int_equal(journal_sync(j), 0);
    assert_int_equal(journal_ack(j, 3), 0);

    uint64_t dropped = 0;
    for (unsigned i = 11; i <= 100; i++) {
        uint64_t seq;
        int r = append_n(j, i, &seq);
        assert_true(r >= 0);
        assert_int_equal(seq, i);
        dropped += (uint64_t)r;
    }
    assert_int_equal(journal_sync(j), 0);
    journal_stats st = stats(j);
    assert_true(st.events <= 64);
    assert_true(st.events >= 60);
    /* Every event is retained, acknowledged, or counted as dropped. */
    assert_int_equal(dropped, 100 - 3 - st.pending);
    assert_int_equal(journal_dropped_total(j), dropped);
    assert_int_equal(st.dropped_total, dropped);

    /* What is left is the newest, oldest first, in one run. */
    uint64_t first = 100 - st.pending + 1;
    expect_peek(f, j, 1000, first, (int)st.pending);
    assert_int_equal(journal_batch_last_seq(f->b), 100);
}

static void test_bound_bytes_drops_oldest(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, JOURNAL_MIN_MAX_BYTES, 0);
    char msg[1001];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    Rackboot__V1__Event e;
    rackboot__v1__event__init(&e);
    e.install_id = str_install;
    e.host = str_host;
    e.phase = RACKBOOT__V1__PHASE__PHASE_INSTALLING;
    e.message = msg;
    uint64_t dropped = 0;
    for (unsigned i = 0; i < 200; i++) {
        int r = journal_append(j, &e, NULL);
        assert_true(r >= 0);
        dropped += (uint64_t)r;
    }
    journal_stats st = stats(j);
    assert_true(st.bytes <= JOURNAL_MIN_MAX_BYTES);
    assert_true(st.bytes > JOURNAL_MIN_MAX_BYTES / 2);
    assert_true(dropped > 0);
    assert_int_equal(dropped + st.events, 200);
    assert_int_equal(journal_dropped_total(j), dropped);
    /* And on disk too. */
    assert_int_equal(segments(f->dir, NULL, 0), st.segments);
}

static void test_smaller_bound_applies_at_open(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 100);
    j = journal_free(j);
    j = open_j(f, 0, 64);
    /* One old segment of 100 exceeds 64 but is the newest, so it stays
     * until the next append starts a new one. */
    uint64_t seq;
    int r = append_n(j, 101, &seq);
    assert_int_equal(r, 100);
    assert_int_equal(journal_dropped_total(j), 100);
    assert_int_equal(stats(j).events, 1);
    j = journal_free(j);
}

/* ---- A full disk, a failed sync ------------------------------------------------------ */

/* fdatasync(2) as the journal sees it (the test links with
 * -Wl,--wrap=fdatasync): fails `fail_fdatasync` more times with EIO, the way
 * a disk that lost a write or a thin volume out of space answers. */
static int fail_fdatasync;
/* Runs once, inside the next fdatasync(2), before it: what another thread
 * does while journal_sync() waits for the disk without the lock. */
static void (*during_fdatasync)(void);
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    if (during_fdatasync) {
        void (*fn)(void) = during_fdatasync;
        during_fdatasync = NULL;
        fn();
    }
    if (fail_fdatasync > 0) {
        fail_fdatasync--;
        errno = EIO;
        return -1;
    }
    return __real_fdatasync(fd);
}

/* Peeks everything and checks the seqs are `seqs` and each event's message
 * names its own number in `msgs` (events appended with append_n). */
static void expect_events(fixture *f, journal *j, const uint64_t *seqs, const unsigned *msgs, int n)
{
    assert_int_equal(journal_peek(j, 1000, f->b), n);
    Rackboot__V1__Event **ev = journal_batch_events(f->b);
    for (int i = 0; i < n; i++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "event %u", msgs[i]);
        assert_int_equal(ev[i]->seq, seqs[i]);
        assert_string_equal(ev[i]->message, msg);
    }
}

/* RLIMIT_FSIZE (SIGXFSZ ignored) stops a write part-way through a record with
 * EFBIG, as a full file system stops it with ENOSPC: real partial writes, for
 * root too. */
static void limit_file_size(struct rlimit *saved, rlim_t bytes)
{
    assert_int_equal(getrlimit(RLIMIT_FSIZE, saved), 0);
    struct rlimit small = *saved;
    small.rlim_cur = bytes;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
}

static void unlimit_file_size(const struct rlimit *saved)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, saved), 0);
    signal(SIGXFSZ, SIG_DFL);
}

/* A full disk refuses the append, leaves nothing behind (no partial record,
 * no seq used), and the next append works as soon as there is room again,
 * without a reopen. */
static void test_append_full_disk_recovers(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 3);
    assert_int_equal(journal_sync(j), 0);
    char seg[160];
    assert_int_equal(segments(f->dir, seg, sizeof(seg)), 1);
    off_t size = file_size(seg);

    struct rlimit saved;
    limit_file_size(&saved, (rlim_t)size + 10); /* a record's first 10 bytes fit */
    int r1 = append_n(j, 4, NULL);
    int r2 = append_n(j, 4, NULL);
    off_t size_full = file_size(seg);
    journal_stats st_full = stats(j);
    unlimit_file_size(&saved);
    assert_int_equal(r1, -EFBIG);
    assert_int_equal(r2, -EFBIG);
    assert_int_equal(size_full, size);
    assert_int_equal(st_full.next_seq, 4);
    assert_int_equal(st_full.events, 3);

    /* Room again: the next append gets seq 4 and follows good data. */
    uint64_t seq = 0;
    assert_int_equal(append_n(j, 4, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(journal_sync(j), 0);
    expect_peek(f, j, 100, 1, 4);

    /* Nothing for a reopen to cut, and every event once. */
    j = journal_free(j);
    j = open_j(f, 0, 0);
    assert_int_equal(stats(j).damaged_total, 0);
    assert_int_equal(stats(j).next_seq, 5);
    expect_peek(f, j, 100, 1, 4);
    j = journal_free(j);
}

/* A failed sync: what was appended since the last good sync is in an
 * unknown state on disk. It was never handed out; the next append (or sync)
 * takes it back and the journal goes on, without a reopen. Those seqs are
 * skipped, so whatever the caller records again (an installer's retry) is
 * sent once. */
static void test_sync_failure_recovers(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 0);
    append_many(j, 1, 3);
    assert_int_equal(journal_sync(j), 0);
    append_many(j, 4, 2); /* 4 and 5: in the page cache only */
    fail_fdatasync = 1;
    assert_int_equal(journal_sync(j), -EIO);
    fail_fdatasync = 0;
    const uint64_t durable[] = { 1, 2, 3 };
    const unsigned durable_msgs[] = { 1, 2, 3 };
    expect_events(f, j, durable, durable_msgs, 3);

    uint64_t seq = 0;
    assert_int_equal(append_n(j, 6, &seq), 0);
    assert_int_equal(seq, 6);
    assert_int_equal(journal_sync(j), 0);
    const uint64_t seqs[] = { 1, 2, 3, 6 };
    const unsigned msgs[] = { 1, 2, 3, 6 };
    expect_events(f, j, seqs, msgs, 4);

    /* A second failure, and a sync (no append) is what recovers. */
    append_many(j, 7, 1);
    fail_fdatasync = 1;
    assert_int_equal(journal_sync(j), -EIO);
    fail_fdatasync = 0;
    assert_int_equal(journal_sync(j), 0);
    expect_events(f, j, seqs, msgs, 4);

    j = journal_free(j);
    j = open_j(f, 0, 0);
    assert_int_equal(stats(j).damaged_total, 0);
    assert_true(stats(j).next_seq >= 7);
    expect_events(f, j, seqs, msgs, 4);
    j = journal_free(j);
}

/* The failed sync came right after a new segment was started: all of that
 * segment's records go, and appends go on in a segment of their own. */
static void test_sync_failure_in_new_segment_recovers(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 320); /* segments of 10 events */
    append_many(j, 1, 10);
    assert_int_equal(journal_sync(j), 0);
    append_many(j, 11, 2); /* a new segment */
    fail_fdatasync = 1;
    assert_int_equal(journal_sync(j), -EIO);
    fail_fdatasync = 0;
    uint64_t seq = 0;
    assert_int_equal(append_n(j, 13, &seq), 0);
    assert_int_equal(seq, 13);
    assert_int_equal(journal_sync(j), 0);
    uint64_t seqs[11];
    unsigned msgs[11];
    for (unsigned i = 0; i < 10; i++) {
        seqs[i] = i + 1;
        msgs[i] = i + 1;
    }
    seqs[10] = 13;
    msgs[10] = 13;
    expect_events(f, j, seqs, msgs, 11);
    j = journal_free(j);
    j = open_j(f, 0, 320);
    assert_int_equal(stats(j).damaged_total, 0);
    expect_events(f, j, seqs, msgs, 11);
    j = journal_free(j);
}

/* The records a failed fsync takes back are not always those of the sync
 * that waits on them: an append that starts a new segment seals the old one
 * first, and when that fails the next sync takes back the old segment's
 * undurable records and then succeeds on what is left. journal_sync()'s 0
 * says nothing about them: journal_seq_durable() does, by seq, and a record
 * sealed durable before a later loss stays durable. */
static void test_lost_seqs_reported(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 64); /* segments of 2 events */
    uint64_t s1 = 0, s2 = 0;
    assert_int_equal(append_n(j, 1, &s1), 0);
    assert_int_equal(append_n(j, 2, &s2), 0);
    fail_fdatasync = 1; /* the seal of the segment holding 1 and 2 */
    assert_int_equal(append_n(j, 3, NULL), -EIO);
    fail_fdatasync = 0;
    assert_int_equal(journal_sync(j), 0);
    assert_false(journal_seq_durable(j, s1));
    assert_false(journal_seq_durable(j, s2));
    assert_int_equal(journal_peek(j, 100, f->b), 0);

    /* 3, 4 sealed durable by 5's append; then 5 and 6 are lost. */
    uint64_t s3 = 0, s4 = 0, s5 = 0, s6 = 0;
    assert_int_equal(append_n(j, 3, &s3), 0);
    assert_int_equal(s3, 3);
    assert_int_equal(append_n(j, 4, &s4), 0);
    assert_int_equal(append_n(j, 5, &s5), 0);
    assert_int_equal(append_n(j, 6, &s6), 0);
    fail_fdatasync = 1;
    assert_int_equal(append_n(j, 7, NULL), -EIO);
    fail_fdatasync = 0;
    assert_int_equal(journal_sync(j), 0);
    assert_true(journal_seq_durable(j, s3));
    assert_true(journal_seq_durable(j, s4));
    assert_false(journal_seq_durable(j, s5));
    assert_false(journal_seq_durable(j, s6));
    assert_false(journal_seq_durable(j, s1));
    const uint64_t seqs[] = { 3, 4 };
    const unsigned msgs[] = { 3, 4 };
    expect_events(f, j, seqs, msgs, 2);

    /* Not yet synced is not durable either; synced it is. */
    uint64_t s7 = 0;
    assert_int_equal(append_n(j, 7, &s7), 0);
    assert_false(journal_seq_durable(j, s7));
    assert_int_equal(journal_sync(j), 0);
    assert_true(journal_seq_durable(j, s7));
    j = journal_free(j);
}

static journal *racing_journal;
static int racing_append_r;

/* Another thread appends while journal_sync() waits for the disk, starts a
 * new segment, and the old segment's seal fails. */
static void append_and_fail_seal(void)
{
    fail_fdatasync = 0;
    racing_append_r = append_n(racing_journal, 2, NULL);
    if (racing_append_r == 0) {
        fail_fdatasync = 1;
        racing_append_r = append_n(racing_journal, 3, NULL);
        fail_fdatasync = 0;
    }
}

/* A sync's own fsync succeeds after another one on the same file failed
 * (the kernel reports a lost write once): the journal is broken, the data
 * may be gone, and the sync must say so rather than hand the records out. */
static void test_sync_fails_when_broken_meanwhile(void **state)
{
    fixture *f = *state;
    journal *j = open_j(f, 0, 64); /* segments of 2 events */
    uint64_t s1 = 0;
    assert_int_equal(append_n(j, 1, &s1), 0);
    racing_journal = j;
    during_fdatasync = append_and_fail_seal;
    int r = journal_sync(j);
    during_fdatasync = NULL;
    assert_int_equal(racing_append_r, -EIO);
    assert_int_equal(r, -EIO);
    assert_int_equal(journal_peek(j, 100, f->b), 0);
    assert_int_equal(stats(j).durable_seq, 0);
    /* The next sync takes 1 and 2 back and goes on. */
    assert_int_equal(journal_sync(j), 0);
    assert_false(journal_seq_durable(j, s1));
    assert_int_equal(journal_peek(j, 100, f->b), 0);
    j = journal_free(j);
    j = open_j(f, 0, 64);
    assert_int_equal(journal_peek(j, 100, f->b), 0);
    j = journal_free(j);
}

/* ---- Threads ---------------------------------------------------------------------- */

#define THREAD_EVENTS 4000u

static void *appender(void *arg)
{
    journal *j = arg;
    for (unsigned i = 1; i <= THREAD_EVENTS; i++) {
        uint64_t seq;
        if (append_n(j, i, &seq) != 0 || seq != i) {
            return (void *)1;
        }
        if (i % 37 == 0 && journal_sync(j) != 0) {
            return (void *)1;
        }
    }
    return journal_sync(j) == 0 ? NULL : (void *)1;
}

/* The uplink's side, in another thread: every event once per delivery, in
 * order, none missing. */
static void test_threads_append_while_peeking(void **state)
{
    fixture *f = *state;
    _cleanup_(journal_freep) journal *j = open_j(f, 0, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, appender, j), 0);
    uint64_t next = 1;
    while (next <= THREAD_EVENTS) {
        int n = journal_peek(j, 50, f->b);
        assert_true(n >= 0);
        Rackboot__V1__Event **ev = journal_batch_events(f->b);
        for (int i = 0; i < n; i++) {
            assert_int_equal(ev[i]->seq, next);
            next++;
        }
        if (n > 0) {
            assert_int_equal(journal_ack(j, journal_batch_last_seq(f->b)), 0);
        } else {
            usleep(100);
        }
    }
    void *res;
    assert_int_equal(pthread_join(t, &res), 0);
    assert_null(res);
    journal_stats st = stats(j);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.dropped_total, 0);
    assert_true(st.segments <= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_record_roundtrip_and_damage),
        cmocka_unit_test_setup_teardown(test_append_peek_ack_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_caps_and_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_each_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_beyond_highest_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_old_value_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_event_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_filled_when_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_stable_and_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_everything_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_lost_ack_file_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_keeps_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_older_segment_keeps_later_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stray_files_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_events_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_bytes_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smaller_bound_applies_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_append_while_peeking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_full_disk_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_in_new_segment_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_seqs_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_fails_when_broken_meanwhile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
