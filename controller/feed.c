/* feed: see feed.h.
 *
 * States: watching (the poll handle on the feed's socket) or reconnecting
 * (a uv_work on the pool, or the retry timer waiting to start one). The
 * poll handle is closed on a loss and made anew after the reconnection,
 * as the socket changes. Memory goes when every handle is closed and no
 * work is out (`pending`). */
#include "feed.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct feed {
    uv_loop_t *loop;
    store_feed *sf;
    feed_change_fn on_change;
    void *userdata;
    uv_poll_t *poll;   /* NULL while reconnecting */
    uv_timer_t safety; /* FEED_SAFETY_MS */
    uv_timer_t retry;  /* FEED_RETRY_MS after a failed reconnection */
    uv_work_t work;    /* the reconnection */
    int reconnect_r;   /* its result */
    unsigned pending;  /* handles open and work out */
    bool stopping;
    uint64_t notifications; /* deploy/METRICS.md: rackboot_feed_notifications_total */
    uint64_t reconnects;    /* rackboot_feed_reconnects_total */
    /* The racks one read named, distinct; `every` past FEED_RACKS_MAX. */
    char racks[FEED_RACKS_MAX][STORE_NAME_MAX + 1];
    size_t n_racks;
    bool every;
    bool events; /* the read brought stored events */
};

static void release(feed *f)
{
    RB_ASSERT(f->pending > 0);
    if (--f->pending == 0) {
        f->sf = store_feed_close(f->sf);
        free(f);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    feed *f = h->data;
    if (h != (uv_handle_t *)&f->safety && h != (uv_handle_t *)&f->retry) {
        free(h); /* the poll handle */
    }
    release(f);
}

static void close_poll(feed *f)
{
    if (f->poll) {
        uv_close((uv_handle_t *)f->poll, on_handle_closed);
        f->poll = NULL;
    }
}

static void reconnect_start(feed *f);
static void on_retry(uv_timer_t *t);

/* A burst of writes to one rack (an install of 100 hosts in one rack is
 * 100 notifications) is one check of it. */
static void note(store_feed_topic topic, const char *rack, void *userdata)
{
    feed *f = userdata;
    if (topic == STORE_FEED_EVENTS) {
        f->events = true;
        return;
    }
    if (f->every) {
        return;
    }
    for (size_t i = 0; i < f->n_racks; i++) {
        if (streq(f->racks[i], rack)) {
            return;
        }
    }
    if (f->n_racks == FEED_RACKS_MAX || strlen(rack) > STORE_NAME_MAX) {
        f->every = true;
        return;
    }
    snprintf(f->racks[f->n_racks++], sizeof(f->racks[0]), "%s", rack);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)events;
    feed *f = p->data;
    f->n_racks = 0;
    f->every = false;
    f->events = false;
    int n = status < 0 ? -EIO : store_feed_read(f->sf, note, f);
    if (n > 0) {
        f->notifications += (uint64_t)n;
        if (f->n_racks > 0 || f->every) {
            log_debug("feed: generation moves announced=%d racks=%zu%s", n, f->n_racks,
                      f->every ? " (every rack)" : "");
        }
        if (f->events) {
            log_debug("feed: events stored through another controller");
        }
        if (f->every) {
            f->on_change(f->userdata, FEED_GENERATION, NULL);
        } else {
            for (size_t i = 0; i < f->n_racks; i++) {
                f->on_change(f->userdata, FEED_GENERATION, f->racks[i]);
            }
        }
        if (f->events) {
            f->on_change(f->userdata, FEED_EVENTS, NULL);
        }
        return;
    }
    if (n == 0) {
        return;
    }
    log_warn("feed: lost the store's change feed, reconnecting: %s",
             status < 0 ? uv_strerror(status) : store_feed_errmsg(f->sf));
    close_poll(f);
    reconnect_start(f);
}

/* Watches the feed's current socket. */
static int watch(feed *f)
{
    int fd = store_feed_fd(f->sf);
    if (fd < 0) {
        return -EIO;
    }
    uv_poll_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    int r = uv_poll_init(f->loop, p, fd);
    if (r < 0) {
        free(p);
        return r;
    }
    p->data = f;
    f->pending++;
    f->poll = p;
    r = uv_poll_start(p, UV_READABLE, on_readable);
    if (r < 0) {
        close_poll(f);
        return r;
    }
    return 0;
}

static void reconnect_work(uv_work_t *w)
{
    feed *f = w->data;
    f->reconnect_r = store_feed_reconnect(f->sf);
}

static void reconnect_done(uv_work_t *w, int status)
{
    feed *f = w->data;
    if (f->stopping || status < 0) {
        release(f);
        return;
    }
    int r = f->reconnect_r;
    if (r >= 0) {
        r = watch(f);
    }
    if (r < 0) {
        log_debug("feed: reconnection failed, again in %u ms: %s", FEED_RETRY_MS,
                  f->reconnect_r < 0 ? store_feed_errmsg(f->sf) : errstr(r));
        uv_timer_start(&f->retry, on_retry, FEED_RETRY_MS, 0);
    } else {
        f->reconnects++;
        log_info("feed: reconnected to the store's change feed");
        /* What moved while it was down was not announced. */
        f->on_change(f->userdata, FEED_GENERATION, NULL);
        f->on_change(f->userdata, FEED_EVENTS, NULL);
    }
    release(f);
}

/* Off the loop: a reconnection blocks for as long as the database takes
 * to answer (or not). */
static void reconnect_start(feed *f)
{
    if (f->stopping) {
        return;
    }
    f->work.data = f;
    int r = uv_queue_work(f->loop, &f->work, reconnect_work, reconnect_done);
    if (r < 0) {
        log_error("feed: cannot reconnect: %s", uv_strerror(r));
        uv_timer_start(&f->retry, on_retry, FEED_RETRY_MS, 0);
        return;
    }
    f->pending++;
}

static void on_retry(uv_timer_t *t)
{
    reconnect_start(t->data);
}

static void on_safety(uv_timer_t *t)
{
    feed *f = t->data;
    f->on_change(f->userdata, FEED_GENERATION, NULL);
    f->on_change(f->userdata, FEED_EVENTS, NULL);
}

int feed_new(uv_loop_t *loop, const store *st, feed_change_fn on_change, void *userdata, feed **ret,
             char **ret_error)
{
    if (!store_shared(st)) {
        *ret = NULL;
        return 0;
    }
    feed *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->loop = loop;
    f->on_change = on_change;
    f->userdata = userdata;
    int r = store_feed_open(st, &f->sf, ret_error);
    if (r < 0) {
        free(f);
        return r;
    }
    uv_timer_init(loop, &f->safety);
    uv_timer_init(loop, &f->retry);
    f->safety.data = f;
    f->retry.data = f;
    f->pending = 2;
    uv_timer_start(&f->safety, on_safety, FEED_SAFETY_MS, FEED_SAFETY_MS);
    r = watch(f);
    if (r < 0) {
        if (ret_error) {
            *ret_error = strdup(errstr(r));
        }
        feed_free(f);
        return r;
    }
    log_info("feed: listening to the store's change feed");
    *ret = f;
    return 0;
}

feed *feed_free(feed *f)
{
    if (!f) {
        return NULL;
    }
    f->stopping = true;
    close_poll(f);
    uv_close((uv_handle_t *)&f->safety, on_handle_closed);
    uv_close((uv_handle_t *)&f->retry, on_handle_closed);
    /* A reconnection still queued is cancelled (reconnect_done runs with
     * UV_ECANCELED); one running ends on its own. */
    (void)uv_cancel((uv_req_t *)&f->work);
    return NULL;
}

int feed_register_metrics(feed *f, metrics *m)
{
    int r = metrics_register(m, METRIC_COUNTER, "rackboot_feed_notifications_total",
                             "Generation moves announced by the store's change feed.", NULL,
                             &f->notifications);
    if (r >= 0) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_feed_reconnects_total",
                             "Reconnections of the store's change feed after a loss.", NULL,
                             &f->reconnects);
    }
    return r;
}
