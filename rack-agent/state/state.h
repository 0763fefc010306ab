/* The agent's state directory and the small things kept in it that need
 * randomness: the server DUID, install ids and tokens. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* getrandom(2), retried until `len` bytes are read. */
int state_random(void *buf, size_t len);

/* Creates `dir` (mode 0750) if it does not exist. */
int state_dir_ensure(const char *dir);

/* "DIR/NAME", malloc'ed; NULL when out of memory. */
char *state_path(const char *dir, const char *name);

/* The server DUID in DIR/server-duid (hex on one line): read it, or create a
 * DUID-UUID (RFC 6355) from random bytes the first time and write it
 * atomically, so clients holding leases keep recognizing us after a restart.
 * *ret_len is 3..130. */
int state_server_duid(const char *dir, uint8_t *duid, size_t cap, size_t *ret_len);
