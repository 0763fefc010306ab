/* decomp: a streaming decompressor for disk images, chosen by the stream's
 * magic bytes: zstd (28 B5 2F FD), xz (FD 37 7A 58 5A 00), anything else is a
 * raw image passed through unchanged.
 *
 * Input arrives in chunks of any size (as the network delivers it, down to one
 * byte); output goes into a buffer the caller owns (out_cap > 0), like zlib's
 * inflate():
 *
 *     while (in_len > 0) {
 *         r = decomp_feed(d, in, in_len, out, cap, &used, &n);   // < 0: stop
 *         consume(out, n); in += used; in_len -= used;
 *     }
 *     do { r = decomp_finish(d, out, cap, &n); consume(out, n); } while (r > 0);
 *
 * Each call makes progress (takes input or gives output) while it has both,
 * so that loop ends. Output the decoder could not hand over for lack of room
 * comes out of the next call.
 *
 * The input is untrusted (it comes over HTTP and is hashed only as a whole at
 * the end), so every failure is an error code, never an abort, and memory is
 * capped: zstd windows above 2^27 bytes (zstd's own default limit) and xz
 * dictionaries needing more than 256 MiB are refused with -E2BIG.
 *
 * Errors: -EBADMSG for corrupt input and for a stream that ends early (which
 * only decomp_finish() can see), -E2BIG for a stream needing more memory than
 * the caps, -ENOMEM, -EINVAL for out_cap 0. After an error every call returns
 * that error again until decomp_clear(). ret_* are written only on success. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum decomp_format {
    DECOMP_FORMAT_UNKNOWN = 0, /* not enough bytes seen yet to tell */
    DECOMP_FORMAT_RAW,
    DECOMP_FORMAT_ZSTD,
    DECOMP_FORMAT_XZ,
} decomp_format;

typedef struct decomp decomp;

/* -ENOMEM. */
int decomp_new(decomp **ret);
/* Accepts NULL, returns NULL. */
decomp *decomp_free(decomp *d);
/* Forgets the stream so far, for a download restarted from byte 0. */
int decomp_clear(decomp *d);

/* Consumes up to in_len bytes and produces up to out_cap bytes:
 * *ret_in_used bytes of `in` were taken, *ret_out_len bytes written to out.
 * Either count may be 0 (the first bytes of a magic number are only held;
 * a full output buffer leaves input untaken). */
int decomp_feed(decomp *d, const void *in, size_t in_len, void *out, size_t out_cap,
                size_t *ret_in_used, size_t *ret_out_len);

/* The input has ended: flushes what the decoder still holds. Returns 1 when
 * it filled out and must be called again, 0 when the stream is complete (the
 * last *ret_out_len bytes may still be > 0), -EBADMSG when the stream was
 * truncated (an empty input or a bare magic number is truncated too). */
int decomp_finish(decomp *d, void *out, size_t out_cap, size_t *ret_out_len);

decomp_format decomp_get_format(const decomp *d);
/* "raw", "zstd", "xz", "unknown". */
const char *decomp_format_to_string(decomp_format f);
/* Bytes taken in and given out since decomp_new() or decomp_clear(). */
uint64_t decomp_get_bytes_in(const decomp *d);
uint64_t decomp_get_bytes_out(const decomp *d);
