/* One TFTP read transfer as a pure state machine: no sockets, no clock of
 * its own (time is passed in as monotonic milliseconds). The server feeds it
 * the client's packets and timer expiries and sends what it hands out.
 *
 *   WAIT_OACK_ACK --ACK 0--> SENDING --ACK of the last block--> DONE
 *        |                     |
 *        |  ERROR from client  |  ERROR from client, tries exhausted,
 *        v                     v  read error, illegal packet
 *     ABORTED                FAILED
 *
 * (WAIT_OACK_ACK also fails on exhausted tries or an illegal packet.) A
 * transfer without options starts in SENDING with DATA 1 (RFC 1350).
 *
 * Sending: blocks are numbered from 1 internally with 64 bits; on the wire
 * block n is n mod 65536, so after 65535 comes 0 (tftpd-hpa's default
 * roll-over, which iPXE expects). The sender sends a window of `windowsize`
 * blocks (RFC 7440) and waits for an ACK. An ACK for a block inside the
 * window slides the window: sending resumes at ACK + 1. A duplicate ACK of
 * the last acknowledged block never causes a resend (the Sorcerer's
 * Apprentice bug, RFC 1123 §4.2.3.1): only a timeout does, with the timeout
 * doubled each time up to a cap, and the transfer fails after `retries`
 * retransmissions of one window. The last DATA is shorter than blksize, 0
 * bytes when the size is a multiple of it (RFC 1350 §6).
 *
 * A client ERROR before any DATA (after the OACK) ends the transfer as
 * ABORTED, not FAILED: EDK2 asks with tsize only, reads the size from the
 * OACK and answers ERROR 8, then asks again for the real transfer.
 *
 * What an unanswered transfer may cost is the server's to decide, not the
 * client's. A 29-byte RRQ asking timeout=255 (RFC 2349 allows 1..255 s)
 * would otherwise hold a transfer slot for 255 s times every retry of the
 * doubling: about 25 minutes, from a source that may be spoofed. So:
 *  - until the client has answered anything (ACK 0 of the OACK, or of a
 *    DATA block), its timeout is used only up to unanswered_timeout_max_ms
 *    (5 s), or the server's own timeout_ms when that is longer: a
 *    retransmission still comes within a few seconds;
 *  - once it answers, RFC 2349 holds and its timeout spaces the resends;
 *  - either way the transfer fails once the client has moved nothing
 *    forward for max_stall_ms, by default the time the server's own
 *    timeout_ms, max_timeout_ms and retries give an unanswered window
 *    (1 + 2 + 4 + 8 + 8 + 8 = 31 s with the agent's defaults). A client's
 *    timeout option can space the retransmissions out, never make a silent
 *    client's slot live longer than that.
 * And what the OACK acknowledges is kept: a timeout option is echoed only
 * when all its retransmissions, and the wait for an answer to the last,
 * fit in that limit (tftp_transfer_timeout_honoured()); otherwise it is
 * left out of the OACK (RFC 2349 allows that) and the server's own
 * timeouts apply. With the defaults that means a timeout of 1 s: the stall
 * limit is exactly the server's own schedule. Before, timeout=60 was
 * echoed and then cut off by the 31 s limit with no retransmission. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tftp/wire.h"

typedef struct tftp_transfer tftp_transfer;

typedef enum tftp_transfer_state {
    TFTP_XFER_WAIT_OACK_ACK,
    TFTP_XFER_SENDING,
    TFTP_XFER_DONE,
    TFTP_XFER_FAILED,
    TFTP_XFER_ABORTED,
} tftp_transfer_state;

typedef enum tftp_transfer_reason {
    TFTP_REASON_NONE,
    TFTP_REASON_TIMEOUT,      /* tries exhausted */
    TFTP_REASON_CLIENT_ERROR, /* the client sent ERROR */
    TFTP_REASON_READ_ERROR,   /* pread failed or the file shrank */
    TFTP_REASON_ILLEGAL,      /* a packet that has no place in a read transfer */
} tftp_transfer_reason;

typedef struct tftp_transfer_config {
    int fd;        /* borrowed: read with pread(2), never closed here */
    uint64_t size; /* bytes to send */
    tftp_params params;
    uint32_t timeout_ms;     /* first retransmission timeout */
    uint32_t max_timeout_ms; /* cap of the doubling */
    unsigned retries;        /* retransmissions of one window before failing */
    /* Cap on the client's timeout option until it has answered; 0:
     * TFTP_UNANSWERED_TIMEOUT_MAX_MS. */
    uint32_t unanswered_timeout_max_ms;
    /* Longest time without progress (an ACK that moves the transfer on)
     * before it fails; 0: tftp_transfer_stall_limit() of this config. */
    uint64_t max_stall_ms;
} tftp_transfer_config;

#define TFTP_UNANSWERED_TIMEOUT_MAX_MS 5000u

/* What timeout_ms doubling up to max_timeout_ms over `retries`
 * retransmissions adds up to: how long the server's own settings keep an
 * unanswered window alive. */
uint64_t tftp_transfer_stall_limit(const tftp_transfer_config *cfg);

/* Whether a client's timeout option of `timeout_s` seconds (RFC 2349) is
 * acknowledged: its whole retry schedule (doubling up to max_timeout_ms,
 * `retries` resends, the last one waited for) fits in the stall limit.
 * tftp_transfer_new() leaves a timeout option it does not honour out of
 * the OACK, and sends no OACK when nothing else is in it (RFC 2347). */
bool tftp_transfer_timeout_honoured(const tftp_transfer_config *cfg, uint32_t timeout_s);

typedef struct tftp_transfer_stats {
    uint64_t packets_sent; /* DATA, OACK and ERROR, retransmissions included */
    uint64_t bytes_sent;   /* DATA payload on the wire, retransmissions included */
    uint64_t bytes_acked;  /* payload the client acknowledged */
    uint64_t retransmits;  /* DATA/OACK sent again */
    uint64_t timeouts;     /* timer expiries that led to a resend */
    uint64_t duplicate_acks;
    uint64_t ignored; /* stale or out-of-window ACKs, malformed packets */
    uint16_t client_error_code;
    char client_error_msg[128];
} tftp_transfer_stats;

/* Starts a transfer at `now_ms`; the first packet is ready at once. Besides
 * one packet buffer (blksize + 4 bytes) a transfer reads the file ahead into
 * a buffer of its own (tftp_transfer_read_ahead_size(), allocated on the
 * first DATA), so a window goes out of memory and a lock-step transfer reads
 * the file once per many blocks. -EINVAL for parameters outside the RFC
 * ranges, -ENOMEM. */
int tftp_transfer_new(const tftp_transfer_config *cfg, uint64_t now_ms, tftp_transfer **ret);
/* Accepts NULL, returns NULL. */
tftp_transfer *tftp_transfer_free(tftp_transfer *t);

/* A datagram from the client's TID. */
void tftp_transfer_receive(tftp_transfer *t, const uint8_t *buf, size_t len, uint64_t now_ms);
/* Call when now_ms >= tftp_transfer_deadline(); earlier calls do nothing. */
void tftp_transfer_timeout(tftp_transfer *t, uint64_t now_ms);

/* The next packet to send: returns 1 with *ret_pkt / *ret_len valid until
 * the next call, 0 when there is nothing to send now. Call until 0 after
 * every new/receive/timeout. */
int tftp_transfer_next(tftp_transfer *t, const uint8_t **ret_pkt, size_t *ret_len);

/* Most packets tftp_transfer_next_batch() hands out at once. */
#define TFTP_BATCH_MAX 64u

/* A packet in two parts, for sendmsg(2)'s iovecs without copying: `head`
 * (a DATA header, or a whole OACK or ERROR) and `body` (the DATA payload
 * straight from the read-ahead buffer, body_len 0 otherwise). */
typedef struct tftp_out {
    const uint8_t *head;
    size_t head_len;
    const uint8_t *body;
    size_t body_len;
} tftp_out;

/* Like calling tftp_transfer_next() until it says 0, but up to `max` (at
 * most TFTP_BATCH_MAX) packets at once, in sending order, for one
 * sendmmsg(2). Fewer than the window may come back when the read-ahead
 * buffer has to be refilled in between: call again until it returns 0.
 * The packets stay valid until the next call of next, next_batch or
 * read_ahead (receive and timeout leave them alone). */
size_t tftp_transfer_next_batch(tftp_transfer *t, tftp_out *out, size_t max);

/* Reads the file ahead, off the critical path: when the blocks after the
 * ones sent so far are not in memory, refills the buffer from the oldest
 * unacknowledged block on, so the next window (and any resend of this one)
 * goes out without a read. Call after the batch went out. A read error
 * here is left for next()/next_batch() to report. */
void tftp_transfer_read_ahead(tftp_transfer *t);

/* The read-ahead buffer's size for these parameters: two windows, at
 * least 64 KiB, at most 512 KiB (so a few hundred transfers stay within
 * memory a rack agent has). */
size_t tftp_transfer_read_ahead_size(const tftp_params *p);

/* pread(2) calls made so far (for tests of the read-ahead). */
uint64_t tftp_transfer_reads(const tftp_transfer *t);

/* When tftp_transfer_timeout() is due; UINT64_MAX once finished. */
uint64_t tftp_transfer_deadline(const tftp_transfer *t);
tftp_transfer_state tftp_transfer_get_state(const tftp_transfer *t);
/* DONE, FAILED or ABORTED (a final ERROR may still wait in next()). */
bool tftp_transfer_finished(const tftp_transfer *t);
tftp_transfer_reason tftp_transfer_get_reason(const tftp_transfer *t);
const tftp_transfer_stats *tftp_transfer_get_stats(const tftp_transfer *t);

const char *tftp_transfer_state_to_string(tftp_transfer_state s);
const char *tftp_transfer_reason_to_string(tftp_transfer_reason r);
