/* install_fsm: see install_fsm.h. */
#include "install_fsm.h"

#include <errno.h>
#include <string.h>

#include "rbproto.h"
#include "util.h"

static const char *const state_names[] = {
    [INSTALL_REQUESTED] = "requested", [INSTALL_DISPATCHED] = "dispatched",
    [INSTALL_BOOTING] = "booting",     [INSTALL_INSTALLING] = "installing",
    [INSTALL_INSTALLED] = "installed", [INSTALL_FAILED] = "failed",
    [INSTALL_CANCELLED] = "cancelled", [INSTALL_TIMED_OUT] = "timed_out",
};

const char *install_state_to_string(install_state s)
{
    if (!install_state_valid(s)) {
        return NULL;
    }
    return state_names[s];
}

int install_state_from_string(const char *name, install_state *ret)
{
    if (!name) {
        return -EINVAL;
    }
    for (int s = INSTALL_STATE_FIRST; s <= INSTALL_STATE_LAST; s++) {
        if (streq(name, state_names[s])) {
            *ret = (install_state)s;
            return 0;
        }
    }
    return -EINVAL;
}

const char *install_input_to_string(install_input in)
{
    switch (in) {
    case INSTALL_INPUT_ACK:
        return "ack";
    case INSTALL_INPUT_EVENT:
        return "event";
    case INSTALL_INPUT_CANCEL:
        return "cancel";
    case INSTALL_INPUT_TIMEOUT:
        return "timeout";
    }
    return NULL;
}

Rackboot__V1__InstallState install_state_to_proto(install_state s)
{
    switch (s) {
    case INSTALL_REQUESTED:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_REQUESTED;
    case INSTALL_DISPATCHED:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_DISPATCHED;
    case INSTALL_BOOTING:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_BOOTING;
    case INSTALL_INSTALLING:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLING;
    case INSTALL_INSTALLED:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED;
    case INSTALL_FAILED:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_FAILED;
    case INSTALL_TIMED_OUT:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_TIMED_OUT;
    case INSTALL_CANCELLED:
        return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_CANCELLED;
    }
    return RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_UNSPECIFIED;
}

bool install_state_is_active(install_state s)
{
    switch (s) {
    case INSTALL_REQUESTED:
    case INSTALL_DISPATCHED:
    case INSTALL_BOOTING:
    case INSTALL_INSTALLING:
        return true;
    case INSTALL_INSTALLED:
    case INSTALL_FAILED:
    case INSTALL_CANCELLED:
    case INSTALL_TIMED_OUT:
        break;
    }
    return false;
}

bool install_state_is_terminal(install_state s)
{
    switch (s) {
    case INSTALL_INSTALLED:
    case INSTALL_FAILED:
    case INSTALL_CANCELLED:
    case INSTALL_TIMED_OUT:
        return true;
    case INSTALL_REQUESTED:
    case INSTALL_DISPATCHED:
    case INSTALL_BOOTING:
    case INSTALL_INSTALLING:
        break;
    }
    return false;
}

int install_phase_target(Rackboot__V1__Phase phase, install_state *ret)
{
    switch (phase) {
    case RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND:
    case RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED:
    case RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS:
        *ret = INSTALL_BOOTING;
        return 1;
    case RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_INSTALLING:
    case RACKBOOT__V1__PHASE__PHASE_WRITING:
    case RACKBOOT__V1__PHASE__PHASE_WRITTEN:
        *ret = INSTALL_INSTALLING;
        return 1;
    case RACKBOOT__V1__PHASE__PHASE_INSTALLED:
    case RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT:
        *ret = INSTALL_INSTALLED;
        return 1;
    case RACKBOOT__V1__PHASE__PHASE_FAILED:
        *ret = INSTALL_FAILED;
        return 1;
    case RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_CACHED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_FAILED:
    /* The BMC's: powering a host on says nothing of where its install is. */
    case RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET:
    case RACKBOOT__V1__PHASE__PHASE_POWER_ON:
    case RACKBOOT__V1__PHASE__PHASE_POWER_OFF:
    case RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE:
    case RACKBOOT__V1__PHASE__PHASE_POWER_STATUS:
    case RACKBOOT__V1__PHASE__PHASE_POWER_FAILED:
        return 0;
    case RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED:
    case _RACKBOOT__V1__PHASE_IS_INT_SIZE:
        break;
    }
    return -EINVAL;
}

Rackboot__V1__Phase install_phase_read_as(Rackboot__V1__Phase phase, install_ending ending)
{
    if (ending == INSTALL_ENDS_FIRST_BOOT && phase == RACKBOOT__V1__PHASE__PHASE_INSTALLED) {
        return RACKBOOT__V1__PHASE__PHASE_WRITTEN;
    }
    return phase;
}

int install_transition(install_state from, install_input input, Rackboot__V1__Phase phase,
                       install_state *ret_next)
{
    install_state next;

    if (!install_state_valid(from)) {
        return -EINVAL;
    }
    switch (input) {
    case INSTALL_INPUT_ACK:
        if (from != INSTALL_REQUESTED) {
            return 0; /* a later generation that still holds it, or a late ack */
        }
        next = INSTALL_DISPATCHED;
        break;
    case INSTALL_INPUT_EVENT: {
        int r = install_phase_target(phase, &next);
        if (r <= 0) {
            return r;
        }
        if (install_state_is_terminal(from)) {
            return 0; /* late events after the end are recorded, nothing more */
        }
        /* Active states are ordered requested < dispatched < booting <
         * installing, and every terminal state lies above them: forwards
         * only, so a late boot event never undoes installing. */
        if (next <= from) {
            return 0;
        }
        break;
    }
    case INSTALL_INPUT_CANCEL:
        if (install_state_is_terminal(from)) {
            return -EALREADY;
        }
        next = INSTALL_CANCELLED;
        break;
    case INSTALL_INPUT_TIMEOUT:
        if (install_state_is_terminal(from)) {
            return -EALREADY;
        }
        if (from == INSTALL_REQUESTED) {
            return -EINVAL; /* no deadline: see install_deadline() */
        }
        next = INSTALL_TIMED_OUT;
        break;
    default:
        return -EINVAL;
    }
    *ret_next = next;
    return 1;
}

static uint64_t add_saturating(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int install_deadline(install_state s, const install_times *t, const install_timeouts *cfg,
                     uint64_t *ret_deadline_ms)
{
    uint64_t start, timeout;

    if (!install_state_valid(s) || !t || !cfg) {
        return -EINVAL;
    }
    switch (s) {
    case INSTALL_DISPATCHED:
    case INSTALL_BOOTING:
        /* An install can reach booting before its ack (events and acks
         * travel separately): the boot phase then starts at booting. */
        start = t->dispatched_ms ? t->dispatched_ms : t->booting_ms;
        if (s == INSTALL_DISPATCHED && t->dispatched_ms == 0) {
            return -EINVAL;
        }
        timeout = cfg->boot_ms;
        break;
    case INSTALL_INSTALLING:
        start = t->installing_ms;
        timeout = cfg->install_ms;
        break;
    default:
        return 0;
    }
    if (start == 0) {
        return -EINVAL;
    }
    if (timeout == 0) {
        return 0;
    }
    *ret_deadline_ms = add_saturating(start, timeout);
    return 1;
}
