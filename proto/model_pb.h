/* model_pb: the one conversion between model/ types and their rackboot.v1
 * messages, both ways. The controller, the agent and the CLI all convert
 * here, so a profile field added to model/profile.h and to the proto is
 * carried by adding it here once.
 *
 * Messages built here take their memory from `alloc` (protobuf-c's
 * allocator interface; NULL: malloc): free them with model_pb_free() and the
 * same allocator (protobuf-c's free_unpacked frees exactly that shape). A
 * caller that builds a whole reply in an arena passes the arena's allocator
 * and frees nothing. Messages read here must have passed rbproto's
 * validation (rbproto_validate_profile(), or an unpack): sizes of hashes
 * are not checked again. */
#pragma once

#include "model/intent.h"
#include "model/profile.h"
#include "rackboot.pb-c.h"

/* The wire's image kind for `k` and back (UNSPECIFIED maps to IMAGE_OTHER;
 * validation refuses it before). */
Rackboot__V1__ImageKind model_image_kind_to_pb(image_kind k);
image_kind model_image_kind_from_pb(Rackboot__V1__ImageKind k);

/* A deep copy of `m` into *ret (every string malloc()ed; empty wire strings
 * become NULL for cmdline and kickstart). -ENOMEM, nothing left allocated. */
int model_profile_from_pb(const Rackboot__V1__Profile *m, model_profile *ret);
/* An intent from its message, every string malloc()ed (intent_clear()
 * frees them); in->profile is left NULL for the caller to point at the
 * profile the intent names. The agent fills its intent set with it, and the
 * controller's web view renders what that agent will serve. -EINVAL when
 * counts or the address are out of range, -ENOMEM. */
int model_intent_from_pb(const Rackboot__V1__Intent *m, intent *ret);
/* A new message for `p`. The kickstart hash is sent when the profile has a
 * kickstart (with_sha256 also without one: listings that leave the text out
 * still say which template a profile has). -ENOMEM. */
int model_profile_to_pb(const model_profile *p, bool with_sha256, ProtobufCAllocator *alloc,
                        Rackboot__V1__Profile **ret);

/* Frees a message built here with `alloc` (NULL: malloc). Accepts NULL,
 * returns NULL. */
void *model_pb_free(void *msg, ProtobufCAllocator *alloc);
