/* web/data: JSON reads and the live events stream (see data.h). Store
 * reads run on the store queue: `work` fills a job from the store on a
 * pool thread (jansson values are the job's own), `done` answers on the
 * loop. */
#include "web/data.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install_fsm.h"
#include "log.h"
#include "parse.h"
#include "rbproto.h"
#include "util.h"
#include "web/answer.h"
#include "web/filter.h"
#include "wire.h"

#define JSON_TYPE "application/json"
/* A store callback's "enough": stops the listing, is no error. */
#define STOP (-ECANCELED)

typedef struct feed feed;

struct web_data {
    uv_loop_t *loop;
    store_queue *queue;
    uv_timer_t keepalive;
    feed *feeds;
    size_t n_feeds;
};

/* A live events stream. */
struct feed {
    web_data *d;
    feed *prev, *next;
    http_stream *s;
    uint64_t last_seq;  /* sent up to here */
    bool reading;       /* a store read is out */
    bool dirty;         /* poked while reading: read again */
    bool gone;          /* the stream closed while reading: the read frees it */
    bool waiting_start; /* opened without a seq: finding where events end */
};

typedef enum job_kind { JOB_HOSTS, JOB_RACKS, JOB_EVENTS, JOB_FEED, JOB_ANSWER } job_kind;

typedef struct job {
    web_data *d;
    job_kind kind;
    http_request *req; /* NULL once the request is gone (or for JOB_FEED) */
    feed *feed;
    web_host_filter filter;
    char host[WEB_NAME_MAX + 1]; /* events of one host; "": all */
    uint64_t after;
    uint32_t limit;
    bool from_latest; /* JOB_FEED: only find where the events end */
    uint32_t tail;    /* JOB_EVENTS of every host: the last `tail` seqs */
    /* filled by work */
    json_t *rows;
    size_t n;
    bool more;
    uint64_t last_seq;
    int r;
    /* JOB_ANSWER: the text, or the status and why */
    char *answer;
    size_t answer_len;
    web_answer_kind answer_kind;
    int answer_status; /* HTTP: 200, or the error's */
    char why[256];
} job;

static void job_free(job *j)
{
    json_decref(j->rows);
    free(j->answer);
    free(j);
}

/* ---- store rows as JSON (pool thread) ---- */

static const char *state_name(install_state s)
{
    const char *n = s ? install_state_to_string(s) : NULL;
    return n ? n : "none";
}

static json_t *event_json(const store_event_row *e)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s?, s:I, s:s}", "seq", (json_int_t)e->seq, "time",
                     (json_int_t)e->time_ms, "host", e->host, "install_id", e->install_id, "phase",
                     rbproto_phase_to_string(e->phase), "percent", (json_int_t)e->percent,
                     "message", e->message ? e->message : "");
}

static int add_host(const store_status *st, void *userdata)
{
    job *j = userdata;
    const web_host_filter *f = &j->filter;
    size_t plen = strlen(f->prefix);
    /* Names come in order: past the prefix's range nothing more matches. */
    if (plen && strncmp(st->host, f->prefix, plen) > 0) {
        return STOP;
    }
    if (!web_host_filter_match(f, st)) {
        return 0;
    }
    if (j->n == f->limit) {
        j->more = true;
        return STOP;
    }
    const char *power = st->power_state ? rbproto_power_state_to_string(st->power_state) : NULL;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s?, s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:I}", "host", st->host, "rack",
        st->rack, "state", state_name(st->state), "phase", rbproto_phase_to_string(st->phase),
        "percent", (json_int_t)st->percent, "profile", st->profile ? st->profile : "", "install_id",
        st->install_id ? st->install_id : "", "attempt", (json_int_t)st->attempt, "updated",
        (json_int_t)st->updated_ms, "message", st->message ? st->message : "", "power",
        power ? power : "", "power_updated", (json_int_t)st->power_updated_ms);
    if (!o || json_array_append_new(j->rows, o) < 0) {
        return -ENOMEM;
    }
    j->n++;
    return 0;
}

static int add_rack(const store_rack *r, void *userdata)
{
    job *j = userdata;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "rack", r->name, "agent",
                          r->agent, "version", r->agent_version, "last_seen",
                          (json_int_t)r->last_seen_ms, "generation", (json_int_t)r->generation,
                          "acked_generation", (json_int_t)r->acked_generation, "hosts",
                          (json_int_t)r->hosts, "active_installs", (json_int_t)r->active_installs);
    /* The agent's report, when it made one: null fields say "not reported"
     * (an agent older than the report, or none yet), not "empty". */
    if (o && r->status_ms > 0) {
        json_object_set_new(o, "cache_bytes", json_integer((json_int_t)r->cache_bytes));
        json_object_set_new(o, "cache_limit_bytes",
                            r->cache_limit_bytes > 0
                                ? json_integer((json_int_t)r->cache_limit_bytes)
                                : json_null());
        json_object_set_new(o, "status_time", json_integer((json_int_t)r->status_ms));
    } else if (o) {
        json_object_set_new(o, "cache_bytes", json_null());
        json_object_set_new(o, "cache_limit_bytes", json_null());
        json_object_set_new(o, "status_time", json_null());
    }
    if (o) {
        json_object_set_new(o, "answer_files", json_boolean(r->has_render_context));
        /* A redundant pair: `agent` is the first, `agents` how many. */
        json_object_set_new(o, "agents", json_integer((json_int_t)r->agents));
    }
    if (!o || json_array_append_new(j->rows, o) < 0) {
        return -ENOMEM;
    }
    j->n++;
    return 0;
}

static int add_event(const store_event_row *e, void *userdata)
{
    job *j = userdata;
    json_t *o = event_json(e);
    if (!o || json_array_append_new(j->rows, o) < 0) {
        return -ENOMEM;
    }
    j->n++;
    j->last_seq = e->seq;
    return 0;
}

/* ---- the answer file of a host's install (pool thread) ---- */

#define RENDER_CONTEXT_MAX 4096u /* a packed RenderContext is far smaller */

typedef struct answer_find {
    job *j;
    const Rackboot__V1__RenderContext *ctx; /* NULL: the agent never said */
    bool found;
} answer_find;

static void answer_fail(job *j, int status, const char *why)
{
    j->answer_status = status;
    snprintf(j->why, sizeof(j->why), "%s", why);
}

/* The rack's intents: renders the one of j->host, built as its sync builds
 * it (wire_intent, wire_profile). */
static int answer_of_intent(const store_intent *in, void *userdata)
{
    answer_find *f = userdata;
    job *j = f->j;
    if (!streq(in->host->name, j->host)) {
        return 0;
    }
    f->found = true;
    if (!f->ctx) {
        return STOP;
    }
    wire_arena *a = wire_arena_new();
    if (!a) {
        return -ENOMEM;
    }
    Rackboot__V1__Intent *m = wire_intent(a, in);
    Rackboot__V1__Profile *p = wire_profile(a, in->profile);
    int r = !m || !p ? -ENOMEM : 0;
    if (r == 0) {
        r = web_answer_render(p, m, f->ctx, &j->answer, &j->answer_len, &j->answer_kind);
    }
    wire_arena_free(a);
    if (r == -ENOENT) {
        j->answer_status = 404;
        (void)!snprintf(j->why, sizeof(j->why),
                        "profile %.63s has no answer file (an image profile's host gets a "
                        "NoCloud seed)",
                        in->profile->name);
        return STOP;
    }
    if (r < 0 && r != -ENOMEM) {
        j->answer_status = 500;
        (void)!snprintf(j->why, sizeof(j->why), "the %s cannot be rendered: %.100s",
                        in->profile->kind == PROFILE_DEBIAN_INSTALLER ? "preseed" : "kickstart",
                        errstr(r));
        return STOP;
    }
    return r < 0 ? r : STOP;
}

static void answer_work(store *st, job *j)
{
    store_host h;
    j->answer_status = 200;
    j->r = store_host_get(st, j->host, &h);
    if (j->r == -ENOENT) {
        j->r = 0;
        answer_fail(j, 404, "no such host");
        return;
    }
    if (j->r < 0) {
        return;
    }
    void *blob = NULL;
    size_t len = 0;
    Rackboot__V1__RenderContext *ctx = NULL;
    j->r = store_agent_render_context(st, h.rack, &blob, &len);
    if (j->r == 0 && len <= RENDER_CONTEXT_MAX) {
        ctx = rackboot__v1__render_context__unpack(NULL, len, blob);
        if (ctx && rbproto_validate_render_context(ctx) < 0) {
            rackboot__v1__render_context__free_unpacked(ctx, NULL);
            ctx = NULL;
        }
    }
    free(blob);
    if (j->r == -ENOENT) {
        j->r = 0;
    }
    answer_find f = { .j = j, .ctx = ctx };
    if (j->r >= 0) {
        j->r = store_rack_intents(st, h.rack, NULL, answer_of_intent, &f);
    }
    if (ctx) {
        rackboot__v1__render_context__free_unpacked(ctx, NULL);
    }
    if (j->r == STOP) {
        j->r = 0;
    }
    if (j->r < 0 || j->answer_status != 200) {
        return;
    }
    if (!f.found) {
        answer_fail(j, 404, "the host has no active install");
    } else if (!ctx) {
        j->answer_status = 409;
        /* Truncation is harmless: a name is at most 63 characters. */
        (void)!snprintf(j->why, sizeof(j->why),
                        "rack %.63s: its agent has not reported how it renders (not connected "
                        "since this controller asks, or older than it)",
                        h.rack);
    }
}

static void job_work(store *st, void *arg)
{
    job *j = arg;
    j->rows = json_array();
    if (!j->rows) {
        j->r = -ENOMEM;
        return;
    }
    switch (j->kind) {
    case JOB_ANSWER:
        answer_work(st, j);
        break;
    case JOB_HOSTS: {
        /* The store pages by rack and name; states, phases and the
         * prefix are matched in add_host(). */
        const char *rack = j->filter.rack;
        const char *after = j->filter.after;
        store_page page = {
            .racks = rack[0] ? &rack : NULL,
            .n_racks = rack[0] ? 1 : 0,
            .after = after[0] ? after : NULL,
        };
        j->r = store_status_list(st, &page, add_host, j);
        break;
    }
    case JOB_RACKS:
        j->r = store_racks_list(st, add_rack, j);
        break;
    case JOB_FEED:
        if (j->from_latest) {
            j->r = store_events_last_seq(st, &j->last_seq);
            break;
        }
        /* fall through */
    case JOB_EVENTS:
        if (j->tail) {
            uint64_t last = 0;
            j->r = store_events_last_seq(st, &last);
            if (j->r < 0) {
                break;
            }
            j->after = last > j->tail ? last - j->tail : 0;
        }
        j->last_seq = j->after;
        j->r = store_events_list(st, j->host[0] ? j->host : NULL, j->after, j->limit, add_event, j);
        break;
    }
    if (j->r == STOP) {
        j->r = 0;
    }
}

/* ---- answers (loop) ---- */

static void job_cancel(void *arg)
{
    job *j = arg;
    j->req = NULL;
}

static void reply_json(http_request *req, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    http_reply_owned(req, 200, JSON_TYPE, text, strlen(text));
}

static void feed_done(job *j);

static void answer_done(http_request *req, job *j)
{
    if (j->answer_status != 200) {
        http_reply_error(req, j->answer_status, j->why);
        return;
    }
    /* Which kind, for the page's heading; the text itself is the file. */
    http_request_add_header(req, "X-Rackboot-Answer-Kind", web_answer_kind_name(j->answer_kind));
    char *text = j->answer;
    j->answer = NULL;
    http_reply_owned(req, 200, "text/plain; charset=utf-8", text, j->answer_len);
}

static void job_done(void *arg, int status)
{
    job *j = arg;
    if (j->kind == JOB_FEED) {
        feed_done(j);
        return;
    }
    http_request *req = j->req;
    if (!req) {
        job_free(j);
        return;
    }
    http_request_on_cancel(req, NULL, NULL);
    if (status < 0 || j->r < 0) {
        int r = status < 0 ? status : j->r;
        if (j->r == -ENOENT && j->kind == JOB_EVENTS) {
            http_reply_error(req, 404, "no such host");
        } else {
            log_warn("web: store read failed: %s", errstr(r));
            http_reply_error(req, r == -ECANCELED ? 503 : 500, "cannot read the store");
        }
        job_free(j);
        return;
    }
    if (j->kind == JOB_ANSWER) {
        answer_done(req, j);
        job_free(j);
        return;
    }
    json_t *rows = j->rows;
    j->rows = NULL;
    json_t *o = NULL;
    switch (j->kind) {
    case JOB_HOSTS:
        o = json_pack("{s:o, s:b}", "hosts", rows, "more", j->more);
        break;
    case JOB_RACKS:
        o = json_pack("{s:o}", "racks", rows);
        break;
    default:
        o = json_pack("{s:o, s:I}", "events", rows, "last_seq", (json_int_t)j->last_seq);
        break;
    }
    reply_json(req, o);
    job_free(j);
}

static job *job_new(web_data *d, job_kind kind, http_request *req)
{
    job *j = calloc(1, sizeof(*j));
    if (j) {
        *j = (job){ .d = d, .kind = kind, .req = req };
    }
    return j;
}

/* Submits `j` and parks `req` until it is done. */
static void job_submit(web_data *d, job *j, http_request *req)
{
    if (store_queue_submit(d->queue, job_work, job_done, j) < 0) {
        job_free(j);
        http_reply_error(req, 503, "busy");
        return;
    }
    http_request_on_cancel(req, job_cancel, j);
}

static const char *query_of(void *userdata, const char *key)
{
    return http_request_query(userdata, key);
}

void web_data_hosts(web_data *d, http_request *req)
{
    web_host_filter f;
    const char *why = NULL;
    if (web_host_filter_parse(query_of, req, &f, &why) < 0) {
        http_reply_error(req, 400, why);
        return;
    }
    job *j = job_new(d, JOB_HOSTS, req);
    if (!j) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    j->filter = f;
    job_submit(d, j, req);
}

void web_data_answer(web_data *d, http_request *req)
{
    const char *host = http_request_query(req, "host");
    if (!host || !host[0]) {
        http_reply_error(req, 400, "host: missing");
        return;
    }
    if (strlen(host) > WEB_NAME_MAX || !fleet_name_valid(host)) {
        http_reply_error(req, 400, "host: not a name");
        return;
    }
    job *j = job_new(d, JOB_ANSWER, req);
    if (!j) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    snprintf(j->host, sizeof(j->host), "%s", host);
    job_submit(d, j, req);
}

void web_data_racks(web_data *d, http_request *req)
{
    job *j = job_new(d, JOB_RACKS, req);
    if (!j) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    job_submit(d, j, req);
}

/* ?after=SEQ, else the Last-Event-ID header; 1 when neither is there. */
static int after_of(http_request *req, uint64_t *ret)
{
    const char *v = http_request_query(req, "after");
    if (!v) {
        v = http_request_header(req, "Last-Event-ID");
    }
    *ret = 0;
    if (!v) {
        return 1;
    }
    return parse_u64(v, 0, UINT64_MAX, ret);
}

void web_data_events(web_data *d, http_request *req)
{
    uint64_t after;
    uint32_t limit = WEB_EVENTS_PAGE;
    uint32_t tail = 0;
    const char *lim = http_request_query(req, "limit");
    const char *host = http_request_query(req, "host");
    const char *tl = http_request_query(req, "tail");
    if (after_of(req, &after) < 0 || (lim && parse_u32(lim, 1, WEB_EVENTS_PAGE, &limit) < 0) ||
        (tl && parse_u32(tl, 1, WEB_EVENTS_PAGE, &tail) < 0)) {
        http_reply_error(req, 400, "after: expected a seq; limit, tail: 1 to 500");
        return;
    }
    job *j = job_new(d, JOB_EVENTS, req);
    if (!j) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    if (host) {
        if (strlen(host) > WEB_NAME_MAX) {
            job_free(j);
            http_reply_error(req, 400, "host: not a host name");
            return;
        }
        memcpy(j->host, host, strlen(host) + 1);
    }
    j->after = after;
    j->limit = limit;
    /* One host's events are few next to the fleet's: a tail of them is
     * read from its first (the store reads forwards only). */
    j->tail = host ? 0 : tail;
    job_submit(d, j, req);
}

/* ---- the live feed ---- */

static void feed_free(feed *f)
{
    free(f);
}

static void feed_read(feed *f)
{
    if (f->waiting_start) {
        f->dirty = true; /* read once where to start is known */
        return;
    }
    if (f->reading) {
        f->dirty = true;
        return;
    }
    job *j = job_new(f->d, JOB_FEED, NULL);
    if (!j) {
        return; /* the next poke tries again */
    }
    j->feed = f;
    j->after = f->last_seq;
    j->limit = WEB_EVENTS_PAGE;
    if (store_queue_submit(f->d->queue, job_work, job_done, j) < 0) {
        job_free(j);
        return;
    }
    f->reading = true;
    f->dirty = false;
}

static void feed_done(job *j)
{
    feed *f = j->feed;
    f->reading = false;
    if (f->gone) {
        feed_free(f);
        job_free(j);
        return;
    }
    if (j->from_latest) {
        f->waiting_start = false;
        if (j->r < 0) {
            http_stream_end(f->s);
        } else {
            f->last_seq = j->last_seq;
            if (f->dirty) {
                feed_read(f);
            }
        }
        job_free(j);
        return;
    }
    size_t i;
    json_t *e;
    int r = j->r < 0 ? j->r : 0; /* else a row count */
    json_array_foreach(j->rows, i, e)
    {
        char *data = r == 0 ? json_dumps(e, JSON_COMPACT) : NULL;
        if (!data) {
            r = r < 0 ? r : -ENOMEM;
            break;
        }
        char head[48];
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
        int n = snprintf(head, sizeof(head), "id: %" PRIu64 "\ndata: ", seq);
        r = http_stream_write(f->s, head, (size_t)n);
        if (r == 0) {
            r = http_stream_write(f->s, data, strlen(data));
        }
        if (r == 0) {
            r = http_stream_write(f->s, "\n\n", 2);
        }
        free(data);
        if (r < 0) {
            break;
        }
        f->last_seq = seq;
    }
    if (r < 0) {
        /* A reader that does not keep up (-ENOBUFS) or a failed read: end
         * the stream; EventSource comes back with Last-Event-ID. */
        log_info("web: events stream ended: %s", errstr(r));
        http_stream_end(f->s);
    } else if (j->n == j->limit || f->dirty) {
        feed_read(f);
    }
    job_free(j);
}

static void feed_closed(void *userdata)
{
    feed *f = userdata;
    web_data *d = f->d;
    if (f->prev) {
        f->prev->next = f->next;
    } else {
        d->feeds = f->next;
    }
    if (f->next) {
        f->next->prev = f->prev;
    }
    d->n_feeds--;
    if (f->reading) {
        f->gone = true;
    } else {
        feed_free(f);
    }
}

void web_data_stream(web_data *d, http_request *req)
{
    uint64_t after;
    int from = after_of(req, &after);
    if (from < 0) {
        http_reply_error(req, 400, "after: expected a seq");
        return;
    }
    if (d->n_feeds >= WEB_MAX_STREAMS) {
        http_reply_error(req, 503, "too many live views");
        return;
    }
    feed *f = calloc(1, sizeof(*f));
    if (!f) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    f->d = d;
    f->last_seq = after;
    f->s = http_reply_stream(req, 200, "text/event-stream", feed_closed, f);
    if (!f->s) {
        free(f);
        return;
    }
    f->next = d->feeds;
    if (f->next) {
        f->next->prev = f;
    }
    d->feeds = f;
    d->n_feeds++;
    /* "retry": how long EventSource waits before it reconnects. */
    http_stream_write(f->s, "retry: 2000\n\n", 13);
    if (from == 0) {
        feed_read(f);
        return;
    }
    /* No seq: what comes from now on. */
    job *j = job_new(d, JOB_FEED, NULL);
    if (j) {
        j->feed = f;
        j->from_latest = true;
    }
    if (!j || store_queue_submit(d->queue, job_work, job_done, j) < 0) {
        free(j);
        http_stream_end(f->s);
        return;
    }
    f->reading = true;
    f->waiting_start = true;
}

void web_data_poke(web_data *d)
{
    for (feed *f = d->feeds; f; f = f->next) {
        feed_read(f);
    }
}

void web_data_changed(web_data *d)
{
    /* An event with data: EventSource drops one whose data is empty. */
    static const char change[] = "event: change\ndata: {}\n\n";
    for (feed *f = d->feeds; f; f = f->next) {
        http_stream_write(f->s, change, sizeof(change) - 1);
    }
}

static void on_keepalive(uv_timer_t *t)
{
    web_data *d = t->data;
    for (feed *f = d->feeds; f; f = f->next) {
        /* A comment line: EventSource ignores it, a gone client shows. */
        http_stream_write(f->s, ": keepalive\n\n", 13);
    }
}

int web_data_new(uv_loop_t *loop, store_queue *queue, web_data **ret)
{
    web_data *d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->loop = loop;
    d->queue = queue;
    uv_timer_init(loop, &d->keepalive);
    d->keepalive.data = d;
    uv_timer_start(&d->keepalive, on_keepalive, WEB_KEEPALIVE_MS, WEB_KEEPALIVE_MS);
    *ret = d;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

web_data *web_data_free(web_data *d)
{
    if (d) {
        RB_ASSERT(!d->feeds);
        uv_close((uv_handle_t *)&d->keepalive, on_closed);
    }
    return NULL;
}
