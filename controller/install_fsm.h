/* install_fsm: the install state machine (issue 5, DESIGN.md "How data
 * flows"), pure: no store, no clock, no I/O.
 *
 *   requested -> dispatched -> booting -> installing -> installed
 *        \            \           \           \-----> failed | timed_out
 *         `------------`-----------`----------------> cancelled | failed
 *
 * Inputs: the agent's ack of a generation that contains the install, an
 * event (by phase), an operator's cancel, and a timeout of the current
 * phase. Events only ever move an install forwards, skipping states when
 * they arrive out of order (an agent may report dhcp_bound before its ack
 * reaches us); a repeated or late event is accepted and changes nothing.
 * Nothing leaves a terminal state.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "rackboot.pb-c.h"

typedef enum install_state {
    INSTALL_REQUESTED = 1, /* recorded, rack generation bumped */
    INSTALL_DISPATCHED,    /* the rack's agent acked a generation holding it */
    INSTALL_BOOTING,       /* first boot event from the host */
    INSTALL_INSTALLING,    /* kickstart fetched or installer running */
    INSTALL_INSTALLED,
    INSTALL_FAILED,
    INSTALL_CANCELLED,
    INSTALL_TIMED_OUT,
} install_state;

#define INSTALL_STATE_FIRST INSTALL_REQUESTED
#define INSTALL_STATE_LAST  INSTALL_TIMED_OUT

typedef enum install_input {
    INSTALL_INPUT_ACK = 1, /* agent acked a generation that includes the install */
    INSTALL_INPUT_EVENT,   /* an event; the phase says which */
    INSTALL_INPUT_CANCEL,  /* operator cancel, or replaced by a new install */
    INSTALL_INPUT_TIMEOUT, /* install_deadline() of the current state passed */
} install_input;

/* Stable lower-case names, the same as rbproto's for the states the wire
 * knows ("requested" ... "cancelled"), plus "timed_out". NULL / -EINVAL for
 * unknown values. */
const char *install_state_to_string(install_state s);
int install_state_from_string(const char *name, install_state *ret);
const char *install_input_to_string(install_input in);

/* The wire value (the same names, see rbproto_install_state_to_string). */
Rackboot__V1__InstallState install_state_to_proto(install_state s);

/* One of the states above (install_state_to_proto() is a switch over them,
 * so a state added to the enum is caught there by -Wswitch). */
static inline bool install_state_valid(install_state s)
{
    return install_state_to_proto(s) != RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_UNSPECIFIED;
}

/* Active: the intent is out (or about to be) at the agent. A host has at
 * most one active install. Terminal: nothing moves it any more. Every valid
 * state is exactly one of the two. */
bool install_state_is_active(install_state s);
bool install_state_is_terminal(install_state s);

/* The state an event of this phase leads to: BOOTING for dhcp_bound,
 * script_served, kernel/initrd/overlay_fetched and stage2_progress (dracut
 * fetches stage2 before the installer starts, so its progress is still the
 * boot; once installing, it keeps installing); INSTALLING for
 * kickstart_fetched and installing; INSTALLED; FAILED. 0 for phases that
 * say nothing about the host's progress (duid_learned, images_cached,
 * images_failed: the agent retries image fetches and reports FAILED itself
 * when it gives up). -EINVAL for UNSPECIFIED and unknown phases. */
int install_phase_target(Rackboot__V1__Phase phase, install_state *ret);

/* What ends an install (model/profile.h profile_kind_ends_on_first_boot()):
 * the installer's `installed` (kickstart profiles), or only the installed
 * system's first boot, its phone-home (image deploys, the Debian
 * installer). */
typedef enum install_ending {
    INSTALL_ENDS_INSTALLED = 0,
    INSTALL_ENDS_FIRST_BOOT,
} install_ending;

/* An event's phase as the transition function reads it for an install that
 * ends a given way. For INSTALL_ENDS_FIRST_BOOT, `installed` says only that
 * the system is on its disk, as an image's `written` does: it reads as
 * `written`, so the install stays INSTALLING until `first_boot`. Every
 * other phase, and every phase of an INSTALL_ENDS_INSTALLED install, reads
 * as itself. (Status still shows the phase as reported.) */
Rackboot__V1__Phase install_phase_read_as(Rackboot__V1__Phase phase, install_ending ending);

/* The one transition function. `phase` is only read for
 * INSTALL_INPUT_EVENT.
 * Returns
 *   1         the install moves: *ret_next is the new state;
 *   0         accepted, no move: a repeated ack, a duplicate or late event,
 *             an event in a terminal state, a phase without a target. The
 *             caller still records the event;
 *   -EINVAL   unknown state, input or phase, or a timeout in a state that has
 *             no deadline (requested: the agent may be offline for a while,
 *             and the intent waits for it);
 *   -EALREADY cancel or timeout of an install that has already ended.
 * *ret_next is written only when 1 is returned. */
int install_transition(install_state from, install_input input, Rackboot__V1__Phase phase,
                       install_state *ret_next);

/* When each state was entered, Unix ms; 0 = never. */
typedef struct install_times {
    uint64_t created_ms;
    uint64_t dispatched_ms;
    uint64_t booting_ms;
    uint64_t installing_ms;
    uint64_t finished_ms;
} install_times;

/* Per-phase timeouts from the config ([installs] boot_timeout,
 * install_timeout), in ms; 0 disables that timeout. */
typedef struct install_timeouts {
    uint64_t boot_ms;    /* dispatched and booting: from dispatch until installing */
    uint64_t install_ms; /* installing: until installed */
} install_timeouts;

/* When the current phase of an install in state `s` times out:
 *   dispatched, booting: (dispatched_ms, or booting_ms when the install
 *                        skipped dispatched) + boot_ms;
 *   installing:          installing_ms + install_ms.
 * Returns 1 and writes *ret_deadline_ms (saturating at UINT64_MAX), 0 when
 * the state has no deadline (requested, terminal states, a timeout of 0),
 * -EINVAL for an unknown state or a missing start time. */
int install_deadline(install_state s, const install_times *t, const install_timeouts *cfg,
                     uint64_t *ret_deadline_ms);
