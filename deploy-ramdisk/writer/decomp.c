/* decomp: see decomp.h. */
#include "writer/decomp.h"

#include <errno.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "util.h"

/* zstd's own default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT); images
 * made with --long=31 would need 2 GiB, more than a deploy ramdisk has. */
#define DECOMP_ZSTD_WINDOW_LOG_MAX 27
/* xz -9 needs 65 MiB; leave room for custom dictionaries but stay bounded. */
#define DECOMP_XZ_MEMLIMIT (UINT64_C(256) << 20)

static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t xz_magic[] = { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00 };
#define MAGIC_MAX sizeof(xz_magic)

struct decomp {
    decomp_format format;
    int error; /* sticky: once failed, stays failed until decomp_clear() */
    bool started;
    bool done; /* decomp_finish() saw the end */
    /* The first bytes, held until they tell the format; then handed on (to
     * the decoder or, for raw, to the output) before any later input. */
    uint8_t magic[MAGIC_MAX];
    size_t magic_len;
    size_t magic_off;
    ZSTD_DCtx *zstd;
    /* Last ZSTD_decompressStream() result: 0 only at a frame boundary with
     * everything flushed, which is where a complete stream ends. */
    size_t zstd_last;
    lzma_stream xz;
    bool xz_live;
    uint64_t bytes_in;
    uint64_t bytes_out;
};

int decomp_new(decomp **ret)
{
    decomp *d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->xz = (lzma_stream)LZMA_STREAM_INIT;
    *ret = d;
    return 0;
}

static void decoders_end(decomp *d)
{
    d->zstd = (ZSTD_freeDCtx(d->zstd), NULL);
    if (d->xz_live) {
        lzma_end(&d->xz);
        d->xz = (lzma_stream)LZMA_STREAM_INIT;
        d->xz_live = false;
    }
}

decomp *decomp_free(decomp *d)
{
    if (d) {
        decoders_end(d);
        free(d);
    }
    return NULL;
}

int decomp_clear(decomp *d)
{
    decoders_end(d);
    memset(d, 0, sizeof(*d));
    d->xz = (lzma_stream)LZMA_STREAM_INIT;
    return 0;
}

decomp_format decomp_get_format(const decomp *d)
{
    return d->format;
}

const char *decomp_format_to_string(decomp_format f)
{
    switch (f) {
    case DECOMP_FORMAT_RAW:
        return "raw";
    case DECOMP_FORMAT_ZSTD:
        return "zstd";
    case DECOMP_FORMAT_XZ:
        return "xz";
    case DECOMP_FORMAT_UNKNOWN:
        break;
    }
    return "unknown";
}

uint64_t decomp_get_bytes_in(const decomp *d)
{
    return d->bytes_in;
}

uint64_t decomp_get_bytes_out(const decomp *d)
{
    return d->bytes_out;
}

/* The format the held bytes announce, or UNKNOWN while they are still a
 * proper prefix of a magic number. */
static decomp_format sniff(const uint8_t *p, size_t len)
{
    static const struct {
        const uint8_t *magic;
        size_t len;
        decomp_format format;
    } magics[] = {
        { zstd_magic, sizeof(zstd_magic), DECOMP_FORMAT_ZSTD },
        { xz_magic, sizeof(xz_magic), DECOMP_FORMAT_XZ },
    };
    bool prefix = false;
    for (size_t i = 0; i < ARRAY_SIZE(magics); i++) {
        size_t n = len < magics[i].len ? len : magics[i].len;
        if (memcmp(p, magics[i].magic, n) != 0) {
            continue;
        }
        if (n == magics[i].len) {
            return magics[i].format;
        }
        prefix = true;
    }
    return prefix ? DECOMP_FORMAT_UNKNOWN : DECOMP_FORMAT_RAW;
}

static int fail(decomp *d, int r)
{
    d->error = r;
    return r;
}

static int start_decoder(decomp *d)
{
    switch (d->format) {
    case DECOMP_FORMAT_ZSTD:
        d->zstd = ZSTD_createDCtx();
        if (!d->zstd) {
            return -ENOMEM;
        }
        if (ZSTD_isError(
                ZSTD_DCtx_setParameter(d->zstd, ZSTD_d_windowLogMax, DECOMP_ZSTD_WINDOW_LOG_MAX))) {
            return -EIO;
        }
        d->zstd_last = 1; /* no frame decoded yet */
        break;
    case DECOMP_FORMAT_XZ: {
        /* CONCATENATED: like xz(1), accept several streams back to back, and
         * report the end only after LZMA_FINISH, when truncation shows. */
        lzma_ret lr = lzma_stream_decoder(&d->xz, DECOMP_XZ_MEMLIMIT, LZMA_CONCATENATED);
        if (lr == LZMA_MEM_ERROR) {
            return -ENOMEM;
        }
        if (lr != LZMA_OK) {
            return -EIO;
        }
        d->xz_live = true;
        break;
    }
    case DECOMP_FORMAT_RAW:
        break;
    case DECOMP_FORMAT_UNKNOWN:
        RB_ASSERT(!"start_decoder before the format is known");
    }
    d->started = true;
    return 0;
}

static int zstd_error(size_t r)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_frameParameter_windowTooLarge:
        return -E2BIG;
    case ZSTD_error_memory_allocation:
        return -ENOMEM;
    default:
        return -EBADMSG;
    }
}

static int xz_error(lzma_ret lr)
{
    switch (lr) {
    case LZMA_MEM_ERROR:
        return -ENOMEM;
    case LZMA_MEMLIMIT_ERROR:
        return -E2BIG;
    default:
        /* FORMAT, OPTIONS, DATA, BUF (no progress possible: truncated). */
        return -EBADMSG;
    }
}

/* One decoding step over in -> out, for a started decoder. */
static int step(decomp *d, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                size_t *ret_used, size_t *ret_made)
{
    switch (d->format) {
    case DECOMP_FORMAT_RAW: {
        size_t n = in_len < out_cap ? in_len : out_cap;
        if (n > 0) {
            memcpy(out, in, n);
        }
        *ret_used = *ret_made = n;
        return 0;
    }
    case DECOMP_FORMAT_ZSTD: {
        ZSTD_inBuffer ib = { in, in_len, 0 };
        ZSTD_outBuffer ob = { out, out_cap, 0 };
        while (ib.pos < ib.size && ob.pos < ob.size) {
            size_t r = ZSTD_decompressStream(d->zstd, &ob, &ib);
            if (ZSTD_isError(r)) {
                return zstd_error(r);
            }
            d->zstd_last = r;
        }
        *ret_used = ib.pos;
        *ret_made = ob.pos;
        return 0;
    }
    case DECOMP_FORMAT_XZ: {
        d->xz.next_in = in;
        d->xz.avail_in = in_len;
        d->xz.next_out = out;
        d->xz.avail_out = out_cap;
        while (d->xz.avail_in > 0 && d->xz.avail_out > 0) {
            lzma_ret lr = lzma_code(&d->xz, LZMA_RUN);
            if (lr != LZMA_OK) {
                return xz_error(lr);
            }
        }
        *ret_used = in_len - d->xz.avail_in;
        *ret_made = out_cap - d->xz.avail_out;
        return 0;
    }
    case DECOMP_FORMAT_UNKNOWN:
        break;
    }
    RB_ASSERT(!"step before the format is known");
    return -EINVAL;
}

/* Hands the held magic bytes on, as far as out has room. */
static int flush_magic(decomp *d, uint8_t *out, size_t out_cap, size_t *ret_made)
{
    size_t used = 0, made = 0;
    if (d->magic_off < d->magic_len) {
        int r = step(d, d->magic + d->magic_off, d->magic_len - d->magic_off, out, out_cap, &used,
                     &made);
        if (r < 0) {
            return r;
        }
        d->magic_off += used;
    }
    *ret_made = made;
    return 0;
}

int decomp_feed(decomp *d, const void *in_, size_t in_len, void *out_, size_t out_cap,
                size_t *ret_in_used, size_t *ret_out_len)
{
    const uint8_t *in = in_;
    uint8_t *out = out_;
    size_t used = 0, made = 0;
    int r;

    if (d->error < 0) {
        return d->error;
    }
    if (out_cap == 0 || d->done) {
        return -EINVAL;
    }
    while (d->format == DECOMP_FORMAT_UNKNOWN && used < in_len) {
        d->magic[d->magic_len++] = in[used++];
        d->format = sniff(d->magic, d->magic_len);
    }
    if (d->format != DECOMP_FORMAT_UNKNOWN) {
        if (!d->started) {
            r = start_decoder(d);
            if (r < 0) {
                return fail(d, r);
            }
        }
        r = flush_magic(d, out, out_cap, &made);
        if (r < 0) {
            return fail(d, r);
        }
        if (d->magic_off == d->magic_len && made < out_cap && used < in_len) {
            size_t u = 0, m = 0;
            r = step(d, in + used, in_len - used, out + made, out_cap - made, &u, &m);
            if (r < 0) {
                return fail(d, r);
            }
            used += u;
            made += m;
        }
    }
    d->bytes_in += used;
    d->bytes_out += made;
    *ret_in_used = used;
    *ret_out_len = made;
    return 0;
}

/* Drains the decoder at the end of input: 1 = out is full, call again,
 * 0 = complete. */
static int drain(decomp *d, uint8_t *out, size_t out_cap, size_t *ret_made)
{
    switch (d->format) {
    case DECOMP_FORMAT_RAW:
        *ret_made = 0;
        return 0;
    case DECOMP_FORMAT_ZSTD: {
        if (d->zstd_last == 0) {
            /* At a frame boundary nothing is held back; asking the decoder
             * again would only return the size hint of a next frame. */
            *ret_made = 0;
            return 0;
        }
        ZSTD_inBuffer ib = { NULL, 0, 0 };
        ZSTD_outBuffer ob = { out, out_cap, 0 };
        size_t r = ZSTD_decompressStream(d->zstd, &ob, &ib);
        if (ZSTD_isError(r)) {
            return zstd_error(r);
        }
        d->zstd_last = r;
        *ret_made = ob.pos;
        if (ob.pos == ob.size) {
            return 1;
        }
        /* Input is over, output had room, and the frame is not complete:
         * the stream was cut short. */
        return r == 0 ? 0 : -EBADMSG;
    }
    case DECOMP_FORMAT_XZ: {
        d->xz.next_in = NULL;
        d->xz.avail_in = 0;
        d->xz.next_out = out;
        d->xz.avail_out = out_cap;
        for (;;) {
            lzma_ret lr = lzma_code(&d->xz, LZMA_FINISH);
            *ret_made = out_cap - d->xz.avail_out;
            if (lr == LZMA_STREAM_END) {
                return 0;
            }
            if (lr != LZMA_OK) {
                /* LZMA_BUF_ERROR here: no input left and no progress. */
                return xz_error(lr);
            }
            if (d->xz.avail_out == 0) {
                return 1;
            }
        }
    }
    case DECOMP_FORMAT_UNKNOWN:
        break;
    }
    RB_ASSERT(!"drain before the format is known");
    return -EINVAL;
}

int decomp_finish(decomp *d, void *out_, size_t out_cap, size_t *ret_out_len)
{
    uint8_t *out = out_;
    size_t made = 0, more = 0;
    int r;

    if (d->error < 0) {
        return d->error;
    }
    if (out_cap == 0) {
        return -EINVAL;
    }
    if (d->done) {
        *ret_out_len = 0;
        return 0;
    }
    if (d->format == DECOMP_FORMAT_UNKNOWN) {
        /* Empty, or only the start of a magic number: nothing to write. */
        return fail(d, -EBADMSG);
    }
    if (!d->started) {
        r = start_decoder(d);
        if (r < 0) {
            return fail(d, r);
        }
    }
    r = flush_magic(d, out, out_cap, &made);
    if (r < 0) {
        return fail(d, r);
    }
    if (d->magic_off < d->magic_len || made == out_cap) {
        d->bytes_out += made;
        *ret_out_len = made;
        return 1;
    }
    r = drain(d, out + made, out_cap - made, &more);
    if (r < 0) {
        return fail(d, r);
    }
    made += more;
    d->bytes_out += made;
    if (r == 0) {
        d->done = true;
    }
    *ret_out_len = made;
    return r;
}
