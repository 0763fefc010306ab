/* store/queue: see queue.h.
 *
 * One worker at a time, not one per pool thread: with SQLite a second
 * writer would only wait for the first, and the order of an agent's
 * batches is kept without locks. The worker drains the whole queue before
 * it returns (a burst of 500 sync builds after an install does not wait
 * for the loop between two of them), and hands finished jobs back through
 * a uv_async_t, so the loop answers each as soon as it is built.
 *
 * Group commit: a run of grouped jobs next to each other in the queue
 * shares one store batch, so 2,000 agents' acks after a fleet-wide install
 * cost a few commits (each an fsync with synchronous=FULL), not 2,000. A
 * group is bounded in jobs and in time, so the first job's answer waits
 * for at most that long; its jobs' `done` run after its commit, in order. */
#include "store/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "metrics/metrics.h"
#include "timeutil.h"
#include "util.h"

/* Store latency buckets, seconds: an SQLite commit with synchronous=FULL
 * is an fsync (a millisecond or so on SSDs, tens on disks); a fleet-wide
 * install's slice or a long listing runs for seconds. */
static const double store_seconds_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10 };

typedef struct job {
    store_queue_work_fn work;
    store_queue_done_fn done;
    void *arg;
    bool grouped; /* store_queue_submit_grouped() */
    int status;   /* for `done`: 0, or -EIO when its group was not committed */
    /* Written by the worker, read by the loop once the job is finished
     * (the mutex hands it over): how long its work took, and for the first
     * job of a group how long the group's commit took. */
    uint64_t work_us, commit_us;
    bool committed; /* commit_us is set */
    struct job *next;
} job;

typedef struct job_list {
    job *head, *tail;
} job_list;

struct store_queue {
    uv_loop_t *loop;
    store *st;
    uv_work_t req;   /* the worker, while `queued` */
    uv_async_t wake; /* finished jobs are ready */
    size_t pending;  /* loop only: submitted, done not yet called */
    bool queued;     /* loop only: req handed to libuv, after-work not yet run */
    bool closing;    /* loop only: store_queue_free() ran */
    bool wake_open;
    /* A group ends after this many jobs, or once it has run this long: the
     * commit comes before any of its jobs is answered. Set before the
     * first job, read by the worker. */
    size_t group_max_jobs;
    uint64_t group_max_us;
    /* Under mu: */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job_list waiting;  /* submitted, not started, oldest first */
    job_list finished; /* work done, done not yet called */
    bool working;      /* the worker may still run a job */
    bool stop;         /* the worker takes no further job */
    /* Loop only: observed as finished jobs are delivered. */
    metrics_histogram job_seconds, commit_seconds;
};

static void list_push(job_list *l, job *j)
{
    j->next = NULL;
    if (l->tail) {
        l->tail->next = j;
    } else {
        l->head = j;
    }
    l->tail = j;
}

static void list_append(job_list *l, job_list *more)
{
    if (!more->head) {
        return;
    }
    if (l->tail) {
        l->tail->next = more->head;
    } else {
        l->head = more->head;
    }
    l->tail = more->tail;
    more->head = more->tail = NULL;
}

static job *list_pop(job_list *l)
{
    job *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head) {
            l->tail = NULL;
        }
    }
    return j;
}

static job *list_take_all(job_list *l)
{
    job *j = l->head;
    l->head = l->tail = NULL;
    return j;
}

/* Under mu: the oldest waiting job, or NULL. */
static job *take_next(store_queue *q)
{
    return q->stop ? NULL : list_pop(&q->waiting);
}

/* Under mu: the next job to join a group, or NULL. */
static job *take_grouped(store_queue *q)
{
    const job *w = q->waiting.head;
    if (q->stop || !w || !w->grouped) {
        return NULL;
    }
    return list_pop(&q->waiting);
}

/* On a pool thread, mu not held: one job's work, timed. */
static void run_job(store_queue *q, job *j)
{
    uint64_t start = now_monotonic_us();
    j->work(q->st, j->arg);
    j->work_us = now_monotonic_us() - start;
}

/* On a pool thread, mu not held: runs `first` (grouped) and the grouped
 * jobs queued behind it in one batch, and commits it; moves them to
 * `group`, their status set. When the batch cannot begin, `first` runs on
 * its own. */
static void run_group(store_queue *q, job *first, job_list *group)
{
    list_push(group, first);
    if (store_batch_begin(q->st) < 0) {
        run_job(q, first);
        return;
    }
    uint64_t deadline = now_monotonic_us() + q->group_max_us;
    size_t n = 0;
    bool open = true;
    for (job *j = first; j;) {
        run_job(q, j);
        n++;
        open = store_batch_open(q->st);
        if (!open || n >= q->group_max_jobs || now_monotonic_us() >= deadline) {
            break;
        }
        pthread_mutex_lock(&q->mu);
        j = take_grouped(q);
        pthread_mutex_unlock(&q->mu);
        if (j) {
            list_push(group, j);
        }
    }
    /* After the backend rolled the whole batch back (disk full, I/O error)
     * nothing in it is stored: each job's caller is told, and its peer
     * sends again. */
    uint64_t commit_start = now_monotonic_us();
    int r = store_batch_end(q->st, open);
    first->commit_us = now_monotonic_us() - commit_start;
    /* A rollback is quick: timed as a commit it would hide the failing
     * disk the commit latency is watched for. */
    first->committed = open && r >= 0;
    if (!open || r < 0) {
        for (job *j = group->head; j; j = j->next) {
            j->status = -EIO;
        }
    }
}

/* On a pool thread: every waiting job, in order. */
static void on_work(uv_work_t *req)
{
    store_queue *q = req->data;
    pthread_mutex_lock(&q->mu);
    job *j;
    while ((j = take_next(q))) {
        pthread_mutex_unlock(&q->mu);
        job_list ran = { NULL, NULL };
        if (j->grouped) {
            run_group(q, j, &ran);
        } else {
            run_job(q, j);
            list_push(&ran, j);
        }
        pthread_mutex_lock(&q->mu);
        list_append(&q->finished, &ran);
        uv_async_send(&q->wake);
    }
    q->working = false;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

static void queue_release(store_queue *q)
{
    if (q->queued || q->wake_open) {
        return; /* libuv still holds the work request or the handle */
    }
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Calls `done` of every finished job. */
static void deliver(store_queue *q, int status)
{
    pthread_mutex_lock(&q->mu);
    job *j = list_take_all(&q->finished);
    pthread_mutex_unlock(&q->mu);
    while (j) {
        job *next = j->next;
        q->pending--;
        if (status >= 0) {
            metrics_histogram_observe(&q->job_seconds, (double)j->work_us / 1e6);
            if (j->committed) {
                metrics_histogram_observe(&q->commit_seconds, (double)j->commit_us / 1e6);
            }
        }
        j->done(j->arg, status < 0 ? status : j->status);
        free(j);
        j = next;
    }
}

static void on_wake(uv_async_t *a)
{
    store_queue *q = a->data;
    deliver(q, q->closing ? -ECANCELED : 0);
}

static void start_worker(store_queue *q);

static void after_work(uv_work_t *req, int status)
{
    store_queue *q = req->data;
    (void)status; /* a cancelled worker ran no job: they are still waiting */
    q->queued = false;
    if (q->closing) {
        queue_release(q);
        return;
    }
    deliver(q, 0);
    pthread_mutex_lock(&q->mu);
    bool more = q->waiting.head != NULL;
    pthread_mutex_unlock(&q->mu);
    if (more) {
        start_worker(q); /* submitted after the worker looked */
    }
}

static void start_worker(store_queue *q)
{
    if (q->queued) {
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->working = true;
    pthread_mutex_unlock(&q->mu);
    q->queued = true;
    q->req.data = q;
    int r = uv_queue_work(q->loop, &q->req, on_work, after_work);
    RB_ASSERT(r == 0); /* libuv refuses only a missing callback */
}

static void on_wake_closed(uv_handle_t *h)
{
    store_queue *q = h->data;
    q->wake_open = false;
    queue_release(q);
}

int store_queue_new(uv_loop_t *loop, const store *parent, store_queue **ret, char **ret_errmsg)
{
    store_queue *q = calloc(1, sizeof(*q));
    if (!q) {
        return -ENOMEM;
    }
    int r = uv_async_init(loop, &q->wake, on_wake);
    if (r < 0) {
        free(q);
        return r;
    }
    q->wake.data = q;
    q->wake_open = true;
    q->loop = loop;
    q->group_max_jobs = STORE_QUEUE_GROUP_MAX_JOBS;
    q->group_max_us = STORE_QUEUE_GROUP_MAX_US;
    RB_ASSERT(metrics_histogram_init(&q->job_seconds, store_seconds_bounds,
                                     ARRAY_SIZE(store_seconds_bounds)) == 0);
    RB_ASSERT(metrics_histogram_init(&q->commit_seconds, store_seconds_bounds,
                                     ARRAY_SIZE(store_seconds_bounds)) == 0);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    r = store_connect(parent, &q->st, ret_errmsg);
    if (r < 0) {
        store_queue_free(q);
        return r;
    }
    *ret = q;
    return 0;
}

static int submit(store_queue *q, store_queue_work_fn work, store_queue_done_fn done, void *arg,
                  bool grouped)
{
    RB_ASSERT(!q->closing);
    job *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->grouped = grouped;
    pthread_mutex_lock(&q->mu);
    list_push(&q->waiting, j);
    pthread_mutex_unlock(&q->mu);
    q->pending++;
    start_worker(q);
    return 0;
}

int store_queue_submit(store_queue *q, store_queue_work_fn work, store_queue_done_fn done,
                       void *arg)
{
    return submit(q, work, done, arg, false);
}

void store_queue_set_group_limits(store_queue *q, size_t max_jobs, uint64_t max_us)
{
    q->group_max_jobs = max_jobs ? max_jobs : 1;
    q->group_max_us = max_us;
}

int store_queue_submit_grouped(store_queue *q, store_queue_work_fn work, store_queue_done_fn done,
                               void *arg)
{
    return submit(q, work, done, arg, true);
}

size_t store_queue_pending(const store_queue *q)
{
    return q ? q->pending : 0;
}

store_queue *store_queue_free(store_queue *q)
{
    if (!q) {
        return NULL;
    }
    q->closing = true;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    job *waiting = list_take_all(&q->waiting);
    pthread_mutex_unlock(&q->mu);
    if (q->queued && uv_cancel((uv_req_t *)&q->req) == 0) {
        pthread_mutex_lock(&q->mu);
        q->working = false; /* it will never run */
        pthread_mutex_unlock(&q->mu);
    }
    /* The job running now uses the connection: let it end. */
    pthread_mutex_lock(&q->mu);
    while (q->working) {
        pthread_cond_wait(&q->cond, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    q->st = store_close(q->st);
    deliver(q, -ECANCELED);
    while (waiting) {
        job *next = waiting->next;
        q->pending--;
        waiting->done(waiting->arg, -ECANCELED);
        free(waiting);
        waiting = next;
    }
    if (q->wake_open && !uv_is_closing((uv_handle_t *)&q->wake)) {
        uv_close((uv_handle_t *)&q->wake, on_wake_closed);
    } else {
        queue_release(q);
    }
    return NULL;
}

int store_queue_register_metrics(const store_queue *q, metrics *m)
{
    int r = metrics_register_histogram(
        m, "rackboot_store_job_duration_seconds",
        "Time the store calls of one queued job took (an API request, an agent's sync or event "
        "batch, the upkeep), on the store's worker thread.",
        NULL, &q->job_seconds);
    if (r >= 0) {
        r = metrics_register_histogram(
            m, "rackboot_store_commit_duration_seconds",
            "Time the commit of one group of agents' jobs took (one transaction, one fsync).", NULL,
            &q->commit_seconds);
    }
    return r;
}
