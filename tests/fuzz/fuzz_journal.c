/* Fuzzes the journal's reading of its own files: the input is one segment
 * file. First the pure framing (header, records, payloads); then the file is
 * put in a journal directory and opened for real, which must repair it
 * without crashing and keep its promises: no seq found in the file is given
 * to a new event, peeks return valid events in increasing seq, and a second
 * open finds the repaired file clean. The journal file is local, not network
 * input, but a crash mid-write can leave any prefix of it and bit rot any
 * byte. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "uplink/journal-internal.h"
#include "uplink/journal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d) {
        return;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || streq(de->d_name, ".."))) {
            continue;
        }
        unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static void remove_dir(void)
{
    cleanup_dir();
    rmdir(dir);
}

/* The framing alone. Returns the highest seq of a good record prefix read
 * the way open reads it (consecutive seqs), 0 if none. */
static uint64_t parse_pure(const uint8_t *data, size_t size, uint64_t *ret_first)
{
    uint64_t first = 0, last = 0;
    *ret_first = 0;
    if (journal_segment_header_parse(data, size, &first) < 0) {
        return 0;
    }
    *ret_first = first;
    size_t off = JOURNAL_SEGMENT_HEADER;
    for (uint64_t want = first;; want++) {
        uint64_t seq;
        const uint8_t *payload;
        size_t plen;
        size_t before = off;
        int r = journal_record_next(data, size, &off, &seq, &payload, &plen);
        if (r <= 0) {
            RB_ASSERT(off == before);
            RB_ASSERT(r == 0 ? off == size : r == -EBADMSG);
            break;
        }
        RB_ASSERT(off > before && off <= size && plen > 0 && plen <= JOURNAL_MAX_PAYLOAD);
        RB_ASSERT(payload >= data + before && payload + plen == data + off);
        Rackboot__V1__Event *ev = rackboot__v1__event__unpack(NULL, plen, payload);
        if (ev) {
            rackboot__v1__event__free_unpacked(ev, NULL);
        }
        if (seq != want) {
            break;
        }
        last = seq;
    }
    return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/fuzz_journal.XXXXXX",
                 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            abort();
        }
        atexit(remove_dir);
    }
    uint64_t first;
    uint64_t last = parse_pure(data, size, &first);

    /* Named for its header (when it has one) so open gets past the name. */
    char path[128];
    snprintf(path, sizeof(path), "%s/%020llu.seg", dir,
             (unsigned long long)(first && first < UINT64_MAX / 2 ? first : 1));
    cleanup_dir();
    if (fileio_write_atomic(path, data, size, 0600) < 0) {
        abort();
    }

    journal_config cfg = { .max_bytes = JOURNAL_MIN_MAX_BYTES, .max_events = 1000 };
    journal *j = NULL;
    journal_batch *b = NULL;
    int r = journal_open(dir, &cfg, &j);
    RB_ASSERT(r == 0);
    RB_ASSERT(journal_batch_new(&b) == 0);

    journal_stats st;
    journal_get_stats(j, &st);
    RB_ASSERT(st.next_seq > last);
    RB_ASSERT(st.bytes <= size || st.bytes == JOURNAL_SEGMENT_HEADER);

    /* Everything it kept comes out valid and in order. */
    uint64_t prev = 0;
    int n;
    while ((n = journal_peek(j, 7, b)) > 0) {
        Rackboot__V1__Event **ev = journal_batch_events(b);
        for (int i = 0; i < n; i++) {
            RB_ASSERT(ev[i]->seq > prev && ev[i]->seq < st.next_seq);
            RB_ASSERT(rbproto_validate_event(ev[i]) == 0);
            prev = ev[i]->seq;
        }
        RB_ASSERT(journal_ack(j, prev) == 0);
    }
    RB_ASSERT(n == 0);

    Rackboot__V1__Event e;
    rackboot__v1__event__init(&e);
    static char install_id[] = "fuzz", host[] = "web17";
    e.install_id = install_id;
    e.host = host;
    e.phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
    uint64_t seq = 0;
    if (st.next_seq < UINT64_MAX) {
        RB_ASSERT(journal_append(j, &e, &seq) >= 0);
        RB_ASSERT(seq == st.next_seq);
    }
    j = journal_free(j);

    /* The repaired journal opens clean and continues. */
    RB_ASSERT(journal_open(dir, &cfg, &j) == 0);
    journal_stats st2;
    journal_get_stats(j, &st2);
    RB_ASSERT(st2.damaged_total == 0);
    RB_ASSERT(st2.next_seq > seq && st2.next_seq >= st.next_seq);
    j = journal_free(j);
    b = journal_batch_free(b);
    return 0;
}
