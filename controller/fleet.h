/* fleet: the controller's rules over the fleet store (issue 12 item 3).
 *
 * This is where the rules move out of store.c, one group at a time, as the
 * store becomes a repository behind a backend ops table. So far: the rules
 * that need no stored row, i.e. what a valid host and profile are, and how
 * an install's id and token are made. Generations, event de-duplication
 * and refusal, FSM application (install_fsm stays the transition
 * function) and expiry still live in store.c.
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
/* A file name an agent serves an image under. */
bool fleet_file_name_valid(const char *name);

/* -EINVAL when `h` is not a host the fleet can hold (names, MAC count and
 * duplicates, prefix length, hostname). */
int fleet_host_validate(const store_host *h, char *why, size_t why_len);
/* -EINVAL when `p` is not a profile the fleet can hold (names, sizes, IP
 * mode, image kinds, URLs, exactly one kernel and one initrd). */
int fleet_profile_validate(const store_profile *p, char *why, size_t why_len);

/* A new install's id (RFC 9562 §5.4 random UUID, lower case) and token
 * (128 random bits, hex), from getrandom(2). */
int fleet_install_secrets(char ret_id[STORE_ID_LEN + 1], char ret_token[STORE_TOKEN_LEN + 1],
                          char *why, size_t why_len);
