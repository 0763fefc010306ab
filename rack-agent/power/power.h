/* power/: the agent's BMC power module.
 *
 * Three layers, each usable on its own:
 *
 *   target    a BMC endpoint parsed from a URL (ipmi://[2001:db8::17]:623)
 *             plus credentials, which never travel in the URL;
 *   driver    an ops table per URL scheme with the BMC's primitives (open a
 *             session, read the power state, set the one-time boot device,
 *             chassis control). power_driver_run() runs one request through
 *             them, so the rules every driver must follow (boot device first,
 *             a cycle of an off host powers it on, the state read last) live
 *             once, here, and a Redfish driver is a new file;
 *   executor  runs requests on worker threads off the agent's libuv loop,
 *             one at a time per BMC and a bounded number at once for the
 *             rack, retries what may be transient, and reports on the loop.
 *
 * Driver calls block (libfreeipmi is synchronous) and are made on the
 * executor's worker threads only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum power_op {
    POWER_OP_STATUS = 0,
    POWER_OP_ON,
    POWER_OP_OFF,   /* hard power off */
    POWER_OP_CYCLE, /* off then on; powers an off host on */
    POWER_OP_SOFT,  /* ACPI soft shutdown: the OS decides */
} power_op;

typedef enum power_bootdev {
    POWER_BOOTDEV_NONE = 0,
    POWER_BOOTDEV_PXE,
    POWER_BOOTDEV_DISK,
} power_bootdev;

typedef enum power_state {
    POWER_STATE_UNKNOWN = 0,
    POWER_STATE_ON,
    POWER_STATE_OFF,
} power_state;

/* "status", "on", "off", "cycle", "soft"; "none", "pxe", "disk"; "unknown",
 * "on", "off". to_string returns "?" for a value outside the enum;
 * from_string returns -EINVAL for an unknown name and writes *ret only on
 * success. */
const char *power_op_to_string(power_op op);
int power_op_from_string(const char *s, power_op *ret);
const char *power_bootdev_to_string(power_bootdev dev);
int power_bootdev_from_string(const char *s, power_bootdev *ret);
const char *power_state_to_string(power_state state);
int power_state_from_string(const char *s, power_state *ret);

/* ---- target ------------------------------------------------------------ */

typedef struct power_target power_target;

/* Parses `url` and copies `user` and `password` (either may be "", neither
 * NULL). Accepted:
 *
 *   ipmi://[2001:db8:ff::17]:623   ipmi://[2001:db8::1]
 *   ipmi://192.0.2.7:6230          ipmi://bmc17.example
 *
 * The port defaults to the scheme's (623 for IPMI, RMCP's port). The scheme
 * must be one a driver is registered for (power_driver_lookup()).
 * -EINVAL for anything else: another scheme, a path, query or fragment,
 * an unbracketed IPv6 address, a zone, a bad port, a bad name, and userinfo
 * ("ipmi://admin:pw@host": credentials never go in URLs, which end up in
 * logs and process lists), or credentials the scheme's driver cannot carry
 * (IPMI: user name up to 16 bytes, password up to 20). -ENOMEM.
 * When ret_error is not NULL it gets a malloc'ed one-line reason on failure
 * (which never repeats the password). *ret is written only on success. */
int power_target_parse(const char *url, const char *user, const char *password, power_target **ret,
                       char **ret_error);
power_target *power_target_copy(const power_target *t);
/* Wipes the password from memory before freeing. Accepts NULL. */
power_target *power_target_free(power_target *t);

/* For log lines: "ipmi://[2001:db8:ff::17]:623 user=admin". Never holds the
 * password. Valid as long as the target. */
const char *power_target_to_string(const power_target *t);
const char *power_target_scheme(const power_target *t);
/* The host as written, without brackets: "2001:db8:ff::17", "bmc17.example". */
const char *power_target_host(const power_target *t);
uint16_t power_target_port(const power_target *t);
const char *power_target_user(const power_target *t);
/* Only drivers call this. */
const char *power_target_password(const power_target *t);
/* True when a and b name the same BMC endpoint (host, case-insensitive, and
 * port): the executor runs such jobs one at a time. */
bool power_target_same_endpoint(const power_target *a, const power_target *b);

/* ---- requests and results ------------------------------------------------ */

typedef struct power_request {
    power_op op;
    /* When not NONE, set as the one-time boot device (valid for the next boot
     * only) before op runs. */
    power_bootdev bootdev;
    bool efi; /* with bootdev: ask the firmware for an EFI boot */
} power_request;

#define POWER_MESSAGE_MAX 256

typedef struct power_result {
    int err;           /* 0 or a negative errno */
    power_state state; /* as read at the end of the request */
    bool bootdev_set;  /* the boot device was accepted by the BMC */
    unsigned attempts; /* how many attempts the executor made */
    /* One line for an operator: the BMC's own error, "password rejected by
     * BMC", "BMC did not answer within 10 s". Never holds the password. */
    char message[POWER_MESSAGE_MAX];
} power_result;

/* Sets res->err to err (a negative errno) and res->message from the format
 * (truncated to fit). For drivers. Returns err. */
int power_result_fail(power_result *res, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Errors that may go away by themselves: the BMC did not answer (-ETIMEDOUT),
 * cannot be reached (-EHOSTUNREACH, -ENETUNREACH, -ECONNREFUSED) or is busy
 * (-EBUSY, -EAGAIN). A rejected password (-EACCES) or privilege (-EPERM) never
 * is: retrying it may lock the account. */
bool power_error_is_transient(int err);

/* ---- drivers ------------------------------------------------------------- */

typedef struct power_limits {
    /* One attempt (session and all its commands) should finish in this
     * time; each exchange with the BMC waits at most this long, and no new
     * exchange starts after it. */
    unsigned attempt_timeout_ms;
    /* Dump each request and response, decoded, on stderr (libfreeipmi's
     * debug dump for IPMI): to see what a BMC was sent when it disagrees.
     * RMCP+ never carries the password itself, only HMACs made with it. */
    bool trace;
} power_limits;

/* A driver's session with one BMC, defined by the driver. */
typedef struct power_session power_session;

/* A BMC protocol. Every function may block (for at most about the attempt
 * timeout per exchange) and is called from a worker thread. On failure a
 * function returns a negative errno and fills res->message (power_result_fail)
 * without the password; it leaves res->state and res->bootdev_set alone. */
typedef struct power_driver {
    /* URL scheme, lower case: "ipmi" (model/bmc.h parses the URLs and knows
     * each scheme's default port) */
    const char *scheme;
    /* Optional: refuses credentials the protocol cannot carry (at parse time,
     * so an operator learns before any BMC is asked). */
    int (*check_credentials)(const char *user, const char *password, char **ret_error);
    int (*open)(const power_target *t, const power_limits *lim, power_session **ret,
                power_result *res);
    int (*get_state)(power_session *s, power_state *ret, power_result *res);
    int (*set_bootdev)(power_session *s, power_bootdev dev, bool efi, power_result *res);
    /* op is ON, OFF, CYCLE or SOFT. */
    int (*control)(power_session *s, power_op op, power_result *res);
    /* Ends the session (best effort) and frees it. Accepts NULL. */
    power_session *(*close)(power_session *s);
} power_driver;

/* IPMI 2.0 RMCP+ ("lanplus") on FreeIPMI's libfreeipmi: cipher suite 3
 * (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128), administrator privilege. */
extern const power_driver power_driver_ipmi;

/* The built-in driver for a scheme (case-insensitive), or NULL. */
const power_driver *power_driver_lookup(const char *scheme);

/* One attempt of one request with driver d, synchronously (blocks; call it
 * from a worker thread): open a session, set the boot device if asked, read
 * the state first for CYCLE (an off host gets ON instead: IPMI does not
 * define a power cycle of an off chassis as powering it on), run the op and
 * read the state last. Fills *res (err 0 or negative errno, state,
 * bootdev_set, message) and returns res->err. */
int power_driver_run(const power_driver *d, const power_target *t, const power_request *req,
                     const power_limits *lim, power_result *res);

/* ---- executor ------------------------------------------------------------ */

typedef struct power_executor power_executor;

typedef struct power_executor_options {
    unsigned max_concurrent;     /* BMC operations at once, rack-wide; 0: 4 */
    unsigned attempt_timeout_ms; /* per attempt; 0: 10000 */
    int retries;                 /* extra attempts for transient errors; <0: 2 */
    unsigned backoff_ms;         /* first retry's mean delay (jittered, doubling); 0: 500 */
    unsigned max_queued;         /* jobs waiting or running; 0: 1024 */
    bool trace;                  /* power_limits.trace for every job */
    /* Which driver serves a scheme; NULL: power_driver_lookup. Tests put a
     * fake driver here. */
    const power_driver *(*lookup)(const char *scheme);
} power_executor_options;

/* Called on the loop thread, exactly once per accepted job. `res` is valid
 * during the call only. */
typedef void (*power_done_fn)(void *userdata, const power_result *res);

/* Starts max_concurrent worker threads. `o` may be NULL for the defaults.
 * The executor holds an uv_async_t on `loop`, referenced only while jobs are
 * outstanding, so uv_run(UV_RUN_DEFAULT) returns once every done ran. */
int power_executor_new(uv_loop_t *loop, const power_executor_options *o, power_executor **ret);

/* Queues `req` for target t (copied, password included). Jobs for the same
 * endpoint (power_target_same_endpoint) run one at a time in submission
 * order; others run concurrently, at most max_concurrent at once.
 * -EPROTONOSUPPORT when no driver serves t's scheme, -EAGAIN when
 * max_queued jobs are outstanding, -ESHUTDOWN while being freed, -ENOMEM.
 * On error `done` is never called. Loop thread only. */
int power_executor_submit(power_executor *ex, const power_target *t, const power_request *req,
                          power_done_fn done, void *userdata);

/* Jobs accepted and not yet reported. */
size_t power_executor_pending(const power_executor *ex);

/* Loop thread only, and not from within a done callback. Calls done with
 * -ECANCELED for every job that has not started, waits for running ones
 * (bounded by their attempt timeout; a job waiting to retry stops with its
 * last error) and calls their done, joins the workers and closes the async
 * handle; the memory goes in its close callback, so run the loop afterwards
 * (uv_run) before closing it. Accepts NULL. */
power_executor *power_executor_free(power_executor *ex);
