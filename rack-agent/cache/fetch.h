/* Downloads driven by the agent's libuv loop: libcurl's multi socket API
 * (CURLMOPT_SOCKETFUNCTION → one uv_poll per socket, CURLMOPT_TIMERFUNCTION →
 * one uv_timer, curl_multi_socket_action), so no transfer ever blocks the
 * loop on the network. file:// URLs are read by libcurl inside
 * curl_multi_socket_action, i.e. on the loop: they are meant for tests and
 * local mirrors on fast disks.
 *
 * Only http, https and file are allowed, also across redirects, whose number
 * is bounded. A transfer that makes less than `low_speed_limit` bytes/s for
 * `low_speed_time_s` seconds, or cannot connect within `connect_timeout_s`,
 * fails. HTTP statuses >= 400 fail the transfer.
 *
 * The fetcher knows nothing of the cache: bytes go to a data callback, the
 * outcome to a done callback, both on the loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct fetcher fetcher;
typedef struct fetch_transfer fetch_transfer;

typedef struct fetch_limits {
    long connect_timeout_s; /* 0: 10 s */
    long low_speed_limit;   /* bytes/s; 0: 1 */
    long low_speed_time_s;  /* 0: 30 s */
    long max_redirects;     /* 0: none followed; <0: 5 */
} fetch_limits;

/* Receives each piece of the body in order. Returns 0 to continue, or a
 * negative errno to abort the transfer: done is then called with that errno. */
typedef int (*fetch_data_fn)(void *userdata, const void *data, size_t len);

/* r == 0: the whole body was delivered. r < 0: -EIO for network and protocol
 * failures, or the errno a data callback returned. errmsg says what, for an
 * operator: "HTTP 404 Not Found" for a failing status (http_status, else the
 * last status seen or 0), else curl's words ("Failed to connect to 127.0.0.1
 * port 1 after 0 ms: Couldn't connect to server"). The transfer is gone
 * when this runs. */
typedef void (*fetch_done_fn)(void *userdata, int r, long http_status, const char *errmsg);

int fetcher_new(uv_loop_t *loop, const fetch_limits *limits, fetcher **ret);

/* Aborts every transfer (their done callbacks are not called) and closes the
 * fetcher's handles; the memory is released once the loop has run the close
 * callbacks. Accepts NULL. */
void fetcher_close(fetcher *f);

/* Starts fetching `url` (copied). *ret (may be NULL) identifies the transfer
 * until its done callback runs. Returns 0 or -ENOMEM / -EINVAL (done is then
 * not called). */
int fetcher_start(fetcher *f, const char *url, fetch_data_fn data, fetch_done_fn done,
                  void *userdata, fetch_transfer **ret);

/* Aborts a running transfer; its done callback is not called. */
void fetch_transfer_abort(fetch_transfer *t);

/* Transfers running now. */
size_t fetcher_active(const fetcher *f);
