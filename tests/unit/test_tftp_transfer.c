/* rack-agent/tftp/transfer: the read transfer state machine driven with a
 * fake clock: lost ACKs, duplicate ACKs, windows, roll-over past block
 * 65535, tries exhausted, the EDK2 tsize probe. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tftp/transfer.h"

typedef struct sent {
    uint16_t op, block;
    size_t payload;
    uint8_t first; /* first payload byte */
} sent;

static int temp_file(uint64_t size, bool pattern)
{
    char path[] = "/tmp/test_tftp_transfer.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    if (pattern) {
        for (uint64_t i = 0; i < size; i++) {
            uint8_t b = (uint8_t)(i % 251);
            assert_int_equal(pwrite(fd, &b, 1, (off_t)i), 1);
        }
    } else if (size > 0) {
        /* Sparse: one byte at the end makes the size. */
        uint8_t b = 0x7e;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)(size - 1)), 1);
    }
    return fd;
}

/* Pulls every packet the transfer has for us now. */
static size_t drain(tftp_transfer *t, sent *out, size_t max)
{
    size_t n = 0;
    const uint8_t *p;
    size_t len;
    while (tftp_transfer_next(t, &p, &len) == 1) {
        assert_true(len >= 4);
        if (n < max) {
            out[n].op = (uint16_t)(p[0] << 8 | p[1]);
            out[n].block = (uint16_t)(p[2] << 8 | p[3]);
            out[n].payload = len - 4;
            out[n].first = len > 4 ? p[4] : 0;
        }
        n++;
    }
    return n;
}

static void ack(tftp_transfer *t, uint16_t block, uint64_t now)
{
    uint8_t b[4];
    assert_int_equal(tftp_build_ack(block, b, sizeof(b)), 4);
    tftp_transfer_receive(t, b, sizeof(b), now);
}

static void client_error(tftp_transfer *t, uint16_t code, const char *msg, uint64_t now)
{
    uint8_t b[128];
    int n = tftp_build_error(code, msg, b, sizeof(b));
    tftp_transfer_receive(t, b, (size_t)n, now);
}

static tftp_transfer *start(int fd, uint64_t size, uint32_t blksize, uint32_t window, bool oack,
                            uint64_t now)
{
    tftp_transfer_config c = {
        .fd = fd,
        .size = size,
        .params = { .blksize = blksize, .windowsize = window, .oack_blksize = oack },
        .timeout_ms = 1000,
        .max_timeout_ms = 4000,
        .retries = 3,
    };
    tftp_transfer *t;
    assert_int_equal(tftp_transfer_new(&c, now, &t), 0);
    return t;
}

static void test_plain_lockstep(void **state)
{
    /* 1100 bytes at 512: blocks of 512, 512, 76. */
    int fd = temp_file(1100, true);
    tftp_transfer *t = start(fd, 1100, 512, 1, false, 0);
    sent s[8];
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_SENDING);
    assert_int_equal(drain(t, s, 8), 1);
    assert_int_equal(s[0].op, TFTP_DATA);
    assert_int_equal(s[0].block, 1);
    assert_int_equal(s[0].payload, 512);
    assert_int_equal(s[0].first, 0);
    ack(t, 1, 10);
    assert_int_equal(drain(t, s, 8), 1);
    assert_int_equal(s[0].block, 2);
    assert_int_equal(s[0].first, 512 % 251);
    ack(t, 2, 20);
    assert_int_equal(drain(t, s, 8), 1);
    assert_int_equal(s[0].block, 3);
    assert_int_equal(s[0].payload, 76);
    assert_false(tftp_transfer_finished(t));
    ack(t, 3, 30);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    assert_int_equal(tftp_transfer_deadline(t), UINT64_MAX);
    assert_int_equal(drain(t, s, 8), 0);
    const tftp_transfer_stats *st = tftp_transfer_get_stats(t);
    assert_int_equal(st->bytes_sent, 1100);
    assert_int_equal(st->bytes_acked, 1100);
    assert_int_equal(st->retransmits, 0);
    tftp_transfer_free(t);
    close(fd);
}

static void test_exact_multiple_ends_with_empty_block(void **state)
{
    int fd = temp_file(1024, true);
    tftp_transfer *t = start(fd, 1024, 512, 1, false, 0);
    sent s[4];
    drain(t, s, 4);
    ack(t, 1, 1);
    drain(t, s, 4);
    ack(t, 2, 2);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 3);
    assert_int_equal(s[0].payload, 0);
    assert_false(tftp_transfer_finished(t));
    ack(t, 3, 3);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    tftp_transfer_free(t);

    /* An empty file is one empty block. */
    t = start(fd, 0, 512, 1, false, 0);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].payload, 0);
    ack(t, 1, 1);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    tftp_transfer_free(t);
    close(fd);
}

static void test_oack_then_ack0(void **state)
{
    int fd = temp_file(3000, true);
    tftp_transfer_config c = {
        .fd = fd,
        .size = 3000,
        .params = { .blksize = 1428,
                    .windowsize = 1,
                    .tsize = 3000,
                    .oack_blksize = true,
                    .oack_tsize = true },
        .timeout_ms = 1000,
        .max_timeout_ms = 4000,
        .retries = 3,
    };
    tftp_transfer *t;
    assert_int_equal(tftp_transfer_new(&c, 0, &t), 0);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_WAIT_OACK_ACK);
    const uint8_t *p;
    size_t len;
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    static const uint8_t want[] = "\x00\x06"
                                  "blksize\0"
                                  "1428\0"
                                  "tsize\0"
                                  "3000";
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(p, want, sizeof(want));
    /* Only the OACK before the client's ACK 0. */
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    /* An ACK of another block is ignored. */
    ack(t, 1, 5);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    /* The OACK is resent on timeout. */
    tftp_transfer_timeout(t, 999);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    tftp_transfer_timeout(t, 1000);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    assert_int_equal(p[1], TFTP_OACK);
    ack(t, 0, 1100);
    sent s[4];
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 1);
    assert_int_equal(s[0].payload, 1428);
    ack(t, 1, 1200);
    ack(t, 1, 1201); /* duplicate */
    assert_int_equal(drain(t, s, 4), 1);
    ack(t, 2, 1300);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].payload, 3000 - 2 * 1428);
    ack(t, 3, 1400);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    assert_int_equal(tftp_transfer_get_stats(t)->retransmits, 1);
    tftp_transfer_free(t);
    close(fd);
}

static void test_lost_ack_retransmits_with_backoff(void **state)
{
    int fd = temp_file(2000, true);
    tftp_transfer *t = start(fd, 2000, 512, 1, false, 0);
    sent s[4];
    drain(t, s, 4);
    ack(t, 1, 100);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 2);
    /* The ACK for block 2 is lost: resend after 1 s, then 2 s, then 4 s. */
    assert_int_equal(tftp_transfer_deadline(t), 1100);
    tftp_transfer_timeout(t, 1100);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 2);
    assert_int_equal(s[0].first, 512 % 251);
    assert_int_equal(tftp_transfer_deadline(t), 1100 + 2000);
    tftp_transfer_timeout(t, 3100);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(tftp_transfer_deadline(t), 3100 + 4000);
    /* An ACK resets the timeout to its first value. */
    ack(t, 2, 3200);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 3);
    assert_int_equal(tftp_transfer_deadline(t), 3200 + 1000);
    assert_int_equal(tftp_transfer_get_stats(t)->retransmits, 2);
    assert_int_equal(tftp_transfer_get_stats(t)->timeouts, 2);
    tftp_transfer_free(t);
    close(fd);
}

static void test_duplicate_ack_never_resends(void **state)
{
    /* Sorcerer's Apprentice: a delayed duplicate ACK must not double the
     * traffic. */
    int fd = temp_file(5000, true);
    tftp_transfer *t = start(fd, 5000, 512, 1, false, 0);
    sent s[4];
    drain(t, s, 4);
    ack(t, 1, 1);
    assert_int_equal(drain(t, s, 4), 1);
    for (int i = 0; i < 10; i++) {
        ack(t, 1, 2);
        assert_int_equal(drain(t, s, 4), 0);
    }
    assert_int_equal(tftp_transfer_get_stats(t)->duplicate_acks, 10);
    /* A stale ACK from long ago and one from the future are ignored too. */
    ack(t, 0, 3);
    ack(t, 7, 3);
    assert_int_equal(drain(t, s, 4), 0);
    ack(t, 2, 4);
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].block, 3);
    tftp_transfer_free(t);
    close(fd);
}

static void test_window_sliding(void **state)
{
    /* 20 blocks of 100 bytes plus an empty final one, window 8. */
    int fd = temp_file(2000, true);
    tftp_transfer *t = start(fd, 2000, 100, 8, true, 0);
    sent s[16];
    ack(t, 0, 1);
    assert_int_equal(drain(t, s, 16), 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(s[i].block, i + 1);
    }
    /* The whole window acknowledged: the next 8. */
    ack(t, 8, 2);
    assert_int_equal(drain(t, s, 16), 8);
    assert_int_equal(s[0].block, 9);
    assert_int_equal(s[7].block, 16);
    /* Block 12 was lost: the client ACKs 11; resume at 12 with a full window. */
    ack(t, 11, 3);
    size_t n = drain(t, s, 16);
    assert_int_equal(n, 8);
    assert_int_equal(s[0].block, 12);
    assert_int_equal(s[0].first, (1100) % 251);
    assert_int_equal(s[7].block, 19);
    assert_int_equal(tftp_transfer_get_stats(t)->retransmits, 5); /* 12..16 again */
    /* A duplicate of 11 changes nothing. */
    ack(t, 11, 4);
    assert_int_equal(drain(t, s, 16), 0);
    /* The window ends at the last block (21, empty). */
    ack(t, 19, 5);
    assert_int_equal(drain(t, s, 16), 2);
    assert_int_equal(s[0].block, 20);
    assert_int_equal(s[1].block, 21);
    assert_int_equal(s[1].payload, 0);
    /* Timeout: the window from the last ACK goes again. */
    tftp_transfer_timeout(t, 5 + 1000);
    assert_int_equal(drain(t, s, 16), 2);
    assert_int_equal(s[0].block, 20);
    ack(t, 21, 1100);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    assert_int_equal(tftp_transfer_get_stats(t)->bytes_acked, 2000);
    tftp_transfer_free(t);
    close(fd);
}

static void test_rollover_past_65535(void **state)
{
    /* 32 MiB + 1000 bytes at 512: 65538 full blocks... the block after
     * 65535 is 0 on the wire, then 1, 2. A sparse file keeps it cheap. */
    uint64_t size = 32ull * 1024 * 1024 + 1000;
    int fd = temp_file(size, false);
    tftp_transfer *t = start(fd, size, 512, 4, true, 0);
    ack(t, 0, 0);
    uint64_t total = size / 512 + 1; /* 65538 */
    uint64_t expect = 1;
    uint64_t now = 1;
    sent s[8];
    bool saw_zero = false;
    while (!tftp_transfer_finished(t)) {
        size_t n = drain(t, s, 8);
        assert_true(n >= 1 && n <= 4);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(s[i].block, (uint16_t)(expect + i));
            if (expect + i == 65536) {
                assert_int_equal(s[i].block, 0);
                saw_zero = true;
            }
            size_t want = expect + i == total ? size % 512 : 512;
            assert_int_equal(s[i].payload, want);
        }
        expect += n;
        ack(t, s[n - 1].block, now++);
    }
    assert_true(saw_zero);
    assert_int_equal(expect - 1, total);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    assert_int_equal(tftp_transfer_get_stats(t)->bytes_sent, size);
    assert_int_equal(tftp_transfer_get_stats(t)->retransmits, 0);
    tftp_transfer_free(t);
    close(fd);
}

static void test_rollover_ack_mapping_window(void **state)
{
    /* Around the wrap, an ACK of wire block 0 or 1 is 65536 or 65537, and a
     * duplicate ACK of 65535 is still a duplicate. */
    uint64_t size = 65540ull * 8;
    int fd = temp_file(size, false);
    tftp_transfer *t = start(fd, size, 8, 4, true, 0);
    ack(t, 0, 0);
    sent s[8];
    uint64_t now = 1;
    for (uint32_t b = 4; b <= 65532; b += 4) {
        assert_int_equal(drain(t, s, 8), 4);
        ack(t, (uint16_t)b, now++);
    }
    assert_int_equal(drain(t, s, 8), 4); /* 65533..65536 */
    assert_int_equal(s[3].block, 0);
    ack(t, 65535, now++); /* 0 was lost */
    assert_int_equal(drain(t, s, 8), 4);
    assert_int_equal(s[0].block, 0);
    assert_int_equal(s[1].block, 1);
    ack(t, 65535, now++);
    assert_int_equal(drain(t, s, 8), 0);
    ack(t, 1, now++);
    assert_int_equal(drain(t, s, 8), 4);
    assert_int_equal(s[0].block, 2);
    tftp_transfer_free(t);
    close(fd);
}

static void test_tries_exhausted_fails(void **state)
{
    int fd = temp_file(600, true);
    tftp_transfer *t = start(fd, 600, 512, 1, false, 0);
    sent s[4];
    assert_int_equal(drain(t, s, 4), 1);
    uint64_t now = 0;
    int resends = 0;
    while (!tftp_transfer_finished(t)) {
        now = tftp_transfer_deadline(t);
        tftp_transfer_timeout(t, now);
        resends += (int)drain(t, s, 4);
        assert_true(resends <= 3);
    }
    assert_int_equal(resends, 3);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_FAILED);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_TIMEOUT);
    /* 1 + 2 + 4 (capped at 4) + 4 seconds. */
    assert_int_equal(now, 1000 + 2000 + 4000 + 4000);
    tftp_transfer_free(t);
    close(fd);
}

/* A transfer set up as the agent does by default (1 s doubling up to 8 s,
 * 5 retries) for a client that asked timeout=255 with big blocks and
 * windows: the 29-byte RRQ of issue #10. */
static tftp_transfer *start_timeout_option_stall(int fd, uint64_t size, uint32_t timeout_s,
                                                 uint64_t max_stall_ms, uint64_t now)
{
    tftp_transfer_config c = {
        .fd = fd,
        .size = size,
        .params = { .blksize = 1428,
                    .windowsize = 64,
                    .timeout = timeout_s,
                    .oack_blksize = true,
                    .oack_timeout = true,
                    .oack_windowsize = true },
        .timeout_ms = 1000,
        .max_timeout_ms = 8000,
        .retries = 5,
        .max_stall_ms = max_stall_ms,
    };
    tftp_transfer *t;
    assert_int_equal(tftp_transfer_new(&c, now, &t), 0);
    return t;
}

static tftp_transfer *start_timeout_option(int fd, uint64_t size, uint32_t timeout_s, uint64_t now)
{
    return start_timeout_option_stall(fd, size, timeout_s, 0, now);
}

/* Runs the timer until the transfer ends; returns when it did and counts
 * the packets it sent meanwhile. */
static uint64_t run_until_finished(tftp_transfer *t, size_t *ret_sent)
{
    sent s[80];
    size_t n = 0;
    uint64_t now = 0;
    for (int i = 0; i < 100 && !tftp_transfer_finished(t); i++) {
        now = tftp_transfer_deadline(t);
        tftp_transfer_timeout(t, now);
        n += drain(t, s, 80);
    }
    assert_true(tftp_transfer_finished(t));
    *ret_sent = n;
    return now;
}

static void test_stall_limit_of_config(void **state)
{
    tftp_transfer_config c = { .timeout_ms = 1000, .max_timeout_ms = 8000, .retries = 5 };
    assert_int_equal(tftp_transfer_stall_limit(&c), 1000 + 2000 + 4000 + 8000 + 8000 + 8000);
    c.retries = 0;
    assert_int_equal(tftp_transfer_stall_limit(&c), 1000);
    /* a cap below the first timeout does not shorten it */
    c = (tftp_transfer_config){ .timeout_ms = 3000, .max_timeout_ms = 1000, .retries = 2 };
    assert_int_equal(tftp_transfer_stall_limit(&c), 9000);
}

static void test_unanswered_timeout_option_capped(void **state)
{
    int fd = temp_file(10 << 20, false);
    tftp_transfer *t = start_timeout_option(fd, 10 << 20, 255, 0);
    sent s[4];
    assert_int_equal(drain(t, s, 4), 1);
    assert_int_equal(s[0].op, TFTP_OACK);
    /* The OACK goes again within 5 s, not 255 s (the server leaves a
     * timeout it would not honour out of the OACK, RFC 2349; the cap on an
     * unanswered client's timeout is tested where one is honoured). */
    assert_true(tftp_transfer_deadline(t) <= TFTP_UNANSWERED_TIMEOUT_MAX_MS);
    size_t resent;
    uint64_t end = run_until_finished(t, &resent);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_FAILED);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_TIMEOUT);
    /* The slot is free within what the server's own settings allow an
     * unanswered window (31 s), not 6 x 255 s. */
    assert_true(end <= 31000);
    assert_true(resent >= 1);
    assert_int_equal(tftp_transfer_deadline(t), UINT64_MAX);
    tftp_transfer_free(t);
    close(fd);
}

static void test_stall_after_ack0_bounded(void **state)
{
    /* The client answers the OACK once, takes a window of 64 x 1428 and
     * goes silent: its timeout now spaces the resends, but the transfer
     * still ends 31 s after the last progress. */
    int fd = temp_file(10 << 20, false);
    tftp_transfer *t = start_timeout_option(fd, 10 << 20, 255, 0);
    sent s[80];
    assert_int_equal(drain(t, s, 80), 1);
    ack(t, 0, 100);
    assert_int_equal(drain(t, s, 80), 64);
    size_t resent;
    uint64_t end = run_until_finished(t, &resent);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_TIMEOUT);
    assert_true(end <= 100 + 31000);
    tftp_transfer_free(t);
    close(fd);
}

/* The first packet the transfer has for us, whole (an OACK's options). */
static size_t first_packet(tftp_transfer *t, uint8_t *buf, size_t cap)
{
    const uint8_t *p;
    size_t len;
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    assert_true(len <= cap);
    memcpy(buf, p, len);
    return len;
}

static bool has_option(const uint8_t *pkt, size_t len, const char *name)
{
    size_t n = strlen(name) + 1; /* with its NUL: whole option names only */
    for (size_t i = 2; i + n <= len; i++) {
        if (memcmp(pkt + i, name, n) == 0 && (i == 2 || pkt[i - 1] == 0)) {
            return true;
        }
    }
    return false;
}

static void test_lost_data_after_ack0_long_timeout(void **state)
{
    /* The review's probe: the agent's defaults (1 s doubling up to 8 s,
     * 5 retries, 31 s stall limit), a client asking timeout=60 (and a
     * block size, so an OACK goes out), ACK 0, then DATA 1 lost on the
     * wire. The transfer used to fail at the stall limit without a single
     * retransmission; the client must get all of them. */
    int fd = temp_file(100000, true);
    tftp_transfer_config c = {
        .fd = fd,
        .size = 100000,
        .params = { .blksize = 1428,
                    .windowsize = 1,
                    .timeout = 60,
                    .oack_blksize = true,
                    .oack_timeout = true },
        .timeout_ms = 1000,
        .max_timeout_ms = 8000,
        .retries = 5,
    };
    tftp_transfer *t;
    assert_int_equal(tftp_transfer_new(&c, 0, &t), 0);
    uint8_t oack[TFTP_MAX_ERROR_PACKET];
    size_t len = first_packet(t, oack, sizeof(oack));
    assert_int_equal(oack[1], TFTP_OACK);
    /* RFC 2349: what the OACK acknowledges is what the server does. */
    assert_false(has_option(oack, len, "timeout"));
    assert_true(has_option(oack, len, "blksize"));
    ack(t, 0, 100);
    sent s[8];
    assert_int_equal(drain(t, s, 8), 1);
    assert_int_equal(s[0].block, 1);
    /* DATA 1 is lost: it goes again, `retries` times, before the transfer
     * gives up, and it gives up within the stall limit. */
    size_t resent;
    uint64_t end = run_until_finished(t, &resent);
    assert_int_equal(resent, 5);
    assert_int_equal(tftp_transfer_get_stats(t)->retransmits, 5);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_TIMEOUT);
    assert_true(end <= 100 + 31000);
    tftp_transfer_free(t);

    /* A request whose only option is a timeout the server will not honour
     * gets no OACK at all: DATA 1 at once (RFC 2347), and its resends. */
    c.params =
        (tftp_params){ .blksize = 512, .windowsize = 1, .timeout = 60, .oack_timeout = true };
    assert_int_equal(tftp_transfer_new(&c, 0, &t), 0);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_SENDING);
    assert_int_equal(drain(t, s, 8), 1);
    assert_int_equal(s[0].op, TFTP_DATA);
    assert_int_equal(s[0].block, 1);
    end = run_until_finished(t, &resent);
    assert_int_equal(resent, 5);
    assert_true(end <= 31000);
    tftp_transfer_free(t);
    close(fd);
}

static void test_timeout_option_honoured_once_answered(void **state)
{
    int fd = temp_file(10 << 20, false);
    sent s[80];
    uint8_t oack[TFTP_MAX_ERROR_PACKET];
    size_t len;
    /* With the defaults (31 s stall limit) only a timeout whose whole
     * schedule fits is acknowledged: 1 s; 3 s (3 + 6 + 8 + 8 + 8 + 8 s) is
     * left out of the OACK and ours (1 s) applies. */
    tftp_transfer_config c = { .timeout_ms = 1000, .max_timeout_ms = 8000, .retries = 5 };
    assert_true(tftp_transfer_timeout_honoured(&c, 1));
    assert_false(tftp_transfer_timeout_honoured(&c, 2));
    assert_false(tftp_transfer_timeout_honoured(&c, 255));
    c.max_stall_ms = 120000; /* 6 x 20 s */
    assert_true(tftp_transfer_timeout_honoured(&c, 20));
    assert_false(tftp_transfer_timeout_honoured(&c, 21));
    tftp_transfer *t = start_timeout_option(fd, 10 << 20, 3, 0);
    len = first_packet(t, oack, sizeof(oack));
    assert_false(has_option(oack, len, "timeout"));
    assert_int_equal(tftp_transfer_deadline(t), 1000);
    t = tftp_transfer_free(t);
    /* A stall limit that has room for it: echoed, and used as asked from
     * the start when below the unanswered cap. */
    t = start_timeout_option_stall(fd, 10 << 20, 3, 120000, 0);
    len = first_packet(t, oack, sizeof(oack));
    assert_true(has_option(oack, len, "timeout"));
    assert_int_equal(tftp_transfer_deadline(t), 3000);
    t = tftp_transfer_free(t);
    /* Above the cap: capped while unanswered, then RFC 2349's 20 s. */
    t = start_timeout_option_stall(fd, 10 << 20, 20, 120000, 0);
    len = first_packet(t, oack, sizeof(oack));
    assert_true(has_option(oack, len, "timeout"));
    assert_int_equal(drain(t, s, 80), 0);
    assert_int_equal(tftp_transfer_deadline(t), TFTP_UNANSWERED_TIMEOUT_MAX_MS);
    ack(t, 0, 1000);
    assert_int_equal(drain(t, s, 80), 64);
    assert_int_equal(tftp_transfer_deadline(t), 1000 + 20000);
    /* Progress restarts the stall clock: the transfer lives on while ACKs
     * come, however long the whole transfer takes. */
    uint64_t now = 1000;
    for (uint16_t w = 1; w <= 10; w++) {
        now += 15000;
        ack(t, (uint16_t)(64 * w), now);
        assert_int_equal(drain(t, s, 80), 64);
        tftp_transfer_timeout(t, now);
        assert_false(tftp_transfer_finished(t));
    }
    assert_int_equal(tftp_transfer_deadline(t), now + 20000);
    /* The client goes silent: every resend it was promised comes, 20 s
     * apart, before the stall limit ends the transfer. */
    size_t resent;
    uint64_t end = run_until_finished(t, &resent);
    assert_int_equal(resent, 5 * 64);
    assert_int_equal(end, now + 120000);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_TIMEOUT);
    tftp_transfer_free(t);
    close(fd);
}

static void test_edk2_probe_is_abort(void **state)
{
    /* RRQ with tsize only, OACK with the size, ERROR 8 "User aborted". */
    int fd = temp_file(850528, false);
    tftp_transfer_config c = {
        .fd = fd,
        .size = 850528,
        .params = { .blksize = 512, .windowsize = 1, .tsize = 850528, .oack_tsize = true },
        .timeout_ms = 1000,
        .max_timeout_ms = 4000,
        .retries = 3,
    };
    tftp_transfer *t;
    assert_int_equal(tftp_transfer_new(&c, 0, &t), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    assert_int_equal(len, 2 + sizeof("tsize") + sizeof("850528"));
    client_error(t, TFTP_ERR_OPTIONS, "User aborted", 50);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_ABORTED);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_CLIENT_ERROR);
    assert_int_equal(tftp_transfer_get_stats(t)->client_error_code, 8);
    assert_string_equal(tftp_transfer_get_stats(t)->client_error_msg, "User aborted");
    /* Nothing is sent back to an ERROR, and no timer stays armed. */
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    assert_int_equal(tftp_transfer_deadline(t), UINT64_MAX);
    tftp_transfer_free(t);

    /* An ERROR once data flows is a failure. */
    t = start(fd, 850528, 512, 1, false, 0);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    client_error(t, TFTP_ERR_DISK_FULL, "Disk full", 10);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_FAILED);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    tftp_transfer_free(t);
    close(fd);
}

static void test_illegal_packet_gets_error4(void **state)
{
    int fd = temp_file(100, true);
    tftp_transfer *t = start(fd, 100, 512, 1, false, 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    /* Malformed: ignored. */
    static const uint8_t junk[] = { 0, 4, 0 };
    tftp_transfer_receive(t, junk, sizeof(junk), 1);
    assert_false(tftp_transfer_finished(t));
    /* DATA on a read transfer: ERROR 4, the end. */
    static const uint8_t data[] = { 0, 3, 0, 1, 'x' };
    tftp_transfer_receive(t, data, sizeof(data), 2);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_FAILED);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_ILLEGAL);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 1);
    assert_memory_equal(p, "\x00\x05\x00\x04", 4);
    assert_int_equal(tftp_transfer_next(t, &p, &len), 0);
    tftp_transfer_free(t);
    close(fd);
}

static void test_file_shrank_is_read_error(void **state)
{
    int fd = temp_file(1000, true);
    /* We were told 5000 bytes; the file holds 1000. */
    tftp_transfer *t = start(fd, 5000, 512, 4, true, 0);
    ack(t, 0, 0);
    sent s[8];
    size_t n = drain(t, s, 8);
    assert_int_equal(n, 2); /* DATA 1, then ERROR instead of a short DATA 2 */
    assert_int_equal(s[0].op, TFTP_DATA);
    assert_int_equal(s[1].op, TFTP_ERROR);
    assert_int_equal(tftp_transfer_get_reason(t), TFTP_REASON_READ_ERROR);
    tftp_transfer_free(t);
    close(fd);
}

/* The payload of a batch packet against the pattern file. */
static void assert_block(const tftp_out *o, uint16_t block, uint64_t off, size_t len)
{
    assert_int_equal(o->head_len, 4);
    assert_int_equal(o->head[1], TFTP_DATA);
    assert_int_equal((uint16_t)(o->head[2] << 8 | o->head[3]), block);
    assert_int_equal(o->body_len, len);
    for (size_t i = 0; i < len; i++) {
        if (o->body[i] != (uint8_t)((off + i) % 251)) {
            fail_msg("block %u byte %zu differs", block, i);
        }
    }
}

static void test_batch_sends_window_from_one_read(void **state)
{
    uint64_t size = 512 * 40 + 100;
    int fd = temp_file(size, true);
    tftp_transfer *t = start(fd, size, 512, 16, true, 0);
    tftp_out out[TFTP_BATCH_MAX];
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 1); /* OACK */
    assert_int_equal(out[0].head[1], TFTP_OACK);
    assert_int_equal(out[0].body_len, 0);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 0);
    assert_int_equal(tftp_transfer_reads(t), 0); /* nothing read before ACK 0 */
    ack(t, 0, 1);
    /* The whole window in one batch. */
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 16);
    for (unsigned i = 0; i < 16; i++) {
        assert_block(&out[i], (uint16_t)(i + 1), i * 512u, 512);
    }
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 0);
    /* `max` is honoured; the rest follows in the next call. */
    ack(t, 16, 2);
    assert_int_equal(tftp_transfer_next_batch(t, out, 5), 5);
    assert_block(&out[0], 17, 16 * 512u, 512);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 11);
    assert_block(&out[10], 32, 31 * 512u, 512);
    /* A timeout resends the window from memory. */
    tftp_transfer_timeout(t, 5000);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 16);
    assert_block(&out[0], 17, 16 * 512u, 512);
    ack(t, 32, 5001);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 9);
    assert_block(&out[8], 41, 40 * 512u, 100);
    ack(t, 41, 5002);
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    /* The file (20 KiB) was read once. */
    assert_int_equal(tftp_transfer_reads(t), 1);
    const tftp_transfer_stats *st = tftp_transfer_get_stats(t);
    assert_int_equal(st->retransmits, 16);
    assert_int_equal(st->bytes_sent, size + 16 * 512);
    tftp_transfer_free(t);
    close(fd);
}

static void test_read_ahead_lockstep(void **state)
{
    uint64_t size = 300 * 1000 + 7;
    int fd = temp_file(size, true);
    tftp_transfer *t = start(fd, size, 1000, 1, false, 0);
    size_t cap = 64 * 1024;
    tftp_params p = { .blksize = 1000, .windowsize = 1 };
    assert_int_equal(tftp_transfer_read_ahead_size(&p), cap);
    tftp_out out[TFTP_BATCH_MAX];
    uint64_t now = 0;
    for (uint64_t b = 1; b <= 301; b++) {
        assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 1);
        assert_block(&out[0], (uint16_t)b, (b - 1) * 1000, b == 301 ? 7 : 1000);
        tftp_transfer_read_ahead(t);
        if (b == 100) {
            /* A lost ACK: the resend needs no read. */
            uint64_t reads = tftp_transfer_reads(t);
            now = tftp_transfer_deadline(t);
            tftp_transfer_timeout(t, now);
            assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 1);
            assert_block(&out[0], 100, 99 * 1000, 1000);
            assert_int_equal(tftp_transfer_reads(t), reads);
        }
        ack(t, (uint16_t)b, ++now);
    }
    assert_int_equal(tftp_transfer_get_state(t), TFTP_XFER_DONE);
    /* About one read per 64 KiB, not one per block. */
    assert_true(tftp_transfer_reads(t) <= size / (cap - 1000) + 2);
    tftp_transfer_free(t);
    close(fd);
}

static void test_batch_stops_where_buffer_ends(void **state)
{
    /* Two windows of 40 x 16 KiB would be 1.25 MiB: the buffer stays at
     * 512 KiB, 32 blocks, and a window takes two batches. */
    uint32_t blk = 16384;
    uint64_t size = (uint64_t)blk * 100;
    int fd = temp_file(size, true);
    tftp_transfer *t = start(fd, size, blk, 40, true, 0);
    tftp_params p = { .blksize = blk, .windowsize = 40 };
    assert_int_equal(tftp_transfer_read_ahead_size(&p), 512 * 1024);
    tftp_out out[TFTP_BATCH_MAX];
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 1); /* OACK */
    ack(t, 0, 1);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 32);
    assert_block(&out[31], 32, 31 * (uint64_t)blk, blk);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 8);
    assert_block(&out[0], 33, 32 * (uint64_t)blk, blk);
    assert_block(&out[7], 40, 39 * (uint64_t)blk, blk);
    assert_int_equal(tftp_transfer_next_batch(t, out, TFTP_BATCH_MAX), 0);
    tftp_transfer_free(t);
    close(fd);
}

static void test_bad_config(void **state)
{
    tftp_transfer *t = NULL;
    tftp_transfer_config c = { .fd = 0,
                               .params = { .blksize = 7, .windowsize = 1 },
                               .timeout_ms = 1000 };
    assert_int_equal(tftp_transfer_new(&c, 0, &t), -EINVAL);
    c.params.blksize = 512;
    c.params.windowsize = 0;
    assert_int_equal(tftp_transfer_new(&c, 0, &t), -EINVAL);
    c.params.windowsize = 1;
    c.fd = -1;
    assert_int_equal(tftp_transfer_new(&c, 0, &t), -EINVAL);
    assert_null(tftp_transfer_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lockstep),
        cmocka_unit_test(test_exact_multiple_ends_with_empty_block),
        cmocka_unit_test(test_oack_then_ack0),
        cmocka_unit_test(test_lost_ack_retransmits_with_backoff),
        cmocka_unit_test(test_duplicate_ack_never_resends),
        cmocka_unit_test(test_window_sliding),
        cmocka_unit_test(test_rollover_past_65535),
        cmocka_unit_test(test_rollover_ack_mapping_window),
        cmocka_unit_test(test_tries_exhausted_fails),
        cmocka_unit_test(test_stall_limit_of_config),
        cmocka_unit_test(test_unanswered_timeout_option_capped),
        cmocka_unit_test(test_stall_after_ack0_bounded),
        cmocka_unit_test(test_timeout_option_honoured_once_answered),
        cmocka_unit_test(test_lost_data_after_ack0_long_timeout),
        cmocka_unit_test(test_edk2_probe_is_abort),
        cmocka_unit_test(test_illegal_packet_gets_error4),
        cmocka_unit_test(test_file_shrank_is_read_error),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_batch_sends_window_from_one_read),
        cmocka_unit_test(test_read_ahead_lockstep),
        cmocka_unit_test(test_batch_stops_where_buffer_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
