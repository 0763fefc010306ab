/* power/ipmi.c: the IPMI 2.0 RMCP+ ("lanplus") driver on FreeIPMI's
 * libfreeipmi. RMCP+ and its crypto are libfreeipmi's; this file maps our
 * primitives onto its command API and its errors onto errnos and operator
 * messages. */
#include <errno.h>
#include <freeipmi/freeipmi.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "power/power-internal.h"
#include "util.h"

/* RMCP's port (IPMI 2.0 §13.1.1). */

/* Cipher suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96 integrity, AES-CBC-128
 * confidentiality (IPMI 2.0 Table 22-20). The one every BMC since IPMI 2.0
 * supports and ipmitool's default; suites 0-2 send commands unencrypted or
 * unauthenticated. */
#define IPMI_CIPHER_SUITE 3

struct power_session {
    ipmi_ctx_t ctx;
    unsigned timeout_ms;
};

static int ipmi_check_credentials(const char *user, const char *password, char **ret_error)
{
    /* IPMI 2.0 §22.19 (Set User Name: 16 bytes), §22.30 (20-byte passwords). */
    if (strlen(user) > IPMI_MAX_USER_NAME_LENGTH) {
        return errmsg_fail(ret_error, -EINVAL, "IPMI user names are at most %d bytes",
                           IPMI_MAX_USER_NAME_LENGTH);
    }
    if (strlen(password) > IPMI_2_0_MAX_PASSWORD_LENGTH) {
        return errmsg_fail(ret_error, -EINVAL, "IPMI 2.0 passwords are at most %d bytes",
                           IPMI_2_0_MAX_PASSWORD_LENGTH);
    }
    return 0;
}

/* libfreeipmi's failure on ctx as a negative errno plus one line for an
 * operator. `what` names the step ("open session", "chassis control"). The
 * libfreeipmi message never holds the password: it is a fixed string per
 * error number. */
static int fail_ctx(power_session *s, ipmi_ctx_t ctx, fiid_obj_t obj, const char *what,
                    power_result *res)
{
    int saved_errno = errno;
    int errnum = ipmi_ctx_errnum(ctx);
    const char *lib = ipmi_ctx_errormsg(ctx);
    unsigned secs = (s->timeout_ms + 999) / 1000;

    switch (errnum) {
    case IPMI_ERR_PASSWORD_INVALID:
    case IPMI_ERR_K_G_INVALID:
        return power_result_fail(res, -EACCES, "password rejected by BMC (%s: %s)", what, lib);
    case IPMI_ERR_USERNAME_INVALID:
        return power_result_fail(res, -EACCES, "user name rejected by BMC (%s: %s)", what, lib);
    case IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT:
    case IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED:
    case IPMI_ERR_PERMISSION:
        return power_result_fail(res, -EPERM,
                                 "BMC refused the administrator privilege for this user (%s: %s)",
                                 what, lib);
    case IPMI_ERR_CONNECTION_TIMEOUT:
    case IPMI_ERR_SESSION_TIMEOUT:
    case IPMI_ERR_MESSAGE_TIMEOUT:
    case IPMI_ERR_PASSWORD_VERIFICATION_TIMEOUT:
    case IPMI_ERR_DRIVER_TIMEOUT:
        return power_result_fail(res, -ETIMEDOUT, "BMC did not answer within %u s (%s: %s)", secs,
                                 what, lib);
    case IPMI_ERR_BMC_BUSY:
    case IPMI_ERR_DRIVER_BUSY:
        return power_result_fail(res, -EBUSY, "BMC busy (%s: %s)", what, lib);
    case IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE:
    case IPMI_ERR_IPMI_2_0_UNAVAILABLE:
    case IPMI_ERR_AUTHENTICATION_TYPE_UNAVAILABLE:
        return power_result_fail(res, -EPROTONOSUPPORT,
                                 "BMC does not offer IPMI 2.0 with cipher suite %d (%s: %s)",
                                 IPMI_CIPHER_SUITE, what, lib);
    case IPMI_ERR_HOSTNAME_INVALID:
        /* libfreeipmi says this when the name does not resolve, too: our
         * parser already checked the syntax. DNS may come back. */
        return power_result_fail(res, -EHOSTUNREACH, "cannot resolve BMC address (%s: %s)", what,
                                 lib);
    case IPMI_ERR_OUT_OF_MEMORY:
        return power_result_fail(res, -ENOMEM, "%s: %s", what, lib);
    case IPMI_ERR_BAD_COMPLETION_CODE:
    case IPMI_ERR_COMMAND_INVALID_OR_UNSUPPORTED: {
        char cc[128] = "";
        if (obj &&
            ipmi_completion_code_strerror_cmd_r(obj, IPMI_NET_FN_CHASSIS_RQ, cc, sizeof(cc)) == 0) {
            return power_result_fail(res,
                                     errnum == IPMI_ERR_BAD_COMPLETION_CODE ? -EPROTO : -EOPNOTSUPP,
                                     "BMC refused %s: %s", what, cc);
        }
        return power_result_fail(res, -EPROTO, "BMC refused %s: %s", what, lib);
    }
    case IPMI_ERR_SYSTEM_ERROR:
        /* A socket error: keep the errno when it says unreachable, so the
         * executor retries it. */
        if (saved_errno == ENETUNREACH || saved_errno == EHOSTUNREACH ||
            saved_errno == ECONNREFUSED || saved_errno == EADDRNOTAVAIL) {
            int e = saved_errno == EADDRNOTAVAIL ? -ENETUNREACH : -saved_errno;
            return power_result_fail(res, e, "BMC unreachable (%s: %s)", what, strerror(-e));
        }
        return power_result_fail(res, -EIO, "%s: %s", what, lib);
    default:
        return power_result_fail(res, -EIO, "%s: %s", what, lib);
    }
}

static power_session *ipmi_close(power_session *s)
{
    if (!s) {
        return NULL;
    }
    if (s->ctx) {
        /* Close Session is best effort; a BMC that does not answer times
         * the session out by itself. */
        ipmi_ctx_close(s->ctx);
        ipmi_ctx_destroy(s->ctx);
    }
    free(s);
    return NULL;
}

static int ipmi_open(const power_target *t, const power_limits *lim, power_session **ret,
                     power_result *res)
{
    char hostport[300];
    if (power_target_format_hostport(t, hostport, sizeof(hostport)) < 0) {
        return power_result_fail(res, -EINVAL, "BMC address too long");
    }
    power_session *s = calloc(1, sizeof(*s));
    if (!s) {
        return power_result_fail(res, -ENOMEM, "out of memory");
    }
    s->timeout_ms = lim->attempt_timeout_ms;
    s->ctx = ipmi_ctx_create();
    if (!s->ctx) {
        ipmi_close(s);
        return power_result_fail(res, -ENOMEM, "out of memory");
    }

    /* libfreeipmi waits up to session_timeout for each answer and resends
     * the request every retransmission_timeout within it (UDP loses
     * packets). A few resends per attempt; the executor retries the attempt. */
    unsigned session_timeout = lim->attempt_timeout_ms;
    unsigned retransmit = session_timeout / 4;
    if (retransmit > 1000) {
        retransmit = 1000;
    }
    if (retransmit < 50) {
        retransmit = 50;
    }
    if (session_timeout <= retransmit) {
        session_timeout = retransmit + 1;
    }

    /* OPEN_SESSION_PRIVILEGE: ask for administrator in the Open Session
     * Request itself, as ipmitool does, instead of libfreeipmi's default
     * "highest level the user has". Some BMCs (and OpenIPMI's ipmi_sim)
     * derive the session keys from the Open Session privilege and then fail
     * every login with "privilege level cannot be obtained"; for a BMC that
     * follows the spec both are the same. */
    unsigned workarounds = IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE;
    int r = ipmi_ctx_open_outofband_2_0(
        s->ctx, hostport, power_target_user(t), power_target_password(t), NULL, 0,
        IPMI_PRIVILEGE_LEVEL_ADMIN, IPMI_CIPHER_SUITE, session_timeout, retransmit, workarounds,
        lim->trace ? IPMI_FLAGS_DEBUG_DUMP : IPMI_FLAGS_DEFAULT);
    if (r < 0) {
        r = fail_ctx(s, s->ctx, NULL, "open session", res);
        ipmi_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

static int ipmi_get_state(power_session *s, power_state *ret, power_result *res)
{
    fiid_obj_t obj = fiid_obj_create(tmpl_cmd_get_chassis_status_rs);
    if (!obj) {
        return power_result_fail(res, -ENOMEM, "out of memory");
    }
    int r = 0;
    uint64_t on = 0;
    if (ipmi_cmd_get_chassis_status(s->ctx, obj) < 0) {
        r = fail_ctx(s, s->ctx, obj, "get chassis status", res);
    } else if (FIID_OBJ_GET(obj, "current_power_state.power_is_on", &on) < 0) {
        r = power_result_fail(res, -EBADMSG, "BMC's chassis status has no power state");
    } else {
        *ret = on ? POWER_STATE_ON : POWER_STATE_OFF;
    }
    fiid_obj_destroy(obj);
    return r;
}

static int ipmi_set_bootdev(power_session *s, power_bootdev dev, bool efi, power_result *res)
{
    uint8_t device;
    switch (dev) {
    case POWER_BOOTDEV_PXE:
        device = IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_PXE;
        break;
    case POWER_BOOTDEV_DISK:
        device = IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_HARD_DRIVE;
        break;
    default:
        return power_result_fail(res, -EINVAL, "no boot device to set");
    }
    fiid_obj_t obj = fiid_obj_create(tmpl_cmd_set_system_boot_options_rs);
    if (!obj) {
        return power_result_fail(res, -ENOMEM, "out of memory");
    }
    /* IPMI 2.0 Table 28-14, parameter 5 (boot flags), data 1: bit 7 "boot
     * flags valid", bit 6 clear = next boot only (one-time), bit 5 "BIOS
     * boot type" 1 = EFI; data 2 bits 5:2 the device. Everything else
     * (lock-outs, console redirection, verbosity) stays at its default. */
    int r = ipmi_cmd_set_system_boot_options_boot_flags(
        s->ctx, IPMI_SYSTEM_BOOT_OPTIONS_PARAMETER_VALID_UNLOCKED,
        efi ? IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_TYPE_EFI
            : IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_TYPE_PC_COMPATIBLE,
        IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID_FOR_NEXT_BOOT,
        IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID,
        IPMI_SYSTEM_BOOT_OPTION_DISABLE,         /* lock out reset button */
        IPMI_SYSTEM_BOOT_OPTION_DISABLE,         /* screen blank */
        device, IPMI_SYSTEM_BOOT_OPTION_DISABLE, /* lock keyboard */
        IPMI_SYSTEM_BOOT_OPTION_DISABLE,         /* CMOS clear */
        IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_CONSOLE_REDIRECTION_DEFAULT,
        IPMI_SYSTEM_BOOT_OPTION_DISABLE, /* lock out sleep button */
        IPMI_SYSTEM_BOOT_OPTION_DISABLE, /* user password bypass */
        IPMI_SYSTEM_BOOT_OPTION_DISABLE, /* force progress event traps */
        IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_FIRMWARE_BIOS_VERBOSITY_DEFAULT,
        IPMI_SYSTEM_BOOT_OPTION_DISABLE, /* lock out via power button */
        IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAGS_SET_MUX_TO_RECOMENDED_AT_END_OF_POST,
        IPMI_SYSTEM_BOOT_OPTION_DISABLE, 0, obj);
    if (r < 0) {
        r = fail_ctx(s, s->ctx, obj, "set boot device", res);
    }
    fiid_obj_destroy(obj);
    return r < 0 ? r : 0;
}

static int ipmi_control(power_session *s, power_op op, power_result *res)
{
    uint8_t control;
    switch (op) {
    case POWER_OP_ON:
        control = IPMI_CHASSIS_CONTROL_POWER_UP;
        break;
    case POWER_OP_OFF:
        control = IPMI_CHASSIS_CONTROL_POWER_DOWN;
        break;
    case POWER_OP_CYCLE:
        control = IPMI_CHASSIS_CONTROL_POWER_CYCLE;
        break;
    case POWER_OP_SOFT:
        control = IPMI_CHASSIS_CONTROL_INITIATE_SOFT_SHUTDOWN;
        break;
    default:
        return power_result_fail(res, -EINVAL, "not a chassis control operation");
    }
    fiid_obj_t obj = fiid_obj_create(tmpl_cmd_chassis_control_rs);
    if (!obj) {
        return power_result_fail(res, -ENOMEM, "out of memory");
    }
    int r = 0;
    if (ipmi_cmd_chassis_control(s->ctx, control, obj) < 0) {
        r = fail_ctx(s, s->ctx, obj, "chassis control", res);
    }
    fiid_obj_destroy(obj);
    return r;
}

const power_driver power_driver_ipmi = {
    .scheme = "ipmi",
    .check_credentials = ipmi_check_credentials,
    .open = ipmi_open,
    .get_state = ipmi_get_state,
    .set_bootdev = ipmi_set_bootdev,
    .control = ipmi_control,
    .close = ipmi_close,
};
