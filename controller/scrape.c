/* scrape: see scrape.h. Everything here runs on the loop thread except
 * count_work(), which runs on the store queue's worker and touches only its
 * job. */
#include "scrape.h"

#include <errno.h>
#include <stdlib.h>

#include "http/server.h"
#include "log.h"
#include "metrics/metrics.h"
#include "store.h"
#include "timeutil.h"
#include "util.h"

/* Prometheus scrapes every 15-60 s; a few connections are plenty, and
 * keep a misbehaving client from holding many descriptors. */
#define SCRAPE_MAX_CONNECTIONS 16u

struct scrape {
    http_server *http;
    metrics *metrics;
    hub *hub;
    store_queue *queue;
    /* Gauges read at each scrape. */
    uint64_t agents_online;
    uint64_t installs[INSTALL_STATE_LAST + 1]; /* by install_state */
    log_ratelimit store_rl;
};

/* One scrape waiting for the store's counts. */
typedef struct count_job {
    scrape *s;
    http_request *req; /* NULL once the server cancelled it */
    uint64_t counts[INSTALL_STATE_LAST + 1];
    int r;
    char errmsg[256];
} count_job;

static void count_work(store *st, void *arg)
{
    count_job *j = arg;
    j->r = store_installs_count(st, j->counts);
    if (j->r < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
}

static void count_cancelled(void *userdata)
{
    count_job *j = userdata;
    j->req = NULL; /* the server is closing: count_done() only frees */
}

static void count_done(void *arg, int status)
{
    count_job *j = arg;
    if (!j->req) {
        free(j);
        return;
    }
    scrape *s = j->s;
    int r = status < 0 ? status : j->r;
    if (r < 0) {
        /* The whole scrape fails rather than serve stale gauges: `up` and
         * the scrape's own error say so to whoever watches. */
        if (status != -ECANCELED && log_ratelimit_ok(&s->store_rl, now_monotonic_ms(), NULL)) {
            log_error("metrics: cannot count installs: %s (%s)", errstr(r),
                      status < 0 ? "not committed" : j->errmsg);
        }
        http_reply_error(j->req, 503, "the store failed");
        free(j);
        return;
    }
    for (install_state st = INSTALL_STATE_FIRST; st <= INSTALL_STATE_LAST; st++) {
        s->installs[st] = j->counts[st];
    }
    ssize_t online = s->hub ? hub_agents_online(s->hub) : 0;
    if (online >= 0) { /* out of memory: the last value stands */
        s->agents_online = (uint64_t)online;
    }
    http_reply_metrics(j->req, s->metrics);
    free(j);
}

static void on_metrics(http_request *req, void *userdata)
{
    scrape *s = userdata;
    count_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_reply_error(req, 503, "out of memory");
        return;
    }
    j->s = s;
    j->req = req;
    if (store_queue_submit(s->queue, count_work, count_done, j) < 0) {
        free(j);
        http_reply_error(req, 503, "out of memory");
        return;
    }
    http_request_on_cancel(req, count_cancelled, j);
}

/* The series this module reads at each scrape. */
static int register_gauges(scrape *s)
{
    int r = metrics_register(s->metrics, METRIC_GAUGE, "rackboot_agents_online",
                             "Rack agents connected now with a proven identity.", NULL,
                             &s->agents_online);
    for (install_state st = INSTALL_STATE_FIRST; r >= 0 && st <= INSTALL_STATE_LAST; st++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "state=\"%s\"", install_state_to_string(st));
        r = metrics_register(s->metrics, METRIC_GAUGE, "rackboot_installs",
                             "Installs on record (past ones included) by state.", labels,
                             &s->installs[st]);
    }
    return r;
}

int scrape_new(uv_loop_t *loop, const scrape_config *cfg, scrape **ret)
{
    if (!cfg->queue || !cfg->api) {
        return -EINVAL;
    }
    scrape *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->hub = cfg->hub;
    s->queue = cfg->queue;
    s->store_rl = (log_ratelimit)LOG_RATELIMIT_INIT(60000, 1);
    int r = metrics_new(&s->metrics);
    if (r >= 0) {
        r = register_gauges(s);
    }
    if (r >= 0 && s->hub) {
        r = hub_register_metrics(s->hub, s->metrics);
    }
    if (r >= 0) {
        r = api_register_metrics(cfg->api, s->metrics);
    }
    if (r >= 0) {
        r = store_queue_register_metrics(cfg->queue, s->metrics);
    }
    if (r >= 0 && cfg->feed) {
        r = feed_register_metrics(cfg->feed, s->metrics);
    }
    http_server_config hc = { .listen = cfg->listen, .max_connections = SCRAPE_MAX_CONNECTIONS };
    if (r >= 0) {
        r = http_server_new(loop, &hc, &s->http);
    }
    if (r >= 0) {
        r = http_server_route(s->http, HTTP_METHOD_GET, "/metrics", on_metrics, s);
    }
    if (r < 0) {
        scrape_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

scrape *scrape_free(scrape *s)
{
    if (!s) {
        return NULL;
    }
    /* Cancels the scrapes waiting for the store (count_cancelled()) before
     * the registry they would render goes. */
    http_server_close(s->http);
    metrics_free(s->metrics);
    free(s);
    return NULL;
}

uint16_t scrape_port(const scrape *s)
{
    return http_server_port(s->http);
}
