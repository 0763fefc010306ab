/* power/executor.c: BMC requests off the loop, results on it.
 *
 * Worker threads of our own, not uv_queue_work: a BMC request blocks for up
 * to (1 + retries) attempt timeouts plus backoff, half a minute with the
 * defaults, and libuv's pool is shared by the whole process (file system
 * requests, getaddrinfo) with four threads by default. Four stuck BMCs would
 * stall every uv_fs call in the agent. Our own max_concurrent threads bound
 * the rack's BMC load by construction and leave libuv's pool alone.
 *
 * Jobs move pending -> running -> finished under one mutex. A worker takes
 * the oldest pending job whose endpoint has no running job, so jobs for one
 * BMC run one at a time in submission order and others overtake them only
 * when that BMC is busy. Finished jobs are handed to the loop through an
 * uv_async_t (sends coalesce; the callback drains the whole list). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "power/power-internal.h"
#include "timeutil.h"
#include "util.h"

#define DEFAULT_MAX_CONCURRENT     4
#define DEFAULT_ATTEMPT_TIMEOUT_MS 10000
#define DEFAULT_RETRIES            2
#define DEFAULT_BACKOFF_MS         500
#define DEFAULT_MAX_QUEUED         1024
#define MAX_BACKOFF_MS             10000

typedef struct power_job power_job;
struct power_job {
    power_executor *ex;
    const power_driver *driver;
    power_target *target;
    power_request req;
    power_done_fn done;
    void *userdata;
    power_result res;
    power_job *next;
};

typedef struct job_list {
    power_job *head, *tail;
} job_list;

struct power_executor {
    uv_loop_t *loop;
    uv_async_t async; /* freed in its close callback, with the executor */
    power_executor_options opt;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* new work, a BMC became free, or stopping */
    pthread_t *threads;
    unsigned n_threads;
    /* Under lock: */
    job_list pending;  /* not started, submission order */
    job_list running;  /* at most n_threads */
    job_list finished; /* for the loop */
    bool stopping;

    /* Loop thread only: */
    size_t outstanding; /* accepted, done not yet called */
    bool referenced;    /* async handle keeps the loop alive */
    bool freeing;
};

static void list_append(job_list *l, power_job *j)
{
    j->next = NULL;
    if (l->tail) {
        l->tail->next = j;
    } else {
        l->head = j;
    }
    l->tail = j;
}

/* Unlinks j, whose predecessor is prev (NULL for the head). */
static void list_unlink(job_list *l, power_job *prev, power_job *j)
{
    if (prev) {
        prev->next = j->next;
    } else {
        l->head = j->next;
    }
    if (l->tail == j) {
        l->tail = prev;
    }
    j->next = NULL;
}

static void list_remove(job_list *l, power_job *j)
{
    power_job *prev = NULL;
    for (power_job *p = l->head; p; prev = p, p = p->next) {
        if (p == j) {
            list_unlink(l, prev, j);
            return;
        }
    }
    RB_ASSERT(!"job not in list");
}

static power_job *job_free(power_job *j)
{
    if (j) {
        power_target_free(j->target);
        free(j);
    }
    return NULL;
}

/* Under lock: the oldest pending job whose BMC is idle, unlinked. */
static power_job *take_runnable(power_executor *ex)
{
    power_job *prev = NULL;
    for (power_job *j = ex->pending.head; j; prev = j, j = j->next) {
        bool busy = false;
        for (power_job *r = ex->running.head; r && !busy; r = r->next) {
            busy = power_target_same_endpoint(r->target, j->target);
        }
        if (!busy) {
            list_unlink(&ex->pending, prev, j);
            return j;
        }
    }
    return NULL;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The delay before retry number n (1-based): backoff_ms doubling, capped,
 * drawn uniformly from [d/2, 3d/2) so that the racks' agents retrying one
 * flaky switch do not all come back at once. */
static unsigned backoff_delay_ms(const power_executor_options *o, unsigned n, uint64_t *rng)
{
    uint64_t d = o->backoff_ms;
    for (unsigned i = 1; i < n && d < MAX_BACKOFF_MS; i++) {
        d *= 2;
    }
    if (d > MAX_BACKOFF_MS) {
        d = MAX_BACKOFF_MS;
    }
    if (d == 0) {
        return 0;
    }
    return (unsigned)(d / 2 + xorshift64(rng) % d);
}

/* Sleeps ms unless the executor stops first. Under lock. Returns false when
 * stopping. */
static bool wait_unless_stopping(power_executor *ex, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!ex->stopping) {
        if (pthread_cond_timedwait(&ex->cond, &ex->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    return !ex->stopping;
}

static void run_job(power_executor *ex, power_job *j)
{
    const power_limits lim = { .attempt_timeout_ms = ex->opt.attempt_timeout_ms,
                               .trace = ex->opt.trace };
    unsigned max_attempts = 1 + (unsigned)ex->opt.retries;
    uint64_t rng = now_monotonic_us() ^ (uintptr_t)j ^ 0x9e3779b97f4a7c15ULL;
    const char *who = power_target_to_string(j->target);

    for (unsigned attempt = 1;; attempt++) {
        log_info("power start target=%s op=%s bootdev=%s efi=%d attempt=%u/%u", who,
                 power_op_to_string(j->req.op), power_bootdev_to_string(j->req.bootdev), j->req.efi,
                 attempt, max_attempts);
        j->res.attempts = attempt;
        int r = power_driver_run(j->driver, j->target, &j->req, &lim, &j->res);
        if (r == 0 || !power_error_is_transient(r) || attempt >= max_attempts) {
            return;
        }
        unsigned delay = backoff_delay_ms(&ex->opt, attempt, &rng);
        char q[POWER_MESSAGE_MAX + 16];
        log_info("power attempt failed target=%s err=%d message=%s retry_in_ms=%u", who, r,
                 log_quote(q, sizeof(q), j->res.message), delay);
        pthread_mutex_lock(&ex->lock);
        bool go_on = wait_unless_stopping(ex, delay);
        pthread_mutex_unlock(&ex->lock);
        if (!go_on) {
            /* Keep the last error: it says what the BMC did. */
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    power_executor *ex = arg;

    pthread_mutex_lock(&ex->lock);
    for (;;) {
        if (ex->stopping) {
            break;
        }
        power_job *j = take_runnable(ex);
        if (!j) {
            pthread_cond_wait(&ex->cond, &ex->lock);
            continue;
        }
        list_append(&ex->running, j);
        pthread_mutex_unlock(&ex->lock);

        run_job(ex, j);

        pthread_mutex_lock(&ex->lock);
        list_remove(&ex->running, j);
        list_append(&ex->finished, j);
        /* The job's BMC is free: a job queued behind it may run now. */
        pthread_cond_broadcast(&ex->cond);
        uv_async_send(&ex->async);
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

static void report(power_executor *ex, power_job *j)
{
    char q[POWER_MESSAGE_MAX + 16];
    log_info("power done target=%s op=%s err=%d state=%s bootdev_set=%d attempts=%u message=%s",
             power_target_to_string(j->target), power_op_to_string(j->req.op), j->res.err,
             power_state_to_string(j->res.state), j->res.bootdev_set, j->res.attempts,
             log_quote(q, sizeof(q), j->res.message));
    RB_ASSERT(ex->outstanding > 0);
    ex->outstanding--;
    j->done(j->userdata, &j->res);
}

static void update_ref(power_executor *ex)
{
    if (ex->outstanding > 0 && !ex->referenced) {
        uv_ref((uv_handle_t *)&ex->async);
        ex->referenced = true;
    } else if (ex->outstanding == 0 && ex->referenced) {
        uv_unref((uv_handle_t *)&ex->async);
        ex->referenced = false;
    }
}

static void drain_finished(power_executor *ex)
{
    pthread_mutex_lock(&ex->lock);
    power_job *list = ex->finished.head;
    ex->finished = (job_list){ 0 };
    pthread_mutex_unlock(&ex->lock);

    while (list) {
        power_job *j = list;
        list = j->next;
        report(ex, j);
        job_free(j);
    }
    update_ref(ex);
}

static void on_async(uv_async_t *a)
{
    drain_finished(a->data);
}

static void on_closed(uv_handle_t *h)
{
    power_executor *ex = h->data;
    pthread_mutex_destroy(&ex->lock);
    pthread_cond_destroy(&ex->cond);
    free(ex->threads);
    free(ex);
}

int power_executor_new(uv_loop_t *loop, const power_executor_options *o, power_executor **ret)
{
    power_executor_options opt = o ? *o : (power_executor_options){ .retries = -1 };
    if (opt.max_concurrent == 0) {
        opt.max_concurrent = DEFAULT_MAX_CONCURRENT;
    }
    if (opt.attempt_timeout_ms == 0) {
        opt.attempt_timeout_ms = DEFAULT_ATTEMPT_TIMEOUT_MS;
    }
    if (opt.retries < 0) {
        opt.retries = DEFAULT_RETRIES;
    }
    if (opt.backoff_ms == 0) {
        opt.backoff_ms = DEFAULT_BACKOFF_MS;
    }
    if (opt.max_queued == 0) {
        opt.max_queued = DEFAULT_MAX_QUEUED;
    }
    if (!opt.lookup) {
        opt.lookup = power_driver_lookup;
    }
    if (opt.max_concurrent > 256 || opt.retries > 100) {
        return -EINVAL;
    }

    power_executor *ex = calloc(1, sizeof(*ex));
    if (!ex) {
        return -ENOMEM;
    }
    ex->loop = loop;
    ex->opt = opt;
    ex->threads = calloc(opt.max_concurrent, sizeof(*ex->threads));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* backoff waits ignore clock jumps */
    int r = pthread_cond_init(&ex->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!ex->threads || r != 0) {
        if (r == 0) {
            pthread_cond_destroy(&ex->cond);
        }
        free(ex->threads);
        free(ex);
        return -ENOMEM;
    }
    pthread_mutex_init(&ex->lock, NULL);
    r = uv_async_init(loop, &ex->async, on_async);
    if (r < 0) {
        pthread_mutex_destroy(&ex->lock);
        pthread_cond_destroy(&ex->cond);
        free(ex->threads);
        free(ex);
        return r;
    }
    ex->async.data = ex;
    uv_unref((uv_handle_t *)&ex->async);

    /* Workers take no signals: the daemon handles them on its loop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < opt.max_concurrent; i++) {
        r = pthread_create(&ex->threads[i], NULL, worker_main, ex);
        if (r != 0) {
            r = -r;
            break;
        }
        ex->n_threads++;
        r = 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        power_executor_free(ex);
        return r;
    }
    *ret = ex;
    return 0;
}

int power_executor_submit(power_executor *ex, const power_target *t, const power_request *req,
                          power_done_fn done, void *userdata)
{
    if (ex->freeing) {
        return -ESHUTDOWN;
    }
    if ((unsigned)req->op > POWER_OP_SOFT || (unsigned)req->bootdev > POWER_BOOTDEV_DISK || !done) {
        return -EINVAL;
    }
    const power_driver *d = ex->opt.lookup(power_target_scheme(t));
    if (!d) {
        return -EPROTONOSUPPORT;
    }
    if (ex->outstanding >= ex->opt.max_queued) {
        return -EAGAIN;
    }
    power_job *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->target = power_target_copy(t);
    if (!j->target) {
        free(j);
        return -ENOMEM;
    }
    j->ex = ex;
    j->driver = d;
    j->req = *req;
    j->done = done;
    j->userdata = userdata;

    ex->outstanding++;
    update_ref(ex);
    log_debug("power queued target=%s op=%s outstanding=%zu", power_target_to_string(t),
              power_op_to_string(req->op), ex->outstanding);

    pthread_mutex_lock(&ex->lock);
    list_append(&ex->pending, j);
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

size_t power_executor_pending(const power_executor *ex)
{
    return ex->outstanding;
}

power_executor *power_executor_free(power_executor *ex)
{
    if (!ex || ex->freeing) {
        return NULL;
    }
    ex->freeing = true;

    pthread_mutex_lock(&ex->lock);
    ex->stopping = true;
    power_job *cancelled = ex->pending.head;
    ex->pending = (job_list){ 0 };
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->lock);

    while (cancelled) {
        power_job *j = cancelled;
        cancelled = j->next;
        power_result_fail(&j->res, -ECANCELED, "cancelled: the power executor is shutting down");
        report(ex, j);
        job_free(j);
    }

    /* Running jobs finish their current attempt (bounded by its timeout)
     * and stop retrying. */
    for (unsigned i = 0; i < ex->n_threads; i++) {
        pthread_join(ex->threads[i], NULL);
    }
    drain_finished(ex);
    RB_ASSERT(ex->outstanding == 0);
    uv_close((uv_handle_t *)&ex->async, on_closed);
    return NULL;
}
