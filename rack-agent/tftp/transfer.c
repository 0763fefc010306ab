#include "tftp/transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct tftp_transfer {
    tftp_transfer_state state;
    tftp_transfer_reason reason;
    int fd;
    uint64_t size;
    tftp_params params;
    uint64_t total_blocks; /* blocks 1..total_blocks; the last one is short */
    uint64_t acked;        /* highest block the client acknowledged */
    uint64_t highest_sent;
    uint64_t send_next, send_end; /* blocks still to hand out now, inclusive */
    bool pending_oack;
    bool pending_error;
    uint16_t error_code;
    char error_msg[64];
    unsigned tries; /* retransmissions of the current window */
    unsigned retries;
    uint32_t rto_initial_ms, rto_ms, rto_max_ms;
    /* What rto_initial_ms and rto_max_ms become once the client answered
     * (transfer.h: its timeout option is capped until then). */
    uint32_t rto_answered_ms, rto_answered_max_ms;
    bool answered;
    uint64_t deadline_ms;
    /* The transfer fails at stall_deadline_ms: stall_limit_ms after the
     * last ACK that moved it on (or its start). */
    uint64_t stall_limit_ms, stall_deadline_ms;
    tftp_transfer_stats stats;
    /* The read-ahead buffer: file bytes [roff, roff + rlen), allocated on
     * the first DATA (rcap bytes). */
    uint8_t *rbuf;
    size_t rcap, rlen;
    uint64_t roff;
    uint64_t reads;
    uint8_t heads[TFTP_BATCH_MAX][TFTP_HEADER_LEN]; /* DATA headers of a batch */
    size_t buf_cap;
    uint8_t buf[]; /* one packet: OACK, ERROR, or a DATA block for next() */
};

enum {
    READ_AHEAD_MIN = 64 * 1024,
    READ_AHEAD_MAX = 512 * 1024,
};

const char *tftp_transfer_state_to_string(tftp_transfer_state s)
{
    switch (s) {
    case TFTP_XFER_WAIT_OACK_ACK:
        return "wait-oack-ack";
    case TFTP_XFER_SENDING:
        return "sending";
    case TFTP_XFER_DONE:
        return "done";
    case TFTP_XFER_FAILED:
        return "failed";
    case TFTP_XFER_ABORTED:
        return "aborted";
    }
    return "?";
}

const char *tftp_transfer_reason_to_string(tftp_transfer_reason r)
{
    switch (r) {
    case TFTP_REASON_NONE:
        return "none";
    case TFTP_REASON_TIMEOUT:
        return "timeout";
    case TFTP_REASON_CLIENT_ERROR:
        return "client-error";
    case TFTP_REASON_READ_ERROR:
        return "read-error";
    case TFTP_REASON_ILLEGAL:
        return "illegal-packet";
    }
    return "?";
}

static bool is_final(tftp_transfer_state s)
{
    return s == TFTP_XFER_DONE || s == TFTP_XFER_FAILED || s == TFTP_XFER_ABORTED;
}

/* The one place states change; an illegal move is a bug here, not input. */
static void transition(tftp_transfer *t, tftp_transfer_state to, tftp_transfer_reason why)
{
    bool ok = false;
    switch (t->state) {
    case TFTP_XFER_WAIT_OACK_ACK:
        ok = to == TFTP_XFER_SENDING || to == TFTP_XFER_FAILED || to == TFTP_XFER_ABORTED;
        break;
    case TFTP_XFER_SENDING:
        ok = to == TFTP_XFER_DONE || to == TFTP_XFER_FAILED;
        break;
    default:
        ok = false;
        break;
    }
    RB_ASSERT(ok);
    t->state = to;
    t->reason = why;
    if (is_final(to)) {
        t->send_next = 1;
        t->send_end = 0;
        t->pending_oack = false;
        t->deadline_ms = UINT64_MAX;
    }
}

static void fail_with_error(tftp_transfer *t, tftp_transfer_reason why, uint16_t code,
                            const char *msg)
{
    transition(t, TFTP_XFER_FAILED, why);
    t->pending_error = true;
    t->error_code = code;
    snprintf(t->error_msg, sizeof(t->error_msg), "%s", msg);
}

static void queue_window(tftp_transfer *t)
{
    uint64_t end = t->acked + t->params.windowsize;
    t->send_next = t->acked + 1;
    t->send_end = end < t->total_blocks ? end : t->total_blocks;
}

uint64_t tftp_transfer_stall_limit(const tftp_transfer_config *cfg)
{
    uint64_t rto = cfg->timeout_ms;
    uint64_t cap = cfg->max_timeout_ms > rto ? cfg->max_timeout_ms : rto;
    uint64_t total = 0;
    for (unsigned i = 0; i <= cfg->retries; i++) {
        total += rto;
        rto = 2 * rto < cap ? 2 * rto : cap;
    }
    return total;
}

static uint64_t stall_limit_of(const tftp_transfer_config *cfg)
{
    return cfg->max_stall_ms ? cfg->max_stall_ms : tftp_transfer_stall_limit(cfg);
}

bool tftp_transfer_timeout_honoured(const tftp_transfer_config *cfg, uint32_t timeout_s)
{
    /* The schedule an answered client's timeout gives (progress(): it
     * doubles from timeout_s up to max(max_timeout_ms, timeout_s)), all of
     * it: `retries` resends and the wait for an answer to the last one. */
    if (timeout_s > UINT32_MAX / 1000u) {
        return false;
    }
    tftp_transfer_config answered = *cfg;
    answered.timeout_ms = timeout_s * 1000u;
    return tftp_transfer_stall_limit(&answered) <= stall_limit_of(cfg);
}

int tftp_transfer_new(const tftp_transfer_config *cfg, uint64_t now_ms, tftp_transfer **ret)
{
    tftp_params params = cfg->params;
    const tftp_params *p = &params;
    if (p->blksize < TFTP_MIN_BLKSIZE || p->blksize > TFTP_MAX_BLKSIZE || p->windowsize < 1 ||
        p->windowsize > TFTP_MAX_WINDOWSIZE || cfg->timeout_ms == 0 || cfg->fd < 0) {
        return -EINVAL;
    }
    /* RFC 2349 lets the server leave the timeout option out of the OACK,
     * never change it. A timeout whose retry schedule does not fit in the
     * stall limit would be acknowledged and then not honoured: the stall
     * limit cut the resends short (timeout=60 got none at all, so one
     * lost DATA ended the transfer). Raising the stall limit for such a
     * client instead would let anyone who sends ACK 0 and then goes
     * silent hold a slot for 6 x 255 s again (issue #10), so the option
     * is declined: the client keeps its own timer, ours stays ours. */
    if (p->timeout && !tftp_transfer_timeout_honoured(cfg, p->timeout)) {
        params.timeout = 0;
        params.oack_timeout = false;
    }
    size_t cap = TFTP_HEADER_LEN + p->blksize;
    if (cap < TFTP_MAX_ERROR_PACKET) {
        cap = TFTP_MAX_ERROR_PACKET; /* room for an OACK or ERROR */
    }
    tftp_transfer *t = calloc(1, sizeof(*t) + cap);
    if (!t) {
        return -ENOMEM;
    }
    t->buf_cap = cap;
    t->fd = cfg->fd;
    t->size = cfg->size;
    t->params = *p;
    t->total_blocks = cfg->size / p->blksize + 1;
    t->retries = cfg->retries;
    /* RFC 2349: the client's timeout replaces ours, but only once it has
     * shown it is there (transfer.h); until then at most the larger of the
     * cap and our own first timeout. */
    t->rto_answered_ms = p->timeout ? p->timeout * 1000u : cfg->timeout_ms;
    t->rto_answered_max_ms =
        cfg->max_timeout_ms > t->rto_answered_ms ? cfg->max_timeout_ms : t->rto_answered_ms;
    uint32_t rto_cap = cfg->unanswered_timeout_max_ms ? cfg->unanswered_timeout_max_ms
                                                      : TFTP_UNANSWERED_TIMEOUT_MAX_MS;
    if (rto_cap < cfg->timeout_ms) {
        rto_cap = cfg->timeout_ms;
    }
    t->rto_initial_ms = t->rto_answered_ms < rto_cap ? t->rto_answered_ms : rto_cap;
    t->rto_max_ms =
        cfg->max_timeout_ms > t->rto_initial_ms ? cfg->max_timeout_ms : t->rto_initial_ms;
    t->rto_ms = t->rto_initial_ms;
    t->stall_limit_ms = stall_limit_of(cfg);
    t->stall_deadline_ms = now_ms + t->stall_limit_ms;
    t->deadline_ms = now_ms + t->rto_ms;
    if (t->deadline_ms > t->stall_deadline_ms) {
        t->deadline_ms = t->stall_deadline_ms;
    }
    if (tftp_params_has_oack(p)) {
        /* RFC 2347: answer with OACK and wait for ACK 0 before any DATA,
         * which also keeps a spoofed request to one packet out. */
        t->state = TFTP_XFER_WAIT_OACK_ACK;
        t->pending_oack = true;
        t->send_next = 1;
        t->send_end = 0;
    } else {
        t->state = TFTP_XFER_SENDING;
        queue_window(t);
    }
    *ret = t;
    return 0;
}

tftp_transfer *tftp_transfer_free(tftp_transfer *t)
{
    if (t) {
        free(t->rbuf);
        free(t);
    }
    return NULL;
}

size_t tftp_transfer_read_ahead_size(const tftp_params *p)
{
    uint64_t want = 2 * (uint64_t)p->windowsize * p->blksize;
    if (want < READ_AHEAD_MIN) {
        want = READ_AHEAD_MIN;
    }
    return want > READ_AHEAD_MAX ? READ_AHEAD_MAX : (size_t)want;
}

uint64_t tftp_transfer_reads(const tftp_transfer *t)
{
    return t->reads;
}

/* The next retransmission, or the end of the stall limit if that comes
 * first (tftp_transfer_timeout() then fails the transfer). */
static void arm(tftp_transfer *t, uint64_t now_ms)
{
    uint64_t at = now_ms + t->rto_ms;
    t->deadline_ms = at < t->stall_deadline_ms ? at : t->stall_deadline_ms;
}

/* The client moved the transfer on: its own timeout applies from now on,
 * the tries and the stall clock start again. tftp_transfer_new() kept the
 * timeout option only if its whole retry schedule fits in stall_limit_ms,
 * so the stall deadline never cuts an answered client's resends short. */
static void progress(tftp_transfer *t, uint64_t now_ms)
{
    if (!t->answered) {
        t->answered = true;
        t->rto_initial_ms = t->rto_answered_ms;
        t->rto_max_ms = t->rto_answered_max_ms;
    }
    t->tries = 0;
    t->rto_ms = t->rto_initial_ms;
    t->stall_deadline_ms = now_ms + t->stall_limit_ms;
    arm(t, now_ms);
}

static void on_ack(tftp_transfer *t, uint16_t block, uint64_t now_ms)
{
    if (t->state == TFTP_XFER_WAIT_OACK_ACK) {
        if (block != 0) {
            t->stats.ignored++;
            return;
        }
        transition(t, TFTP_XFER_SENDING, TFTP_REASON_NONE);
        t->pending_oack = false;
        queue_window(t);
        progress(t, now_ms);
        return;
    }
    /* Which block this is: at most a window ahead of the last ACK. */
    uint16_t delta = (uint16_t)(block - (uint16_t)t->acked);
    uint64_t in_flight = t->highest_sent - t->acked;
    if (delta == 0) {
        /* RFC 1123 §4.2.3.1: never resend on a duplicate ACK. */
        t->stats.duplicate_acks++;
        return;
    }
    if (delta > in_flight) {
        t->stats.ignored++;
        return;
    }
    t->acked += delta;
    uint64_t acked_bytes = t->acked * (uint64_t)t->params.blksize;
    t->stats.bytes_acked = acked_bytes < t->size ? acked_bytes : t->size;
    if (t->acked == t->total_blocks) {
        transition(t, TFTP_XFER_DONE, TFTP_REASON_NONE);
        return;
    }
    /* RFC 7440 §4: the window slides to ACK + 1; blocks after an ACK from
     * inside the window were lost and go again. */
    queue_window(t);
    progress(t, now_ms);
}

void tftp_transfer_receive(tftp_transfer *t, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    if (is_final(t->state)) {
        return;
    }
    tftp_packet pkt;
    if (tftp_packet_parse(buf, len, &pkt) < 0) {
        t->stats.ignored++;
        return;
    }
    switch (pkt.opcode) {
    case TFTP_ACK:
        on_ack(t, pkt.block, now_ms);
        break;
    case TFTP_ERROR:
        /* RFC 1350: an ERROR ends the transfer and is not answered. */
        t->stats.client_error_code = pkt.error_code;
        snprintf(t->stats.client_error_msg, sizeof(t->stats.client_error_msg), "%s", pkt.error_msg);
        transition(t, t->state == TFTP_XFER_WAIT_OACK_ACK ? TFTP_XFER_ABORTED : TFTP_XFER_FAILED,
                   TFTP_REASON_CLIENT_ERROR);
        break;
    default:
        /* DATA, a request or an OACK on a read transfer's TID. */
        fail_with_error(t, TFTP_REASON_ILLEGAL, TFTP_ERR_ILLEGAL_OP, "Illegal TFTP operation");
        break;
    }
}

void tftp_transfer_timeout(tftp_transfer *t, uint64_t now_ms)
{
    if (is_final(t->state) || now_ms < t->deadline_ms) {
        return;
    }
    if (t->tries >= t->retries || now_ms >= t->stall_deadline_ms) {
        transition(t, TFTP_XFER_FAILED, TFTP_REASON_TIMEOUT);
        return;
    }
    t->tries++;
    t->stats.timeouts++;
    t->rto_ms = t->rto_ms * 2 < t->rto_max_ms ? t->rto_ms * 2 : t->rto_max_ms;
    if (t->state == TFTP_XFER_WAIT_OACK_ACK) {
        t->pending_oack = true;
    } else {
        queue_window(t);
    }
    arm(t, now_ms);
}

/* Block n's place in the file. */
static void block_span(const tftp_transfer *t, uint64_t n, uint64_t *ret_off, size_t *ret_len)
{
    uint64_t off = (n - 1) * (uint64_t)t->params.blksize;
    *ret_off = off;
    *ret_len = n == t->total_blocks ? (size_t)(t->size - off) : t->params.blksize;
}

static bool in_buffer(const tftp_transfer *t, uint64_t off, size_t len)
{
    return t->rbuf && off >= t->roff && off - t->roff <= t->rlen &&
           len <= t->rlen - (off - t->roff);
}

/* Refills the read-ahead buffer with the file from `off` on. A short read
 * (the file shrank) leaves less in the buffer; callers find the block they
 * need missing and fail. */
static int fill(tftp_transfer *t, uint64_t off)
{
    if (!t->rbuf) {
        size_t cap = tftp_transfer_read_ahead_size(&t->params);
        if (cap > t->size) {
            cap = t->size > 0 ? (size_t)t->size : 1;
        }
        t->rbuf = malloc(cap);
        if (!t->rbuf) {
            return -ENOMEM;
        }
        t->rcap = cap;
    }
    size_t want = t->size - off < t->rcap ? (size_t)(t->size - off) : t->rcap;
    size_t got = 0;
    t->roff = off;
    t->rlen = 0;
    while (got < want) {
        ssize_t k = pread(t->fd, t->rbuf + got, want - got, (off_t)(off + got));
        t->reads++;
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return -EIO;
        }
        if (k == 0) {
            break;
        }
        got += (size_t)k;
    }
    t->rlen = got;
    return 0;
}

/* The payload of block n from the buffer; NULL when it is not there (and
 * `refill` is false, or the file no longer holds it). */
static const uint8_t *block_data(tftp_transfer *t, uint64_t n, bool refill)
{
    uint64_t off;
    size_t len;
    block_span(t, n, &off, &len);
    if (len == 0) {
        return t->buf; /* the empty last block: any valid pointer */
    }
    if (!in_buffer(t, off, len)) {
        if (!refill || fill(t, off) < 0 || !in_buffer(t, off, len)) {
            return NULL;
        }
    }
    return t->rbuf + (off - t->roff);
}

size_t tftp_transfer_next_batch(tftp_transfer *t, tftp_out *out, size_t max)
{
    size_t k = 0;
    if (max > TFTP_BATCH_MAX) {
        max = TFTP_BATCH_MAX;
    }
    while (k < max) {
        if (!t->pending_error && t->pending_oack) {
            int r = tftp_build_oack(&t->params, t->buf, t->buf_cap);
            RB_ASSERT(r > 0);
            if (t->stats.packets_sent + k > 0) {
                t->stats.retransmits++;
            }
            t->pending_oack = false;
            out[k++] = (tftp_out){ .head = t->buf, .head_len = (size_t)r };
            continue;
        }
        if (!t->pending_error && t->send_next <= t->send_end) {
            uint64_t n = t->send_next;
            /* A refill moves the buffer under the packets already in this
             * batch: leave it to the next call. */
            const uint8_t *data = block_data(t, n, k == 0);
            if (!data && k > 0) {
                break;
            }
            if (!data) {
                /* A file that shrank would end the client's copy early
                 * with a short block: fail loudly instead. */
                fail_with_error(t, TFTP_REASON_READ_ERROR, TFTP_ERR_UNDEFINED, "Read error");
                continue;
            }
            uint64_t off;
            size_t len;
            block_span(t, n, &off, &len);
            tftp_build_data_header((uint16_t)n, t->heads[k], TFTP_HEADER_LEN);
            t->send_next++;
            if (n <= t->highest_sent) {
                t->stats.retransmits++;
            } else {
                t->highest_sent = n;
            }
            t->stats.bytes_sent += len;
            out[k] = (tftp_out){
                .head = t->heads[k], .head_len = TFTP_HEADER_LEN, .body = data, .body_len = len
            };
            k++;
            continue;
        }
        if (t->pending_error) {
            int r = tftp_build_error(t->error_code, t->error_msg, t->buf, t->buf_cap);
            RB_ASSERT(r > 0);
            t->pending_error = false;
            out[k++] = (tftp_out){ .head = t->buf, .head_len = (size_t)r };
            continue;
        }
        break;
    }
    t->stats.packets_sent += k;
    return k;
}

int tftp_transfer_next(tftp_transfer *t, const uint8_t **ret_pkt, size_t *ret_len)
{
    tftp_out o;
    if (tftp_transfer_next_batch(t, &o, 1) == 0) {
        return 0;
    }
    if (o.head != t->buf) {
        /* DATA: header and payload into the one packet buffer. */
        memcpy(t->buf, o.head, o.head_len);
        memcpy(t->buf + o.head_len, o.body, o.body_len);
    }
    *ret_pkt = t->buf;
    *ret_len = o.head_len + o.body_len;
    return 1;
}

void tftp_transfer_read_ahead(tftp_transfer *t)
{
    if (t->state != TFTP_XFER_SENDING || t->highest_sent >= t->total_blocks) {
        return;
    }
    uint64_t off, next_off;
    size_t len, next_len;
    block_span(t, t->highest_sent + 1, &next_off, &next_len);
    if (next_len == 0 || in_buffer(t, next_off, next_len)) {
        return;
    }
    /* From the oldest block a resend would need, when the buffer reaches
     * past the next one from there; else from the next one. */
    block_span(t, t->acked + 1, &off, &len);
    size_t cap = t->rbuf ? t->rcap : tftp_transfer_read_ahead_size(&t->params);
    if (next_off + next_len - off > cap) {
        off = next_off;
    }
    (void)fill(t, off);
}

uint64_t tftp_transfer_deadline(const tftp_transfer *t)
{
    return is_final(t->state) ? UINT64_MAX : t->deadline_ms;
}

tftp_transfer_state tftp_transfer_get_state(const tftp_transfer *t)
{
    return t->state;
}

bool tftp_transfer_finished(const tftp_transfer *t)
{
    return is_final(t->state);
}

tftp_transfer_reason tftp_transfer_get_reason(const tftp_transfer *t)
{
    return t->reason;
}

const tftp_transfer_stats *tftp_transfer_get_stats(const tftp_transfer *t)
{
    return &t->stats;
}
