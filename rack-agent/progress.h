/* progress: the agent's install events and what they change locally.
 *
 * Events the agent sees itself (dhcp_bound, script_served, kernel_fetched,
 * kickstart_fetched, stage2 percent, ...) and the phases installers post are
 * logged and written to the journal (journal.h) before anything else
 * happens to them; the journal is synced once per loop iteration (a burst of
 * events costs one fsync) and then the uplink is told to send.
 *
 * An install that reports `installed` is remembered in STATE_DIR/completed
 * and its intent withdrawn at once: the host's next boot gets no DHCPv6
 * answer and falls through to its disk, whether or not the controller has
 * heard yet. Every later intent set is filtered through the same list, so
 * neither a standalone re-read nor a controller that is behind re-arms it;
 * a new install (a new id: a changed hosts entry, a new `rackboot install`)
 * is not in the list. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "intents.h"
#include "journal.h"
#include "rackboot.pb-c.h"

/* Remembered completed installs; older ones are forgotten past this. */
#define PROGRESS_MAX_COMPLETED 100000u

typedef struct progress progress;

/* `j` may be NULL (standalone: events are only logged). */
int progress_new(uv_loop_t *loop, const char *state_dir, journal *j, progress **ret);
progress *progress_free(progress *p);

/* Runs after each journal sync that made new events durable (the uplink's
 * uplink_events_ready). */
void progress_on_durable(progress *p, void (*fn)(void *userdata), void *userdata);
/* Runs when an install completed (the daemon withdraws its intent). */
void progress_on_completed(progress *p, void (*fn)(void *userdata, const char *install_id),
                           void *userdata);

/* Records one event about `in` (mac, duid may be NULL). */
int progress_emit(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                  const char *message, const uint8_t *mac, const uint8_t *duid, size_t duid_len);

bool progress_is_completed(const progress *p, const char *install_id);
/* An intent set without the completed installs (a new set; `set` is freed). */
int progress_filter(const progress *p, intent_set *set, intent_set **ret);

/* Counters for /metrics: stable addresses, refreshed from the journal by
 * progress_refresh_stats() (call it before rendering). */
typedef struct progress_stats {
    uint64_t events;          /* events recorded */
    uint64_t events_failed;   /* events the journal refused (write errors) */
    uint64_t journal_pending; /* in the journal, not yet stored by the controller */
    uint64_t journal_dropped; /* unacknowledged events dropped to stay bounded */
    uint64_t journal_damaged; /* damaged records found */
    uint64_t completed;       /* completed installs remembered */
} progress_stats;

const progress_stats *progress_get_stats(const progress *p);
void progress_refresh_stats(progress *p);
