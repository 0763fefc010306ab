/* store/queue: store calls off the loop (DESIGN: "disk work that can block
 * goes to the libuv thread pool").
 *
 * A queue owns its own store connection (store_connect()) and runs jobs on
 * libuv's thread pool (uv_queue_work), one at a time, in the order they
 * were submitted, and calls their `done` in that order: a job may take as
 * long as the store does (an fsync, a network round trip to a database
 * server) without stalling the loop. The controller makes every store call
 * of its hub, API and upkeep here; its first connection (the parent) only
 * opens and migrates the store.
 *
 * A job's `work` runs on a pool thread with the queue's connection and must
 * touch nothing the loop owns; its `done` runs on the loop afterwards with
 * status 0, or -ECANCELED when the queue was freed first (the job's `work`
 * then may or may not have run), or -EIO for a grouped job whose group was
 * not committed: either way `done` is called exactly once and owns `arg`
 * again. */
#pragma once

#include <uv.h>

#include "metrics/metrics.h"
#include "store.h"

typedef struct store_queue store_queue;

typedef void (*store_queue_work_fn)(store *st, void *arg);
typedef void (*store_queue_done_fn)(void *arg, int status);

/* A queue on `loop` with a new connection to `parent` (which must outlive
 * it). *ret_errmsg (if not NULL) gets a malloc()ed reason on failure. */
int store_queue_new(uv_loop_t *loop, const store *parent, store_queue **ret, char **ret_errmsg);

/* Queues a job; -ENOMEM (then nothing was queued and `done` is not
 * called). Loop thread only. */
int store_queue_submit(store_queue *q, store_queue_work_fn work, store_queue_done_fn done,
                       void *arg);

/* Queues a job that may share one store batch (one transaction, one
 * commit) with the grouped jobs queued right before or after it: a group
 * commit. Its store calls become savepoints of that batch, so they must
 * not begin a batch of their own. Its `done` runs after the group is
 * committed; when that fails, or the backend rolled the batch back, with
 * -EIO whatever its work found: nothing it wrote is stored. Only for work
 * its peer may safely send again (an agent's ack, event batch or sync
 * read). Otherwise as store_queue_submit(). */
int store_queue_submit_grouped(store_queue *q, store_queue_work_fn work, store_queue_done_fn done,
                               void *arg);

/* Jobs submitted and not yet done. */
size_t store_queue_pending(const store_queue *q);

/* The bounds of a group (defaults STORE_QUEUE_GROUP_MAX_JOBS and
 * STORE_QUEUE_GROUP_MAX_US): a group ends after `max_jobs` jobs, or once it
 * has run `max_us`. Tests that count commits set a time bound no scheduler
 * delay reaches. Loop thread only, before the first submit. */
#define STORE_QUEUE_GROUP_MAX_JOBS 256
#define STORE_QUEUE_GROUP_MAX_US   20000
void store_queue_set_group_limits(store_queue *q, size_t max_jobs, uint64_t max_us);

/* Registers the queue's latency histograms (rackboot_store_*_seconds,
 * deploy/METRICS.md): each job's work, and each group commit. Loop thread
 * only, like the observations (made as jobs are delivered). */
int store_queue_register_metrics(const store_queue *q, metrics *m);

/* Calls every pending job's `done` with -ECANCELED, waiting (blocking the
 * loop) for the one running to finish its `work`; closes the connection.
 * The memory of a job still known to libuv is released by the loop's next
 * iteration. Accepts NULL, returns NULL. Loop thread only. */
store_queue *store_queue_free(store_queue *q);
