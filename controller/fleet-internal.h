/* fleet internals: what store.c and the rules' files (fleet.c,
 * fleet_installs.c, fleet_events.c) share. Not for other callers. */
#pragma once

#include <stdbool.h>

#include "fleet.h"
#include "store.h"
#include "store/backend.h"

/* A store: one backend connection and the rules' state on it. */
struct store {
    const store_backend_ops *ops;
    store_backend *be;
    bool in_batch; /* store_batch_begin(): operations are savepoints */
    char errmsg[512];
};

/* Writes the reason to s->errmsg and returns `r`. */
__attribute__((format(printf, 3, 4))) int fleet_fail(store *s, int r, const char *fmt, ...);

/* One operation: a transaction of its own, or a savepoint inside a batch
 * (so a failed operation undoes only itself). */
int fleet_tx_begin(store *s);
/* Commits when r >= 0, else rolls back; returns r, or the commit's error. */
int fleet_tx_end(store *s, int r);

/* A lookup that must find: 1 becomes 0, 0 becomes -ENOENT "no <what> <name>". */
int fleet_found(store *s, int r, const char *what, const char *name);

/* 0 for an agent instance the rules accept (1 .. STORE_AGENT_INSTANCE_MAX),
 * else -EINVAL with the reason. */
int fleet_agent_instance_check(store *s, unsigned instance);

/* The profile `id` (found in this store) with its images; -ENOENT. */
int fleet_profile_load(store *s, int64_t id, bool with_content, store_loaded_profile **ret);

/* Moves install `id` from `from` by `input` through install_fsm and writes
 * the new state with its timestamp (and `message` unless NULL). Returns
 * what install_transition() did: 1 moved, 0 stayed. */
int fleet_install_apply(store *s, int64_t id, install_state from, install_input input,
                        Rackboot__V1__Phase phase, uint64_t now, const char *message,
                        install_state *ret_next);

/* A listing's page as the backend takes it (store.h: store_page): NULL
 * is every host, after NULL is "". -EINVAL for a rack or `after` that is
 * not a name (backends may rely on names: no quotes, no blanks). */
int fleet_page_check(store *s, const store_page *page, store_page *ret);

/* Bumps each distinct rack of racks[0..n) once (sorts them): a batch that
 * touches many hosts of a rack moves its generation once. */
int fleet_bump_racks(store *s, int64_t *racks, size_t n);

/* The state's name, for messages. */
const char *fleet_state_name(install_state st);
