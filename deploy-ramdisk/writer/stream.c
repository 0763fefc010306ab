/* stream: see stream.h. */
#include "writer/stream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cursor.h"
#include "errmsg.h"
#include "sha256.h"
#include "util.h"
#include "writer/stream-internal.h"

/* Decompressed bytes are handed to the sink in pieces of this size; the sink
 * gathers them into its own aligned buffer. */
#define STREAM_OUT_BYTES         ((size_t)1 << 20)
#define STREAM_MAX_BACKOFF_SHIFT 4

/* ---- Content-Range (pure) ---- */

static int read_u64(cursor *c, uint64_t *ret)
{
    uint64_t v = 0;
    size_t digits = 0;
    uint8_t ch;
    while (cursor_peek_u8(c, &ch) == 0 && ch >= '0' && ch <= '9') {
        if (v > (UINT64_C(1) << 63) / 10) {
            return -EBADMSG;
        }
        v = v * 10 + (uint64_t)(ch - '0');
        (void)cursor_skip(c, 1);
        digits++;
    }
    if (digits == 0 || v > (UINT64_C(1) << 63)) {
        return -EBADMSG;
    }
    *ret = v;
    return 0;
}

static void skip_blanks(cursor *c)
{
    uint8_t ch;
    while (cursor_peek_u8(c, &ch) == 0 && (ch == ' ' || ch == '\t')) {
        (void)cursor_skip(c, 1);
    }
}

static int expect_byte(cursor *c, uint8_t want)
{
    uint8_t ch;
    if (cursor_read_u8(c, &ch) < 0 || ch != want) {
        return -EBADMSG;
    }
    return 0;
}

int stream_parse_content_range(const char *value, size_t len, uint64_t *ret_first,
                               uint64_t *ret_last, uint64_t *ret_complete)
{
    cursor c = cursor_make(value, len);
    const uint8_t *unit;
    uint64_t first, last, complete = 0;
    uint8_t ch;

    skip_blanks(&c);
    if (cursor_read_ref(&c, 5, &unit) < 0 || strncasecmp((const char *)unit, "bytes", 5) != 0) {
        return -EBADMSG;
    }
    if (cursor_peek_u8(&c, &ch) < 0 || (ch != ' ' && ch != '\t')) {
        return -EBADMSG;
    }
    skip_blanks(&c);
    if (read_u64(&c, &first) < 0 || expect_byte(&c, '-') < 0 || read_u64(&c, &last) < 0 ||
        expect_byte(&c, '/') < 0) {
        return -EBADMSG;
    }
    if (cursor_peek_u8(&c, &ch) == 0 && ch == '*') {
        (void)cursor_skip(&c, 1);
    } else if (read_u64(&c, &complete) < 0 || complete <= last) {
        return -EBADMSG;
    }
    skip_blanks(&c);
    if (!cursor_at_end(&c) || last < first) {
        return -EBADMSG;
    }
    *ret_first = first;
    *ret_last = last;
    *ret_complete = complete;
    return 0;
}

/* ---- the pipeline: hash, decompress, write ---- */

typedef struct pipeline {
    sha256_ctx *hash;
    decomp *dec;
    sink *sink;
    uint8_t *out;
    uint64_t received; /* bytes of the file as served, from byte 0 */
} pipeline;

static int pipeline_push(pipeline *p, const uint8_t *data, size_t len)
{
    int r = sha256_update(p->hash, data, len);
    if (r < 0) {
        return r;
    }
    while (len > 0) {
        size_t used = 0, made = 0;
        r = decomp_feed(p->dec, data, len, p->out, STREAM_OUT_BYTES, &used, &made);
        if (r < 0) {
            return r;
        }
        if (made > 0) {
            r = sink_write(p->sink, p->out, made);
            if (r < 0) {
                return r;
            }
        }
        data += used;
        len -= used;
    }
    return 0;
}

static int pipeline_restart(pipeline *p)
{
    uint8_t discard[SHA256_LEN];
    int r = sha256_final(p->hash, discard); /* resets it */
    if (r < 0) {
        return r;
    }
    r = decomp_clear(p->dec);
    if (r < 0) {
        return r;
    }
    p->received = 0;
    return sink_reset(p->sink);
}

/* Decompressor drained into the sink, digest out. */
static int pipeline_finish(pipeline *p, uint8_t ret_digest[SHA256_LEN])
{
    int r;
    do {
        size_t made = 0;
        r = decomp_finish(p->dec, p->out, STREAM_OUT_BYTES, &made);
        if (r < 0) {
            return r;
        }
        if (made > 0) {
            int w = sink_write(p->sink, p->out, made);
            if (w < 0) {
                return w;
            }
        }
    } while (r > 0);
    return sha256_final(p->hash, ret_digest);
}

/* ---- one HTTP attempt ---- */

typedef struct attempt {
    pipeline *pipe;
    const stream_options *opts;
    uint64_t asked_from; /* Range start asked for, 0: no Range */
    bool checked;        /* the answer's status and range were looked at */
    bool have_range;
    uint64_t range_first;
    uint64_t range_complete;
    uint64_t total; /* file size, 0 if unknown */
    bool restarted; /* a 200 answered our Range: started over */
    bool bad_range; /* a 206 for the wrong bytes: start over next time */
    int fatal;      /* an error no retry cures (decompressor, sink) */
    char *fatal_msg;
    CURL *curl;
} attempt;

static size_t on_header(char *line, size_t size, size_t n, void *userdata)
{
    attempt *a = userdata;
    size_t len = size * n;
    static const char name[] = "content-range:";

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 100): forget the last. */
        a->have_range = false;
        return len;
    }
    if (len > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        const char *v = line + sizeof(name) - 1;
        size_t vlen = len - (sizeof(name) - 1);
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n')) {
            vlen--;
        }
        uint64_t first, last, complete;
        if (stream_parse_content_range(v, vlen, &first, &last, &complete) == 0) {
            a->have_range = true;
            a->range_first = first;
            a->range_complete = complete;
        }
    }
    return len;
}

/* Looks at the status before the first body byte is used. Returns false to
 * stop the transfer. */
static bool check_answer(attempt *a)
{
    long code = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &code);
    if (a->asked_from > 0 && code == 206) {
        if (!a->have_range || a->range_first != a->asked_from) {
            a->bad_range = true;
            return false;
        }
        a->total = a->range_complete;
        return true;
    }
    if (code == 200) {
        if (a->asked_from > 0) {
            /* The server sent the whole file: take it from its start. */
            int r = pipeline_restart(a->pipe);
            if (r < 0) {
                a->fatal = r;
                return false;
            }
            a->restarted = true;
        }
        curl_off_t cl = -1;
        curl_easy_getinfo(a->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        a->total = cl > 0 ? (uint64_t)cl : 0;
        return true;
    }
    /* A 206 we did not ask for, or any other success code: not a file. */
    a->fatal = errmsg_fail(&a->fatal_msg, -EPROTO, "unexpected HTTP status %ld", code);
    return false;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    attempt *a = userdata;
    size_t len = size * n;

    if (!a->checked) {
        a->checked = true;
        if (!check_answer(a)) {
            return 0; /* CURLE_WRITE_ERROR */
        }
    }
    if (a->total > 0 && len > a->total - a->pipe->received) {
        /* More than the server announced: never believe a peer past its
         * own length. */
        a->fatal = errmsg_fail(&a->fatal_msg, -EPROTO, "the server sent more than its %llu bytes",
                               (unsigned long long)a->total);
        return 0;
    }
    int r = pipeline_push(a->pipe, (const uint8_t *)data, len);
    if (r < 0) {
        a->fatal = r;
        return 0;
    }
    a->pipe->received += len;
    if (a->opts->on_progress) {
        a->opts->on_progress(a->pipe->received, a->total, a->opts->userdata);
    }
    return len;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int setup_curl(CURL *c, const stream_options *opts, char *errbuf)
{
    CURLcode cc = curl_easy_setopt(c, CURLOPT_URL, opts->url);
    if (cc == CURLE_OK) {
        cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    }
    if (cc == CURLE_OK) {
        cc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (cc != CURLE_OK) {
        return -EINVAL;
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts->stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "rackboot-deploy");
    /* The hash is over the bytes as served: no transparent Content-Encoding. */
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
    /* Fewer, larger write callbacks; curl's maximum. */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)CURL_MAX_READ_SIZE);
    return 0;
}

/* Whether an HTTP error status is worth another try. */
static bool status_retryable(long code)
{
    return code >= 500 || code == 408 || code == 429 || code == 416;
}

int stream_fetch(const stream_options *opts_in, sink *s, stream_result *ret_result,
                 char **ret_error)
{
    stream_options opts = *opts_in;
    uint8_t want[SHA256_LEN], got[SHA256_LEN];
    char errbuf[CURL_ERROR_SIZE] = "";
    char last_error[CURL_ERROR_SIZE + 64] = "no attempt made";
    pipeline pipe = { .sink = s };
    attempt a = { 0 };
    CURL *curl = NULL;
    stream_result res = { 0 };
    uint64_t furthest = 0;
    unsigned stalls = 0;
    bool begun = false;
    int r;

    if (!opts.url || !opts.sha256_hex || sha256_from_hex(opts.sha256_hex, want) < 0) {
        return errmsg_fail(ret_error, -EINVAL, "a URL and a sha256 of 64 hex digits are needed");
    }
    opts.max_stalls = opts.max_stalls ? opts.max_stalls : 5;
    opts.max_attempts = opts.max_attempts ? opts.max_attempts : 100;
    opts.backoff_ms = opts.backoff_ms ? opts.backoff_ms : 500;
    opts.connect_timeout_s = opts.connect_timeout_s > 0 ? opts.connect_timeout_s : 10;
    opts.stall_timeout_s = opts.stall_timeout_s > 0 ? opts.stall_timeout_s : 30;

    pipe.hash = sha256_new();
    pipe.out = malloc(STREAM_OUT_BYTES);
    r = decomp_new(&pipe.dec);
    curl = curl_easy_init();
    if (!pipe.hash || !pipe.out || r < 0 || !curl) {
        r = errmsg_fail(ret_error, -ENOMEM, "out of memory");
        goto out;
    }
    r = setup_curl(curl, &opts, errbuf);
    if (r < 0) {
        r = errmsg_fail(ret_error, r, "libcurl refused the URL or its options");
        goto out;
    }
    r = sink_begin(s, opts.image_size);
    if (r < 0) {
        r = errmsg_fail(ret_error, r, "cannot prepare the target: %s", errstr(r));
        goto out;
    }
    begun = true;

    for (;;) {
        if (res.attempts >= opts.max_attempts) {
            r = errmsg_fail(ret_error, -EIO, "gave up after %u attempts: %s", res.attempts,
                            last_error);
            goto out;
        }
        free(a.fatal_msg);
        a = (attempt){ .pipe = &pipe, .opts = &opts, .curl = curl, .asked_from = pipe.received };
        char range[32];
        if (a.asked_from > 0) {
            snprintf(range, sizeof(range), "%llu-", (unsigned long long)a.asked_from);
            curl_easy_setopt(curl, CURLOPT_RANGE, range);
        } else {
            curl_easy_setopt(curl, CURLOPT_RANGE, NULL);
        }
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
        errbuf[0] = '\0';
        res.attempts++;
        CURLcode cc = curl_easy_perform(curl);
        if (a.restarted) {
            res.restarts++;
        }
        if (a.fatal < 0) {
            if (a.fatal_msg) {
                r = errmsg_fail(ret_error, a.fatal, "%s", a.fatal_msg);
            } else {
                r = errmsg_fail(ret_error, a.fatal, "writing the image failed at byte %llu: %s",
                                (unsigned long long)pipe.received, errstr(a.fatal));
            }
            goto out;
        }
        if (cc == CURLE_OK && a.checked && (a.total == 0 || pipe.received == a.total)) {
            break; /* the whole file */
        }
        if (cc == CURLE_OK && !a.checked) {
            /* An empty body: a 200 for an empty file, or a 206 with none. */
            long code = 0;
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
            if (code == 200 && a.asked_from == 0) {
                break;
            }
        }
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
            long code = 0;
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
            if (!status_retryable(code)) {
                r = errmsg_fail(ret_error, code == 404 ? -ENOENT : -EPROTO,
                                "the server answered HTTP %ld for %s", code, opts.url);
                goto out;
            }
        }

        /* A retry. Where it starts from: */
        if (a.bad_range || (cc == CURLE_HTTP_RETURNED_ERROR && pipe.received > 0)) {
            /* A wrong Content-Range (or 416 for a range we think is inside
             * the file): this server cannot resume; take the file whole. */
            snprintf(last_error, sizeof(last_error), "%s",
                     a.bad_range ? "a 206 answer for other bytes than asked"
                                 : "the server refused to resume");
            r = pipeline_restart(&pipe);
            if (r < 0) {
                r = errmsg_fail(ret_error, r, "cannot start over: %s", errstr(r));
                goto out;
            }
            res.restarts++;
        } else {
            snprintf(last_error, sizeof(last_error), "%s (%s)", curl_easy_strerror(cc),
                     errbuf[0] ? errbuf : "no detail");
        }
        if (pipe.received > furthest) {
            furthest = pipe.received;
            stalls = 0;
        } else if (++stalls >= opts.max_stalls) {
            r = errmsg_fail(ret_error, -EIO, "gave up after %u attempts, %u without progress: %s",
                            res.attempts, stalls, last_error);
            goto out;
        }
        unsigned shift = stalls < STREAM_MAX_BACKOFF_SHIFT ? stalls : STREAM_MAX_BACKOFF_SHIFT;
        sleep_ms(opts.backoff_ms << shift);
    }

    r = pipeline_finish(&pipe, got);
    if (r < 0) {
        r = errmsg_fail(ret_error, r, "the image ends early or is corrupt: %s", errstr(r));
        goto out;
    }
    if (memcmp(want, got, SHA256_LEN) != 0) {
        char got_hex[SHA256_HEX_LEN + 1];
        sha256_to_hex(got, got_hex);
        r = errmsg_fail(ret_error, -EBADMSG, "sha256 mismatch: expected %s, got %s",
                        opts.sha256_hex, got_hex);
        goto out;
    }
    r = sink_commit(s);
    if (r < 0) {
        r = errmsg_fail(ret_error, r, "cannot write the partition table: %s", errstr(r));
        goto out;
    }
    res.received = pipe.received;
    res.written = sink_get_written(s);
    res.format = decomp_get_format(pipe.dec);
    *ret_result = res;
    r = 0;
out:
    if (r < 0 && begun) {
        /* The error above is the one to report; the wipe is best effort. */
        (void)sink_abort(s);
    }
    free(a.fatal_msg);
    curl_easy_cleanup(curl);
    pipe.dec = decomp_free(pipe.dec);
    pipe.hash = sha256_free(pipe.hash);
    free(pipe.out);
    return r;
}
