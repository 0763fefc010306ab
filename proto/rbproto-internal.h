/* rbproto internals that white-box tests need. Not for daemons. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The allocation budget of one unpack of `len` input bytes. */
size_t rbproto_budget_limit(size_t len);

/* Unpacks without a budget (or validation) and reports the most bytes the
 * unpack had allocated at once, headers included: what the budget must
 * cover for that input. -EBADMSG if protobuf-c refuses the bytes. */
int rbproto_unpack_peak(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        size_t *ret_peak);
