/* progress: the agent's install events and what they change locally.
 *
 * Events the agent sees itself (dhcp_bound, script_served, kernel_fetched,
 * kickstart_fetched, stage2 percent, ...) and the phases installers post are
 * logged and written to the journal (journal.h) before anything else
 * happens to them; the journal is synced once per loop iteration (a burst of
 * events costs one fsync) and then the uplink is told to send.
 *
 * An install that reports `installed` is remembered in STATE_DIR/completed
 * and its intent withdrawn as soon as the event is durable in the journal
 * (the loop's next sync; at once without a journal): the host's next boot
 * gets no DHCPv6 answer and falls through to its disk, whether or not the
 * controller has heard yet. An `installed` the journal could not take (a
 * full disk, a failed sync) changes nothing: the intent stays for the
 * installer's retry, and the controller hears of the install once. Every later intent set is
 * filtered through the same list, so neither a standalone re-read nor a controller that is behind
 * re-arms it; a new install (a new id: a changed hosts entry, a new `rackboot install`) is not in
 * the list. An image deploy or a Debian installer completes the same way on
 * `first_boot` (the installed system's phone-home:
 * profile_kind_ends_on_first_boot()); before that, its durable `written`
 * (the deploy ramdisk's) or `installed` (the preseed's late_command) is
 * remembered in STATE_DIR/written and marks its intent netboot_done: no
 * DHCPv6 answer or script any more, so the host boots the disk it was
 * installed to, while the phone-home route still knows it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "model/intent.h"
#include "rackboot.pb-c.h"
#include "uplink/journal.h"

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
/* Runs when an install that ends on its first boot is on its disk (an
 * image written, a Debian installer's `installed`): the daemon marks its
 * intent netboot_done (model/intent.h). */
void progress_on_written(progress *p, void (*fn)(void *userdata, const char *install_id),
                         void *userdata);

/* Records one event about `in` (mac, duid may be NULL). A negative errno
 * when the journal refused it (logged and counted; nothing else happens). */
int progress_emit(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                  const char *message, const uint8_t *mac, const uint8_t *duid, size_t duid_len);

/* Records an event of a host rather than of an intent (the power events of
 * powerctl.h: ev->install_id may be empty). Logged, journaled and synced as
 * progress_emit() does; ev->seq and time are the journal's. A negative
 * errno when the journal refused it. */
int progress_emit_host_event(progress *p, const Rackboot__V1__Event *ev);

/* Told once whether a posted event became durable: `r` 0 (an `installed`
 * install is completed just before), or a negative errno (nothing
 * completed; the event will never be sent): the sync's, or -EIO when the
 * event was lost to another append's failed fsync (journal_seq_durable()). */
typedef void (*progress_posted_fn)(void *userdata, int r);
typedef struct progress_post progress_post;

/* An installer's event (POST /progress): recorded as progress_emit() does,
 * then `fn` runs from the loop after the journal sync that covers it, never
 * before this returns; an answer given there is one the installer can trust.
 * A negative errno when the event was not recorded (fn never runs, nothing
 * changed). *ret is for progress_post_detach() until fn ran. */
int progress_post_event(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                        const char *message, progress_posted_fn fn, void *userdata,
                        progress_post **ret);
/* The poster is gone (its request was cancelled): fn will not run. The
 * event still completes its install if it becomes durable, as the
 * controller will then hear of it. */
void progress_post_detach(progress_post *w);

bool progress_is_completed(const progress *p, const char *install_id);
bool progress_is_written(const progress *p, const char *install_id);
/* An intent set without the completed installs, and with the written
 * ones marked netboot_done (a new set; `set` is freed). */
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
