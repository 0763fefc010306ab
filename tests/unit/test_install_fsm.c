/* controller/install_fsm: every (state, input) pair, duplicates, out of
 * order events, per-phase deadlines, terminal states absorbing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "install_fsm.h"
#include "rbproto.h"
#include "util.h"

#define P(x) RACKBOOT__V1__PHASE__PHASE_##x

enum { REQ = INSTALL_REQUESTED, DIS, BOO, INS, DONE, FAIL, CANC, TOUT };
#define NO  0     /* accepted, no move */
#define BAD -1000 /* -EINVAL */
#define ALR -2000 /* -EALREADY */

/* Column order of the table below. */
static const struct {
    install_input input;
    Rackboot__V1__Phase phase;
} columns[] = {
    { INSTALL_INPUT_ACK, 0 },
    { INSTALL_INPUT_CANCEL, 0 },
    { INSTALL_INPUT_TIMEOUT, 0 },
    { INSTALL_INPUT_EVENT, P(DHCP_BOUND) },
    { INSTALL_INPUT_EVENT, P(SCRIPT_SERVED) },
    { INSTALL_INPUT_EVENT, P(KERNEL_FETCHED) },
    { INSTALL_INPUT_EVENT, P(INITRD_FETCHED) },
    { INSTALL_INPUT_EVENT, P(OVERLAY_FETCHED) },
    { INSTALL_INPUT_EVENT, P(KICKSTART_FETCHED) },
    { INSTALL_INPUT_EVENT, P(STAGE2_PROGRESS) },
    { INSTALL_INPUT_EVENT, P(INSTALLING) },
    { INSTALL_INPUT_EVENT, P(INSTALLED) },
    { INSTALL_INPUT_EVENT, P(FAILED) },
    { INSTALL_INPUT_EVENT, P(DUID_LEARNED) },
    { INSTALL_INPUT_EVENT, P(IMAGES_CACHED) },
    { INSTALL_INPUT_EVENT, P(IMAGES_FAILED) },
    { INSTALL_INPUT_EVENT, P(WRITING) },
    { INSTALL_INPUT_EVENT, P(WRITTEN) },
    { INSTALL_INPUT_EVENT, P(FIRST_BOOT) },
    { INSTALL_INPUT_EVENT, P(UNSPECIFIED) },
    { INSTALL_INPUT_EVENT, (Rackboot__V1__Phase)99 },
    { (install_input)0, 0 },
    { (install_input)42, 0 },
};
#define NCOL ARRAY_SIZE(columns)

/* Expected outcome of each (state, column): a state (a move), NO, BAD, ALR. */
// clang-format off
static const int expected[][23] = {
    /*        ack  cancel timeout dhcp scrpt kern initrd ovl  ks   stage2 instng instd fail  duid imgc imgf wrtg wrtn 1stb unsp 99   in0  in42 */
    [REQ]  = { DIS, CANC,  BAD,   BOO, BOO,  BOO, BOO,   BOO, INS, BOO,   INS,   DONE, FAIL, NO,  NO,  NO,  INS, INS, DONE, BAD, BAD, BAD, BAD },
    [DIS]  = { NO,  CANC,  TOUT,  BOO, BOO,  BOO, BOO,   BOO, INS, BOO,   INS,   DONE, FAIL, NO,  NO,  NO,  INS, INS, DONE, BAD, BAD, BAD, BAD },
    [BOO]  = { NO,  CANC,  TOUT,  NO,  NO,   NO,  NO,    NO,  INS, NO,    INS,   DONE, FAIL, NO,  NO,  NO,  INS, INS, DONE, BAD, BAD, BAD, BAD },
    [INS]  = { NO,  CANC,  TOUT,  NO,  NO,   NO,  NO,    NO,  NO,  NO,    NO,    DONE, FAIL, NO,  NO,  NO,  NO,  NO,  DONE, BAD, BAD, BAD, BAD },
    [DONE] = { NO,  ALR,   ALR,   NO,  NO,   NO,  NO,    NO,  NO,  NO,    NO,    NO,   NO,   NO,  NO,  NO,  NO,  NO,  NO,   BAD, BAD, BAD, BAD },
    [FAIL] = { NO,  ALR,   ALR,   NO,  NO,   NO,  NO,    NO,  NO,  NO,    NO,    NO,   NO,   NO,  NO,  NO,  NO,  NO,  NO,   BAD, BAD, BAD, BAD },
    [CANC] = { NO,  ALR,   ALR,   NO,  NO,   NO,  NO,    NO,  NO,  NO,    NO,    NO,   NO,   NO,  NO,  NO,  NO,  NO,  NO,   BAD, BAD, BAD, BAD },
    [TOUT] = { NO,  ALR,   ALR,   NO,  NO,   NO,  NO,    NO,  NO,  NO,    NO,    NO,   NO,   NO,  NO,  NO,  NO,  NO,  NO,   BAD, BAD, BAD, BAD },
};
// clang-format on

static void test_transition_table(void **state)
{
    assert_int_equal(NCOL, 23);
    for (int s = INSTALL_STATE_FIRST; s <= INSTALL_STATE_LAST; s++) {
        for (size_t c = 0; c < NCOL; c++) {
            install_state next = (install_state)77;
            int r = install_transition((install_state)s, columns[c].input, columns[c].phase, &next);
            int want = expected[s][c];
            int got = r == 1           ? (int)next
                      : r == 0         ? NO
                      : r == -EINVAL   ? BAD
                      : r == -EALREADY ? ALR
                                       : r;
            if (got != want) {
                fail_msg("state %s column %zu (%s phase %d): got %d want %d",
                         install_state_to_string((install_state)s), c,
                         install_input_to_string(columns[c].input), (int)columns[c].phase, got,
                         want);
            }
            if (r != 1) {
                assert_int_equal(next, 77); /* written only on a move */
            }
        }
    }
}

static void test_invalid_states(void **state)
{
    install_state next = INSTALL_REQUESTED;
    assert_int_equal(install_transition((install_state)0, INSTALL_INPUT_ACK, 0, &next), -EINVAL);
    assert_int_equal(install_transition((install_state)9, INSTALL_INPUT_CANCEL, 0, &next), -EINVAL);
    assert_int_equal(
        install_transition((install_state)-1, INSTALL_INPUT_EVENT, P(DHCP_BOUND), &next), -EINVAL);
    assert_int_equal(next, INSTALL_REQUESTED);
}

/* Applies a sequence of events and returns the final state. */
static install_state run(install_state s, const Rackboot__V1__Phase *phases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        install_state next;
        int r = install_transition(s, INSTALL_INPUT_EVENT, phases[i], &next);
        assert_true(r == 0 || r == 1);
        if (r == 1) {
            assert_true(next > s); /* never backwards */
            s = next;
        }
    }
    return s;
}

static void test_happy_path_with_duplicates(void **state)
{
    install_state s = INSTALL_REQUESTED, next;
    assert_int_equal(install_transition(s, INSTALL_INPUT_ACK, 0, &next), 1);
    s = next;
    assert_int_equal(s, INSTALL_DISPATCHED);
    assert_int_equal(install_transition(s, INSTALL_INPUT_ACK, 0, &next), 0); /* re-ack */
    static const Rackboot__V1__Phase boot[] = { P(DHCP_BOUND),     P(DHCP_BOUND),
                                                P(SCRIPT_SERVED),  P(KERNEL_FETCHED),
                                                P(INITRD_FETCHED), P(KERNEL_FETCHED),
                                                P(DHCP_BOUND) };
    s = run(s, boot, ARRAY_SIZE(boot));
    assert_int_equal(s, INSTALL_BOOTING);
    static const Rackboot__V1__Phase inst[] = { P(KICKSTART_FETCHED), P(STAGE2_PROGRESS),
                                                P(STAGE2_PROGRESS),   P(INSTALLING),
                                                P(INSTALLING),        P(KICKSTART_FETCHED) };
    s = run(s, inst, ARRAY_SIZE(inst));
    assert_int_equal(s, INSTALL_INSTALLING);
    static const Rackboot__V1__Phase end[] = { P(INSTALLED), P(INSTALLED), P(FAILED),
                                               P(DHCP_BOUND) };
    s = run(s, end, ARRAY_SIZE(end));
    assert_int_equal(s, INSTALL_INSTALLED);
}

static void test_out_of_order(void **state)
{
    install_state next;
    /* installing before booting: straight to installing, then the late
     * boot events change nothing. */
    static const Rackboot__V1__Phase a[] = { P(INSTALLING), P(DHCP_BOUND), P(SCRIPT_SERVED) };
    assert_int_equal(run(INSTALL_DISPATCHED, a, ARRAY_SIZE(a)), INSTALL_INSTALLING);
    /* Events before the ack: booting; the late ack changes nothing. */
    static const Rackboot__V1__Phase b[] = { P(DHCP_BOUND) };
    install_state s = run(INSTALL_REQUESTED, b, 1);
    assert_int_equal(s, INSTALL_BOOTING);
    assert_int_equal(install_transition(s, INSTALL_INPUT_ACK, 0, &next), 0);
    /* installed reported before anything else still ends the install. */
    static const Rackboot__V1__Phase c[] = { P(INSTALLED), P(INSTALLING) };
    assert_int_equal(run(INSTALL_REQUESTED, c, 2), INSTALL_INSTALLED);
    /* failed then installed: the first terminal event wins. */
    static const Rackboot__V1__Phase d[] = { P(FAILED), P(INSTALLED) };
    assert_int_equal(run(INSTALL_BOOTING, d, 2), INSTALL_FAILED);
}

/* How an install ends: a kickstart's `installed` ends it; a Debian
 * installer's (and an image's) reads as `written`, and only first_boot
 * ends it. No other phase reads differently. */
static void test_ending(void **state)
{
    for (int ph = 0; ph <= P(FIRST_BOOT); ph++) {
        Rackboot__V1__Phase phase = (Rackboot__V1__Phase)ph;
        assert_int_equal(install_phase_read_as(phase, INSTALL_ENDS_INSTALLED), phase);
        assert_int_equal(install_phase_read_as(phase, INSTALL_ENDS_FIRST_BOOT),
                         phase == P(INSTALLED) ? P(WRITTEN) : phase);
    }
    static const Rackboot__V1__Phase di[] = { P(KICKSTART_FETCHED), P(INSTALLING), P(INSTALLED),
                                              P(INSTALLING), P(INSTALLED) };
    install_state s = INSTALL_DISPATCHED;
    for (size_t i = 0; i < ARRAY_SIZE(di); i++) {
        install_state next;
        int r = install_transition(s, INSTALL_INPUT_EVENT,
                                   install_phase_read_as(di[i], INSTALL_ENDS_FIRST_BOOT), &next);
        assert_true(r == 0 || r == 1);
        if (r == 1) {
            s = next;
        }
    }
    assert_int_equal(s, INS); /* on its disk, not done */
    assert_int_equal(run(s, (const Rackboot__V1__Phase[]){ P(FIRST_BOOT) }, 1), DONE);
    assert_int_equal(run(INSTALL_DISPATCHED, di, ARRAY_SIZE(di)),
                     DONE); /* a kickstart's ends at installed */
}

static void test_terminal_absorbing(void **state)
{
    for (int s = INSTALL_STATE_FIRST; s <= INSTALL_STATE_LAST; s++) {
        assert_true(install_state_is_active((install_state)s) !=
                    install_state_is_terminal((install_state)s));
        if (!install_state_is_terminal((install_state)s)) {
            continue;
        }
        for (size_t c = 0; c < NCOL; c++) {
            install_state next;
            assert_true(install_transition((install_state)s, columns[c].input, columns[c].phase,
                                           &next) <= 0);
        }
    }
    assert_true(install_state_is_active(INSTALL_REQUESTED));
    assert_true(install_state_is_active(INSTALL_INSTALLING));
    assert_false(install_state_is_active(INSTALL_INSTALLED));
    assert_false(install_state_is_active((install_state)0));
    assert_false(install_state_is_terminal((install_state)0));
    assert_true(install_state_is_terminal(INSTALL_TIMED_OUT));
}

static void test_deadlines(void **state)
{
    const install_timeouts cfg = { .boot_ms = 600000, .install_ms = 3600000 };
    install_times t = { .created_ms = 1000 };
    uint64_t d = 0;

    /* requested: waits for the agent, no deadline */
    assert_int_equal(install_deadline(INSTALL_REQUESTED, &t, &cfg, &d), 0);
    /* dispatched: from dispatch */
    t.dispatched_ms = 5000;
    assert_int_equal(install_deadline(INSTALL_DISPATCHED, &t, &cfg, &d), 1);
    assert_int_equal(d, 605000);
    /* booting: still from dispatch, not from the first boot event */
    t.booting_ms = 90000;
    d = 0;
    assert_int_equal(install_deadline(INSTALL_BOOTING, &t, &cfg, &d), 1);
    assert_int_equal(d, 605000);
    /* booting without an ack: from booting */
    install_times skip = { .created_ms = 1000, .booting_ms = 7000 };
    assert_int_equal(install_deadline(INSTALL_BOOTING, &skip, &cfg, &d), 1);
    assert_int_equal(d, 607000);
    /* installing: install_timeout from installing */
    t.installing_ms = 200000;
    assert_int_equal(install_deadline(INSTALL_INSTALLING, &t, &cfg, &d), 1);
    assert_int_equal(d, 3800000);
    /* terminal: none */
    t.finished_ms = 300000;
    for (int s = INSTALL_INSTALLED; s <= INSTALL_TIMED_OUT; s++) {
        d = 42;
        assert_int_equal(install_deadline((install_state)s, &t, &cfg, &d), 0);
        assert_int_equal(d, 42);
    }
    /* a timeout of 0 disables that phase's deadline only */
    const install_timeouts no_boot = { .boot_ms = 0, .install_ms = 10 };
    assert_int_equal(install_deadline(INSTALL_BOOTING, &t, &no_boot, &d), 0);
    assert_int_equal(install_deadline(INSTALL_INSTALLING, &t, &no_boot, &d), 1);
    assert_int_equal(d, 200010);
    /* saturates instead of wrapping */
    const install_timeouts huge = { .boot_ms = UINT64_MAX, .install_ms = UINT64_MAX };
    assert_int_equal(install_deadline(INSTALL_DISPATCHED, &t, &huge, &d), 1);
    assert_true(d == UINT64_MAX);
    /* missing start times are refused, not guessed */
    install_times none = { .created_ms = 1 };
    assert_int_equal(install_deadline(INSTALL_DISPATCHED, &none, &cfg, &d), -EINVAL);
    assert_int_equal(install_deadline(INSTALL_BOOTING, &none, &cfg, &d), -EINVAL);
    assert_int_equal(install_deadline(INSTALL_INSTALLING, &none, &cfg, &d), -EINVAL);
    assert_int_equal(install_deadline((install_state)0, &t, &cfg, &d), -EINVAL);
}

/* The timeout input and the deadline agree: a state with a deadline accepts
 * a timeout, a state without one refuses it. */
static void test_timeout_matches_deadline(void **state)
{
    const install_timeouts cfg = { .boot_ms = 1, .install_ms = 1 };
    const install_times t = { 1, 2, 3, 4, 5 };
    for (int s = INSTALL_STATE_FIRST; s <= INSTALL_STATE_LAST; s++) {
        uint64_t d;
        install_state next;
        int has = install_deadline((install_state)s, &t, &cfg, &d);
        int r = install_transition((install_state)s, INSTALL_INPUT_TIMEOUT, 0, &next);
        assert_int_equal(has == 1, r == 1);
        if (r == 1) {
            assert_int_equal(next, INSTALL_TIMED_OUT);
        }
    }
}

static void test_names(void **state)
{
    for (int s = INSTALL_STATE_FIRST; s <= INSTALL_STATE_LAST; s++) {
        const char *name = install_state_to_string((install_state)s);
        assert_non_null(name);
        install_state back;
        assert_int_equal(install_state_from_string(name, &back), 0);
        assert_int_equal(back, s);
        /* the same names as the wire */
        assert_string_equal(
            name, rbproto_install_state_to_string(install_state_to_proto((install_state)s)));
    }
    assert_string_equal(install_state_to_string(INSTALL_TIMED_OUT), "timed_out");
    assert_int_equal(install_state_to_proto(INSTALL_TIMED_OUT),
                     RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_TIMED_OUT);
    assert_int_equal(install_state_to_proto((install_state)0),
                     RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_UNSPECIFIED);
    assert_null(install_state_to_string((install_state)0));
    assert_null(install_state_to_string((install_state)9));
    install_state x = INSTALL_BOOTING;
    assert_int_equal(install_state_from_string("none", &x), -EINVAL);
    assert_int_equal(install_state_from_string("Installed", &x), -EINVAL);
    assert_int_equal(install_state_from_string(NULL, &x), -EINVAL);
    assert_int_equal(x, INSTALL_BOOTING);
    assert_string_equal(install_input_to_string(INSTALL_INPUT_TIMEOUT), "timeout");
    assert_null(install_input_to_string((install_input)0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_invalid_states),
        cmocka_unit_test(test_happy_path_with_duplicates),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_terminal_absorbing),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_ending),
        cmocka_unit_test(test_timeout_matches_deadline),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
