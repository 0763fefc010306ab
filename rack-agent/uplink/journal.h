/* The agent's event journal: every event (dhcp_bound, script_served, the
 * installer's progress, ...) is written here, with a per-agent sequence
 * number, before anything else happens to it. The uplink takes batches from
 * the oldest unacknowledged event, delivers them at least once, and
 * acknowledges what the controller stored; only acknowledged events are
 * trimmed. A restarted agent resumes where it stopped.
 *
 * On disk: a directory (e.g. STATE_DIR/journal) of segment files
 * `<first seq, 20 digits>.seg` plus `ack`, the persisted ack point. Each
 * segment is a 16-byte header ("RBJRNL1\n", first seq as big-endian u64)
 * followed by records
 *
 *     u32 payload length | u32 CRC32C | u64 seq | payload
 *
 * (big-endian; the CRC covers length, seq and payload; the payload is a
 * packed rackboot.v1.Event carrying the same seq). Within a segment the seqs
 * are consecutive. Trimming unlinks whole segments, so it never rewrites
 * data.
 *
 * Sequence numbers start at 1 and are never reused, also across restarts: the
 * next seq is past the highest seq found in the segments, their names and the
 * ack point, and past whatever a damaged tail could have held (see below).
 * Gaps are normal (drops, damage); the controller de-duplicates by seq.
 *
 * Durability (batched fsync): journal_append() writes to the page cache only.
 * journal_sync() makes everything appended so far durable (one fdatasync, and
 * a directory fsync after a new segment); call it once per loop iteration
 * after a burst of appends, or set `sync_each_append`. journal_peek() hands
 * out only durable events, so nothing leaves the agent that a power cut could
 * take back. A power cut loses the events appended since the last completed
 * journal_sync() — they were never sent — and at most one torn record; a
 * process crash loses nothing (the page cache survives it). The ack point is
 * persisted when acknowledged segments are trimmed and on journal_free(), so
 * after a crash up to one segment of already-acknowledged events is sent
 * again (at least once, the controller de-duplicates).
 *
 * Damage found at open: the segment is cut at its first bad record (short,
 * bad length, bad CRC, seq out of order) and the good prefix kept; later
 * segments are kept. Each cut counts in `damaged_total`. Nothing after a
 * bad record can be trusted to be framed, so the rest of that segment is lost;
 * the next seq skips past every seq the cut bytes could have held.
 *
 * Bounded: when an append would pass `max_bytes` or `max_events`, the oldest
 * segment is dropped, acknowledged or not (about 1/32 of the journal at a
 * time). New events are never refused for space: the newest events (the
 * installer's `installed`/`failed`) matter most, an append never waits for
 * the controller, and serving never blocks on a full journal. Dropped
 * unacknowledged events count in journal_dropped_total(); the caller logs and
 * exports it.
 *
 * Thread-safety: every function takes an internal mutex, so the loop thread
 * may append while the uplink thread peeks and acks. journal_sync() and the
 * ack file's write in journal_ack() fsync without holding it, so they may run
 * in the libuv thread pool while the loop appends; only an append that starts
 * a new segment syncs the old one under the mutex (once per 1/32 of the
 * journal). journal_free() must not race with other calls. Library code: no
 * logging above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rbproto.h"

typedef struct journal journal;
typedef struct journal_batch journal_batch;

#define JOURNAL_DEFAULT_MAX_BYTES  (64u << 20)
#define JOURNAL_DEFAULT_MAX_EVENTS 100000u
/* Below this a segment could not hold a few records. */
#define JOURNAL_MIN_MAX_BYTES  (64u << 10)
#define JOURNAL_MAX_MAX_BYTES  (UINT64_C(16) << 30)
#define JOURNAL_MAX_MAX_EVENTS 10000000u
/* Largest packed event; a valid one is under 1.5 KiB (rbproto.h limits). */
#define JOURNAL_MAX_PAYLOAD 8192u

typedef struct journal_config {
    uint64_t max_bytes;    /* 0: JOURNAL_DEFAULT_MAX_BYTES */
    uint64_t max_events;   /* 0: JOURNAL_DEFAULT_MAX_EVENTS */
    bool sync_each_append; /* fdatasync in every append instead of journal_sync() */
} journal_config;

typedef struct journal_stats {
    uint64_t next_seq;      /* what the next append gets */
    uint64_t durable_seq;   /* highest seq made durable: peek and ack go up to it */
    uint64_t acked;         /* stored_through, in memory */
    uint64_t pending;       /* retained events not yet acknowledged */
    uint64_t events;        /* retained events, acknowledged or not */
    uint64_t bytes;         /* size of the segment files */
    uint64_t segments;      /* segment files */
    uint64_t dropped_total; /* unacknowledged events dropped for space */
    uint64_t damaged_total; /* damaged records: cut at open (see above), or
                             * skipped by a peek (each time it meets them) */
} journal_stats;

/* Opens (creating it, mode 0700, if missing) the journal in `dir`, repairing
 * what a crash left (see above). `cfg` may be NULL for the defaults.
 * -EINVAL for a config out of range; errnos from the file system. */
int journal_open(const char *dir, const journal_config *cfg, journal **ret);

/* Persists the ack point, syncs, closes. Accepts NULL, returns NULL. */
journal *journal_free(journal *j);

/* Appends `ev` with the next seq (ev->seq is ignored and not written to;
 * ev->time_unix_ms 0 means now). The event is validated as the controller
 * would (-EINVAL, nothing written, no seq used); -E2BIG over
 * JOURNAL_MAX_PAYLOAD. On success *ret_seq (if not NULL) is its seq, and the
 * return value is the number of unacknowledged events dropped to make room
 * (usually 0): log it. A write error (a full disk: -ENOSPC, -EFBIG) leaves
 * the journal as it was, a partial record cut back, and the next append
 * works once there is room. A failed fsync (journal_sync() or here) leaves
 * what was appended since the last good sync unknown on disk: the next
 * append or sync first takes those records back (they were never handed
 * out; their seqs are skipped, as after a power cut) and returns that
 * fsync's error while it cannot. No reopen is needed. */
int journal_append(journal *j, const Rackboot__V1__Event *ev, uint64_t *ret_seq);

/* Makes every appended event durable and so visible to journal_peek(). On
 * failure none of the events appended since the last good sync will ever
 * be (see journal_append()): whoever waits on them should say so. 0 does
 * not mean that every event appended before the call is durable: a failed
 * fsync in an append (sealing a full segment) loses the events before it,
 * and this sync then takes them back and succeeds on what is left. A
 * waiter on particular events asks journal_seq_durable(). */
int journal_sync(journal *j);

/* Whether the event of `seq` (an append's *ret_seq) became durable: false
 * while it waits for a sync, true once one covered it, false for good once
 * a failed fsync took it back (see journal_append()), whichever sync or
 * append it was whose fsync failed. Ask right after the journal_sync() the
 * event waited for: the last few losses are remembered exactly, older ones
 * as one range, so a seq asked about many losses later may be called lost
 * though it is durable (never the other way round). */
bool journal_seq_durable(journal *j, uint64_t seq);

/* Fills `b` with up to `max_events` (at most RBPROTO_MAX_EVENTS) durable
 * events, oldest unacknowledged first, in increasing seq. Returns how many
 * (0: nothing to send). Events already in `b` are replaced. Repeated peeks
 * without an ack return the same events again (at least once). */
int journal_peek(journal *j, size_t max_events, journal_batch *b);

/* The controller stored every event up to `stored_through`: they may be
 * trimmed. An old value is a no-op (0); one above the highest durable seq,
 * which was never handed out, is refused with -ERANGE. When whole segments
 * become acknowledged the ack point is written (fileio_write_atomic) and
 * they are unlinked; a failed write returns its error, keeps the ack in
 * memory and retries on the next ack. */
int journal_ack(journal *j, uint64_t stored_through);

/* The journal's id: 32 hex digits drawn when the journal directory was
 * first used (the file `id`), sent with every batch (EventBatch.journal_id)
 * so the controller tells a new journal's seqs from an old one's. */
const char *journal_id(const journal *j);

uint64_t journal_dropped_total(journal *j);
void journal_get_stats(journal *j, journal_stats *ret);

/* A reusable batch: its buffers keep their size between peeks, so the steady
 * state allocates nothing. */
int journal_batch_new(journal_batch **ret);
journal_batch *journal_batch_free(journal_batch *b);
size_t journal_batch_count(const journal_batch *b);
/* The events, ready for EventBatch.events / n_events. They belong to `b` and
 * stay valid until the next journal_peek() into it or journal_batch_free(). */
Rackboot__V1__Event **journal_batch_events(const journal_batch *b);
/* Seq of the last event (0 if none): what a full ack of the batch acks. */
uint64_t journal_batch_last_seq(const journal_batch *b);

static inline void journal_freep(journal **j)
{
    *j = journal_free(*j);
}
static inline void journal_batch_freep(journal_batch **b)
{
    *b = journal_batch_free(*b);
}
