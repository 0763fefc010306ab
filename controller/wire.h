/* wire: the controller's store rows as rackboot.v1 messages, and back.
 *
 * Messages built here point into an arena that owns every string, byte
 * field and repeated array of them: pack the message, then free the arena
 * once. Store strings are only valid inside the store's callbacks, so every
 * builder copies. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rackboot.pb-c.h"
#include "store.h"

typedef struct wire_arena wire_arena;

wire_arena *wire_arena_new(void);
wire_arena *wire_arena_free(wire_arena *a);
/* Zeroed memory that lives as long as the arena; NULL when out of memory
 * (the arena remembers it: check wire_arena_failed() once at the end). */
void *wire_alloc(wire_arena *a, size_t size);
char *wire_strdup(wire_arena *a, const char *s);
bool wire_arena_failed(const wire_arena *a);

/* Appends `item` to a protobuf-c repeated field (n, items), growing it in
 * the arena. */
#define wire_append(a, n, items, item) wire_append_(a, &(n), (void ***)&(items), (item))
void wire_append_(wire_arena *a, size_t *n, void ***items, void *item);

Rackboot__V1__Host *wire_host(wire_arena *a, const store_host *h);
Rackboot__V1__Profile *wire_profile(wire_arena *a, const model_profile *p);
/* The Intent the rack's sync carries for `in` (its profile named, not
 * included): one builder for the hub and the web view's answer files, so
 * both see the same intent. NULL when out of memory. */
Rackboot__V1__Intent *wire_intent(wire_arena *a, const store_intent *in);
Rackboot__V1__StatusRow *wire_status(wire_arena *a, const store_status *st);
Rackboot__V1__EventRow *wire_event_row(wire_arena *a, const store_event_row *e);
Rackboot__V1__AuditRow *wire_audit_row(wire_arena *a, const store_audit *row);
/* A host's BMC with its secret: for its rack's sync only. */
Rackboot__V1__Bmc *wire_bmc(wire_arena *a, const store_bmc *b);
Rackboot__V1__PowerCommand *wire_power_command(wire_arena *a, const store_power *p);
Rackboot__V1__PowerRow *wire_power_row(wire_arena *a, const store_power *p);

/* Message → store input: the host points into `m`; -EINVAL names the
 * problem in *ret_why. (A profile is proto/model_pb.h's
 * model_profile_from_pb().) */
int wire_to_store_host(const Rackboot__V1__Host *m, store_host *ret, const char **ret_why);
