/* Fuzzes TFTP request parsing and option negotiation on one datagram, then
 * checks what negotiation decides stays inside the RFC ranges and our
 * limits, that the OACK we would send parses back to the same values, and
 * feeds the same bytes to the transfer-side packet parser.
 *
 * The same input also drives a read transfer (of /dev/zero) as a sequence
 * of client packets, each prefixed by a length byte (0 = a timer expiry):
 * whatever a client sends, the state machine must never hit its invariant
 * checks, must hand out well-formed packets only, and must stop sending
 * once finished. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tftp/transfer.h"
#include "tftp/wire.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drive_transfer(const uint8_t *data, size_t size)
{
    static int zero = -1;
    if (zero < 0) {
        zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        RB_ASSERT(zero >= 0);
    }
    if (size < 2) {
        return;
    }
    tftp_transfer_config c = {
        .fd = zero,
        .size = (uint64_t)data[0] * 37,
        .params = { .blksize = 8 + (data[1] & 0x3f),
                    .windowsize = 1 + ((data[1] >> 6) & 3),
                    .oack_tsize = data[0] & 1 },
        .timeout_ms = 100,
        .max_timeout_ms = 400,
        .retries = 3,
    };
    tftp_transfer *t;
    RB_ASSERT(tftp_transfer_new(&c, 0, &t) == 0);
    uint64_t now = 0;
    size_t off = 2;
    for (;;) {
        const uint8_t *pkt;
        size_t len;
        unsigned n = 0;
        while (tftp_transfer_next(t, &pkt, &len) == 1) {
            RB_ASSERT(len >= 4 && len <= TFTP_MAX_ERROR_PACKET + c.params.blksize);
            RB_ASSERT(pkt[0] == 0 &&
                      (pkt[1] == TFTP_DATA || pkt[1] == TFTP_OACK || pkt[1] == TFTP_ERROR));
            RB_ASSERT(++n <= c.params.windowsize + 1);
        }
        if (off >= size) {
            break;
        }
        size_t k = data[off++];
        if (k == 0) {
            now = tftp_transfer_deadline(t) == UINT64_MAX ? now + 1 : tftp_transfer_deadline(t);
            tftp_transfer_timeout(t, now);
            continue;
        }
        if (k > size - off) {
            k = size - off;
        }
        tftp_transfer_receive(t, data + off, k, ++now);
        off += k;
    }
    if (tftp_transfer_finished(t)) {
        const uint8_t *pkt;
        size_t len;
        RB_ASSERT(tftp_transfer_next(t, &pkt, &len) == 0);
        RB_ASSERT(tftp_transfer_deadline(t) == UINT64_MAX);
    }
    tftp_transfer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drive_transfer(data, size);

    tftp_packet pkt;
    (void)tftp_packet_parse(data, size, &pkt);

    tftp_request req;
    if (tftp_request_parse(data, size, &req) < 0) {
        return 0;
    }
    RB_ASSERT(req.filename_len > 0 && req.filename_len == strlen(req.filename));
    tftp_limits lim = { .max_blksize = 1428, .path_blksize = 1448, .max_windowsize = 64 };
    tftp_params p;
    tftp_negotiate(&req, &lim, 123456, &p);
    RB_ASSERT(p.blksize >= TFTP_MIN_BLKSIZE && p.blksize <= 1428);
    RB_ASSERT(p.windowsize >= 1 && p.windowsize <= 64);
    RB_ASSERT(!p.oack_timeout || (p.timeout >= 1 && p.timeout <= 255));
    RB_ASSERT(p.oack_blksize == req.has_blksize && p.oack_tsize == req.has_tsize);

    /* The OACK, read back as if it were a request's option list. */
    uint8_t oack[TFTP_MAX_REQUEST];
    int n = tftp_build_oack(&p, oack, sizeof(oack));
    RB_ASSERT(n >= 2);
    uint8_t as_req[TFTP_MAX_REQUEST + 16] = { 0, TFTP_RRQ, 'f', 0, 'o', 'c', 't', 'e', 't', 0 };
    memcpy(as_req + 10, oack + 2, (size_t)n - 2);
    tftp_request back;
    RB_ASSERT(tftp_request_parse(as_req, 10 + (size_t)n - 2, &back) == 0);
    RB_ASSERT(back.has_blksize == p.oack_blksize && back.has_tsize == p.oack_tsize &&
              back.has_windowsize == p.oack_windowsize && back.has_timeout == p.oack_timeout);
    RB_ASSERT(!back.has_blksize || back.blksize == p.blksize);
    RB_ASSERT(!back.has_windowsize || back.windowsize == p.windowsize);
    RB_ASSERT(!back.has_tsize || back.tsize == 123456);
    return 0;
}
