/* stream: downloads an image over HTTP(S) with libcurl and, as the bytes
 * arrive, hashes them (sha256 over the bytes as served, i.e. the compressed
 * file), decompresses them (writer/decomp.h) and writes the result to a sink
 * (writer/sink.h). Nothing is buffered beyond a chunk: a multi-GiB image
 * needs no space in the ramdisk.
 *
 * A dropped or stalled connection is resumed with `Range: bytes=N-` from the
 * byte reached. A 206 answer must say `Content-Range: bytes N-…`; an answer
 * that starts elsewhere, or a 200 (a server that ignores Range), makes the
 * download start over from byte 0 with the hash, decompressor and sink reset.
 * Retries are bounded: `max_stalls` attempts in a row that get no further
 * than the furthest byte reached, `max_attempts` in all, with a doubling pause
 * in between. Errors a retry cannot cure (4xx but 408/429, corrupt compressed
 * data, an image larger than the target) end the download at once.
 *
 * The sink's whole life is run here, so no caller can forget a step:
 * sink_begin() first, then sink_commit() only after the hash matched, and
 * sink_abort() on any failure (the first MiB stays zero).
 *
 * Errors: -EBADMSG for a hash mismatch or corrupt compressed data (the
 * message names the expected and actual hashes), -EIO when the retries ran
 * out (the message has curl's last error), -ENOENT for a 404, -EPROTO for
 * other refusals and nonsense answers, -ENOSPC from the sink, -EINVAL for
 * bad options, -ENOMEM. A message for the log goes to *ret_error (malloc'ed,
 * when ret_error is not NULL). ret_* are written only on success, except
 * ret_error which is written only on failure. */
#pragma once

#include <stdint.h>

#include "writer/decomp.h"
#include "writer/sink.h"

/* received: bytes of the file as served so far (restarts count from 0);
 * total: the file's size from Content-Length / Content-Range, 0 if unknown. */
typedef void (*stream_progress_fn)(uint64_t received, uint64_t total, void *userdata);

typedef struct stream_options {
    const char *url;
    /* 64 hex digits: the sha256 of the file as served. Required. */
    const char *sha256_hex;
    /* Uncompressed image size if known, else 0: checked against the target
     * before anything is written (sink_begin()). */
    uint64_t image_size;
    /* Attempts in a row that get no further (default 5). */
    unsigned max_stalls;
    /* Attempts in all, including those that made progress (default 100). */
    unsigned max_attempts;
    /* First pause before a retry, doubled for each stall up to 16x
     * (default 500 ms). */
    unsigned backoff_ms;
    long connect_timeout_s; /* default 10 */
    /* A connection moving less than 1 byte/s for this long is dropped and
     * resumed (default 30). */
    long stall_timeout_s;
    stream_progress_fn on_progress;
    void *userdata;
} stream_options;

typedef struct stream_result {
    uint64_t received; /* bytes of the file as served */
    uint64_t written;  /* image bytes written (after decompression) */
    unsigned attempts; /* HTTP requests made */
    unsigned restarts; /* times the download started over from byte 0 */
    decomp_format format;
} stream_result;

/* Downloads opts->url into s (an opened sink that has not begun) and commits
 * it when the hash matches; aborts it otherwise. Blocks until done. */
int stream_fetch(const stream_options *opts, sink *s, stream_result *ret_result, char **ret_error);
