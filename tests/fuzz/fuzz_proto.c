/* Fuzzes proto/rbproto: the same bytes as each of the four envelopes a peer
 * can send. Whatever is accepted must validate again, repack, unpack again
 * from the repacked bytes, and repack to the very same bytes: an accepted
 * message that we could not forward or store and re-read is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*unpack_fn)(const uint8_t *buf, size_t len, size_t max, ProtobufCMessage **ret);

#define UNPACK_AS(fn, type)                                                                        \
    static int fn##_any(const uint8_t *buf, size_t len, size_t max, ProtobufCMessage **ret)        \
    {                                                                                              \
        type *m;                                                                                   \
        int r = rbproto_unpack_##fn(buf, len, max, &m);                                            \
        if (r == 0) {                                                                              \
            *ret = &m->base;                                                                       \
        }                                                                                          \
        return r;                                                                                  \
    }

UNPACK_AS(agent_request, Rackboot__V1__AgentRequest)
UNPACK_AS(agent_reply, Rackboot__V1__AgentReply)
UNPACK_AS(api_request, Rackboot__V1__ApiRequest)
UNPACK_AS(api_reply, Rackboot__V1__ApiReply)

static const unpack_fn unpackers[] = {
    agent_request_any,
    agent_reply_any,
    api_request_any,
    api_reply_any,
};

/* Says which promise broke before the crash report, which a truncated CI
 * log may not show in full. */
#define BROKEN(why)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "fuzz_proto: %s: %s\n", m->descriptor->name, why);                         \
        abort();                                                                                   \
    } while (0)

static void round_trip(unpack_fn unpack, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m = NULL, *again = NULL;
    uint8_t *packed = NULL, *repacked = NULL;
    size_t packed_len, repacked_len;

    if (unpack(data, size, RBPROTO_MAX_MESSAGE, &m) < 0) {
        return;
    }
    if (rbproto_validate(m) != 0) {
        BROKEN("accepted, then refused by rbproto_validate()");
    }
    if (rbproto_pack(m, RBPROTO_MAX_MESSAGE, &packed, &packed_len) != 0) {
        BROKEN("accepted, then refused by rbproto_pack()");
    }
    if (unpack(packed, packed_len, RBPROTO_MAX_MESSAGE, &again) != 0) {
        BROKEN("repacked, then refused when unpacked again");
    }
    if (rbproto_pack(again, RBPROTO_MAX_MESSAGE, &repacked, &repacked_len) != 0) {
        BROKEN("read back, then refused by rbproto_pack()");
    }
    if (repacked_len != packed_len || memcmp(packed, repacked, packed_len) != 0) {
        BROKEN("read back, then repacked to different bytes");
    }
    free(repacked);
    free(packed);
    rbproto_free(again);
    rbproto_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof(unpackers) / sizeof(unpackers[0]); i++) {
        round_trip(unpackers[i], data, size);
    }
    return 0;
}
