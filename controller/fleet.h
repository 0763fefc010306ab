/* fleet: the controller's rules over the fleet store (issue 12 item 3).
 *
 * The store's API (store.h) is implemented here, over a backend ops table
 * (store/backend.h) that only reads and writes rows: what a valid host and
 * profile are, how an install's id and token are made (below), and, in
 * fleet.c, fleet_installs.c and fleet_events.c, the transaction around each
 * call, generation bumps, event de-duplication and refusal, applying events
 * and acks to installs through install_fsm (the transition function),
 * stored_through, expiry and retention. store.c keeps the store object,
 * the choice of backend by URL, connections and batches.
 *
 * Errors are negative errno values; `why` (why_len bytes, if not NULL)
 * gets one line for the operator, as store_errmsg() does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* A host, rack, agent or profile name: common/parse.h's fleet_name_valid()
 * (1..63 of [A-Za-z0-9._-], starting with a letter or digit); NULL is not. */
bool fleet_object_name_valid(const char *name);

/* -EINVAL when `h` is not a host the fleet can hold (names, MAC count and
 * duplicates, prefix length, hostname). */
int fleet_host_validate(const store_host *h, char *why, size_t why_len);
/* Its BMC part (model/bmc.h): a URL a driver exists for, user and password
 * within limits, none of them without the URL. The password is never
 * quoted in `why`. */
int fleet_host_bmc_validate(const store_host *h, char *why, size_t why_len);
/* A profile's rules are model/profile.h's model_profile_check(). */

/* A new install's id (RFC 9562 §5.7 UUID version 7 of `now_ms`, lower
 * case) and token (128 random bits, hex), from getrandom(2). */
/* A new id for anything the controller names (a power command): a UUID
 * version 7 as for installs. */
int fleet_new_id(uint64_t now_ms, char ret_id[STORE_ID_LEN + 1], char *why, size_t why_len);

int fleet_install_secrets(uint64_t now_ms, char ret_id[STORE_ID_LEN + 1],
                          char ret_token[STORE_TOKEN_LEN + 1], char *why, size_t why_len);
