#include "cache/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct fetch_transfer {
    fetcher *f;
    CURL *easy;
    fetch_data_fn data;
    fetch_done_fn done;
    void *userdata;
    int data_error; /* errno a data callback returned */
    char errbuf[CURL_ERROR_SIZE];
    fetch_transfer *prev, *next;
};

struct fetcher {
    uv_loop_t *loop;
    CURLM *multi;
    fetch_limits limits;
    uv_timer_t timer;
    bool closing;
    fetch_transfer *transfers; /* running, doubly linked */
    size_t n_active;
    struct sock_ctx *socks; /* watched sockets, doubly linked */
};

/* One per socket libcurl asks us to watch; freed in its close callback. */
typedef struct sock_ctx {
    uv_poll_t poll;
    fetcher *f;
    curl_socket_t fd;
    struct sock_ctx *prev, *next;
} sock_ctx;

static void sock_close(sock_ctx *s);

static void transfer_unlink(fetch_transfer *t)
{
    fetcher *f = t->f;
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        f->transfers = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    t->prev = t->next = NULL;
    f->n_active--;
}

static void transfer_free(fetch_transfer *t)
{
    fetcher *f = t->f;
    curl_multi_remove_handle(f->multi, t->easy);
    curl_easy_cleanup(t->easy);
    free(t);
}

/* RFC 9110 §15's reason phrases for the statuses an origin is likely to
 * send; libcurl gives only the number, and HTTP/2 has no phrase at all. */
static const char *status_reason(long status)
{
    static const struct {
        long status;
        const char *reason;
    } reasons[] = {
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 408, "Request Timeout" },
        { 410, "Gone" },
        { 416, "Range Not Satisfiable" },
        { 429, "Too Many Requests" },
        { 500, "Internal Server Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        if (reasons[i].status == status) {
            return reasons[i].reason;
        }
    }
    return NULL;
}

static void check_done(fetcher *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        fetch_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        RB_ASSERT(t);
        CURLcode code = msg->data.result;
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        int r = 0;
        const char *why = NULL;
        if (code == CURLE_WRITE_ERROR && t->data_error < 0) {
            r = t->data_error;
            why = "aborted by the receiver";
        } else if (code != CURLE_OK) {
            r = -EIO;
            why = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
        }
        /* The message points into the transfer: copy before freeing it. */
        char whybuf[CURL_ERROR_SIZE];
        if (code == CURLE_HTTP_RETURNED_ERROR && status >= 400) {
            /* Not curl's "The requested URL returned error: 404". */
            const char *reason = status_reason(status);
            snprintf(whybuf, sizeof(whybuf), "HTTP %ld%s%s", status, reason ? " " : "",
                     reason ? reason : "");
        } else {
            snprintf(whybuf, sizeof(whybuf), "%s", why ? why : "");
        }
        transfer_unlink(t);
        fetch_done_fn done = t->done;
        void *ud = t->userdata;
        transfer_free(t);
        done(ud, r, status, why ? whybuf : NULL);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(sock_ctx *s)
{
    fetcher *f = s->f;
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        f->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *s = p->data;
    fetcher *f = s->f;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    int running = 0;
    curl_multi_socket_action(f->multi, s->fd, flags, &running);
    check_done(f);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    fetcher *f = userp;
    sock_ctx *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            curl_multi_assign(f->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) {
            return -1;
        }
        s->f = f;
        s->fd = fd;
        if (uv_poll_init_socket(f->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = f->socks;
        if (s->next) {
            s->next->prev = s;
        }
        f->socks = s;
        curl_multi_assign(f->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    return uv_poll_start(&s->poll, events, on_poll) < 0 ? -1 : 0;
}

static void on_timer(uv_timer_t *t)
{
    fetcher *f = t->data;
    int running = 0;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    fetcher *f = userp;
    (void)multi;
    if (f->closing) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&f->timer);
    } else {
        /* 0 means "now": the timer fires on the next loop iteration, never
         * from inside this callback (libcurl forbids re-entering it). */
        uv_timer_start(&f->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fetch_transfer *t = userdata;
    size_t len = size * nmemb;
    int r = t->data(t->userdata, ptr, len);
    if (r < 0) {
        t->data_error = r;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return len;
}

int fetcher_new(uv_loop_t *loop, const fetch_limits *limits, fetcher **ret)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return -EIO;
        }
        global_done = true;
    }
    fetcher *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->loop = loop;
    f->limits = *limits;
    if (f->limits.connect_timeout_s <= 0) {
        f->limits.connect_timeout_s = 10;
    }
    if (f->limits.low_speed_limit <= 0) {
        f->limits.low_speed_limit = 1;
    }
    if (f->limits.low_speed_time_s <= 0) {
        f->limits.low_speed_time_s = 30;
    }
    if (f->limits.max_redirects < 0) {
        f->limits.max_redirects = 5;
    }
    f->multi = curl_multi_init();
    if (!f->multi) {
        free(f);
        return -ENOMEM;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    *ret = f;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void fetcher_close(fetcher *f)
{
    if (!f) {
        return;
    }
    while (f->transfers) {
        fetch_transfer *t = f->transfers;
        transfer_unlink(t);
        transfer_free(t);
    }
    /* Cleanup may still report sockets to remove; they close through
     * on_socket. Timer changes after this point are ignored. */
    curl_multi_cleanup(f->multi);
    f->multi = NULL;
    f->closing = true;
    while (f->socks) {
        sock_close(f->socks);
    }
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

int fetcher_start(fetcher *f, const char *url, fetch_data_fn data, fetch_done_fn done,
                  void *userdata, fetch_transfer **ret)
{
    if (f->closing) {
        return -EINVAL;
    }
    fetch_transfer *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    t->f = f;
    t->data = data;
    t->done = done;
    t->userdata = userdata;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return -ENOMEM;
    }
    CURL *e = t->easy;
    const fetch_limits *lim = &f->limits;
    CURLcode c = curl_easy_setopt(e, CURLOPT_URL, url);
    if (c == CURLE_OK) {
        c = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    }
    if (c == CURLE_OK) {
        c = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (c != CURLE_OK) {
        curl_easy_cleanup(t->easy);
        free(t);
        return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* An aborted transfer (agent shutdown) must not wait for a getaddrinfo()
     * that the threaded resolver still runs: with an unreachable DNS server
     * that is many seconds of a daemon that does not stop. The thread is
     * detached and finishes on its own. */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, lim->max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, lim->max_redirects);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, lim->connect_timeout_s);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, lim->low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, lim->low_speed_time_s);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "rackboot-agent");
    /* Objects are verified by sha256; transfer compression would only cost
     * CPU for kernels and images that are compressed already. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        curl_easy_cleanup(t->easy);
        free(t);
        return -ENOMEM;
    }
    t->next = f->transfers;
    if (t->next) {
        t->next->prev = t;
    }
    f->transfers = t;
    f->n_active++;
    if (ret) {
        *ret = t;
    }
    return 0;
}

void fetch_transfer_abort(fetch_transfer *t)
{
    if (!t) {
        return;
    }
    transfer_unlink(t);
    transfer_free(t);
}

size_t fetcher_active(const fetcher *f)
{
    return f->n_active;
}
