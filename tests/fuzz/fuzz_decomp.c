/* Fuzzes deploy-ramdisk/writer/decomp, the first code to see an image's bytes
 * from the network: any input, in any chunking, must decode or fail with an
 * error code, never read or write out of bounds, and never report more input
 * used than given. Input: 1 byte choosing the chunk and output sizes, then
 * the stream (seeds: small zstd, xz and raw images). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"
#include "writer/decomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A few bytes of zstd can claim gigabytes: stop counting there. */
#define FUZZ_OUT_MAX ((uint64_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t chunk = (size_t)(data[0] & 0x0f) * 97 + 1;
    size_t out_cap = (size_t)(data[0] >> 4) * 331 + 1;
    data++;
    size--;
    uint8_t *out = malloc(out_cap);
    decomp *d = NULL;
    if (!out || decomp_new(&d) < 0) {
        free(out);
        return 0;
    }
    int r = 0;
    while (size > 0 && r == 0 && decomp_get_bytes_out(d) < FUZZ_OUT_MAX) {
        size_t n = size < chunk ? size : chunk;
        size_t used = 0, made = 0;
        r = decomp_feed(d, data, n, out, out_cap, &used, &made);
        if (r == 0) {
            RB_ASSERT(used <= n && made <= out_cap);
            RB_ASSERT(used > 0 || made > 0);
            data += used;
            size -= used;
        }
    }
    while (r == 0 && size == 0 && decomp_get_bytes_out(d) < FUZZ_OUT_MAX) {
        size_t made = 0;
        r = decomp_finish(d, out, out_cap, &made);
        RB_ASSERT(r <= 1 && made <= out_cap);
        if (r == 0) {
            break;
        }
        r = r > 0 ? 0 : r;
    }
    RB_ASSERT(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
    decomp_free(d);
    free(out);
    return 0;
}
